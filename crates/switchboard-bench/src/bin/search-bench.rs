//! `search-bench`: retrieval quality and speed of the `$smart` tool search, on BFCL v4.
//!
//! Data, pooling and split: `switchboard_search::bfcl`. Both splits are reported, with
//! recall@1/5/10 and MRR per ranker, then search latency over a 5,000-tool catalogue, index
//! build time and memory.
//!
//! With an embedding model (`--model DIR`, default `$SWITCHBOARD_EMBEDDING_MODEL`, else
//! `$SWITCHBOARD_TEST_EMBEDDING_MODEL`) the semantic and hybrid rankers are reported too,
//! with embedding throughput, query embedding time by length and search latency (query
//! embedding included), each on the encoder's default multiply and on plain sgemm (the
//! reference path), timed alternately; `--tune` prints a grid of fusion parameters scored on
//! the tuning split only.
//!
//! Usage: `cargo run --release -p switchboard-bench --bin search-bench -- [DATA_DIR]
//! [--model DIR] [--tune | --lengths]` (data default `$SWITCHBOARD_TEST_BFCL`, else
//! `.test-deps/bfcl/bfcl_eval/data`; `--lengths` prints the query embedding table only).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use switchboard_search::bfcl::{
    CATEGORIES, Query, Split, evaluate, evaluate_by, evaluate_lexical_with_history, history,
    in_split, load, priors,
};
use switchboard_search::embed::{
    Kernel, MAX_QUERY_TOKENS, MAX_TOOL_TOKENS, Model, VectorIndex, tool_text,
};
use switchboard_search::hybrid::{Fusion, fuse, fuse_rrf, fuse_with};
use switchboard_search::usage;
use switchboard_search::{Analyzer, Field, Hit, Index, Params, ToolText};

