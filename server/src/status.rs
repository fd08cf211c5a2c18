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
