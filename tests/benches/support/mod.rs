//! Parts of the runtime-overhead benchmark: the fast upstream, the load generator, the targets run
//! as processes, and the report.

pub mod litellm;
pub mod load;
pub mod process;
pub mod report;
pub mod runtime;
pub mod upstream;
