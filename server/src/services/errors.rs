use crate::store::StoreError;
use app::error::AppError;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AppError::conflict(m),
            StoreError::NotFound => AppError::not_found("no such record"),
            StoreError::Db(sqlx::Error::PoolTimedOut) | StoreError::Db(sqlx::Error::Io(_)) => {
                tracing::error!(error = %e, "database unavailable");
                AppError::unavailable("the database is not reachable; try again shortly")
            }
            other => {
                // Details stay in the log; the caller gets a stable message.
                tracing::error!(error = %other, "store error");
                AppError::internal("internal error (see server log)")
            }
        }
    }
}
