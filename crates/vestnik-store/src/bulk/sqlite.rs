//! SQLite: a batch runs on the single writer connection's own handle, through
//! `rusqlite`, on the calling thread (the batch writers' thread), from
//! `BEGIN IMMEDIATE` to `COMMIT` without a thread switch. Through `sqlx`
//! every statement, and every row it returned, crossed to the connection's
//! worker thread and back; under `latency` on SQLite a sixth of the server's
//! CPU went to those switches (`perf`: `finish_task_switch` 15 %). The
//! connection stays the pool's one writer, so writes still queue in-process
//! instead of meeting SQLITE_BUSY.
use super::{AckedRow, Bulk, KnownMessage, MessageInsert, OutboxInsert, ReceiptInsert};
use crate::{AckBatchItem, NewMessage, OutboxRow, Result, StoreError, StoredMessage};
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::sqlite::LockedSqliteHandle;
use sqlx::SqlitePool;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Runs a send batch and an ack batch (either may be empty) in one
/// transaction (`Store::store_messages` and `Store::ack` are its halves).
pub(crate) async fn store_and_ack(
    pool: &SqlitePool,
    sends: &[NewMessage],
    acks: &[AckBatchItem],
    now: i64,
    expires_at: i64,
) -> Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
    let mut conn = pool.acquire().await?;
    let mut handle = conn.lock_handle().await?;
    in_transaction(&mut handle, |b| {
        ready(super::store_and_ack(b, sends, acks, now, expires_at))
    })
}

/// Runs `work` inside a write transaction on the locked connection, and
/// leaves no transaction open whatever happens.
fn in_transaction<T>(
    handle: &mut LockedSqliteHandle<'_>,
    work: impl FnOnce(&mut SqliteBulk<'_>) -> Result<T>,
) -> Result<T> {
    // SAFETY: `LockedSqliteHandle` guarantees that sqlx's worker thread makes
    // no call on this connection, nor on its statements, while it lives (it
    // exists for exactly this). The `rusqlite::Connection` made here is
    // dropped before `handle`, and does not close the connection when it is
    // (`from_handle` borrows it): sqlx still owns it.
    #[allow(unsafe_code)]
    let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }?;
    db.execute_batch("BEGIN IMMEDIATE")?;
    let done = work(&mut SqliteBulk(&db)).and_then(|v| {
        db.execute_batch("COMMIT")?;
        Ok(v)
    });
    if done.is_err() && !db.is_autocommit() {
        // A failed statement leaves the transaction open; the error that
        // matters is the first, so this one's own failure is not reported.
        let _ = db.execute_batch("ROLLBACK");
    }
    done
}

/// Drives a future to its end on this thread. `SqliteBulk`'s statements run
/// synchronously, so the batch logic never waits and finishes in one poll.
fn ready<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(StoreError::Database(sqlx::Error::Protocol(
            "a SQLite batch waited on something other than SQLite".into(),
        ))),
    }
}

/// The statements on the writer connection inside an open transaction. In
/// process, a statement costs no round trip, so each is prepared once per
/// batch and run once per row: unlike a `VALUES` list of the batch's length,
/// whose text (and parse) changed with every batch size.
struct SqliteBulk<'c>(&'c Connection);

