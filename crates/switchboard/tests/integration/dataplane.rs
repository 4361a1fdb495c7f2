//! Aggregation, routing, naming and fidelity through the hub with the project's fixture servers.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, RawResponses, spawn_http, spawn_raw_http, spawn_sse};

use crate::common::*;

#[tokio::test]
async fn merges_three_transports_and_routes_calls() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let sse = spawn_sse(FixtureOptions::new("s")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {
        "alpha": stdio_fixture("alpha", &[]),
        "beta": http_entry(&http.url),
        "gamma": sse_entry(&sse.url),
    }}))
    .await;
    let mut c = hub.client("/mcp").await;
    let names = c.tool_names().await;
    for server in ["alpha", "beta", "gamma"] {
        for tool in ["echo", "add", "slow"] {
            let n = format!("{server}__{tool}");
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }
    assert!(names.contains(&"switchboard__list_servers".to_string()));
    for server in ["alpha", "beta", "gamma"] {
        let r = c
            .call(
                &format!("{server}__echo"),
                json!({"text": format!("via {server}")}),
            )
            .await;
        assert_eq!(text_of(&r), format!("via {server}"));
        let r = c
            .call(&format!("{server}__add"), json!({"a": 2, "b": 3}))
            .await;
        assert_eq!(r["structuredContent"]["sum"].as_f64(), Some(5.0), "{r}");
    }
    // The upstream saw the original name, so an unknown prefixed name is refused by the hub.
    let r = c
        .request("tools/call", json!({"name": "nope__echo", "arguments": {}}))
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    hub.stop().await;
}

#[tokio::test]
async fn single_server_and_group_endpoints() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(json!({
        "mcpServers": {"one": http_entry(&http.url), "two": stdio_fixture("two", &[])},
        "groups": {"team": ["two"]},
    }))
    .await;
    let mut solo = hub.client("/mcp/one").await;
    let names = solo.tool_names().await;
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("two__")));
    assert_eq!(
        text_of(&solo.call("echo", json!({"text": "plain"})).await),
        "plain"
    );

    let mut team = hub.client("/mcp/team").await;
    let names = team.tool_names().await;
    assert!(names.contains(&"two__echo".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("one__")), "{names:?}");
    let r = team
        .request(
            "tools/call",
            json!({"name": "one__echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(
        r["error"]["code"], -32602,
        "a group must not reach servers outside it: {r}"
    );

    let mut missing = McpClient::unconnected(&hub.url("/mcp/nobody"));
    let (status, _, _) = missing
        .post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}).to_string())
        .await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn colliding_and_overlong_names_stay_unique_and_routable() {
    let long_prefix = "a_really_long_tool_prefix_that_goes_on_and_on_";
    let a = spawn_http(FixtureOptions::new("a").with_prefix(long_prefix))
        .await
        .unwrap();
    let b = spawn_http(FixtureOptions::new("b").with_prefix(long_prefix))
        .await
        .unwrap();
    let hub = TestHub::start(json!({"mcpServers": {
        "server-with-a-long-name-one": http_entry(&a.url),
        "server-with-a-long-name-two": http_entry(&b.url),
    }}))
    .await;
    let mut c = hub.client("/mcp").await;
    let names = c.tool_names().await;
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        names.len(),
        "duplicate exported names: {names:?}"
    );
    for n in &names {
        assert!(n.len() <= 64, "{n} is longer than 64");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            "{n} has invalid characters"
        );
    }
    // Each shortened echo routes to its own server: the fixtures report their names.
    let echoes: Vec<&String> = names.iter().filter(|n| n.contains("echo")).collect();
    assert_eq!(echoes.len(), 2, "{names:?}");
    for e in echoes {
        let r = c.call(e, json!({"text": e})).await;
        assert_eq!(text_of(&r), *e);
    }
    hub.stop().await;
}

