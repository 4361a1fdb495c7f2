//! Several `switchboard serve` replicas on one PostgreSQL database, no sticky routing: a
//! client's requests land on whichever replica the test picks, and everything goes on
//! working (sealed session ids, the LISTEN/NOTIFY bus).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

pub(crate) const ADMIN: &str = "replicas-admin-token-0123456789";
const KEY: &str = "5ad0f00d5ad0f00d5ad0f00d5ad0f00d5ad0f00d5ad0f00d5ad0f00d5ad0f00d";

served_type! {
    /// One replica: the real binary on its own ports and data directory, sharing the database
    /// and the secret key with the others.
    pub(crate) struct Replica {}
}

impl Replica {
    pub(crate) async fn start(db: &PgDatabase, servers: Option<&std::path::Path>) -> Replica {
        let mut b = Served::builder(ADMIN)
            .name("replica")
            .args(&["--database-url", &db.url(), "--secret-key", KEY])
            // The poll is only the fallback: a minute, so the test sees the bus at work.
            .args(&["--reconcile-interval-ms", "60000"])
            .ready("/ready");
        if let Some(s) = servers {
            b = b.args(&["--servers", s.to_str().unwrap()]);
        }
        Replica {
            served: b.start().await,
        }
    }

    pub(crate) async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.main),
            )
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

