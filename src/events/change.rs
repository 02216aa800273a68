//! A "Parameter Store Change" event, as an EventBridge rule delivers it to
//! an SQS queue: the event's JSON is the message body (Amazon EventBridge
//! User Guide, "Amazon SQS" targets; the event's fields: AWS Systems Manager
//! User Guide, "Monitoring Systems Manager events with Amazon EventBridge",
//! Parameter Store events):
//!
//! ```json
//! {"version": "0", "id": "…", "detail-type": "Parameter Store Change",
//!  "source": "aws.ssm", "account": "123456789012", "time": "…",
//!  "region": "us-east-1",
//!  "resources": ["arn:aws:ssm:us-east-1:123456789012:parameter/foo"],
//!  "detail": {"operation": "Create", "name": "foo", "type": "String"}}
//! ```
//!
//! A message is read as such an event or refused with a reason; its values
//! are never looked at (a change event carries none).

use serde::Deserialize;

use crate::aws::arn::{Arn, same_parameter};

/// What changed, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// EventBridge's id of the event: a redelivery carries the same one.
    pub id: String,
    pub account: String,
    pub region: String,
    /// The parameter, as SSM spells it (`/prd/db` or `db`).
    pub name: String,
    pub operation: Operation,
}

/// The `detail.operation` of the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    LabelParameterVersion,
    /// Another operation AWS may add: the parameter is read again all the
    /// same, which costs one call and changes nothing if nothing changed.
    Other,
}

/// Why a message is not a change event the operator can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not JSON, or not an EventBridge event of this shape.
    Malformed(String),
    /// An event, but not Parameter Store's (another rule's target).
    NotParameterStore,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    account: String,
    region: String,
    #[serde(default)]
    resources: Vec<String>,
    detail: Detail,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default)]
    name: Option<String>,
    operation: String,
}

/// What serde found wrong, never the input: a missing field by name, else
/// the kind of fault and where ("invalid type" messages quote the value).
fn without_input(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = error.to_string();
    if message.starts_with("missing field") {
        return message;
    }
    let kind = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "a syntax error",
        Category::Data => "a field of the wrong type",
        Category::Eof => "it ends too soon",
    };
    format!("{kind} at line {} column {}", error.line(), error.column())
}

impl Change {
    /// The change a message body tells of.
    pub fn of(body: &str) -> Result<Self, Refused> {
        let value: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| Refused::Malformed(format!("not JSON ({})", without_input(&e))))?;
        let text = |field: &str| value.get(field).and_then(|v| v.as_str());
        match (text("source"), text("detail-type")) {
            (Some("aws.ssm"), Some("Parameter Store Change")) => {}
            (Some(_), Some(_)) => return Err(Refused::NotParameterStore),
            _ => {
                return Err(Refused::Malformed(
                    "not an EventBridge event (no source or detail-type)".to_owned(),
                ));
            }
        }
        let event: Event = serde_json::from_value(value).map_err(|e| {
            Refused::Malformed(format!(
                "not a Parameter Store change event ({})",
                without_input(&e)
            ))
        })?;
        // The name: `detail.name`, else the parameter ARN of `resources`.
        let from_arn = || {
            (event.resources.iter())
                .filter_map(|r| Arn::parse(r)?.parameter_name())
                .map(|n| n.into_owned())
                .next()
        };
        let name = (event.detail.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(from_arn)
            .ok_or_else(|| Refused::Malformed("the event names no parameter".to_owned()))?;
        if event.account.is_empty() || event.region.is_empty() {
            return Err(Refused::Malformed(
                "the event has no account or region".to_owned(),
            ));
        }
        let operation = match event.detail.operation.as_str() {
            "Create" => Operation::Create,
            "Update" => Operation::Update,
            "Delete" => Operation::Delete,
            "LabelParameterVersion" => Operation::LabelParameterVersion,
            _ => Operation::Other,
        };
        Ok(Self {
            id: event.id,
            account: event.account,
            region: event.region,
            name,
            operation,
        })
    }

    /// Whether this change is of the parameter a spec names as `wanted` (a
    /// name, `name:version`, `name:label` or an ARN), read in `region` of
    /// `account` (`None`: the account the reads run as, not known here).
    pub fn concerns(&self, wanted: &str, region: &str, account: Option<&str>) -> bool {
        let (base, _) = crate::aws::arn::split_selector(wanted);
        match Arn::parse(base) {
            Some(arn) => {
                arn.region == self.region
                    && arn.account == self.account
                    && arn
                        .parameter_name()
                        .is_some_and(|n| same_parameter(&n, &self.name))
            }
            None => {
                region == self.region
                    && account.is_none_or(|a| a == self.account)
                    && same_parameter(base, &self.name)
            }
        }
    }

