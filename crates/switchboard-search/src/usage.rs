//! Usage prior: among tools that match a query about equally well, the ones a tenant calls
//! more often rank higher.
//!
//! A tool's prior is `ln(1 + 10 · calls / most) / ln 11`, where `most` is the call count of
//! the tenant's most called tool: 0 for a tool never called, 1 for the most called one, and
//! free of scale (only shares count: a hub that has routed a million calls ranks as one that
//! has routed a hundred in the same proportions). Until [`CONFIDENT_AFTER`] calls have been
//! counted in all, the prior is scaled down in proportion, so that a handful of calls can
//! settle a tie but not outweigh a clearly better match.
//!
//! The prior, times a weight, is added to the fused score of a hybrid search
//! ([`crate::hybrid::Fusion::usage`]) or to the BM25F score divided by the best one in a
//! lexical search ([`LEXICAL`]). It only reorders tools the rankers already found (the top
//! `depth` of either list): a popular tool that shares nothing with the query is never
//! returned because of its calls.
//!
//! On BFCL (`search-bench --tune`), with the calls of the tuning split's questions as the
//! history, the weights were chosen by cross-fitting on that split alone: history from one
//! half, scored on the other, both ways round.

use std::collections::HashMap;

use crate::Hit;

/// Weight of the prior next to a lexical hit's BM25F score divided by the best hit's.
pub const LEXICAL: f32 = 0.3;

/// How many lexical results take part when the prior reorders a lexical search.
pub const LEXICAL_DEPTH: usize = 100;

/// Calls counted in all from which the prior has its full weight.
pub const CONFIDENT_AFTER: u64 = 100;

/// How strongly the prior separates rare from frequent tools: the share of the most
/// called tool's calls is scaled by this before the logarithm.
pub const SHARE_SCALE: f32 = 10.0;

/// The prior of a tool called `calls` times when the most called tool has `max` calls and
/// `total` calls were counted in all.
pub fn prior(calls: u32, max: u32, total: u64) -> f32 {
    if calls == 0 || max == 0 {
        return 0.0;
    }
    let share = calls.min(max) as f32 / max as f32;
    let confidence = (total as f32 / CONFIDENT_AFTER as f32).min(1.0);
    ((SHARE_SCALE * share).ln_1p() / SHARE_SCALE.ln_1p()).clamp(0.0, 1.0) * confidence
}

/// Calls per tool, by name: what the prior is computed from.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    calls: HashMap<Box<str>, u32>,
    max: u32,
    total: u64,
}

impl Counts {
    /// Most distinct names kept; calls to further names are not counted.
    pub const MAX_NAMES: usize = 65_536;

    /// Counts one call of `name`.
    pub fn record(&mut self, name: &str) {
        self.add(name, 1);
    }

    /// Adds `calls` calls of `name` at once (a history read back from storage).
    pub fn add(&mut self, name: &str, calls: u32) {
        if calls == 0 {
            return;
        }
        if let Some(n) = self.calls.get_mut(name) {
            *n = n.saturating_add(calls);
            self.max = self.max.max(*n);
        } else if self.calls.len() < Self::MAX_NAMES {
            self.calls.insert(name.into(), calls);
            self.max = self.max.max(calls);
        } else {
            return;
        }
        self.total = self.total.saturating_add(u64::from(calls));
    }

    /// Calls of `name` so far.
    pub fn calls(&self, name: &str) -> u32 {
        self.calls.get(name).copied().unwrap_or(0)
    }

    /// The prior of `name` (see [`prior`]).
    pub fn prior(&self, name: &str) -> f32 {
        prior(self.calls(name), self.max, self.total)
    }

    /// True before any call was counted.
    pub fn is_empty(&self) -> bool {
        self.max == 0
    }

    /// Distinct names counted.
    pub fn len(&self) -> usize {
        self.calls.len()
    }
}