impl Replica {
    /// A new user `name` (role user, every endpoint) and an API key of theirs: (key id,
    /// secret).
    pub(crate) async fn user_key(&self, name: &str) -> (String, String) {
        let (status, user) = self
            .api(
                "POST",
                "/api/v1/users",
                Some(json!({"username": name, "password": "a long enough password", "role": "user", "grants": ["*"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let (status, key) = self
            .api(
                "POST",
                "/api/v1/keys",
                Some(json!({"name": name, "user_id": user["id"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        let text = |k: &str| key[k].as_str().unwrap().to_string();
        (text("id"), text("key"))
    }
}

/// Session `id`'s GET stream at `url` (asserted open), as its messages arrive.
pub(crate) async fn session_stream(
    url: &str,
    id: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let get = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", id)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    messages(get)
}

/// Waits until `client` lists `tool` (at most `secs` seconds).
async fn lists_within(client: &mut McpClient, tool: &str, secs: u64) {
    let listed = eventually(Duration::from_secs(secs), async || {
        client.tool_names().await.contains(&tool.to_string())
    })
    .await;
    assert!(listed, "{tool} was never listed");
}

/// An event stream's `data:` lines as JSON messages, as they arrive.
pub(crate) fn messages(mut resp: reqwest::Response) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:")
                        && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                    {
                        let _ = tx.send(v);
                    } else if let Some(data) = line.strip_prefix("data:") {
                        // The legacy SSE endpoint event is a bare path.
                        let _ = tx.send(Value::String(data.trim().to_string()));
                    }
                }
            }
        }
    });
    rx
}

pub(crate) async fn next_message(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    what: &str,
    mut wanted: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(v)) if wanted(&v) => return v,
            Ok(Some(_)) => {}
            _ => panic!("no {what} within 10 s"),
        }
    }
}

/// Two replicas on a database of their own; the first has the servers file with the stdio
/// fixture `f`, the second learns it from the store. Bind the database first so it is
/// dropped last.
async fn two_replicas() -> (PgDatabase, Replica, Replica) {
    let db = PgDatabase::create("replicas");
    let a = Replica::start(&db, Some(&servers_file(&tempdir()))).await;
    let b = Replica::start(&db, None).await;
    (db, a, b)
}

fn servers_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("servers.json");
    std::fs::write(
        &path,
        json!({"mcpServers": {"f": stdio_fixture("f", &[])}}).to_string(),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_session_goes_on_through_any_replica_and_a_delete_ends_it_on_all() {
    init();
    let (db, a, b) = two_replicas().await;
    let url_a = format!("{}/mcp", a.mcp);
    let url_b = format!("{}/mcp", b.mcp);
    // B learns the servers file's server from the store.
    assert!(
        eventually(Duration::from_secs(20), async || {
            let mut c = McpClient::connect(&url_b).await;
            c.tool_names().await.contains(&"f__echo".to_string())
        })
        .await,
        "replica B never served f"
    );

    let mut client = McpClient::connect_with(&url_a, json!({"sampling": {}})).await;
    let id = client.session.clone().unwrap();
    assert!(id.starts_with("sbs1."), "a sealed id: {id}");
    assert!(id.len() < 600, "{} bytes", id.len());
    // The same session, on B, which never saw it.
    client.url = url_b.clone();
    let r = client.call("f__echo", json!({"text": "via b"})).await;
    assert_eq!(text_of(&r), "via b");
    // A made-up or edited id is still unknown on every replica.
    let mut forged = client.session.clone().unwrap();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let mut stranger = McpClient::unconnected(&url_b);
    stranger.session = Some(forged);
    let (status, _, _) = stranger
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The server asks the client something during a call on A; the answer lands on B and
    // still reaches the call.
    client.url = url_a.clone();
    let call = reqwest::Client::new()
        .post(&url_a)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", &id)
        .body(json!({"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": {"name": "f__sample", "arguments": {"prompt": "hi"}}}).to_string())
        .send()
        .await
        .unwrap();
    let mut events = messages(call);
    let ask = next_message(&mut events, "sampling request", |m| {
        m["method"] == "sampling/createMessage"
    })
    .await;
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "from b"}, "model": "m"}});
    client.url = url_b.clone();
    let (status, _, text) = client.post(answer.to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let done = next_message(&mut events, "the call's result", |m| m["id"] == 50).await;
    assert_eq!(text_of(&done["result"]), "sampled: from b", "{done}");

    // The GET stream is on B; a server added through A announces itself there.
    let mut stream = session_stream(&url_b, &id).await;
    let added = Instant::now();
    let (status, body) = a
        .api(
            "POST",
            "/api/v1/servers",
            Some(json!({"name": "g", "command": fixture_bin().to_str().unwrap(), "args": ["stdio", "--name", "g"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    next_message(&mut stream, "tools/list_changed on B", |m| {
        m["method"] == "notifications/tools/list_changed"
    })
    .await;
    let took = added.elapsed();
    assert!(took < Duration::from_secs(3), "list_changed after {took:?}");
    assert!(client.tool_names().await.contains(&"g__echo".to_string()));

    // DELETE on B ends the session everywhere.
    let del = reqwest::Client::new()
        .delete(&url_b)
        .header("mcp-session-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::OK);
    let mut ended = false;
    for _ in 0..20 {
        client.url = url_a.clone();
        let (status, _, _) = client
            .post(json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}).to_string())
            .await;
        if status == StatusCode::NOT_FOUND {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "the deleted session still answers on A");
    // A replica started after the DELETE does not resume it either.
    let c = Replica::start(&db, None).await;
    client.url = format!("{}/mcp", c.mcp);
    let (status, _, _) = client
        .post(json!({"jsonrpc": "2.0", "id": 100, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a new replica resumed a deleted session"
    );
    eprintln!("replicas: list_changed across replicas after {took:?}");
}

#[tokio::test]
async fn legacy_sse_posts_and_key_revocation_cross_replicas() {
    init();
    let (_db, a, b) = two_replicas().await;

    // A legacy SSE stream on A; its messages are posted to B.
    let sse = reqwest::Client::new()
        .get(format!("{}/sse", a.mcp))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut stream = messages(sse);
    let endpoint = next_message(&mut stream, "the endpoint event", Value::is_string).await;
    let endpoint = endpoint.as_str().unwrap().to_string();
    assert!(endpoint.contains("sessionId=sbs1."), "{endpoint}");
    let post_b = async |body: Value| {
        reqwest::Client::new()
            .post(format!("{}{endpoint}", b.mcp))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(post_b(init).await, StatusCode::ACCEPTED);
    let r = next_message(&mut stream, "initialize's reply on A", |m| m["id"] == 1).await;
    assert_eq!(r["result"]["serverInfo"]["name"], "switchboard", "{r}");
    assert_eq!(
        post_b(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await,
        StatusCode::ACCEPTED
    );
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "f__echo", "arguments": {"text": "sse via b"}}});
    assert_eq!(post_b(call).await, StatusCode::ACCEPTED);
    let r = next_message(&mut stream, "the call's reply on A", |m| m["id"] == 2).await;
    assert_eq!(text_of(&r["result"]), "sse via b", "{r}");
    // An id nobody issued is refused at once.
    let bogus = reqwest::Client::new()
        .post(format!("{}/messages?sessionId=sbs1.AAAA", b.mcp))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), StatusCode::NOT_FOUND);

    // A key made on A works on B; revoked on A, B refuses it within about a second.
    let (key_id, secret) = a.user_key("rosa").await;
    let me = async |base: &str| {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(me(&b.main).await, StatusCode::OK);
    let (status, body) = a
        .api("DELETE", &format!("/api/v1/keys/{key_id}"), None)
        .await;
    assert!(status.is_success(), "{status} {body}");
    let revoked = Instant::now();
    while me(&b.main).await != StatusCode::UNAUTHORIZED {
        assert!(
            revoked.elapsed() < Duration::from_millis(1500),
            "B still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "replicas: a key revoked on A was refused on B after {:?}",
        revoked.elapsed()
    );
}

pub(crate) fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sb-replicas-{}",
        switchboard_control::identity::random_hex(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn sigterm_drains_a_replica_streams_go_back_and_calls_in_flight_finish() {
    init();
    let db = PgDatabase::create("replicas");
    let tmp = tempdir();
    let mut a = Replica::start(&db, Some(&servers_file(&tmp))).await;
    let url = format!("{}/mcp", a.mcp);
    let mut client = McpClient::connect(&url).await;
    lists_within(&mut client, "f__slow", 10).await;
    let id = client.session.clone().unwrap();
    let mut stream = session_stream(&url, &id).await;
    let slow = {
        let mut c = McpClient::unconnected(&url);
        c.session = Some(id.clone());
        tokio::spawn(async move { c.call("f__slow", json!({"ms": 1500})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // The stream is given back at once (the client would reconnect elsewhere)...
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while stream.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the GET stream was not released");
    let released = term.elapsed();
    // ...new connections are refused...
    assert!(reqwest::get(format!("{}/health", a.main)).await.is_err());
    // ...and the call in flight still gets its answer.
    let r = slow.await.unwrap();
    assert!(text_of(&r).contains("1500"), "{r}");
    let status = a.child.wait().unwrap();
    assert!(status.success(), "{status}");
    eprintln!(
        "replicas: stream released {released:?} after SIGTERM, exit after {:?}",
        term.elapsed()
    );
}

/// One stateless 2026-07-28 `tools/call` over Streamable HTTP; the last message.
async fn stateless_call(url: &str, params: &Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", params["name"].as_str().unwrap())
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    parse_messages(&ct, &text).pop().expect("a reply")
}

#[tokio::test]
async fn a_stateless_clients_retry_resumes_its_parked_call_on_another_replica() {
    init();
    let (_db, a, b) = two_replicas().await;
    let (url_a, url_b) = (format!("{}/mcp", a.mcp), format!("{}/mcp", b.mcp));
    assert!(
        eventually(Duration::from_secs(20), async || {
            let mut c = McpClient::connect(&url_b).await;
            c.tool_names().await.contains(&"f__elicit".to_string())
        })
        .await
    );
    let first = json!({"name": "f__elicit", "arguments": {"message": "Your name?"}, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}});
    // The session-era server asks mid-call on A; the hub parks the call there.
    let r = stateless_call(&url_a, &first).await;
    let result = &r["result"];
    assert_eq!(result["resultType"], "input_required", "{r}");
    let (key, _) = result["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let mut retry = first.clone();
    retry["inputResponses"] = json!({key: {"action": "accept", "content": {"name": "Ada"}}});
    retry["requestState"] = result["requestState"].clone();
    // The retry lands on B, which sends it to A and relays the answer.
    let r = stateless_call(&url_b, &retry).await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert!(text_of(&r["result"]).contains("Ada"), "{r}");
    // The state was used once: a second retry anywhere is refused.
    let again = stateless_call(&url_a, &retry).await;
    assert_eq!(again["error"]["code"], -32602, "{again}");
}

#[tokio::test]
async fn a_resource_update_reaches_the_stream_another_replica_holds() {
    init();
    let (_db, a, b) = two_replicas().await;
    let (url_a, url_b) = (format!("{}/mcp", a.mcp), format!("{}/mcp", b.mcp));
    let mut client = McpClient::connect(&url_a).await;
    lists_within(&mut client, "f__touch", 10).await;
    // The stream is on B; the subscription, and so the update, happen on A.
    let id = client.session.clone().unwrap();
    let mut stream = session_stream(&url_b, &id).await;
    let r = client
        .request("resources/subscribe", json!({"uri": "fixture://info"}))
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let r = client
        .call("f__touch", json!({"uri": "fixture://info"}))
        .await;
    assert_eq!(text_of(&r), "touched fixture://info");
    let update = next_message(&mut stream, "resources/updated on B", |m| {
        m["method"] == "notifications/resources/updated"
    })
    .await;
    assert_eq!(update["params"]["uri"], "fixture://info", "{update}");
}

#[tokio::test]
async fn only_the_credential_that_opened_a_session_uses_it_on_any_replica() {
    init();
    let (_db, a, b) = two_replicas().await;
    let mut keys = Vec::new();
    for name in ["ines", "jon"] {
        keys.push(a.user_key(name).await.1);
    }
    let mut owner = McpClient::connect_authorized(&format!("{}/mcp", a.main), &keys[0]).await;
    let id = owner.session.clone().unwrap();
    for replica in [&a, &b] {
        let mut other = McpClient::unconnected(&format!("{}/mcp", replica.main));
        other.bearer = Some(keys[1].clone());
        other.session = Some(id.clone());
        let (status, _, text) = other
            .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{}: {text}", replica.main);
    }
    owner.url = format!("{}/mcp", b.main);
    let (status, _, text) = owner
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    // The same for a legacy SSE stream: only its opener may post to it, on any replica.
    let sse = reqwest::Client::new()
        .get(format!("{}/sse", a.main))
        .bearer_auth(&keys[0])
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    let mut stream = messages(sse);
    let endpoint = next_message(&mut stream, "the endpoint event", Value::is_string).await;
    let endpoint = endpoint.as_str().unwrap().to_string();
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}).to_string();
    for (replica, key, want) in [
        (&a, &keys[1], StatusCode::NOT_FOUND),
        (&b, &keys[1], StatusCode::NOT_FOUND),
        (&b, &keys[0], StatusCode::ACCEPTED),
    ] {
        let status = reqwest::Client::new()
            .post(format!("{}{endpoint}", replica.main))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(ping.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, want, "{} with key {}", replica.main, &key[..10]);
    }
    let pong = next_message(&mut stream, "the ping's reply on A", |m| m["id"] == 9).await;
    assert!(pong.get("result").is_some(), "{pong}");
}

#[tokio::test]
async fn a_cancellation_sent_to_another_replica_stops_the_call() {
    init();
    let (_db, a, b) = two_replicas().await;
    let (url_a, url_b) = (format!("{}/mcp", a.mcp), format!("{}/mcp", b.mcp));
    let mut client = McpClient::connect(&url_a).await;
    lists_within(&mut client, "f__hang", 10).await;
    let id = client.session.clone().unwrap();
    let hang = {
        let (url, id) = (url_a.clone(), id.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-session-id", &id)
                .body(json!({"jsonrpc": "2.0", "id": 70, "method": "tools/call", "params": {"name": "f__hang", "arguments": {}}}).to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.url = url_b;
    client
        .notify(
            "notifications/cancelled",
            Some(json!({"requestId": 70, "reason": "changed my mind"})),
        )
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(5), hang).await;
    assert!(
        ended.is_ok(),
        "the call on A still runs after a cancel sent to B"
    );
    // The server hears the cancellation from A's hub (asynchronously).
    client.url = url_a;
    let mut stats = Value::Null;
    let cancelled = eventually(Duration::from_secs(5), async || {
        stats = client.call("f__stats", json!({})).await;
        stats["structuredContent"]["cancelled"] == 1
    })
    .await;
    assert!(cancelled, "{stats}");
}
