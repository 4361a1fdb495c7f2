//! The merged catalog: an immutable snapshot of every upstream's lists with exported names.
//!
//! Built once per change (never per request) and swapped in whole. Rendered list results are
//! cached per (view, list) inside the snapshot, so `tools/list` on a warm hub is a copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use switchboard_core::jsonrpc::{Fields, Splice, quote};
use switchboard_core::naming::assign_names;
use switchboard_upstream::{Catalog, Item, ListKind, Upstream};

use crate::local;
use crate::view::View;

/// Scheme of rewritten resource URIs: `switchboard://{server}/{original uri}`.
pub const URI_PREFIX: &str = "switchboard://";

/// One upstream as seen by a snapshot.
pub struct Entry {
    /// Server name.
    pub name: String,
    /// Its handle.
    pub upstream: Upstream,
    /// Its catalog at snapshot time.
    pub catalog: Arc<Catalog>,
    /// Exported (prefixed) tool names, parallel to `catalog.tools`.
    tool_names: Vec<String>,
    /// Exported (prefixed) prompt names, parallel to `catalog.prompts`.
    prompt_names: Vec<String>,
    /// Exported resource URIs, parallel to `catalog.resources`.
    resource_uris: Vec<String>,
    /// Original key -> index, per list.
    by_key: HashMap<(ListKind, String), usize>,
}

/// Where a name points.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef {
    /// Index into `Merged::entries`.
    pub entry: usize,
    /// Index into that entry's list.
    pub item: usize,
}

/// A resolved target for a routed request.
pub struct Target<'a> {
    /// The owning upstream.
    pub entry: &'a Entry,
    /// The item, when the name referred to a listed one.
    pub item: Option<&'a Item>,
    /// The name or URI to send upstream.
    pub original: String,
}

/// The snapshot.
pub struct Merged {
    /// Upstreams in name order.
    pub entries: Vec<Entry>,
    index: HashMap<String, usize>,
    groups: BTreeMap<String, Vec<String>>,
    tools: HashMap<String, ItemRef>,
    prompts: HashMap<String, ItemRef>,
    resources: HashMap<String, ItemRef>,
    rendered: Mutex<HashMap<(View, ListKind), Arc<str>>>,
}

impl Merged {
    /// Builds a snapshot from the registry. `sep` separates server and item names.
    pub fn build(upstreams: &BTreeMap<String, Upstream>, groups: &BTreeMap<String, Vec<String>>, sep: &str) -> Merged {
        let mut entries: Vec<Entry> = upstreams
            .iter()
            .map(|(name, up)| {
                let catalog = up.catalog();
                let mut by_key = HashMap::new();
                for kind in ListKind::ALL {
                    for (i, item) in catalog.list(kind).iter().enumerate() {
                        by_key.entry((kind, item.key.clone())).or_insert(i);
                    }
                }
                Entry {
                    name: name.clone(),
                    upstream: up.clone(),
                    catalog,
                    tool_names: Vec::new(),
                    prompt_names: Vec::new(),
                    resource_uris: Vec::new(),
                    by_key,
                }
            })
            .collect();
        let tools = name_table(&mut entries, ListKind::Tools, sep);
        let prompts = name_table(&mut entries, ListKind::Prompts, sep);
        let resources = uri_table(&mut entries);
        let index = entries.iter().enumerate().map(|(i, e)| (e.name.clone(), i)).collect();
        Merged { entries, index, groups: groups.clone(), tools, prompts, resources, rendered: Mutex::new(HashMap::new()) }
    }

