//! A borrowed JSON-RPC 2.0 envelope and byte-exact editing of relayed messages.
//!
//! The hub never round-trips relayed traffic through a typed model. It reads the envelope
//! (`id`, `method`, `params`, `result`, `error`) as borrowed [`Raw`] slices that point into
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

/// How deeply objects and arrays may nest in one message; the message object itself is level 1.
///
/// Deeper messages are refused at once (`-32602` inside `params`, else `-32600`) instead of
/// being forwarded to an upstream whose own parser may drop them without an answer.
pub const MAX_DEPTH: usize = 64;

/// One JSON value of a message, as the exact text it occupies there (validated, never copied).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text, borrowed from the message.
    pub fn get(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The envelope of one JSON-RPC message, borrowed from its text.
///
/// [`Envelope::parse`] reads the whole text once, validating it as it goes: JSON syntax,
/// strings (no lone surrogate escapes), nesting depth ([`MAX_DEPTH`]) and the JSON-RPC 2.0
/// shape MCP relies on. Every value stays a slice of the original text.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// Always `"2.0"` once parsed.
    pub jsonrpc: Option<Cow<'a, str>>,
    /// Request or response id, as raw JSON text: a string or an integer (`None` for a
    /// notification, and for an error response whose id is `null`).
    pub id: Option<Raw<'a>>,
    /// Method name of a request or notification.
    pub method: Option<Cow<'a, str>>,
    /// Parameters, untouched (always an object).
    pub params: Option<Raw<'a>>,
    /// Result of a successful response, untouched.
    pub result: Option<Raw<'a>>,
    /// Error object of a failed response, untouched.
    pub error: Option<Raw<'a>>,
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

/// Why a text is not a usable JSON-RPC message: the JSON-RPC code to answer with, a message
/// naming the problem, and the message's id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    code: i64,
    message: Cow<'static, str>,
    id: Option<String>,
    reply: bool,
}

