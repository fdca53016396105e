//! `vestnik-chat`: the terminal client. One-shot commands for scripts and an
//! interactive chat (`vestnik-chat chat --with bob@example.org`).
mod groups;
mod profile;
mod tui;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;
use vestnik_client::{Client, FileOptions, SecondFactor};

use profile::{write_private, Profile, ProfileFile};

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
    /// Create an account: mails a code, then asks for it and a password
    /// (password from VESTNIK_PASSWORD if set)
    Register {
        #[arg(long)]
        email: String,
        /// The mailed code, if you already have one
        #[arg(long)]
        code: Option<String>,
    },
    /// Log this machine in as a new device of an existing account
    Login {
        #[arg(long)]
        email: String,
        /// Current authenticator code, when 2FA is on
        #[arg(long)]
        totp: Option<String>,
        /// A recovery code instead of --totp
        #[arg(long)]
        recovery_code: Option<String>,
    },
    /// Send a text message
    Send {
        /// E-mail address or user id
        #[arg(long)]
        to: String,
        message: String,
    },
    /// Encrypt a file on this device, upload it and send it
    SendFile {
        /// E-mail address or user id
        #[arg(long)]
        to: String,
        path: PathBuf,
        /// Message text (default: the file name)
        #[arg(long)]
        caption: Option<String>,
        /// Seconds until the server deletes the file (default: the server's maximum)
        #[arg(long)]
        ttl_secs: Option<i64>,
    },
    /// Download, verify and decrypt a file received from (or sent to) someone
    GetFile {
        #[arg(long)]
        with: String,
        /// The message carrying it (default: the newest file in the conversation)
        #[arg(long)]
        message: Option<String>,
        /// Where to write it (default: the sender's file name in the current directory)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fetch and decrypt what is waiting, print it
    Sync,
    /// The conversation with someone, oldest first
    History {
        #[arg(long)]
        with: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Show each message's id (for `delete`)
        #[arg(long)]
        ids: bool,
    },
    /// This account's devices
    Devices,
    /// The safety number to compare with someone (in person or by call)
    VerifySafetyNumber {
        #[arg(long)]
        with: String,
    },
    /// Interactive chat in the terminal: your conversations on the left
    /// (Tab moves between them), the open one on the right
    Chat {
        /// Open the chat with this person (e-mail address or user id) first
        #[arg(long)]
        with: Option<String>,
    },
    /// Two-factor authentication
    #[command(name = "2fa")]
    TwoFactor {
        #[command(subcommand)]
        command: TwoFactorCommand,
    },
    /// The account's password
    Password {
        #[command(subcommand)]
        command: PasswordCommand,
    },
    /// Move the account to another e-mail address: a code is mailed there,
    /// then asked for
    Email {
        /// The new address
        #[arg(long)]
        to: String,
    },
    /// Block someone: no direct messages from them, they cannot add you to
    /// groups, and neither sees the other's presence, typing or reading
    Block {
        /// E-mail address or user id
        who: String,
    },
    /// Lift a block
    Unblock {
        /// E-mail address or user id
        who: String,
    },
    /// Who may find you by e-mail address, see when you are online, and add
    /// you to groups (anyone else's add becomes an invitation)
    Privacy {
        /// everyone or nobody
        #[arg(long)]
        find_by_email: Option<String>,
        /// everyone, contacts or nobody
        #[arg(long)]
        presence: Option<String>,
        /// everyone, contacts or nobody
        #[arg(long)]
        group_adds: Option<String>,
    },
    /// Your contacts (whom you opened a chat with, or added): list them, or
    /// add or remove one
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCommand>,
    },
    /// Invitations to groups and channels: list them, or accept or decline
    /// one
    Invitations {
        #[command(subcommand)]
        command: Option<InvitationsCommand>,
    },
    /// Edit one of your messages (within two days): every device that has it
    /// shows the new text, marked edited
    Edit {
        /// The conversation partner: e-mail address or user id
        #[arg(long)]
        with: String,
        /// The message's id (`history --ids` shows them)
        message_id: String,
        /// The new text
        text: String,
    },
    /// Delete one of your messages for everyone (within the server's window)
    Delete {
        /// The conversation partner: e-mail address or user id
        #[arg(long)]
        with: String,
        /// The message's id (`history --ids` shows them)
        message_id: String,
    },
    /// Your display name, shown instead of your id to those you share a
    /// conversation with: set it with --name ("" clears), or print it
    Profile {
        #[arg(long)]
        name: Option<String>,
    },
    /// Write your data as JSON: what the server holds about the account and
    /// this device's decrypted history (the server has no message contents)
    Export {
        /// File to write (created with mode 600); stdout when absent
        #[arg(long)]
        out: Option<PathBuf>,
    },
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
    /// Log this device out (its keys leave the server)
    Logout,
    /// Delete the account for good: every device, key, group membership and
    /// file on the server; groups you own pass on. Asks for the password (or
    /// VESTNIK_PASSWORD) and for the address to confirm, unless --yes
    DeleteAccount {
        /// Current authenticator code, when 2FA is on
        #[arg(long)]
        totp: Option<String>,
        /// A recovery code instead of --totp
        #[arg(long)]
        recovery_code: Option<String>,
        /// Do not ask for the address
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum ContactsCommand {
    /// Add a contact (e-mail address or user id)
    Add { who: String },
    /// Remove a contact (e-mail address or user id)
    Remove { who: String },
}

#[derive(Subcommand)]
enum InvitationsCommand {
    /// Join the group or channel
    Accept { conversation_id: String },
    /// Say no (nobody is told)
    Decline { conversation_id: String },
}

#[derive(Subcommand)]
enum PasswordCommand {
    /// Change it: the current one is asked (or VESTNIK_PASSWORD), the new
    /// one twice (or VESTNIK_NEW_PASSWORD)
    Change {
        /// Also sign out every other device of the account
        #[arg(long)]
        sign_out_others: bool,
    },
    /// Forgotten: mails a code, then asks for it and a new password (twice,
    /// or VESTNIK_NEW_PASSWORD). Every device of the account is signed out.
    Reset {
        #[arg(long)]
        email: String,
        /// The mailed code, if you already have one
        #[arg(long)]
        code: Option<String>,
        /// Current authenticator code, when 2FA is on
        #[arg(long)]
        totp: Option<String>,
        /// A recovery code instead of --totp
        #[arg(long)]
        recovery_code: Option<String>,
    },
}

#[derive(Subcommand)]
enum TwoFactorCommand {
    /// Show a new secret and its otpauth:// URI
    Setup,
    /// Turn 2FA on with a current code; prints recovery codes
    Enable { code: String },
    /// Turn 2FA off with the password (asked, or VESTNIK_PASSWORD) and a
    /// current or recovery code
    Disable { code: String },
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
        Command::Register { email, code } => {
            if profile.exists() {
                bail!(
                    "{} already holds a device; choose another --profile",
                    profile.dir.display()
                );
            }
            let code = match code {
                Some(c) => c,
                None => {
                    Client::request_registration_code(&server(), &email).await?;
                    read_line(&format!("code mailed to {email}: "))?
                }
            };
            let pw = new_password("VESTNIK_PASSWORD")?;
            let client =
                match Client::register(profile.config(&server(), true)?, &email, code.trim(), &pw)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        profile.discard_device();
                        return Err(e.into());
                    }
                };
            profile.save(&ProfileFile {
                server_url: server(),
                email: email.clone(),
            })?;
            println!(
                "registered {email}: user {} device {}",
                client.user_id(),
                client.device_id()
            );
            client.close().await;
        }
        Command::Login {
            email,
            totp,
            recovery_code,
        } => {
            if profile.exists() {
                bail!(
                    "{} already holds a device; choose another --profile",
                    profile.dir.display()
                );
            }
            let second = second_factor(totp, recovery_code);
            let pw = password()?;
            let client =
                match Client::login(profile.config(&server(), true)?, &email, &pw, second).await {
                    Ok(c) => c,
                    Err(e) => {
                        // A refused login leaves no half-made profile behind.
                        profile.discard_device();
                        return Err(e.into());
                    }
                };
            profile.save(&ProfileFile {
                server_url: server(),
                email: email.clone(),
            })?;
            println!(
                "logged in {email}: user {} device {}",
                client.user_id(),
                client.device_id()
            );
            client.close().await;
        }
        Command::Send { to, message } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &to).await?;
            let sent = client.send_text(&peer, &message).await?;
            println!("sent #{} {}", sent.seq, sent.message_id);
            client.close().await;
        }
        Command::SendFile {
            to,
            path,
            caption,
            ttl_secs,
        } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &to).await?;
            let options = FileOptions {
                caption,
                ttl_secs,
                mime: None,
            };
            let (sent, a) = client
                .send_file(&peer, &path, &options)
                .await
                .with_context(|| format!("sending {}", path.display()))?;
            println!(
                "sent #{} {} file {} ({} bytes, media {})",
                sent.seq, sent.message_id, a.name, a.size, a.media_id
            );
            client.close().await;
        }
        Command::GetFile { with, message, out } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.sync().await?;
            let history = client.history(&conv, 10_000).await?;
            let found = history.iter().rev().find(|m| {
                m.attachment.is_some()
                    && message
                        .as_deref()
                        .is_none_or(|id| m.message_id.as_deref() == Some(id))
            });
            let Some(a) = found.and_then(|m| m.attachment.as_ref()) else {
                bail!(
                    "no file in the conversation with {with}{}",
                    message
                        .map(|m| format!(" in message {m}"))
                        .unwrap_or_default()
                );
            };
            let out = out.unwrap_or_else(|| PathBuf::from(safe_file_name(&a.name)));
            let n = client
                .download_attachment(a, &out)
                .await
                .with_context(|| format!("fetching {}", a.name))?;
            println!("saved {} ({n} bytes)", out.display());
            client.close().await;
        }
        Command::Sync => {
            let client = open(&profile).await?;
            let mut events = client.events();
            let n = client.sync().await?;
            for _ in 0..n {
                match tokio::time::timeout(std::time::Duration::from_millis(200), events.recv())
                    .await
                {
                    Ok(Some(vestnik_client::ClientEvent::Message(m))) => {
                        let file = m
                            .attachment
                            .as_ref()
                            .map(|a| format!(" [file {} {} bytes]", a.name, a.size))
                            .unwrap_or_default();
                        println!(
                            "[{}] {} #{}: {}{file}",
                            time(m.sent_at),
                            name_of(&client, &m.sender_user_id).await?,
                            m.seq,
                            m.body
                        )
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            println!("{n} item(s) synced");
            client.close().await;
        }
        Command::History { with, limit, ids } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.sync().await?;
            let history = client.history(&conv, limit.clamp(1, 10_000)).await?;
            let senders: Vec<String> = history.iter().map(|m| m.sender_user_id.clone()).collect();
            let names = client.display_names(&senders).await?;
            for m in history {
                let who = if m.sender_user_id == client.user_id() {
                    "me".to_owned()
                } else {
                    names
                        .get(&m.sender_user_id)
                        .cloned()
                        .unwrap_or_else(|| m.sender_user_id.clone())
                };
                let when = m.sent_at.map(time).unwrap_or_else(|| "pending".into());
                let ticks = if m.sender_user_id != client.user_id() {
                    ""
                } else if !m.delivered_to.is_empty() {
                    " ✓✓"
                } else if m.seq.is_some() {
                    " ✓"
                } else {
                    " …"
                };
                let file = m
                    .attachment
                    .as_ref()
                    .map(|a| format!(" [file {} {} bytes]", a.name, a.size))
                    .unwrap_or_default();
                let body = if m.state == vestnik_client::MessageState::Deleted {
                    "(deleted)".to_owned()
                } else if m.edited_at.is_some() {
                    format!("{} (edited)", m.body)
                } else {
                    m.body.clone()
                };
                let id = match (&m.message_id, ids) {
                    (Some(id), true) => format!(" #{id}"),
                    _ => String::new(),
                };
                println!("[{when}]{id} {who}: {body}{file}{ticks}");
            }
            client.close().await;
        }
        Command::Devices => {
            let client = open(&profile).await?;
            for d in client.devices().await? {
                let current = if d.current { " (this device)" } else { "" };
                println!("{}\t{}\t{}{current}", d.id, d.platform, d.name);
            }
            client.close().await;
        }
        Command::VerifySafetyNumber { with } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &with).await?;
            let number = client.safety_number(&peer).await?;
            println!("safety number with {with}:\n{number}");
            println!("Compare it with theirs in person or on a call; it changes when a device is added or replaced.");
            client.close().await;
        }
        Command::Chat { with } => {
            let client = open(&profile).await?;
            let mut list = Vec::new();
            for c in client.conversations().await? {
                let other = (c.kind == "direct")
                    .then(|| {
                        c.member_user_ids
                            .iter()
                            .find(|u| u.as_str() != client.user_id())
                            .cloned()
                    })
                    .flatten();
                let label = match (&c.title, &other) {
                    (Some(t), _) => t.clone(),
                    (None, Some(p)) => name_of(&client, p).await?,
                    _ => c.id.clone(),
                };
                list.push(tui::Entry {
                    id: c.id,
                    kind: c.kind,
                    label,
                    peer: other,
                });
            }
            let current = match with {
                Some(who) => {
                    let peer_id = peer(&client, &who).await?;
                    let conv = client.conversation_with(&peer_id).await?;
                    match list.iter().position(|e| e.id == conv) {
                        Some(i) => i,
                        None => {
                            let label = name_of(&client, &peer_id).await?;
                            list.insert(
                                0,
                                tui::Entry {
                                    id: conv,
                                    kind: "direct".into(),
                                    label,
                                    peer: Some(peer_id),
                                },
                            );
                            0
                        }
                    }
                }
                None => list.iter().position(tui::Entry::writable).ok_or_else(|| {
                    anyhow::anyhow!("no conversation yet: start one with --with <who>")
                })?,
            };
            tui::run(client, list, current).await?;
        }
        Command::TwoFactor { command } => {
            let client = open(&profile).await?;
            match command {
                TwoFactorCommand::Setup => {
                    let s = client.setup_totp().await?;
                    println!(
                        "secret: {}\nuri: {}",
                        s.secret.expose(),
                        s.otpauth_uri.expose()
                    );
                }
                TwoFactorCommand::Enable { code } => {
                    let r = client.enable_totp(&code).await?;
                    println!("2FA is on. Recovery codes (each works once; keep them safe):");
                    for c in r.recovery_codes {
                        println!("  {}", c.expose());
                    }
                }
                TwoFactorCommand::Disable { code } => {
                    client.disable_totp(&password()?, &code).await?;
                    println!("2FA is off");
                }
            }
            client.close().await;
        }
        Command::Password {
            command: PasswordCommand::Change { sign_out_others },
        } => {
            let client = open(&profile).await?;
            let current = password()?;
            let new = new_password("VESTNIK_NEW_PASSWORD")?;
            client
                .change_password(&current, &new, sign_out_others)
                .await?;
            println!(
                "password changed{}",
                if sign_out_others {
                    "; every other device is signed out"
                } else {
                    ""
                }
            );
            client.close().await;
        }
        Command::Password {
            command:
                PasswordCommand::Reset {
                    email,
                    code,
                    totp,
                    recovery_code,
                },
        } => {
            let server = profile
                .load()
                .map(|f| f.server_url)
                .unwrap_or_else(|_| server());
            let code = match code {
                Some(c) => c,
                None => {
                    Client::request_password_reset(&server, &email).await?;
                    read_line(&format!("code mailed to {email}: "))?
                }
            };
            let second = second_factor(totp, recovery_code);
            let new = new_password("VESTNIK_NEW_PASSWORD")?;
            Client::reset_password(&server, &email, &code, &new, second).await?;
            println!(
                "password reset; every device of {email} is signed out: log in again{}",
                if profile.exists() {
                    format!(
                        " (this profile, {}, is signed out too)",
                        profile.dir.display()
                    )
                } else {
                    String::new()
                }
            );
        }
        Command::Email { to } => {
            let client = open(&profile).await?;
            client.request_email_change(&password()?, &to).await?;
            let code = read_line(&format!("code mailed to {to}: "))?;
            let account = client.confirm_email_change(&code).await?;
            let mut file = profile.load()?;
            file.email = account.email.clone();
            profile.save(&file)?;
            println!("the account's address is now {}", account.email);
            client.close().await;
        }
        Command::Block { who } => {
            let client = open(&profile).await?;
            let user = peer(&client, &who).await?;
            client.block(&user).await?;
            println!("blocked {who}");
            client.close().await;
        }
        Command::Unblock { who } => {
            let client = open(&profile).await?;
            let user = peer(&client, &who).await?;
            client.unblock(&user).await?;
            println!("unblocked {who}");
            client.close().await;
        }
        Command::Privacy {
            find_by_email,
            presence,
            group_adds,
        } => {
            if find_by_email.is_none() && presence.is_none() && group_adds.is_none() {
                bail!("nothing to set: give --find-by-email, --presence and/or --group-adds");
            }
            let client = open(&profile).await?;
            if let Some(v) = find_by_email {
                let who = v
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--find-by-email: {e}"))?;
                client.set_find_by_email(who).await?;
                println!("find by e-mail: {v}");
            }
            if let Some(v) = presence {
                let who = v.parse().map_err(|e| anyhow::anyhow!("--presence: {e}"))?;
                client.set_presence_visibility(who).await?;
                println!("presence: {v}");
            }
            if let Some(v) = group_adds {
                let who = v
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--group-adds: {e}"))?;
                client.set_group_adds(who).await?;
                println!("group adds: {v}");
            }
            client.close().await;
        }
        Command::Edit {
            with,
            message_id,
            text,
        } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.edit_message(&conv, &message_id, &text).await?;
            println!("edited");
            client.close().await;
        }
        Command::Delete { with, message_id } => {
            let client = open(&profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.delete_for_everyone(&conv, &message_id).await?;
            println!("deleted for everyone");
            client.close().await;
        }
        Command::Profile { name } => {
            let client = open(&profile).await?;
            match name {
                Some(n) => {
                    let p = client.set_display_name(&n).await?;
                    match p.display_name {
                        Some(n) => println!("display name: {n}"),
                        None => println!("display name cleared"),
                    }
                }
                None => {
                    let me = client.user_id().to_owned();
                    match client.display_names(&[me]).await?.into_values().next() {
                        Some(n) => println!("display name: {n}"),
                        None => println!("no display name (others see your id)"),
                    }
                }
            }
            client.close().await;
        }
        Command::Export { out } => {
            let client = open(&profile).await?;
            client.sync().await?;
            let doc = serde_json::json!({
                "account": client.export_account().await?,
                "history": client.export_history().await?,
            });
            let text = serde_json::to_string_pretty(&doc)?;
            client.close().await;
            match out {
                Some(path) => {
                    write_private(&path, text.as_bytes())?;
                    println!("exported to {}", path.display());
                }
                None => println!("{text}"),
            }
        }
        Command::DeleteAccount {
            totp,
            recovery_code,
            yes,
        } => {
            let client = open(&profile).await?;
            let email = profile.load()?.email;
            if !yes {
                let typed = read_line(&format!(
                    "this deletes {email} for good; type the address to confirm: "
                ))?;
                if typed.trim() != email {
                    bail!("not confirmed; nothing was deleted");
                }
            }
            let pw = password()?;
            client
                .delete_account(&pw, second_factor(totp, recovery_code))
                .await?;
            client.close().await;
            std::fs::remove_dir_all(&profile.dir).ok();
            println!("{email} is deleted; {} removed", profile.dir.display());
        }
        Command::Contacts { command } => {
            let client = open(&profile).await?;
            match command {
                None => {
                    let ids = client.contacts().await?;
                    let names = client.display_names(&ids).await?;
                    for id in &ids {
                        match names.get(id) {
                            Some(n) => println!("{n} ({id})"),
                            None => println!("{id}"),
                        }
                    }
                    println!("{} contact(s)", ids.len());
                }
                Some(ContactsCommand::Add { who }) => {
                    let user = peer(&client, &who).await?;
                    client.set_contact(&user, true).await?;
                    println!("{who} is a contact");
                }
                Some(ContactsCommand::Remove { who }) => {
                    let user = peer(&client, &who).await?;
                    client.set_contact(&user, false).await?;
                    println!("{who} is no longer a contact");
                }
            }
            client.close().await;
        }
        Command::Invitations { command } => {
            let client = open(&profile).await?;
            match command {
                None => {
                    let list = client.invitations().await?;
                    for i in &list {
                        let by = match &i.invited_by {
                            Some(u) => name_of(&client, u).await?,
                            None => "a deleted account".into(),
                        };
                        println!(
                            "{} {} \"{}\" from {by}",
                            i.conversation_id,
                            i.kind,
                            i.title.as_deref().unwrap_or("")
                        );
                    }
                    println!("{} invitation(s)", list.len());
                }
                Some(InvitationsCommand::Accept { conversation_id }) => {
                    let c = client.accept_invitation(&conversation_id).await?;
                    println!("joined {} {}", c.kind, c.title.as_deref().unwrap_or(&c.id));
                }
                Some(InvitationsCommand::Decline { conversation_id }) => {
                    client.decline_invitation(&conversation_id).await?;
                    println!("declined");
                }
            }
            client.close().await;
        }
        Command::Group { command } => groups::group(&profile, command).await?,
        Command::Channel { command } => groups::channel(&profile, command).await?,
        Command::Logout => {
            let client = open(&profile).await?;
            client.logout().await?;
            std::fs::remove_dir_all(&profile.dir).ok();
            println!("logged out; {} removed", profile.dir.display());
        }
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
