//! `Served`: the real `switchboard serve` binary on free loopback ports with a data directory
//! of its own, killed (and its directory removed) when dropped:
//! `Served::builder(TOKEN).postgres("obs").servers(file).args(&[..]).start().await`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::api::{ApiClient, ServesApi};
use super::{PgDatabase, eventually, free_port, init, switchboard_bin};

/// Declares a test's own type around a [`Served`] (its field `served`, plus the fields given)
/// that derefs to it, so the test adds methods and keeps `hub.main`, `hub.child`, `hub.http`.
macro_rules! served_type {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        $vis struct $name {
            served: $crate::common::Served,
            $($fvis $field: $ty,)*
        }

        impl std::ops::Deref for $name {
            type Target = $crate::common::Served;
            fn deref(&self) -> &$crate::common::Served {
                &self.served
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $crate::common::Served {
                &mut self.served
            }
        }
    };
}

/// A running `switchboard serve`.
pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:<port>` of the main service.
    pub main: String,
    /// `http://127.0.0.1:<port>` of the MCP service.
    pub mcp: String,
    /// The test's directory (the data directory is `data/` in it).
    pub dir: PathBuf,
    pub api: ApiClient,
    /// The API client's HTTP client, for requests the builder does not make.
    pub http: reqwest::Client,
    pub token: String,
    _db: Option<PgDatabase>,
}

/// How to run it; `start` spawns it and waits until it answers.
pub struct ServedBuilder {
    token: String,
    name: &'static str,
    pg: Option<&'static str>,
    servers: Option<Value>,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
    ready: &'static str,
}

impl Served {
    /// The binary with admin token `token`, logging warnings only.
    pub fn builder(token: &str) -> ServedBuilder {
        ServedBuilder {
            token: token.into(),
            name: "served",
            pg: None,
            servers: None,
            args: Vec::new(),
            env: Vec::new(),
            ready: "/health",
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ServedBuilder {
    /// Names the temporary directory (`sb-<name>-<random>`).
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The store on a PostgreSQL database made for this run (dropped with it).
    pub fn postgres(mut self, purpose: &'static str) -> Self {
        self.pg = Some(purpose);
        self
    }

    /// A servers file with this content, written to the test's directory.
    pub fn servers(mut self, file: Value) -> Self {
        self.servers = Some(file);
        self
    }

    /// More command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// A variable the process must not inherit.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// The path polled until it answers with a success status (default `/health`).
    pub fn ready(mut self, path: &'static str) -> Self {
        self.ready = path;
        self
    }

    pub async fn start(self) -> Served {
        init();
        let dir = std::env::temp_dir().join(format!(
            "sb-{}-{}",
            self.name,
            switchboard_control::identity::random_hex(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = self.pg.map(PgDatabase::create);
        let (main, mcp) = (free_port(), free_port());
        let mut cmd = Command::new(switchboard_bin());
        cmd.args(["serve", "--admin-token", &self.token, "--log", "warn"])
            .args(["--main-addr", &format!("127.0.0.1:{main}")])
            .args(["--mcp-addr", &format!("127.0.0.1:{mcp}")])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
        if let Some(file) = &self.servers {
            let path = dir.join("servers.json");
            std::fs::write(&path, file.to_string()).unwrap();
            cmd.arg("--servers").arg(path);
        }
        if let Some(db) = &db {
            cmd.args(["--database-url", &db.url()]);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let child = cmd.spawn().expect("switchboard starts");
        let main = format!("http://127.0.0.1:{main}");
        let api = ApiClient::new(main.clone());
        let served = Served {
            child,
            http: api.http.clone(),
            api,
            main,
            mcp: format!("http://127.0.0.1:{mcp}"),
            dir,
            token: self.token,
            _db: db,
        };
        let ready = format!("{}{}", served.main, self.ready);
        let http = served.http.clone();
        // Generous, for a loaded 2-core machine running the whole suite; a hub that does not
        // come up says why below.
        let up = eventually(Duration::from_secs(60), async || {
            http.get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if !up {
            let mut served = served;
            let exited = served.child.try_wait().ok().flatten();
            let log = std::fs::read_to_string(served.dir.join("stderr.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "the hub did not come up ({ready}); exited: {exited:?}; its last log lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        served
    }
}

impl ServesApi for Served {
    fn api_client(&self) -> &ApiClient {
        &self.api
    }

    fn admin_token(&self) -> &str {
        &self.token
    }
}
