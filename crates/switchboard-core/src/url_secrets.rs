//! Secrets carried inside a URL: every query value (`?api_key=…`) and a userinfo password
//! (`https://user:pw@host`) are treated like header values. These helpers find them, mask them
//! for display (names stay visible, values become a mask) and put stored values back where a
//! client sent a masked URL. Plain string work on the URL text, so everything else is kept
//! byte for byte.

/// Percent-encodes `s` for a URL path segment or query value: everything but RFC 3986's
/// unreserved characters becomes `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The byte ranges of every secret in `url`: the userinfo password and each non-empty query
/// value (the fragment is not sent, so it is left alone), paired with the key that names it
/// (`""` for the password).
fn secret_spans(url: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut spans = Vec::new();
    let end = url.find('#').unwrap_or(url.len());
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..end]
        .find(['/', '?'])
        .map_or(end, |i| authority_start + i);
    if let Some(at) = url[authority_start..authority_end].rfind('@') {
        let userinfo = authority_start..authority_start + at;
        if let Some(colon) = url[userinfo.clone()].find(':') {
            let start = userinfo.start + colon + 1;
            if start < userinfo.end {
                spans.push((String::new(), start..userinfo.end));
            }
        }
    }
    let Some(q) = url[..end].find('?') else {
        return spans;
    };
    let mut at = q + 1;
    for pair in url[q + 1..end].split('&') {
        if let Some(eq) = pair.find('=')
            && eq + 1 < pair.len()
        {
            spans.push((pair[..eq].to_string(), at + eq + 1..at + pair.len()));
        }
        at += pair.len() + 1;
    }
    spans
}

/// True when `url` carries a secret (a query value or a userinfo password).
pub fn url_has_secrets(url: &str) -> bool {
    !secret_spans(url).is_empty()
}

/// `url` with every query value and the userinfo password replaced by `mask`.
pub fn mask_url_secrets(url: &str, mask: &str) -> String {
    replace_url_secrets(url, |_| mask.to_string())
}

/// `url` with every query value and the userinfo password replaced by what `with` returns
/// for its key (the query parameter's name).
pub fn replace_url_secrets(url: &str, mut with: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(url.len());
    let mut last = 0;
    for (key, span) in secret_spans(url) {
        out.push_str(&url[last..span.start]);
        out.push_str(&with(&key));
        last = span.end;
    }
    out.push_str(&url[last..]);
    out
}

/// The URL up to its query, secrets masked: two URLs with the same one reach the same place.
fn destination(url: &str, mask: &str) -> String {
    let masked = mask_url_secrets(url, mask);
    masked
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `new` with each value that equals `mask` replaced by `old`'s value of the same key (the
/// n-th occurrence of a key takes the n-th stored one), so a client can send back the URL it
/// was shown. Only when `new` goes to the same place as `old` (scheme, host, port and path): a
/// stored secret never follows a URL to another server. A masked value with no stored
/// counterpart stays as it is.
pub fn restore_masked_url(new: &str, old: &str, mask: &str) -> String {
    if destination(new, mask) != destination(old, mask) {
        return new.to_string();
    }
    let stored = secret_spans(old);
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut out = String::with_capacity(new.len());
    let mut last = 0;
    for (key, span) in secret_spans(new) {
        let n = match seen.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((key.clone(), 0));
                0
            }
        };
        out.push_str(&new[last..span.start]);
        let value = &new[span.clone()];
        let restored = (value == mask)
            .then(|| stored.iter().filter(|(k, _)| *k == key).nth(n))
            .flatten()
            .map_or(value, |(_, s)| &old[s.clone()]);
        out.push_str(restored);
        last = span.end;
    }
    out.push_str(&new[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(percent_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(percent_encode(""), "");
    }

    const M: &str = "********";

    #[test]
    fn query_values_and_passwords_are_masked_and_names_kept() {
        let cases = [
            ("https://h/mcp", "https://h/mcp"),
            (
                "https://h/mcp?api_key=s3cr3t",
                "https://h/mcp?api_key=********",
            ),
            (
                "https://h/mcp?a=1&b=&c&d=x#frag=y",
                "https://h/mcp?a=********&b=&c&d=********#frag=y",
            ),
            (
                "https://u:pw@h:8/p?t=1",
                "https://u:********@h:8/p?t=********",
            ),
            ("https://u@h/p", "https://u@h/p"),
            ("http://h?k=v=w", "http://h?k=********"),
        ];
        for (url, masked) in cases {
            assert_eq!(mask_url_secrets(url, M), masked, "{url}");
            assert_eq!(url_has_secrets(url), url != masked, "{url}");
        }
    }

    #[test]
    fn masked_values_are_restored_by_key_and_changed_ones_kept() {
        let old = "https://h/mcp?api_key=s3cr3t&team=a&team=b";
        let shown = mask_url_secrets(old, M);
        assert_eq!(restore_masked_url(&shown, old, M), old);
        assert_eq!(
            restore_masked_url("https://h/mcp?api_key=new&team=********", old, M),
            "https://h/mcp?api_key=new&team=a"
        );
        assert_eq!(
            restore_masked_url("https://h/mcp?x=********", old, M),
            "https://h/mcp?x=********"
        );
        // A stored secret never follows the URL to another server or path.
        for elsewhere in [
            "https://evil/mcp?api_key=********",
            "https://h/other?api_key=********",
            "http://h/mcp?api_key=********",
        ] {
            assert_eq!(restore_masked_url(elsewhere, old, M), elsewhere);
        }
        assert_eq!(
            restore_masked_url("https://u:********@h/", "https://u:pw@h/", M),
            "https://u:pw@h/"
        );
    }
}
