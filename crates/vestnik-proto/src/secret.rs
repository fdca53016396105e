//! Secrets on the wire (passwords, tokens, codes): they travel as plain JSON
//! strings, but `Debug` never prints them, so a request or response that ends
//! up in a log line or a panic message leaks nothing.
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// A secret string. Read it with [`Secret::expose`], where it is used.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself: call this only where it is checked or sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret itself, owned: call this only where it is checked or sent.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl utoipa::PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_secret_prints_no_secret() {
        let s = Secret::new("hunter2-correct-horse");
        let shown = format!("{s:?} {:#?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), "hunter2-correct-horse");
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            "\"hunter2-correct-horse\""
        );
    }
}
