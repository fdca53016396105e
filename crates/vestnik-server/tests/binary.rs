//! The `vestnik` binary itself: serve on embedded defaults, graceful shutdown,
//! config errors naming the key, migrate and the admin commands.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vestnik");

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vestnik-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn free_port() -> u16 {
    // The child process must bind the port itself; the tiny race is acceptable here.
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn serve_runs_on_embedded_defaults_and_stops_gracefully_on_sigterm() {
    let dir = temp_dir();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--data-dir",
            dir.to_str().expect("utf8"),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("VESTNIK_DATABASE_URL")
        .env_remove("VESTNIK_REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vestnik");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            ready = r.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "server never became ready");
    let r = http
        .post(format!("http://127.0.0.1:{port}/v1/auth/register"))
        .json(&serde_json::json!({"email": "bin@example.org"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 202);
    assert!(dir.join("vestnik.db").exists() && dir.join("server.key").exists());
    let mails: Vec<_> = std::fs::read_dir(dir.join("mail"))
        .expect("mail dir")
        .collect();
    assert_eq!(mails.len(), 1);

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read");
    assert!(log.contains("shutdown signal received"), "{log}");
    // Logs are JSON outside a terminal and never contain the mailed code.
    let first = log.lines().next().expect("a log line");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{first}"
    );
    let eml = std::fs::read_to_string(mails[0].as_ref().expect("entry").path()).expect("eml");
    let code = &eml[eml.find("verification code is ").expect("code") + 21..][..6];
    assert!(!log.contains(code), "the code leaked into the log");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_config_value_is_named_and_exits_2() {
    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("VESTNIK_LISTEN", "not-an-address")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`listen`"), "{err}");

    let dir = temp_dir();
    let file = dir.join("vestnik.toml");
    std::fs::write(&file, "mail = \"pigeon\"\n").expect("write");
    let out = Command::new(BIN)
        .args(["--config", file.to_str().expect("utf8"), "config", "check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mail"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("VESTNIK_DATABASE_URL", "postgres://user:hunter2@db/x")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("configuration is valid") && !text.contains("hunter2"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn migrate_and_admin_commands_work_on_sqlite() {
    let dir = temp_dir();
    let d = dir.to_str().expect("utf8");
    let run = |args: &[&str], pw: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(["--data-dir", d])
            .args(args)
            .env("VESTNIK_LOG_LEVEL", "warn");
        if let Some(pw) = pw {
            c.env("VESTNIK_ADMIN_PASSWORD", pw);
        }
        c.output().expect("run")
    };
    let out = run(&["migrate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!("{} migration(s) applied", vestnik_store::MIGRATIONS.len());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&all));
    let out = run(&["migrate"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 migration(s) applied"));

    let out = run(
        &["admin", "create", "--email", "root@example.org"],
        Some("password"),
    );
    assert!(!out.status.success(), "a common password must be refused");
    let out = run(
        &["admin", "create", "--email", "Root@Example.org"],
        Some("a long admin passphrase"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["admin", "list"], None);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("root@example.org\tactive admin"), "{list}");
    let out = run(&["admin", "disable", "--email", "root@example.org"], None);
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&run(&["admin", "list"], None).stdout).to_string();
    assert!(list.contains("root@example.org\tdisabled"), "{list}");
    let out = run(&["admin", "disable", "--email", "ghost@example.org"], None);
    assert!(!out.status.success());

    let out = run(
        &[
            "admin",
            "seed",
            "--prefix",
            "t",
            "--users",
            "2",
            "--devices",
            "3",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().all(|l| l["access_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("vsa_"))));
    let list = String::from_utf8_lossy(&run(&["admin", "list"], None).stdout).to_string();
    assert!(
        list.contains("t-0@seed.invalid\tactive")
            && !list.contains("t-0@seed.invalid\tactive admin"),
        "{list}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
