//! The application's view of what happens: a stream of [`ClientEvent`]s.
use futures::Stream;
use tokio::sync::broadcast;

use crate::types::ClientEvent;

/// Receives the client's events from the moment it was made
/// ([`crate::Client::events`]); make it before [`crate::Client::connect`] so
/// nothing is missed. A reader that falls more than
/// `ClientConfig::event_capacity` events behind gets [`ClientEvent::Lagged`]
/// (everything is still in the local history).
pub struct EventStream {
    rx: broadcast::Receiver<ClientEvent>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<ClientEvent>) -> Self {
        Self { rx }
    }

    /// The next event; None once the client is gone.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        match self.rx.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(ClientEvent::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// An event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        match self.rx.try_recv() {
            Ok(e) => Some(e),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(ClientEvent::Lagged { missed })
            }
            Err(_) => None,
        }
    }

    /// The same events as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = ClientEvent> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut s| async move {
            s.recv().await.map(|e| (e, s))
        }))
    }
}
