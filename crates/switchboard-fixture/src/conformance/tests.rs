//! The legacy (session) side of the conformance server, through an in-memory
//! pipe: flows driven by real server→client requests, and session logging.
//! The stateless 2026-07-28 side is exercised by the official suite
//! (`scripts/conformance.sh`).

#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
        CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
        ElicitationAction, Implementation, ListRootsResult, LoggingLevel,
        LoggingMessageNotificationParam, Root, SamplingMessage, SetLevelRequestParams,
    },
    service::{NotificationContext, RequestContext, RunningService, serve_server},
    transport::async_rw::AsyncRwTransport,
};
use serde_json::json;

use super::ConformanceServer;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Answers every server→client request; records the elicitation messages
/// and log notifications it sees.
#[derive(Clone, Default)]
struct AnsweringClient {
    seen: Arc<Mutex<Vec<String>>>,
}

impl AnsweringClient {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("seen").clone()
    }
}

impl ClientHandler for AnsweringClient {
    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("pong"),
            "test-model".to_owned(),
        ))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(vec![Root::new("file:///tmp/root")]))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.seen.lock().expect("seen").push(message.clone());
        }
        Ok(ElicitResult::new(ElicitationAction::Accept)
            .with_content(json!({"name": "Alice", "color": "blue", "ok": true})))
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.seen
            .lock()
            .expect("seen")
            .push(format!("log {}", params.data));
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder()
                .enable_roots()
                .enable_sampling()
                .enable_elicitation()
                .build(),
            Implementation::new("answering-client", "0.0.0"),
        )
    }
}

async fn legacy_session(
    client: AnsweringClient,
) -> Result<RunningService<RoleClient, AnsweringClient>, Box<dyn std::error::Error + Send + Sync>> {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let (read, write) = tokio::io::split(server_end);
    tokio::spawn(async move {
        if let Ok(running) = serve_server(
            ConformanceServer::new(),
            AsyncRwTransport::new_server(read, write),
        )
        .await
        {
            let _ = running.waiting().await;
        }
    });
    Ok(client.serve(client_end).await?)
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

async fn call(
    service: &RunningService<RoleClient, AnsweringClient>,
    name: &'static str,
) -> Result<CallToolResult, Box<dyn std::error::Error + Send + Sync>> {
    Ok(service
        .call_tool(
            CallToolRequestParams::new(name).with_arguments(
                json!({"prompt": "ping"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        )
        .await?)
}

#[tokio::test]
async fn legacy_sessions_get_real_requests_round_after_round() -> TestResult {
    let client = AnsweringClient::default();
    let service = legacy_session(client.clone()).await?;

    let result = call(&service, "test_input_required_result_multi_round").await?;
    assert_eq!(text_of(&result), "Alice's favorite color is blue");
    assert_eq!(
        client.seen(),
        [
            "Step 1: What is your name?",
            "Step 2: What is your favorite color?"
        ]
    );

    let result = call(&service, "test_sampling").await?;
    assert_eq!(text_of(&result), "LLM response: pong");

    let result = call(&service, "test_input_required_result_multiple_inputs").await?;
    assert_eq!(
        text_of(&result),
        "Name: Alice; greeting: pong; roots: file:///tmp/root"
    );
    service.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn legacy_log_level_filters_tool_logs() -> TestResult {
    let client = AnsweringClient::default();
    let service = legacy_session(client.clone()).await?;
    service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await?;
    let result = call(&service, "test_tool_with_logging").await?;
    assert_eq!(text_of(&result), "Logging test completed");
    service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await?;
    call(&service, "test_logging_tool").await?;
    // The client may handle the notification after the response: poll.
    let logs = || -> Vec<String> {
        client
            .seen()
            .into_iter()
            .filter(|e| e.starts_with("log "))
            .collect()
    };
    for _ in 0..100 {
        if !logs().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(logs(), ["log \"test_logging_tool ran\""]);
    service.cancel().await?;
    Ok(())
}
