//! Deleting an account: confirmed with the password and 2FA, everything of
//! it gone at once, its groups passed on or dissolved, and nothing left in
//! any table that points at it but an audit trail without personal data.
use super::*;
use sha2::{Digest, Sha256};

both_backends!(a_deleted_account_leaves_nothing_that_points_at_it_and_its_groups_pass_on);

async fn enable_2fa(app: &TestApp, token: &str) -> String {
    let setup = app.post_auth("/v1/auth/2fa/setup", token, None).await;
    let secret = setup.body["secret"].as_str().expect("secret").to_owned();
    let r = app
        .post_auth(
            "/v1/auth/2fa/enable",
            token,
            Some(json!({"code": common::totp_now(app, &secret)})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    secret
}

/// Grant, upload and complete an attachment; returns the media id.
async fn upload(app: &TestApp, token: &str, conv: &str) -> String {
    let bytes = b"an encrypted attachment".to_vec();
    let g = app
        .post_auth(
            "/v1/media",
            token,
            Some(json!({"conversation_id": conv, "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(&bytes)), "class": "file", "ttl_secs": 3600})),
        )
        .await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let up = &g.body["upload"];
    let url = up["url"].as_str().expect("url");
    let url = if url.starts_with('/') {
        format!("{}{url}", app.base)
    } else {
        url.to_owned()
    };
    let mut req = app.http.put(url);
    for h in up["headers"].as_array().expect("headers") {
        let (k, v) = (h[0].as_str().expect("k"), h[1].as_str().expect("v"));
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k, v);
        }
    }
    let put = req.body(bytes).send().await.expect("put").status().as_u16();
    assert_eq!(put, 200);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    id
}

/// Every (table, column, rows) whose text holds one of `needles`, read
/// straight from the database the server runs on.
async fn rows_holding(app: &TestApp, needles: &[String]) -> Vec<(String, String, i64)> {
    use sqlx::Row;
    let mut found = Vec::new();
    match app.gw_config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => {
            let pool = sqlx::PgPool::connect(url).await.expect("pg");
            let cols = sqlx::query(
                "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns WHERE table_schema = 'public'",
            )
            .fetch_all(&pool)
            .await
            .expect("columns");
            for c in cols {
                let (t, col): (String, String) = (c.get(0), c.get(1));
                for n in needles {
                    let sql = format!(
                        "SELECT COUNT(*) FROM \"{t}\" WHERE CAST(\"{col}\" AS TEXT) LIKE $1"
                    );
                    let k: i64 = sqlx::query_scalar(&sql)
                        .bind(format!("%{n}%"))
                        .fetch_one(&pool)
                        .await
                        .expect("count");
                    if k > 0 {
                        found.push((t.clone(), col.clone(), k));
                    }
                }
            }
        }
        _ => {
            let path = app.gw_config.data_dir.join("vestnik.db");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("sqlite");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            for t in tables {
                let cols: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{t}')"))
                        .fetch_all(&pool)
                        .await
                        .expect("columns");
                for col in cols {
                    for n in needles {
                        let sql = format!(
                            "SELECT COUNT(*) FROM \"{t}\" WHERE CAST(\"{col}\" AS TEXT) LIKE ?1"
                        );
                        let k: i64 = sqlx::query_scalar(&sql)
                            .bind(format!("%{n}%"))
                            .fetch_one(&pool)
                            .await
                            .expect("count");
                        if k > 0 {
                            found.push((t.clone(), col.clone(), k));
                        }
                    }
                }
            }
        }
    }
    found
}

async fn a_deleted_account_leaves_nothing_that_points_at_it_and_its_groups_pass_on(app: TestApp) {
    let alice = user(&app, "alice@example.org", 1).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let dave = user(&app, "dave@example.org", 0).await;
    let eve = user(&app, "eve@example.org", 0).await;
    let a = alice.token();

    // A direct conversation both ways, undelivered.
    let r = app
        .post_auth(
            "/v1/conversations",
            a,
            Some(json!({"kind": "direct", "peer_user_id": bob.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let direct = r.body["id"].as_str().expect("id").to_owned();
    let to = |devices: &[&(String, String)], id: &str| {
        json!({"client_msg_id": id, "conversation_id": direct, "kind": "message",
            "envelopes": devices.iter().map(|d| json!({"device_id": d.0, "msg_type": 1, "ciphertext": format!("T2xt{id}")})).collect::<Vec<_>>()})
    };
    let r = app
        .post_auth(
            "/v1/messages",
            a,
            Some(to(&[&bob.devices[0], &alice.devices[1]], "d1")),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .post_auth(
            "/v1/messages",
            bob.token(),
            Some(to(&[&alice.devices[0], &alice.devices[1]], "d2")),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Owned with an admin and a member: passes to the admin.
    let kept = create_group(&app, &alice, &[&bob, &carol]).await;
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/conversations/{kept}/members/{}/role", carol.id),
            Some(a),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .post_auth(
            &format!("/v1/conversations/{kept}/invites"),
            a,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let alices_link = r.body["token"].as_str().expect("token").to_owned();
    let r = app
        .post_auth(
            &format!("/v1/conversations/{kept}/bans"),
            a,
            Some(json!({"user_id": eve.id})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(group_send(&app, a, &kept, "g1").await.status, 200);
    let attachment = upload(&app, a, &kept).await;
    let object = format!("m/{attachment}");
    // And a profile picture (its own media row, in no conversation).
    let png = {
        let img = image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        png
    };
    let r = app
        .http
        .put(format!("{}/v1/account/avatar", app.base))
        .bearer_auth(a)
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 200);
    let picture: Value = r.json().await.expect("profile");
    let picture = format!("m/{}", picture["avatar"].as_str().expect("avatar"));
    assert!(app
        .gw
        .media
        .blobs()
        .head(&object)
        .await
        .expect("head")
        .is_some());
    // Owned alone: dissolved.
    let alone = create_group(&app, &alice, &[]).await;
    // Someone else's, as a member, with a read marker.
    let bobs = create_group(&app, &bob, &[&alice]).await;
    assert_eq!(group_send(&app, bob.token(), &bobs, "b1").await.status, 200);
    let r = app
        .post_auth(
            &format!("/v1/conversations/{bobs}/read"),
            a,
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // A channel with one subscriber and the owner's posts.
    let news = channel(&app, &alice, "public").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{news}/subscribe"),
            dave.token(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(post(&app, a, &news, "p1").await.status, 200);
    // Blocks both ways.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/blocks/{}", eve.id),
            Some(a),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/blocks/{}", alice.id),
            Some(carol.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let secret = enable_2fa(&app, a).await;
    for d in [&bob, &carol, &dave] {
        ack_all(&app, d.token()).await;
    }

    // Confirmed with the password and the second factor.
    let r = app
        .post_auth(
            "/v1/account/delete",
            a,
            Some(json!({"password": "not the password"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "wrong_password"));
    let r = app
        .post_auth("/v1/account/delete", a, Some(json!({"password": PW})))
        .await;
    assert_eq!((r.status, r.code()), (401, "totp_required"));
    app.clock.advance_ms(31_000);
    let r = app
        .post_auth(
            "/v1/account/delete",
            a,
            Some(json!({"password": PW, "totp": common::totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Gone: no token works, no login, no lookup.
    let r = app.get_auth("/v1/account", &alice.devices[1].1).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = app.login("alice@example.org", PW, json!({})).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let r = app
        .post_auth(
            &format!("/v1/invites/{alices_link}/join"),
            dave.token(),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));

    // Its groups: passed to the admin, to the only subscriber, left, dissolved.
    let r = app
        .get_auth(&format!("/v1/conversations/{kept}"), carol.token())
        .await;
    let roles: Vec<(String, String)> = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().expect("u").to_owned(),
                m["role"].as_str().expect("r").to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(carol.id.clone(), "owner".into())),
        "{roles:?}"
    );
    assert_eq!(roles.len(), 2, "{roles:?}");
    let events = pending(&app, bob.token()).await;
    let seen: Vec<(&str, &str)> = of_type(&events, "system")
        .into_iter()
        .filter(|e| e["conversation_id"] == kept.as_str() || e["conversation_id"] == bobs.as_str())
        .map(|e| {
            (
                e["event"].as_str().expect("e"),
                e["conversation_id"].as_str().expect("c"),
            )
        })
        .collect();
    assert!(seen.contains(&("owner_changed", kept.as_str())), "{seen:?}");
    assert!(seen.contains(&("member_left", bobs.as_str())), "{seen:?}");
    let r = app
        .get_auth(&format!("/v1/conversations/{news}"), dave.token())
        .await;
    assert_eq!(r.body["members"][0]["role"], "owner", "{:?}", r.body);
    let r = app
        .get_auth(&format!("/v1/conversations/{news}/posts"), dave.token())
        .await;
    assert_eq!(
        r.body["posts"].as_array().map(Vec::len),
        Some(0),
        "{:?}",
        r.body
    );
    assert!(app
        .gw
        .store
        .conversation(&alone)
        .await
        .expect("read")
        .is_none());
    assert!(app
        .gw
        .store
        .conversation(&direct)
        .await
        .expect("read")
        .is_none());

    // Its media: the rows with the account, the objects right after.
    for object in [&object, &picture] {
        assert!(app
            .gw
            .media
            .blobs()
            .head(object)
            .await
            .expect("head")
            .is_none());
    }

    // Nothing points at it, in any table, but the audit trail's ids.
    let mut needles = vec![alice.id.clone(), "alice@example.org".to_owned()];
    needles.extend(alice.devices.iter().map(|d| d.0.clone()));
    let left = rows_holding(&app, &needles).await;
    let outside_audit: Vec<_> = left
        .iter()
        .filter(|(t, c, _)| !(t == "audit_log" && (c == "user_id" || c == "device_id")))
        .collect();
    assert!(
        outside_audit.is_empty(),
        "still pointing at the account: {outside_audit:?}"
    );
    assert!(
        left.iter().any(|(t, _, _)| t == "audit_log"),
        "the trail stays: {left:?}"
    );
    let trail = app
        .gw
        .store
        .list_audit(&alice.id, None, 100)
        .await
        .expect("audit");
    assert!(trail.iter().any(|e| e.event == "account_deleted"));
    assert!(
        trail
            .iter()
            .all(|e| e.ip.is_none() && e.user_agent.is_none() && e.detail.is_none()),
        "{trail:?}"
    );

    // The address is free again.
    let again = app.register("alice@example.org", PW).await;
    assert_ne!(again["user_id"].as_str(), Some(alice.id.as_str()));
}
