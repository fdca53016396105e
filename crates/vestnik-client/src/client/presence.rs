//! Signals that exist only on the socket and are never stored: typing,
//! presence and read markers.
use super::Client;
use crate::error::{ClientError, Result};

impl Client {
    async fn send_frame(&self, frame: vestnik_proto::ClientFrame) -> Result<()> {
        let link = self.inner.link.borrow().clone();
        match link {
            Some(tx) => tx
                .send(frame)
                .await
                .map_err(|_| ClientError::Transport("the socket closed".into())),
            None => Err(ClientError::Transport("not connected".into())),
        }
    }

    /// Tells the other members this user is (or stopped) typing. Needs the
    /// socket; best effort (nothing is stored).
    pub async fn set_typing(&self, conversation_id: &str, typing: bool) -> Result<()> {
        self.send_frame(vestnik_proto::ClientFrame::Typing {
            conversation_id: conversation_id.parse()?,
            typing,
        })
        .await
    }

    /// Asks for the presence of users this account shares a conversation
    /// with (over the socket): one `Presence` event each now, then changes.
    pub async fn subscribe_presence(&self, user_ids: &[String]) -> Result<()> {
        self.send_frame(vestnik_proto::ClientFrame::SubscribePresence {
            user_ids: user_ids
                .iter()
                .map(|u| u.parse())
                .collect::<std::result::Result<_, _>>()?,
        })
        .await
    }

    /// Marks a conversation read up to `seq` (over the socket).
    pub async fn mark_read(&self, conversation_id: &str, seq: i64) -> Result<()> {
        self.send_frame(vestnik_proto::ClientFrame::Read {
            conversation_id: conversation_id.parse()?,
            seq,
        })
        .await
    }
}
