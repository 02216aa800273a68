//! The Secret's keys and values from what was read (pure): a JSON property,
//! keys of parameters read by path, and template keys.
//!
//! Every error names the parameter, key or placeholder at fault — never a
//! value or a fragment of one.

use std::collections::BTreeMap;

use crate::api::KeyFrom;
use crate::api::SecretValue;
use crate::api::SyncError;

/// The top-level field `property` of the JSON object `value`.
pub fn property(
    parameter: &str,
    value: &SecretValue,
    property: &str,
) -> Result<SecretValue, SyncError> {
    let invalid = |why: &str| SyncError::InvalidSpec {
        detail: format!("parameter {parameter}: property {property:?} {why}"),
    };
    let json: serde_json::Value = serde_json::from_str(value.expose())
        .map_err(|_| invalid("cannot be read: the value is not JSON"))?;
    let object = json
        .as_object()
        .ok_or_else(|| invalid("cannot be read: the value is not a JSON object"))?;
    match object.get(property) {
        None => Err(invalid("is missing from the JSON value")),
        Some(serde_json::Value::String(text)) => Ok(SecretValue::new(text.clone())),
        Some(other) => Ok(SecretValue::new(other.to_string())),
    }
}

/// The Secret key of a parameter read under `prefix`.
pub fn path_key(prefix: &str, name: &str, key_from: KeyFrom) -> Result<String, SyncError> {
    let key = match key_from {
        KeyFrom::Basename => name.rsplit('/').next().unwrap_or(name).to_owned(),
        KeyFrom::RelativePath => {
            let below = name
                .strip_prefix(prefix.trim_end_matches('/'))
                .unwrap_or(name);
            below.trim_start_matches('/').replace('/', ".")
        }
    };
    // A Secret key (`IsConfigMapKey`): the API server also refuses `.` and
    // any key starting with `..`, which a segment `.` or `..` would give.
    let valid = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && key != "."
        && !key.starts_with("..");
    if valid {
        Ok(key)
    } else {
        Err(SyncError::InvalidSpec {
            detail: format!("parameter {name} under {prefix} gives no valid Secret key"),
        })
    }
}

/// Adds `key` → `value` read from `parameter`, refusing to overwrite.
pub fn insert(
    data: &mut BTreeMap<String, SecretValue>,
    sources: &mut BTreeMap<String, String>,
    key: String,
    value: SecretValue,
    parameter: &str,
) -> Result<(), SyncError> {
    if let Some(first) = sources.get(&key) {
        return Err(SyncError::InvalidSpec {
            detail: format!("parameters {first} and {parameter} both map to Secret key {key:?}"),
        });
    }
    sources.insert(key.clone(), parameter.to_owned());
    data.insert(key, value);
    Ok(())
}

/// The template keys, each `{{ key }}` replaced by the value of `key`.
///
/// Rendering stops as soon as the Secret `secret` would pass `limit` bytes
/// with what `values` already hold: a template cannot make the operator
/// build more than one Secret's worth of memory, whatever it repeats.
pub fn template(
    templates: &BTreeMap<String, String>,
    values: &BTreeMap<String, SecretValue>,
    secret: &str,
    limit: usize,
) -> Result<BTreeMap<String, SecretValue>, SyncError> {
    let mut budget = Budget {
        used: values.iter().map(|(k, v)| k.len() + v.len()).sum(),
        limit,
        secret,
    };
    let mut rendered = BTreeMap::new();
    for (key, text) in templates {
        if values.contains_key(key) {
            return Err(SyncError::InvalidSpec {
                detail: format!("template key {key:?} is also a parameter's key"),
            });
        }
        budget.take(key.len())?;
        rendered.insert(
            key.clone(),
            SecretValue::new(render(key, text, values, &mut budget)?),
        );
    }
    Ok(rendered)
}

/// The bytes a Secret may still take.
struct Budget<'a> {
    used: usize,
    limit: usize,
    secret: &'a str,
}

impl Budget<'_> {
    fn take(&mut self, bytes: usize) -> Result<(), SyncError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(SyncError::SecretTooLarge {
                secret: self.secret.to_owned(),
                bytes: self.used,
            });
        }
        Ok(())
    }
}

