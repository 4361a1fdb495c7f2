//! The merged catalog: an immutable snapshot of every upstream's lists with exported names.
//!
//! Built once per change (never per request) and swapped in whole. Rendered list results are
//! cached per (view, list) inside the snapshot, so `tools/list` on a warm hub is a copy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use switchboard_core::jsonrpc::{Fields, Splice, object_append_point, quote};
use switchboard_core::naming::assign_names;
use switchboard_upstream::{Catalog, Item, ListKind, Upstream};

use crate::local;
use crate::pins::{OnToolChange, ToolPins, is_held};
use crate::view::View;

static NEXT_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A rendered list result and where each item sits in it.
pub struct Rendered {
    /// `{"<field>":[...]}`.
    pub full: Arc<str>,
    field: &'static str,
    items: Vec<(usize, usize)>,
}

#[allow(clippy::len_without_is_empty)]
impl Rendered {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The raw JSON of item `i`.
    pub fn item(&self, i: usize) -> &str {
        let (a, b) = self.items[i];
        &self.full[a..b]
    }

    /// Items `[from, to)` as a list result, with `next_cursor` when given.
    pub fn page(&self, from: usize, to: usize, next_cursor: Option<&str>) -> String {
        let body = match (
            self.items.get(from),
            to.checked_sub(1).and_then(|last| self.items.get(last)),
        ) {
            (Some(a), Some(b)) if from < to => &self.full[a.0..b.1],
            _ => "",
        };
        let mut out = String::with_capacity(body.len() + 64);
        out.push_str("{\"");
        out.push_str(self.field);
        out.push_str("\":[");
        out.push_str(body);
        out.push(']');
        if let Some(c) = next_cursor {
            out.push_str(",\"nextCursor\":");
            out.push_str(&quote(c));
        }
        out.push('}');
        out
    }
}

/// Scheme of rewritten resource URIs: `switchboard://{server}/{original uri}`.
pub const URI_PREFIX: &str = "switchboard://";

/// An operator's override of one tool or prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOverride {
    /// Hidden when false.
    pub enabled: bool,
    /// Replaces the description.
    pub description: Option<String>,
    /// Replaces the name (before prefixing).
    pub rename: Option<String>,
}

/// Overrides keyed by (server, list, name as the server spells it).
pub type Overrides = HashMap<(String, ListKind, String), ItemOverride>;

/// A group: member servers, optionally narrowed to some exported tool names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDef {
    /// Member servers.
    pub members: Vec<String>,
    /// When set, only these exported tool names are visible through the group.
    pub tools: Option<BTreeSet<String>>,
}

/// One visible tool or prompt of an upstream.
struct Named {
    /// Index into the upstream's list.
    item: usize,
    /// The name on `/mcp/{server}` (the server's own, or the operator's rename).
    local: String,
    /// The name on prefixed views.
    exported: String,
    /// The item with overrides applied and `local` as its name, when anything changed.
    raw_local: Option<String>,
}

/// One upstream as seen by a snapshot.
pub struct Entry {
    /// Server name.
    pub name: String,
    /// Its handle.
    pub upstream: Upstream,
    /// Its catalog at snapshot time.
    pub catalog: Arc<Catalog>,
    tools: Vec<Named>,
    prompts: Vec<Named>,
    /// Exported resource URIs, parallel to `catalog.resources`.
    resource_uris: Vec<String>,
    /// (list, local name) -> index into `tools`/`prompts`.
    local_index: HashMap<(ListKind, String), usize>,
    /// Original resource URI -> index into `catalog.resources`.
    uri_index: HashMap<String, usize>,
    /// Tools held back because their definition changed since approval (`hide`): (local
    /// name, name as the server spells it).
    held: Vec<(String, String)>,
}

impl Entry {
    fn named(&self, kind: ListKind) -> &[Named] {
        if kind == ListKind::Tools {
            &self.tools
        } else {
            &self.prompts
        }
    }
}

