//! `deploy/nginx.conf`: read into directives (a small tokenizer for nginx's syntax) and
//! checked for plain round robin to the hub service and unbuffered, long-lived streams.

use std::collections::BTreeSet;

use super::{image_args, listen_ports, read};

#[derive(Debug)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Vec<Directive>,
}

fn tokens(source: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            ';' | '{' | '}' => tokens.push(c.to_string()),
            '"' | '\'' => {
                let word: String = chars.by_ref().take_while(|&x| x != c).collect();
                tokens.push(format!("\u{0}{word}")); // marked: a quoted word is never `;`
            }
            c if c.is_whitespace() => {}
            c => {
                let mut word = c.to_string();
                while let Some(n) = chars.next_if(|&n| !n.is_whitespace() && !";{}#".contains(n)) {
                    word.push(n);
                }
                tokens.push(word);
            }
        }
    }
    tokens
}

fn block(tokens: &mut std::vec::IntoIter<String>) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while let Some(t) = tokens.next() {
        match t.as_str() {
            ";" | "{" => {
                let block = if t == "{" { block(tokens) } else { Vec::new() };
                let mut w = std::mem::take(&mut words).into_iter();
                let name = w.next().expect("a directive name");
                out.push(Directive {
                    name,
                    args: w
                        .map(|a| a.trim_start_matches('\u{0}').to_string())
                        .collect(),
                    block,
                });
            }
            "}" => break,
            _ => words.push(t),
        }
    }
    assert!(words.is_empty(), "unterminated directive {words:?}");
    out
}

fn config() -> Vec<Directive> {
    block(&mut tokens(&read("deploy/nginx.conf")).into_iter())
}

fn find<'a>(ds: &'a [Directive], name: &str) -> Vec<&'a Directive> {
    ds.iter().filter(|d| d.name == name).collect()
}

/// Every `(listen port, upstream servers)` of the http block's servers.
pub(super) fn servers() -> Vec<(u16, Vec<String>)> {
    let config = config();
    let http = &find(&config, "http")[0].block;
    find(http, "server")
        .iter()
        .map(|s| {
            let port = find(&s.block, "listen")[0].args[0]
                .parse()
                .expect("listen PORT");
            let location = find(&s.block, "location")[0];
            let target = find(&location.block, "proxy_pass")[0].args[0]
                .trim_start_matches("http://")
                .to_string();
            let upstream = find(http, "upstream")
                .into_iter()
                .find(|u| u.args[0] == target)
                .expect("proxy_pass names an upstream");
            (
                port,
                find(&upstream.block, "server")
                    .iter()
                    .map(|d| d.args[0].clone())
                    .collect(),
            )
        })
        .collect()
}

fn seconds(v: &str) -> u64 {
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = n.parse().expect("a number");
    n * match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => panic!("unit {other}"),
    }
}

#[test]
fn the_nginx_config_balances_round_robin_and_streams_without_buffering() {
    let config = config();
    fn walk<'a>(ds: &'a [Directive], out: &mut Vec<&'a Directive>) {
        for d in ds {
            out.push(d);
            walk(&d.block, out);
        }
    }
    let mut all = Vec::new();
    walk(&config, &mut all);
    for method in [
        "ip_hash",
        "hash",
        "sticky",
        "least_conn",
        "least_time",
        "random",
    ] {
        assert!(
            !all.iter().any(|d| d.name == method),
            "`{method}` would pin or skew clients: round robin only"
        );
    }
    let (main, mcp) = listen_ports(&image_args());
    let servers = servers();
    let ports: BTreeSet<u16> = servers.iter().map(|s| s.0).collect();
    assert_eq!(ports, BTreeSet::from([main, mcp]));
    for (port, upstream) in &servers {
        let target = upstream
            .iter()
            .map(|s| s.split_whitespace().next().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(
            target,
            [format!("hub:{port}")],
            "port {port} goes to the hub service's same port"
        );
    }
    let http = &find(&config, "http")[0].block;
    for server in find(http, "server") {
        let location = &find(&server.block, "location")[0].block;
        let levels = [location, &server.block, http];
        let one = |name: &str| {
            levels
                .iter()
                .find_map(|l| find(l, name).into_iter().next())
                .unwrap_or_else(|| panic!("{name} is not set"))
                .args
                .clone()
        };
        assert_eq!(one("proxy_buffering"), ["off"]);
        assert_eq!(one("proxy_http_version"), ["1.1"]);
        assert!(
            seconds(&one("proxy_read_timeout")[0]) >= 600,
            "SSE streams need a long read timeout"
        );
        // proxy_set_header is inherited only by a level that sets none of its own.
        let headers = levels
            .iter()
            .map(|l| find(l, "proxy_set_header"))
            .find(|h| !h.is_empty())
            .expect("proxy_set_header");
        assert!(
            headers.iter().any(|h| h.args == ["Connection", ""]),
            "the Connection header is cleared"
        );
    }
}
