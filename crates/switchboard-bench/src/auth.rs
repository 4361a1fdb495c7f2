//! The `auth` scenario: what a credential costs per MCP request.
//!
//! One hub (`--admin-token`, its store in the run's data dir) serves one fixture upstream over
//! Streamable HTTP (default SSE mode, as in `echo`). Through the management API the scenario
//! creates a user in the default tenant (role `user`, grants `["*"]`), an API key for it
//! (`POST /api/v1/keys {"name":"bench","user_id":…}`) and an access token
//! (`POST /api/v1/auth/login`). Then `tools/call echo__echo` runs, c=1 and c=32, against the
//! same hub and upstream, alternating A B C D:
//!
//! * `hub · MCP svc, no credential`: the MCP service's `/mcp`, no `Authorization` (baseline);
//! * `hub · MCP svc, API key`: the same endpoint with `Authorization: Bearer sb_…`;
//! * `hub · main, API key`: the main service's `/mcp` (credential mandatory) with the key;
//! * `hub · main, access token`: the main service's `/mcp` with `Bearer eyJ…` (HS256).
//!
//! Every request carries the header (the session's initialize too), as real clients do, so each
//! one pays for `Identity::authenticate`. Rows 2-4 are compared to row 1 (ratio, Δp50, Δp99).

use anyhow::{Context, bail};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Conn, Endpoint, Session};
use crate::procs::{self, FixtureArgs, Hub};
use crate::report::Row;
use crate::scenarios::{Contender, Ctx, compare, echo};

/// The admin token given to the hub (the API wants at least 16 characters).
const TOKEN: &str = "switchboard-bench-admin-token";
const USERNAME: &str = "bench";
const PASSWORD: &str = "switchboard-bench-password";

/// One management call on `conn`, expecting `want`; returns the JSON body.
async fn api(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: Value,
    want: StatusCode,
) -> anyhow::Result<Value> {
    let (status, bytes) = conn
        .api(method.clone(), path, TOKEN, Some(body.to_string()))
        .await
        .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
    if status != want {
        bail!(
            "{method} {path}: HTTP {status} (expected {want}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{method} {path}: bad JSON"))
}

fn text<'a>(v: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    v.get(field)
        .and_then(Value::as_str)
        .with_context(|| format!("no {field:?} in {v}"))
}

/// Creates the user and its API key; returns the key (`sb_…`).
async fn make_key(hub: &Hub) -> anyhow::Result<String> {
    let mut conn = Conn::new(hub.main.clone());
    let user = api(
        &mut conn,
        Method::POST,
        "/api/v1/users",
        json!({"username": USERNAME, "password": PASSWORD, "role": "user"}),
        StatusCode::CREATED,
    )
    .await?;
    let user_id = text(&user, "id")?;
    let key = api(
        &mut conn,
        Method::POST,
        "/api/v1/keys",
        json!({"name": "bench", "user_id": user_id}),
        StatusCode::CREATED,
    )
    .await?;
    let key = text(&key, "key")?;
    anyhow::ensure!(key.starts_with("sb_"), "unexpected key format: {key}");
    Ok(key.to_owned())
}

/// Logs the user in; returns a fresh access token (it lives 15 minutes).
async fn login(hub: &Hub) -> anyhow::Result<String> {
    let mut conn = Conn::new(hub.main.clone());
    let tokens = api(
        &mut conn,
        Method::POST,
        "/api/v1/auth/login",
        json!({"username": USERNAME, "password": PASSWORD}),
        StatusCode::OK,
    )
    .await?;
    Ok(text(&tokens, "access_token")?.to_owned())
}

/// Checks that an endpoint answers one echo call (and so accepts its credential).
async fn check(ep: &Endpoint, what: &str) -> anyhow::Result<()> {
    let mut s = Session::open(Conn::new(ep.clone()))
        .await
        .map_err(|(_, e)| anyhow::anyhow!("{what}: initialize: {e}"))?;
    s.call(
        "tools/call",
        r#"{"name":"echo__echo","arguments":{"text":"auth check"}}"#,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{what}: tools/call: {e}"))?;
    let _ = s.close().await;
    Ok(())
}

/// The main service's `/mcp` must refuse a request without a credential, or the comparison
/// would not measure authentication.
async fn check_refused(main_mcp: &Endpoint) -> anyhow::Result<()> {
    match Session::open(Conn::new(main_mcp.clone())).await {
        Err((_, crate::client::ClientError::Status(401, _))) => Ok(()),
        Err((_, e)) => bail!("main /mcp without a credential: expected 401, got {e}"),
        Ok(_) => bail!("main /mcp without a credential: expected 401, got a session"),
    }
}

/// Runs the scenario.
pub async fn scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(&ctx.bins, &ctx.work, "auth", FixtureArgs::default()).await?;
    let hub = match procs::spawn_hub_with(
        &ctx.bins,
        &ctx.work,
        "auth",
        &[("echo".to_owned(), procs::http_entry(&fx.endpoint))],
        &["--admin-token", TOKEN],
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let outcome = async {
        let key = make_key(&hub).await.context("create the user and key")?;
        let main_mcp = hub.main.with_path("/mcp");
        check_refused(&main_mcp).await?;
        let mcp_key = hub.mcp.with_bearer(&key)?;
        let main_key = main_mcp.with_bearer(&key)?;
        check(&hub.mcp, "MCP service, no credential").await?;
        check(&mcp_key, "MCP service, API key").await?;
        check(&main_key, "main /mcp, API key").await?;
        let mut rows = Vec::new();
        for c in [1, 32] {
            // A fresh token per comparison: it lives 15 minutes.
            let main_token = main_mcp.with_bearer(&login(&hub).await.context("log in")?)?;
            check(&main_token, "main /mcp, access token").await?;
            let contender = |target: &str, endpoint: &Endpoint| Contender {
                target: target.into(),
                endpoint: endpoint.clone(),
                work: echo("echo__echo"),
                pid: Some(hub.proc.pid()),
            };
            let contenders = [
                contender("hub · MCP svc, no credential", &hub.mcp),
                contender("hub · MCP svc, API key", &mcp_key),
                contender("hub · main, API key", &main_key),
                contender("hub · main, access token", &main_token),
            ];
            let mut got =
                compare(ctx, "auth", &format!("SSE upstream, c={c}"), c, &contenders).await;
            if let Some((base, rest)) = got.split_first_mut() {
                for r in rest {
                    r.compare_to(base);
                }
            }
            rows.extend(got);
        }
        anyhow::Ok(rows)
    }
    .await;
    procs::stop_all([hub.proc, fx.proc]).await;
    Ok((
        outcome?,
        Some(
            "one hub (SQLite store in its data dir), one fixture upstream (SSE replies); a user of the default \
             tenant with grants [\"*\"], an API key and an HS256 access token made through the API. \
             Every request carries the credential, so each pays Identity::authenticate \
             (key: get_key + SHA-256 + get_user; token: HS256 decode + get_user). Ratio and Δ are against \
             the MCP service without a credential."
                .into(),
        ),
    ))
}