impl Bulk for SqliteBulk<'_> {
    async fn known_messages(&mut self, keys: &[(&str, &str)]) -> Result<Vec<KnownMessage>> {
        let mut stmt = self.0.prepare(
            "SELECT id, seq, created_at FROM messages WHERE sender_device_id = ?1 AND client_msg_id = ?2",
        )?;
        let mut out = Vec::new();
        for (device, cmid) in keys {
            let found = stmt
                .query_row([device, cmid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((id, seq, at)) = found {
                out.push(((*device).to_owned(), (*cmid).to_owned(), id, seq, at));
            }
        }
        Ok(out)
    }

    /// The single writer needs no row locks.
    async fn bump_seqs(&mut self, counts: &[(&str, i64)]) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.0.prepare(
            "UPDATE conversations SET last_seq = last_seq + ?2 WHERE id = ?1 RETURNING last_seq",
        )?;
        let mut out = Vec::with_capacity(counts.len());
        for (id, n) in counts {
            let last = stmt.query_row(params![id, n], |r| r.get(0)).optional()?;
            if let Some(last) = last {
                out.push(((*id).to_owned(), last));
            }
        }
        Ok(out)
    }

    async fn insert_messages(&mut self, rows: &[MessageInsert<'_>]) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare(
            "INSERT INTO messages (id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at, msg_type, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (sender_device_id, client_msg_id) DO NOTHING",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let inserted = stmt.execute(params![
                r.id,
                r.conversation_id,
                r.seq,
                r.sender_user_id,
                r.sender_device_id,
                r.client_msg_id,
                r.created_at,
                r.msg_type,
                r.body,
            ])?;
            if inserted == 1 {
                out.push(r.id.to_owned());
            }
        }
        Ok(out)
    }

    async fn stored_message(
        &mut self,
        sender_device_id: &str,
        client_msg_id: &str,
    ) -> Result<(String, i64, i64)> {
        Ok(self.0.query_row(
            "SELECT id, seq, created_at FROM messages WHERE sender_device_id = ?1 AND client_msg_id = ?2",
            [sender_device_id, client_msg_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }

    async fn insert_outbox(
        &mut self,
        rows: &[OutboxInsert<'_>],
    ) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self.0.prepare(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            stmt.execute(params![
                r.device_id,
                r.kind,
                r.message_id,
                r.conversation_id,
                r.seq,
                r.sender_user_id,
                r.sender_device_id,
                r.msg_type,
                r.body,
                r.created_at,
                r.expires_at,
            ])?;
            out.push((
                self.0.last_insert_rowid(),
                r.device_id.to_owned(),
                r.message_id.to_owned(),
            ));
        }
        Ok(out)
    }

    async fn delete_acked(&mut self, pairs: &[(&str, i64)]) -> Result<Vec<AckedRow>> {
        let mut stmt = self.0.prepare(
            "DELETE FROM outbox WHERE id = ?2 AND device_id = ?1
             RETURNING device_id, kind, message_id, conversation_id, seq, sender_user_id",
        )?;
        let mut out = Vec::with_capacity(pairs.len());
        for (device, cursor) in pairs {
            let row = stmt
                .query_row(params![device, cursor], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()?;
            out.extend(row);
        }
        Ok(out)
    }

    async fn insert_receipts(
        &mut self,
        rows: &[ReceiptInsert<'_>],
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.0.prepare(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
             SELECT d.id, 'receipt', ?1, ?2, ?3, ?4, ?5, 0, ?7, ?8, ?9
             FROM devices d WHERE d.user_id = ?6 AND d.revoked_at IS NULL
             RETURNING id, device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at",
        )?;
        let mut out = Vec::new();
        for r in rows {
            let queued = stmt.query_map(
                params![
                    r.first_message_id,
                    r.conversation_id,
                    r.seq,
                    r.acker_user,
                    r.acker_device,
                    r.sender,
                    r.body,
                    now,
                    expires_at,
                ],
                |r| {
                    Ok(OutboxRow {
                        id: r.get(0)?,
                        device_id: r.get(1)?,
                        kind: r.get(2)?,
                        message_id: r.get(3)?,
                        conversation_id: r.get(4)?,
                        seq: r.get(5)?,
                        sender_user_id: r.get(6)?,
                        sender_device_id: r.get(7)?,
                        msg_type: r.get(8)?,
                        body: r.get(9)?,
                        created_at: r.get(10)?,
                    })
                },
            )?;
            for row in queued {
                out.push(row?);
            }
        }
        Ok(out)
    }
}