#[tokio::test]
async fn prompts_resources_and_completion_pass_through() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"p": http_entry(&http.url), "q": stdio_fixture("q", &[])}}),
    )
    .await;
    let mut c = hub.client("/mcp").await;

    let prompts = c.request("prompts/list", json!({})).await;
    let names: Vec<&str> = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"p__greeting") && names.contains(&"q__greeting"),
        "{names:?}"
    );
    let got = c
        .request(
            "prompts/get",
            json!({"name": "q__greeting", "arguments": {"name": "Ada"}}),
        )
        .await;
    assert!(
        got["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("Hello, Ada!"),
        "{got}"
    );

    // Both fixtures list the same URIs, so the hub rewrites them and routes them back.
    let list = c.request("resources/list", json!({})).await;
    let uris: Vec<&str> = list["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.contains(&"switchboard://p/fixture://info"), "{uris:?}");
    assert!(uris.contains(&"switchboard://q/fixture://info"), "{uris:?}");
    let read = c
        .request(
            "resources/read",
            json!({"uri": "switchboard://q/fixture://info"}),
        )
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "fixture q", "{read}");
    assert_eq!(
        read["result"]["contents"][0]["uri"], "switchboard://q/fixture://info",
        "{read}"
    );
    // A templated URI routes by its template prefix.
    let item = c
        .request("resources/read", json!({"uri": "fixture://item/42"}))
        .await;
    assert_eq!(item["result"]["contents"][0]["text"], "item 42", "{item}");
    let templates = c.request("resources/templates/list", json!({})).await;
    assert!(
        !templates["result"]["resourceTemplates"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{templates}"
    );
    let missing = c
        .request("resources/read", json!({"uri": "nowhere://x"}))
        .await;
    assert!(missing.get("error").is_some(), "{missing}");

    let comp = c
        .request(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "p__greeting"}, "argument": {"name": "name", "value": "al"}}),
        )
        .await;
    let values = comp["result"]["completion"]["values"].as_array().unwrap();
    assert_eq!(values, &vec![json!("alice"), json!("albert")], "{comp}");
    hub.stop().await;
}

#[tokio::test]
async fn relayed_messages_keep_unknown_fields_byte_for_byte() {
    let tools = r#"{"tools":[{"name":"vend","description":"d","inputSchema":{"type":"object","properties":{"q":{"type":"string","x-order":1}}},"x-vendor":{"tier":"gold","weights":[1,2.50,-0.0]},"execution":{"taskSupport":"optional"},"futureField":{"since":"2027-01-01"}}],"nextCursor":null,"x-list-meta":true}"#;
    let call = r#"{"content":[{"type":"text","text":"hi","x-block":{"a":null}}],"structuredContent":{"k":[{"deep":true}]},"isError":false,"x-vendor-result":{"id":"r1"},"futureResultField":[1,2,3]}"#;
    let raw = spawn_raw_http(RawResponses::new(tools, call)).await;
    let hub = TestHub::start(json!({"mcpServers": {"v": http_entry(&raw.url)}})).await;
    let mut c = hub.client("/mcp/v").await;
    let id = c.next_id();
    let (_, msgs, body) = c
        .post(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#
        ))
        .await;
    assert_eq!(msgs.len(), 1);
    let expected_list = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[{}]}}}}"#,
        &tools[10..tools.find("],\"nextCursor\"").unwrap()]
    );
    // The single-server view relays each tool object exactly as the upstream wrote it.
    let expected_tools = expected_list.replace(r#"]}}"#, r#",{"name":"switchboard__list_servers"#);
    assert!(
        body.starts_with(
            expected_tools
                .split(",{\"name\":\"switchboard__list_servers")
                .next()
                .unwrap()
        ),
        "{body}"
    );

    // A call: the request arrives upstream with only id and name changed, the result comes back unchanged.
    let req = r#"{"jsonrpc":"2.0","id":"abc-1","method":"tools/call","params":{"name":"vend","arguments":{"q":"x","n":1.50},"x-client-extra":{"keep":[true]}}}"#;
    raw.clear_received();
    let (_, _, body) = c.post(req.to_string()).await;
    assert_eq!(
        body,
        format!(r#"{{"jsonrpc":"2.0","id":"abc-1","result":{call}}}"#)
    );
    let upstream_saw = raw
        .received()
        .into_iter()
        .find(|r| r.contains("tools/call"))
        .expect("call reached upstream");
    let re_id = upstream_saw.replacen(&id_of(&upstream_saw), "\"abc-1\"", 1);
    assert_eq!(re_id, req, "upstream saw {upstream_saw}");

    // Through a prefixed view only the name differs.
    let mut all = hub.client("/mcp").await;
    let list = all.request("tools/list", json!({})).await;
    let vend = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "v__vend")
        .unwrap()
        .clone();
    let mut original: Value = serde_json::from_str(tools).unwrap();
    original["tools"][0]["name"] = json!("v__vend");
    assert_eq!(vend, original["tools"][0]);
    hub.stop().await;
}

