//! Switchboard's router: one [`Hub`] holding the upstream registry, the merged catalog
//! snapshot and the downstream client sessions, and routing every client message.
//!
//! Transports (HTTP, SSE, stdio) live elsewhere; they create a [`ClientSession`] and pass each
//! client message to [`Hub::handle`].

mod bridge;
mod call;
mod clients;
pub mod embedder;
mod events;
mod hub;
mod limits;
mod local;
mod merged;
mod observe;
pub mod outbox;
mod pins;
mod reply;
mod resume;
mod route;
pub mod sampler;
pub mod seal;
mod session;
mod smart;
mod stateless;
pub mod trace;
mod view;

pub use hub::{Hub, HubConfig, HubError, ServerStatus};
pub use local::LIST_SERVERS;
pub use merged::{GroupDef, ItemOverride, Overrides, URI_PREFIX};
pub use observe::{CallObserver, CallRecord, UpstreamCall, cap, classify, trace_id_of};
pub use outbox::{DEFAULT_STREAM_QUEUE_BYTES, Inbox, Outbox};
pub use pins::{OnToolChange, PinEvent, PinnedTool, ToolPins};
pub use resume::{EndedSessions, Relay, RelayMessage, session_hash};
pub use route::{LATEST_VERSION, SUPPORTED_VERSIONS};
pub use session::{ClientInfo, ClientSession, StreamGuard, UserHeaders, random_id};
pub use smart::{DEFAULT_LIMIT as SMART_DEFAULT_LIMIT, Found, SearchError, SmartMode};
pub use stateless::{
    HEADER_MISMATCH, MISSING_CAPABILITY, ReplyClass, STATELESS_VERSION, UNSUPPORTED_VERSION,
};
pub use view::{SMART_SEGMENT, View};
