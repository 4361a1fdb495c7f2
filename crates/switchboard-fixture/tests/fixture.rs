//! Integration tests of the fixture server, driven through rmcp's client
//! (Streamable HTTP, stdio child process, in-memory duplex) and plain HTTP
//! requests (legacy SSE, raw server, JSON mode).

// Sampling, roots and logging are deprecated upstream (SEP-2577); the fixture
// exercises them on purpose.
#![allow(deprecated)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient, ServiceExt,
    model::{
        ArgumentInfo, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
        ClientRequest, CompleteRequestParams, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequestParams, ElicitResult, ElicitationAction, GetPromptRequestParams,
        Implementation, JsonObject, ListRootsResult, LoggingMessageNotificationParam,
        ProgressNotificationParam, ReadResourceRequestParams, Reference, ResourceContents,
        ResourceUpdatedNotificationParam, Root, SamplingMessage, SubscribeRequestParams,
    },
    service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService},
    transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::{Value, json};
use switchboard_fixture::{
    FixtureOptions, RawResponses, spawn_duplex, spawn_http, spawn_raw_http, spawn_sse,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn args(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn call(name: &'static str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args(arguments))
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// Polls `check` every 10 ms for up to 2 s.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

#[tokio::test]
async fn streamable_http_serves_tools_prompts_resources() -> TestResult {
    install_crypto();
    let server = spawn_http(FixtureOptions::new("http-fx").with_tools(3)).await?;
    assert!(server.url.ends_with("/mcp"));
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url.clone())).await?;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("http-fx")
    );
    assert!(info.capabilities.completions.is_some());
    assert!(info.capabilities.logging.is_some());

    let tools = client.list_all_tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "echo", "add", "slow", "hang", "stats", "big", "tool_0", "tool_2",
    ] {
        assert!(names.contains(&expected), "missing {expected} in {names:?}");
    }
    assert!(!names.contains(&"tool_3"));
    let add_tool = tools.iter().find(|t| t.name == "add").expect("add");
    assert!(add_tool.output_schema.is_some());

    let echoed = client
        .call_tool(call("echo", json!({"text": "hello"})))
        .await?;
    assert_eq!(text_of(&echoed), "hello");

    let sum = client
        .call_tool(call("add", json!({"a": 2, "b": 3})))
        .await?;
    assert_eq!(text_of(&sum), "5");
    assert_eq!(sum.structured_content, Some(json!({"sum": 5})));

    let big = client
        .call_tool(call("big", json!({"bytes": 1000})))
        .await?;
    assert_eq!(text_of(&big), "x".repeat(1000));

    let generated = client
        .call_tool(call("tool_1", json!({"value": "v"})))
        .await?;
    assert_eq!(text_of(&generated), r#"{"value":"v"}"#);

    // A hanging call ends when the client cancels it (here: by timeout).
    let request =
        ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(call("hang", json!({}))));
    let handle = client
        .send_cancellable_request(
            request,
            PeerRequestOptions::with_timeout(Duration::from_millis(200)),
        )
        .await?;
    assert!(handle.await_response().await.is_err());
    let stats = server.stats();
    assert!(
        eventually(|| stats.cancelled() == 1).await,
        "hang was not cancelled"
    );

    let reported = client.call_tool(call("stats", json!({}))).await?;
    let reported = reported.structured_content.expect("structured stats");
    assert_eq!(reported["cancelled"], 1);
    assert_eq!(reported["calls"], 6);
    assert_eq!(reported["pid"], std::process::id());

    let item = client
        .read_resource(ReadResourceRequestParams::new("fixture://item/42"))
        .await?;
    match &item.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => assert_eq!(text, "item 42"),
        other => panic!("unexpected contents {other:?}"),
    }
    let resources = client.list_all_resources().await?;
    assert_eq!(resources.len(), 2);
    let templates = client.list_all_resource_templates().await?;
    assert_eq!(templates[0].uri_template, "fixture://item/{id}");

    let prompt = client
        .get_prompt(
            GetPromptRequestParams::new("greeting").with_arguments(args(json!({"name": "Ann"}))),
        )
        .await?;
    assert_eq!(
        serde_json::to_value(&prompt.messages[0])?["content"]["text"],
        "Hello, Ann!"
    );

    let completion = client
        .complete(CompleteRequestParams::new(
            Reference::for_prompt("greeting"),
            ArgumentInfo::new("name", "al"),
        ))
        .await?;
    assert_eq!(completion.completion.values, vec!["alice", "albert"]);

    client.cancel().await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn stdio_child_process_echo_add_garbage() -> TestResult {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-fixture"))
        .configure(|cmd| {
            cmd.args(["stdio", "--name", "stdio-fx", "--prefix", "s_"]);
        });
    let client = ().serve(TokioChildProcess::new(command)?).await?;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("stdio-fx")
    );

    let echoed = client
        .call_tool(call("s_echo", json!({"text": "hi"})))
        .await?;
    assert_eq!(text_of(&echoed), "hi");
    let sum = client
        .call_tool(call("s_add", json!({"a": 1.5, "b": 2})))
        .await?;
    assert_eq!(text_of(&sum), "3.5");
    assert_eq!(sum.structured_content, Some(json!({"sum": 3.5})));

    // Garbage lines on stdout must not break the session.
    let garbage = client.call_tool(call("s_garbage", json!({}))).await?;
    assert_eq!(text_of(&garbage), "ok");
    let again = client
        .call_tool(call("s_echo", json!({"text": "still here"})))
        .await?;
    assert_eq!(text_of(&again), "still here");

    let stats = client.call_tool(call("s_stats", json!({}))).await?;
    let pid = stats.structured_content.expect("stats")["pid"].clone();
    assert_ne!(pid, json!(std::process::id()));

    // Unprefixed names do not exist on a prefixed fixture.
    assert!(
        client
            .call_tool(call("echo", json!({"text": "x"})))
            .await
            .is_err()
    );

    // crash exits the child without replying.
    assert!(
        client
            .call_tool(call("s_crash", json!({"code": 7})))
            .await
            .is_err()
    );
    Ok(())
}