fn id_of(message: &str) -> String {
    let v: Value = serde_json::from_str(message).unwrap();
    v["id"].to_string()
}

#[tokio::test]
async fn progress_reaches_the_client_with_its_own_token() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"p": http_entry(&http.url), "s": stdio_fixture("s", &[])}}),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    for server in ["p", "s"] {
        c.received.clear();
        let r = c
            .request(
                "tools/call",
                json!({"name": format!("{server}__progress"), "arguments": {"steps": 3, "interval_ms": 20}, "_meta": {"progressToken": "tok-1"}}),
            )
            .await;
        assert_eq!(text_of(&r["result"]), "done 3", "{r}");
        let progress: Vec<&Value> = c
            .received
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 3, "{server}: {:?}", c.received);
        for (i, p) in progress.iter().enumerate() {
            assert_eq!(p["params"]["progressToken"], "tok-1");
            assert_eq!(p["params"]["progress"].as_f64(), Some((i + 1) as f64));
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_clients_get_their_own_answers() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"h": http_entry(&http.url), "s": stdio_fixture("s", &[])}}),
    )
    .await;
    let url = hub.url("/mcp");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = McpClient::connect(&url).await;
            for j in 0..10 {
                let server = if (i + j) % 2 == 0 { "h" } else { "s" };
                let text = format!("client {i} call {j}");
                let r = c
                    .call(&format!("{server}__echo"), json!({"text": text}))
                    .await;
                assert_eq!(text_of(&r), text);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(hub.hub.session_count() >= 50);
    hub.stop().await;
}

#[tokio::test]
async fn upstream_list_changed_reaches_clients_and_refreshes_the_catalog() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {"h": http_entry(&http.url)}})).await;
    let mut c = hub.client("/mcp").await;
    // Open the session's GET stream to receive unsolicited notifications.
    let resp = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    c.call("h__add_tool", json!({"name": "fresh"})).await;
    let mut resp = resp;
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = String::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            if buf.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "no list_changed on the GET stream");
    assert!(
        eventually(Duration::from_secs(5), async || c
            .tool_names()
            .await
            .contains(&"h__fresh".to_string()))
        .await
    );
    let r = c.call("h__fresh", json!({"x": 1})).await;
    assert!(text_of(&r).contains("\"x\":1"), "{r}");
    hub.stop().await;
}

