//! What one SsmParameter asks for, worked out from its spec alone (pure).

use std::time::Duration;

use kube::ResourceExt;

use std::collections::BTreeMap;

use crate::api::SyncError;
use crate::api::{
    CreationPolicy, Decode, DeletionPolicy, KeyFrom, ParameterRef, SecretType, SsmParameter,
    WorkloadRef,
};
use crate::aws::arn::Arn;
use crate::aws::{Identity, PathQuery, Scope};
use crate::names::secret_field_manager;
use crate::reconcile::build::select::Selection;
use crate::reconcile::schedule::Lane;

/// Refresh interval when the spec names none.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// One parameter to read and the Secret key it fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name as the spec gives it.
    pub name: String,
    pub key: String,
    /// What GetParameters is asked: `name`, `name:version` or `name:label`.
    pub request: String,
    pub scope: Scope,
    pub decrypt: bool,
    /// Take this field of a JSON value.
    pub property: Option<String>,
    pub decode: Decode,
    /// Every top-level field of a JSON object, keyed by this prefix and its
    /// name (`key` is then unused).
    pub extract: Option<String>,
}

/// Every parameter under a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathEntry {
    pub scope: Scope,
    pub query: PathQuery,
    pub key_from: KeyFrom,
    /// The names of the listing that the spec picks.
    pub selection: Selection,
}

/// The work of one reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub secret_name: String,
    /// Field manager of this SsmParameter's Secret writes.
    pub field_manager: String,
    pub secret_type: SecretType,
    pub entries: Vec<Entry>,
    pub path: Option<PathEntry>,
    /// Extra keys: `{{ key }}` substitution.
    pub template: BTreeMap<String, String>,
    pub creation: CreationPolicy,
    pub deletion: DeletionPolicy,
    pub immutable: bool,
    pub rollout_restart: Vec<WorkloadRef>,
    /// `None`: read only when the spec changes.
    pub refresh: Option<Duration>,
}

impl Plan {
    /// The lane of this plan's refreshes: those of named parameters of one
    /// scope and decryption mode batch together; a path is listed alone.
    pub fn lane(&self) -> Option<Lane> {
        use std::hash::{Hash, Hasher};
        let first = self.entries.first()?;
        let shared = self
            .entries
            .iter()
            .all(|e| e.scope == first.scope && e.decrypt == first.decrypt);
        if self.path.is_some() || !shared {
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&first.scope, first.decrypt).hash(&mut hasher);
        Some(Lane {
            key: hasher.finish(),
            names: self.entries.len(),
            beat: None,
        })
    }

    /// The plan of `obj`, read as `identity`; parameters without a region
    /// use `default_region`.
    pub fn of(
        obj: &SsmParameter,
        default_region: &str,
        identity: Identity,
    ) -> Result<Self, SyncError> {
        let spec = &obj.spec;
        // Admission refuses them; an object stored before that rule existed
        // is told why here.
        let reserved = spec.parameters.iter().map(|p| p.name.as_str());
        let reserved = reserved.chain(spec.path.as_ref().map(|p| p.prefix.as_str()));
        if let Some(name) = reserved
            .into_iter()
            .find(|n| crate::aws::arn::is_aws_reserved(n))
        {
            return Err(SyncError::InvalidSpec {
                detail: format!(
                    "{name} is under /aws/, which the operator does not read: Secrets Manager references come only decrypted and without versions, public parameters hold no secret"
                ),
            });
        }
        let region = spec.region.as_deref().unwrap_or(default_region);
        let target = spec.target.clone().unwrap_or_default();
        let entries = spec
            .parameters
            .iter()
            .map(|p| entry(p, region, &identity))
            .collect();
        let refresh = match spec.refresh_interval.as_deref() {
            None => Some(DEFAULT_REFRESH),
            Some(text) => parse_interval(text)?,
        };
        let path = spec.path.as_ref().map(|p| PathEntry {
            scope: Scope {
                region: region.to_owned(),
                identity: identity.clone(),
            },
            query: PathQuery {
                prefix: p.prefix.clone(),
                recursive: p.recursive.unwrap_or(false),
                // Values come decrypted only for the parameters that changed.
                decrypt: false,
            },
            key_from: p.key_from.unwrap_or_default(),
            selection: Selection::new(&p.include, &p.exclude),
        });
        Ok(Self {
            secret_name: secret_name(obj),
            field_manager: secret_field_manager(&obj.uid().unwrap_or_default()),
            secret_type: target.type_.unwrap_or_default(),
            entries,
            path,
            template: target.template.map(Into::into).unwrap_or_default(),
            creation: target.creation_policy.unwrap_or_default(),
            deletion: target.deletion_policy.unwrap_or_default(),
            immutable: target.immutable.unwrap_or(false),
            rollout_restart: spec.rollout_restart.clone(),
            refresh,
        })
    }
}

