//! No client can wedge its connection or the node: one that stops reading is
//! cut off (and loses nothing), one that floods gets answers and limits, one
//! that opens sockets in a loop keeps only a few.
use super::*;
use futures::SinkExt;
use tokio::io::AsyncReadExt;

on_both_backends!(
    presence_subscriptions_behind_a_burst_of_sends_do_not_wedge_the_connection,
    a_client_that_stops_reading_is_cut_off_and_loses_nothing,
    sockets_opened_in_a_loop_keep_only_the_newest_per_device_and_a_few_per_address,
    a_silent_socket_is_closed_after_the_idle_limit_whether_or_not_it_reads,
);

async fn pair(app: &TestApp) -> (Value, Value, Value) {
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let conv = app
        .post_auth(
            "/v1/conversations",
            &token(&alice),
            Some(json!({"kind": "direct", "peer_user_id": bob["user_id"]})),
        )
        .await
        .body["id"]
        .clone();
    (alice, bob, conv)
}

/// The reader used to push `subscribe_presence` answers into the queue only
/// it drains: with that queue full of `sent` answers, it waited for itself.
async fn presence_subscriptions_behind_a_burst_of_sends_do_not_wedge_the_connection(
    backend: Backend,
) {
    let Some(app) = app(backend).await else {
        return;
    };
    let (alice, bob, conv) = pair(&app).await;
    let mut ws = socket(&app.base, &token(&alice)).await;
    let subscribe = json!({"type": "subscribe_presence", "user_ids": [bob["user_id"]]}).to_string();
    for i in 0..600 {
        let send = json!({"type": "send", "client_msg_id": format!("m{i}"), "conversation_id": conv,
            "envelopes": [{"device_id": device_id(&bob), "msg_type": 0, "ciphertext": format!("QQQ{i}")}]});
        ws.feed(Message::Text(send.to_string().into()))
            .await
            .expect("feed");
        ws.feed(Message::Text(subscribe.clone().into()))
            .await
            .expect("feed");
    }
    ws.feed(Message::Text(
        json!({"type": "ping", "nonce": "end"}).to_string().into(),
    ))
    .await
    .expect("feed");
    ws.flush().await.expect("flush");
    let (mut answered, mut refused) = (0, 0);
    loop {
        let f = next_frame(&mut ws, Duration::from_secs(20)).await;
        match f["type"].as_str() {
            Some("pong") => break,
            Some("sent") => answered += 1,
            Some("error") => {
                // Sends past the in-flight bound, and subscriptions past
                // their rate: refused with when to try again.
                assert!(f["retry_after_ms"].as_u64().is_some(), "{f}");
                if f["client_msg_id"].is_string() {
                    assert_eq!(f["code"], "too_many_in_flight", "{f}");
                    refused += 1;
                } else {
                    assert_eq!(f["code"], "rate_limited", "{f}");
                }
            }
            _ => {}
        }
    }
    // The pong came after every frame was read; the remaining `sent`s follow.
    while answered + refused < 600 {
        let f = next_frame(&mut ws, Duration::from_secs(20)).await;
        match f["type"].as_str() {
            Some("sent") => answered += 1,
            Some("error") if f["client_msg_id"].is_string() => refused += 1,
            _ => {}
        }
    }
    assert!(answered > 0);
}

