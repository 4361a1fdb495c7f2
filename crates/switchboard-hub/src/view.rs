//! Which part of the hub an endpoint shows: everything, a group, one server, or the smart
//! endpoint's meta-tools over everything or a group.

use std::borrow::Cow;

/// An endpoint's view of the hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum View {
    /// `/mcp`: every server, names prefixed.
    All,
    /// `/mcp/{group}`: the group's servers, names prefixed.
    Group(String),
    /// `/mcp/{server}`: one server, names as the server spells them.
    Server(String),
    /// `/mcp/$smart[/{group}]`: `search_tools`, `describe_tool` and `call_tool` over every
    /// server or a group's; prompts and resources as the underlying view shows them.
    Smart(Option<String>),
}

/// The path segment that names the smart endpoint.
pub const SMART_SEGMENT: &str = "$smart";

impl View {
    /// A label for logs and status output.
    pub fn label(&self) -> String {
        match self {
            View::All => "all".into(),
            View::Group(g) => format!("group:{g}"),
            View::Server(s) => format!("server:{s}"),
            View::Smart(None) => "smart".into(),
            View::Smart(Some(g)) => format!("smart:group:{g}"),
        }
    }

    /// The view a [`View::label`] names.
    pub fn from_label(label: &str) -> Option<View> {
        Some(match label {
            "all" => View::All,
            "smart" => View::Smart(None),
            _ => {
                if let Some(g) = label.strip_prefix("smart:group:") {
                    View::Smart(Some(g.to_string()))
                } else if let Some(g) = label.strip_prefix("group:") {
                    View::Group(g.to_string())
                } else {
                    View::Server(label.strip_prefix("server:")?.to_string())
                }
            }
        })
    }

    /// The view whose servers and names this one shows: a smart view's group (or
    /// everything); any other view itself.
    pub fn base(&self) -> Cow<'_, View> {
        match self {
            View::Smart(None) => Cow::Owned(View::All),
            View::Smart(Some(g)) => Cow::Owned(View::Group(g.clone())),
            other => Cow::Borrowed(other),
        }
    }

    /// True for a smart endpoint.
    pub fn is_smart(&self) -> bool {
        matches!(self, View::Smart(_))
    }
}

#[cfg(test)]
mod tests {
    use super::View;

    #[test]
    fn every_view_comes_back_from_its_label() {
        for v in [
            View::All,
            View::Group("g:x".into()),
            View::Server("s".into()),
            View::Smart(None),
            View::Smart(Some("g".into())),
        ] {
            assert_eq!(View::from_label(&v.label()), Some(v.clone()), "{v:?}");
        }
        assert_eq!(View::from_label("nonsense"), None);
    }
}
