//! The management API client of the tests: one request builder for every route, credential,
//! header and body, e.g. `h.as_(&key).post("/api/v1/keys", body).expect(201).await`.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A client of one service's management API (`base` is `http://host:port`).
#[derive(Clone)]
pub struct ApiClient {
    pub http: reqwest::Client,
    pub base: String,
    /// When set, [`Req::expect`] also checks the error shape of 401, 403, 404 and 429 answers.
    pub error_codes: bool,
}

/// An HTTP answer: status, headers and the JSON body (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl ApiClient {
    pub fn new(base: impl Into<String>) -> ApiClient {
        ApiClient {
            http: reqwest::Client::new(),
            base: base.into(),
            error_codes: false,
        }
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn as_(&self, token: &str) -> Req {
        let mut r = self.anon();
        r.token = Some(token.to_string());
        r
    }

    /// A request with no credential.
    pub fn anon(&self) -> Req {
        Req {
            api: self.clone(),
            token: None,
            tenant: None,
            headers: Vec::new(),
            method: Method::GET,
            path: String::new(),
            body: None,
            note: None,
        }
    }
}

/// A hub a test reaches through the management API (in process or the real binary): its
/// client and admin token give every request builder.
pub trait ServesApi {
    fn api_client(&self) -> &ApiClient;
    fn admin_token(&self) -> &str;

    /// A request with `token`.
    fn as_(&self, token: &str) -> Req {
        self.api_client().as_(token)
    }

    /// A request with the admin token.
    fn admin(&self) -> Req {
        self.api_client().as_(self.admin_token())
    }

    /// A request with no credential.
    fn anon(&self) -> Req {
        self.api_client().anon()
    }
}

/// One request being built: method and path, credential, headers, body; finished by
/// [`Req::send`], [`Req::expect`] or [`Req::expect_error`].
pub struct Req {
    api: ApiClient,
    token: Option<String>,
    tenant: Option<String>,
    headers: Vec<(String, String)>,
    method: Method,
    path: String,
    body: Option<(String, String)>,
    note: Option<String>,
}

impl Req {
    /// Method (any, e.g. "PATCH") and path.
    pub fn req(mut self, method: &str, path: impl Into<String>) -> Req {
        self.method = Method::from_bytes(method.as_bytes()).expect("method");
        self.path = path.into();
        self
    }

    pub fn get(self, path: impl Into<String>) -> Req {
        self.req("GET", path)
    }

    pub fn delete(self, path: impl Into<String>) -> Req {
        self.req("DELETE", path)
    }

    /// A POST with no body.
    pub fn post_empty(self, path: impl Into<String>) -> Req {
        self.req("POST", path)
    }

    pub fn post(self, path: impl Into<String>, body: Value) -> Req {
        self.req("POST", path).json(Some(body))
    }

    pub fn put(self, path: impl Into<String>, body: Value) -> Req {
        self.req("PUT", path).json(Some(body))
    }

    pub fn patch(self, path: impl Into<String>, body: Value) -> Req {
        self.req("PATCH", path).json(Some(body))
    }

    /// A JSON body, when given.
    pub fn json(mut self, body: Option<Value>) -> Req {
        self.body = body.map(|b| ("application/json".to_string(), b.to_string()));
        self
    }

    /// A body sent as it is, with `content_type`.
    pub fn text(mut self, content_type: &str, text: impl Into<String>) -> Req {
        self.body = Some((content_type.to_string(), text.into()));
        self
    }

    /// Text sent as it is with the JSON content type, when given.
    pub fn raw_json(mut self, text: Option<&str>) -> Req {
        self.body = text.map(|t| ("application/json".to_string(), t.to_string()));
        self
    }

    /// The `X-Switchboard-Tenant` header, when given.
    pub fn tenant(mut self, tenant: Option<&str>) -> Req {
        self.tenant = tenant.map(str::to_string);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Names the request in failure messages (a table row, a step).
    pub fn note(mut self, note: impl Into<String>) -> Req {
        self.note = Some(note.into());
        self
    }

    fn what(&self) -> String {
        let base = format!("{} {}", self.method, self.path);
        match (&self.note, &self.tenant) {
            (Some(n), None) => format!("[{n}] {base}"),
            (Some(n), Some(t)) => format!("[{n}] {base} (tenant header {t:?})"),
            (None, Some(t)) => format!("{base} (tenant header {t:?})"),
            (None, None) => base,
        }
    }

    /// Sends it; the body must be JSON or empty.
    pub async fn send(self) -> Answer {
        let what = self.what();
        let mut req = self
            .api
            .http
            .request(self.method, format!("{}{}", self.api.base, self.path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(t) = &self.tenant {
            req = req.header("x-switchboard-tenant", t);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some((content_type, text)) = self.body {
            req = req.header("content-type", content_type).body(text);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Sends it; the answer must have `status`. Returns the body. On a client that checks
    /// error codes, a 401, 403, 404 or 429 must also carry the API's error shape with the
    /// matching code.
    pub async fn expect(self, status: u16) -> Value {
        let what = self.what();
        let codes = self.api.error_codes;
        let a = self.send().await;
        assert_eq!(a.status.as_u16(), status, "{what}: {}", a.body);
        let code = match status {
            401 => Some("unauthorized"),
            403 => Some("forbidden"),
            404 => Some("not_found"),
            429 => Some("throttled"),
            _ => None,
        };
        if let (true, Some(code)) = (codes, code) {
            assert_eq!(a.body["status"], "error", "{what}: {}", a.body);
            assert_eq!(a.body["error"], code, "{what}: {}", a.body);
        }
        a.body
    }

    /// Sends it; the answer must be an error with `status`, error code `code` and a message.
    pub async fn expect_error(self, status: u16, code: &str) -> Value {
        let what = self.what();
        let a = self.send().await;
        assert_eq!(a.status.as_u16(), status, "{what}: {}", a.body);
        assert_eq!(a.body["status"], "error", "{}", a.body);
        assert_eq!(a.body["error"], code, "{what}: {}", a.body);
        assert!(
            a.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            a.body
        );
        a.body
    }
}
