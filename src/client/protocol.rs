//! Streaming protocols: how to ask each API for a streamed generation, and how to read its
//! events into content chunks, token counts, finish reasons and errors.
//!
//! Facts used here come from each engine's serialization code as summarised in
//! ENGINES.md (vLLM 0.33, SGLang 0.5.23, TGI 3.3, TensorRT-LLM serve, llama.cpp server,
//! Ollama 0.33, Friendli docs). The rules, whatever the engine:
//! - a content chunk is an event that carries generated output: non-empty text, reasoning
//!   text, tool calls, or an increase of the server's own token counter;
//! - any event whose JSON has a top-level `error` (string or object), an SGLang `abort`
//!   finish, or a finish reason of `error`/`abort`, is an error even after HTTP 200;
//! - output tokens come from the server (final usage, or its running counter), else from
//!   the number of content chunks.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::sse::{Event, Framing};

/// The protocol replay speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// OpenAI /v1/chat/completions (vLLM, SGLang, TGI, TensorRT-LLM, Friendli, llama.cpp, Ollama)
    Chat,
    /// OpenAI /v1/completions
    Completions,
    /// TGI native /generate_stream
    Tgi,
    /// SGLang native /generate (cumulative text; counts from meta_info)
    Sglang,
    /// llama.cpp native /completion
    Llamacpp,
    /// Ollama native /api/generate (JSON lines)
    Ollama,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
            Api::Tgi => "tgi",
            Api::Sglang => "sglang",
            Api::Llamacpp => "llamacpp",
            Api::Ollama => "ollama",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
            Api::Tgi => "/generate_stream",
            Api::Sglang => "/generate",
            Api::Llamacpp => "/completion",
            Api::Ollama => "/api/generate",
        }
    }

    pub fn framing(self) -> Framing {
        match self {
            Api::Ollama => Framing::JsonLines,
            _ => Framing::Sse,
        }
    }

    pub fn from_name(s: &str) -> Option<Api> {
        Some(match s {
            "chat" => Api::Chat,
            "completions" => Api::Completions,
            "tgi" => Api::Tgi,
            "sglang" => Api::Sglang,
            "llamacpp" => Api::Llamacpp,
            "ollama" => Api::Ollama,
            _ => return None,
        })
    }

    pub fn needs_model(self) -> bool {
        matches!(self, Api::Chat | Api::Completions | Api::Ollama)
    }
}

/// How every request of a run is built.
#[derive(Debug, Clone)]
pub struct RequestOpts {
    pub model: Option<String>,
    /// Ask the server to ignore end-of-sequence so output length equals max_tokens.
    pub ignore_eos: bool,
    /// Ask for usage on every chunk (vLLM, SGLang, TensorRT-LLM): exact tokens per chunk.
    pub continuous_usage: bool,
    pub temperature: Option<f64>,
    /// Merged into every request body (objects merge key by key; other values replace).
    pub extra_body: Option<Map<String, Value>>,
}

