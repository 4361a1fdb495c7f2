//! Replicas talking through PostgreSQL `LISTEN/NOTIFY`: no other service to run.
//!
//! Two channels. [`CHANGES_CHANNEL`] is notified by every committed write of the store
//! (the notification rides the write's transaction, so it arrives only if the write
//! committed), so replicas reconcile at once instead of at their next poll. [`BUS_CHANNEL`]
//! carries text messages between replicas (the hub's relay). A notification's payload is at
//! most 8,000 bytes, so a longer message is cut into parts sent in one transaction and put
//! back together by the listener; a replica ignores what it sent itself.
//!
//! Delivery is at most once: a replica that is not listening when a message is sent never
//! sees it. The listener reconnects after a lost connection, and reports that as a
//! [`BusEvent::Reconnected`] so the caller can catch up (reconcile) on what it missed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::StoreError;

/// Notified by every committed store write.
pub const CHANGES_CHANNEL: &str = "switchboard_changes";
/// Messages between replicas.
pub const BUS_CHANNEL: &str = "switchboard_bus";
/// Payload bytes per notification part (PostgreSQL's limit is 8,000 with the channel name).
const PART_BYTES: usize = 7_000;
/// Longest message the bus carries.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Messages waiting to be sent; past that new ones are dropped (and counted in the log).
const QUEUE: usize = 4096;
/// Partly received messages kept at once, and for how long.
const MAX_PARTIAL: usize = 256;
const PARTIAL_TTL: Duration = Duration::from_secs(30);

/// What the listener hears.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// The store changed (a write committed on some replica, this one included).
    Changed,
    /// A message from another replica.
    Message(String),
    /// The listening connection was lost and is back: anything may have been missed.
    Reconnected,
}

#[derive(Serialize, Deserialize)]
struct Part<'a> {
    /// The sending replica.
    #[serde(borrow)]
    o: Cow<'a, str>,
    /// Message number at the sender.
    m: u64,
    /// Part index and count.
    i: u32,
    n: u32,
    /// The text of this part (borrowed unless it had escapes).
    #[serde(borrow)]
    d: Cow<'a, str>,
}

/// The sending side of the bus, shared by every tenant's hub in this process.
#[derive(Clone)]
pub struct Bus {
    origin: String,
    tx: mpsc::Sender<String>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("origin", &self.origin).finish()
    }
}

impl Bus {
    /// Connects to PostgreSQL at `url` and starts the sender and the listener. `origin`
    /// names this replica (its own messages are not delivered back to it). Events arrive
    /// on the returned receiver until `cancel` fires.
    pub async fn start(
        url: &str,
        origin: String,
        cancel: CancellationToken,
    ) -> Result<(Bus, mpsc::Receiver<BusEvent>), StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("the replica bus cannot connect: {e}")))?;
        let listener = listen(&pool).await?;
        let (tx, rx) = mpsc::channel::<String>(QUEUE);
        let (events_tx, events_rx) = mpsc::channel(QUEUE);
        tokio::spawn(send_loop(pool.clone(), origin.clone(), rx, cancel.clone()));
        tokio::spawn(listen_loop(
            pool,
            listener,
            origin.clone(),
            events_tx,
            cancel,
        ));
        Ok((Bus { origin, tx }, events_rx))
    }

    /// This replica's name on the bus.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Sends `text` to every other replica; never waits. False (and one log line) when the
    /// message is too long or the queue is full.
    pub fn publish(&self, text: String) -> bool {
        if text.len() > MAX_MESSAGE_BYTES {
            tracing::warn!(
                message = "A message for the other replicas is too long; dropped.",
                bytes = text.len()
            );
            return false;
        }
        match self.tx.try_send(text) {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!(
                    message = "The replica bus queue is full; a message for the other replicas was dropped."
                );
                false
            }
        }
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("the replica bus cannot listen: {e}")))?;
    listener
        .listen_all([CHANGES_CHANNEL, BUS_CHANNEL])
        .await
        .map_err(|e| StoreError::Backend(format!("the replica bus cannot listen: {e}")))?;
    Ok(listener)
}

