//! Template keys (pure): `{{ key }}` and `{{ key | filter | ... }}`
//! replaced by the value of `key`, passed through the filters.
//!
//! Rendering is bounded: it stops as soon as the Secret would pass its size
//! limit, whatever a template repeats. Every error names the template, the
//! placeholder or the filter — never a value or a fragment of one.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::api::{Filter, SecretValue, SyncError};

/// The template keys of Secret `secret`, each rendered with `values`.
pub fn render_all(
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
        let bytes = render(key, text, values, &mut budget)?;
        rendered.insert(key.clone(), SecretValue::new(bytes));
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
    template: &str,
    text: &str,
    values: &BTreeMap<String, SecretValue>,
    budget: &mut Budget<'_>,
) -> Result<Vec<u8>, SyncError> {
    let invalid = |detail: String| SyncError::InvalidSpec {
        detail: format!("template {template:?} {detail}"),
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        budget.take(start)?;
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| invalid("has an unclosed {{".to_owned()))?;
        let mut pipeline = after[..end].split('|').map(str::trim);
        let name = pipeline.next().unwrap_or_default();
        let value = values
            .get(name)
            .ok_or_else(|| invalid(format!("refers to unknown key {name:?}")))?;
        let mut bytes = std::borrow::Cow::Borrowed(value.expose());
        for filter in pipeline {
            let parsed: Filter = filter.parse().map_err(|_| {
                invalid(format!(
                    "uses unknown filter {filter:?} on {name:?}; the filters are {}",
                    Filter::names().collect::<Vec<_>>().join(", ")
                ))
            })?;
            bytes = std::borrow::Cow::Owned(
                filtered(parsed, &bytes)
                    .map_err(|why| invalid(format!("cannot apply {filter} to {name:?}: {why}")))?,
            );
        }
        budget.take(bytes.len())?;
        out.extend_from_slice(&bytes);
        rest = &after[end + 2..];
    }
    budget.take(rest.len())?;
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// `bytes` through `filter`; the error says why without quoting them.
fn filtered(filter: Filter, bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
    Ok(match filter {
        Filter::UrlQuery => percent_encoded(bytes, true),
        Filter::UrlPath => percent_encoded(bytes, false),
        Filter::Json => {
            let text = std::str::from_utf8(bytes).map_err(|_| "the value is not UTF-8 text")?;
            let quoted = serde_json::Value::String(text.to_owned()).to_string();
            quoted.as_bytes()[1..quoted.len() - 1].to_vec()
        }
        Filter::Base64Encode => base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes(),
        Filter::Base64Decode => base64::engine::general_purpose::STANDARD
            .decode(bytes)
            .map_err(|_| "the value is not standard base64")?,
        Filter::Trim => bytes.trim_ascii().to_vec(),
    })
}

