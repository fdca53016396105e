//! The terminal client end to end: the real `vestnik-chat` binary against a
//! real server (in-process, random port; SQLite, and PostgreSQL + Redis),
//! including the interactive chat driven through tmux.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vestnik-chat");
const PW: &str = "correct horse battery staple";

struct Server {
    base: String,
    data: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn server(postgres_redis: bool) -> Option<Server> {
    let data = std::env::temp_dir().join(format!("vestnik-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut config = vestnik_core::Config {
        data_dir: data.clone(),
        pow_difficulty: 8,
        rate_ip_per_minute: 100_000,
        rate_auth_ip_per_minute: 100_000,
        rate_auth_email_per_hour: 100_000,
        ..vestnik_core::Config::default()
    };
    if postgres_redis {
        config.database_url = Some(vestnik_testkit::fresh_pg_database("vestnik_cli").await?);
        config.redis_url = Some(vestnik_testkit::redis_url());
        config.redis_prefix = format!("vt-cli-{}", uuid::Uuid::new_v4().simple());
    }
    let gw = vestnik_server::build(&config, Arc::new(vestnik_core::SystemClock))
        .await
        .expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(vestnik_server::serve(listener, gw, async move {
        let _ = rx.await;
    }));
    Some(Server {
        base,
        data,
        _stop: tx,
    })
}

fn code_for(mail: &Path, email: &str) -> Option<String> {
    for e in std::fs::read_dir(mail).ok()?.flatten() {
        let text = std::fs::read_to_string(e.path()).ok()?;
        if text.contains(&format!("To: {email}")) {
            let i = text.find("verification code is ")?;
            return Some(text[i + 21..i + 27].to_owned());
        }
    }
    None
}

fn chat(profile: &Path, server: &Server, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .arg("--server")
        .arg(&server.base)
        .args(args)
        .env("VESTNIK_PASSWORD", PW)
        .output()
        .expect("run vestnik-chat")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `register` mails a code and reads it from stdin, as a person would type it.
fn register(profile: &Path, server: &Server, email: &str) {
    let mut child = Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .arg("--server")
        .arg(&server.base)
        .args(["register", "--email", email])
        .env("VESTNIK_PASSWORD", PW)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(c) = code_for(&server.data.join("mail"), email) {
            break c;
        }
        assert!(Instant::now() < deadline, "no code mailed to {email}");
        std::thread::sleep(Duration::from_millis(50));
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{code}\n").as_bytes())
        .expect("type the code");
    let out = child.wait_with_output().expect("wait");
    assert!(ok(&out).contains(&format!("registered {email}")));
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "vestnik-cli-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_people_talk_through_the_terminal_client_across_devices_on_sqlite() {
    two_people_talk(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_people_talk_through_the_terminal_client_across_devices_on_postgres_redis() {
    two_people_talk(true).await;
}

async fn two_people_talk(postgres_redis: bool) {
    let Some(server) = server(postgres_redis).await else {
        return;
    };
    let (alice, alice2, bob) = (tmp("alice"), tmp("alice2"), tmp("bob"));
    let bob2 = tmp("bob2");
    tokio::task::spawn_blocking({
        let (alice, alice2, bob) = (alice.clone(), alice2.clone(), bob.clone());
        move || {
            let server = &server;
            register(&alice, server, "alice@example.org");
            register(&bob, server, "bob@example.org");
            // Two users with two devices each, every device its own profile and process.
            for (profile, email) in [(&alice2, "alice@example.org"), (&bob2, "bob@example.org")] {
                assert!(
                    ok(&chat(profile, server, &["login", "--email", email])).contains("logged in")
                );
            }

            let out = ok(&chat(
                &alice,
                server,
                &[
                    "send",
                    "--to",
                    "bob@example.org",
                    "hello bob, это зашифровано",
                ],
            ));
            assert!(out.starts_with("sent #1 "), "{out}");
            let hist = ok(&chat(
                &bob,
                server,
                &["history", "--with", "alice@example.org"],
            ));
            assert!(hist.contains(": hello bob, это зашифровано"), "{hist}");
            let synced = ok(&chat(&alice2, server, &["sync"]));
            assert!(
                synced.contains("hello bob, это зашифровано"),
                "alice's other device has it too: {synced}"
            );
            let synced = ok(&chat(&bob2, server, &["sync"]));
            assert!(
                synced.contains("hello bob, это зашифровано"),
                "bob's other device has it too: {synced}"
            );
            // The reply, and delivery ticks on Alice's side once Bob's device took it.
            ok(&chat(
                &bob,
                server,
                &["send", "--to", "alice@example.org", "hi alice"],
            ));
            let hist = ok(&chat(
                &alice,
                server,
                &["history", "--with", "bob@example.org"],
            ));
            assert!(
                hist.contains("hi alice") && hist.contains("me: hello bob, это зашифровано ✓✓"),
                "{hist}"
            );

            // Bob's second device replies; all of Alice's devices read it.
            ok(&chat(
                &bob2,
                server,
                &["send", "--to", "alice@example.org", "from bob's phone"],
            ));
            let synced = ok(&chat(&alice2, server, &["sync"]));
            assert!(synced.contains("from bob's phone"), "{synced}");
            let hist = ok(&chat(
                &bob,
                server,
                &["history", "--with", "alice@example.org"],
            ));
            assert!(
                hist.contains("from bob's phone"),
                "bob's first device too: {hist}"
            );

            let devices = ok(&chat(&alice, server, &["devices"]));
            assert_eq!(devices.lines().count(), 2, "{devices}");
            assert_eq!(devices.matches("(this device)").count(), 1);
            let a = ok(&chat(
                &alice,
                server,
                &["verify-safety-number", "--with", "bob@example.org"],
            ));
            let b = ok(&chat(
                &bob,
                server,
                &["verify-safety-number", "--with", "alice@example.org"],
            ));
            let number = |s: &str| s.lines().nth(1).unwrap_or_default().to_owned();
            assert_eq!(number(&a), number(&b), "both sides compute the same number");
            assert_eq!(number(&a).split_whitespace().count(), 12);

            // Bad input: clear errors, no panics.
            let out = chat(&alice, server, &["send", "--to", "nobody@example.org", "x"]);
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("vestnik-chat:"));
            let out = chat(&tmp("empty"), server, &["devices"]);
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("register"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );

            interactive_chat(&alice, &bob, server);
        }
    })
    .await
    .expect("scenario");
    for d in [alice, alice2, bob] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The TUI in a real terminal (tmux): it shows what arrives and sends what is typed.
fn interactive_chat(alice: &Path, bob: &Path, server: &Server) {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var("CI").is_err(), "tmux is required in CI");
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    let session = format!("vestnik-{}", uuid::Uuid::new_v4().simple());
    let cmd = format!(
        "{BIN} --profile {} --server {} chat --with bob@example.org",
        alice.display(),
        server.base
    );
    let st = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ])
        .status()
        .expect("tmux");
    assert!(st.success());
    let screen = || {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what:?} on screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("hi alice");
    wait_for("connected");
    ok(&chat(
        bob,
        server,
        &["send", "--to", "alice@example.org", "live from bob"],
    ));
    wait_for("live from bob");
    Command::new("tmux")
        .args(["send-keys", "-t", &session, "typed in the tui", "Enter"])
        .status()
        .expect("keys");
    wait_for("me: typed in the tui");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hist = ok(&chat(
            bob,
            server,
            &["history", "--with", "alice@example.org"],
        ));
        if hist.contains("typed in the tui") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob never got the typed message: {hist}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("tmux")
        .args(["send-keys", "-t", &session, "Escape"])
        .status()
        .expect("keys");
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
}
