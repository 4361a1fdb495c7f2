//! The trace context an upstream call carries: its `traceparent` formatted once, spliced
//! into `params._meta` by the same edit list that rewrites the request's id and name, and
//! sent again as HTTP headers.

use switchboard_core::jsonrpc::{Fields, Splice, object_append_point, quote, span_of};

use super::TraceContext;

/// `00-{trace id}-{span id}-{flags}`, always 55 bytes.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// A `traceparent` formatted into a fixed buffer.
#[derive(Clone, Copy)]
pub(crate) struct Traceparent([u8; TRACEPARENT_LEN]);

impl Traceparent {
    /// The `traceparent` naming `ctx`'s span.
    pub(crate) fn of(ctx: &TraceContext) -> Traceparent {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut b = [b'-'; TRACEPARENT_LEN];
        b[0] = b'0';
        b[1] = b'0';
        let ids = ctx.trace_id.iter().zip((3..35).step_by(2));
        let ids = ids.chain(ctx.span_id.iter().zip((36..52).step_by(2)));
        for (byte, at) in ids {
            b[at] = DIGITS[usize::from(byte >> 4)];
            b[at + 1] = DIGITS[usize::from(byte & 15)];
        }
        b[53] = b'0';
        b[54] = if ctx.sampled { b'1' } else { b'0' };
        Traceparent(b)
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a traceparent is ASCII")
    }
}

/// What one upstream call carries of its trace context.
pub(crate) struct Outgoing<'a> {
    traceparent: Traceparent,
    tracestate: Option<&'a str>,
}

impl<'a> Outgoing<'a> {
    /// The context `ctx` (a CLIENT span's, or the server span's own) as sent upstream.
    pub(crate) fn of(ctx: &'a TraceContext) -> Outgoing<'a> {
        Outgoing {
            traceparent: Traceparent::of(ctx),
            tracestate: ctx.tracestate.as_deref(),
        }
    }

    /// The `traceparent` (and `tracestate`) HTTP headers.
    pub(crate) fn headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::with_capacity(2);
        headers.push((
            "traceparent".to_string(),
            self.traceparent.as_str().to_string(),
        ));
        if let Some(ts) = self.tracestate {
            headers.push(("tracestate".to_string(), ts.to_string()));
        }
        headers
    }

