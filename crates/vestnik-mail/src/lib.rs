//! Outgoing mail (sign-up and login codes) behind one small trait, so the
//! server can switch between a file drop for development, an SMTP relay and
//! the MailerSend HTTP API by configuration alone.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

use std::fmt;

use lettre::message::{header::ContentType, Mailbox};
use lettre::{Address, Message};

mod file;
mod mailersend;
mod smtp;

pub use file::FileMailer;
pub use mailersend::MailerSendMailer;
pub use smtp::SmtpMailer;

/// A plain-text message to one recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// A bare address such as `alice@example.org`, without a display name.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body; it holds one-time codes, so `Debug` prints only its length.
    pub text: String,
}

// The body carries one-time codes; a derived Debug would leak them into logs.
impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .finish()
    }
}

/// Why a mail could not be sent or a mailer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Writing the `.eml` file failed.
    #[error("mail i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The SMTP relay refused the mail, failed, or timed out.
    #[error("smtp delivery failed: {0}")]
    Smtp(String),
    /// The MailerSend API answered with a non-success status.
    #[error("mail api answered HTTP {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The response body, which names the API's complaint.
        body: String,
    },
    /// The request to the MailerSend API failed before an answer (network, TLS).
    #[error("mail api request failed: {0}")]
    Request(String),
    /// The recipient, sender or body does not make a valid message.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The sender, URL or key in the configuration is unusable; found when the mailer is built.
    #[error("invalid mail configuration: {0}")]
    Config(String),
}

/// A way to deliver mail; the server picks one from `Config::mail` at start.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one mail; `Ok` means the relay or API accepted it, not that it arrived.
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
    /// A short stable name for logs and metrics, e.g. `"smtp"`.
    fn kind(&self) -> &'static str;
}

/// Splits a configured sender such as `Vestnik <noreply@example.org>` into its
/// display name and address; a bare address has no name. Surrounding quotes
/// around the name are dropped, and an empty name counts as none.
pub fn parse_from(from: &str) -> (Option<String>, String) {
    let from = from.trim();
    if let (Some(open), true) = (from.rfind('<'), from.ends_with('>')) {
        let address = from[open + 1..from.len() - 1].trim().to_owned();
        let name = from[..open].trim();
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(name)
            .trim();
        let name = (!name.is_empty()).then(|| name.to_owned());
        return (name, address);
    }
    (None, from.to_owned())
}

/// Validates the sender once at start-up so a typo fails the boot, not the
/// first sign-up.
/// Whether mail can be addressed to `address` at all: the address rules of
/// the mail libraries (RFC 5322 atoms, IDNA domains) are stricter than the
/// form the API checks, so registration asks before it promises a mail.
pub fn is_deliverable(address: &str) -> bool {
    address.parse::<Address>().is_ok()
}

pub(crate) fn sender_mailbox(from: &str) -> Result<Mailbox, MailError> {
    let (name, address) = parse_from(from);
    let address: Address = address
        .parse()
        .map_err(|e| MailError::Config(format!("sender address {address:?}: {e}")))?;
    Ok(Mailbox::new(name, address))
}

pub(crate) fn build_message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Address = mail
        .to
        .parse()
        .map_err(|e| MailError::Build(format!("recipient {:?}: {e}", mail.to)))?;
    // lettre adds no Message-ID by default, and its own would expose the
    // server's hostname; the sender's domain keeps the ID globally unique
    // without that leak.
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain());
    Message::builder()
        .message_id(Some(message_id))
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_from_name_and_address() {
        assert_eq!(
            parse_from("Vestnik <noreply@vestnik.example>"),
            (
                Some("Vestnik".to_owned()),
                "noreply@vestnik.example".to_owned()
            )
        );
    }

    #[test]
    fn parse_from_bare_address() {
        assert_eq!(
            parse_from("noreply@vestnik.example"),
            (None, "noreply@vestnik.example".to_owned())
        );
        assert_eq!(
            parse_from("  noreply@vestnik.example \n"),
            (None, "noreply@vestnik.example".to_owned())
        );
    }

    #[test]
    fn parse_from_quoted_multiword_name() {
        assert_eq!(
            parse_from("\"Vestnik Team\" <team@vestnik.example>"),
            (
                Some("Vestnik Team".to_owned()),
                "team@vestnik.example".to_owned()
            )
        );
        assert_eq!(
            parse_from("Vestnik Team<team@vestnik.example>"),
            (
                Some("Vestnik Team".to_owned()),
                "team@vestnik.example".to_owned()
            )
        );
    }

    #[test]
    fn parse_from_angle_address_without_name() {
        assert_eq!(
            parse_from("<team@vestnik.example>"),
            (None, "team@vestnik.example".to_owned())
        );
        assert_eq!(
            parse_from("\"\" <team@vestnik.example>"),
            (None, "team@vestnik.example".to_owned())
        );
    }

    #[test]
    fn sender_mailbox_rejects_garbage() {
        assert!(matches!(
            sender_mailbox("Vestnik <not an address>"),
            Err(MailError::Config(_))
        ));
        let mb = sender_mailbox("Vestnik <noreply@vestnik.example>").expect("valid sender");
        assert_eq!(mb.name.as_deref(), Some("Vestnik"));
        assert_eq!(mb.email.to_string(), "noreply@vestnik.example");
    }

    #[test]
    fn mail_debug_hides_body() {
        let mail = Mail {
            to: "a@b.example".into(),
            subject: "Your code".into(),
            text: "code 123456".into(),
        };
        let dbg = format!("{mail:?}");
        assert!(!dbg.contains("123456"), "{dbg}");
        assert!(dbg.contains("Your code"));
    }

    #[test]
    fn build_message_rejects_bad_recipient() {
        let from = sender_mailbox("noreply@vestnik.example").expect("valid sender");
        let mail = Mail {
            to: "Alice <alice@example.org>".into(),
            subject: "s".into(),
            text: "t".into(),
        };
        assert!(matches!(
            build_message(&from, &mail),
            Err(MailError::Build(_))
        ));
    }
}