/// RFC 3986 percent-encoding of all but the unreserved characters; a
/// space is `+` in a query component (form encoding), `%20` elsewhere.
fn percent_encoded(bytes: &[u8], query: bool) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b),
            b' ' if query => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;

    const LIMIT: usize = 1024 * 1024;

    fn v(text: &str) -> SecretValue {
        SecretValue::new(text)
    }

    fn one(text: &str, values: &[(&str, SecretValue)]) -> Result<Vec<u8>, SyncError> {
        let values = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let templates = BTreeMap::from([("out".to_owned(), text.to_owned())]);
        let rendered = render_all(&templates, &values, "db", LIMIT)?;
        Ok(rendered["out"].expose().to_vec())
    }

    #[test]
    fn a_template_bomb_stops_at_the_secret_limit_without_quoting_the_value() {
        let values = BTreeMap::from([("a".to_owned(), SecretValue::new("x".repeat(4096)))]);
        // ~1.2 GB if rendered whole.
        let templates = BTreeMap::from([("url".to_owned(), "{{a}}".repeat(300_000))]);
        let err = render_all(&templates, &values, "db", LIMIT).unwrap_err();
        assert_eq!(err.reason(), Reason::SecretTooLarge);
        assert!(!err.message().contains("xxxx"), "{}", err.message());
        // Filters that grow a value are bounded the same way.
        let templates = BTreeMap::from([("url".to_owned(), "{{a|b64enc|b64enc}}".repeat(1000))]);
        let err = render_all(&templates, &values, "db", LIMIT).unwrap_err();
        assert_eq!(err.reason(), Reason::SecretTooLarge);
    }

    #[test]
    fn a_template_within_the_limit_renders_whole() {
        let values = BTreeMap::from([("a".to_owned(), SecretValue::new("x".repeat(4096)))]);
        let templates = BTreeMap::from([("url".to_owned(), "{{a}}".repeat(200))]);
        let rendered = render_all(&templates, &values, "db", LIMIT).unwrap();
        assert_eq!(rendered["url"].len(), 4096 * 200);
    }

    #[test]
    fn template_substitutes_keys_with_or_without_spaces() {
        let values = [("password", v("pw")), ("user", v("app"))];
        assert_eq!(
            one("postgres://{{user}}:{{ password }}@db/app", &values).unwrap(),
            b"postgres://app:pw@db/app"
        );
    }

    #[test]
    fn a_password_with_url_delimiters_survives_in_a_database_url() {
        let values = [("password", v("p@ss:w/rd?&= ~"))];
        assert_eq!(
            one("postgres://app:{{ password | urlpath }}@db/app", &values).unwrap(),
            b"postgres://app:p%40ss%3Aw%2Frd%3F%26%3D%20~@db/app"
        );
        assert_eq!(
            one("https://h/?p={{ password|urlquery }}", &values).unwrap(),
            b"https://h/?p=p%40ss%3Aw%2Frd%3F%26%3D+~"
        );
    }

    #[test]
    fn json_escapes_the_inside_of_a_string() {
        let values = [("password", v("a\"b\\c\nd\u{1}é"))];
        let out = one(r#"{"password":"{{ password | json }}"}"#, &values).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"password":"a\"b\\c\nd\u0001é"}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["password"], "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn base64_both_ways_and_trim_chain_left_to_right() {
        let values = [("cert", v("  aGVsbG8=\n")), ("user", v("app"))];
        assert_eq!(
            one("{{ cert | trim | b64dec }}", &values).unwrap(),
            b"hello"
        );
        assert_eq!(one("{{ user | b64enc }}", &values).unwrap(), b"YXBw");
        assert_eq!(one("{{ user|b64enc|b64dec }}", &values).unwrap(), b"app");
        // Decoded bytes need not be text.
        let binary = [("der", v("MIIB/w=="))];
        assert_eq!(
            one("{{ der | b64dec }}", &binary).unwrap(),
            [0x30, 0x82, 0x01, 0xff]
        );
    }

    #[test]
    fn a_filter_that_cannot_apply_names_the_filter_and_key_never_the_value() {
        let values = [("password", v("CANARY-not-base64!"))];
        let err = one("{{ password | b64dec }}", &values).unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidSpec);
        assert!(err.message().contains("b64dec") && err.message().contains("\"password\""));
        assert!(!format!("{err} {err:?}").contains("CANARY"));
        let binary = [("der", SecretValue::new(vec![0xff, 0xfe]))];
        let err = one("{{ der | json }}", &binary).unwrap_err();
        assert!(err.message().contains("not UTF-8"), "{}", err.message());
    }

    #[test]
    fn unknown_placeholders_and_filters_are_invalid_spec() {
        let values = [("password", v("pw"))];
        for text in [
            "{{ nope }}",
            "{{ password | b64encode }}",
            "{{ password | }}",
            "{{ env \"HOME\" }}",
            "{{ password",
        ] {
            let err = one(text, &values).unwrap_err();
            assert_eq!(err.reason(), Reason::InvalidSpec, "{text}");
        }
        let err = one("{{ password | upper }}", &values).unwrap_err();
        assert!(
            err.message().contains("unknown filter \"upper\""),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("urlquery, urlpath"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn what_the_admission_pattern_refuses_the_renderer_refuses() {
        let re = regex_lite::Regex::new(&crate::api::template_pattern()).unwrap();
        let values = [("a", v("x")), ("b", v("y"))];
        for text in [
            "{{ a | env }}",
            "{{ a",
            "{{ }}",
            "{{{ a }}",
            "{{ a | }}",
            "x{{a}}{{",
            "{{a}}",
            "{{ a | trim }} and {{b|urlquery|json}}",
            "{ a }",
            "}}",
        ] {
            assert_eq!(re.is_match(text), one(text, &values).is_ok(), "{text}");
        }
    }
}
