//! A reader of the mock's bytes for the mock's own tests. It shares nothing with replay's
//! parsers (`client::sse`, `client::protocol`): a test that read the mock through them could
//! not catch their bugs, and a bug they share with the mock would pass unseen.

use serde_json::Value;

use super::format::Proto;

/// One event's payload.
#[derive(Debug)]
pub enum Event {
    Json(Value),
    /// `[DONE]`
    Done,
    /// Neither JSON nor `[DONE]`, or a line that is not an SSE field.
    Unreadable,
}

fn payload(b: &[u8]) -> Event {
    if b == b"[DONE]" {
        return Event::Done;
    }
    match serde_json::from_slice(b) {
        Ok(v) => Event::Json(v),
        Err(_) => Event::Unreadable,
    }
}

/// The payloads of a stream: SSE events (`data:` lines, ended by a blank line), or JSON lines.
pub fn events(bytes: &[u8], json_lines: bool) -> Vec<Event> {
    let mut out = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for line in bytes.split(|&b| b == b'\n') {
        if json_lines {
            if !line.is_empty() {
                out.push(payload(line));
            }
            continue;
        }
        if line.is_empty() {
            if let Some(d) = data.take() {
                out.push(payload(&d));
            }
        } else if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            let d = data.get_or_insert_with(Vec::new);
            if !d.is_empty() {
                d.push(b'\n');
            }
            d.extend_from_slice(rest);
        } else {
            out.push(Event::Unreadable);
        }
    }
    if let Some(d) = data {
        out.push(payload(&d));
    }
    out
}

/// What a stream said, read the way each engine documents its fields.
#[derive(Debug, Default)]
pub struct Reply {
    pub text: String,
    /// The output tokens the server reported.
    pub usage_tokens: Option<u64>,
    /// The finish reason as the protocol spells it (llama.cpp: its `stop_type`).
    pub finish: Option<String>,
    /// `[DONE]`, or the protocol's last event (TGI's details, llama.cpp's stop, Ollama's done).
    pub done: bool,
    pub error: Option<String>,
    pub unreadable: usize,
}

/// An error object's message: `{"error": "..."}`, `{"error": {"message": ...}}` or
/// `{"object": "error", "message": ...}`.
pub fn error_message(v: &Value) -> Option<String> {
    match &v["error"] {
        Value::String(s) => return Some(s.clone()),
        Value::Object(o) => return Some(o.get("message")?.as_str()?.to_string()),
        _ => {}
    }
    if v["object"] == "error" {
        return Some(v["message"].as_str()?.to_string());
    }
    None
}

/// Read a whole stream of `proto`.
pub fn read(proto: Proto, bytes: &[u8]) -> Reply {
    let mut r = Reply::default();
    let str_of = |v: &Value| v.as_str().map(str::to_string);
    for e in events(bytes, proto == Proto::Ollama) {
        let v = match e {
            Event::Done => {
                r.done = true;
                continue;
            }
            Event::Unreadable => {
                r.unreadable += 1;
                continue;
            }
            Event::Json(v) => v,
        };
        if let Some(m) = error_message(&v) {
            r.error = Some(m);
            continue;
        }
        match proto {
            Proto::Chat | Proto::Completions => {
                let c = &v["choices"][0];
                let piece = if proto == Proto::Chat {
                    &c["delta"]["content"]
                } else {
                    &c["text"]
                };
                r.text.push_str(piece.as_str().unwrap_or(""));
                r.finish = str_of(&c["finish_reason"]).or(r.finish.take());
                r.usage_tokens = v["usage"]["completion_tokens"].as_u64().or(r.usage_tokens);
            }
            Proto::Tgi => {
                r.text.push_str(v["token"]["text"].as_str().unwrap_or(""));
                if v["details"].is_object() {
                    r.usage_tokens = v["details"]["generated_tokens"].as_u64();
                    r.finish = str_of(&v["details"]["finish_reason"]);
                    r.done = true;
                }
            }
            Proto::Sglang => {
                // cumulative text: each event holds everything so far
                r.text = v["text"].as_str().unwrap_or("").to_string();
                r.usage_tokens = v["meta_info"]["completion_tokens"].as_u64();
                r.finish = str_of(&v["meta_info"]["finish_reason"]["type"]).or(r.finish.take());
            }
            Proto::Llamacpp => {
                r.text.push_str(v["content"].as_str().unwrap_or(""));
                if v["stop"] == true {
                    r.usage_tokens = v["tokens_predicted"].as_u64();
                    r.finish = str_of(&v["stop_type"]);
                    r.done = true;
                }
            }
            Proto::Ollama => {
                r.text.push_str(v["response"].as_str().unwrap_or(""));
                if v["done"] == true {
                    r.usage_tokens = v["eval_count"].as_u64();
                    r.finish = str_of(&v["done_reason"]);
                    r.done = true;
                }
            }
        }
    }
    r
}
