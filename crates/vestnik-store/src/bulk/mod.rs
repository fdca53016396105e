//! The multi-row statements of the delivery hot path, one module per backend.
//! PostgreSQL runs a whole writer turn as one statement, its columns bound
//! as arrays (`UNNEST`): one fixed text, parsed and planned once per
//! connection instead of once per batch size, and one round trip. SQLite
//! runs in process, where a statement costs no round trip: one prepared
//! statement per operation, run per row, driven by the batch logic here
//! (retries, seq numbering, receipts) against `Bulk`. PostgreSQL's SQL
//! follows the same rules, and `tests/batches.rs` holds both to them.
pub(crate) mod postgres;
pub(crate) mod sqlite;

use crate::{OutboxRow, Result};

/// One backend's hot-path statements, run inside an open write transaction.
pub(crate) trait Bulk {
    /// Messages already stored under these (sender device, client_msg_id) keys.
    async fn known_messages(&mut self, keys: &[(&str, &str)]) -> Result<Vec<KnownMessage>>;
    /// Bumps each conversation's last seq by its count; returns the new values.
    async fn bump_seqs(&mut self, counts: &[(&str, i64)]) -> Result<Vec<(String, i64)>>;
    /// Inserts the messages; returns the ids of those inserted (a retry
    /// stored concurrently by another node is skipped).
    async fn insert_messages(&mut self, rows: &[MessageInsert<'_>]) -> Result<Vec<String>>;
    /// The stored message under a retry key: id, seq, created_at.
    async fn stored_message(
        &mut self,
        sender_device_id: &str,
        client_msg_id: &str,
    ) -> Result<(String, i64, i64)>;
    /// Inserts the envelopes; returns (cursor, device_id, message_id) of each.
    async fn insert_outbox(
        &mut self,
        rows: &[OutboxInsert<'_>],
    ) -> Result<Vec<(i64, String, String)>>;
    /// Deletes the acknowledged rows, each only if it belongs to the device
    /// that acknowledged it.
    async fn delete_acked(&mut self, pairs: &[(&str, i64)]) -> Result<Vec<AckedRow>>;
    /// Queues each receipt for every active device of its sender.
    async fn insert_receipts(
        &mut self,
        rows: &[ReceiptInsert<'_>],
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<OutboxRow>>;
}

/// A message row to insert.
pub(crate) struct MessageInsert<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub seq: i64,
    pub sender_user_id: &'a str,
    pub sender_device_id: &'a str,
    pub client_msg_id: &'a str,
    pub created_at: i64,
    pub msg_type: Option<i64>,
    pub body: Option<&'a str>,
}

/// An outbox row to insert (a message envelope for one device).
pub(crate) struct OutboxInsert<'a> {
    pub device_id: &'a str,
    pub kind: &'a str,
    pub message_id: &'a str,
    pub conversation_id: &'a str,
    pub seq: i64,
    pub sender_user_id: &'a str,
    pub sender_device_id: &'a str,
    pub msg_type: i64,
    pub body: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A receipt to queue for every active device of `sender`: `acker` (a device
/// of `acker_user`) has the messages listed in `body`.
pub(crate) struct ReceiptInsert<'a> {
    pub first_message_id: &'a str,
    pub conversation_id: &'a str,
    pub seq: i64,
    pub acker_user: &'a str,
    pub acker_device: &'a str,
    pub sender: &'a str,
    pub body: &'a str,
}

/// An outbox row deleted by an ack: device_id, kind, message_id,
/// conversation_id, seq, sender_user_id.
pub(crate) type AckedRow = (String, String, String, String, i64, String);

/// A stored message found by its sender's retry key: sender_device_id,
/// client_msg_id, id, seq, created_at.
pub(crate) type KnownMessage = (String, String, String, i64, i64);

/// Splits a batch into the indexes of each (sender device, client_msg_id)
/// key's first copy, and the repeats inside the batch: (index, index of its
/// first copy). A repeat answers with its first copy's result.
pub(crate) fn first_copies(batch: &[crate::NewMessage]) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut first_of: std::collections::HashMap<(&str, &str), usize> = Default::default();
    let mut firsts = Vec::with_capacity(batch.len());
    let mut repeats = Vec::new();
    for (i, m) in batch.iter().enumerate() {
        let key = (m.sender_device_id.as_str(), m.client_msg_id.as_str());
        match first_of.get(&key) {
            Some(first) => repeats.push((i, *first)),
            None => {
                first_of.insert(key, i);
                firsts.push(i);
            }
        }
    }
    (firsts, repeats)
}

/// Gives each repeat its first copy's result, marked as a duplicate.
pub(crate) fn fill_repeats(
    results: &mut [Option<crate::StoredMessage>],
    repeats: &[(usize, usize)],
) {
    for &(i, first) in repeats {
        results[i] = results[first].as_ref().map(|r| crate::StoredMessage {
            duplicate: true,
            outbox: Vec::new(),
            ..r.clone()
        });
    }
}

/// Stores a batch of messages: their rows, their seqs and one outbox row per
/// envelope (SQLite's writer; PostgreSQL's turn statement does the same).
pub(crate) async fn store_messages<B: Bulk>(
    b: &mut B,
    batch: &[crate::NewMessage],
    expires_at: i64,
) -> Result<Vec<crate::StoredMessage>> {
    use std::collections::HashMap;
    let mut results: Vec<Option<crate::StoredMessage>> = vec![None; batch.len()];

    // 1. Retries of stored messages answer with the stored row;
    //    a repeat inside this batch with its first copy's.
    let (firsts, repeats) = first_copies(batch);
    let keys: Vec<(&str, &str)> = firsts
        .iter()
        .map(|i| {
            let m = &batch[*i];
            (m.sender_device_id.as_str(), m.client_msg_id.as_str())
        })
        .collect();
    let mut known: HashMap<(&str, &str), (String, i64, i64)> = HashMap::new();
    for (device, cmid, id, seq, at) in b.known_messages(&keys).await? {
        if let Some(key) = keys.iter().find(|(d, c)| *d == device && *c == cmid) {
            known.insert(*key, (id, seq, at));
        }
    }
    let mut fresh: Vec<usize> = Vec::new();
    for (&i, key) in firsts.iter().zip(&keys) {
        if let Some((message_id, seq, created_at)) = known.get(key) {
            results[i] = Some(crate::StoredMessage {
                message_id: message_id.clone(),
                seq: *seq,
                created_at: *created_at,
                duplicate: true,
                outbox: Vec::new(),
            });
        } else {
            fresh.push(i);
        }
    }

    // 2. Seqs: one bump per conversation by its number of new messages.
    let mut per_conversation: std::collections::BTreeMap<&str, i64> =
        std::collections::BTreeMap::new();
    for &i in &fresh {
        *per_conversation
            .entry(batch[i].conversation_id.as_str())
            .or_default() += 1;
    }
    let conversations: Vec<(&str, i64)> = per_conversation.into_iter().collect();
    let last_seq: HashMap<String, i64> = if conversations.is_empty() {
        HashMap::new()
    } else {
        b.bump_seqs(&conversations).await?.into_iter().collect()
    };
    // Hand out each conversation's new seqs in batch order.
    let mut next_seq: HashMap<&str, i64> = HashMap::new();
    for (id, n) in &conversations {
        let last = *last_seq
            .get(*id)
            .ok_or(crate::StoreError::Database(sqlx::Error::RowNotFound))?;
        next_seq.insert(*id, last - n + 1);
    }
    let mut seqs: HashMap<usize, i64> = HashMap::new();
    for &i in &fresh {
        if let Some(next) = next_seq.get_mut(batch[i].conversation_id.as_str()) {
            seqs.insert(i, *next);
            *next += 1;
        }
    }

    // 3. The message rows. One that loses a race with a retry
    //    stored concurrently (another node) answers with that row.
    let message_rows: Vec<MessageInsert<'_>> = fresh
        .iter()
        .map(|i| {
            let m = &batch[*i];
            MessageInsert {
                id: &m.id,
                conversation_id: &m.conversation_id,
                seq: seqs[i],
                sender_user_id: &m.sender_user_id,
                sender_device_id: &m.sender_device_id,
                client_msg_id: &m.client_msg_id,
                created_at: m.created_at,
                msg_type: m.group_body.as_ref().map(|(t, _)| *t),
                body: m.group_body.as_ref().map(|(_, b)| b.as_str()),
            }
        })
        .collect();
    let inserted: std::collections::HashSet<String> = if message_rows.is_empty() {
        Default::default()
    } else {
        b.insert_messages(&message_rows)
            .await?
            .into_iter()
            .collect()
    };
    let mut rows: Vec<OutboxInsert<'_>> = Vec::new();
    let mut by_message: HashMap<&str, usize> = HashMap::new();
    for &i in &fresh {
        let m = &batch[i];
        if !inserted.contains(&m.id) {
            let (message_id, seq, created_at) = b
                .stored_message(&m.sender_device_id, &m.client_msg_id)
                .await?;
            results[i] = Some(crate::StoredMessage {
                message_id,
                seq,
                created_at,
                duplicate: true,
                outbox: Vec::new(),
            });
            continue;
        }
        results[i] = Some(crate::StoredMessage {
            message_id: m.id.clone(),
            seq: seqs[&i],
            created_at: m.created_at,
            duplicate: false,
            outbox: Vec::with_capacity(m.envelopes.len()),
        });
        by_message.insert(m.id.as_str(), i);
        // A group message's body lives once, in `messages`.
        let kind = if m.group_body.is_some() {
            "group"
        } else {
            "message"
        };
        rows.extend(
            m.envelopes
                .iter()
                .map(|(device_id, msg_type, body)| OutboxInsert {
                    device_id,
                    kind,
                    message_id: &m.id,
                    conversation_id: &m.conversation_id,
                    seq: seqs[&i],
                    sender_user_id: &m.sender_user_id,
                    sender_device_id: &m.sender_device_id,
                    msg_type: *msg_type,
                    body,
                    created_at: m.created_at,
                    expires_at,
                }),
        );
    }

    // 4. One delivery row per recipient device.
    if !rows.is_empty() {
        for (cursor, device_id, message_id) in b.insert_outbox(&rows).await? {
            if let Some(r) = by_message
                .get(message_id.as_str())
                .and_then(|i| results[*i].as_mut())
            {
                r.outbox.push((cursor, device_id));
            }
        }
    }
    fill_repeats(&mut results, &repeats);
    Ok(results.into_iter().flatten().collect())
}

/// Deletes each acknowledged outbox row and queues the receipts they cause;
/// one result (the receipts) per item of `acks`.
pub(crate) async fn ack<B: Bulk>(
    b: &mut B,
    acks: &[crate::AckBatchItem],
    now: i64,
    expires_at: i64,
) -> Result<Vec<Vec<OutboxRow>>> {
    use std::collections::HashMap;
    let mut out: Vec<Vec<crate::OutboxRow>> = Vec::with_capacity(acks.len());
    out.resize_with(acks.len(), Vec::new);
    let pairs: Vec<(&str, i64)> = acks
        .iter()
        .flat_map(|a| a.cursors.iter().map(move |c| (a.device_id.as_str(), *c)))
        .collect();
    if pairs.is_empty() {
        return Ok(out);
    }
    // Each acking device, with its user and its first item here.
    let mut acker: HashMap<&str, (&str, usize)> = HashMap::new();
    for (i, a) in acks.iter().enumerate() {
        acker
            .entry(a.device_id.as_str())
            .or_insert((a.user_id.as_str(), i));
    }
    // One transaction for every acknowledgement that queued up (the
    // commit, an fsync on PostgreSQL, is shared), and two kinds of
    // statement whatever their number: the deletes, then the receipts.
    let acked = b.delete_acked(&pairs).await?;
    // Receipts: one per (acking device, conversation, sender) of
    // this batch, listing the messages covered, for every active
    // device of the sender. A device acking its copy of its own
    // account's message tells the sender nothing: no receipt.
    let mut groups: std::collections::BTreeMap<(&str, &str, &str), (Vec<&str>, i64)> =
        std::collections::BTreeMap::new();
    for (device, kind, message_id, conversation_id, seq, sender) in &acked {
        if kind != "message" && kind != "group" {
            continue;
        }
        if acker
            .get(device.as_str())
            .is_some_and(|(user, _)| *user == sender.as_str())
        {
            continue;
        }
        let g = groups
            .entry((device.as_str(), conversation_id.as_str(), sender.as_str()))
            .or_insert_with(|| (Vec::new(), 0));
        g.0.push(message_id.as_str());
        g.1 = g.1.max(*seq);
    }
    let mut bodies: Vec<(&str, &str, &str, String, &str, i64)> = Vec::with_capacity(groups.len());
    for ((device, conversation_id, sender), (ids, seq)) in groups {
        let body = serde_json::to_string(&ids)
            .map_err(|e| crate::StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        bodies.push((device, conversation_id, sender, body, ids[0], seq));
    }
    let wanted: Vec<ReceiptInsert<'_>> = bodies
        .iter()
        .map(
            |(device, conversation_id, sender, body, first, seq)| ReceiptInsert {
                first_message_id: first,
                conversation_id,
                seq: *seq,
                acker_user: acker.get(device).map_or("", |(u, _)| *u),
                acker_device: device,
                sender,
                body,
            },
        )
        .collect();
    if !wanted.is_empty() {
        for r in b.insert_receipts(&wanted, now, expires_at).await? {
            // The receipt names the acking device as its sender.
            if let Some((_, i)) = acker.get(r.sender_device_id.as_str()) {
                out[*i].push(r);
            }
        }
    }
    Ok(out)
}

/// A send batch and an ack batch, in that order, in one transaction.
pub(crate) async fn store_and_ack<B: Bulk>(
    b: &mut B,
    sends: &[crate::NewMessage],
    acks: &[crate::AckBatchItem],
    now: i64,
    expires_at: i64,
) -> Result<(Vec<crate::StoredMessage>, Vec<Vec<OutboxRow>>)> {
    let stored = if sends.is_empty() {
        Vec::new()
    } else {
        store_messages(b, sends, expires_at).await?
    };
    Ok((stored, ack(b, acks, now, expires_at).await?))
}
