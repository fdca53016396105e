//! The socket's side of a session: single-use tickets for opening a
//! WebSocket (browsers cannot send an `Authorization` header there), and the
//! session as it stands now, which a socket asks when its token expires.
use vestnik_core::token;
use vestnik_store::SessionAuth;

use crate::sessions::{decode, encode};
use crate::{AuthError, AuthService};
pub use vestnik_core::limits::WS_TICKET_TTL_SECS;

impl AuthService {
    /// A single-use ticket, valid `WS_TICKET_TTL_SECS`, for opening a WebSocket
    /// (browsers cannot send an `Authorization` header there).
    pub async fn issue_ws_ticket(
        &self,
        auth: &SessionAuth,
    ) -> Result<vestnik_proto::WsTicket, AuthError> {
        let ticket = format!("vwt_{}", token::new_token());
        let ttl = (WS_TICKET_TTL_SECS * 1000) as u64;
        self.kv
            .set(
                &format!("wst:{}", token::hash_token(&ticket)),
                &encode(auth),
                ttl,
            )
            .await?;
        Ok(vestnik_proto::WsTicket {
            ticket: ticket.into(),
            expires_in: WS_TICKET_TTL_SECS,
        })
    }

    /// Redeems a WebSocket ticket once; fails if it is unknown, expired, used, or its session was revoked since.
    pub async fn redeem_ws_ticket(&self, ticket: &str) -> Result<SessionAuth, AuthError> {
        if !ticket.starts_with("vwt_") || ticket.len() > 128 {
            return Err(AuthError::Unauthenticated);
        }
        let hash = token::hash_token(ticket);
        let auth = self
            .kv
            .get(&format!("wst:{hash}"))
            .await?
            .as_deref()
            .and_then(decode)
            .ok_or(AuthError::Unauthenticated)?;
        // Single use, even when two connections race with the same ticket.
        if !self
            .kv
            .set_nx(
                &format!("wst-used:{hash}"),
                "1",
                (WS_TICKET_TTL_SECS * 1000) as u64,
            )
            .await?
        {
            return Err(AuthError::Unauthenticated);
        }
        self.kv.del(&[format!("wst:{hash}")]).await?;
        // The session may have been revoked since the ticket was issued.
        self.live_session(&auth.session_id)
            .await?
            .ok_or(AuthError::Unauthenticated)
    }

    /// The session as the database has it now (its latest access token's
    /// expiry included), or None once it has ended. Sockets call it when
    /// their token expires: a client that refreshed over HTTP meanwhile
    /// keeps its socket without a word.
    pub async fn live_session(&self, session_id: &str) -> Result<Option<SessionAuth>, AuthError> {
        Ok(self
            .store
            .live_session(session_id, self.clock.now_ms())
            .await?)
    }
}
