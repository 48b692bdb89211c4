//! The wire objects of A2A protocol 1.0 and their 0.3 shapes ([`model`]). A2A tasks are the
//! agent's tasks ([`crate::tasks`]); the JSON-RPC binding and the agent card are at the HTTP
//! edge (`http::a2a`).

pub mod model;