/// Where a name points.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef {
    /// Index into `Merged::entries`.
    pub entry: usize,
    /// Index into that entry's named list.
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
    /// A tool's or prompt's name on prefixed views (`/mcp`, groups), whatever view named it.
    pub exported: Option<&'a str>,
}

/// The snapshot.
pub struct Merged {
    /// Upstreams in name order.
    pub entries: Vec<Entry>,
    index: HashMap<String, usize>,
    groups: BTreeMap<String, GroupDef>,
    tools: HashMap<String, ItemRef>,
    prompts: HashMap<String, ItemRef>,
    resources: HashMap<String, ItemRef>,
    rendered: Mutex<HashMap<(View, ListKind), Arc<Rendered>>>,
    /// Servers that are down, named from the catalog they had when they went down: lists
    /// leave them out, but their names still resolve, to an "unavailable" error.
    down: Vec<Entry>,
    down_tools: HashMap<String, ItemRef>,
    down_prompts: HashMap<String, ItemRef>,
    /// Distinguishes snapshots, so a cursor from an older one is recognised as stale.
    pub generation: u64,
    sep: String,
}

impl Merged {
    /// Builds a snapshot from the registry. `sep` separates server and item names. Under
    /// [`OnToolChange::Hide`], tools of a pinned server that do not match their pin are left
    /// out (held).
    pub fn build(
        upstreams: &BTreeMap<String, Upstream>,
        groups: &BTreeMap<String, GroupDef>,
        overrides: &Overrides,
        pins: (&ToolPins, OnToolChange),
        sep: &str,
    ) -> Merged {
        let mut entries: Vec<Entry> = upstreams
            .iter()
            .map(|(name, up)| entry(name, up, up.catalog(), overrides, pins))
            .collect();
        let mut down: Vec<Entry> = upstreams
            .iter()
            .filter_map(|(name, up)| Some(entry(name, up, up.last_catalog()?, overrides, pins)))
            .collect();
        let down_tools = name_table(&mut down, ListKind::Tools, sep);
        let down_prompts = name_table(&mut down, ListKind::Prompts, sep);
        let tools = name_table(&mut entries, ListKind::Tools, sep);
        let prompts = name_table(&mut entries, ListKind::Prompts, sep);
        let resources = uri_table(&mut entries);
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        let generation = NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Merged {
            entries,
            index,
            groups: groups.clone(),
            tools,
            prompts,
            resources,
            rendered: Mutex::new(HashMap::new()),
            down,
            down_tools,
            down_prompts,
            generation,
            sep: sep.to_string(),
        }
    }

