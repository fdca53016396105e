//! Olm: registration, fan-out to every device, replies, ordering, pre-key
//! exhaustion, lost state, tampering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{ik, recv, send, Directory};
use vestnik_crypto::{
    fallback_key_message, verify_fallback_signature, CryptoError, Device, OlmEnvelope,
    PreKeyBundle, MAX_ONE_TIME_KEYS_PER_UPLOAD,
};

fn key_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
}

#[test]
fn registration_matches_the_server_contract() {
    let mut d = Device::new();
    let upload = d.registration_keys(100).unwrap();
    let keys = d.identity_keys();
    assert_eq!(upload.identity_key, keys.identity_key);
    assert_eq!(upload.signing_key, keys.signing_key);
    assert_eq!(upload.identity_key.len(), 43, "unpadded base64 of 32 bytes");
    assert!(!upload.identity_key.ends_with('='));
    assert_eq!(upload.one_time_keys.len(), 100);
    let ids: HashSet<_> = upload
        .one_time_keys
        .iter()
        .map(|k| k.key_id.as_str())
        .collect();
    assert_eq!(ids.len(), 100);
    assert!(upload
        .one_time_keys
        .iter()
        .all(|k| key_id_ok(&k.key_id) && k.public_key.len() == 43));
    assert!(key_id_ok(&upload.fallback_key.key_id));
    let fb = &upload.fallback_key;
    verify_fallback_signature(
        &upload.signing_key,
        &fb.key_id,
        &fb.public_key,
        &fb.signature,
    )
    .unwrap();

    // Field names are the server's.
    let json = serde_json::to_value(&upload).unwrap();
    let obj = json.as_object().unwrap();
    let mut names: Vec<_> = obj.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "fallback_key",
            "identity_key",
            "one_time_keys",
            "signing_key"
        ]
    );
    assert!(json["fallback_key"]["signature"].is_string());
    assert!(json["one_time_keys"][0]["key_id"].is_string());

    // Before mark_published, asking again returns the same pending keys.
    let again = d.registration_keys(100).unwrap();
    assert_eq!(again.one_time_keys, upload.one_time_keys);
    d.mark_published();
    assert!(d.unpublished_one_time_keys().is_empty());
    assert!(matches!(
        d.registration_keys(101),
        Err(CryptoError::TooMany {
            max: 100,
            got: 101,
            ..
        })
    ));
}

#[test]
fn key_ids_stay_in_the_server_alphabet_past_a_thousand_keys() {
    // vodozemac's base64 key ids would contain '+' or '/' from key 992 on.
    let mut d = Device::new();
    let mut seen = HashSet::new();
    for _ in 0..12 {
        for k in d.replenish(0, MAX_ONE_TIME_KEYS_PER_UPLOAD).unwrap() {
            assert!(key_id_ok(&k.key_id), "bad key id {:?}", k.key_id);
            assert!(seen.insert(k.key_id));
        }
    }
    assert_eq!(seen.len(), 1200);
    for _ in 0..3 {
        assert!(key_id_ok(&d.rotate_fallback().key_id));
    }
}

#[test]
fn fallback_signature_verifies_and_tampering_fails() {
    let d = Device::new();
    let other = Device::new();
    let keys = d.identity_keys();
    let fb = d.fallback_key();
    verify_fallback_signature(&keys.signing_key, &fb.key_id, &fb.public_key, &fb.signature)
        .unwrap();
    assert!(
        fallback_key_message(&fb.key_id, &fb.public_key).starts_with("vestnik:fallback_key:v1:")
    );

    // Wrong signer, wrong key id, wrong public key, flipped signature.
    let wrong_signer = other.identity_keys().signing_key;
    assert!(matches!(
        verify_fallback_signature(&wrong_signer, &fb.key_id, &fb.public_key, &fb.signature),
        Err(CryptoError::BadSignature { .. })
    ));
    assert!(matches!(
        verify_fallback_signature(
            &keys.signing_key,
            "AAAAAAAAAAE",
            &fb.public_key,
            &fb.signature
        ),
        Err(CryptoError::BadSignature { .. })
    ));
    let other_fb = other.fallback_key();
    assert!(matches!(
        verify_fallback_signature(
            &keys.signing_key,
            &fb.key_id,
            &other_fb.public_key,
            &fb.signature
        ),
        Err(CryptoError::BadSignature { .. })
    ));
    let mut sig = fb.signature.clone().into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).unwrap();
    assert!(
        verify_fallback_signature(&keys.signing_key, &fb.key_id, &fb.public_key, &sig).is_err()
    );
    let err =
        verify_fallback_signature(&keys.signing_key, &fb.key_id, &fb.public_key, "not base64!")
            .unwrap_err();
    assert!(matches!(err, CryptoError::InvalidSignatureEncoding { .. }));
    assert!(err.to_string().contains("expected"), "{err}");

    // A bundle whose fallback signature is bad is refused.
    let mut alice = Device::new();
    let mut bad = fb.clone();
    bad.signature = other.fallback_key().signature;
    let bundle = PreKeyBundle {
        identity_key: keys.identity_key.clone(),
        signing_key: keys.signing_key.clone(),
        one_time_key: None,
        fallback_key: Some(bad),
    };
    assert!(matches!(
        alice.create_outbound_session(&bundle),
        Err(CryptoError::BadSignature { .. })
    ));
    assert!(!alice.has_session(&keys.identity_key).unwrap());
    let empty = PreKeyBundle {
        fallback_key: None,
        ..bundle
    };
    assert!(matches!(
        alice.create_outbound_session(&empty),
        Err(CryptoError::EmptyBundle { .. })
    ));
}

