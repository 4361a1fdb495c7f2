//! Tool search for the `$smart` endpoints: text analysis (`text`) and an in-process BM25F
//! index over tool definitions (`index`). No IO and no network: the hub builds an index
//! from its merged catalog and answers `search_tools` from memory.

pub mod bfcl;
pub mod index;
pub mod text;

pub use index::{FIELDS, Field, Hit, Index, Params, ToolText};
pub use text::Analyzer;