const SPLITS: [(&str, Split); 3] = [
    ("tuning", Split::Tuning),
    ("held out", Split::HeldOut),
    ("all", Split::All),
];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut model = std::env::var_os("SWITCHBOARD_EMBEDDING_MODEL")
        .or_else(|| std::env::var_os("SWITCHBOARD_TEST_EMBEDDING_MODEL"))
        .map(PathBuf::from);
    let mut tune = false;
    let mut lengths_only = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--tune" => tune = true,
            "--lengths" => lengths_only = true,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir
        .or_else(|| std::env::var_os("SWITCHBOARD_TEST_BFCL").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".test-deps/bfcl/bfcl_eval/data"));
    if lengths_only {
        let result = load(&dir).and_then(|(_, queries)| {
            let m = model
                .ok_or_else(|| "--lengths needs an embedding model (--model DIR)".to_owned())?;
            query_lengths(&Model::load(&m)?, &queries);
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("search-bench: {e}");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    let result = run(&dir, tune).and_then(|(tools, texts, queries)| match model {
        Some(m) => semantic(&m, &tools, &texts, &queries, tune),
        None => {
            println!("\n(no embedding model: set --model DIR for semantic and hybrid rows)");
            Ok(())
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("search-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

type Loaded = (Vec<(String, serde_json::Value)>, Vec<ToolText>, Vec<Query>);

fn run(dir: &Path, tune: bool) -> Result<Loaded, String> {
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
        for (split, which) in SPLITS {
            let m = evaluate(index, analyzer, &queries, which);
            println!(
                "| {name} | {split} | {:.3} | {:.3} | {:.3} | {:.3} |",
                m.recall[0], m.recall[1], m.recall[2], m.mrr
            );
        }
    }

    // The usage prior, with the tuning split's questions as the call history: held-out
    // questions only (on the tuning split the history holds each question's own answer).
    let m = evaluate_lexical_with_history(&lexical, &stemmed, tools.len(), &queries);
    println!(
        "| lexical BM25F + usage prior (tuning split's calls as history) | held out | {:.3} | {:.3} | {:.3} | {:.3} |",
        m.recall[0], m.recall[1], m.recall[2], m.mrr
    );
    if tune {
        println!("\nLexical usage weight, cross-fitted on the tuning split (R@5, MRR):");
        let mut line = String::new();
        for w in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] {
            let m = cross_fitted(&queries, tools.len(), |_, q, prior| {
                let hits = lexical.search(&stemmed, &q.text, usage::LEXICAL_DEPTH, |_| true);
                usage::rerank_lexical(&hits, w, 10, |d| prior[d])
                    .into_iter()
                    .map(|h| h.doc)
                    .collect()
            });
            line.push_str(&format!(" {w}: {:.3}/{:.3}", m.0, m.1));
        }
        println!("{line}");
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
        // As the hub searches without vectors: the best 100, scored over the best hit's.
        let hits = index.search(&stemmed, &q.text, usage::LEXICAL_DEPTH, |_| true);
        let hits = usage::rerank_lexical(&hits, usage::LEXICAL, 10, |_| 0.0);
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
    Ok((tools, texts, queries))
}

/// Semantic and hybrid rows, then their speed.
fn semantic(
    model_dir: &Path,
    tools: &[(String, serde_json::Value)],
    texts: &[ToolText],
    queries: &[Query],
    tune: bool,
) -> Result<(), String> {
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let model = Model::load(model_dir)?;
    println!(
        "\nModel {} ({} dims): loaded in {:.0} ms, RSS +{:.0} MiB",
        model.id(),
        model.dims(),
        t0.elapsed().as_secs_f64() * 1e3,
        rss_kib().saturating_sub(rss0) as f64 / 1024.0
    );
    let t0 = Instant::now();
    let mut vectors = VectorIndex::new(model.dims(), texts.len());
    let mut tokens = 0usize;
    for (i, t) in texts.iter().enumerate() {
        let text = tool_text(t);
        tokens += model.tokenizer().encode(&text, MAX_TOOL_TOKENS).len();
        vectors.set(i, model.embed(&text, MAX_TOOL_TOKENS));
    }
    let embed_tools = t0.elapsed();
    let t0 = Instant::now();
    let qvecs: Vec<Vec<f32>> = queries
        .iter()
        .map(|q| model.embed(&q.text, MAX_QUERY_TOKENS))
        .collect();
    let embed_queries = t0.elapsed();
    println!(
        "Embedded {} tools ({:.0} tokens each on average) in {:.1} s: {:.1} tools/s; {} queries in {:.1} s ({:.1} ms each), one thread",
        texts.len(),
        tokens as f64 / texts.len() as f64,
        embed_tools.as_secs_f64(),
        texts.len() as f64 / embed_tools.as_secs_f64(),
        queries.len(),
        embed_queries.as_secs_f64(),
        embed_queries.as_secs_f64() * 1e3 / queries.len() as f64,
    );

    let stemmed = Analyzer::new();
    let lexical = Index::build(texts, &stemmed, Params::TUNED);
    let depth = Fusion::TUNED.depth;
    let lex: Vec<Vec<Hit>> = queries
        .iter()
        .map(|q| lexical.search(&stemmed, &q.text, depth, |_| true))
        .collect();
    let sem: Vec<Vec<Hit>> = qvecs
        .iter()
        .map(|v| vectors.search(v, depth, |_| true))
        .collect();
    let docs = |hits: &[Hit]| hits.iter().map(|h| h.doc).collect::<Vec<_>>();

    println!("\n| ranker | split | R@1 | R@5 | R@10 | MRR |");
    println!("|---|---|---|---|---|---|");
    for (split, which) in SPLITS {
        let m = evaluate_by(queries, which, |i, _| docs(&sem[i]));
        row("semantic (all-MiniLM-L6-v2)", split, m);
    }
    for (split, which) in SPLITS {
        let m = evaluate_by(queries, which, |i, _| {
            docs(&fuse_rrf(&lex[i], &sem[i], 20.0, [1.5, 1.0], depth, 10))
        });
        row("hybrid, reciprocal-rank fusion (before)", split, m);
    }
    for (split, which) in SPLITS {
        let m = evaluate_by(queries, which, |i, _| {
            docs(&fuse(&lex[i], &sem[i], Fusion::TUNED, 10))
        });
        row("hybrid, score fusion", split, m);
    }
    let prior = priors(&history(queries, texts.len(), |i| {
        in_split(i, Split::Tuning)
    }));
    let m = evaluate_by(queries, Split::HeldOut, |i, _| {
        docs(&fuse_with(&lex[i], &sem[i], Fusion::TUNED, 10, |d| {
            prior[d]
        }))
    });
    row(
        "hybrid + usage prior (tuning split's calls as history)",
        "held out",
        m,
    );

    if tune {
        // Lists of 200 so depths up to 200 can be tried.
        let lex: Vec<Vec<Hit>> = queries
            .iter()
            .map(|q| lexical.search(&stemmed, &q.text, 200, |_| true))
            .collect();
        let sem: Vec<Vec<Hit>> = qvecs
            .iter()
            .map(|v| vectors.search(v, 200, |_| true))
            .collect();
        println!("\nFusion grid, tuning split only (R@5, MRR):");
        let mut best = (0.0, 0.0, Fusion::TUNED);
        for d in [20, 50, 100, 200] {
            let mut line = format!("depth {d:>3}:");
            for lw in [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5] {
                let f = Fusion {
                    lexical: lw,
                    depth: d,
                    usage: 0.0,
                };
                let m = evaluate_by(queries, Split::Tuning, |i, _| {
                    docs(&fuse(&lex[i], &sem[i], f, 10))
                });
                line.push_str(&format!(" {lw}: {:.3}/{:.3}", m.recall[1], m.mrr));
                if (m.recall[1], m.mrr) > (best.0, best.1) {
                    best = (m.recall[1], m.mrr, f);
                }
            }
            println!("{line}");
        }
        println!(
            "best: R@5 {:.3} MRR {:.3} with {:?}",
            best.0, best.1, best.2
        );
        println!(
            "\nUsage weight at the tuned fusion, cross-fitted on the tuning split (R@5, MRR):"
        );
        let mut line = String::new();
        for w in [0.0, 0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2] {
            let f = Fusion {
                usage: w,
                ..Fusion::TUNED
            };
            let m = cross_fitted(queries, texts.len(), |i, _, prior| {
                docs(&fuse_with(&lex[i], &sem[i], f, 10, |d| prior[d]))
            });
            line.push_str(&format!(" {w}: {:.3}/{:.3}", m.0, m.1));
        }
        println!("{line}");
    }

    // Speed over 5,000 tools: the pool repeated, vectors reused (same text, same vector).
    let mut big_texts = Vec::with_capacity(5000);
    let mut big_vectors = VectorIndex::new(model.dims(), 5000);
    let rss0 = rss_kib();
    let t0 = Instant::now();
    for i in 0..5000 {
        let (name, t) = &tools[i % tools.len()];
        big_texts.push(ToolText::from_tool(
            &format!("server{}", i / tools.len()),
            name,
            t,
        ));
    }
    let big = Index::build(&big_texts, &stemmed, Params::TUNED);
    for i in 0..5000 {
        // The pool's vector for the same tool, copied, as the hub holds one per tool.
        if let Some(v) = vectors.get(i % texts.len()) {
            big_vectors.set(i, v.to_vec());
        }
    }
    let assemble = t0.elapsed();
    let rss1 = rss_kib();
    query_lengths(&model, queries);
    // Each query searched on both multiplies, in alternating order, so that load from other
    // work on the machine falls on both alike.
    let mut times = Vec::with_capacity(queries.len());
    let mut reference = Vec::with_capacity(queries.len());
    for (i, q) in queries.iter().take(500).enumerate() {
        for kernel in alternating(i) {
            let t = Instant::now();
            let v = model.embed_with(&q.text, MAX_QUERY_TOKENS, kernel);
            let l = big.search(&stemmed, &q.text, Fusion::TUNED.depth, |_| true);
            let s = big_vectors.search(&v, Fusion::TUNED.depth, |_| true);
            let hits = fuse(&l, &s, Fusion::TUNED, 10);
            let took = t.elapsed();
            if kernel == Kernel::Auto {
                times.push(took);
            } else {
                reference.push(took);
            }
            assert!(!hits.is_empty());
        }
    }
    times.sort_unstable();
    reference.sort_unstable();
    let pct = |times: &[std::time::Duration], p: f64| {
        times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3
    };
    let per_tool = embed_tools.as_secs_f64() / texts.len() as f64;
    println!(
        "\n5,000 tools, hybrid: search p50 {:.1} ms, p99 {:.1} ms (query embedding included, {} queries; \
         sgemm only: p50 {:.1} ms, p99 {:.1} ms); index build ≈ {:.0} s of embedding at {:.1} tools/s (one thread) + {:.0} ms to assemble; \
         vectors ≈ {:.0} KiB per 1,000 tools ({} dims × 4 bytes; RSS delta of lexical + vectors {:.0} KiB per 1,000)",
        pct(&times, 0.5),
        pct(&times, 0.99),
        times.len(),
        pct(&reference, 0.5),
        pct(&reference, 0.99),
        per_tool * 5000.0,
        1.0 / per_tool,
        assemble.as_secs_f64() * 1e3,
        (model.dims() * 4 * 1000) as f64 / 1024.0,
        model.dims(),
        rss1.saturating_sub(rss0) as f64 / 5.0,
    );
    Ok(())
}

/// Query embedding time by length in word pieces (`[CLS]` and `[SEP]` included), on the
/// default multiply and on sgemm alone: medians of alternating runs over a text cut to each
/// length. Then how long the benchmark's queries are.
fn query_lengths(model: &Model, queries: &[Query]) {
    let mut text = String::new();
    for q in queries {
        if model.tokenizer().encode(&text, MAX_QUERY_TOKENS).len() >= MAX_QUERY_TOKENS {
            break;
        }
        text.push_str(&q.text);
        text.push(' ');
    }
    println!("\n| query word pieces | embedding, default (ms) | embedding, sgemm only (ms) |");
    println!("|---|---|---|");
    for len in [2, 5, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128] {
        let runs = if len <= 40 { 41 } else { 15 };
        let mut auto = Vec::with_capacity(runs);
        let mut sgemm = Vec::with_capacity(runs);
        for i in 0..runs {
            for kernel in alternating(i) {
                let t = Instant::now();
                let v = model.embed_with(&text, len, kernel);
                let ms = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(v.len(), model.dims());
                if kernel == Kernel::Auto {
                    auto.push(ms);
                } else {
                    sgemm.push(ms);
                }
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_unstable_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {len} | {:.2} | {:.2} |",
            median(&mut auto),
            median(&mut sgemm)
        );
    }
    let mut lens: Vec<usize> = queries
        .iter()
        .map(|q| model.tokenizer().encode(&q.text, MAX_QUERY_TOKENS).len())
        .collect();
    lens.sort_unstable();
    let at = |p: f64| lens[((lens.len() - 1) as f64 * p) as usize];
    println!(
        "Benchmark queries: {} word pieces at the median, {} at p90, {} at p99",
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

fn row(name: &str, split: &str, m: switchboard_search::bfcl::Metrics) {
    println!(
        "| {name} | {split} | {:.3} | {:.3} | {:.3} | {:.3} |",
        m.recall[0], m.recall[1], m.recall[2], m.mrr
    );
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

/// Both multiplies, the fast path first on even runs and sgemm first on odd ones, so that
/// load from other work on the machine falls on both alike.
fn alternating(i: usize) -> [Kernel; 2] {
    if i.is_multiple_of(2) {
        [Kernel::Auto, Kernel::Sgemm]
    } else {
        [Kernel::Sgemm, Kernel::Auto]
    }
}

/// R@5 and MRR of `rank` on the tuning split, cross-fitted: the tuning split's questions
/// are cut in two halves (alternate questions); each half is scored with the usage priors
/// of the other half's calls as history, and the two results are averaged. No held-out
/// question is looked at.
fn cross_fitted(
    queries: &[Query],
    tools: usize,
    mut rank: impl FnMut(usize, &Query, &[f32]) -> Vec<usize>,
) -> (f64, f64) {
    let half = |i: usize, h: usize| in_split(i, Split::Tuning) && (i / 5) % 2 == h;
    let mut r5 = 0.0;
    let mut mrr = 0.0;
    for h in 0..2 {
        let prior = priors(&history(queries, tools, |i| half(i, 1 - h)));
        let picked: Vec<usize> = (0..queries.len()).filter(|&i| half(i, h)).collect();
        let mut found = 0usize;
        let mut rr = 0.0;
        for &i in &picked {
            let q = &queries[i];
            if let Some(r) = rank(i, q, &prior)
                .iter()
                .take(10)
                .position(|&d| d == q.relevant)
            {
                if r < 5 {
                    found += 1;
                }
                rr += 1.0 / (r + 1) as f64;
            }
        }
        r5 += found as f64 / picked.len() as f64 / 2.0;
        mrr += rr / picked.len() as f64 / 2.0;
    }
    (r5, mrr)
}
