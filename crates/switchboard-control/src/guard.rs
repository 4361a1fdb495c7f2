//! The SSRF guard for URLs that arrive through an API.
//!
//! Two halves that share one rule set ([`SsrfPolicy`]):
//!
//! * [`check_url`] validates a URL before it is accepted: scheme, credentials, host deny list,
//!   and every address the host resolves to. Odd spellings are normalised by WHATWG URL parsing
//!   first (`0x7f.1`, `2130706433`, `017700000001`, `127.1`, full-width digits, percent-encoded
//!   hosts, IDN to punycode), so the check sees the address the HTTP client will use.
//! * [`guarded_client`] is an HTTP client whose DNS resolver ([`GuardedResolver`]) applies the
//!   same checks at connect time and hands the connector exactly the addresses it checked, so a
//!   name that resolves to a public address during validation and to a private one later (DNS
//!   rebinding) is refused when the connection is made. Redirects are not followed.
//!
//! reqwest does not call the resolver for IP-literal hosts, so the guarded client alone does not
//! stop `http://127.0.0.1/`: anything that takes a URL from an API must call [`check_url`] (or
//! [`crate::check_ssrf`]) as well. Literal addresses cannot change between the check and the
//! connection, so the two together leave no gap.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::ssrf::{Refusal, SsrfPolicy};

use crate::ControlError;

/// How long a host name may take to resolve.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A future of resolved socket addresses.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Name resolution: the system resolver in production, a stub in tests.
pub trait Lookup: Send + Sync + 'static {
    /// Resolves `host` (a domain name, without a trailing dot) for `port`.
    fn lookup(&self, host: &str, port: u16) -> LookupFuture;
}

/// The operating system's resolver, through [`tokio::net::lookup_host`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str, port: u16) -> LookupFuture {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// The error the guarded resolver returns when the policy refuses a host. It travels inside the
/// `reqwest::Error` of the refused request; [`refusal_in`] finds it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrfRefused {
    /// The host that was refused.
    pub host: String,
    /// The rule that matched and the setting that would allow it.
    pub refusal: Refusal,
}

impl std::fmt::Display for SsrfRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SSRF guard refused {}: {}", self.host, self.refusal)
    }
}

impl std::error::Error for SsrfRefused {}

