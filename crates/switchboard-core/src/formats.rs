//! The config files people already have, turned into the servers file's own shape before it
//! is validated: Claude Desktop, Cursor, Windsurf and Cline (`mcpServers`), VS Code (`servers`
//! plus `inputs`) and MCPHub's `mcp_settings.json` (`groups` as an array, per-server `tools`,
//! `options.timeout` in milliseconds). Every change is reported as a [`Note`]: what was kept,
//! converted or dropped, per entry.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

/// What happened to one part of an imported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The entry, such as `mcpServers.github` or `groups.dev`.
    pub entry: String,
    /// `kept`, `converted` or `dropped`.
    pub action: &'static str,
    /// What and why.
    pub detail: String,
}

/// One tool's settings carried by the file (MCPHub's per-server `tools`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolSetting {
    /// Visible on `/mcp`.
    pub enabled: bool,
    /// Description override.
    pub description: Option<String>,
}

/// A file in the servers file's own shape plus what the shape cannot hold.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Entries by name, in the servers file's entry shape.
    pub servers: Map<String, Value>,
    /// Groups by name: member names.
    pub groups: BTreeMap<String, Value>,
    /// Group tool filters (exported names), for groups whose members each listed their tools.
    pub group_tools: BTreeMap<String, Vec<String>>,
    /// Per-server tool settings.
    pub tool_settings: BTreeMap<String, BTreeMap<String, ToolSetting>>,
    /// The report.
    pub notes: Vec<Note>,
}

/// The format a file was recognised as, for the report.
pub fn detect(doc: &Map<String, Value>) -> &'static str {
    if doc.contains_key("servers") && !doc.contains_key("mcpServers") {
        "vscode"
    } else if doc.get("groups").is_some_and(Value::is_array)
        || doc.contains_key("systemConfig")
        || doc.contains_key("users")
    {
        "mcphub"
    } else {
        "mcpServers"
    }
}

fn note(notes: &mut Vec<Note>, entry: &str, action: &'static str, detail: impl Into<String>) {
    notes.push(Note {
        entry: entry.to_string(),
        action,
        detail: detail.into(),
    });
}

/// `SWITCHBOARD_<KIND>_<PARTS>` with every part upper-cased and non-alphanumerics as `_`.
pub fn placeholder_var(kind: &str, parts: &[&str]) -> String {
    let mut name = format!("SWITCHBOARD_{kind}");
    for p in parts {
        name.push('_');
        name.extend(p.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
    }
    name
}

/// An error while normalising: the entry path (from the top of the file) and the message.
pub type NormalizeError = (String, String);

/// Turns any supported format into the servers file's shape. `separator` joins server and
/// tool names in MCPHub group tool filters.
pub fn normalize(doc: &Map<String, Value>, separator: &str) -> Result<Normalized, NormalizeError> {
    let mut out = Normalized::default();
    let format = detect(doc);
    // VS Code keeps the servers under "servers"; its settings.json nests them under "mcp".
    let (servers_key, servers) = if format == "vscode" {
        ("servers", doc.get("servers"))
    } else {
        ("mcpServers", doc.get("mcpServers"))
    };
    let servers = match servers {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err((servers_key.into(), "must be an object of servers".into())),
        None => {
            return Err((
                String::new(),
                "missing the \"mcpServers\" object (or VS Code's \"servers\")".into(),
            ));
        }
    };
    let inputs = vscode_inputs(doc, &mut out.notes)?;
    for key in doc.keys() {
        let known = matches!(key.as_str(), "mcpServers" | "groups")
            || (format == "vscode" && matches!(key.as_str(), "servers" | "inputs"));
        if !known {
            note(
                &mut out.notes,
                key,
                "dropped",
                format!("top-level key {key:?} is not used by Switchboard"),
            );
        }
    }
    for (name, value) in servers {
        let entry = format!("{servers_key}.{name}");
        let Value::Object(obj) = value else {
            return Err((entry, "a server entry must be a JSON object".into()));
        };
        let (obj, tools) = server_entry(&entry, obj, &inputs, &mut out.notes)?;
        if !tools.is_empty() {
            out.tool_settings.insert(name.clone(), tools);
        }
        out.servers.insert(name, Value::Object(obj));
    }
    match doc.get("groups") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            out.groups = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        Some(Value::Array(list)) => mcphub_groups(list, separator, &mut out)?,
        Some(_) => {
            return Err((
                "groups".into(),
                "must be an object (name -> servers) or an array of {name, servers}".into(),
            ));
        }
    }
    Ok(out)
}