fn render(
    key: &str,
    text: &str,
    values: &BTreeMap<String, SecretValue>,
    budget: &mut Budget<'_>,
) -> Result<String, SyncError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        budget.take(start)?;
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| SyncError::InvalidSpec {
            detail: format!("template {key:?} has an unclosed {{{{"),
        })?;
        let name = after[..end].trim();
        let value = values.get(name).ok_or_else(|| SyncError::InvalidSpec {
            detail: format!("template {key:?} refers to unknown key {name:?}"),
        })?;
        budget.take(value.len())?;
        out.push_str(value.expose());
        rest = &after[end + 2..];
    }
    budget.take(rest.len())?;
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1024 * 1024;

    #[test]
    fn a_template_bomb_stops_at_the_secret_limit_without_quoting_the_value() {
        let values = BTreeMap::from([("a".to_owned(), SecretValue::new("x".repeat(4096)))]);
        // ~1.2 GB if rendered whole.
        let templates = BTreeMap::from([("url".to_owned(), "{{a}}".repeat(300_000))]);
        let err = template(&templates, &values, "db", LIMIT).unwrap_err();
        assert_eq!(err.reason(), Reason::SecretTooLarge);
        assert!(!err.message().contains("xxxx"), "{}", err.message());
    }

    #[test]
    fn a_template_within_the_limit_renders_whole() {
        let values = BTreeMap::from([("a".to_owned(), SecretValue::new("x".repeat(4096)))]);
        let templates = BTreeMap::from([("url".to_owned(), "{{a}}".repeat(200))]);
        let rendered = template(&templates, &values, "db", LIMIT).unwrap();
        assert_eq!(rendered["url"].len(), 4096 * 200);
    }
    use crate::api::Reason;

    fn v(text: &str) -> SecretValue {
        SecretValue::new(text)
    }

    #[test]
    fn property_takes_a_top_level_field() {
        let json = v(r#"{"username":"app","password":"s3cr3t","port":5432}"#);
        assert_eq!(
            property("db", &json, "password").unwrap().expose(),
            "s3cr3t"
        );
        assert_eq!(property("db", &json, "port").unwrap().expose(), "5432");
    }

    #[test]
    fn property_errors_name_the_field_never_the_value() {
        let json = v(r#"{"password":"CANARY"}"#);
        let missing = property("db", &json, "user").unwrap_err();
        assert_eq!(missing.reason(), Reason::InvalidSpec);
        assert!(missing.message().contains("\"user\""));
        let not_json = property("db", &v("CANARY-not-json"), "user").unwrap_err();
        assert!(!format!("{not_json} {not_json:?}").contains("CANARY"));
    }

    #[test]
    fn path_keys_from_basename_or_relative_path() {
        assert_eq!(
            path_key("/prd/app", "/prd/app/db/pass", KeyFrom::Basename).unwrap(),
            "pass"
        );
        assert_eq!(
            path_key("/prd/app", "/prd/app/db/pass", KeyFrom::RelativePath).unwrap(),
            "db.pass"
        );
        assert_eq!(
            path_key("/prd/app/", "/prd/app/user", KeyFrom::RelativePath).unwrap(),
            "user"
        );
    }

    #[test]
    fn two_parameters_on_one_key_are_refused() {
        let (mut data, mut sources) = (BTreeMap::new(), BTreeMap::new());
        insert(&mut data, &mut sources, "pass".into(), v("a"), "/a/pass").unwrap();
        let clash = insert(&mut data, &mut sources, "pass".into(), v("b"), "/b/pass").unwrap_err();
        assert!(clash.message().contains("/a/pass") && clash.message().contains("/b/pass"));
        assert_eq!(data["pass"].expose(), "a");
    }

    #[test]
    fn template_substitutes_keys_with_or_without_spaces() {
        let values = BTreeMap::from([
            ("password".to_owned(), v("pw")),
            ("user".to_owned(), v("app")),
        ]);
        let templates = BTreeMap::from([(
            "DATABASE_URL".to_owned(),
            "postgres://{{user}}:{{ password }}@db/app".to_owned(),
        )]);
        let rendered = template(&templates, &values, "db", LIMIT).unwrap();
        assert_eq!(
            rendered["DATABASE_URL"].expose(),
            "postgres://app:pw@db/app"
        );
    }

    #[test]
    fn unknown_placeholders_and_functions_are_invalid_spec() {
        let values = BTreeMap::from([("password".to_owned(), v("pw"))]);
        for text in [
            "{{ nope }}",
            "{{ password | b64enc }}",
            "{{ env \"HOME\" }}",
            "{{ password",
        ] {
            let templates = BTreeMap::from([("x".to_owned(), text.to_owned())]);
            let err = template(&templates, &values, "db", LIMIT).unwrap_err();
            assert_eq!(err.reason(), Reason::InvalidSpec, "{text}");
        }
    }
}
