//! The real binary: configuration errors, stdio mode, and shutdown without orphans.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

fn write_servers(dir: &std::path::Path, value: &Value) -> std::path::PathBuf {
    let path = dir.join("servers.json");
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-test-{tag}-{}",
        switchboard_hub::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_servers_file_exits_2_naming_the_entry_before_binding() {
    let dir = temp_dir("badfile");
    let path = write_servers(
        &dir,
        &json!({"mcpServers": {"good": {"command": "true"}, "bad": {"type": "sse", "url": "ftp://x"}}}),
    );
    let port = free_port();
    let out = Command::new(switchboard_bin())
        .args(["serve", "--servers"])
        .arg(&path)
        .args([
            "--mcp-addr",
            &format!("127.0.0.1:{port}"),
            "--main-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("servers.json") && stderr.contains("mcpServers.bad.url"),
        "{stderr}"
    );
    assert!(
        !dir.join("data").exists(),
        "nothing may happen before the file is valid"
    );
    let out = Command::new(switchboard_bin())
        .args(["validate", "--servers"])
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stdio_mode_serves_one_client_on_stdin_and_stdout() {
    let dir = temp_dir("stdio");
    let path = write_servers(&dir, &json!({"mcpServers": {"f": stdio_fixture("f", &[])}}));
    let mut child = Command::new(switchboard_bin())
        .args(["stdio", "--servers"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    let mut recv = |id: i64| -> Value {
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "hub closed stdout"
            );
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout must be JSON only: {line:?}: {e}"));
            if v["id"] == id {
                return v;
            }
        }
    };
    send(
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    );
    assert_eq!(recv(1)["result"]["serverInfo"]["name"], "switchboard");
    send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        send(
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"f__echo","arguments":{"text":"stdio"}}}),
        );
        let r = recv(2);
        if r.get("result").is_some() {
            assert_eq!(text_of(&r["result"]), "stdio");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "upstream never became ready: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    #[allow(clippy::drop_non_drop)]
    drop(send);
    drop(stdin);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.is_some(), "hub did not exit when stdin closed");
    std::fs::remove_dir_all(&dir).ok();
}

fn wait_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[tokio::test]
async fn shutdown_leaves_no_process_behind() {
    init();
    let dir = temp_dir("shutdown");
    // "wrapped" mimics npx: a shell that leaves a grandchild in the server's process group.
    let wrapped = format!(
        "sleep 300 & exec {} stdio --name wrapped",
        fixture_bin().display()
    );
    let path = write_servers(
        &dir,
        &json!({"mcpServers": {"plain": stdio_fixture("plain", &[]), "wrapped": {"command": "sh", "args": ["-c", wrapped]}}}),
    );
    let port = free_port();
    let mut child = Command::new(switchboard_bin())
        .args(["serve", "--servers"])
        .arg(&path)
        .args([
            "--mcp-addr",
            &format!("127.0.0.1:{port}"),
            "--main-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut pids = Vec::new();
    let ready = eventually(Duration::from_secs(20), async || {
        let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/ready")).await else {
            return false;
        };
        let v: Value = resp.json().await.unwrap_or_default();
        v["ready"] == 2
    })
    .await;
    assert!(ready, "hub never became ready");
    let mut c = McpClient::connect(&url).await;
    let listed = c.call("switchboard__list_servers", json!({})).await;
    for s in listed["structuredContent"]["servers"].as_array().unwrap() {
        pids.push(s["pid"].as_i64().expect("stdio servers report their pid") as i32);
    }
    assert_eq!(pids.len(), 2);
    let group_members = |pgid: i32| -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit(')')
                            .next()
                            .map(|r| r.split_whitespace().nth(2) == Some(&pgid.to_string()))
                    })
                    .unwrap_or(false)
            })
            .collect()
    };
    assert!(
        pids.iter().any(|&p| group_members(p).len() >= 2),
        "the wrapper's grandchild should share its group"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.is_some(), "hub did not exit on SIGTERM");
    for pgid in pids {
        let left = group_members(pgid);
        assert!(left.is_empty(), "process group {pgid} still has {left:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_example_servers_files_are_valid() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["servers.json", "servers-remote.json"] {
        let out = Command::new(switchboard_bin())
            .args(["validate", "--servers"])
            .arg(examples.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok:"));
    }
}

#[test]
fn an_open_mcp_service_off_loopback_is_refused_before_anything_starts() {
    let dir = temp_dir("openmcp");
    let out = Command::new(switchboard_bin())
        .args([
            "serve",
            "--mcp-addr",
            "0.0.0.0:0",
            "--main-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without authentication") && stderr.contains("--mcp-auth required"),
        "{stderr}"
    );
    assert!(
        !dir.join("data").exists(),
        "refused before the store opened"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let dir = temp_dir("logjson");
    let mut child = Command::new(switchboard_bin())
        .args(["serve", "--log-format", "json", "--log", "info"])
        .args(["--main-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--mcp-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-token", "log-format-test-token-0123456789"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        let listening = v["message"] == "MCP service listening.";
        seen.push(v);
        if listening {
            break;
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    for line in lines {
        let line = line.unwrap();
        assert!(serde_json::from_str::<Value>(&line).is_ok(), "{line}");
    }
    assert!(child.wait().unwrap().success());
    let last = seen.last().expect("a log line");
    assert_eq!(last["level"], "INFO", "{last}");
    assert!(
        last["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{last}"
    );
    let ts = last["ts"].as_str().unwrap();
    assert!(
        ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    assert!(seen.iter().all(|v| v["target"].is_string()));
    std::fs::remove_dir_all(&dir).ok();
}
