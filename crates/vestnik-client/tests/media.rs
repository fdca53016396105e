//! Files through the client library against the real server: encrypted on
//! the sender's device, uploaded to the media store (the local directory on
//! SQLite; SeaweedFS over S3 on PostgreSQL + Redis), announced inside the
//! E2EE message, fetched, verified and decrypted by every recipient device.
mod common;

use std::path::{Path, PathBuf};

use anyhow::Context;
use common::{messages, synced, Server};
use vestnik_client::{Attachment, ClientError, FileOptions};

/// Each test on SQLite + local store and on PostgreSQL + Redis + S3.
macro_rules! media_backends {
    ($($name:ident),* $(,)?) => {
        mod local_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() -> anyhow::Result<()> {
                   match crate::common::spawn_server(crate::common::Backend::Sqlite).await {
                       Some(s) => super::$name(s).await,
                       None => Ok(()),
                   }
               } )*
        }
        mod s3_postgres_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() -> anyhow::Result<()> {
                   let Some(s3) = vestnik_testkit::s3_server() else { return Ok(()) };
                   let server = crate::common::spawn_server_with(crate::common::Backend::PostgresRedis, |c| {
                       c.s3_endpoint = Some(s3.endpoint.clone());
                       c.s3_access_key = Some(s3.access_key.clone());
                       c.s3_secret_key = Some(s3.secret_key.clone());
                       c.s3_bucket = s3.bucket.clone();
                   }).await;
                   match server {
                       Some(s) => super::$name(s).await,
                       None => Ok(()),
                   }
               } )*
        }
    };
}

media_backends!(
    files_travel_encrypted_to_every_device_and_decrypt_to_the_same_bytes,
    a_changed_object_is_refused_and_leaves_no_file_behind,
    public_channel_media_is_plain_and_private_group_media_is_not,
    profile_pictures_are_fetched_once_cached_sealed_and_follow_pushed_changes,
);

fn scratch(s: &Server, name: &str) -> PathBuf {
    s.clients_dir.join(name)
}

fn write_pattern(path: &Path, len: usize, seed: u8) -> anyhow::Result<Vec<u8>> {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(path, &bytes)?;
    Ok(bytes)
}

fn write_png(path: &Path) -> anyhow::Result<()> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    img.save(path)?;
    Ok(())
}

