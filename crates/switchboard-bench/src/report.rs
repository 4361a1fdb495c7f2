//! The report: its data model, the targets check, and its three renderings (JSON, Markdown, SVG).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::load::RunStats;

/// One measured configuration: a scenario variant against one target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario id, e.g. `echo`.
    pub scenario: String,
    /// The variant inside the scenario, e.g. `SSE upstream, c=32`.
    pub variant: String,
    /// What was measured: `direct`, `hub`, `mcp-proxy`, ...
    pub target: String,
    /// Virtual clients.
    pub concurrency: usize,
    /// Medians across rounds.
    pub median: RunStats,
    /// Every round, in order.
    pub rounds: Vec<RunStats>,
    /// The row the ratio and deltas compare against (its `target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Throughput relative to the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// p50 minus the baseline's p50, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_delta_us: Option<f64>,
    /// p99 minus the baseline's p99, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_delta_us: Option<f64>,
    /// RSS of the process under test after its runs (median), KiB; none for `direct`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<u64>,
    /// Scenario-specific numbers (e.g. `kib_per_session`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

impl Row {
    /// A row without a baseline.
    pub fn new(
        scenario: &str,
        variant: &str,
        target: &str,
        concurrency: usize,
        rounds: Vec<RunStats>,
    ) -> Row {
        Row {
            scenario: scenario.to_owned(),
            variant: variant.to_owned(),
            target: target.to_owned(),
            concurrency,
            median: RunStats::median_of(&rounds),
            rounds,
            baseline: None,
            ratio: None,
            p50_delta_us: None,
            p99_delta_us: None,
            rss_kib: None,
            extra: BTreeMap::new(),
        }
    }

    /// Sets ratio and deltas against `base`.
    pub fn compare_to(&mut self, base: &Row) {
        self.baseline = Some(base.target.clone());
        if base.median.throughput > 0.0 {
            self.ratio = Some(self.median.throughput / base.median.throughput);
        }
        self.p50_delta_us = Some(self.median.p50_us - base.median.p50_us);
        self.p99_delta_us = Some(self.median.p99_us - base.median.p99_us);
    }
}

/// Whether a scenario ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Measured.
    Ok,
    /// Deliberately not measured (see the note).
    Skipped,
    /// Could not be measured (see the note).
    Failed,
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Short id, as given to `--scenarios`.
    pub id: String,
    /// What it measures.
    pub title: String,
    /// Whether it ran.
    pub status: Status,
    /// Why it was skipped or failed, or how to read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Its measurements.
    pub rows: Vec<Row>,
}

/// One performance target and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// What is checked.
    pub name: String,
    /// The measured value, in `unit`.
    pub value: f64,
    /// The limit, in `unit`.
    pub limit: f64,
    /// `"x"`, `"µs"`, `"MiB"`, `"KiB"`, `"ms"`.
    pub unit: String,
    /// True when met.
    pub pass: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Unix time at the start, seconds.
    pub started_unix: u64,
    /// Build profile of the binaries under test.
    pub profile: String,
    /// CPUs available.
    pub cpus: usize,
    /// Rounds per comparison.
    pub rounds: usize,
    /// Measured seconds per round.
    pub duration_s: f64,
    /// Whether this was a `--smoke` run.
    pub smoke: bool,
    /// `/proc/loadavg` (1, 5, 15 min) at the start and at the end: other work on the machine
    /// skews every number, so a quiet machine shows values well under the CPU count.
    pub loadavg_start: Vec<f64>,
    /// See `loadavg_start`.
    pub loadavg_end: Vec<f64>,
    /// Every scenario, in order.
    pub scenarios: Vec<ScenarioReport>,
    /// The performance targets.
    pub targets: Vec<TargetCheck>,
}

impl Report {
    fn find(&self, scenario: &str, variant_has: &str, target: &str) -> Option<&Row> {
        self.scenarios
            .iter()
            .filter(|s| s.id == scenario)
            .flat_map(|s| &s.rows)
            .find(|r| r.variant.contains(variant_has) && r.target == target)
    }

