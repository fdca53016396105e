//! Every rate-limited action, in one table (as Signal-Server's
//! `RateLimiters`): what it counts, per what, its default and the config key
//! that changes it. The README's limits table is this one; a test keeps
//! them equal.
use std::collections::BTreeMap;
use std::fmt;

/// `capacity` tokens refilled evenly over `per_secs` seconds: a burst of
/// `capacity`, then `capacity / per_secs` a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens in a full bucket: the burst allowed at once.
    pub capacity: u32,
    /// Seconds over which an empty bucket refills to `capacity`.
    pub per_secs: u32,
}

impl Rate {
    /// `capacity` per `per_secs` seconds.
    pub const fn new(capacity: u32, per_secs: u32) -> Self {
        Self { capacity, per_secs }
    }

    /// Parses `"<capacity>/<seconds>"` (e.g. `"300/60"`), as written in the
    /// `rate_limits` config table.
    pub fn parse(s: &str) -> Option<Self> {
        let (c, p) = s.trim().split_once('/')?;
        let capacity = c.trim().parse().ok().filter(|c| *c > 0)?;
        let per_secs = p.trim().parse().ok().filter(|p| *p > 0)?;
        Some(Self { capacity, per_secs })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.capacity, self.per_secs)
    }
}

/// Where a limit's buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// On each node (no network round trip; a client spread over several
    /// nodes gets the limit on each).
    PerNode,
    /// Shared by every node (Redis when configured).
    Cluster,
}

/// What happens when the shared limiter cannot be asked (Redis down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnavailable {
    /// Refuse with 503: the action guards passwords, codes or mail.
    FailClosed,
    /// Let it through: an outage of the limiter must not stop messaging.
    FailOpen,
}

/// One rate-limited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Every request, per client address (IPv6: its /64).
    Requests,
    /// Register, verify, login, refresh and 2FA disable, per client address.
    AuthAttempts,
    /// Register, verify and login, per e-mail address.
    AuthPerEmail,
    /// Registration codes requested, per client address.
    Registrations,
    /// Messages sent, per device, over HTTP and the WebSocket together.
    SendMessage,
    /// Typing, read markers and presence subscriptions, per device.
    Ephemeral,
    /// Conversations (direct, groups, channels) created, per user.
    CreateConversation,
    /// Members added to groups and channels, per user.
    AddMembers,
    /// Invites created, per user.
    CreateInvite,
    /// Invites redeemed, per user.
    RedeemInvite,
    /// Key bundles claimed, per claiming user.
    ClaimKeys,
    /// Key bundles claimed of one target user, per (claimer, target): one
    /// account cannot drain another's one-time keys.
    ClaimKeysOfTarget,
    /// User lookups by e-mail, per user.
    LookupUser,
    /// Media upload grants, per user.
    UploadGrant,
    /// Two-factor setup, enable and disable, per account.
    TwoFactorChange,
    /// Failed password or code checks when disabling two-factor, per account.
    TwoFactorDisableFailures,
    /// Password changes, e-mail changes and password resets, per account.
    AccountChange,
}

/// An action's row in the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name in the `rate_limits` config table and in bucket keys.
    pub name: &'static str,
    /// What one token is spent on, per what.
    pub scope: &'static str,
    /// The default rate.
    pub default: Rate,
    /// A dedicated config key, for the limits that had one before the table.
    pub legacy_key: Option<&'static str>,
    /// Where its buckets live.
    pub counted: Counted,
    /// What a limiter outage does to it.
    pub when_unavailable: WhenUnavailable,
}

use Counted::{Cluster, PerNode};
use WhenUnavailable::{FailClosed, FailOpen};

impl Action {
    /// Every action, in the README's order.
    pub const ALL: [Action; 17] = [
        Action::Requests,
        Action::AuthAttempts,
        Action::AuthPerEmail,
        Action::Registrations,
        Action::SendMessage,
        Action::Ephemeral,
        Action::CreateConversation,
        Action::AddMembers,
        Action::CreateInvite,
        Action::RedeemInvite,
        Action::ClaimKeys,
        Action::ClaimKeysOfTarget,
        Action::LookupUser,
        Action::UploadGrant,
        Action::TwoFactorChange,
        Action::TwoFactorDisableFailures,
        Action::AccountChange,
    ];

