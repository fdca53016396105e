//! Account commands: register, log in, devices, 2FA, password, e-mail,
//! privacy, profile, export, log out, delete.
use anyhow::bail;
use clap::Subcommand;
use std::path::PathBuf;
use vestnik_client::Client;

use crate::profile::{write_private, Profile, ProfileFile};
use crate::*;

#[derive(Subcommand)]
pub enum AccountCommand {
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
    /// This account's devices
    Devices,
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
    /// Your profile, shown instead of your id to those you share a
    /// conversation with: set the display name with --name ("" clears), the
    /// picture with --avatar FILE (JPEG, PNG, GIF or WebP) or --no-avatar;
    /// with no option, print it
    Profile {
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "no_avatar")]
        avatar: Option<PathBuf>,
        #[arg(long)]
        no_avatar: bool,
    },
    /// Save someone's profile picture (a JPEG) to a file
    Avatar {
        /// E-mail address or user id (yours too)
        who: String,
        /// File to write
        #[arg(long)]
        out: PathBuf,
    },
    /// Write your data as JSON: what the server holds about the account and
    /// this device's decrypted history (the server has no message contents)
    Export {
        /// File to write (created with mode 600); stdout when absent
        #[arg(long)]
        out: Option<PathBuf>,
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
pub enum PasswordCommand {
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
pub enum TwoFactorCommand {
    /// Show a new secret and its otpauth:// URI
    Setup,
    /// Turn 2FA on with a current code; prints recovery codes
    Enable { code: String },
    /// Turn 2FA off with the password (asked, or VESTNIK_PASSWORD) and a
    /// current or recovery code
    Disable { code: String },
}

pub async fn run(profile: &Profile, server: &str, cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Register { email, code } => {
            if profile.exists() {
                bail!(
                    "{} already holds a device; choose another --profile",
                    profile.dir.display()
                );
            }
            let code = match code {
                Some(c) => c,
                None => {
                    Client::request_registration_code(server, &email).await?;
                    read_line(&format!("code mailed to {email}: "))?
                }
            };
            let pw = new_password("VESTNIK_PASSWORD")?;
            let client =
                match Client::register(profile.config(server, true)?, &email, code.trim(), &pw)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        profile.discard_device();
                        return Err(e.into());
                    }
                };
            profile.save(&ProfileFile {
                server_url: server.to_owned(),
                email: email.clone(),
            })?;
            println!(
                "registered {email}: user {} device {}",
                client.user_id(),
                client.device_id()
            );
            client.close().await;
        }
        AccountCommand::Login {
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
                match Client::login(profile.config(server, true)?, &email, &pw, second).await {
                    Ok(c) => c,
                    Err(e) => {
                        // A refused login leaves no half-made profile behind.
                        profile.discard_device();
                        return Err(e.into());
                    }
                };
            profile.save(&ProfileFile {
                server_url: server.to_owned(),
                email: email.clone(),
            })?;
            println!(
                "logged in {email}: user {} device {}",
                client.user_id(),
                client.device_id()
            );
            client.close().await;
        }
        AccountCommand::Devices => {
            let client = open(profile).await?;
            for d in client.devices().await? {
                let current = if d.current { " (this device)" } else { "" };
                println!("{}\t{}\t{}{current}", d.id, d.platform, d.name);
            }
            client.close().await;
        }
        AccountCommand::TwoFactor { command } => {
            let client = open(profile).await?;
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
        AccountCommand::Password {
            command: PasswordCommand::Change { sign_out_others },
        } => {
            let client = open(profile).await?;
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
        AccountCommand::Password {
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
                .unwrap_or_else(|_| server.to_owned());
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
        AccountCommand::Email { to } => {
            let client = open(profile).await?;
            client.request_email_change(&password()?, &to).await?;
            let code = read_line(&format!("code mailed to {to}: "))?;
            let account = client.confirm_email_change(&code).await?;
            let mut file = profile.load()?;
            file.email = account.email.clone();
            profile.save(&file)?;
            println!("the account's address is now {}", account.email);
            client.close().await;
        }
        AccountCommand::Privacy {
            find_by_email,
            presence,
            group_adds,
        } => {
            if find_by_email.is_none() && presence.is_none() && group_adds.is_none() {
                bail!("nothing to set: give --find-by-email, --presence and/or --group-adds");
            }
            let client = open(profile).await?;
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
        AccountCommand::Profile {
            name,
            avatar,
            no_avatar,
        } => {
            let client = open(profile).await?;
            let change = profiles::Change {
                name,
                avatar,
                no_avatar,
            };
            let result = profiles::profile(&client, change).await;
            client.close().await;
            result?;
        }
        AccountCommand::Avatar { who, out } => {
            let client = open(profile).await?;
            let result = profiles::save_avatar(&client, &who, &out).await;
            client.close().await;
            result?;
        }
        AccountCommand::Export { out } => {
            let client = open(profile).await?;
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
        AccountCommand::Logout => {
            let client = open(profile).await?;
            client.logout().await?;
            std::fs::remove_dir_all(&profile.dir).ok();
            println!("logged out; {} removed", profile.dir.display());
        }
        AccountCommand::DeleteAccount {
            totp,
            recovery_code,
            yes,
        } => {
            let client = open(profile).await?;
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
    }
    Ok(())
}
