//! Log probabilities on the OpenAI routes, from the pseudo-model of [`super::model`].
//!
//! Request fields read (vLLM's OpenAI-compatible server; field shapes from vLLM's
//! `entrypoints/openai/protocol.py` and `logprobs.py`, and OpenAI's API reference for
//! completions and chat completions):
//! - completions: `logprobs: k` (top-k per generated token), `echo: true` (the prompt's own
//!   tokens come back scored, the first with `null`), `prompt_logprobs: k` (vLLM's extension),
//!   `temperature`;
//! - chat: `logprobs: true` with `top_logprobs: k`, `temperature`;
//! - llama.cpp `/completion`: `n_probs: k` (0: none), `temperature`; `prompt` a string or a
//!   list of token ids (as `/tokenize` returns them: [`tokenize_response`]). `logit_bias` is
//!   ignored (the mock's tokens are whole words: it never withholds probabilities the way
//!   llama.cpp does for an incomplete UTF-8 token).
//!
//! Whenever log probabilities are asked for, or `temperature` is 0, the generated tokens are
//! the model's greedy (argmax) continuation of the prompt: generated text becomes a function of
//! the prompt. Otherwise the mock's words are its usual seeded draw, as before. Timing is the
//! same either way.
//!
//! Response fields written:
//! - completions, `choices[0].logprobs` = `{text_offset, token_logprobs, tokens, top_logprobs}`
//!   (vLLM's `CompletionLogProbs`); `top_logprobs[i]` is a dict token text → logprob holding
//!   the k most likely tokens and the chosen one (k or k + 1 entries, as in vLLM);
//!   `text_offset` counts characters of the choice's `text` (which, with `echo`, starts with
//!   the prompt); with `echo` the prompt's tokens come first, the first with `null` logprob and
//!   `null` top_logprobs;
//! - completions, `choices[0].prompt_logprobs` (vLLM's `list[dict[int, Logprob] | None]`):
//!   `null`, then per prompt position a dict token id (as a string key) → `{logprob, rank,
//!   decoded_token}` with the top k and the prompt's own token (non-streamed responses);
//! - chat, `choices[0].logprobs.content[]` = `{token, logprob, bytes, top_logprobs: [{token,
//!   logprob, bytes}]}` (OpenAI's `ChatCompletionTokenLogprob`), top_logprobs best first;
//! - llama.cpp (non-streamed), `completion_probabilities[]` = `{id, token, bytes, logprob,
//!   top_logprobs: [{id, token, bytes, logprob}]}` per generated token, top_logprobs best
//!   first (llama.cpp since b4500);
//! - all three, when log probabilities were asked for (not for `temperature: 0` alone):
//!   `servebench_true_kl` (top level, not in any engine's format) = `{prompt: [null,
//!   KL...], completion: [KL...], mean}`: the exact KL(baseline ‖ this server's variant), in
//!   nats, of every distribution served, by summation over the whole vocabulary; `prompt` only
//!   when the prompt was scored; `mean` over all the non-null values. Streamed, it rides on the
//!   last content chunk.

use serde_json::{Map, Value, json};

use super::format::Proto;
use super::model::{self, Token, Variant};

/// What a request asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ask {
    /// Completions `logprobs: k`, or chat `top_logprobs: k` with `logprobs: true`.
    pub logprobs: Option<usize>,
    /// Completions `echo: true`.
    pub echo: bool,
    /// Completions `prompt_logprobs: k`.
    pub prompt_logprobs: Option<usize>,
    /// `temperature: 0`.
    pub greedy: bool,
}

impl Ask {
    /// Whether the model decides the generated tokens.
    pub fn engaged(&self) -> bool {
        self.greedy || self.logprobs.is_some() || self.prompt_logprobs.is_some()
    }

    /// Whether any log probability is served (else only the greedy tokens are needed).
    fn scores(&self) -> bool {
        self.logprobs.is_some() || self.prompt_logprobs.is_some()
    }

    fn scores_prompt(&self) -> bool {
        self.prompt_logprobs.is_some() || (self.echo && self.logprobs.is_some())
    }
}

fn count(v: &Value, field: &str) -> Result<Option<usize>, String> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_u64() {
            Some(k) if (k as usize) <= model::vocab_size() => Ok(Some(k as usize)),
            Some(k) => Err(format!(
                "Requested {field} of {k}, which is greater than max allowed: {} (mock-engine's vocabulary size)",
                model::vocab_size()
            )),
            None => Err(format!("{field} must be a non-negative integer, got {x}")),
        },
    }
}

