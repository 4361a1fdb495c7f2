//! `switchboard servers …` and `switchboard check`: a client of a running hub's management API.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{AddArgs, ApiArgs, ServersAction};

/// A client of the management API.
pub(crate) struct Api<'a> {
    pub(crate) args: &'a ApiArgs,
    pub(crate) http: reqwest::Client,
}

impl Api<'_> {
    /// Sends one request; an error status becomes an error naming it and the hub's message.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.args.api_url.trim_end_matches('/'));
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.args.token {
            req = req.bearer_auth(t);
        }
        if let Some(t) = &self.args.tenant {
            req = req.header("x-switchboard-tenant", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {}", self.args.api_url))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let msg = value["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            bail!("{status}: {msg}");
        }
        Ok(value)
    }
}

pub(crate) async fn run(api: &ApiArgs, action: &ServersAction) -> anyhow::Result<()> {
    let client = Api {
        args: api,
        http: switchboard_upstream::http_client(),
    };
    use reqwest::Method;
    let out = match action {
        ServersAction::List => {
            let v = client.send(Method::GET, "/api/v1/servers", None).await?;
            if !api.json {
                print_table(&v["servers"]);
                return Ok(());
            }
            v
        }
        ServersAction::Show { name } => {
            let v = client
                .send(Method::GET, &format!("/api/v1/servers/{name}"), None)
                .await?;
            if !api.json {
                print_show(&v);
                return Ok(());
            }
            v
        }
        ServersAction::Restart { name } => {
            client
                .send(
                    Method::POST,
                    &format!("/api/v1/servers/{name}/restart"),
                    None,
                )
                .await?
        }
        ServersAction::Add(a) => {
            client
                .send(Method::POST, "/api/v1/servers", Some(add_body(a)?))
                .await?
        }
        ServersAction::Rm { name } => {
            client
                .send(Method::DELETE, &format!("/api/v1/servers/{name}"), None)
                .await?;
            json!({"removed": name})
        }
        ServersAction::Enable { name } => {
            client
                .send(
                    Method::POST,
                    &format!("/api/v1/servers/{name}/enable"),
                    None,
                )
                .await?
        }
        ServersAction::Disable { name } => {
            client
                .send(
                    Method::POST,
                    &format!("/api/v1/servers/{name}/disable"),
                    None,
                )
                .await?
        }
        ServersAction::Import { file } => {
            let body = import_body(file)?;
            let v = client
                .send(Method::POST, "/api/v1/import", Some(body))
                .await?;
            if !api.json {
                print_import(&v);
                return Ok(());
            }
            v
        }
        ServersAction::Export { reveal } => {
            let path = if *reveal {
                "/api/v1/export?reveal=true"
            } else {
                "/api/v1/export"
            };
            let v = client.send(Method::GET, path, None).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
    };
    print_result(api.json, &out);
    Ok(())
}

pub(crate) async fn check(api: &ApiArgs, url: &str, transport: Option<&str>) -> anyhow::Result<()> {
    let client = Api {
        args: api,
        http: switchboard_upstream::http_client(),
    };
    let mut path = format!(
        "/api/mcp/tools/?service_name=check&mcp_url={}",
        crate::url_encode(url)
    );
    if let Some(t) = transport {
        path.push_str(&format!("&transport={}", crate::url_encode(t)));
    }
    let v = client.send(reqwest::Method::GET, &path, None).await?;
    if api.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let tools = v["tools"].as_array().cloned().unwrap_or_default();
    println!("{url}: reachable, {} tool(s)", tools.len());
    for t in tools {
        let desc = t["description"]
            .as_str()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        println!("  {:<32} {}", t["name"].as_str().unwrap_or("?"), desc);
    }
    Ok(())
}

/// Reads a config file of any supported format, checks it here (so errors name the local
/// file and line), and fills `${SWITCHBOARD_SECRET_…}` / `${SWITCHBOARD_INPUT_…}` placeholders
/// from this machine's environment (an export's secrets, VS Code's inputs).
fn import_body(file: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    struct Literal;
    impl switchboard_core::config::VarSource for Literal {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn literal(&self) -> bool {
            true
        }
    }
    switchboard_core::config::parse_servers_file(file, &text, &Literal, "__")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut body: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    fill_placeholders(&mut body, file, "")?;
    Ok(body)
}

fn fill_placeholders(v: &mut Value, file: &std::path::Path, at: &str) -> anyhow::Result<()> {
    match v {
        Value::String(s) => {
            for prefix in ["${SWITCHBOARD_SECRET_", "${SWITCHBOARD_INPUT_"] {
                while let Some(start) = s.find(prefix) {
                    let Some(len) = s[start..].find('}') else {
                        break;
                    };
                    let var = s[start + 2..start + len].to_string();
                    let value = std::env::var(&var).map_err(|_| {
                        anyhow::anyhow!(
                            "{}: {at}: set {var} in the environment (the value this placeholder stands for)",
                            file.display()
                        )
                    })?;
                    s.replace_range(start..start + len + 1, &value);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                fill_placeholders(x, file, &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                fill_placeholders(x, file, &path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One server: the table row, then owner, configuration and stderr tail.
fn print_show(v: &Value) {
    print_table(&json!([v]));
    println!();
    println!("owner:   {}", cell(&v["origin"]));
    println!("created: by {}", cell(&v["created_by"]));
    println!("changed: by {}", cell(&v["updated_by"]));
    println!(
        "config:  {}",
        serde_json::to_string_pretty(&v["config"]).unwrap_or_default()
    );
    if let Some(tail) = v["stderr_tail"].as_array().filter(|t| !t.is_empty()) {
        println!("stderr (last lines):");
        for l in tail {
            println!("  {}", cell(l));
        }
    }
}

/// The import report: one line per server added or kept, then the notes.
fn print_import(v: &Value) {
    println!("format: {}", cell(&v["format"]));
    let list = |k: &str| {
        v[k].as_array()
            .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    println!("added: {}", list("added"));
    println!("kept (name taken): {}", list("kept"));
    println!("groups added: {}", list("groups_added"));
    for n in v["notes"].as_array().into_iter().flatten() {
        println!(
            "  {:<9}  {:<28}  {}",
            cell(&n["action"]),
            cell(&n["entry"]),
            cell(&n["detail"])
        );
    }
}

fn add_body(a: &AddArgs) -> anyhow::Result<Value> {
    let mut body = json!({"name": a.name, "enabled": !a.disabled});
    match (&a.url, &a.command) {
        (Some(url), None) => {
            body["url"] = json!(url);
            body["type"] = json!(
                a.transport
                    .clone()
                    .unwrap_or_else(|| "streamable-http".into())
            );
            body["headers"] = json!(pairs(&a.headers, "--header")?);
        }
        (None, Some(cmd)) => {
            body["type"] = json!("stdio");
            body["command"] = json!(cmd);
            body["args"] = json!(a.args);
            body["env"] = json!(pairs(&a.env, "--env")?);
            if let Some(c) = &a.cwd {
                body["cwd"] = json!(c);
            }
        }
        _ => bail!("give either --url (remote server) or --command (stdio server)"),
    }
    if let Some(t) = a.timeout {
        body["timeout"] = json!(t);
    }
    Ok(body)
}

fn pairs(items: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{flag} wants NAME=VALUE, got {kv:?}"))
        })
        .collect()
}

fn print_result(as_json: bool, v: &Value) {
    if as_json || !v.is_object() || v.get("name").is_none() {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        print_table(&json!([v]));
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One line per server: name, transport, state, tools, target, last error.
fn print_table(servers: &Value) {
    let rows: Vec<[String; 6]> = servers
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let target = s["config"]
                        .get("url")
                        .or_else(|| s["config"].get("command"))
                        .map(cell)
                        .unwrap_or_default();
                    let status = &s["status"];
                    [
                        cell(&s["name"]),
                        cell(&s["config"]["type"]),
                        if s["enabled"] == false {
                            "disabled".into()
                        } else {
                            cell(&status["state"])
                        },
                        cell(&status["tools"]),
                        target,
                        cell(&status["last_error"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let header = ["NAME", "TYPE", "STATE", "TOOLS", "TARGET", "LAST ERROR"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count().min(60));
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{:<w$}", c.chars().take(60).collect::<String>()))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