/// VS Code's `inputs`: ids of values the editor prompts for, which become environment
/// placeholders `${SWITCHBOARD_INPUT_<ID>}`.
fn vscode_inputs(
    doc: &Map<String, Value>,
    notes: &mut Vec<Note>,
) -> Result<BTreeMap<String, String>, NormalizeError> {
    let mut out = BTreeMap::new();
    let Some(inputs) = doc.get("inputs") else {
        return Ok(out);
    };
    let Value::Array(list) = inputs else {
        return Err(("inputs".into(), "must be an array of {id, ...}".into()));
    };
    for (i, input) in list.iter().enumerate() {
        let id = input.get("id").and_then(Value::as_str).ok_or_else(|| {
            (
                format!("inputs[{i}].id"),
                "is required (a string)".to_string(),
            )
        })?;
        let var = placeholder_var("INPUT", &[id]);
        note(
            notes,
            &format!("inputs.{id}"),
            "converted",
            format!("${{input:{id}}} becomes ${{{var}}}: set {var} in the hub's environment"),
        );
        out.insert(id.to_string(), var);
    }
    Ok(out)
}

/// Rewrites VS Code's `${input:ID}` and `${env:NAME}` in one string.
fn rewrite_vars(s: &str, inputs: &BTreeMap<String, String>) -> Result<String, String> {
    if !s.contains("${input:") && !s.contains("${env:") {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        out.push_str(&rest[..pos]);
        let body = &rest[pos + 2..];
        let Some(end) = body.find('}') else {
            out.push_str(&rest[pos..]);
            return Ok(out);
        };
        let inner = &body[..end];
        if let Some(id) = inner.strip_prefix("input:") {
            let var = inputs
                .get(id)
                .ok_or_else(|| format!("${{input:{id}}} names no entry of \"inputs\""))?;
            out.push_str(&format!("${{{var}}}"));
        } else if let Some(name) = inner.strip_prefix("env:") {
            out.push_str(&format!("${{{name}}}"));
        } else {
            out.push_str(&rest[pos..pos + 2 + end + 1]);
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn rewrite_strings(v: &mut Value, inputs: &BTreeMap<String, String>) -> Result<bool, String> {
    match v {
        Value::String(s) => {
            let new = rewrite_vars(s, inputs)?;
            let changed = new != *s;
            *s = new;
            Ok(changed)
        }
        Value::Array(a) => {
            let mut changed = false;
            for x in a {
                changed |= rewrite_strings(x, inputs)?;
            }
            Ok(changed)
        }
        Value::Object(m) => {
            let mut changed = false;
            for x in m.values_mut() {
                changed |= rewrite_strings(x, inputs)?;
            }
            Ok(changed)
        }
        _ => Ok(false),
    }
}

type Tools = BTreeMap<String, ToolSetting>;

/// One server entry of any format in our shape.
fn server_entry(
    entry: &str,
    mut obj: Map<String, Value>,
    inputs: &BTreeMap<String, String>,
    notes: &mut Vec<Note>,
) -> Result<(Map<String, Value>, Tools), NormalizeError> {
    let field = |f: &str| format!("{entry}.{f}");
    for key in ["command", "args", "env", "cwd", "url", "headers"] {
        if let Some(v) = obj.get_mut(key)
            && rewrite_strings(v, inputs).map_err(|m| (field(key), m))?
        {
            note(
                notes,
                entry,
                "converted",
                format!("{key}: ${{input:…}}/${{env:…}} references became ${{VAR}} placeholders"),
            );
        }
    }
    // Windsurf spells the URL `serverUrl`.
    if let Some(url) = obj.remove("serverUrl") {
        if obj.contains_key("url") {
            note(
                notes,
                entry,
                "dropped",
                "serverUrl: \"url\" is set too and wins",
            );
        } else {
            obj.insert("url".into(), url);
            note(notes, entry, "converted", "serverUrl became url");
        }
    }
    // Cline's older spelling of the transport.
    if !obj.contains_key("type")
        && let Some(t) = obj.remove("transportType")
    {
        obj.insert("type".into(), t);
        note(notes, entry, "converted", "transportType became type");
    }
    for key in ["autoApprove", "alwaysAllow"] {
        if let Some(v) = obj.remove(key) {
            note(
                notes,
                entry,
                "dropped",
                format!(
                    "{key} {}: the hub does not approve tool calls; the client keeps its own approvals",
                    v
                ),
            );
        }
    }
    // MCPHub: options.timeout in milliseconds; keepAliveInterval has no equivalent.
    if let Some(options) = obj.remove("options") {
        let Value::Object(options) = options else {
            return Err((field("options"), "must be an object".into()));
        };
        for (k, v) in options {
            match k.as_str() {
                "timeout" if !obj.contains_key("timeout") => {
                    let ms = v.as_f64().filter(|ms| *ms > 0.0).ok_or((
                        field("options.timeout"),
                        "must be a positive number of milliseconds".to_string(),
                    ))?;
                    obj.insert("timeout".into(), json!(ms / 1000.0));
                    note(
                        notes,
                        entry,
                        "converted",
                        format!("options.timeout {ms} ms became timeout {} s", ms / 1000.0),
                    );
                }
                _ => note(
                    notes,
                    entry,
                    "dropped",
                    format!("options.{k}: no equivalent setting"),
                ),
            }
        }
    }
    if obj.remove("keepAliveInterval").is_some() {
        note(
            notes,
            entry,
            "dropped",
            "keepAliveInterval: the hub keeps connections alive by itself",
        );
    }
    let mut tools = Tools::new();
    if let Some(t) = obj.remove("tools") {
        let Value::Object(map) = t else {
            return Err((
                field("tools"),
                "must be an object: tool name -> {enabled, description}".into(),
            ));
        };
        for (tool, setting) in map {
            let enabled = match setting.get("enabled") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err((
                        field(&format!("tools.{tool}.enabled")),
                        "must be true or false".into(),
                    ));
                }
            };
            let description = setting
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_string);
            tools.insert(
                tool,
                ToolSetting {
                    enabled,
                    description,
                },
            );
        }
        note(
            notes,
            entry,
            "converted",
            format!(
                "tools: {} tool setting(s) ({} disabled) became per-tool settings",
                tools.len(),
                tools.values().filter(|t| !t.enabled).count()
            ),
        );
    }
    // VS Code's dev-mode and env-file keys, MCPHub's bookkeeping: not used here.
    for key in [
        "envFile",
        "dev",
        "owner",
        "description",
        "id",
        "gallery",
        "version",
    ] {
        if obj.remove(key).is_some() {
            note(
                notes,
                entry,
                "dropped",
                format!("{key}: not used by Switchboard"),
            );
        }
    }
    Ok((obj, tools))
}

