//! `switchboard tenants|users|keys …`: identity management through a running hub's API.

use std::io::BufRead;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::servers::Api;
use crate::cli::{ApiArgs, KeysAction, TenantsAction, UsersAction};

fn client(args: &ApiArgs) -> Api<'_> {
    Api {
        args,
        http: switchboard_upstream::http_client(),
    }
}

/// Prints `rows` (objects) as aligned columns `cols`, or the whole value as JSON.
fn print(args: &ApiArgs, value: &Value, list: &str, cols: &[&str]) {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        return;
    }
    let rows = value[list].as_array().cloned().unwrap_or_default();
    let cell = |row: &Value, col: &str| match &row[col] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(cols.iter().map(|c| c.to_uppercase()).collect()));
    for r in &rows {
        println!("{}", line(cols.iter().map(|c| cell(r, c)).collect()));
    }
}

pub(crate) async fn tenants(args: &ApiArgs, action: &TenantsAction) -> anyhow::Result<()> {
    let api = client(args);
    match action {
        TenantsAction::List => {
            let v = api.send(Method::GET, "/api/v1/tenants", None).await?;
            print(args, &v, "tenants", &["name", "created_at"]);
        }
        TenantsAction::Add { name } => {
            let v = api
                .send(Method::POST, "/api/v1/tenants", Some(json!({"name": name})))
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        TenantsAction::Rm { name } => {
            api.send(Method::DELETE, &format!("/api/v1/tenants/{name}"), None)
                .await?;
            println!("removed tenant {name}");
        }
    }
    Ok(())
}

/// The new user's password: `SWITCHBOARD_NEW_PASSWORD`, else the first line of stdin (so it
/// never appears in the process list or shell history).
fn new_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("SWITCHBOARD_NEW_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("give the password in SWITCHBOARD_NEW_PASSWORD or on stdin");
    }
    Ok(password)
}

pub(crate) async fn users(args: &ApiArgs, action: &UsersAction) -> anyhow::Result<()> {
    let api = client(args);
    match action {
        UsersAction::List => {
            let v = api.send(Method::GET, "/api/v1/users", None).await?;
            print(
                args,
                &v,
                "users",
                &["id", "username", "role", "grants", "disabled", "tenant"],
            );
        }
        UsersAction::Add {
            username,
            role,
            grants,
        } => {
            let mut body = json!({"username": username, "password": new_password()?, "role": role});
            if !grants.is_empty() {
                body["grants"] = json!(grants);
            }
            let v = api.send(Method::POST, "/api/v1/users", Some(body)).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        UsersAction::Rm { id } => {
            api.send(Method::DELETE, &format!("/api/v1/users/{id}"), None)
                .await?;
            println!("removed user {id}");
        }
    }
    Ok(())
}

pub(crate) async fn keys(args: &ApiArgs, action: &KeysAction) -> anyhow::Result<()> {
    let api = client(args);
    match action {
        KeysAction::List => {
            let v = api.send(Method::GET, "/api/v1/keys", None).await?;
            print(
                args,
                &v,
                "keys",
                &[
                    "id",
                    "name",
                    "user_id",
                    "allow",
                    "expires_at",
                    "revoked_at",
                    "last_used_at",
                ],
            );
        }
        KeysAction::Create {
            name,
            user,
            allow,
            expires_in,
        } => {
            let mut body = json!({"name": name});
            if let Some(u) = user {
                body["user_id"] = json!(u);
            }
            if !allow.is_empty() {
                body["allow"] = json!(allow);
            }
            if let Some(s) = expires_in {
                body["expires_in_seconds"] = json!(s);
            }
            let v = api.send(Method::POST, "/api/v1/keys", Some(body)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", v["key"].as_str().unwrap_or_default());
                eprintln!(
                    "key {} created; it is shown only this once",
                    v["id"].as_str().unwrap_or_default()
                );
            }
        }
        KeysAction::Revoke { id } => {
            api.send(Method::DELETE, &format!("/api/v1/keys/{id}"), None)
                .await?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}
