//! Enrolment tokens: the terms an admin may ask for (uses, lifetime,
//! labels bound to the agents that enrol with it) and minting one. Only
//! the token's hash is stored; the token itself is shown once, to the
//! admin who created it.

use std::collections::BTreeMap;
use std::time::Duration;

use rollcall_common::secret::Secret;

use crate::agent_api::agent_service::hash_token;
use crate::store::traits::EnrolmentStore;
use crate::store::{NewToken, StoreResult};

pub const MAX_TOKEN_USES: u32 = 100_000;
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What an admin asks for; zero means the default.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub uses: u32,
    pub ttl_seconds: u64,
    pub labels: BTreeMap<String, String>,
}

/// Terms that passed the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTerms {
    pub uses: u32,
    pub ttl: Duration,
    pub labels: BTreeMap<String, String>,
}

/// Why a request was refused; the text is what the admin reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("uses must be at most {MAX_TOKEN_USES}")]
    TooManyUses,
    #[error("ttl must be at most 30 days")]
    TtlTooLong,
    #[error("{0}")]
    Labels(String),
}

/// A token just created.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// The token itself, shown once (redacted in `Debug`, zeroized on drop).
    pub token: Secret,
    pub id: String,
    pub uses: u32,
    pub expires_at_ms: i64,
}

/// Applies the defaults (one use, `default_ttl`) and the limits.
pub fn terms(request: TokenRequest, default_ttl: Duration) -> Result<TokenTerms, TokenError> {
    let uses = if request.uses == 0 { 1 } else { request.uses };
    if uses > MAX_TOKEN_USES {
        return Err(TokenError::TooManyUses);
    }
    let ttl = if request.ttl_seconds == 0 {
        default_ttl
    } else {
        Duration::from_secs(request.ttl_seconds)
    };
    if ttl > MAX_TOKEN_TTL {
        return Err(TokenError::TtlTooLong);
    }
    let labels = crate::agents::inbound::ValidLabels::try_from(request.labels)
        .map_err(|refused| TokenError::Labels(refused.0))?
        .into_inner();
    Ok(TokenTerms { uses, ttl, labels })
}

/// A new token and its id: 32 random bytes behind `rct_`, 6 for the id.
fn mint() -> (String, String) {
    let secret: [u8; 32] = rand::random();
    let id: [u8; 6] = rand::random();
    (format!("rct_{}", hex::encode(secret)), hex::encode(id))
}

/// Mints a token on `terms` and stores its hash.
pub async fn create(
    store: &dyn EnrolmentStore,
    terms: TokenTerms,
    created_by: &str,
    now_ms: i64,
) -> StoreResult<CreatedToken> {
    let (token, id) = mint();
    let expires_at_ms = now_ms + i64::try_from(terms.ttl.as_millis()).unwrap_or(i64::MAX / 2);
    store
        .create_token(NewToken {
            id: id.clone(),
            hash: hash_token(&token),
            created_at_ms: now_ms,
            expires_at_ms,
            uses: terms.uses,
            labels: terms.labels,
            created_by: created_by.to_string(),
        })
        .await?;
    Ok(CreatedToken {
        token: Secret::new(token),
        id,
        uses: terms.uses,
        expires_at_ms,
    })
}

#[cfg(test)]
mod tests;