/// The SSRF refusal somewhere in `err`'s source chain (for example a `reqwest::Error` from a
/// [`guarded_client`] request), if that is why it failed.
pub fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a SsrfRefused> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<SsrfRefused>() {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// Why resolving a host through the guard failed.
#[derive(Debug)]
enum Failure {
    Refused(SsrfRefused),
    Lookup(io::Error),
}

/// A `reqwest` DNS resolver that enforces the SSRF policy at connect time: it refuses the whole
/// host when the name is on the deny list or when any address it resolves to is forbidden, and
/// otherwise returns exactly the addresses it checked (the connector does not resolve again).
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<SsrfPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// A resolver applying `policy` to what `lookup` answers.
    pub fn new(policy: SsrfPolicy, lookup: Arc<dyn Lookup>) -> GuardedResolver {
        let policy = ascii_deny_hosts(&policy).into_owned();
        GuardedResolver {
            policy: Arc::new(policy),
            lookup,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &SsrfPolicy {
        &self.policy
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port (or the scheme's default).
            match resolve_checked(&policy, lookup.as_ref(), &host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(Failure::Refused(r)) => {
                    tracing::warn!(message = "SSRF guard refused a connection.", host = %r.host, rule = %r.refusal.rule);
                    Err(Box::new(r) as Box<dyn std::error::Error + Send + Sync>)
                }
                Err(Failure::Lookup(e)) => {
                    Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

/// An HTTP client configured like [`switchboard_upstream::http_client`] (keep-alive, no proxy,
/// no redirects, `TCP_NODELAY`, the ring TLS provider) whose host names resolve through a
/// [`GuardedResolver`]. IP-literal URLs bypass resolvers: check them with [`check_url`] first.
pub fn guarded_client(policy: SsrfPolicy, lookup: Arc<dyn Lookup>) -> reqwest::Client {
    switchboard_upstream::http_client_builder()
        .dns_resolver(Arc::new(GuardedResolver::new(policy, lookup)))
        .build()
        .expect("the HTTP client configuration is valid")
}

/// Checks a URL that arrived through an API: http or https only, no credentials in the URL,
/// the host not on the deny list, and every address it stands for or resolves to (through
/// `lookup`) allowed by `policy`.
///
/// Errors: [`ControlError::Invalid`] for malformed URLs, other schemes, missing hosts and
/// `user:password@`; [`ControlError::Forbidden`] naming the rule and the setting that would
/// allow it; [`ControlError::Unreachable`] when the name does not resolve.
pub async fn check_url(
    policy: &SsrfPolicy,
    lookup: &dyn Lookup,
    url: &str,
) -> Result<(), ControlError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| ControlError::Invalid(format!("invalid URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(ControlError::Invalid(format!(
                "{url:?}: the scheme {other:?} is not allowed; use http:// or https://"
            )));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // `http://trusted.example@127.0.0.1/` connects to 127.0.0.1; refuse the confusion outright.
        return Err(ControlError::Invalid(format!(
            "{}: credentials in the URL (user:password@host) are not accepted; send them as a header or token",
            redacted(&parsed)
        )));
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let policy = ascii_deny_hosts(policy);
    match parsed.host() {
        None => Err(ControlError::Invalid(format!("{url:?} has no host"))),
        Some(url::Host::Ipv4(v4)) => check_literal(&policy, IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => check_literal(&policy, IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            if name.is_empty() {
                return Err(ControlError::Invalid(format!("{url:?} has no valid host")));
            }
            match resolve_checked(&policy, lookup, name, port).await {
                Ok(_) => Ok(()),
                Err(Failure::Refused(r)) => Err(ControlError::Forbidden(r.to_string())),
                Err(Failure::Lookup(e)) => Err(ControlError::Unreachable(format!(
                    "cannot resolve {name}: {e}"
                ))),
            }
        }
    }
}

fn check_literal(policy: &SsrfPolicy, ip: IpAddr) -> Result<(), ControlError> {
    let host = ip.to_string();
    let refused = |refusal: Refusal| {
        crate::metrics::metrics()
            .ssrf_refusals
            .with(&[], |c| c.inc());
        ControlError::Forbidden(
            SsrfRefused {
                host: host.clone(),
                refusal,
            }
            .to_string(),
        )
    };
    policy.check_host(&host).map_err(refused)?;
    policy.check_ip(ip).map_err(refused)
}

/// Resolves `host` and checks it and every address; the addresses on success.
async fn resolve_checked(
    policy: &SsrfPolicy,
    lookup: &dyn Lookup,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Failure> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let refused = |refusal: Refusal| {
        crate::metrics::metrics()
            .ssrf_refusals
            .with(&[], |c| c.inc());
        Failure::Refused(SsrfRefused {
            host: host.clone(),
            refusal,
        })
    };
    policy.check_host(&host).map_err(refused)?;
    let addrs = match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        // Literals normally never reach a resolver; check them all the same.
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(LOOKUP_TIMEOUT, lookup.lookup(&host, port))
            .await
            .map_err(|_| {
                Failure::Lookup(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "resolution timed out",
                ))
            })?
            .map_err(Failure::Lookup)?,
    };
    if addrs.is_empty() {
        return Err(Failure::Lookup(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no addresses",
        )));
    }
    for addr in &addrs {
        policy.check_ip(addr.ip()).map_err(refused)?;
    }
    Ok(addrs)
}

/// The policy with internationalised deny-list hosts in their punycode form, which is how
/// parsed URLs and resolvers spell them.
fn ascii_deny_hosts(policy: &SsrfPolicy) -> Cow<'_, SsrfPolicy> {
    if policy.deny_hosts.iter().all(|h| h.is_ascii()) {
        return Cow::Borrowed(policy);
    }
    let deny_hosts = policy
        .deny_hosts
        .iter()
        .map(|h| match url::Host::parse(h.trim_end_matches('.')) {
            Ok(url::Host::Domain(d)) => d,
            _ => h.clone(),
        })
        .collect();
    Cow::Owned(SsrfPolicy {
        deny_hosts,
        ..policy.clone()
    })
}

/// `scheme://host:port` of a URL, for messages (no credentials, path or query).
fn redacted(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}
