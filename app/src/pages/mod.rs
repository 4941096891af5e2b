pub mod cluster_detail;
pub mod clusters;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod placeholder;
pub mod shell;
pub mod users;
