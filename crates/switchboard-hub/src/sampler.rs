//! Head sampling for traces: which requests get recorded and exported, decided once when a
//! request's SERVER span starts. The samplers are the OpenTelemetry SDK's (`always_on`,
//! `always_off`, `traceidratio` and their `parentbased_*` forms), configured by the standard
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` variables or by `--trace-sample-ratio`.
//!
//! The ratio rule is the spec's TraceIdRatioBased in its W3C trace-context level 2 form: the
//! low 56 bits of the trace id are its randomness, and a trace is sampled when they are at
//! least the threshold (1 - ratio) x 2^56. It depends on the trace id alone, so every hop that
//! applies the same ratio makes the same decision. A parent-based sampler follows a remote
//! parent's sampled flag when the request has one and uses its root rule otherwise.
//!
//! An unsampled request still carries its context (with the sampled flag `00`) to upstreams;
//! it is only not recorded.

use std::fmt;

/// Bits of a trace id that W3C trace context level 2 defines as random (the low 56).
const RANDOM_BITS: u32 = 56;

/// 2^56: one more than the largest randomness value.
const RANDOM_SPAN: u64 = 1 << RANDOM_BITS;

/// The samplers `OTEL_TRACES_SAMPLER` may name here.
const SUPPORTED: &str = "always_on, always_off, traceidratio, parentbased_always_on, \
                         parentbased_always_off, parentbased_traceidratio";

/// What decides a trace with no parent (or every trace, when not parent-based).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Root {
    On,
    Off,
    /// Sampled when the trace id's randomness is at least `threshold`.
    Ratio {
        ratio: f64,
        threshold: u64,
    },
}

/// A head sampler. The default is `parentbased_always_on`, the SDK's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    root: Root,
    parent_based: bool,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            root: Root::On,
            parent_based: true,
        }
    }
}

impl Sampler {
    /// `always_on`.
    pub fn always_on() -> Sampler {
        Sampler {
            root: Root::On,
            parent_based: false,
        }
    }

    /// `always_off`.
    pub fn always_off() -> Sampler {
        Sampler {
            root: Root::Off,
            parent_based: false,
        }
    }

    /// `traceidratio` with `ratio` (clamped to [0, 1]).
    pub fn ratio(ratio: f64) -> Sampler {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        Sampler {
            root: Root::Ratio {
                ratio,
                threshold: threshold(ratio),
            },
            parent_based: false,
        }
    }

    /// The same root rule, but a remote parent's sampled flag decides when there is one.
    pub fn parent_based(self) -> Sampler {
        Sampler {
            parent_based: true,
            ..self
        }
    }

    /// Whether a request in trace `trace_id` is recorded; `parent` is the sampled flag of
    /// the remote parent, if the request continues one.
    pub fn should_sample(&self, trace_id: &[u8; 16], parent: Option<bool>) -> bool {
        if self.parent_based
            && let Some(sampled) = parent
        {
            return sampled;
        }
        match self.root {
            Root::On => true,
            Root::Off => false,
            Root::Ratio { threshold, .. } => randomness(trace_id) >= threshold,
        }
    }

    /// The sampler `switchboard serve` uses: `ratio_flag` (`--trace-sample-ratio`, or its
    /// `SWITCHBOARD_TRACE_SAMPLE_RATIO`) when given, meaning `parentbased_traceidratio`;
    /// else `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` read through `env`; else the
    /// default. Empty values count as unset.
    ///
    /// A flag value that is not a ratio is an error naming the flag and the value: the hub
    /// refuses it rather than guessing. The `OTEL_*` variables are often set for a whole
    /// machine or pod and meant for other programs too, so, as the OpenTelemetry
    /// specification asks of an SDK, a value the hub does not understand is not fatal: the
    /// second element is then a warning naming the variable and the value, and the sampler
    /// is the default (an unknown sampler) or uses ratio 1 (a bad ratio).
    pub fn from_settings(
        ratio_flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Sampler, Option<String>), String> {
        if let Some(flag) = ratio_flag.map(str::trim).filter(|f| !f.is_empty()) {
            let r = parse_ratio(flag).ok_or_else(|| {
                format!(
                    "--trace-sample-ratio (SWITCHBOARD_TRACE_SAMPLE_RATIO): {flag:?} is not a \
                     number from 0 to 1"
                )
            })?;
            return Ok((Sampler::ratio(r).parent_based(), None));
        }
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(name) = get("OTEL_TRACES_SAMPLER") else {
            return Ok((Sampler::default(), None));
        };
        let mut warning = None;
        let mut arg = || match get("OTEL_TRACES_SAMPLER_ARG") {
            None => 1.0,
            Some(a) => parse_ratio(&a).unwrap_or_else(|| {
                warning = Some(format!(
                    "OTEL_TRACES_SAMPLER_ARG: {a:?} is not a number from 0 to 1 (the ratio of \
                     {name}); using 1 (every trace sampled)"
                ));
                1.0
            }),
        };
        let sampler = match name.to_ascii_lowercase().as_str() {
            "always_on" => Sampler::always_on(),
            "always_off" => Sampler::always_off(),
            "traceidratio" => Sampler::ratio(arg()),
            "parentbased_always_on" => Sampler::always_on().parent_based(),
            "parentbased_always_off" => Sampler::always_off().parent_based(),
            "parentbased_traceidratio" => Sampler::ratio(arg()).parent_based(),
            known @ ("jaeger_remote" | "parentbased_jaeger_remote" | "xray") => {
                warning = Some(format!(
                    "OTEL_TRACES_SAMPLER: {known:?} is not supported by switchboard; using \
                     parentbased_always_on (supported: {SUPPORTED})"
                ));
                Sampler::default()
            }
            _ => {
                warning = Some(format!(
                    "OTEL_TRACES_SAMPLER: {name:?} is not a known sampler; using \
                     parentbased_always_on (supported: {SUPPORTED})"
                ));
                Sampler::default()
            }
        };
        Ok((sampler, warning))
    }
}

impl fmt::Display for Sampler {
    /// The sampler's `OTEL_TRACES_SAMPLER` name, with the ratio when it has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parent_based {
            f.write_str("parentbased_")?;
        }
        match self.root {
            Root::On => f.write_str("always_on"),
            Root::Off => f.write_str("always_off"),
            Root::Ratio { ratio, .. } => write!(f, "traceidratio {ratio}"),
        }
    }
}

/// A ratio: a finite number from 0 to 1.
fn parse_ratio(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && (0.0..=1.0).contains(r))
}

/// The randomness values below which a trace is not sampled: (1 - ratio) x 2^56, so ratio 0
/// gives 2^56 (nothing is sampled) and ratio 1 gives 0 (everything is).
fn threshold(ratio: f64) -> u64 {
    if ratio <= 0.0 {
        return RANDOM_SPAN;
    }
    if ratio >= 1.0 {
        return 0;
    }
    let t = ((1.0 - ratio) * RANDOM_SPAN as f64).round();
    (t as u64).min(RANDOM_SPAN)
}

/// The low 56 bits of a trace id, as an integer (the id's last 7 bytes, big-endian).
fn randomness(trace_id: &[u8; 16]) -> u64 {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    u64::from_be_bytes(low) & (RANDOM_SPAN - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace id whose first 9 bytes are `high` and whose randomness is `r`.
    fn id(high: u8, r: u64) -> [u8; 16] {
        let mut id = [high; 16];
        id[9..].copy_from_slice(&r.to_be_bytes()[1..]);
        id
    }

    #[test]
    fn randomness_is_the_low_56_bits() {
        assert_eq!(randomness(&id(0xff, 0)), 0);
        assert_eq!(randomness(&id(0xff, 0x12_3456)), 0x12_3456);
        assert_eq!(randomness(&id(0x00, RANDOM_SPAN - 1)), RANDOM_SPAN - 1);
        let spec = crate::trace::TraceContext::parse(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            None,
        )
        .unwrap();
        assert_eq!(randomness(&spec.trace_id), 0x48_eb21_1c80_319c);
    }

    #[test]
    fn ratio_zero_never_samples_and_ratio_one_always_does() {
        let (never, always) = (Sampler::ratio(0.0), Sampler::ratio(1.0));
        for r in [0, 1, RANDOM_SPAN / 2, RANDOM_SPAN - 1] {
            for high in [0x00, 0xff] {
                assert!(!never.should_sample(&id(high, r), None), "{r:x}");
                assert!(always.should_sample(&id(high, r), None), "{r:x}");
            }
        }
    }

    #[test]
    fn the_threshold_splits_the_randomness_exactly() {
        let half = Sampler::ratio(0.5);
        assert_eq!(threshold(0.5), RANDOM_SPAN / 2);
        assert!(half.should_sample(&id(0, RANDOM_SPAN / 2), None));
        assert!(!half.should_sample(&id(0, RANDOM_SPAN / 2 - 1), None));
        assert_eq!(threshold(0.25), RANDOM_SPAN / 4 * 3);
        assert_eq!(threshold(0.001), 71_985_536_443_890_008);
        // Only the randomness counts: the high bytes never change a decision.
        let tenth = Sampler::ratio(0.1);
        for r in [0, threshold(0.1) - 1, threshold(0.1), RANDOM_SPAN - 1] {
            assert_eq!(
                tenth.should_sample(&id(0x00, r), None),
                tenth.should_sample(&id(0xff, r), None)
            );
        }
    }

    #[test]
    fn a_ratio_samples_about_that_share_of_random_ids_and_keeps_its_decisions() {
        let s = Sampler::ratio(0.25);
        let ids: Vec<[u8; 16]> = (0..20_000).map(|_| crate::trace::new_trace_id()).collect();
        let sampled = ids.iter().filter(|i| s.should_sample(i, None)).count();
        let share = sampled as f64 / ids.len() as f64;
        assert!((0.23..0.27).contains(&share), "{share}");
        for i in &ids[..100] {
            assert_eq!(s.should_sample(i, None), s.should_sample(i, None));
        }
        // A larger ratio samples a superset (the decisions are consistent across ratios).
        let more = Sampler::ratio(0.5);
        assert!(
            ids.iter()
                .all(|i| !s.should_sample(i, None) || more.should_sample(i, None))
        );
    }

    #[test]
    fn parent_based_samplers_follow_the_parent() {
        let any = id(1, 5);
        for root in [
            Sampler::always_on(),
            Sampler::always_off(),
            Sampler::ratio(0.0),
        ] {
            let s = root.parent_based();
            assert!(s.should_sample(&any, Some(true)), "{s}");
            assert!(!s.should_sample(&any, Some(false)), "{s}");
            assert_eq!(s.should_sample(&any, None), root.should_sample(&any, None));
        }
        // Not parent-based: the parent's flag is ignored.
        assert!(!Sampler::always_off().should_sample(&any, Some(true)));
        assert!(Sampler::always_on().should_sample(&any, Some(false)));
        assert!(!Sampler::ratio(0.0).should_sample(&any, Some(true)));
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn settings_pick_the_sampler() {
        let none = env(&[]);
        let chosen = |flag: Option<&str>, e: &dyn Fn(&str) -> Option<String>| {
            let (s, warning) = Sampler::from_settings(flag, e).unwrap();
            assert_eq!(warning, None, "{flag:?}");
            s
        };
        assert_eq!(chosen(None, &none), Sampler::default());
        assert_eq!(Sampler::default().to_string(), "parentbased_always_on");
        let s = chosen(Some("0.25"), &none);
        assert_eq!(s, Sampler::ratio(0.25).parent_based());
        assert_eq!(s.to_string(), "parentbased_traceidratio 0.25");
        for (name, want) in [
            ("always_on", Sampler::always_on()),
            ("ALWAYS_OFF", Sampler::always_off()),
            ("traceidratio", Sampler::ratio(1.0)),
            ("parentbased_always_on", Sampler::default()),
            (
                "parentbased_always_off",
                Sampler::always_off().parent_based(),
            ),
            (
                " parentbased_traceidratio ",
                Sampler::ratio(1.0).parent_based(),
            ),
        ] {
            let got = chosen(None, &|k: &str| {
                (k == "OTEL_TRACES_SAMPLER").then(|| name.to_string())
            });
            assert_eq!(got, want, "{name}");
        }
        let e = env(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ]);
        assert_eq!(chosen(None, &e), Sampler::ratio(0.01));
        // The flag wins over the variables.
        assert_eq!(chosen(Some("1"), &e), Sampler::ratio(1.0).parent_based());
        // The argument only matters to ratio samplers; empty values are unset.
        let e = env(&[
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "x"),
        ]);
        assert_eq!(chosen(Some(""), &e), Sampler::always_on());
        let e = env(&[("OTEL_TRACES_SAMPLER", "")]);
        assert_eq!(chosen(None, &e), Sampler::default());
    }

    #[test]
    fn a_bad_flag_is_refused_and_bad_variables_warn_and_fall_back() {
        for flag in ["1.5", "-0.1", "half", "NaN", "inf"] {
            let err = Sampler::from_settings(Some(flag), env(&[])).unwrap_err();
            assert!(
                err.contains("--trace-sample-ratio") && err.contains(flag),
                "{err}"
            );
        }
        let warned = |pairs: &'static [(&'static str, &'static str)]| {
            let (s, warning) = Sampler::from_settings(None, env(pairs)).unwrap();
            (s, warning.expect("a warning"))
        };
        let (s, w) = warned(&[("OTEL_TRACES_SAMPLER", "sometimes")]);
        assert_eq!(s, Sampler::default());
        assert!(
            w.starts_with("OTEL_TRACES_SAMPLER: \"sometimes\" is not a known sampler"),
            "{w}"
        );
        let (s, w) = warned(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]);
        assert_eq!(s, Sampler::default());
        assert!(w.contains("not supported"), "{w}");
        let (s, w) = warned(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]);
        assert_eq!(s, Sampler::ratio(1.0).parent_based());
        assert!(w.starts_with("OTEL_TRACES_SAMPLER_ARG: \"2\""), "{w}");
        // The flag wins, so the variables are not even read.
        let e = env(&[("OTEL_TRACES_SAMPLER", "sometimes")]);
        assert_eq!(
            Sampler::from_settings(Some("0"), e),
            Ok((Sampler::ratio(0.0).parent_based(), None))
        );
    }
}
