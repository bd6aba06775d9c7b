//! Incremental framing of streamed response bodies: Server-Sent Events and JSON lines.
//!
//! Follows the SSE rules of the WHATWG HTML spec (section "Server-sent events", parsing an
//! event stream) with the leniencies real engines need: lines end with `\n`, `\r\n` or `\r`;
//! `data:` may or may not be followed by a space; `:` lines are comments (keep-alives);
//! several `data:` lines join with `\n`; payloads are trimmed (TensorRT-LLM adds a trailing
//! space); the stream may end without a blank line or `[DONE]`.
//!
//! Memory is bounded: an event (or a line without a terminator) longer than the limit is an
//! error rather than an ever-growing buffer.

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream`
    Sse,
    /// one JSON object per line (`application/x-ndjson`, Ollama's native API)
    JsonLines,
}

/// A framing error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "an event exceeded {limit} bytes without ending (the stream is corrupt, or raise --max-event-bytes); the rest was not read"
    )]
    TooLarge { limit: usize },
}

/// One complete event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, if any.
    pub name: Option<&'a str>,
    /// The data payload, trimmed.
    pub data: &'a [u8],
}

/// The incremental parser. Feed it body bytes as they arrive; it calls back once per event.
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    buf: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    skip_lf: bool,
    limit: usize,
}

/// Default largest event: 16 MiB.
pub const DEFAULT_LIMIT: usize = 16 << 20;

impl Framer {
    pub fn new(framing: Framing) -> Framer {
        Framer::with_limit(framing, DEFAULT_LIMIT)
    }

    pub fn with_limit(framing: Framing, limit: usize) -> Framer {
        Framer {
            framing,
            buf: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: None,
            skip_lf: false,
            limit,
        }
    }

    /// Bytes held while waiting for the rest of a line or event.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.data.len()
    }

    /// Feed bytes; `on_event` is called for each event completed by them.
    pub fn feed(&mut self, mut chunk: &[u8], on_event: &mut dyn FnMut(Event<'_>)) -> Result<(), FrameError> {
        if chunk.is_empty() {
            // nothing new; above all, a CR's pending LF check waits for real bytes
            return Ok(());
        }
        if self.skip_lf {
            if let Some(b'\n') = chunk.first() {
                chunk = &chunk[1..];
            }
            self.skip_lf = false;
        }
        // Fast path: nothing buffered, work on the chunk in place.
        let owned;
        let bytes: &[u8] = if self.buf.is_empty() {
            chunk
        } else {
            self.buf.extend_from_slice(chunk);
            owned = std::mem::take(&mut self.buf);
            &owned
        };
        let mut start = 0;
        let n = bytes.len();
        // Line ends found with memchr (SIMD), not byte by byte.
        while let Some(off) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
            let mut i = start + off;
            let line = &bytes[start..i];
            if bytes[i] == b'\r' {
                if i + 1 < n {
                    if bytes[i + 1] == b'\n' {
                        i += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            self.line(line, on_event)?;
            start = i + 1;
        }
        let rest = &bytes[start..];
        if rest.len() + self.data.len() > self.limit {
            self.buf.clear();
            self.data.clear();
            return Err(FrameError::TooLarge { limit: self.limit });
        }
        self.buf.clear();
        self.buf.extend_from_slice(rest);
        Ok(())
    }

    /// End of body: dispatch an event left without its terminating blank line.
    pub fn finish(&mut self, on_event: &mut dyn FnMut(Event<'_>)) -> Result<(), FrameError> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.line(&rest, on_event)?;
        }
        if self.framing == Framing::Sse && self.has_data {
            self.dispatch(on_event);
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], on_event: &mut dyn FnMut(Event<'_>)) -> Result<(), FrameError> {
        match self.framing {
            Framing::JsonLines => {
                let t = trim(line);
                if !t.is_empty() {
                    on_event(Event { name: None, data: t });
                }
                Ok(())
            }
            Framing::Sse => {
                if line.is_empty() {
                    if self.has_data {
                        self.dispatch(on_event);
                    } else {
                        self.event = None;
                    }
                    return Ok(());
                }
                if line[0] == b':' {
                    return Ok(()); // comment / keep-alive
                }
                let (field, value) = match memchr::memchr(b':', line) {
                    Some(p) => {
                        let v = &line[p + 1..];
                        (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                match field {
                    b"data" => {
                        if self.has_data {
                            self.data.push(b'\n');
                        }
                        if self.data.len() + value.len() > self.limit {
                            self.data.clear();
                            self.has_data = false;
                            return Err(FrameError::TooLarge { limit: self.limit });
                        }
                        self.data.extend_from_slice(value);
                        self.has_data = true;
                    }
                    b"event" => self.event = Some(String::from_utf8_lossy(trim(value)).into_owned()),
                    _ => {} // id, retry, unknown fields: ignored as the spec says
                }
                Ok(())
            }
        }
    }

    fn dispatch(&mut self, on_event: &mut dyn FnMut(Event<'_>)) {
        let name = self.event.take();
        on_event(Event {
            name: name.as_deref(),
            data: trim(&self.data),
        });
        self.data.clear();
        self.has_data = false;
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map(|p| p + 1)
        .unwrap_or(s);
    &b[s..e.max(s)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(framing: Framing, parts: &[&[u8]]) -> Vec<(Option<String>, String)> {
        let mut f = Framer::new(framing);
        let mut out = Vec::new();
        let mut cb = |e: Event<'_>| {
            out.push((
                e.name.map(|s| s.to_string()),
                String::from_utf8_lossy(e.data).to_string(),
            ))
        };
        for p in parts {
            f.feed(p, &mut cb).unwrap();
        }
        f.finish(&mut cb).unwrap();
        out
    }

    fn d(s: &str) -> (Option<String>, String) {
        (None, s.to_string())
    }

    #[test]
    fn spaces_comments_and_line_endings() {
        let v = events(
            Framing::Sse,
            &[b"data: a\n\ndata:b\r\n\r\n: keep-alive\n\ndata: {\"x\":1} \r\rdata: end"],
        );
        assert_eq!(v, vec![d("a"), d("b"), d("{\"x\":1}"), d("end")]);
    }

    #[test]
    fn split_anywhere() {
        let whole = b"data: one\r\n\r\nevent: e\ndata: two\ndata: three\n\n";
        for cut in 0..whole.len() {
            let v = events(Framing::Sse, &[&whole[..cut], &whole[cut..]]);
            assert_eq!(v, vec![d("one"), (Some("e".into()), "two\nthree".into())], "cut {cut}");
        }
        // byte by byte
        let parts: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events(Framing::Sse, &parts).len(), 2);
    }

    /// An empty piece between a CR and its LF (hyper may yield empty data frames) must not
    /// turn the LF into a blank line that ends the event early.
    #[test]
    fn empty_piece_between_cr_and_lf() {
        let whole = events(Framing::Sse, &[b"data: a\r\ndata: b\r\n\r\n"]);
        let split = events(Framing::Sse, &[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(whole, vec![d("a\nb")]);
        assert_eq!(split, whole);
    }

    #[test]
    fn json_lines() {
        let v = events(Framing::JsonLines, &[b"{\"a\":1}\n{\"b\"", b":2}\r\n\n{\"c\":3}"]);
        assert_eq!(v, vec![d("{\"a\":1}"), d("{\"b\":2}"), d("{\"c\":3}")]);
    }

    #[test]
    fn bounded() {
        let mut f = Framer::with_limit(Framing::Sse, 100);
        let big = vec![b'x'; 300];
        let mut cb = |_: Event<'_>| {};
        assert!(f.feed(b"data: ", &mut cb).is_ok());
        assert!(matches!(f.feed(&big, &mut cb), Err(FrameError::TooLarge { .. })));
        assert!(f.buffered() <= 100);
    }
}
