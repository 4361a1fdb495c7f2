//! The subcommands, and what they share: logging, the runtime, loading the servers file.

mod connect;
mod identity;
mod logs;
mod serve;
mod servers;
mod stdio;

use std::process::ExitCode;

use switchboard_core::config::{ProcessEnv, ServersFile, load_servers_file};
use switchboard_hub::{Hub, HubConfig};

use crate::cli::{Cli, Command, CommonArgs};

/// Exit code for bad configuration (EX_USAGE-like, as documented in README).
pub(crate) const EXIT_CONFIG: u8 = 2;

pub fn run(mut cli: Cli) -> ExitCode {
    // A relative --servers path is taken from the current directory, once, so the watcher and
    // messages see the same absolute path.
    if let Command::Serve(a) = &mut cli.command
        && let Err(msg) = absolute_servers(&mut a.common)
    {
        eprintln!("switchboard: {msg}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let common = match &cli.command {
        Command::Serve(a) => &a.common,
        Command::Stdio(a) => &a.common,
        Command::Validate(a) => a,
        Command::Servers { api, action } => return run_client(servers::run(api, action)),
        Command::Tenants { api, action } => return run_client(identity::tenants(api, action)),
        Command::Users { api, action } => return run_client(identity::users(api, action)),
        Command::Keys { api, action } => return run_client(identity::keys(api, action)),
        Command::Logs { api, args } => return run_client(logs::run(api, args)),
        Command::Check {
            api,
            url,
            transport,
        } => return run_client(servers::check(api, url, transport.as_deref())),
        Command::Connect { url, key } => {
            init_logging("warn", false);
            return run_client(connect::run(url, key.clone()));
        }
    };
    init_logging(
        &common.log,
        common.log_format == crate::cli::LogFormat::Json,
    );
    // Configuration is checked before any runtime, socket or process exists.
    let servers = match load(common) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("switchboard: {msg}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(worker_threads(common.threads));
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(*args, servers)),
        Command::Stdio(args) => runtime.block_on(stdio::run(args, servers)),
        Command::Servers { .. }
        | Command::Tenants { .. }
        | Command::Users { .. }
        | Command::Keys { .. }
        | Command::Check { .. }
        | Command::Connect { .. }
        | Command::Logs { .. } => unreachable!("handled above"),
        Command::Validate(_) => {
            println!(
                "ok: {} server(s), {} group(s) ({} format)",
                servers.servers.len(),
                servers.groups.len(),
                servers.format
            );
            for n in &servers.notes {
                println!("  {:<9}  {:<28}  {}", n.action, n.entry, n.detail);
            }
            Ok(())
        }
    };
    // Child tasks may still hold blocking reads on stdin; do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an API client command on a small runtime; errors go to stderr with exit code 1.
fn run_client(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Worker threads: as asked, else half the CPUs (at least one). The hub mostly waits on
/// sockets and pipes, and the other half is left to the MCP servers it runs: on two cores, one
/// worker measured faster than two (fewer hand-offs between threads per relayed call).
fn worker_threads(asked: Option<usize>) -> usize {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    asked.filter(|n| *n > 0).unwrap_or((cpus / 2).max(1))
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr: in stdio mode stdout belongs to the protocol.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json {
        builder.event_format(crate::logjson::JsonLines).try_init()
    } else {
        builder.try_init()
    };
}

fn absolute_servers(common: &mut CommonArgs) -> Result<(), String> {
    let Some(path) = &common.servers else {
        return Ok(());
    };
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let abs = cwd.join(path);
    if !abs.is_file() {
        return Err(format!(
            "--servers {}: no such file (looked for {})",
            path.display(),
            abs.display()
        ));
    }
    common.servers = Some(abs);
    Ok(())
}

fn load(common: &CommonArgs) -> Result<ServersFile, String> {
    if let Err(m) = switchboard_core::naming::validate_separator(&common.separator) {
        return Err(format!("--separator: {m}"));
    }
    let Some(path) = &common.servers else {
        return Ok(ServersFile::default());
    };
    let file =
        load_servers_file(path, &ProcessEnv, &common.separator).map_err(|e| e.to_string())?;
    for n in file.notes.iter().filter(|n| n.action == "converted") {
        tracing::info!(message = "Servers file entry converted.", entry = %n.entry, detail = %n.detail);
    }
    for w in &file.warnings {
        tracing::warn!(message = "Servers file warning.", warning = %w);
    }
    Ok(file)
}

/// Makes the hub the subreaper of its stdio servers' orphans, kills the process groups a
/// previous run recorded (in `data_dir/pgroups`, or for `stdio` mode in a per-user state
/// directory) and left behind, and records this run's groups from now on.
pub(crate) fn guard_processes(
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<std::sync::Arc<switchboard_upstream::ProcessGroups>> {
    use anyhow::Context;
    use switchboard_upstream::ProcessGroups;
    switchboard_upstream::become_subreaper();
    let groups = match data_dir {
        Some(dir) => {
            let path = dir.join("pgroups");
            ProcessGroups::open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            let dir = stdio_state_dir();
            ProcessGroups::open_in(&dir).with_context(|| {
                format!("cannot write the process-group record in {}", dir.display())
            })?
        }
    };
    groups.install();
    Ok(groups)
}

/// `$XDG_RUNTIME_DIR/switchboard`, else `$HOME/.local/state/switchboard`, else the temporary
/// directory's `switchboard`.
fn stdio_state_dir() -> std::path::PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(run) = env("XDG_RUNTIME_DIR") {
        return std::path::PathBuf::from(run).join("switchboard");
    }
    if let Some(home) = env("HOME") {
        return std::path::PathBuf::from(home).join(".local/state/switchboard");
    }
    std::env::temp_dir().join("switchboard")
}

/// Where embeddings of tool definitions are cached (`serve`: the data dir's `embeddings`).
pub(crate) static EMBEDDING_CACHE_DIR: std::sync::OnceLock<std::path::PathBuf> =
    std::sync::OnceLock::new();

/// The process's semantic search (one model, one cache, shared by every tenant's hub):
/// `None` without an embedding flag, or, with one warning line, when the model cannot be
/// loaded (search stays lexical).
fn semantic(common: &CommonArgs) -> Option<std::sync::Arc<switchboard_hub::embedder::Semantic>> {
    use std::sync::{Arc, OnceLock};
    use switchboard_hub::embedder::{Embedder, HttpEmbedder, LocalEmbedder, Semantic};
    static SEMANTIC: OnceLock<Option<Arc<Semantic>>> = OnceLock::new();
    SEMANTIC
        .get_or_init(|| {
            let embedder: Arc<dyn Embedder> = if let Some(dir) = &common.embedding_model {
                match LocalEmbedder::load(dir) {
                    Ok(e) => Arc::new(e),
                    Err(e) => {
                        tracing::warn!(model = %dir.display(), error = %e, "cannot load the embedding model; tool search stays lexical");
                        return None;
                    }
                }
            } else if let Some(url) = &common.embedding_url {
                match HttpEmbedder::new(url, common.embedding_key.clone(), &common.embedding_model_name) {
                    Ok(e) => Arc::new(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot use the embedding URL; tool search stays lexical");
                        return None;
                    }
                }
            } else {
                return None;
            };
            let dir = EMBEDDING_CACHE_DIR
                .get()
                .cloned()
                .unwrap_or_else(|| stdio_state_dir().join("embeddings"));
            tracing::info!(model = embedder.id(), cache = %dir.display(), "semantic tool search enabled");
            Some(Arc::new(Semantic::new(embedder, Some(&dir))))
        })
        .clone()
}

/// An empty hub with the command line's settings.
/// The `--allowed-origins` and `--allowed-hosts` lists.
pub(crate) fn origin_policy(common: &CommonArgs) -> switchboard_http::OriginPolicy {
    switchboard_http::OriginPolicy {
        allowed_origins: comma_list(&common.allowed_origins),
        allowed_hosts: comma_list(&common.allowed_hosts),
    }
}

fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn new_hub(common: &CommonArgs, untrusted_client: Option<reqwest::Client>) -> Hub {
    switchboard_upstream::set_default_max_result_bytes(common.max_result_bytes);
    Hub::new(HubConfig {
        separator: common.separator.clone(),
        page_size: common.page_size,
        untrusted_client,
        max_concurrent_calls: common.max_calls_per_tenant,
        max_stdio_servers: common.max_stdio_servers_per_tenant,
        smart_mode: match common.smart_mode {
            crate::cli::SmartModeArg::Full => switchboard_hub::SmartMode::Full,
            crate::cli::SmartModeArg::Compact => switchboard_hub::SmartMode::Compact,
        },
        smart_usage_prior: !common.no_smart_usage_prior,
        max_calls_per_session: common.max_calls_per_session,
        max_calls_per_credential: common.max_calls_per_credential,
        stream_queue_bytes: common.stream_queue_bytes,
        on_tool_change: common
            .on_tool_change
            .parse()
            .expect("clap accepts only hide, warn or allow"),
        semantic: semantic(common),
        ..HubConfig::default()
    })
}

/// Builds a hub and registers every server and group of the file.
pub(crate) async fn build_hub(common: &CommonArgs, servers: ServersFile) -> anyhow::Result<Hub> {
    let hub = new_hub(common, None);
    for (_, spec) in servers.servers {
        hub.add_server(spec).await?;
    }
    hub.set_groups(servers.groups).await?;
    Ok(hub)
}
