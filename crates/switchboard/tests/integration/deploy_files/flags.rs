//! Every flag and environment variable the deploy files hand to `switchboard serve`,
//! checked against the built binary's `serve --help` (names, and values of flags with a
//! fixed set of choices).

use std::collections::BTreeMap;
use std::process::Command;

use super::kubernetes::{container, container_args};
use super::{compose_env_examples, compose_hub_args, dockerfile, env_file, image_args, load, text};
use crate::common::switchboard_bin;

/// A `serve` option from `--help`: whether it takes a value, its allowed values, its variable.
#[derive(Debug, Default)]
struct Opt {
    value: bool,
    choices: Vec<String>,
    env: Option<String>,
}

fn serve_help() -> BTreeMap<String, Opt> {
    let out = Command::new(switchboard_bin())
        .args(["serve", "--help"])
        .output()
        .expect("run switchboard");
    assert!(out.status.success(), "serve --help failed");
    let mut opts: BTreeMap<String, Opt> = BTreeMap::new();
    let (mut current, mut in_values) = (String::new(), false);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let t = line.trim();
        let option = t.strip_prefix("--").or_else(|| {
            t.get(2..)
                .filter(|_| t.starts_with('-'))
                .and_then(|r| r.strip_prefix(", --"))
        });
        if let Some(long) = option {
            current = long.split([' ', '=']).next().unwrap().to_string();
            opts.entry(current.clone()).or_default().value = t.contains('<');
            in_values = false;
        } else if t == "Possible values:" {
            in_values = true;
        } else if let (true, Some(v)) = (in_values, t.strip_prefix("- ")) {
            opts.get_mut(&current)
                .unwrap()
                .choices
                .push(v.split(':').next().unwrap().to_string());
        } else if let Some(list) = t.strip_prefix("[possible values: ") {
            let list = list.trim_end_matches(']').split(", ").map(str::to_string);
            opts.get_mut(&current).unwrap().choices.extend(list);
        } else if let Some(env) = t.strip_prefix("[env: ") {
            opts.get_mut(&current).unwrap().env =
                Some(env.split(['=', ']']).next().unwrap().to_string());
            in_values = false;
        }
    }
    // The reader must still understand the help text, or every check below would pass.
    let auth = opts.get("mcp-auth").expect("--mcp-auth in serve --help");
    assert_eq!(auth.choices, ["optional", "required"], "{opts:?}");
    assert_eq!(auth.env.as_deref(), Some("SWITCHBOARD_MCP_AUTH"));
    assert!(
        opts.get("on-tool-change")
            .is_some_and(|o| o.choices.len() == 3),
        "{opts:?}"
    );
    opts
}

fn check_args(
    help: &BTreeMap<String, Opt>,
    args: &[String],
    origin: &str,
    problems: &mut Vec<String>,
) {
    let mut it = args.iter();
    if it.next().map(String::as_str) != Some("serve") {
        problems.push(format!("{origin}: does not run `serve`: {args:?}"));
    }
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            problems.push(format!("{origin}: stray argument {arg}"));
            continue;
        };
        let (name, inline) = flag
            .split_once('=')
            .map_or((flag, None), |(n, v)| (n, Some(v.to_string())));
        let Some(opt) = help.get(name) else {
            problems.push(format!("{origin}: serve has no --{name}"));
            continue;
        };
        let value = if opt.value {
            inline.or_else(|| it.next().cloned())
        } else {
            None
        };
        if let Some(v) = value.filter(|v| !opt.choices.is_empty() && !opt.choices.contains(v)) {
            problems.push(format!(
                "{origin}: --{name} {v} is not one of {:?}",
                opt.choices
            ));
        }
    }
}

fn check_env(
    help: &BTreeMap<String, Opt>,
    name: &str,
    value: Option<&str>,
    origin: &str,
    problems: &mut Vec<String>,
) {
    match help.values().find(|o| o.env.as_deref() == Some(name)) {
        None => problems.push(format!("{origin}: serve reads no variable {name}")),
        Some(o) => {
            if let Some(v) =
                value.filter(|v| !o.choices.is_empty() && !o.choices.iter().any(|c| c == v))
            {
                problems.push(format!(
                    "{origin}: {name}={v} is not one of {:?}",
                    o.choices
                ));
            }
        }
    }
}

#[test]
fn every_flag_and_variable_the_deploy_files_pass_is_one_serve_accepts() {
    let help = serve_help();
    let mut problems = Vec::new();
    let mut env: Vec<(String, Option<String>, &str)> = Vec::new();

    check_args(&help, &image_args(), "Dockerfile CMD", &mut problems);
    for (_, rest) in dockerfile().iter().filter(|(k, _)| k == "ENV") {
        for pair in rest.split_whitespace() {
            let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
            if k != "HOME" {
                env.push((k.to_string(), Some(v.to_string()), "Dockerfile ENV"));
            }
        }
    }
    let compose = load("deploy/compose.yaml");
    let hub = &compose["services"]["hub"];
    check_args(
        &help,
        &compose_hub_args(hub),
        "compose hub command",
        &mut problems,
    );
    for (k, v) in hub["environment"].as_object().expect("environment") {
        env.push((
            k.clone(),
            v.as_str().map(str::to_string),
            "compose hub environment",
        ));
    }
    for example in compose_env_examples(hub) {
        for (k, v) in env_file(&example, true) {
            env.push((k, Some(v), "an env file example"));
        }
    }
    let c = container();
    check_args(&help, &container_args(&c), "deployment args", &mut problems);
    for e in c["env"].as_array().expect("env") {
        env.push((
            text(e, "/name").to_string(),
            e["value"].as_str().map(str::to_string),
            "deployment env",
        ));
    }
    assert!(env.len() >= 8, "too few variables found: {env:?}");
    for (name, value, origin) in &env {
        check_env(&help, name, value.as_deref(), origin, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
