//! `search-bench`: retrieval quality and speed of the `$smart` tool search, on BFCL v4.
//!
//! Data, pooling and split: `switchboard_search::bfcl`. Both splits are reported, with
//! recall@1/5/10 and MRR per ranker, then search latency over a 5,000-tool catalogue, index
//! build time and memory.
//!
//! Usage: `cargo run --release -p switchboard-bench --bin search-bench -- [DATA_DIR]`
//! (default `$SWITCHBOARD_TEST_BFCL`, else `.test-deps/bfcl/bfcl_eval/data`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use switchboard_search::bfcl::{CATEGORIES, Split, evaluate, load};
use switchboard_search::{Analyzer, Field, Index, Params, ToolText};

fn main() -> ExitCode {
    let dir = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SWITCHBOARD_TEST_BFCL").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".test-deps/bfcl/bfcl_eval/data"));
    match run(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("search-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path) -> Result<(), String> {
    let (tools, queries) = load(dir)?;
    println!(
        "BFCL v4 ({}): {} distinct tools, {} queries ({} tuning, {} held out)\n",
        CATEGORIES.join(", "),
        tools.len(),
        queries.len(),
        queries.len().div_ceil(5),
        queries.len() - queries.len().div_ceil(5),
    );
    let texts: Vec<ToolText> = tools
        .iter()
        .map(|(name, t)| ToolText::from_tool("", name, t))
        .collect();
    // The baseline sees one field: name and description, as a plain BM25 would.
    let baseline_texts: Vec<ToolText> = texts
        .iter()
        .map(|t| {
            let mut b = ToolText::default();
            b.fields[Field::Description as usize] = format!(
                "{} {}",
                t.fields[Field::Name as usize],
                t.fields[Field::Description as usize]
            );
            b
        })
        .collect();

    let stemmed = Analyzer::new();
    let plain = Analyzer::plain();
    let baseline = Index::build(&baseline_texts, &plain, Params::BASELINE);
    let lexical = Index::build(&texts, &stemmed, Params::TUNED);

    println!("| ranker | split | R@1 | R@5 | R@10 | MRR |");
    println!("|---|---|---|---|---|---|");
    for (name, index, analyzer) in [
        ("naive BM25 (name+description)", &baseline, &plain),
        ("lexical BM25F", &lexical, &stemmed),
    ] {
        for (split, which) in [
            ("tuning", Split::Tuning),
            ("held out", Split::HeldOut),
            ("all", Split::All),
        ] {
            let m = evaluate(index, analyzer, &queries, which);
            println!(
                "| {name} | {split} | {:.3} | {:.3} | {:.3} | {:.3} |",
                m.recall[0], m.recall[1], m.recall[2], m.mrr
            );
        }
    }

    // Speed over a 5,000-tool catalogue: the pool repeated under different server names.
    let mut big = Vec::with_capacity(5000);
    for i in 0..5000 {
        let (name, t) = &tools[i % tools.len()];
        big.push(ToolText::from_tool(
            &format!("server{}", i / tools.len()),
            name,
            t,
        ));
    }
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let index = Index::build(&big, &stemmed, Params::TUNED);
    let build = t0.elapsed();
    let rss1 = rss_kib();
    let mut times = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for q in &queries {
        let t = Instant::now();
        let hits = index.search(&stemmed, &q.text, 10, |_| true);
        times.push(t.elapsed());
        found += hits.len();
    }
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "\n5,000 tools: index build {:.1} ms, memory ≈ {:.0} KiB per 1,000 tools (RSS delta), \
         search p50 {:.1} µs, p99 {:.1} µs ({} queries, {} hits)",
        build.as_secs_f64() * 1e3,
        rss1.saturating_sub(rss0) as f64 / 5.0,
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        times.len(),
        found,
    );
    drop(index);
    Ok(())
}

/// The process's resident set size in KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