impl Default for RequestOpts {
    fn default() -> Self {
        RequestOpts {
            model: None,
            ignore_eos: true,
            continuous_usage: true,
            temperature: None,
            extra_body: None,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// Build the JSON body of a streamed request. `history` holds earlier turns of a session
/// (user and assistant messages); `prompt` is this turn's user text.
pub fn build_body(api: Api, o: &RequestOpts, history: &[Message], prompt: &str, max_tokens: u32) -> Vec<u8> {
    let model = o.model.clone().unwrap_or_default();
    let flat = || {
        if history.is_empty() {
            prompt.to_string()
        } else {
            let mut s = String::new();
            for m in history {
                s.push_str(&m.content);
                s.push('\n');
            }
            s.push_str(prompt);
            s
        }
    };
    let stream_options = if o.continuous_usage {
        json!({"include_usage": true, "continuous_usage_stats": true})
    } else {
        json!({"include_usage": true})
    };
    let mut v = match api {
        Api::Chat => {
            let mut msgs: Vec<Value> = history
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect();
            msgs.push(json!({"role": "user", "content": prompt}));
            json!({"model": model, "messages": msgs, "max_tokens": max_tokens, "stream": true,
                   "stream_options": stream_options})
        }
        Api::Completions => {
            json!({"model": model, "prompt": flat(), "max_tokens": max_tokens, "stream": true,
                                   "stream_options": stream_options})
        }
        Api::Tgi => {
            json!({"inputs": flat(), "parameters": {"max_new_tokens": max_tokens, "details": true}})
        }
        Api::Sglang => {
            json!({"text": flat(), "sampling_params": {"max_new_tokens": max_tokens}, "stream": true})
        }
        Api::Llamacpp => json!({"prompt": flat(), "n_predict": max_tokens, "stream": true}),
        Api::Ollama => {
            json!({"model": model, "prompt": flat(), "stream": true, "options": {"num_predict": max_tokens}})
        }
    };
    if o.ignore_eos {
        match api {
            Api::Chat | Api::Completions | Api::Llamacpp => {
                v["ignore_eos"] = Value::Bool(true);
            }
            Api::Sglang => v["sampling_params"]["ignore_eos"] = Value::Bool(true),
            // TGI and Ollama have no such option: output may end early at EOS.
            Api::Tgi | Api::Ollama => {}
        }
    }
    if let Some(t) = o.temperature {
        match api {
            Api::Tgi => v["parameters"]["temperature"] = json!(t),
            Api::Sglang => v["sampling_params"]["temperature"] = json!(t),
            Api::Ollama => v["options"]["temperature"] = json!(t),
            _ => v["temperature"] = json!(t),
        }
    }
    if let Some(extra) = &o.extra_body {
        merge(&mut v, &Value::Object(extra.clone()));
    }
    serde_json::to_vec(&v).expect("JSON body serializes")
}

/// Deep-merge `src` into `dst`: objects key by key, anything else replaces.
pub fn merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(k) {
                    Some(dv) if dv.is_object() && v.is_object() => merge(dv, v),
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Reading events

/// Per-request stream accounting.
#[derive(Debug, Default)]
pub struct StreamState {
    /// Arrival of each content chunk, ms after sent_at.
    pub chunk_ms: Vec<f64>,
    chunk_tokens: Vec<u32>,
    counts_known: bool,
    running: Option<u32>,
    pub usage_completion: Option<u32>,
    pub usage_prompt: Option<u32>,
    /// Prompt tokens the server served from its prefix cache, when it says (OpenAI
    /// `usage.prompt_tokens_details.cached_tokens`, SGLang `meta_info.cached_tokens`,
    /// llama.cpp `timings.cache_n`).
    pub usage_cached: Option<u32>,
    pub finish_reason: Option<String>,
    pub error: Option<String>,
    /// The stream said it is complete ([DONE], a final event, or an error).
    pub done: bool,
    /// Output text, when captured (multi-turn sessions need it as context): the answer only,
    /// reasoning left out (reasoning models are not to be shown their own reasoning again).
    pub text: Option<String>,
    pub events: u32,
    think: Think,
    /// SGLang's native text so far (it is cumulative by default, incremental on request).
    sgl_text: String,
}

/// What a content chunk carried, for the reasoning split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Answer text (or tool calls).
    Answer,
    /// Reasoning text in a reasoning field (`reasoning_content`, `reasoning`, `thinking`).
    Reasoning,
    /// Both in one event (the step that ended the reasoning).
    Both,
    /// Neither: tokens counted by the server with their text held back.
    Neither,
}

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &[u8] = b"</think>";

/// Where the reasoning ends, found in one of two ways:
/// - fields: the server separates reasoning (`delta.reasoning_content` as SGLang, llama.cpp and
///   TensorRT-LLM send it, `delta.reasoning` as vLLM does, Ollama's `thinking`);
/// - tags: no field ever carries reasoning (completions and native routes, or a server without
///   a reasoning parser) and the answer text holds `</think>`: what comes before it is
///   reasoning (a text that opens with `<think>` and never closes it is all reasoning).
#[derive(Debug, Default)]
struct Think {
    field: bool,
    first_reasoning: Option<usize>,
    first_answer: Option<usize>,
    /// tags: whether the first text opened with `<think>` (None before any text)
    opened: Option<bool>,
    /// tags: the chunk that completed `</think>`, and the first with answer text after it
    closed: Option<usize>,
    tag_answer: Option<usize>,
    /// the last bytes of text (a tag can straddle two chunks)
    carry: [u8; 7],
    carry_len: u8,
    /// the server's count of reasoning tokens (usage or meta_info), the latest seen
    server: Option<u32>,
}

impl Think {
    fn scan(&mut self, idx: usize, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.opened.is_none() {
            let t = text.trim_start();
            if !t.is_empty() {
                self.opened = Some(t.starts_with(THINK_OPEN));
            }
        }
        let b = text.as_bytes();
        if self.closed.is_none() {
            let carry = &self.carry[..self.carry_len as usize];
            // the tag split between the carry and this text (only if the carry holds a `<`)
            let split = memchr::memchr(b'<', carry).and_then(|_| {
                (1..THINK_CLOSE.len()).find_map(|k| {
                    (carry.ends_with(&THINK_CLOSE[..k]) && b.starts_with(&THINK_CLOSE[k..]))
                        .then(|| THINK_CLOSE.len() - k)
                })
            });
            // every `<` of the text (most answer text has none: one memchr pass, no searcher
            // to set up per event)
            let end = split.or_else(|| {
                let mut from = 0;
                while let Some(p) = memchr::memchr(b'<', &b[from..]) {
                    let at = from + p;
                    if b[at..].starts_with(THINK_CLOSE) {
                        return Some(at + THINK_CLOSE.len());
                    }
                    from = at + 1;
                }
                None
            });
            match end {
                Some(e) => {
                    self.closed = Some(idx);
                    if !text[e..].trim().is_empty() {
                        self.tag_answer = Some(idx);
                    }
                }
                None => {
                    let keep = b.len().min(7);
                    let mut c = [0u8; 7];
                    let old = self.carry_len as usize;
                    // the last 7 bytes of carry + text
                    let from_old = 7 - keep;
                    let take_old = from_old.min(old);
                    c[..take_old].copy_from_slice(&self.carry[old - take_old..old]);
                    c[take_old..take_old + keep].copy_from_slice(&b[b.len() - keep..]);
                    self.carry = c;
                    self.carry_len = (take_old + keep) as u8;
                }
            }
        } else if self.tag_answer.is_none() && !text.trim().is_empty() {
            self.tag_answer = Some(idx);
        }
    }
}

/// A request's reasoning split (see [`StreamState::reasoning`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Split {
    /// The first chunk carrying reasoning, ms after sent_at; None without reasoning.
    pub ttfr_ms: Option<f64>,
    /// The first chunk carrying answer content, ms after sent_at; None when the output was
    /// all reasoning (it ran out of tokens before answering).
    pub ttfa_ms: Option<f64>,
    /// Reasoning tokens: the server's count where it gave one above 0, else the tokens of the
    /// chunks before the first answer chunk (the server's per-chunk counts, else one per chunk);
    /// 0 without reasoning.
    pub reasoning_tokens: Option<u32>,
}

impl StreamState {
    pub fn new(capture_text: bool) -> StreamState {
        StreamState {
            counts_known: true,
            text: capture_text.then(String::new),
            ..Default::default()
        }
    }

    /// Room for `chunks` content chunks (capped), so the per-chunk vectors do not regrow
    /// (and touch fresh pages) as a stream goes on.
    pub fn reserve(&mut self, chunks: u32) {
        let n = chunks.min(4096) as usize;
        self.chunk_ms.reserve_exact(n);
        if self.counts_known {
            self.chunk_tokens.reserve_exact(n);
        }
    }

    /// Output tokens and where the number came from (`usage` or `chunks`).
    pub fn output_tokens(&self) -> (u32, &'static str) {
        if let Some(u) = self.usage_completion {
            return (u, "usage");
        }
        if let Some(r) = self.running {
            return (r, "usage");
        }
        (self.chunk_ms.len() as u32, "chunks")
    }

    /// Tokens per content chunk, when the server counted every one.
    pub fn chunk_tokens(&self) -> Option<&[u32]> {
        if self.counts_known && !self.chunk_ms.is_empty() && self.chunk_tokens.len() == self.chunk_ms.len() {
            Some(&self.chunk_tokens)
        } else {
            None
        }
    }

    /// [`Self::chunk_tokens`], moved out rather than copied.
    pub fn take_chunk_tokens(&mut self) -> Option<Vec<u32>> {
        self.chunk_tokens()
            .is_some()
            .then(|| std::mem::take(&mut self.chunk_tokens))
    }

    pub fn has_content(&self) -> bool {
        !self.chunk_ms.is_empty()
    }

    /// One content chunk: its arrival, its tokens where the server counts them, its answer
    /// text and what kind of output it carried.
    fn content(&mut self, t_ms: f64, tokens: Option<u32>, text: Option<&str>, kind: Kind) {
        let idx = self.chunk_ms.len();
        self.chunk_ms.push(t_ms);
        match tokens {
            Some(n) => self.chunk_tokens.push(n),
            None => self.counts_known = false,
        }
        let th = &mut self.think;
        if matches!(kind, Kind::Reasoning | Kind::Both) {
            th.field = true;
            th.first_reasoning.get_or_insert(idx);
        }
        if matches!(kind, Kind::Answer | Kind::Both) {
            th.first_answer.get_or_insert(idx);
        }
        if let Some(t) = text {
            th.scan(idx, t);
            if let Some(buf) = self.text.as_mut() {
                buf.push_str(t);
            }
        }
    }

    /// The reasoning split of the stream so far: when reasoning and answer began, and the
    /// reasoning tokens. Without any content, all None.
    pub fn reasoning(&self) -> Split {
        let n = self.chunk_ms.len();
        if n == 0 {
            return Split::default();
        }
        let th = &self.think;
        let (first_r, first_a) = if th.field {
            (th.first_reasoning, th.first_answer)
        } else if let Some(c) = th.closed {
            // everything up to the closing tag (chunk c) was reasoning
            let _ = c;
            (Some(0), th.tag_answer)
        } else if th.opened == Some(true) {
            (Some(0), None)
        } else {
            (None, Some(0))
        };
        let at = |i: Option<usize>| i.map(|i| self.chunk_ms[i]);
        let server = th.server.filter(|&r| r > 0);
        let tokens = match first_r {
            None => Some(server.unwrap_or(0)),
            Some(_) => server.or_else(|| {
                let end = first_a.unwrap_or(n);
                Some(match self.chunk_tokens() {
                    Some(t) => t[..end].iter().sum(),
                    None => end as u32,
                })
            }),
        };
        Split {
            ttfr_ms: at(first_r),
            ttfa_ms: at(first_a),
            reasoning_tokens: tokens,
        }
    }

    /// A running count from the server: returns the increase since the last one.
    fn count(&mut self, total: u32) -> u32 {
        let prev = self.running.unwrap_or(0);
        self.running = Some(total.max(prev));
        total.saturating_sub(prev)
    }

    fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
        self.done = true;
    }

    /// Handle one event that arrived `t_ms` after the request was sent.
    pub fn on_event(&mut self, api: Api, ev: Event<'_>, t_ms: f64) {
        self.events += 1;
        let data = ev.data;
        if data.is_empty() {
            return;
        }
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        if self.done && self.error.is_some() {
            return;
        }
        if ev.name == Some("error") {
            self.fail(format!("error event: {}", preview(data)));
            return;
        }
        let r = match api {
            Api::Chat | Api::Completions => self.openai(data, t_ms),
            Api::Tgi => self.tgi(data, t_ms),
            Api::Sglang => self.sglang(data, t_ms),
            Api::Llamacpp => self.llamacpp(data, t_ms),
            Api::Ollama => self.ollama(data, t_ms),
        };
        if let Err(e) = r {
            self.fail(format!("unreadable event ({e}): {}", preview(data)));
        }
    }

    fn openai(&mut self, data: &[u8], t_ms: f64) -> Result<(), serde_json::Error> {
        // The borrowed one-pass reader takes the common shapes; anything it does not fully
        // understand (escapes, errors, odd types, malformed JSON) goes to serde, whose verdict
        // is the reference (the sse_protocol fuzz target checks that both agree).
        let c: OaiChunk<'_> = match lazy::openai(data) {
            Some(c) => c,
            None => serde_json::from_slice(data)?,
        };
        if let Some(e) = &c.error {
            self.fail(event_error(e, None, data));
            return Ok(());
        }
        if c.object.as_deref() == Some("error") {
            self.fail(event_error(c.message.as_ref().unwrap_or(&Value::Null), None, data));
            return Ok(());
        }
        // Friendli's older format: {"event":"token_sampled",...} / {"event":"complete",...}
        if let Some(kind) = c.event.as_deref() {
            match kind {
                "token_sampled" => {
                    let t = c.text.as_deref().unwrap_or("");
                    self.content(t_ms, None, Some(t), Kind::Answer);
                }
                "complete" => self.done = true,
                _ => {}
            }
        }
        // answer: content, completion text or tool calls; reasoning: its own fields
        let mut answer = false;
        let mut reasoned = false;
        let mut text_buf: Option<Cow<'_, str>> = None;
        let mut finish: Option<Cow<'_, str>> = None;
        if let Some(choices) = &c.choices {
            for ch in choices {
                if let Some(d) = &ch.delta {
                    if let Some(t) = &d.content
                        && !t.is_empty()
                    {
                        answer = true;
                        text_buf = Some(t.clone());
                    }
                    if [&d.reasoning_content, &d.reasoning]
                        .into_iter()
                        .flatten()
                        .any(|t| !t.is_empty())
                    {
                        reasoned = true;
                    }
                    if d.tool_calls.is_some() || d.function_call.is_some() {
                        answer = true;
                    }
                }
                if let Some(t) = &ch.text
                    && !t.is_empty()
                {
                    answer = true;
                    text_buf = Some(t.clone());
                }
                if let Some(f) = &ch.finish_reason
                    && !f.is_empty()
                {
                    finish = Some(f.clone());
                }
            }
        }
        let has_choices = c.choices.as_ref().map(|v| !v.is_empty()).unwrap_or(false);
        let text_seen = answer || reasoned;
        let mut delta_tokens = None;
        if let Some(u) = &c.usage {
            if let Some(p) = u.prompt_tokens {
                self.usage_prompt = Some(p);
            }
            if let Some(r) = u.reasoning() {
                self.think.server = Some(r);
            }
            if let Some(n) = u.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens) {
                self.usage_cached = Some(n);
            }
            if let Some(ct) = u.completion_tokens {
                if !has_choices {
                    // the final usage chunk (choices: [])
                    self.usage_completion = Some(ct);
                } else if text_seen || self.running.is_some() || ct == 0 {
                    // continuous usage: a running count on every chunk (vLLM, SGLang, TRT-LLM)
                    delta_tokens = Some(self.count(ct));
                } else {
                    // usage riding on a content-less finish chunk (transformers, llama.cpp)
                    self.usage_completion = Some(ct);
                }
            }
        }
        if text_seen || delta_tokens.is_some_and(|d| d > 0) {
            let kind = match (answer, reasoned) {
                (true, true) => Kind::Both,
                (true, false) => Kind::Answer,
                (false, true) => Kind::Reasoning,
                (false, false) => Kind::Neither,
            };
            self.content(t_ms, delta_tokens, text_buf.as_deref(), kind);
        }
        if let Some(f) = finish {
            match f.as_ref() {
                "error" => self.fail("the server ended the stream with finish_reason \"error\"".into()),
                "abort" => self.fail("the server aborted the request (finish_reason \"abort\")".into()),
                _ => {}
            }
            self.finish_reason = Some(f.into_owned());
        }
        Ok(())
    }

    fn tgi(&mut self, data: &[u8], t_ms: f64) -> Result<(), serde_json::Error> {
        let e: TgiEvent<'_> = serde_json::from_slice(data)?;
        if let Some(err) = &e.error {
            self.fail(event_error(err, e.error_type.as_deref(), data));
            return Ok(());
        }
        if let Some(tok) = &e.token {
            let d = match e.index {
                Some(i) => self.count(i).max(1),
                None => 1,
            };
            self.content(t_ms, Some(d), Some(tok.text.as_deref().unwrap_or("")), Kind::Answer);
        }
        if let Some(det) = &e.details {
            if let Some(n) = det.generated_tokens {
                self.usage_completion = Some(n);
            }
            if let Some(f) = &det.finish_reason {
                self.finish_reason = Some(f.to_string());
            }
            if let Some(n) = det.input_length {
                self.usage_prompt = Some(n);
            }
        }
        if e.generated_text.is_some() {
            self.done = true;
        }
        Ok(())
    }

    fn sglang(&mut self, data: &[u8], t_ms: f64) -> Result<(), serde_json::Error> {
        let e: SglEvent<'_> = serde_json::from_slice(data)?;
        if let Some(err) = &e.error {
            self.fail(event_error(err, None, data));
            return Ok(());
        }
        let mut delta = None;
        if let Some(m) = &e.meta_info {
            if let Some(p) = m.prompt_tokens {
                self.usage_prompt = Some(p);
            }
            if let Some(n) = m.cached_tokens {
                self.usage_cached = Some(n);
            }
            if let Some(n) = m.completion_tokens {
                delta = Some(self.count(n));
            }
            match &m.finish_reason {
                Some(Value::Object(f)) => {
                    let kind = f.get("type").and_then(|v| v.as_str()).unwrap_or("");
                    if kind == "abort" {
                        let msg = f.get("message").and_then(|v| v.as_str()).unwrap_or("aborted");
                        let code = f
                            .get("status_code")
                            .map(|v| format!(" (status {v})"))
                            .unwrap_or_default();
                        self.fail(format!("abort: {msg}{code}"));
                    }
                    self.finish_reason = Some(kind.to_string());
                }
                Some(Value::String(s)) => self.finish_reason = Some(s.clone()),
                _ => {}
            }
        }
        // text is cumulative by default, incremental with --incremental-streaming-output
        let text = e.text.as_deref().unwrap_or("");
        let buf = &mut self.sgl_text;
        let cumulative = text.len() >= buf.len() && text.starts_with(buf.as_str());
        let new_text = if cumulative { &text[buf.len()..] } else { text };
        buf.push_str(new_text);
        let is_content = match delta {
            Some(d) => d > 0,
            None => !new_text.is_empty(),
        };
        if let Some(r) = e.meta_info.as_ref().and_then(|m| m.reasoning_tokens) {
            self.think.server = Some(r);
        }
        if is_content {
            self.content(t_ms, delta, Some(new_text), Kind::Answer);
        }
        if let Some(m) = &e.meta_info
            && m.finish_reason.as_ref().is_some_and(|f| !f.is_null())
            && let Some(n) = m.completion_tokens
        {
            self.usage_completion = Some(n);
        }
        Ok(())
    }

    fn llamacpp(&mut self, data: &[u8], t_ms: f64) -> Result<(), serde_json::Error> {
        let e: LlamaEvent<'_> = serde_json::from_slice(data)?;
        if let Some(err) = &e.error {
            self.fail(event_error(err, None, data));
            return Ok(());
        }
        let text = e.content.as_deref().unwrap_or("");
        let ntok = e.tokens.as_ref().map(|t| t.len() as u32).unwrap_or(0);
        let delta = e.tokens_predicted.map(|n| self.count(n));
        let is_content = !text.is_empty() || ntok > 0 || (delta.is_some_and(|d| d > 0) && e.stop != Some(true));
        if is_content {
            self.content(t_ms, delta.or((ntok > 0).then_some(ntok)), Some(text), Kind::Answer);
        }
        if e.stop == Some(true) {
            self.done = true;
            if let Some(n) = e.tokens_predicted {
                self.usage_completion = Some(n);
            }
            if let Some(n) = e.tokens_evaluated {
                self.usage_prompt = Some(n);
            }
            if let Some(n) = e.timings.as_ref().and_then(|t| t.cache_n) {
                self.usage_cached = Some(n);
            }
            self.finish_reason = e.stop_type.as_deref().map(|s| match s {
                "limit" => "length".to_string(),
                "eos" | "word" => "stop".to_string(),
                o => o.to_string(),
            });
        }
        Ok(())
    }

    fn ollama(&mut self, data: &[u8], t_ms: f64) -> Result<(), serde_json::Error> {
        let e: OllamaEvent<'_> = serde_json::from_slice(data)?;
        if let Some(err) = &e.error {
            self.fail(event_error(err, None, data));
            return Ok(());
        }
        let text = e
            .response
            .as_deref()
            .or(e.message.as_ref().and_then(|m| m.content.as_deref()))
            .unwrap_or("");
        let thinking = e
            .thinking
            .as_deref()
            .or(e.message.as_ref().and_then(|m| m.thinking.as_deref()))
            .is_some_and(|t| !t.is_empty());
        match (text.is_empty(), thinking) {
            (false, false) => self.content(t_ms, None, Some(text), Kind::Answer),
            (false, true) => self.content(t_ms, None, Some(text), Kind::Both),
            (true, true) => self.content(t_ms, None, None, Kind::Reasoning),
            (true, false) => {}
        }
        if e.done == Some(true) {
            self.done = true;
            self.usage_completion = e.eval_count;
            self.usage_prompt = e.prompt_eval_count;
            self.finish_reason = e.done_reason.map(|s| s.into_owned());
        }
        Ok(())
    }
}

