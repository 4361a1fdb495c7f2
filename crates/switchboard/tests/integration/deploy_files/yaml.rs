//! A reader for the block-style YAML subset the deploy files use, into `serde_json::Value`:
//! indented mappings and sequences (`- key: value` items included), plain, single- and
//! double-quoted scalars, flow sequences of scalars and `{}`. Anything else (tabs, block
//! scalars, anchors, tags, several documents, duplicate keys) is an error, so a file outside
//! the subset fails the tests instead of being misread. Where python3 has PyYAML, a test
//! also checks that both read every deploy file the same.

use serde_json::{Map, Number, Value};

struct Line {
    no: usize,
    indent: usize,
    text: String,
}

/// Parses one YAML document.
pub fn parse(source: &str) -> Result<Value, String> {
    let mut lines = Vec::new();
    let mut started = false;
    for (i, raw) in source.lines().enumerate() {
        let no = i + 1;
        let body = raw.trim_start_matches(' ');
        if body.starts_with('\t') {
            return Err(format!("line {no}: tab in indentation"));
        }
        let text = strip_comment(body).trim_end().to_string();
        if text.is_empty() {
            continue;
        }
        if text == "---" {
            if started || !lines.is_empty() {
                return Err(format!("line {no}: only one document is supported"));
            }
            started = true;
            continue;
        }
        let indent = raw.len() - body.len();
        lines.push(Line { no, indent, text });
    }
    if lines.is_empty() {
        return Ok(Value::Null);
    }
    let mut at = 0;
    let indent = lines[0].indent;
    let value = block(&mut lines, &mut at, indent)?;
    match lines.get(at) {
        Some(l) => Err(format!("line {}: unexpected indentation", l.no)),
        None => Ok(value),
    }
}

/// `text` without a trailing ` # comment` (a `#` inside quotes is kept).
fn strip_comment(text: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' && prev.is_whitespace() => return &text[..i],
            None if (c == '"' || c == '\'') && (prev.is_whitespace() || "[,:-".contains(prev)) => {
                quote = Some(c)
            }
            None => {}
        }
        prev = c;
    }
    text
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn block(lines: &mut [Line], at: &mut usize, indent: usize) -> Result<Value, String> {
    if is_item(&lines[*at].text) {
        sequence(lines, at, indent)
    } else {
        mapping(lines, at, indent)
    }
}

fn sequence(lines: &mut [Line], at: &mut usize, indent: usize) -> Result<Value, String> {
    let mut items = Vec::new();
    while let Some(line) = lines.get(*at) {
        if line.indent != indent || !is_item(&line.text) {
            break;
        }
        let rest = line.text[1..].trim_start().to_string();
        if rest.is_empty() {
            *at += 1;
            items.push(nested(lines, at, indent)?);
        } else if split_key(&rest).is_some() {
            // `- key: value`: a mapping whose keys line up with `key`.
            let offset = line.text.len() - rest.len();
            lines[*at].indent = indent + offset;
            lines[*at].text = rest;
            items.push(mapping(lines, at, indent + offset)?);
        } else {
            items.push(scalar(&rest).map_err(|e| format!("line {}: {e}", line.no))?);
            *at += 1;
        }
    }
    Ok(Value::Array(items))
}

fn mapping(lines: &mut [Line], at: &mut usize, indent: usize) -> Result<Value, String> {
    let mut map = Map::new();
    while let Some(line) = lines.get(*at) {
        if line.indent < indent || (line.indent == indent && is_item(&line.text)) {
            break;
        }
        let no = line.no;
        if line.indent > indent {
            return Err(format!("line {no}: unexpected indentation"));
        }
        let (key, rest) =
            split_key(&line.text).ok_or(format!("line {no}: expected `key: value`"))?;
        let key = match scalar(&key).map_err(|e| format!("line {no}: {e}"))? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        *at += 1;
        let value = if rest.is_empty() {
            match lines.get(*at) {
                // A sequence may sit at its key's own indentation.
                Some(next) if next.indent == indent && is_item(&next.text) => {
                    sequence(lines, at, indent)?
                }
                _ => nested(lines, at, indent)?,
            }
        } else {
            scalar(&rest).map_err(|e| format!("line {no}: {e}"))?
        };
        if map.insert(key.clone(), value).is_some() {
            return Err(format!("line {no}: duplicate key {key:?}"));
        }
    }
    Ok(Value::Object(map))
}

