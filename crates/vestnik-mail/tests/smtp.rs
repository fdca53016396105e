//! Delivers through a real SMTP server: aiosmtpd, run as a child process.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use vestnik_mail::{Mail, MailError, Mailer, SmtpMailer};

const DEADLINE: Duration = Duration::from_secs(15);

/// Kills the server even when an assertion fails half-way.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// In CI a missing server is a broken pipeline, not a reason to skip.
fn unavailable(why: &str) {
    assert!(!in_ci(), "SMTP test cannot run in CI: {why}");
    eprintln!("WARNING: skipping SMTP test, {why}");
}

fn python_has_aiosmtpd() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_aiosmtpd() -> Result<(), String> {
    if python_has_aiosmtpd() {
        return Ok(());
    }
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "aiosmtpd"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() || !python_has_aiosmtpd() {
        return Err(format!(
            "pip install aiosmtpd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn free_port() -> u16 {
    // The port is released before aiosmtpd binds it; a race with another
    // process is possible but harmless for a test and would fail loudly.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

fn start_server(tmp: &Path, port: u16) -> Result<(ServerGuard, PathBuf), String> {
    let log = tmp.join("aiosmtpd.log");
    let log_file = File::create(&log).map_err(|e| format!("create log: {e}"))?;
    let stderr = log_file
        .try_clone()
        .map_err(|e| format!("clone log: {e}"))?;
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(tmp.join("mbox"))
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start python3 -m aiosmtpd: {e}"))?;
    let mut guard = ServerGuard(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok((guard, log));
        }
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(status)) = guard.0.try_wait() {
            return Err(format!("aiosmtpd exited with {status}: {}", log_text()));
        }
        if start.elapsed() > DEADLINE {
            return Err(format!(
                "aiosmtpd did not listen on {addr} within {DEADLINE:?}: {}",
                log_text()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn delivers_to_a_real_smtp_server() -> anyhow::Result<()> {
    if let Err(why) = ensure_aiosmtpd() {
        unavailable(&why);
        return Ok(());
    }
    let tmp = TempDir::new("smtp");
    let port = free_port();
    let (_server, log) = match start_server(tmp.path(), port) {
        Ok(s) => s,
        Err(why) => {
            unavailable(&why);
            return Ok(());
        }
    };

    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "Vestnik <noreply@vestnik.example>",
    )?;
    assert_eq!(mailer.kind(), "smtp");
    let subject = format!("Vestnik code {}", uuid::Uuid::new_v4());
    let text = "Your code is 739154.\nIt expires in 10 minutes.";
    mailer
        .send(Mail {
            to: "bob@example.org".into(),
            subject: subject.clone(),
            text: text.into(),
        })
        .await?;

    let new_dir = tmp.path().join("mbox").join("new");
    let start = Instant::now();
    let content = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&new_dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        if let [only] = files.as_slice() {
            break std::fs::read_to_string(only)?;
        }
        assert!(files.len() <= 1, "expected one mail, got {files:?}");
        assert!(
            start.elapsed() < DEADLINE,
            "no mail in {} within {DEADLINE:?}; server log: {}",
            new_dir.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let normalized = content.replace("\r\n", "\n");
    assert!(
        normalized.contains(&format!("Subject: {subject}")),
        "{content}"
    );
    assert!(normalized.contains("To: bob@example.org"), "{content}");
    assert!(normalized.contains(text), "{content}");
    Ok(())
}

#[tokio::test]
async fn connection_refused_is_an_smtp_error() -> anyhow::Result<()> {
    // Bound and kept open but never accepting SMTP would hang until the
    // timeout; a closed port fails fast instead.
    let port = free_port();
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "noreply@vestnik.example",
    )?;
    let err = mailer
        .send(Mail {
            to: "bob@example.org".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn silent_server_times_out() -> anyhow::Result<()> {
    // Accepts TCP but never sends the SMTP greeting, like a hung relay.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "noreply@vestnik.example",
    )?;
    let start = Instant::now();
    let err = mailer
        .send(Mail {
            to: "bob@example.org".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await
        .expect_err("a silent server must not block forever");
    hold.abort();
    assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(14),
        "{:?}",
        start.elapsed()
    );
    Ok(())
}
