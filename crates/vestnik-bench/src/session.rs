//! `session`: creates an account on a running server over the public API
//! (reading the code from the server's file mailer) and returns an access
//! token, e.g. for `wrk`.
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A device with well-formed keys and a correctly signed fallback key.
fn device() -> Value {
    let signing = SigningKey::from_bytes(&random32());
    let fallback = STANDARD_NO_PAD.encode(random32());
    let sig = signing.sign(format!("vestnik:fallback_key:v1:fb:{fallback}").as_bytes());
    json!({
        "name": "bench", "platform": "bench",
        "identity_key": STANDARD_NO_PAD.encode(random32()),
        "signing_key": STANDARD_NO_PAD.encode(signing.verifying_key().as_bytes()),
        "fallback_key": {"key_id": "fb", "public_key": fallback, "signature": STANDARD_NO_PAD.encode(sig.to_bytes())},
    })
}

fn code_for(mail_dir: &Path, email: &str) -> anyhow::Result<Option<String>> {
    let mut files: Vec<_> = std::fs::read_dir(mail_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files.iter().rev() {
        let text = std::fs::read_to_string(f)?;
        if text.contains(&format!("To: {email}")) {
            if let Some(i) = text.find("verification code is ") {
                return Ok(text.get(i + 21..i + 27).map(str::to_owned));
            }
        }
    }
    Ok(None)
}

pub async fn session(base: &str, mail_dir: &Path, email: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": email}))
        .send()
        .await?;
    if r.status() != 202 {
        bail!("register: {} {}", r.status(), r.text().await?);
    }
    let mut code = None;
    for _ in 0..100 {
        code = code_for(mail_dir, email)?;
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let code = code.context("no code mailed")?;
    let body = json!({"email": email, "code": code, "password": "benchmark passphrase 1", "device": device()});
    let r = http
        .post(format!("{base}/v1/auth/register/verify"))
        .json(&body)
        .send()
        .await?;
    if r.status() != 201 {
        bail!("verify: {} {}", r.status(), r.text().await?);
    }
    let v: Value = r.json().await?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token")
}