impl EnvelopeError {
    fn parse(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code: code::PARSE_ERROR,
            message: message.into(),
            id: None,
            reply: false,
        }
    }

    fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code: code::INVALID_REQUEST,
            message: message.into(),
            id: None,
            reply: false,
        }
    }

    /// The JSON-RPC error code for this failure: `-32700`, `-32600` or `-32602`.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// What is wrong, without the code's name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The id of the refused message as JSON text (a string or an integer), or `"null"` when
    /// it has none or it could not be read.
    pub fn id_text(&self) -> &str {
        self.id.as_deref().unwrap_or("null")
    }

    /// True when the refused message is a response (it has an id and no method), so the
    /// request it answers can be failed instead of left waiting.
    pub fn is_reply(&self) -> bool {
        self.reply
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.code {
            code::PARSE_ERROR => "parse error",
            code::INVALID_PARAMS => "invalid params",
            _ => "invalid request",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for EnvelopeError {}

impl<'a> Envelope<'a> {
    /// Parses and validates one message in a single pass. Batches (arrays) are refused as
    /// invalid; callers split them first.
    pub fn parse(text: &'a str) -> Result<Self, EnvelopeError> {
        let mut scan = Scan {
            b: text.as_bytes(),
            pos: 0,
            problem: None,
        };
        scan.ws();
        match scan.peek() {
            Some(b'{') => {}
            Some(b'[') => return Err(EnvelopeError::invalid("batches are not supported")),
            None => return Err(EnvelopeError::parse("empty message")),
            Some(_) => {
                // Distinguish "valid JSON but not an object" from "not JSON".
                return match scan.value(0, Ctx::Other).and_then(|()| scan.end()) {
                    Ok(()) => Err(EnvelopeError::invalid("a message must be a JSON object")),
                    Err(e) => Err(e),
                };
            }
        }
        let raw = scan.message(text)?;
        raw.validate()
    }

    /// Classifies the message.
    pub fn kind(&self) -> Result<Kind, EnvelopeError> {
        match (&self.method, self.id) {
            (Some(_), Some(_)) => Ok(Kind::Request),
            (Some(_), None) => Ok(Kind::Notification),
            (None, _) if self.result.is_some() || self.error.is_some() => Ok(Kind::Response),
            _ => Err(EnvelopeError::invalid(
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
        self.id.map(|r| r.get()).unwrap_or("null")
    }
}

/// Which part of the message a value belongs to, for the code and wording of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Member(&'static str),
    Params,
    Other,
}

impl Ctx {
    fn code(self) -> i64 {
        match self {
            Ctx::Params => code::INVALID_PARAMS,
            _ => code::INVALID_REQUEST,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ctx::Member(m) => m,
            Ctx::Params => "params",
            Ctx::Other => "a member",
        }
    }
}

/// One top-level member's value as found: its text, and for strings whether it had escapes.
#[derive(Clone, Copy)]
struct Found<'a> {
    text: &'a str,
    escaped: bool,
}

/// The top-level members the envelope cares about, before the shape checks.
#[derive(Default)]
struct Members<'a> {
    jsonrpc: Option<Found<'a>>,
    id: Option<Found<'a>>,
    method: Option<Found<'a>>,
    params: Option<Found<'a>>,
    result: Option<Found<'a>>,
    error: Option<Found<'a>>,
    problem: Option<(i64, Cow<'static, str>)>,
}

/// A string member's value, unescaped only when it has escapes.
fn string_of(found: Found<'_>) -> Option<Cow<'_, str>> {
    let t = found.text;
    if !t.starts_with('"') {
        return None;
    }
    if found.escaped {
        serde_json::from_str::<String>(t).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(&t[1..t.len() - 1]))
    }
}

/// True for a JSON integer literal (no fraction, no exponent).
fn is_integer(t: &str) -> bool {
    !t.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'))
}

impl<'a> Members<'a> {
    fn validate(self) -> Result<Envelope<'a>, EnvelopeError> {
        // The id, when it is a usable one, goes into any refusal so the caller can match it.
        let id_ok = |f: Found<'_>| match f.text.as_bytes()[0] {
            b'"' => true,
            b'-' | b'0'..=b'9' => is_integer(f.text),
            _ => false,
        };
        let id = self.id.filter(|f| id_ok(*f)).map(|f| f.text);
        let reply = self.method.is_none();
        let fail = |code: i64, message: Cow<'static, str>| EnvelopeError {
            code,
            message,
            id: id.map(str::to_string),
            reply,
        };
        let invalid = |m: &'static str| fail(code::INVALID_REQUEST, Cow::Borrowed(m));

        let jsonrpc = self.jsonrpc.and_then(string_of);
        if jsonrpc.as_deref() != Some("2.0") {
            return Err(invalid("jsonrpc must be \"2.0\""));
        }
        let id_null = self.id.is_some_and(|f| f.text == "null");
        if let Some(f) = self.id
            && !id_null
            && !id_ok(f)
        {
            return Err(invalid("id must be a string or an integer"));
        }
        let method = match self.method {
            Some(f) => match string_of(f) {
                Some(m) => Some(m),
                None => return Err(invalid("method must be a string")),
            },
            None => None,
        };
        if method.is_some() {
            if self.result.is_some() || self.error.is_some() {
                return Err(invalid(
                    "a request or notification (it has a method) must not carry result or error",
                ));
            }
            if id_null {
                return Err(invalid(
                    "id must be a string or an integer, not null (a notification has no id)",
                ));
            }
            if let Some(p) = self.params
                && !p.text.starts_with('{')
            {
                return Err(fail(
                    code::INVALID_PARAMS,
                    Cow::Borrowed("params must be an object"),
                ));
            }
        } else {
            match (self.result, self.error) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "a response must carry exactly one of result and error, not both",
                    ));
                }
                (None, None) => {
                    return Err(invalid("message has neither method nor result/error"));
                }
                (Some(_), None) if self.id.is_none() || id_null => {
                    return Err(invalid("a result must carry the id of its request"));
                }
                (None, Some(e)) if !e.text.starts_with('{') => {
                    return Err(invalid("error must be an object"));
                }
                _ => {}
            }
            if self.params.is_some() {
                return Err(invalid("a response must not carry params"));
            }
        }
        if let Some((code, message)) = self.problem {
            return Err(fail(code, message));
        }
        Ok(Envelope {
            jsonrpc,
            id: id.map(Raw),
            method,
            params: self.params.map(|f| Raw(f.text)),
            result: self.result.map(|f| Raw(f.text)),
            error: self.error.map(|f| Raw(f.text)),
        })
    }
}

