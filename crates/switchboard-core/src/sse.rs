//! An incremental Server-Sent Events decoder and encoder (the parts MCP uses).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; empty means the default type `message`.
    pub event: String,
    /// The joined `data:` lines.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
    /// The `retry:` field, if any.
    pub retry: Option<u64>,
}

impl Event {
    /// The event type, defaulting to `message`.
    pub fn kind(&self) -> &str {
        if self.event.is_empty() {
            "message"
        } else {
            &self.event
        }
    }
}

/// Feeds bytes in, gets complete events out. Partial lines are kept between calls.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    current: Event,
    has_data: bool,
    /// Set when the last byte seen was `\r`, so a following `\n` is not a second line end.
    after_cr: bool,
    /// Upper bound on one event's size; a larger event is an error.
    max_event: usize,
}

/// An event grew past the decoder's limit.
#[derive(Debug, thiserror::Error)]
#[error("server-sent event larger than {0} bytes")]
pub struct TooLarge(pub usize);

impl Decoder {
    /// A decoder that refuses events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Decoder {
            max_event,
            ..Default::default()
        }
    }

    /// Decodes `chunk`, appending finished events to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' && self.after_cr {
                self.after_cr = false;
                start = i + 1;
                continue;
            }
            self.after_cr = false;
            if b == b'\n' || b == b'\r' {
                self.buf.extend_from_slice(&chunk[start..i]);
                let line = std::mem::take(&mut self.buf);
                self.line(&line, out);
                self.after_cr = b == b'\r';
                start = i + 1;
            }
        }
        self.buf.extend_from_slice(&chunk[start..]);
        if self.buf.len() + self.current.data.len() > self.max_event {
            return Err(TooLarge(self.max_event));
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                let mut ev = std::mem::take(&mut self.current);
                if ev.data.ends_with('\n') {
                    ev.data.pop();
                }
                out.push(ev);
            } else {
                // An event without data is not dispatched, but its id still counts.
                let id = self.current.id.take();
                self.current = Event {
                    id,
                    ..Default::default()
                };
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.current.event = value.to_string(),
            "data" => {
                self.current.data.push_str(value);
                self.current.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.current.id = Some(value.to_string()),
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
    }
}

/// Encodes one event. Multi-line data is split into several `data:` lines.
pub fn encode(event: Option<&str>, id: Option<&str>, data: &str) -> String {
    let mut s = String::with_capacity(data.len() + 32);
    if let Some(e) = event {
        s.push_str("event: ");
        s.push_str(e);
        s.push('\n');
    }
    if let Some(i) = id {
        s.push_str("id: ");
        s.push_str(i);
        s.push('\n');
    }
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line.strip_suffix('\r').unwrap_or(line));
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_across_chunks() {
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        d.feed(
            b"event: endpoint\r\ndata: /messages?sessionId=1\r",
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        d.feed(b"\n\r\n: comment\ndata: {\"a\":\ndata: 1}\n\n", &mut out)
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].kind(), "endpoint");
        assert_eq!(out[0].data, "/messages?sessionId=1");
        assert_eq!(out[1].kind(), "message");
        assert_eq!(out[1].data, "{\"a\":\n1}");
    }

    #[test]
    fn round_trips_multiline_data() {
        let enc = encode(Some("message"), Some("7"), "a\nb");
        let mut d = Decoder::new(1024);
        let mut out = Vec::new();
        d.feed(enc.as_bytes(), &mut out).unwrap();
        assert_eq!(out[0].data, "a\nb");
        assert_eq!(out[0].id.as_deref(), Some("7"));
    }

    #[test]
    fn refuses_oversized_events() {
        let mut d = Decoder::new(8);
        let mut out = Vec::new();
        assert!(d.feed(b"data: 0123456789", &mut out).is_err());
    }
}
