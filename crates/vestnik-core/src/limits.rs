//! Every fixed limit in one place, each with the reason it has the value it has.
//! Limits an operator may want to tune live in [`crate::Config`] instead.
//! The limits clients see in the API are defined in `vestnik_proto::limits`
//! (the OpenAPI document states them) and re-exported here.

pub use vestnik_proto::limits::*;

use std::time::Duration;

/// Largest JSON request body. Key uploads are the biggest auth bodies
/// (100 one-time keys of ~100 bytes each), so 64 KiB leaves ample room.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;
/// How long a request may take before the server answers 408/503.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Uploads and downloads at the local store's blob URLs: 100 MiB at a slow
/// 256 kbit/s takes ~55 minutes.
pub const MEDIA_TRANSFER_TIMEOUT_SECS: u64 = 3600;

/// E-mail verification codes: 6 digits, 15 minutes, 5 wrong tries burn the code.
pub const EMAIL_CODE_DIGITS: u32 = 6;
/// A code expires this long after it is sent.
pub const EMAIL_CODE_TTL_SECS: i64 = 15 * 60;
/// Wrong guesses allowed before the code is burnt and a new one must be requested.
pub const EMAIL_CODE_MAX_ATTEMPTS: i64 = 5;
/// A new code for the same address is sent at most once a minute.
pub const EMAIL_CODE_RESEND_SECS: i64 = 60;

/// TOTP: RFC 6238 defaults (SHA-1, 6 digits, 30 s) that every authenticator app
/// supports; one step of clock drift accepted either way.
pub const TOTP_DIGITS: usize = 6;
/// Length of one TOTP time step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps of clock drift accepted on either side of the current one.
pub const TOTP_SKEW_STEPS: i64 = 1;
/// A 2FA setup that is not confirmed within this time must be started again.
pub const TOTP_SETUP_TTL_SECS: i64 = 15 * 60;
/// Single-use recovery codes issued when 2FA is enabled.
pub const RECOVERY_CODES: usize = 10;

/// Proof-of-work challenges are valid this long.
pub const POW_CHALLENGE_TTL_SECS: i64 = 5 * 60;
/// Failed logins/verifications per account or IP within the window before a
/// proof of work is demanded.
pub const POW_FAILURE_THRESHOLD: i64 = 5;
/// The window those failures are counted in.
pub const POW_FAILURE_WINDOW_SECS: i64 = 15 * 60;

// ---------- Sessions and the key directory (vestnik-auth) ----------

/// Cached sessions live at most this long (every revocation deletes them sooner).
pub const CACHE_TTL_MAX_MS: i64 = 60_000;
/// How long after a rotation the rotated refresh token may be sent again
/// and get the same new pair: long enough for a client to retry a request
/// whose answer was lost, short enough that a stolen copy used later is
/// still caught as reuse.
pub const REFRESH_RETRY_MS: i64 = 30_000;
/// How long a cached device list may live (changes delete it sooner).
pub const DEVICE_LIST_CACHE_MS: u64 = 10_000;
/// WebSocket tickets: browsers cannot set headers on a WebSocket, so they
/// trade their bearer token for a short-lived single-use ticket in the URL.
pub const WS_TICKET_TTL_SECS: i64 = 30;
/// Clients top up their pool when fewer keys than this remain.
pub const ONE_TIME_KEY_LOW_WATERMARK: i64 = 20;

// ---------- Delivery: writers, sockets, routing, the send-context cache (vestnik-realtime) ----------

/// Messages (and acks) one writer commits in one transaction at most.
pub const WRITER_MAX_BATCH: usize = 256;
/// Items that may wait for the writer; beyond this callers get `Unavailable`.
pub const WRITER_QUEUE: usize = 16 * 1024;
/// Frames that may wait for one connection before it counts as a slow reader.
pub const SOCKET_QUEUE: usize = 1024;
/// Bytes (ciphertext plus a per-frame allowance) that may wait for one
/// connection before it counts as a slow reader: bounds a stalled socket's
/// memory (1,024 frames of 64 KiB would be 64 MiB) while a reader that keeps
/// up never comes near it.
pub const SOCKET_QUEUE_BYTES: usize = 4 << 20;
/// How long a node-local copy of a direct chat's members and devices is used.
pub const SEND_CONTEXT_TTL: Duration = Duration::from_secs(1);
/// Age after which the next sender refreshes the copy while the others keep
/// using it until `TTL`. Without it every send in flight when the copy
/// expired read the database at once: under `throughput` on PostgreSQL, 790
/// reads a second for 200 copies, a fifth of the database's time.
pub const SEND_CONTEXT_REFRESH_AFTER: Duration = Duration::from_millis(750);
/// Entries kept at most; past this the cache is emptied (cheap, and rare).
pub const SEND_CONTEXT_MAX_ENTRIES: usize = 100_000;
/// Routed frames per stream entry.
pub const ROUTED_BATCH: usize = 256;

// ---------- Media (vestnik-media) ----------

