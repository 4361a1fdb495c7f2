//! A small W3C WebDriver client over reqwest, enough for the dashboard's browser test:
//! chromedriver as a child process, one headless Chromium session, navigation, CSS lookups,
//! clicks, typing, scripts, screenshots and the browser's console log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::free_port;

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium at 1280×800 (`width`×`height`).
    pub async fn start(chromedriver: &Path, chromium: &Path, width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{root}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", format!("--window-size={width},{height}")]
            }
        }}});
        let resp: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .unwrap();
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {resp}"));
        Browser {
            driver,
            base: format!("{root}/session/{id}"),
            http,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver answers")
            .json()
            .await
            .unwrap();
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        let v = self.post("/url", json!({"url": url})).await;
        assert!(v.is_null(), "navigation to {url} failed: {v}");
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Waits up to 20 s for `css` to match.
    pub async fn wait(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "{css} never appeared; page text: {:?}; console: {:?}",
                    self.text("body").await,
                    self.console().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `secs` for `script` (a function body) to return true.
    pub async fn wait_until(&self, what: &str, secs: u64, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.exec(script, json!([])).await != json!(true) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; page text: {:?}; console: {:?}",
                    self.text("body").await,
                    self.console().await
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait(css).await;
        let v = self.post(&format!("/element/{e}/click"), json!({})).await;
        assert!(v.is_null(), "click on {css} failed: {v}");
    }

    /// Clears the field matching `css`, then types `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.wait(css).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        let v = self
            .post(&format!("/element/{e}/value"), json!({"text": text}))
            .await;
        assert!(v.is_null(), "typing into {css} failed: {v}");
    }

    /// Picks the option with `value` in the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await;
    }

    /// The visible text of the first element matching `css` ("" when none).
    pub async fn text(&self, css: &str) -> String {
        let Some(e) = self.find(css).await else {
            return String::new();
        };
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`), awaiting a returned promise.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": format!(
            "const done = arguments[arguments.length - 1];\
             Promise.resolve((async function() {{ {script} }}).apply(null, Array.from(arguments).slice(0, -1)))\
               .then(done, (e) => done({{__error: String(e)}}));"), "args": args}))
            .await
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64_decode(v.as_str().expect("screenshot data"));
        std::fs::write(path, png).unwrap();
    }

    /// Browser console entries since the last call: `(level, message)`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.post("/se/log", json!({"type": "browser"})).await;
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

impl Browser {
    /// Runs a DevTools command (e.g. `Emulation.setEmulatedMedia`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (which stops Chromium) with a blocking request, then the driver.
        if let Some(rest) = self.base.strip_prefix("http://")
            && let Some((host, path)) = rest.split_once('/')
            && let Ok(mut s) = std::net::TcpStream::connect(host)
        {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