    /// Appends `"traceparent":"…"` and, with `with_state` and a `tracestate`, the latter's
    /// member to `out`.
    pub(crate) fn push_members(&self, out: &mut String, with_state: bool) {
        out.push_str(r#""traceparent":""#);
        out.push_str(self.traceparent.as_str());
        out.push('"');
        if let (true, Some(ts)) = (with_state, self.tracestate) {
            out.push_str(r#","tracestate":"#);
            out.push_str(&quote(ts));
        }
    }

    /// The members as one string, preceded by `prefix`.
    fn members(&self, prefix: &str, with_state: bool, suffix: &str) -> String {
        let state = self.tracestate.map_or(0, |ts| ts.len() + 16);
        let mut out = String::with_capacity(prefix.len() + 72 + state + suffix.len());
        out.push_str(prefix);
        self.push_members(&mut out, with_state);
        out.push_str(suffix);
        out
    }

    /// Adds to `splice` the edits that give the request `text` this context in
    /// `params._meta`: `params` is the raw params (a slice of `text`), `fields` its members
    /// when it is an object. A `_meta` without the keys gets them appended; an old
    /// `traceparent` is replaced, a client's own `tracestate` kept. Params that are not an
    /// object, or a `_meta` that is not one, are left alone.
    pub(crate) fn splice_request(
        &self,
        splice: &mut Splice,
        text: &str,
        params: Option<&str>,
        fields: Option<&Fields<'_>>,
    ) {
        match (params, fields) {
            (None, _) => {
                if let Some((at, _)) = object_append_point(text) {
                    splice.insert(at, self.members(r#","params":{"_meta":{"#, true, "}}"));
                }
            }
            (Some(_), None) => {}
            (Some(params), Some(fields)) => match fields.get("_meta") {
                Some(meta) => self.splice_meta(splice, text, meta.get()),
                None => {
                    if let Some((at, has)) = object_append_point(params) {
                        let prefix = if has { r#","_meta":{"# } else { r#""_meta":{"# };
                        let start = span_of(text, params).start;
                        splice.insert(start + at, self.members(prefix, true, "}"));
                    }
                }
            },
        }
    }

    /// Adds to `splice` the edits that put this context into the `_meta` object `meta` (a
    /// slice of `text`).
    pub(crate) fn splice_meta(&self, splice: &mut Splice, text: &str, meta: &str) {
        let Some(fields) = Fields::parse(meta) else {
            return;
        };
        let has_state = fields.get("tracestate").is_some();
        let start = span_of(text, meta).start;
        match fields.get("traceparent") {
            Some(old) => {
                let mut quoted = String::with_capacity(TRACEPARENT_LEN + 2);
                quoted.push('"');
                quoted.push_str(self.traceparent.as_str());
                quoted.push('"');
                splice.replace(text, old.get(), quoted);
                if !has_state
                    && let Some(ts) = self.tracestate
                    && let Some((at, _)) = object_append_point(meta)
                {
                    splice.insert(start + at, format!(r#","tracestate":{}"#, quote(ts)));
                }
            }
            None => {
                if let Some((at, has)) = object_append_point(meta) {
                    let prefix = if has { "," } else { "" };
                    splice.insert(start + at, self.members(prefix, !has_state, ""));
                }
            }
        }
    }

    /// The `_meta` object `meta` (built by the hub, not a slice of the request) with this
    /// context in it; unchanged when it is not an object.
    pub(crate) fn in_meta(&self, meta: String) -> String {
        let mut splice = Splice::new();
        self.splice_meta(&mut splice, &meta, &meta);
        if splice.is_empty() {
            meta
        } else {
            splice.apply(&meta)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn ctx(state: Option<&str>) -> TraceContext {
        TraceContext::parse(TP, state).unwrap()
    }

    /// `text` as the upstream gets it, with the id replaced (as `forward` does) so the
    /// context's edits are shown to sit beside others in one splice.
    fn spliced(text: &str, ctx: &TraceContext) -> String {
        let request = Fields::parse(text).unwrap();
        let params = request.get("params").map(|p| p.get());
        let fields = params.and_then(Fields::parse);
        let mut splice = Splice::new();
        splice.replace(text, request.get("id").unwrap().get(), "7");
        Outgoing::of(ctx).splice_request(&mut splice, text, params, fields.as_ref());
        splice.apply(text)
    }

    #[test]
    fn traceparents_are_formatted_in_place() {
        let mut c = ctx(None);
        assert_eq!(Traceparent::of(&c).as_str(), TP);
        c.sampled = false;
        assert_eq!(Traceparent::of(&c).as_str(), TP.replace("-01", "-00"));
        assert_eq!(
            Outgoing::of(&ctx(Some("a=b"))).headers(),
            vec![
                ("traceparent".to_string(), TP.to_string()),
                ("tracestate".to_string(), "a=b".to_string())
            ]
        );
        assert_eq!(Outgoing::of(&ctx(None)).headers().len(), 1);
    }

    #[test]
    fn a_request_without_meta_gets_one() {
        let with_state = ctx(Some("a=b"));
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
                &with_state
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"x","_meta":{{"traceparent":"{TP}","tracestate":"a=b"}}}}}}"#
            )
        );
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{ }}"#,
                &ctx(None)
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{{ "_meta":{{"traceparent":"{TP}"}}}}}}"#
            )
        );
        // No params at all, the id last: the params member goes after the new id.
        assert_eq!(
            spliced(r#"{"jsonrpc":"2.0","method":"x","id":1}"#, &with_state),
            format!(
                r#"{{"jsonrpc":"2.0","method":"x","id":7,"params":{{"_meta":{{"traceparent":"{TP}","tracestate":"a=b"}}}}}}"#
            )
        );
    }

    #[test]
    fn a_clients_meta_keeps_its_other_keys() {
        let c = ctx(Some("a=b"));
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":5}}}"#,
                &c
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{{"_meta":{{"progressToken":5,"traceparent":"{TP}","tracestate":"a=b"}}}}}}"#
            )
        );
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{}}}"#,
                &c
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{{"_meta":{{"traceparent":"{TP}","tracestate":"a=b"}}}}}}"#
            )
        );
        // The client's own tracestate stays, and no second one is added.
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"tracestate":"c=d","k":1}}}"#,
                &c
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{{"_meta":{{"tracestate":"c=d","k":1,"traceparent":"{TP}"}}}}}}"#
            )
        );
    }

    #[test]
    fn an_old_traceparent_is_replaced() {
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"old","progressToken":5}}}"#,
                &ctx(Some("a=b"))
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{{"_meta":{{"traceparent":"{TP}","progressToken":5,"tracestate":"a=b"}}}}}}"#
            )
        );
        assert_eq!(
            spliced(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"old","tracestate":"c=d"}}}"#,
                &ctx(Some("a=b"))
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"x","params":{{"_meta":{{"traceparent":"{TP}","tracestate":"c=d"}}}}}}"#
            )
        );
    }

    #[test]
    fn params_or_meta_that_are_not_objects_are_left_alone() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":"no"}}"#,
        ] {
            assert_eq!(
                spliced(text, &ctx(None)),
                text.replace(r#""id":1"#, r#""id":7"#)
            );
        }
    }

    #[test]
    fn a_meta_built_by_the_hub_gets_the_context() {
        let c = ctx(Some("a=b"));
        let out = Outgoing::of(&c);
        assert_eq!(
            out.in_meta(r#"{"progressToken":3}"#.to_string()),
            format!(r#"{{"progressToken":3,"traceparent":"{TP}","tracestate":"a=b"}}"#)
        );
        assert_eq!(out.in_meta(r#""x""#.to_string()), r#""x""#);
        let mut member = String::from(r#"{"k":1,"#);
        out.push_members(&mut member, true);
        assert_eq!(
            member,
            format!(r#"{{"k":1,"traceparent":"{TP}","tracestate":"a=b""#)
        );
    }
}
