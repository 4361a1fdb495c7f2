//! The app builder: everything `switchboard serve` wires together (listeners, the store,
//! the default tenant's hub, the control plane, tenants, identity, replicas, background tasks),
//! built once by [`App::build`] and run by [`App::serve`] until a stop signal, then drained.
//!
//! Startup order: the configuration was checked before this runs; then bind the listeners
//! (a taken port fails before anything starts), open the store, import the servers file if it
//! changed, reconcile (recovery needs no call), then serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use switchboard_control::activity::{ActivityLog, HubObserver, ObserveConfig};
use switchboard_control::identity::{ExternalIssuer, hash_password, parse_retention, random_hex};
use switchboard_control::ratelimit::{RateLimits, parse_rate};
use switchboard_control::{ControlConfig, ControlPlane, Identity, IdentityConfig, Tenants};
use switchboard_core::config::ServersFile;
use switchboard_core::ssrf::{SsrfPolicy, parse_cidrs};
use switchboard_http::{
    AdminAuth, ApiState, ListenerLimits, McpAuth, McpServiceClient, ServiceOptions,
};
use switchboard_store::{Role, Store, StoreAccess, UserRecord};
use switchboard_upstream::ProcessGroups;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{McpAuthArg, Role as ServiceRole, ServeArgs};

/// A hub ready to serve: listeners bound, store open, servers file applied, tenants started
/// and background tasks running. Nothing answers requests until [`App::serve`].
pub struct App {
    main: Option<TcpListener>,
    mcp: Option<TcpListener>,
    metrics_addr: Option<SocketAddr>,
    api: ApiState,
    tenants: Arc<Tenants>,
    options: ServiceOptions,
    limits: ListenerLimits,
    drain_timeout: f64,
    groups: Arc<ProcessGroups>,
    shutdown: CancellationToken,
}

