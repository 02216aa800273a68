//! ESO's templates (Go `text/template` with Sprig, engine v2) as templates
//! here: `{{ .password | urlquery }}` → `{{ password | urlquery }}`. Only
//! actions that mean the same in both convert: a key (`.key` or `index .
//! "key"`) piped through functions with an equal filter here. Anything else
//! (other functions, conditions, loops, whitespace trimming, comments) is
//! refused, by name.

/// Go template functions with a filter here that gives the same bytes.
const FUNCTIONS: [(&str, &str); 4] = [
    // Go's builtin: url.QueryEscape (space as `+`).
    ("urlquery", "urlquery"),
    // Sprig: base64.StdEncoding, and its decoding.
    ("b64enc", "b64enc"),
    ("b64dec", "b64dec"),
    // Sprig: strings.TrimSpace.
    ("trim", "trim"),
];

/// `template` (one value of ESO's `template.data`) as a template here.
pub fn convert(template: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "a {{ is never closed".to_owned())?;
        out.push_str(&action(&after[..close])?);
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("a }} closes nothing".to_owned());
    }
    out.push_str(rest);
    Ok(out)
}

/// One `{{ ... }}` action's inside.
fn action(inside: &str) -> Result<String, String> {
    if inside.starts_with('-') || inside.ends_with('-') {
        return Err(format!(
            "{{{{{inside}}}}} trims whitespace ({{{{- or -}}}}), which templates here do not"
        ));
    }
    if inside.trim_start().starts_with("/*") {
        return Err("template comments ({{/* */}}) have no equivalent".to_owned());
    }
    let mut stages = inside.split('|').map(str::trim);
    let first = stages.next().unwrap_or_default();
    let key = key_of(first).ok_or_else(|| {
        format!("{{{{{inside}}}}}: only a key (.key or index . \"key\") converts, not {first:?}")
    })?;
    let mut converted = key.to_owned();
    for stage in stages {
        let filter = FUNCTIONS
            .iter()
            .find(|(go, _)| *go == stage)
            .map(|(_, ours)| *ours)
            .ok_or_else(|| format!("template function {stage:?} has no equivalent"))?;
        converted.push_str(" | ");
        converted.push_str(filter);
    }
    Ok(format!("{{{{ {converted} }}}}"))
}

/// The key that `.key` or `index . "key"` names, when it is a Secret key.
fn key_of(term: &str) -> Option<&str> {
    let key = match term.strip_prefix('.') {
        Some(field) => field,
        None => {
            let quoted = term.strip_prefix("index")?.trim_start().strip_prefix('.')?;
            quoted.trim().strip_prefix('"')?.strip_suffix('"')?
        }
    };
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    valid.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_equal_functions_convert() {
        for (eso, ours) in [
            ("{{ .password }}", "{{ password }}"),
            (
                "postgres://app:{{ .password | urlquery }}@db:5432/app",
                "postgres://app:{{ password | urlquery }}@db:5432/app",
            ),
            (
                "{{ index . \"db-pass\" | b64enc }}",
                "{{ db-pass | b64enc }}",
            ),
            ("{{.token|trim|b64dec}}", "{{ token | trim | b64dec }}"),
            ("no placeholder", "no placeholder"),
            ("{ \"a\": \"{{ .a }}\" }", "{ \"a\": \"{{ a }}\" }"),
        ] {
            assert_eq!(convert(eso).as_deref(), Ok(ours), "{eso}");
        }
    }

    #[test]
    fn what_has_no_equivalent_is_refused_by_name() {
        for (eso, why) in [
            ("{{ .password | upper }}", "\"upper\""),
            ("{{ .password | toJson }}", "\"toJson\""),
            ("{{ if .a }}x{{ end }}", "only a key"),
            ("{{ range $k, $v := . }}{{ end }}", "only a key"),
            ("{{- .a }}", "trims whitespace"),
            ("{{ .a -}}", "trims whitespace"),
            ("{{/* note */}}", "comments"),
            ("{{ .a ", "never closed"),
            ("a }}", "closes nothing"),
            ("{{ printf \"%s\" .a }}", "only a key"),
            ("{{ env \"HOME\" }}", "only a key"),
        ] {
            let refused = convert(eso).unwrap_err();
            assert!(refused.contains(why), "{eso}: {refused}");
        }
    }
}
