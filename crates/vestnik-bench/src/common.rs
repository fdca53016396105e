//! What every scenario shares: the target (loopback only), seeded accounts,
//! direct conversations, WebSocket connections from chosen loopback source
//! addresses, a cheap parser of server frames and the timestamped ciphertext
//! (measuring and reporting, in `measure` and `report`, are re-exported here).
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub use crate::measure::*;
pub use crate::report::*;

pub type Ws = WebSocketStream<TcpStream>;

/// Nanoseconds since the first call in this process: the clock of every
/// timestamp a scenario embeds and compares (one process, one clock).
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The server under test: one node, or several sharing one database
/// (`--base http://a,http://b,…`). HTTP calls go to the first node; each
/// WebSocket goes to the node its token hashes to, so a device always lands
/// on the same node and traffic between devices mostly crosses nodes. Only
/// loopback addresses are accepted: this tool generates load, and must never
/// be pointed at someone else's machine.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    pub addr: SocketAddr,
    pub nodes: Vec<SocketAddr>,
}

fn loopback_node(base: &str) -> anyhow::Result<(String, SocketAddr)> {
    let base = base.trim().trim_end_matches('/').to_owned();
    let rest = base
        .strip_prefix("http://")
        .context("--base: expected http://<loopback address>:<port>")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("--base: cannot resolve {hostport}"))?
        .find(|a| a.is_ipv4())
        .with_context(|| format!("--base: no IPv4 address for {hostport}"))?;
    if !addr.ip().is_loopback() {
        bail!("--base: {addr} is not a loopback address; this load generator only targets the local machine");
    }
    Ok((base, addr))
}

impl Target {
    pub fn parse(bases: &str) -> anyhow::Result<Self> {
        let nodes = bases
            .split(',')
            .filter(|b| !b.trim().is_empty())
            .map(loopback_node)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let Some((base, addr)) = nodes.first().cloned() else {
            bail!("--base: expected at least one http://<loopback address>:<port>");
        };
        Ok(Self {
            base,
            addr,
            nodes: nodes.into_iter().map(|(_, a)| a).collect(),
        })
    }

    /// The node a device's sockets go to.
    pub fn node_for(&self, token: &str) -> SocketAddr {
        let h = token.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        self.nodes
            .get(h % self.nodes.len().max(1))
            .copied()
            .unwrap_or(self.addr)
    }
}

/// Loopback source addresses 127.0.0.2, 127.0.0.3, …: each has its own
/// ephemeral port range, so many sockets do not exhaust one address's ports.
pub fn source_ip(i: usize, count: usize) -> Option<IpAddr> {
    if count == 0 {
        return None;
    }
    let n = u32::try_from(i % count.min(250)).unwrap_or(0) + 2;
    Some(IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n)))
}

/// A seeded device: one JSON line of `vestnik admin seed`.
#[derive(Debug, Clone, Deserialize)]
pub struct SeededDevice {
    pub user_id: String,
    pub device_id: String,
    pub access_token: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub devices: Vec<SeededDevice>,
}

/// Reads `vestnik admin seed` output, grouping devices by user in file order.
pub fn load_accounts(path: &Path) -> anyhow::Result<Vec<User>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading accounts file {}", path.display()))?;
    let mut users: Vec<User> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let d: SeededDevice = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: expected a seed JSON line", path.display(), n + 1))?;
        match users.last_mut() {
            Some(u) if u.id == d.user_id => u.devices.push(d),
            _ => users.push(User {
                id: d.user_id.clone(),
                devices: vec![d],
            }),
        }
    }
    if users.is_empty() {
        bail!("{}: no accounts", path.display());
    }
    Ok(users)
}

/// Opens (or finds) the direct conversation of users `a` and `b`, over HTTP
/// with `a`'s first device; returns its id.
pub async fn direct_conversation(
    http: &reqwest::Client,
    target: &Target,
    a: &User,
    b: &User,
) -> anyhow::Result<String> {
    let token = &a
        .devices
        .first()
        .context("a user without devices")?
        .access_token;
    let r = http
        .post(format!("{}/v1/conversations", target.base))
        .bearer_auth(token)
        .json(&json!({"kind": "direct", "peer_user_id": b.id}))
        .send()
        .await?;
    let status = r.status();
    if !status.is_success() {
        bail!("POST /v1/conversations: {status} {}", r.text().await?);
    }
    let v: Value = r.json().await?;
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("conversation without id")
}

/// Conversations for pairs (users[2i], users[2i+1]), `concurrency` requests at a time.
pub async fn pair_conversations(
    target: &Target,
    users: &[User],
    pairs: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    if users.len() < 2 * pairs {
        bail!(
            "{} pairs need {} seeded users, the accounts file has {}",
            pairs,
            2 * pairs,
            users.len()
        );
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let results: Vec<anyhow::Result<String>> = futures::stream::iter(0..pairs)
        .map(|i| {
            let http = &http;
            async move { direct_conversation(http, target, &users[2 * i], &users[2 * i + 1]).await }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Small buffers: the default 128 KiB read buffer per socket would make the
/// load generator, not the server, the memory bottleneck at many sockets.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// `GET /v1/ws` with `Authorization: Bearer`, from the loopback source `src`.
pub async fn connect(target: &Target, src: Option<IpAddr>, token: &str) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding source address {ip}"))?;
    }
    let addr = target.node_for(token);
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut req = format!("ws://{addr}/v1/ws").into_client_request()?;
    req.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(ws_config())).await?;
    Ok(ws)
}

/// The fields of a server frame the scenarios look at, borrowed from the
/// text where possible (unknown fields are ignored).
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub cursor: Option<i64>,
    #[serde(default, borrow)]
    pub ciphertext: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub client_msg_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
}

