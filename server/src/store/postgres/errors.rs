//! PostgreSQL errors as [`StoreError`]s: what a caller may retry
//! (`Unavailable`, `Conflict`) told apart from the rest, described without
//! the connection string.

use std::error::Error as _;

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

pub(super) fn map_err(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let unavailable = [
            SqlState::DISK_FULL,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::OUT_OF_MEMORY,
        ];
        if unavailable.contains(code) {
            return StoreError::Unavailable(describe(&error));
        }
        if [SqlState::T_R_DEADLOCK_DETECTED, SqlState::T_R_SERIALIZATION_FAILURE].contains(code) {
            return StoreError::Conflict(describe(&error));
        }
        return StoreError::Other(describe(&error));
    }
    // Not an answer from the server: the connection failed or closed.
    let io = error
        .source()
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
    if error.is_closed() || io {
        return StoreError::Unavailable(describe(&error));
    }
    StoreError::Other(describe(&error))
}
