//! The BFCL v4 retrieval benchmark's data and metrics, shared by `search-bench` (the
//! benchmark) and the quality test (`tests/bfcl_quality.rs`).
//!
//! Data: the function definitions and user questions of four BFCL v4 categories
//! (`simple_python`, `multiple`, `live_simple`, `live_multiple`) from the PyPI package
//! `bfcl-eval` (Apache-2.0), unpacked by `scripts/test-deps.sh`. Every distinct function
//! name becomes one tool of one pool (its first definition: BFCL repeats popular functions
//! such as `get_current_weather` with small variations, as one hub serves one tool per name);
//! every entry's user question is a query, and the tool of the entry's ground-truth function
//! name is its only relevant tool.
//!
//! Split: queries whose position in the pooled list is a multiple of 5 form the tuning split,
//! the only data the ranking parameters were tuned on; the rest are held out.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::{Analyzer, Index};

pub const CATEGORIES: [&str; 4] = ["simple_python", "multiple", "live_simple", "live_multiple"];

/// One user question and the position of its relevant tool in the pool.
pub struct Query {
    pub text: String,
    pub relevant: usize,
}

/// Which queries to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Every fifth query: the only data ranking parameters were tuned on.
    Tuning,
    /// The other four fifths.
    HeldOut,
    All,
}

/// Recall at 1, 5 and 10, and the mean reciprocal rank (0 beyond rank 10).
#[derive(Clone, Copy, Debug)]
pub struct Metrics {
    pub recall: [f64; 3],
    pub mrr: f64,
    pub queries: usize,
}

/// The metrics of `index` over the queries of one split.
pub fn evaluate(index: &Index, analyzer: &Analyzer, queries: &[Query], split: Split) -> Metrics {
    evaluate_by(queries, split, |_, q| {
        index
            .search(analyzer, &q.text, 10, |_| true)
            .into_iter()
            .map(|h| h.doc)
            .collect()
    })
}

/// True when query number `i` belongs to `split`.
pub fn in_split(i: usize, split: Split) -> bool {
    let tuning = i.is_multiple_of(5);
    match split {
        Split::Tuning => tuning,
        Split::HeldOut => !tuning,
        Split::All => true,
    }
}

/// The metrics of any ranker over the queries of one split: `rank(i, query)` returns the
/// tools it ranks for query number `i`, best first (the first 10 count).
pub fn evaluate_by(
    queries: &[Query],
    split: Split,
    mut rank: impl FnMut(usize, &Query) -> Vec<usize>,
) -> Metrics {
    let mut hits_at = [0usize; 3];
    let mut rr = 0f64;
    let mut n = 0usize;
    for (i, q) in queries.iter().enumerate() {
        if !in_split(i, split) {
            continue;
        }
        n += 1;
        let ranked = rank(i, q);
        if let Some(rank) = ranked.iter().take(10).position(|&d| d == q.relevant) {
            for (k, at) in [1, 5, 10].into_iter().enumerate() {
                if rank < at {
                    hits_at[k] += 1;
                }
            }
            rr += 1.0 / (rank + 1) as f64;
        }
    }
    let d = n.max(1) as f64;
    Metrics {
        recall: hits_at.map(|h| h as f64 / d),
        mrr: rr / d,
        queries: n,
    }
}

/// Calls per tool (by position in the pool) if each question `pick` accepts (by number) had
/// been answered by a call of its relevant tool: the history the usage prior
/// (`crate::usage`) is measured with. The benchmark takes the tuning split's questions;
/// tuning the prior's weight took one half of that split, scored on the other.
pub fn history(queries: &[Query], tools: usize, pick: impl Fn(usize) -> bool) -> Vec<u32> {
    let mut calls = vec![0u32; tools];
    for (i, q) in queries.iter().enumerate() {
        if pick(i)
            && let Some(c) = calls.get_mut(q.relevant)
        {
            *c += 1;
        }
    }
    calls
}

/// The prior (`crate::usage::prior`) of every tool of a [`history`].
pub fn priors(history: &[u32]) -> Vec<f32> {
    let max = f64::from(history.iter().copied().max().unwrap_or(0));
    let total = history.iter().map(|&c| f64::from(c)).sum();
    history
        .iter()
        .map(|&c| crate::usage::prior(f64::from(c), max, total))
        .collect()
}

/// The metrics of lexical search on held-out questions, reordered by the usage prior with
/// the tuning split's calls as history, as the hub searches without vectors: the best
/// `usage::LEXICAL_DEPTH` hits, scored over the best one, plus the prior.
pub fn evaluate_lexical_with_history(
    index: &Index,
    analyzer: &Analyzer,
    tools: usize,
    queries: &[Query],
) -> Metrics {
    use crate::usage;
    let prior = priors(&history(queries, tools, |i| in_split(i, Split::Tuning)));
    evaluate_by(queries, Split::HeldOut, |_, q| {
        let hits = index.search(analyzer, &q.text, usage::LEXICAL_DEPTH, |_| true);
        usage::rerank_lexical(&hits, usage::LEXICAL, 10, |d| prior[d])
            .into_iter()
            .map(|h| h.doc)
            .collect()
    })
}

/// The pooled tools: (name, definition).
pub type Tools = Vec<(String, Value)>;

/// The pooled tools (name, definition) and the queries of the four categories.
pub fn load(dir: &Path) -> Result<(Tools, Vec<Query>), String> {
    let mut tools: Vec<(String, Value)> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut queries = Vec::new();
    for cat in CATEGORIES {
        let qpath = dir.join(format!("BFCL_v4_{cat}.json"));
        let apath = dir
            .join("possible_answer")
            .join(format!("BFCL_v4_{cat}.json"));
        let answers: HashMap<String, String> = lines(&apath)?
            .into_iter()
            .filter_map(|a| {
                let id = a.get("id")?.as_str()?.to_owned();
                let name = a
                    .pointer("/ground_truth/0")?
                    .as_object()?
                    .keys()
                    .next()?
                    .clone();
                Some((id, name))
            })
            .collect();
        for entry in lines(&qpath)? {
            let Some(id) = entry.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some(answer) = answers.get(id) else {
                continue;
            };
            let Some(functions) = entry.get("function").and_then(Value::as_array) else {
                continue;
            };
            let mut relevant = None;
            for f in functions {
                let Some(name) = f.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let key = name.to_owned();
                let n = tools.len();
                let idx = *ids.entry(key).or_insert_with(|| {
                    let mut def = f.clone();
                    if let Some(p) = def.as_object_mut().and_then(|o| o.remove("parameters")) {
                        def["inputSchema"] = p;
                    }
                    tools.push((name.to_owned(), def));
                    n
                });
                if name == answer {
                    relevant = Some(idx);
                }
            }
            let question = entry
                .pointer("/question/0")
                .and_then(Value::as_array)
                .and_then(|turns| {
                    turns
                        .iter()
                        .rev()
                        .find(|t| t.get("role").and_then(Value::as_str) == Some("user"))
                })
                .and_then(|t| t.get("content"))
                .and_then(Value::as_str);
            if let (Some(relevant), Some(text)) = (relevant, question) {
                queries.push(Query {
                    text: text.to_owned(),
                    relevant,
                });
            }
        }
    }
    if queries.is_empty() {
        return Err(format!("no BFCL queries found under {}", dir.display()));
    }
    Ok((tools, queries))
}

/// One JSON value per line.
fn lines(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}
