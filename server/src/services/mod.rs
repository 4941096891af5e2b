//! Where H-MAS's rules meet the store (and, later, the hub). Implements `app::services`.
pub mod clusters;
pub mod deployments;
pub mod errors;
pub mod gateway;
pub mod members;
pub mod policies;
pub mod users;
