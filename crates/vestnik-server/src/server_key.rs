//! The server key: from config, or generated once into the data dir (enough
//! for one node; several nodes must share it through `server_key`).
use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use std::io::Write;
use vestnik_core::Config;

pub fn load_or_create(config: &Config) -> anyhow::Result<[u8; 32]> {
    if let Some(k) = &config.server_key {
        return decode(k).context("server_key");
    }
    let path = config.data_dir.join("server.key");
    if path.exists() {
        let s = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return decode(&s).with_context(|| format!("{} is not 32 bytes of base64", path.display()));
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(STANDARD.encode(key).as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new server key");
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(config),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn decode(s: &str) -> anyhow::Result<[u8; 32]> {
    let v = STANDARD.decode(s.trim())?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("expected 32 bytes, got {}", v.len()))
}