/// MCPHub's `groups: [{name, servers: ["a", {name: "b", tools: [..] | "all"}]}]`.
fn mcphub_groups(
    list: &[Value],
    separator: &str,
    out: &mut Normalized,
) -> Result<(), NormalizeError> {
    for (i, g) in list.iter().enumerate() {
        let at = format!("groups[{i}]");
        let name = g
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| (format!("{at}.name"), "is required (a string)".to_string()))?;
        let entry = format!("groups.{name}");
        let servers = match g.get("servers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err((format!("{at}.servers"), "must be an array".into())),
        };
        let mut members = Vec::new();
        let mut filter: Option<Vec<String>> = Some(Vec::new());
        for (j, s) in servers.iter().enumerate() {
            match s {
                Value::String(m) => {
                    members.push(m.clone());
                    filter = None;
                }
                Value::Object(o) => {
                    let m = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                        (
                            format!("{at}.servers[{j}].name"),
                            "is required (a string)".to_string(),
                        )
                    })?;
                    members.push(m.to_string());
                    match o.get("tools") {
                        Some(Value::Array(t)) => {
                            if let Some(f) = filter.as_mut() {
                                for tool in t.iter().filter_map(Value::as_str) {
                                    f.push(format!("{m}{separator}{tool}"));
                                }
                            }
                        }
                        _ => filter = None,
                    }
                }
                _ => {
                    return Err((
                        format!("{at}.servers[{j}]"),
                        "must be a server name or {name, tools}".into(),
                    ));
                }
            }
        }
        match filter {
            Some(f) if !members.is_empty() => {
                note(
                    &mut out.notes,
                    &entry,
                    "converted",
                    format!(
                        "per-server tool lists became the group's tool filter ({} tools)",
                        f.len()
                    ),
                );
                out.group_tools.insert(name.to_string(), f);
            }
            _ => {
                let listed = servers
                    .iter()
                    .any(|s| s.get("tools").is_some_and(Value::is_array));
                if listed {
                    note(
                        &mut out.notes,
                        &entry,
                        "dropped",
                        "tool lists: some members expose all tools, so the group shows every tool of its members",
                    );
                }
            }
        }
        for key in g.as_object().into_iter().flat_map(|o| o.keys()) {
            if !matches!(key.as_str(), "name" | "servers") {
                note(
                    &mut out.notes,
                    &entry,
                    "dropped",
                    format!("{key}: not used by Switchboard"),
                );
            }
        }
        out.groups.insert(name.to_string(), json!(members));
    }
    Ok(())
}

