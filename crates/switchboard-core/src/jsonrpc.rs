//! A borrowed JSON-RPC 2.0 envelope and byte-exact editing of relayed messages.
//!
//! The hub never round-trips relayed traffic through a typed model. It reads the envelope
//! (`id`, `method`, `params`, `result`, `error`) as borrowed [`RawValue`] slices that point into
//! the original text, and rewrites a message by splicing new bytes over the spans it must change.
//! Everything else (unknown fields, key order, number formatting) survives byte for byte.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Standard and MCP JSON-RPC error codes used by the hub.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters (also: unknown tool, resource not found in 2026-07-28).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Resource not found (2024-11-05 .. 2025-11-25).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// The request timed out (the code the reference SDKs use for it).
    pub const REQUEST_TIMEOUT: i64 = -32001;
}

/// The envelope of one JSON-RPC message, borrowed from its text.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// Must be `"2.0"`.
    #[serde(borrow, default)]
    pub jsonrpc: Option<Cow<'a, str>>,
    /// Request or response id, as raw JSON text.
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    /// Method name of a request or notification.
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    /// Parameters, untouched.
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
    /// Result of a successful response, untouched.
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    /// Error object of a failed response, untouched.
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

/// What a message is, by the fields it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `id` and `result` or `error`, no `method`.
    Response,
}

/// Why a text is not a usable JSON-RPC message.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON at all.
    #[error("parse error: {0}")]
    Parse(String),
    /// JSON, but not a JSON-RPC 2.0 message.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

impl EnvelopeError {
    /// The JSON-RPC error code for this failure.
    pub fn code(&self) -> i64 {
        match self {
            EnvelopeError::Parse(_) => code::PARSE_ERROR,
            EnvelopeError::Invalid(_) => code::INVALID_REQUEST,
        }
    }
}

impl<'a> Envelope<'a> {
    /// Parses the envelope of one message. Batches (arrays) are rejected as invalid.
    pub fn parse(text: &'a str) -> Result<Self, EnvelopeError> {
        let first = text.trim_start().as_bytes().first().copied();
        if first == Some(b'[') {
            return Err(EnvelopeError::Invalid("batches are not supported"));
        }
        if first != Some(b'{') {
            // Distinguish "valid JSON but not an object" from "not JSON".
            return match serde_json::from_str::<&RawValue>(text) {
                Ok(_) => Err(EnvelopeError::Invalid("a message must be a JSON object")),
                Err(e) => Err(EnvelopeError::Parse(e.to_string())),
            };
        }
        let env: Envelope<'a> = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                EnvelopeError::Invalid("malformed JSON-RPC envelope")
            } else {
                EnvelopeError::Parse(e.to_string())
            }
        })?;
        if env.jsonrpc.as_deref() != Some("2.0") {
            return Err(EnvelopeError::Invalid("jsonrpc must be \"2.0\""));
        }
        env.kind()?;
        Ok(env)
    }

    /// Classifies the message.
    pub fn kind(&self) -> Result<Kind, EnvelopeError> {
        match (&self.method, self.id) {
            (Some(_), Some(_)) => Ok(Kind::Request),
            (Some(_), None) => Ok(Kind::Notification),
            (None, Some(_)) if self.result.is_some() || self.error.is_some() => Ok(Kind::Response),
            (None, _) if self.error.is_some() => Ok(Kind::Response),
            _ => Err(EnvelopeError::Invalid(
                "message has neither method nor result/error",
            )),
        }
    }

    /// The method name, or `""`.
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// The raw id text, or `"null"`.
    pub fn id_text(&self) -> &'a str {
        self.id.map(RawValue::get).unwrap_or("null")
    }
}

/// Reads an id as an unsigned integer, accepting `5` and `"5"` (some servers stringify ids).
pub fn id_as_u64(raw: &str) -> Option<u64> {
    let t = raw.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t);
    t.parse().ok()
}

