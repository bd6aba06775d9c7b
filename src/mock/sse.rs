//! The mock's one stream writer: every streamed event of every protocol is framed here.
//!
//! The OpenAI routes (chat, completions), TGI's `/generate_stream`, SGLang's `/generate` and
//! llama.cpp's `/completion` are Server-Sent Events: each event is `data: BODY` and a blank
//! line, and the OpenAI routes and SGLang end the stream with `data: [DONE]`. Ollama's
//! `/api/generate` is JSON lines (`BODY` and a newline) and goes through the same door, so
//! no other file of the mock writes framing bytes.

use super::format::Proto;

/// What opens an SSE event.
pub const DATA: &[u8] = b"data: ";
/// What closes an SSE event: the blank line.
pub const END: &[u8] = b"\n\n";
/// The OpenAI-style end-of-stream sentinel, a whole event.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// How a protocol frames its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `data: BODY\n\n`
    Sse,
    /// `BODY\n` (Ollama)
    JsonLines,
}

impl Framing {
    pub fn of(proto: Proto) -> Framing {
        match proto {
            Proto::Ollama => Framing::JsonLines,
            _ => Framing::Sse,
        }
    }

    /// The bytes that open an event (for an event written in pieces).
    pub fn open(self) -> &'static [u8] {
        match self {
            Framing::Sse => DATA,
            Framing::JsonLines => b"",
        }
    }

    /// The bytes that close an event.
    pub fn close(self) -> &'static [u8] {
        match self {
            Framing::Sse => END,
            Framing::JsonLines => b"\n",
        }
    }
}

/// Appends framed events to a buffer.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    framing: Framing,
}

impl<'a> Writer<'a> {
    /// A writer in `proto`'s framing.
    pub fn new(out: &'a mut Vec<u8>, proto: Proto) -> Writer<'a> {
        Writer::framed(out, Framing::of(proto))
    }

    pub fn framed(out: &'a mut Vec<u8>, framing: Framing) -> Writer<'a> {
        Writer { out, framing }
    }

    /// One event, its body written by `body`.
    pub fn event(&mut self, body: impl FnOnce(&mut Vec<u8>)) {
        self.out.extend_from_slice(self.framing.open());
        body(self.out);
        self.out.extend_from_slice(self.framing.close());
    }

    /// One event with a body given whole.
    pub fn event_bytes(&mut self, body: &[u8]) {
        self.event(|o| o.extend_from_slice(body));
    }

    /// The `data: [DONE]` sentinel (JSON lines have none: their last object says `done`).
    pub fn done(&mut self) {
        if self.framing == Framing::Sse {
            self.out.extend_from_slice(DONE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_per_protocol() {
        let mut v = Vec::new();
        let mut w = Writer::new(&mut v, Proto::Chat);
        w.event_bytes(b"{}");
        w.done();
        assert_eq!(v, b"data: {}\n\ndata: [DONE]\n\n");
        let mut v = Vec::new();
        let mut w = Writer::new(&mut v, Proto::Ollama);
        w.event_bytes(b"{}");
        w.done();
        assert_eq!(v, b"{}\n");
    }
}
