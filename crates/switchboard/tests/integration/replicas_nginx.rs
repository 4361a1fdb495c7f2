//! Three replicas behind Debian's nginx in plain round robin (no affinity of any kind), on
//! one PostgreSQL database: the official Python SDK client with sampling and progress against
//! server-everything, a legacy SSE client, `list_changed` after a server is added on one
//! replica, a key revoked on one replica refused through the balancer, and a replica killed
//! with SIGKILL in the middle of a session that then goes on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::replicas::{Replica, next_message, session_stream, tempdir};

fn dep(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh (it runs scripts/test-deps.sh)")
    })
}

/// nginx in the foreground with a configuration of the test's own: one round-robin upstream
/// for the replicas' MCP services and one for their main services.
struct Nginx {
    child: Child,
    mcp: String,
    main: String,
}

impl Nginx {
    fn start(dir: &Path, replicas: &[&Replica]) -> Nginx {
        let (mcp_port, main_port) = (free_port(), free_port());
        let servers = |pick: &dyn Fn(&Replica) -> &str| {
            replicas
                .iter()
                .map(|r| {
                    format!(
                        "server {} max_fails=1 fail_timeout=2s;",
                        pick(r).trim_start_matches("http://")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n        ")
        };
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream mcp {{
        {mcp_servers}
    }}
    upstream main {{
        {main_servers}
    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_read_timeout 1h;
    proxy_connect_timeout 2s;
    server {{
        listen 127.0.0.1:{mcp_port};
        location / {{ proxy_pass http://mcp; }}
    }}
    server {{
        listen 127.0.0.1:{main_port};
        location / {{ proxy_pass http://main; }}
    }}
}}
"#,
            dir = dir.display(),
            mcp_servers = servers(&|r| r.mcp.as_str()),
            main_servers = servers(&|r| r.main.as_str()),
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(dep("SWITCHBOARD_TEST_NGINX"))
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        Nginx {
            child,
            mcp: format!("http://127.0.0.1:{mcp_port}"),
            main: format!("http://127.0.0.1:{main_port}"),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/interop/mcp_client.py` (the official Python SDK) and returns its report.
async fn python(args: &[&str]) -> Value {
    let mut cmd = tokio::process::Command::new(dep("SWITCHBOARD_TEST_PYTHON"));
    cmd.arg(dep("SWITCHBOARD_TEST_MCP_CLIENT"))
        .args(["--timeout", "40"])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the python client finishes within 60 s")
        .expect("the python client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn everything_file(dir: &Path) -> PathBuf {
    let path = dir.join("servers.json");
    let entry = json!({"command": dep("SWITCHBOARD_TEST_NODE"), "args": [dep("SWITCHBOARD_TEST_EVERYTHING"), "stdio"]});
    std::fs::write(&path, json!({"mcpServers": {"ev": entry}}).to_string()).unwrap();
    path
}

#[tokio::test]
async fn three_replicas_behind_round_robin_nginx_serve_every_client_and_survive_a_kill() {
    init();
    let started = Instant::now();
    let db = PgDatabase::create("replicas");
    let tmp = tempdir();
    let first = Replica::start(&db, Some(&everything_file(&tmp))).await;
    let (second, third) = tokio::join!(Replica::start(&db, None), Replica::start(&db, None));
    let mut replicas = vec![first, second, third];
    let lb = Nginx::start(&tmp, &replicas.iter().collect::<Vec<_>>());
    let mcp = format!("{}/mcp", lb.mcp);
    // Every replica runs server-everything, which adds its sampling tool once initialized.
    let all_ready = eventually(Duration::from_secs(30), async || {
        let mut ok = true;
        for r in &replicas {
            let mut c = McpClient::connect(&format!("{}/mcp", r.mcp)).await;
            ok &= c
                .tool_names()
                .await
                .contains(&"ev__trigger-sampling-request".to_string());
        }
        ok
    })
    .await;
    assert!(all_ready, "server-everything never ready on every replica");

    // The Python SDK: initialize, lists, a call whose sampling request is answered by a POST
    // that lands on whichever replica nginx picks next.
    let args = json!({"prompt": "Say hi", "maxTokens": 20}).to_string();
    let out = python(&[
        "--transport",
        "streamable-http",
        "--url",
        &mcp,
        "--sampling-reply",
        "round robin",
        "--call",
        "ev__trigger-sampling-request",
        "--args",
        &args,
    ])
    .await;
    assert_eq!(
        out["sampling_requests"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
    let text = text_of(&out["call"]);
    assert!(text.contains("round robin"), "{out}");
    // Progress through the balancer.
    let out = python(&[
        "--transport",
        "streamable-http",
        "--url",
        &mcp,
        "--call",
        "ev__trigger-long-running-operation",
        "--args",
        r#"{"duration": 0.6, "steps": 3}"#,
        "--progress",
    ])
    .await;
    assert_eq!(out["progress"].as_array().map(Vec::len), Some(3), "{out}");
    // A legacy SSE client: its stream is on one replica, its posts on all three.
    let sse = format!("{}/sse", lb.mcp);
    let out = python(&[
        "--transport",
        "sse",
        "--url",
        &sse,
        "--call",
        "ev__echo",
        "--args",
        r#"{"message": "over sse"}"#,
    ])
    .await;
    assert!(text_of(&out["call"]).contains("over sse"), "{out}");

    // A session with its GET stream through nginx hears of a server added on one replica.
    let mut client = McpClient::connect(&mcp).await;
    let id = client.session.clone().unwrap();
    let mut stream = session_stream(&mcp, &id).await;
    let (status, body) = replicas[2]
        .api(
            "POST",
            "/api/v1/servers",
            Some(json!({"name": "f", "command": fixture_bin().to_str().unwrap(), "args": ["stdio", "--name", "f"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    next_message(&mut stream, "tools/list_changed", |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
    // Each replica starts its own process of the new server: within moments, every replica
    // lists it (three lists in a row, one per replica in round robin).
    let listed = eventually(Duration::from_secs(5), async || {
        let mut all = true;
        for _ in 0..3 {
            all &= client.tool_names().await.contains(&"f__echo".to_string());
        }
        all
    })
    .await;
    assert!(listed, "f__echo is not listed by every replica");

    // A key revoked through one replica is refused through the balancer within a second.
    let (_, user) = replicas[0]
        .api(
            "POST",
            "/api/v1/users",
            Some(json!({"username": "nia", "password": "a long enough password", "role": "user", "grants": ["*"]})),
        )
        .await;
    let (status, key) = replicas[1]
        .api(
            "POST",
            "/api/v1/keys",
            Some(json!({"name": "k", "user_id": user["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let me = async |secret: &str| {
        reqwest::Client::new()
            .get(format!("{}/api/v1/me", lb.main))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .status()
    };
    let secret = key["key"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(me(secret).await, StatusCode::OK);
    }
    let (status, _) = replicas[2]
        .api(
            "DELETE",
            &format!("/api/v1/keys/{}", key["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(status.is_success());
    let revoked = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut refused = 0;
    while refused < 3 {
        if me(secret).await == StatusCode::UNAUTHORIZED {
            refused += 1;
        } else {
            refused = 0;
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "a replica still takes the key"
            );
        }
    }

    // SIGKILL one replica mid-session: the client goes on through the other two.
    let victim = replicas.remove(1);
    let mut victim = victim;
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let killed = Instant::now();
    for i in 0..6 {
        let r = client
            .call("ev__echo", json!({"message": format!("after kill {i}")}))
            .await;
        assert!(text_of(&r).contains(&format!("after kill {i}")), "{r}");
    }
    eprintln!(
        "replicas_nginx: six calls after the kill took {:?}; whole test {:?}",
        killed.elapsed(),
        started.elapsed()
    );
    drop(stream);
}