    /// The server and tool a name refers to in `view` when that tool is held back because its
    /// definition changed since it was approved.
    pub fn held_tool(&self, view: &View, name: &str) -> Option<(&str, &str)> {
        fn find<'e>(e: &'e Entry, local: &str) -> Option<(&'e str, &'e str)> {
            e.held
                .iter()
                .find(|(l, _)| l == local)
                .map(|(_, key)| (e.name.as_str(), key.as_str()))
        }
        match view {
            View::Server(s) => find(self.entry(s)?, name),
            _ => self.visible(view).find_map(|e| {
                let local = name
                    .strip_prefix(e.name.as_str())?
                    .strip_prefix(&self.sep)?;
                find(e, local)
            }),
        }
    }

    /// The entry of server `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.index.get(name).map(|&i| &self.entries[i])
    }

    /// True when `server` is visible in `view`.
    pub fn in_view(&self, view: &View, server: &str) -> bool {
        match &*view.base() {
            View::All | View::Smart(_) => true,
            View::Server(s) => s == server,
            View::Group(g) => self
                .groups
                .get(g)
                .is_some_and(|d| d.members.iter().any(|x| x == server)),
        }
    }

    /// True when the group filter of `view` lets exported tool `name` through.
    fn tool_allowed(&self, view: &View, name: &str) -> bool {
        match &*view.base() {
            View::Group(g) => self
                .groups
                .get(g)
                .and_then(|d| d.tools.as_ref())
                .is_none_or(|set| set.contains(name)),
            _ => true,
        }
    }

    fn visible<'a>(&'a self, view: &View) -> impl Iterator<Item = &'a Entry> + 'a {
        let view = view.clone();
        self.entries
            .iter()
            .filter(move |e| self.in_view(&view, &e.name))
    }

    /// The rendered list with the byte range of each item, cached per (view, list).
    pub fn rendered(&self, view: &View, kind: ListKind) -> Arc<Rendered> {
        let key = (view.clone(), kind);
        if let Some(hit) = self.rendered.lock().expect("render cache").get(&key) {
            return hit.clone();
        }
        let rendered = Arc::new(self.render_uncached(view, kind));
        self.rendered
            .lock()
            .expect("render cache")
            .insert(key, rendered.clone());
        rendered
    }

    fn render_uncached(&self, view: &View, kind: ListKind) -> Rendered {
        if view.is_smart() {
            if kind == ListKind::Tools {
                let mut full = String::from("{\"tools\":[");
                let mut items = Vec::new();
                for (i, def) in crate::smart::meta_tool_definitions().iter().enumerate() {
                    if i > 0 {
                        full.push(',');
                    }
                    items.push((full.len(), full.len() + def.len()));
                    full.push_str(def);
                }
                full.push_str("]}");
                return Rendered {
                    full: Arc::from(full),
                    field: kind.field(),
                    items,
                };
            }
            return self.render_uncached(&view.base(), kind);
        }
        let prefixed = !matches!(view, View::Server(_));
        let mut out = String::with_capacity(4096);
        out.push_str("{\"");
        out.push_str(kind.field());
        out.push_str("\":[");
        let mut items: Vec<(usize, usize)> = Vec::new();
        let mut push = |s: &str, out: &mut String| {
            if !items.is_empty() {
                out.push(',');
            }
            items.push((out.len(), out.len() + s.len()));
            out.push_str(s);
        };
        for entry in self.visible(view) {
            let list = entry.catalog.list(kind);
            match kind {
                ListKind::Tools | ListKind::Prompts => {
                    for n in entry.named(kind) {
                        if kind == ListKind::Tools && !self.tool_allowed(view, &n.exported) {
                            continue;
                        }
                        let base = n.raw_local.as_deref().unwrap_or(list[n.item].raw.get());
                        if prefixed && n.exported != n.local {
                            push(&rename(base, "name", &n.exported), &mut out);
                        } else {
                            push(base, &mut out);
                        }
                    }
                }
                ListKind::Resources => {
                    for (i, item) in list.iter().enumerate() {
                        let shown = &entry.resource_uris[i];
                        if prefixed && *shown != item.key {
                            push(&rename(item.raw.get(), "uri", shown), &mut out);
                        } else {
                            push(item.raw.get(), &mut out);
                        }
                    }
                }
                ListKind::Templates => list.iter().for_each(|item| push(item.raw.get(), &mut out)),
            }
        }
        if kind == ListKind::Tools {
            for tool in local::tool_definitions() {
                push(tool, &mut out);
            }
        }
        out.push_str("]}");
        Rendered {
            full: Arc::from(out),
            field: kind.field(),
            items,
        }
    }

    /// Resolves a tool or prompt name as exported in `view`.
    pub fn resolve_name(&self, view: &View, kind: ListKind, name: &str) -> Option<Target<'_>> {
        let view = &*view.base();
        let (entry, named) = match view {
            View::Server(s) => {
                let entry = self.entry(s)?;
                let &i = entry.local_index.get(&(kind, name.to_string()))?;
                (entry, &entry.named(kind)[i])
            }
            _ => {
                let table = if kind == ListKind::Tools {
                    &self.tools
                } else {
                    &self.prompts
                };
                let r = table.get(name)?;
                let entry = &self.entries[r.entry];
                if !self.in_view(view, &entry.name)
                    || (kind == ListKind::Tools && !self.tool_allowed(view, name))
                {
                    return None;
                }
                (entry, &entry.named(kind)[r.item])
            }
        };
        let item = &entry.catalog.list(kind)[named.item];
        Some(Target {
            entry,
            item: Some(item),
            original: item.key.clone(),
            exported: Some(&named.exported),
        })
    }

    /// The server that owns `name` in `view` but cannot serve it now: a down server whose
    /// last catalog had the name, or (its tools unknown) a server that has not come up, when
    /// the name carries its prefix (`{server}{sep}`, or any name on its own endpoint).
    pub fn unavailable_owner(
        &self,
        view: &View,
        kind: ListKind,
        name: &str,
        sep: &str,
    ) -> Option<&Entry> {
        let cached = match view {
            View::Server(s) => self
                .down
                .iter()
                .find(|e| &e.name == s)
                .filter(|e| e.local_index.contains_key(&(kind, name.to_string()))),
            _ => {
                let table = if kind == ListKind::Tools {
                    &self.down_tools
                } else {
                    &self.down_prompts
                };
                table.get(name).map(|r| &self.down[r.entry]).filter(|e| {
                    self.in_view(view, &e.name)
                        && (kind != ListKind::Tools || self.tool_allowed(view, name))
                })
            }
        };
        if cached.is_some() {
            return cached;
        }
        if kind == ListKind::Tools && !self.tool_allowed(view, name) {
            return None;
        }
        let never_up = |e: &&Entry| {
            e.upstream.connection().is_err() && !self.down.iter().any(|d| d.name == e.name)
        };
        match view {
            View::Server(s) => self.entry(s).filter(never_up),
            _ => self.visible(view).filter(never_up).find(|e| {
                name.strip_prefix(e.name.as_str())
                    .is_some_and(|r| r.starts_with(sep))
            }),
        }
    }

    /// Original name -> exported (prefixed) name of a server's visible tools or prompts.
    pub fn exported_names(&self, server: &str, kind: ListKind) -> HashMap<String, String> {
        let Some(entry) = self.entry(server) else {
            return HashMap::new();
        };
        let list = entry.catalog.list(kind);
        entry
            .named(kind)
            .iter()
            .map(|n| (list[n.item].key.clone(), n.exported.clone()))
            .collect()
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
                return Some(Target {
                    entry,
                    item: Some(item),
                    original: item.key.clone(),
                    exported: None,
                });
            }
        }
        if let Some(rest) = uri.strip_prefix(URI_PREFIX)
            && let Some((server, original)) = rest.split_once('/')
            && let Some(entry) = self.entry(server)
            && self.in_view(view, server)
        {
            return Some(Target {
                entry,
                item: None,
                original: original.to_string(),
                exported: None,
            });
        }
        let visible: Vec<&Entry> = self.visible(view).collect();
        for entry in &visible {
            if let Some(&i) = entry.uri_index.get(uri) {
                return Some(Target {
                    entry,
                    item: Some(&entry.catalog.resources[i]),
                    original: uri.to_string(),
                    exported: None,
                });
            }
        }
        // Longest matching template prefix wins.
        let mut best: Option<(&Entry, usize)> = None;
        for entry in &visible {
            for t in entry.catalog.templates.iter() {
                let prefix = t.key.split('{').next().unwrap_or("");
                if !prefix.is_empty()
                    && uri.starts_with(prefix)
                    && best.is_none_or(|(_, len)| prefix.len() > len)
                {
                    best = Some((entry, prefix.len()));
                }
            }
        }
        if let Some((entry, _)) = best {
            return Some(Target {
                entry,
                item: None,
                original: uri.to_string(),
                exported: None,
            });
        }
        let with_resources: Vec<&&Entry> = visible
            .iter()
            .filter(|e| e.upstream.info().is_some_and(|i| i.has("resources")))
            .collect();
        match with_resources.as_slice() {
            [only] => Some(Target {
                entry: only,
                item: None,
                original: uri.to_string(),
                exported: None,
            }),
            _ => None,
        }
    }

    /// The exported URI for `original` of `server`, when the hub rewrote it.
    pub fn exported_uri(&self, server: &str, original: &str) -> Option<&str> {
        let entry = self.entry(server)?;
        let &i = entry.uri_index.get(original)?;
        let exported = entry.resource_uris.get(i)?;
        (exported != original).then_some(exported.as_str())
    }
}