#[test]
fn fan_out_to_every_device_and_reply() {
    let mut dir = Directory::default();
    let (mut a1, mut a2, mut b1, mut b2) =
        (Device::new(), Device::new(), Device::new(), Device::new());
    for d in [&mut a1, &mut a2, &mut b1, &mut b2] {
        dir.register(d, 10);
    }

    // Alice's a1 sends one envelope per recipient device, her own a2 included.
    let recipients = [ik(&b1), ik(&b2), ik(&a2)];
    let envelopes: Vec<OlmEnvelope> = recipients
        .iter()
        .map(|r| send(&mut dir, &mut a1, r, "hi Bob"))
        .collect();
    assert!(envelopes.iter().all(OlmEnvelope::is_pre_key));
    assert_eq!(dir.count(&ik(&b1)), 9);
    assert_eq!(recv(&mut b1, &a1, &envelopes[0]), "hi Bob");
    assert_eq!(recv(&mut b2, &a1, &envelopes[1]), "hi Bob");
    assert_eq!(recv(&mut a2, &a1, &envelopes[2]), "hi Bob");
    // The one-time key each pre-key message used is gone.
    assert_eq!(b1.stored_one_time_key_count(), 9);
    // A device cannot read an envelope meant for another.
    assert!(b2.decrypt(&ik(&a1), &envelopes[0]).is_err());

    // Bob's b1 replies to all of Alice's devices and to his own b2.
    let (a1_ik, a2_ik) = (ik(&a1), ik(&a2));
    for (to, text) in [
        (a1_ik.clone(), "hi Alice"),
        (a2_ik.clone(), "hi Alice"),
        (ik(&b2), "hi Alice"),
    ] {
        let env = send(&mut dir, &mut b1, &to, text);
        // b1 already heard from a1, so that reply is a normal message.
        assert_eq!(env.is_pre_key(), to != a1_ik);
        let dest: &mut Device = if to == a1_ik {
            &mut a1
        } else if to == a2_ik {
            &mut a2
        } else {
            &mut b2
        };
        assert_eq!(recv(dest, &b1, &env), text);
    }

    // Now a1's session with b1 is confirmed: normal messages from here on.
    let env = send(&mut dir, &mut a1, &ik(&b1), "second");
    assert_eq!(env.message_type, 1);
    assert_eq!(recv(&mut b1, &a1, &env), "second");
    assert_eq!(a1.session_count(&ik(&b1)).unwrap(), 1);
    assert_eq!(b1.session_count(&ik(&a1)).unwrap(), 1);

    // Replays are refused.
    assert!(matches!(
        b1.decrypt(&ik(&a1), &env),
        Err(CryptoError::Decrypt { .. })
    ));
    // A wrong sender key is refused too.
    assert!(b1.decrypt(&ik(&a2), &env).is_err());
}