/// Read what the request asks for; `Err` is a message for a 400 answer.
pub fn ask(proto: Proto, v: &Value) -> Result<Ask, String> {
    let greedy = v.get("temperature").and_then(|t| t.as_f64()) == Some(0.0);
    match proto {
        Proto::Completions => Ok(Ask {
            logprobs: count(v, "logprobs")?,
            echo: v.get("echo").and_then(|e| e.as_bool()).unwrap_or(false),
            prompt_logprobs: count(v, "prompt_logprobs")?,
            greedy,
        }),
        Proto::Chat => {
            let on = match v.get("logprobs") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(x) => return Err(format!("logprobs must be true or false on chat completions, got {x}")),
            };
            let top = count(v, "top_logprobs")?;
            if top.is_some_and(|k| k > 0) && !on {
                return Err("when using `top_logprobs`, `logprobs` must be set to true".into());
            }
            Ok(Ask {
                logprobs: on.then_some(top.unwrap_or(0)),
                greedy,
                ..Ask::default()
            })
        }
        Proto::Llamacpp => Ok(Ask {
            logprobs: count(v, "n_probs")?.filter(|k| *k > 0),
            greedy,
            ..Ask::default()
        }),
        _ => Ok(Ask {
            greedy,
            ..Ask::default()
        }),
    }
}

/// llama.cpp's `POST /tokenize` answer for a request `{content, with_pieces}`: `{tokens:
/// [id...]}`, or `{tokens: [{id, piece}...]}` with pieces (the mock has no special tokens:
/// `add_special` changes nothing).
pub fn tokenize_response(v: &Value) -> Value {
    let text = v.get("content").and_then(Value::as_str).unwrap_or_default();
    let pieces = v.get("with_pieces").and_then(Value::as_bool).unwrap_or(false);
    let toks: Vec<Value> = model::tokenize(text)
        .into_iter()
        .map(|t| {
            if pieces {
                json!({"id": t.id, "piece": t.text})
            } else {
                json!(t.id)
            }
        })
        .collect();
    json!({ "tokens": toks })
}

/// The prompt's tokens: a string is tokenized; a list of integers is token ids; a list of
/// strings is joined by nothing; chat messages' text contents are joined by newlines.
pub fn prompt_tokens(proto: Proto, v: &Value) -> Vec<Token> {
    fn of(x: &Value) -> Vec<Token> {
        match x {
            Value::String(s) => model::tokenize(s),
            Value::Array(a) if a.iter().all(|e| e.is_u64()) => a
                .iter()
                .map(|e| {
                    let id = (e.as_u64().unwrap_or(0) % model::vocab_size() as u64) as u32;
                    Token {
                        id,
                        text: model::id_text(id),
                    }
                })
                .collect(),
            Value::Array(a) => model::tokenize(&a.iter().filter_map(|e| e.as_str()).collect::<String>()),
            _ => Vec::new(),
        }
    }
    match proto {
        Proto::Chat => {
            let mut text = String::new();
            for m in v.get("messages").and_then(|m| m.as_array()).into_iter().flatten() {
                match m.get("content") {
                    Some(Value::String(s)) => text.push_str(s),
                    Some(Value::Array(parts)) => {
                        for p in parts {
                            if let Some(t) = p.get("text").and_then(|t| t.as_str()) {
                                text.push_str(t);
                            }
                        }
                    }
                    _ => {}
                }
                text.push('\n');
            }
            model::tokenize(&text)
        }
        _ => v.get("prompt").map(of).unwrap_or_default(),
    }
}

/// One scored position: the token there and the distribution it was scored under (top-k).
#[derive(Debug, Clone)]
struct Step {
    id: u32,
    text: String,
    logprob: f64,
    rank: u32,
    top: Vec<(u32, f64)>,
    kl: f64,
}

/// A response's tokens and their scores, computed once when the request arrives.
#[derive(Debug, Clone)]
pub struct Scored {
    pub ask: Ask,
    prompt: Vec<Token>,
    /// The prompt's text as echoed (token texts joined).
    prompt_text: String,
    /// Scores of prompt positions 1.. (position 0 has no context), when asked for.
    prompt_steps: Vec<Step>,
    generated: Vec<Step>,
}

