//! Semantic tool search on smart endpoints: with a local embedding model the hub finds a
//! tool by meaning when no word matches, follows catalog changes within a second, and keeps
//! its vectors across restarts; an OpenAI-compatible embeddings URL works the same (a fake
//! server on loopback); a missing or corrupt model directory leaves a hub that starts, warns
//! once and searches lexically. The model comes from `scripts/test-deps.sh`
//! (`SWITCHBOARD_TEST_EMBEDDING_MODEL`); tests fail, not skip, without it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_hub::embedder::{HttpEmbedder, LocalEmbedder, Semantic};
use switchboard_hub::{HubConfig, ItemOverride, Overrides};
use switchboard_upstream::ListKind;

use crate::common::*;

fn model_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("SWITCHBOARD_TEST_EMBEDDING_MODEL").expect(
        "SWITCHBOARD_TEST_EMBEDDING_MODEL is not set: run `bash scripts/test-deps.sh` and source .test-deps/env.sh",
    ))
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sb-semantic-{tag}-{}-{}",
        std::process::id(),
        random_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn random_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Re-describes fixture tools: `(tool, new name, new description)`.
fn redescribe(items: &[(&str, &str, &str)]) -> Overrides {
    let mut o = Overrides::new();
    for (tool, name, description) in items {
        o.insert(
            ("local".into(), ListKind::Tools, (*tool).into()),
            ItemOverride {
                enabled: true,
                description: Some((*description).into()),
                rename: Some((*name).into()),
            },
        );
    }
    o
}

/// Polls `search` until its first result is `want`; the time it took, or `None`.
async fn first_within(
    c: &mut McpClient,
    query: &str,
    want: &str,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if c.search_tools(query).await.first().map(String::as_str) == Some(want) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn with_a_local_model_a_tool_is_found_by_meaning_and_changes_are_followed_within_a_second() {
    let file = json!({"mcpServers": {"local": stdio_fixture("local", &[])}});
    let weather = redescribe(&[("echo", "outlook", "Forecast for a city.")]);

    // Lexically, nothing in the catalogue matches the words of the query.
    let lexical = TestHub::start(file.clone()).await;
    lexical.hub.set_overrides(weather.clone());
    let mut c = lexical.client("/mcp/$smart").await;
    let found = c.search_tools("weather tomorrow").await;
    assert!(!found.contains(&"local__outlook".to_string()), "{found:?}");
    lexical.stop().await;

    let cache = temp_dir("cache");
    let semantic = Arc::new(Semantic::new(
        Arc::new(LocalEmbedder::load(&model_dir()).unwrap()),
        Some(&cache),
    ));
    let config = HubConfig {
        semantic: Some(semantic.clone()),
        ..HubConfig::default()
    };
    let hub = TestHub::start_with(file.clone(), config.clone()).await;
    hub.hub.set_overrides(weather.clone());
    let mut c = hub.client("/mcp/$smart").await;
    let took = first_within(
        &mut c,
        "weather tomorrow",
        "local__outlook",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        took.is_some(),
        "not found by meaning: {:?}",
        c.search_tools("weather tomorrow").await
    );

    // A changed definition is embedded and found within a second.
    hub.hub.set_overrides(redescribe(&[
        ("echo", "outlook", "Forecast for a city."),
        ("add", "render", "Translates a sentence into French."),
    ]));
    let took = first_within(
        &mut c,
        "put this phrase in another language",
        "local__render",
        Duration::from_secs(3),
    )
    .await
    .expect("the re-described tool was not found");
    eprintln!("changed tool found by meaning after {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    hub.stop().await;

    // After a restart the cache has every vector: the first search already finds by meaning.
    let cached = semantic.cache.len();
    assert!(cached >= 10, "{cached} vectors cached");
    let again = Arc::new(Semantic::new(
        Arc::new(LocalEmbedder::load(&model_dir()).unwrap()),
        Some(&cache),
    ));
    assert_eq!(
        again.cache.len(),
        cached,
        "the cache file did not keep every vector"
    );
    let hub = TestHub::start_with(
        file,
        HubConfig {
            semantic: Some(again),
            ..HubConfig::default()
        },
    )
    .await;
    hub.hub.set_overrides(weather);
    let mut c = hub.client("/mcp/$smart").await;
    assert_eq!(
        c.search_tools("weather tomorrow").await[0],
        "local__outlook"
    );
    hub.stop().await;
    std::fs::remove_dir_all(&cache).ok();
}

/// What the fake embeddings server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    inputs: AtomicUsize,
    largest_batch: AtomicUsize,
    bodies: Mutex<Vec<(Option<String>, Value)>>,
}

/// A toy embedding: one dimension per concept, so meaning without shared words is visible.
fn toy_vector(text: &str) -> Vec<f64> {
    let t = text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w)) as u8 as f64;
    vec![
        has(&["weather", "forecast", "rain"]),
        has(&["language", "french", "translat"]),
        has(&["sum", "add", "number"]),
        0.1,
    ]
}

