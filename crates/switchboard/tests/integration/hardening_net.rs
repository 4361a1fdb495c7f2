//! What a stranger's sockets and one greedy client may cost (DESIGN §5, issue #11): a client
//! that never reads its stream is cut off and its memory returned; silent, half-sent and
//! slow requests are closed after the configured timeouts while long streams are not; one
//! address holds a bounded number of connections; one client's hanging calls do not starve
//! the rest of its tenant; an early 401 says `Connection: close`.
//!
//! Where memory or the listener matters, these drive the real binary over real sockets.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};
use switchboard_hub::{HubConfig, View};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

const ADMIN_TOKEN: &str = "hardening-net-admin-token-0123456789abcdef";

/// `switchboard serve` on free loopback ports with a temporary data dir; killed on drop.
struct Served {
    child: Child,
    dir: PathBuf,
    mcp: u16,
    main: u16,
}

impl Served {
    async fn start(tag: &str, extra: &[&str]) -> Served {
        init();
        let dir = std::env::temp_dir().join(format!(
            "switchboard-test-{tag}-{}",
            switchboard_hub::random_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (mcp, main) = (free_port(), free_port());
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(switchboard_bin())
            .arg("serve")
            .args(["--mcp-addr", &format!("127.0.0.1:{mcp}")])
            .args(["--main-addr", &format!("127.0.0.1:{main}")])
            .args(["--admin-token", ADMIN_TOKEN, "--log", "info", "--data-dir"])
            .arg(dir.join("data"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let served = Served {
            child,
            dir,
            mcp,
            main,
        };
        let url = format!("http://127.0.0.1:{mcp}/health");
        let up = eventually(Duration::from_secs(20), async || {
            // A fresh client each time: no pooled connection is left to count against caps.
            reqwest::Client::new().get(&url).send().await.is_ok()
        })
        .await;
        assert!(up, "the hub never answered: {}", served.log());
        // Let the server see the readiness probes' connections close.
        tokio::time::sleep(Duration::from_millis(200)).await;
        served
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kib / 1024.0
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Reads until the peer closes; the time it took, or `None` if still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

/// Reads until `needle` has arrived; everything read so far.
async fn read_until(stream: &mut TcpStream, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = limit.checked_sub(start.elapsed()).unwrap_or_else(|| {
            panic!(
                "{needle:?} did not arrive: {}",
                String::from_utf8_lossy(&got)
            )
        });
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => panic!(
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "{needle:?} did not arrive: {}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Opens `GET /sse` on a raw socket; the socket and the session id from the endpoint event.
async fn open_sse(port: u16) -> (TcpStream, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut s, "sessionId=", Duration::from_secs(5)).await;
    let head = if !head.split("sessionId=").nth(1).unwrap().contains('\n') {
        let more = read_until(&mut s, "\n", Duration::from_secs(5)).await;
        head + &more
    } else {
        head
    };
    let id: String = head
        .split("sessionId=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    assert!(id.starts_with("sbs1.") && id.len() > 32, "{head}");
    (s, id)
}

fn initialize() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string()
}

#[tokio::test]
async fn a_client_that_never_reads_its_sse_stream_is_cut_off_and_its_memory_returned() {
    let hub = Served::start("sse-flood", &[]).await;
    let (mut sse, id) = open_sse(hub.mcp).await;
    let url = format!("http://127.0.0.1:{}/messages?sessionId={id}", hub.mcp);
    let http = reqwest::Client::new();
    for body in [
        initialize(),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
    ] {
        let r = http.post(&url).body(body).send().await.unwrap();
        assert_eq!(r.status(), 202);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hub.rss_mib();

    // Sample RSS while 1,500 pings with 1 MiB ids are posted and never read.
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = hub.child.id();
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kib) = s
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let big = "x".repeat(1 << 20);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..4 {
        let (http, url, big) = (http.clone(), url.clone(), big.clone());
        workers.push(tokio::spawn(async move {
            let (mut accepted, mut gone) = (0, 0);
            for i in 0..375 {
                let body = format!(r#"{{"jsonrpc":"2.0","id":"{w}-{i}-{big}","method":"ping"}}"#);
                match http
                    .post(&url)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                {
                    Ok(202) => accepted += 1,
                    Ok(404) => gone += 1,
                    other => panic!("unexpected answer to a ping: {other:?}"),
                }
            }
            (accepted, gone)
        }));
    }
    let (mut accepted, mut gone) = (0, 0);
    for w in workers {
        let (a, g) = w.await.unwrap();
        accepted += a;
        gone += g;
    }
    let posting = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed) as f64 / 1024.0;

    // The hub closed the stream: what the socket still holds drains, then EOF.
    let closed = closed_within(&mut sse, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "the stream of a client that never reads stayed open"
    );
    assert!(
        gone > 0,
        "every ping was accepted ({accepted}): the session never ended"
    );
    drop(sse);

    let mut after = hub.rss_mib();
    let settle = Instant::now();
    while after > before + 50.0 && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = hub.rss_mib();
    }
    eprintln!(
        "sse flood: RSS before {before:.1} MiB, peak {peak:.1} MiB, after {after:.1} MiB; \
         {accepted} pings accepted, {gone} refused (404) in {posting:.2?}"
    );
    assert!(
        peak < before + 200.0,
        "RSS grew from {before:.1} to {peak:.1} MiB"
    );
    assert!(
        after <= before + 50.0,
        "RSS stayed at {after:.1} MiB (was {before:.1} MiB) after the client went"
    );
    let log = hub.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&id) && l.contains("not reading"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[tokio::test]
async fn silent_half_sent_slow_and_idle_connections_are_closed_after_the_configured_timeouts() {
    let hub = Served::start(
        "timeouts",
        &[
            "--header-timeout",
            "1",
            "--body-timeout",
            "1",
            "--idle-timeout",
            "1",
        ],
    )
    .await;
    let port = hub.mcp;
    let limit = Duration::from_secs(6);
    let silent = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        closed_within(&mut s, limit).await
    };
    let half_header = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        closed_within(&mut s, limit).await
    };
    let slow_body = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
        let start = Instant::now();
        let (mut rd, mut wr) = s.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if wr.write_all(b" ").await.is_err() {
                    break;
                }
            }
        });
        let mut got = Vec::new();
        let closed = tokio::time::timeout(limit, rd.read_to_end(&mut got)).await;
        trickle.abort();
        let text = String::from_utf8_lossy(&got).to_lowercase();
        closed.ok().map(|_| (start.elapsed(), text))
    };
    let idle_keepalive = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut s, "\"ok\"", Duration::from_secs(5)).await;
        closed_within(&mut s, limit).await
    };
    let (silent, half_header, slow_body, idle) =
        tokio::join!(silent, half_header, slow_body, idle_keepalive);
    eprintln!(
        "timeouts (1 s each): silent closed after {silent:?}, half header {half_header:?}, \
         slow body {:?}, idle keep-alive {idle:?}",
        slow_body.as_ref().map(|s| s.0)
    );
    let in_window = |d: Option<Duration>| {
        d.is_some_and(|d| d >= Duration::from_millis(700) && d < Duration::from_secs(4))
    };
    assert!(in_window(silent), "silent socket: {silent:?}");
    assert!(in_window(half_header), "half a header: {half_header:?}");
    assert!(in_window(idle), "idle keep-alive connection: {idle:?}");
    let (took, text) = slow_body.expect("the slow body's connection stayed open");
    assert!(in_window(Some(took)), "slow body: {took:?}");
    assert!(
        text.starts_with("http/1.1 408") && text.contains("connection: close"),
        "{text}"
    );
}

