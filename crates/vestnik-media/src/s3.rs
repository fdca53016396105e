//! Any S3-compatible store (AWS, MinIO, SeaweedFS, Garage), spoken as plain
//! S3 with SigV4 presigned URLs. Upload URLs sign `content-length` and
//! `x-amz-checksum-sha256`, so the store itself refuses any other length or
//! bytes; the server only ever sends HEAD, DELETE and (for public-channel
//! scanning) GET, never the uploads and downloads themselves.
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use md5::Md5;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::Digest;
use std::time::Duration;
use vestnik_proto::SignedRequest;

use crate::blob::{check_key, ByteStream};
use crate::{BlobError, BlobStore, ObjectInfo, UploadSpec};
use vestnik_core::limits::S3_CALL_TIMEOUT as CALL_TIMEOUT;
use vestnik_core::limits::S3_MAX_PRESIGN as MAX_PRESIGN;

/// Where and how to reach the S3 bucket; the secrets are redacted in `Debug`.
#[derive(Clone)]
pub struct S3Settings {
    /// Base URL of the S3 API, `http(s)://…`.
    pub endpoint: String,
    /// The bucket media objects are kept in.
    pub bucket: String,
    /// Region used in SigV4 signatures.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// `https://endpoint/bucket/key` (MinIO, SeaweedFS, Garage) instead of
    /// `https://bucket.endpoint/key` (AWS).
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// [`BlobStore`] on any S3-compatible service; clients upload and download straight to it
/// through SigV4 presigned URLs.
pub struct S3BlobStore {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

impl S3BlobStore {
    /// Checks the endpoint and bucket name; makes no request (see [`BlobStore::prepare`]).
    pub fn new(s: &S3Settings) -> Result<Self, BlobError> {
        let endpoint: url::Url = s
            .endpoint
            .parse()
            .map_err(|e| BlobError::Config(format!("s3_endpoint: {e}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(BlobError::Config("s3_endpoint: expected http(s)://".into()));
        }
        let style = if s.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, s.bucket.clone(), s.region.clone())
            .map_err(|e| BlobError::Config(format!("s3 bucket: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BlobError::Config(e.to_string()))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(s.access_key.clone(), s.secret_key.clone()),
            http,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, BlobError> {
        req.timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| BlobError::Transport(e.without_url().to_string()))
    }

    async fn put_cors(&self, origins: &[String]) -> Result<(), BlobError> {
        let body = cors_xml(origins);
        let md5 = B64.encode(Md5::digest(body.as_bytes()));
        let mut url = self.bucket.base_url().clone();
        url.set_query(None);
        let headers = [("content-md5", md5.as_str())];
        let signed = rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            rusty_s3::Method::Put,
            url,
            self.credentials.key(),
            self.credentials.secret(),
            None,
            self.bucket.region(),
            60,
            [("cors", "")].into_iter(),
            headers.into_iter(),
        );
        let res = self
            .send(self.http.put(signed).header("content-md5", &md5).body(body))
            .await?;
        expect_ok(res).await
    }
}

fn cors_xml(origins: &[String]) -> String {
    let origins: String = origins
        .iter()
        .map(|o| format!("<AllowedOrigin>{}</AllowedOrigin>", xml_escape(o)))
        .collect();
    format!(
        "<CORSConfiguration><CORSRule>{origins}<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>\
         <AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><ExposeHeader>Content-Length</ExposeHeader><ExposeHeader>Content-Range</ExposeHeader>\
         <MaxAgeSeconds>3600</MaxAgeSeconds></CORSRule></CORSConfiguration>"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn expect_ok(res: reqwest::Response) -> Result<(), BlobError> {
    if res.status().is_success() {
        return Ok(());
    }
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    Err(BlobError::Status {
        status,
        body: body.chars().take(300).collect(),
    })
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn presign_put(
        &self,
        key: &str,
        spec: &UploadSpec,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<SignedRequest, BlobError> {
        check_key(key)?;
        let digest = hex::decode(&spec.sha256)
            .map_err(|_| BlobError::Config("sha256: expected hex".into()))?;
        let checksum = B64.encode(digest);
        let length = spec.size.to_string();
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        action
            .headers_mut()
            .insert("content-length", length.clone());
        action
            .headers_mut()
            .insert("x-amz-checksum-sha256", checksum.clone());
        let ttl = ttl.min(MAX_PRESIGN);
        Ok(SignedRequest {
            method: "PUT".into(),
            url: action.sign(ttl).to_string(),
            headers: vec![
                ("content-length".into(), length),
                ("x-amz-checksum-sha256".into(), checksum),
            ],
            expires_at: now_ms + ttl.as_millis() as i64,
        })
    }

    fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<SignedRequest, BlobError> {
        check_key(key)?;
        let ttl = ttl.min(MAX_PRESIGN);
        let action = self.bucket.get_object(Some(&self.credentials), key);
        Ok(SignedRequest {
            method: "GET".into(),
            url: action.sign(ttl).to_string(),
            headers: Vec::new(),
            expires_at: now_ms + ttl.as_millis() as i64,
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        check_key(key)?;
        let mut action = self.bucket.head_object(Some(&self.credentials), key);
        action
            .headers_mut()
            .insert("x-amz-checksum-mode", "ENABLED");
        let url = action.sign(Duration::from_secs(60));
        let res = self
            .send(self.http.head(url).header("x-amz-checksum-mode", "ENABLED"))
            .await?;
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !res.status().is_success() {
            return Err(BlobError::Status {
                status: res.status().as_u16(),
                body: String::new(),
            });
        }
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok());
        let size = header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BlobError::Transport("HEAD without Content-Length".into()))?;
        let sha256 = header("x-amz-checksum-sha256")
            .and_then(|v| B64.decode(v).ok())
            .map(hex::encode);
        Ok(Some(ObjectInfo { size, sha256 }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        check_key(key)?;
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(60));
        let res = self
            .send(
                self.http
                    .put(url)
                    .header("content-type", content_type)
                    .body(bytes),
            )
            .await?;
        expect_ok(res).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(60));
        let res = self.send(self.http.delete(url)).await?;
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_ok(res).await
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, BlobError> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        action.with_prefix("m/");
        action.with_max_keys(limit.min(1000));
        if let Some(a) = after {
            action.with_start_after(a.to_owned());
        }
        let url = action.sign(Duration::from_secs(60));
        let res = self.send(self.http.get(url)).await?;
        if !res.status().is_success() {
            return Err(BlobError::Transport(format!(
                "listing objects: {}",
                res.status()
            )));
        }
        let body = res
            .text()
            .await
            .map_err(|e| BlobError::Transport(e.to_string()))?;
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body)
            .map_err(|e| BlobError::Transport(format!("listing objects: {e}")))?;
        Ok(parsed.contents.into_iter().map(|c| c.key).collect())
    }

    async fn read(&self, key: &str) -> Result<ByteStream, BlobError> {
        check_key(key)?;
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(300));
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| BlobError::Transport(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(BlobError::Status {
                status: res.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(res
            .bytes_stream()
            .map(|r| r.map_err(|e| BlobError::Transport(e.without_url().to_string())))
            .boxed())
    }

    async fn prepare(&self, cors_origins: &[String]) -> Result<(), BlobError> {
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(Duration::from_secs(60));
        let res = self.send(self.http.put(url)).await?;
        // 409 BucketAlreadyOwnedByYou / BucketAlreadyExists: already there.
        if !(res.status().is_success() || res.status() == reqwest::StatusCode::CONFLICT) {
            expect_ok(res).await?;
        }
        if !cors_origins.is_empty() {
            self.put_cors(cors_origins).await?;
        }
        Ok(())
    }
}
