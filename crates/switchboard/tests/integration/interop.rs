//! Interop with third-party MCP software: the reference server-everything and the Python SDK client.
//!
//! Every process started here runs in its own process group, which a guard kills on drop, so
//! nothing outlives a test, even one that panics; what the Python client starts in a session of
//! its own (`switchboard stdio`) is found through a marker and swept the same way. Locations of
//! the third-party software come from `.test-deps/env.sh` (see tests/interop/README.md).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use crate::common::*;

/// How long server-everything may take to print its port (slow while cargo builds).
const STARTUP: Duration = Duration::from_secs(20);
/// Deadline for one Python client run; the client also gets its own, slightly shorter one.
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);
const CLIENT_TIMEOUT_ARG: &str = "25";
/// The static document read through every transport.
const DOC: &str = "demo://resource/static/document/features.md";

// ---- dependencies and processes ----

/// A location exported by `.test-deps/env.sh`; the test fails without it.
fn dep(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `bash scripts/test.sh`, which installs the interop dependencies and sources .test-deps/env.sh")
    })
}

fn node() -> String {
    dep("SWITCHBOARD_TEST_NODE")
}

fn everything() -> String {
    dep("SWITCHBOARD_TEST_EVERYTHING")
}

/// Kills a whole process group when dropped (node and python may have children of their own).
struct GroupGuard(Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// Spawns `cmd` as the leader of a new process group, guarded.
fn spawn_guarded(cmd: &mut Command) -> (Child, GroupGuard) {
    let child = cmd
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn a test dependency");
    let pid = child.id().expect("pid of a fresh child") as i32;
    (child, GroupGuard(Pid::from_raw(pid)))
}

/// A servers-file entry running server-everything over stdio.
fn everything_stdio_entry() -> Value {
    json!({"command": node(), "args": [everything(), "stdio"]})
}

/// server-everything in an HTTP mode on an ephemeral loopback port.
struct Everything {
    port: u16,
    _guard: GroupGuard,
    _child: Child,
}

impl Everything {
    /// `mode` is `streamableHttp` or `sse`.
    async fn start(mode: &str) -> Everything {
        let mut cmd = Command::new(node());
        cmd.arg("--import")
            .arg(dep("SWITCHBOARD_TEST_LOOPBACK_PRELOAD"))
            .arg(everything())
            .arg(mode);
        cmd.env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (mut child, guard) = spawn_guarded(&mut cmd);
        let stderr = child.stderr.take().expect("piped stderr");
        let port = tokio::time::timeout(STARTUP, listening_port(stderr))
            .await
            .unwrap_or_else(|_| {
                panic!("server-everything {mode} did not report its port within {STARTUP:?}")
            });
        Everything {
            port,
            _guard: guard,
            _child: child,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Reads stderr up to the preload's `SWITCHBOARD_TEST_LISTENING <addr> <port>` line, then keeps
/// draining it in the background so the server never blocks on a full pipe.
async fn listening_port(stderr: ChildStderr) -> u16 {
    let mut lines = BufReader::new(stderr).lines();
    while let Some(line) = lines.next_line().await.expect("read stderr") {
        if let Some(rest) = line.strip_prefix("SWITCHBOARD_TEST_LISTENING ") {
            let port = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return port.unwrap_or_else(|| panic!("bad listening line {line:?}"));
        }
    }
    panic!("server-everything exited before listening");
}

// ---- the Python SDK client ----

/// Arguments for one run of `tests/interop/mcp_client.py`.
fn py(transport: &str, url: &str) -> Vec<String> {
    vec![
        "--transport".into(),
        transport.into(),
        "--url".into(),
        url.into(),
    ]
}

/// Appends `--flag value` pairs to a client command line.
fn with(mut args: Vec<String>, pairs: &[(&str, &str)]) -> Vec<String> {
    for (flag, value) in pairs {
        args.push(flag.to_string());
        args.push(value.to_string());
    }
    args
}

/// Runs the Python client to completion under a deadline.
async fn run_python(args: &[String]) -> Output {
    let mut cmd = Command::new(dep("SWITCHBOARD_TEST_PYTHON"));
    cmd.arg(dep("SWITCHBOARD_TEST_MCP_CLIENT"))
        .args(["--timeout", CLIENT_TIMEOUT_ARG])
        .args(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (child, _guard) = spawn_guarded(&mut cmd);
    tokio::time::timeout(CLIENT_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("python client {args:?} ran longer than {CLIENT_DEADLINE:?}"))
        .expect("wait for the python client")
}

/// Runs the Python client, which must succeed; returns its JSON report.
async fn python_client(args: Vec<String>) -> Value {
    let out = run_python(&args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client {args:?} failed ({}):\nstderr: {stderr}\nstdout: {stdout}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("python client printed no JSON ({e}): {stdout}"))
}

/// Whether a JSON array of strings contains `item`.
fn has(list: &Value, item: &str) -> bool {
    list.as_array().is_some_and(|a| a.iter().any(|v| v == item))
}

/// All text blocks of a result's `content`, joined by newlines.
fn all_text(result: &Value) -> String {
    let blocks = result["content"].as_array().cloned().unwrap_or_default();
    blocks
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- 1. server-everything behind the hub over stdio, Streamable HTTP and SSE ----

/// The three upstream names: stdio, Streamable HTTP, SSE.
const EV: [&str; 3] = ["evs", "evh", "eve"];

async fn everything_hub() -> (TestHub, Everything, Everything) {
    let (http, sse) = tokio::join!(
        Everything::start("streamableHttp"),
        Everything::start("sse")
    );
    let hub = TestHub::start(json!({"mcpServers": {
        "evs": everything_stdio_entry(),
        "evh": http_entry(&http.url("/mcp")),
        "eve": sse_entry(&sse.url("/sse")),
    }}))
    .await;
    (hub, http, sse)
}

#[tokio::test]
async fn server_everything_over_three_transports_in_one_hub() {
    let (hub, _http, _sse) = everything_hub().await;
    let mut c = hub.client("/mcp").await;
    check_tools_and_calls(&mut c).await;
    check_prompts_and_completion(&mut c).await;
    check_colliding_resources(&mut c).await;
    check_progress(&hub).await;
    hub.stop().await;
}

async fn check_tools_and_calls(c: &mut McpClient) {
    let names = c.tool_names().await;
    for server in EV {
        for tool in ["echo", "get-sum", "trigger-long-running-operation"] {
            let name = format!("{server}__{tool}");
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let echo = c
            .call(
                &format!("{server}__echo"),
                json!({"message": format!("hello {server}")}),
            )
            .await;
        assert_eq!(text_of(&echo), format!("Echo: hello {server}"), "{echo}");
        let sum = c
            .call(&format!("{server}__get-sum"), json!({"a": 19, "b": 23}))
            .await;
        assert_eq!(text_of(&sum), "The sum of 19 and 23 is 42.", "{sum}");
    }
}

async fn check_prompts_and_completion(c: &mut McpClient) {
    for server in EV {
        let args = json!({"city": "Paris", "state": "Texas"});
        let got = c
            .request(
                "prompts/get",
                json!({"name": format!("{server}__args-prompt"), "arguments": args}),
            )
            .await;
        assert_eq!(
            got["result"]["messages"][0]["content"]["text"], "What's weather in Paris, Texas?",
            "{got}"
        );
    }
    let prompt = json!({"type": "ref/prompt", "name": "evh__completable-prompt"});
    let departments = complete(
        c,
        json!({"ref": prompt, "argument": {"name": "department", "value": "S"}}),
    )
    .await;
    assert_eq!(departments, json!(["Sales", "Support"]));
    // The context (already chosen arguments) must reach the upstream too.
    let context = json!({"arguments": {"department": "Engineering"}});
    let names = complete(
        c,
        json!({"ref": prompt, "argument": {"name": "name", "value": ""}, "context": context}),
    )
    .await;
    assert_eq!(names, json!(["Alice", "Bob", "Charlie"]));
}

async fn complete(c: &mut McpClient, params: Value) -> Value {
    let r = c.request("completion/complete", params).await;
    r["result"]["completion"]["values"].clone()
}

async fn check_colliding_resources(c: &mut McpClient) {
    let list = c.request("resources/list", json!({})).await;
    let uris: Vec<&str> = list["result"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert!(
        !uris.contains(&DOC),
        "colliding URIs must be rewritten: {uris:?}"
    );
    for server in EV {
        let rewritten = format!("switchboard://{server}/{DOC}");
        assert!(
            uris.contains(&rewritten.as_str()),
            "{rewritten} missing from {uris:?}"
        );
        let read = c.request("resources/read", json!({"uri": rewritten})).await;
        let content = &read["result"]["contents"][0];
        assert_eq!(content["uri"], rewritten.as_str(), "{read}");
        assert!(
            content["text"]
                .as_str()
                .is_some_and(|t| t.contains("Features")),
            "{read}"
        );
    }
}

/// One long-running call per upstream, concurrently, each with its own progress token.
async fn check_progress(hub: &TestHub) {
    let url = hub.url("/mcp");
    let runs = EV.map(|server| {
        let url = url.clone();
        tokio::spawn(async move { progress_of(&url, server).await })
    });
    for run in runs {
        run.await.expect("progress check");
    }
}

async fn progress_of(url: &str, server: &str) {
    let mut c = McpClient::connect(url).await;
    let token = format!("tok-{server}");
    let params = json!({
        "name": format!("{server}__trigger-long-running-operation"),
        "arguments": {"duration": 0.6, "steps": 3},
        "_meta": {"progressToken": token},
    });
    let r = c.request("tools/call", params).await;
    assert!(
        text_of(&r["result"]).starts_with("Long running operation completed"),
        "{r}"
    );
    let progress: Vec<&Value> = c
        .received
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{server}: {:?}", c.received);
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(
            p["params"]["progressToken"],
            token.as_str(),
            "{server}: {p}"
        );
        assert_eq!(
            p["params"]["progress"].as_f64(),
            Some((i + 1) as f64),
            "{server}: {p}"
        );
        assert_eq!(p["params"]["total"].as_f64(), Some(3.0), "{server}: {p}");
    }
}

// ---- 2. the Python SDK client against the hub ----

#[tokio::test]
async fn python_client_over_streamable_http_sse_and_single_server_endpoint() {
    let http = spawn_http(FixtureOptions::new("fh")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"fs": stdio_fixture("fs", &[]), "fh": http_entry(&http.url)}}),
    )
    .await;
    tokio::join!(
        python_over_streamable_http(hub.url("/mcp")),
        python_over_sse(hub.url("/sse")),
        python_on_single_server(hub.url("/mcp/fh")),
    );
    hub.stop().await;
}

async fn python_over_streamable_http(url: String) {
    let args = with(
        py("streamable-http", &url),
        &[
            ("--call", "fh__add"),
            ("--args", r#"{"a": 2, "b": 3}"#),
            ("--prompt", "fs__greeting"),
            ("--prompt-args", r#"{"name": "Ada"}"#),
            ("--read", "switchboard://fh/fixture://info"),
        ],
    );
    let out = python_client(args).await;
    assert_eq!(out["server_info"]["name"], "switchboard", "{out}");
    for name in [
        "fs__echo",
        "fh__echo",
        "fh__add",
        "switchboard__list_servers",
    ] {
        assert!(has(&out["tools"], name), "{name} missing: {}", out["tools"]);
    }
    assert!(
        has(&out["prompts"], "fs__greeting") && has(&out["prompts"], "fh__greeting"),
        "{}",
        out["prompts"]
    );
    for uri in [
        "switchboard://fs/fixture://info",
        "switchboard://fh/fixture://info",
    ] {
        assert!(
            has(&out["resources"], uri),
            "{uri} missing: {}",
            out["resources"]
        );
    }
    assert_eq!(
        out["call"]["structuredContent"]["sum"].as_f64(),
        Some(5.0),
        "{}",
        out["call"]
    );
    assert_eq!(out["call"]["isError"], false);
    assert!(
        out["prompt"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Hello, Ada!"),
        "{}",
        out["prompt"]
    );
    assert_eq!(
        out["read"]["contents"][0]["uri"], "switchboard://fh/fixture://info",
        "{}",
        out["read"]
    );
    assert_eq!(
        out["read"]["contents"][0]["text"], "fixture fh",
        "{}",
        out["read"]
    );
}

async fn python_over_sse(url: String) {
    let args = with(
        py("sse", &url),
        &[
            ("--call", "fs__echo"),
            ("--args", r#"{"text": "over legacy sse"}"#),
            ("--prompt", "fh__greeting"),
            ("--prompt-args", r#"{"name": "Grace"}"#),
            ("--read", "fixture://item/7"),
        ],
    );
    let out = python_client(args).await;
    assert_eq!(out["server_info"]["name"], "switchboard", "{out}");
    assert!(
        has(&out["tools"], "fs__echo") && has(&out["tools"], "fh__echo"),
        "{}",
        out["tools"]
    );
    assert_eq!(text_of(&out["call"]), "over legacy sse", "{}", out["call"]);
    assert!(
        out["prompt"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Hello, Grace!"),
        "{}",
        out["prompt"]
    );
    assert_eq!(
        out["read"]["contents"][0]["text"], "item 7",
        "{}",
        out["read"]
    );
}

async fn python_on_single_server(url: String) {
    let args = with(
        py("streamable-http", &url),
        &[
            ("--call", "echo"),
            ("--args", r#"{"text": "unprefixed"}"#),
            ("--prompt", "greeting"),
            ("--prompt-args", r#"{"name": "Linus"}"#),
            ("--read", "fixture://info"),
        ],
    );
    let out = python_client(args).await;
    assert!(
        has(&out["tools"], "echo") && has(&out["tools"], "add"),
        "{}",
        out["tools"]
    );
    assert!(
        !out["tools"].to_string().contains("fs__"),
        "another server leaked in: {}",
        out["tools"]
    );
    assert!(
        !out["tools"].to_string().contains("fh__"),
        "names must be unprefixed: {}",
        out["tools"]
    );
    assert!(has(&out["prompts"], "greeting"), "{}", out["prompts"]);
    assert!(
        has(&out["resources"], "fixture://info"),
        "{}",
        out["resources"]
    );
    assert_eq!(text_of(&out["call"]), "unprefixed", "{}", out["call"]);
    assert!(
        out["prompt"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Hello, Linus!"),
        "{}",
        out["prompt"]
    );
    assert_eq!(
        out["read"]["contents"][0]["uri"], "fixture://info",
        "{}",
        out["read"]
    );
    assert_eq!(
        out["read"]["contents"][0]["text"], "fixture fh",
        "{}",
        out["read"]
    );
}

// ---- 3. server-to-client requests: sampling and elicitation through the hub ----

#[tokio::test]
async fn sampling_and_elicitation_reach_the_client_that_caused_them() {
    // Over stdio a server request does not say which call caused it, so the hub can only tell
    // while one call is in flight upstream: the two concurrent clients use different upstreams.
    let hub = TestHub::start(
        json!({"mcpServers": {"ev": everything_stdio_entry(), "ev2": everything_stdio_entry()}}),
    )
    .await;
    wait_for_capability_tools(&hub, &["ev", "ev2"]).await;
    tokio::join!(
        sampling_through(
            hub.url("/mcp"),
            "streamable-http",
            "ev",
            "sampled over http"
        ),
        sampling_through(hub.url("/sse"), "sse", "ev2", "sampled over sse"),
    );
    tokio::join!(
        elicitation_through(hub.url("/mcp"), "streamable-http", "ev2", "Ada"),
        elicitation_through(hub.url("/sse"), "sse", "ev", "Grace"),
    );
    hub.stop().await;
}

/// The Python SDK client (sampling and elicitation callbacks) through the hub to
/// server-everything over every transport pair: client on Streamable HTTP and on legacy SSE,
/// upstream over stdio, Streamable HTTP and legacy SSE. Each pair runs sampling, elicitation
/// and a long-running call with progress. The three upstreams of one client transport run
/// concurrently; each upstream serves one call at a time.
#[tokio::test]
async fn python_peer_over_every_transport_pair() {
    let (hub, _http, _sse) = everything_hub().await;
    wait_for_capability_tools(&hub, &EV).await;
    for (path, transport) in [("/mcp", "streamable-http"), ("/sse", "sse")] {
        let url = hub.url(path);
        let runs = EV.map(|server| {
            let url = url.clone();
            async move {
                let reply = format!("sampled via {server}");
                sampling_through(url.clone(), transport, server, &reply).await;
                elicitation_through(url.clone(), transport, server, "Lin").await;
                progress_through(url, transport, server).await;
            }
        });
        let [a, b, c] = runs;
        tokio::join!(a, b, c);
    }
    hub.stop().await;
}

async fn progress_through(url: String, transport: &str, server: &str) {
    let tool = format!("{server}__trigger-long-running-operation");
    let args = with(
        py(transport, &url),
        &[
            ("--call", &tool),
            ("--args", r#"{"duration": 0.6, "steps": 3}"#),
        ],
    );
    let mut args = args;
    args.push("--progress".into());
    let out = python_client(args).await;
    let steps = out["progress"].as_array().expect("progress recorded");
    assert_eq!(steps.len(), 3, "{transport} -> {server}: {out}");
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["progress"].as_f64(), Some((i + 1) as f64), "{step}");
        assert_eq!(step["total"].as_f64(), Some(3.0), "{step}");
    }
    assert!(
        text_of(&out["call"]).starts_with("Long running operation completed"),
        "{transport} -> {server}: {}",
        out["call"]
    );
}

/// server-everything registers these after the hub's `initialized` and announces the change.
async fn wait_for_capability_tools(hub: &TestHub, servers: &[&str]) {
    let mut c = hub.client("/mcp").await;
    let tools = ["trigger-sampling-request", "trigger-elicitation-request"];
    let wanted: Vec<String> = servers
        .iter()
        .flat_map(|s| tools.map(|t| format!("{s}__{t}")))
        .collect();
    let listed = eventually(Duration::from_secs(10), async || {
        let names = c.tool_names().await;
        wanted.iter().all(|w| names.contains(w))
    })
    .await;
    assert!(
        listed,
        "{wanted:?} never listed: {:?}",
        c.tool_names().await
    );
}

async fn sampling_through(url: String, transport: &str, server: &str, reply: &str) {
    let prompt_args =
        json!({"prompt": format!("Say hi over {transport}"), "maxTokens": 20}).to_string();
    let tool = format!("{server}__trigger-sampling-request");
    let args = with(
        py(transport, &url),
        &[
            ("--sampling-reply", reply),
            ("--call", &tool),
            ("--args", &prompt_args),
        ],
    );
    let out = python_client(args).await;
    let requests = out["sampling_requests"]
        .as_array()
        .expect("sampling_requests");
    assert_eq!(requests.len(), 1, "{transport}: {out}");
    let user_text = &requests[0]["messages"][0]["content"]["text"];
    assert_eq!(
        user_text,
        &json!(format!(
            "Resource trigger-sampling-request context: Say hi over {transport}"
        ))
    );
    assert_eq!(
        requests[0]["systemPrompt"], "You are a helpful test server.",
        "{transport}"
    );
    assert_eq!(requests[0]["maxTokens"], 20, "{transport}");
    let text = text_of(&out["call"]);
    assert!(
        text.starts_with("LLM sampling result:"),
        "{transport}: {}",
        out["call"]
    );
    assert!(
        text.contains(reply) && text.contains("switchboard-test-model"),
        "{transport}: {text}"
    );
}

async fn elicitation_through(url: String, transport: &str, server: &str, name: &str) {
    let content = json!({"name": name, "check": true, "integer": 7}).to_string();
    let tool = format!("{server}__trigger-elicitation-request");
    let args = with(
        py(transport, &url),
        &[("--elicit-accept", &content), ("--call", &tool)],
    );
    let out = python_client(args).await;
    let requests = out["elicitation_requests"]
        .as_array()
        .expect("elicitation_requests");
    assert_eq!(requests.len(), 1, "{transport}: {out}");
    assert_eq!(
        requests[0]["requestedSchema"]["required"],
        json!(["name"]),
        "{transport}: {}",
        requests[0]
    );
    let text = all_text(&out["call"]);
    assert_eq!(out["call"]["isError"], false, "{transport}: {text}");
    for line in [
        format!("- Name: {name}"),
        "- Agreed to terms: true".into(),
        "- Favorite Integer: 7".into(),
    ] {
        assert!(
            text.contains(&line),
            "{transport}: {line:?} missing from {text}"
        );
    }
}

// ---- 4. `switchboard stdio` as a real binary under the Python client ----

#[tokio::test]
async fn python_client_drives_switchboard_stdio() {
    let dir = TempDir::new("interop-stdio");
    // The client starts the hub in a session of its own: find what is left through this marker.
    let leftovers = Sweep(dir.0.display().to_string());
    let entry = json!({"command": node(), "args": [everything(), "stdio"], "env": {"SWITCHBOARD_TEST_MARKER": leftovers.0}});
    let servers = dir.write("servers.json", &json!({"mcpServers": {"ev": entry}}));
    let command = format!(
        "{} stdio --servers {}",
        shell_quote(&switchboard_bin()),
        shell_quote(&servers)
    );
    let args = with(
        vec![
            "--transport".into(),
            "stdio".into(),
            "--command".into(),
            command,
        ],
        &[
            ("--call", "ev__get-sum"),
            ("--args", r#"{"a": 40, "b": 2}"#),
            ("--prompt", "ev__args-prompt"),
            ("--prompt-args", r#"{"city": "Oslo"}"#),
            ("--read", DOC),
        ],
    );
    let out = python_client(args).await;
    assert_eq!(out["server_info"]["name"], "switchboard", "{out}");
    assert!(
        has(&out["tools"], "ev__echo") && has(&out["tools"], "ev__get-sum"),
        "{}",
        out["tools"]
    );
    assert!(
        has(&out["prompts"], "ev__args-prompt"),
        "{}",
        out["prompts"]
    );
    assert!(
        has(&out["resources"], DOC),
        "a lone server keeps its URIs: {}",
        out["resources"]
    );
    assert_eq!(
        text_of(&out["call"]),
        "The sum of 40 and 2 is 42.",
        "{}",
        out["call"]
    );
    assert_eq!(
        out["prompt"]["messages"][0]["content"]["text"], "What's weather in Oslo?",
        "{}",
        out["prompt"]
    );
    assert_eq!(out["read"]["contents"][0]["uri"], DOC, "{}", out["read"]);
    let gone = eventually(Duration::from_secs(10), async || {
        marked_processes(&leftovers.0).is_empty()
    })
    .await;
    assert!(
        gone,
        "the hub or its upstream outlived the client: pids {:?}",
        marked_processes(&leftovers.0)
    );
}

// ---- 5. the Python SDK's default client (mcp.Client, default mode) over every transport ----

/// A new user writes `mcp.Client(url)` with no `mode=`: on this SDK version that probes
/// `server/discover` and, since the hub advertises 2026-07-28, speaks the stateless revision,
/// validating `resultType`, `ttlMs` and `cacheScope` on every result. It must work over the
/// hub's Streamable HTTP and legacy SSE endpoints and over `switchboard stdio`.
#[tokio::test]
async fn the_python_sdks_default_client_works_over_stdio_streamable_http_and_sse() {
    let http = spawn_http(FixtureOptions::new("fh")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"fs": stdio_fixture("fs", &[]), "fh": http_entry(&http.url)}}),
    )
    .await;
    let dir = TempDir::new("interop-default");
    let leftovers = Sweep(dir.0.display().to_string());
    let mut entry = stdio_fixture("fs", &[]);
    entry["env"] = json!({"SWITCHBOARD_TEST_MARKER": leftovers.0});
    let servers = dir.write("servers.json", &json!({"mcpServers": {"fs": entry}}));
    let stdio = vec![
        "--transport".into(),
        "stdio".into(),
        "--command".into(),
        format!(
            "{} stdio --servers {}",
            shell_quote(&switchboard_bin()),
            shell_quote(&servers)
        ),
    ];
    tokio::join!(
        default_mode_through(py("streamable-http", &hub.url("/mcp")), "fh__echo"),
        default_mode_through(py("sse", &hub.url("/sse")), "fh__echo"),
        default_mode_through(stdio, "fs__echo"),
    );
    hub.stop().await;
}

async fn default_mode_through(args: Vec<String>, tool: &str) {
    let what = args[1].clone();
    let args = with(
        args,
        &[
            ("--mode", "default"),
            ("--call", tool),
            ("--args", r#"{"text": "default mode"}"#),
            ("--prompt", "fs__greeting"),
            ("--prompt-args", r#"{"name": "Ada"}"#),
            ("--read", "switchboard://fs/fixture://info"),
        ],
    );
    let args = if what == "stdio" {
        // A lone server keeps its URIs.
        args.into_iter()
            .map(|a| {
                if a == "switchboard://fs/fixture://info" {
                    "fixture://info".to_string()
                } else {
                    a
                }
            })
            .collect()
    } else {
        args
    };
    let out = python_client(args).await;
    assert_eq!(out["mode"], "default", "{what}: {out}");
    assert_eq!(
        out["protocol_version"], "2026-07-28",
        "{what}: the SDK's default mode should negotiate the stateless revision: {out}"
    );
    assert!(has(&out["tools"], tool), "{what}: {}", out["tools"]);
    assert!(
        has(&out["prompts"], "fs__greeting"),
        "{what}: {}",
        out["prompts"]
    );
    assert_eq!(
        text_of(&out["call"]),
        "default mode",
        "{what}: {}",
        out["call"]
    );
    assert!(
        out["prompt"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Hello, Ada!"),
        "{what}: {}",
        out["prompt"]
    );
    assert_eq!(
        out["read"]["contents"][0]["text"], "fixture fs",
        "{what}: {}",
        out["read"]
    );
}

/// Kills, on drop, every process whose command line or environment mentions the marker.
struct Sweep(String);

impl Drop for Sweep {
    fn drop(&mut self) {
        for pid in marked_processes(&self.0) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn marked_processes(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let pids = entries.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|&pid| pid != me && mentions(pid, marker))
        .collect()
}

fn mentions(pid: i32, marker: &str) -> bool {
    ["cmdline", "environ"].iter().any(|f| {
        std::fs::read(format!("/proc/{pid}/{f}"))
            .is_ok_and(|b| String::from_utf8_lossy(&b).contains(marker))
    })
}

/// Single-quotes a path for the client's shlex split.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-{tag}-{}",
            switchboard_hub::random_id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, value.to_string()).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The project's conformance fixture over Streamable HTTP, killed on drop.
async fn conformance_fixture() -> (String, Child, GroupGuard) {
    let mut cmd = Command::new(fixture_bin());
    cmd.args(["http", "--conformance", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let (mut child, guard) = spawn_guarded(&mut cmd);
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("fixture start")
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("listening ")
        .expect("listening line")
        .trim()
        .to_string();
    (url, child, guard)
}

#[tokio::test]
async fn a_session_client_answers_a_stateless_upstreams_questions() {
    let (url, _child, _guard) = conformance_fixture().await;
    let hub = TestHub::start(json!({"mcpServers": {"cm": {"type": "streamable-http", "url": url, "protocol": "2026-07-28"}}})).await;
    assert_eq!(
        server_status(&hub.hub, "cm").protocol.as_deref(),
        Some("2026-07-28")
    );
    let args = with(
        py("streamable-http", &hub.url("/mcp/cm")),
        &[
            ("--call", "test_input_required_result_elicitation"),
            ("--args", "{}"),
            ("--elicit-accept", r#"{"name":"Ada"}"#),
        ],
    );
    let report = python_client(args).await;
    assert_eq!(all_text(&report["call"]), "Hello, Ada!", "{report}");
    let asked = report["elicitation_requests"]
        .as_array()
        .expect("elicitation requests");
    assert_eq!(
        asked.len(),
        1,
        "the client was asked once, for real: {report}"
    );
    assert_eq!(asked[0]["message"], "What is your name?");
    hub.stop().await;
}

// ---- proxy sessions: NDJSON frames from server-everything's long-running tool ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_streams_server_everythings_long_running_operation() {
    use crate::sessions::{check_grammar, frames, open, start, stream};
    let ev = Everything::start("streamableHttp").await;
    let (api, _clock) = start().await;
    let (id, prefix) = open(&api, json!({"remote_url": ev.url("/mcp")})).await;
    let tools = api
        .admin()
        .get(format!("/api/v1/server/{id}/tools"))
        .expect(200)
        .await;
    assert_eq!(tools["prefix"], prefix.as_str());
    let tool = "trigger-long-running-operation";
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == tool),
        "{tools}"
    );
    // 2 s in 4 steps: a progress frame every 500 ms, then the result.
    let f = frames(stream(&api, &id, tool, json!({"duration": 2, "steps": 4})).await).await;
    check_grammar(&f);
    let progress: Vec<_> = f.iter().filter(|(_, v)| v["type"] == "progress").collect();
    assert_eq!(progress.len(), 4, "{f:?}");
    assert_eq!(progress[3].1["progress"].as_f64(), Some(4.0));
    assert_eq!(progress[3].1["total"].as_f64(), Some(4.0));
    let (result_at, result) = &f[f.len() - 2];
    assert_eq!(result["type"], "result", "{result}");
    assert!(
        all_text(&result["result"]).contains("Long running operation completed"),
        "{result}"
    );
    // The frames arrived as the steps happened, not all at the end.
    assert!(
        *result_at >= progress[0].0 + Duration::from_millis(1200),
        "first progress at {:?}, result at {result_at:?}",
        progress[0].0
    );
    for w in progress.windows(2) {
        assert!(
            w[1].0 >= w[0].0 + Duration::from_millis(250),
            "{:?} then {:?}",
            w[0].0,
            w[1].0
        );
    }
    api.admin()
        .delete(format!("/api/v1/server/{id}"))
        .expect(200)
        .await;
    api.stop().await;
}
