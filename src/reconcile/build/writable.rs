//! What the API server would refuse of a Secret although the CRD's schema
//! admits it (pure). Found here, it is `InvalidSpec` naming the field, and
//! the API server never sees — nor echoes into a log — the Secret's data.
//!
//! The rules are Kubernetes' own Secret validation (`ValidateSecret` and
//! `IsConfigMapKey`, `IsQualifiedName`, `IsValidLabelValue` in
//! k8s.io/apimachinery's validation package).

use std::collections::BTreeMap;

use crate::api::{SecretType, SecretValue, SyncError};

/// Checks the data keys, the type's required keys, the labels and the
/// annotations of the Secret about to be written.
pub fn check(
    secret_type: Option<SecretType>,
    data: &BTreeMap<String, SecretValue>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<(), SyncError> {
    for key in data.keys() {
        data_key(key)?;
    }
    if let Some(secret_type) = secret_type {
        required_keys(secret_type, data)?;
    }
    for (key, value) in labels {
        qualified_name("target.labels", key)?;
        label_value(key, value)?;
    }
    for key in annotations.keys() {
        qualified_name("target.annotations", key)?;
    }
    Ok(())
}

fn invalid(detail: String) -> SyncError {
    SyncError::InvalidSpec { detail }
}

/// `IsConfigMapKey`: `[-._a-zA-Z0-9]+`, at most 253, not `.`, `..` nor
/// starting with `..`.
fn data_key(key: &str) -> Result<(), SyncError> {
    let valid_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if key.is_empty() || key.len() > 253 || !valid_chars {
        return Err(invalid(format!(
            "Secret key {key:?} is not a valid key ([-._a-zA-Z0-9]+, at most 253 characters)"
        )));
    }
    if key == "." || key.starts_with("..") {
        return Err(invalid(format!(
            "Secret key {key:?} is refused by the API server: a key may not be '.' nor start with '..'"
        )));
    }
    Ok(())
}

/// The keys `ValidateSecret` requires of each type.
fn required_keys(
    secret_type: SecretType,
    data: &BTreeMap<String, SecretValue>,
) -> Result<(), SyncError> {
    let type_ = secret_type.as_str();
    let missing = |keys: &[&str]| {
        invalid(format!(
            "target.type {type_} needs the key{} {} in the Secret",
            if keys.len() > 1 { "s" } else { "" },
            keys.join(" and ")
        ))
    };
    match secret_type {
        SecretType::Opaque => Ok(()),
        SecretType::BasicAuth
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            Err(invalid(format!(
                "target.type {type_} needs the key username or password in the Secret"
            )))
        }
        SecretType::BasicAuth => Ok(()),
        SecretType::SshAuth if data.get("ssh-privatekey").is_none_or(SecretValue::is_empty) => {
            Err(missing(&["ssh-privatekey"]))
        }
        SecretType::SshAuth => Ok(()),
        SecretType::Tls => {
            let absent: Vec<&str> = ["tls.crt", "tls.key"]
                .into_iter()
                .filter(|k| !data.contains_key(*k))
                .collect();
            if absent.is_empty() {
                Ok(())
            } else {
                Err(missing(&absent))
            }
        }
        SecretType::DockerConfigJson => match data.get(".dockerconfigjson") {
            None => Err(missing(&[".dockerconfigjson"])),
            // Never the parser's message: it quotes the text it stopped at.
            Some(value) if serde_json::from_slice::<serde_json::Value>(value.expose()).is_err() => {
                Err(invalid(format!(
                    "target.type {type_}: the key .dockerconfigjson is not JSON"
                )))
            }
            Some(_) => Ok(()),
        },
    }
}

/// `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name
/// of at most 63 characters, alphanumeric at both ends, `-_.` inside.
fn qualified_name(field: &str, key: &str) -> Result<(), SyncError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    if prefix_ok && !name.is_empty() && name.len() <= 63 && name_chars(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field}: {key:?} is not a valid key (an optional DNS prefix and '/', then at most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends)"
        )))
    }
}

/// `IsValidLabelValue`: empty, or a name of at most 63 characters.
fn label_value(key: &str, value: &str) -> Result<(), SyncError> {
    if value.is_empty() || (value.len() <= 63 && name_chars(value)) {
        Ok(())
    } else {
        Err(invalid(format!(
            "target.labels: the value of {key:?} is not a valid label value (at most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends)"
        )))
    }
}

fn name_chars(text: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(text.chars().next())
        && alnum(text.chars().last())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;

    fn data(keys: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        keys.iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v)))
            .collect()
    }

    fn refused(result: Result<(), SyncError>) -> String {
        match result {
            Err(error) if error.reason() == Reason::InvalidSpec => error.message(),
            other => format!("not refused: {other:?}"),
        }
    }

    #[test]
    fn dot_and_dot_dot_keys_are_refused() {
        for key in [".", "..", "..data"] {
            let message = refused(check(
                None,
                &data(&[(key, "v")]),
                &BTreeMap::new(),
                &BTreeMap::new(),
            ));
            assert!(message.contains("may not be '.'"), "{key}: {message}");
        }
        assert!(
            check(
                None,
                &data(&[(".env", "v")]),
                &BTreeMap::new(),
                &BTreeMap::new()
            )
            .is_ok()
        );
    }

    #[test]
    fn each_type_needs_its_keys() {
        let none = BTreeMap::new();
        let tls = refused(check(
            Some(SecretType::Tls),
            &data(&[("tls.crt", "c")]),
            &none,
            &none,
        ));
        assert!(tls.contains("tls.key"), "{tls}");
        assert!(
            check(
                Some(SecretType::Tls),
                &data(&[("tls.crt", "c"), ("tls.key", "k")]),
                &none,
                &none
            )
            .is_ok()
        );
        let basic = refused(check(
            Some(SecretType::BasicAuth),
            &data(&[("token", "t")]),
            &none,
            &none,
        ));
        assert!(basic.contains("username or password"), "{basic}");
        let ssh = refused(check(
            Some(SecretType::SshAuth),
            &data(&[("ssh-privatekey", "")]),
            &none,
            &none,
        ));
        assert!(ssh.contains("ssh-privatekey"), "{ssh}");
    }

    #[test]
    fn a_dockerconfigjson_that_is_not_json_is_refused_without_quoting_it() {
        let none = BTreeMap::new();
        let value = data(&[(".dockerconfigjson", "{\"auths\": canary-s3cr3t")]);
        let message = refused(check(
            Some(SecretType::DockerConfigJson),
            &value,
            &none,
            &none,
        ));
        assert!(message.contains("not JSON"), "{message}");
        assert!(!message.contains("canary"), "{message}");
    }

    #[test]
    fn labels_and_annotations_must_be_valid_kubernetes_keys() {
        let no_data = BTreeMap::new();
        let none: BTreeMap<String, String> = BTreeMap::new();
        let ok = BTreeMap::from([("team.example.com/owner".to_owned(), "payments".to_owned())]);
        assert!(check(None, &no_data, &ok, &ok).is_ok());
        let bad_key = BTreeMap::from([("-bad".to_owned(), "x".to_owned())]);
        assert!(refused(check(None, &no_data, &bad_key, &none)).contains("target.labels"));
        assert!(refused(check(None, &no_data, &none, &bad_key)).contains("target.annotations"));
        let bad_value = BTreeMap::from([("owner".to_owned(), "a b".to_owned())]);
        assert!(refused(check(None, &no_data, &bad_value, &none)).contains("label value"));
        // Annotation values may be anything.
        assert!(check(None, &no_data, &none, &bad_value).is_ok());
    }
}
