//! Why the server closes a WebSocket. Each reason has its own close code
//! (4000–4999 is the range RFC 6455 leaves to applications), so a client
//! knows from the code alone whether to reconnect, refresh first, or stop.
use std::fmt;

/// Why the server closed a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// 4001: the session ended (logout, device revoked, refresh-token reuse,
    /// account disabled). Do not reconnect with these credentials.
    SessionEnded,
    /// 4002: the access token expired and no `reauth` came in time.
    /// Refresh the token, then reconnect.
    Reauthenticate,
    /// 4003: the device opened more sockets than the server allows; this,
    /// its oldest, made way. Reconnecting would close another one.
    Replaced,
    /// 4004: the client read too slowly and its queue filled. Reconnect:
    /// everything unacknowledged comes again from the outbox.
    SlowReader,
    /// 4005: nothing was heard from the client within the idle limit.
    Idle,
    /// 1001: the server is shutting down. Reconnect (to another node).
    GoingAway,
}

impl CloseReason {
    /// Every reason, for documentation and tests.
    pub const ALL: [CloseReason; 6] = [
        CloseReason::SessionEnded,
        CloseReason::Reauthenticate,
        CloseReason::Replaced,
        CloseReason::SlowReader,
        CloseReason::Idle,
        CloseReason::GoingAway,
    ];

    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::SessionEnded => 4001,
            CloseReason::Reauthenticate => 4002,
            CloseReason::Replaced => 4003,
            CloseReason::SlowReader => 4004,
            CloseReason::Idle => 4005,
            CloseReason::GoingAway => 1001,
        }
    }

    /// The close frame's reason text: a stable snake_case word.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SessionEnded => "session_ended",
            CloseReason::Reauthenticate => "reauthenticate",
            CloseReason::Replaced => "replaced",
            CloseReason::SlowReader => "slow_reader",
            CloseReason::Idle => "idle",
            CloseReason::GoingAway => "going_away",
        }
    }

    /// The reason a close code stands for, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_code_and_round_trips() {
        let mut codes: Vec<u16> = CloseReason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CloseReason::ALL.len());
        for r in CloseReason::ALL {
            assert_eq!(CloseReason::from_code(r.code()), Some(r));
        }
        assert_eq!(CloseReason::from_code(1000), None);
    }
}