#[test]
fn many_messages_in_order_and_out_of_order() {
    let mut dir = Directory::default();
    let (mut a, mut b) = (Device::new(), Device::new());
    dir.register(&mut a, 5);
    dir.register(&mut b, 5);

    // Three pre-key messages before any reply, delivered out of order: the
    // last one opens the session, the others find it by session id.
    let pre: Vec<_> = (0..3)
        .map(|i| send(&mut dir, &mut a, &ik(&b), &format!("pre {i}")))
        .collect();
    assert!(pre.iter().all(OlmEnvelope::is_pre_key));
    assert_eq!(recv(&mut b, &a, &pre[2]), "pre 2");
    assert_eq!(recv(&mut b, &a, &pre[0]), "pre 0");
    assert_eq!(recv(&mut b, &a, &pre[1]), "pre 1");
    assert_eq!(
        b.session_count(&ik(&a)).unwrap(),
        1,
        "no duplicate session from repeated pre-key messages"
    );
    // A replayed pre-key message neither decrypts nor opens a second session.
    assert!(b.decrypt(&ik(&a), &pre[1]).is_err());
    assert_eq!(b.session_count(&ik(&a)).unwrap(), 1);

    let reply = send(&mut dir, &mut b, &ik(&a), "ack");
    assert_eq!(recv(&mut a, &b, &reply), "ack");

    // 60 in order.
    for i in 0..60 {
        let env = send(&mut dir, &mut a, &ik(&b), &format!("m{i}"));
        assert_eq!(recv(&mut b, &a, &env), format!("m{i}"));
    }

    // 60 out of order, across several ratchet turns (b answers every 20).
    let mut batch = Vec::new();
    for i in 0..60 {
        batch.push((i, send(&mut dir, &mut a, &ik(&b), &format!("o{i}"))));
        if i % 20 == 19 {
            let env = send(&mut dir, &mut b, &ik(&a), &format!("turn {i}"));
            assert_eq!(recv(&mut a, &b, &env), format!("turn {i}"));
        }
    }
    // A fixed shuffle: reverse halves, interleave.
    let (first, second) = batch.split_at(30);
    let mut order: Vec<_> = first.iter().rev().chain(second.iter()).collect();
    order.swap(3, 47);
    order.swap(10, 59);
    for (i, env) in order {
        assert_eq!(recv(&mut b, &a, env), format!("o{i}"));
    }

    // Interleaved ping-pong without waiting.
    let ab: Vec<_> = (0..10)
        .map(|i| send(&mut dir, &mut a, &ik(&b), &format!("ab{i}")))
        .collect();
    let ba: Vec<_> = (0..10)
        .map(|i| send(&mut dir, &mut b, &ik(&a), &format!("ba{i}")))
        .collect();
    for i in (0..10).rev() {
        assert_eq!(recv(&mut b, &a, &ab[i]), format!("ab{i}"));
        assert_eq!(recv(&mut a, &b, &ba[i]), format!("ba{i}"));
    }
}

#[test]
fn empty_one_time_pool_falls_back_and_replenishes() {
    let mut dir = Directory::default();
    let mut bob = Device::new();
    dir.register(&mut bob, 2);
    let bob_ik = ik(&bob);

    // Four senders: two get one-time keys, two get only the fallback key.
    let mut senders: Vec<Device> = (0..4).map(|_| Device::new()).collect();
    let mut used_fallback = 0;
    for (i, s) in senders.iter_mut().enumerate() {
        let bundle = dir.claim(&bob_ik);
        if bundle.one_time_key.is_none() {
            used_fallback += 1;
        }
        let env = s
            .encrypt_with_bundle(&bundle, format!("from {i}").as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(bob.decrypt(&ik(s), &env).unwrap()).unwrap(),
            format!("from {i}")
        );
    }
    assert_eq!(used_fallback, 2);
    assert_eq!(bob.stored_one_time_key_count(), 0);

    // The server reports the pool empty: top it up to 5.
    let fresh = bob.replenish(dir.count(&bob_ik), 5).unwrap();
    assert_eq!(fresh.len(), 5);
    dir.upload(&bob_ik, fresh);
    assert!(bob.replenish(5, 5).unwrap().is_empty());
    assert_eq!(bob.replenish(3, 5).unwrap().len(), 2);
    assert!(matches!(
        bob.replenish(0, 101),
        Err(CryptoError::TooMany { .. })
    ));

    let mut late = Device::new();
    let bundle = dir.claim(&bob_ik);
    assert!(bundle.one_time_key.is_some());
    let env = late
        .encrypt_with_bundle(&bundle, b"after replenish")
        .unwrap();
    assert_eq!(bob.decrypt(&ik(&late), &env).unwrap(), b"after replenish");

    // A rotated fallback key: bundles claimed before the rotation still work,
    // and so do ones claimed after.
    let old_bundle = PreKeyBundle {
        one_time_key: None,
        ..dir.claim(&bob_ik)
    };
    let new_fb = bob.rotate_fallback();
    dir.devices.get_mut(&bob_ik).unwrap().fallback = new_fb;
    let new_bundle = PreKeyBundle {
        one_time_key: None,
        ..dir.claim(&bob_ik)
    };
    assert_ne!(old_bundle.fallback_key, new_bundle.fallback_key);
    let (mut x, mut y) = (Device::new(), Device::new());
    let ex = x.encrypt_with_bundle(&old_bundle, b"old fallback").unwrap();
    let ey = y.encrypt_with_bundle(&new_bundle, b"new fallback").unwrap();
    assert_eq!(bob.decrypt(&ik(&x), &ex).unwrap(), b"old fallback");
    assert_eq!(bob.decrypt(&ik(&y), &ey).unwrap(), b"new fallback");
    // Once the previous fallback is forgotten, it no longer opens sessions.
    assert!(bob.forget_previous_fallback_key());
    let mut z = Device::new();
    let ez = z.encrypt_with_bundle(&old_bundle, b"too late").unwrap();
    assert!(matches!(
        bob.decrypt(&ik(&z), &ez),
        Err(CryptoError::SessionCreation { .. })
    ));
}