async fn fake_embeddings(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    body: String,
) -> axum::Json<Value> {
    let body: Value = serde_json::from_str(&body).unwrap();
    let inputs = body["input"].as_array().unwrap().clone();
    seen.requests.fetch_add(1, Ordering::SeqCst);
    seen.inputs.fetch_add(inputs.len(), Ordering::SeqCst);
    seen.largest_batch.fetch_max(inputs.len(), Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    seen.bodies.lock().unwrap().push((auth, body.clone()));
    // Answered in reverse order, with indexes, as the API allows.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": toy_vector(t.as_str().unwrap())}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": body["model"]}))
}

#[tokio::test]
async fn an_openai_compatible_embeddings_url_ranks_by_meaning_with_batched_authorised_requests() {
    init();
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/embeddings", post(fake_embeddings))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let embedder = HttpEmbedder::new(
        &format!("http://{addr}/v1/embeddings"),
        Some("sk-test".into()),
        "toy-model",
    )
    .unwrap();
    let hub = TestHub::start_with(
        json!({"mcpServers": {"local": stdio_fixture("local", &["--tools", "150"])}}),
        HubConfig {
            semantic: Some(Arc::new(Semantic::new(Arc::new(embedder), None))),
            ..HubConfig::default()
        },
    )
    .await;
    hub.hub
        .set_overrides(redescribe(&[("echo", "outlook", "Forecast for a city.")]));
    let mut c = hub.client("/mcp/$smart").await;
    assert!(
        first_within(
            &mut c,
            "will it rain",
            "local__outlook",
            Duration::from_secs(10)
        )
        .await
        .is_some(),
        "{:?}",
        c.search_tools("will it rain").await
    );
    // 150 generated tools plus the built-ins: several batches, none over 64 inputs.
    assert!(
        eventually(Duration::from_secs(10), async || seen
            .inputs
            .load(Ordering::SeqCst)
            > 150)
        .await
    );
    assert!(seen.requests.load(Ordering::SeqCst) >= 3);
    assert!(seen.largest_batch.load(Ordering::SeqCst) <= 64);
    let all_authorized = seen.bodies.lock().unwrap().iter().all(|(auth, body)| {
        auth.as_deref() == Some("Bearer sk-test") && body["model"] == "toy-model"
    });
    assert!(all_authorized);
    hub.stop().await;
}

/// Runs `switchboard stdio --smart` with `args`, searches once over stdin/stdout and returns
/// (the names found, stderr).
fn stdio_search(args: &[&str], query: &str) -> (Vec<String>, String) {
    let dir = temp_dir("stdio");
    let servers = dir.join("servers.json");
    std::fs::write(
        &servers,
        json!({"mcpServers": {"local": stdio_fixture("local", &[])}}).to_string(),
    )
    .unwrap();
    let mut child = Command::new(switchboard_bin())
        .arg("stdio")
        .arg("--smart")
        .arg("--servers")
        .arg(&servers)
        .args(["--log", "info"])
        .args(args)
        .env("XDG_RUNTIME_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}),
    );
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "search_tools", "arguments": {"query": query}}}));
    let mut found = None;
    let mut line = String::new();
    while found.is_none() && out.read_line(&mut line).unwrap() > 0 {
        let msg: Value = serde_json::from_str(line.trim()).unwrap_or_default();
        if msg["id"] == 2 {
            found = Some(
                msg["result"]["structuredContent"]["tools"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{msg}"))
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_string())
                    .collect(),
            );
        }
        line.clear();
    }
    drop(stdin);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (
        found.expect("no search answer"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_corrupt_or_missing_model_directory_leaves_a_hub_that_warns_once_and_searches_lexically() {
    init();
    let corrupt = temp_dir("corrupt");
    let src = model_dir();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), corrupt.join(f)).unwrap();
    }
    std::fs::write(corrupt.join("model.safetensors"), b"not a safetensors file").unwrap();
    let missing = corrupt.join("nowhere");
    for dir in [&corrupt, &missing] {
        let (found, stderr) = stdio_search(
            &["--embedding-model", dir.to_str().unwrap()],
            "add two numbers",
        );
        assert_eq!(
            found.first().map(String::as_str),
            Some("local__add"),
            "{stderr}"
        );
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("embedding model"))
            .collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        assert!(
            warnings[0].contains("WARN") && warnings[0].contains("lexical"),
            "{}",
            warnings[0]
        );
    }
    std::fs::remove_dir_all(&corrupt).ok();
}
