//! The deployment files: `Dockerfile`, `deploy/compose.yaml`, `deploy/nginx.conf` and
//! `deploy/kubernetes/*.yaml`, read as data and checked against each other and against the
//! built binary's `serve --help`: stages and user, replicas, round robin, probes, secrets.
//! This module reads the Dockerfile and checks it and the compose file; `nginx`,
//! `kubernetes` and `flags` check the rest; `yaml` reads the YAML files.

mod flags;
mod kubernetes;
mod nginx;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const YAML_FILES: &[&str] = &[
    "deploy/compose.yaml",
    "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/service.yaml",
    "deploy/kubernetes/secret.example.yaml",
    "deploy/kubernetes/pdb.yaml",
];
/// The values every replica must share, as `serve` reads them from the environment.
const SHARED: [&str; 3] = [
    "SWITCHBOARD_DATABASE_URL",
    "SWITCHBOARD_SECRET_KEY",
    "SWITCHBOARD_ADMIN_TOKEN",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn load(rel: &str) -> Value {
    yaml::parse(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {ptr}"))
}

/// A list of strings (a YAML sequence) or a shell-form string as one element.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().expect("string item").to_string())
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

// ---- Dockerfile -------------------------------------------------------------------------

/// `(INSTRUCTION, rest)` pairs, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(t);
                let (kw, rest) = pending.split_once(' ').unwrap_or((pending.as_str(), ""));
                out.push((kw.to_ascii_uppercase(), rest.trim().to_string()));
                pending.clear();
            }
        }
    }
    out
}

fn instructions<'a>(d: &'a [(String, String)], kw: &str) -> Vec<&'a str> {
    d.iter()
        .filter(|(k, _)| k == kw)
        .map(|(_, r)| r.as_str())
        .collect()
}

fn json_form(rest: &str) -> Vec<String> {
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("not JSON form: {rest}: {e}"))
}

/// The image's command after the binary: `serve …`.
fn image_args() -> Vec<String> {
    let d = dockerfile();
    let cmd = instructions(&d, "CMD");
    json_form(cmd.last().expect("a CMD"))
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args
        .iter()
        .position(|a| a == flag || a.starts_with(&format!("{flag}=")))?;
    match args[i].split_once('=') {
        Some((_, v)) => Some(v),
        None => args.get(i + 1).map(String::as_str),
    }
}

/// The main and MCP services' ports in `serve` arguments.
fn listen_ports(args: &[String]) -> (u16, u16) {
    let port = |flag| -> u16 {
        let addr = flag_value(args, flag).unwrap_or_else(|| panic!("{flag} missing in {args:?}"));
        assert!(
            addr.starts_with("0.0.0.0:"),
            "{flag} {addr}: replicas must listen on every interface"
        );
        addr.rsplit(':').next().unwrap().parse().expect("port")
    };
    (port("--main-addr"), port("--mcp-addr"))
}

/// `(port, path)` of a shell probe `exec 3<>/dev/tcp/127.0.0.1/PORT … GET PATH …`.
fn shell_probe(cmd: &str) -> (u16, String) {
    let tcp = cmd
        .split("/dev/tcp/127.0.0.1/")
        .nth(1)
        .unwrap_or_else(|| panic!("no /dev/tcp/127.0.0.1 in {cmd}"));
    let port = tcp
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .expect("port");
    let get = cmd
        .split("GET ")
        .nth(1)
        .unwrap_or_else(|| panic!("no GET in {cmd}"));
    assert!(
        cmd.contains("grep -q ' 200 '"),
        "the probe must require status 200: {cmd}"
    );
    (port, get.split(' ').next().unwrap().to_string())
}

