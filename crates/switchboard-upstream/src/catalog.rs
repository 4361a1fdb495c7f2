//! One upstream's catalog: its tools, prompts, resources and resource templates, kept raw.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use switchboard_core::jsonrpc::{Envelope, Fields, array_items, quote};

use crate::{Connection, UpstreamError};

/// The four lists an upstream can publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    Templates,
}

impl ListKind {
    /// All four, in a fixed order.
    pub const ALL: [ListKind; 4] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::Templates,
    ];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
        }
    }

    /// The array field of the list result.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The identifying field of one item.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
        }
    }

    /// The server capability that announces the list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
        }
    }

    /// The kind a `notifications/*/list_changed` method refers to.
    pub fn from_list_changed(method: &str) -> Option<&'static [ListKind]> {
        match method {
            "notifications/tools/list_changed" => Some(&[ListKind::Tools]),
            "notifications/prompts/list_changed" => Some(&[ListKind::Prompts]),
            "notifications/resources/list_changed" => {
                Some(&[ListKind::Resources, ListKind::Templates])
            }
            _ => None,
        }
    }
}

/// One item of a list, with its raw JSON object kept as sent.
#[derive(Debug)]
pub struct Item {
    /// Name (tools, prompts), URI (resources) or URI template (templates).
    pub key: String,
    /// The whole object as the upstream sent it.
    pub raw: Box<RawValue>,
    /// Tool annotation `readOnlyHint`.
    pub read_only: bool,
    /// Tool annotation `idempotentHint`.
    pub idempotent: bool,
    /// Tools: SHA-256 of the canonical definition (see [`crate::definition`]), for pinning.
    pub digest: Option<crate::definition::Digest>,
}

/// An upstream's published lists. Each list is shared, so replacing one is cheap.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Tools.
    pub tools: Arc<Vec<Item>>,
    /// Prompts.
    pub prompts: Arc<Vec<Item>>,
    /// Resources.
    pub resources: Arc<Vec<Item>>,
    /// Resource templates.
    pub templates: Arc<Vec<Item>>,
}

impl Catalog {
    /// The list of `kind`.
    pub fn list(&self, kind: ListKind) -> &Arc<Vec<Item>> {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => &self.resources,
            ListKind::Templates => &self.templates,
        }
    }

    /// A copy with list `kind` replaced.
    pub fn with(&self, kind: ListKind, items: Vec<Item>) -> Catalog {
        let mut next = self.clone();
        let slot = match kind {
            ListKind::Tools => &mut next.tools,
            ListKind::Prompts => &mut next.prompts,
            ListKind::Resources => &mut next.resources,
            ListKind::Templates => &mut next.templates,
        };
        *slot = Arc::new(items);
        next
    }
}

/// Most pages the hub follows for one list before it stops.
const MAX_PAGES: usize = 1000;

/// Fetches every page of one list.
pub async fn fetch_list(
    conn: &Connection,
    kind: ListKind,
    timeout: Duration,
) -> Result<Vec<Item>, UpstreamError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map(|c| format!(r#"{{"cursor":{}}}"#, quote(c)));
        let reply = conn
            .request(kind.method(), params.as_deref(), timeout)
            .await?;
        let env = Envelope::parse(&reply).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        if let Some(err) = env.error {
            return Err(UpstreamError::Protocol(format!(
                "{} failed: {}",
                kind.method(),
                err.get()
            )));
        }
        let result = env
            .result
            .ok_or_else(|| UpstreamError::Protocol("response without result".into()))?;
        let fields = Fields::parse(result.get())
            .ok_or_else(|| UpstreamError::Protocol("result is not an object".into()))?;
        let list = fields.get(kind.field()).map(|v| v.get()).unwrap_or("[]");
        for raw in array_items(list)
            .ok_or_else(|| UpstreamError::Protocol(format!("{} is not an array", kind.field())))?
        {
            if let Some(item) = parse_item(kind, raw) {
                items.push(item);
            }
        }
        cursor = fields
            .get_str("nextCursor")
            .map(|c| c.into_owned())
            .filter(|c| !c.is_empty());
        if cursor.is_none() {
            return Ok(items);
        }
    }
    Ok(items)
}

fn parse_item(kind: ListKind, raw: &RawValue) -> Option<Item> {
    let fields = Fields::parse(raw.get())?;
    let key = fields.get_str(kind.key())?.into_owned();
    let (mut read_only, mut idempotent) = (false, false);
    if kind == ListKind::Tools
        && let Some(ann) = fields
            .get("annotations")
            .and_then(|a| Fields::parse(a.get()))
    {
        read_only = ann.get("readOnlyHint").is_some_and(|v| v.get() == "true");
        idempotent = ann.get("idempotentHint").is_some_and(|v| v.get() == "true");
    }
    let digest = if kind == ListKind::Tools {
        crate::definition::pin_of(raw.get()).map(|(_, d)| d)
    } else {
        None
    };
    Some(Item {
        key,
        raw: raw.to_owned(),
        read_only,
        idempotent,
        digest,
    })
}