    /// Evaluates the issue's targets against the rows that exist.
    pub fn check_targets(&mut self) {
        let mut out = Vec::new();
        let mut push = |name: String, value: f64, limit: f64, unit: &str, pass: bool| {
            out.push(TargetCheck {
                name,
                value,
                limit,
                unit: unit.to_owned(),
                pass,
            });
        };
        for mode in ["SSE", "JSON"] {
            if let Some(r) = self.find("echo", &format!("{mode} upstream, c=32"), "hub") {
                let v = r.ratio.unwrap_or(0.0);
                push(
                    format!("echo c=32 ({mode} upstream): hub/direct throughput ≥ 0.6×"),
                    v,
                    0.6,
                    "x",
                    v >= 0.6,
                );
            }
            if let Some(r) = self.find("echo", &format!("{mode} upstream, c=1"), "hub") {
                let d50 = r.p50_delta_us.unwrap_or(f64::INFINITY);
                push(
                    format!("echo c=1 ({mode} upstream): p50 ≤ direct + 60 µs"),
                    d50,
                    60.0,
                    "µs",
                    d50 <= 60.0,
                );
                let d99 = r.p99_delta_us.unwrap_or(f64::INFINITY);
                push(
                    format!("echo c=1 ({mode} upstream): p99 ≤ direct + 1 ms"),
                    d99,
                    1000.0,
                    "µs",
                    d99 <= 1000.0,
                );
            }
        }
        if let Some(r) = self.find("stdio", "c=32", "hub (stdio)") {
            let v = r.ratio.unwrap_or(0.0);
            push(
                "stdio upstream c=32: hub/direct HTTP throughput ≥ 0.5×".into(),
                v,
                0.5,
                "x",
                v >= 0.5,
            );
        }
        if let Some(r) = self.find("connect", "", "hub") {
            let v = r.ratio.unwrap_or(0.0);
            push(
                "initialize handshakes: hub/direct ≥ 0.5×".into(),
                v,
                0.5,
                "x",
                v >= 0.5,
            );
        }
        if let Some(r) = self.find("idle", "", "hub") {
            if let Some(v) = r.extra.get("idle_rss_kib") {
                let mib = v / 1024.0;
                push(
                    "hub idle RSS (one upstream) ≤ 20 MiB".into(),
                    mib,
                    20.0,
                    "MiB",
                    mib <= 20.0,
                );
            }
            if let Some(v) = r.extra.get("kib_per_session") {
                push(
                    "memory per idle session ≤ 30 KiB".into(),
                    *v,
                    30.0,
                    "KiB",
                    *v <= 30.0,
                );
            }
        }
        if let Some(r) = self.find("tools-list", "", "hub") {
            let tools = r.extra.get("tools").copied().unwrap_or(0.0);
            let ms = r.median.p50_us / 1000.0;
            push(
                format!("merged tools/list of {tools} tools: p50 ≤ 5 ms"),
                ms,
                5.0,
                "ms",
                ms <= 5.0,
            );
        }
        self.targets = out;
    }

