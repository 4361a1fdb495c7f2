//! Smart routing (`/mcp/$smart[/{group}]`): three meta-tools in place of the catalogue.
//!
//! An agent that cannot hold a thousand tool definitions connects to a smart endpoint, asks
//! `search_tools` in natural language, reads a definition with `describe_tool`, and calls it
//! with `call_tool`, which the router turns into an ordinary `tools/call` of the underlying
//! view (progress, cancellation, server requests and per-tool settings behave as on `/mcp`).
//!
//! The index covers every upstream tool as `/mcp` shows it (prefixed names, overrides
//! applied). It is built from the merged snapshot at most once per snapshot generation, the
//! first time a search needs it after a change, and each search filters it by the caller's
//! view, so a group's filter or a disabled tool is never found.
//!
//! With an embedder configured (`HubConfig::semantic`), a background task (`embed_loop`)
//! watches the snapshot generation (every 250 ms) and embeds the tools whose definition text
//! it has no vector for, off the request path, in batches; vectors come from and go to the
//! embedding cache, so a definition is embedded once per model. A search embeds the query
//! and fuses the lexical and semantic rankings (`switchboard_search::hybrid`); tools not yet
//! embedded are found lexically only, and without vectors (or when the query cannot be
//! embedded) search is lexical.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::jsonrpc::{Envelope, Fields, code, error_message, quote, result_message};
use switchboard_search::embed::{VectorIndex, tool_text};
use switchboard_search::hybrid::{Fusion, fuse_with};
use switchboard_search::usage::{self, Counts};
use switchboard_search::{Analyzer, Index, Params, ToolText};
use switchboard_upstream::ListKind;
use tokio_util::sync::CancellationToken;

use crate::embedder::{Key, Semantic, key};
use crate::hub::Hub;
use crate::hub::HubInner;
use crate::local;
use crate::merged::Merged;
use crate::session::ClientSession;
use crate::view::View;

/// The meta-tools' names, as a smart endpoint lists them.
pub const SEARCH_TOOLS: &str = "search_tools";
pub const DESCRIBE_TOOL: &str = "describe_tool";
pub const CALL_TOOL: &str = "call_tool";

/// Results `search_tools` returns unless asked otherwise, and the most it returns.
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 50;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// How `search_tools` presents results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmartMode {
    /// Each result carries its full definition (`inputSchema` included).
    #[default]
    Full,
    /// Names and one-line descriptions only; `describe_tool` gives the rest.
    Compact,
}

/// The meta-tools' definitions (raw JSON), as a smart endpoint lists them.
pub fn meta_tool_definitions() -> Vec<String> {
    let tools = json!([
        {
            "name": SEARCH_TOOLS,
            "title": "Search tools",
            "description": "Search the tools available through this hub by what they do, in natural language. Returns the best matches, best first, with their full names (server__tool) to use with call_tool.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What the tool should do, e.g. \"read a file from disk\"."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT, "description": "How many tools to return."},
                    "server": {"type": "string", "description": "Only tools of this server."}
                },
                "required": ["query"]
            },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "tools": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "server": {"type": "string"},
                                "description": {"type": "string"},
                                "inputSchema": {"type": "object"},
                                "score": {"type": "number", "description": "Relevance, higher is better, comparable within one search only (it includes how often this tenant calls the tool)."}
                            },
                            "required": ["name", "server", "score"]
                        }
                    }
                },
                "required": ["tools"]
            },
            "annotations": {"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": DESCRIBE_TOOL,
            "title": "Describe a tool",
            "description": "The full definition of one tool (name, description, inputSchema, outputSchema, annotations), by the full name search_tools returned.",
            "inputSchema": {
                "type": "object",
                "properties": {"name": {"type": "string", "description": "The tool's full name, server__tool."}},
                "required": ["name"]
            },
            "annotations": {"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": CALL_TOOL,
            "title": "Call a tool",
            "description": "Call a tool found with search_tools, by its full name, with arguments that follow its inputSchema. Returns the tool's own result.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's full name, server__tool."},
                    "arguments": {"type": "object", "description": "The tool's arguments."}
                },
                "required": ["name"]
            }
        }
    ]);
    tools
        .as_array()
        .expect("a list")
        .iter()
        .map(Value::to_string)
        .collect()
}