/// The high bit of every byte of `chunk` (little-endian) that ends a run of plain string
/// bytes: `"`, `\` or a control character. The lowest set bit marks the first such byte
/// exactly (the borrows of the zero-byte trick only reach bytes above a true match).
#[inline]
fn special_mask(chunk: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let quote = zero_in(chunk ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(chunk ^ (ONES * u64::from(b'\\')));
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
    quote | backslash | control
}

/// A one-pass validating JSON scanner over a message's bytes.
struct Scan<'a> {
    b: &'a [u8],
    pos: usize,
    /// The first problem that does not stop the scan (so the id can still be read).
    problem: Option<(i64, Cow<'static, str>)>,
}

impl<'a> Scan<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn syntax(&self, what: &str) -> EnvelopeError {
        EnvelopeError::parse(format!("{what} at byte {}", self.pos))
    }

    fn note(&mut self, ctx: Ctx, message: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some((ctx.code(), Cow::Owned(message())));
        }
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &str) -> Result<(), EnvelopeError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(what))
        }
    }

    /// Only whitespace may follow the value.
    fn end(&mut self) -> Result<(), EnvelopeError> {
        self.ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters after the message")),
        }
    }

    /// The top-level object, its members recorded. `self.pos` is at its `{`.
    fn message(&mut self, text: &'a str) -> Result<Members<'a>, EnvelopeError> {
        let mut m = Members::default();
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                if self.peek() != Some(b'"') {
                    return Err(self.syntax("expected a member name"));
                }
                let key_start = self.pos;
                let key_escaped = self.string(Ctx::Other)?;
                let unescaped;
                let key: &str = if key_escaped {
                    unescaped = serde_json::from_str::<String>(&text[key_start..self.pos])
                        .unwrap_or_default();
                    &unescaped
                } else {
                    &text[key_start + 1..self.pos - 1]
                };
                self.ws();
                self.expect(b':', "expected ':'")?;
                self.ws();
                let (slot, ctx) = match key {
                    "jsonrpc" => (Some(&mut m.jsonrpc), Ctx::Member("jsonrpc")),
                    "id" => (Some(&mut m.id), Ctx::Member("id")),
                    "method" => (Some(&mut m.method), Ctx::Member("method")),
                    "params" => (Some(&mut m.params), Ctx::Params),
                    "result" => (Some(&mut m.result), Ctx::Member("result")),
                    "error" => (Some(&mut m.error), Ctx::Member("error")),
                    "_meta" => {
                        self.note(Ctx::Other, || {
                            "_meta is not allowed at the top level of a message (it belongs in params._meta)".into()
                        });
                        (None, Ctx::Member("_meta"))
                    }
                    _ => (None, Ctx::Other),
                };
                let start = self.pos;
                let escaped = if ctx == Ctx::Params && self.peek() == Some(b'{') {
                    self.object(1, ctx, true)?;
                    false
                } else if self.peek() == Some(b'"') {
                    self.string(ctx)?
                } else {
                    self.value(1, ctx)?;
                    false
                };
                let found = Found {
                    text: &text[start..self.pos],
                    escaped,
                };
                if let Some(slot) = slot {
                    if slot.is_some() {
                        let name = ctx.name();
                        self.note(Ctx::Other, || format!("duplicate member {name:?}"));
                    }
                    *slot = Some(found);
                }
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.syntax("expected ',' or '}'")),
                }
            }
        }
        self.end()?;
        m.problem = self.problem.take();
        Ok(m)
    }

    /// Any value, inside containers nested `depth` deep.
    fn value(&mut self, depth: usize, ctx: Ctx) -> Result<(), EnvelopeError> {
        match self.peek() {
            Some(b'"') => self.string(ctx).map(|_| ()),
            Some(b'{') => self.object(depth, ctx, false),
            Some(b'[') => self.array(depth, ctx),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax("expected a value")),
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Result<(), EnvelopeError> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    #[inline]
    fn number(&mut self) -> Result<(), EnvelopeError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.syntax("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.syntax("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax("invalid number"));
            }
        }
        Ok(())
    }

    /// Too deep: note it, then skip the container by bracket count (its strings still scanned).
    fn too_deep(&mut self, ctx: Ctx) -> Result<(), EnvelopeError> {
        let name = ctx.name();
        self.note(ctx, || {
            format!("{name} nests deeper than {MAX_DEPTH} levels of objects and arrays")
        });
        let mut open = 0usize;
        loop {
            match self.peek() {
                None => return Err(self.syntax("unexpected end of input")),
                Some(b'"') => {
                    self.string(ctx)?;
                    continue;
                }
                Some(b'{' | b'[') => open += 1,
                Some(b'}' | b']') => {
                    open -= 1;
                    if open == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
            self.pos += 1;
        }
    }

    /// An object at nesting level `depth + 1`. With `meta`, a `_meta` member must be an object.
    fn object(&mut self, depth: usize, ctx: Ctx, meta: bool) -> Result<(), EnvelopeError> {
        if depth >= MAX_DEPTH {
            return self.too_deep(ctx);
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a member name"));
            }
            let key_start = self.pos;
            let escaped = self.string(ctx)?;
            let is_meta = meta
                && if escaped {
                    serde_json::from_str::<String>(
                        std::str::from_utf8(&self.b[key_start..self.pos]).unwrap_or(""),
                    )
                    .is_ok_and(|k| k == "_meta")
                } else {
                    &self.b[key_start..self.pos] == b"\"_meta\""
                };
            self.ws();
            self.expect(b':', "expected ':'")?;
            self.ws();
            if is_meta && self.peek() != Some(b'{') {
                self.note(ctx, || "params._meta must be an object".into());
            }
            self.value(depth + 1, ctx)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or '}'")),
            }
        }
    }

    /// An array at nesting level `depth + 1`.
    fn array(&mut self, depth: usize, ctx: Ctx) -> Result<(), EnvelopeError> {
        if depth >= MAX_DEPTH {
            return self.too_deep(ctx);
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth + 1, ctx)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or ']'")),
            }
        }
    }

    /// A string; `self.pos` is at its opening quote. Returns whether it has escapes.
    #[inline]
    fn string(&mut self, ctx: Ctx) -> Result<bool, EnvelopeError> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            // Skip plain bytes eight at a time, landing exactly on the first special one.
            loop {
                match self.b.get(self.pos..self.pos + 8) {
                    Some(chunk) => {
                        let mask = special_mask(u64::from_le_bytes(
                            chunk.try_into().expect("eight bytes"),
                        ));
                        if mask != 0 {
                            self.pos += (mask.trailing_zeros() / 8) as usize;
                            break;
                        }
                        self.pos += 8;
                    }
                    None => {
                        while let Some(c) = self.peek() {
                            if c == b'"' || c == b'\\' || c < 0x20 {
                                break;
                            }
                            self.pos += 1;
                        }
                        break;
                    }
                }
            }
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    self.escape(ctx)?;
                }
                Some(_) => return Err(self.syntax("control character in a string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, EnvelopeError> {
        let mut v: u16 = 0;
        for i in 0..4 {
            let d = match self.b.get(self.pos + i) {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.syntax("invalid \\u escape")),
            };
            v = (v << 4) | u16::from(d);
        }
        self.pos += 4;
        Ok(v)
    }

    /// One escape; `self.pos` is just after its backslash.
    fn escape(&mut self, ctx: Ctx) -> Result<(), EnvelopeError> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                let lone = match unit {
                    0xD800..=0xDBFF => {
                        if self.b[self.pos..].starts_with(b"\\u") {
                            let save = self.pos;
                            self.pos += 2;
                            let low = self.hex4()?;
                            if (0xDC00..=0xDFFF).contains(&low) {
                                false
                            } else {
                                self.pos = save;
                                true
                            }
                        } else {
                            true
                        }
                    }
                    0xDC00..=0xDFFF => true,
                    _ => false,
                };
                if lone {
                    let name = ctx.name();
                    self.note(ctx, || {
                        format!(
                            "{name} holds a string with a lone surrogate escape (\\u{unit:04x}); strings must be valid Unicode"
                        )
                    });
                }
                Ok(())
            }
            _ => Err(self.syntax("invalid escape in a string")),
        }
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
    let range = member_span(text, obj, key)?;
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..range.start]);
    out.push_str(&text[range.end..]);
    Some(out)
}

