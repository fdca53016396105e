//! Persistence, safety numbers, Megolm, Debug hygiene and a property test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use common::{ik, recv, send, Directory};
use proptest::prelude::*;
use vestnik_crypto::{
    derive_local_key, safety_number, CryptoError, Device, DeviceKeys, GroupSessionKey,
    MegolmEnvelope,
};

const SECRET: [u8; 32] = [0x42; 32];

#[test]
fn persistence_round_trip_continues_the_conversation() {
    let mut dir = Directory::default();
    let (mut a, mut b) = (Device::new(), Device::new());
    dir.register(&mut a, 5);
    dir.register(&mut b, 5);
    let e = send(&mut dir, &mut a, &ik(&b), "one");
    assert_eq!(recv(&mut b, &a, &e), "one");
    // An unanswered message in flight across the restore, and a group session.
    let in_flight = send(&mut dir, &mut b, &ik(&a), "in flight");
    let group = a.create_group_session();
    let key = a.group_session_key(&group).unwrap();
    b.import_group_session(&ik(&a), &key).unwrap();
    let g0 = a.group_encrypt(&group, b"group 0").unwrap();

    let keys_a = a.identity_keys();
    let fb_a = a.fallback_key();
    let blob_a = a.to_encrypted(&SECRET).unwrap();
    let blob_b = b.to_encrypted(&SECRET).unwrap();
    assert_ne!(
        blob_a,
        a.to_encrypted(&SECRET).unwrap(),
        "fresh salt and nonce each time"
    );
    drop(a);
    drop(b);
    let mut a = Device::from_encrypted(&blob_a, &SECRET).unwrap();
    let mut b = Device::from_encrypted(&blob_b, &SECRET).unwrap();
    assert_eq!(a.identity_keys(), keys_a);
    assert_eq!(a.fallback_key(), fb_a);
    assert_eq!(a.stored_one_time_key_count(), 5);
    assert_eq!(b.stored_one_time_key_count(), 4);

    assert_eq!(recv(&mut a, &b, &in_flight), "in flight");
    for i in 0..5 {
        let e = send(&mut dir, &mut a, &ik(&b), &format!("a{i}"));
        assert_eq!(e.message_type, 1);
        assert_eq!(recv(&mut b, &a, &e), format!("a{i}"));
        let e = send(&mut dir, &mut b, &ik(&a), &format!("b{i}"));
        assert_eq!(recv(&mut a, &b, &e), format!("b{i}"));
    }
    assert_eq!(b.group_decrypt(&g0).unwrap().plaintext, b"group 0");
    let g1 = a.group_encrypt(&group, b"group 1").unwrap();
    let d = b.group_decrypt(&g1).unwrap();
    assert_eq!(
        (d.plaintext.as_slice(), d.message_index),
        (&b"group 1"[..], 1)
    );
    assert_eq!(a.group_message_index(&group).unwrap(), 2);

    // Restored one-time keys still open sessions (restored twice over).
    let again = Device::from_encrypted(&a.to_encrypted(&SECRET).unwrap(), &SECRET).unwrap();
    let mut a = again;
    let mut c = Device::new();
    let e = send(&mut dir, &mut c, &ik(&a), "new peer");
    assert_eq!(recv(&mut a, &c, &e), "new peer");
}