    /// Problems that fail a `--smoke` run: failed scenarios, errors, rows without requests.
    pub fn smoke_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.scenarios {
            match s.status {
                Status::Skipped => continue,
                Status::Failed => {
                    out.push(format!(
                        "{}: failed: {}",
                        s.id,
                        s.note.as_deref().unwrap_or("")
                    ));
                    continue;
                }
                Status::Ok => {}
            }
            if s.rows.is_empty() {
                out.push(format!("{}: no measurements", s.id));
            }
            for r in &s.rows {
                let what = format!("{} / {} / {}", s.id, r.variant, r.target);
                if r.median.errors > 0 {
                    out.push(format!(
                        "{what}: {} error(s), first: {}",
                        r.median.errors,
                        r.median.first_error.as_deref().unwrap_or("?")
                    ));
                }
                if r.median.requests == 0 {
                    out.push(format!("{what}: zero requests"));
                }
            }
        }
        out
    }

    /// The Markdown rendering: one table of every row, then notes and targets.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## Switchboard benchmark\n");
        let _ = writeln!(md, "`{}`  ", self.command);
        let _ = writeln!(
            md,
            "profile `{}`, {} CPU(s), {} round(s) × {} s per configuration, medians across rounds{}.\n",
            self.profile,
            self.cpus,
            self.rounds,
            fmt_num(self.duration_s),
            if self.smoke {
                " (SMOKE RUN: numbers are not meaningful)"
            } else {
                ""
            }
        );
        let avg = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            md,
            "Load average at start: {}; at end: {}.\n",
            avg(&self.loadavg_start),
            avg(&self.loadavg_end)
        );
        let _ = writeln!(
            md,
            "| scenario | variant | target | conc | req/s | p50 µs | p99 µs | max µs | errors | RSS MiB | ratio | Δp50 µs | Δp99 µs |"
        );
        let _ = writeln!(md, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for s in &self.scenarios {
            if s.status != Status::Ok {
                let _ = writeln!(md, "| {} | — | — | | | | | | | | | | |", s.id);
                continue;
            }
            for r in &s.rows {
                let m = &r.median;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.id,
                    r.variant,
                    r.target,
                    r.concurrency,
                    fmt_num(m.throughput),
                    fmt_num(m.p50_us),
                    fmt_num(m.p99_us),
                    fmt_num(m.max_us),
                    m.errors,
                    r.rss_kib
                        .map(|k| format!("{:.1}", k as f64 / 1024.0))
                        .unwrap_or_default(),
                    r.ratio.map(|x| format!("{x:.2}×")).unwrap_or_default(),
                    r.p50_delta_us.map(signed).unwrap_or_default(),
                    r.p99_delta_us.map(signed).unwrap_or_default(),
                );
            }
        }
        let _ = writeln!(md);
        for s in &self.scenarios {
            let extras: Vec<String> = s
                .rows
                .iter()
                .filter(|r| !r.extra.is_empty())
                .map(|r| {
                    let kv: Vec<String> = r
                        .extra
                        .iter()
                        .map(|(k, v)| format!("{k} = {}", fmt_num(*v)))
                        .collect();
                    format!("{} / {}: {}", r.variant, r.target, kv.join(", "))
                })
                .collect();
            let status = match s.status {
                Status::Ok => String::new(),
                Status::Skipped => " — **skipped**".to_owned(),
                Status::Failed => " — **failed**".to_owned(),
            };
            let _ = writeln!(
                md,
                "- **{}** ({}){status}{}",
                s.id,
                s.title,
                s.note
                    .as_ref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            );
            for e in extras {
                let _ = writeln!(md, "  - {e}");
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(
                md,
                "\n| target | measured | limit | met |\n|---|--:|--:|:-:|"
            );
            for t in &self.targets {
                let _ = writeln!(
                    md,
                    "| {} | {} {} | {} {} | {} |",
                    t.name,
                    fmt_num(t.value),
                    t.unit,
                    fmt_num(t.limit),
                    t.unit,
                    if t.pass { "yes" } else { "**no**" }
                );
            }
        }
        md
    }

    /// A bar chart: per variant, throughput and p50 of each target, each bar scaled within its
    /// variant (so the bars show the ratio; the numbers give the absolute values).
    pub fn svg(&self) -> String {
        const ROW_H: f64 = 18.0;
        const LABEL_W: f64 = 330.0;
        const BAR_W: f64 = 300.0;
        const GAP: f64 = 120.0;
        let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
        for s in self.scenarios.iter().filter(|s| s.status == Status::Ok) {
            for r in &s.rows {
                let key = format!("{} · {}", s.id, r.variant);
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push(r),
                    None => groups.push((key, vec![r])),
                }
            }
        }
        let bars: usize = groups.iter().map(|(_, v)| v.len()).sum();
        let notes: Vec<String> = self
            .scenarios
            .iter()
            .flat_map(|s| &s.rows)
            .filter(|r| r.extra.contains_key("kib_per_session"))
            .map(|r| {
                let x = |k: &str| r.extra.get(k).copied().unwrap_or(0.0);
                format!(
                    "hub memory: {:.1} MiB idle with one upstream; {} KiB per idle session ({} sessions)",
                    x("idle_rss_kib") / 1024.0,
                    fmt_num(x("kib_per_session")),
                    fmt_num(x("sessions_open"))
                )
            })
            .collect();
        let height = 70.0
            + (groups.len() as f64) * 26.0
            + bars as f64 * ROW_H
            + 20.0
            + notes.len() as f64 * 20.0;
        let width = LABEL_W + 2.0 * (BAR_W + GAP) + 20.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="10" y="22" font-size="16" font-weight="bold">Switchboard benchmark ({}{})</text>"#,
            esc(&self.profile),
            if self.smoke { ", smoke run" } else { "" }
        );
        let x_tp = LABEL_W;
        let x_lat = LABEL_W + BAR_W + GAP;
        let _ = writeln!(
            s,
            r#"<text x="{x_tp}" y="48" font-weight="bold">throughput, req/s (longer is better)</text>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{x_lat}" y="48" font-weight="bold">p50 latency, µs (shorter is better)</text>"#
        );
        let mut y = 70.0;
        for (key, rows) in &groups {
            let _ = writeln!(
                s,
                r#"<text x="10" y="{}" font-weight="bold">{}</text>"#,
                y + 12.0,
                esc(key)
            );
            y += 26.0 - ROW_H + 8.0;
            let max_tp = rows
                .iter()
                .map(|r| r.median.throughput)
                .fold(0.0, f64::max)
                .max(1e-9);
            let max_lat = rows
                .iter()
                .map(|r| r.median.p50_us)
                .fold(0.0, f64::max)
                .max(1e-9);
            for r in rows {
                let color = color_of(&r.target);
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    LABEL_W - 8.0,
                    y + 12.0,
                    esc(&r.target)
                );
                let w_tp = (r.median.throughput / max_tp * BAR_W).max(1.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x_tp}" y="{}" width="{w_tp:.1}" height="{}" fill="{color}"/>"#,
                    y + 2.0,
                    ROW_H - 4.0
                );
                let ratio = r.ratio.map(|x| format!(" ({x:.2}×)")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}">{}{}</text>"#,
                    x_tp + w_tp + 4.0,
                    y + 12.0,
                    fmt_num(r.median.throughput),
                    ratio
                );
                let w_lat = (r.median.p50_us / max_lat * BAR_W).max(1.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x_lat}" y="{}" width="{w_lat:.1}" height="{}" fill="{color}"/>"#,
                    y + 2.0,
                    ROW_H - 4.0
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}">{}</text>"#,
                    x_lat + w_lat + 4.0,
                    y + 12.0,
                    fmt_num(r.median.p50_us)
                );
                y += ROW_H;
            }
            y += 8.0;
        }
        for n in notes {
            let _ = writeln!(s, r#"<text x="10" y="{}">{}</text>"#, y + 14.0, esc(&n));
            y += 20.0;
        }
        s.push_str("</svg>\n");
        s
    }
}

