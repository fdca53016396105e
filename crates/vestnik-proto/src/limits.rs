//! The limits a client can see in the API: sizes, counts and ranges of what
//! it sends. They live beside the wire types so the OpenAPI document states
//! them from the same constants the server checks; `vestnik_core::limits`
//! re-exports them with the server-only limits, so there is one place to look.

/// RFC 5321: a path holds at most 256 octets including the brackets.
pub const EMAIL_MAX_CHARS: usize = 254;

/// NIST SP 800-63B: at least 8 characters; allow long passphrases but cap the
/// work an attacker can make argon2 do per request.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest password accepted at registration.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// An invitation to a group waits this long for its answer (7 days).
pub const GROUP_INVITATION_TTL_SECS: i64 = 7 * 86_400;

/// Shortest and longest mute.
pub const MUTE_MIN_SECS: i64 = 60;
/// A year.
pub const MUTE_MAX_SECS: i64 = 31_536_000;

/// Longest display name.
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
/// Profiles asked for in one request.
pub const PROFILES_PER_REQUEST_MAX: usize = 100;
/// Largest image accepted as a profile picture (it is re-encoded smaller).
pub const AVATAR_UPLOAD_MAX_BYTES: usize = 4 << 20;
/// Edge of the square JPEG the server makes of a profile picture.
pub const AVATAR_EDGE_PX: u32 = 512;

/// Longest device name.
pub const DEVICE_NAME_MAX_CHARS: usize = 64;
/// Longest device platform.
pub const DEVICE_PLATFORM_MAX_CHARS: usize = 32;
/// A user may have this many active devices; more is a sign of abuse.
pub const MAX_DEVICES_PER_USER: i64 = 20;
/// One-time keys in one upload.
pub const MAX_ONE_TIME_KEYS_PER_UPLOAD: usize = 100;
/// One-time keys the server holds for one device.
pub const MAX_ONE_TIME_KEYS_PER_DEVICE: i64 = 500;
/// Key ids are client-chosen labels.
pub const KEY_ID_MAX_CHARS: usize = 64;

/// Proof-of-work answers: a challenge is ~100 characters; a nonce is a
/// counter written in decimal or hex.
pub const POW_CHALLENGE_MAX_CHARS: usize = 256;
/// Longest proof-of-work nonce.
pub const POW_NONCE_MAX_CHARS: usize = 64;

/// Audit events returned per page.
pub const AUDIT_PAGE_MAX: i64 = 200;
/// Audit events in an account export (the most recent).
pub const AUDIT_EXPORT_MAX: usize = 10_000;

/// Longest group or channel title.
pub const TITLE_MAX_CHARS: usize = 128;
/// Longest group or channel topic.
pub const TOPIC_MAX_CHARS: usize = 1024;
/// Longest avatar reference.
pub const AVATAR_REF_MAX_CHARS: usize = 256;
/// Members named when a group is created (more join later).
pub const CREATE_MEMBERS_MAX: usize = 1000;
/// Uses of an invite link when the request names none.
pub const INVITE_DEFAULT_USES: i64 = 100;
/// Most uses one invite link may allow.
pub const INVITE_MAX_USES: i64 = 10_000;
/// Lifetime of an invite link when the request names none, seconds.
pub const INVITE_DEFAULT_TTL_SECS: i64 = 7 * 86_400;
/// Shortest lifetime of an invite link, seconds.
pub const INVITE_MIN_TTL_SECS: i64 = 60;
/// Longest lifetime of an invite link, seconds.
pub const INVITE_MAX_TTL_SECS: i64 = 30 * 86_400;
/// Invite tokens are 43 characters; anything much longer is not one.
pub const INVITE_TOKEN_MAX_CHARS: usize = 128;

/// Largest ciphertext of one envelope (base64 characters).
pub const CIPHERTEXT_MAX_CHARS: usize = 64 * 1024;
/// Envelopes in one send: every device of every member of a direct chat.
pub const MAX_ENVELOPES: usize = 2 * MAX_DEVICES_PER_USER as usize;
/// Envelopes in one key share: a large group's devices take several sends.
pub const MAX_KEY_ENVELOPES: usize = 1000;
/// Longest client-chosen message id.
pub const CLIENT_MSG_ID_MAX_CHARS: usize = 64;
/// Items per page of pending deliveries, and posts per page of a channel log.
pub const PAGE_MAX: i64 = 500;
/// Items per page when the request names no limit.
pub const PAGE_DEFAULT: i64 = 100;
/// Cursors in one acknowledgement.
pub const ACK_MAX: usize = 1000;
/// Users in one presence subscription.
pub const PRESENCE_SUBSCRIBE_MAX: usize = 100;

/// Media: the shortest lifetime an upload may ask for.
pub const MEDIA_MIN_TTL_SECS: i64 = 60;
