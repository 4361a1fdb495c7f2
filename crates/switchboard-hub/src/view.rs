//! Which part of the hub an endpoint shows: everything, a group, or one server.

/// An endpoint's view of the hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum View {
    /// `/mcp`: every server, names prefixed.
    All,
    /// `/mcp/{group}`: the group's servers, names prefixed.
    Group(String),
    /// `/mcp/{server}`: one server, names as the server spells them.
    Server(String),
}

impl View {
    /// A label for logs and status output.
    pub fn label(&self) -> String {
        match self {
            View::All => "all".into(),
            View::Group(g) => format!("group:{g}"),
            View::Server(s) => format!("server:{s}"),
        }
    }
}
