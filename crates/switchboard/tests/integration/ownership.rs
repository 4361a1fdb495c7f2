//! Who owns a server: entries from the servers file follow the file (on restart and while
//! running), entries created through the API are never overwritten by it, and an API edit
//! takes a file entry over.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::import_formats::{start, temp_dir};

fn write(path: &std::path::Path, doc: Value) {
    // Write then rename: the watcher never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, doc.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn remote(port: u16, timeout: f64) -> Value {
    json!({"url": format!("http://127.0.0.1:{port}/mcp"), "timeout": timeout})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_to_file_owned_entries_apply_on_restart_and_while_running() {
    init();
    let dir = temp_dir("own-file");
    let file = dir.join("servers.json");
    write(
        &file,
        json!({"mcpServers": {"a": remote(9, 5.0), "b": remote(9, 5.0)}}),
    );
    let data = dir.join("data");
    let hub = start(&data, Some(&file), &[]).await;
    assert_eq!(hub.server("a").await.unwrap()["origin"], "file");
    drop(hub);

    // Edited while the hub is down: applied on the next start.
    write(
        &file,
        json!({"mcpServers": {"a": remote(9, 7.0), "b": remote(9, 5.0)}}),
    );
    let hub = start(&data, Some(&file), &[]).await;
    assert_eq!(hub.server("a").await.unwrap()["config"]["timeout"], 7.0);
    assert!(
        hub.stderr().contains("Servers file changed a server.")
            && hub.stderr().contains("changed=timeout"),
        "{}",
        hub.stderr()
    );

    // Edited while running: applied within a few seconds, with one diff line naming fields.
    write(
        &file,
        json!({"mcpServers": {
            "a": {"url": "http://127.0.0.1:10/mcp", "timeout": 7.0, "headers": {"X-Key": "k"}},
            "c": remote(9, 5.0)
        }}),
    );
    let applied = eventually(Duration::from_secs(10), async || {
        hub.server("c").await.is_some() && hub.server("b").await.is_none()
    })
    .await;
    assert!(applied, "{}", hub.stderr());
    let a = hub.server("a").await.unwrap();
    assert_eq!(a["config"]["url"], "http://127.0.0.1:10/mcp");
    let log = hub.stderr();
    assert!(
        log.lines().any(|l| l.contains("server=a")
            && l.contains("changed=headers.X-Key, url")
            && !l.contains("\"k\"")),
        "{log}"
    );
    assert!(
        log.contains("Servers file no longer lists a server; removed it. server=b"),
        "{log}"
    );

    // A broken edit is reported and the running configuration stays.
    std::fs::write(&file, "{\"mcpServers\": {\"a\": {\"type\": \"nope\"").unwrap();
    let reported = eventually(Duration::from_secs(10), async || {
        hub.stderr().contains("Servers file changed but is invalid")
    })
    .await;
    assert!(reported, "{}", hub.stderr());
    assert!(hub.server("a").await.is_some() && hub.server("c").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_created_through_the_api_are_never_overwritten_by_the_file() {
    init();
    let dir = temp_dir("own-api");
    let file = dir.join("servers.json");
    write(&file, json!({"mcpServers": {"a": remote(9, 5.0)}}));
    let hub = start(&dir.join("data"), Some(&file), &[]).await;
    let (status, v) = hub
        .call(
            Method::POST,
            "/api/v1/servers",
            Some(json!({"name": "x", "url": "http://127.0.0.1:11/mcp", "timeout": 3})),
        )
        .await;
    assert!(status.is_success(), "{v}");
    assert_eq!(hub.server("x").await.unwrap()["origin"], "api");

    write(
        &file,
        json!({"mcpServers": {"a": remote(9, 5.0), "x": remote(12, 9.0)}}),
    );
    let warned = eventually(Duration::from_secs(10), async || {
        hub.stderr().contains("owns it. server=x")
    })
    .await;
    assert!(warned, "{}", hub.stderr());
    let x = hub.server("x").await.unwrap();
    assert_eq!(x["config"]["url"], "http://127.0.0.1:11/mcp");
    assert_eq!(x["origin"], "api");
    assert_eq!(
        hub.stderr().matches("owns it. server=x").count(),
        1,
        "one warn line per change of the file"
    );

    // Removing every entry from the file removes only what the file owns.
    write(&file, json!({"mcpServers": {}}));
    let removed = eventually(Duration::from_secs(10), async || {
        hub.server("a").await.is_none()
    })
    .await;
    assert!(removed, "{}", hub.stderr());
    assert!(hub.server("x").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_edit_takes_a_file_owned_server_over() {
    init();
    let dir = temp_dir("own-takeover");
    let file = dir.join("servers.json");
    write(&file, json!({"mcpServers": {"a": remote(9, 5.0)}}));
    let hub = start(&dir.join("data"), Some(&file), &[]).await;
    let (status, v) = hub
        .call(
            Method::PUT,
            "/api/v1/servers/a",
            Some(json!({"url": "http://127.0.0.1:13/mcp", "timeout": 4})),
        )
        .await;
    assert!(status.is_success(), "{v}");
    assert_eq!(v["origin"], "api", "{v}");
    let (ok, out, err) = hub.cli(&["servers", "show", "a"], &[]);
    assert!(ok && out.contains("owner:   api"), "{out}{err}");
    let (ok, out, _) = hub.cli(&["servers", "show", "a", "--json"], &[]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["origin"],
        "api"
    );
    assert!(
        hub.stderr().contains("the API owns it now"),
        "{}",
        hub.stderr()
    );
    // The file's next change no longer touches it.
    write(&file, json!({"mcpServers": {"a": remote(9, 8.0)}}));
    let warned = eventually(Duration::from_secs(10), async || {
        hub.stderr().contains("owns it. server=a")
    })
    .await;
    assert!(warned, "{}", hub.stderr());
    let a = hub.server("a").await.unwrap();
    assert_eq!(a["config"]["url"], "http://127.0.0.1:13/mcp");
}
