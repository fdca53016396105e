//! The rate table applied: one `check` for every limited action, which
//! picks the node-local or the shared limiter by the action's row and
//! decides what a limiter outage means for it.
use std::sync::Arc;

use vestnik_core::rate_limits::{Action, Counted, RateTable, WhenUnavailable};

use crate::{Decision, RateLimiter};

/// Why an action was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Its bucket is empty; try again after this long.
    #[error("rate limited; retry in {retry_after_ms} ms")]
    Limited {
        /// Milliseconds until a token is available.
        retry_after_ms: u64,
    },
    /// The shared limiter cannot be asked and the action fails closed.
    #[error("the rate limiter is unavailable")]
    Unavailable,
}

/// Every limited action's bucket, as [`RateTable`] says.
pub struct Limits {
    table: RateTable,
    shared: Arc<dyn RateLimiter>,
    local: Arc<dyn RateLimiter>,
}

impl Limits {
    /// `shared` counts across nodes (Redis when configured), `local` on this node.
    pub fn new(
        table: RateTable,
        shared: Arc<dyn RateLimiter>,
        local: Arc<dyn RateLimiter>,
    ) -> Self {
        Self {
            table,
            shared,
            local,
        }
    }

    /// The rates in force.
    pub fn table(&self) -> &RateTable {
        &self.table
    }

    /// Spends one token of `action` for `subject` (a device, user or
    /// address id; the action's name is prepended).
    pub async fn check(&self, action: Action, subject: &str) -> Result<(), LimitError> {
        let spec = action.spec();
        let limiter = match spec.counted {
            Counted::PerNode => &self.local,
            Counted::Cluster => &self.shared,
        };
        let key = format!("{}:{subject}", spec.name);
        match limiter.check(&key, self.table.rate(action)).await {
            Ok(Decision::Allowed) => Ok(()),
            Ok(Decision::Limited { retry_after_ms }) => {
                metrics::counter!("vestnik_rate_limited_total", "action" => spec.name).increment(1);
                Err(LimitError::Limited { retry_after_ms })
            }
            Err(e) => match spec.when_unavailable {
                WhenUnavailable::FailOpen => {
                    tracing::warn!(error = %e, action = spec.name, "rate limiter unavailable; letting it through");
                    Ok(())
                }
                WhenUnavailable::FailClosed => {
                    tracing::warn!(error = %e, action = spec.name, "rate limiter unavailable; refusing");
                    Err(LimitError::Unavailable)
                }
            },
        }
    }
}
