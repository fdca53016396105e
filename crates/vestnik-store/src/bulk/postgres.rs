//! PostgreSQL: a writer turn is one statement (`turn_postgres.sql`), columns
//! bound as arrays. Its data-modifying CTEs number, insert and queue the
//! sends, delete the acked rows and queue their receipts, all in the
//! statement's own transaction: one round trip and one commit per turn.
//! As nine statements (`BEGIN` to `COMMIT`), each a round trip to a server
//! process competing for the same two cores, the turn waited on the
//! scheduler between every step.
//!
//! Turns run on connections of their own (`TurnConnections`), not the
//! pool's: sqlx pings a pooled connection when lending it and again when it
//! comes back, two more round trips (and two more wakeups of the server
//! process) per turn.
//!
//! The rules are SQLite's (`super::store_messages`, `super::ack`), in SQL;
//! `tests/batches.rs` runs the same cases on both.
use crate::{AckBatchItem, NewMessage, OutboxRow, Result, StoreError, StoredMessage};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, PgPool};
use std::collections::HashMap;
use std::sync::Mutex;
use vestnik_core::limits::PG_IDLE_TURN_CONNECTIONS as IDLE_TURN_CONNECTIONS;

const TURN: &str = include_str!("turn_postgres.sql");

/// One result row of the turn: a tag, the batch index of a send, then
/// text and integer columns whose meaning depends on the tag (see `TURN`'s
/// final SELECT): `k` a retry of a stored message, `m` a message stored,
/// `o` an envelope queued, `r` a receipt queued.
type TurnRow = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Idle connections kept for writer turns, opened with the pool's options.
/// A connection goes back only after a turn that succeeded: after an error
/// (or a turn dropped halfway) its state is unknown, so it is closed.
pub(crate) struct TurnConnections {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
}

/// How long opening a turn connection may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl TurnConnections {
    pub(crate) fn new(pool: &PgPool) -> Self {
        Self {
            // PostgreSQL plans a prepared statement afresh for each execution
            // while those custom plans cost less than its generic plan. For
            // a turn of a message or two they always do (the arrays are
            // known to be short), and planning this statement took more CPU
            // than running it: 60 % of a core per writer at 500 msg/s
            // (`perf`: copyObjectImpl, expression_tree_walker). The generic
            // plan finds retries by index whatever the statistics say
            // (`LATERAL … LIMIT 1` in `TURN`), and the seqs and acked rows
            // through `= ANY` on primary keys; it is re-planned when the
            // tables are analyzed.
            options: (*pool.connect_options())
                .clone()
                .options([("plan_cache_mode", "force_generic_plan")]),
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn take(&self) -> Result<PgConnection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            // Bounded like the pool's acquire: an unreachable server must fail
            // the turn (its senders get `unavailable`), not hold the writer.
            None => tokio::time::timeout(CONNECT_TIMEOUT, self.options.connect())
                .await
                .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?
                .map_err(StoreError::from),
        }
    }

    fn give_back(&self, conn: PgConnection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_TURN_CONNECTIONS {
                idle.push(conn);
            }
        }
    }
}

/// Runs a send batch and an ack batch (either may be empty) in one
/// transaction (`Store::store_messages` and `Store::ack` are its halves).
pub(crate) async fn store_and_ack(
    conns: &TurnConnections,
    sends: &[NewMessage],
    acks: &[AckBatchItem],
    now: i64,
    expires_at: i64,
) -> Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
    if sends.is_empty() && acks.iter().all(|a| a.cursors.is_empty()) {
        return Ok((Vec::new(), vec![Vec::new(); acks.len()]));
    }
    let mut conn = conns.take().await?;
    let out = turn(&mut conn, sends, acks, now, expires_at).await?;
    conns.give_back(conn);
    Ok(out)
}