/// The 1-based line of the entry path `path` (dot-separated keys) in `text`: each key is
/// looked for as `"key":` after the previous one. Falls back to the last key found.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let mut pos = 0;
    let mut found = None;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        let key = key.split('[').next().unwrap_or(key);
        let quoted = format!("\"{key}\"");
        let mut from = pos;
        let hit = loop {
            let Some(i) = text[from..].find(&quoted) else {
                break None;
            };
            let at = from + i;
            let after = text[at + quoted.len()..].trim_start();
            if after.starts_with(':') {
                break Some(at);
            }
            from = at + quoted.len();
        };
        match hit {
            Some(at) => {
                pos = at + quoted.len();
                found = Some(at);
            }
            None => break,
        }
    }
    found.map(|at| text[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: Value) -> Normalized {
        normalize(v.as_object().unwrap(), "__").unwrap()
    }

    #[test]
    fn mcphub_groups_and_tools_become_ours() {
        let n = norm(json!({
            "mcpServers": {"a": {"command": "x", "tools": {"t1": {"enabled": false}, "t2": {"description": "d"}},
                                  "options": {"timeout": 1500}, "keepAliveInterval": 1000}},
            "groups": [{"name": "g", "servers": ["a"]},
                       {"name": "h", "servers": [{"name": "a", "tools": ["t2"]}]}],
            "users": []
        }));
        assert_eq!(n.groups["g"], json!(["a"]));
        assert_eq!(n.group_tools["h"], vec!["a__t2"]);
        assert!(!n.tool_settings["a"]["t1"].enabled);
        assert_eq!(n.tool_settings["a"]["t2"].description.as_deref(), Some("d"));
        assert_eq!(n.servers["a"]["timeout"], json!(1.5));
        assert!(
            n.notes
                .iter()
                .any(|x| x.entry == "users" && x.action == "dropped")
        );
    }

    #[test]
    fn vscode_inputs_become_placeholders() {
        let n = norm(json!({
            "inputs": [{"type": "promptString", "id": "gh-token", "password": true}],
            "servers": {"gh": {"type": "http", "url": "https://h/mcp",
                               "headers": {"Authorization": "Bearer ${input:gh-token}"}}}
        }));
        assert_eq!(
            n.servers["gh"]["headers"]["Authorization"],
            json!("Bearer ${SWITCHBOARD_INPUT_GH_TOKEN}")
        );
        let bad = normalize(
            json!({"servers": {"x": {"command": "c", "env": {"K": "${input:nope}"}}}})
                .as_object()
                .unwrap(),
            "__",
        );
        assert_eq!(bad.unwrap_err().0, "servers.x.env");
    }

    #[test]
    fn locate_finds_nested_keys() {
        let text = "{\n \"mcpServers\": {\n  \"a\": {\n   \"url\": 1\n  }\n }\n}";
        assert_eq!(locate(text, "mcpServers.a.url"), Some(4));
        assert_eq!(locate(text, "mcpServers.a"), Some(3));
    }
}
