//! `vestnik-bench`: the load generator. It speaks the real protocol (HTTP and
//! the WebSocket frames) to a running server on this machine, with accounts
//! made by `vestnik admin seed`, and prints a table for people and, with
//! `--json`, one JSON line for machines. Every loop is bounded in count and
//! in time, and only loopback addresses are accepted.
//!
//! Scenarios: `throughput`, `latency`, `connections`, `reconnect-storm`,
//! `baseline` (the machine's raw limits). `session` registers one account
//! through the public API for `wrk`. See BENCHMARKS.md and scripts/bench-messaging.
mod baseline;
mod common;
mod connections;
mod fanout;
mod measure;
mod messaging;
mod report;
mod session;
mod storm;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "vestnik-bench", about = "Vestnik load generator")]
struct Cli {
    /// Runtime worker threads (default: one per core)
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register an account (reading the code from the server's file mailer)
    /// and print its access token.
    Session {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base: String,
        /// The server's `<data_dir>/mail`.
        #[arg(long)]
        mail_dir: PathBuf,
        #[arg(long)]
        email: String,
    },
    /// 1:1 messages, closed loop (default) or at a fixed `--rate`: messages
    /// fully delivered per second.
    Throughput(messaging::Opts),
    /// 1:1 messages at a fixed rate (default 2,000/s): send → receive latency.
    Latency(messaging::Opts),
    /// Ramp to K idle authenticated sockets; the server's RSS per socket.
    Connections(connections::Opts),
    /// One message into a group (or a post into a public channel) with every
    /// member online: time until the last member has it.
    Fanout(fanout::Opts),
    /// Devices with messages waiting reconnect at once: time to drain every backlog.
    ReconnectStorm(storm::Opts),
    /// The machine's raw limits: database inserts, Redis streams, WebSocket echo.
    Baseline(baseline::Opts),
    /// (used by `baseline`) A bare WebSocket echo server on a loopback address.
    #[command(hide = true)]
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    common::now_ns();
    rt.block_on(async move {
        match cli.command {
            Command::Session {
                base,
                mail_dir,
                email,
            } => {
                common::Target::parse(&base)?;
                println!("{}", session::session(&base, &mail_dir, &email).await?);
                Ok(())
            }
            Command::Throughput(o) => messaging::run(o, "throughput").await,
            Command::Latency(mut o) => {
                o.rate.get_or_insert(2000.0);
                messaging::run(o, "latency").await
            }
            Command::Connections(o) => connections::run(o).await,
            Command::Fanout(o) => fanout::run(o).await,
            Command::ReconnectStorm(o) => storm::run(o).await,
            Command::Baseline(o) => baseline::run(o).await,
            Command::EchoServer { listen } => baseline::echo_server(&listen).await,
        }
    })
}
