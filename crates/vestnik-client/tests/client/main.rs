//! The client library against the real server (SQLite, and PostgreSQL +
//! Redis), over real sockets.
#[path = "../common/mod.rs"]
mod common;

mod account_and_keys;
mod delivery;
mod edits;
mod sessions;

use anyhow::{ensure, Context};
use common::{
    contains, eventually, file_contains, messages, no_more_messages, synced, unique, wait_for,
    Proxy, Server,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use vestnik_client::{
    Client, ClientError, ClientEvent, Direction, MessageState, SecondFactor, StoreKey,
};

fn totp_now(s: &Server, secret_b32: &str) -> anyhow::Result<String> {
    use vestnik_core::Clock;
    let secret = totp_rs::Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("base32: {e:?}"))?;
    Ok(vestnik_auth::totp_code_at(
        &secret,
        u64::try_from(s.clock.now_secs())?,
        6,
        totp_rs::Algorithm::SHA1,
    ))
}

/// The fallback key Bob's device publishes now, as the server hands it out;
/// when `drain`, his one-time keys are claimed away first, so that a sender
/// gets only the fallback key.
async fn bobs_fallback(s: &Server, bob: &Client, drain: bool) -> anyhow::Result<String> {
    for _ in 0..200 {
        let bundles = s.gw.store.claim_keys(bob.user_id()).await?;
        let b = bundles.first().context("bob's device")?;
        if !drain || b.one_time_key.is_none() {
            return Ok(b.fallback_key.as_ref().context("fallback")?.key_id.clone());
        }
    }
    anyhow::bail!("one-time keys did not run out")
}
