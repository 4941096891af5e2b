//! The `hmas` server: axum wiring, store, auth, metrics. The binary is a thin CLI over `run`.
pub mod agent;
pub mod auth;
pub mod changes;
pub mod config;
pub mod gateway;
pub mod http;
pub mod hub;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod secrets;
pub mod serve;
pub mod services;
pub mod sim;
pub mod store;