/// The Secret `obj` writes: `target.name`, else the object's own name.
pub fn secret_name(obj: &SsmParameter) -> String {
    let target = obj.spec.target.as_ref();
    target
        .and_then(|t| t.name.clone())
        .unwrap_or_else(|| obj.name_any())
}

/// Whether `obj` merges its keys into a Secret that others write too.
pub fn merges(obj: &SsmParameter) -> bool {
    let target = obj.spec.target.as_ref();
    target.and_then(|t| t.creation_policy) == Some(CreationPolicy::Merge)
}

fn entry(p: &ParameterRef, default_region: &str, identity: &Identity) -> Entry {
    let selector = match (&p.version, &p.label) {
        (Some(version), _) => format!(":{version}"),
        (None, Some(label)) => format!(":{label}"),
        (None, None) => String::new(),
    };
    Entry {
        name: p.name.clone(),
        key: p.secret_key().to_owned(),
        request: format!("{}{selector}", p.name),
        scope: Scope {
            region: arn_region(&p.name).unwrap_or(default_region).to_owned(),
            identity: identity.clone(),
        },
        decrypt: p.decrypts(),
        property: p.property.clone(),
        decode: p.decode.unwrap_or_default(),
        extract: p.extracted_prefix().map(str::to_owned),
    }
}

/// The region of a parameter ARN: `arn:<partition>:ssm:<region>:<account>:parameter/…`.
fn arn_region(name: &str) -> Option<&str> {
    Arn::parse(name)
        .filter(|arn| arn.service == "ssm" && !arn.region.is_empty())
        .map(|arn| arn.region)
}

/// `0` → never; `1h30m`, `45s` … → that long. The schema already limits the
/// syntax; this is the operator's own check for anything that slips by.
pub fn parse_interval(text: &str) -> Result<Option<Duration>, SyncError> {
    let invalid = || SyncError::InvalidSpec {
        detail: format!("refreshInterval {text:?} is not a duration such as 30s, 15m or 1h"),
    };
    if text == "0" {
        return Ok(None);
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        let n: u64 = digits.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || total < 10 {
        return Err(invalid());
    }
    Ok(Some(Duration::from_secs(total)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SsmParameterSpec;
    use crate::testing::parameter_ref;

    impl Plan {
        fn of_operator(obj: &SsmParameter, region: &str) -> Result<Self, SyncError> {
            Self::of(obj, region, Identity::default())
        }
    }

    fn object(parameters: Vec<ParameterRef>) -> SsmParameter {
        SsmParameter::new(
            "db-credentials",
            SsmParameterSpec {
                region: None,
                parameters,
                path: None,
                identity: None,
                target: None,
                refresh_interval: None,
                rollout_restart: Vec::new(),
            },
        )
    }

    #[test]
    fn secret_defaults_to_the_objects_name_and_opaque() {
        let plan = Plan::of_operator(
            &object(vec![parameter_ref("prd-db-pass")]),
            "ap-northeast-1",
        )
        .unwrap();
        assert_eq!(plan.secret_name, "db-credentials");
        assert_eq!(plan.secret_type, SecretType::Opaque);
        assert_eq!(plan.refresh, Some(DEFAULT_REFRESH));
    }

    #[test]
    fn a_stored_object_reading_under_aws_is_invalid_spec_saying_why() {
        let error = Plan::of_operator(
            &object(vec![parameter_ref("/aws/reference/secretsmanager/db")]),
            "ap-northeast-1",
        )
        .unwrap_err();
        assert_eq!(error.reason(), crate::api::Reason::InvalidSpec);
        assert!(error.message().contains("Secrets Manager references"));
    }

    #[test]
    fn version_and_label_pins_become_selectors() {
        let mut v = parameter_ref("/a/b");
        v.version = Some(3);
        let mut l = parameter_ref("c");
        l.label = Some("prod".into());
        let plan = Plan::of_operator(&object(vec![v, l]), "eu-west-1").unwrap();
        assert_eq!(plan.entries[0].request, "/a/b:3");
        assert_eq!(plan.entries[0].key, "b");
        assert_eq!(plan.entries[1].request, "c:prod");
    }

    #[test]
    fn an_arns_region_wins_over_the_default() {
        let plan = Plan::of_operator(
            &object(vec![
                parameter_ref("arn:aws:ssm:us-west-2:111122223333:parameter/x"),
                parameter_ref("y"),
            ]),
            "ap-northeast-1",
        )
        .unwrap();
        assert_eq!(plan.entries[0].scope.region, "us-west-2");
        assert_eq!(plan.entries[1].scope.region, "ap-northeast-1");
    }

    #[test]
    fn intervals_parse_like_the_schema_says() {
        assert_eq!(parse_interval("0").unwrap(), None);
        assert_eq!(
            parse_interval("1h30m").unwrap(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_interval("10s").unwrap(),
            Some(Duration::from_secs(10))
        );
        assert!(parse_interval("9s").is_err());
        assert!(parse_interval("5").is_err());
        assert!(parse_interval("1d").is_err());
        assert!(parse_interval("").is_err());
    }
}
