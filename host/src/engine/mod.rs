//! The engine: turns validated requests into durable operations and drives them through app-server.

pub mod request;
pub mod rules;
