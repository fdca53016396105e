//! clamd's INSTREAM command over TCP: the file goes in length-prefixed
//! chunks, clamd answers `stream: OK` or `stream: <signature> FOUND`.
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::blob::ByteStream;
use vestnik_core::limits::CLAMD_MAX_REPLY as MAX_REPLY;
use vestnik_core::limits::CLAMD_TIMEOUT as TIMEOUT;

/// What clamd said about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// No signature matched.
    Clean,
    /// A signature matched; carries its name.
    Infected(String),
}

/// A client of a clamd daemon over TCP, for scanning public-channel media (which the server can read).
#[derive(Debug, Clone)]
pub struct ClamdScanner {
    addr: String,
}

impl ClamdScanner {
    /// `addr` is clamd's `TCPAddr:TCPSocket`, e.g. 127.0.0.1:3310.
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
        }
    }

    /// Streams the object to clamd; `Err` (with why) if clamd is unreachable, misbehaves or exceeds `CLAMD_TIMEOUT`.
    pub async fn scan(&self, stream: ByteStream) -> Result<ScanVerdict, String> {
        tokio::time::timeout(TIMEOUT, self.scan_inner(stream))
            .await
            .map_err(|_| "clamd timed out".to_owned())?
    }

    async fn scan_inner(&self, mut stream: ByteStream) -> Result<ScanVerdict, String> {
        let mut conn = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connecting to clamd: {e}"))?;
        let io = |e: std::io::Error| format!("talking to clamd: {e}");
        conn.write_all(b"zINSTREAM\0").await.map_err(io)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            for part in chunk.chunks(64 * 1024) {
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                conn.write_all(&len.to_be_bytes()).await.map_err(io)?;
                conn.write_all(part).await.map_err(io)?;
            }
        }
        conn.write_all(&0u32.to_be_bytes()).await.map_err(io)?;
        let mut reply = Vec::new();
        (&mut conn)
            .take(MAX_REPLY as u64)
            .read_to_end(&mut reply)
            .await
            .map_err(io)?;
        parse_reply(&reply)
    }
}

fn parse_reply(reply: &[u8]) -> Result<ScanVerdict, String> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n']).trim();
    let body = text.strip_prefix("stream:").map(str::trim).unwrap_or(text);
    if body == "OK" {
        Ok(ScanVerdict::Clean)
    } else if let Some(name) = body.strip_suffix("FOUND") {
        Ok(ScanVerdict::Infected(name.trim().to_owned()))
    } else {
        Err(format!(
            "clamd answered {:?}",
            body.chars().take(200).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_replies_are_read_as_clamd_documents_them() {
        assert_eq!(parse_reply(b"stream: OK\0"), Ok(ScanVerdict::Clean));
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature FOUND\0"),
            Ok(ScanVerdict::Infected("Eicar-Test-Signature".into()))
        );
        assert!(parse_reply(b"INSTREAM size limit exceeded. ERROR\0").is_err());
    }
}
