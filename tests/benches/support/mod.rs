//! Parts of the runtime-overhead benchmark: the fast upstream, the load generator, the targets run
//! as processes (the runtime, traced and not, and its peers, LiteLLM and Portkey), the OTLP sink
//! of the traced runtime, and the report.

pub mod litellm;
pub mod load;
pub mod otlp_sink;
pub mod portkey;
pub mod process;
pub mod report;
pub mod runtime;
pub mod upstream;