/// True when `name` is one of the meta-tools.
pub fn is_meta_tool(name: &str) -> bool {
    matches!(name, SEARCH_TOOLS | DESCRIBE_TOOL | CALL_TOOL)
}

/// One searchable tool: its exported name, server and definition as `/mcp` lists it.
struct Doc {
    name: String,
    server: String,
    def: Value,
}

/// The index of one merged snapshot.
pub struct SmartIndex {
    generation: u64,
    docs: Vec<Doc>,
    index: Index,
    /// Per document: the embedded text's cache key and the text.
    embed_texts: Vec<(Key, String)>,
    /// One vector per document once embedded (filled by `embed_loop`).
    vectors: Mutex<VectorIndex>,
}

/// The current index, rebuilt when the merged snapshot changes.
#[derive(Default)]
pub struct SmartCatalog {
    analyzer: std::sync::OnceLock<Analyzer>,
    current: Mutex<Option<Arc<SmartIndex>>>,
    semantic: Option<Arc<Semantic>>,
    /// Calls routed per exported tool name, for the usage prior; `None` when it is off.
    usage: Option<Mutex<Counts>>,
}

/// One search result.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub server: String,
    pub score: f32,
    pub def: Value,
}

/// Why a search was refused.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("query must be a non-empty string")]
    EmptyQuery,
    #[error("query is longer than {MAX_QUERY_BYTES} bytes")]
    QueryTooLong,
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    BadLimit,
}

impl SmartCatalog {
    /// A catalog that embeds with `semantic` (if any) and ranks with the usage prior when
    /// `usage_prior` is set.
    pub fn new(semantic: Option<Arc<Semantic>>, usage_prior: bool) -> SmartCatalog {
        SmartCatalog {
            semantic,
            usage: usage_prior.then(|| Mutex::new(Counts::new(unix_secs()))),
            ..Default::default()
        }
    }

    /// Whether calls are counted (the usage prior is on).
    pub(crate) fn counts_calls(&self) -> bool {
        self.usage.is_some()
    }

    /// Counts a successful `tools/call` of `name` (the exported name), for the usage prior.
    pub(crate) fn record_call(&self, name: &str) {
        if let Some(usage) = &self.usage {
            usage
                .lock()
                .expect("usage counts")
                .record(name, unix_secs());
        }
    }

    /// Adds calls read back from the activity log (exported tool name, calls, when in Unix
    /// seconds): the prior then starts from the hub's recent history instead of from nothing.
    pub fn add_history(&self, calls: impl IntoIterator<Item = (String, f64, f64)>) {
        if let Some(usage) = &self.usage {
            let mut usage = usage.lock().expect("usage counts");
            for (name, n, at) in calls {
                usage.add(&name, n, at);
            }
        }
    }

    /// Calls counted for `name`, decayed to now (0 when the prior is off).
    pub fn calls(&self, name: &str) -> f64 {
        self.usage.as_ref().map_or(0.0, |u| {
            u.lock().expect("usage counts").calls(name, unix_secs())
        })
    }

    fn analyzer(&self) -> &Analyzer {
        self.analyzer.get_or_init(Analyzer::new)
    }

    /// The index of `merged`, building it if the snapshot changed since the last one.
    fn index_for(&self, merged: &Merged) -> Arc<SmartIndex> {
        if let Some(idx) = self.current.lock().expect("smart index").as_ref()
            && idx.generation == merged.generation
        {
            return idx.clone();
        }
        let started = std::time::Instant::now();
        let built = Arc::new(build(merged, self.analyzer(), self.semantic.as_deref()));
        tracing::debug!(
            tools = built.docs.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "smart index built"
        );
        let mut cur = self.current.lock().expect("smart index");
        // Keep whichever is newer if two searches raced to build.
        match cur.as_ref() {
            Some(c) if c.generation > built.generation => c.clone(),
            _ => {
                *cur = Some(built.clone());
                built
            }
        }
    }

