//! Third-party Python proxies in the same comparison: `mcp-proxy` and `fastmcp`.
//!
//! * `mcp-proxy --port P -- switchboard-fixture stdio` exposes a stdio server over Streamable
//!   HTTP at `/mcp`: the like-for-like peer of the hub in front of a stdio upstream.
//! * `fastmcp run http://upstream/mcp --transport http` builds a FastMCP proxy of a Streamable
//!   HTTP server: the peer of the hub in front of an HTTP upstream. Its default opens a fresh
//!   upstream session per request, so a second variant keeps one per client session
//!   (`StatefulProxyClient`).
//!
//! Both come from a venv (`--python-venv`, default `.test-deps/bench-venv`), created with pip
//! when missing unless `--smoke` or `--no-install`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::client::Endpoint;
use crate::procs::{self, FixtureArgs, Proc};
use crate::report::{Row, ScenarioReport, Status};
use crate::scenarios::{Contender, Ctx, compare};

const PIP_SPEC: [&str; 2] = ["mcp-proxy>=0.13,<0.14", "fastmcp"];

/// Makes sure the venv has both tools; returns its `bin` directory.
async fn ensure_venv(venv: &Path, install: bool) -> anyhow::Result<PathBuf> {
    let bin = venv.join("bin");
    if bin.join("mcp-proxy").exists() && bin.join("fastmcp").exists() {
        return Ok(bin);
    }
    if !install {
        bail!(
            "no venv with mcp-proxy and fastmcp at {} (not created in --smoke/--no-install runs)",
            venv.display()
        );
    }
    eprintln!(
        "  creating {} with pip install {}",
        venv.display(),
        PIP_SPEC.join(" ")
    );
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(venv)
        .status()
        .await
        .context("python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv {} failed ({status})", venv.display());
    }
    let out = Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--no-input"])
        .args(PIP_SPEC)
        .stdin(Stdio::null())
        .output()
        .await
        .context("pip install")?;
    if !out.status.success() {
        bail!(
            "pip install {} failed: {}",
            PIP_SPEC.join(" "),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(bin)
}

async fn version_of(bin: &Path, package: &str) -> String {
    let out = Command::new(bin.join("python"))
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version({package:?}))"),
        ])
        .output()
        .await;
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// `mcp-proxy` serving the stdio fixture over Streamable HTTP.
async fn start_mcp_proxy(ctx: &Ctx, bin: &Path) -> anyhow::Result<(Proc, Endpoint)> {
    let port = procs::free_port()?;
    let mut cmd = Command::new(bin.join("mcp-proxy"));
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--log-level",
        "WARNING",
        "--",
    ])
    .arg(&ctx.bins.fixture)
    .arg("stdio");
    let mut p = Proc::spawn("mcp-proxy", cmd, ctx.work.join("mcp-proxy.log"), false)?;
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/mcp"))?;
    if let Err(e) = procs::wait_mcp(&mut p, &ep, Duration::from_secs(60)).await {
        p.stop().await;
        return Err(e);
    }
    Ok((p, ep))
}

/// `fastmcp run <upstream url>`: a FastMCP proxy served over Streamable HTTP.
async fn start_fastmcp(
    ctx: &Ctx,
    bin: &Path,
    upstream: &Endpoint,
) -> anyhow::Result<(Proc, Endpoint)> {
    let port = procs::free_port()?;
    let mut cmd = Command::new(bin.join("fastmcp"));
    cmd.arg("run")
        .arg(upstream.url())
        .args([
            "--transport",
            "http",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--path",
            "/mcp",
        ])
        .args(["--no-banner", "--log-level", "WARNING"])
        .env("FASTMCP_SHOW_CLI_BANNER", "false")
        .env("FASTMCP_CHECK_FOR_UPDATES", "off");
    let mut p = Proc::spawn("fastmcp", cmd, ctx.work.join("fastmcp.log"), false)?;
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/mcp"))?;
    if let Err(e) = procs::wait_mcp(&mut p, &ep, Duration::from_secs(60)).await {
        p.stop().await;
        return Err(e);
    }
    Ok((p, ep))
}

fn echo(tool: &str) -> crate::load::Work {
    crate::load::Work::Request {
        method: "tools/call",
        params: format!(
            r#"{{"name":"{tool}","arguments":{{"text":"hello from switchboard-bench"}}}}"#
        ),
        min_len: 0,
    }
}

/// A FastMCP proxy that keeps one upstream session per client session (`StatefulProxyClient`),
/// instead of `fastmcp run`'s default of a fresh upstream session per request.
const FASTMCP_STATEFUL: &str = r#"
import sys
from fastmcp.server.providers.proxy import FastMCPProxy, StatefulProxyClient
url, port = sys.argv[1], int(sys.argv[2])
client = StatefulProxyClient(url)
proxy = FastMCPProxy(client_factory=client.new_stateful, name="switchboard-bench-stateful-proxy")
proxy.run(transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False, log_level="WARNING")
"#;

