//! The bytes mock-engine writes, per protocol, modelled on each engine's own serialization
//! (see ../shared/fixtures/sse and ENGINES.md): vLLM for the OpenAI routes, TGI's
//! `/generate_stream`, SGLang's `/generate` (cumulative text), llama.cpp's `/completion`, and
//! Ollama's `/api/generate` (JSON lines).

use std::borrow::Cow;
use std::io::Write;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::logprobs::Scored;
use super::sse::Writer;
use crate::trace::tokens::{SplitMix, WORDS};

/// Which response shape to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Chat,
    Completions,
    Tgi,
    Sglang,
    Llamacpp,
    Ollama,
}

/// How a reasoning model's reasoning goes out (`mock-engine --reasoning-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReasoningFormat {
    /// vLLM with a reasoning parser: chat `delta.reasoning`, counted in
    /// `usage.completion_tokens_details.reasoning_tokens`; raw text elsewhere.
    #[default]
    Vllm,
    /// SGLang with a reasoning parser: chat `delta.reasoning_content`, counted in
    /// `usage.reasoning_tokens` (and the native route's `meta_info.reasoning_tokens`); raw text
    /// elsewhere.
    Sglang,
    /// No reasoning parser: `<think> ... </think>` in the text on every route, uncounted.
    Tags,
}

/// How many reasoning tokens a response starts with (`mock-engine --reasoning-tokens`): `N`,
/// `uniform:LO:HI` (whole numbers, both ends included) or `exp:MEAN` (rounded down), drawn
/// per request from its number, so a run is reproducible. The reasoning counts within
/// `max_tokens`, as engines count it in `completion_tokens`: a request whose draw reaches
/// `max_tokens` never answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReasoningTokens {
    Fixed(u32),
    Uniform(u32, u32),
    Exp(f64),
}

impl ReasoningTokens {
    /// The mean of the distribution (before the cap at max_tokens).
    pub fn mean(self) -> f64 {
        match self {
            ReasoningTokens::Fixed(n) => n as f64,
            ReasoningTokens::Uniform(a, b) => (a as f64 + b as f64) / 2.0,
            ReasoningTokens::Exp(m) => m,
        }
    }

    /// Request `n`'s reasoning tokens.
    pub fn draw(self, n: u64) -> u32 {
        let mut r = SplitMix(n ^ 0x5EA5_0111_7000_0001);
        let unit = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        match self {
            ReasoningTokens::Fixed(k) => k,
            ReasoningTokens::Uniform(a, b) => a + ((b - a + 1) as f64 * unit).floor().min((b - a) as f64) as u32,
            ReasoningTokens::Exp(m) => (-m * (1.0 - unit).ln()).floor().min(u32::MAX as f64) as u32,
        }
    }
}

impl std::str::FromStr for ReasoningTokens {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid --reasoning-tokens {s:?}: use N, uniform:LO:HI or exp:MEAN (e.g. 200, uniform:50:500, exp:300)"
            )
        };
        let int = |x: &str| x.trim().parse::<u32>().map_err(|_| bad());
        match s.split(':').collect::<Vec<_>>().as_slice() {
            [n] => Ok(ReasoningTokens::Fixed(int(n)?)),
            ["uniform", a, b] => {
                let (a, b) = (int(a)?, int(b)?);
                if b < a {
                    return Err(bad());
                }
                Ok(ReasoningTokens::Uniform(a, b))
            }
            ["exp", m] => {
                let m: f64 = m.trim().parse().map_err(|_| bad())?;
                if !(m.is_finite() && m > 0.0) {
                    return Err(bad());
                }
                Ok(ReasoningTokens::Exp(m))
            }
            _ => Err(bad()),
        }
    }
}

