//! The proof-of-work puzzle shared by the server (which checks) and clients
//! (which solve): find `nonce` such that SHA-256(`challenge` ":" `nonce`)
//! starts with `difficulty` zero bits.
use sha2::{Digest, Sha256};

/// Number of zero bits at the start of `hash`, counted from the most significant bit.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
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

/// SHA-256 of `challenge:nonce`, the hash a solution is judged by.
pub fn digest(challenge: &str, nonce: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(challenge)
        .chain_update(b":")
        .chain_update(nonce)
        .finalize()
        .into()
}

/// Whether `nonce` solves `challenge` at `difficulty` leading zero bits (the server's check).
pub fn is_solution(challenge: &str, nonce: &str, difficulty: u32) -> bool {
    leading_zero_bits(&digest(challenge, nonce)) >= difficulty
}

/// The first decimal nonce that solves the puzzle (expected 2^difficulty tries).
pub fn solve(challenge: &str, difficulty: u32) -> String {
    let mut n: u64 = 0;
    loop {
        let nonce = n.to_string();
        if is_solution(challenge, &nonce, difficulty) {
            return nonce;
        }
        n += 1;
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
        let nonce = solve("abc.def", 10);
        assert!(is_solution("abc.def", &nonce, 10));
    }
}
