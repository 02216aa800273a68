//! Which parameters of a path listing the spec picks (pure): `include` and
//! `exclude` globs on the full parameter name, applied to the listing
//! itself — no call to AWS is made for a name that is left out.
//!
//! `*` matches any run of characters within one path segment, `**` any run
//! across segments, `?` one character other than `/`; everything else
//! matches itself.

/// The patterns of a path import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        Self {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        }
    }

    /// Whether parameter `name` is picked: it matches an `include` pattern
    /// (or there is none) and no `exclude` pattern.
    /// Whether every name is picked: no include or exclude.
    pub fn picks_all(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn picks(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, name)))
            && !self.exclude.iter().any(|p| matches(p, name))
    }
}

/// Whether `name` matches glob `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    matches_from(pattern.as_bytes(), name.as_bytes())
}

fn matches_from(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=name.len()).any(|i| matches_from(rest, &name[i..])),
        [b'*', rest @ ..] => {
            let segment = name.iter().position(|&b| b == b'/').unwrap_or(name.len());
            (0..=segment).any(|i| matches_from(rest, &name[i..]))
        }
        [b'?', rest @ ..] => {
            matches!(name, [c, tail @ ..] if *c != b'/' && matches_from(rest, tail))
        }
        [c, rest @ ..] => matches!(name, [n, tail @ ..] if n == c && matches_from(rest, tail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_in_its_segment_and_two_cross_them() {
        assert!(matches("/prd/app/db-*", "/prd/app/db-pass"));
        assert!(!matches("/prd/app/db-*", "/prd/app/db-x/pass"));
        assert!(matches("/prd/app/**", "/prd/app/db-x/pass"));
        assert!(matches("/prd/**/pass", "/prd/app/db/pass"));
        assert!(matches("/prd/*/pass", "/prd/app/pass"));
        assert!(!matches("/prd/*/pass", "/prd/app/db/pass"));
        assert!(matches("/prd/app/key?", "/prd/app/key1"));
        assert!(!matches("/prd/app/key?", "/prd/app/key12"));
        assert!(!matches("/prd/app?x", "/prd/app/x"));
        assert!(matches("/prd/app/exact", "/prd/app/exact"));
        assert!(!matches("/prd/app/exact", "/prd/app/exactly"));
    }

    #[test]
    fn include_picks_and_exclude_wins() {
        let all = Selection::default();
        assert!(all.picks("/prd/app/anything"));
        let some = Selection::new(
            &["/prd/app/db-*".to_owned(), "/prd/app/api-key".to_owned()],
            &["/prd/app/db-legacy*".to_owned()],
        );
        assert!(some.picks("/prd/app/db-pass"));
        assert!(some.picks("/prd/app/api-key"));
        assert!(!some.picks("/prd/app/db-legacy-pass"));
        assert!(!some.picks("/prd/app/other"));
        let but = Selection::new(&[], &["**/internal-*".to_owned()]);
        assert!(but.picks("/prd/app/pass"));
        assert!(!but.picks("/prd/app/x/internal-token"));
    }
}