/// Everything needed to format one response.
#[derive(Debug, Clone)]
pub struct Fmt {
    pub proto: Proto,
    pub id: String,
    pub model: String,
    pub created: u64,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub include_usage: bool,
    pub continuous_usage: bool,
    /// Seed of the output words.
    pub seed: u64,
    /// Tokens emitted so far.
    pub sent: u32,
    /// Cumulative text so far (SGLang's default streaming mode only).
    pub text: String,
    /// The pseudo-model's tokens and log probabilities, when the request asked for them or
    /// for greedy decoding (see [`super::logprobs`]); `None` keeps the seeded words.
    pub lp: Option<Arc<Scored>>,
    /// The first `reasoning` of the `max_tokens` tokens are reasoning (0: none), sent as
    /// `reasoning_format` says.
    pub reasoning: u32,
    pub reasoning_format: ReasoningFormat,
    /// With the simulated prefix cache: the prompt tokens it served (set by the engine when
    /// the request is admitted), reported in the engine's usage shape; None: not reported.
    pub cached: Option<Arc<AtomicU32>>,
}

impl Fmt {
    fn cached_tokens(&self) -> Option<u32> {
        self.cached.as_ref().map(|c| c.load(Ordering::Relaxed))
    }

    fn word(&self, i: u32) -> &'static str {
        if let Some(lp) = &self.lp {
            return lp.word(i);
        }
        let mut m = SplitMix(self.seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        WORDS[(m.next_u64() % WORDS.len() as u64) as usize]
    }

