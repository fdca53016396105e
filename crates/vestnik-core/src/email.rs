//! E-mail addresses, normalised once so that one address maps to one account.
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error(
        "expected an e-mail address like name@example.org, got {0} characters without a valid form"
    )]
    Malformed(usize),
    #[error("expected an e-mail address of at most 254 characters, got {0}")]
    TooLong(usize),
}

/// A normalised address: trimmed and lower-cased (domain and local part; almost
/// every provider treats the local part case-insensitively and users expect it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim().to_lowercase();
        if s.len() > 254 {
            return Err(EmailError::TooLong(s.len()));
        }
        let bad = || EmailError::Malformed(s.chars().count());
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let ok_chars = |p: &str| {
            p.chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[]\\,;:\"@".contains(c))
        };
        if local.is_empty()
            || local.len() > 64
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !ok_chars(local)
            || !ok_chars(domain)
        {
            return Err(bad());
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.ORG ").map(|e| e.0),
            Ok("alice@example.org".into())
        );
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@org",
            "a b@example.org",
            "alice@@example.org",
            "alice@example..org",
            "<a>@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(matches!(
            Email::parse(&format!("{}@example.org", "a".repeat(250))),
            Err(EmailError::TooLong(_))
        ));
    }
}