    /// The embedding of `query` when semantic search is configured and some tool of
    /// `merged` has a vector; `None` (lexical search) otherwise or when embedding fails.
    pub async fn query_vector(&self, merged: &Merged, query: &str) -> Option<Vec<f32>> {
        let semantic = self.semantic.as_ref()?;
        if query.trim().is_empty() || query.len() > MAX_QUERY_BYTES {
            return None;
        }
        let idx = self.index_for(merged);
        if idx.vectors.lock().expect("vectors").ready() == 0 {
            return None;
        }
        match semantic
            .embedder
            .embed(vec![query.to_owned()], true)
            .await
            .map(|mut v| v.pop())
        {
            Ok(Some(v)) => Some(v),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot embed a search query; searching lexically");
                None
            }
        }
    }

    /// Searches the tools `view` shows, best first: lexically, fused with the semantic
    /// ranking when `query_vector` (the query's embedding) is given.
    pub fn search(
        &self,
        merged: &Merged,
        view: &View,
        query: &str,
        limit: usize,
        server: Option<&str>,
        query_vector: Option<&[f32]>,
    ) -> Result<Vec<Found>, SearchError> {
        if query.trim().is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        if query.len() > MAX_QUERY_BYTES {
            return Err(SearchError::QueryTooLong);
        }
        if limit == 0 || limit > MAX_LIMIT {
            return Err(SearchError::BadLimit);
        }
        let idx = self.index_for(merged);
        let view = view.base();
        let allow = |d: usize| {
            let doc = &idx.docs[d];
            server.is_none_or(|s| s == doc.server)
                && merged
                    .resolve_name(&view, ListKind::Tools, &doc.name)
                    .is_some()
        };
        // The rankers run first; the usage counts are locked only to fuse (a routed call
        // takes the same lock to count itself).
        let depth = match query_vector {
            Some(_) => Fusion::TUNED.depth,
            None => usage::LEXICAL_DEPTH,
        }
        .max(limit);
        let lexical = idx.index.search(self.analyzer(), query, depth, allow);
        let semantic =
            query_vector.map(|q| idx.vectors.lock().expect("vectors").search(q, depth, allow));
        let now = unix_secs();
        let counts = self.usage.as_ref().map(|u| u.lock().expect("usage counts"));
        let prior = |d: usize| {
            counts
                .as_ref()
                .map_or(0.0, |c| c.prior(&idx.docs[d].name, now))
        };
        let hits = match semantic {
            Some(semantic) => fuse_with(&lexical, &semantic, Fusion::TUNED, limit, prior),
            // Scores are BM25F over the best hit's (1 for the best), with or without calls.
            None => usage::rerank_lexical(&lexical, usage::LEXICAL, limit, prior),
        };
        drop(counts);
        Ok(hits
            .into_iter()
            .map(|h| {
                let doc = &idx.docs[h.doc];
                Found {
                    name: doc.name.clone(),
                    server: doc.server.clone(),
                    score: h.score,
                    def: doc.def.clone(),
                }
            })
            .collect())
    }

    /// The definition of tool `name` as `view` shows it.
    pub fn describe(&self, merged: &Merged, view: &View, name: &str) -> Option<Value> {
        let view = view.base();
        merged.resolve_name(&view, ListKind::Tools, name)?;
        let rendered = merged.rendered(&view, ListKind::Tools);
        (0..rendered.len())
            .filter_map(|i| serde_json::from_str::<Value>(rendered.item(i)).ok())
            .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
    }
}

impl Hub {
    /// Whether tool search uses the usage prior (`HubConfig::smart_usage_prior`).
    pub fn usage_prior_enabled(&self) -> bool {
        self.inner.smart.counts_calls()
    }

    /// Counts past tool calls (exported name, calls, when in Unix seconds) into the usage
    /// prior, as read back from the activity log; ignored when the prior is off.
    pub fn add_call_history(&self, calls: impl IntoIterator<Item = (String, f64, f64)>) {
        self.inner.smart.add_history(calls);
    }

