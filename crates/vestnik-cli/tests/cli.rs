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

impl Drop for Server {
    /// The data directory holds the SQLite file and its WAL: some 100 MB a run.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
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

/// The newest code mailed to `email` (mail files are named in sending order).
fn code_for(mail: &Path, email: &str) -> Option<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(mail)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files.iter().rev() {
        let text = std::fs::read_to_string(f).ok()?;
        if text.contains(&format!("To: {email}")) {
            // Registration, password reset and address codes alike.
            let i = text.find(" code is ")? + " code is ".len();
            return Some(text[i..i + 6].to_owned());
        }
    }
    None
}

fn chat(profile: &Path, server: &Server, args: &[&str]) -> Output {
    chat_env(profile, server, args, &[])
}

fn chat_env(profile: &Path, server: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .arg("--server")
        .arg(&server.base)
        .args(args)
        .env("VESTNIK_PASSWORD", PW)
        .envs(env.iter().copied())
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
    let out = with_mailed_code(
        profile,
        server,
        &["register", "--email", email],
        &[("VESTNIK_PASSWORD", PW)],
        email,
    );
    assert!(ok(&out).contains(&format!("registered {email}")));
}

/// Runs a command that has a code mailed to `email` and then reads it from
/// stdin, typing the code as a person would.
fn with_mailed_code(
    profile: &Path,
    server: &Server,
    args: &[&str],
    env: &[(&str, &str)],
    email: &str,
) -> Output {
    let mails = |dir: &Path| {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains(&format!("To: {email}")))
                })
                .count()
        })
    };
    let mail_dir = server.data.join("mail");
    let before = mails(&mail_dir);
    let mut child = Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .arg("--server")
        .arg(&server.base)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while mails(&mail_dir) == before {
        assert!(Instant::now() < deadline, "no code mailed to {email}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = code_for(&mail_dir, email).expect("a code");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{code}\n").as_bytes())
        .expect("type the code");
    child.wait_with_output().expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_terminal_client_changes_resets_and_moves_the_account() {
    let Some(server) = server(false).await else {
        return;
    };
    const NEW: &str = "another horse, another battery";
    const THIRD: &str = "a third horse and battery";
    let (laptop, phone, desk) = (tmp("laptop"), tmp("phone"), tmp("desk"));
    register(&laptop, &server, "alice@example.org");
    ok(&chat(
        &phone,
        &server,
        &["login", "--email", "alice@example.org"],
    ));

    let out = chat_env(
        &laptop,
        &server,
        &["password", "change", "--sign-out-others"],
        &[("VESTNIK_NEW_PASSWORD", NEW)],
    );
    assert!(ok(&out).contains("every other device is signed out"));
    // The phone was signed out; the old password no longer signs in.
    assert!(!chat(&phone, &server, &["devices"]).status.success());
    assert!(
        !chat(&desk, &server, &["login", "--email", "alice@example.org"])
            .status
            .success()
    );

    // A new address, confirmed with the code mailed there.
    let out = with_mailed_code(
        &laptop,
        &server,
        &["email", "--to", "alice@new.example.org"],
        &[("VESTNIK_PASSWORD", NEW)],
        "alice@new.example.org",
    );
    assert!(ok(&out).contains("address is now alice@new.example.org"));

    // Forgotten password: a code to the (new) address, every device out.
    let out = with_mailed_code(
        &desk,
        &server,
        &["password", "reset", "--email", "alice@new.example.org"],
        &[("VESTNIK_NEW_PASSWORD", THIRD)],
        "alice@new.example.org",
    );
    assert!(ok(&out).contains("password reset"));
    assert!(!chat(&laptop, &server, &["devices"]).status.success());
    let out = chat_env(
        &desk,
        &server,
        &["login", "--email", "alice@new.example.org"],
        &[("VESTNIK_PASSWORD", THIRD)],
    );
    assert!(ok(&out).contains("logged in alice@new.example.org"));

    // Consent: hidden from lookup, then found again and blocked.
    let bob = tmp("bob");
    register(&bob, &server, "bob@example.org");
    let desk_env = [("VESTNIK_PASSWORD", THIRD)];
    ok(&chat_env(
        &desk,
        &server,
        &[
            "privacy",
            "--find-by-email",
            "nobody",
            "--presence",
            "contacts",
        ],
        &desk_env,
    ));
    let hidden = chat(
        &bob,
        &server,
        &["send", "--to", "alice@new.example.org", "hi"],
    );
    assert!(!hidden.status.success());
    assert!(String::from_utf8_lossy(&hidden.stderr).contains("user_not_found"));
    ok(&chat_env(
        &desk,
        &server,
        &["privacy", "--find-by-email", "everyone"],
        &desk_env,
    ));
    assert!(ok(&chat(&bob, &server, &["block", "alice@new.example.org"])).contains("blocked"));
    assert!(ok(&chat(&bob, &server, &["unblock", "alice@new.example.org"])).contains("unblocked"));
    assert!(!chat_env(
        &desk,
        &server,
        &["privacy", "--presence", "friends"],
        &desk_env
    )
    .status
    .success());

    // Contacts and who may add her to groups.
    let out = chat_env(
        &desk,
        &server,
        &["privacy", "--group-adds", "contacts"],
        &desk_env,
    );
    assert!(ok(&out).contains("group adds: contacts"));
    ok(&chat_env(
        &desk,
        &server,
        &["contacts", "add", "bob@example.org"],
        &desk_env,
    ));
    let out = chat_env(&desk, &server, &["contacts"], &desk_env);
    assert!(ok(&out).contains("1 contact(s)"), "{}", ok(&out));
    let out = chat_env(&desk, &server, &["invitations"], &desk_env);
    assert!(ok(&out).contains("0 invitation(s)"));

    // A display name, shown instead of the id to those she writes to.
    let out = chat_env(
        &desk,
        &server,
        &["profile", "--name", "  Alice Liddell "],
        &desk_env,
    );
    assert!(ok(&out).contains("display name: Alice Liddell"));
    ok(&chat_env(
        &desk,
        &server,
        &["send", "--to", "bob@example.org", "hi bob"],
        &desk_env,
    ));
    let out = chat(
        &bob,
        &server,
        &["history", "--with", "alice@new.example.org"],
    );
    assert!(ok(&out).contains("Alice Liddell: hi bob"), "{}", ok(&out));
    // A profile picture: Alice sets it, Bob (who shares a chat) saves it as
    // the server's JPEG; removed, Alice's profile shows none.
    let picture = tmp("picture.png");
    std::fs::write(&picture, hex::decode(PNG_1X1).expect("hex")).expect("write");
    let out = chat_env(
        &desk,
        &server,
        &["profile", "--avatar", picture.to_str().expect("path")],
        &desk_env,
    );
    assert!(ok(&out).contains("picture: "), "{}", ok(&out));
    let saved = tmp("saved.jpg");
    let out = chat(
        &bob,
        &server,
        &[
            "avatar",
            "alice@new.example.org",
            "--out",
            saved.to_str().expect("path"),
        ],
    );
    assert!(ok(&out).contains("saved "), "{}", ok(&out));
    assert!(std::fs::read(&saved)
        .expect("saved")
        .starts_with(&[0xFF, 0xD8, 0xFF]));
    let out = chat_env(&desk, &server, &["profile", "--no-avatar"], &desk_env);
    assert!(ok(&out).contains("no picture"), "{}", ok(&out));
    let out = chat_env(
        &desk,
        &server,
        &[
            "profile",
            "--avatar",
            saved.with_extension("none").to_str().expect("path"),
        ],
        &desk_env,
    );
    assert!(!out.status.success(), "a missing file is an error");
    // Edited, then deleted for everyone: Bob's history follows.
    let out = chat_env(
        &desk,
        &server,
        &["history", "--with", "bob@example.org", "--ids"],
        &desk_env,
    );
    let line = ok(&out)
        .lines()
        .find(|l| l.contains("hi bob"))
        .map(str::to_owned)
        .expect("the message");
    let id = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix('#'))
        .expect("an id")
        .to_owned();
    // Edited first: Bob sees the new text, marked.
    let out = chat_env(
        &desk,
        &server,
        &["edit", "--with", "bob@example.org", &id, "hi bob, at six"],
        &desk_env,
    );
    assert!(ok(&out).contains("edited"));
    let out = chat(
        &bob,
        &server,
        &["history", "--with", "alice@new.example.org"],
    );
    assert!(
        ok(&out).contains("Alice Liddell: hi bob, at six (edited)"),
        "{}",
        ok(&out)
    );
    let out = chat_env(
        &desk,
        &server,
        &["delete", "--with", "bob@example.org", &id],
        &desk_env,
    );
    assert!(ok(&out).contains("deleted for everyone"));
    let out = chat(
        &bob,
        &server,
        &["history", "--with", "alice@new.example.org"],
    );
    assert!(
        ok(&out).contains("Alice Liddell: (deleted)"),
        "{}",
        ok(&out)
    );
    assert!(!ok(&out).contains("hi bob"));

    // Exported: the server's record of the account and this device's
    // decrypted history, in a file only its owner reads.
    ok(&chat(
        &bob,
        &server,
        &["send", "--to", "alice@new.example.org", "hello alice"],
    ));
    let file = tmp("export.json");
    let out = chat_env(
        &desk,
        &server,
        &["export", "--out", file.to_str().expect("utf-8 path")],
        &desk_env,
    );
    assert!(ok(&out).contains("exported to"));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("export")).expect("json");
    assert_eq!(doc["account"]["account"]["email"], "alice@new.example.org");
    let bodies: Vec<&str> = doc["history"]["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .flat_map(|c| c["messages"].as_array().expect("messages").iter())
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(bodies.contains(&"hello alice"), "{doc}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let _ = std::fs::remove_file(&file);

    // Deleted for good: a wrong password deletes nothing, the right one
    // removes the account and this profile; the address is free again.
    let refused = chat_env(
        &desk,
        &server,
        &["delete-account", "--yes"],
        &[("VESTNIK_PASSWORD", "not the password")],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong_password"));
    let out = chat_env(&desk, &server, &["delete-account", "--yes"], &desk_env);
    assert!(ok(&out).contains("alice@new.example.org is deleted"));
    assert!(!desk.exists(), "the profile goes with the account");
    let gone = chat(
        &bob,
        &server,
        &["send", "--to", "alice@new.example.org", "hi"],
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("user_not_found"));
    for p in [laptop, phone, desk, bob] {
        let _ = std::fs::remove_dir_all(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_terminal_client_runs_groups_and_channels() {
    let Some(server) = server(false).await else {
        return;
    };
    let (alice, bob, carol) = (tmp("g-alice"), tmp("g-bob"), tmp("g-carol"));
    register(&alice, &server, "alice@example.org");
    register(&bob, &server, "bob@example.org");
    register(&carol, &server, "carol@example.org");
    ok(&chat(&alice, &server, &["profile", "--name", "Alice"]));

    let out = ok(&chat(
        &alice,
        &server,
        &[
            "group",
            "create",
            "--title",
            "Team",
            "--member",
            "bob@example.org",
        ],
    ));
    assert!(out.contains("with 2 member(s)"), "{out}");
    let group = out
        .split_whitespace()
        .nth(2)
        .expect("the group id")
        .to_owned();
    let out = ok(&chat(
        &alice,
        &server,
        &["group", "send", &group, "hello team"],
    ));
    assert!(out.contains("sent #"), "{out}");
    let out = ok(&chat(&bob, &server, &["group", "history", &group]));
    assert!(out.contains("Alice: hello team"), "{out}");

    // An invite link brings Carol in; roles and the member list follow.
    let token = ok(&chat(
        &alice,
        &server,
        &["group", "invite", &group, "--uses", "1"],
    ))
    .trim()
    .to_owned();
    let out = ok(&chat(&carol, &server, &["group", "join", &token]));
    assert!(out.contains("joined group Team"), "{out}");
    ok(&chat(
        &alice,
        &server,
        &["group", "role", &group, "bob@example.org", "admin"],
    ));
    let out = ok(&chat(&alice, &server, &["group", "members", &group]));
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("owner") && out.contains("admin"), "{out}");
    let out = ok(&chat(&carol, &server, &["group", "send", &group, "hi all"]));
    assert!(out.contains("sent #"), "{out}");
    let out = ok(&chat(&bob, &server, &["group", "history", &group]));
    assert!(out.contains("hi all"), "{out}");
    let out = ok(&chat(&alice, &server, &["group", "list"]));
    assert!(out.contains("Team"), "{out}");

    // Banned: out, and no sending.
    ok(&chat(
        &bob,
        &server,
        &["group", "ban", &group, "carol@example.org"],
    ));
    let refused = chat(&carol, &server, &["group", "send", &group, "still here?"]);
    assert!(!refused.status.success());

    // A public channel: subscribed, posted, read.
    let out = ok(&chat(
        &alice,
        &server,
        &["channel", "create", "--title", "News", "--public"],
    ));
    let news = out.split_whitespace().last().expect("id").to_owned();
    ok(&chat(&bob, &server, &["channel", "subscribe", &news]));
    ok(&chat(
        &alice,
        &server,
        &["channel", "post", &news, "first post"],
    ));
    let out = ok(&chat(&bob, &server, &["channel", "read", &news]));
    assert!(out.contains("first post"), "{out}");
    let refused = chat(&bob, &server, &["channel", "post", &news, "not mine"]);
    assert!(!refused.status.success());
    for p in [alice, bob, carol] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// A valid 1×1 PNG.
const PNG_1X1: &str = "89504e470d0a1a0a0000000d4948445200000001000000010804000000b51c0c020000000b4944415478da6364600000000600023081d02f0000000049454e44ae426082";

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

/// A command running in a real terminal (a detached tmux session), read
/// off the screen and typed into as a person would.
struct Tmux {
    session: String,
}

impl Tmux {
    /// None (and a note) when tmux is missing outside CI.
    fn start(cmd: &str) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(std::env::var("CI").is_err(), "tmux is required in CI");
            eprintln!("SKIPPED: tmux is not installed");
            return None;
        }
        let session = format!("vestnik-{}", uuid::Uuid::new_v4().simple());
        // `remain-on-exit` keeps the last screen of a command that ended.
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
                cmd,
                ";",
                "set-option",
                "-t",
                &session,
                "remain-on-exit",
                "on",
            ])
            .status()
            .expect("tmux");
        assert!(st.success());
        Some(Self { session })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what:?} on screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        let st = Command::new("tmux").args(&args).status().expect("keys");
        assert!(st.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The TUI in a real terminal (tmux): it shows what arrives and sends what is typed.
fn interactive_chat(alice: &Path, bob: &Path, server: &Server) {
    // A group besides the direct chat: the screen lists both.
    let out = ok(&chat(
        bob,
        server,
        &[
            "group",
            "create",
            "--title",
            "Team",
            "--member",
            "alice@example.org",
        ],
    ));
    let team = out.split_whitespace().nth(2).expect("group id").to_owned();
    ok(&chat(
        bob,
        server,
        &["group", "send", &team, "said in the group"],
    ));
    let cmd = format!(
        "{BIN} --profile {} --server {} chat --with bob@example.org",
        alice.display(),
        server.base
    );
    let Some(tui) = Tmux::start(&cmd) else {
        return;
    };
    tui.wait_for("hi alice");
    tui.wait_for("connected");
    ok(&chat(
        bob,
        server,
        &["send", "--to", "alice@example.org", "live from bob"],
    ));
    tui.wait_for("live from bob");
    tui.keys(&["typed in the tui", "Enter"]);
    tui.wait_for("me: typed in the tui");
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
    // The list, and Tab to the group and back.
    tui.wait_for(" conversations ");
    tui.wait_for("#Team");
    tui.keys(&["Tab"]);
    tui.wait_for("said in the group");
    tui.keys(&["from alice to the team", "Enter"]);
    tui.wait_for("me: from alice to the team");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hist = ok(&chat(bob, server, &["group", "history", &team]));
        if hist.contains("from alice to the team") {
            break;
        }
        assert!(Instant::now() < deadline, "bob never got it: {hist}");
        std::thread::sleep(Duration::from_millis(200));
    }
    tui.keys(&["Tab"]);
    tui.wait_for("typed in the tui");
    tui.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passwords_are_typed_unseen_and_a_mistyped_confirmation_changes_nothing() {
    let Some(server) = server(false).await else {
        return;
    };
    let alice = tmp("tty-alice");
    register(&alice, &server, "alice@example.org");
    const NEW: &str = "a much newer horse";
    let cmd = format!(
        // Typed, not taken from the environment.
        "env -u VESTNIK_PASSWORD -u VESTNIK_NEW_PASSWORD {BIN} --profile {} --server {} password change",
        alice.display(),
        server.base
    );
    // The confirmation differs: refused, and the old password still works.
    let Some(tty) = Tmux::start(&cmd) else {
        return;
    };
    tty.wait_for("password:");
    tty.keys(&[PW, "Enter"]);
    tty.wait_for("new password:");
    tty.keys(&[NEW, "Enter"]);
    tty.wait_for("new password again:");
    tty.keys(&["a much newer hors", "Enter"]);
    let screen = tty.wait_for("the two passwords differ; nothing was changed");
    for typed in [PW, NEW, "newer"] {
        assert!(!screen.contains(typed), "echoed {typed:?}:\n{screen}");
    }
    drop(tty);
    let phone = tmp("tty-phone");
    assert!(ok(&chat(
        &phone,
        &server,
        &["login", "--email", "alice@example.org"]
    ))
    .contains("logged in"));
    let _ = std::fs::remove_dir_all(&phone);

    // Typed the same twice: changed.
    let Some(tty) = Tmux::start(&cmd) else {
        return;
    };
    tty.wait_for("password:");
    tty.keys(&[PW, "Enter"]);
    tty.wait_for("new password:");
    tty.keys(&[NEW, "Enter"]);
    tty.wait_for("new password again:");
    tty.keys(&[NEW, "Enter"]);
    let screen = tty.wait_for("password changed");
    assert!(!screen.contains(NEW), "echoed the new password:\n{screen}");
    drop(tty);
    let phone = tmp("tty-phone2");
    let out = chat_env(
        &phone,
        &server,
        &["login", "--email", "alice@example.org"],
        &[("VESTNIK_PASSWORD", NEW)],
    );
    assert!(ok(&out).contains("logged in"));
    for p in [alice, phone] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Streams a file's SHA-256 without reading it whole.
fn file_sha256(path: &Path) -> String {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).expect("open");
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).expect("read");
    hex::encode(h.finalize())
}

/// Writes `mib` MiB of varied bytes, one MiB at a time.
fn write_big_file(path: &Path, mib: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (j as u8).wrapping_mul(13).wrapping_add(i as u8);
        }
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
}

fn peak_rss_mib(out: &Output) -> f64 {
    let err = String::from_utf8_lossy(&out.stderr);
    let kib: f64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak_rss_kib reported");
    kib / 1024.0
}

/// Far below the file: the client must stream, not buffer.
const MAX_CLIENT_RSS_MIB: f64 = 64.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_100_mib_file_travels_encrypted_through_the_terminal_client_in_bounded_memory() {
    let Some(server) = server(false).await else {
        return;
    };
    let (alice, bob) = (tmp("alice"), tmp("bob"));
    let dir = tmp("files");
    std::fs::create_dir_all(&dir).expect("dir");
    let big = dir.join("video.bin");
    write_big_file(&big, 100);
    tokio::task::spawn_blocking(move || {
        let server = &server;
        register(&alice, server, "alice@example.org");
        register(&bob, server, "bob@example.org");
        let with_rss = |profile: &Path, args: &[&str]| {
            chat_env(profile, server, args, &[("VESTNIK_REPORT_PEAK_RSS", "1")])
        };
        let sent = with_rss(
            &alice,
            &[
                "send-file",
                "--to",
                "bob@example.org",
                big.to_str().expect("utf-8 path"),
            ],
        );
        let out = ok(&sent);
        assert!(out.contains("file video.bin (104857600 bytes"), "{out}");
        let send_rss = peak_rss_mib(&sent);

        let hist = ok(&chat(
            &bob,
            server,
            &["history", "--with", "alice@example.org"],
        ));
        assert!(hist.contains("[file video.bin 104857600 bytes]"), "{hist}");
        let copy = dir.join("copy.bin");
        let got = with_rss(
            &bob,
            &[
                "get-file",
                "--with",
                "alice@example.org",
                "--out",
                copy.to_str().expect("path"),
            ],
        );
        assert!(ok(&got).contains("(104857600 bytes)"));
        let get_rss = peak_rss_mib(&got);
        assert_eq!(
            file_sha256(&copy),
            file_sha256(&big),
            "decrypted file differs"
        );
        eprintln!("peak RSS: send-file {send_rss:.1} MiB, get-file {get_rss:.1} MiB");
        assert!(
            send_rss < MAX_CLIENT_RSS_MIB,
            "send-file peaked at {send_rss:.1} MiB"
        );
        assert!(
            get_rss < MAX_CLIENT_RSS_MIB,
            "get-file peaked at {get_rss:.1} MiB"
        );

        // The stored object on the server is ciphertext: no 1 MiB block of the file in it.
        let objects = server.data.join("media/objects/m");
        let stored: Vec<_> = std::fs::read_dir(&objects)
            .expect("objects")
            .flatten()
            .collect();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            stored[0].metadata().expect("meta").len(),
            104_857_600 + 1600 * 16,
            "100 MiB in 1600 sealed chunks"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("join");
}
