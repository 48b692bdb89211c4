//! Parts of the runtime-overhead benchmark: the fast upstream, the load generator, the targets run
//! as processes (the runtime and its peers, LiteLLM and Portkey), and the report.

pub mod litellm;
pub mod load;
pub mod portkey;
pub mod process;
pub mod report;
pub mod runtime;
pub mod upstream;
