//! The dashboard's files, embedded in the binary: the HTML shell (rendered with the base path),
//! the ES modules, the stylesheet and the icon, each served with a strict
//! Content-Security-Policy and a content-hash `ETag`.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// No inline script or style, nothing from another origin; images may be `data:` (tool
/// results); the page cannot be framed.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// `(name, content type, bytes)` of every file under `/ui/`.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../ui/app.js")),
    ("api.js", JS, include_str!("../../ui/api.js")),
    ("dom.js", JS, include_str!("../../ui/dom.js")),
    ("schemaform.js", JS, include_str!("../../ui/schemaform.js")),
    ("overview.js", JS, include_str!("../../ui/overview.js")),
    ("servers.js", JS, include_str!("../../ui/servers.js")),
    ("groups.js", JS, include_str!("../../ui/groups.js")),
    ("playground.js", JS, include_str!("../../ui/playground.js")),
    ("activity.js", JS, include_str!("../../ui/activity.js")),
    ("sessions.js", JS, include_str!("../../ui/sessions.js")),
    ("access.js", JS, include_str!("../../ui/access.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../ui/icon.svg"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

const SHELL: &str = include_str!("../../ui/index.html");

/// Each file's `ETag`, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(_, _, body)| etag(body.as_bytes()))
        .collect()
});

fn etag(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn shell_html(base_path: &str) -> String {
    SHELL.replace("{{base}}", &escape_html(base_path))
}

/// The HTML shell, its `<base href>` set to where the hub is served.
pub(crate) fn shell(base_path: &str) -> Response {
    let body = shell_html(base_path);
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    harden(resp.headers_mut());
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Headers every dashboard response carries.
pub(crate) fn harden(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `GET /ui/{file}`: an embedded file, or 404; `304` when the `ETag` matches.
pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let (_, ctype, body) = FILES[i];
    let tag = &ETAGS[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, ctype)], body).into_response()
    };
    let h = resp.headers_mut();
    harden(h);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape_html("/hub/"), "/hub/");
        assert_eq!(escape_html("é✓"), "é✓");
    }

    #[test]
    fn the_shell_has_no_inline_script_or_style() {
        let lower = SHELL.to_ascii_lowercase();
        assert!(lower.contains("<base href=\"{{base}}\">"));
        for bad in [
            "<script>",
            "style=",
            "<style",
            "onload=",
            "onclick=",
            "javascript:",
        ] {
            assert!(!lower.contains(bad), "shell contains {bad}");
        }
        for (name, ctype, body) in FILES {
            if ctype.starts_with("text/javascript") {
                assert!(!body.contains("innerHTML"), "{name} uses innerHTML");
                assert!(!body.contains("eval("), "{name} uses eval");
            }
        }
    }

    #[test]
    fn base_path_is_escaped_into_the_shell() {
        let html = shell_html("/a\"><script>x</script>/");
        assert!(html.contains("<base href=\"/a&quot;&gt;&lt;script&gt;x&lt;/script&gt;/\">"));
        assert!(!html.contains("<script>x"));
        let resp = shell("/hub/");
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"));
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }
}
