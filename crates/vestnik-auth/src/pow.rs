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

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn digest(challenge: &str, nonce: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(challenge)
        .chain_update(b":")
        .chain_update(nonce)
        .finalize()
        .into()
}

/// Finds a nonce (what a client does; used by tests and the CLI).
pub fn solve(c: &PowChallenge) -> PowSolution {
    let mut n: u64 = 0;
    loop {
        let nonce = n.to_string();
        if leading_zero_bits(&digest(&c.challenge, &nonce)) >= c.difficulty {
            return PowSolution {
                challenge: c.challenge.clone(),
                nonce,
            };
        }
        n += 1;
    }
}

impl AuthService {
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
            && leading_zero_bits(&digest(&sol.challenge, &sol.nonce)) >= difficulty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 1]), 15);
    }

    #[test]
    fn solve_finds_a_nonce_with_enough_zero_bits() {
        let c = PowChallenge {
            challenge: "abc.def".into(),
            difficulty: 10,
        };
        let s = solve(&c);
        assert!(leading_zero_bits(&digest(&c.challenge, &s.nonce)) >= 10);
    }
}