/// Larger images get no preview (decoding holds them in memory).
pub const PREVIEW_MAX_SOURCE_BYTES: i64 = 20 << 20;
/// Tokens longer than this are refused before any parsing.
pub const MEDIA_URL_TOKEN_MAX_CHARS: usize = 1024;
/// Expired media deleted per statement (the reaper repeats while full).
pub const MEDIA_REAP_BATCH: i64 = 500;
/// S3 refuses presigned URLs valid for longer (7 days).
pub const S3_MAX_PRESIGN: Duration = Duration::from_secs(7 * 86_400);
/// Bound on the server's own calls (HEAD, DELETE, bucket setup).
pub const S3_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A scan of the largest object a channel may hold, with room to spare.
pub const CLAMD_TIMEOUT: Duration = Duration::from_secs(60);
/// clamd's reply is one short line.
pub const CLAMD_MAX_REPLY: usize = 1024;
/// A pending row outlives its upload URL by this much, so an upload that
/// started just before the URL expired can still finish and be completed.
pub const UPLOAD_GRACE_MS: i64 = 5 * 60 * 1000;

/// Password hashings (argon2id, 19 MiB each) that may run at once per core;
/// more wait briefly, then get 503 `busy`.
pub const HASHINGS_PER_CORE: usize = 2;

// ---------- WebSockets (vestnik-gateway) ----------

/// Largest frame a client may send (a message to 40 devices of ~48 KiB each).
pub const WS_MAX_FRAME_BYTES: usize = 2 * 1024 * 1024;
/// Sends one connection may have in flight before it must wait for answers.
pub const WS_MAX_IN_FLIGHT: usize = 256;
/// Acknowledgements one connection may have being stored at once; beyond
/// this the connection waits for its ack (backpressure, nothing refused).
pub const WS_ACKS_IN_FLIGHT: usize = 16;
/// Frames already queued for a socket that go out in one write.
pub const WS_COALESCE_FRAMES: usize = 64;
/// Longest a write to a socket may take (a client that stops reading
/// fills its TCP window, and then every write would wait for ever).
pub const WS_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

// ---------- The in-process bus and Redis (vestnik-bus) ----------

/// Shards of the in-process maps (fewer lock collisions across cores).
pub const MEMORY_SHARDS: usize = 64;
/// Below this size a shard is never swept: scanning tiny maps gains nothing.
pub const MEMORY_MIN_SWEEP_LEN: usize = 1024;
/// How long a presence entry lives unless refreshed by the node's heartbeat.
pub const PRESENCE_TTL_MS: u64 = 90_000;
/// Entries kept per node stream; older ones are trimmed (the outbox has them).
pub const STREAM_MAXLEN: usize = 100_000;
/// Bounds on the in-process cache and rate-limit buckets: an attacker cycling
/// keys fills memory up to here, not further (the oldest are evicted).
pub const MEMORY_MAX_KV_ENTRIES: usize = 1_000_000;
/// Rate-limit buckets kept in process (same reason as [`MEMORY_MAX_KV_ENTRIES`]).
pub const MEMORY_MAX_BUCKETS: usize = 1_000_000;
/// How long a node trusts its local copy without hearing otherwise.
pub const NEAR_CACHE_TTL_MS: u64 = 2_000;
/// Beyond this many entries the local copy is swept (a bound on memory).
pub const NEAR_CACHE_MAX_ENTRIES: usize = 100_000;
/// Connecting to Redis at start or after a drop.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A stalled Redis must not hang request handlers indefinitely; failing lets
/// the caller answer 503 instead.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis commands fail at once after Redis proved unreachable,
/// before they are tried again (`vestnik_bus::RedisConn`).
pub const REDIS_BREAKER_OPEN: Duration = Duration::from_secs(1);

// ---------- The databases (vestnik-store) ----------

/// How often the checkpoint connection copies the WAL back. Whatever it has
/// copied and synced, the writer's own checkpoint need not: with 1 s between
/// them, the writer's fsync of the WAL took 10–40 ms (once every 0.9 s at
/// 2,000 msg/s) and every send waiting behind it took as long, which was the
/// whole of `latency`'s p99 on SQLite (37 ms); at 100 ms it takes 1.5–5 ms
/// and p99 fell to 6–9 ms, with `throughput` unchanged.
pub const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Rows a connection's thread may run ahead of the task reading them.
pub const SQLITE_ROW_BUFFER: usize = 8192;
/// Idle turn connections kept at most: the batch writers run one turn each
/// at a time, and callers outside them (tests, tools) are rare.
pub const PG_IDLE_TURN_CONNECTIONS: usize = 4;
/// Rows changed since the last ANALYZE worth a new one (plus a tenth of the table).
pub const PG_ANALYZE_MIN_CHANGES: i64 = 500;
/// Dead outbox rows worth a vacuum (a few MB of heap and index).
pub const PG_QUEUE_VACUUM_MIN_DEAD: i64 = 10_000;