/// The stored object's bytes, read from the store directly.
async fn stored(s: &Server, media_id: &str) -> anyhow::Result<Vec<u8>> {
    use futures::TryStreamExt;
    let stream = s.gw.media.blobs().read(&format!("m/{media_id}")).await?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn files_travel_encrypted_to_every_device_and_decrypt_to_the_same_bytes(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let bob_tablet = s.login("bob@example.com", "bob-tablet").await?;
    let _a = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let mut ev_tablet = synced(&bob_tablet).await?;

    // Not a multiple of the 64 KiB chunk, and a recognisable plaintext.
    let doc = scratch(&s, "report.bin");
    let mut plain = write_pattern(&doc, 200_003, 7)?;
    plain[1000..1016].copy_from_slice(b"PLAINTEXT-MARKER");
    std::fs::write(&doc, &plain)?;
    let photo = scratch(&s, "photo.png");
    write_png(&photo)?;

    let (_, sent_doc) = alice
        .send_file(bob.user_id(), &doc, &FileOptions::default())
        .await?;
    let (_, sent_photo) = alice
        .send_file(
            bob.user_id(),
            &photo,
            &FileOptions {
                caption: Some("the view".into()),
                ..FileOptions::default()
            },
        )
        .await?;
    assert_eq!(sent_doc.size, plain.len() as u64);
    assert!(sent_doc.stored_size > sent_doc.size, "tags added");

    // The store holds ciphertext only.
    let object = stored(&s, &sent_doc.media_id).await?;
    assert_eq!(object.len() as u64, sent_doc.stored_size);
    assert!(
        !find(&object, b"PLAINTEXT-MARKER"),
        "plaintext in the store"
    );

    for (who, ev) in [(&bob, &mut ev_bob), (&bob_tablet, &mut ev_tablet)] {
        let got = messages(ev, 2).await.context("two file messages")?;
        let doc_att: &Attachment = got[0].attachment.as_deref().context("attachment")?;
        assert_eq!(got[0].body, "report.bin");
        assert_eq!(doc_att, &sent_doc);
        let out = scratch(&s, &format!("{}-report.bin", who.device_id()));
        let n = who.download_attachment(doc_att, &out).await?;
        assert_eq!(n, plain.len() as u64);
        assert!(std::fs::read(&out)? == plain, "decrypted bytes differ");

        let photo_att = got[1].attachment.as_deref().context("photo")?;
        assert_eq!(
            (got[1].body.as_str(), photo_att.class.as_str()),
            ("the view", "image")
        );
        let thumb = photo_att
            .thumbnail
            .as_ref()
            .context("a thumbnail before download")?;
        assert_eq!((thumb.width, thumb.height), (640, 480));
        let out = scratch(&s, &format!("{}-photo.png", who.device_id()));
        who.download_attachment(photo_att, &out).await?;
        assert!(std::fs::read(&out)? == std::fs::read(&photo)?);
    }
    // Kept in history too, with the attachment.
    let conv = bob.conversation_with(alice.user_id()).await?;
    let history = bob.history(&conv, 10).await?;
    assert!(history
        .iter()
        .any(|h| h.attachment.as_ref() == Some(&sent_doc)));
    let sent_side = alice.history(&conv, 10).await?;
    assert!(sent_side
        .iter()
        .any(|h| h.attachment.as_ref() == Some(&sent_photo)));
    Ok(())
}

async fn a_changed_object_is_refused_and_leaves_no_file_behind(s: Server) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let _a = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let doc = scratch(&s, "doc.bin");
    write_pattern(&doc, 150_000, 3)?;
    let (_, sent) = alice
        .send_file(bob.user_id(), &doc, &FileOptions::default())
        .await?;
    let got = messages(&mut ev_bob, 1).await?;
    let att = got[0].attachment.as_deref().context("attachment")?.clone();
    assert_eq!(att, sent);

    // Someone with access to the store flips one byte of the object.
    let mut object = stored(&s, &att.media_id).await?;
    object[70_000] ^= 0x20;
    // Written straight into the store: its upload URL is closed since the
    // upload completed.
    s.gw.media
        .blobs()
        .put(
            &format!("m/{}", att.media_id),
            object,
            "application/octet-stream",
        )
        .await?;

    let out = scratch(&s, "got.bin");
    let err = bob
        .download_attachment(&att, &out)
        .await
        .expect_err("tampered");
    assert!(
        matches!(err, ClientError::Crypto(_) | ClientError::Protocol(_)),
        "{err}"
    );
    assert!(!out.exists(), "no output file");
    assert!(!scratch(&s, "got.bin.part").exists(), "no partial file");

    // The sender deletes it (as with the message): it is gone for everyone.
    alice.delete_attachment(&att.media_id).await?;
    let err = bob
        .download_attachment(&att, &out)
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Some("media_not_found"), "{err}");
    Ok(())
}