/// A client that answers server→client requests and records notifications.
#[derive(Clone, Default)]
struct RecordingClient {
    events: Arc<Mutex<Vec<String>>>,
}

impl RecordingClient {
    fn push(&self, event: String) {
        self.events.lock().expect("events").push(event);
    }

    fn has(&self, prefix: &str) -> bool {
        self.events
            .lock()
            .expect("events")
            .iter()
            .any(|e| e.starts_with(prefix))
    }

    fn count(&self, prefix: &str) -> usize {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

impl ClientHandler for RecordingClient {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        assert_eq!(params.max_tokens, 100);
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("pong"),
            "test-model".to_owned(),
        ))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(vec![
            Root::new("file:///tmp/project").with_name("project"),
        ]))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        assert!(matches!(
            request,
            ElicitRequestParams::FormElicitationParams { .. }
        ));
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"answer": "42"})))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.push(format!(
            "progress {} {}",
            params.progress,
            params.message.unwrap_or_default()
        ));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.push(format!("log {}", params.data));
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.push("tools changed".to_owned());
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.push(format!("updated {}", params.uri));
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder()
                .enable_roots()
                .enable_sampling()
                .enable_elicitation()
                .build(),
            Implementation::new("recording-client", "0.0.0"),
        )
    }
}

async fn duplex_client(
    opts: FixtureOptions,
) -> Result<
    (RecordingClient, RunningService<RoleClient, RecordingClient>),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let recorder = RecordingClient::default();
    let client = recorder.clone().serve(spawn_duplex(opts)).await?;
    Ok((recorder, client))
}

#[tokio::test]
async fn duplex_server_to_client_requests_and_notifications() -> TestResult {
    let (recorder, client) = duplex_client(FixtureOptions::default()).await?;

    let sampled = client
        .call_tool(call("sample", json!({"prompt": "ping"})))
        .await?;
    assert_eq!(text_of(&sampled), "sampled: pong");

    let elicited = client
        .call_tool(call("elicit", json!({"message": "?"})))
        .await?;
    assert_eq!(text_of(&elicited), r#"elicited: accept {"answer":"42"}"#);

    let roots = client.call_tool(call("roots", json!({}))).await?;
    assert!(text_of(&roots).contains("file:///tmp/project"));

    let logged = client
        .call_tool(call(
            "log",
            json!({"level": "warning", "message": "careful"}),
        ))
        .await?;
    assert_eq!(text_of(&logged), "logged");
    assert!(eventually(|| recorder.has("log \"careful\"")).await);

    let progress = client
        .call_tool(call("progress", json!({"steps": 3, "interval_ms": 5})))
        .await?;
    assert_eq!(text_of(&progress), "done 3");
    assert!(eventually(|| recorder.count("progress ") == 3).await);
    assert!(recorder.has("progress 3 step 3"));

    let slow = client.call_tool(call("slow", json!({"ms": 250}))).await?;
    assert_eq!(text_of(&slow), "slept 250");

    let added = client
        .call_tool(call("add_tool", json!({"name": "extra"})))
        .await?;
    assert_eq!(text_of(&added), "added extra");
    assert!(eventually(|| recorder.has("tools changed")).await);
    let tools = client.list_all_tools().await?;
    assert!(tools.iter().any(|t| t.name == "extra"));
    let extra = client.call_tool(call("extra", json!({"x": 1}))).await?;
    assert_eq!(text_of(&extra), r#"{"x":1}"#);

    client
        .subscribe(SubscribeRequestParams::new("test://static-text"))
        .await?;
    let touched = client
        .call_tool(call("touch", json!({"uri": "test://static-text"})))
        .await?;
    assert_eq!(text_of(&touched), "touched test://static-text");
    assert!(eventually(|| recorder.has("updated test://static-text")).await);
    let untouched = client
        .call_tool(call("touch", json!({"uri": "fixture://info"})))
        .await?;
    assert_eq!(text_of(&untouched), "not subscribed fixture://info");

    // In-process fixtures refuse to exit.
    let crash = client.call_tool(call("crash", json!({}))).await?;
    assert_eq!(crash.is_error, Some(true));

    client.cancel().await?;
    Ok(())
}

/// Reads the next SSE event (`event`, `data`), skipping comments.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    event = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            if data.is_empty() {
                continue;
            }
            return Ok((event, data));
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await??
            .ok_or("sse stream ended")?;
        buffer.push_str(std::str::from_utf8(&chunk)?);
    }
}

