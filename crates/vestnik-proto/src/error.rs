//! The error body: one shape for every refused request.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The one error shape every endpoint answers with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code for programs.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds to wait before retrying (also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Present with `proof_of_work_required`: solve it and resend the request with `pow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pow: Option<crate::PowChallenge>,
    /// Present with `device_list_stale`: the devices to encrypt for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<crate::PublicDevice>>,
}