impl App {
    /// Binds the listeners, opens the store and starts everything but the HTTP services.
    pub async fn build(args: ServeArgs, servers: ServersFile) -> anyhow::Result<App> {
        let ssrf = ssrf_policy(&args)?;
        // Checked whether or not traces are on: a bad --trace-sample-ratio is refused; an
        // OTEL_TRACES_SAMPLER* value we do not understand is a warning (those variables are
        // often set for every program of a machine) and the default is used.
        let (sampler, warning) = switchboard_hub::sampler::Sampler::from_settings(
            args.trace_sample_ratio.as_deref(),
            |k| std::env::var(k).ok(),
        )
        .map_err(anyhow::Error::msg)?;
        if let Some(warning) = warning {
            tracing::warn!(message = "Trace sampler setting ignored.", reason = %warning);
        }
        if args.role == ServiceRole::Main && args.mcp_service_url.is_none() {
            bail!(
                "--role main needs --mcp-service-url (the MCP service's base URL, e.g. http://127.0.0.1:5011)"
            );
        }
        let mcp_auth = match args.mcp_auth {
            McpAuthArg::Optional => McpAuth::Optional,
            McpAuthArg::Required => McpAuth::Required,
        };
        if args.role != ServiceRole::Main
            && mcp_auth == McpAuth::Optional
            && !args.mcp_addr.ip().is_loopback()
        {
            bail!(
                "the MCP service would listen on {} without authentication: use a loopback address, \
                 or --mcp-auth required",
                args.mcp_addr
            );
        }
        let stdio_allow = switchboard_control::StdioAllowlist::parse(&args.stdio_allow)
            .map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&args.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                args.data_dir.display()
            )
        })?;
        let groups = crate::commands::guard_processes(Some(&args.data_dir))?;
        let main = match args.role {
            ServiceRole::All | ServiceRole::Main => Some(bind(args.main_addr, "main").await?),
            ServiceRole::Mcp => None,
        };
        let mcp = match args.role {
            ServiceRole::All | ServiceRole::Mcp => Some(bind(args.mcp_addr, "MCP").await?),
            ServiceRole::Main => None,
        };
        let key = switchboard_store::load_or_create_key(&args.data_dir, args.secret_key.as_deref())
            .context("secret key")?;
        let store = open_store(&args, key.clone()).await?;
        // Sealed session ids: any replica sharing the secret key resumes any session.
        let replicas = switchboard_control::replicas::Replicas::new(key, store.clone());
        let (auth, generated) = AdminAuth::load(store.as_ref(), args.admin_token.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
        if let Some(token) = generated {
            eprintln!("switchboard: generated the admin token (shown once; keep it): {token}");
        }
        // Servers added through the API connect through a resolver that enforces the SSRF policy.
        let guarded = switchboard_control::guarded_client(
            ssrf.clone(),
            Arc::new(switchboard_control::SystemLookup),
        );
        let _ = crate::commands::EMBEDDING_CACHE_DIR.set(args.data_dir.join("embeddings"));
        let hub = crate::commands::new_hub(&args.common, Some(guarded.clone()));
        // Metrics and the activity log: one observer for every tenant's hub.
        let shutdown = CancellationToken::new();
        let observe = ObserveConfig {
            metrics: !args.no_metrics,
            activity: !args.no_activity_log,
            log_payloads: args.log_payloads,
            redact_keys: args.redact_keys.clone(),
            retention: parse_retention(&args.activity_retention)
                .map_err(|e| anyhow::anyhow!("--activity-retention: {e}"))?,
        };
        let activity = observe
            .activity
            .then(|| ActivityLog::start(store.clone(), &observe, shutdown.clone()));
        let observer = HubObserver::new(&observe, activity.clone());
        let observing = observe.metrics || observe.activity;
        if observing {
            hub.observe(switchboard_store::DEFAULT_TENANT, observer.clone());
        }
        replicas.join(switchboard_store::DEFAULT_TENANT, &hub);
        // Traces: only with an OTLP endpoint (flag or OTEL_* variables); nothing runs otherwise.
        let tracer =
            switchboard_control::otlp::OtlpConfig::from_env(args.otlp_endpoint.as_deref(), |k| {
                std::env::var(k).ok()
            })
            .map(|config| {
                tracing::info!(
                    message = "Exporting traces over OTLP/HTTP JSON.",
                    url = %config.url,
                    sampler = %sampler
                );
                let client = switchboard_upstream::http_client();
                switchboard_control::otlp::OtlpExporter::start(config, client, shutdown.clone())
            });
        if let Some(t) = &tracer {
            hub.trace(switchboard_store::DEFAULT_TENANT, t.clone(), sampler, "tcp");
        }
        let config = ControlConfig {
            ssrf,
            stdio_allow: Arc::new(stdio_allow),
            apply: args.role != ServiceRole::Main,
            client: Some(guarded.clone()),
            ..ControlConfig::default()
        };
        let control = ControlPlane::new(store.clone(), hub.clone(), config.clone());
        // Every other tenant gets a hub of its own, built with the same settings.
        let make_hub: switchboard_control::HubFactory = {
            let common = args.common.clone();
            let guarded = guarded.clone();
            let observer = observer.clone();
            let tracer = tracer.clone();
            let replicas = replicas.clone();
            Arc::new(move |tenant: &str| {
                let hub = crate::commands::new_hub(&common, Some(guarded.clone()));
                replicas.join(tenant, &hub);
                if observing {
                    hub.observe(tenant, observer.clone());
                }
                if let Some(t) = &tracer {
                    hub.trace(tenant, t.clone(), sampler, "tcp");
                }
                hub
            })
        };
        let tenants = Tenants::new(store.clone(), make_hub, config, control.clone());
        let identity = Identity::new(
            store.clone(),
            IdentityConfig {
                external: external_issuer(&args),
                audit_retention: parse_retention(&args.audit_retention)
                    .map_err(|e| anyhow::anyhow!("--audit-retention: {e}"))?,
                rate_limits: RateLimits {
                    per_key: parse_rate(&args.rate_limit_key)
                        .map_err(|e| anyhow::anyhow!("--rate-limit-key: {e}"))?,
                    per_tenant: parse_rate(&args.rate_limit_tenant)
                        .map_err(|e| anyhow::anyhow!("--rate-limit-tenant: {e}"))?,
                },
                ..IdentityConfig::default()
            },
            switchboard_upstream::http_client(),
        )
        .await
        .context("cannot load the token signing key")?;
        if let Some(password) = &args.admin_password {
            bootstrap_admin(store.as_ref(), password).await?;
        }
        let digest = import_if_changed(
            &control,
            store.as_ref(),
            &servers,
            args.common.servers.as_deref(),
        )
        .await?;
        control.reconcile().await.context("initial reconcile")?;
        tenants.sync().await.context("starting the tenants")?;
        // Sessions their clients ended (on any replica, before a restart) are never resumed.
        replicas
            .load_ended(&tenants, shutdown.clone())
            .await
            .context("loading ended sessions")?;

        // The sweeper writes the summaries of refused-request floods and deletes rows past the
        // retention: every tenth of the retention, between 1 s and a minute.
        let every = identity
            .config()
            .audit_retention
            .map_or(Duration::from_secs(60), |r| r / 10)
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        tokio::spawn(identity.clone().run_audit_sweeper(every, shutdown.clone()));
        if let (Some(path), Some(digest), true) = (
            args.common.servers.clone(),
            digest,
            args.role != ServiceRole::Main,
        ) {
            tokio::spawn(watch_servers_file(
                control.clone(),
                path,
                args.common.separator.clone(),
                digest,
                shutdown.clone(),
            ));
        }
        // Several replicas on one PostgreSQL: changes and messages travel by LISTEN/NOTIFY (the
        // revision poll below stays as the fallback).
        if let Some(url) = args
            .database_url
            .as_deref()
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            let origin = switchboard_hub::random_id()[..12].to_string();
            if let Err(e) = replicas
                .start(
                    url,
                    origin,
                    tenants.clone(),
                    identity.clone(),
                    shutdown.clone(),
                )
                .await
            {
                tracing::warn!(message = "Cannot join the replica bus; other replicas' changes arrive by polling only.", error = %e);
            }
        }
        tokio::spawn(tenants.clone().watch(
            Duration::from_millis(args.reconcile_interval_ms.max(50)),
            shutdown.clone(),
        ));
        let mcp_service = args
            .mcp_service_url
            .as_ref()
            .filter(|_| args.role == ServiceRole::Main)
            .map(|base| McpServiceClient {
                base: base.trim_end_matches('/').to_string(),
                token: args.admin_token.clone().unwrap_or_default(),
                http: switchboard_upstream::http_client(),
            });
        let api = ApiState {
            control: control.clone(),
            tenants: tenants.clone(),
            identity,
            auth: Arc::new(auth),
            mcp_service,
            activity,
            metrics_public: args.metrics_public,
        };
        let options = ServiceOptions {
            mcp_auth,
            public_url: args.public_url.clone(),
            max_body: args.max_body_bytes,
            origins: crate::commands::origin_policy(&args.common),
        };
        let limits = listener_limits(&args)?;
        Ok(App {
            main,
            mcp,
            metrics_addr: args.metrics_addr,
            api,
            tenants,
            options,
            limits,
            drain_timeout: args.drain_timeout,
            groups,
            shutdown,
        })
    }

    /// The main service's address (management API, dashboard), unless the role leaves it out.
    pub fn main_addr(&self) -> Option<SocketAddr> {
        self.main.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The MCP service's address, unless the role leaves it out.
    pub fn mcp_addr(&self) -> Option<SocketAddr> {
        self.mcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `stop` completes or a listener fails, then drains: stop accepting, give
    /// client streams back, let requests in flight finish up to the drain timeout, and stop
    /// every upstream.
    pub async fn serve(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let App {
            main,
            mcp,
            metrics_addr,
            api,
            tenants,
            options,
            limits,
            drain_timeout,
            groups,
            shutdown,
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(l) = main {
            tracing::info!(message = "Main service listening.", addr = %l.local_addr()?);
            tasks.spawn(switchboard_http::serve_with(
                l,
                switchboard_http::main_service(api.clone(), &options),
                limits,
                shutdown.clone(),
            ));
        }
        if let Some(addr) = metrics_addr {
            let l = bind(addr, "metrics").await?;
            tracing::info!(message = "Metrics listening.", addr = %l.local_addr()?);
            tasks.spawn(switchboard_http::serve(
                l,
                switchboard_http::metrics_service(api.clone()),
                shutdown.clone(),
            ));
        }
        if let Some(l) = mcp {
            tracing::info!(message = "MCP service listening.", addr = %l.local_addr()?, mcp = %format!("http://{}/mcp", l.local_addr()?));
            tasks.spawn(switchboard_http::serve_with(
                l,
                switchboard_http::mcp_service(api, &options),
                limits,
                shutdown.clone(),
            ));
        }
        tokio::select! {
            _ = stop => tracing::info!(message = "Shutting down."),
            Some(r) = tasks.join_next() => {
                if let Ok(Err(e)) = r {
                    tracing::error!(message = "A listener failed.", error = %e);
                }
            }
        }
        // Drain: stop accepting (open connections close after their current response), give
        // client streams back so clients reconnect elsewhere, and let requests in flight finish
        // up to the drain timeout. Then stop every upstream (stdio process groups included).
        shutdown.cancel();
        let streams: usize = tenants
            .all()
            .iter()
            .map(|p| p.hub().release_streams())
            .sum();
        let drain = Duration::from_secs_f64(drain_timeout.clamp(0.0, 3600.0));
        let began = std::time::Instant::now();
        let drained =
            tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} })
                .await
                .is_ok();
        tracing::info!(
            message = "Drained.",
            streams_released = streams,
            waited_ms = began.elapsed().as_millis() as u64,
            complete = drained
        );
        tenants.shutdown().await;
        groups.stop_all();
        Ok(())
    }
}

