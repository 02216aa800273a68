//! The template filters: a closed set, spelled once here.
//!
//! `{{ password | urlpath }}` passes the value of `password` through the
//! filter before it is substituted; filters chain left to right. Each is a
//! pure function of the bytes it is given: no filter reads a file, the
//! environment, the clock or the network, and none can grow a value by
//! more than a small factor (the Secret's size limit bounds the output).

use strum::VariantArray as _;

/// One filter of a template placeholder.
#[derive(
    strum::IntoStaticStr, strum::EnumString, strum::VariantArray, Clone, Copy, Debug, PartialEq, Eq,
)]
pub enum Filter {
    /// Form encoding of a query component, as Go's `url.QueryEscape` and
    /// the `urlquery` of Go templates: unreserved characters (RFC 3986
    /// §2.3) stay, a space becomes `+`, every other byte `%XX`.
    #[strum(serialize = "urlquery")]
    UrlQuery,
    /// Percent-encoding of every byte but the unreserved characters: safe
    /// in a path segment and in a URL's userinfo
    /// (`postgres://app:{{ password | urlpath }}@db/app`).
    #[strum(serialize = "urlpath")]
    UrlPath,
    /// The value escaped as the inside of a JSON string, without the
    /// quotes (`"password": "{{ password | json }}"`).
    #[strum(serialize = "json")]
    Json,
    /// Standard base64 (RFC 4648 §4) with padding.
    #[strum(serialize = "b64enc")]
    Base64Encode,
    /// Standard base64 decoded; the bytes may be binary.
    #[strum(serialize = "b64dec")]
    Base64Decode,
    /// Leading and trailing ASCII whitespace (space, tab, CR, LF, FF) removed.
    #[strum(serialize = "trim")]
    Trim,
}

impl Filter {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Every filter's name, for messages and the admission rule.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::VARIANTS.iter().map(|f| f.name())
    }
}

/// The placeholder grammar as an RE2 expression for the CRD's CEL rule:
/// text in which every `{{` opens `{{ key }}` or `{{ key | filter ... }}`
/// with a known filter. The operator's own parser is the authority; this
/// refuses at `kubectl apply` what it would refuse.
pub fn template_pattern() -> String {
    let filters = Filter::names().collect::<Vec<_>>().join("|");
    let text = r"(?:[^{]|\{[^{]|\{$)*";
    format!(r"^{text}(?:\{{\{{\s*[-._a-zA-Z0-9]+\s*(?:\|\s*(?:{filters})\s*)*\}}\}}{text})*$")
}

/// The CRD's rule on each value of `target.template`: every placeholder
/// well-formed, every filter known. On each value rather than on the map,
/// so that each is matched within its own CEL cost limit.
pub fn template_rule() -> serde_json::Value {
    let filters: Vec<&str> = Filter::names().collect();
    serde_json::json!({
        "rule": format!("self.matches(r'{}')", template_pattern()),
        "message": format!(
            "every {{{{ in a template must open {{{{ key }}}} or {{{{ key | filter }}}} with filters among {}",
            filters.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_parsed_by_their_names_only() {
        for filter in Filter::VARIANTS {
            assert_eq!(filter.name().parse::<Filter>(), Ok(*filter));
        }
        assert!("UrlQuery".parse::<Filter>().is_err());
        assert!("env".parse::<Filter>().is_err());
    }

    #[test]
    fn the_admission_pattern_takes_what_the_parser_takes() {
        let re = regex_lite::Regex::new(&template_pattern()).unwrap();
        for ok in [
            "",
            "plain",
            "postgres://app:{{ password | urlpath }}@db/app",
            "{{a}}{{ b|trim|b64enc }}",
            r#"{"auths":{"r":{"password":"{{ password | json }}"}}}"#,
            "{ x }",
            "ends with {",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for refused in [
            "{{ password | env }}",
            "{{ password",
            "{{ }}",
            "{{ env \"HOME\" }}",
            "{{{ x }}",
            "{{ a | }}",
        ] {
            assert!(!re.is_match(refused), "{refused}");
        }
    }
}