/// A lexical result list (best first) reordered by the prior: each hit's score becomes its
/// BM25F score divided by the best hit's plus `weight` times `prior(doc)`; the `limit` best
/// are returned. Equal scores keep the lower document first.
///
/// Dividing by the best score (rather than stretching the list between its best and last
/// hit) keeps a weak match weak however few tools a catalog has.
pub fn rerank_lexical(
    hits: &[Hit],
    weight: f32,
    limit: usize,
    prior: impl Fn(usize) -> f32,
) -> Vec<Hit> {
    let Some(best) = hits.first() else {
        return Vec::new();
    };
    let best = best.score.max(1e-6);
    let mut out: Vec<Hit> = hits
        .iter()
        .map(|h| Hit {
            doc: h.doc,
            score: (h.score / best).clamp(0.0, 1.0) + weight * prior(h.doc),
        })
        .collect();
    out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_is_zero_for_unused_tools_and_one_for_the_most_used() {
        let all = CONFIDENT_AFTER;
        assert_eq!(prior(0, 0, 0), 0.0);
        assert_eq!(prior(0, 50, all), 0.0);
        assert_eq!(prior(50, 50, all), 1.0);
        let tenth = prior(5, 50, all); // ln 2 / ln 11
        assert!((tenth - 2f32.ln() / 11f32.ln()).abs() < 1e-6, "{tenth}");
        // Scale-free: the same shares give the same prior.
        assert!((prior(5, 50, all) - prior(5_000, 50_000, 1_000_000)).abs() < 1e-6);
        assert!(prior(1, 1_000_000, 1_000_000) > 0.0);
        // Never above 1, even for a count above the recorded maximum.
        assert_eq!(prior(100, 10, all), 1.0);
    }

    #[test]
    fn a_short_history_weighs_in_proportion() {
        assert_eq!(prior(2, 2, 2), 2.0 / CONFIDENT_AFTER as f32);
        assert_eq!(prior(50, 50, CONFIDENT_AFTER / 2), 0.5);
        assert_eq!(prior(50, 50, 10 * CONFIDENT_AFTER), 1.0);
    }

    #[test]
    fn counts_track_the_maximum_and_stop_taking_new_names_when_full() {
        let mut c = Counts::default();
        assert!(c.is_empty());
        c.record("a");
        c.record("a");
        c.record("b");
        assert_eq!((c.calls("a"), c.calls("b"), c.calls("z")), (2, 1, 0));
        assert_eq!(c.prior("a"), 3.0 / CONFIDENT_AFTER as f32);
        assert!(c.prior("b") > 0.0 && c.prior("b") < c.prior("a"));
        c.add("b", CONFIDENT_AFTER as u32);
        assert_eq!(c.prior("b"), 1.0);
        assert!(c.prior("a") < 1.0);

        let mut full = Counts::default();
        for i in 0..Counts::MAX_NAMES {
            full.add(&format!("t{i}"), 1);
        }
        full.record("one-too-many");
        assert_eq!(full.calls("one-too-many"), 0);
        assert_eq!(full.len(), Counts::MAX_NAMES);
        full.record("t0");
        assert_eq!(full.calls("t0"), 2);
    }

    #[test]
    fn the_prior_settles_a_close_lexical_call_but_not_a_clear_one() {
        let hits = [
            Hit {
                doc: 1,
                score: 10.0,
            },
            Hit { doc: 2, score: 9.8 },
            Hit { doc: 3, score: 5.0 },
            Hit { doc: 4, score: 4.0 },
        ];
        let used = |d: usize| if d == 2 || d == 4 { 1.0 } else { 0.0 };
        let order = |v: Vec<Hit>| v.into_iter().map(|h| h.doc).collect::<Vec<_>>();
        assert_eq!(
            order(rerank_lexical(&hits, LEXICAL, 10, used)),
            [2, 1, 4, 3]
        );
        assert_eq!(
            order(rerank_lexical(&hits, LEXICAL, 10, |_| 0.0)),
            [1, 2, 3, 4]
        );
        assert_eq!(order(rerank_lexical(&hits, LEXICAL, 1, used)), [2]);
        assert!(rerank_lexical(&[], LEXICAL, 10, used).is_empty());
        // Fewer hits do not make a weak one stronger: 4 stays below 1 without 2 and 3.
        let two = [hits[0], hits[3]];
        assert_eq!(order(rerank_lexical(&two, LEXICAL, 10, used)), [1, 4]);
    }
}
