//! The SSRF guard: a table of hostile URLs, allow-list and public cases, resolver stubs that lie
//! (a public name with a private address, an answer that changes between lookups), and real
//! requests through the guarded client against a local listener.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_control::guard::{self, Lookup, LookupFuture};
use switchboard_control::{ControlError, check_ssrf, guarded_client, refusal_in};
use switchboard_core::ssrf::{SsrfPolicy, parse_cidrs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A resolver with a fixed table; names it does not know do not resolve. Records every query.
#[derive(Default)]
struct Stub {
    table: HashMap<String, Vec<IpAddr>>,
    asked: Mutex<Vec<String>>,
}

impl Stub {
    fn new(entries: &[(&str, &[&str])]) -> Stub {
        let table = entries
            .iter()
            .map(|(name, ips)| {
                (
                    name.to_string(),
                    ips.iter().map(|ip| ip.parse().unwrap()).collect(),
                )
            })
            .collect();
        Stub {
            table,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Lookup for Stub {
    fn lookup(&self, host: &str, port: u16) -> LookupFuture {
        self.asked.lock().unwrap().push(host.to_string());
        let answer = match self.table.get(host) {
            Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("stub: no such host {host}"),
            )),
        };
        Box::pin(async move { answer })
    }
}

/// A resolver that answers a public address the first time and a different one afterwards.
struct Rebinding {
    first: IpAddr,
    then: IpAddr,
    calls: Arc<AtomicUsize>,
}

impl Lookup for Rebinding {
    fn lookup(&self, _host: &str, port: u16) -> LookupFuture {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let ip = if n == 0 { self.first } else { self.then };
        Box::pin(async move { Ok(vec![SocketAddr::new(ip, port)]) })
    }
}

fn stub() -> Stub {
    Stub::new(&[
        ("localhost", &["127.0.0.1"]),
        ("metadata.google.internal", &["169.254.169.254"]),
        ("xn--bcher-kva.example", &["10.0.0.5"]),
        ("xn--e1afmkfd.example", &["192.168.0.10"]),
        ("www.public-looking.example", &["10.1.2.3"]),
        ("mixed.example", &["93.184.216.34", "127.0.0.1"]),
        ("mixed6.example", &["2606:4700::1111", "::1"]),
        ("nat64.example", &["64:ff9b::a00:1"]),
        ("mapped.example", &["::ffff:169.254.169.254"]),
        ("empty.example", &[]),
        ("example.com", &["93.184.216.34"]),
        ("evil.example", &["93.184.216.34"]),
        ("v6.example", &["2606:4700::1111"]),
        ("a.b.c.internal.example", &["93.184.216.34"]),
    ])
}

fn policy() -> SsrfPolicy {
    SsrfPolicy {
        deny_hosts: vec!["internal.example".into(), "bücher-verboten.example".into()],
        deny_cidrs: parse_cidrs("1.1.1.0/24").unwrap(),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Want {
    /// `ControlError::Forbidden` whose message contains this.
    Forbidden(&'static str),
    /// `ControlError::Invalid` whose message contains this.
    Invalid(&'static str),
    /// `ControlError::Unreachable`.
    Unreachable,
}

use Want::{Forbidden, Invalid, Unreachable};

/// Hostile URLs and how each must be refused.
const HOSTILE: &[(&str, Want)] = &[
    // Loopback in every spelling the WHATWG parser normalises.
    ("http://127.0.0.1/", Forbidden("is loopback")),
    ("http://127.1/", Forbidden("is loopback")),
    ("http://0x7f.1/", Forbidden("is loopback")),
    ("http://0x7f000001/", Forbidden("is loopback")),
    ("http://2130706433/", Forbidden("is loopback")),
    ("http://017700000001/", Forbidden("is loopback")),
    ("http://0177.0.0.1/", Forbidden("is loopback")),
    ("http://0x7f.0x0.0x0.0x1/", Forbidden("is loopback")),
    (
        "http://00000000000000000000000177.1/",
        Forbidden("is loopback"),
    ),
    ("http://127.0.0.1./", Forbidden("is loopback")),
    ("http://127.0.0.1:8080/admin", Forbidden("is loopback")),
    (
        "http://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
        Forbidden("is loopback"),
    ),
    (
        "http://127\u{3002}0\u{3002}0\u{3002}1/",
        Forbidden("is loopback"),
    ),
    (
        "http://\u{2460}\u{2461}\u{2466}.0.0.1/",
        Forbidden("is loopback"),
    ),
    ("http://%31%32%37.0.0.1/", Forbidden("is loopback")),
    ("http://127%2e0%2e0%2e1/", Forbidden("is loopback")),
    ("HTTP://127.0.0.1/", Forbidden("is loopback")),
    ("http:\\\\127.0.0.1\\", Forbidden("is loopback")),
    ("http:127.0.0.1/", Forbidden("is loopback")),
    (" http://127.0.0.1\t/", Forbidden("is loopback")),
    ("http://127.0.0.1#@evil.example/", Forbidden("is loopback")),
    ("http://localhost/", Forbidden("is loopback")),
    ("http://localhost./", Forbidden("is loopback")),
    ("http://LOCALHOST/", Forbidden("is loopback")),
    ("http://[::1]/", Forbidden("is loopback")),
    // Unspecified.
    ("http://[::]/", Forbidden("is unspecified")),
    ("http://0.0.0.0/", Forbidden("is unspecified")),
    ("http://0/", Forbidden("is unspecified")),
    ("http://%30/", Forbidden("is unspecified")),
    // IPv6 forms that carry an IPv4 address.
    ("http://[::ffff:127.0.0.1]/", Forbidden("is loopback")),
    ("http://[::ffff:7f00:1]/", Forbidden("is loopback")),
    (
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        Forbidden("is loopback"),
    ),
    ("http://[::127.0.0.1]/", Forbidden("is loopback")),
    ("http://[::ffff:0:7f00:1]/", Forbidden("is loopback")),
    ("http://[64:ff9b::7f00:1]/", Forbidden("is loopback")),
    (
        "http://[64:ff9b:1::a00:1]/",
        Forbidden("is private network"),
    ),
    ("http://[2002:7f00:1::]/", Forbidden("is loopback")),
    (
        "http://[2002:a9fe:a9fe::1]/",
        Forbidden("is cloud metadata service"),
    ),
    // Cloud metadata.
    (
        "http://169.254.169.254/latest/meta-data/",
        Forbidden("is cloud metadata service"),
    ),
    (
        "http://[::ffff:169.254.169.254]/",
        Forbidden("is cloud metadata service"),
    ),
    ("http://0xa9fea9fe/", Forbidden("is cloud metadata service")),
    (
        "http://[fd00:ec2::254]/",
        Forbidden("is cloud metadata service"),
    ),
    (
        "http://metadata.google.internal/computeMetadata/v1/",
        Forbidden("is cloud metadata service"),
    ),
    (
        "http://mapped.example/",
        Forbidden("is cloud metadata service"),
    ),
    // Private, shared and link-local space.
    ("http://10.0.0.1/", Forbidden("is private network")),
    ("http://172.16.0.1/", Forbidden("is private network")),
    ("http://172.31.255.254/", Forbidden("is private network")),
    ("http://192.168.1.1/", Forbidden("is private network")),
    ("http://100.64.0.1/", Forbidden("is carrier-grade NAT")),
    (
        "http://[fc00::1]/",
        Forbidden("is private network (unique local)"),
    ),
    (
        "http://[fd12:3456::1]/",
        Forbidden("is private network (unique local)"),
    ),
    ("http://[fe80::1]/", Forbidden("is link-local")),
    ("http://169.254.1.1/", Forbidden("is link-local")),
    ("http://[fec0::1]/", Forbidden("is site-local")),
    // Multicast, broadcast, reserved, documentation, benchmarking, special purpose.
    ("http://224.0.0.1/", Forbidden("is multicast")),
    ("http://[ff02::1]/", Forbidden("is multicast")),
    ("http://255.255.255.255/", Forbidden("is broadcast")),
    ("http://240.0.0.1/", Forbidden("is reserved")),
    ("http://192.0.2.1/", Forbidden("is documentation")),
    ("http://198.51.100.1/", Forbidden("is documentation")),
    ("http://203.0.113.1/", Forbidden("is documentation")),
    ("http://[2001:db8::1]/", Forbidden("is documentation")),
    ("http://198.18.0.1/", Forbidden("is benchmarking")),
    (
        "http://192.0.0.170/",
        Forbidden("is IETF protocol assignments"),
    ),
    ("http://[100::1]/", Forbidden("is discard-only")),
    (
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        Forbidden("is Teredo tunnel"),
    ),
    // Names whose (stub) resolution is internal, including IDNs and mixed answers.
    (
        "http://b\u{fc}cher.example/",
        Forbidden("is private network"),
    ),
    (
        "http://\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.example/",
        Forbidden("is private network"),
    ),
    (
        "http://www.public-looking.example/",
        Forbidden("is private network"),
    ),
    ("http://mixed.example/", Forbidden("is loopback")),
    ("http://mixed6.example/", Forbidden("is loopback")),
    ("http://nat64.example/", Forbidden("is private network")),
    // Deny lists.
    (
        "http://a.b.c.internal.example/",
        Forbidden("on the deny list (SWITCHBOARD_SSRF_DENY_HOSTS)"),
    ),
    (
        "http://A.B.C.INTERNAL.EXAMPLE./",
        Forbidden("on the deny list (SWITCHBOARD_SSRF_DENY_HOSTS)"),
    ),
    (
        "http://b\u{fc}cher-verboten.example/",
        Forbidden("on the deny list (SWITCHBOARD_SSRF_DENY_HOSTS)"),
    ),
    (
        "http://1.1.1.1/",
        Forbidden("on the deny list (SWITCHBOARD_SSRF_DENY_CIDRS)"),
    ),
    // Credentials, other schemes, malformed hosts.
    (
        "http://user:pass@127.0.0.1/",
        Invalid("credentials in the URL"),
    ),
    (
        "http://evil.example@127.0.0.1/",
        Invalid("credentials in the URL"),
    ),
    (
        "http://127.0.0.1:80@evil.example/",
        Invalid("credentials in the URL"),
    ),
    (
        "http://127.0.0.1%2f@evil.example/",
        Invalid("credentials in the URL"),
    ),
    (
        "https://:secret@example.com/",
        Invalid("credentials in the URL"),
    ),
    (
        "file:///etc/passwd",
        Invalid("scheme \"file\" is not allowed"),
    ),
    (
        "gopher://127.0.0.1/",
        Invalid("scheme \"gopher\" is not allowed"),
    ),
    (
        "ftp://example.com/",
        Invalid("scheme \"ftp\" is not allowed"),
    ),
    (
        "javascript:alert(1)",
        Invalid("scheme \"javascript\" is not allowed"),
    ),
    (
        "data:text/plain,hello",
        Invalid("scheme \"data\" is not allowed"),
    ),
    ("ws://127.0.0.1/", Invalid("scheme \"ws\" is not allowed")),
    (
        "dict://127.0.0.1:11211/",
        Invalid("scheme \"dict\" is not allowed"),
    ),
    ("http://[fe80::1%25eth0]/", Invalid("invalid URL")),
    ("http://4294967296/", Invalid("invalid URL")),
    ("http://127.0.0.1.1/", Invalid("invalid URL")),
    ("http:///", Invalid("invalid URL")),
    ("http://./", Invalid("no valid host")),
    ("not a url", Invalid("invalid URL")),
    // Names that do not resolve.
    ("http://nxdomain.example/", Unreachable),
    ("http://empty.example/", Unreachable),
];

async fn check(policy: &SsrfPolicy, lookup: &dyn Lookup, url: &str) -> Result<(), ControlError> {
    guard::check_url(policy, lookup, url).await
}

#[tokio::test]
async fn hostile_urls_are_refused_with_the_rule_that_matched() {
    assert!(
        HOSTILE.len() >= 40,
        "the suite needs at least 40 hostile URLs, has {}",
        HOSTILE.len()
    );
    let (policy, stub) = (policy(), stub());
    let mut failures = Vec::new();
    for (url, want) in HOSTILE {
        let got = check(&policy, &stub, url).await;
        let ok = match (&got, want) {
            (Err(ControlError::Forbidden(m)), Forbidden(frag)) => m.contains(frag),
            (Err(ControlError::Invalid(m)), Invalid(frag)) => m.contains(frag),
            (Err(ControlError::Unreachable(_)), Unreachable) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{url:?}: wanted {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile URLs mishandled:\n{}",
        failures.len(),
        HOSTILE.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn refusals_name_the_rule_and_the_setting_that_allows_it() {
    let (policy, stub) = (policy(), stub());
    let msg = |r: Result<(), ControlError>| match r {
        Err(ControlError::Forbidden(m)) => m,
        other => panic!("expected Forbidden, got {other:?}"),
    };
    let m = msg(check(&policy, &stub, "http://0x7f.1/").await);
    assert!(m.contains("address 127.0.0.1 is loopback; to allow it, set SWITCHBOARD_SSRF_ALLOW_CIDRS=127.0.0.1/32 (or a wider range)"), "{m}");
    let m = msg(check(&policy, &stub, "http://localhost./").await);
    assert!(
        m.contains("refused localhost:") && m.contains("SWITCHBOARD_SSRF_ALLOW_CIDRS=127.0.0.1/32"),
        "{m}"
    );
    // Embedded forms suggest the IPv4 network, which the allow list matches.
    let m = msg(check(&policy, &stub, "http://[::ffff:169.254.169.254]/").await);
    assert!(
        m.contains("cloud metadata service")
            && m.contains("SWITCHBOARD_SSRF_ALLOW_CIDRS=169.254.169.254/32"),
        "{m}"
    );
    let m = msg(check(&policy, &stub, "http://[fe80::1]/").await);
    assert!(
        m.contains("SWITCHBOARD_SSRF_ALLOW_CIDRS=fe80::1/128"),
        "{m}"
    );
    // Credentials are not echoed back.
    let Err(ControlError::Invalid(m)) =
        check(&policy, &stub, "http://user:hunter2@127.0.0.1/").await
    else {
        panic!()
    };
    assert!(!m.contains("hunter2"), "{m}");
}

#[tokio::test]
async fn the_parser_normalises_before_the_check() {
    // The spellings the guard relies on url's WHATWG parsing for; reqwest parses the same way,
    // so the host checked is the host connected to.
    for (raw, host) in [
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0x7f.1.0/", "127.1.0.0"),
        ("http://%31%32%37.0.0.1/", "127.0.0.1"),
        (
            "http://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
            "127.0.0.1",
        ),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"),
        ("http://[::127.0.0.1]/", "[::7f00:1]"),
        ("http://b\u{fc}cher.example/", "xn--bcher-kva.example"),
        ("http://localhost./", "localhost."),
        ("http://ex%41mple.com/", "example.com"),
        // Parser differentials: these go to evil.example, and so does reqwest.
        ("http://evil.example\\@127.0.0.1/", "evil.example"),
    ] {
        let parsed = url::Url::parse(raw).unwrap();
        assert_eq!(parsed.host_str(), Some(host), "{raw}");
        let via_reqwest = reqwest::Url::parse(raw).unwrap();
        assert_eq!(via_reqwest.host_str(), Some(host), "{raw}");
    }
}

#[tokio::test]
async fn allowed_and_public_urls_pass() {
    let stub = stub();
    let policy = policy();
    for url in [
        "http://example.com/",
        "https://example.com:8443/mcp?x=1",
        "http://example.com./",
        "http://93.184.216.34/",
        "http://[2606:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::808:808]/",
        "http://v6.example/",
        "http://evil.example\\@127.0.0.1/",
    ] {
        let got = check(&policy, &stub, url).await;
        assert!(got.is_ok(), "{url}: {got:?}");
    }
    // The differential above resolved evil.example, not 127.0.0.1.
    assert!(
        stub.asked().iter().any(|h| h == "evil.example"),
        "{:?}",
        stub.asked()
    );

    let loopback_ok = SsrfPolicy {
        allow_cidrs: parse_cidrs("127.0.0.0/8").unwrap(),
        ..policy.clone()
    };
    let loopbacks = [
        "http://127.0.0.1/",
        "http://127.1:8080/",
        "http://0x7f.1/",
        "http://2130706433/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost./",
    ];
    for url in loopbacks {
        let got = check(&loopback_ok, &stub, url).await;
        assert!(got.is_ok(), "{url} with 127.0.0.0/8 allowed: {got:?}");
    }
    // Allowing loopback allows nothing else; deny lists still win.
    for url in [
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://a.b.c.internal.example/",
        "http://1.1.1.1/",
    ] {
        assert!(
            matches!(
                check(&loopback_ok, &stub, url).await,
                Err(ControlError::Forbidden(_))
            ),
            "{url}"
        );
    }
    // Explicitly denied CIDRs win over allowed ones.
    let both = SsrfPolicy {
        deny_cidrs: parse_cidrs("127.0.0.2/32").unwrap(),
        ..loopback_ok
    };
    assert!(check(&both, &stub, "http://127.0.0.1/").await.is_ok());
    assert!(matches!(
        check(&both, &stub, "http://127.0.0.2/").await,
        Err(ControlError::Forbidden(_))
    ));
}

#[tokio::test]
async fn check_ssrf_uses_the_system_resolver() {
    // `localhost` resolves through /etc/hosts, without a network.
    let got = check_ssrf(&SsrfPolicy::default(), "http://localhost:9/").await;
    assert!(
        matches!(&got, Err(ControlError::Forbidden(m)) if m.contains("is loopback")),
        "{got:?}"
    );
    let got = check_ssrf(&SsrfPolicy::default(), "http://0x7f.1/").await;
    assert!(
        matches!(&got, Err(ControlError::Forbidden(m)) if m.contains("is loopback")),
        "{got:?}"
    );
    let got = check_ssrf(&SsrfPolicy::default(), "file:///etc/passwd").await;
    assert!(matches!(got, Err(ControlError::Invalid(_))), "{got:?}");
}

/// A tiny HTTP server on 127.0.0.1 that counts the connections it accepts.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start() -> Listener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nreached").await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Listener {
            port,
            accepted,
            task,
        }
    }

    async fn accepted(&self) -> usize {
        // Give an accept that raced the client's failure time to be counted.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn expect_refused(result: Result<reqwest::Response, reqwest::Error>, fragment: &str) {
    let err = match result {
        Ok(resp) => panic!("the request was not refused: {}", resp.status()),
        Err(e) => e,
    };
    let refused = refusal_in(&err).unwrap_or_else(|| panic!("not an SSRF refusal: {err:?}"));
    let text = refused.to_string();
    assert!(text.contains(fragment), "{text}");
    assert!(
        text.contains("SWITCHBOARD_SSRF_ALLOW_CIDRS=127.0.0.1/32"),
        "{text}"
    );
}

#[tokio::test]
async fn a_rebinding_name_is_refused_at_connect_time() {
    let listener = Listener::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let lookup = Arc::new(Rebinding {
        first: "93.184.216.34".parse().unwrap(),
        then: "127.0.0.1".parse().unwrap(),
        calls: calls.clone(),
    });
    let policy = SsrfPolicy::default();
    let url = format!("http://rebind.example:{}/mcp", listener.port);

    // Validation sees the public answer and lets the URL in...
    check(&policy, lookup.as_ref(), &url)
        .await
        .expect("the first answer is public");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // ...but the connection resolves again through the guard, which sees 127.0.0.1 and refuses.
    let client = guarded_client(policy, lookup);
    expect_refused(
        client.get(&url).send().await,
        "refused rebind.example: address 127.0.0.1 is loopback",
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the guarded resolver did the connect-time lookup"
    );
    assert_eq!(
        listener.accepted().await,
        0,
        "the refused request never reached the listener"
    );
}

#[tokio::test]
async fn a_public_name_with_a_private_answer_is_refused_by_the_client() {
    let listener = Listener::start().await;
    let lookup = Arc::new(Stub::new(&[("www.public-looking.example", &["127.0.0.1"])]));
    let url = format!("http://www.public-looking.example:{}/", listener.port);
    let policy = SsrfPolicy::default();
    assert!(
        matches!(check(&policy, lookup.as_ref(), &url).await, Err(ControlError::Forbidden(m)) if m.contains("loopback"))
    );
    let client = guarded_client(policy, lookup.clone());
    expect_refused(client.get(&url).send().await, "is loopback");
    // Deny-listed names are refused before any lookup.
    let denied = SsrfPolicy {
        deny_hosts: vec!["public-looking.example".into()],
        ..Default::default()
    };
    let err = guarded_client(denied, lookup.clone())
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert!(
        refusal_in(&err).is_some_and(|r| r.to_string().contains("SWITCHBOARD_SSRF_DENY_HOSTS")),
        "{err:?}"
    );
    assert_eq!(
        lookup.asked().len(),
        2,
        "the deny list answered without a lookup: {:?}",
        lookup.asked()
    );
    assert_eq!(listener.accepted().await, 0);
}

#[tokio::test]
async fn an_allowed_range_reaches_the_listener() {
    let listener = Listener::start().await;
    let lookup = Arc::new(Stub::new(&[("rebind.example", &["127.0.0.1"])]));
    let policy = SsrfPolicy {
        allow_cidrs: parse_cidrs("127.0.0.0/8").unwrap(),
        ..Default::default()
    };
    let url = format!("http://rebind.example:{}/mcp", listener.port);
    check(&policy, lookup.as_ref(), &url)
        .await
        .expect("127.0.0.0/8 is allowed");
    let client = guarded_client(policy, lookup);
    let resp = client
        .get(&url)
        .send()
        .await
        .expect("127.0.0.0/8 is allowed");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "reached");
    assert_eq!(listener.accepted().await, 1);
}

#[tokio::test]
async fn the_guarded_client_does_not_follow_redirects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    let policy = SsrfPolicy {
        allow_cidrs: parse_cidrs("127.0.0.1/32").unwrap(),
        ..Default::default()
    };
    let client = guarded_client(
        policy,
        Arc::new(Stub::new(&[("redirector.example", &["127.0.0.1"])])),
    );
    let resp = client
        .get(format!("http://redirector.example:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "the redirect is returned, not followed");
}

#[tokio::test]
async fn the_connection_goes_to_the_address_that_was_checked() {
    // The resolver answers an allowed address (the listener) first and a forbidden one after.
    // The guarded client resolves once per connection and connects to exactly what it checked:
    // the request reaches the listener and no second lookup happens behind the guard's back.
    let listener = Listener::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let lookup = Arc::new(Rebinding {
        first: "127.0.0.1".parse().unwrap(),
        then: "10.0.0.1".parse().unwrap(),
        calls: calls.clone(),
    });
    let policy = SsrfPolicy {
        allow_cidrs: parse_cidrs("127.0.0.1/32").unwrap(),
        ..Default::default()
    };
    let url = format!("http://flip.example:{}/mcp", listener.port);
    let client = guarded_client(policy.clone(), lookup.clone());
    let resp = client
        .get(&url)
        .send()
        .await
        .expect("the checked answer is allowed");
    assert_eq!(resp.text().await.unwrap(), "reached");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one lookup, the checked one"
    );
    assert_eq!(listener.accepted().await, 1);
    // The next check sees the changed (private) answer and refuses it.
    assert!(matches!(
        check(&policy, lookup.as_ref(), &url).await,
        Err(ControlError::Forbidden(m)) if m.contains("private network")
    ));
}
