//! Who is calling: passwords, session tokens and cookies, the one auth layer every route passes
//! through, and the first admin.
pub mod layer;
pub mod password;
pub mod service;
pub mod throttle;
pub mod token;
pub mod tokens;

pub use service::AuthServiceImpl;

pub const SESSION_COOKIE: &str = "hmas_session";