#[tokio::test]
async fn sessions_are_required_and_can_be_deleted() {
    let hub = TestHub::start(json!({"mcpServers": {}})).await;
    let mut anon = McpClient::unconnected(&hub.url("/mcp"));
    let (status, msgs, _) = anon
        .post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into())
        .await;
    assert_eq!(status, 400);
    assert_eq!(msgs[0]["error"]["code"], -32600);
    anon.session = Some("not-a-session".into());
    let (status, _, _) = anon
        .post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into())
        .await;
    assert_eq!(status, 404);

    let mut c = hub.client("/mcp").await;
    let (status, msgs, _) = c.post("{not json".into()).await;
    assert_eq!(status, 400);
    assert_eq!(msgs[0]["error"]["code"], -32700);
    let (status, _, _) = c
        .post(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.into())
        .await;
    assert_eq!(status, 400);
    let r = c.request("no/such/method", json!({})).await;
    assert_eq!(r["error"]["code"], -32601);
    let del = c
        .http
        .delete(&c.url)
        .header("mcp-session-id", c.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let (status, _, _) = c
        .post(r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#.into())
        .await;
    assert_eq!(status, 404);
    let foreign = c
        .http
        .post(hub.url("/mcp"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    hub.stop().await;
}

#[tokio::test]
async fn legacy_sse_clients_use_the_same_hub() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {"h": http_entry(&http.url)}})).await;
    let client = reqwest::Client::new();
    let mut stream = client
        .get(hub.url("/sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut decoder = switchboard_core::sse::Decoder::new(1 << 24);
    let mut events = Vec::new();
    let mut next_event = async || -> switchboard_core::sse::Event {
        loop {
            if !events.is_empty() {
                return events.remove(0);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            decoder.feed(&chunk, &mut events).unwrap();
        }
    };
    let endpoint = next_event().await;
    assert_eq!(endpoint.kind(), "endpoint");
    let post_url = hub.url(&endpoint.data);
    let post = async |body: Value| {
        let r = client
            .post(&post_url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    };
    post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})).await;
    let init: Value = serde_json::from_str(&next_event().await.data).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    post(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).await;
    post(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"h__echo","arguments":{"text":"over sse"}}})).await;
    let reply: Value = serde_json::from_str(&next_event().await.data).unwrap();
    assert_eq!(reply["id"], 2);
    assert_eq!(text_of(&reply["result"]), "over sse");
    let bad = client
        .post(hub.url("/messages?sessionId=unknown"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 404);
    hub.stop().await;
}