#[test]
fn peer_that_lost_its_state_re_establishes() {
    let mut dir = Directory::default();
    let (mut a, mut b) = (Device::new(), Device::new());
    dir.register(&mut a, 10);
    dir.register(&mut b, 10);
    let secret = [7u8; 32];

    let e = send(&mut dir, &mut a, &ik(&b), "hello");
    assert_eq!(recv(&mut b, &a, &e), "hello");
    let e = send(&mut dir, &mut b, &ik(&a), "hi");
    assert_eq!(recv(&mut a, &b, &e), "hi");
    let backup = b.to_encrypted(&secret).unwrap();
    for i in 0..5 {
        let e = send(&mut dir, &mut a, &ik(&b), &format!("a{i}"));
        assert_eq!(recv(&mut b, &a, &e), format!("a{i}"));
        let e = send(&mut dir, &mut b, &ik(&a), &format!("b{i}"));
        assert_eq!(recv(&mut a, &b, &e), format!("b{i}"));
    }

    // 1. Bob's device comes back from an old backup: same identity, stale
    //    sessions. Alice's next message cannot be read...
    let mut b_old = Device::from_encrypted(&backup, &secret).unwrap();
    assert_eq!(ik(&b_old), ik(&b));
    let e = send(&mut dir, &mut a, &ik(&b), "can you read this?");
    assert!(matches!(
        b_old.decrypt(&ik(&a), &e),
        Err(CryptoError::Decrypt { .. })
    ));
    // ...so Bob's device opens a fresh session with a new pre-key message.
    let bundle = dir.claim(&ik(&a));
    b_old.create_outbound_session(&bundle).unwrap();
    let e = b_old.encrypt(&ik(&a), b"I lost my state").unwrap();
    assert!(e.is_pre_key());
    assert_eq!(recv(&mut a, &b_old, &e), "I lost my state");
    assert_eq!(
        a.session_count(&ik(&b)).unwrap(),
        2,
        "the new session joins the old one"
    );
    // Alice now answers on the new session, and both continue.
    for i in 0..5 {
        let e = send(&mut dir, &mut a, &ik(&b), &format!("again a{i}"));
        assert_eq!(recv(&mut b_old, &a, &e), format!("again a{i}"));
        let e = send(&mut dir, &mut b_old, &ik(&a), &format!("again b{i}"));
        assert_eq!(e.message_type, 1);
        assert_eq!(recv(&mut a, &b_old, &e), format!("again b{i}"));
    }

    // 2. Bob's device loses everything and registers as a fresh device with
    //    new keys; Alice claims its bundle and both continue.
    let mut b_new = Device::new();
    dir.register(&mut b_new, 10);
    assert_ne!(ik(&b_new), ik(&b));
    let e = send(&mut dir, &mut a, &ik(&b_new), "welcome back");
    assert!(e.is_pre_key());
    assert_eq!(recv(&mut b_new, &a, &e), "welcome back");
    for i in 0..3 {
        let e = send(&mut dir, &mut b_new, &ik(&a), &format!("new b{i}"));
        assert_eq!(recv(&mut a, &b_new, &e), format!("new b{i}"));
        let e = send(&mut dir, &mut a, &ik(&b_new), &format!("new a{i}"));
        assert_eq!(recv(&mut b_new, &a, &e), format!("new a{i}"));
    }

    // 3. forget_sessions is the caller's "start over" switch.
    assert_eq!(a.forget_sessions(&ik(&b)).unwrap(), 2);
    assert!(!a.has_session(&ik(&b)).unwrap());
    assert!(matches!(
        a.encrypt(&ik(&b), b"x"),
        Err(CryptoError::NoSession { .. })
    ));
}

