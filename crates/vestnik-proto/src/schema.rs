//! Schemas of string fields whose rules are checked by the server's own
//! validators (`vestnik_core::Email`, the device checks in `vestnik-auth`,
//! the text checks in `vestnik-realtime`). Each pattern says exactly what that
//! validator accepts, so a client generated from the document sends nothing
//! the server refuses; the contract test holds the two together.
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// Control characters (Unicode Cc, as Rust's `char::is_control` sees them),
/// as the body of a regex character class: no address, name or label may
/// hold one.
pub const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// Control characters and whitespace (Unicode White_Space, as Rust's
/// `char::is_whitespace` sees it), as the body of a regex character class.
pub const CONTROL_OR_SPACE: &str =
    r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

fn string(pattern: String, min: Option<usize>, max: Option<usize>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(max)
        .into()
}

/// The same string, or `null` (an optional field: `null` means absent).
fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
            RefOr::T(Schema::Object(o))
        }
        other => other,
    }
}

/// An e-mail address: dot-separated atoms, `@`, a domain of at least two
/// labels; at most 254 characters (`vestnik_core::Email`).
pub fn email() -> RefOr<Schema> {
    let atom = format!(r#"[^{CONTROL_OR_SPACE}<>()\[\]\\,;:"@.]+"#);
    string(
        format!(r"^{atom}(\.{atom})*@{atom}(\.{atom})+$"),
        Some(5),
        Some(crate::limits::EMAIL_MAX_CHARS),
    )
}

/// A label of 1 to `max` characters without control characters that does
/// not start or end with whitespace.
fn label(max: usize) -> RefOr<Schema> {
    string(
        format!(
            "^[^{CONTROL_OR_SPACE}]([^{CONTROL}]{{0,{}}}[^{CONTROL_OR_SPACE}])?$",
            max - 2
        ),
        Some(1),
        Some(max),
    )
}

/// A device name: 1 to 64 characters, no control characters, no leading or
/// trailing whitespace.
pub fn device_name() -> RefOr<Schema> {
    label(crate::limits::DEVICE_NAME_MAX_CHARS)
}

/// A device platform: 1 to 32 characters, no control characters, no leading
/// or trailing whitespace.
pub fn device_platform() -> RefOr<Schema> {
    label(crate::limits::DEVICE_PLATFORM_MAX_CHARS)
}

/// A client-chosen key id.
pub fn key_id() -> RefOr<Schema> {
    string(
        format!("^[A-Za-z0-9_:.-]{{1,{}}}$", crate::limits::KEY_ID_MAX_CHARS),
        Some(1),
        Some(crate::limits::KEY_ID_MAX_CHARS),
    )
}

/// 32 bytes in standard base64, unpadded (as vodozemac writes it) or padded.
pub fn key32() -> RefOr<Schema> {
    string(
        "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$".into(),
        Some(43),
        Some(44),
    )
}

/// 64 bytes (an Ed25519 signature) in standard base64, unpadded or padded.
pub fn signature64() -> RefOr<Schema> {
    string("^[A-Za-z0-9+/]{85}[AQgw](==)?$".into(), Some(86), Some(88))
}

/// Text of 1 (or 0) to `max` characters without control characters.
fn text(min: usize, max: usize) -> RefOr<Schema> {
    string(
        format!("^[^{CONTROL}]{{{min},{max}}}$"),
        Some(min),
        Some(max),
    )
}

/// A group or channel title: 1 to 128 characters without control
/// characters, or `null`.
pub fn title() -> RefOr<Schema> {
    nullable(text(1, crate::limits::TITLE_MAX_CHARS))
}

/// A group or channel topic: up to 1,024 characters without control
/// characters, or `null`.
pub fn topic() -> RefOr<Schema> {
    nullable(text(0, crate::limits::TOPIC_MAX_CHARS))
}

/// An avatar reference: up to 256 characters without control characters,
/// or `null`.
pub fn avatar_ref() -> RefOr<Schema> {
    nullable(text(0, crate::limits::AVATAR_REF_MAX_CHARS))
}

/// A client-chosen message id: 1 to 64 characters without control characters.
pub fn client_msg_id() -> RefOr<Schema> {
    text(1, crate::limits::CLIENT_MSG_ID_MAX_CHARS)
}

/// Base64 ciphertext (standard alphabet, padding allowed anywhere the
/// server's check allows it: it checks the alphabet, not the structure).
pub fn ciphertext() -> RefOr<Schema> {
    string(
        format!(
            "^[A-Za-z0-9+/=]{{1,{}}}$",
            crate::limits::CIPHERTEXT_MAX_CHARS
        ),
        Some(1),
        Some(crate::limits::CIPHERTEXT_MAX_CHARS),
    )
}

/// A [`ciphertext`], or `null`.
pub fn optional_ciphertext() -> RefOr<Schema> {
    nullable(ciphertext())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex() -> RefOr<Schema> {
    string("^[0-9a-f]{64}$".into(), Some(64), Some(64))
}

/// A six-digit code (e-mail verification, TOTP).
pub fn six_digits() -> RefOr<Schema> {
    string("^[0-9]{6}$".into(), Some(6), Some(6))
}
