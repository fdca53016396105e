//! Keeping a group clean: invite lists and revocation, invites that end
//! with their creator's right to invite, and ban lists that keep a removed
//! member out.
use super::*;

both_backends!(
    invites_are_listed_revoked_and_lost_with_their_creators_right_to_invite,
    a_banned_user_stays_out_by_any_way_in_until_unbanned,
);

async fn invite(app: &TestApp, token: &str, conv: &str) -> (String, String) {
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/invites"),
            token,
            Some(json!({"max_uses": 10})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (
        r.body["token"].as_str().expect("token").to_owned(),
        r.body["invite_id"].as_str().expect("invite id").to_owned(),
    )
}

async fn join(app: &TestApp, token: &str, invite_token: &str) -> common::Res {
    app.post_auth(&format!("/v1/invites/{invite_token}/join"), token, None)
        .await
}

async fn set_role(app: &TestApp, owner: &User, conv: &str, who: &User, role: &str) {
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/conversations/{conv}/members/{}/role", who.id),
            Some(owner.token()),
            Some(&json!({ "role": role })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn listed(app: &TestApp, token: &str, conv: &str) -> Vec<(String, String)> {
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/invites"), token)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["invites"]
        .as_array()
        .expect("invites")
        .iter()
        .map(|i| {
            (
                i["invite_id"].as_str().expect("id").to_owned(),
                i["created_by"].as_str().expect("creator").to_owned(),
            )
        })
        .collect()
}

async fn invites_are_listed_revoked_and_lost_with_their_creators_right_to_invite(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let admin = user(&app, "admin@example.org", 0).await;
    let guests = [
        user(&app, "g1@example.org", 0).await,
        user(&app, "g2@example.org", 0).await,
        user(&app, "g3@example.org", 0).await,
    ];
    let conv = create_group(&app, &owner, &[&admin]).await;
    set_role(&app, &owner, &conv, &admin, "admin").await;
    let (admins_link, admins_id) = invite(&app, admin.token(), &conv).await;
    let (owners_link, owners_id) = invite(&app, owner.token(), &conv).await;
    let mut seen = listed(&app, owner.token(), &conv).await;
    seen.sort();
    let mut want = vec![
        (admins_id.clone(), admin.id.clone()),
        (owners_id.clone(), owner.id.clone()),
    ];
    want.sort();
    assert_eq!(seen, want);

    // Revoked: the link stops at once, and only managers may revoke or list.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/invites/{owners_id}"),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = join(&app, guests[0].token(), &owners_link).await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/invites/{owners_id}"),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));

    // Demoted: the admin's link dies with the right to invite.
    set_role(&app, &owner, &conv, &admin, "member").await;
    assert!(listed(&app, owner.token(), &conv).await.is_empty());
    let r = join(&app, guests[0].token(), &admins_link).await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/invites"), admin.token())
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));

    // Removed: an admin does not walk back in through their own link.
    set_role(&app, &owner, &conv, &admin, "admin").await;
    let (own_way_back, _) = invite(&app, admin.token(), &conv).await;
    assert_eq!(
        join(&app, guests[1].token(), &own_way_back).await.status,
        200
    );
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/members/{}", admin.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = join(&app, admin.token(), &own_way_back).await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    let r = join(&app, guests[2].token(), &own_way_back).await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));

    // Bad ids are refused before any lookup.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/invites/not-an-id"),
            Some(owner.token()),
            None,
        )
        .await;
    assert!(r.status == 400 || r.status == 404, "{:?}", r.body);
}

async fn a_banned_user_stays_out_by_any_way_in_until_unbanned(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let admin = user(&app, "admin@example.org", 0).await;
    let troll = user(&app, "troll@example.org", 0).await;
    let lurker = user(&app, "lurker@example.org", 0).await;
    let conv = create_group(&app, &owner, &[&admin, &troll]).await;
    set_role(&app, &owner, &conv, &admin, "admin").await;
    let (link, _) = invite(&app, admin.token(), &conv).await;
    for d in &troll.devices {
        ack_all(&app, &d.1).await;
    }
    let bans = format!("/v1/conversations/{conv}/bans");

    // An admin may ban a plain member, not the owner; nobody bans themselves.
    let r = app
        .post_auth(&bans, admin.token(), Some(json!({"user_id": owner.id})))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(&bans, admin.token(), Some(json!({"user_id": admin.id})))
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));
    let r = app
        .post_auth(&bans, troll.token(), Some(json!({"user_id": admin.id})))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(&bans, admin.token(), Some(json!({"user_id": troll.id})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // The troll learns it, and is out.
    let items = pending(&app, troll.token()).await;
    let banned: Vec<_> = of_type(&items, "system")
        .into_iter()
        .filter(|e| e["event"] == "member_banned" && e["target_user_id"] == troll.id.as_str())
        .collect();
    assert_eq!(banned.len(), 1, "{items:?}");
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}"), troll.token())
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    // No way back: the admin's link, a re-add by the owner.
    let r = join(&app, troll.token(), &link).await;
    assert_eq!((r.status, r.code()), (403, "banned"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/members"),
            owner.token(),
            Some(json!({"user_id": troll.id})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "banned"));
    // The link still works for others.
    assert_eq!(join(&app, lurker.token(), &link).await.status, 200);

    let r = app.get_auth(&bans, owner.token()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["bans"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["bans"][0]["user_id"], troll.id.as_str());
    assert_eq!(r.body["bans"][0]["banned_by"], admin.id.as_str());
    let r = app.get_auth(&bans, lurker.token()).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));

    // Unbanned: the link lets them in again.
    let r = app
        .send(
            Method::DELETE,
            &format!("{bans}/{}", troll.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .send(
            Method::DELETE,
            &format!("{bans}/{}", troll.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    assert_eq!(join(&app, troll.token(), &link).await.status, 200);

    // A public channel: a pre-emptive ban keeps an outsider from subscribing.
    let news = channel(&app, &owner, "public").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{news}/bans"),
            owner.token(),
            Some(json!({"user_id": lurker.id})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .post_auth(
            &format!("/v1/conversations/{news}/subscribe"),
            lurker.token(),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "banned"));
}