async fn start_fastmcp_stateful(
    ctx: &Ctx,
    bin: &Path,
    upstream: &Endpoint,
) -> anyhow::Result<(Proc, Endpoint)> {
    let port = procs::free_port()?;
    let script = ctx.work.join("fastmcp_stateful_proxy.py");
    std::fs::write(&script, FASTMCP_STATEFUL)?;
    let mut cmd = Command::new(bin.join("python"));
    cmd.arg(&script)
        .arg(upstream.url())
        .arg(port.to_string())
        .env("FASTMCP_CHECK_FOR_UPDATES", "off");
    let mut p = Proc::spawn(
        "fastmcp (stateful)",
        cmd,
        ctx.work.join("fastmcp-stateful.log"),
        false,
    )?;
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/mcp"))?;
    if let Err(e) = procs::wait_mcp(&mut p, &ep, Duration::from_secs(60)).await {
        p.stop().await;
        return Err(e);
    }
    Ok((p, ep))
}

/// Scenario 1 through the hub and the Python proxies, against the same direct upstream.
pub async fn scenario(ctx: &Ctx) -> ScenarioReport {
    let id = "proxies";
    let title =
        "tools/call echo: hub vs Python proxies (mcp-proxy, fastmcp), same upstream fixture";
    let mut report = ScenarioReport {
        id: id.into(),
        title: title.into(),
        status: Status::Ok,
        note: None,
        rows: vec![],
    };
    let bin = match ensure_venv(&ctx.venv, ctx.install_python).await {
        Ok(b) => b,
        Err(e) => {
            report.status = Status::Skipped;
            report.note = Some(format!("{e:#}"));
            return report;
        }
    };
    match run(ctx, &bin).await {
        Ok((rows, note)) => {
            report.rows = rows;
            report.note = Some(note);
        }
        Err(e) => {
            report.status = Status::Failed;
            report.note = Some(format!("{e:#}"));
        }
    }
    report
}

async fn run(ctx: &Ctx, bin: &Path) -> anyhow::Result<(Vec<Row>, String)> {
    let mut notes = vec![format!(
        "mcp-proxy {} (stdio fixture behind it, served over Streamable HTTP); fastmcp {} (`fastmcp run <fixture url>`: a FastMCP proxy that opens a fresh upstream session for every request, its default; \
         `fastmcp (stateful)`: FastMCPProxy with StatefulProxyClient, one upstream session per client session); \
         hub = HTTP upstream, hub (stdio) = stdio upstream; every ratio is vs direct HTTP (default SSE fixture)",
        version_of(bin, "mcp-proxy").await,
        version_of(bin, "fastmcp").await
    )];
    let fx = procs::spawn_fixture(&ctx.bins, &ctx.work, "proxies", FixtureArgs::default()).await?;
    let servers = vec![
        ("echo".to_owned(), procs::http_entry(&fx.endpoint)),
        ("s".to_owned(), procs::stdio_entry(&ctx.bins)),
    ];
    let hub = match procs::spawn_hub(&ctx.bins, &ctx.work, "proxies", &servers).await {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let mut extra_procs = Vec::new();
    let mut contenders = vec![
        Contender {
            target: "direct".into(),
            endpoint: fx.endpoint.clone(),
            work: echo("echo"),
            pid: None,
        },
        Contender {
            target: "hub".into(),
            endpoint: hub.mcp.clone(),
            work: echo("echo__echo"),
            pid: Some(hub.proc.pid()),
        },
        Contender {
            target: "hub (stdio)".into(),
            endpoint: hub.mcp.clone(),
            work: echo("s__echo"),
            pid: Some(hub.proc.pid()),
        },
    ];
    match start_fastmcp(ctx, bin, &fx.endpoint).await {
        Ok((p, ep)) => {
            contenders.push(Contender {
                target: "fastmcp".into(),
                endpoint: ep,
                work: echo("echo"),
                pid: Some(p.pid()),
            });
            extra_procs.push(p);
        }
        Err(e) => notes.push(format!("fastmcp could not be measured: {e:#}")),
    }
    match start_fastmcp_stateful(ctx, bin, &fx.endpoint).await {
        Ok((p, ep)) => {
            contenders.push(Contender {
                target: "fastmcp (stateful)".into(),
                endpoint: ep,
                work: echo("echo"),
                pid: Some(p.pid()),
            });
            extra_procs.push(p);
        }
        Err(e) => notes.push(format!("fastmcp (stateful) could not be measured: {e:#}")),
    }
    match start_mcp_proxy(ctx, bin).await {
        Ok((p, ep)) => {
            contenders.push(Contender {
                target: "mcp-proxy (stdio)".into(),
                endpoint: ep,
                work: echo("echo"),
                pid: Some(p.pid()),
            });
            extra_procs.push(p);
        }
        Err(e) => notes.push(format!("mcp-proxy could not be measured: {e:#}")),
    }
    let mut rows = Vec::new();
    let levels: &[usize] = if ctx.smoke { &[1] } else { &[1, 32] };
    for &c in levels {
        rows.extend(compare(ctx, "proxies", &format!("c={c}"), c, &contenders).await);
    }
    extra_procs.push(hub.proc);
    extra_procs.push(fx.proc);
    procs::stop_all(extra_procs).await;
    Ok((rows, notes.join("; ")))
}