#[tokio::test]
async fn an_sse_stream_outlives_the_idle_and_header_timeouts() {
    let hub = Served::start(
        "sse-lives",
        &[
            "--header-timeout",
            "1",
            "--body-timeout",
            "1",
            "--idle-timeout",
            "1",
        ],
    )
    .await;
    let (mut sse, id) = open_sse(hub.mcp).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let url = format!("http://127.0.0.1:{}/messages?sessionId={id}", hub.mcp);
    let r = reqwest::Client::new()
        .post(&url)
        .body(initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "the session ended with its stream");
    let got = read_until(&mut sse, "protocolVersion", Duration::from_secs(5)).await;
    assert!(got.contains("event: message"), "{got}");
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once_and_logged_once() {
    let hub = Served::start("conncap", &["--max-connections-per-ip", "4"]).await;
    let port = hub.mcp;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let closed = closed_within(&mut extra, Duration::from_secs(2)).await;
        assert!(
            closed.is_some_and(|d| d < Duration::from_millis(500)),
            "a connection over the cap stayed open: {closed:?}"
        );
    }
    // A freed slot is usable again.
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut s, "\"ok\"", Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let log = hub.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("Too many connections from one address"))
        .count();
    assert_eq!(lines, 1, "{log}");
}

#[tokio::test]
async fn an_early_401_on_a_keep_alive_connection_says_connection_close() {
    let hub = Served::start("early401", &[]).await;
    let mut s = TcpStream::connect(("127.0.0.1", hub.main)).await.unwrap();
    // The head promises 100 kB; the hub refuses before reading it.
    s.write_all(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100000\r\n\r\n{\"jsonrpc\":\"2.0\"",
    )
    .await
    .unwrap();
    let got = read_until(&mut s, "\r\n\r\n", Duration::from_secs(5)).await;
    let head = got.to_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{got}");
    assert!(head.contains("connection: close"), "{got}");
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection stayed open"
    );
    // A request that was read whole keeps its connection.
    let mut s = TcpStream::connect(("127.0.0.1", hub.main)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut s, "\"ok\"", Duration::from_secs(5)).await;
    assert!(!got.to_lowercase().contains("connection: close"), "{got}");
}

