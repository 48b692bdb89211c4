//! Parts of the vector search benchmark: the synthetic data, the embedded store's side, the
//! Chroma peer, the ingest comparison and the report.

pub mod chroma;
pub mod data;
pub mod edge;
pub mod ingest;
pub mod report;