/// A readable error message from an engine's error value (string or object of any shape).
pub fn error_text(v: &Value) -> String {
    describe_error(v).0
}

/// The message of an error value, and whether the engine said anything in it: false when
/// the message is missing, null or blank (`{"error":""}`), which the text then says.
fn describe_error(v: &Value) -> (String, bool) {
    const NONE: &str = "no message";
    match v {
        Value::String(s) if s.trim().is_empty() => (NONE.into(), false),
        Value::String(s) => (s.clone(), true),
        Value::Object(o) => {
            if let Some(inner) = o.get("error")
                && (inner.is_object() || inner.is_string())
            {
                return describe_error(inner);
            }
            let (msg, said) = match o.get("message").or_else(|| o.get("detail")) {
                Some(Value::String(m)) if m.trim().is_empty() => (NONE.to_string(), false),
                Some(Value::Null) => (NONE.to_string(), false),
                Some(Value::String(m)) => (m.clone(), true),
                Some(m) => (m.to_string(), true),
                None if o.is_empty() => (NONE.to_string(), false),
                None => (v.to_string(), true),
            };
            let code = o
                .get("code")
                .or_else(|| o.get("http_status_code"))
                .or_else(|| o.get("status_code"))
                .filter(|c| !c.is_null());
            let ty = o.get("type").or_else(|| o.get("error_type")).and_then(|t| t.as_str());
            let text = match (code, ty) {
                (Some(c), Some(t)) => format!("{msg} (code {c}, {t})"),
                (Some(c), None) => format!("{msg} (code {c})"),
                (None, Some(t)) => format!("{msg} ({t})"),
                (None, None) => msg,
            };
            (text, said)
        }
        Value::Null => (NONE.into(), false),
        other => (other.to_string(), true),
    }
}

