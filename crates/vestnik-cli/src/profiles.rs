//! `profile` and `avatar`: this account's display name and picture, and
//! saving someone's picture.
use anyhow::Context;
use std::path::{Path, PathBuf};
use vestnik_client::Client;

use crate::peer;

/// What `profile` was asked to change.
pub struct Change {
    pub name: Option<String>,
    pub avatar: Option<PathBuf>,
    pub no_avatar: bool,
}

/// Applies the changes asked for, then prints the profile as it is now.
pub async fn profile(client: &Client, change: Change) -> anyhow::Result<()> {
    let mut now = None;
    if let Some(n) = &change.name {
        now = Some(client.set_display_name(n).await?);
    }
    if let Some(file) = &change.avatar {
        let image = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        now = Some(client.set_avatar(&image).await?);
    }
    if change.no_avatar {
        now = Some(client.clear_avatar().await?);
    }
    let me = client.user_id().to_owned();
    let p = match now {
        Some(p) => p,
        None => client
            .profiles(std::slice::from_ref(&me))
            .await?
            .remove(&me)
            .unwrap_or(vestnik_client::Profile {
                user_id: me,
                display_name: None,
                avatar: None,
            }),
    };
    match p.display_name {
        Some(n) => println!("display name: {n}"),
        None => println!("no display name (others see your id)"),
    }
    match p.avatar {
        Some(id) => println!("picture: {id}"),
        None => println!("no picture"),
    }
    Ok(())
}

/// Writes `who`'s profile picture to `out`.
pub async fn save_avatar(client: &Client, who: &str, out: &Path) -> anyhow::Result<()> {
    let user = peer(client, who).await?;
    match client.avatar(&user).await? {
        Some(jpeg) => {
            std::fs::write(out, &jpeg).with_context(|| format!("writing {}", out.display()))?;
            println!("saved {} bytes to {}", jpeg.len(), out.display());
            Ok(())
        }
        None => anyhow::bail!("{who} has no picture you may see"),
    }
}
