//! Criterion micro-benchmarks of the hub's per-message hot path in `switchboard-core`.
//!
//! Run with `cargo bench -p switchboard-bench --features micro` (the feature keeps criterion
//! out of `cargo test --workspace`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_core::jsonrpc::{Envelope, Fields, Splice, array_items, quote};
use switchboard_core::naming::assign_names;

/// A client's tools/call, as the hub receives it. A `static`, not a `const`: the splice needs
/// every slice to point into one and the same text.
static CALL: &str = r#"{"jsonrpc":"2.0","id":4711,"method":"tools/call","params":{"name":"github__search_issues","arguments":{"query":"is:open label:bug","per_page":30},"_meta":{"progressToken":"p-4711"}}}"#;

/// A tools/list response with `n` tools shaped like real servers' (schema, annotations).
fn tools_list_response(n: usize) -> String {
    let tools: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"tool_{i}","title":"Tool {i}","description":"Does thing number {i} with the given input and returns a short text summary.","inputSchema":{{"type":"object","properties":{{"query":{{"type":"string","description":"What to look for"}},"limit":{{"type":"integer","minimum":1,"maximum":100}}}},"required":["query"]}},"annotations":{{"readOnlyHint":true,"idempotentHint":{}}}}}"#,
                i % 2 == 0
            )
        })
        .collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":3,"result":{{"tools":[{}]}}}}"#,
        tools.join(",")
    )
}

/// The envelope reader before issue #11 (serde_json derive over `RawValue`, no validation
/// beyond syntax), kept as the baseline the one-pass validating scanner is measured against.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct SerdeEnvelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a serde_json::value::RawValue>,
}

fn serde_envelope(text: &str) -> SerdeEnvelope<'_> {
    serde_json::from_str(text).expect("valid")
}

/// A tools/call response whose text content is about `bytes` long.
fn big_result(bytes: usize) -> String {
    let line = r#"Line of output with \"quotes\", a tab\t and unicode \u00e9 \ud83d\ude00.\n"#;
    let text = line.repeat(bytes / line.len() + 1);
    format!(
        r#"{{"jsonrpc":"2.0","id":17,"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
    )
}

/// What the hub keeps per listed item: its key, its raw text, two annotation flags.
fn parse_list(text: &str) -> usize {
    let env = Envelope::parse(text).expect("valid");
    let result = Fields::parse(env.result.expect("result").get()).expect("object");
    let list = result.get("tools").map(|v| v.get()).unwrap_or("[]");
    let mut kept = 0;
    for raw in array_items(list).expect("array") {
        let Some(fields) = Fields::parse(raw.get()) else {
            continue;
        };
        let Some(name) = fields.get_str("name") else {
            continue;
        };
        let ann = fields
            .get("annotations")
            .and_then(|a| Fields::parse(a.get()));
        let read_only = ann
            .as_ref()
            .and_then(|a| a.get("readOnlyHint"))
            .is_some_and(|v| v.get() == "true");
        let owned = (name.into_owned(), raw.to_owned(), read_only);
        kept += black_box(owned).0.len();
    }
    kept
}

fn hot_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("tools_call");
    g.throughput(Throughput::Bytes(CALL.len() as u64));
    g.bench_function("envelope+params", |b| {
        b.iter(|| {
            let env = Envelope::parse(black_box(CALL)).expect("valid");
            let params = Fields::parse(env.params.expect("params").get()).expect("object");
            black_box(params.get_str("name"));
        })
    });
    g.bench_function("splice id+name", |b| {
        let env = Envelope::parse(CALL).expect("valid");
        let params = Fields::parse(env.params.expect("params").get()).expect("object");
        let id = env.id.expect("id").get();
        let name = params.get("name").expect("name").get();
        b.iter(|| {
            let mut sp = Splice::new();
            sp.replace(CALL, id, "1017")
                .replace(CALL, name, quote("search_issues"));
            black_box(sp.apply(black_box(CALL)))
        })
    });
    g.bench_function("parse+splice (whole request edit)", |b| {
        b.iter(|| {
            let text = black_box(CALL);
            let env = Envelope::parse(text).expect("valid");
            let params = Fields::parse(env.params.expect("params").get()).expect("object");
            let name = params.get("name").expect("name").get();
            let mut sp = Splice::new();
            sp.replace(text, env.id.expect("id").get(), "1017").replace(
                text,
                name,
                quote("search_issues"),
            );
            black_box(sp.apply(text))
        })
    });
    g.bench_function("envelope only", |b| {
        b.iter(|| black_box(Envelope::parse(black_box(CALL)).expect("valid")))
    });
    g.bench_function("envelope only, serde baseline", |b| {
        b.iter(|| black_box(serde_envelope(black_box(CALL))))
    });
    g.finish();

    // A 64 KiB tools/call result (text content with escapes), as relayed back to a client.
    let big = big_result(64 * 1024);
    let mut g = c.benchmark_group("result_64k");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("envelope only", |b| {
        b.iter(|| black_box(Envelope::parse(black_box(&big)).expect("valid")))
    });
    g.bench_function("envelope only, serde baseline", |b| {
        b.iter(|| black_box(serde_envelope(black_box(&big))))
    });
    g.finish();

    let list = tools_list_response(300);
    let mut g = c.benchmark_group("tools_list");
    g.throughput(Throughput::Bytes(list.len() as u64));
    g.bench_function("parse 300 tools", |b| {
        b.iter(|| parse_list(black_box(&list)))
    });
    g.finish();

    let servers: Vec<String> = (0..100).map(|i| format!("server{i:02}")).collect();
    let items: Vec<String> = (0..50)
        .map(|i| format!("tool_with_a_longer_name_{i}"))
        .collect();
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(5000);
    for s in &servers {
        for t in &items {
            pairs.push((s.as_str(), t.as_str()));
        }
    }
    // A few that need hashing (too long or invalid characters), as in real catalogs.
    for p in pairs.iter_mut().step_by(97) {
        p.1 = "a tool name with spaces/and slashes that is also far too long to fit in sixty-four characters";
    }
    let mut g = c.benchmark_group("naming");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("assign_names 5000 pairs", |b| {
        b.iter(|| black_box(assign_names("__", black_box(&pairs))))
    });
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
