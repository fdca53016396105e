//! The audit log: `AuditStore`, and the insert that registration shares.

use sqlx::Transaction;

use super::dialect::{query, Dialect};
use super::Backend;
use crate::{AuditEvent, AuditRow, AuditStore, Result};

#[async_trait::async_trait]
impl<S: Backend> AuditStore for S {
    async fn append_audit(&self, e: &AuditEvent) -> Result<()> {
        let mut tx = self.write().begin().await?;
        insert_audit(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        user_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        Ok(query(
            "SELECT id, user_id, device_id, event, ip, user_agent, request_id, detail, created_at FROM audit_log
             WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.read())
        .await?)
    }
}

pub(super) async fn insert_audit<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    e: &AuditEvent,
) -> Result<()> {
    query(
        "INSERT INTO audit_log (user_id, device_id, event, ip, user_agent, request_id, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&e.user_id)
    .bind(&e.device_id)
    .bind(&e.event)
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.request_id)
    .bind(&e.detail)
    .bind(e.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
