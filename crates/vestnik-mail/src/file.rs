use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::message::Mailbox;
use tokio::io::AsyncWriteExt;

use crate::{build_message, sender_mailbox, Mail, MailError, Mailer};

/// Drops every mail as an `.eml` file, for development and tests where no
/// relay exists but someone still has to read the codes.
#[derive(Debug)]
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// Writes mails under `dir` (created if missing) as sender `from` (`Name <addr>` or a bare address).
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, MailError> {
        let from = sender_mailbox(from)?;
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, from })
    }

    /// The directory the `.eml` files are written to (tests read the codes from there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let bytes = build_message(&self.from, &mail)?.formatted();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{unix_ms}-{}.eml", uuid::Uuid::new_v4());
        let path = self.dir.join(&name);
        // Hidden and without the .eml suffix, so a watcher globbing *.eml
        // never picks up a half-written file; same directory so the rename
        // stays on one filesystem and is atomic.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        if let Err(e) = write_then_rename(&tmp, &path, &bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            path = %path.display(),
            "mail written to file"
        );
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

async fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = tokio::fs::File::create(tmp).await?;
    f.write_all(bytes).await?;
    // Without this a crash right after the rename can leave an empty file
    // under the final name.
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(tmp, path).await
}
