//! The Secret's keys and values from what was read (pure): a JSON property,
//! and keys of parameters read by path.
//!
//! Every error names the parameter, key or placeholder at fault — never a
//! value or a fragment of one.

use std::collections::BTreeMap;

use crate::api::SecretValue;
use crate::api::SyncError;
use crate::api::{Decode, KeyFrom};

/// The field `property` of the JSON value `value`: a dotted path, `\.`
/// being a literal dot, and a number indexing an array.
pub fn property(
    parameter: &str,
    value: &SecretValue,
    property: &str,
) -> Result<SecretValue, SyncError> {
    let invalid = |why: &str| SyncError::InvalidSpec {
        detail: format!("parameter {parameter}: property {property:?} {why}"),
    };
    let json: serde_json::Value = serde_json::from_slice(value.expose())
        .map_err(|_| invalid("cannot be read: the value is not JSON"))?;
    // A top-level field whose name holds the dots: what `property` meant
    // before it was a path, so that such specs keep working.
    let at = walk(&json, &path_fields(property))
        .or_else(|| json.as_object().and_then(|o| o.get(property)))
        .ok_or_else(|| invalid("is missing from the JSON value"))?;
    match at {
        serde_json::Value::String(text) => Ok(SecretValue::new(text.clone())),
        other => Ok(SecretValue::new(other.to_string())),
    }
}

fn walk<'a>(json: &'a serde_json::Value, fields: &[String]) -> Option<&'a serde_json::Value> {
    fields.iter().try_fold(json, |at, field| match at {
        serde_json::Value::Object(object) => object.get(field),
        serde_json::Value::Array(items) => field.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The fields of a dotted path; `\.` is a dot inside a field, `\\` a
/// backslash.
fn path_fields(path: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('.' | '\\')) => field.push(escaped),
                Some(other) => field.extend(['\\', other]),
                None => field.push('\\'),
            },
            '.' => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// `value` decoded as `decode` says. Base64 text may be wrapped in lines
/// (as `base64` prints it) and its padding may be left out.
pub fn decoded(
    parameter: &str,
    value: SecretValue,
    decode: Decode,
) -> Result<SecretValue, SyncError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{Engine as _, alphabet};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    match decode {
        Decode::None => Ok(value),
        Decode::Base64 => {
            let text: Vec<u8> = value
                .expose()
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            LENIENT
                .decode(text)
                .map(SecretValue::new)
                .map_err(|_| SyncError::InvalidSpec {
                    detail: format!(
                        "parameter {parameter}: decode Base64: the value is not base64 text"
                    ),
                })
        }
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
    if valid_secret_key(&key) {
        Ok(key)
    } else {
        Err(SyncError::InvalidSpec {
            detail: format!("parameter {name} under {prefix} gives no valid Secret key"),
        })
    }
}

/// A Secret key (`IsConfigMapKey`): the API server also refuses `.` and
/// any key starting with `..`, which a segment `.` or `..` would give.
fn valid_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && key != "."
        && !key.starts_with("..")
}

