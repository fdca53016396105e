//! A PostgreSQL cluster of the test's own (initdb into a temporary
//! directory, on a free port) that the test crashes and starts again on the
//! same port: the shared test server must not go away.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running `postgres`; stopped (immediately) and removed when dropped.
pub struct PgProcess {
    /// The port it listens on, the same across restarts.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// Set when the tests run as root, which `postgres` refuses to be.
    run_as: Option<&'static str>,
    tls: Option<crate::certs::TestCertificate>,
    running: bool,
}

impl PgProcess {
    /// Starts one on a free port. None (or, in CI, a panic) when the
    /// PostgreSQL server binaries are not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Like [`start`](Self::start), with `ssl = on` and a certificate for
    /// 127.0.0.1 from a CA of its own ([`ca_file`](Self::ca_file)).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca.as_path())
    }

    #[allow(clippy::expect_used, clippy::panic)]
    fn start_with(tls: bool) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let made = Self::make(port, tls).and_then(|mut pg| {
            pg.restart()?;
            Ok(pg)
        });
        match made {
            Ok(pg) => Some(pg),
            Err(e) if crate::in_ci() => panic!("cannot start a PostgreSQL in CI: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: cannot start a PostgreSQL ({e}); CI=true makes this a failure");
                None
            }
        }
    }

    fn make(port: u16, tls: bool) -> std::io::Result<Self> {
        let bin = bin_dir()?;
        let dir = std::env::temp_dir().join(format!("vestnik-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let run_as = is_root()?.then_some("postgres");
        let tls = if tls {
            Some(crate::certs::make(&dir)?)
        } else {
            None
        };
        let pg = Self {
            port,
            dir,
            bin,
            run_as,
            tls,
            running: false,
        };
        if let Some(user) = pg.run_as {
            run(Command::new("chown").arg("-R").arg(user).arg(&pg.dir))?;
        }
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(pg.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(&mut initdb)?;
        let mut conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             # Crashes here are process kills, not power cuts: the page cache survives.\n\
             fsync = off\nmax_connections = 200\n",
            pg.dir.display()
        );
        if let Some(t) = &pg.tls {
            // TLS only: a client that connected at all spoke TLS.
            std::fs::write(
                pg.data().join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )?;
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                t.cert.display(),
                t.key.display()
            ));
        }
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(pg.data().join("postgresql.conf"))?
            .write_all(conf.as_bytes())?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A PostgreSQL program, run as the `postgres` user when the tests run as root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    &format!("--regid={user}"),
                    "--clear-groups",
                ])
                .arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Crashes it (`pg_ctl stop -m immediate`: every process quits at once,
    /// nothing is checkpointed, and the next start replays the WAL).
    pub fn kill(&mut self) {
        if !self.running {
            return;
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        if let Err(e) = run(&mut stop) {
            eprintln!("pg_ctl stop: {e}");
        }
        self.running = false;
    }

    /// Starts it again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "start"]);
        run(&mut start)?;
        self.running = true;
        Ok(())
    }
}

impl Drop for PgProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

fn is_root() -> std::io::Result<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Where `initdb`, `pg_ctl` and `postgres` are: `pg_config --bindir`, else
/// the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn bin_dir() -> std::io::Result<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| std::io::Error::other("no PostgreSQL server binaries (initdb) found"))
}
