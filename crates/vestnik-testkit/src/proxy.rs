//! A TCP proxy tests can cut: in front of the server (a client losing its
//! network) or of PostgreSQL (the database going away and coming back).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Forwards connections to `target`. `set_down(true)` cuts every connection
/// and refuses new ones; `set_deaf(true)` keeps forwarding what clients send
/// but drops what the server answers.
#[derive(Clone)]
pub struct Proxy {
    /// `http://<proxy address>`.
    pub url: String,
    /// The proxy's own address.
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    deaf: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

#[allow(clippy::expect_used)]
impl Proxy {
    /// Listens on a free local port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let proxy = Proxy {
            url: format!("http://{addr}"),
            addr,
            down: Arc::new(AtomicBool::new(false)),
            deaf: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if p.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let deaf = p.deaf.clone();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = cr.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            sw.write_all(&buf[..n]).await?;
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = sr.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            if !deaf.load(Ordering::SeqCst) {
                                cw.write_all(&buf[..n]).await?;
                            }
                        }
                    };
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
                p.conns
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(task.abort_handle());
            }
        });
        proxy
    }

    /// Cuts every open connection (new ones are still accepted).
    pub fn kill_all(&self) {
        for c in self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            c.abort();
        }
    }

    /// Down: cuts every connection and refuses new ones; up: accepts again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.kill_all();
        }
    }

    /// Deaf: what the server answers is dropped.
    pub fn set_deaf(&self, deaf: bool) {
        self.deaf.store(deaf, Ordering::SeqCst);
    }
}