    /// The action's row.
    pub const fn spec(self) -> Spec {
        const fn row(
            name: &'static str,
            scope: &'static str,
            default: Rate,
            counted: Counted,
            when_unavailable: WhenUnavailable,
        ) -> Spec {
            Spec {
                name,
                scope,
                default,
                legacy_key: None,
                counted,
                when_unavailable,
            }
        }
        match self {
            Action::Requests => Spec {
                legacy_key: Some("rate_ip_per_minute"),
                ..row(
                    "requests",
                    "any request, per client address (IPv6: /64)",
                    Rate::new(6000, 60),
                    PerNode,
                    FailOpen,
                )
            },
            Action::AuthAttempts => Spec {
                legacy_key: Some("rate_auth_ip_per_minute"),
                ..row(
                    "auth_attempts",
                    "register, verify, login, refresh, 2FA disable, password and e-mail changes and resets, per client address",
                    Rate::new(60, 60),
                    Cluster,
                    FailClosed,
                )
            },
            Action::AuthPerEmail => Spec {
                legacy_key: Some("rate_auth_email_per_hour"),
                ..row(
                    "auth_per_email",
                    "register, verify, login, per e-mail address",
                    Rate::new(30, 3600),
                    Cluster,
                    FailClosed,
                )
            },
            Action::Registrations => row(
                "registrations",
                "registration codes requested, per client address",
                Rate::new(20, 3600),
                Cluster,
                FailClosed,
            ),
            Action::SendMessage => row(
                "send_message",
                "messages sent (HTTP and WebSocket), per device",
                Rate::new(200, 2),
                PerNode,
                FailOpen,
            ),
            Action::Ephemeral => row(
                "ephemeral",
                "typing, read markers, presence subscriptions, per device",
                Rate::new(20, 4),
                PerNode,
                FailOpen,
            ),
            Action::CreateConversation => row(
                "create_conversation",
                "conversations created, per user",
                Rate::new(30, 600),
                Cluster,
                FailOpen,
            ),
            Action::AddMembers => row(
                "add_members",
                "members added to groups and channels, per user",
                Rate::new(500, 3600),
                Cluster,
                FailOpen,
            ),
            Action::CreateInvite => row(
                "create_invite",
                "invites created, per user",
                Rate::new(50, 3600),
                Cluster,
                FailOpen,
            ),
            Action::RedeemInvite => row(
                "redeem_invite",
                "invites redeemed, per user",
                Rate::new(30, 3600),
                Cluster,
                FailOpen,
            ),
            Action::ClaimKeys => row(
                "claim_keys",
                "key bundles claimed, per claiming user",
                Rate::new(300, 60),
                Cluster,
                FailOpen,
            ),
            Action::ClaimKeysOfTarget => row(
                "claim_keys_of_target",
                "key bundles claimed of one user, per (claimer, target)",
                Rate::new(20, 3600),
                Cluster,
                FailOpen,
            ),
            Action::LookupUser => row(
                "lookup_user",
                "user lookups by e-mail, per user",
                Rate::new(60, 60),
                Cluster,
                FailOpen,
            ),
            Action::UploadGrant => row(
                "upload_grant",
                "media upload grants, per user",
                Rate::new(120, 600),
                Cluster,
                FailOpen,
            ),
            Action::TwoFactorChange => row(
                "two_factor_change",
                "2FA setup, enable and disable, per account",
                Rate::new(10, 3600),
                Cluster,
                FailClosed,
            ),
            Action::TwoFactorDisableFailures => row(
                "two_factor_disable_failures",
                "wrong password or code when disabling 2FA, per account",
                Rate::new(5, 3600),
                Cluster,
                FailClosed,
            ),
            Action::AccountChange => row(
                "account_change",
                "password change, e-mail change and password reset attempts, profile changes and exports, per account",
                Rate::new(10, 3600),
                Cluster,
                FailClosed,
            ),
        }
    }

    /// The action named `name` in the config table.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.spec().name == name)
    }
}

/// The key a client address is limited under: itself for IPv4, its /64 for
/// IPv6 (one subscriber line gets a whole /64 and can pick any address in
/// it), IPv4-mapped IPv6 as the IPv4 address.
pub fn address_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The rates in force: the defaults, overridden from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    rates: BTreeMap<Action, Rate>,
}

impl Default for RateTable {
    fn default() -> Self {
        Self {
            rates: Action::ALL.iter().map(|a| (*a, a.spec().default)).collect(),
        }
    }
}

impl RateTable {
    /// The rate of `action`.
    pub fn rate(&self, action: Action) -> Rate {
        self.rates
            .get(&action)
            .copied()
            .unwrap_or(action.spec().default)
    }

    /// Sets one action's rate.
    pub fn set(&mut self, action: Action, rate: Rate) {
        self.rates.insert(action, rate);
    }

    /// Applies the `rate_limits` config table (`name = "capacity/seconds"`);
    /// the first bad entry is the error.
    pub fn apply(&mut self, overrides: &BTreeMap<String, String>) -> Result<(), String> {
        for (name, value) in overrides {
            let action =
                Action::from_name(name).ok_or_else(|| format!("unknown action {name:?}"))?;
            let rate = Rate::parse(value).ok_or_else(|| {
                format!("{name}: expected \"<burst>/<seconds>\" with both above 0, got {value:?}")
            })?;
            self.set(action, rate);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_unique_name_and_a_usable_default() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.spec().name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for a in Action::ALL {
            let s = a.spec();
            assert!(s.default.capacity > 0 && s.default.per_secs > 0, "{a:?}");
            assert_eq!(Action::from_name(s.name), Some(a));
        }
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }

    #[test]
    fn overrides_parse_and_bad_ones_name_their_key() {
        let mut t = RateTable::default();
        let ok = BTreeMap::from([("send_message".to_owned(), "10/1".to_owned())]);
        t.apply(&ok).expect("valid");
        assert_eq!(t.rate(Action::SendMessage), Rate::new(10, 1));
        for (k, v) in [
            ("send_message", "0/1"),
            ("send_message", "10"),
            ("nope", "1/1"),
        ] {
            let bad = BTreeMap::from([(k.to_owned(), v.to_owned())]);
            let e = RateTable::default().apply(&bad).expect_err("refused");
            assert!(e.contains(k), "{e}");
        }
    }
}
