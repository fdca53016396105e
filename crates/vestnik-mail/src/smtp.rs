use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;
use reqwest::Url;

use crate::{build_message, sender_mailbox, Mail, MailError, Mailer};

/// A login code that arrives later than this is useless to the waiting user,
/// and a hung relay must not pin request tasks.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers through an SMTP server given as
/// `smtp://[user:pass@]host[:port]` (plain, for local relays only),
/// `smtps://…` (implicit TLS, default port 465) or
/// `smtp+starttls://…` (STARTTLS required, default port 587).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The URL without credentials, safe to print.
    endpoint: String,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("endpoint", &self.endpoint)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Relays through `url` (`smtp://`, `smtps://` or `smtp+starttls://`, credentials in the URL) as sender `from`.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let from = sender_mailbox(from)?;
        // Never echo the URL itself in errors: it may hold the password.
        let url = Url::parse(url).map_err(|e| MailError::Config(format!("smtp url: {e}")))?;
        // lettre's own `?tls=` switch is not supported here; ignoring it
        // silently would send credentials in clear text.
        if url.query().is_some() || url.fragment().is_some() {
            return Err(MailError::Config(
                "smtp url: no query or fragment allowed; choose TLS by scheme \
                 (smtp, smtps, smtp+starttls)"
                    .into(),
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| MailError::Config("smtp url: missing host".into()))?;
        // IPv6 literals come back bracketed; TLS and DNS want them bare.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let smtp_err = |e: lettre::transport::smtp::Error| MailError::Config(format!("smtp: {e}"));
        let (builder, default_port) = match url.scheme() {
            "smtp" => (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                25,
            ),
            "smtps" => (
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(smtp_err)?,
                465,
            ),
            "smtp+starttls" => (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(smtp_err)?,
                587,
            ),
            other => {
                return Err(MailError::Config(format!(
                    "smtp url: unknown scheme {other:?}, expected smtp, smtps or smtp+starttls"
                )))
            }
        };
        let port = url.port().unwrap_or(default_port);
        let mut builder = builder.port(port).timeout(Some(TIMEOUT));
        if !url.username().is_empty() {
            let decode = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| MailError::Config("smtp url: credentials are not UTF-8".into()))
            };
            let user = decode(url.username())?;
            let pass = decode(url.password().unwrap_or(""))?;
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let endpoint = format!(
            "{}://{}:{port}",
            url.scheme(),
            url.host_str().unwrap_or(host)
        );
        Ok(Self {
            transport: builder.build(),
            from,
            endpoint,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build_message(&self.from, &mail)?;
        // lettre's timeout is per network step; this bounds the whole
        // conversation so a server trickling replies cannot stall us either.
        match tokio::time::timeout(TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(response)) => {
                tracing::debug!(
                    to = %mail.to,
                    subject = %mail.subject,
                    endpoint = %self.endpoint,
                    code = %response.code(),
                    "mail accepted by smtp server"
                );
                Ok(())
            }
            Ok(Err(e)) => Err(MailError::Smtp(e.to_string())),
            Err(_) => Err(MailError::Smtp(format!(
                "no answer from {} within {}s",
                self.endpoint,
                TIMEOUT.as_secs()
            ))),
        }
    }

    fn kind(&self) -> &'static str {
        "smtp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "Vestnik <noreply@vestnik.example>";

    #[test]
    fn accepts_the_three_schemes() {
        for (url, endpoint) in [
            ("smtp://127.0.0.1:2525", "smtp://127.0.0.1:2525"),
            ("smtp://relay.example", "smtp://relay.example:25"),
            ("smtps://u:p@mail.example", "smtps://mail.example:465"),
            (
                "smtp+starttls://u%40x:p%3Aw@mail.example:2587",
                "smtp+starttls://mail.example:2587",
            ),
        ] {
            let m = SmtpMailer::new(url, FROM).expect(url);
            assert_eq!(m.endpoint, endpoint);
            assert_eq!(m.kind(), "smtp");
        }
    }

    #[test]
    fn rejects_bad_urls_without_leaking_secrets() {
        for url in [
            "http://mail.example",
            "smtp://",
            "smtp://mail.example?tls=required",
            "not a url secret",
        ] {
            match SmtpMailer::new(url, FROM) {
                Err(MailError::Config(msg)) => assert!(!msg.contains("secret"), "{msg}"),
                other => panic!("{url}: expected Config error, got {other:?}"),
            }
        }
        match SmtpMailer::new("ftp://user:secret@mail.example", FROM) {
            Err(MailError::Config(msg)) => assert!(!msg.contains("secret"), "{msg}"),
            other => panic!("expected Config error, got {other:?}"),
        }
    }

    #[test]
    fn debug_omits_password() {
        let m = SmtpMailer::new("smtps://user:hunter2@mail.example", FROM).expect("valid");
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