/// A fixture HTTP server that can be stopped for real (every connection closed) and restarted.
struct Restartable {
    addr: std::net::SocketAddr,
    ct: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Restartable {
    async fn start(addr: &str) -> Restartable {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ct = tokio_util::sync::CancellationToken::new();
        let child = ct.clone();
        let task = tokio::spawn(async move {
            let _ =
                switchboard_fixture::serve_http(listener, FixtureOptions::new("r"), child).await;
        });
        Restartable { addr, ct, task }
    }

    async fn restart(self) -> Restartable {
        self.ct.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        Restartable::start(&self.addr.to_string()).await
    }
}

#[tokio::test]
async fn an_expired_upstream_session_is_renewed_and_safe_requests_retried() {
    let server = Restartable::start("127.0.0.1:0").await;
    let hub = TestHub::start(
        json!({"mcpServers": {"r": http_entry(&format!("http://{}/mcp", server.addr))}}),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    assert_eq!(
        text_of(&c.call("r__echo", json!({"text": "before"})).await),
        "before"
    );

    // A restarted upstream has forgotten the hub's session: it answers 404.
    let server = server.restart().await;
    let got = c
        .request(
            "prompts/get",
            json!({"name": "r__greeting", "arguments": {"name": "again"}}),
        )
        .await;
    assert!(
        got["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("again"),
        "prompts/get is retried: {got}"
    );

    let _server = server.restart().await;
    // `slow` is not annotated read-only or idempotent: the hub renews the session but does not resend.
    let r = c
        .request(
            "tools/call",
            json!({"name": "r__slow", "arguments": {"ms": 1}}),
        )
        .await;
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("session expired"), "{r}");
    assert_eq!(
        text_of(&c.call("r__echo", json!({"text": "after"})).await),
        "after"
    );
    hub.stop().await;
}

#[tokio::test]
async fn operator_overrides_hide_rename_and_describe_tools() {
    use switchboard_hub::{GroupDef, ItemOverride, Overrides};
    use switchboard_upstream::ListKind;
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"x": http_entry(&http.url), "y": stdio_fixture("y", &[])}}),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    let _ = c.tool_names().await;
    let ov = |enabled, description: Option<&str>, rename: Option<&str>| ItemOverride {
        enabled,
        description: description.map(str::to_string),
        rename: rename.map(str::to_string),
    };
    let mut overrides = Overrides::new();
    overrides.insert(
        ("x".into(), ListKind::Tools, "echo".into()),
        ov(false, None, None),
    );
    overrides.insert(
        ("x".into(), ListKind::Tools, "add".into()),
        ov(true, None, Some("plus")),
    );
    overrides.insert(
        ("x".into(), ListKind::Tools, "slow".into()),
        ov(true, Some("Waits a while."), None),
    );
    hub.hub.set_overrides(overrides);

    let list = c.request("tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(
        !names.contains(&"x__echo") && names.contains(&"y__echo"),
        "{names:?}"
    );
    assert!(
        names.contains(&"x__plus") && !names.contains(&"x__add"),
        "{names:?}"
    );
    let slow = tools.iter().find(|t| t["name"] == "x__slow").unwrap();
    assert_eq!(slow["description"], "Waits a while.");
    assert!(slow["inputSchema"].is_object(), "other fields stay: {slow}");
    let r = c.call("x__plus", json!({"a": 1, "b": 2})).await;
    assert_eq!(r["structuredContent"]["sum"].as_f64(), Some(3.0));
    let hidden = c
        .request(
            "tools/call",
            json!({"name": "x__echo", "arguments": {"text": "no"}}),
        )
        .await;
    assert_eq!(
        hidden["error"]["code"], -32602,
        "a hidden tool cannot be called: {hidden}"
    );

    let mut solo = hub.client("/mcp/x").await;
    let names = solo.tool_names().await;
    assert!(
        names.contains(&"plus".to_string()) && !names.contains(&"echo".to_string()),
        "{names:?}"
    );
    assert_eq!(
        solo.call("plus", json!({"a": 2, "b": 2})).await["structuredContent"]["sum"].as_f64(),
        Some(4.0)
    );

    // A group narrowed to some tools shows and routes only those.
    let mut groups = std::collections::BTreeMap::new();
    groups.insert(
        "narrow".to_string(),
        GroupDef {
            members: vec!["x".into(), "y".into()],
            tools: Some(["y__echo".to_string(), "x__plus".to_string()].into()),
        },
    );
    hub.hub.set_group_defs(groups).await.unwrap();
    let mut g = hub.client("/mcp/narrow").await;
    let mut names = g.tool_names().await;
    names.retain(|n| n != "switchboard__list_servers");
    names.sort();
    assert_eq!(names, vec!["x__plus", "y__echo"]);
    let blocked = g
        .request(
            "tools/call",
            json!({"name": "y__add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    assert_eq!(blocked["error"]["code"], -32602, "{blocked}");
    hub.stop().await;
}

#[tokio::test]
async fn replacing_one_server_leaves_a_long_call_on_another_running() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {"steady": http_entry(&http.url), "churn": stdio_fixture("churn", &[])}})).await;
    let url = hub.url("/mcp");
    let long = tokio::spawn(async move {
        let mut c = McpClient::connect(&url).await;
        c.call("steady__slow", json!({"ms": 1500})).await
    });
    let churn_pid = server_status(&hub.hub, "churn").pid.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    hub.hub.restart_server("churn").await.unwrap();
    hub.hub.remove_server("churn").await.unwrap();
    assert!(
        !pid_alive(churn_pid as i32),
        "the removed server's process is gone"
    );
    let r = long.await.unwrap();
    assert_eq!(text_of(&r), "slept 1500");
    hub.stop().await;
}