/// Cuts `text` into notification payloads of less than 8,000 bytes each once escaped (on
/// character boundaries).
fn parts(origin: &str, number: u64, text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() || pieces.is_empty() {
        // Cut where the part's JSON-escaped text reaches PART_BYTES.
        let mut escaped = 0;
        let mut cut = rest.len();
        for (at, c) in rest.char_indices() {
            escaped += match c {
                '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
                c if (c as u32) < 0x20 => 6,
                c => c.len_utf8(),
            };
            if escaped > PART_BYTES {
                cut = at;
                break;
            }
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    let n = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
    pieces
        .iter()
        .enumerate()
        .map(|(i, d)| {
            serde_json::to_string(&Part {
                o: Cow::Borrowed(origin),
                m: number,
                i: u32::try_from(i).unwrap_or(u32::MAX),
                n,
                d: Cow::Borrowed(d),
            })
            .expect("a part serialises")
        })
        .collect()
}

async fn send_loop(
    pool: PgPool,
    origin: String,
    mut rx: mpsc::Receiver<String>,
    cancel: CancellationToken,
) {
    let mut number = 0u64;
    let mut failing = false;
    loop {
        let text = tokio::select! {
            _ = cancel.cancelled() => return,
            t = rx.recv() => match t { Some(t) => t, None => return },
        };
        number += 1;
        let payloads = parts(&origin, number, &text);
        let result = async {
            let mut tx = pool.begin().await?;
            for p in &payloads {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(BUS_CHANNEL)
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(message = "Cannot send a message to the other replicas; dropping until PostgreSQL answers again.", error = %e);
            }
            Err(_) => {}
        }
    }
}

/// A message being put back together: when its first part came, the parts so far, and how
/// many of them are in.
type Partial = (Instant, Vec<Option<String>>, usize);

/// Partly received messages, by (origin, number).
#[derive(Default)]
struct Reassembly {
    partial: HashMap<(String, u64), Partial>,
}

impl Reassembly {
    /// Adds one part; the whole message once its last part is in.
    fn add(&mut self, part: Part<'_>) -> Option<String> {
        if part.n <= 1 {
            return Some(part.d.into_owned());
        }
        let n = part.n as usize;
        if n > MAX_MESSAGE_BYTES / PART_BYTES + 1 || part.i >= part.n {
            return None;
        }
        let now = Instant::now();
        self.partial
            .retain(|_, (at, _, _)| now.duration_since(*at) < PARTIAL_TTL);
        let key = (part.o.clone().into_owned(), part.m);
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL {
            return None;
        }
        let entry = self
            .partial
            .entry(key.clone())
            .or_insert_with(|| (now, vec![None; n], 0));
        if entry.1.len() != n {
            return None;
        }
        let slot = &mut entry.1[part.i as usize];
        if slot.is_none() {
            *slot = Some(part.d.into_owned());
            entry.2 += 1;
        }
        if entry.2 < n {
            return None;
        }
        let (_, pieces, _) = self.partial.remove(&key)?;
        Some(pieces.into_iter().map(Option::unwrap_or_default).collect())
    }
}

async fn listen_loop(
    pool: PgPool,
    mut listener: PgListener,
    origin: String,
    events: mpsc::Sender<BusEvent>,
    cancel: CancellationToken,
) {
    let mut parts = Reassembly::default();
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.try_recv() => r,
        };
        let event = match received {
            Ok(Some(n)) if n.channel() == CHANGES_CHANNEL => Some(BusEvent::Changed),
            Ok(Some(n)) => match serde_json::from_str::<Part<'_>>(n.payload()) {
                Ok(p) if p.o == origin => None,
                Ok(p) => parts.add(p).map(BusEvent::Message),
                Err(e) => {
                    tracing::warn!(message = "Ignored a malformed message on the replica bus.", error = %e);
                    None
                }
            },
            // The connection was lost; sqlx reconnects and listens again on the next call.
            Ok(None) => Some(BusEvent::Reconnected),
            Err(e) => {
                tracing::warn!(message = "The replica bus lost PostgreSQL; listening again in 1 s.", error = %e);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if let Ok(l) = listen(&pool).await {
                    listener = l;
                    Some(BusEvent::Reconnected)
                } else {
                    None
                }
            }
        };
        if let Some(ev) = event
            && events.send(ev).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_into_parts_and_put_back_in_any_order() {
        let text: String = "é".repeat(10_000) + &"\"q\"\n".repeat(3_000);
        let payloads = parts("a", 7, &text);
        assert!(payloads.len() >= 4);
        assert!(payloads.iter().all(|p| p.len() < 8_000));
        let mut r = Reassembly::default();
        let mut whole = None;
        for p in payloads.iter().rev() {
            let part: Part<'_> = serde_json::from_str(p).unwrap();
            whole = r.add(part).or(whole);
        }
        assert_eq!(whole.as_deref(), Some(text.as_str()));
        assert!(r.partial.is_empty());
        let one = parts("a", 8, "");
        assert_eq!(one.len(), 1);
        let part: Part<'_> = serde_json::from_str(&one[0]).unwrap();
        assert_eq!(Reassembly::default().add(part).as_deref(), Some(""));
    }
}
