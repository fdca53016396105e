//! The embedded blob store: objects in a directory, reached through URLs the
//! server signs itself (HMAC-SHA256 over the object key, method, expiry,
//! length and digest) and serves itself, with range requests.
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use futures::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use vestnik_proto::SignedRequest;

use crate::blob::{check_key, ByteStream};
use crate::{BlobError, BlobStore, MediaError, ObjectInfo, UploadSpec};
use vestnik_core::limits::MEDIA_URL_TOKEN_MAX_CHARS as MAX_TOKEN_CHARS;

/// Domain separation: these MACs can never be confused with another use of the key.
const MAC_CONTEXT: &[u8] = b"vestnik-media-url/v1\0";

/// What a signed URL allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlClaims {
    /// Object key.
    pub k: String,
    /// `PUT` or `GET`.
    pub m: String,
    /// Expiry, unix ms.
    pub e: i64,
    /// PUT: exact length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// PUT: hex SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<String>,
}

/// [`BlobStore`] in a local directory: the server signs its own blob URLs and serves them
/// (`/v1/media/blob/`), so a single node needs no S3.
pub struct LocalBlobStore {
    objects: PathBuf,
    incoming: PathBuf,
    /// `<public_url>/v1/media/blob/`
    base_url: String,
    key: [u8; 32],
}

impl LocalBlobStore {
    /// Keeps objects under `dir` (created if missing) and signs URLs under `public_url`
    /// (empty: relative to the API) with `key`, a subkey of the server key.
    pub fn new(dir: &Path, public_url: &str, key: [u8; 32]) -> Result<Self, BlobError> {
        let objects = dir.join("objects");
        let incoming = dir.join("incoming");
        std::fs::create_dir_all(objects.join("m"))?;
        std::fs::create_dir_all(&incoming)?;
        Ok(Self {
            objects,
            incoming,
            base_url: format!("{}/v1/media/blob/", public_url.trim_end_matches('/')),
            key,
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(MAC_CONTEXT);
        mac
    }

    fn sign(&self, claims: &UrlClaims) -> Result<String, BlobError> {
        let payload =
            B64.encode(serde_json::to_vec(claims).map_err(|e| BlobError::Config(e.to_string()))?);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        Ok(format!(
            "{payload}.{}",
            B64.encode(mac.finalize().into_bytes())
        ))
    }

    /// Checks a token from a blob URL for `method` at `now_ms`. Every failure
    /// is the same answer, as S3 gives: the URL is refused.
    pub fn verify(&self, token: &str, method: &str, now_ms: i64) -> Result<UrlClaims, MediaError> {
        let refused = |why: &str| MediaError::UrlRefused(why.to_owned());
        if token.len() > MAX_TOKEN_CHARS {
            return Err(refused("malformed"));
        }
        let (payload, sig) = token.split_once('.').ok_or_else(|| refused("malformed"))?;
        let sig = B64.decode(sig).map_err(|_| refused("malformed"))?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| refused("bad signature"))?;
        let claims: UrlClaims = B64
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refused("malformed"))?;
        if claims.m != method {
            return Err(refused("signed for another method"));
        }
        if claims.e <= now_ms {
            return Err(refused("expired"));
        }
        check_key(&claims.k).map_err(|_| refused("malformed"))?;
        Ok(claims)
    }

    /// The file of object `key`, after checking the key's form (so no path escapes `dir`).
    pub fn object_path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.objects.join(key))
    }

    /// Streams an upload into place. The object appears only once every byte
    /// is in and the length and digest match the signed claims; otherwise
    /// the partial file is removed and nothing is left behind.
    pub async fn accept_upload<S, E>(
        &self,
        claims: &UrlClaims,
        declared_len: Option<u64>,
        body: S,
    ) -> Result<(), MediaError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (Some(want_len), Some(want_sha)) = (claims.n, claims.h.as_deref()) else {
            return Err(MediaError::UrlRefused("not an upload URL".into()));
        };
        if let Some(n) = declared_len.filter(|n| *n != want_len) {
            return Err(MediaError::Mismatch(format!(
                "Content-Length {n}, but the URL was signed for {want_len} bytes"
            )));
        }
        let target = self.object_path(&claims.k)?;
        let tmp = self
            .incoming
            .join(uuid::Uuid::new_v4().simple().to_string());
        let result = write_checked(&tmp, body, want_len, want_sha).await;
        match result {
            Ok(()) => {
                tokio::fs::rename(&tmp, &target).await.map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    BlobError::Io(e)
                })?;
                Ok(())
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    fn signed(
        &self,
        claims: UrlClaims,
        headers: Vec<(String, String)>,
    ) -> Result<SignedRequest, BlobError> {
        let token = self.sign(&claims)?;
        Ok(SignedRequest {
            method: claims.m,
            url: format!("{}{token}", self.base_url),
            headers,
            expires_at: claims.e,
        })
    }
}