impl Scored {
    /// Score the prompt (when asked) and decode `max_tokens` tokens greedily under `variant`.
    pub fn new(variant: Variant, ask: Ask, prompt: Vec<Token>, max_tokens: u32) -> Scored {
        let k = ask.logprobs.unwrap_or(0).max(ask.prompt_logprobs.unwrap_or(0));
        let scores = ask.scores();
        let step = |ctx: u64, id: Option<u32>, text: Option<&str>| -> Step {
            let lp = variant.logprobs(ctx);
            let id = id.unwrap_or_else(|| model::argmax(&lp));
            Step {
                id,
                text: text.map(str::to_string).unwrap_or_else(|| model::id_text(id)),
                logprob: lp[id as usize],
                rank: model::rank(&lp, id),
                top: model::top_k(&lp, k),
                // greedy decoding alone needs no KL (kept cheap for benchmark traffic)
                kl: if variant.noise == 0.0 || !scores {
                    0.0
                } else {
                    model::kl(&model::baseline(ctx), &lp)
                },
            }
        };
        let mut ctx = model::CTX0;
        let mut prompt_steps = Vec::new();
        for (i, t) in prompt.iter().enumerate() {
            if i > 0 && ask.scores_prompt() {
                prompt_steps.push(step(ctx, Some(t.id), Some(&t.text)));
            }
            ctx = model::extend(ctx, t.id);
        }
        let mut generated = Vec::with_capacity(max_tokens as usize);
        for _ in 0..max_tokens {
            let s = step(ctx, None, None);
            ctx = model::extend(ctx, s.id);
            generated.push(s);
        }
        let prompt_text = prompt.iter().map(|t| t.text.as_str()).collect();
        Scored {
            ask,
            prompt,
            prompt_text,
            prompt_steps,
            generated,
        }
    }