async fn turn(
    conn: &mut PgConnection,
    sends: &[NewMessage],
    acks: &[AckBatchItem],
    now: i64,
    expires_at: i64,
) -> Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
    let mut receipts: Vec<Vec<OutboxRow>> = vec![Vec::new(); acks.len()];
    let (firsts, repeats) = super::first_copies(sends);
    let rows: Vec<TurnRow> = bind_turn(sqlx::query_as(TURN), sends, &firsts, acks, expires_at)
        .bind(now)
        .bind(expires_at)
        .bind(conversations(sends, &firsts))
        .fetch_all(&mut *conn)
        .await?;

    let mut results: Vec<Option<StoredMessage>> = vec![None; sends.len()];
    let mut envelopes: Vec<(String, i64, String)> = Vec::new();
    // Each acking device, with its first item in `acks`.
    let mut acker: HashMap<&str, usize> = HashMap::new();
    for (i, a) in acks.iter().enumerate() {
        acker.entry(a.device_id.as_str()).or_insert(i);
    }
    for (tag, i, s1, s2, s3, s4, s5, s6, s7, n1, n2, n3, n4) in rows {
        match tag.as_str() {
            "k" | "m" => {
                let slot = i
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| results.get_mut(i))
                    .ok_or_else(|| malformed("a message row without its batch index"))?;
                *slot = Some(StoredMessage {
                    message_id: s1.unwrap_or_default(),
                    seq: n1.unwrap_or_default(),
                    created_at: n2.unwrap_or_default(),
                    duplicate: tag == "k",
                    outbox: Vec::new(),
                });
            }
            "o" => envelopes.push((
                s1.unwrap_or_default(),
                n1.unwrap_or_default(),
                s2.unwrap_or_default(),
            )),
            "r" => {
                let row = OutboxRow {
                    id: n1.unwrap_or_default(),
                    device_id: s1.unwrap_or_default(),
                    kind: s2.unwrap_or_default(),
                    message_id: s3.unwrap_or_default(),
                    conversation_id: s4.unwrap_or_default(),
                    seq: n2.unwrap_or_default(),
                    sender_user_id: s5.unwrap_or_default(),
                    sender_device_id: s6.unwrap_or_default(),
                    msg_type: n3.unwrap_or_default(),
                    body: s7.unwrap_or_default(),
                    created_at: n4.unwrap_or_default(),
                };
                // The receipt names the acking device as its sender.
                if let Some(i) = acker.get(row.sender_device_id.as_str()) {
                    receipts[*i].push(row);
                }
            }
            other => return Err(malformed(&format!("an unknown row tag {other:?}"))),
        }
    }

    let by_message: HashMap<&str, usize> =
        firsts.iter().map(|i| (sends[*i].id.as_str(), *i)).collect();
    for (message_id, cursor, device_id) in envelopes {
        if let Some(r) = by_message
            .get(message_id.as_str())
            .and_then(|i| results[*i].as_mut())
        {
            r.outbox.push((cursor, device_id));
        }
    }
    // A first copy with no row lost a race with the same retry stored by
    // another node after this statement's snapshot: answer with that row.
    for &i in &firsts {
        if results[i].is_none() {
            let m = &sends[i];
            let (message_id, seq, created_at): (String, i64, i64) = sqlx::query_as(
                "SELECT id, seq, created_at FROM messages WHERE sender_device_id = $1 AND client_msg_id = $2",
            )
            .bind(&m.sender_device_id)
            .bind(&m.client_msg_id)
            .fetch_one(&mut *conn)
            .await?;
            results[i] = Some(StoredMessage {
                message_id,
                seq,
                created_at,
                duplicate: true,
                outbox: Vec::new(),
            });
        }
    }
    super::fill_repeats(&mut results, &repeats);
    Ok((results.into_iter().flatten().collect(), receipts))
}

/// Binds the turn's array parameters $1-$17: the sends' first copies, their
/// envelopes, and the acked (device, cursor, user) triples.
fn bind_turn<'q>(
    q: sqlx::query::QueryAs<'q, sqlx::Postgres, TurnRow, sqlx::postgres::PgArguments>,
    sends: &'q [NewMessage],
    firsts: &[usize],
    acks: &'q [AckBatchItem],
    expires_at: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, TurnRow, sqlx::postgres::PgArguments> {
    let msgs: Vec<(i64, &NewMessage)> = firsts
        .iter()
        .map(|i| (i64::try_from(*i).unwrap_or(i64::MAX), &sends[*i]))
        .collect();
    let envs: Vec<(i64, &(String, i64, String))> = msgs
        .iter()
        .flat_map(|(i, m)| m.envelopes.iter().map(move |e| (*i, e)))
        .collect();
    let triples: Vec<(&str, i64, &str)> = acks
        .iter()
        .flat_map(|a| {
            a.cursors
                .iter()
                .map(move |c| (a.device_id.as_str(), *c, a.user_id.as_str()))
        })
        .collect();
    q.bind(msgs.iter().map(|(i, _)| *i).collect::<Vec<_>>())
        .bind(msgs.iter().map(|(_, m)| m.id.as_str()).collect::<Vec<_>>())
        .bind(col(&msgs, |m| m.conversation_id.as_str()))
        .bind(col(&msgs, |m| m.sender_user_id.as_str()))
        .bind(col(&msgs, |m| m.sender_device_id.as_str()))
        .bind(col(&msgs, |m| m.client_msg_id.as_str()))
        .bind(msgs.iter().map(|(_, m)| m.created_at).collect::<Vec<_>>())
        .bind(
            msgs.iter()
                .map(|(_, m)| m.group_body.as_ref().map(|(t, _)| *t))
                .collect::<Vec<_>>(),
        )
        .bind(
            msgs.iter()
                .map(|(_, m)| m.group_body.as_ref().map(|(_, b)| b.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(envs.iter().map(|(i, _)| *i).collect::<Vec<_>>())
        .bind(envs.iter().map(|(_, e)| e.0.as_str()).collect::<Vec<_>>())
        .bind(envs.iter().map(|(_, e)| e.1).collect::<Vec<_>>())
        .bind(envs.iter().map(|(_, e)| e.2.as_str()).collect::<Vec<_>>())
        .bind(expires_at)
        .bind(triples.iter().map(|t| t.0).collect::<Vec<_>>())
        .bind(triples.iter().map(|t| t.1).collect::<Vec<_>>())
        .bind(triples.iter().map(|t| t.2).collect::<Vec<_>>())
}

/// One text column of the first copies.
fn col<'a>(msgs: &[(i64, &'a NewMessage)], f: impl Fn(&'a NewMessage) -> &'a str) -> Vec<&'a str> {
    msgs.iter().map(|(_, m)| f(m)).collect()
}

/// The conversations the first copies go to, each once.
fn conversations<'a>(sends: &'a [NewMessage], firsts: &[usize]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = firsts
        .iter()
        .map(|i| sends[*i].conversation_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn malformed(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!(
        "the writer turn returned {what}"
    )))
}
