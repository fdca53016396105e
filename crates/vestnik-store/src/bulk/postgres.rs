//! PostgreSQL: one statement per operation, columns bound as arrays.
use super::{AckedRow, Bulk, KnownMessage, MessageInsert, OutboxInsert, ReceiptInsert};
use crate::{AckBatchItem, NewMessage, OutboxRow, Result, StoredMessage};
use sqlx::{PgConnection, PgPool};

/// Runs a send batch and an ack batch (either may be empty) in one
/// transaction (`Store::store_messages` and `Store::ack` are its halves).
pub(crate) async fn store_and_ack(
    pool: &PgPool,
    sends: &[NewMessage],
    acks: &[AckBatchItem],
    now: i64,
    expires_at: i64,
) -> Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
    let mut tx = pool.begin().await?;
    let out = super::store_and_ack(&mut PgBulk(&mut tx), sends, acks, now, expires_at).await?;
    tx.commit().await?;
    Ok(out)
}

/// The statements on a connection inside an open transaction.
struct PgBulk<'c>(&'c mut PgConnection);

impl Bulk for PgBulk<'_> {
    async fn known_messages(&mut self, keys: &[(&str, &str)]) -> Result<Vec<KnownMessage>> {
        let (devices, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        Ok(sqlx::query_as(
            "SELECT m.sender_device_id, m.client_msg_id, m.id, m.seq, m.created_at
             FROM UNNEST($1::text[], $2::text[]) AS v(device, cmid)
             JOIN messages m ON m.sender_device_id = v.device AND m.client_msg_id = v.cmid",
        )
        .bind(devices)
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await?)
    }

    /// Bumps each conversation's last seq by its count and returns the new
    /// values. The rows are locked in id order first, so concurrent batches that
    /// share conversations never deadlock.
    async fn bump_seqs(&mut self, counts: &[(&str, i64)]) -> Result<Vec<(String, i64)>> {
        let (ids, ns): (Vec<&str>, Vec<i64>) = counts.iter().copied().unzip();
        sqlx::query(
            "SELECT id FROM conversations WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .execute(&mut *self.0)
        .await?;
        Ok(sqlx::query_as(
            "UPDATE conversations c SET last_seq = c.last_seq + v.n
             FROM UNNEST($1::text[], $2::int8[]) AS v(id, n) WHERE c.id = v.id
             RETURNING c.id, c.last_seq",
        )
        .bind(ids)
        .bind(ns)
        .fetch_all(&mut *self.0)
        .await?)
    }

    /// Inserts the messages; returns the ids of those inserted (a retry stored
    /// concurrently by another node is skipped).
    async fn insert_messages(&mut self, rows: &[MessageInsert<'_>]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO messages (id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at, msg_type, body)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[])
             ON CONFLICT (sender_device_id, client_msg_id) DO NOTHING RETURNING id",
        )
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.conversation_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.sender_user_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.sender_device_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.client_msg_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.msg_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.body).collect::<Vec<_>>())
        .fetch_all(&mut *self.0)
        .await?)
    }

    /// Inserts the envelopes; returns (cursor, device_id, message_id) of each.
    async fn insert_outbox(
        &mut self,
        rows: &[OutboxInsert<'_>],
    ) -> Result<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::int8[], $9::text[], $10::int8[], $11::int8[])
             RETURNING id, device_id, message_id",
        )
        .bind(rows.iter().map(|r| r.device_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.message_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.conversation_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.sender_user_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.sender_device_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.msg_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.body).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.expires_at).collect::<Vec<_>>())
        .fetch_all(&mut *self.0)
        .await?)
    }

    /// Deletes the acknowledged rows, each only if it belongs to the device that
    /// acknowledged it.
    async fn delete_acked(&mut self, pairs: &[(&str, i64)]) -> Result<Vec<AckedRow>> {
        let (devices, cursors): (Vec<&str>, Vec<i64>) = pairs.iter().copied().unzip();
        Ok(sqlx::query_as(
            "DELETE FROM outbox o USING UNNEST($1::text[], $2::int8[]) AS v(device_id, id)
             WHERE o.id = v.id AND o.device_id = v.device_id
             RETURNING o.device_id, o.kind, o.message_id, o.conversation_id, o.seq, o.sender_user_id",
        )
        .bind(devices)
        .bind(cursors)
        .fetch_all(&mut *self.0)
        .await?)
    }

    /// Queues each receipt for every active device of its sender.
    async fn insert_receipts(
        &mut self,
        rows: &[ReceiptInsert<'_>],
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<OutboxRow>> {
        Ok(sqlx::query_as(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
             SELECT d.id, 'receipt', v.first, v.conversation_id, v.seq, v.acker_user, v.acker_device, 0, v.body, $8, $9
             FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[])
                  AS v(first, conversation_id, seq, acker_user, acker_device, sender, body)
             JOIN devices d ON d.user_id = v.sender AND d.revoked_at IS NULL
             RETURNING id, device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at",
        )
        .bind(rows.iter().map(|r| r.first_message_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.conversation_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.acker_user).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.acker_device).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.sender).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.body).collect::<Vec<_>>())
        .bind(now)
        .bind(expires_at)
        .fetch_all(&mut *self.0)
        .await?)
    }

    async fn stored_message(
        &mut self,
        sender_device_id: &str,
        client_msg_id: &str,
    ) -> Result<(String, i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT id, seq, created_at FROM messages WHERE sender_device_id = $1 AND client_msg_id = $2",
        )
        .bind(sender_device_id)
        .bind(client_msg_id)
        .fetch_one(&mut *self.0)
        .await?)
    }
}
