//! The smart endpoint from the MCP Inspector's CLI (`@modelcontextprotocol/inspector`, pinned in
//! tests/interop/package.json, installed by `scripts/test-deps.sh`): `tools/list` shows the
//! three meta-tools, `search_tools` finds a tool, `call_tool` calls it, and an unknown tool is
//! a clear error. The Inspector runs as its own process (`node <launcher> --cli URL ...`) in
//! its own process group, killed on timeout; its catalog and home go to a scratch directory.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};
use tokio::process::Command;

use crate::common::*;

/// One Inspector run may take this long (node starts in about half a second when idle).
const DEADLINE: Duration = Duration::from_secs(60);

fn dep(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `bash scripts/test-deps.sh` and source .test-deps/env.sh")
    })
}

/// `inspector --cli URL --transport http --method METHOD ARGS...`: exit status, stdout, stderr.
async fn inspector(scratch: &PathBuf, url: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(dep("SWITCHBOARD_TEST_NODE"));
    cmd.arg(dep("SWITCHBOARD_TEST_INSPECTOR"))
        .args(["--cli", url, "--transport", "http"])
        .args(args)
        .env("HOME", scratch)
        .env("MCP_CATALOG_PATH", scratch.join("catalog.json"))
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the Inspector did not finish in {DEADLINE:?}: {args:?}"))
        .expect("run the Inspector");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Inspector's JSON answer on stdout.
async fn inspector_json(scratch: &PathBuf, url: &str, args: &[&str]) -> Value {
    let (ok, out, err) = inspector(scratch, url, args).await;
    assert!(
        ok,
        "Inspector {args:?} failed:\nstdout: {out}\nstderr: {err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"))
}

#[tokio::test]
async fn the_mcp_inspector_cli_lists_searches_and_calls_through_the_smart_endpoint() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"web": http_entry(&http.url), "local": stdio_fixture("local", &[])}}),
    )
    .await;
    let url = hub.url("/mcp/$smart");
    let scratch = std::env::temp_dir().join(format!(
        "switchboard-inspector-{}-{}",
        std::process::id(),
        hub.addr.port()
    ));
    std::fs::create_dir_all(&scratch).unwrap();

    let list = inspector_json(&scratch, &url, &["--method", "tools/list"]).await;
    let names: Vec<&str> = list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["search_tools", "describe_tool", "call_tool"],
        "{list}"
    );

    let found = inspector_json(
        &scratch,
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "search_tools",
            "--tool-arg",
            "query=add two numbers together",
            "limit=3",
        ],
    )
    .await;
    let tools = found["structuredContent"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("structured tools: {found}"));
    assert!(
        tools.len() <= 3 && tools[0]["name"].as_str().unwrap().ends_with("__add"),
        "{found}"
    );

    let called = inspector_json(
        &scratch,
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "call_tool",
            "--tool-arg",
            "name=local__add",
            r#"arguments={"a": 2, "b": 40}"#,
        ],
    )
    .await;
    assert_eq!(text_of(&called), "42", "{called}");

    // An unknown tool: the Inspector reports the hub's error and exits non-zero.
    let (ok, out, err) = inspector(
        &scratch,
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "call_tool",
            "--tool-arg",
            "name=nope__missing",
            "arguments={}",
        ],
    )
    .await;
    assert!(
        !ok && format!("{out}{err}").contains("unknown tool: nope__missing"),
        "stdout: {out}\nstderr: {err}"
    );

    let _ = std::fs::remove_dir_all(&scratch);
    hub.stop().await;
}
