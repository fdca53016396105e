//! Safety numbers: a 60-digit code two people compare (read aloud, or as a
//! QR code) to check that each sees the other's real devices.
//!
//! The construction is Signal's `NumericFingerprintGenerator`, applied to
//! the set of a user's device keys:
//!
//! 1. Per side, the key material `K` is every device's 32-byte Ed25519
//!    signing key followed by its 32-byte Curve25519 identity key, these
//!    64-byte records sorted bytewise, duplicates dropped, concatenated.
//! 2. `h = 0x0000 || K || user_id` (a 2-byte version, then the UTF-8 user id);
//!    then 5200 times `h = SHA-512(h || K)`.
//! 3. The first 30 bytes of `h`, as six 5-byte big-endian integers each taken
//!    mod 100000, give that side's 30 digits.
//! 4. The two 30-digit halves are joined in sorted order, so both people get
//!    the same 60 digits whoever computes them, shown as 12 groups of 5.
//!
//! Any change to either user's device set (a new device, a device that
//! re-registered with new keys) changes the number, which is the point: the
//! app should say "safety number changed" and invite a re-check.
use sha2::{Digest, Sha512};

use crate::error::CryptoError;
use crate::keys::{parse_curve, parse_ed25519, DeviceKeys};

/// SHA-512 iterations per side (Signal's value).
pub const SAFETY_NUMBER_ITERATIONS: usize = 5200;
const VERSION: [u8; 2] = [0, 0];

fn key_material(devices: &[DeviceKeys], user_id: &str) -> Result<Vec<u8>, CryptoError> {
    if devices.is_empty() {
        return Err(CryptoError::NoDevices {
            user_id: user_id.to_owned(),
        });
    }
    let mut records = Vec::with_capacity(devices.len());
    for d in devices {
        let mut record = Vec::with_capacity(64);
        record.extend_from_slice(parse_ed25519("signing_key", &d.signing_key)?.as_bytes());
        record.extend_from_slice(parse_curve("identity_key", &d.identity_key)?.as_bytes());
        records.push(record);
    }
    records.sort();
    records.dedup();
    Ok(records.concat())
}

fn side_digits(user_id: &str, devices: &[DeviceKeys]) -> Result<String, CryptoError> {
    let keys = key_material(devices, user_id)?;
    let mut hash: Vec<u8> = [VERSION.as_slice(), &keys, user_id.as_bytes()].concat();
    for _ in 0..SAFETY_NUMBER_ITERATIONS {
        hash = Sha512::new()
            .chain_update(&hash)
            .chain_update(&keys)
            .finalize()
            .to_vec();
    }
    let mut digits = String::with_capacity(30);
    for chunk in hash.chunks_exact(5).take(6) {
        let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        digits.push_str(&format!("{:05}", n % 100_000));
    }
    Ok(digits)
}

/// The safety number between two users, each given by a user id and the
/// public keys of all their devices (in any order). Symmetric: swapping the
/// two sides gives the same result. Returns 60 digits as 12 groups of 5
/// separated by single spaces, e.g. `"12345 67890 … 24680"`.
pub fn safety_number(
    my_user_id: &str,
    my_devices: &[DeviceKeys],
    their_user_id: &str,
    their_devices: &[DeviceKeys],
) -> Result<String, CryptoError> {
    let mine = side_digits(my_user_id, my_devices)?;
    let theirs = side_digits(their_user_id, their_devices)?;
    let joined = if mine <= theirs {
        mine + &theirs
    } else {
        theirs + &mine
    };
    let mut out = String::with_capacity(71);
    for (i, c) in joined.chars().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    Ok(out)
}
