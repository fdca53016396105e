//! `vestnik-chat`: the terminal client. One-shot commands for scripts and an
//! interactive chat (`vestnik-chat chat --with bob@example.org`).
mod account;
mod consent;
mod groups;
mod messages;
mod profile;
mod profiles;
mod tui;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;
use vestnik_client::{Client, SecondFactor};

use profile::Profile;

#[derive(Parser)]
#[command(
    name = "vestnik-chat",
    version,
    about = "Vestnik terminal client: end-to-end-encrypted messaging"
)]
struct Cli {
    /// Directory of this device's profile (store, key, settings)
    #[arg(long, global = true, env = "VESTNIK_PROFILE")]
    profile: Option<PathBuf>,
    /// Server URL (saved in the profile at register/login)
    #[arg(long, global = true, env = "VESTNIK_SERVER")]
    server: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Account(account::AccountCommand),
    #[command(flatten)]
    Message(messages::MessageCommand),
    #[command(flatten)]
    Consent(consent::ConsentCommand),
    /// Groups: list conversations, create, members, add, remove, roles,
    /// invites, bans, mutes, send, history
    Group {
        #[command(subcommand)]
        command: groups::GroupCommand,
    },
    /// Channels: create, subscribe, post, read
    Channel {
        #[command(subcommand)]
        command: groups::ChannelCommand,
    },
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A password typed without echo on the terminal.
fn typed_password(prompt: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(prompt).with_context(|| {
        "no terminal to type the password on; set VESTNIK_PASSWORD (and VESTNIK_NEW_PASSWORD)"
    })
}

/// The account's password: VESTNIK_PASSWORD, else typed without echo.
fn password() -> anyhow::Result<String> {
    match std::env::var("VESTNIK_PASSWORD") {
        Ok(p) => Ok(p),
        Err(_) => typed_password("password: "),
    }
}

/// A password being chosen: from `var`, else typed twice without echo (a
/// typo would lock the account out).
fn new_password(var: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    let first = typed_password("new password: ")?;
    let again = typed_password("new password again: ")?;
    if first != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

async fn open(profile: &Profile) -> anyhow::Result<Client> {
    let file = profile.load()?;
    Ok(Client::open(profile.config(&file.server_url, false)?).await?)
}

/// An e-mail address is looked up; anything else must be a user id.
async fn peer(client: &Client, who: &str) -> anyhow::Result<String> {
    if who.contains('@') {
        Ok(client
            .lookup_user(who)
            .await
            .with_context(|| format!("looking up {who}"))?)
    } else if who.len() == 32 && who.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(who.to_owned())
    } else {
        bail!("expected an e-mail address or a user id, got {who:?}")
    }
}

/// A received file name as a name in the current directory: the sender
/// chose it, so no directories, no hidden files, nothing but the last part.
fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned();
    if cleaned.is_empty() {
        "received-file".into()
    } else {
        cleaned
    }
}

/// With `VESTNIK_REPORT_PEAK_RSS` set, the process's peak resident memory
/// goes to stderr at exit (Linux), so tests can bound it.
fn report_peak_rss() {
    if std::env::var_os("VESTNIK_REPORT_PEAK_RSS").is_none() {
        return;
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
            let kib = line.split_whitespace().nth(1).unwrap_or("0");
            eprintln!("peak_rss_kib={kib}");
        }
    }
}

fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = run(cli).await;
    report_peak_rss();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vestnik-chat: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let profile = Profile::new(cli.profile.clone().unwrap_or_else(profile::default_dir));
    let server = || {
        cli.server
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8080".into())
    };
    match cli.command {
        Command::Account(c) => account::run(&profile, &server(), c).await?,
        Command::Message(c) => messages::run(&profile, c).await?,
        Command::Consent(c) => consent::run(&profile, c).await?,
        Command::Group { command } => groups::group(&profile, command).await?,
        Command::Channel { command } => groups::channel(&profile, command).await?,
    }
    Ok(())
}

/// A user's display name when they have one (and we may see it), else the id.
async fn name_of(client: &Client, user_id: &str) -> anyhow::Result<String> {
    let id = user_id.to_owned();
    Ok(client
        .display_names(std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or(id))
}

fn second_factor(totp: Option<String>, recovery_code: Option<String>) -> Option<SecondFactor> {
    match (totp, recovery_code) {
        (Some(t), _) => Some(SecondFactor::Totp(t)),
        (None, Some(r)) => Some(SecondFactor::RecoveryCode(r)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn received_file_names_cannot_point_anywhere_else() {
        assert_eq!(safe_file_name("photo.jpg"), "photo.jpg");
        assert_eq!(
            safe_file_name("../../.ssh/authorized_keys"),
            "authorized_keys"
        );
        assert_eq!(safe_file_name("C:\\Windows\\evil.exe"), "evil.exe");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("/"), "received-file");
        assert_eq!(safe_file_name("a\u{0}b\nc"), "abc");
    }
}