    /// Calls of tool `name` the usage prior has counted, decayed to now (0 when it is off).
    pub fn tool_calls_counted(&self, name: &str) -> f64 {
        self.inner.smart.calls(name)
    }
}

/// Now, in Unix seconds: the usage prior's clock (the activity log's too).
fn unix_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A meta-tool of a smart endpoint: `search_tools` and `describe_tool` answered here,
/// `call_tool` turned into the `tools/call` it stands for and routed like one.
pub(crate) async fn call_meta(
    hub: &Hub,
    session: &Arc<ClientSession>,
    env: &Envelope<'_>,
    params: &Fields<'_>,
    name: &str,
    sink: &crate::outbox::Outbox,
) -> Option<String> {
    let id = env.id_text();
    let invalid = |msg: String| Some(error_message(id, code::INVALID_PARAMS, &msg, None));
    let raw_args = params.get("arguments").filter(|a| a.get() != "null");
    let args: serde_json::Map<String, Value> = match raw_args {
        None => serde_json::Map::new(),
        Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Object(map)) => map,
            _ => return invalid(format!("{name}: arguments must be an object")),
        },
    };
    let str_arg = |key: &str| -> Result<Option<&str>, String> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{name}: {key} must be a string")),
        }
    };
    match name {
        SEARCH_TOOLS => {
            let query = match str_arg("query") {
                Ok(Some(q)) => q,
                Ok(None) => return invalid(format!("{SEARCH_TOOLS}: query is required")),
                Err(e) => return invalid(e),
            };
            let limit = match args.get("limit") {
                None | Some(Value::Null) => DEFAULT_LIMIT,
                Some(v) => match v.as_u64() {
                    Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                    None => {
                        return invalid(format!(
                            "{SEARCH_TOOLS}: limit must be an integer from 1 to {}",
                            MAX_LIMIT
                        ));
                    }
                },
            };
            let server = match str_arg("server") {
                Ok(s) => s,
                Err(e) => return invalid(e),
            };
            hub.settle_startup().await;
            match hub.search_tools(&session.view, query, limit, server).await {
                Ok(found) => Some(result_message(
                    id,
                    &search_result(&found, hub.config().smart_mode),
                )),
                Err(e) => invalid(format!("{SEARCH_TOOLS}: {e}")),
            }
        }
        DESCRIBE_TOOL => {
            let tool = match str_arg("name") {
                Ok(Some(t)) => t,
                Ok(None) => return invalid(format!("{DESCRIBE_TOOL}: name is required")),
                Err(e) => return invalid(e),
            };
            let merged = hub.inner.merged.load_full();
            match hub.inner.smart.describe(&merged, &session.view, tool) {
                Some(def) => Some(result_message(id, &tool_result(&def, false))),
                None => invalid(format!("{DESCRIBE_TOOL}: unknown tool: {tool}")),
            }
        }
        CALL_TOOL => {
            let tool = match str_arg("name") {
                Ok(Some(t)) => t.to_owned(),
                Ok(None) => return invalid(format!("{CALL_TOOL}: name is required")),
                Err(e) => return invalid(e),
            };
            if is_meta_tool(&tool) {
                return invalid(format!(
                    "{CALL_TOOL}: {tool} is a meta-tool; call it directly"
                ));
            }
            let inner_args = match args.get("arguments") {
                None | Some(Value::Null) => "{}".to_owned(),
                Some(v @ Value::Object(_)) => v.to_string(),
                Some(_) => return invalid(format!("{CALL_TOOL}: arguments must be an object")),
            };
            // The call the client means, with its id and its `_meta` (progress token,
            // protocol keys of a stateless request), routed as on the underlying view.
            let meta = params
                .get("_meta")
                .map(|m| format!(r#","_meta":{}"#, m.get()))
                .unwrap_or_default();
            let inner = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":{},"arguments":{inner_args}{meta}}}}}"#,
                quote(&tool)
            );
            let inner_env = match Envelope::parse(&inner) {
                Ok(e) => e,
                Err(e) => return invalid(format!("{CALL_TOOL}: {e}")),
            };
            let inner_params = inner_env.params.and_then(|p| Fields::parse(p.get()));
            Box::pin(hub.call_named(
                session,
                &inner,
                &inner_env,
                inner_params,
                ListKind::Tools,
                sink,
            ))
            .await
        }
        _ => invalid(format!("unknown tool: {name}")),
    }
}

