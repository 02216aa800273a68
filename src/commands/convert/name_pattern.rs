//! ESO's `find.name.regexp` (Go RE2, matched anywhere in the full name)
//! as a `path.include` glob, for the regexps a glob can say exactly:
//! literal text, `.*` (any run: `**`), `[^/]*` (any run within a segment:
//! `*`), with or without the anchors `^` and `$`.

/// The glob that matches exactly the names `regexp` finds.
pub fn include_glob(regexp: &str) -> Result<String, String> {
    let no_equivalent = |what: &str| {
        format!(
            "find.name.regexp {regexp:?}: {what} has no glob equivalent (literal text, .*, [^/]*, ^ and $ convert)"
        )
    };
    let (anchored_start, body) = match regexp.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, regexp),
    };
    let (anchored_end, body) = match body.strip_suffix('$').filter(|b| !b.ends_with('\\')) {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let mut glob = String::new();
    if !anchored_start {
        glob.push_str("**");
    }
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                glob.push_str("**");
            }
            '[' => {
                let class: String = chars.by_ref().take_while(|c| *c != ']').collect();
                if class != "^/" || chars.next() != Some('*') {
                    return Err(no_equivalent(&format!("the class [{class}]")));
                }
                glob.push('*');
            }
            '\\' => match chars.next() {
                Some(escaped @ ('.' | '/' | '-' | '_')) => glob.push(escaped),
                other => {
                    return Err(no_equivalent(&format!(
                        "the escape \\{}",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            },
            c if c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_') => glob.push(c),
            '.' => return Err(no_equivalent("a lone . (any one character, / included)")),
            other => return Err(no_equivalent(&format!("{other:?}"))),
        }
    }
    if !anchored_end && !glob.ends_with("**") {
        glob.push_str("**");
    }
    Ok(glob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::select::matches;

    #[test]
    fn regexps_a_glob_can_say_convert_and_match_the_same_names() {
        let names = [
            "/prd/app/db-pass",
            "/prd/app/db-user",
            "/prd/app/sub/db-pass",
            "/prd/other/db-pass",
            "/stg/app/db-pass",
        ];
        for (regexp, finds) in [
            ("^/prd/app/.*", vec![0, 1, 2]),
            ("^/prd/app/[^/]*$", vec![0, 1]),
            ("db-pass$", vec![0, 2, 3, 4]),
            ("^/prd/app/db-pass$", vec![0]),
            ("/app/", vec![0, 1, 2, 4]),
            ("^/prd/.*/db-pass$", vec![0, 2, 3]),
            (".*", vec![0, 1, 2, 3, 4]),
        ] {
            let glob = include_glob(regexp).unwrap();
            let found: Vec<usize> = (0..names.len())
                .filter(|&i| matches(&glob, names[i]))
                .collect();
            assert_eq!(found, finds, "{regexp} as {glob}");
        }
    }

    #[test]
    fn regexps_a_glob_cannot_say_are_refused() {
        for regexp in [
            "^/prd/(a|b)/x",
            "^/prd/a+",
            "^/prd/a.b",
            "[a-z]*",
            "\\d",
            "x?",
        ] {
            assert!(include_glob(regexp).is_err(), "{regexp}");
        }
    }
}
