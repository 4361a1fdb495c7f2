//! `Mcp-Param-*` headers (2026-07-28, SEP-2243): a tool marks some of its arguments with
//! `x-mcp-header`, and a client mirrors their values into `Mcp-Param-<Name>` HTTP headers so
//! that intermediaries can route on them without reading the body. Whoever reads the body must
//! check that the two agree.

use serde_json::Value;

/// One argument a tool wants mirrored into a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The header name without the `Mcp-Param-` prefix, as the tool spells it.
    pub name: String,
    /// Property names from `arguments` down to the value.
    pub path: Vec<String>,
}

/// The `x-mcp-header` declarations of a tool's `inputSchema`, found by following
/// `properties` only (the spec ignores declarations reached any other way).
pub fn declared(input_schema: &Value) -> Vec<ParamHeader> {
    let mut out = Vec::new();
    walk(input_schema, &mut Vec::new(), &mut out);
    out
}

fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamHeader>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, sub) in props {
        path.push(key.clone());
        if let Some(name) = sub.get("x-mcp-header").and_then(Value::as_str) {
            out.push(ParamHeader {
                name: name.to_string(),
                path: path.clone(),
            });
        }
        walk(sub, path, out);
        path.pop();
    }
}

/// The argument a declaration points at, as a header would carry it: strings as they are,
/// integers in decimal, booleans as `true`/`false`. `None` when absent or null (no header
/// is sent then) and for values no header can carry.
pub fn argument_text(arguments: &Value, header: &ParamHeader) -> Option<String> {
    let mut v = arguments;
    for key in &header.path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Why a request's `Mcp-Param-*` headers do not match its body.
pub fn mismatch(
    declared: &[ParamHeader],
    arguments: &Value,
    header: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    for d in declared {
        let body = argument_text(arguments, d);
        let sent = header(&d.name);
        match (body, sent) {
            (None, None) => {}
            (Some(_), None) => {
                return Some(format!(
                    "missing Mcp-Param-{} header for argument {}",
                    d.name,
                    d.path.join(".")
                ));
            }
            (None, Some(_)) => {
                return Some(format!(
                    "Mcp-Param-{} is set but argument {} is absent",
                    d.name,
                    d.path.join(".")
                ));
            }
            (Some(b), Some(h)) => match decode(&h) {
                Some(h) if same_value(&b, &h) => {}
                Some(_) => {
                    return Some(format!(
                        "Mcp-Param-{} differs from argument {}",
                        d.name,
                        d.path.join(".")
                    ));
                }
                None => return Some(format!("Mcp-Param-{} is malformed", d.name)),
            },
        }
    }
    None
}

/// Integers compare by value (`7` = `07`); everything else byte for byte.
fn same_value(body: &str, header: &str) -> bool {
    if body == header {
        return true;
    }
    match (body.parse::<i64>(), header.parse::<i64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A header value as sent: `=?base64?<standard base64 of UTF-8>?=` is decoded (strictly:
/// padding and alphabet are checked), anything else is taken literally. `None` when the
/// encoded form is malformed.
pub fn decode(value: &str) -> Option<String> {
    let value = value.trim_matches([' ', '\t']);
    match value
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => String::from_utf8(base64_strict(b64)?).ok(),
        None => Some(value.to_string()),
    }
}

/// How a value goes into a header: as is when it is plain visible ASCII without edge
/// blanks, else base64-encoded.
pub fn encode(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !value.starts_with("=?");
    if plain {
        value.to_string()
    } else {
        format!("=?base64?{}?=", base64(value.as_bytes()))
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with mandatory padding; `None` on any other character or length.
fn base64_strict(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for (j, &c) in chunk[..4 - pad].iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            acc |= v << (18 - 6 * j);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_declarations_through_properties_only() {
        let schema = json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "nested":{"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}}},
            "list":{"type":"array","items":{"x-mcp-header":"Ignored"}}
        }});
        let d = declared(&schema);
        assert_eq!(d.len(), 2);
        assert!(d.contains(&ParamHeader {
            name: "N".into(),
            path: vec!["nested".into(), "n".into()]
        }));
    }

    #[test]
    fn checks_headers_against_the_body() {
        let d =
            declared(&json!({"properties":{"r":{"x-mcp-header":"R"},"n":{"x-mcp-header":"N"}}}));
        let args = json!({"r":"héllo","n":7});
        let ok = |h: &str| match h {
            "R" => Some("=?base64?aMOpbGxv?=".to_string()),
            "N" => Some("07".to_string()),
            _ => None,
        };
        assert_eq!(mismatch(&d, &args, ok), None);
        assert!(mismatch(&d, &args, |_| None).is_some());
        let bad_padding = |h: &str| match h {
            "R" => Some("=?base64?SGVsbG8?=".to_string()),
            _ => Some("7".to_string()),
        };
        assert!(mismatch(&d, &json!({"r":"Hello","n":7}), bad_padding).is_some());
        assert_eq!(decode("=?base64?SGVs!!!bG8=?="), None);
        assert_eq!(
            decode("=?base64?SGVsbG8=").as_deref(),
            Some("=?base64?SGVsbG8=")
        );
        assert_eq!(decode(&encode(" x ")).as_deref(), Some(" x "));
        assert!(mismatch(&d, &json!({}), |_| Some("x".into())).is_some());
    }
}
