mod common;

use common::{header, parse_message, TempDir};
use vestnik_mail::{FileMailer, Mail, Mailer};

#[tokio::test]
async fn writes_one_parseable_eml_and_no_temp_files() -> anyhow::Result<()> {
    let tmp = TempDir::new("file");
    // A nested, not yet existing directory proves `new` creates it.
    let dir = tmp.path().join("outbox").join("dev");
    let mailer = FileMailer::new(dir.clone(), "Vestnik <noreply@vestnik.example>")?;
    assert_eq!(mailer.kind(), "file");

    mailer
        .send(Mail {
            to: "alice@example.org".into(),
            subject: "Your Vestnik code".into(),
            text: "Your code is 482913.\nIt expires in 10 minutes.".into(),
        })
        .await?;

    let entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    assert_eq!(
        entries.len(),
        1,
        "exactly one file, no leftovers: {entries:?}"
    );
    let name = entries[0].file_name().into_string().expect("utf-8 name");
    let (ms, rest) = name.split_once('-').expect("<unix_ms>-<uuid>.eml");
    ms.parse::<u128>().expect("unix ms prefix");
    let uuid = rest.strip_suffix(".eml").expect(".eml suffix");
    uuid::Uuid::parse_str(uuid).expect("uuid part");

    let raw = std::fs::read_to_string(entries[0].path())?;
    let (headers, body) = parse_message(&raw);
    assert_eq!(header(&headers, "To"), Some("alice@example.org"));
    assert_eq!(header(&headers, "Subject"), Some("Your Vestnik code"));
    assert_eq!(
        header(&headers, "From"),
        Some("Vestnik <noreply@vestnik.example>")
    );
    assert!(header(&headers, "Date").is_some());
    assert!(
        header(&headers, "Message-ID")
            .is_some_and(|v| v.starts_with('<') && v.ends_with("@vestnik.example>")),
        "{headers:?}"
    );
    assert!(header(&headers, "Content-Type").is_some_and(|v| v.starts_with("text/plain")));
    assert_eq!(
        body.replace("\r\n", "\n").trim_end(),
        "Your code is 482913.\nIt expires in 10 minutes."
    );
    Ok(())
}

#[tokio::test]
async fn each_mail_gets_its_own_file() -> anyhow::Result<()> {
    let tmp = TempDir::new("file-many");
    let mailer = FileMailer::new(tmp.path().to_path_buf(), "noreply@vestnik.example")?;
    for i in 0..5 {
        mailer
            .send(Mail {
                to: format!("user{i}@example.org"),
                subject: format!("code {i}"),
                text: "x".into(),
            })
            .await?;
    }
    let names: Vec<String> = std::fs::read_dir(tmp.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".eml")), "{names:?}");
    Ok(())
}

#[tokio::test]
async fn invalid_recipient_is_a_build_error_and_writes_nothing() -> anyhow::Result<()> {
    let tmp = TempDir::new("file-bad");
    let mailer = FileMailer::new(tmp.path().to_path_buf(), "noreply@vestnik.example")?;
    let err = mailer
        .send(Mail {
            to: "not an address".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await
        .expect_err("bad recipient must fail");
    assert!(matches!(err, vestnik_mail::MailError::Build(_)), "{err:?}");
    assert_eq!(std::fs::read_dir(tmp.path())?.count(), 0);
    Ok(())
}

#[test]
fn invalid_sender_is_a_config_error() {
    let tmp = TempDir::new("file-cfg");
    let err = FileMailer::new(tmp.path().to_path_buf(), "Vestnik <nope>").expect_err("bad sender");
    assert!(matches!(err, vestnik_mail::MailError::Config(_)), "{err:?}");
}
