//! Fault injection for mock-engine: the ways real engines and networks fail, on demand, so
//! that replay's promises (one row per trace row with the right status, no hang, bounded
//! memory) are tested end to end.
//!
//! `--fault KIND[:RATE]` (repeatable) makes a share RATE (default 1: every request) of the
//! requests fail as KIND. Which requests fail is a seeded draw on the server's request number
//! (`--fault-seed`); the rates of several faults partition the requests (they must sum to at
//! most 1), so `--fault http-503:0.1 --fault reset-mid:0.1` fails 10% each, never both.
//!
//! Error bodies and in-stream error events are each engine's own bytes (see ENGINES.md and
//! tests/fixtures/sse): the engine is chosen by `--fault-style`, else by the route (OpenAI
//! routes: vLLM; `/generate_stream`: TGI; `/generate`: SGLang; `/completion`: llama.cpp;
//! `/api/generate`: Ollama).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::format::Proto;
use super::sse::{self, Framing, Writer};
use crate::trace::tokens::SplitMix;

/// One way to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Read the request, then reset the connection (RST) before any response header.
    Reset,
    /// Reset the connection (RST) mid-stream, after `--fault-after` content chunks.
    ResetMid,
    /// Answer with this HTTP status (429, 500 or 503) and the engine's error body.
    Http(u16),
    /// HTTP 200, then the engine's in-stream error event after `--fault-after` chunks.
    ErrorEvent,
    /// Stop sending after `--fault-after` chunks, keeping the connection open forever.
    Stall,
    /// A complete stream without its `data: [DONE]` terminator (valid: replay must say ok).
    NoDone,
    /// Garbage and invalid UTF-8 after `--fault-after` chunks, then the end of the body.
    Garbage,
    /// One event of `--fault-event-bytes` (10 MiB) after `--fault-after` chunks.
    HugeEvent,
    /// Drip the response one byte every `--fault-drip-ms` (1 s): a slow-loris server.
    SlowDrip,
}

impl FaultKind {
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::Reset,
        FaultKind::ResetMid,
        FaultKind::Http(429),
        FaultKind::Http(500),
        FaultKind::Http(503),
        FaultKind::ErrorEvent,
        FaultKind::Stall,
        FaultKind::NoDone,
        FaultKind::Garbage,
        FaultKind::HugeEvent,
        FaultKind::SlowDrip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::ResetMid => "reset-mid",
            FaultKind::Http(429) => "http-429",
            FaultKind::Http(500) => "http-500",
            FaultKind::Http(_) => "http-503",
            FaultKind::ErrorEvent => "error-event",
            FaultKind::Stall => "stall",
            FaultKind::NoDone => "no-done",
            FaultKind::Garbage => "garbage",
            FaultKind::HugeEvent => "huge-event",
            FaultKind::SlowDrip => "slow-drip",
        }
    }

    fn index(self) -> usize {
        FaultKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    /// Faults that happen before the response headers.
    pub fn before_headers(self) -> bool {
        matches!(self, FaultKind::Reset | FaultKind::Http(_))
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultKind, String> {
        FaultKind::ALL.iter().copied().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault {s:?}: use one of {}", names.join(", "))
        })
    }
}

/// `KIND[:RATE]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultSpec {
    pub kind: FaultKind,
    pub rate: f64,
}

impl FromStr for FaultSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultSpec, String> {
        let (k, r) = match s.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (s, None),
        };
        let kind: FaultKind = k.trim().parse()?;
        let rate = match r {
            None => 1.0,
            Some(r) => r
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (0.0..=1.0).contains(v))
                .ok_or_else(|| format!("--fault {s:?}: the rate must be a number from 0 to 1, e.g. {k}:0.2"))?,
        };
        Ok(FaultSpec { kind, rate })
    }
}

/// Whose error bytes to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    Vllm,
    Sglang,
    Tgi,
    Trtllm,
    Llamacpp,
    Ollama,
}

