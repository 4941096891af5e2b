//! The dashboard's building blocks, so every page looks and behaves the same.
pub mod chart;
pub mod copy;
pub mod dialog;
pub mod events;
pub mod feedback;
pub mod form;
pub mod gpu;
pub mod layout;
pub mod origin;
pub mod poll;
pub mod route;
pub mod time;
pub mod timeline;