    /// Whether reasoning goes in a chat field (else as `<think>` text).
    fn reasoning_field(&self) -> Option<&'static str> {
        match (self.proto, self.reasoning_format) {
            (_, _) if self.reasoning == 0 => None,
            (Proto::Chat, ReasoningFormat::Vllm) => Some("reasoning"),
            (Proto::Chat, ReasoningFormat::Sglang) => Some("reasoning_content"),
            _ => None,
        }
    }

    /// Token i's text: a space and its word, after `<think>` (the first reasoning token) or
    /// `</think>` (the first answer token) when reasoning is raw text.
    fn token_text(&self, i: u32, out: &mut String) {
        if self.reasoning > 0 && self.reasoning_field().is_none() {
            if i == 0 {
                out.push_str("<think>");
            } else if i == self.reasoning {
                out.push_str("</think>");
            }
        }
        out.push(' ');
        out.push_str(self.word(i));
    }

    /// Reasoning tokens among the first `k`, when the server counts them in this format.
    fn reasoning_count(&self, k: u32) -> Option<u32> {
        match self.reasoning_format {
            ReasoningFormat::Tags => None,
            _ => Some(k.min(self.reasoning)),
        }
    }

    /// The usage's reasoning fields (after `completion_tokens`), in the format's shape.
    fn usage_reasoning(&self, k: u32, null_details: bool) -> Cow<'static, str> {
        // (no allocation on the common path: every chunk of a continuous-usage stream asks)
        match (self.reasoning_format, self.reasoning_count(k)) {
            (ReasoningFormat::Vllm, Some(r)) if self.reasoning > 0 => {
                format!(",\"completion_tokens_details\":{{\"reasoning_tokens\":{r}}}").into()
            }
            (ReasoningFormat::Sglang, Some(r)) if self.reasoning > 0 => format!(",\"reasoning_tokens\":{r}").into(),
            _ if null_details => Cow::Borrowed(",\"completion_tokens_details\":null"),
            _ => Cow::Borrowed(""),
        }
    }

    /// Append the stream bytes for the next `n` tokens (the first call also writes any
    /// leading role chunk; the call that reaches `max_tokens` writes the end of the stream).
    /// Every event is framed by [`Writer`].
    pub fn chunk(&mut self, out: &mut Vec<u8>, n: u32) {
        let first = self.sent == 0;
        let start = self.sent;
        self.sent = (self.sent + n).min(self.max_tokens);
        let last = self.sent >= self.max_tokens;
        let field = self.reasoning_field();
        // the answer text, and (reasoning in a field) the reasoning text
        let mut piece = String::new();
        let mut thought = String::new();
        for i in start..self.sent {
            if field.is_some() && i < self.reasoning {
                self.token_text(i, &mut thought);
            } else {
                self.token_text(i, &mut piece);
            }
        }
        let k = self.sent;
        let p = self.prompt_tokens;
        let (id, model, created) = (&self.id, &self.model, self.created);
        let mut w = Writer::new(out, self.proto);
        match self.proto {
            Proto::Chat => {
                if first {
                    w.event(|o| {
                        let _ = write!(
                            o,
                            "{{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]"
                        );
                        if self.include_usage && self.continuous_usage {
                            let _ = write!(
                                o,
                                ",\"usage\":{{\"prompt_tokens\":{p},\"total_tokens\":{p},\"completion_tokens\":0{}}}",
                                self.usage_reasoning(0, true)
                            );
                        }
                        o.extend_from_slice(b",\"prompt_token_ids\":null,\"prompt_text\":null}");
                    });
                }
                w.event(|o| {
                    let _ = write!(
                        o,
                        "{{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{{}}},\"logprobs\":{},",
                        match (field, thought.is_empty(), piece.is_empty()) {
                            (Some(f), false, true) => format!("\"{f}\":\"{thought}\""),
                            (Some(f), false, false) => format!("\"{f}\":\"{thought}\",\"content\":\"{piece}\""),
                            _ => format!("\"content\":\"{piece}\""),
                        },
                        self.lp.as_ref().map(|l| l.chat_logprobs(start, k)).unwrap_or_default()
                    );
                    if last {
                        o.extend_from_slice(b"\"finish_reason\":\"length\",\"stop_reason\":null,\"token_ids\":null,\"weight_versions\":null}]");
                    } else {
                        o.extend_from_slice(b"\"finish_reason\":null,\"token_ids\":null}]");
                    }
                    self.usage_inline(o);
                    self.true_kl_inline(o, last);
                    o.extend_from_slice(b",\"kv_transfer_params\":null}");
                });
                if last {
                    self.usage_tail(&mut w, "chat.completion.chunk");
                }
            }
            Proto::Completions => {
                // with echo, the first chunk carries the prompt and its scores first (vLLM)
                let echo = first.then(|| self.lp.as_ref().and_then(|l| l.echo_text())).flatten();
                let text = serde_json::to_string(&format!("{}{piece}", echo.unwrap_or(""))).unwrap_or_default();
                let logprobs = self
                    .lp
                    .as_ref()
                    .map(|l| l.completion_logprobs(start, k, first))
                    .unwrap_or_default();
                w.event(|o| {
                    let _ = write!(
                        o,
                        "{{\"id\":\"{id}\",\"object\":\"text_completion\",\"created\":{created},\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"text\":{text},\"logprobs\":{logprobs},\"finish_reason\":{},\"stop_reason\":null,\"prompt_token_ids\":null,\"token_ids\":null,\"weight_versions\":null}}]",
                        if last { "\"length\"" } else { "null" }
                    );
                    self.usage_inline(o);
                    self.true_kl_inline(o, last);
                    o.extend_from_slice(b",\"kv_transfer_params\":null}");
                });
                if last {
                    self.usage_tail(&mut w, "text_completion");
                }
            }
            Proto::Tgi => {
                // one event per token, `index` counts from 1; the last carries the details
                for i in start..self.sent {
                    let mut word = String::new();
                    self.token_text(i, &mut word);
                    w.event(|o| {
                        let _ = write!(
                            o,
                            "{{\"index\":{},\"token\":{{\"id\":{},\"text\":\"{word}\",\"logprob\":-0.5,\"special\":false}},",
                            i + 1,
                            1000 + (i % 7000)
                        );
                        if i + 1 == self.max_tokens {
                            let mut all = String::new();
                            for j in 0..self.max_tokens {
                                self.token_text(j, &mut all);
                            }
                            let _ = write!(
                                o,
                                "\"generated_text\":\"{all}\",\"details\":{{\"finish_reason\":\"length\",\"generated_tokens\":{},\"seed\":null,\"input_length\":{p}}}}}",
                                self.max_tokens
                            );
                        } else {
                            o.extend_from_slice(b"\"generated_text\":null,\"details\":null}");
                        }
                    });
                }
            }
            Proto::Sglang => {
                self.text.push_str(&piece);
                let ids: Vec<String> = (0..k).map(|j| (1000 + j % 7000).to_string()).collect();
                let text = &self.text;
                w.event(|o| {
                    let _ = write!(
                        o,
                        "{{\"text\":\"{}\",\"output_ids\":[{}],\"meta_info\":{{\"id\":\"{id}\",\"finish_reason\":{},\"prompt_tokens\":{p},\"weight_version\":\"default\",\"num_retractions\":0,\"reasoning_tokens\":{},\"completion_tokens\":{k},\"cached_tokens\":{}}}}}",
                        text,
                        ids.join(","),
                        if last {
                            format!("{{\"type\":\"length\",\"length\":{}}}", self.max_tokens)
                        } else {
                            "null".into()
                        },
                        self.reasoning_count(k).unwrap_or(0),
                        self.cached_tokens().unwrap_or(0)
                    );
                });
                if last {
                    w.done();
                }
            }
            Proto::Llamacpp => {
                for i in start..self.sent {
                    let mut word = String::new();
                    self.token_text(i, &mut word);
                    w.event(|o| {
                        let _ = write!(
                            o,
                            "{{\"index\":0,\"content\":\"{}\",\"tokens\":[{}],\"stop\":false,\"id_slot\":-1,\"tokens_predicted\":{},\"tokens_evaluated\":{p}}}",
                            word,
                            1000 + i % 7000,
                            i + 1
                        );
                    });
                }
                if last {
                    w.event(|o| {
                        let _ = write!(
                            o,
                            "{{\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":0,\"stop\":true,\"model\":\"{model}\",\"tokens_predicted\":{k},\"tokens_evaluated\":{p},\"stop_type\":\"limit\",\"stopping_word\":\"\",\"tokens_cached\":{}",
                            p + k
                        );
                        // llama.cpp's timings: cache_n, the prompt tokens reused from the cache
                        if let Some(c) = self.cached_tokens() {
                            let _ = write!(
                                o,
                                ",\"timings\":{{\"cache_n\":{c},\"prompt_n\":{},\"predicted_n\":{k}}}",
                                p.saturating_sub(c)
                            );
                        }
                        o.push(b'}');
                    });
                }
            }
            Proto::Ollama => {
                for i in start..self.sent {
                    let mut word = String::new();
                    self.token_text(i, &mut word);
                    w.event(|o| {
                        let _ = write!(
                            o,
                            "{{\"model\":\"{model}\",\"created_at\":\"1970-01-01T00:00:00Z\",\"response\":\"{}\",\"done\":false}}",
                            word
                        );
                    });
                }
                if last {
                    w.event(|o| {
                        let _ = write!(
                            o,
                            "{{\"model\":\"{model}\",\"created_at\":\"1970-01-01T00:00:00Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":{p},\"eval_count\":{k}}}"
                        );
                    });
                }
            }
        }
    }

    fn usage_inline(&self, out: &mut Vec<u8>) {
        if self.include_usage && self.continuous_usage {
            let (p, k) = (self.prompt_tokens, self.sent);
            let _ = write!(
                out,
                ",\"usage\":{{\"prompt_tokens\":{p},\"total_tokens\":{},\"completion_tokens\":{k}{}}}",
                p + k,
                self.usage_reasoning(k, true)
            );
        }
    }

    /// `servebench_true_kl` on the last content chunk of a scored response.
    fn true_kl_inline(&self, out: &mut Vec<u8>, last: bool) {
        if let Some(kl) = self.lp.as_ref().filter(|_| last).and_then(|l| l.true_kl()) {
            let _ = write!(out, ",\"servebench_true_kl\":{kl}");
        }
    }

    /// The OpenAI routes' end: the usage event (when asked for) and `[DONE]`.
    fn usage_tail(&self, w: &mut Writer<'_>, object: &str) {
        if self.include_usage {
            let (p, k) = (self.prompt_tokens, self.sent);
            w.event(|o| {
                let _ = write!(
                    o,
                    "{{\"id\":\"{}\",\"object\":\"{object}\",\"created\":{},\"model\":\"{}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"total_tokens\":{},\"completion_tokens\":{k}{}{}}},\"system_fingerprint\":\"servebench-mock\"}}",
                    self.id,
                    self.created,
                    self.model,
                    p + k,
                    self.usage_reasoning(k, false),
                    // vLLM's --enable-prompt-tokens-details
                    self.cached_tokens()
                        .map(|c| format!(",\"prompt_tokens_details\":{{\"cached_tokens\":{c}}}"))
                        .unwrap_or_default()
                );
            });
        }
        w.done();
    }

    /// The whole (non-streamed) response body.
    pub fn whole(&mut self) -> Vec<u8> {
        let field = self.reasoning_field();
        let (mut text, mut thought) = (String::new(), String::new());
        for j in 0..self.max_tokens {
            if field.is_some() && j < self.reasoning {
                self.token_text(j, &mut thought);
            } else {
                self.token_text(j, &mut text);
            }
        }
        let (p, k) = (self.prompt_tokens, self.max_tokens);
        let mut usage = serde_json::json!({"prompt_tokens": p, "total_tokens": p + k, "completion_tokens": k});
        if self.reasoning > 0 {
            match (self.reasoning_format, self.reasoning_count(k)) {
                (ReasoningFormat::Vllm, Some(r)) => {
                    usage["completion_tokens_details"] = serde_json::json!({"reasoning_tokens": r})
                }
                (ReasoningFormat::Sglang, Some(r)) => usage["reasoning_tokens"] = r.into(),
                _ => {}
            }
        }
        let cached = self.cached_tokens();
        if let Some(c) = cached {
            usage["prompt_tokens_details"] = serde_json::json!({ "cached_tokens": c });
        }
        let mut v = match self.proto {
            Proto::Chat => {
                serde_json::json!({"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}], "usage": usage})
            }
            Proto::Completions => {
                serde_json::json!({"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "text": text, "finish_reason": "length"}], "usage": usage})
            }
            Proto::Tgi => {
                serde_json::json!({"generated_text": text, "details": {"finish_reason": "length", "generated_tokens": k}})
            }
            Proto::Sglang => {
                serde_json::json!({"text": text, "meta_info": {"prompt_tokens": p, "completion_tokens": k, "cached_tokens": cached.unwrap_or(0), "finish_reason": {"type": "length", "length": k}}})
            }
            Proto::Llamacpp => {
                let mut v = serde_json::json!({"content": text, "stop": true, "tokens_predicted": k, "tokens_evaluated": p, "stop_type": "limit"});
                if let Some(c) = cached {
                    v["timings"] = serde_json::json!({"cache_n": c, "prompt_n": p.saturating_sub(c), "predicted_n": k});
                }
                v
            }
            Proto::Ollama => {
                serde_json::json!({"model": self.model, "response": text, "done": true, "done_reason": "length", "prompt_eval_count": p, "eval_count": k})
            }
        };
        if let Some(f) = field {
            v["choices"][0]["message"][f] = serde_json::Value::String(thought);
        }
        if let Some(lp) = &self.lp {
            // llama.cpp sends the field only when n_probs asked for it
            if self.proto == Proto::Llamacpp && lp.ask.logprobs.is_some() {
                v["completion_probabilities"] = lp.llamacpp_probs(0, k);
            }
            match self.proto {
                Proto::Chat => v["choices"][0]["logprobs"] = lp.chat_logprobs(0, k),
                Proto::Completions => {
                    let c = &mut v["choices"][0];
                    if let Some(e) = lp.echo_text() {
                        c["text"] = serde_json::Value::String(format!("{e}{text}"));
                    }
                    c["logprobs"] = lp.completion_logprobs(0, k, true);
                    c["prompt_logprobs"] = lp.prompt_logprobs();
                }
                _ => {}
            }
            if matches!(self.proto, Proto::Chat | Proto::Completions | Proto::Llamacpp)
                && let Some(kl) = lp.true_kl()
            {
                v["servebench_true_kl"] = kl;
            }
        }
        self.sent = k;
        serde_json::to_vec(&v).expect("json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::read_back;

    fn fmt(proto: Proto) -> Fmt {
        Fmt {
            proto,
            id: "x".into(),
            model: "m".into(),
            created: 1,
            prompt_tokens: 7,
            max_tokens: 5,
            include_usage: true,
            continuous_usage: true,
            seed: 3,
            sent: 0,
            text: String::new(),
            lp: None,
            reasoning: 0,
            reasoning_format: ReasoningFormat::Vllm,
            cached: None,
        }
    }

    /// Every protocol the mock speaks reads back, through the mock's own test reader (not
    /// replay's parsers), as exactly the tokens, usage and finish reason it wrote.
    #[test]
    fn mock_bytes_parse_back() {
        for (proto, finish) in [
            (Proto::Chat, "length"),
            (Proto::Completions, "length"),
            (Proto::Tgi, "length"),
            (Proto::Sglang, "length"),
            (Proto::Llamacpp, "limit"),
            (Proto::Ollama, "length"),
        ] {
            let mut f = fmt(proto);
            let mut out = Vec::new();
            for n in [2, 2, 1] {
                f.chunk(&mut out, n);
            }
            let r = read_back::read(proto, &out);
            assert!(r.error.is_none(), "{proto:?}: {:?}", r.error);
            assert_eq!(r.unreadable, 0, "{proto:?}: {}", String::from_utf8_lossy(&out));
            assert_eq!(r.usage_tokens, Some(5), "{proto:?}");
            assert!(r.done, "{proto:?}");
            assert_eq!(
                crate::trace::tokens::approx_tokens(&r.text),
                5,
                "{proto:?} {:?}",
                r.text
            );
            assert_eq!(r.finish.as_deref(), Some(finish), "{proto:?}");
        }
    }

    /// With the prefix cache on, the cached prompt tokens go out in each engine's shape,
    /// streamed and whole, and every event still reads back; without it, nothing is added.
    #[test]
    fn cached_tokens_in_each_engines_shape() {
        for (proto, want, path) in [
            (
                Proto::Chat,
                "\"prompt_tokens_details\":{\"cached_tokens\":48}",
                &["usage", "prompt_tokens_details", "cached_tokens"][..],
            ),
            (
                Proto::Completions,
                "\"prompt_tokens_details\":{\"cached_tokens\":48}",
                &["usage", "prompt_tokens_details", "cached_tokens"][..],
            ),
            (
                Proto::Sglang,
                "\"cached_tokens\":48}",
                &["meta_info", "cached_tokens"][..],
            ),
            (
                Proto::Llamacpp,
                "\"timings\":{\"cache_n\":48,",
                &["timings", "cache_n"][..],
            ),
        ] {
            let on = || Fmt {
                cached: Some(Arc::new(AtomicU32::new(48))),
                ..fmt(proto)
            };
            let mut f = on();
            let mut out = Vec::new();
            f.chunk(&mut out, 5);
            let r = read_back::read(proto, &out);
            assert!(r.error.is_none() && r.unreadable == 0, "{proto:?}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains(want), "{proto:?}: {text}");
            let v: serde_json::Value = serde_json::from_slice(&on().whole()).unwrap();
            let got = path.iter().fold(&v, |v, k| &v[k]);
            assert_eq!(got.as_u64(), Some(48), "{proto:?}: {v}");
            let mut off = fmt(proto);
            let mut out = Vec::new();
            off.chunk(&mut out, 5);
            let text = String::from_utf8(out).unwrap();
            assert!(
                !text.contains("prompt_tokens_details") && !text.contains("cache_n"),
                "{text}"
            );
        }
    }
}