/// The bytes of `text` that removing member `key` of the JSON object `obj` (a slice of
/// `text`) takes out: the member and the comma that separates it from a neighbour, so a
/// [`Splice`] can remove it along with other edits. `None` when the member is absent.
pub fn member_span(text: &str, obj: &str, key: &str) -> Option<Range<usize>> {
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
    Some(start..end)
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

    /// The code and message a text is refused with.
    fn refusal(text: &str) -> (i64, String, String) {
        let e = Envelope::parse(text).expect_err(text);
        (e.code(), e.to_string(), e.id_text().to_string())
    }

    #[test]
    fn rejects_bad_envelopes() {
        assert_eq!(refusal("{nope").0, code::PARSE_ERROR);
        assert_eq!(refusal("").0, code::PARSE_ERROR);
        assert_eq!(refusal("[1]").0, code::INVALID_REQUEST);
        assert_eq!(refusal("42").0, code::INVALID_REQUEST);
        assert_eq!(refusal("4 2").0, code::PARSE_ERROR);
        assert_eq!(
            refusal(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":1}"#).0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":1,"method":5}"#).0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":1,"method":"x"} x"#).0,
            code::PARSE_ERROR
        );
    }

    #[test]
    fn a_request_carrying_a_result_is_an_invalid_request_naming_it() {
        let (code, msg, id) =
            refusal(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","result":{}}"#);
        assert_eq!(code, code::INVALID_REQUEST);
        assert!(msg.contains("must not carry result or error"), "{msg}");
        assert_eq!(id, "7");
    }

    #[test]
    fn params_meta_that_is_not_an_object_is_invalid_params() {
        let (code, msg, id) = refusal(
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","_meta":"no"}}"#,
        );
        assert_eq!(code, code::INVALID_PARAMS);
        assert!(msg.contains("params._meta must be an object"), "{msg}");
        assert_eq!(id, r#""a""#);
        // Only params' own _meta is checked: deeper `_meta` keys are data.
        Envelope::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"_meta":5}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn a_top_level_meta_is_an_invalid_request() {
        let (code, msg, id) = refusal(r#"{"jsonrpc":"2.0","id":3,"method":"ping","_meta":{}}"#);
        assert_eq!(code, code::INVALID_REQUEST);
        assert!(
            msg.contains("_meta is not allowed at the top level"),
            "{msg}"
        );
        assert_eq!(id, "3");
    }

    #[test]
    fn a_lone_surrogate_escape_is_refused_and_a_pair_is_not() {
        let (code, msg, id) = refusal(
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"e","arguments":{"t":"\ud800"}}}"#,
        );
        assert_eq!(code, code::INVALID_PARAMS);
        assert!(msg.contains("lone surrogate"), "{msg}");
        assert_eq!(id, "9");
        for bad in [r#""\udc00""#, r#""\ud800\u0041""#, r#""x\udbff""#] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"a":{bad}}}}}"#);
            assert_eq!(refusal(&text).0, code::INVALID_PARAMS, "{text}");
        }
        let text = r#"{"jsonrpc":"2.0","id":1,"result":{"a":"\ud83d\ude00 \u00e9"}}"#;
        assert_eq!(
            Envelope::parse(text).unwrap().result.unwrap().get(),
            r#"{"a":"\ud83d\ude00 \u00e9"}"#
        );
        // Outside params, the same string is an invalid request.
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":1,"method":"\ud800"}"#).0,
            code::INVALID_REQUEST
        );
    }

    fn nested(levels: usize) -> String {
        // `arguments` is `levels` objects deep; the whole message nests levels + 2 deep.
        let mut s = String::from("1");
        for _ in 0..levels {
            s = format!(r#"{{"a":{s}}}"#);
        }
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"x","arguments":{s}}}}}"#
        )
    }

    #[test]
    fn nesting_is_limited_to_sixty_four_levels() {
        Envelope::parse(&nested(MAX_DEPTH - 2)).expect("64 levels are fine");
        for levels in [MAX_DEPTH - 1, 127, 5000] {
            let (code, msg, id) = refusal(&nested(levels));
            assert_eq!(code, code::INVALID_PARAMS, "{levels}");
            assert!(msg.contains("deeper than 64"), "{msg}");
            assert_eq!(id, "2");
        }
        let deep_result = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{}1{}}}"#,
            "[".repeat(64),
            "]".repeat(64)
        );
        assert_eq!(refusal(&deep_result).0, code::INVALID_REQUEST);
        // Arrays count like objects, and a broken deep text is still a parse error.
        assert_eq!(
            refusal(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{}"#,
                "[".repeat(100)
            ))
            .0,
            code::PARSE_ERROR
        );
    }

    #[test]
    fn a_null_id_is_an_invalid_request_not_a_notification() {
        let (code, msg, id) =
            refusal(r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{}}"#);
        assert_eq!(code, code::INVALID_REQUEST);
        assert!(msg.contains("not null"), "{msg}");
        assert_eq!(id, "null");
        // An error response may carry a null id (the request's id could not be read).
        let e =
            Envelope::parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#)
                .unwrap();
        assert_eq!(e.kind().unwrap(), Kind::Response);
        assert_eq!(e.id_text(), "null");
    }

    #[test]
    fn ids_are_strings_or_integers() {
        for id in ["1.5", "1e3", "{}", "[1]", "true"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let (code, msg, _) = refusal(&text);
            assert_eq!(code, code::INVALID_REQUEST, "{text}");
            assert!(msg.contains("id must be a string or an integer"), "{msg}");
        }
        for id in ["0", "-12", "\"x\"", "123456789012345678901234567890"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert_eq!(Envelope::parse(&text).unwrap().id_text(), id);
        }
    }

    #[test]
    fn responses_carry_exactly_one_of_result_and_error() {
        let (code, msg, _) =
            refusal(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#);
        assert_eq!(code, code::INVALID_REQUEST);
        assert!(msg.contains("exactly one of result and error"), "{msg}");
        assert!(
            Envelope::parse(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#)
                .unwrap_err()
                .is_reply()
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","result":{}}"#).0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refusal(r#"{"jsonrpc":"2.0","id":1,"error":"bad"}"#).0,
            code::INVALID_REQUEST
        );
    }

    #[test]
    fn params_must_be_an_object() {
        for p in ["[1]", "5", "\"x\"", "null"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{p}}}"#);
            let (code, msg, id) = refusal(&text);
            assert_eq!(code, code::INVALID_PARAMS, "{text}");
            assert!(msg.contains("params must be an object"), "{msg}");
            assert_eq!(id, "1");
        }
    }

    #[test]
    fn duplicate_envelope_members_are_refused() {
        let (code, msg, _) = refusal(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#);
        assert_eq!(code, code::INVALID_REQUEST);
        assert!(msg.contains("duplicate member \"id\""), "{msg}");
    }

    #[test]
    fn escaped_member_names_and_methods_are_read() {
        let e = Envelope::parse(r#"{"json\u0072pc":"2.0","id":1,"method":"tools\/list"}"#).unwrap();
        assert_eq!(e.method(), "tools/list");
    }

    #[test]
    fn values_are_the_exact_bytes_of_the_text() {
        let text = "{ \"jsonrpc\" : \"2.0\" ,\"id\" :  -3 , \"method\":\"x\",\"params\" : { \"k\" : [ 1.50e+3 , true , null ] } , \"x-extra\":{}}\n";
        let e = Envelope::parse(text).unwrap();
        assert_eq!(e.id.unwrap().get(), "-3");
        assert_eq!(
            e.params.unwrap().get(),
            "{ \"k\" : [ 1.50e+3 , true , null ] }"
        );
    }

    #[test]
    fn syntax_errors_are_parse_errors() {
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":01}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1.}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":-}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":tru}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[1,]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1,}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\q"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\u12"}}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":\"tab\there\"}}",
            r#"{"jsonrpc":"2.0","id":1,"method":"x""#,
        ] {
            assert_eq!(refusal(bad).0, code::PARSE_ERROR, "{bad}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
        }
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