impl Style {
    /// The engine a route belongs to, when no style is given.
    pub fn of_route(p: Proto) -> Style {
        match p {
            Proto::Chat | Proto::Completions => Style::Vllm,
            Proto::Tgi => Style::Tgi,
            Proto::Sglang => Style::Sglang,
            Proto::Llamacpp => Style::Llamacpp,
            Proto::Ollama => Style::Ollama,
        }
    }
}

/// The fault plan of a server, and what it injected so far.
#[derive(Debug)]
pub struct Faults {
    pub specs: Vec<FaultSpec>,
    pub seed: u64,
    /// Content chunks sent before a mid-stream fault.
    pub after: u32,
    pub style: Option<Style>,
    /// Size of the `huge-event` event.
    pub event_bytes: usize,
    /// Pause between bytes of `slow-drip`.
    pub drip: Duration,
    fired: Vec<AtomicU64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(Vec::new())
    }
}

impl Clone for Faults {
    fn clone(&self) -> Self {
        Faults {
            specs: self.specs.clone(),
            seed: self.seed,
            after: self.after,
            style: self.style,
            event_bytes: self.event_bytes,
            drip: self.drip,
            fired: FaultKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Faults {
    pub fn new(specs: Vec<FaultSpec>) -> Faults {
        Faults {
            specs,
            seed: 0,
            after: 2,
            style: None,
            event_bytes: 10 << 20,
            drip: Duration::from_secs(1),
            fired: FaultKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let sum: f64 = self.specs.iter().map(|s| s.rate).sum();
        if sum > 1.0 + 1e-9 {
            return Err(format!(
                "the --fault rates add up to {sum}; they share the requests, so they must add up to at most 1"
            ));
        }
        if self.drip.is_zero() {
            return Err("--fault-drip-ms must be at least 1".into());
        }
        Ok(())
    }

    pub fn any(&self) -> bool {
        !self.specs.is_empty()
    }

    /// The fault (if any) of the server's request number `n`: a seeded uniform draw, placed
    /// on the faults' rates laid end to end.
    pub fn pick(&self, n: u64) -> Option<FaultKind> {
        if self.specs.is_empty() {
            return None;
        }
        let mut m = SplitMix(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xFA17);
        let u = (m.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut acc = 0.0;
        for s in &self.specs {
            acc += s.rate;
            if u < acc {
                return Some(s.kind);
            }
        }
        None
    }

    /// Count a fault that happened.
    pub fn fired(&self, k: FaultKind) {
        self.fired[k.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How many faults of each configured kind happened.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for s in &self.specs {
            let name = s.kind.name();
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, self.fired[s.kind.index()].load(Ordering::Relaxed)));
            }
        }
        out
    }
}

fn status_text(code: u16) -> (&'static str, &'static str) {
    match code {
        429 => ("Too many requests: rate limit reached, retry later", "TooManyRequests"),
        500 => ("Internal server error", "InternalServerError"),
        _ => (
            "The engine is currently busy and cannot accept new requests. Please try again later or on a different instance.",
            "Service Unavailable",
        ),
    }
}

/// The body of an HTTP error response (status `code`) in an engine's own shape.
pub fn http_error_body(style: Style, code: u16) -> String {
    let (msg, ty) = status_text(code);
    let j = |v: serde_json::Value| v.to_string();
    match style {
        // vLLM: {"error":{message,type,param,code}} (serve/exception_handling)
        Style::Vllm => j(serde_json::json!({"error": {"message": msg, "type": ty, "param": null, "code": code}})),
        // SGLang and TensorRT-LLM OpenAI routes: not wrapped, object "error"
        Style::Sglang | Style::Trtllm => {
            j(serde_json::json!({"object": "error", "message": msg, "type": ty, "param": null, "code": code}))
        }
        // TGI: {"error","error_type"}
        Style::Tgi => {
            j(serde_json::json!({"error": msg, "error_type": if code == 500 { "generation" } else { "overloaded" }}))
        }
        // llama.cpp: {"error":{code,message,type}}
        Style::Llamacpp => j(serde_json::json!({"error": {"code": code, "message": msg,
            "type": if code == 500 { "server_error" } else { "unavailable_error" }}})),
        // Ollama: {"error":"..."}
        Style::Ollama => j(serde_json::json!({"error": msg})),
    }
}

/// What an in-stream error looks like for an engine and route: the bytes, and whether the
/// engine then drops the connection instead of ending the body.
pub fn error_event(style: Style, proto: Proto) -> (Vec<u8>, bool) {
    // (the event's body, whether `[DONE]` follows it)
    let (body, done): (&str, bool) = match (style, proto) {
        (Style::Vllm, Proto::Completions) => (
            "{\"error\": {\"message\": \"Internal server error\", \"type\": \"InternalServerError\", \"param\": null, \"code\": 500}}",
            true,
        ),
        (Style::Vllm, _) => (
            "{\"error\":{\"message\":\"Internal server error\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}",
            true,
        ),
        (Style::Sglang, Proto::Sglang) => (
            "{\"error\":{\"message\":\"The request queue is full.\",\"type\":\"invalid_request_error\",\"code\":503,\"retryable\":true}}",
            true,
        ),
        (Style::Sglang, _) => (
            "{\"error\": {\"object\": \"error\", \"message\": \"The request queue is full.\", \"type\": \"SERVICE_UNAVAILABLE\", \"param\": null, \"code\": 503}}",
            true,
        ),
        (Style::Tgi, Proto::Tgi) => (
            "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
            false,
        ),
        (Style::Tgi, _) => (
            "{\"error\":{\"message\":\"Model is overloaded\",\"http_status_code\":422}}",
            true,
        ),
        // TensorRT-LLM chat has no error event: the connection is dropped.
        (Style::Trtllm, Proto::Chat) => return (Vec::new(), true),
        (Style::Trtllm, _) => (
            "{\"error\": {\"message\": \"Generation failed: Encountered an error in forwardAsync function\", \"type\": \"server_error\", \"code\": null, \"param\": null}}",
            true,
        ),
        // llama.cpp: one error event, then the stream closes without [DONE].
        (Style::Llamacpp, _) => (
            "{\"error\":{\"code\":500,\"message\":\"llama_decode failed: out of KV cache slots\",\"type\":\"server_error\"}}",
            false,
        ),
        (Style::Ollama, Proto::Ollama) => (
            "{\"error\":\"an error was encountered while running the model: unexpected EOF\"}",
            false,
        ),
        (Style::Ollama, _) => (
            "{\"error\":{\"message\":\"an error was encountered while running the model\",\"type\":\"api_error\",\"param\":null,\"code\":null}}",
            false,
        ),
    };
    // The engine's own framing: JSON lines only for Ollama's error on its own route (another
    // engine's error on the Ollama route stays SSE, as that engine would write it).
    let framing = match (style, proto) {
        (Style::Ollama, Proto::Ollama) => Framing::JsonLines,
        _ => Framing::Sse,
    };
    let mut out = Vec::new();
    let mut w = Writer::framed(&mut out, framing);
    w.event_bytes(body.as_bytes());
    if done {
        w.done();
    }
    (out, false)
}

/// Garbage: an event of bytes that are neither JSON nor UTF-8, then a raw binary line
/// (each followed by a blank line, on every protocol).
pub fn garbage(proto: Proto) -> Vec<u8> {
    let mut v = Framing::of(proto).open().to_vec();
    v.extend_from_slice(b"\xff\xfe\x00garbage {{{ \xc3\x28 \x80\x81");
    v.extend_from_slice(sse::END);
    v.extend_from_slice(b"\x00\x01\x02\xfe\xff");
    v.extend_from_slice(sse::END);
    v
}

/// The start of the huge event: its opening and a JSON string that [`huge_event_end`] closes,
/// the filler in between.
pub fn huge_event_start(proto: Proto) -> Vec<u8> {
    let mut v = Framing::of(proto).open().to_vec();
    v.extend_from_slice(b"{\"padding\":\"");
    v
}

/// The end of the huge event (a blank line after it on every protocol).
pub fn huge_event_end(v: &mut Vec<u8>) {
    v.extend_from_slice(b"\"}");
    v.extend_from_slice(sse::END);
}

/// Make the socket reset (RST) when it is closed: SO_LINGER on, timeout 0.
pub fn set_reset_on_close(fd: std::os::fd::RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is a socket owned by the live connection that asked for this; the option
    // value is a valid linger struct of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::read_back;

    #[test]
    fn specs_parse_and_rates_partition() {
        let s: FaultSpec = "http-503:0.25".parse().unwrap();
        assert_eq!((s.kind, s.rate), (FaultKind::Http(503), 0.25));
        assert_eq!("stall".parse::<FaultSpec>().unwrap().rate, 1.0);
        assert!("nope".parse::<FaultSpec>().unwrap_err().contains("reset-mid"));
        assert!("stall:2".parse::<FaultSpec>().is_err());
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>().unwrap(), *k);
        }
        let mut f = Faults::new(vec!["reset:0.2".parse().unwrap(), "stall:0.3".parse().unwrap()]);
        f.seed = 5;
        f.validate().unwrap();
        let n = 20_000;
        let picks: Vec<Option<FaultKind>> = (0..n).map(|i| f.pick(i)).collect();
        let share = |k: Option<FaultKind>| picks.iter().filter(|p| **p == k).count() as f64 / n as f64;
        assert!((share(Some(FaultKind::Reset)) - 0.2).abs() < 0.02);
        assert!((share(Some(FaultKind::Stall)) - 0.3).abs() < 0.02);
        assert!((share(None) - 0.5).abs() < 0.02);
        // seeded: the same requests fail every time
        assert_eq!(picks, (0..n).map(|i| f.pick(i)).collect::<Vec<_>>());
        let too_much = Faults::new(vec!["reset:0.7".parse().unwrap(), "stall:0.7".parse().unwrap()]);
        assert!(too_much.validate().is_err());
    }

    /// Every engine's error body reads back, through the mock's own test reader, as its message.
    #[test]
    fn error_bodies_read_back_with_their_message() {
        for style in [
            Style::Vllm,
            Style::Sglang,
            Style::Tgi,
            Style::Trtllm,
            Style::Llamacpp,
            Style::Ollama,
        ] {
            for code in [429, 500, 503] {
                let body = http_error_body(style, code);
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let m = read_back::error_message(&v);
                assert_eq!(m.as_deref(), Some(status_text(code).0), "{style:?} {code}: {body}");
            }
        }
    }

    /// Every in-stream error event reads back as an error (a readable one with its message
    /// where the engine writes the route's framing), and garbage as unreadable.
    #[test]
    fn error_events_are_errors() {
        for style in [
            Style::Vllm,
            Style::Sglang,
            Style::Tgi,
            Style::Trtllm,
            Style::Llamacpp,
            Style::Ollama,
        ] {
            for proto in [
                Proto::Chat,
                Proto::Completions,
                Proto::Tgi,
                Proto::Sglang,
                Proto::Llamacpp,
                Proto::Ollama,
            ] {
                let (bytes, drop) = error_event(style, proto);
                if drop {
                    continue;
                }
                let r = read_back::read(proto, &bytes);
                let shown = String::from_utf8_lossy(&bytes);
                if proto == Proto::Ollama && style != Style::Ollama {
                    // another engine's SSE error on Ollama's JSON-lines route
                    assert!(r.error.is_some() || r.unreadable > 0, "{style:?} {proto:?}: {shown}");
                } else {
                    let m = r.error.unwrap_or_default();
                    assert!(!m.is_empty(), "{style:?} {proto:?}: {shown}");
                    assert_eq!(r.unreadable, 0, "{style:?} {proto:?}: {shown}");
                }
                assert!(r.text.is_empty(), "{style:?} {proto:?}");
                let r = read_back::read(proto, &garbage(proto));
                assert!(r.unreadable > 0 && r.error.is_none(), "{proto:?}: {r:?}");
            }
        }
    }
}