    /// The vocabulary word of generated token `i`.
    pub fn word(&self, i: u32) -> &'static str {
        let id = self.generated.get(i as usize).map(|s| s.id).unwrap_or(0);
        model::vocab()[id as usize]
    }

    /// The echoed prompt text, when the response echoes it.
    pub fn echo_text(&self) -> Option<&str> {
        self.ask.echo.then_some(self.prompt_text.as_str())
    }

    fn char_len(s: &str) -> usize {
        s.chars().count()
    }

    /// Completions `logprobs` for generated tokens `from..to`, with the echoed prompt first
    /// when `with_prompt`; `null` when not asked for.
    pub fn completion_logprobs(&self, from: u32, to: u32, with_prompt: bool) -> Value {
        let Some(k) = self.ask.logprobs else {
            return Value::Null;
        };
        let mut offsets = Vec::new();
        let mut lps = Vec::new();
        let mut tokens = Vec::new();
        let mut tops = Vec::new();
        let entry = |s: &Step| -> Value {
            let mut m = Map::new();
            for (id, lp) in s.top.iter().take(k) {
                m.insert(model::id_text(*id), json!(lp));
            }
            m.insert(s.text.clone(), json!(s.logprob));
            Value::Object(m)
        };
        let mut off = 0usize;
        if self.ask.echo {
            if with_prompt {
                for (i, t) in self.prompt.iter().enumerate() {
                    offsets.push(off);
                    tokens.push(t.text.clone());
                    if i == 0 {
                        lps.push(Value::Null);
                        tops.push(Value::Null);
                    } else {
                        let s = &self.prompt_steps[i - 1];
                        lps.push(json!(s.logprob));
                        tops.push(entry(s));
                    }
                    off += Self::char_len(&t.text);
                }
            } else {
                off = Self::char_len(&self.prompt_text);
            }
        }
        off += self.generated[..from as usize]
            .iter()
            .map(|s| Self::char_len(&s.text))
            .sum::<usize>();
        for s in &self.generated[from as usize..to as usize] {
            offsets.push(off);
            tokens.push(s.text.clone());
            lps.push(json!(s.logprob));
            tops.push(entry(s));
            off += Self::char_len(&s.text);
        }
        json!({"text_offset": offsets, "token_logprobs": lps, "tokens": tokens, "top_logprobs": tops})
    }

    /// vLLM's `prompt_logprobs`: `null` first, then a dict per prompt position; `null` when
    /// not asked for.
    pub fn prompt_logprobs(&self) -> Value {
        let Some(k) = self.ask.prompt_logprobs else {
            return Value::Null;
        };
        let mut out = Vec::with_capacity(self.prompt.len());
        if !self.prompt.is_empty() {
            out.push(Value::Null);
        }
        for s in &self.prompt_steps {
            let mut m = Map::new();
            for (r, (id, lp)) in s.top.iter().take(k).enumerate() {
                m.insert(
                    id.to_string(),
                    json!({"logprob": lp, "rank": r + 1, "decoded_token": model::id_text(*id)}),
                );
            }
            m.insert(
                s.id.to_string(),
                json!({"logprob": s.logprob, "rank": s.rank, "decoded_token": s.text}),
            );
            out.push(Value::Object(m));
        }
        Value::Array(out)
    }

    /// llama.cpp's `completion_probabilities` for generated tokens `from..to`; `null` when not
    /// asked for.
    pub fn llamacpp_probs(&self, from: u32, to: u32) -> Value {
        let Some(k) = self.ask.logprobs else {
            return Value::Null;
        };
        let one =
            |id: u32, text: &str, lp: f64| json!({"id": id, "token": text, "bytes": text.as_bytes(), "logprob": lp});
        self.generated[from as usize..to as usize]
            .iter()
            .map(|s| {
                let mut v = one(s.id, &s.text, s.logprob);
                v["top_logprobs"] = s
                    .top
                    .iter()
                    .take(k)
                    .map(|(id, lp)| one(*id, &model::id_text(*id), *lp))
                    .collect();
                v
            })
            .collect()
    }

    /// Chat `logprobs` for generated tokens `from..to`; `null` when not asked for.
    pub fn chat_logprobs(&self, from: u32, to: u32) -> Value {
        let Some(k) = self.ask.logprobs else {
            return Value::Null;
        };
        let one = |text: &str, lp: f64| json!({"token": text, "logprob": lp, "bytes": text.as_bytes()});
        let content: Vec<Value> = self.generated[from as usize..to as usize]
            .iter()
            .map(|s| {
                let mut v = one(&s.text, s.logprob);
                v["top_logprobs"] = s
                    .top
                    .iter()
                    .take(k)
                    .map(|(id, lp)| one(&model::id_text(*id), *lp))
                    .collect();
                v
            })
            .collect();
        json!({"content": content})
    }

    /// `servebench_true_kl` (see the module documentation); `None` when no log probability
    /// was asked for (greedy decoding alone).
    pub fn true_kl(&self) -> Option<Value> {
        self.ask.scores().then(|| self.true_kl_value())
    }

    fn true_kl_value(&self) -> Value {
        let completion: Vec<f64> = self.generated.iter().map(|s| s.kl).collect();
        let mut all: Vec<f64> = completion.clone();
        let mut v = json!({"completion": completion});
        if self.ask.scores_prompt() {
            let mut p = vec![Value::Null];
            for s in &self.prompt_steps {
                p.push(json!(s.kl));
                all.push(s.kl);
            }
            if self.prompt.is_empty() {
                p.clear();
            }
            v["prompt"] = Value::Array(p);
        }
        v["mean"] = if all.is_empty() {
            Value::Null
        } else {
            json!(all.iter().sum::<f64>() / all.len() as f64)
        };
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(noise: f64, k: usize) -> Scored {
        let ask = Ask {
            logprobs: Some(k),
            echo: true,
            prompt_logprobs: Some(k),
            greedy: true,
        };
        let p = model::tokenize("the river and the zzqx road");
        Scored::new(Variant { noise, seed: 5 }, ask, p, 6)
    }

    #[test]
    fn ask_reads_the_fields_and_refuses_bad_ones() {
        let a = ask(
            Proto::Completions,
            &json!({"logprobs": 5, "echo": true, "prompt_logprobs": 0}),
        )
        .unwrap();
        assert_eq!((a.logprobs, a.echo, a.prompt_logprobs), (Some(5), true, Some(0)));
        assert!(!ask(Proto::Completions, &json!({"temperature": 0.7})).unwrap().engaged());
        assert!(ask(Proto::Completions, &json!({"temperature": 0})).unwrap().engaged());
        let a = ask(Proto::Chat, &json!({"logprobs": true, "top_logprobs": 3})).unwrap();
        assert_eq!(a.logprobs, Some(3));
        assert!(ask(Proto::Chat, &json!({"top_logprobs": 3})).is_err());
        let e = ask(Proto::Completions, &json!({"logprobs": 100000})).unwrap_err();
        assert!(e.contains("max allowed"), "{e}");
        assert!(ask(Proto::Completions, &json!({"logprobs": -1})).is_err());
    }

    #[test]
    fn echo_scores_the_prompt_tokens_first_null() {
        let s = scored(0.0, 3);
        let lp = s.completion_logprobs(0, 6, true);
        let tokens = lp["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 6 + 6);
        assert_eq!(tokens[0], "the");
        assert_eq!(tokens[4], " zzqx");
        assert!(lp["token_logprobs"][0].is_null() && lp["top_logprobs"][0].is_null());
        // text_offset indexes the echoed text
        let text: String =
            s.echo_text().unwrap().to_string() + &(0..6).map(|i| format!(" {}", s.word(i))).collect::<String>();
        for (o, t) in lp["text_offset"].as_array().unwrap().iter().zip(tokens) {
            let o = o.as_u64().unwrap() as usize;
            assert!(text[o..].starts_with(t.as_str().unwrap()), "{o} {t}");
        }
        // the prompt's own token's logprob is under its context's distribution
        let ctx = model::extend(model::CTX0, 0);
        let river = model::word_id("river");
        assert_eq!(
            lp["token_logprobs"][1].as_f64().unwrap(),
            model::baseline(ctx)[river as usize]
        );
        let pl = s.prompt_logprobs();
        assert!(pl[0].is_null());
        assert_eq!(pl.as_array().unwrap().len(), 6);
        let e = &pl[1][river.to_string()];
        assert_eq!(e["decoded_token"], " river");
        assert_eq!(
            e["rank"].as_u64().unwrap() as u32,
            model::rank(&model::baseline(ctx), river)
        );
    }

    #[test]
    fn greedy_tokens_are_the_argmax_and_teacher_forcing_agrees() {
        let s = scored(0.0, 2);
        let generated: String = (0..6).map(|i| format!(" {}", s.word(i))).collect();
        // scoring prompt + generated text gives the generated tokens rank 1 with the same logprobs
        let full = format!("{}{generated}", s.echo_text().unwrap());
        let t = Scored::new(
            Variant::default(),
            Ask {
                logprobs: Some(1),
                echo: true,
                ..Ask::default()
            },
            model::tokenize(&full),
            1,
        );
        let a = s.completion_logprobs(0, 6, false);
        let b = t.completion_logprobs(0, 0, true);
        let n = b["token_logprobs"].as_array().unwrap().len();
        assert_eq!(
            a["token_logprobs"].as_array().unwrap()[..],
            b["token_logprobs"].as_array().unwrap()[n - 6..]
        );
        assert!(t.prompt_steps[t.prompt_steps.len() - 6..].iter().all(|s| s.rank == 1));
    }

    #[test]
    fn chat_top_logprobs_are_sorted_and_true_kl_is_the_exact_sum() {
        let s = scored(0.2, 4);
        let c = s.chat_logprobs(0, 6);
        for t in c["content"].as_array().unwrap() {
            let top: Vec<f64> = t["top_logprobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["logprob"].as_f64().unwrap())
                .collect();
            assert_eq!(top.len(), 4);
            assert!(top.windows(2).all(|w| w[0] >= w[1]));
            assert_eq!(t["logprob"].as_f64().unwrap(), top[0]);
            assert_eq!(t["bytes"].as_array().unwrap().len(), t["token"].as_str().unwrap().len());
        }
        let kl = s.true_kl().unwrap();
        assert_eq!(kl["prompt"].as_array().unwrap().len(), 6);
        assert!(kl["prompt"][0].is_null());
        let k1 = kl["prompt"][1].as_f64().unwrap();
        let ctx = model::extend(model::CTX0, 0);
        let v = Variant { noise: 0.2, seed: 5 };
        assert_eq!(k1, model::kl(&model::baseline(ctx), &v.logprobs(ctx)));
        assert!(k1 > 0.0);
        let zero = scored(0.0, 4).true_kl().unwrap();
        assert_eq!(zero["mean"].as_f64(), Some(0.0));
    }
}
