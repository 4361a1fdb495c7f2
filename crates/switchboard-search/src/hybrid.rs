//! Hybrid ranking: lexical (BM25F) and semantic (embedding cosine) result lists combined by
//! weighted reciprocal-rank fusion. A tool's fused score is the sum over the lists it appears
//! in of `weight / (k + rank)` (rank from 1), so a tool near the top of either list rises,
//! and one found by both rises most. Ranks, not raw scores, are combined: BM25 scores are
//! unbounded and cosines are not, and ranks need no calibration between them.

use std::collections::HashMap;

use crate::Hit;

/// Fusion parameters.
#[derive(Clone, Copy, Debug)]
pub struct Fusion {
    /// The rank offset: larger flattens the contribution of the top ranks.
    pub k: f32,
    pub lexical: f32,
    pub semantic: f32,
    /// How many results of each list take part.
    pub depth: usize,
}

impl Fusion {
    /// Tuned on the tuning split of the BFCL benchmark (`search-bench --tune`), nothing else:
    /// the lexical list weighs 1.5 times the semantic one, and a small `k` lets the top
    /// ranks of either list count.
    pub const TUNED: Fusion = Fusion {
        k: 20.0,
        lexical: 1.5,
        semantic: 1.0,
        depth: 100,
    };
}

/// The `limit` best tools of the fused lists, best first; equal scores keep the lower
/// document first. `score` is the fused score.
pub fn fuse(lexical: &[Hit], semantic: &[Hit], f: Fusion, limit: usize) -> Vec<Hit> {
    let mut scores: HashMap<usize, f32> = HashMap::new();
    for (list, w) in [(lexical, f.lexical), (semantic, f.semantic)] {
        for (rank, hit) in list.iter().take(f.depth).enumerate() {
            *scores.entry(hit.doc).or_insert(0.0) += w / (f.k + rank as f32 + 1.0);
        }
    }
    let mut hits: Vec<Hit> = scores
        .into_iter()
        .map(|(doc, score)| Hit { doc, score })
        .collect();
    hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(docs: &[usize]) -> Vec<Hit> {
        docs.iter().map(|&doc| Hit { doc, score: 1.0 }).collect()
    }

    #[test]
    fn a_tool_found_by_both_rankers_beats_one_found_by_either() {
        let fused = fuse(&hits(&[1, 2, 3]), &hits(&[4, 2, 5]), Fusion::TUNED, 10);
        assert_eq!(fused[0].doc, 2);
        assert_eq!(fused.len(), 5);
    }

    #[test]
    fn with_one_list_empty_the_other_keeps_its_order() {
        let fused = fuse(&[], &hits(&[7, 3, 9]), Fusion::TUNED, 2);
        assert_eq!(fused.iter().map(|h| h.doc).collect::<Vec<_>>(), [7, 3]);
    }
}
