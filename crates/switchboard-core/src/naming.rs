//! Name rules: server names, exported `{server}{sep}{item}` names, deterministic shortening.
//!
//! Every exported name is valid under the MCP tool-name rules (`A-Z a-z 0-9 _ - .`), at most
//! [`MAX_EXPORTED_LEN`] characters, and unique within a catalog. A name that needs sanitising or
//! shortening gets a short hash of the original `(server, item)` pair, so the result depends only
//! on the pair and never on the order servers connected in.

use std::collections::HashMap;

/// Longest exported tool or prompt name.
pub const MAX_EXPORTED_LEN: usize = 64;
/// Longest server or group name.
pub const MAX_SERVER_NAME_LEN: usize = 40;
/// The name the hub's built-in local service is exported under.
pub const LOCAL_SERVICE: &str = "switchboard";
/// Default separator between server and item name.
pub const DEFAULT_SEPARATOR: &str = "__";

/// Checks a server or group name; the error says what is wrong.
pub fn validate_server_name(name: &str, separator: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.len() > MAX_SERVER_NAME_LEN {
        return Err(format!(
            "name is longer than {MAX_SERVER_NAME_LEN} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("name may contain only letters, digits, '_' and '-'".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("name must start with a letter or digit".into());
    }
    if !separator.is_empty() && name.contains(separator) {
        return Err(format!("name must not contain the separator {separator:?}"));
    }
    if name == LOCAL_SERVICE {
        return Err(format!(
            "{LOCAL_SERVICE:?} is reserved for the hub's local service"
        ));
    }
    Ok(())
}

/// Checks a separator: one to three of `_ - .`.
pub fn validate_separator(sep: &str) -> Result<(), String> {
    if sep.is_empty() || sep.len() > 3 || !sep.chars().all(|c| matches!(c, '_' | '-' | '.')) {
        return Err("separator must be 1 to 3 characters from '_', '-', '.'".into());
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// FNV-1a, 64 bit: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The plain exported name, if it is valid as it is.
fn plain_name(server: &str, sep: &str, item: &str) -> Option<String> {
    let full_len = server.len() + sep.len() + item.len();
    if item.is_empty() || full_len > MAX_EXPORTED_LEN || !item.chars().all(is_name_char) {
        return None;
    }
    let mut s = String::with_capacity(full_len);
    s.push_str(server);
    s.push_str(sep);
    s.push_str(item);
    Some(s)
}

/// The hashed form: sanitised, cut to fit, then `_` and 8 hex digits of the pair's hash.
/// A long item keeps its head and its tail (where names usually differ); a long server name
/// keeps its first 24 characters. `salt` is 0 for the first try and grows only if two hashed
/// names ever collide.
pub fn hashed_name(server: &str, sep: &str, item: &str, salt: u32) -> String {
    let salt_text = salt.to_string();
    let parts: Vec<&str> = if salt == 0 {
        vec![server, item]
    } else {
        vec![server, item, &salt_text]
    };
    let hash = format!("{:08x}", fnv1a(&parts) & 0xffff_ffff);
    let sanitized: String = item
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let budget = MAX_EXPORTED_LEN - 1 - hash.len();
    let server_part = if server.len() + sep.len() + sanitized.len() > budget {
        &server[..server.len().min(24)]
    } else {
        server
    };
    let item_budget = budget.saturating_sub(server_part.len() + sep.len());
    let item_part = if sanitized.len() > item_budget {
        // Names are ASCII after sanitising, so byte slicing is safe.
        let head = item_budget / 3;
        let tail = item_budget - head - 1;
        format!(
            "{}_{}",
            &sanitized[..head],
            &sanitized[sanitized.len() - tail..]
        )
    } else {
        sanitized
    };
    let mut s = String::with_capacity(MAX_EXPORTED_LEN);
    s.push_str(server_part);
    s.push_str(sep);
    s.push_str(&item_part);
    s.push('_');
    s.push_str(&hash);
    s
}

/// Assigns an exported name to every `(server, item)` pair, unique across the whole list.
///
/// Pairs are processed in sorted order so the result does not depend on input order: a pair
/// keeps its plain name unless an earlier pair (in sorted order) already took it.
pub fn assign_names(sep: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|&a, &b| pairs[a].cmp(&pairs[b]));
    // Plain names win over hashed ones: reserve every plain name first.
    let mut out = vec![String::new(); pairs.len()];
    let mut taken: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
    let mut pending = Vec::new();
    for &i in &order {
        let (server, item) = pairs[i];
        match plain_name(server, sep, item) {
            Some(name) if !taken.contains_key(&name) => {
                taken.insert(name.clone(), i);
                out[i] = name;
            }
            _ => pending.push(i),
        }
    }
    for i in pending {
        let (server, item) = pairs[i];
        let mut salt = 0;
        let name = loop {
            let candidate = hashed_name(server, sep, item, salt);
            if !taken.contains_key(&candidate) {
                break candidate;
            }
            salt += 1;
        };
        taken.insert(name.clone(), i);
        out[i] = name;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_prefixed() {
        let names = assign_names("__", &[("github", "create_issue"), ("fs", "read")]);
        assert_eq!(names, vec!["github__create_issue", "fs__read"]);
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let long = "a".repeat(80);
        let n1 = assign_names("__", &[("srv", &long)]);
        let n2 = assign_names("__", &[("other", "x"), ("srv", &long)]);
        assert_eq!(n1[0], n2[1]);
        assert!(n1[0].len() <= MAX_EXPORTED_LEN);
        assert!(n1[0].starts_with("srv__aaa"));
        let tailed = assign_names(
            "__",
            &[(
                "a-fairly-long-server-name-here",
                &format!("{}_create_issue", "x".repeat(60)),
            )],
        );
        assert!(tailed[0].len() <= MAX_EXPORTED_LEN, "{}", tailed[0]);
        assert!(tailed[0].contains("create_issue"), "{}", tailed[0]);
    }

    #[test]
    fn invalid_characters_are_sanitised_with_a_hash() {
        let n = assign_names("__", &[("s", "has space/slash")]);
        assert!(n[0].starts_with("s__has_space_slash_"), "{}", n[0]);
        assert!(n[0].chars().all(is_name_char));
    }

    #[test]
    fn collisions_never_produce_duplicates() {
        // "a_" + "__" + "b" and "a" + "__" + "_b" both spell "a___b".
        let pairs = [("a_", "b"), ("a", "_b")];
        let n = assign_names("__", &pairs);
        assert_ne!(n[0], n[1]);
        // Order of input does not change who keeps the plain name.
        let rev = assign_names("__", &[pairs[1], pairs[0]]);
        assert_eq!(n[0], rev[1]);
        assert_eq!(n[1], rev[0]);
    }

    #[test]
    fn server_names_are_checked() {
        assert!(validate_server_name("github-2", "__").is_ok());
        assert!(validate_server_name("", "__").is_err());
        assert!(validate_server_name("a__b", "__").is_err());
        assert!(validate_server_name("has space", "__").is_err());
        assert!(validate_server_name("switchboard", "__").is_err());
        assert!(validate_server_name("-x", "__").is_err());
    }
}
