//! SQLite: `VALUES` lists, chunked under the bound-parameter limit (32,766).
//! Each statement is a round trip to the single writer's thread, so batches
//! take a handful of statements whatever their size.
use super::{AckedRow, KnownMessage, MessageInsert, OutboxInsert, ReceiptInsert};
use crate::{OutboxRow, Result};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// Outbox rows per insert (11 parameters each).
const OUTBOX_ROWS_PER_STATEMENT: usize = 2000;
/// Acknowledged cursors per delete (2 parameters each).
const ACKS_PER_STATEMENT: usize = 5000;
/// Receipts per insert (7 parameters each).
const RECEIPTS_PER_STATEMENT: usize = 2000;
/// Messages per statement (9 parameters each).
const MESSAGES_PER_STATEMENT: usize = 1000;

pub(crate) async fn known_messages(
    conn: &mut SqliteConnection,
    keys: &[(&str, &str)],
) -> Result<Vec<KnownMessage>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(MESSAGES_PER_STATEMENT) {
        // A join with a VALUES list, not a row-value IN: SQLite (3.46,
        // bundled) matched nothing with the latter.
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT m.sender_device_id, m.client_msg_id, m.id, m.seq, m.created_at FROM messages m JOIN (",
        );
        qb.push_values(chunk, |mut b, (device, cmid)| {
            b.push_bind(*device).push_bind(*cmid);
        });
        qb.push(") AS v ON m.sender_device_id = v.column1 AND m.client_msg_id = v.column2");
        out.extend(
            qb.build_query_as::<KnownMessage>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}

/// Bumps each conversation's last seq by its count and returns the new
/// values (the single writer needs no row locks).
pub(crate) async fn bump_seqs(
    conn: &mut SqliteConnection,
    counts: &[(&str, i64)],
) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for chunk in counts.chunks(MESSAGES_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE conversations SET last_seq = last_seq + v.column2 FROM (",
        );
        qb.push_values(chunk, |mut b, (id, n)| {
            b.push_bind(*id).push_bind(*n);
        });
        qb.push(") AS v WHERE conversations.id = v.column1 RETURNING conversations.id, conversations.last_seq");
        out.extend(
            qb.build_query_as::<(String, i64)>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}

/// Inserts the messages; returns the ids of those inserted.
pub(crate) async fn insert_messages(
    conn: &mut SqliteConnection,
    rows: &[MessageInsert<'_>],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in rows.chunks(MESSAGES_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at, msg_type, body) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.conversation_id)
                .push_bind(r.seq)
                .push_bind(r.sender_user_id)
                .push_bind(r.sender_device_id)
                .push_bind(r.client_msg_id)
                .push_bind(r.created_at)
                .push_bind(r.msg_type)
                .push_bind(r.body);
        });
        qb.push(" ON CONFLICT (sender_device_id, client_msg_id) DO NOTHING RETURNING id");
        out.extend(
            qb.build_query_scalar::<String>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}

/// Inserts the envelopes; returns (cursor, device_id, message_id) of each.
pub(crate) async fn insert_outbox(
    conn: &mut SqliteConnection,
    rows: &[OutboxInsert<'_>],
) -> Result<Vec<(i64, String, String)>> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(OUTBOX_ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.device_id)
                .push_bind(r.kind)
                .push_bind(r.message_id)
                .push_bind(r.conversation_id)
                .push_bind(r.seq)
                .push_bind(r.sender_user_id)
                .push_bind(r.sender_device_id)
                .push_bind(r.msg_type)
                .push_bind(r.body)
                .push_bind(r.created_at)
                .push_bind(r.expires_at);
        });
        qb.push(" RETURNING id, device_id, message_id");
        out.extend(
            qb.build_query_as::<(i64, String, String)>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}

/// Deletes the acknowledged rows, each only if it belongs to the device that
/// acknowledged it.
pub(crate) async fn delete_acked(
    conn: &mut SqliteConnection,
    pairs: &[(&str, i64)],
) -> Result<Vec<AckedRow>> {
    let mut out = Vec::new();
    for chunk in pairs.chunks(ACKS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o JOIN (",
        );
        qb.push_values(chunk, |mut b, (device, cursor)| {
            b.push_bind(*device).push_bind(*cursor);
        });
        qb.push(") AS v ON o.id = v.column2 AND o.device_id = v.column1) RETURNING device_id, kind, message_id, conversation_id, seq, sender_user_id");
        out.extend(
            qb.build_query_as::<AckedRow>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}

/// Queues each receipt for every active device of its sender.
pub(crate) async fn insert_receipts(
    conn: &mut SqliteConnection,
    rows: &[ReceiptInsert<'_>],
    now: i64,
    expires_at: i64,
) -> Result<Vec<OutboxRow>> {
    let mut out = Vec::new();
    for chunk in rows.chunks(RECEIPTS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(concat!(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at) ",
            "SELECT d.id, 'receipt', v.column1, v.column2, v.column3, v.column4, v.column5, 0, v.column7, ",
        ));
        qb.push_bind(now);
        qb.push(", ");
        qb.push_bind(expires_at);
        qb.push(" FROM (");
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.first_message_id)
                .push_bind(r.conversation_id)
                .push_bind(r.seq)
                .push_bind(r.acker_user)
                .push_bind(r.acker_device)
                .push_bind(r.sender)
                .push_bind(r.body);
        });
        qb.push(concat!(
            ") AS v JOIN devices d ON d.user_id = v.column6 AND d.revoked_at IS NULL ",
            "RETURNING id, device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at"
        ));
        out.extend(
            qb.build_query_as::<OutboxRow>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}