/// A minimal Streamable HTTP server that answers from a script and records one header.
async fn header_recorder() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(headers.get("x-api-key").map(|v| v.to_str().unwrap().to_string()));
                let msg: Value = serde_json::from_str(&body).unwrap();
                let result = match msg["method"].as_str().unwrap_or("") {
                    "initialize" => json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "h", "version": "1"}}),
                    "tools/list" => json!({"tools": [{"name": "who", "inputSchema": {"type": "object"}}]}),
                    "tools/call" => json!({"content": [{"type": "text", "text": "ok"}]}),
                    _ => return (axum::http::StatusCode::ACCEPTED, String::new()),
                };
                (axum::http::StatusCode::OK, json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}).to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn configured_headers_reach_every_upstream_request() {
    let (url, seen) = header_recorder().await;
    let hub = TestHub::start(json!({"mcpServers": {"h": {"type": "http", "url": url, "headers": {"X-Api-Key": "k-123"}}}})).await;
    let mut c = hub.client("/mcp").await;
    assert_eq!(text_of(&c.call("h__who", json!({})).await), "ok");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 4,
        "initialize, initialized, tools/list, tools/call: {seen:?}"
    );
    assert!(
        seen.iter().all(|h| h.as_deref() == Some("k-123")),
        "{seen:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn merged_lists_page_with_the_hubs_own_cursors() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let config = switchboard_hub::HubConfig {
        page_size: 4,
        ..Default::default()
    };
    let hub = TestHub::start_with(
        json!({"mcpServers": {"a": http_entry(&http.url), "b": stdio_fixture("b", &[])}}),
        config,
    )
    .await;
    let mut c = hub.client("/mcp").await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(cur) => json!({"cursor": cur}),
            None => json!({}),
        };
        let r = c.request("tools/list", params).await;
        let tools = r["result"]["tools"].as_array().unwrap();
        assert!(tools.len() <= 4);
        names.extend(
            tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match r["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert!(pages > 3, "{pages} pages");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "no item twice");
    assert!(
        names.contains(&"a__echo".to_string())
            && names.contains(&"b__echo".to_string())
            && names.contains(&"switchboard__list_servers".to_string())
    );

    // A cursor from before a change is refused; the client starts over.
    let first = c.request("tools/list", json!({})).await;
    let stale = first["result"]["nextCursor"].as_str().unwrap().to_string();
    c.call("a__add_tool", json!({"name": "later"})).await;
    assert!(
        eventually(Duration::from_secs(5), async || {
            let r = c.request("tools/list", json!({"cursor": stale})).await;
            r["error"]["code"] == -32602
        })
        .await
    );
    let r = c.request("tools/list", json!({"cursor": "garbage"})).await;
    assert_eq!(r["error"]["code"], -32602);
    hub.stop().await;
}

#[tokio::test]
async fn per_client_servers_get_a_session_each_and_lose_it_with_the_client() {
    let mut entry = stdio_fixture("solo", &[]);
    entry["session"] = json!("per-client");
    let hub = TestHub::start(
        json!({"mcpServers": {"solo": entry, "pooled": stdio_fixture("pooled", &[])}}),
    )
    .await;
    let pid_of = |r: &Value| {
        r["structuredContent"]["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("stats: {r}"))
    };
    let mut a = hub.client("/mcp").await;
    let mut b = hub.client("/mcp").await;
    let (pa, pb) = (
        pid_of(&a.call("solo__stats", json!({})).await),
        pid_of(&b.call("solo__stats", json!({})).await),
    );
    assert_ne!(pa, pb, "each client has its own process");
    assert_eq!(
        pa,
        pid_of(&a.call("solo__stats", json!({})).await),
        "and keeps it"
    );
    let (qa, qb) = (
        pid_of(&a.call("pooled__stats", json!({})).await),
        pid_of(&b.call("pooled__stats", json!({})).await),
    );
    assert_eq!(qa, qb, "shared servers keep one process");
    let del = a
        .http
        .delete(&a.url)
        .header("mcp-session-id", a.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert!(
        eventually(Duration::from_secs(5), async || !pid_alive(pa as i32)).await,
        "the client's process ends with its session"
    );
    assert!(pid_alive(pb as i32));
    assert_eq!(
        text_of(&b.call("solo__echo", json!({"text": "still"})).await),
        "still"
    );
    hub.stop().await;
    assert!(
        eventually(Duration::from_secs(5), async || !pid_alive(pb as i32)).await,
        "stopping the hub stops per-client processes"
    );
}
