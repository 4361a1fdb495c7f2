//! Sentence embeddings for semantic tool search, computed in-process on CPU from a local
//! BERT-family model directory (`config.json`, `tokenizer.json`, `model.safetensors`, e.g.
//! all-MiniLM-L6-v2): no Python, no ONNX Runtime, nothing fetched.
//!
//! `safetensors` reads the weights, `tokenizer` is BERT's WordPiece from `tokenizer.json`,
//! `bert` runs the encoder with `gemm` (pure-Rust sgemm) or, for short inputs such as queries,
//! `dot` (row dot products), and `Model` ties them together.
//! `VectorIndex` holds one unit vector per tool and answers nearest-neighbour queries by a
//! full scan (5,000 × 384 dot products take well under a millisecond).

pub mod bert;
pub mod dot;
pub mod gemm;
pub mod safetensors;
pub mod tokenizer;

use std::path::Path;

pub use bert::{Bert, Config, Kernel};
pub use tokenizer::Tokenizer;

use crate::Hit;

/// Longest token sequence embedded for a tool definition, and for a query.
pub const MAX_TOOL_TOKENS: usize = 256;
pub const MAX_QUERY_TOKENS: usize = 128;

/// A loaded sentence-embedding model.
pub struct Model {
    id: String,
    tokenizer: Tokenizer,
    bert: Bert,
}

impl Model {
    /// Loads the model in `dir`. Errors name the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<Model, String> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))
        };
        let config_text = String::from_utf8(read("config.json")?)
            .map_err(|_| "config.json is not UTF-8".to_owned())?;
        let cfg = Config::from_json(&config_text)?;
        let tokenizer = Tokenizer::from_json(
            &String::from_utf8(read("tokenizer.json")?)
                .map_err(|_| "tokenizer.json is not UTF-8".to_owned())?,
        )?;
        let weights = read("model.safetensors")?;
        // The id names the weights: a change of model (or of its file) is a new id, so
        // cached embeddings of another model are never reused.
        let id = format!(
            "local:{}:{:016x}",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            fnv64(&weights[..weights.len().min(1 << 20)]) ^ weights.len() as u64
        );
        let tensors =
            safetensors::parse(&weights).map_err(|e| format!("model.safetensors: {e}"))?;
        drop(weights);
        let bert = Bert::new(cfg, tensors)?;
        Ok(Model {
            id,
            tokenizer,
            bert,
        })
    }

    /// Names the model and its weights, for cache keys.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dims(&self) -> usize {
        self.bert.config().hidden
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The unit-length embedding of `text`, read as at most `max_tokens` tokens.
    pub fn embed(&self, text: &str, max_tokens: usize) -> Vec<f32> {
        self.embed_with(text, max_tokens, Kernel::Auto)
    }

    /// `embed` on the multiply `kernel` names (`Kernel::Sgemm` is the reference path).
    pub fn embed_with(&self, text: &str, max_tokens: usize, kernel: Kernel) -> Vec<f32> {
        let max = max_tokens.min(self.bert.config().max_positions);
        self.bert
            .embed_with(&self.tokenizer.encode(text, max), kernel)
    }
}

/// FNV-1a, 64 bits.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The text of a tool definition that is embedded: its name split into words as the lexical
/// index splits it (at `_`, `-`, `.`, case changes and digits: `listPullRequests` → `list
/// Pull Requests`, which WordPiece reads as three known words rather than one rare one),
/// its title and description, and its parameters' names and descriptions.
///
/// The vector cache is keyed by a hash of this text (and the model), so a change here
/// re-embeds every tool once and never serves a vector of the old text.
pub fn tool_text(t: &crate::ToolText) -> String {
    use crate::Field;
    let name = crate::text::words(&t.fields[Field::Name as usize]).join(" ");
    let mut s = String::with_capacity(256);
    s.push_str(&name);
    for f in [Field::Title, Field::Description, Field::Params] {
        let text = t.fields[f as usize].trim();
        if !text.is_empty() {
            s.push_str(". ");
            s.push_str(text);
        }
    }
    s
}

/// One unit vector per document (or none yet), scanned in full for a query.
#[derive(Clone, Default)]
pub struct VectorIndex {
    dims: usize,
    vectors: Vec<Option<Box<[f32]>>>,
}

impl VectorIndex {
    pub fn new(dims: usize, docs: usize) -> VectorIndex {
        VectorIndex {
            dims,
            vectors: vec![None; docs],
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Sets document `doc`'s vector (ignored if its length is not `dims`).
    pub fn set(&mut self, doc: usize, v: Vec<f32>) {
        if v.len() == self.dims
            && let Some(slot) = self.vectors.get_mut(doc)
        {
            *slot = Some(v.into_boxed_slice());
        }
    }

    /// Document `doc`'s vector, if it has one.
    pub fn get(&self, doc: usize) -> Option<&[f32]> {
        self.vectors.get(doc).and_then(Option::as_deref)
    }

    pub fn has(&self, doc: usize) -> bool {
        self.vectors.get(doc).is_some_and(Option::is_some)
    }

    /// How many documents have a vector.
    pub fn ready(&self) -> usize {
        self.vectors.iter().filter(|v| v.is_some()).count()
    }

    /// The `limit` documents most similar (cosine) to `query` among those with a vector that
    /// `allow` accepts, best first.
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        mut allow: impl FnMut(usize) -> bool,
    ) -> Vec<Hit> {
        if query.len() != self.dims || limit == 0 {
            return Vec::new();
        }
        let mut hits: Vec<Hit> = self
            .vectors
            .iter()
            .enumerate()
            .filter_map(|(doc, v)| {
                let v = v.as_deref()?;
                allow(doc).then(|| Hit {
                    doc,
                    score: v.iter().zip(query).map(|(a, b)| a * b).sum(),
                })
            })
            .collect();
        let by_rank = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, by_rank);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(by_rank);
        hits
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_embedded_text_splits_the_name_into_words() {
        let t = crate::ToolText::from_tool(
            "gh",
            "listPullRequests_v2",
            &json!({"description": "Lists pull requests.",
                    "inputSchema": {"type": "object", "properties": {
                        "repo": {"type": "string", "description": "owner/name"}}}}),
        );
        assert_eq!(
            tool_text(&t),
            "list Pull Requests v 2. Lists pull requests.. repo owner/name"
        );
    }
}