#[test]
fn wrong_secret_and_tampered_blobs_fail_cleanly() {
    let d = Device::new();
    let blob = d.to_encrypted(&SECRET).unwrap();
    assert_eq!(
        Device::from_encrypted(&blob, &[0x43; 32]).unwrap_err(),
        CryptoError::StateAuthentication
    );
    assert_eq!(
        Device::from_encrypted(&blob, &SECRET[..31]).unwrap_err(),
        CryptoError::StateAuthentication
    );
    assert!(matches!(
        d.to_encrypted(b"short"),
        Err(CryptoError::WeakLocalSecret { min: 16, got: 5 })
    ));
    assert!(matches!(
        Device::from_encrypted(&blob, b""),
        Err(CryptoError::WeakLocalSecret { .. })
    ));

    let bytes = STANDARD_NO_PAD.decode(&blob).unwrap();
    for at in [1, 20, 41, bytes.len() / 2, bytes.len() - 1] {
        let mut t = bytes.clone();
        t[at] ^= 0x80;
        let err = Device::from_encrypted(&STANDARD_NO_PAD.encode(&t), &SECRET).unwrap_err();
        assert_eq!(err, CryptoError::StateAuthentication, "flipped byte {at}");
    }
    let mut v = bytes.clone();
    v[0] = 9;
    assert!(matches!(
        Device::from_encrypted(&STANDARD_NO_PAD.encode(&v), &SECRET),
        Err(CryptoError::StateFormat { .. })
    ));
    for junk in ["", "%%%", "AAAA", &blob[..blob.len() / 2]] {
        let err = Device::from_encrypted(junk, &SECRET).unwrap_err();
        assert!(err.to_string().contains("expected"), "{err}");
    }
    // Truncations never panic.
    for cut in (0..bytes.len()).step_by(7) {
        assert!(Device::from_encrypted(&STANDARD_NO_PAD.encode(&bytes[..cut]), &SECRET).is_err());
    }
}

#[test]
fn passphrases_go_through_argon2id() {
    let salt = [9u8; 16];
    let k1 = derive_local_key(b"correct horse", &salt).unwrap();
    let k2 = derive_local_key(b"correct horse", &salt).unwrap();
    let k3 = derive_local_key(b"correct horsf", &salt).unwrap();
    assert_eq!(k1.as_bytes(), k2.as_bytes());
    assert_ne!(k1.as_bytes(), k3.as_bytes());
    assert!(matches!(
        derive_local_key(b"x", &[0; 8]),
        Err(CryptoError::ShortSalt { min: 16, got: 8 })
    ));

    let d = Device::new();
    let blob = d.to_encrypted(k1.as_bytes()).unwrap();
    assert!(Device::from_encrypted(&blob, k2.as_bytes()).is_ok());
    assert_eq!(
        Device::from_encrypted(&blob, k3.as_bytes()).unwrap_err(),
        CryptoError::StateAuthentication
    );
}

#[test]
fn debug_output_holds_no_secret() {
    let salt = [1u8; 16];
    let key = derive_local_key(b"passphrase", &salt).unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains(&STANDARD_NO_PAD.encode(key.as_bytes())));
    assert!(!shown.contains(&format!("{:?}", key.as_bytes())));
    assert_eq!(shown, "LocalKey(<redacted>)");

    let mut d = Device::new();
    let group = d.create_group_session();
    let gkey = d.group_session_key(&group).unwrap();
    assert_eq!(format!("{gkey:?}"), "GroupSessionKey(<redacted>)");
    let shown = format!("{d:?}");
    assert!(
        shown.contains(&d.identity_keys().identity_key),
        "public keys are fine: {shown}"
    );
    assert!(!shown.contains(gkey.as_str()));
    assert!(!shown.contains(&gkey.as_str()[..20]));
    // The whole state blob's plaintext is never printed: Debug is small.
    assert!(shown.len() < 400, "{shown}");

    let err = Device::from_encrypted(&d.to_encrypted(&SECRET).unwrap(), &[1; 32]).unwrap_err();
    assert!(!format!("{err:?}{err}").contains(&STANDARD_NO_PAD.encode(SECRET)));
}

fn dev(signing: &str, identity: &str) -> DeviceKeys {
    DeviceKeys {
        signing_key: signing.into(),
        identity_key: identity.into(),
    }
}