/// The fields of one JSON object in document order, each value borrowed from the text.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    /// `(key, value)` pairs in the order they appear.
    pub entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    /// Parses `raw` as an object; `None` when it is not one.
    pub fn parse(raw: &'a str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }

    /// The raw value of `key`, if present (first occurrence).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The value of `key` when it is a JSON string.
    pub fn get_str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key)
            .and_then(|v| serde_json::from_str::<Cow<'a, str>>(v.get()).ok())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Fields { entries })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Parses a JSON array into its borrowed elements; `None` when `raw` is not an array.
pub fn array_items(raw: &str) -> Option<Vec<&RawValue>> {
    serde_json::from_str::<Vec<&RawValue>>(raw).ok()
}

/// The byte range that `inner` (a slice borrowed from `outer`) occupies in `outer`.
///
/// Panics if `inner` does not point into `outer`; every caller derives `inner` from `outer`.
pub fn span_of(outer: &str, inner: &str) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    assert!(
        start + inner.len() <= outer.len(),
        "span_of: slice is not inside its text"
    );
    start..start + inner.len()
}

/// A list of replacements over one text, applied in one pass.
#[derive(Debug, Default)]
pub struct Splice {
    edits: Vec<(Range<usize>, String)>,
}

impl Splice {
    /// An empty edit list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the bytes of `inner` (borrowed from the spliced text) with `with`.
    pub fn replace(&mut self, outer: &str, inner: &str, with: impl Into<String>) -> &mut Self {
        self.edits.push((span_of(outer, inner), with.into()));
        self
    }

    /// Inserts `with` at byte offset `at`.
    pub fn insert(&mut self, at: usize, with: impl Into<String>) -> &mut Self {
        self.edits.push((at..at, with.into()));
        self
    }

    /// True when nothing is to change.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Applies the edits to `text`. Edits must not overlap.
    pub fn apply(mut self, text: &str) -> String {
        self.edits.sort_by_key(|(r, _)| r.start);
        let extra: usize = self.edits.iter().map(|(_, s)| s.len()).sum();
        let mut out = String::with_capacity(text.len() + extra);
        let mut pos = 0;
        for (range, with) in &self.edits {
            debug_assert!(range.start >= pos, "overlapping splice edits");
            out.push_str(&text[pos..range.start]);
            out.push_str(with);
            pos = range.end;
        }
        out.push_str(&text[pos..]);
        out
    }
}