#[test]
fn tampered_ciphertext_fails_cleanly_and_changes_nothing() {
    let mut dir = Directory::default();
    let (mut a, mut b) = (Device::new(), Device::new());
    dir.register(&mut a, 3);
    dir.register(&mut b, 3);

    let pre = send(&mut dir, &mut a, &ik(&b), "pre-key");
    let flip = |env: &OlmEnvelope, at: usize| {
        let mut bytes = vestnik_crypto_test_b64::decode(&env.body);
        let i = at.min(bytes.len() - 1);
        bytes[i] ^= 0x01;
        OlmEnvelope {
            message_type: env.message_type,
            body: vestnik_crypto_test_b64::encode(&bytes),
        }
    };
    let otks = b.stored_one_time_key_count();
    let len = vestnik_crypto_test_b64::decode(&pre.body).len();
    for at in [0, 5, 40, len / 2, len - 3, len - 1] {
        assert!(
            b.decrypt(&ik(&a), &flip(&pre, at)).is_err(),
            "flipped byte {at}"
        );
    }
    assert_eq!(
        b.stored_one_time_key_count(),
        otks,
        "forgeries burn no one-time key"
    );
    assert_eq!(b.session_count(&ik(&a)).unwrap(), 0);
    assert_eq!(recv(&mut b, &a, &pre), "pre-key");

    let reply = send(&mut dir, &mut b, &ik(&a), "reply");
    assert_eq!(recv(&mut a, &b, &reply), "reply");
    let normal = send(&mut dir, &mut a, &ik(&b), "normal");
    let len = vestnik_crypto_test_b64::decode(&normal.body).len();
    for at in [1, 10, len / 2, len - 1] {
        assert!(matches!(
            b.decrypt(&ik(&a), &flip(&normal, at)),
            Err(CryptoError::Decrypt { .. }) | Err(CryptoError::MalformedMessage { .. })
        ));
    }
    assert_eq!(recv(&mut b, &a, &normal), "normal");

    // Garbage of every kind is an error, never a panic.
    let bad = [
        OlmEnvelope {
            message_type: 2,
            body: normal.body.clone(),
        },
        OlmEnvelope {
            message_type: 1,
            body: "!!!".into(),
        },
        OlmEnvelope {
            message_type: 0,
            body: String::new(),
        },
        OlmEnvelope {
            message_type: 1,
            body: "AAAA".into(),
        },
        OlmEnvelope {
            message_type: 0,
            body: normal.body.clone(),
        },
    ];
    for env in &bad {
        let err = b.decrypt(&ik(&a), env).unwrap_err();
        assert!(err.to_string().contains("expected"), "{err}");
    }
    assert!(matches!(
        b.decrypt(&ik(&a), &bad[0]),
        Err(CryptoError::MessageType { got: 2 })
    ));
    assert!(matches!(
        b.decrypt("not a key", &normal),
        Err(CryptoError::InvalidKey { .. })
    ));

    // Truncated envelopes.
    let bytes = vestnik_crypto_test_b64::decode(&normal.body);
    for cut in 0..bytes.len() {
        let env = OlmEnvelope {
            message_type: 1,
            body: vestnik_crypto_test_b64::encode(&bytes[..cut]),
        };
        assert!(b.decrypt(&ik(&a), &env).is_err());
    }
}

#[test]
fn envelope_wire_format() {
    let env = OlmEnvelope {
        message_type: 0,
        body: "abc".into(),
    };
    assert_eq!(
        serde_json::to_string(&env).unwrap(),
        r#"{"type":0,"body":"abc"}"#
    );
    let back: OlmEnvelope = serde_json::from_str(r#"{"type":1,"body":"x"}"#).unwrap();
    assert_eq!(back.message_type, 1);
    let server: OlmEnvelope = serde_json::from_str(r#"{"msg_type":0,"ciphertext":"y"}"#).unwrap();
    assert_eq!(
        server,
        OlmEnvelope {
            message_type: 0,
            body: "y".into()
        }
    );

    // A claim-response entry, fallback only.
    let d = Device::new();
    let keys = d.identity_keys();
    let json = serde_json::json!({
        "user_id": "u1", "device_id": "d1",
        "identity_key": keys.identity_key, "signing_key": keys.signing_key,
        "one_time_key": null, "fallback_key": d.fallback_key(),
    });
    let bundle: PreKeyBundle = serde_json::from_value(json).unwrap();
    assert!(bundle.one_time_key.is_none());
    Device::new().create_outbound_session(&bundle).unwrap();
}

/// Unpadded standard base64, as vodozemac writes it.
mod vestnik_crypto_test_b64 {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine;

    pub fn decode(s: &str) -> Vec<u8> {
        STANDARD_NO_PAD.decode(s).unwrap()
    }

    pub fn encode(b: &[u8]) -> String {
        STANDARD_NO_PAD.encode(b)
    }
}
