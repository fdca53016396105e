//! E-mail addresses, normalised once so that one address maps to one account.
use std::fmt;

/// Why a string is not an acceptable e-mail address; carries its length in characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    /// Not of the form `local@domain.tld` (or contains whitespace/control characters).
    #[error(
        "expected an e-mail address like name@example.org, got {0} characters without a valid form"
    )]
    Malformed(usize),
    /// Longer than [`crate::limits::EMAIL_MAX_CHARS`] (254, the SMTP limit).
    #[error("expected an e-mail address of at most 254 characters, got {0}")]
    TooLong(usize),
}

/// A normalised address: trimmed and lower-cased (domain and local part; almost
/// every provider treats the local part case-insensitively and users expect it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Dot-separated atoms, `@`, and a domain of at least two labels; no
    /// whitespace or control characters anywhere (so nothing is trimmed: a
    /// client trims what its user typed). Exactly the `email` pattern of the
    /// OpenAPI document (`vestnik_proto::schema::email`).
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let n = raw.chars().count();
        if n > crate::limits::EMAIL_MAX_CHARS {
            return Err(EmailError::TooLong(n));
        }
        let bad = || EmailError::Malformed(n);
        let (local, domain) = raw.split_once('@').ok_or_else(bad)?;
        let atom = |a: &str| {
            !a.is_empty()
                && a.chars().all(|c| {
                    !c.is_control() && !c.is_whitespace() && !"<>()[]\\,;:\"@.".contains(c)
                })
        };
        if !local.split('.').all(atom) || !domain.contains('.') || !domain.split('.').all(atom) {
            return Err(bad());
        }
        Ok(Self(raw.to_lowercase()))
    }

    /// The normalised (lower-cased) address.
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
    fn addresses_are_lowercased_and_never_trimmed() {
        assert_eq!(
            Email::parse("Alice@Example.ORG").map(|e| e.0),
            Ok("alice@example.org".into())
        );
        assert!(Email::parse(" alice@example.org").is_err());
        assert!(Email::parse("alice@example.org\n").is_err());
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
