//! The runtime's integration tests, one binary with a module per area: one link instead of eight
//! (each of those binaries held its own copy of the runtime, about 600 MB of debug build).

mod a2a;
mod approvals;
mod chat_api;
mod delegation;
mod durability;
mod in_process;
mod knowledge;
mod limits;
mod mcp;
mod observability;
mod qdrant_store;
mod recipes;
mod recipes_cli;
mod secrets;
mod support;
mod tasks;
mod traces;
mod turns;
mod vector_store;
mod wake;
