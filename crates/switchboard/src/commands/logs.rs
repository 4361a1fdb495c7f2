//! `switchboard logs`: the activity log of a running hub (`/api/v1/logs`), as a table or JSON,
//! optionally following new rows (`/api/v1/logs/stream`).

use anyhow::{Context, bail};
use serde_json::Value;

use super::servers::Api;
use crate::cli::{ApiArgs, LogsArgs};

fn filters(a: &LogsArgs) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    for (k, v) in [
        ("server", &a.server),
        ("tool", &a.tool),
        ("status", &a.status),
        ("since", &a.since),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    q
}

fn query_string(q: &[(&str, String)]) -> String {
    q.iter()
        .map(|(k, v)| format!("{k}={}", crate::url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) async fn run(api: &ApiArgs, args: &LogsArgs) -> anyhow::Result<()> {
    let client = Api {
        args: api,
        http: switchboard_upstream::http_client(),
    };
    let mut q = filters(args);
    q.push(("limit", args.limit.to_string()));
    let page = client
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/logs?{}", query_string(&q)),
            None,
        )
        .await?;
    let mut rows: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
    rows.reverse(); // oldest first, like a log
    if !api.json {
        println!(
            "{:<23} {:<14} {:<14} {:<28} {:<6} {:>9} {:<10} ERROR",
            "TIME", "PRINCIPAL", "SERVER", "METHOD/TARGET", "STATUS", "MS", "ERROR_TYPE"
        );
    }
    for r in &rows {
        print_row(r, api.json);
    }
    if args.follow {
        follow(api, &filters(args)).await?;
    }
    Ok(())
}

async fn follow(api: &ApiArgs, q: &[(&str, String)]) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/v1/logs/stream?{}",
        api.api_url.trim_end_matches('/'),
        query_string(q)
    );
    let mut req = reqwest::Client::new().get(&url);
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    if let Some(t) = &api.tenant {
        req = req.header("x-switchboard-tenant", t);
    }
    let mut resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the hub at {}", api.api_url))?;
    if !resp.status().is_success() {
        bail!(
            "{}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: "))
                && event.starts_with("event: activity")
                && let Ok(row) = serde_json::from_str::<Value>(data)
            {
                print_row(&row, api.json);
            }
        }
    }
    Ok(())
}

fn print_row(r: &Value, json: bool) {
    if json {
        println!("{r}");
        return;
    }
    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    let at = r["at"].as_i64().unwrap_or(0);
    let target = match r["target"].as_str() {
        Some(t) => format!("{} {t}", s("method")),
        None => s("method"),
    };
    println!(
        "{:<23} {:<14} {:<14} {:<28} {:<6} {:>9.1} {:<10} {}",
        time_of(at),
        s("principal"),
        s("server"),
        target,
        s("status"),
        r["duration_us"].as_i64().unwrap_or(0) as f64 / 1000.0,
        s("error_type"),
        r["error"].as_str().unwrap_or("")
    );
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) of Unix milliseconds.
fn time_of(ms: i64) -> String {
    let ((y, m, d), rem, milli) = switchboard_core::time::split_ms(ms);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{milli:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_print_as_utc() {
        assert_eq!(super::time_of(0), "1970-01-01 00:00:00.000");
        assert_eq!(super::time_of(1_709_210_096_789), "2024-02-29 12:34:56.789");
    }
}