async fn public_channel_media_is_plain_and_private_group_media_is_not(
    s: Server,
) -> anyhow::Result<()> {
    let owner = s.register("owner@example.com", "owner").await?;
    let reader = s.register("reader@example.com", "reader").await?;
    let _o = synced(&owner).await?;
    let mut ev_reader = synced(&reader).await?;
    let file = scratch(&s, "notes.txt");
    std::fs::write(&file, "PUBLIC-NOTES ".repeat(10_000))?;

    let channel = owner.create_channel("news", true, &[]).await?;
    reader.subscribe_channel(&channel.id).await?;
    let (_, public) = owner
        .post_file(&channel.id, &file, &FileOptions::default())
        .await?;
    assert!(public.key.is_none());
    assert_eq!(public.stored_size, public.size);
    assert!(find(&stored(&s, &public.media_id).await?, b"PUBLIC-NOTES"));
    let got = messages(&mut ev_reader, 1).await?;
    let out = scratch(&s, "notes-copy.txt");
    reader
        .download_attachment(got[0].attachment.as_deref().context("attachment")?, &out)
        .await?;
    assert_eq!(std::fs::read(&out)?, std::fs::read(&file)?);

    let group = owner
        .create_group(Some("team"), &[reader.user_id().to_owned()])
        .await?;
    let (_, private) = owner
        .send_group_file(&group, &file, &FileOptions::default())
        .await?;
    assert!(private.key.is_some());
    assert!(!find(
        &stored(&s, &private.media_id).await?,
        b"PUBLIC-NOTES"
    ));
    let got = messages(&mut ev_reader, 1).await?;
    let out = scratch(&s, "notes-group.txt");
    reader
        .download_attachment(got[0].attachment.as_deref().context("attachment")?, &out)
        .await?;
    assert_eq!(std::fs::read(&out)?, std::fs::read(&file)?);
    Ok(())
}

/// Every byte of a client's store file (and its WAL).
fn store_bytes(s: &Server, name: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = s.store_path(name).into_os_string();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

async fn profile_pictures_are_fetched_once_cached_sealed_and_follow_pushed_changes(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let eve = s.register("eve@example.com", "eve").await?;
    let _a = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    alice.send_text(bob.user_id(), "hi").await?;
    messages(&mut ev_bob, 1).await?;
    assert_eq!(bob.avatar(alice.user_id()).await?, None, "none set yet");

    let photo = scratch(&s, "me.png");
    write_png(&photo)?;
    let set = alice.set_avatar(&std::fs::read(&photo)?).await?;
    let id = set.avatar.clone().context("a picture id")?;
    // Bob's client learns of it from the push, and caches the new id.
    let pushed = common::wait_for(&mut ev_bob, "the new picture", |e| {
        matches!(
            e,
            vestnik_client::ClientEvent::ProfileChanged {
                avatar: Some(_),
                ..
            }
        )
    })
    .await?;
    assert!(matches!(
        pushed,
        vestnik_client::ClientEvent::ProfileChanged { avatar: Some(ref a), .. } if *a == id
    ));
    let jpeg = bob
        .avatar(alice.user_id())
        .await?
        .context("alice's picture")?;
    let pic = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)?;
    assert_eq!((pic.width(), pic.height()), (480, 480), "the centre square");
    // Sealed at rest: no run of the picture's bytes is in Bob's store.
    let middle = &jpeg[jpeg.len() / 2..jpeg.len() / 2 + 64];
    assert!(
        !find(&store_bytes(&s, "bob"), middle),
        "the picture is sealed"
    );

    // A second ask is answered from the store: with the object gone from
    // the media store, Bob still has it (and the same bytes).
    s.gw.media.blobs().delete(&format!("m/{id}")).await?;
    assert_eq!(
        bob.avatar(alice.user_id()).await?.as_deref(),
        Some(&jpeg[..])
    );

    // Eve shares no conversation with Alice: nothing to see.
    assert_eq!(eve.avatar(alice.user_id()).await?, None);
    // Not an image: refused before any request.
    assert!(matches!(
        alice.set_avatar(b"plain text").await,
        Err(ClientError::InvalidInput(_))
    ));

    alice.clear_avatar().await?;
    common::wait_for(&mut ev_bob, "the picture removed", |e| {
        matches!(
            e,
            vestnik_client::ClientEvent::ProfileChanged { avatar: None, .. }
        )
    })
    .await?;
    assert_eq!(bob.avatar(alice.user_id()).await?, None);
    Ok(())
}
