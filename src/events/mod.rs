//! Parameter Store change events (EventBridge, delivered to SQS): which
//! SsmParameters read a changed parameter, so that they alone are read
//! again within seconds rather than at their next refresh.

pub mod change;
pub mod consume;
pub mod queue;
pub mod sqs;

use std::sync::Arc;

use crate::api::SsmParameter;
use crate::aws::arn::Arn;
use crate::reconcile::key::ObjectKey;
use change::Change;

/// The SsmParameters among `objects` that read the parameter `change` is
/// of, by name, ARN or path. `default_region` is the operator's;
/// `operator_account` the account of its own identity, once known.
pub fn readers_of(
    change: &Change,
    objects: &[Arc<SsmParameter>],
    default_region: &str,
    operator_account: Option<&str>,
) -> Vec<ObjectKey> {
    objects
        .iter()
        .filter(|obj| reads(change, obj, default_region, operator_account))
        .map(|obj| ObjectKey::of(&**obj))
        .collect()
}

fn reads(
    change: &Change,
    obj: &SsmParameter,
    default_region: &str,
    operator_account: Option<&str>,
) -> bool {
    let spec = &obj.spec;
    let region = spec.region.as_deref().unwrap_or(default_region);
    // The account reads go to: a chained role's, else the operator's own
    // (a ServiceAccount's role is not known without reading it: any).
    let identity = spec.identity.clone().unwrap_or_default();
    let chained = (identity.role_arn.as_deref())
        .and_then(Arn::parse)
        .map(|arn| arn.account.to_owned());
    let account = match (&chained, &identity.service_account_name) {
        (Some(account), _) => Some(account.as_str()),
        (None, Some(_)) => None,
        (None, None) => operator_account,
    };
    let named = (spec.parameters.iter()).any(|p| change.concerns(&p.name, region, account));
    let pathed = (spec.path.as_ref()).is_some_and(|path| {
        let recursive = path.recursive.unwrap_or(false);
        change.under(&path.prefix, recursive, region, account)
    });
    named || pathed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ssm_parameter;
    use serde_json::json;

    fn change(name: &str) -> Change {
        Change::of(
            &json!({
                "version": "0", "id": "e1", "detail-type": "Parameter Store Change",
                "source": "aws.ssm", "account": "111122223333", "time": "2026-12-04T02:00:00Z",
                "region": "ap-northeast-1", "resources": [],
                "detail": {"operation": "Update", "name": name},
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn the_readers_of_a_parameter_are_those_naming_it_or_its_path() {
        let objects: Vec<Arc<SsmParameter>> = [
            ("by-name", json!({"parameters": [{"name": "/prd/db/pass"}]})),
            ("by-path", json!({"path": {"prefix": "/prd/db"}})),
            ("other-path", json!({"path": {"prefix": "/stg/db"}})),
            (
                "elsewhere",
                json!({"region": "eu-west-1", "parameters": [{"name": "/prd/db/pass"}]}),
            ),
            (
                "other-account",
                json!({"parameters": [{"name": "/prd/db/pass"}],
                "identity": {"roleArn": "arn:aws:iam::444455556666:role/r"}}),
            ),
            (
                "tenant",
                json!({"parameters": [{"name": "/prd/db/pass"}],
                "identity": {"serviceAccountName": "app"}}),
            ),
        ]
        .into_iter()
        .map(|(name, spec)| Arc::new(ssm_parameter(name, spec)))
        .collect();
        let readers = readers_of(
            &change("/prd/db/pass"),
            &objects,
            "ap-northeast-1",
            Some("111122223333"),
        );
        let names: Vec<&str> = readers.iter().map(|r| r.parts().1).collect();
        assert_eq!(names, ["by-name", "by-path", "tenant"]);
        assert!(readers_of(&change("/nobody/reads"), &objects, "ap-northeast-1", None).is_empty());
    }
}
