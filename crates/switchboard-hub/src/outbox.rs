//! Outbound queues of client streams (a legacy SSE stream, a Streamable HTTP GET stream, one
//! POST's event stream, stdio), bounded in messages and in bytes.
//!
//! Sending never waits. A client that falls behind past either bound has its stream closed:
//! the queue is emptied at once (its pending messages are dropped), every later send fails,
//! the receiver sees the end, and one warning names the stream. A slow reader therefore
//! costs at most the byte budget (plus one message), and no task ever waits on it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Default byte budget of one stream's queue (`--stream-queue-bytes`).
pub const DEFAULT_STREAM_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// The stream is closed (overflowed, or its reader went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

struct Queue {
    items: VecDeque<String>,
    bytes: usize,
}

struct Shared {
    label: String,
    capacity: usize,
    max_bytes: usize,
    queue: Mutex<Queue>,
    notify: Notify,
    overflowed: AtomicBool,
    /// Cancelled on overflow.
    overflow: CancellationToken,
    /// Cancelled on overflow or when the receiver is dropped.
    gone: CancellationToken,
    /// Run once on overflow (ends the session).
    on_overflow: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side (one per queue).
pub struct Inbox {
    shared: Arc<Shared>,
}

/// A queue of at most `capacity` messages and `max_bytes` bytes (a single message larger
/// than the budget is still accepted into an empty queue). `label` names it in the warning.
pub fn channel(label: impl Into<String>, capacity: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        label: label.into(),
        capacity: capacity.max(1),
        max_bytes: max_bytes.max(1),
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            bytes: 0,
        }),
        notify: Notify::new(),
        overflowed: AtomicBool::new(false),
        overflow: CancellationToken::new(),
        gone: CancellationToken::new(),
        on_overflow: OnceLock::new(),
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl Outbox {
    /// Queues `msg`; never waits. Overflowing either bound closes the stream.
    pub async fn send(&self, msg: String) -> Result<(), Closed> {
        self.try_send(msg)
    }

    /// Queues `msg`; overflowing either bound closes the stream.
    pub fn try_send(&self, msg: String) -> Result<(), Closed> {
        self.enqueue(msg, true)
    }

    /// Queues `msg` if it fits, else drops it and leaves the stream open (unsolicited
    /// notifications to a session that may not have a stream attached).
    pub fn offer(&self, msg: String) -> bool {
        self.enqueue(msg, false).is_ok()
    }

    fn enqueue(&self, msg: String, strict: bool) -> Result<(), Closed> {
        let s = &self.shared;
        if s.gone.is_cancelled() {
            return Err(Closed);
        }
        let over = {
            let mut q = s.queue.lock().expect("outbox lock");
            let fits = q.items.len() < s.capacity
                && (q.items.is_empty() || q.bytes + msg.len() <= s.max_bytes);
            if fits {
                q.bytes += msg.len();
                q.items.push_back(msg);
                None
            } else if strict {
                let over = (q.items.len() + 1, q.bytes + msg.len());
                // Pending messages are dropped now, not when the reader gets round to it.
                q.items = VecDeque::new();
                q.bytes = 0;
                Some(over)
            } else {
                return Err(Closed);
            }
        };
        match over {
            None => {
                s.notify.notify_one();
                Ok(())
            }
            Some((messages, bytes)) => {
                self.overflow(messages, bytes);
                Err(Closed)
            }
        }
    }

    fn overflow(&self, messages: usize, bytes: usize) {
        let s = &self.shared;
        if s.overflowed.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            message = "A client is not reading its stream: closed it and dropped what was queued.",
            stream = %s.label,
            queued_messages = messages,
            queued_bytes = bytes,
            limit_messages = s.capacity,
            limit_bytes = s.max_bytes,
        );
        s.overflow.cancel();
        s.gone.cancel();
        s.notify.notify_one();
        if let Some(f) = s.on_overflow.get() {
            f();
        }
    }

    /// Sets what to do once when the queue overflows (the first call wins).
    pub fn on_overflow(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.shared.on_overflow.set(Box::new(f));
    }

    /// Resolves when the queue overflows.
    pub fn overflowed(&self) -> WaitForCancellationFutureOwned {
        self.shared.overflow.clone().cancelled_owned()
    }

    /// True once the queue overflowed.
    pub fn has_overflowed(&self) -> bool {
        self.shared.overflow.is_cancelled()
    }

    /// Resolves when the stream is closed: overflow, or the receiver was dropped.
    pub async fn closed(&self) {
        self.shared.gone.cancelled().await
    }

    /// True when sending would fail.
    pub fn is_closed(&self) -> bool {
        self.shared.gone.is_cancelled()
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue.lock().expect("outbox lock").bytes
    }
}

