//! H-MAS's own models, shared by the dashboard and the server. Validation lives here once.
pub mod apikey;
pub mod cluster;
pub mod deployment;
pub mod policy;
pub mod runtime;
pub mod token;
pub mod user;
pub mod validate;
