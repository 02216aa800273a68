//! ESO's SecretStore and ClusterSecretStore of the AWS provider's
//! `ParameterStore` service: where their ExternalSecrets read (region,
//! prefix) and as whom (a ServiceAccount's IRSA role, a role chained from
//! it).

use serde_json::Value;

use super::fields::{Fields, Problems};

/// Which store an ExternalSecret names: `kind`, the namespace of a
/// SecretStore (none for a ClusterSecretStore), and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoreRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for StoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What a store says about reading, as far as it converts.
#[derive(Clone, Debug, Default)]
pub struct Store {
    pub region: Option<String>,
    /// A role assumed from the identity (ESO's `role`).
    pub role_arn: Option<String>,
    /// The ServiceAccount whose IRSA role reads (ESO's `auth.jwt`): its
    /// namespace when the store names one, and its name.
    pub service_account: Option<(Option<String>, String)>,
    /// Prepended to every key (ESO's `prefix`).
    pub prefix: String,
    /// Why the store's ExternalSecrets cannot convert.
    pub problems: Problems,
    /// What their conversions should know (not a difference in the Secret).
    pub notes: Vec<String>,
}

/// The store `spec` of `store`.
pub fn read(store: &StoreRef, spec: Value) -> Store {
    let mut out = Store::default();
    let problems = &mut out.problems;
    let mut spec = Fields::of("spec", spec, problems);
    for ignored in ["refreshInterval", "retrySettings"] {
        if spec.take(ignored).is_some() {
            out.notes.push(format!(
                "{store}: spec.{ignored} is ESO's own (how it checks the store, how it retries); the operator keeps its own"
            ));
        }
    }
    if let Some(mut provider) = spec.object("provider", problems) {
        match provider.object("aws", problems) {
            Some(aws) => read_aws(aws, &mut out),
            None => out.problems.push(
                "the provider is not aws: the operator reads AWS Parameter Store only".to_owned(),
            ),
        }
        provider.done(&mut out.problems);
    } else {
        out.problems.push("spec.provider is missing".to_owned());
    }
    spec.done(&mut out.problems);
    // Reported with each ExternalSecret that reads through the store: say
    // whose fields they are.
    for problem in &mut out.problems {
        *problem = format!("{store}: {problem}");
    }
    out
}

fn read_aws(mut aws: Fields, out: &mut Store) {
    let problems = &mut out.problems;
    match aws.string("service", problems).as_deref() {
        Some("ParameterStore") => {}
        Some(other) => problems.push(format!(
            "spec.provider.aws.service is {other}: the operator reads Parameter Store only"
        )),
        None => problems.push("spec.provider.aws.service is missing".to_owned()),
    }
    out.region = aws.string("region", problems);
    out.role_arn = aws.string("role", problems);
    out.prefix = aws.string("prefix", problems).unwrap_or_default();
    for chaining in [
        "additionalRoles",
        "externalID",
        "sessionTags",
        "transitiveTagKeys",
    ] {
        let set = match aws.take(chaining) {
            Some(Value::Array(items)) => !items.is_empty(),
            Some(Value::String(text)) => !text.is_empty(),
            Some(_) => true,
            None => false,
        };
        if set {
            problems.push(format!(
                "spec.provider.aws.{chaining} has no equivalent: identity.roleArn chains one role, without an external ID or session tags"
            ));
        }
    }
    if let Some(mut auth) = aws.object("auth", problems) {
        if auth.take("secretRef").is_some() {
            problems.push("spec.provider.aws.auth.secretRef (static access keys) has no equivalent: the operator reads with IRSA or Pod Identity roles only".to_owned());
        }
        if let Some(mut jwt) = auth.object("jwt", problems) {
            if let Some(mut account) = jwt.object("serviceAccountRef", problems) {
                let name = account.string("name", problems);
                let namespace = account.string("namespace", problems);
                if let Some(audiences) = account.take("audiences") {
                    let only_sts = audiences
                        .as_array()
                        .is_some_and(|a| a.iter().all(|x| x == "sts.amazonaws.com"));
                    if !only_sts {
                        problems.push("spec.provider.aws.auth.jwt.serviceAccountRef.audiences other than sts.amazonaws.com have no equivalent".to_owned());
                    }
                }
                account.done(problems);
                match name {
                    Some(name) => out.service_account = Some((namespace, name)),
                    None => problems.push(
                        "spec.provider.aws.auth.jwt.serviceAccountRef.name is missing".to_owned(),
                    ),
                }
            }
            jwt.done(problems);
        }
        auth.done(problems);
    }
    aws.done(problems);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> StoreRef {
        StoreRef {
            kind: "SecretStore".into(),
            namespace: Some("payments".into()),
            name: "aws".into(),
        }
    }

    #[test]
    fn a_parameter_store_with_irsa_and_a_role_converts() {
        let s = read(
            &store(),
            json!({"provider": {"aws": {
                "service": "ParameterStore", "region": "eu-west-1", "prefix": "/prd",
                "role": "arn:aws:iam::111122223333:role/reader",
                "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}),
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.prefix, "/prd");
        assert_eq!(s.service_account, Some((None, "app".to_owned())));
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/reader")
        );
    }

    #[test]
    fn what_has_no_equivalent_is_a_problem_naming_the_field() {
        for (spec, why) in [
            (
                json!({"provider": {"vault": {}}}),
                "reads AWS Parameter Store only",
            ),
            (
                json!({"provider": {"aws": {"service": "SecretsManager"}}}),
                "Parameter Store only",
            ),
            (
                json!({"provider": {"aws": {"service": "ParameterStore", "auth": {"secretRef": {}}}}}),
                "static access keys",
            ),
            (
                json!({"provider": {"aws": {"service": "ParameterStore", "externalID": "x"}}}),
                "externalID",
            ),
            (
                json!({"provider": {"aws": {"service": "ParameterStore", "newField": 1}}}),
                "spec.provider.aws.newField: has no equivalent",
            ),
        ] {
            let s = read(&store(), spec);
            assert!(
                s.problems.iter().any(|p| p.contains(why)),
                "{why}: {:?}",
                s.problems
            );
        }
    }
}