/// Copies an item's JSON with one string field replaced.
fn rename(raw: &str, key: &str, new: &str) -> String {
    match Fields::parse(raw).and_then(|f| f.get(key)) {
        Some(old) => {
            let mut sp = Splice::new();
            sp.replace(raw, old.get(), quote(new));
            sp.apply(raw)
        }
        None => raw.to_string(),
    }
}

/// Applies an override's name and description to an item's JSON.
fn apply_override(
    raw: &str,
    local: &str,
    renamed: bool,
    description: Option<&str>,
) -> Option<String> {
    if !renamed && description.is_none() {
        return None;
    }
    let fields = Fields::parse(raw)?;
    let mut sp = Splice::new();
    if renamed && let Some(old) = fields.get("name") {
        sp.replace(raw, old.get(), quote(local));
    }
    if let Some(d) = description {
        match fields.get("description") {
            Some(old) => {
                sp.replace(raw, old.get(), quote(d));
            }
            None => {
                let (at, has_members) = object_append_point(raw)?;
                let comma = if has_members { "," } else { "" };
                sp.insert(at, format!("{comma}\"description\":{}", quote(d)));
            }
        }
    }
    Some(sp.apply(raw))
}

fn entry(
    name: &str,
    up: &Upstream,
    catalog: Arc<Catalog>,
    overrides: &Overrides,
    (pins, mode): (&ToolPins, OnToolChange),
) -> Entry {
    let mut local_index = HashMap::new();
    let mut named_lists = [Vec::new(), Vec::new()];
    let mut held = Vec::new();
    for (slot, kind) in [ListKind::Tools, ListKind::Prompts].into_iter().enumerate() {
        for (i, item) in catalog.list(kind).iter().enumerate() {
            let ov = overrides.get(&(name.to_string(), kind, item.key.clone()));
            if ov.is_some_and(|o| !o.enabled) {
                continue;
            }
            let rename = ov.and_then(|o| o.rename.clone()).filter(|r| !r.is_empty());
            let local = rename.clone().unwrap_or_else(|| item.key.clone());
            if kind == ListKind::Tools && is_held(pins, mode, name, &item.key, item.digest.as_ref())
            {
                held.push((local, item.key.clone()));
                continue;
            }
            let description = ov.and_then(|o| o.description.as_deref());
            let raw_local = apply_override(item.raw.get(), &local, rename.is_some(), description);
            local_index
                .entry((kind, local.clone()))
                .or_insert(named_lists[slot].len());
            named_lists[slot].push(Named {
                item: i,
                local,
                exported: String::new(),
                raw_local,
            });
        }
    }
    let [tools, prompts] = named_lists;
    let uri_index = catalog
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key.clone(), i))
        .rev()
        .collect();
    Entry {
        name: name.to_string(),
        upstream: up.clone(),
        catalog,
        tools,
        prompts,
        resource_uris: Vec::new(),
        local_index,
        uri_index,
        held,
    }
}

fn name_table(entries: &mut [Entry], kind: ListKind, sep: &str) -> HashMap<String, ItemRef> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut refs = Vec::new();
    for (e, entry) in entries.iter().enumerate() {
        for (i, n) in entry.named(kind).iter().enumerate() {
            pairs.push((entry.name.as_str(), n.local.as_str()));
            refs.push(ItemRef { entry: e, item: i });
        }
    }
    let names = assign_names(sep, &pairs);
    drop(pairs);
    let mut table = HashMap::with_capacity(names.len());
    for (name, r) in names.into_iter().zip(refs) {
        let entry = &mut entries[r.entry];
        let list = if kind == ListKind::Tools {
            &mut entry.tools
        } else {
            &mut entry.prompts
        };
        list[r.item].exported = name.clone();
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
    let collided: std::collections::HashSet<String> = count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k.to_string())
        .collect();
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
            table
                .entry(uri.clone())
                .or_insert(ItemRef { entry: e, item: i });
        }
        entry.resource_uris = uris;
    }
    table
}
