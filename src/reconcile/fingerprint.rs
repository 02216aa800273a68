//! What identifies the data an SsmParameter puts in its Secret, without the
//! data: the parameter versions it holds and the spec's shaping of them.
//! A parameter's value at a version never changes in Parameter Store, so
//! the same fingerprint means the same data. Made of names and versions only,
//! it can sit in a status or a pod template: a hash of a short password could
//! be reversed by trying every password, this cannot.

use sha2::{Digest, Sha256};

use crate::api::{Decode, ParameterStatus};
use crate::reconcile::plan::Plan;

/// The fingerprint of the data `plan` makes from `parameters` (hex, 32 chars).
pub fn of(plan: &Plan, parameters: &[ParameterStatus]) -> String {
    let mut held: Vec<(&str, &str, i64)> = parameters
        .iter()
        .map(|p| (p.name.as_str(), p.key.as_str(), p.version))
        .collect();
    held.sort_unstable();
    let properties: Vec<(&str, Option<&str>)> = plan
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.property.as_deref()))
        .collect();
    let mut shaping = serde_json::json!({
        "parameters": held,
        "properties": properties,
        "template": plan.template,
    });
    // Only when some key is decoded or extracted: the fingerprints of
    // specs that do neither stay what they were before either existed.
    let decoded: Vec<&str> = plan
        .entries
        .iter()
        .filter(|e| e.decode != Decode::None)
        .map(|e| e.key.as_str())
        .collect();
    if !decoded.is_empty() {
        shaping["decoded"] = serde_json::json!(decoded);
    }
    let extracted: Vec<(&str, &str)> = (plan.entries.iter())
        .filter_map(|e| Some((e.name.as_str(), e.extract.as_deref()?)))
        .collect();
    if !extracted.is_empty() {
        shaping["extracted"] = serde_json::json!(extracted);
    }
    let digest = Sha256::digest(shaping.to_string().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ssm_parameter;
    use serde_json::json;

    fn held(version: i64) -> Vec<ParameterStatus> {
        vec![ParameterStatus {
            name: "db-pass".into(),
            key: "password".into(),
            version,
            type_: "SecureString".into(),
            ..ParameterStatus::default()
        }]
    }

    fn plan(spec: serde_json::Value) -> Plan {
        Plan::of(
            &ssm_parameter("db", spec),
            "ap-northeast-1",
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_new_version_or_template_is_new_data_and_nothing_else_is() {
        let plain = plan(json!({"parameters": [{"name": "db-pass", "key": "password"}]}));
        let slower = plan(
            json!({"parameters": [{"name": "db-pass", "key": "password"}], "refreshInterval": "2h"}),
        );
        let templated = plan(json!({
            "parameters": [{"name": "db-pass", "key": "password"}],
            "target": {"template": {"url": "postgres://app:{{ password }}@db"}},
        }));
        let v1 = of(&plain, &held(1));
        assert_eq!(v1.len(), 32);
        assert_eq!(v1, of(&plain, &held(1)));
        assert_eq!(v1, of(&slower, &held(1)));
        assert_ne!(v1, of(&plain, &held(2)));
        assert_ne!(v1, of(&templated, &held(1)));
    }
}