/// The message of an error event: the engine's own words, or, when it gave none, a line
/// that says so and quotes the event (bounded), so the row still tells what came.
fn event_error(v: &Value, ty: Option<&str>, data: &[u8]) -> String {
    let (mut m, said) = describe_error(v);
    if let Some(t) = ty {
        m = format!("{m} ({t})");
    }
    if said {
        m
    } else {
        format!("the server sent an error with {m}; the event: {}", preview(data))
    }
}

/// An error message from a non-2xx response body: the engine's message when it is JSON.
pub fn http_error_text(status: u16, body: &[u8]) -> String {
    let detail = match serde_json::from_slice::<Value>(body) {
        Ok(v) => match describe_error(&v) {
            (m, true) => m,
            (m, false) => format!("{m}; the body: {}", preview(body)),
        },
        Err(_) => {
            let s = printable(&String::from_utf8_lossy(&body[..body.len().min(300)]));
            let s = s.trim();
            if s.is_empty() {
                "(empty body)".into()
            } else {
                s.to_string()
            }
        }
    };
    format!("HTTP {status}: {detail}")
}

/// The start of an event for an error message: invalid UTF-8 shown as U+FFFD, control
/// characters (NUL included) escaped, so the message is printable text.
fn preview(b: &[u8]) -> String {
    let mut s = printable(&String::from_utf8_lossy(&b[..b.len().min(120)]));
    if b.len() > 120 {
        s.push('…');
    }
    s
}

/// Text with line breaks and tabs as spaces and other control characters escaped.
fn printable(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\n' | '\r' | '\t' => s.push(' '),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

// serde shapes: only the fields replay reads; everything else is skipped.

#[derive(Deserialize, Debug, PartialEq, Default)]
struct OaiChunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<OaiChoice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug, PartialEq, Default)]
struct OaiChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug, PartialEq, Default)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

#[derive(Deserialize, Debug, PartialEq, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
    /// OpenAI's shape (vLLM with a reasoning parser): `completion_tokens_details.reasoning_tokens`.
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// SGLang's shape: `reasoning_tokens` beside `completion_tokens`.
    #[serde(default)]
    reasoning_tokens: Option<u32>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Debug, PartialEq, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

