//! Identifiers are UUIDv7 strings: sortable by creation time, opaque to clients.

/// A fresh id: a UUIDv7 as 32 lowercase hex characters, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// An id that came from a client: 32 lowercase hex characters.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