/// Indexes every upstream tool of `merged` as `/mcp` lists it, with the vectors the cache
/// already has.
fn build(merged: &Merged, analyzer: &Analyzer, semantic: Option<&Semantic>) -> SmartIndex {
    let rendered = merged.rendered(&View::All, ListKind::Tools);
    let mut docs = Vec::with_capacity(rendered.len());
    let mut texts = Vec::with_capacity(rendered.len());
    for i in 0..rendered.len() {
        let Ok(def) = serde_json::from_str::<Value>(rendered.item(i)) else {
            continue;
        };
        let Some(name) = def.get("name").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        if local::is_local_tool(&name) {
            continue;
        }
        let Some(target) = merged.resolve_name(&View::All, ListKind::Tools, &name) else {
            continue;
        };
        let server = target.entry.name.clone();
        texts.push(ToolText::from_tool(&server, &target.original, &def));
        docs.push(Doc { name, server, def });
    }
    let index = Index::build(&texts, analyzer, Params::TUNED);
    let mut embed_texts = Vec::new();
    let mut vectors = VectorIndex::default();
    if let Some(sem) = semantic {
        let model = sem.embedder.id();
        embed_texts = texts
            .iter()
            .map(|t| {
                let text = tool_text(t);
                (key(model, &text), text)
            })
            .collect();
        let mut dims = 0;
        let cached: Vec<Option<Arc<[f32]>>> = embed_texts
            .iter()
            .map(|(k, _)| {
                let v = sem.cache.get(k);
                if let Some(v) = &v {
                    dims = v.len();
                }
                v
            })
            .collect();
        vectors = VectorIndex::new(dims, docs.len());
        for (doc, v) in cached.into_iter().enumerate() {
            if let Some(v) = v {
                vectors.set(doc, v.to_vec());
            }
        }
    }
    SmartIndex {
        generation: merged.generation,
        docs,
        index,
        embed_texts,
        vectors: Mutex::new(vectors),
    }
}

/// How often the embedding task looks for a new catalog snapshot.
const EMBED_POLL: Duration = Duration::from_millis(250);
/// Tools embedded per batch (between batches the task checks for a newer snapshot; an
/// embeddings URL gets one request per batch).
const EMBED_BATCH: usize = crate::embedder::HTTP_BATCH;
/// Wait after a failed batch before trying again.
const EMBED_RETRY: Duration = Duration::from_secs(30);

/// Embeds the tools of each new catalog snapshot that the cache has no vector for, off the
/// request path; ends when the hub does.
pub(crate) async fn embed_loop(hub: Weak<HubInner>, cancel: CancellationToken) {
    let mut done_generation = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(EMBED_POLL) => {}
        }
        let Some(inner) = hub.upgrade() else { return };
        let merged = inner.merged.load_full();
        if done_generation == Some(merged.generation) {
            continue;
        }
        let Some(semantic) = inner.smart.semantic.clone() else {
            return;
        };
        let idx = inner.smart.index_for(&merged);
        drop(inner);
        match embed_missing(&hub, &idx, &semantic, &cancel).await {
            Ok(true) => done_generation = Some(idx.generation),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, model = semantic.embedder.id(), "cannot embed tool definitions; search stays lexical for them, retrying in 30 s");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(EMBED_RETRY) => {}
                }
            }
        }
    }
}

