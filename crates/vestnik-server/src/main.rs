//! `vestnik`: the server binary.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use vestnik_core::{Config, LogFormat};
use vestnik_server::config::{self, Overrides};

// The delivery path allocates many small, short-lived buffers (frames,
// JSON, rows); glibc malloc showed as ~17 % of the server's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "vestnik",
    version,
    about = "Vestnik: a self-hostable end-to-end-encrypted messenger server",
    long_about = "Vestnik: a self-hostable end-to-end-encrypted messenger server.\n\n\
Configuration comes from defaults, then a TOML file (--config or VESTNIK_CONFIG), then\n\
VESTNIK_<KEY> environment variables, then flags. With no configuration at all, `vestnik serve`\n\
runs on embedded defaults: SQLite under ./data, in-process caches, mail written to ./data/mail."
)]
struct Cli {
    /// TOML configuration file
    #[arg(long, global = true, env = "VESTNIK_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first)
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
    /// Configuration tools
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the OpenAPI document (the same as `GET /openapi.json`)
    Openapi,
    /// Operator tasks on user accounts
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it with secrets redacted
    Check,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator (or promote an account). The password is read
    /// from VESTNIK_ADMIN_PASSWORD or, if unset, from the first line of stdin.
    Create {
        #[arg(long)]
        email: String,
    },
    /// List accounts, ordered by e-mail
    List {
        /// Start after this e-mail (paging)
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Disable an account and end all its sessions
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Re-enable a disabled account
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Create accounts for load tests without e-mail or password hashing;
    /// prints JSON lines {user_id, device_id, access_token}. Seeded accounts
    /// cannot log in with a password.
    Seed {
        /// Accounts are named <prefix>-<n>@seed.invalid
        #[arg(long, default_value = "load")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 2)]
        devices: usize,
        /// Lifetime of the printed access tokens
        #[arg(long, default_value_t = 86_400)]
        token_ttl_secs: i64,
    },
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let format = config
        .log_format
        .unwrap_or(if std::io::stderr().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match config::load(cli.config.as_deref(), &cli.flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vestnik: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vestnik: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vestnik: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            init_logging(&config);
            let gw = vestnik_server::build(&config, vestnik_server::system_clock()).await?;
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("binding listen = {}", config.listen))?;
            tracing::info!(
                listen = %config.listen,
                backend = gw.store.backend(),
                redis = gw.settings.uses_redis,
                mail = ?config.mail,
                data_dir = %config.data_dir.display(),
                "vestnik is serving"
            );
            // One signal stops both listeners.
            let (stop, _) = tokio::sync::watch::channel(false);
            let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Some(addr) = config.metrics_listen.as_deref().filter(|a| !a.is_empty()) {
                let metrics = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics_listen = {addr}"))?;
                tracing::info!(metrics_listen = %addr, "serving /metrics");
                let (gw, done) = (gw.clone(), stopped(stop.subscribe()));
                tokio::spawn(async move {
                    if let Err(e) = vestnik_server::serve_metrics(metrics, gw, done).await {
                        tracing::warn!(error = %e, "the metrics listener failed");
                    }
                });
            }
            let signal = async move {
                shutdown_signal().await;
                let _ = stop.send(true);
            };
            vestnik_server::serve(listener, gw, signal).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            init_logging(&config);
            let store = vestnik_server::open_store(&config).await?;
            let applied = store.migrate().await?;
            println!(
                "{} migration(s) applied on {}: {:?}",
                applied.len(),
                store.backend(),
                applied
            );
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            println!("configuration is valid:\n{config:#?}");
            Ok(())
        }
        Command::Openapi => {
            // A closed pipe (`vestnik openapi | head`) is an error, not a panic.
            use std::io::Write;
            let doc =
                serde_json::to_string_pretty(&vestnik_gateway::openapi_document((&config).into()))?;
            writeln!(std::io::stdout().lock(), "{doc}")?;
            Ok(())
        }
        Command::Admin { command } => admin(command, config).await,
    }
}

async fn admin(command: AdminCommand, config: Config) -> anyhow::Result<()> {
    let gw = vestnik_server::build(&config, vestnik_server::system_clock()).await?;
    let store = gw.store.clone();
    let now = vestnik_core::SystemClock.now_ms();
    match command {
        AdminCommand::Create { email } => {
            let email = vestnik_core::Email::parse(&email)?;
            let password = match std::env::var("VESTNIK_ADMIN_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            vestnik_auth::check_password_policy(&password, email.as_str())?;
            let hash = vestnik_auth::hash_password(password).await?;
            store
                .upsert_admin(&vestnik_core::ids::new_id(), email.as_str(), &hash, now)
                .await?;
            println!("administrator {email} is active");
        }
        AdminCommand::List { after, limit } => {
            for u in store
                .list_users(after.as_deref(), limit.clamp(1, 10_000))
                .await?
            {
                let admin = if u.is_admin { " admin" } else { "" };
                let totp = if u.totp_enabled() { " 2fa" } else { "" };
                println!("{}\t{}\t{}{}{}", u.id, u.email, u.status, admin, totp);
            }
        }
        AdminCommand::Disable { email } => {
            let email = vestnik_core::Email::parse(&email)?;
            anyhow::ensure!(
                gw.auth.disable_user(email.as_str()).await?,
                "no account for {email}"
            );
            println!("{email} is disabled and its sessions are ended");
        }
        AdminCommand::Seed {
            prefix,
            users,
            devices,
            token_ttl_secs,
        } => {
            anyhow::ensure!(
                users <= 1_000_000 && devices <= 20,
                "expected at most 1,000,000 users of at most 20 devices"
            );
            for n in 0..users {
                for d in gw
                    .auth
                    .seed_account(
                        &format!("{prefix}-{n}@seed.invalid"),
                        devices,
                        token_ttl_secs,
                    )
                    .await?
                {
                    println!("{}", serde_json::to_string(&d)?);
                }
            }
        }
        AdminCommand::Enable { email } => {
            let email = vestnik_core::Email::parse(&email)?;
            let u = store
                .user_by_email(email.as_str())
                .await?
                .with_context(|| format!("no account for {email}"))?;
            store
                .set_user_status(&u.id, vestnik_store::UserStatus::Active, now)
                .await?;
            println!("{email} is active");
        }
    }
    Ok(())
}

use vestnik_core::Clock;