fn color_of(target: &str) -> &'static str {
    match target {
        "direct" => "#7f8c8d",
        t if t.starts_with("hub") => "#2e86de",
        t if t.starts_with("mcp-proxy") => "#e67e22",
        t if t.starts_with("fastmcp") => "#8e44ad",
        _ => "#27ae60",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn signed(v: f64) -> String {
    if v >= 0.0 {
        format!("+{}", fmt_num(v))
    } else {
        format!("−{}", fmt_num(-v))
    }
}

/// `/proc/loadavg`'s three averages (empty where unavailable).
pub fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Compact numbers: integers above 100, two significant decimals below.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if v.abs() >= 100.0 || v == v.trunc() {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(tp: f64, p50: f64) -> RunStats {
        RunStats {
            requests: 10,
            throughput: tp,
            p50_us: p50,
            p99_us: p50 * 2.0,
            max_us: p50 * 3.0,
            seconds: 1.0,
            ..Default::default()
        }
    }

    fn report() -> Report {
        let direct = Row::new(
            "echo",
            "SSE upstream, c=32",
            "direct",
            32,
            vec![stats(1000.0, 100.0)],
        );
        let mut hub = Row::new(
            "echo",
            "SSE upstream, c=32",
            "hub",
            32,
            vec![stats(700.0, 150.0)],
        );
        hub.compare_to(&direct);
        let mut r = Report {
            command: "switchboard-bench --smoke".into(),
            started_unix: 0,
            profile: "debug".into(),
            cpus: 2,
            rounds: 1,
            duration_s: 0.3,
            smoke: true,
            loadavg_start: vec![0.1, 0.2, 0.3],
            loadavg_end: vec![0.1, 0.2, 0.3],
            scenarios: vec![
                ScenarioReport {
                    id: "echo".into(),
                    title: "t".into(),
                    status: Status::Ok,
                    note: None,
                    rows: vec![direct, hub],
                },
                ScenarioReport {
                    id: "churn".into(),
                    title: "t".into(),
                    status: Status::Skipped,
                    note: Some("later".into()),
                    rows: vec![],
                },
            ],
            targets: vec![],
        };
        r.check_targets();
        r
    }

    #[test]
    fn ratios_and_targets() {
        let r = report();
        let hub = &r.scenarios[0].rows[1];
        assert!((hub.ratio.unwrap() - 0.7).abs() < 1e-9);
        assert_eq!(hub.p50_delta_us, Some(50.0));
        assert_eq!(r.targets.len(), 1, "{:?}", r.targets);
        assert!(r.targets[0].pass);
        assert!(r.smoke_problems().is_empty());
    }

    #[test]
    fn renders_markdown_and_svg() {
        let r = report();
        let md = r.markdown();
        assert!(md.contains("| echo | SSE upstream, c=32 | hub | 32 | 700 | 150 | 300 | 450 | 0 |  | 0.70× | +50 | +100 |"), "{md}");
        assert!(md.contains("**churn**"));
        let svg = r.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("(0.70×)"));
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(fmt_num(1234567.4), "1,234,567");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(0.123), "0.12");
        assert_eq!(fmt_num(5.0), "5");
        assert_eq!(fmt_num(-1500.0), "-1,500");
    }
}