/// Embeds `idx`'s documents that have no vector. `Ok(false)` when a newer snapshot came
/// first (the next round takes it, keeping what was embedded in the cache).
async fn embed_missing(
    hub: &Weak<HubInner>,
    idx: &Arc<SmartIndex>,
    semantic: &Semantic,
    cancel: &CancellationToken,
) -> Result<bool, String> {
    let missing: Vec<usize> = {
        let vectors = idx.vectors.lock().expect("vectors");
        (0..idx.docs.len()).filter(|&d| !vectors.has(d)).collect()
    };
    if missing.is_empty() {
        return Ok(true);
    }
    let started = std::time::Instant::now();
    for batch in missing.chunks(EMBED_BATCH) {
        if cancel.is_cancelled() {
            return Ok(false);
        }
        let still_current = hub
            .upgrade()
            .is_some_and(|h| h.merged.load().generation == idx.generation);
        if !still_current {
            return Ok(false);
        }
        let texts: Vec<String> = batch
            .iter()
            .map(|&d| idx.embed_texts[d].1.clone())
            .collect();
        let vectors = semantic.embedder.embed(texts, false).await?;
        let items: Vec<(Key, Arc<[f32]>)> = batch
            .iter()
            .zip(vectors)
            .map(|(&d, v)| (idx.embed_texts[d].0, Arc::from(v)))
            .collect();
        semantic.cache.put(&items);
        let mut index = idx.vectors.lock().expect("vectors");
        if index.dims() == 0 || index.dims() != items.first().map_or(0, |i| i.1.len()) {
            // First vectors (or a model of another length): start the vector index over.
            let dims = items.first().map_or(0, |i| i.1.len());
            if index.ready() > 0 && index.dims() != dims {
                return Err(format!(
                    "embedder returned {dims} dimensions, expected {}",
                    index.dims()
                ));
            }
            *index = VectorIndex::new(dims, idx.docs.len());
        }
        for (&d, (_, v)) in batch.iter().zip(&items) {
            index.set(d, v.to_vec());
        }
    }
    tracing::info!(
        tools = missing.len(),
        seconds = started.elapsed().as_secs_f64(),
        "smart search: tool definitions embedded"
    );
    Ok(true)
}

/// The `search_tools` result: `structuredContent` plus the same JSON as text.
pub fn search_result(found: &[Found], mode: SmartMode) -> String {
    let tools: Vec<Value> = found
        .iter()
        .map(|f| {
            let description = f.def.get("description").and_then(Value::as_str).unwrap_or("");
            match mode {
                SmartMode::Full => json!({
                    "name": f.name,
                    "server": f.server,
                    "description": description,
                    "inputSchema": f.def.get("inputSchema").cloned().unwrap_or(json!({"type": "object"})),
                    "score": round(f.score),
                }),
                SmartMode::Compact => json!({
                    "name": f.name,
                    "server": f.server,
                    "description": first_line(description),
                    "score": round(f.score),
                }),
            }
        })
        .collect();
    let structured = json!({ "tools": tools });
    tool_result(&structured, false)
}

/// A `CallToolResult` with `value` as structured content and as JSON text.
pub fn tool_result(value: &Value, is_error: bool) -> String {
    json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value,
        "isError": is_error,
    })
    .to_string()
}

fn round(score: f32) -> f64 {
    (f64::from(score) * 1000.0).round() / 1000.0
}

/// The first line (or sentence, if shorter than 200 characters) of a description.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    let end = line.find(". ").map_or(line.len(), |i| i + 1);
    let short = &line[..end];
    if short.chars().count() <= 200 {
        short.to_owned()
    } else {
        short
            .chars()
            .take(199)
            .chain(std::iter::once('…'))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_tools_list_names_the_three_tools_with_schemas() {
        let defs: Vec<Value> = meta_tool_definitions()
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let names: Vec<&str> = defs.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, [SEARCH_TOOLS, DESCRIBE_TOOL, CALL_TOOL]);
        assert!(defs[0]["outputSchema"].is_object());
        assert!(names.iter().all(|n| is_meta_tool(n)));
    }

    #[test]
    fn compact_descriptions_keep_the_first_sentence() {
        assert_eq!(
            first_line("Reads a file. Returns bytes.\nMore."),
            "Reads a file."
        );
        assert_eq!(first_line(""), "");
        assert_eq!(first_line(&"x".repeat(300)).chars().count(), 200);
    }
}
