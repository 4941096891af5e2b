//! Where H-MAS's rules meet the store: requests validated, rows written, changes handed to the
//! reconcilers (`crate::reconcile`). Implements `app::services`.
pub mod clusters;
pub mod deployments;
pub mod errors;
pub mod gateway;
pub mod policies;
pub mod users;