#[derive(Deserialize, Debug, PartialEq, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

impl Usage {
    /// The server's count of reasoning tokens, in either shape.
    fn reasoning(&self) -> Option<u32> {
        self.completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .or(self.reasoning_tokens)
    }
}

#[derive(Deserialize)]
struct TgiEvent<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    token: Option<TgiToken<'a>>,
    #[serde(default)]
    generated_text: Option<IgnoredAny>,
    #[serde(borrow, default)]
    details: Option<TgiDetails<'a>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    error_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TgiToken<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TgiDetails<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    generated_tokens: Option<u32>,
    #[serde(default)]
    input_length: Option<u32>,
}

#[derive(Deserialize)]
struct SglEvent<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    meta_info: Option<SglMeta>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct SglMeta {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    reasoning_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
    #[serde(default)]
    finish_reason: Option<Value>,
    #[serde(default)]
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct LlamaEvent<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    tokens: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    stop: Option<bool>,
    #[serde(default)]
    tokens_predicted: Option<u32>,
    #[serde(default)]
    tokens_evaluated: Option<u32>,
    #[serde(borrow, default)]
    stop_type: Option<Cow<'a, str>>,
    #[serde(default)]
    timings: Option<LlamaTimings>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct LlamaTimings {
    #[serde(default)]
    cache_n: Option<u32>,
}

#[derive(Deserialize)]
struct OllamaEvent<'a> {
    #[serde(borrow, default)]
    response: Option<Cow<'a, str>>,
    /// `/api/generate` with `think`: the reasoning text.
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<OllamaMsg<'a>>,
    #[serde(default)]
    done: Option<bool>,
    #[serde(borrow, default)]
    done_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct OllamaMsg<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    /// `/api/chat` with `think`: the reasoning text.
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}

/// For tests and the fuzz target: when the borrowed reader takes an OpenAI event, it must
/// read exactly what serde reads. Panics on a difference; returns whether it took the event.
#[doc(hidden)]
pub fn check_openai_reader(data: &[u8]) -> bool {
    let Some(fast) = lazy::openai(data) else {
        return false;
    };
    match serde_json::from_slice::<OaiChunk<'_>>(data) {
        Ok(slow) => assert_eq!(
            fast,
            slow,
            "the borrowed reader and serde disagree on {:?}",
            preview(data)
        ),
        Err(e) => panic!(
            "the borrowed reader took an event serde refuses ({e}): {:?}",
            preview(data)
        ),
    }
    true
}

/// A borrowed, one-pass reader of OpenAI stream events: the fields replay needs, the rest
/// skipped but checked (replay's hot path; serde_json's derive walked every key and string
/// of every event at about a quarter of replay's CPU).
///
/// It is deliberately narrow: it returns None, and the caller falls back to serde, for any
/// string with a `\u` escape or any escape in a field it keeps or a key, invalid UTF-8, a
/// control character in a string, a number that is not a plain `u32` where one is read, a
/// non-null `error` or `message`, a repeated known key, nesting deeper than 32, or any
/// malformed JSON. What it returns is what `serde_json::from_slice::<OaiChunk>` returns.
mod lazy {
    use std::borrow::Cow;

    use serde::de::IgnoredAny;

    use super::{CompletionDetails, Delta, OaiChoice, OaiChunk, PromptDetails, Usage};

    const MAX_DEPTH: u32 = 32;