#[test]
fn the_dockerfile_builds_in_two_stages_and_runs_the_hub_as_a_non_root_user_with_a_healthcheck() {
    let d = dockerfile();
    let from = instructions(&d, "FROM");
    assert!(
        from.len() >= 2,
        "a build stage and a runtime stage: {from:?}"
    );
    let (build_image, stage) = from[0]
        .split_once(" AS ")
        .expect("the build stage is named");
    assert_eq!(build_image, "rust:1-bookworm");
    assert_eq!(*from.last().unwrap(), "debian:bookworm-slim");
    assert!(
        d.iter()
            .any(|(k, r)| k == "COPY" && r.starts_with(&format!("--from={stage} "))),
        "the runtime copies from {stage}"
    );
    assert!(
        instructions(&d, "RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked -p switchboard --bin switchboard")),
        "release build of the switchboard binary"
    );
    let user = *instructions(&d, "USER").last().expect("a USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid != "0" && uid.parse::<u32>().is_ok(),
        "numeric non-root USER, not {user}"
    );
    assert!(
        instructions(&d, "RUN")
            .iter()
            .any(|r| r.contains(&format!("--uid {uid}")) && r.contains("switchboard")),
        "the user `switchboard` has uid {uid}"
    );
    let args = image_args();
    assert_eq!(args[0], "serve");
    assert_eq!(
        json_form(instructions(&d, "ENTRYPOINT")[0]),
        ["/usr/local/bin/switchboard"]
    );
    assert_eq!(
        flag_value(&args, "--mcp-auth"),
        Some("required"),
        "off loopback the MCP service needs credentials"
    );
    let (main, mcp) = listen_ports(&args);
    let exposed: BTreeSet<u16> = instructions(&d, "EXPOSE")
        .iter()
        .flat_map(|r| r.split_whitespace())
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(exposed, BTreeSet::from([main, mcp]));
    let health = instructions(&d, "HEALTHCHECK");
    let probe = health
        .first()
        .expect("a HEALTHCHECK")
        .split(" CMD ")
        .nth(1)
        .expect("HEALTHCHECK … CMD");
    assert_eq!(
        shell_probe(&json_form(probe).join(" ")),
        (main, "/ready".to_string())
    );
    let ignored = read(".dockerignore");
    for entry in [
        "target",
        ".test-deps",
        "node_modules",
        ".git",
        "deploy/*.env",
    ] {
        assert!(
            ignored
                .lines()
                .any(|l| l.trim().trim_start_matches("**/") == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

// ---- compose ----------------------------------------------------------------------------

/// `${VAR:-default}` → `default` (what compose reads when VAR is unset).
fn interpolate_default(s: &str) -> String {
    match s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.split_once(":-").expect("a default").1.to_string(),
        None => s.to_string(),
    }
}

/// `KEY=VALUE` lines of an env file; with `commented`, also `# SWITCHBOARD_…=` lines.
fn env_file(rel: &str, commented: bool) -> BTreeMap<String, String> {
    read(rel)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = match l.strip_prefix('#') {
                Some(c) if commented && c.trim_start().starts_with("SWITCHBOARD_") => {
                    c.trim_start()
                }
                Some(_) => return None,
                None => l,
            };
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The hub's env files as the examples they are copied from.
fn compose_env_examples(hub: &Value) -> Vec<String> {
    strings(&hub["env_file"])
        .iter()
        .map(|f| format!("deploy/{}.example", interpolate_default(f)))
        .collect()
}

/// The hub service's `serve` arguments: its `command`, else the image's.
fn compose_hub_args(hub: &Value) -> Vec<String> {
    let args = strings(&hub["command"]);
    if args.is_empty() { image_args() } else { args }
}

#[test]
fn the_compose_file_runs_three_hub_replicas_on_postgres_behind_nginx() {
    let c = load("deploy/compose.yaml");
    let (pg, hub, nginx) = (
        &c["services"]["postgres"],
        &c["services"]["hub"],
        &c["services"]["nginx"],
    );
    assert_eq!(text(pg, "/image"), "postgres:16");
    assert!(
        strings(&pg["healthcheck"]["test"])
            .join(" ")
            .contains("pg_isready")
    );
    let volume = strings(&pg["volumes"])[0]
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert!(
        c["volumes"].get(&volume).is_some(),
        "postgres keeps its data in the named volume {volume}"
    );

    assert_eq!(hub["deploy"]["replicas"], 3);
    let context = root().join("deploy").join(text(hub, "/build/context"));
    assert!(
        context.join(text(hub, "/build/dockerfile")).is_file(),
        "the hub builds from the repository's Dockerfile"
    );
    assert!(!text(hub, "/image").is_empty());
    assert!(
        hub.get("ports").is_none() && hub.get("container_name").is_none(),
        "replicas publish no port and have no fixed name"
    );
    assert_eq!(
        hub["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    let probe = strings(&hub["healthcheck"]["test"]);
    assert_eq!(probe[..3], ["CMD", "bash", "-c"]);
    assert_eq!(
        shell_probe(&probe[3]),
        (listen_ports(&compose_hub_args(hub)).0, "/ready".to_string())
    );
    let inline: Vec<&String> = hub["environment"]
        .as_object()
        .expect("environment map")
        .keys()
        .collect();
    for name in SHARED {
        assert!(
            !inline.iter().any(|k| *k == name),
            "{name} is a secret: it belongs in the env file"
        );
    }

    // The env files: git-ignored, with examples holding every shared value.
    let ignored = read("deploy/.gitignore");
    let mut shared = BTreeMap::new();
    for example in compose_env_examples(hub)
        .iter()
        .chain(&compose_env_examples(pg))
    {
        let name = example
            .trim_start_matches("deploy/")
            .trim_end_matches(".example");
        assert!(
            ignored.lines().any(|l| l == format!("/{name}")),
            "deploy/.gitignore lacks /{name}"
        );
        shared.extend(env_file(example, false));
    }
    for name in SHARED {
        assert!(
            shared.contains_key(name),
            "the env file examples lack {name}"
        );
    }
    let url = &shared["SWITCHBOARD_DATABASE_URL"];
    let expected = format!(
        "postgres://{}:{}@postgres:5432/{}",
        text(pg, "/environment/POSTGRES_USER"),
        shared["POSTGRES_PASSWORD"],
        text(pg, "/environment/POSTGRES_DB")
    );
    assert_eq!(
        url, &expected,
        "the hubs' database URL names the postgres service and its credentials"
    );

    assert_eq!(text(nginx, "/image"), "nginx:1.27");
    assert!(
        strings(&nginx["volumes"])
            .iter()
            .any(|v| v.starts_with("./nginx.conf:/etc/nginx/nginx.conf"))
    );
    assert_eq!(nginx["depends_on"]["hub"]["condition"], "service_healthy");
    let published: BTreeSet<u16> = strings(&nginx["ports"])
        .iter()
        .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let listens: BTreeSet<u16> = nginx::servers().iter().map(|s| s.0).collect();
    assert_eq!(
        published, listens,
        "nginx publishes the ports it listens on"
    );
}

#[test]
fn docker_compose_accepts_the_compose_file() {
    let has_compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_compose {
        eprintln!("skipped: `docker compose` is not available here");
        return;
    }
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(root().join("deploy/compose.yaml"))
        .args(["config", "--quiet"])
        .env("SWITCHBOARD_ENV_FILE", "switchboard.env.example")
        .env("POSTGRES_ENV_FILE", "postgres.env.example")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
