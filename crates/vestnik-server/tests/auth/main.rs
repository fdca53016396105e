//! The auth service end to end over HTTP, on SQLite and on PostgreSQL + Redis.
mod account_changes;
#[path = "../common/mod.rs"]
mod common;
mod errors_and_audit;
mod export;
mod login;
mod registration;
mod sessions;

use common::{device, totp_now, TestApp};
use reqwest::Method;
use serde_json::json;

const PW: &str = "correct horse battery staple";

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}