/// Raw bytes of a ciphertext: 150 bytes are 200 base64 characters, the size
/// of a short Olm message.
pub const CIPHERTEXT_RAW: usize = 150;

/// What a benchmark ciphertext carries in its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// [`now_ns`] when the message was (meant to be) sent.
    pub sent_ns: u64,
    pub sender: u32,
    pub seq: u64,
}

impl Stamp {
    /// Base64 of `CIPHERTEXT_RAW` bytes: the stamp, then `filler`.
    pub fn ciphertext(&self, filler: &[u8; CIPHERTEXT_RAW]) -> String {
        let mut raw = *filler;
        raw[..8].copy_from_slice(&self.sent_ns.to_le_bytes());
        raw[8..12].copy_from_slice(&self.sender.to_le_bytes());
        raw[12..20].copy_from_slice(&self.seq.to_le_bytes());
        STANDARD.encode(raw)
    }

    pub fn parse(ciphertext: &str) -> Option<Self> {
        // 28 characters decode to 21 bytes, enough for the 20-byte stamp.
        let head = STANDARD.decode(ciphertext.get(..28)?).ok()?;
        Some(Self {
            sent_ns: u64::from_le_bytes(head.get(..8)?.try_into().ok()?),
            sender: u32::from_le_bytes(head.get(8..12)?.try_into().ok()?),
            seq: u64::from_le_bytes(head.get(12..20)?.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestnik_proto::{IncomingMessage, Sent, ServerFrame};

    #[test]
    fn the_stamp_survives_the_ciphertext_and_is_200_base64_characters() {
        let s = Stamp {
            sent_ns: 123_456_789_012,
            sender: 4_000_000_000,
            seq: u64::MAX - 3,
        };
        let ct = s.ciphertext(&[7u8; CIPHERTEXT_RAW]);
        assert_eq!(ct.len(), 200);
        assert!(ct
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
        assert_eq!(Stamp::parse(&ct), Some(s));
        assert_eq!(Stamp::parse("short"), None);
    }

    #[test]
    fn frames_the_server_sends_parse_into_the_light_frame() {
        let ct = Stamp {
            sent_ns: 5,
            sender: 6,
            seq: 7,
        }
        .ciphertext(&[0u8; CIPHERTEXT_RAW]);
        let msg = ServerFrame::Message {
            cursor: 42,
            message: IncomingMessage {
                message_id: "m".into(),
                conversation_id: "c".into(),
                seq: 1,
                sender_user_id: "u".into(),
                sender_device_id: "d".into(),
                msg_type: 1,
                ciphertext: ct.clone(),
                sent_at: 9,
            },
        };
        let text = serde_json::to_string(&msg).expect("serialize");
        let f: Frame = serde_json::from_str(&text).expect("parse");
        assert_eq!(f.kind, "message");
        assert_eq!(f.cursor, Some(42));
        assert_eq!(f.ciphertext.as_deref(), Some(ct.as_str()));

        let sent = ServerFrame::Sent(Sent {
            client_msg_id: "r-1-2".into(),
            message_id: "m".into(),
            conversation_id: "c".into(),
            seq: 3,
            sent_at: 4,
        });
        let text = serde_json::to_string(&sent).expect("serialize");
        let f: Frame = serde_json::from_str(&text).expect("parse");
        assert_eq!(
            (f.kind.as_ref(), f.client_msg_id.as_deref()),
            ("sent", Some("r-1-2"))
        );

        let err = ServerFrame::Error {
            code: "device_list_stale".into(),
            message: "a \"quoted\" message".into(),
            client_msg_id: Some("x".into()),
            devices: None,
            retry_after_ms: None,
        };
        let text = serde_json::to_string(&err).expect("serialize");
        let f: Frame = serde_json::from_str(&text).expect("parse");
        assert_eq!(f.code.as_deref(), Some("device_list_stale"));
        let f: Frame = serde_json::from_str(r#"{"type":"synced"}"#).expect("parse");
        assert_eq!(f.kind, "synced");
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(Target::parse("http://127.0.0.1:8080").is_ok());
        assert!(Target::parse("http://localhost:8080/").is_ok());
        assert!(Target::parse("http://10.1.2.3:8080").is_err());
        assert!(Target::parse("https://127.0.0.1:8080").is_err());
        assert_eq!(source_ip(0, 0), None);
        assert_eq!(source_ip(0, 4), Some("127.0.0.2".parse().expect("ip")));
        assert_eq!(source_ip(5, 4), Some("127.0.0.3".parse().expect("ip")));
    }

    #[test]
    fn accounts_group_by_user_in_file_order() {
        let dir = std::env::temp_dir().join(format!("vestnik-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("a.jsonl");
        std::fs::write(
            &f,
            "{\"user_id\":\"u1\",\"device_id\":\"d1\",\"access_token\":\"t1\"}\n\
             {\"user_id\":\"u1\",\"device_id\":\"d2\",\"access_token\":\"t2\"}\n\
             {\"user_id\":\"u2\",\"device_id\":\"d3\",\"access_token\":\"t3\"}\n",
        )
        .expect("write");
        let users = load_accounts(&f).expect("load");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].devices.len(), 2);
        assert_eq!(users[1].devices[0].device_id, "d3");
        let _ = std::fs::remove_dir_all(dir);
    }
}
