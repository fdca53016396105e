//! An in-memory stand-in for the server's key directory and relay.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use vestnik_crypto::{Device, DeviceKeysUpload, OlmEnvelope, OneTimeKey, PreKeyBundle, SignedKey};

pub struct Entry {
    pub signing_key: String,
    pub fallback: SignedKey,
    pub one_time_keys: Vec<OneTimeKey>,
}

/// Identity key → published keys, like the server's key directory.
#[derive(Default)]
pub struct Directory {
    pub devices: HashMap<String, Entry>,
}

impl Directory {
    /// Registers a device with `n` one-time keys, as the client would.
    pub fn register(&mut self, device: &mut Device, n: usize) {
        let upload: DeviceKeysUpload = device.registration_keys(n).unwrap();
        device.mark_published();
        self.devices.insert(
            upload.identity_key.clone(),
            Entry {
                signing_key: upload.signing_key,
                fallback: upload.fallback_key,
                one_time_keys: upload.one_time_keys,
            },
        );
    }

    /// Pops a one-time key (oldest first); the fallback key when none is left.
    pub fn claim(&mut self, identity_key: &str) -> PreKeyBundle {
        let entry = self
            .devices
            .get_mut(identity_key)
            .expect("device registered");
        let otk = if entry.one_time_keys.is_empty() {
            None
        } else {
            Some(entry.one_time_keys.remove(0))
        };
        PreKeyBundle {
            identity_key: identity_key.to_owned(),
            signing_key: entry.signing_key.clone(),
            fallback_key: Some(entry.fallback.clone()),
            one_time_key: otk,
        }
    }

    pub fn count(&self, identity_key: &str) -> usize {
        self.devices[identity_key].one_time_keys.len()
    }

    pub fn upload(&mut self, identity_key: &str, keys: Vec<OneTimeKey>) {
        self.devices
            .get_mut(identity_key)
            .unwrap()
            .one_time_keys
            .extend(keys);
    }
}

pub fn ik(d: &Device) -> String {
    d.identity_keys().identity_key
}

/// Encrypts with an existing session, claiming a bundle first if needed.
pub fn send(dir: &mut Directory, from: &mut Device, to: &str, text: &str) -> OlmEnvelope {
    if !from.has_session(to).unwrap() {
        let bundle = dir.claim(to);
        from.create_outbound_session(&bundle).unwrap();
    }
    from.encrypt(to, text.as_bytes()).unwrap()
}

pub fn recv(to: &mut Device, from: &Device, env: &OlmEnvelope) -> String {
    String::from_utf8(to.decrypt(&ik(from), env).unwrap()).unwrap()
}