    /// The entry of server `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.index.get(name).map(|&i| &self.entries[i])
    }

    /// True when `server` is visible in `view`.
    pub fn in_view(&self, view: &View, server: &str) -> bool {
        match view {
            View::All => true,
            View::Server(s) => s == server,
            View::Group(g) => self.groups.get(g).is_some_and(|m| m.iter().any(|x| x == server)),
        }
    }

    fn visible<'a>(&'a self, view: &View) -> impl Iterator<Item = &'a Entry> + 'a {
        let view = view.clone();
        self.entries.iter().filter(move |e| self.in_view(&view, &e.name))
    }

    /// The rendered `{"<list>":[...]}` result for `kind` in `view`.
    pub fn render(&self, view: &View, kind: ListKind) -> Arc<str> {
        let key = (view.clone(), kind);
        if let Some(hit) = self.rendered.lock().expect("render cache").get(&key) {
            return hit.clone();
        }
        let text: Arc<str> = Arc::from(self.render_uncached(view, kind));
        self.rendered.lock().expect("render cache").insert(key, text.clone());
        text
    }

    fn render_uncached(&self, view: &View, kind: ListKind) -> String {
        let prefixed = !matches!(view, View::Server(_));
        let mut out = String::with_capacity(4096);
        out.push_str("{\"");
        out.push_str(kind.field());
        out.push_str("\":[");
        let mut first = true;
        let mut push = |s: &str, out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(s);
        };
        for entry in self.visible(view) {
            let exported: Option<&Vec<String>> = match kind {
                ListKind::Tools if prefixed => Some(&entry.tool_names),
                ListKind::Prompts if prefixed => Some(&entry.prompt_names),
                ListKind::Resources if prefixed => Some(&entry.resource_uris),
                _ => None,
            };
            for (i, item) in entry.catalog.list(kind).iter().enumerate() {
                match exported.map(|names| names[i].as_str()) {
                    Some(name) if name != item.key => push(&rename(item, kind.key(), name), &mut out),
                    _ => push(item.raw.get(), &mut out),
                }
            }
        }
        if kind == ListKind::Tools {
            for tool in local::tool_definitions() {
                push(tool, &mut out);
            }
        }
        out.push_str("]}");
        out
    }

    /// Resolves a tool or prompt name as exported in `view`.
    pub fn resolve_name(&self, view: &View, kind: ListKind, name: &str) -> Option<Target<'_>> {
        match view {
            View::Server(s) => {
                let entry = self.entry(s)?;
                let &i = entry.by_key.get(&(kind, name.to_string()))?;
                Some(Target { entry, item: Some(&entry.catalog.list(kind)[i]), original: name.to_string() })
            }
            _ => {
                let table = if kind == ListKind::Tools { &self.tools } else { &self.prompts };
                let r = table.get(name)?;
                let entry = &self.entries[r.entry];
                if !self.in_view(view, &entry.name) {
                    return None;
                }
                let item = &entry.catalog.list(kind)[r.item];
                Some(Target { entry, item: Some(item), original: item.key.clone() })
            }
        }
    }

    /// Resolves a resource URI as exported in `view`: listed URIs, rewritten URIs, then
    /// template prefixes, then the only visible server with resources.
    pub fn resolve_uri(&self, view: &View, uri: &str) -> Option<Target<'_>> {
        if !matches!(view, View::Server(_))
            && let Some(r) = self.resources.get(uri)
        {
            let entry = &self.entries[r.entry];
            if self.in_view(view, &entry.name) {
                let item = &entry.catalog.resources[r.item];
                return Some(Target { entry, item: Some(item), original: item.key.clone() });
            }
        }
        if let Some(rest) = uri.strip_prefix(URI_PREFIX)
            && let Some((server, original)) = rest.split_once('/')
            && let Some(entry) = self.entry(server)
            && self.in_view(view, server)
        {
            return Some(Target { entry, item: None, original: original.to_string() });
        }
        let visible: Vec<&Entry> = self.visible(view).collect();
        for entry in &visible {
            if let Some(&i) = entry.by_key.get(&(ListKind::Resources, uri.to_string())) {
                return Some(Target { entry, item: Some(&entry.catalog.resources[i]), original: uri.to_string() });
            }
        }
        // Longest matching template prefix wins.
        let mut best: Option<(&Entry, usize)> = None;
        for entry in &visible {
            for t in entry.catalog.templates.iter() {
                let prefix = t.key.split('{').next().unwrap_or("");
                if !prefix.is_empty() && uri.starts_with(prefix) && best.is_none_or(|(_, len)| prefix.len() > len) {
                    best = Some((entry, prefix.len()));
                }
            }
        }
        if let Some((entry, _)) = best {
            return Some(Target { entry, item: None, original: uri.to_string() });
        }
        let with_resources: Vec<&&Entry> = visible
            .iter()
            .filter(|e| e.upstream.info().is_some_and(|i| i.has("resources")))
            .collect();
        match with_resources.as_slice() {
            [only] => Some(Target { entry: only, item: None, original: uri.to_string() }),
            _ => None,
        }
    }

    /// The exported URI for `original` of `server`, when the hub rewrote it.
    pub fn exported_uri(&self, server: &str, original: &str) -> Option<&str> {
        let entry = self.entry(server)?;
        let &i = entry.by_key.get(&(ListKind::Resources, original.to_string()))?;
        let exported = entry.resource_uris.get(i)?;
        (exported != original).then_some(exported.as_str())
    }
}

/// Copies a list item with its key field replaced.
fn rename(item: &Item, key: &str, new: &str) -> String {
    let raw = item.raw.get();
    match Fields::parse(raw).and_then(|f| f.get(key)) {
        Some(old) => {
            let mut sp = Splice::new();
            sp.replace(raw, old.get(), quote(new));
            sp.apply(raw)
        }
        None => raw.to_string(),
    }
}

fn name_table(entries: &mut [Entry], kind: ListKind, sep: &str) -> HashMap<String, ItemRef> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut refs = Vec::new();
    for (e, entry) in entries.iter().enumerate() {
        for (i, item) in entry.catalog.list(kind).iter().enumerate() {
            pairs.push((entry.name.as_str(), item.key.as_str()));
            refs.push(ItemRef { entry: e, item: i });
        }
    }
    let names = assign_names(sep, &pairs);
    drop(pairs);
    let mut table = HashMap::with_capacity(names.len());
    for entry in entries.iter_mut() {
        let n = entry.catalog.list(kind).len();
        let slot = if kind == ListKind::Tools { &mut entry.tool_names } else { &mut entry.prompt_names };
        *slot = Vec::with_capacity(n);
    }
    for (name, r) in names.into_iter().zip(refs) {
        let entry = &mut entries[r.entry];
        let slot = if kind == ListKind::Tools { &mut entry.tool_names } else { &mut entry.prompt_names };
        slot.push(name.clone());
        table.insert(name, r);
    }
    table
}

/// URIs stay as they are unless two servers list the same one; then every copy is rewritten
/// to `switchboard://{server}/{uri}`.
fn uri_table(entries: &mut [Entry]) -> HashMap<String, ItemRef> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for entry in entries.iter() {
        for item in entry.catalog.resources.iter() {
            *count.entry(item.key.as_str()).or_default() += 1;
        }
    }
    let collided: std::collections::HashSet<String> =
        count.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k.to_string()).collect();
    let mut table = HashMap::new();
    for (e, entry) in entries.iter_mut().enumerate() {
        let uris: Vec<String> = entry
            .catalog
            .resources
            .iter()
            .map(|item| {
                if collided.contains(&item.key) {
                    format!("{URI_PREFIX}{}/{}", entry.name, item.key)
                } else {
                    item.key.clone()
                }
            })
            .collect();
        for (i, uri) in uris.iter().enumerate() {
            table.entry(uri.clone()).or_insert(ItemRef { entry: e, item: i });
        }
        entry.resource_uris = uris;
    }
    table
}