/// The block under a `key:` or `-` line, or null when nothing is indented deeper.
fn nested(lines: &mut [Line], at: &mut usize, parent: usize) -> Result<Value, String> {
    match lines.get(*at) {
        Some(next) if next.indent > parent => {
            let indent = next.indent;
            block(lines, at, indent)
        }
        _ => Ok(Value::Null),
    }
}

/// `key: rest` or `key:` (rest empty); `None` when the text is not a mapping entry.
fn split_key(text: &str) -> Option<(String, String)> {
    let key_end = match text.chars().next()? {
        q @ ('"' | '\'') => text[1..].find(q)? + 2,
        '[' | '{' => return None,
        _ => 0,
    };
    let colon = key_end
        + text[key_end..].find(": ").or_else(|| {
            text[key_end..]
                .ends_with(':')
                .then(|| text.len() - key_end - 1)
        })?;
    Some((
        text[..colon].trim().to_string(),
        text[colon + 1..].trim().to_string(),
    ))
}

fn scalar(text: &str) -> Result<Value, String> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("unclosed flow sequence")?;
        return split_flow(inner)?
            .iter()
            .map(|s| scalar(s))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if t == "{}" {
        return Ok(Value::Object(Map::new()));
    }
    if let Some(inner) = t.strip_prefix('"') {
        return unescape(inner.strip_suffix('"').ok_or("unclosed double quote")?)
            .map(Value::String);
    }
    if let Some(inner) = t.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'').ok_or("unclosed single quote")?;
        return Ok(Value::String(inner.replace("''", "'")));
    }
    if t.starts_with(['{', '&', '*', '!', '|', '>', '%', '@', '`']) {
        return Err(format!("unsupported YAML: {t}"));
    }
    Ok(match t {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(n) = t.parse::<i64>() {
                Value::Number(n.into())
            } else if t.contains('.') && t.parse::<f64>().is_ok() && !t.ends_with('.') {
                Number::from_f64(t.parse().unwrap_or_default()).map_or(Value::Null, Value::Number)
            } else if matches!(t.to_ascii_lowercase().as_str(), "yes" | "no" | "on" | "off") {
                return Err(format!("{t:?} is a boolean to some YAML readers: quote it"));
            } else {
                Value::String(t.to_string())
            }
        }
    })
}

/// The items of a flow sequence's inside, split at commas outside quotes.
fn split_flow(inner: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let (mut current, mut quote, mut escaped) = (String::new(), None, false);
    for c in inner.chars() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == ',' => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if "[]{}".contains(c) => return Err("nested flow collections".into()),
            None => {}
        }
        current.push(c);
    }
    if quote.is_some() {
        return Err("unclosed quote in flow sequence".into());
    }
    if !current.trim().is_empty() || !items.is_empty() {
        items.push(current);
    }
    Ok(items.into_iter().map(|s| s.trim().to_string()).collect())
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            return Err("unescaped quote inside a double-quoted scalar".into());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('\\') => '\\',
            Some('"') => '"',
            Some('/') => '/',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            other => return Err(format!("unsupported escape \\{}", other.unwrap_or(' '))),
        });
    }
    Ok(out)
}

#[test]
fn the_yaml_reader_reads_the_subset_and_refuses_the_rest() {
    let doc = "a: 1 # note\nb:\n  - x: \"p: q\"\n    y: [\"CMD\", 'it''s']\n  - plain:5010\nc:\n- {}\nd: '#no-comment'\n";
    let v = parse(doc).expect("parses");
    assert_eq!(
        v,
        serde_json::json!({
            "a": 1,
            "b": [{"x": "p: q", "y": ["CMD", "it's"]}, "plain:5010"],
            "c": [{}],
            "d": "#no-comment",
        })
    );
    for bad in [
        "a: 1\na: 2\n",
        "a:\n\t- x\n",
        "a: |\n  text\n",
        "a: &x 1\n",
        "a: Yes\n",
        "a: 1\n   b: 2\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn the_yaml_reader_agrees_with_pyyaml_on_every_deploy_file() {
    let python = "python3";
    let has_yaml = std::process::Command::new(python)
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_yaml {
        eprintln!(
            "skipped: {python} with PyYAML is not available (the reader's own test still runs)"
        );
        return;
    }
    for rel in super::YAML_FILES {
        let script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
        let out = std::process::Command::new(python)
            .args(["-c", script])
            .arg(super::root().join(rel))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PyYAML rejects {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(super::load(rel), theirs, "{rel} reads differently");
    }
}
