//! The real binary against process and database failures: stdio grandchildren left by a
//! `kill -9` of the hub are killed by the next start (recorded process groups, the child
//! subreaper), PostgreSQL going away answers 503 and flips `/ready`, a wrong database URL fails
//! fast naming the cause, and PostgreSQL over TLS works.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::common::*;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-test-{tag}-{}",
        switchboard_hub::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `serve` on free ports with `extra` arguments; stderr goes to `dir/<log>`.
struct Served {
    child: Child,
    main: u16,
    mcp: u16,
    log: PathBuf,
}

fn serve(dir: &Path, log: &str, extra: &[&str]) -> Served {
    let (main, mcp) = (free_port(), free_port());
    let log = dir.join(log);
    let child = Command::new(switchboard_bin())
        .arg("serve")
        .args(["--main-addr", &format!("127.0.0.1:{main}")])
        .args(["--mcp-addr", &format!("127.0.0.1:{mcp}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--admin-token", ADMIN, "--log", "info"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Served {
        child,
        main,
        mcp,
        log,
    }
}

const ADMIN: &str = "hardening-proc-admin-token-0123456789";

impl Served {
    async fn ready(&self) -> (u16, Value) {
        let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{}/ready", self.main)).await else {
            return (0, Value::Null);
        };
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    async fn wait_ready(&self, servers: usize) {
        let ok = eventually(Duration::from_secs(30), async || {
            let (status, body) = self.ready().await;
            status == 200 && body["ready"] == servers
        })
        .await;
        assert!(ok, "hub never became ready: {}", self.stderr());
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn term(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
    }
}

/// `(ppid, pgrp, state)` of a process, or `None` once it is gone.
fn proc_stat(pid: i32) -> Option<(i32, i32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some((f[1].parse().ok()?, f[2].parse().ok()?, f[0].chars().next()?))
}

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(_, _, state)| state != 'Z')
}

/// Processes whose command line contains `token`.
fn with_cmdline(token: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(token)
                })
                .unwrap_or(false)
        })
        .filter(|pid| running(*pid))
        .collect()
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_kill_9_of_the_hub_leaves_grandchildren_that_the_next_start_kills() {
    init();
    let dir = temp_dir("pgroups");
    // Unique sleep lengths identify this test's processes.
    let n = 900_000 + (std::process::id() % 50_000);
    let (in_group, escaped) = (format!("{n}"), format!("{}", n + 1));
    let fixture = fixture_bin().display().to_string();
    // `wrapped` leaves a grandchild in its group (like npx); `escaper` double-forks one into a
    // session of its own (leaves the group; re-parents to the hub, the subreaper).
    let servers = json!({"mcpServers": {
        "wrapped": {"command": "sh", "args": ["-c", format!("sleep {in_group} & exec {fixture} stdio --name wrapped")]},
        "escaper": {"command": "sh", "args": ["-c", format!("(setsid sleep {escaped} &); exec {fixture} stdio --name escaper")]},
    }});
    let file = dir.join("servers.json");
    std::fs::write(&file, servers.to_string()).unwrap();
    let file = file.display().to_string();
    let mut hub = serve(&dir, "first.log", &["--servers", &file]);
    hub.wait_ready(2).await;
    let hub_pid = hub.child.id() as i32;

    let mut grandchild = 0;
    wait_for("the in-group grandchild", Duration::from_secs(10), || {
        grandchild = with_cmdline(&format!("sleep {in_group}"))
            .first()
            .copied()
            .unwrap_or(0);
        grandchild != 0
    })
    .await;
    let mut orphan = 0;
    wait_for("the escaped grandchild", Duration::from_secs(10), || {
        orphan = with_cmdline(&format!("sleep {escaped}"))
            .first()
            .copied()
            .unwrap_or(0);
        orphan != 0
    })
    .await;
    let (orphan_parent, orphan_group, _) = proc_stat(orphan).unwrap();
    assert_eq!(
        orphan_parent, hub_pid,
        "the escaped process re-parents to the hub (the child subreaper), not to init"
    );
    // The hub records the adopted group within a second or so.
    let record = dir.join("data/pgroups");
    wait_for(
        "the adopted group in the record",
        Duration::from_secs(5),
        || {
            std::fs::read_to_string(&record)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&format!("{orphan_group} ")))
        },
    )
    .await;
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.starts_with(&format!("hub {hub_pid} ")) && text.contains(" wrapped\n"),
        "{text}"
    );

    hub.kill9();
    // The problem: nothing the dead hub did reaches these two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        running(grandchild),
        "the grandchild outlives a kill -9 of the hub"
    );
    assert!(running(orphan), "the escaped process outlives it too");

    // The same data directory, no servers this time: the old groups are killed at start.
    let started = Instant::now();
    let mut again = serve(&dir, "second.log", &[]);
    wait_for(
        "the left-behind groups to be killed",
        Duration::from_secs(5),
        || !running(grandchild) && !running(orphan),
    )
    .await;
    let took = started.elapsed();
    // The store still holds both servers, so the new hub runs them again (recovery).
    again.wait_ready(2).await;
    let log = again.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("previous run") && l.contains("server=wrapped")),
        "one line names the server: {log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("previous run") && l.contains("adopted")),
        "{log}"
    );
    eprintln!("left-behind groups killed {took:?} after the second start");
    again.term();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_recycled_pid_in_the_record_is_never_killed() {
    init();
    let dir = temp_dir("recycled");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    // A live process of our own, recorded under its real pid but another start time: as if
    // the recorded group had died and the pid had been given to this process since.
    let mut bystander = Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = bystander.id();
    let sid = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let sid = sid[sid.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    std::fs::write(
        dir.join("data/pgroups"),
        format!("hub 1 1\n{pid} 1 {sid} impostor\n"),
    )
    .unwrap();
    let mut hub = serve(&dir, "hub.log", &[]);
    hub.wait_ready(0).await;
    assert!(
        running(pid as i32),
        "a process with the recorded pid but another start time is left alone"
    );
    assert!(!hub.stderr().contains("impostor"), "{}", hub.stderr());
    hub.term();
    let _ = bystander.kill();
    let _ = bystander.wait();
    std::fs::remove_dir_all(&dir).ok();
}

use std::os::unix::process::CommandExt as _;

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A TCP forwarder to PostgreSQL that can be cut (every connection closed, new ones closed at
/// once) and restored: the database "goes down" without touching the shared server.
struct Proxy {
    port: u16,
    cut: Arc<Mutex<bool>>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(Mutex::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if *c.lock().unwrap() {
                    drop(down);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                k.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            port,
            cut,
            conns,
            accept,
        }
    }

    fn set_cut(&self, cut: bool) {
        *self.cut.lock().unwrap() = cut;
        if cut {
            for task in self.conns.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set_cut(true);
        self.accept.abort();
    }
}

async fn get(port: u16, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(ADMIN)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn postgresql_going_away_answers_503_store_unavailable_and_flips_ready() {
    init();
    let db = PgDatabase::create("proc");
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let dir = temp_dir("pgdown");
    let url = format!("postgres://postgres@127.0.0.1:{}/{}", proxy.port, db.name);
    let mut hub = serve(&dir, "hub.log", &["--database-url", &url]);
    hub.wait_ready(0).await;
    let (status, body) = get(hub.main, "/api/v1/users").await;
    assert_eq!(status, 200, "{body}");
    let (_, ready) = hub.ready().await;
    assert_eq!(ready["store"], "ok", "{ready}");

    proxy.set_cut(true);
    let started = Instant::now();
    let (status, body) = get(hub.main, "/api/v1/users").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "never a 500: {body}");
    assert_eq!(body["error"], "store_unavailable", "{body}");
    assert_eq!(body["status"], "error");
    let ok = eventually(Duration::from_secs(5), async || hub.ready().await.0 == 503).await;
    assert!(ok, "/ready flips to 503 while the store is unreachable");
    let (_, ready) = hub.ready().await;
    assert_eq!(ready["status"], "unavailable", "{ready}");
    // Liveness is unaffected.
    let health = reqwest::get(format!("http://127.0.0.1:{}/health", hub.main))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    eprintln!("a store route answered 503 after {took:?} with the database cut");

    proxy.set_cut(false);
    let ok = eventually(Duration::from_secs(10), async || {
        hub.ready().await.0 == 200 && get(hub.main, "/api/v1/users").await.0 == 200
    })
    .await;
    assert!(ok, "the hub recovers when the database is back");
    hub.term();
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `serve` against `url` and expects it to fail: (seconds taken, stderr).
fn serve_fails(url: &str) -> (f64, String) {
    let dir = temp_dir("badurl");
    let started = Instant::now();
    let out = Command::new(switchboard_bin())
        .arg("serve")
        .args(["--main-addr", "127.0.0.1:0", "--mcp-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--database-url", url])
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success(), "serve must fail for {url}");
    (took, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn a_wrong_database_url_fails_serve_within_5_s_naming_the_cause() {
    init();
    // Nothing listens there.
    let closed = free_port();
    let (took, err) = serve_fails(&format!("postgres://postgres@127.0.0.1:{closed}/x"));
    assert!(took < 5.0, "{took} s: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{closed}")) && err.to_lowercase().contains("refused"),
        "{err}"
    );
    eprintln!("refused port: failed in {took:.2} s");

    // Something accepts and never answers (a black hole).
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let (took, err) = serve_fails(&format!("postgres://postgres@127.0.0.1:{port}/x"));
    assert!(took < 5.5, "{took} s: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("no answer within"),
        "{err}"
    );
    eprintln!("silent port: failed in {took:.2} s");
    drop(hole);

    // A database that does not exist.
    let (took, err) = serve_fails("postgres://postgres@127.0.0.1:5432/switchboard_no_such_db");
    assert!(took < 5.0, "{took} s: {err}");
    assert!(
        err.contains("127.0.0.1:5432")
            && err.contains("switchboard_no_such_db")
            && err.contains("does not exist"),
        "{err}"
    );

    // A role that does not exist (the test server trusts every password, so this is the
    // authentication failure it can show).
    let (took, err) = serve_fails("postgres://switchboard_no_such_role@127.0.0.1:5432/postgres");
    assert!(took < 5.0, "{took} s: {err}");
    assert!(
        err.contains("switchboard_no_such_role") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn postgresql_over_tls_works_with_sslmode_require() {
    init();
    let out = psql("SHOW ssl");
    if String::from_utf8_lossy(&out.stdout).trim() != "on" {
        eprintln!("skipped: the test PostgreSQL has ssl off");
        return;
    }
    let db = PgDatabase::create("proc");
    let dir = temp_dir("pgtls");
    let url = format!("{}/{}?sslmode=require", pg_base_url(), db.name);
    let mut hub = serve(&dir, "hub.log", &["--database-url", &url]);
    hub.wait_ready(0).await;
    let (status, body) = get(hub.main, "/api/v1/users").await;
    assert_eq!(status, 200, "{body}");
    // Every connection the hub holds to this database is encrypted.
    let out = psql(&format!(
        "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = '{}'",
        db.name
    ));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (count, all_tls) = line.split_once('|').unwrap();
    assert!(count.parse::<u32>().unwrap() >= 1, "{line}");
    assert_eq!(all_tls, "t", "the hub's connections use TLS: {line}");
    hub.term();

    // verify-full checks the certificate: the test server's self-signed one is refused, with
    // a message that says so.
    let url = format!("{}/{}?sslmode=verify-full", pg_base_url(), db.name);
    let (took, err) = serve_fails(&url);
    assert!(took < 5.0, "{took} s: {err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn ready_stays_200_with_servers_down_and_lists_each_state() {
    init();
    let dir = temp_dir("readysemantics");
    let servers = json!({"mcpServers": {
        "up": stdio_fixture("up", &[]),
        "down": {"command": "/nonexistent/switchboard-test-server"},
    }});
    let file = dir.join("servers.json");
    std::fs::write(&file, servers.to_string()).unwrap();
    let mut hub = serve(&dir, "hub.log", &["--servers", &file.display().to_string()]);
    hub.wait_ready(1).await;
    let (status, body) = hub.ready().await;
    assert_eq!(status, 200, "one server down does not make the hub unready");
    assert_eq!(body["servers"], 2, "{body}");
    assert_eq!(body["ready"], 1, "{body}");
    assert_eq!(body["states"]["up"], "ready", "{body}");
    assert_ne!(body["states"]["down"], "ready", "{body}");
    assert_eq!(body["store"], "ok", "{body}");
    let (mcp_status, _) = async {
        let r = reqwest::get(format!("http://127.0.0.1:{}/ready", hub.mcp))
            .await
            .unwrap();
        (r.status().as_u16(), ())
    }
    .await;
    assert_eq!(mcp_status, 200, "the MCP service answers /ready too");
    hub.term();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn stdio_mode_kills_what_a_killed_stdio_hub_left_behind() {
    init();
    let dir = temp_dir("stdiorecord");
    let n = 950_000 + (std::process::id() % 40_000);
    let fixture = fixture_bin().display().to_string();
    let servers = json!({"mcpServers": {
        "wrapped": {"command": "sh", "args": ["-c", format!("sleep {n} & exec {fixture} stdio --name wrapped")]},
    }});
    let file = dir.join("servers.json");
    std::fs::write(&file, servers.to_string()).unwrap();
    let stdio_hub = |servers: bool| {
        let mut cmd = Command::new(switchboard_bin());
        cmd.arg("stdio");
        if servers {
            cmd.arg("--servers").arg(&file);
        }
        cmd.env("XDG_RUNTIME_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = stdio_hub(true);
    let mut grandchild = 0;
    wait_for("the grandchild", Duration::from_secs(20), || {
        grandchild = with_cmdline(&format!("sleep {n}"))
            .first()
            .copied()
            .unwrap_or(0);
        grandchild != 0
    })
    .await;
    let record = dir.join(format!("switchboard/stdio-{}.pgroups", first.id()));
    wait_for("the record", Duration::from_secs(5), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.contains(" wrapped\n"))
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        running(grandchild),
        "the grandchild outlives the killed hub"
    );

    let mut second = stdio_hub(false);
    wait_for(
        "the grandchild to be killed",
        Duration::from_secs(5),
        || !running(grandchild),
    )
    .await;
    assert!(!record.exists(), "the dead hub's record is removed");
    drop(second.stdin.take());
    let _ = second.wait();
    assert!(
        std::fs::read_dir(dir.join("switchboard"))
            .unwrap()
            .next()
            .is_none(),
        "a clean exit removes its own record"
    );
    std::fs::remove_dir_all(&dir).ok();
}
