//! Proof-of-work challenges demanded after repeated failures: stateless for the
//! server (HMAC-signed, self-expiring) and single-use (a marker in the Kv).
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use vestnik_core::limits::{
    POW_CHALLENGE_TTL_SECS, POW_FAILURE_THRESHOLD, POW_FAILURE_WINDOW_SECS,
};
use vestnik_proto::{PowChallenge, PowSolution};

use crate::{AuthError, AuthService};

/// Finds a nonce (what a client does; used by tests and the CLI).
pub fn solve(c: &PowChallenge) -> PowSolution {
    PowSolution {
        challenge: c.challenge.clone(),
        nonce: vestnik_core::pow::solve(&c.challenge, c.difficulty),
    }
}

impl AuthService {
    /// A fresh challenge at the configured difficulty, valid for `POW_CHALLENGE_TTL_SECS`;
    /// signed with the server key, so handing them out stores nothing.
    pub fn pow_challenge(&self) -> PowChallenge {
        let expires = self.clock.now_secs() + POW_CHALLENGE_TTL_SECS;
        let mut body = Vec::with_capacity(29);
        body.extend_from_slice(&expires.to_be_bytes());
        body.extend_from_slice(&self.settings.pow_difficulty.to_be_bytes());
        let mut rnd = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut rnd);
        body.extend_from_slice(&rnd);
        let mac = self.keys.pow_mac(&body);
        PowChallenge {
            challenge: format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(&body),
                URL_SAFE_NO_PAD.encode(mac)
            ),
            difficulty: self.settings.pow_difficulty,
        }
    }

    /// Keys whose failure counters decide whether a proof of work is due.
    fn failure_keys(ip: Option<&str>, email: &str) -> Vec<String> {
        let mut keys = vec![format!("fail:acct:{email}")];
        if let Some(ip) = ip {
            keys.push(format!("fail:ip:{ip}"));
        }
        keys
    }

    pub(crate) async fn record_failure(
        &self,
        ip: Option<&str>,
        email: &str,
    ) -> Result<(), AuthError> {
        for k in Self::failure_keys(ip, email) {
            self.kv
                .incr(&k, (POW_FAILURE_WINDOW_SECS * 1000) as u64)
                .await?;
        }
        Ok(())
    }

    /// Demands (and checks) a proof of work when the account or IP has failed
    /// too often recently.
    pub(crate) async fn require_pow_if_suspicious(
        &self,
        ip: Option<&str>,
        email: &str,
        pow: Option<&PowSolution>,
    ) -> Result<(), AuthError> {
        let mut suspicious = false;
        for k in Self::failure_keys(ip, email) {
            let n: i64 = self
                .kv
                .get(&k)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            suspicious |= n >= POW_FAILURE_THRESHOLD;
        }
        if !suspicious {
            return Ok(());
        }
        let Some(sol) = pow else {
            return Err(AuthError::PowRequired(self.pow_challenge()));
        };
        if !self.pow_valid(sol) {
            return Err(AuthError::InvalidPow(self.pow_challenge()));
        }
        let marker = format!(
            "pow:{}",
            hex::encode(Sha256::digest(sol.challenge.as_bytes()))
        );
        if !self
            .kv
            .set_nx(&marker, "1", (POW_CHALLENGE_TTL_SECS * 1000) as u64)
            .await?
        {
            return Err(AuthError::InvalidPow(self.pow_challenge()));
        }
        Ok(())
    }

    fn pow_valid(&self, sol: &PowSolution) -> bool {
        if sol.nonce.len() > 64 || sol.challenge.len() > 256 {
            return false;
        }
        let Some((body_b64, mac_b64)) = sol.challenge.split_once('.') else {
            return false;
        };
        let (Ok(body), Ok(mac)) = (
            URL_SAFE_NO_PAD.decode(body_b64),
            URL_SAFE_NO_PAD.decode(mac_b64),
        ) else {
            return false;
        };
        if body.len() != 28 || !vestnik_core::token::ct_eq(&self.keys.pow_mac(&body), &mac) {
            return false;
        }
        let expires = i64::from_be_bytes(body[0..8].try_into().unwrap_or([0; 8]));
        let difficulty = u32::from_be_bytes(body[8..12].try_into().unwrap_or([0; 4]));
        expires > self.clock.now_secs()
            && difficulty >= self.settings.pow_difficulty
            && vestnik_core::pow::is_solution(&sol.challenge, &sol.nonce, difficulty)
    }
}