#[test]
fn safety_number_known_answer() {
    // Computed independently (Python: hashlib + pyca/cryptography keys from
    // seeds 1, 2, 3) following the documented construction.
    let alice = [
        dev(
            "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w",
            "+0Gx/PdcEif6CIdgVqXtB6xE/gwRbsLegLjlI5WdeCQ",
        ),
        dev(
            "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q",
            "IZ5NgA2paNKl/LAJx4T0dGxxOO257khEtznoMLBc9CQ",
        ),
    ];
    let bob = [dev(
        "7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E",
        "bKO/Odl2qzaoCFMb1+wuS0+KrjqQE0U01Q9BHTd6LAU",
    )];
    let expected = "51683 18863 67583 32178 95356 78034 91972 90352 95252 00729 98687 21921";
    assert_eq!(
        safety_number("@alice:vestnik", &alice, "@bob:vestnik", &bob).unwrap(),
        expected
    );
    assert_eq!(
        safety_number("@bob:vestnik", &bob, "@alice:vestnik", &alice).unwrap(),
        expected
    );
    let reversed = [alice[1].clone(), alice[0].clone(), alice[1].clone()];
    assert_eq!(
        safety_number("@alice:vestnik", &reversed, "@bob:vestnik", &bob).unwrap(),
        expected
    );
}

#[test]
fn safety_numbers_are_symmetric_stable_and_key_sensitive() {
    let (a1, a2, b1) = (Device::new(), Device::new(), Device::new());
    let alice = [a1.identity_keys(), a2.identity_keys()];
    let bob = [b1.identity_keys()];
    let n = safety_number("alice", &alice, "bob", &bob).unwrap();
    assert_eq!(n, safety_number("bob", &bob, "alice", &alice).unwrap());
    assert_eq!(n, safety_number("alice", &alice, "bob", &bob).unwrap());
    let groups: Vec<_> = n.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit())));

    // A new device, a replaced device, a different user id: all change it.
    let a3 = Device::new();
    let more = [a1.identity_keys(), a2.identity_keys(), a3.identity_keys()];
    assert_ne!(n, safety_number("alice", &more, "bob", &bob).unwrap());
    let replaced = [a1.identity_keys(), a3.identity_keys()];
    assert_ne!(n, safety_number("alice", &replaced, "bob", &bob).unwrap());
    let mut mixed = a1.identity_keys();
    mixed.identity_key = a3.identity_keys().identity_key;
    assert_ne!(
        n,
        safety_number("alice", &[mixed, a2.identity_keys()], "bob", &bob).unwrap()
    );
    assert_ne!(n, safety_number("alice2", &alice, "bob", &bob).unwrap());

    assert!(matches!(
        safety_number("alice", &[], "bob", &bob),
        Err(CryptoError::NoDevices { .. })
    ));
    let bad = [dev("nope", "nope")];
    assert!(matches!(
        safety_number("alice", &bad, "bob", &bob),
        Err(CryptoError::InvalidKey { .. })
    ));
}