/// Removes member `key` of the JSON object `obj` (a slice of `text`) from `text`, keeping
/// every other byte. Returns `None` when the member is absent.
pub fn remove_member(text: &str, obj: &str, key: &str) -> Option<String> {
    let fields = Fields::parse(obj)?;
    let index = fields.entries.iter().position(|(k, _)| k == key)?;
    let value = span_of(text, fields.entries[index].1.get());
    // The member starts at its key's opening quote: the last quote before the colon that
    // precedes the value.
    let before = &text[..value.start];
    let colon = before.rfind(':')?;
    let key_end = text[..colon].rfind('"')?;
    let key_start = text[..key_end].rfind('"')?;
    let (start, end) = if index + 1 < fields.entries.len() {
        // Not last: remove up to the next member's start (eat the following comma).
        let after = &text[value.end..];
        let comma = after.find(',')?;
        (key_start, value.end + comma + 1)
    } else if index > 0 {
        // Last but not first: remove the preceding comma.
        let comma = text[..key_start].rfind(',')?;
        (comma, value.end)
    } else {
        (key_start, value.end)
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.push_str(&text[end..]);
    Some(out)
}

/// Serialises a string as a JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`.
pub fn result_message(id: &str, result: &str) -> String {
    let mut s = String::with_capacity(id.len() + result.len() + 36);
    s.push_str(r#"{"jsonrpc":"2.0","id":"#);
    s.push_str(id);
    s.push_str(r#","result":"#);
    s.push_str(result);
    s.push('}');
    s
}

/// `{"jsonrpc":"2.0","id":<id>,"error":{"code":..,"message":..,"data"?:..}}`.
pub fn error_message(id: &str, code: i64, message: &str, data: Option<&str>) -> String {
    let mut s = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{}"#,
        quote(message)
    );
    if let Some(d) = data {
        s.push_str(r#","data":"#);
        s.push_str(d);
    }
    s.push_str("}}");
    s
}

/// `{"jsonrpc":"2.0","id":<id>,"method":..,"params"?:..}`.
pub fn request_message(id: &str, method: &str, params: Option<&str>) -> String {
    let mut s = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":{}"#, quote(method));
    if let Some(p) = params {
        s.push_str(r#","params":"#);
        s.push_str(p);
    }
    s.push('}');
    s
}

/// `{"jsonrpc":"2.0","method":..,"params"?:..}`.
pub fn notification_message(method: &str, params: Option<&str>) -> String {
    let mut s = format!(r#"{{"jsonrpc":"2.0","method":{}"#, quote(method));
    if let Some(p) = params {
        s.push_str(r#","params":"#);
        s.push_str(p);
    }
    s.push('}');
    s
}

/// The byte offset just inside the closing `}` of an object text, for appending a field.
/// Returns the offset and whether the object already has members (so a comma is needed).
pub fn object_append_point(obj: &str) -> Option<(usize, bool)> {
    let end = obj.trim_end();
    if !end.ends_with('}') {
        return None;
    }
    let close = end.len() - 1;
    let inner = obj[..close].trim_end();
    let has_members = !inner.trim_start().trim_start_matches('{').trim().is_empty();
    Some((close, has_members))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let req = Envelope::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert_eq!(req.kind().unwrap(), Kind::Request);
        let note =
            Envelope::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(note.kind().unwrap(), Kind::Notification);
        let resp = Envelope::parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(resp.kind().unwrap(), Kind::Response);
        assert_eq!(resp.id_text(), r#""a""#);
    }

    #[test]
    fn rejects_bad_envelopes() {
        assert!(matches!(
            Envelope::parse("{nope"),
            Err(EnvelopeError::Parse(_))
        ));
        assert!(matches!(
            Envelope::parse("[1]"),
            Err(EnvelopeError::Invalid(_))
        ));
        assert!(matches!(
            Envelope::parse("42"),
            Err(EnvelopeError::Invalid(_))
        ));
        assert!(matches!(
            Envelope::parse(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#),
            Err(EnvelopeError::Invalid(_))
        ));
        assert!(matches!(
            Envelope::parse(r#"{"jsonrpc":"2.0","id":1}"#),
            Err(EnvelopeError::Invalid(_))
        ));
        assert!(matches!(
            Envelope::parse(r#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            Err(EnvelopeError::Invalid(_))
        ));
    }

    #[test]
    fn splices_only_what_changes() {
        let text = r#"{"jsonrpc":"2.0", "id": 7 ,"method":"tools/call","params":{"name":"a__echo","x-vendor":{"k":[1,2.50]},"arguments":{"text":"hi"}}}"#;
        let env = Envelope::parse(text).unwrap();
        let params = Fields::parse(env.params.unwrap().get()).unwrap();
        let name = params.get("name").unwrap();
        let mut sp = Splice::new();
        sp.replace(text, env.id.unwrap().get(), "101")
            .replace(text, name.get(), quote("echo"));
        let out = sp.apply(text);
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0", "id": 101 ,"method":"tools/call","params":{"name":"echo","x-vendor":{"k":[1,2.50]},"arguments":{"text":"hi"}}}"#
        );
    }

    #[test]
    fn removes_members_anywhere() {
        let t = r#"{"jsonrpc":"2.0","id":1,"result":{"a":1, "resultType":"complete" ,"b":[2]}}"#;
        let env = Envelope::parse(t).unwrap();
        let r = env.result.unwrap().get();
        assert_eq!(
            remove_member(t, r, "resultType").unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"result":{"a":1, "b":[2]}}"#
        );
        let t = r#"{"result":{"a":1,"resultType":"complete"}}"#;
        let r = Fields::parse(t).unwrap().get("result").unwrap().get();
        assert_eq!(
            remove_member(t, r, "resultType").unwrap(),
            r#"{"result":{"a":1}}"#
        );
        let t = r#"{"result":{"resultType":"complete"}}"#;
        let r = Fields::parse(t).unwrap().get("result").unwrap().get();
        assert_eq!(
            remove_member(t, r, "resultType").unwrap(),
            r#"{"result":{}}"#
        );
        assert!(remove_member(t, r, "missing").is_none());
    }

    #[test]
    fn ids_read_as_numbers() {
        assert_eq!(id_as_u64("12"), Some(12));
        assert_eq!(id_as_u64("\"12\""), Some(12));
        assert_eq!(id_as_u64("\"x\""), None);
    }

    #[test]
    fn append_point_handles_empty_objects() {
        assert_eq!(object_append_point("{}"), Some((1, false)));
        assert_eq!(object_append_point("{ \"a\":1 }"), Some((8, true)));
    }
}
