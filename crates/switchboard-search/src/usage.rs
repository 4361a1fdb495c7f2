//! Usage prior: among tools that match a query about equally well, the ones a tenant calls
//! more often rank higher.
//!
//! A tool's prior is `ln(1 + 10 · calls / most) / ln 11`, where `most` is the call count of
//! the tenant's most called tool: 0 for a tool never called, 1 for the most called one, and
//! free of scale (only shares count: a hub that has routed a million calls ranks as one that
//! has routed a hundred in the same proportions). Until [`CONFIDENT_AFTER`] calls have been
//! counted in all, the prior is scaled down in proportion, so that a handful of calls can
//! settle a tie but not outweigh a clearly better match. Calls fade with a half-life of a
//! week ([`Counts`]), so a tool no longer called gives way.
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
/// `total` calls were counted in all (any unit, as long as it is the same for the three).
pub fn prior(calls: f64, max: f64, total: f64) -> f32 {
    if !(calls > 0.0 && max > 0.0) {
        return 0.0;
    }
    let share = (calls / max).min(1.0) as f32;
    let confidence = (total / CONFIDENT_AFTER as f64).min(1.0) as f32;
    ((SHARE_SCALE * share).ln_1p() / SHARE_SCALE.ln_1p()).clamp(0.0, 1.0) * confidence
}

/// How fast calls are forgotten: a call counts half as much after this many seconds.
pub const HALF_LIFE_SECS: f64 = 7.0 * 86_400.0;

/// Calls per tool, by name, each weighing less the older it is (half after
/// [`HALF_LIFE_SECS`]): what the prior is computed from. A tool that is no longer called
/// fades out of the shares instead of holding the maximum forever.
///
/// Times are seconds on any clock that all callers share (the hub uses Unix time). Decay
/// costs nothing per call: a call at time `t` adds `2^((t - base) / half-life)` and every
/// figure is read relative to the same scale, which is brought back to 1 (and names whose
/// weight has faded to nothing dropped) when it grows past 10^12, about every 280 days.
#[derive(Debug, Clone)]
pub struct Counts {
    weights: HashMap<Box<str>, f64>,
    max: f64,
    total: f64,
    base: f64,
}

impl Counts {
    /// Most distinct names kept; calls to further names are not counted.
    pub const MAX_NAMES: usize = 65_536;

    /// When the scale is brought back to 1.
    const RESCALE_ABOVE: f64 = 1e12;

    /// No calls, on a clock that reads `now`.
    pub fn new(now: f64) -> Counts {
        Counts {
            weights: HashMap::new(),
            max: 0.0,
            total: 0.0,
            base: now,
        }
    }

    /// The weight of a call at `at`.
    fn scale(&self, at: f64) -> f64 {
        ((at - self.base) / HALF_LIFE_SECS).exp2()
    }

    /// Counts one call of `name` at `at`.
    pub fn record(&mut self, name: &str, at: f64) {
        self.add(name, 1.0, at);
    }

    /// Adds `calls` calls of `name` made at `at` (a history read back from storage).
    pub fn add(&mut self, name: &str, calls: f64, at: f64) {
        if !(calls > 0.0 && at.is_finite()) {
            return;
        }
        let mut scale = self.scale(at);
        if scale > Self::RESCALE_ABOVE {
            self.rebase(at);
            scale = 1.0;
        }
        let w = calls * scale;
        if let Some(x) = self.weights.get_mut(name) {
            *x += w;
            self.max = self.max.max(*x);
        } else if self.weights.len() < Self::MAX_NAMES {
            self.weights.insert(name.into(), w);
            self.max = self.max.max(w);
        } else {
            return;
        }
        self.total += w;
    }

    /// Moves the scale's origin to `at`.
    fn rebase(&mut self, at: f64) {
        let f = 1.0 / self.scale(at);
        self.weights.retain(|_, w| {
            *w *= f;
            *w > 1e-9
        });
        self.max *= f;
        self.total *= f;
        self.base = at;
    }

    /// Calls of `name`, decayed to `now`.
    pub fn calls(&self, name: &str, now: f64) -> f64 {
        self.weights.get(name).map_or(0.0, |w| w / self.scale(now))
    }

    /// The prior of `name` at `now` (see [`prior`]).
    pub fn prior(&self, name: &str, now: f64) -> f32 {
        match self.weights.get(name) {
            Some(&w) => prior(w, self.max, self.total / self.scale(now)),
            None => 0.0,
        }
    }

