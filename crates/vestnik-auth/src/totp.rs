//! RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps) through `totp-rs`; this module
//! only decides which steps are acceptable and how replays are refused.
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use totp_rs::{Algorithm, Secret, TOTP};
use vestnik_core::limits::{TOTP_DIGITS, TOTP_SKEW_STEPS, TOTP_STEP_SECS};

fn totp(secret: &[u8], digits: usize) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, digits, 0, TOTP_STEP_SECS, secret.to_vec())
}

/// The code for Unix time `secs` (used by clients, tests and the RFC vectors).
pub fn totp_code_at(secret: &[u8], secs: u64, digits: usize, algorithm: Algorithm) -> String {
    TOTP::new_unchecked(algorithm, digits, 0, TOTP_STEP_SECS, secret.to_vec()).generate(secs)
}

/// The step whose code matches within ±1 step of `now_secs`, if any.
pub(crate) fn matching_step(secret: &[u8], code: &str, now_secs: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, TOTP_DIGITS);
    let now_step = now_secs.div_euclid(TOTP_STEP_SECS as i64);
    // Check every candidate (no early exit) so timing does not tell which matched.
    let mut found = None;
    for step in (now_step - TOTP_SKEW_STEPS)..=(now_step + TOTP_SKEW_STEPS) {
        if step < 0 {
            continue;
        }
        let expected = t.generate(step as u64 * TOTP_STEP_SECS);
        if vestnik_core::token::ct_eq(expected.as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

pub(crate) fn base32(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => String::new(),
    }
}

/// Key URI format understood by authenticator apps.
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={}&period={}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer),
        TOTP_DIGITS,
        TOTP_STEP_SECS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the seeds are the ASCII strings below, 8 digits.
    #[test]
    fn rfc6238_test_vectors_match() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in vectors {
            assert_eq!(
                totp_code_at(&sha1, t, 8, Algorithm::SHA1),
                c1,
                "SHA1 at {t}"
            );
            assert_eq!(
                totp_code_at(&sha256, t, 8, Algorithm::SHA256),
                c256,
                "SHA256 at {t}"
            );
            assert_eq!(
                totp_code_at(&sha512, t, 8, Algorithm::SHA512),
                c512,
                "SHA512 at {t}"
            );
        }
    }

    #[test]
    fn codes_one_step_away_match_and_two_steps_do_not() {
        let secret = b"0123456789abcdefghij";
        let now = 1_700_000_000i64;
        let code = |t: i64| totp_code_at(secret, t as u64, 6, Algorithm::SHA1);
        let step = now / 30;
        assert_eq!(matching_step(secret, &code(now), now), Some(step));
        assert_eq!(matching_step(secret, &code(now - 30), now), Some(step - 1));
        assert_eq!(matching_step(secret, &code(now + 30), now), Some(step + 1));
        assert_eq!(matching_step(secret, &code(now - 90), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn otpauth_uri_names_issuer_and_account() {
        let uri = otpauth_uri("Vestnik", "alice@example.org", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Vestnik:alice%40example%2Eorg?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Vestnik&algorithm=SHA1&digits=6&period=30"
        );
    }
}
