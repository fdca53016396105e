//! A Redis of the test's own, on a free port, that the test stops and
//! starts again on the same port (the shared test Redis must not go away).
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process; killed when dropped.
pub struct RedisProcess {
    /// The port it listens on, the same across restarts.
    pub port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
    /// Serving TLS only, with a certificate from a CA of its own.
    tls: bool,
}

impl RedisProcess {
    /// Starts one on a free port. None (or, in CI, a panic) when there is
    /// no `redis-server` binary.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Like [`start`](Self::start), serving TLS only, with a certificate for
    /// 127.0.0.1 from a CA of its own (made with `openssl`); trust
    /// [`ca_file`](Self::ca_file).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    /// The PEM file of the CA that signed the TLS server's certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.join("ca.pem")
    }

    #[allow(clippy::expect_used, clippy::panic)]
    fn start_with(tls: bool) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("vestnik-redis-{port}"));
        let _ = std::fs::create_dir_all(&dir);
        let mut r = Self {
            port,
            child: None,
            dir,
            tls,
        };
        let certified = if tls {
            crate::certs::make(&r.dir).map(drop)
        } else {
            Ok(())
        };
        let started = certified.and_then(|()| r.restart());
        if let Err(e) = started {
            if crate::in_ci() {
                panic!("cannot start redis-server in CI: {e}");
            }
            eprintln!("SKIPPED: cannot start redis-server ({e}); CI=true makes this a failure");
            return None;
        }
        Some(r)
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: nothing is flushed, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk)
    /// and waits until it answers.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        if self.tls {
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(self.dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(self.dir.join("key.pem"))
            // Required even when clients present no certificate.
            .arg("--tls-ca-cert-file")
            .arg(self.ca_file());
        } else {
            cmd.args(["--port", &port]);
        }
        let child = cmd
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(std::io::Error::other(
            "redis-server did not start listening",
        ))
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