    pub(super) fn openai(data: &[u8]) -> Option<OaiChunk<'_>> {
        let s = std::str::from_utf8(data).ok()?;
        let mut r = Reader { s, b: data, i: 0 };
        let c = r.chunk()?;
        r.ws();
        (r.i == r.b.len()).then_some(c)
    }

    struct Reader<'a> {
        s: &'a str,
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Reader<'a> {
        #[inline]
        fn ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
                self.i += 1;
            }
        }

        #[inline]
        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.b.get(self.i).copied()
        }

        #[inline]
        fn eat(&mut self, c: u8) -> Option<()> {
            (self.peek()? == c).then(|| self.i += 1)
        }

        fn lit(&mut self, w: &[u8]) -> Option<()> {
            self.b[self.i..].starts_with(w).then(|| self.i += w.len())
        }

        /// `null` here (consumed): true; another value: false.
        fn null(&mut self) -> Option<bool> {
            if self.peek()? == b'n' {
                self.lit(b"null")?;
                return Some(true);
            }
            Some(false)
        }

        /// Index of the next `"`, `\\` or control character from `i` (strings in events
        /// are short: a table walk beats a SIMD search's setup).
        #[inline]
        fn stop(&self, mut i: usize) -> Option<usize> {
            // eight bytes at a time while none of them stops the run (SWAR: a byte equal to
            // `"` or `\\`, or below 0x20, sets its high bit in `hit`; exact for "any")
            const LO: u64 = 0x0101_0101_0101_0101;
            const HI: u64 = 0x8080_8080_8080_8080;
            while let Some(w) = self.b.get(i..i + 8) {
                let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
                let hit = zero(v ^ (LO * b'"' as u64))
                    | zero(v ^ (LO * b'\\' as u64))
                    | (v.wrapping_sub(LO * 0x20) & !v & HI);
                if hit != 0 {
                    break;
                }
                i += 8;
            }
            while let Some(&c) = self.b.get(i) {
                if STOP[c as usize] {
                    return Some(i);
                }
                i += 1;
            }
            None
        }

        /// A string without escapes, borrowed.
        fn plain(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.i;
            let end = self.stop(start)?;
            if self.b[end] != b'"' {
                return None;
            }
            self.i = end + 1;
            Some(&self.s[start..end])
        }

        fn skip_str(&mut self) -> Option<()> {
            self.eat(b'"')?;
            loop {
                let end = self.stop(self.i)?;
                match self.b[end] {
                    b'"' => {
                        self.i = end + 1;
                        return Some(());
                    }
                    b'\\' => match *self.b.get(end + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i = end + 2,
                        _ => return None, // \u (surrogates) and invalid escapes: serde decides
                    },
                    _ => return None, // a control character
                }
            }
        }

        fn digits(&mut self) -> usize {
            let s = self.i;
            while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            self.i - s
        }

        /// A JSON number (grammar only, as serde checks a skipped one).
        fn skip_num(&mut self) -> Option<()> {
            if self.b.get(self.i) == Some(&b'-') {
                self.i += 1;
            }
            match *self.b.get(self.i)? {
                b'0' => self.i += 1,
                b'1'..=b'9' => {
                    self.digits();
                }
                _ => return None,
            }
            if self.b.get(self.i) == Some(&b'.') {
                self.i += 1;
                if self.digits() == 0 {
                    return None;
                }
            }
            if let Some(b'e' | b'E') = self.b.get(self.i) {
                self.i += 1;
                if let Some(b'+' | b'-') = self.b.get(self.i) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return None;
                }
            }
            Some(())
        }

        /// `null` or a plain unsigned integer that fits a u32.
        fn opt_u32(&mut self) -> Option<Option<u32>> {
            if self.null()? {
                return Some(None);
            }
            let s = self.i;
            let n = self.digits();
            if n == 0 || n > 10 || (n > 1 && self.b[s] == b'0') {
                return None;
            }
            if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
                return None;
            }
            let v: u64 = self.s[s..self.i].parse().ok()?;
            Some(Some(u32::try_from(v).ok()?))
        }

        fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
            if self.null()? {
                return Some(None);
            }
            Some(Some(Cow::Borrowed(self.plain()?)))
        }

        fn skip(&mut self, depth: u32) -> Option<()> {
            match self.peek()? {
                b'"' => self.skip_str(),
                b'{' => {
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    self.object(|r, _| r.skip(depth + 1))
                }
                b'[' => {
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    self.array(|r| r.skip(depth + 1))
                }
                b't' => self.lit(b"true"),
                b'f' => self.lit(b"false"),
                b'n' => self.lit(b"null"),
                b'-' | b'0'..=b'9' => self.skip_num(),
                _ => None,
            }
        }

        /// An object: `field` is called with each key, positioned at its value.
        fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
            self.eat(b'{')?;
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(());
            }
            loop {
                let k = self.plain()?;
                self.eat(b':')?;
                field(self, k)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
            self.eat(b'[')?;
            if self.peek()? == b']' {
                self.i += 1;
                return Some(());
            }
            loop {
                item(self)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn chunk(&mut self) -> Option<OaiChunk<'a>> {
            let mut c = OaiChunk::default();
            let mut seen = Seen(0);
            self.object(|r, k| match k {
                "choices" => {
                    seen.once(0)?;
                    if !r.null()? {
                        let mut v = Vec::with_capacity(1);
                        r.array(|r| {
                            v.push(r.choice()?);
                            Some(())
                        })?;
                        c.choices = Some(v);
                    }
                    Some(())
                }
                "usage" => {
                    seen.once(1)?;
                    if !r.null()? {
                        c.usage = Some(r.usage()?);
                    }
                    Some(())
                }
                // errors are rare and of any shape: serde reads them
                "error" | "message" => {
                    seen.once(if k == "error" { 2 } else { 3 })?;
                    r.null()?.then_some(())
                }
                "object" => {
                    seen.once(4)?;
                    c.object = r.opt_str()?;
                    Some(())
                }
                "event" => {
                    seen.once(5)?;
                    c.event = r.opt_str()?;
                    Some(())
                }
                "text" => {
                    seen.once(6)?;
                    c.text = r.opt_str()?;
                    Some(())
                }
                _ => r.skip(1),
            })?;
            Some(c)
        }

        fn choice(&mut self) -> Option<OaiChoice<'a>> {
            let mut ch = OaiChoice::default();
            let mut seen = Seen(0);
            if self.peek()? != b'{' {
                return None;
            }
            self.object(|r, k| match k {
                "delta" => {
                    seen.once(0)?;
                    if !r.null()? {
                        ch.delta = Some(r.delta()?);
                    }
                    Some(())
                }
                "text" => {
                    seen.once(1)?;
                    ch.text = r.opt_str()?;
                    Some(())
                }
                "finish_reason" => {
                    seen.once(2)?;
                    ch.finish_reason = r.opt_str()?;
                    Some(())
                }
                _ => r.skip(2),
            })?;
            Some(ch)
        }

        fn delta(&mut self) -> Option<Delta<'a>> {
            let mut d = Delta::default();
            let mut seen = Seen(0);
            if self.peek()? != b'{' {
                return None;
            }
            self.object(|r, k| match k {
                "content" => {
                    seen.once(0)?;
                    d.content = r.opt_str()?;
                    Some(())
                }
                "reasoning_content" => {
                    seen.once(1)?;
                    d.reasoning_content = r.opt_str()?;
                    Some(())
                }
                "reasoning" => {
                    seen.once(2)?;
                    d.reasoning = r.opt_str()?;
                    Some(())
                }
                "tool_calls" | "function_call" => {
                    let tools = k == "tool_calls";
                    seen.once(if tools { 3 } else { 4 })?;
                    let v = if r.null()? {
                        None
                    } else {
                        r.skip(3)?;
                        Some(IgnoredAny)
                    };
                    if tools {
                        d.tool_calls = v;
                    } else {
                        d.function_call = v;
                    }
                    Some(())
                }
                _ => r.skip(3),
            })?;
            Some(d)
        }

        fn usage(&mut self) -> Option<Usage> {
            let mut u = Usage::default();
            let mut seen = Seen(0);
            if self.peek()? != b'{' {
                return None;
            }
            self.object(|r, k| match k {
                "prompt_tokens" => {
                    seen.once(0)?;
                    u.prompt_tokens = r.opt_u32()?;
                    Some(())
                }
                "completion_tokens" => {
                    seen.once(1)?;
                    u.completion_tokens = r.opt_u32()?;
                    Some(())
                }
                "reasoning_tokens" => {
                    seen.once(2)?;
                    u.reasoning_tokens = r.opt_u32()?;
                    Some(())
                }
                "completion_tokens_details" => {
                    seen.once(3)?;
                    if !r.null()? {
                        u.completion_tokens_details = Some(r.completion_details()?);
                    }
                    Some(())
                }
                "prompt_tokens_details" => {
                    seen.once(4)?;
                    if !r.null()? {
                        u.prompt_tokens_details = Some(r.prompt_details()?);
                    }
                    Some(())
                }
                _ => r.skip(2),
            })?;
            Some(u)
        }

        fn completion_details(&mut self) -> Option<CompletionDetails> {
            let mut d = CompletionDetails::default();
            let mut seen = Seen(0);
            if self.peek()? != b'{' {
                return None;
            }
            self.object(|r, k| match k {
                "reasoning_tokens" => {
                    seen.once(0)?;
                    d.reasoning_tokens = r.opt_u32()?;
                    Some(())
                }
                _ => r.skip(3),
            })?;
            Some(d)
        }

        fn prompt_details(&mut self) -> Option<PromptDetails> {
            let mut d = PromptDetails::default();
            let mut seen = Seen(0);
            if self.peek()? != b'{' {
                return None;
            }
            self.object(|r, k| match k {
                "cached_tokens" => {
                    seen.once(0)?;
                    d.cached_tokens = r.opt_u32()?;
                    Some(())
                }
                _ => r.skip(3),
            })?;
            Some(d)
        }
    }

    /// Bytes that end a plain run inside a JSON string: `"`, `\\` and the control characters
    /// JSON refuses there.
    static STOP: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 0x20 {
            t[i] = true;
            i += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };

    /// Known keys met in one object: serde refuses a repeated one, so the reader gives up.
    struct Seen(u8);

    impl Seen {
        fn once(&mut self, bit: u8) -> Option<()> {
            let m = 1 << bit;
            (self.0 & m == 0).then(|| self.0 |= m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(api: Api, body: &str) -> StreamState {
        let mut st = StreamState::new(true);
        let mut f = super::super::sse::Framer::new(api.framing());
        let mut t = 0.0;
        let mut cb = |e: Event<'_>| {
            t += 1.0;
            st.on_event(api, e, t);
        };
        f.feed(body.as_bytes(), &mut cb).unwrap();
        f.finish(&mut cb).unwrap();
        st
    }

    /// The borrowed OpenAI reader reads every event of every fixture (whatever the API it was
    /// recorded from) exactly as serde does, and takes the common ones itself.
    #[test]
    fn borrowed_reader_agrees_with_serde_on_every_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sse");
        let (mut events, mut taken) = (0, 0);
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            let body = std::fs::read(&p).unwrap();
            for framing in [super::super::sse::Framing::Sse, super::super::sse::Framing::JsonLines] {
                let mut fr = super::super::sse::Framer::new(framing);
                let mut cb = |e: Event<'_>| {
                    events += 1;
                    taken += usize::from(check_openai_reader(e.data));
                };
                fr.feed(&body, &mut cb).unwrap();
                fr.finish(&mut cb).unwrap();
            }
        }
        assert!(events > 200 && taken > 100, "{events} events, {taken} taken");
    }

    #[test]
    fn borrowed_reader_edges() {
        let take = [
            r#"{"choices":[{"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":4294967295}}"#,
            r#" {"choices" : [ ] , "usage" : null , "x" : [1, -2.5e+3, 0.0, true, false, null, {"a":"\n\"\/"}] } "#,
            r#"{"choices":null,"error":null,"message":null,"object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"x"}],"function_call":null,"reasoning":"r"}}]}"#,
            r#"{"event":"token_sampled","text":"é€😀","choices":[{"text":"t","delta":null}]}"#,
            r#"{}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":[1]}}}"#,
            r#"{"usage":{"prompt_tokens_details":null}}"#,
            r#"{"usage":{"prompt_tokens_details":{}}}"#,
            r#"{"usage":{"prompt_tokens_details":{"cached_tokens":null}}}"#,
        ];
        for e in take {
            assert!(check_openai_reader(e.as_bytes()), "{e}");
        }
        let give_up = [
            r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#,
            r#"{"x":"\u00e9"}"#,
            r#"{"error":{"message":"m"}}"#,
            r#"{"usage":{"completion_tokens":4294967296}}"#,
            r#"{"usage":{"completion_tokens":1.0}}"#,
            r#"{"usage":{"completion_tokens":01}}"#,
            r#"{"usage":{"completion_tokens":-1}}"#,
            r#"{"choices":[],"choices":[]}"#,
            r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":tru}"#,
            r#"{"a":"x"} x"#,
            r#"[1]"#,
            r#"{"usage":[1,2]}"#,
            r#"{"usage":{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}}"#,
            r#"{"usage":{"prompt_tokens_details":{"cached_tokens":-1}}}"#,
            r#"{"usage":{"prompt_tokens_details":[]}}"#,
            r#"{"usage":{"prompt_tokens_details":null,"prompt_tokens_details":null}}"#,
            r#"{"ch\u006fices":[]}"#,
            "{\"a\":\"\u{1}\"}",
        ];
        for e in give_up {
            assert!(!check_openai_reader(e.as_bytes()), "{e}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(!check_openai_reader(deep.as_bytes()));
        assert!(!check_openai_reader(b"{\"a\":\"\xff\"}"));
    }

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sse")
            .join(name);
        std::fs::read_to_string(p).unwrap()
    }

    /// Reasoning in each engine's shape: fields (vLLM `reasoning`, SGLang and llama.cpp
    /// `reasoning_content`) and raw `</think>` text (TGI, SGLang's native route). Event n
    /// arrives at n ms, so the times name the events.
    #[test]
    fn reasoning_splits_first_token_from_first_answer() {
        let cases = [
            // file, api, ttfr, ttfa, reasoning tokens, output tokens, answer text
            (
                "vllm-chat-reasoning.sse",
                Api::Chat,
                Some(2.0),
                Some(5.0),
                5,
                9,
                Some("\n\nParis."),
            ),
            (
                "sglang-chat-reasoning.sse",
                Api::Chat,
                Some(2.0),
                Some(5.0),
                5,
                9,
                Some("\n\nParis."),
            ),
            (
                "llamacpp-chat-reasoning.sse",
                Api::Chat,
                Some(2.0),
                Some(6.0),
                4,
                9,
                Some("Paris."),
            ),
            (
                "tgi-generate_stream-reasoning.sse",
                Api::Tgi,
                Some(1.0),
                Some(10.0),
                9,
                10,
                None,
            ),
            (
                "sglang-generate-reasoning.sse",
                Api::Sglang,
                Some(1.0),
                Some(5.0),
                5,
                7,
                None,
            ),
        ];
        for (file, api, ttfr, ttfa, rt, out, text) in cases {
            let st = run(api, &fixture(file));
            assert!(st.error.is_none(), "{file}: {:?}", st.error);
            let s = st.reasoning();
            assert_eq!(
                (s.ttfr_ms, s.ttfa_ms, s.reasoning_tokens),
                (ttfr, ttfa, Some(rt)),
                "{file}"
            );
            assert_eq!(st.output_tokens().0, out, "{file}");
            assert_eq!(
                st.chunk_ms.first(),
                ttfr.as_ref(),
                "{file}: TTFT is the first token of any kind"
            );
            if let Some(t) = text {
                assert_eq!(
                    st.text.as_deref(),
                    Some(t),
                    "{file}: the captured answer leaves reasoning out"
                );
            }
        }
    }

    /// Without reasoning, the answer begins at the first token and no reasoning is counted,
    /// whatever the engine.
    #[test]
    fn without_reasoning_ttfa_is_ttft() {
        for (file, api) in [
            ("vllm-chat.sse", Api::Chat),
            ("sglang-chat.sse", Api::Chat),
            ("sglang-generate.sse", Api::Sglang),
            ("tgi-generate_stream.sse", Api::Tgi),
            ("llamacpp-completion.sse", Api::Llamacpp),
            ("vllm-completions.sse", Api::Completions),
        ] {
            let st = run(api, &fixture(file));
            let s = st.reasoning();
            assert_eq!(s.ttfr_ms, None, "{file}");
            assert_eq!(s.ttfa_ms, st.chunk_ms.first().copied(), "{file}");
            assert_eq!(s.reasoning_tokens, Some(0), "{file}");
        }
    }

    /// Tags split across chunks, output that never closes its reasoning, and Ollama's
    /// `thinking` field.
    #[test]
    fn reasoning_edges() {
        let tgi = |toks: &[&str]| {
            let mut b = String::new();
            for (i, t) in toks.iter().enumerate() {
                b.push_str(&format!("data:{{\"index\":{},\"token\":{{\"id\":1,\"text\":{},\"logprob\":0.0,\"special\":false}},\"generated_text\":null,\"details\":null}}\n\n", i + 1, serde_json::to_string(t).unwrap()));
            }
            run(Api::Tgi, &b).reasoning()
        };
        // the closing tag split over two events, the answer right after it
        let s = tgi(&["<think>", "hm", "</th", "ink>Paris"]);
        assert_eq!(
            (s.ttfr_ms, s.ttfa_ms, s.reasoning_tokens),
            (Some(1.0), Some(4.0), Some(3))
        );
        // opened and never closed: all reasoning, no answer
        let s = tgi(&["<think>", "hm", "hmm"]);
        assert_eq!((s.ttfr_ms, s.ttfa_ms, s.reasoning_tokens), (Some(1.0), None, Some(3)));
        // a plain answer that mentions the tag's name is not reasoning
        let s = tgi(&["Use", " <b>", " tags"]);
        assert_eq!((s.ttfr_ms, s.ttfa_ms, s.reasoning_tokens), (None, Some(1.0), Some(0)));
        // Ollama's native thinking field
        let ollama = concat!(
            "{\"model\":\"m\",\"response\":\"\",\"thinking\":\"Okay\",\"done\":false}\n",
            "{\"model\":\"m\",\"response\":\"\",\"thinking\":\" so\",\"done\":false}\n",
            "{\"model\":\"m\",\"response\":\"Paris\",\"done\":false}\n",
            "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":5,\"eval_count\":3}\n",
        );
        let st = run(Api::Ollama, ollama);
        let s = st.reasoning();
        assert_eq!(
            (s.ttfr_ms, s.ttfa_ms, s.reasoning_tokens),
            (Some(1.0), Some(3.0), Some(2))
        );
        assert_eq!(st.text.as_deref(), Some("Paris"));
    }

    #[test]
    fn role_chunk_is_not_content_and_usage_wins() {
        let s = run(
            Api::Chat,
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"length\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\ndata: [DONE]\n\n",
        );
        assert_eq!(s.chunk_ms, vec![2.0, 3.0]);
        assert_eq!(s.output_tokens(), (5, "usage"));
        assert_eq!(s.usage_prompt, Some(3));
        assert_eq!(s.finish_reason.as_deref(), Some("length"));
        assert_eq!(s.text.as_deref(), Some("ab"));
        assert!(s.done && s.error.is_none());
        assert!(s.chunk_tokens().is_none());
    }

    /// The prompt tokens served from the prefix cache, in every shape an engine reports them:
    /// the fixtures (with a cache hit in `vllm-chat-cached.sse`) and hand-written events.
    #[test]
    fn cached_prompt_tokens_in_every_shape() {
        let fx = |f: &str| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/sse")
                .join(f);
            String::from_utf8(std::fs::read(p).unwrap()).unwrap()
        };
        for (file, api, want) in [
            ("vllm-chat-cached.sse", Api::Chat, Some(32)),
            ("vllm-chat.sse", Api::Chat, None),
            ("sglang-chat.sse", Api::Chat, None), // "prompt_tokens_details":null
            ("sglang-generate.sse", Api::Sglang, Some(0)),
            ("trtllm-completions.sse", Api::Completions, Some(0)),
            ("llamacpp-chat.sse", Api::Chat, Some(0)),
            ("llamacpp-completion.sse", Api::Llamacpp, Some(0)),
            ("tgi-generate_stream.sse", Api::Tgi, None),
        ] {
            let s = run(api, &fx(file));
            assert!(s.error.is_none(), "{file}: {:?}", s.error);
            assert_eq!(s.usage_cached, want, "{file}");
        }
        let s = run(
            Api::Sglang,
            "data: {\"text\":\"a\",\"meta_info\":{\"prompt_tokens\":300,\"completion_tokens\":1,\"cached_tokens\":256,\"finish_reason\":null}}\n\n",
        );
        assert_eq!((s.usage_prompt, s.usage_cached), (Some(300), Some(256)));
        let s = run(
            Api::Llamacpp,
            "data: {\"content\":\"\",\"stop\":true,\"tokens_predicted\":1,\"tokens_evaluated\":300,\"timings\":{\"cache_n\":256,\"prompt_n\":44}}\n\n",
        );
        assert_eq!((s.usage_prompt, s.usage_cached), (Some(300), Some(256)));
        // the nested object the borrowed reader takes, and one it leaves to serde
        for ev in [
            "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":8}}}",
            "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":8,\"x\":\"\\u00e9\"}}}",
        ] {
            let s = run(Api::Chat, &format!("data: {ev}\n\n"));
            assert_eq!((s.usage_prompt, s.usage_cached), (Some(9), Some(8)), "{ev}");
        }
    }

    #[test]
    fn unreadable_events_are_quoted_as_printable_text() {
        let s = run(Api::Chat, "data: \u{0}\u{1}{{{ \u{7f}\n\n");
        let e = s.error.unwrap();
        assert!(e.starts_with("unreadable event"), "{e}");
        assert!(e.contains("\\x00\\x01{{{ \\x7f"), "{e}");
        assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
    }

    #[test]
    fn error_shapes() {
        assert_eq!(error_text(&json!("boom")), "boom");
        assert_eq!(
            error_text(&json!({"error":{"message":"m","code":500,"type":"X"}})),
            "m (code 500, X)"
        );
        assert_eq!(
            error_text(&json!({"message":"m","http_status_code":422})),
            "m (code 422)"
        );
        assert!(http_error_text(503, b"{\"error\":{\"message\":\"busy\",\"code\":503}}").contains("busy"));
        assert_eq!(http_error_text(500, b""), "HTTP 500: (empty body)");
    }

    /// Found by the `sse_protocol` fuzz target: `{"error":""}` gave an empty error message.
    #[test]
    fn an_error_without_a_message_says_so_and_quotes_the_event() {
        for (api, body, want) in [
            (Api::Chat, "data: {\"error\":\"\"}\n\n", "{\"error\":\"\"}"),
            (Api::Chat, "data: {\"error\":\"  \"}\n\n", "{\"error\":\"  \"}"),
            (Api::Chat, "data: {\"error\":{}}\n\n", "{\"error\":{}}"),
            (
                Api::Completions,
                "data: {\"object\":\"error\"}\n\n",
                "{\"object\":\"error\"}",
            ),
            (
                Api::Chat,
                "data: {\"error\":{\"message\":null,\"code\":500}}\n\n",
                "(code 500)",
            ),
            (
                Api::Tgi,
                "data: {\"error\":\"\",\"error_type\":\"generation\"}\n\n",
                "(generation)",
            ),
            (
                Api::Sglang,
                "data: {\"error\":{\"message\":\"\"}}\n\n",
                "{\"message\":\"\"}",
            ),
            (
                Api::Llamacpp,
                "data: {\"error\":{\"detail\":\"\"}}\n\n",
                "{\"detail\":\"\"}",
            ),
            (Api::Ollama, "{\"error\":\"\"}\n", "{\"error\":\"\"}"),
        ] {
            let s = run(api, body);
            let e = s.error.expect(body);
            assert!(e.contains("no message") && e.contains(want), "{body}: {e}");
            assert!(s.done, "{body}");
        }
        // the quote is bounded, whatever the event's size
        let big = format!("data: {{\"error\":\"\",\"pad\":\"{}\"}}\n\n", "x".repeat(100_000));
        let e = run(Api::Chat, &big).error.unwrap();
        assert!(e.contains("no message") && e.ends_with('…') && e.len() < 300, "{e}");
        // an engine's own words are kept as they were
        let e = run(Api::Chat, "data: {\"error\":{\"message\":\"busy\",\"code\":503}}\n\n").error;
        assert_eq!(e.as_deref(), Some("busy (code 503)"));
        // and a non-2xx body without a message is quoted too
        let e = http_error_text(500, b"{\"error\":\"\"}");
        assert!(
            e.starts_with("HTTP 500: no message") && e.contains("{\"error\":\"\"}"),
            "{e}"
        );
    }

    #[test]
    fn body_merges_extra() {
        let mut o = RequestOpts {
            model: Some("m".into()),
            ..Default::default()
        };
        o.extra_body = Some(serde_json::from_str(r#"{"stream_options":{"x":1},"top_k":5}"#).unwrap());
        let b: Value = serde_json::from_slice(&build_body(Api::Chat, &o, &[], "hi", 7)).unwrap();
        assert_eq!(b["stream_options"]["include_usage"], json!(true));
        assert_eq!(b["stream_options"]["x"], json!(1));
        assert_eq!(b["top_k"], json!(5));
        assert_eq!(b["max_tokens"], json!(7));
        assert_eq!(b["ignore_eos"], json!(true));
        let b: Value = serde_json::from_slice(&build_body(Api::Sglang, &o, &[], "hi", 7)).unwrap();
        assert_eq!(b["sampling_params"]["ignore_eos"], json!(true));
    }
}
