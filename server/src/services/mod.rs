//! Where H-MAS's rules meet the store (and, later, the hub). Implements `app::services`.
pub mod errors;
pub mod users;
