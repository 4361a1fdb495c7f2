//! Tool definitions for pinning (rug-pull detection): the fields that make up a tool's
//! definition, their canonical JSON (keys sorted at every depth, no whitespace) and its
//! SHA-256. Computed when a catalog is fetched, never per request.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The fields of a tool object that its pinned definition covers.
pub const DEFINITION_FIELDS: [&str; 6] = [
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// SHA-256 of a canonical definition.
pub type Digest = [u8; 32];

/// The pinned fields of a tool object (others, such as `_meta` or `icons`, are left out).
pub fn tool_definition(raw: &str) -> Option<Map<String, Value>> {
    let Ok(Value::Object(all)) = serde_json::from_str::<Value>(raw) else {
        return None;
    };
    Some(
        all.into_iter()
            .filter(|(k, _)| DEFINITION_FIELDS.contains(&k.as_str()))
            .collect(),
    )
}

/// `value` as canonical JSON: object keys sorted (by their UTF-8 bytes) at every depth, no
/// whitespace, so two definitions that differ only in field order serialise the same.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// SHA-256 of a canonical definition.
pub fn digest(canonical: &str) -> Digest {
    Sha256::digest(canonical.as_bytes()).into()
}

/// The canonical definition of a tool object and its digest.
pub fn pin_of(raw: &str) -> Option<(String, Digest)> {
    let canonical = canonical_json(&Value::Object(tool_definition(raw)?));
    let d = digest(&canonical);
    Some((canonical, d))
}

/// Lower-case hex.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order_and_whitespace_do_not_change_the_digest() {
        let a = r#"{"name":"echo","description":"Say it","inputSchema":{"type":"object","properties":{"b":{},"a":{}}}}"#;
        let b = r#"{ "inputSchema": {"properties": {"a": {}, "b": {}}, "type": "object"},
                     "description": "Say it", "name": "echo" }"#;
        assert_eq!(pin_of(a).unwrap(), pin_of(b).unwrap());
        assert_eq!(
            pin_of(a).unwrap().0,
            r#"{"description":"Say it","inputSchema":{"properties":{"a":{},"b":{}},"type":"object"},"name":"echo"}"#
        );
    }

    #[test]
    fn every_pinned_field_changes_the_digest_and_other_fields_do_not() {
        let base = r#"{"name":"t","description":"d","inputSchema":{"type":"object"}}"#;
        let (_, d0) = pin_of(base).unwrap();
        for changed in [
            r#"{"name":"u","description":"d","inputSchema":{"type":"object"}}"#,
            r#"{"name":"t","description":"e","inputSchema":{"type":"object"}}"#,
            r#"{"name":"t","description":"d","inputSchema":{"type":"string"}}"#,
            r#"{"name":"t","title":"T","description":"d","inputSchema":{"type":"object"}}"#,
            r#"{"name":"t","description":"d","inputSchema":{"type":"object"},"outputSchema":{}}"#,
            r#"{"name":"t","description":"d","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}"#,
        ] {
            assert_ne!(pin_of(changed).unwrap().1, d0, "{changed}");
        }
        let extra = r#"{"name":"t","description":"d","inputSchema":{"type":"object"},"_meta":{"x":1},"icons":[]}"#;
        assert_eq!(pin_of(extra).unwrap().1, d0);
        assert!(pin_of("[1]").is_none());
    }
}
