-- One writer turn on PostgreSQL, as one statement (its own transaction): a
-- send batch ($1-$14, $20) and an ack batch ($15-$19). See postgres.rs.
WITH v AS (
  SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[])
    AS v(i, id, conversation_id, sender_user_id, sender_device_id, client_msg_id, created_at, msg_type, body)
), known AS (
  -- LATERAL ... LIMIT 1 keeps this an index lookup per message whatever the
  -- (possibly never analyzed) table's statistics say.
  SELECT v.i, m.id, m.seq, m.created_at FROM v CROSS JOIN LATERAL (
    SELECT m.id, m.seq, m.created_at FROM messages m
    WHERE m.sender_device_id = v.sender_device_id AND m.client_msg_id = v.client_msg_id LIMIT 1
  ) m
), fresh AS (
  SELECT v.* FROM v WHERE v.i NOT IN (SELECT i FROM known)
), locked AS (
  -- Locked in id order, so turns that share conversations never deadlock.
  SELECT c.id, f.n FROM conversations c
  JOIN (SELECT conversation_id, count(*) AS n FROM fresh GROUP BY conversation_id) f ON f.conversation_id = c.id
  WHERE c.id = ANY($20::text[])
  ORDER BY c.id FOR UPDATE OF c
), bumped AS (
  UPDATE conversations c SET last_seq = c.last_seq + l.n FROM locked l
  WHERE c.id = l.id AND c.id = ANY($20::text[])
  RETURNING c.id, c.last_seq - l.n AS base
), numbered AS (
  -- A message to a conversation that is gone gets no seq, and the NOT NULL
  -- constraint on messages.seq fails the whole turn.
  SELECT f.*, b.base + row_number() OVER (PARTITION BY f.conversation_id ORDER BY f.i) AS seq
  FROM fresh f LEFT JOIN bumped b ON b.id = f.conversation_id
), ins AS (
  -- A retry stored by another node since this statement's snapshot is
  -- skipped here and read back afterwards.
  INSERT INTO messages (id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at, msg_type, body)
  SELECT id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at, msg_type, body FROM numbered
  ON CONFLICT (sender_device_id, client_msg_id) DO NOTHING
  RETURNING id
), env AS (
  -- A group message's body lives once, in `messages`.
  INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
  SELECT e.device_id, CASE WHEN n.msg_type IS NULL THEN 'message' ELSE 'group' END, n.id, n.conversation_id, n.seq,
         n.sender_user_id, n.sender_device_id, e.msg_type, e.body, n.created_at, $14
  FROM UNNEST($10::int8[], $11::text[], $12::int8[], $13::text[]) WITH ORDINALITY AS e(i, device_id, msg_type, body, o)
  JOIN numbered n ON n.i = e.i
  WHERE n.id IN (SELECT id FROM ins)
  ORDER BY e.o
  RETURNING id, device_id, message_id
), del AS (
  -- Each acked row only if it belongs to the device that acked it; the
  -- redundant `= ANY` lets the primary key find the rows.
  DELETE FROM outbox o USING UNNEST($15::text[], $16::int8[], $17::text[]) AS a(device_id, id, user_id)
  WHERE o.id = a.id AND o.device_id = a.device_id AND o.id = ANY($16::int8[])
  RETURNING o.id AS cursor, o.device_id, o.kind, o.message_id, o.conversation_id, o.seq, o.sender_user_id, a.user_id AS acker_user
), acked AS (
  -- One receipt per (acking device, conversation, sender), listing the
  -- messages it covers. A device acking its own account's message tells
  -- the sender nothing.
  SELECT device_id, conversation_id, sender_user_id, min(acker_user) AS acker_user,
         array_agg(message_id ORDER BY cursor) AS ids, max(seq) AS seq
  FROM del WHERE kind IN ('message', 'group') AND sender_user_id <> acker_user
  GROUP BY device_id, conversation_id, sender_user_id
), rcpt AS (
  -- ... queued for every active device of the sender.
  INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
  SELECT d.id, 'receipt', a.ids[1], a.conversation_id, a.seq, a.acker_user, a.device_id, 0, array_to_json(a.ids)::text, $18, $19
  FROM acked a JOIN devices d ON d.user_id = a.sender_user_id AND d.revoked_at IS NULL
  RETURNING id, device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at
)
SELECT 'k' AS tag, i, id AS s1, NULL::text AS s2, NULL::text AS s3, NULL::text AS s4, NULL::text AS s5, NULL::text AS s6,
       NULL::text AS s7, seq AS n1, created_at AS n2, NULL::int8 AS n3, NULL::int8 AS n4 FROM known
UNION ALL SELECT 'm', n.i, n.id, NULL, NULL, NULL, NULL, NULL, NULL, n.seq, n.created_at, NULL, NULL
  FROM numbered n WHERE n.id IN (SELECT id FROM ins)
UNION ALL SELECT 'o', NULL, message_id, device_id, NULL, NULL, NULL, NULL, NULL, id, NULL, NULL, NULL FROM env
UNION ALL SELECT 'r', NULL, device_id, kind, message_id, conversation_id, sender_user_id, sender_device_id, body,
  id, seq, msg_type, created_at FROM rcpt