#[test]
fn megolm_group_sessions() {
    let mut dir = Directory::default();
    let (mut a, mut b1, mut b2, mut c) =
        (Device::new(), Device::new(), Device::new(), Device::new());
    for d in [&mut a, &mut b1, &mut b2, &mut c] {
        dir.register(d, 5);
    }
    let group = a.create_group_session();
    // Share the session key over Olm with b1 and b2.
    let key = a.group_session_key(&group).unwrap();
    let (b1_ik, b2_ik, a_ik) = (ik(&b1), ik(&b2), ik(&a));
    for (dev, to) in [(&mut b1, b1_ik), (&mut b2, b2_ik)] {
        let env = send(&mut dir, &mut a, &to, key.as_str());
        let shared = GroupSessionKey::new(recv(dev, &a, &env));
        assert_eq!(dev.import_group_session(&ik(&a), &shared).unwrap(), group);
    }
    let msgs: Vec<_> = (0..5)
        .map(|i| a.group_encrypt(&group, format!("g{i}").as_bytes()).unwrap())
        .collect();
    for (i, m) in msgs.iter().enumerate().rev() {
        for dev in [&mut b1, &mut b2, &mut a] {
            let d = dev.group_decrypt(m).unwrap();
            assert_eq!(d.plaintext, format!("g{i}").as_bytes());
            assert_eq!(d.message_index, i as u32);
            assert_eq!(d.sender_identity_key, a_ik);
        }
    }
    // A late joiner gets the key at index 5: earlier messages stay closed.
    let late_key = a.group_session_key(&group).unwrap();
    c.import_group_session(&ik(&a), &late_key).unwrap();
    assert!(matches!(
        c.group_decrypt(&msgs[0]),
        Err(CryptoError::GroupDecrypt { .. })
    ));
    let m5 = a.group_encrypt(&group, b"g5").unwrap();
    assert_eq!(c.group_decrypt(&m5).unwrap().plaintext, b"g5");
    // Importing an earlier key of the same session widens what c can read.
    c.import_group_session(&ik(&a), &key).unwrap();
    assert_eq!(c.group_decrypt(&msgs[0]).unwrap().plaintext, b"g0");
    // The same session claimed by another sender is refused.
    assert!(matches!(
        c.import_group_session(&ik(&b1), &key),
        Err(CryptoError::GroupSessionConflict { .. })
    ));

    // Export/import (e.g. forwarding to another own device).
    let exported = b1.export_group_session(&group, Some(3)).unwrap();
    let mut b3 = Device::new();
    b3.import_exported_group_session(&ik(&a), &exported)
        .unwrap();
    assert!(b3.group_decrypt(&msgs[2]).is_err());
    assert_eq!(b3.group_decrypt(&msgs[3]).unwrap().plaintext, b"g3");
    assert!(b1.export_group_session(&group, None).is_ok());

    // Tampering and unknowns are errors.
    let mut body = STANDARD_NO_PAD.decode(&m5.body).unwrap();
    body[12] ^= 1;
    let forged = MegolmEnvelope {
        session_id: group.clone(),
        body: STANDARD_NO_PAD.encode(&body),
    };
    assert!(b1.group_decrypt(&forged).is_err());
    let unknown = MegolmEnvelope {
        session_id: "nope".into(),
        body: m5.body.clone(),
    };
    assert!(matches!(
        b1.group_decrypt(&unknown),
        Err(CryptoError::UnknownGroupSession { .. })
    ));
    assert!(matches!(
        b1.import_group_session(&ik(&a), &GroupSessionKey::new("garbage".into())),
        Err(CryptoError::InvalidGroupSessionKey { .. })
    ));
    assert!(matches!(
        b1.group_encrypt(&group, b"x"),
        Err(CryptoError::UnknownGroupSession { .. })
    ));

    // Rotation: drop the outbound session, history stays readable.
    assert!(a.remove_group_session(&group));
    assert!(a.group_encrypt(&group, b"x").is_err());
    assert_eq!(a.group_decrypt(&m5).unwrap().plaintext, b"g5");
    let next = a.create_group_session();
    assert_ne!(next, group);
}

fn pair() -> (Device, Device) {
    let mut dir = Directory::default();
    let (mut a, mut b) = (Device::new(), Device::new());
    dir.register(&mut a, 1);
    dir.register(&mut b, 1);
    let e = send(&mut dir, &mut a, &ik(&b), "hi");
    assert_eq!(recv(&mut b, &a, &e), "hi");
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_plaintext_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..4096), reply in any::<Vec<u8>>()) {
        let (mut a, mut b) = pair();
        let env = a.encrypt(&ik(&b), &plaintext).unwrap();
        prop_assert_eq!(b.decrypt(&ik(&a), &env).unwrap(), plaintext.clone());
        let env = b.encrypt(&ik(&a), &reply).unwrap();
        prop_assert_eq!(a.decrypt(&ik(&b), &env).unwrap(), reply);
        let group = a.create_group_session();
        let env = a.group_encrypt(&group, &plaintext).unwrap();
        prop_assert_eq!(a.group_decrypt(&env).unwrap().plaintext, plaintext);
    }
}