    /// True before any call was counted.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Distinct names counted.
    pub fn len(&self) -> usize {
        self.weights.len()
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
        let all = CONFIDENT_AFTER as f64;
        assert_eq!(prior(0.0, 0.0, 0.0), 0.0);
        assert_eq!(prior(0.0, 50.0, all), 0.0);
        assert_eq!(prior(50.0, 50.0, all), 1.0);
        let tenth = prior(5.0, 50.0, all); // ln 2 / ln 11
        assert!((tenth - 2f32.ln() / 11f32.ln()).abs() < 1e-6, "{tenth}");
        // Scale-free: the same shares give the same prior.
        assert!((prior(5.0, 50.0, all) - prior(5e3, 5e4, 1e6)).abs() < 1e-6);
        assert!(prior(1.0, 1e6, 1e6) > 0.0);
        // Never above 1, even for a count above the recorded maximum.
        assert_eq!(prior(100.0, 10.0, all), 1.0);
        assert_eq!(prior(f64::NAN, 10.0, all), 0.0);
    }

    #[test]
    fn a_short_history_weighs_in_proportion() {
        let all = CONFIDENT_AFTER as f64;
        assert_eq!(prior(2.0, 2.0, 2.0), 2.0 / CONFIDENT_AFTER as f32);
        assert_eq!(prior(50.0, 50.0, all / 2.0), 0.5);
        assert_eq!(prior(50.0, 50.0, 10.0 * all), 1.0);
    }

    #[test]
    fn counts_track_the_maximum_and_stop_taking_new_names_when_full() {
        let t = 1_700_000_000.0;
        let mut c = Counts::new(t);
        assert!(c.is_empty());
        c.record("a", t);
        c.record("a", t);
        c.record("b", t);
        assert_eq!(
            (c.calls("a", t), c.calls("b", t), c.calls("z", t)),
            (2.0, 1.0, 0.0)
        );
        assert_eq!(c.prior("a", t), 3.0 / CONFIDENT_AFTER as f32);
        assert!(c.prior("b", t) > 0.0 && c.prior("b", t) < c.prior("a", t));
        c.add("b", CONFIDENT_AFTER as f64, t);
        assert_eq!(c.prior("b", t), 1.0);
        assert!(c.prior("a", t) < 1.0);
        // Nothing for no calls, a negative count or a time that is not a number.
        c.add("c", 0.0, t);
        c.add("c", -3.0, t);
        c.add("c", 1.0, f64::NAN);
        assert_eq!(c.len(), 2);

        let mut full = Counts::new(t);
        for i in 0..Counts::MAX_NAMES {
            full.add(&format!("t{i}"), 1.0, t);
        }
        full.record("one-too-many", t);
        assert_eq!(full.calls("one-too-many", t), 0.0);
        assert_eq!(full.len(), Counts::MAX_NAMES);
        full.record("t0", t);
        assert_eq!(full.calls("t0", t), 2.0);
    }

    #[test]
    fn calls_fade_with_a_half_life_and_a_tool_no_longer_called_gives_way() {
        let t = 1_700_000_000.0;
        let week = HALF_LIFE_SECS;
        let mut c = Counts::new(t);
        c.add("old", 200.0, t);
        assert!((c.calls("old", t + week) - 100.0).abs() < 1e-9);
        assert!((c.calls("old", t + 3.0 * week) - 25.0).abs() < 1e-9);
        // Three weeks on, 40 calls of "new" outweigh the 200 old ones (25 by then).
        c.add("new", 40.0, t + 3.0 * week);
        let now = t + 3.0 * week;
        assert!(c.prior("new", now) > c.prior("old", now));
        // Confidence follows the decayed total: 65 calls' worth, under 100.
        assert!((c.prior("new", now) - prior(40.0, 40.0, 65.0)).abs() < 1e-6);
        assert!((c.prior("old", now) - prior(25.0, 40.0, 65.0)).abs() < 1e-6);
        // Far ahead the scale is brought back to 1: shares are kept and faded names dropped.
        let later = t + 300.0 * week;
        c.record("new", later);
        assert_eq!(c.len(), 1);
        assert!((c.calls("new", later) - 1.0).abs() < 1e-9);
        assert_eq!(c.prior("new", later), 1.0 / CONFIDENT_AFTER as f32);
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
