//! Tool search for the `$smart` endpoints: text analysis (`text`), an in-process BM25F
//! index over tool definitions (`index`), optional sentence embeddings from a local model
//! (`embed`), the fusion of both rankings (`hybrid`) and a prior from past calls (`usage`). No network: the hub builds an index
//! from its merged catalog and answers `search_tools` from memory (the only file read is a
//! model directory, by `embed::Model::load`).

pub mod bfcl;
pub mod embed;
pub mod hybrid;
pub mod index;
pub mod text;
pub mod usage;

pub use index::{FIELDS, Field, Hit, Index, Params, ToolText};
pub use text::Analyzer;
