//! The agent as an A2A server: its tasks ([`tasks`]) on the same turn as the chat API, and
//! the wire objects of protocol 1.0 and their 0.3 shapes ([`model`]). The JSON-RPC binding and
//! the agent card are at the HTTP edge (`http::a2a`).

pub mod model;
pub mod tasks;

pub use self::tasks::{A2aError, A2aTasks};
