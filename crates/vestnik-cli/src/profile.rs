//! A profile is one device of one account on this machine: a directory with
//! the client store, the key that seals it, and the server URL.
use anyhow::{bail, Context};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use vestnik_client::{ClientConfig, StoreKey};

#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileFile {
    pub server_url: String,
    pub email: String,
}

pub struct Profile {
    pub dir: PathBuf,
}

impl Profile {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("store.key")
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.join("device.db")
    }

    pub fn exists(&self) -> bool {
        self.store_path().exists()
    }

    /// Removes the device files a refused register or login left (the
    /// store and its key), and nothing else of the directory, which the
    /// user chose and may hold other things.
    pub fn discard_device(&self) {
        let store = self.store_path();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = store.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_file(self.key_path());
    }

    /// The key sealing the store: 32 random bytes in a 0600 file beside it
    /// (what a desktop messenger keeps in the OS key store).
    fn store_key(&self, create: bool) -> anyhow::Result<StoreKey> {
        let path = self.key_path();
        if path.exists() {
            let hexkey = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(StoreKey::secret(
                hex::decode(hexkey.trim()).context("store.key is not hex")?,
            ));
        }
        if !create {
            bail!(
                "no device in {}: run `vestnik-chat register` or `login` first",
                self.dir.display()
            );
        }
        std::fs::create_dir_all(&self.dir)?;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        write_private(&path, hex::encode(key).as_bytes())?;
        Ok(StoreKey::secret(key.to_vec()))
    }

    pub fn config(&self, server_url: &str, create: bool) -> anyhow::Result<ClientConfig> {
        let mut c = ClientConfig::new(server_url, self.store_path(), self.store_key(create)?);
        c.device_name = format!("vestnik-chat on {}", hostname());
        Ok(c)
    }

    pub fn save(&self, file: &ProfileFile) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(
            self.dir.join("profile.json"),
            serde_json::to_vec_pretty(file)?,
        )?;
        Ok(())
    }

    pub fn load(&self) -> anyhow::Result<ProfileFile> {
        let p = self.dir.join("profile.json");
        let bytes = std::fs::read(&p).with_context(|| {
            format!(
                "no profile in {}: run `vestnik-chat register` or `login` first",
                self.dir.display()
            )
        })?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this machine".into())
}

pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".vestnik").join("default"))
        .unwrap_or_else(|| PathBuf::from(".vestnik"))
}

/// Writes a new file only its owner may read (a key, an export); refuses to
/// replace an existing one.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .with_context(|| format!("creating {}", path.display()))?
        .write_all(bytes)?;
    Ok(())
}
