//! A secret value: the only type that holds what Parameter Store returned.
//!
//! `Debug` and `Display` print a placeholder, so a value cannot reach a log
//! line, an error, a status, an Event or a panic message by formatting.

use std::fmt;

/// A parameter value, redacted whenever it is formatted. Bytes, not text:
/// a value decoded from base64 may be binary.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The value itself, for building the Secret's data and nothing else.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let value = SecretValue::new("CANARY-8f2b");
        assert!(!format!("{value:?}").contains("CANARY"));
        assert!(!format!("{value}").contains("CANARY"));
        assert!(!format!("{:?}", Some(vec![value.clone()])).contains("CANARY"));
        assert_eq!(value.expose(), b"CANARY-8f2b");
    }
}