fn listener_limits(args: &ServeArgs) -> anyhow::Result<switchboard_http::ListenerLimits> {
    let secs = |v: f64, flag: &str| {
        if v.is_finite() && v > 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(anyhow::anyhow!(
                "{flag} must be a positive number of seconds, not {v}"
            ))
        }
    };
    Ok(switchboard_http::ListenerLimits {
        header_timeout: secs(args.header_timeout, "--header-timeout")?,
        body_timeout: secs(args.body_timeout, "--body-timeout")?,
        idle_timeout: secs(args.idle_timeout, "--idle-timeout")?,
        max_connections_per_ip: args.max_connections_per_ip,
    })
}

fn external_issuer(args: &ServeArgs) -> Option<ExternalIssuer> {
    let issuer = args.oauth_issuer.clone()?;
    let jwks_url = args.oauth_jwks_url.clone()?;
    let audience = args.oauth_audience.clone().unwrap_or_else(|| {
        let base = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.main_addr));
        format!("{}/mcp", base.trim_end_matches('/'))
    });
    Some(ExternalIssuer {
        issuer,
        jwks_url,
        audience,
    })
}

/// Creates the `admin` user of the default tenant, or resets its password and role.
async fn bootstrap_admin(store: &dyn Store, password: &str) -> anyhow::Result<()> {
    switchboard_control::identity::check_password_rules(password)
        .map_err(|e| anyhow::anyhow!("--admin-password: {e}"))?;
    let hash = hash_password(password).map_err(anyhow::Error::msg)?;
    let now = switchboard_control::now_ms();
    match store.get_user_by_name("admin").await? {
        Some(mut user) => {
            user.password_hash = hash;
            user.role = Role::Admin;
            user.disabled_at = None;
            user.updated_at = now;
            store.update_user(&user).await?;
        }
        None => {
            store
                .insert_user(&UserRecord {
                    id: random_hex(12),
                    tenant: switchboard_store::DEFAULT_TENANT.into(),
                    username: "admin".into(),
                    password_hash: hash,
                    role: Role::Admin,
                    grants: vec!["*".into()],
                    disabled_at: None,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
        }
    }
    Ok(())
}

fn ssrf_policy(args: &ServeArgs) -> anyhow::Result<SsrfPolicy> {
    Ok(SsrfPolicy {
        allow_cidrs: parse_cidrs(&args.ssrf_allow_cidrs)
            .map_err(|e| anyhow::anyhow!("--ssrf-allow-cidrs: {e}"))?,
        deny_cidrs: parse_cidrs(&args.ssrf_deny_cidrs)
            .map_err(|e| anyhow::anyhow!("--ssrf-deny-cidrs: {e}"))?,
        deny_hosts: args
            .ssrf_deny_hosts
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

async fn open_store(
    args: &ServeArgs,
    key: switchboard_store::SecretKey,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => format!(
            "sqlite://{}",
            args.data_dir.join("switchboard.db").display()
        ),
    };
    switchboard_store::open(&url, key)
        .await
        .context("cannot open the store")
}

/// Applies the servers file to the entries it owns when its content differs from the last one
/// applied (see [`ControlPlane::sync_servers_file`]). Returns the digest of the file.
async fn import_if_changed(
    control: &ControlPlane,
    store: &dyn Store,
    servers: &ServersFile,
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let digest = format!("{:016x}", fnv(&text));
    if store.get_meta("servers_file_digest").await?.as_deref() == Some(digest.as_str()) {
        tracing::info!(
            message = "Servers file unchanged since it was last applied.",
            file = %path.display()
        );
        return Ok(Some(digest));
    }
    let report = control.sync_servers_file(servers).await?;
    store.set_meta("servers_file_digest", &digest).await?;
    log_sync(path, &report);
    Ok(Some(digest))
}

fn log_sync(path: &std::path::Path, r: &switchboard_control::ImportReport) {
    tracing::info!(message = "Applied the servers file.", file = %path.display(), format = %r.format,
        added = ?r.added, updated = ?r.updated, removed = ?r.removed, conflicts = ?r.conflicts);
    for n in r.notes.iter().filter(|n| n.action != "kept") {
        tracing::info!(message = "Servers file import note.", entry = %n.entry, action = n.action, detail = %n.detail);
    }
}

/// Every second, re-reads the servers file; when its content changed, applies it to the
/// entries it owns. A file that does not parse is reported once and the running
/// configuration stays.
async fn watch_servers_file(
    control: Arc<ControlPlane>,
    path: std::path::PathBuf,
    separator: String,
    mut last: String,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed: Option<String> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(text) = tokio::fs::read(&path).await else {
            continue;
        };
        let digest = format!("{:016x}", fnv(&text));
        if digest == last || failed.as_deref() == Some(digest.as_str()) {
            continue;
        }
        let file = match switchboard_core::config::parse_servers_file(
            &path,
            &String::from_utf8_lossy(&text),
            &switchboard_core::config::ProcessEnv,
            &separator,
        ) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(message = "Servers file changed but is invalid; keeping the running configuration.", error = %e);
                failed = Some(digest);
                continue;
            }
        };
        match control.sync_servers_file(&file).await {
            Ok(report) => {
                if let Err(e) = control
                    .store()
                    .set_meta("servers_file_digest", &digest)
                    .await
                {
                    tracing::warn!(message = "Cannot record the servers file's digest.", error = %e);
                }
                log_sync(&path, &report);
                last = digest;
                failed = None;
            }
            Err(e) => {
                tracing::warn!(message = "Cannot apply the changed servers file.", file = %path.display(), error = %e);
            }
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what} service"))
}
