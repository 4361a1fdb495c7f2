//! Property tests (a short fuzz run in CI) of the two parsers that read untrusted text: the
//! JSON-RPC envelope (`Envelope::parse`) and the servers file (`parse_servers_file`).
//!
//! Checked: no input panics; the envelope scanner agrees with serde_json on what is JSON;
//! valid envelopes are read at their exact bytes and survive parse + splice byte for byte;
//! the invalid shapes are refused with the right code. Case counts stay small (a few seconds).

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchboard_core::config::parse_servers_file;
use switchboard_core::jsonrpc::{Envelope, Splice, code};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep, with strings that need escaping.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            // Values serde_json reads back exactly (it is not built with float_roundtrip).
            .prop_filter("round-trips", |f| f.is_finite()
                && serde_json::from_str::<f64>(&serde_json::to_string(f).unwrap())
                    .ok()
                    == Some(*f))
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        "[\"\\\\\\n\\t\\u{0}-\\u{1f}é😀]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,8}".prop_map(Value::String)
    ]
}

fn params() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-zA-Z]{1,8}", json_value(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

/// Serialises `v` compactly or with whitespace (pretty).
fn text_of(v: &Value, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(v).unwrap()
    } else {
        serde_json::to_string(v).unwrap()
    }
}

fn servers_file(text: &str) -> Result<(), switchboard_core::config::ConfigError> {
    parse_servers_file(Path::new("f.json"), text, &BTreeMap::new(), "__").map(drop)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Envelope::parse(&text);
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = Envelope::parse(&lossy);
        let _ = servers_file(&text);
        let _ = servers_file(&lossy);
    }

    #[test]
    fn the_scanner_agrees_with_serde_json_on_what_is_json(v in json_value(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), b in any::<u8>()) {
        let message = json!({"jsonrpc": "2.0", "id": 1, "method": "m", "params": {"v": v}});
        let text = serde_json::to_string(&message).unwrap();
        prop_assert!(Envelope::parse(&text).is_ok(), "{}", text);
        // Broken variants: truncated, or one byte changed.
        let end = cut.index(text.len() + 1);
        let mut variants = Vec::new();
        if text.is_char_boundary(end) {
            variants.push(text[..end].to_string());
        }
        let mut raw = text.clone().into_bytes();
        let at = flip.index(raw.len());
        raw[at] = b;
        if let Ok(s) = String::from_utf8(raw) {
            variants.push(s);
        }
        for t in variants {
            // serde_json's raw-value reader checks syntax only (no number ranges), like the scanner.
            let serde_ok = serde_json::from_str::<&serde_json::value::RawValue>(&t).is_ok();
            match Envelope::parse(&t) {
                Err(e) if e.code() == code::PARSE_ERROR => prop_assert!(!serde_ok, "valid JSON called a parse error: {} ({})", t, e),
                Err(_) => {}
                Ok(_) => prop_assert!(serde_ok, "invalid JSON accepted: {}", t),
            }
        }
    }

    #[test]
    fn valid_envelopes_round_trip_byte_for_byte(id in id(), method in "[a-z/]{1,16}", params in params(), pretty in any::<bool>()) {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let text = text_of(&message, pretty);
        let env = Envelope::parse(&text).unwrap();
        prop_assert_eq!(env.method(), method.as_str());
        // Each value is exactly the text serde_json reads there.
        let id_back: Value = serde_json::from_str(env.id.unwrap().get()).unwrap();
        prop_assert_eq!(&id_back, &id);
        let params_back: Value = serde_json::from_str(env.params.unwrap().get()).unwrap();
        prop_assert_eq!(params_back, Value::Object(params));
        // Parse + splice: swapping the id out and back in returns the original bytes.
        let mut sp = Splice::new();
        sp.replace(&text, env.id.unwrap().get(), "4711");
        let remapped = sp.apply(&text);
        let env2 = Envelope::parse(&remapped).unwrap();
        prop_assert_eq!(env2.id_text(), "4711");
        let mut back = Splice::new();
        back.replace(&remapped, env2.id.unwrap().get(), env.id.unwrap().get());
        prop_assert_eq!(back.apply(&remapped), text.clone());
        // A response carrying it as its result.
        let reply = text_of(&json!({"jsonrpc": "2.0", "id": 3, "result": message}), pretty);
        let env = Envelope::parse(&reply).unwrap();
        let result_back: Value = serde_json::from_str(env.result.unwrap().get()).unwrap();
        prop_assert_eq!(result_back, message);
    }

    #[test]
    fn invalid_shapes_are_refused_with_the_right_code(id in id(), params in params(), junk in json_value(), which in 0..6usize) {
        let mut m = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let not_object = if junk.is_object() { json!([junk.clone()]) } else { junk.clone() };
        let expected = match which {
            0 => { m["result"] = junk; code::INVALID_REQUEST }
            1 => { m["id"] = Value::Null; code::INVALID_REQUEST }
            2 => { m["_meta"] = junk; code::INVALID_REQUEST }
            3 => { m["params"]["_meta"] = not_object; code::INVALID_PARAMS }
            4 => { m["params"] = not_object; code::INVALID_PARAMS }
            _ => { m["jsonrpc"] = json!("1.0"); code::INVALID_REQUEST }
        };
        let text = serde_json::to_string(&m).unwrap();
        let e = Envelope::parse(&text).unwrap_err();
        prop_assert_eq!(e.code(), expected, "{} -> {}", text, e);
        if which != 1 {
            prop_assert_eq!(e.id_text(), serde_json::to_string(&m["id"]).unwrap());
        }
    }

    #[test]
    fn servers_file_entries_never_panic_and_bad_flags_name_the_field(
        entry in prop::collection::btree_map(
            prop_oneof![
                Just("command".to_string()), Just("url".to_string()), Just("type".to_string()),
                Just("args".to_string()), Just("env".to_string()), Just("disabled".to_string()),
                Just("enabled".to_string()), Just("timeout".to_string()),
                Just("max_result_bytes".to_string()), Just("session".to_string()),
                Just("protocol".to_string()), "[a-z]{1,5}"
            ],
            json_value(),
            0..6,
        ),
        flag in json_value(),
    ) {
        let _ = servers_file(&json!({"mcpServers": {"x": entry}}).to_string());
        if !flag.is_boolean() {
            let file = json!({"mcpServers": {"x": {"command": "c", "disabled": flag}}}).to_string();
            let e = servers_file(&file).unwrap_err();
            prop_assert_eq!(e.entry.as_deref(), Some("mcpServers.x.disabled"));
            prop_assert!(e.to_string().starts_with("f.json:1: mcpServers.x.disabled: must be true or false"), "{}", e);
        }
    }
}

/// The five shapes of the report (plus `"id": null`), as a fixed corpus.
#[test]
fn the_reported_shapes_are_refused() {
    let deep = format!("{}1{}", "[".repeat(127), "]".repeat(127));
    let corpus = [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{},"result":{}}"#.to_string(),
            code::INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":[]}}"#.to_string(),
            code::INVALID_PARAMS,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{},"_meta":{}}"#.to_string(),
            code::INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"s":"\ud800"}}}"#
                .to_string(),
            code::INVALID_PARAMS,
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"arguments":{{"a":{deep}}}}}}}"#
            ),
            code::INVALID_PARAMS,
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{}}"#.to_string(),
            code::INVALID_REQUEST,
        ),
    ];
    for (text, expected) in corpus {
        let e = Envelope::parse(&text).unwrap_err();
        assert_eq!(e.code(), expected, "{text}: {e}");
    }
}
