//! A certificate authority of a test's own and a server certificate for
//! 127.0.0.1 it signed (made with `openssl`): webpki refuses a self-signed
//! CA certificate as a server's own, so the server gets a leaf.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files [`make`] writes into a directory.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The CA certificate a client trusts (PEM).
    pub ca: PathBuf,
    /// The server's certificate for IP 127.0.0.1 (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM, unencrypted).
    pub key: PathBuf,
}

/// Writes `ca.pem`, `cert.pem` and `key.pem` (plus working files) into `dir`.
pub fn make(dir: &Path) -> std::io::Result<TestCertificate> {
    let out = TestCertificate {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )?;
    let args = |fixed: &[&str], paths: Vec<(&str, PathBuf)>| -> Vec<OsString> {
        fixed
            .iter()
            .map(Into::into)
            .chain(
                paths
                    .into_iter()
                    .flat_map(|(flag, p)| [OsString::from(flag), p.into_os_string()]),
            )
            .collect()
    };
    let steps = [
        args(
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ],
            vec![
                ("-subj", PathBuf::from("/CN=vestnik test CA")),
                ("-keyout", dir.join("ca.key")),
                ("-out", out.ca.clone()),
            ],
        ),
        args(
            &["req", "-newkey", "rsa:2048", "-nodes"],
            vec![
                ("-subj", PathBuf::from("/CN=127.0.0.1")),
                ("-keyout", out.key.clone()),
                ("-out", dir.join("server.csr")),
            ],
        ),
        args(
            &["x509", "-req", "-days", "1", "-set_serial", "1"],
            vec![
                ("-in", dir.join("server.csr")),
                ("-CA", out.ca.clone()),
                ("-CAkey", dir.join("ca.key")),
                ("-extfile", dir.join("server.ext")),
                ("-out", out.cert.clone()),
            ],
        ),
    ];
    for a in steps {
        let run = Command::new("openssl").args(&a).output()?;
        if !run.status.success() {
            return Err(std::io::Error::other(format!(
                "openssl: {}",
                String::from_utf8_lossy(&run.stderr)
            )));
        }
    }
    Ok(out)
}