fn limited(calls: usize, per_session: usize, per_credential: usize) -> HubConfig {
    HubConfig {
        max_concurrent_calls: calls,
        call_queue_timeout: Duration::from_secs(3),
        max_calls_per_session: per_session,
        max_calls_per_credential: per_credential,
        ..HubConfig::default()
    }
}

#[tokio::test]
async fn a_client_with_many_hanging_calls_does_not_starve_another_client_of_its_tenant() {
    let up = spawn_http(FixtureOptions::new("f")).await.unwrap();
    let file = json!({"mcpServers": {"f": http_entry(&up.url)}});
    let hub = TestHub::start_with(file, limited(8, 4, 0)).await;
    let greedy = hub.client("/mcp").await;
    let mut calls = Vec::new();
    for _ in 0..12 {
        let mut c = McpClient::unconnected(&greedy.url);
        c.session = greedy.session.clone();
        calls.push(tokio::spawn(async move {
            c.request("tools/call", json!({"name": "f__hang", "arguments": {}}))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Eight of twelve were refused at once, with a clear error; four hang.
    let refused: Vec<Value> = {
        let mut out = Vec::new();
        for c in &mut calls {
            if c.is_finished() {
                out.push(c.await.unwrap());
            }
        }
        out
    };
    assert_eq!(refused.len(), 8, "{refused:?}");
    for r in &refused {
        assert_eq!(r["error"]["code"], -32000, "{r}");
        assert_eq!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap(),
            "too many calls in flight for this session (limit 4)"
        );
    }
    let mut other = hub.client("/mcp").await;
    let t = Instant::now();
    let r = other.call("f__echo", json!({"text": "served"})).await;
    assert_eq!(text_of(&r), "served");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    for c in calls {
        c.abort();
    }
    hub.stop().await;
}

#[tokio::test]
async fn one_credential_holds_at_most_its_share_of_calls_across_its_sessions() {
    let up = spawn_http(FixtureOptions::new("f")).await.unwrap();
    let file = json!({"mcpServers": {"f": http_entry(&up.url)}});
    let hub = TestHub::start_with(file, limited(16, 0, 3)).await;
    let open = |credential: &str| {
        let s = hub.hub.create_session(View::All, 64).unwrap();
        s.set_credential(credential.to_string());
        s
    };
    let (sink, _inbox) = switchboard_hub::outbox::channel("test", 1024, 1 << 20);
    let (a1, a2, b) = (open("key:a"), open("key:a"), open("key:b"));
    for s in [&a1, &a2, &b] {
        let init = hub
            .hub
            .handle(s, &initialize(), &sink)
            .await
            .expect("initialize answered");
        assert!(init.contains("protocolVersion"), "{init}");
        hub.hub
            .handle(
                s,
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                &sink,
            )
            .await;
    }
    let call = |id: u32, tool: &str| {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{"text":"x"}}}).to_string()
    };
    let mut hanging = Vec::new();
    for (i, s) in [&a1, &a1, &a2].into_iter().enumerate() {
        let (h, s, sink, text) = (
            hub.hub.clone(),
            s.clone(),
            sink.clone(),
            call(i as u32 + 1, "f__hang"),
        );
        hanging.push(tokio::spawn(
            async move { h.handle(&s, &text, &sink).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(1),
        hub.hub.handle(&a2, &call(9, "f__echo"), &sink),
    )
    .await
    .expect("refused at once, not queued")
    .unwrap();
    assert!(
        refused.contains("too many calls in flight for this credential (limit 3)"),
        "{refused}"
    );
    let served = tokio::time::timeout(
        Duration::from_secs(1),
        hub.hub.handle(&b, &call(10, "f__echo"), &sink),
    )
    .await
    .expect("another credential is served at once")
    .unwrap();
    assert!(served.contains("\"result\""), "{served}");
    // A finished call gives its slot back.
    hub.hub.close_session(&a1.id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = hub
        .hub
        .handle(&a2, &call(11, "f__echo"), &sink)
        .await
        .unwrap();
    assert!(again.contains("\"result\""), "{again}");
    for h in hanging {
        h.abort();
    }
    hub.stop().await;
}
