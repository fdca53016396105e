//! Passwords: NIST SP 800-63B rules (length, no common passwords, no
//! composition rules) and argon2id with OWASP's recommended parameters.
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::OnceLock;
use vestnik_core::limits::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};

use crate::AuthError;

/// The 30,000 most common passwords from zxcvbn's list (MIT), those of 8+
/// characters (shorter ones fail the length rule anyway).
static COMMON: &str = include_str!("../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Refuses passwords that are too short or long, among the most common ones, or equal to
/// the e-mail address or its local part. Clients may call it to check before sending.
pub fn check_password_policy(password: &str, email: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if n < PASSWORD_MIN_CHARS {
        return Err(AuthError::WeakPassword(format!(
            "expected at least {PASSWORD_MIN_CHARS} characters, got {n}"
        )));
    }
    if n > PASSWORD_MAX_CHARS {
        return Err(AuthError::WeakPassword(format!(
            "expected at most {PASSWORD_MAX_CHARS} characters, got {n}"
        )));
    }
    let lower = password.to_lowercase();
    if common().contains(lower.as_str()) {
        return Err(AuthError::WeakPassword(
            "this password is on the list of most common passwords".into(),
        ));
    }
    let local = email.split('@').next().unwrap_or(email);
    if lower == email || lower == local {
        return Err(AuthError::WeakPassword(
            "the password must not be the e-mail address".into(),
        ));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // OWASP: m = 19 MiB, t = 2, p = 1. These constants are valid, so the
    // fallback is never taken.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(crate) fn hash_password_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("argon2: {e}")))
}

/// Hashings that may run at once (each takes 19 MiB and a core for tens of
/// milliseconds): beyond this a request waits at most [`HASHING_WAIT`], then
/// is told to come back (503 `busy`), so a flood of logins cannot grow the
/// blocking pool's threads and memory without bound.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores * vestnik_core::limits::HASHINGS_PER_CORE)
    })
}

/// How long a request waits for a hashing slot before it is answered `busy`.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    let slot = tokio::time::timeout(HASHING_WAIT, hashing_slots().acquire())
        .await
        .map_err(|_| {
            metrics::counter!("vestnik_password_hashing_busy_total").increment(1);
            AuthError::Busy {
                retry_after_ms: 1000,
            }
        })?
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    let result = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    drop(slot);
    result
}

/// Hashes off the async runtime (argon2 is deliberately slow), in a slot.
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    hashing(move || hash_password_blocking(&password)).await
}

pub(crate) async fn verify_password(password: String, hash: String) -> Result<bool, AuthError> {
    hashing(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| AuthError::Internal(format!("stored hash: {e}")))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_past_the_bound_waits_then_answers_busy_instead_of_queueing() {
        let slots = hashing_slots();
        let all = u32::try_from(slots.available_permits()).expect("few");
        let held = slots.acquire_many(all).await.expect("open");
        let started = std::time::Instant::now();
        let r = hash_password("a long enough passphrase".into()).await;
        assert!(matches!(r, Err(AuthError::Busy { .. })), "{r:?}");
        assert!(started.elapsed() >= HASHING_WAIT);
        drop(held);
        let hash = hash_password("a long enough passphrase".into())
            .await
            .expect("a slot is free again");
        assert!(verify_password("a long enough passphrase".into(), hash)
            .await
            .expect("verified"));
    }

    #[test]
    fn short_long_and_common_passwords_are_refused() {
        assert!(check_password_policy("short", "a@b.org").is_err());
        assert!(check_password_policy(&"x".repeat(129), "a@b.org").is_err());
        assert!(check_password_policy("password", "a@b.org").is_err());
        assert!(check_password_policy("PASSWORD1", "a@b.org").is_err());
        assert!(check_password_policy("alice@b.org", "alice@b.org").is_err());
        assert!(check_password_policy("correct horse battery staple", "a@b.org").is_ok());
        assert!(check_password_policy("пароль-из-кириллицы", "a@b.org").is_ok());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password_blocking("correct horse battery staple").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let p = PasswordHash::new(&h).expect("parse");
        assert!(argon2()
            .verify_password(b"correct horse battery staple", &p)
            .is_ok());
        assert!(argon2().verify_password(b"wrong", &p).is_err());
    }
}