    /// Whether this change is of a parameter under `prefix` (below its
    /// sub-paths too when `recursive`), read in `region` of `account`.
    pub fn under(
        &self,
        prefix: &str,
        recursive: bool,
        region: &str,
        account: Option<&str>,
    ) -> bool {
        if region != self.region || account.is_some_and(|a| a != self.account) {
            return false;
        }
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        match self.name.strip_prefix(&prefix) {
            Some(rest) => !rest.is_empty() && (recursive || !rest.contains('/')),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail: serde_json::Value) -> String {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Parameter Store Change", "source": "aws.ssm",
            "account": "111122223333", "time": "2026-12-04T02:00:00Z",
            "region": "ap-northeast-1",
            "resources": ["arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/db/pass"],
            "detail": detail,
        })
        .to_string()
    }

    #[test]
    fn a_parameter_store_change_is_read_with_its_name_account_region_and_operation() {
        let change = Change::of(&event(
            json!({"operation": "Update", "name": "/prd/db/pass", "type": "SecureString"}),
        ))
        .unwrap();
        assert_eq!(
            change,
            Change {
                id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718".into(),
                account: "111122223333".into(),
                region: "ap-northeast-1".into(),
                name: "/prd/db/pass".into(),
                operation: Operation::Update,
            }
        );
        // Without detail.name, the resource ARN says it.
        let change = Change::of(&event(json!({"operation": "Delete"}))).unwrap();
        assert_eq!(change.name, "/prd/db/pass");
        assert_eq!(change.operation, Operation::Delete);
        let change = Change::of(&event(json!({"operation": "Relabel", "name": "x"}))).unwrap();
        assert_eq!(change.operation, Operation::Other);
    }

    #[test]
    fn what_is_no_parameter_store_change_is_refused_without_quoting_it() {
        assert!(matches!(
            Change::of("{\"password\": \"hunter2\""),
            Err(Refused::Malformed(why)) if !why.contains("hunter2")
        ));
        assert!(matches!(Change::of("[]"), Err(Refused::Malformed(_))));
        // serde's own messages would quote a value of the wrong type.
        for body in [
            "\"hunter2\"".to_owned(),
            event(json!({"operation": "Create", "name": "a"}))
                .replace("\"6a7e8feb-b491-4cf7-a9f1-bf3703467718\"", "[\"hunter2\"]"),
            event(json!({"operation": ["hunter2"], "name": "a"})),
        ] {
            let refused = Change::of(&body);
            assert!(
                matches!(&refused, Err(Refused::Malformed(why)) if !why.contains("hunter2")),
                "{refused:?}"
            );
        }
        let other = event(json!({"operation": "Create", "name": "a"})).replace(
            "Parameter Store Change",
            "EC2 Instance State-change Notification",
        );
        assert_eq!(Change::of(&other), Err(Refused::NotParameterStore));
        let nameless = event(json!({"operation": "Create"})).replace(
            "arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/db/pass",
            "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-1",
        );
        assert!(matches!(Change::of(&nameless), Err(Refused::Malformed(_))));
    }

    #[test]
    fn a_change_concerns_the_names_arns_and_paths_that_read_that_parameter() {
        let change = Change::of(&event(
            json!({"operation": "Update", "name": "/prd/db/pass"}),
        ))
        .unwrap();
        let (region, account) = ("ap-northeast-1", Some("111122223333"));
        assert!(change.concerns("/prd/db/pass", region, account));
        assert!(
            change.concerns("/prd/db/pass:3", region, None),
            "a pinned version"
        );
        assert!(change.concerns(
            "arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/db/pass",
            "eu-west-1",
            None
        ));
        assert!(
            !change.concerns("/prd/db/pass", "eu-west-1", account),
            "another region"
        );
        assert!(!change.concerns("/prd/db/pass", region, Some("444455556666")));
        assert!(!change.concerns("/prd/db/user", region, account));
        assert!(!change.concerns(
            "arn:aws:ssm:ap-northeast-1:444455556666:parameter/prd/db/pass",
            region,
            account
        ));

        assert!(change.under("/prd/db", false, region, account));
        assert!(change.under("/prd/db/", false, region, account));
        assert!(
            !change.under("/prd", false, region, account),
            "below a sub-path"
        );
        assert!(change.under("/prd", true, region, account));
        assert!(
            !change.under("/prd/d", true, region, account),
            "not a path segment"
        );
        assert!(!change.under("/prd/db", false, "eu-west-1", account));

        let one_level =
            Change::of(&event(json!({"operation": "Create", "name": "token"}))).unwrap();
        assert!(
            one_level.concerns("/token", region, account),
            "one name, two spellings"
        );
    }
}