impl Inbox {
    /// The next message; `None` once the queue overflowed.
    pub async fn recv(&mut self) -> Option<String> {
        loop {
            let notified = self.shared.notify.notified();
            if let Some(m) = self.take()? {
                return Some(m);
            }
            notified.await;
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<String> {
        self.take().flatten()
    }

    /// `None`: overflowed; `Some(None)`: empty.
    fn take(&self) -> Option<Option<String>> {
        if self.shared.overflow.is_cancelled() {
            return None;
        }
        let mut q = self.shared.queue.lock().expect("outbox lock");
        let m = q.items.pop_front();
        if let Some(m) = &m {
            q.bytes -= m.len();
        }
        Some(m)
    }

    /// Resolves when the queue overflows.
    pub fn overflowed(&self) -> WaitForCancellationFutureOwned {
        self.shared.overflow.clone().cancelled_owned()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.shared.gone.cancel();
        let mut q = self.shared.queue.lock().expect("outbox lock");
        q.items = VecDeque::new();
        q.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_queue_over_its_byte_budget_closes_and_drops_what_it_held() {
        let (tx, mut rx) = channel("t", 100, 10);
        tx.send("12345".into()).await.unwrap();
        tx.send("12345".into()).await.unwrap();
        assert_eq!(tx.queued_bytes(), 10);
        assert_eq!(tx.send("1".into()).await, Err(Closed));
        assert_eq!(tx.queued_bytes(), 0);
        assert!(tx.is_closed() && tx.has_overflowed());
        assert_eq!(rx.recv().await, None);
        assert_eq!(tx.send("1".into()).await, Err(Closed));
    }

    #[tokio::test]
    async fn a_queue_over_its_message_count_closes() {
        let (tx, mut rx) = channel("t", 2, 1000);
        tx.try_send("a".into()).unwrap();
        tx.try_send("b".into()).unwrap();
        assert!(tx.try_send("c".into()).is_err());
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn offers_that_do_not_fit_are_dropped_without_closing() {
        let (tx, mut rx) = channel("t", 1, 1000);
        assert!(tx.offer("a".into()));
        assert!(!tx.offer("b".into()));
        assert!(!tx.is_closed());
        assert_eq!(rx.recv().await.as_deref(), Some("a"));
        tx.send("c".into()).await.unwrap();
        assert_eq!(rx.try_recv().as_deref(), Some("c"));
    }

    #[tokio::test]
    async fn one_large_message_fits_an_empty_queue_and_a_reader_keeps_it_flowing() {
        let (tx, mut rx) = channel("t", 10, 4);
        tx.send("0123456789".into()).await.unwrap();
        assert_eq!(rx.recv().await.as_deref(), Some("0123456789"));
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
                if n == 100 {
                    break;
                }
            }
            n
        });
        for _ in 0..100 {
            while tx.queued_bytes() > 0 {
                tokio::task::yield_now().await;
            }
            tx.send("abc".into()).await.unwrap();
        }
        assert_eq!(reader.await.unwrap(), 100);
    }

    #[tokio::test]
    async fn dropping_the_reader_closes_the_sender() {
        let (tx, rx) = channel("t", 10, 100);
        drop(rx);
        tx.closed().await;
        assert!(tx.send("x".into()).await.is_err());
        assert!(!tx.has_overflowed());
    }
}