/// Every top-level field of the JSON object `value`, keyed `prefix` + its
/// name; a non-string value as JSON text. A field whose key would not be
/// a valid Secret key is named in the error (field names are not values).
pub fn extract(
    parameter: &str,
    value: &SecretValue,
    prefix: &str,
) -> Result<Vec<(String, SecretValue)>, SyncError> {
    let invalid = |why: String| SyncError::InvalidSpec {
        detail: format!("parameter {parameter}: extract {why}"),
    };
    let json: serde_json::Value = serde_json::from_slice(value.expose())
        .map_err(|_| invalid("cannot read it: the value is not JSON".to_owned()))?;
    let serde_json::Value::Object(fields) = json else {
        return Err(invalid(
            "cannot read it: the value is not a JSON object".to_owned(),
        ));
    };
    fields
        .into_iter()
        .map(|(field, value)| {
            let key = format!("{prefix}{field}");
            if !valid_secret_key(&key) {
                return Err(invalid(format!(
                    "gives no valid Secret key for field {field:?} ([-._a-zA-Z0-9]+)"
                )));
            }
            let value = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            Ok((key, SecretValue::new(value)))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::api::Reason;

    fn v(text: &str) -> SecretValue {
        SecretValue::new(text)
    }

    #[test]
    fn property_takes_a_top_level_field() {
        let json = v(r#"{"username":"app","password":"s3cr3t","port":5432}"#);
        assert_eq!(
            property("db", &json, "password").unwrap().expose(),
            b"s3cr3t"
        );
        assert_eq!(property("db", &json, "port").unwrap().expose(), b"5432");
    }

    #[test]
    fn property_reaches_nested_fields_and_array_items() {
        let json = v(r#"{"db":{"password":"pw","hosts":["a","b"],"port":5432},"tls.crt":"C"}"#);
        let at = |path: &str| property("db", &json, path).map(|v| v.expose().to_vec());
        assert_eq!(at("db.password").unwrap(), b"pw");
        assert_eq!(at("db.hosts.1").unwrap(), b"b");
        assert_eq!(at("db.port").unwrap(), b"5432");
        assert_eq!(at("db.hosts").unwrap(), br#"["a","b"]"#);
        assert_eq!(at(r"tls\.crt").unwrap(), b"C");
        assert_eq!(at("tls.crt").unwrap(), b"C", "a top-level name with dots");
        for missing in [
            "db.user",
            "db.hosts.2",
            "db.hosts.x",
            "db.password.x",
            "tls",
        ] {
            assert_eq!(
                at(missing).unwrap_err().reason(),
                Reason::InvalidSpec,
                "{missing}"
            );
        }
    }

    #[test]
    fn base64_decoding_gives_the_bytes_and_tolerates_lines_and_missing_padding() {
        let decode =
            |text: &str| decoded("ks", v(text), Decode::Base64).map(|v| v.expose().to_vec());
        assert_eq!(decode("MIIB/w==").unwrap(), [0x30, 0x82, 0x01, 0xff]);
        assert_eq!(decode("MIIB/w").unwrap(), [0x30, 0x82, 0x01, 0xff]);
        assert_eq!(decode("aGVs\nbG8=\n").unwrap(), b"hello");
        let err = decode("CANARY!!").unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidSpec);
        assert!(err.message().contains("parameter ks") && err.message().contains("Base64"));
        assert!(!format!("{err} {err:?}").contains("CANARY"));
        assert_eq!(
            decoded("p", v("as is"), Decode::None).unwrap().expose(),
            b"as is"
        );
    }

    #[test]
    fn extract_makes_a_key_of_every_top_level_field() {
        let json = v(r#"{"user":"app","password":"pw","port":5432,"tls":{"on":true}}"#);
        let fields = extract("db", &json, "db-").unwrap();
        let got: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(
            got,
            [
                ("db-user", b"app".as_slice()),
                ("db-password", b"pw"),
                ("db-port", b"5432"),
                ("db-tls", br#"{"on":true}"#),
            ]
        );
        assert_eq!(extract("db", &v("{}"), "").unwrap().len(), 0);
    }

    #[test]
    fn extract_refuses_what_is_no_object_and_fields_that_make_no_key() {
        for text in ["CANARY", r#"["CANARY"]"#, r#""CANARY""#] {
            let err = extract("db", &v(text), "").unwrap_err();
            assert_eq!(err.reason(), Reason::InvalidSpec);
            assert!(!err.message().contains("CANARY"), "{}", err.message());
        }
        let err = extract("db", &v(r#"{"a b":"CANARY"}"#), "").unwrap_err();
        assert!(err.message().contains("\"a b\""), "{}", err.message());
        assert!(!err.message().contains("CANARY"));
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
        assert_eq!(data["pass"].expose(), b"a");
    }
}
