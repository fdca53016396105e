use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::Serialize;

use crate::{parse_from, sender_mailbox, Mail, MailError, Mailer};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies end up in logs; keep them short.
const MAX_ERROR_CHARS: usize = 512;

/// Sends through MailerSend's Email API (`POST /v1/email`), which answers
/// 202 Accepted once the mail is queued.
pub struct MailerSendMailer {
    client: reqwest::Client,
    api_url: Url,
    api_key: String,
    from_email: String,
    from_name: Option<String>,
}

impl fmt::Debug for MailerSendMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailerSendMailer")
            .field("api_url", &self.api_url.as_str())
            .field("from_email", &self.from_email)
            .field("from_name", &self.from_name)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    from: Party<'a>,
    to: [Party<'a>; 1],
    subject: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct Party<'a> {
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl MailerSendMailer {
    /// Sends through the API at `api_url` with bearer token `api_key` as sender `from`.
    pub fn new(api_url: &str, api_key: &str, from: &str) -> Result<Self, MailError> {
        // Checked with lettre's parser so every mailer accepts the same senders.
        sender_mailbox(from)?;
        let (from_name, from_email) = parse_from(from);
        let api_url = Url::parse(api_url)
            .map_err(|e| MailError::Config(format!("mailersend api url {api_url:?}: {e}")))?;
        if !matches!(api_url.scheme(), "https" | "http") {
            return Err(MailError::Config(format!(
                "mailersend api url must be http(s), got {:?}",
                api_url.scheme()
            )));
        }
        // Rejected here rather than on the first send, where reqwest would
        // fail to build the Authorization header.
        if api_key.is_empty() || HeaderValue::from_str(&format!("Bearer {api_key}")).is_err() {
            return Err(MailError::Config(
                "mailersend api key is empty or not a valid header value".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| MailError::Config(format!("http client: {e}")))?;
        Ok(Self {
            client,
            api_url,
            api_key: api_key.to_owned(),
            from_email,
            from_name,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for MailerSendMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let body = serde_json::to_vec(&Request {
            from: Party {
                email: &self.from_email,
                name: self.from_name.as_deref(),
            },
            to: [Party {
                email: &mail.to,
                name: None,
            }],
            subject: &mail.subject,
            text: &mail.text,
        })
        .map_err(|e| MailError::Build(e.to_string()))?;
        let mut response = self
            .client
            .post(self.api_url.clone())
            .bearer_auth(&self.api_key)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Requested-With", "XMLHttpRequest")
            .body(body)
            .send()
            .await
            // without_url: the error text is enough, and the URL is
            // configuration the caller already knows.
            .map_err(|e| MailError::Request(e.without_url().to_string()))?;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            let message_id = response
                .headers()
                .get("x-message-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::debug!(
                to = %mail.to,
                subject = %mail.subject,
                message_id,
                "mail accepted by mailersend"
            );
            return Ok(());
        }
        Err(MailError::Http {
            status: status.as_u16(),
            body: read_error_body(&mut response).await,
        })
    }

    fn kind(&self) -> &'static str {
        "mailersend"
    }
}

/// Reads just enough of the body for the error message, so a misbehaving
/// endpoint cannot make us buffer megabytes.
async fn read_error_body(response: &mut reqwest::Response) -> String {
    // UTF-8 needs at most 4 bytes per char.
    let limit = MAX_ERROR_CHARS * 4;
    let mut buf = Vec::new();
    while buf.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                if buf.is_empty() {
                    return format!("<body unreadable: {}>", e.without_url());
                }
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf)
        .chars()
        .take(MAX_ERROR_CHARS)
        .collect()
}
