//! The one mapping from store errors to gRPC answers, shared by the agent
//! and admin services, the report and the dashboard.
//!
//! What a caller can act on keeps its own code (a spent token is
//! PERMISSION_DENIED, a full disk UNAVAILABLE so clients retry); anything
//! else is INTERNAL with a fixed message: the store's own text (SQL, paths)
//! goes to the log, never to the caller.

use tonic::Status;

use crate::store::StoreError;

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        match error {
            StoreError::TokenUnknown
            | StoreError::TokenExpired
            | StoreError::TokenUsedUp
            | StoreError::TokenRevoked => Status::permission_denied(error.to_string()),
            StoreError::NotFound(what) => Status::not_found(what),
            StoreError::Unavailable(_) | StoreError::Conflict(_) => {
                tracing::warn!(%error, "store call refused");
                Status::unavailable(error.to_string())
            }
            StoreError::Other(_) => internal(error),
        }
    }
}

/// What an agent reads when the store failed on its behalf: the code it
/// acts on (UNAVAILABLE: back off and re-send) and a fixed text. Agents are
/// the least trusted callers, so not even an outage's reason (a path, a
/// database host) reaches them; it goes to the log and `/health` instead.
pub fn for_agent(error: &StoreError, doing: &'static str) -> Status {
    match error {
        StoreError::TokenUnknown | StoreError::TokenExpired | StoreError::TokenUsedUp | StoreError::TokenRevoked => {
            Status::permission_denied(error.to_string())
        }
        StoreError::NotFound(_) => Status::permission_denied("unknown or revoked agent"),
        StoreError::Unavailable(_) | StoreError::Conflict(_) => {
            tracing::warn!(%error, doing, "store call refused for an agent");
            Status::unavailable(format!("the coordinator cannot {doing} right now; retry later"))
        }
        StoreError::Other(_) => {
            tracing::error!(%error, doing, "store call failed for an agent");
            Status::internal(format!("the coordinator could not {doing}"))
        }
    }
}

/// INTERNAL for a failure the caller cannot act on: logged here, with its
/// text, and answered without it.
pub fn internal(error: impl std::fmt::Display) -> Status {
    tracing::error!(%error, "call failed");
    Status::internal("internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_answers_carry_no_store_text() {
        let status = Status::from(StoreError::Other(
            "near \"SELEC\": syntax error in SELEC * FROM agents".into(),
        ));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("SELEC"), "{}", status.message());
    }

    #[test]
    fn agents_never_read_store_text() {
        for error in [
            StoreError::Unavailable("disk full at /var/lib/rollcall/rollcall.db".into()),
            StoreError::Conflict("deadlock detected on db.internal:5432".into()),
            StoreError::Other("Invalid column type Real at index: 14, name: dropped_reports".into()),
            StoreError::NotFound("agent a1 in table agents".into()),
        ] {
            let status = for_agent(&error, "store reports");
            for secret in ["/var/lib", "db.internal", "dropped_reports", "table agents"] {
                assert!(!status.message().contains(secret), "{}", status.message());
            }
        }
        assert_eq!(
            for_agent(&StoreError::Unavailable("x".into()), "store reports").code(),
            tonic::Code::Unavailable
        );
    }

    #[test]
    fn each_kind_keeps_its_code() {
        let cases = [
            (StoreError::TokenUnknown, tonic::Code::PermissionDenied),
            (StoreError::TokenExpired, tonic::Code::PermissionDenied),
            (StoreError::TokenUsedUp, tonic::Code::PermissionDenied),
            (StoreError::TokenRevoked, tonic::Code::PermissionDenied),
            (StoreError::NotFound("agent a1".into()), tonic::Code::NotFound),
            (StoreError::Unavailable("disk full".into()), tonic::Code::Unavailable),
            (StoreError::Conflict("deadlock".into()), tonic::Code::Unavailable),
            (StoreError::Other("x".into()), tonic::Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error.clone()).code(), code, "{error}");
        }
    }
}