#[tokio::test]
async fn legacy_sse_exchange() -> TestResult {
    install_crypto();
    let server = spawn_sse(FixtureOptions::new("sse-fx")).await?;
    assert!(server.url.ends_with("/sse"));
    let http = reqwest::Client::new();
    let mut stream = http.get(&server.url).send().await?;
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str()?,
        "text/event-stream"
    );
    let mut buffer = String::new();
    let (event, endpoint) = next_event(&mut stream, &mut buffer).await?;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/messages?sessionId="));
    let post_url = format!("http://{}{endpoint}", server.addr);

    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}
        }
    });
    // Pretty-printed on purpose: line breaks inside the body must be tolerated.
    let body = serde_json::to_string_pretty(&init)?;
    let accepted = http.post(&post_url).body(body).send().await?;
    assert_eq!(accepted.status(), 202);
    let (event, data) = next_event(&mut stream, &mut buffer).await?;
    assert_eq!(event, "message");
    let reply: Value = serde_json::from_str(&data)?;
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["result"]["serverInfo"]["name"], "sse-fx");
    assert_eq!(reply["result"]["protocolVersion"], "2024-11-05");

    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = http
        .post(&post_url)
        .body(initialized.to_string())
        .send()
        .await?;
    assert_eq!(accepted.status(), 202);

    let echo = json!({
        "jsonrpc": "2.0", "id": "e-1", "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "over sse"}}
    });
    assert_eq!(
        http.post(&post_url)
            .body(echo.to_string())
            .send()
            .await?
            .status(),
        202
    );
    let (_, data) = next_event(&mut stream, &mut buffer).await?;
    let reply: Value = serde_json::from_str(&data)?;
    assert_eq!(reply["id"], "e-1");
    assert_eq!(reply["result"]["content"][0]["text"], "over sse");

    let base = format!("http://{}/messages", server.addr);
    let missing = http.post(&base).body(echo.to_string()).send().await?;
    assert_eq!(missing.status(), 400);
    let unknown = http
        .post(format!("{base}?sessionId=nope"))
        .body(echo.to_string())
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);

    // Closing the stream ends the session.
    drop(stream);
    let mut closed = false;
    for _ in 0..100 {
        let status = http
            .post(&post_url)
            .body(echo.to_string())
            .send()
            .await?
            .status();
        if status == 404 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "session survived its SSE stream");
    Ok(())
}

#[tokio::test]
async fn raw_server_echoes_ids_and_raw_results() -> TestResult {
    install_crypto();
    let tools_list = r#"{"tools":[{"name":"v","inputSchema":{"type":"object"},"x-vendor":{"rank":1.50,"tags":["a"]}}],"futureField":{"z":null}}"#;
    let tools_call = r#"{"content":[{"type":"text","text":"raw"}],"x-vendor":true}"#;
    let server = spawn_raw_http(RawResponses::new(tools_list, tools_call)).await;
    let http = reqwest::Client::new();

    let init = r#"{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let response = http
        .post(&server.url)
        .header("content-type", "application/json")
        .body(init)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("mcp-session-id"));
    assert_eq!(
        response.headers()["content-type"].to_str()?,
        "application/json"
    );
    let body: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(body["id"], "init-1");
    assert_eq!(body["result"]["protocolVersion"], "2025-03-26");
    assert_eq!(body["result"]["capabilities"]["tools"]["listChanged"], true);

    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let response = http.post(&server.url).body(note).send().await?;
    assert_eq!(response.status(), 202);

    let list = r#"{"jsonrpc":"2.0","id": 7 ,"method":"tools/list"}"#;
    let text = http
        .post(&server.url)
        .body(list)
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        text,
        format!(r#"{{"jsonrpc":"2.0","id":7,"result":{tools_list}}}"#)
    );

    let call_body = r#"{"jsonrpc":"2.0","id":1e0,"method":"tools/call","params":{"name":"v"}}"#;
    let text = http
        .post(&server.url)
        .body(call_body)
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        text,
        format!(r#"{{"jsonrpc":"2.0","id":1e0,"result":{tools_call}}}"#)
    );

    assert_eq!(server.received(), vec![init, note, list, call_body]);
    assert_eq!(server.stats().calls(), 1);
    Ok(())
}

#[tokio::test]
async fn json_mode_answers_application_json() -> TestResult {
    install_crypto();
    let server = spawn_http(FixtureOptions::default().with_json_response(true)).await?;
    let http = reqwest::Client::new();
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}
        }
    });
    let response = http
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("application/json")
    );
    let body: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(body["result"]["serverInfo"]["name"], "fixture");

    let echo = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "plain"}}
    });
    let response = http
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(echo.to_string())
        .send()
        .await?;
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("application/json")
    );
    let body: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(body["result"]["content"][0]["text"], "plain");
    Ok(())
}
