//! The `smart` scenario: what routing a call through the `$smart` endpoint's `call_tool`
//! meta-tool costs next to the same `tools/call` on the hub's `/mcp` (issue 14's budget is
//! 20 µs of overhead). One hub, one JSON-mode fixture upstream; both targets are the same
//! process, so the difference is the meta-tool's unwrapping and routing alone.

use anyhow::Context;

use crate::client::{Conn, Endpoint, Session, request_body};
use crate::load::Work;
use crate::procs::{self, FixtureArgs};
use crate::report::Row;
use crate::scenarios::{Contender, Ctx, compare, echo, raw_post};

const CALL: &str = r#"{"name":"call_tool","arguments":{"name":"echo__echo","arguments":{"text":"hello from switchboard-bench"}}}"#;

/// `tools/call call_tool {name: echo__echo, arguments: {text}}` on `/mcp/$smart`.
fn call_tool_echo() -> Work {
    Work::Request {
        method: "tools/call",
        params: CALL.into(),
        min_len: 0,
    }
}

/// The load client checks envelopes only: make sure once that `call_tool` really reaches the
/// upstream (its echo comes back, not a tool error).
async fn check_call_tool(ep: &Endpoint) -> anyhow::Result<()> {
    let s = Session::open(Conn::new(ep.clone()))
        .await
        .map_err(|(_, e)| anyhow::anyhow!("initialize on $smart: {e}"))?;
    let text = raw_post(ep, &s, request_body("7", "tools/call", CALL)).await?;
    let _ = s.close().await;
    let v: serde_json::Value = serde_json::from_str(&text).context("call_tool reply")?;
    anyhow::ensure!(
        v.pointer("/result/isError") != Some(&serde_json::Value::Bool(true))
            && text.contains("hello from switchboard-bench"),
        "call_tool did not reach the upstream: {text}"
    );
    Ok(())
}

pub async fn scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(
        &ctx.bins,
        &ctx.work,
        "smart",
        FixtureArgs {
            json: true,
            tools: 0,
        },
    )
    .await?;
    let servers = vec![("echo".to_owned(), procs::http_entry(&fx.endpoint))];
    let hub = match procs::spawn_hub(&ctx.bins, &ctx.work, "smart", &servers).await {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let mut smart = hub.mcp.clone();
    smart.path = "/mcp/$smart".into();
    if let Err(e) = check_call_tool(&smart).await {
        procs::stop_all([hub.proc, fx.proc]).await;
        return Err(e);
    }
    let mut rows = Vec::new();
    for c in [1, 32] {
        let contenders = [
            Contender {
                target: "hub /mcp tools/call".into(),
                endpoint: hub.mcp.clone(),
                work: echo("echo__echo"),
                pid: Some(hub.proc.pid()),
            },
            Contender {
                target: "hub $smart call_tool".into(),
                endpoint: smart.clone(),
                work: call_tool_echo(),
                pid: Some(hub.proc.pid()),
            },
        ];
        let mut r = compare(ctx, "smart", &format!("c={c}"), c, &contenders).await;
        let (base, rest) = r.split_at_mut(1);
        for row in rest {
            row.compare_to(&base[0]);
        }
        rows.extend(r);
    }
    procs::stop_all([hub.proc, fx.proc]).await;
    Ok((
        rows,
        Some(
            "One hub, one JSON-mode fixture upstream: `echo__echo` called directly on `/mcp`, \
             and the same call wrapped in the `call_tool` meta-tool on `/mcp/$smart`."
                .into(),
        ),
    ))
}