async fn a_client_that_stops_reading_is_cut_off_and_loses_nothing(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let (alice, bob, conv) = pair(&app).await;
    // Bob's socket reads its backlog and then never again.
    let mut stalled = socket(&app.base, &token(&bob)).await;
    let big = "Q".repeat(60_000);
    const N: usize = 400;
    for i in 0..N {
        let r = app
            .post_auth(
                "/v1/messages",
                &token(&alice),
                Some(json!({"client_msg_id": format!("m{i}"), "conversation_id": conv,
                    "envelopes": [{"device_id": device_id(&bob), "msg_type": 0, "ciphertext": big}]})),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // Writes to it time out (or its queue fills): the server lets it go.
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stalled socket is still held"
        );
        if !app.gw.realtime.hub().is_online(&device_id(&bob)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get_auth("/healthz", "").await.status, 200);
    drop(stalled.close(None).await);
    // Everything is still in Bob's outbox.
    let mut seen = 0;
    let mut after = 0;
    loop {
        let page = app
            .get_auth(
                &format!("/v1/messages/pending?after={after}&limit=100"),
                &token(&bob),
            )
            .await;
        let items = page.body["items"].as_array().expect("items").clone();
        if items.is_empty() {
            break;
        }
        seen += items.len();
        after = items.last().expect("last")["cursor"]
            .as_i64()
            .expect("cursor");
    }
    assert_eq!(seen, N);
}

async fn sockets_opened_in_a_loop_keep_only_the_newest_per_device_and_a_few_per_address(
    backend: Backend,
) {
    let Some(app) = app_with(backend, |c| {
        c.ws_sockets_per_device = 2;
        c.ws_sockets_per_ip = 4;
    })
    .await
    else {
        return;
    };
    let laptop = app.register("alice@example.org", PW).await;
    let mut old = Vec::new();
    for _ in 0..6 {
        old.push(socket(&app.base, &token(&laptop)).await);
    }
    // The four oldest made way, each with 4003.
    for ws in old.iter_mut().take(4) {
        let (code, _) = closed_within(ws, Duration::from_secs(2)).await;
        assert_eq!(code, 4003, "replaced");
    }
    for ws in old.iter_mut().skip(4) {
        ping(ws).await.expect("open");
        assert_eq!(next_frame(ws, Duration::from_secs(2)).await["type"], "pong");
    }
    // Two sockets of the laptop are held; two more devices fill the address.
    let phone = app.login("alice@example.org", PW, json!({})).await.body;
    let tablet = app.login("alice@example.org", PW, json!({})).await.body;
    let _p = socket(&app.base, &token(&phone)).await;
    // The replaced sockets' slots are given back as their tasks end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _p2 = socket(&app.base, &token(&phone)).await;
    let url = format!("{}/v1/ws", app.base.replace("http", "ws"));
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(&tablet))
            .parse()
            .expect("header"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429);
            assert!(res.headers().get("retry-after").is_some());
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    drop(old);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _t = socket(&app.base, &token(&tablet)).await;
}

async fn a_silent_socket_is_closed_after_the_idle_limit_whether_or_not_it_reads(backend: Backend) {
    let Some(app) = app_with(backend, |c| c.ws_idle_secs = 3).await else {
        return;
    };
    let phone = app.register("alice@example.org", PW).await;
    let laptop = app.login("alice@example.org", PW, json!({})).await.body;
    // The phone's socket is a bare TCP connection that does the handshake
    // and then neither reads nor writes: its pings go unanswered (a
    // WebSocket library would answer them as soon as it read). The laptop's
    // only reads, so its library answers them.
    let mut deaf = deaf_socket(&app.base, &token(&phone)).await;
    let mut listening = socket(&app.base, &token(&laptop)).await;
    let listener = tokio::spawn(async move {
        let mut frames = 0;
        while let Some(Ok(_)) = listening.next().await {
            frames += 1;
        }
        frames
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.gw.realtime.hub().is_online(&device_id(&phone)));
    while app.gw.realtime.hub().is_online(&device_id(&phone)) {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the silent socket is still held"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "closed before the idle limit: {:?}",
        started.elapsed()
    );
    // Everything the server wrote waits unread: pings, then a close frame
    // with 4005 (unmasked: 0x88, length, the code big-endian).
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), deaf.read_to_end(&mut bytes))
        .await
        .expect("the server ended the connection")
        .expect("read");
    let idle = [0x88, 2 + 4, 0x0f, 0xa5];
    assert!(
        bytes.windows(4).any(|w| w == idle),
        "no close frame with 4005 in what the server sent"
    );
    // Well past the limit, the socket that answers pings is still held.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(app.gw.realtime.hub().is_online(&device_id(&laptop)));
    assert!(!listener.is_finished(), "the listening socket was closed");
    listener.abort();
}

/// A WebSocket handshake by hand on a bare TCP connection, then nothing.
async fn deaf_socket(base: &str, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let host = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
    let upgrade = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.expect("handshake");
    tcp
}