async fn write_checked<S, E>(
    tmp: &Path,
    mut body: S,
    want_len: u64,
    want_sha: &str,
) -> Result<(), MediaError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(tmp).await.map_err(BlobError::Io)?;
    let mut hasher = Sha256::new();
    let mut got: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| MediaError::InvalidInput(format!("upload body: {e}")))?;
        got += chunk.len() as u64;
        if got > want_len {
            return Err(MediaError::Mismatch(format!(
                "more than the {want_len} bytes the URL was signed for"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(BlobError::Io)?;
    }
    if got != want_len {
        return Err(MediaError::Mismatch(format!(
            "{got} bytes, but the URL was signed for {want_len}"
        )));
    }
    if hex::encode(hasher.finalize()) != want_sha {
        return Err(MediaError::Mismatch(
            "the bytes' SHA-256 is not the one the URL was signed for".into(),
        ));
    }
    file.sync_all().await.map_err(BlobError::Io)?;
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn presign_put(
        &self,
        key: &str,
        spec: &UploadSpec,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<SignedRequest, BlobError> {
        check_key(key)?;
        let claims = UrlClaims {
            k: key.to_owned(),
            m: "PUT".into(),
            e: now_ms + ttl.as_millis() as i64,
            n: Some(spec.size),
            h: Some(spec.sha256.clone()),
        };
        self.signed(
            claims,
            vec![("content-type".into(), "application/octet-stream".into())],
        )
    }

    fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<SignedRequest, BlobError> {
        check_key(key)?;
        let claims = UrlClaims {
            k: key.to_owned(),
            m: "GET".into(),
            e: now_ms + ttl.as_millis() as i64,
            n: None,
            h: None,
        };
        self.signed(claims, Vec::new())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        let path = self.object_path(key)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // The upload handler checked the digest before the file appeared;
        // hashing again proves the file is still what was verified.
        let sha = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let mut f = std::fs::File::open(path)?;
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h)?;
            Ok(hex::encode(h.finalize()))
        })
        .await
        .map_err(|e| BlobError::Transport(e.to_string()))??;
        Ok(Some(ObjectInfo {
            size: meta.len(),
            sha256: Some(sha),
        }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), BlobError> {
        let target = self.object_path(key)?;
        let tmp = self
            .incoming
            .join(uuid::Uuid::new_v4().simple().to_string());
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &target).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        Ok(written?)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.object_path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn read(&self, key: &str) -> Result<ByteStream, BlobError> {
        let file = tokio::fs::File::open(self.object_path(key)?).await?;
        Ok(tokio_util_like::file_stream(file))
    }

    async fn prepare(&self, _cors_origins: &[String]) -> Result<(), BlobError> {
        Ok(())
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, BlobError> {
        // Keys are `m/<name>`: one directory. Read whole and sorted: the
        // sweeper runs rarely, and a directory listing has no order.
        let dir = self.objects.join("m");
        let mut keys = Vec::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(e.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            if let Some(name) = entry.file_name().to_str() {
                let key = format!("m/{name}");
                if check_key(&key).is_ok() && after.is_none_or(|a| key.as_str() > a) {
                    keys.push(key);
                }
            }
        }
        keys.sort_unstable();
        keys.truncate(limit);
        Ok(keys)
    }
}

/// A file as a stream of 64 KiB chunks.
mod tokio_util_like {
    use futures::StreamExt;
    use tokio::io::AsyncReadExt;

    pub(super) fn file_stream(file: tokio::fs::File) -> crate::blob::ByteStream {
        futures::stream::unfold(Some(file), |state| async move {
            let mut file = state?;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e.into()), None)),
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (LocalBlobStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = LocalBlobStore::new(dir.path(), "http://127.0.0.1:1", [7; 32]).expect("store");
        (s, dir)
    }

    fn token_of(url: &str) -> &str {
        url.rsplit('/').next().unwrap_or_default()
    }

    #[test]
    fn signed_urls_are_refused_when_tampered_expired_or_used_for_another_method() {
        let (s, _dir) = store();
        let spec = UploadSpec {
            size: 3,
            sha256: "ab".repeat(32),
        };
        let put = s
            .presign_put("m/abc", &spec, Duration::from_secs(60), 1_000)
            .expect("put");
        let token = token_of(&put.url);
        assert_eq!(s.verify(token, "PUT", 2_000).expect("valid").n, Some(3));
        assert!(matches!(
            s.verify(token, "GET", 2_000),
            Err(MediaError::UrlRefused(_))
        ));
        assert!(matches!(
            s.verify(token, "PUT", 61_000),
            Err(MediaError::UrlRefused(_))
        ));
        // A changed claim (a longer upload) with the old signature.
        let (payload, sig) = token.split_once('.').expect("dot");
        let mut claims: UrlClaims =
            serde_json::from_slice(&B64.decode(payload).expect("b64")).expect("json");
        claims.n = Some(1 << 30);
        let forged = format!(
            "{}.{sig}",
            B64.encode(serde_json::to_vec(&claims).expect("json"))
        );
        assert!(matches!(
            s.verify(&forged, "PUT", 2_000),
            Err(MediaError::UrlRefused(_))
        ));
        // Signed by another server key.
        let other = LocalBlobStore::new(_dir.path(), "http://x", [8; 32]).expect("other");
        let theirs = other
            .presign_get("m/abc", Duration::from_secs(60), 1_000)
            .expect("get");
        assert!(s.verify(token_of(&theirs.url), "GET", 2_000).is_err());
        assert!(s.verify("garbage", "GET", 2_000).is_err());
        assert!(s.verify(&"a.b".repeat(1000), "GET", 2_000).is_err());
    }

    #[test]
    fn keys_that_could_escape_the_directory_are_refused() {
        let (s, _dir) = store();
        for key in [
            "../etc/passwd",
            "m/../../x",
            "m/a/b",
            "/m/a",
            "m/",
            "x/abc",
            "m/a.b",
        ] {
            assert!(s.object_path(key).is_err(), "{key}");
            assert!(
                s.presign_get(key, Duration::from_secs(1), 0).is_err(),
                "{key}"
            );
        }
        assert!(s.object_path("m/0123-abc").is_ok());
    }

    #[tokio::test]
    async fn an_upload_lands_only_when_length_and_digest_match() {
        let (s, dir) = store();
        let data = b"hello".to_vec();
        let sha = hex::encode(Sha256::digest(&data));
        let claims = UrlClaims {
            k: "m/one".into(),
            m: "PUT".into(),
            e: i64::MAX,
            n: Some(5),
            h: Some(sha.clone()),
        };
        let body = |b: &[u8]| {
            futures::stream::iter(vec![Ok::<_, std::io::Error>(
                bytes::Bytes::copy_from_slice(b),
            )])
        };
        for bad in [&b"hellO"[..], b"hell", b"hello!"] {
            let r = s.accept_upload(&claims, None, body(bad)).await;
            assert!(matches!(r, Err(MediaError::Mismatch(_))), "{bad:?}");
            assert!(s.head("m/one").await.expect("head").is_none());
        }
        let r = s.accept_upload(&claims, Some(6), body(&data)).await;
        assert!(matches!(r, Err(MediaError::Mismatch(_))));
        s.accept_upload(&claims, Some(5), body(&data))
            .await
            .expect("upload");
        let info = s.head("m/one").await.expect("head").expect("present");
        assert_eq!(
            info,
            ObjectInfo {
                size: 5,
                sha256: Some(sha)
            }
        );
        // Nothing half-written is left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .expect("dir")
                .count(),
            0
        );
        s.delete("m/one").await.expect("delete");
        s.delete("m/one").await.expect("deleting twice is fine");
    }
}
