//! Log probabilities in every protocol that has them: the request fields that ask for them and
//! the parsers of the (non-streamed) responses into [`Position`]s.
//!
//! The benchmark's hot path (`client::protocol`, its borrowed `lazy` reader) is left untouched:
//! the quality tool sends its own non-streamed requests and parses them here with serde_json.
//!
//! Fields and limits, per engine (sources):
//! - OpenAI completions: `logprobs: k` (top-k per position; OpenAI caps it at 5, vLLM at its
//!   `--max-logprobs`, default 20), `echo: true` returns the prompt's tokens with their log
//!   probabilities in `choices[0].logprobs.{tokens, token_logprobs, top_logprobs}` (the first
//!   prompt token's entries are null). vLLM adds `prompt_logprobs: k`:
//!   `choices[0].prompt_logprobs = [null, {token_id: {logprob, rank, decoded_token}}, ...]`,
//!   holding the actual token and the top-k. (OpenAI API reference, "Create completion";
//!   vLLM docs "OpenAI-Compatible Server", extra parameters; fixture captured live from vLLM.)
//! - OpenAI chat: `logprobs: true, top_logprobs: k` (0..=20) →
//!   `choices[0].logprobs.content[i] = {token, logprob, bytes, top_logprobs: [{token, logprob,
//!   bytes}]}`; generated tokens only. (OpenAI API reference, "Create chat completion".)
//! - TGI `/generate`: `parameters.details: true` gives `details.tokens[i] = {id, text, logprob,
//!   special}`; `top_n_tokens: n` (TGI caps it at `--max-top-n-tokens`, default 5) adds
//!   `details.top_tokens[i] = [{id, text, logprob, special}]`; `decoder_input_details: true`
//!   adds `details.prefill = [{id, text, logprob}]`, the prompt's tokens (first logprob null),
//!   without top-n alternatives. (huggingface.co/docs/huggingface.js TextGenerationParameters
//!   and TextGenerationOutputDetails; TGI OpenAPI schema.)
//! - SGLang `/generate`: `return_logprob: true`, `top_logprobs_num: k`, `logprob_start_len: 0`
//!   (score from the first prompt token; -1, the default, scores the output only) and
//!   `return_text_in_logprobs: true` → `meta_info.{input,output}_token_logprobs[i] = [logprob,
//!   token_id, text]` and `meta_info.{input,output}_top_logprobs[i] = [[logprob, token_id,
//!   text], ...]` (null for the first input position). (SGLang docs "Sampling Parameters" /
//!   native API `GenerateReqInput`.)
//! - llama.cpp `/completion`: `n_probs: k` → `completion_probabilities[i] = {id, token,
//!   logprob, bytes, top_logprobs: [{id, token, logprob, bytes}]}` for generated tokens only
//!   (llama.cpp before b4500 sent `{content, probs: [{tok_str, prob}]}` with probabilities, also
//!   parsed). No prompt scoring in one request: [`llamacpp_tokenize_body`] and
//!   [`llamacpp_position_body`] score a passage position by position instead (below).
//!   (llama.cpp tools/server/README.md, `/completion` options and response.)
//!
//! # llama.cpp: teacher forcing one position per request
//!
//! llama.cpp's server cannot score a given sequence in one request (`n_probs` covers generated
//! tokens only; its `/v1/completions` refuses `echo`). It can be teacher-forced all the same:
//! `POST /tokenize {content, add_special: true, with_pieces: true}` → `{tokens: [{id, piece}]}`
//! (`piece` a string, or a list of bytes where the piece is not valid UTF-8) gives the
//! passage's tokens as the server's own tokenizer cuts them (the model's BOS first where it
//! adds one), and for each position i ≥ 1 a `/completion` whose prompt is the token-id list
//! `tokens[0..i]` with `n_predict: 1, n_probs: k, temperature: 0, cache_prompt: true` returns in
//! `completion_probabilities[0].top_logprobs` the top-k of the distribution at position i
//! (computed from the full softmax before sampling; `post_sampling_probs` is not sent). The
//! observed token is `tokens[i]`: its log probability is its entry in that list, matched by
//! id; where it is not among the top k it has none (its mass is in the tail bucket of the KL
//! estimator, as with every engine, and perplexity is over the positions that carry one). One
//! request per position, each a prefix of the next: the server's prefix cache
//! (`cache_prompt`) makes each one cost about one token's forward pass. Position 0 (no
//! context) is not scored, as with `echo`. (llama.cpp tools/server/README.md, `/tokenize` and
//! `/completion`; fixtures `llamacpp_tokenize_with_pieces.json` and
//! `llamacpp_completion_token_prompt_n_probs.json` captured from llama-server as vendored in
//! llama-cpp-python 0.3.36.)

use serde_json::{Value, json};

use super::measures::Position;
use crate::client::protocol::Api;

/// The log probabilities of one response: the prompt's positions (where the engine scores the
/// prompt) and the generated ones, and the generated text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scored {
    /// None where the protocol or the engine does not score the prompt.
    pub prompt: Option<Vec<Position>>,
    pub generated: Vec<Position>,
    pub text: String,
}

/// What went wrong reading log probabilities from a response.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LogprobError {
    /// The response has no log probabilities at the field the protocol defines.
    #[error(
        "the {api} response has no `{field}`: the engine returned no log probabilities (does it support them, and is its log-probability limit at least --top-k?)"
    )]
    Missing { api: &'static str, field: &'static str },
    #[error("the {api} response is malformed at `{field}`: {why}")]
    Malformed {
        api: &'static str,
        field: &'static str,
        why: String,
    },
}

/// Whether the protocol can return the prompt's log probabilities in one request (teacher
/// forcing; llama.cpp does it one position per request: [`scores_per_position`]).
pub fn scores_prompt(api: Api) -> bool {
    matches!(api, Api::Completions | Api::Tgi | Api::Sglang)
}

/// Whether the protocol teacher-forces a passage one position per request (llama.cpp's
/// native protocol: see the module documentation).
pub fn scores_per_position(api: Api) -> bool {
    api == Api::Llamacpp
}

/// The text whose token(s) the scoring request forces as its one generated token (a logit
/// bias of +100, string form): llama.cpp withholds a generated token's `n_probs` while its
/// text is an incomplete UTF-8 sequence (a byte-level BPE token holding the first byte of a
/// multi-byte character), so the greedy token could leave a position unscored; a plain ASCII
/// token always completes. The bias acts in the sampler, after the probabilities are read
/// from the raw logits: the top-k returned are unchanged (checked on the real server).
pub const LLAMACPP_FORCED: &str = " the";

/// llama.cpp's tokenizer route.
pub const LLAMACPP_TOKENIZE: &str = "/tokenize";

/// The `/tokenize` request for a passage: special tokens added as for a prompt (the model's
/// BOS, if it adds one), with each token's piece.
pub fn llamacpp_tokenize_body(text: &str) -> Value {
    json!({"content": text, "add_special": true, "with_pieces": true})
}

/// One token of a passage as the server cut it: its id and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub id: i64,
    pub piece: String,
}

/// Parse a `/tokenize` response with pieces; `piece` is a string, or a list of bytes where the
/// piece is not valid UTF-8 (read lossily). Plain ids (a server that ignored `with_pieces`)
/// are an error: the rows need the tokens' texts.
pub fn llamacpp_tokens(body: &Value) -> Result<Vec<Piece>, LogprobError> {
    let api = Api::Llamacpp;
    let toks = array(api, &body["tokens"], "tokens")?;
    toks.iter()
        .enumerate()
        .map(|(i, t)| {
            let id = t["id"].as_i64().ok_or_else(|| {
                malformed(
                    api,
                    "tokens",
                    format!("token {i} has no id and piece (does the server know with_pieces?)"),
                )
            })?;
            let piece = match &t["piece"] {
                Value::String(s) => s.clone(),
                Value::Array(b) => piece_text(&byte_list(b)),
                _ => return Err(malformed(api, "tokens", format!("token {i} has no piece"))),
            };
            Ok(Piece { id, piece })
        })
        .collect()
}

fn byte_list(b: &[Value]) -> Vec<u8> {
    b.iter().filter_map(|x| x.as_u64()).map(|x| x as u8).collect()
}

/// A token's text from its bytes, distinct for distinct bytes: the text where the bytes are
/// valid UTF-8, else `<0xCD 0x63 ...>`. (llama.cpp's `token` renders an incomplete UTF-8 piece
/// lossily, so two byte tokens can share a `token` text; the estimator matches tokens by
/// text, so a shared text would pair the wrong probabilities.)
pub fn piece_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:02X}")).collect();
            format!("<{}>", hex.join(" "))
        }
    }
}

/// The `/completion` request that scores the position after `prefix` (token ids): one token
/// (forced: [`LLAMACPP_FORCED`]) with the top-`k` log probabilities of the distribution there,
/// the prefix cache on.
pub fn llamacpp_position_body(prefix: &[i64], k: u32) -> Value {
    json!({"prompt": prefix, "n_predict": 1, "n_probs": k, "temperature": 0.0,
        "stream": false, "logit_bias": [[LLAMACPP_FORCED, 100.0]]})
}

/// The scored position from a `/completion` response to [`llamacpp_position_body`]: the
/// distribution at the first generated position, with `observed` (the passage's token there)
/// and its log probability where it is among the top k (matched by id; by text on servers
/// before b4500, which sent probabilities without ids).
pub fn llamacpp_position(body: &Value, observed: &Piece) -> Result<Position, LogprobError> {
    let api = Api::Llamacpp;
    let probs = array(api, &body["completion_probabilities"], "completion_probabilities")?;
    let e = probs
        .first()
        .ok_or_else(|| malformed(api, "completion_probabilities", "empty: no token was generated"))?;
    let mut own = None;
    let top: Vec<(String, f64)> = if let Some(ps) = e.get("probs") {
        let ps = array(api, ps, "completion_probabilities[0].probs")?;
        ps.iter()
            .filter_map(|t| {
                let (tok, lp) = (text(&t["tok_str"]), num(&t["prob"])?.ln());
                if own.is_none() && tok == observed.piece {
                    own = Some(lp);
                }
                Some((tok, lp))
            })
            .collect()
    } else {
        let ts = array(api, &e["top_logprobs"], "completion_probabilities[0].top_logprobs")?;
        ts.iter()
            .filter_map(|t| {
                let lp = num(&t["logprob"])?;
                if t["id"].as_i64() == Some(observed.id) {
                    own = Some(lp);
                }
                let tok = match &t["bytes"] {
                    Value::Array(b) => piece_text(&byte_list(b)),
                    _ => text(&t["token"]),
                };
                Some((tok, lp))
            })
            .collect()
    };
    if top.is_empty() {
        return Err(malformed(
            api,
            "completion_probabilities[0].top_logprobs",
            "empty (n_probs 0?)",
        ));
    }
    Ok(Position {
        token: observed.piece.clone(),
        logprob: own,
        top,
    })
}

/// The default `--top-k` of each protocol: the most log probabilities per position its engines
/// return by default, declared once. A larger k shrinks the tail bucket and with it the
/// estimator's bias (see [`super::measures`]).
/// - completions 20: vLLM's `--max-logprobs` default (20, "the default for the OpenAI Chat
///   Completions API"); a larger request is refused. (OpenAI's own legacy completions cap
///   `logprobs` at 5: pass `--top-k 5` there.)
/// - chat 20: OpenAI's `top_logprobs` is 0..=20 (vLLM's cap is the same `--max-logprobs`).
/// - tgi 5: TGI's `--max-top-n-tokens` default.
/// - sglang 20: SGLang bounds `top_logprobs_num` only by the vocabulary; 20 as the OpenAI
///   servers, to keep every response small (a larger `--top-k` works).
/// - llamacpp 20: llama.cpp's `n_probs` has no cap below the vocabulary; 20 as above.
/// - ollama: no log probabilities on its native route (the tool ends with exit 2); 20.
pub fn default_top_k(api: Api) -> u32 {
    match api {
        Api::Tgi => 5,
        Api::Completions | Api::Chat | Api::Sglang | Api::Llamacpp | Api::Ollama => 20,
    }
}

/// The route of a non-streamed request with log probabilities (TGI's `/generate`, not the
/// benchmark's `/generate_stream`).
pub fn path(api: Api) -> &'static str {
    match api {
        Api::Tgi => "/generate",
        a => a.path(),
    }
}

/// Request body asking for greedy decoding with top-`k` log probabilities; `score_prompt` asks
/// for the prompt's log probabilities too (ignored where the protocol has none).
pub fn request_body(api: Api, model: Option<&str>, prompt: &str, max_tokens: u32, k: u32, score_prompt: bool) -> Value {
    let mut v = match api {
        Api::Completions => {
            let mut b =
                json!({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "logprobs": k, "stream": false});
            if score_prompt {
                b["echo"] = json!(true);
                b["prompt_logprobs"] = json!(k);
            }
            b
        }
        Api::Chat => json!({
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0.0, "logprobs": true, "top_logprobs": k, "stream": false
        }),
        Api::Tgi => json!({"inputs": prompt, "parameters": {
            "max_new_tokens": max_tokens.max(1), "do_sample": false, "details": true,
            "top_n_tokens": k, "decoder_input_details": score_prompt
        }}),
        Api::Sglang => json!({"text": prompt, "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0.0},
            "return_logprob": true, "top_logprobs_num": k,
            "logprob_start_len": if score_prompt { 0 } else { -1 },
            "return_text_in_logprobs": true, "stream": false}),
        Api::Llamacpp => {
            json!({"prompt": prompt, "n_predict": max_tokens, "temperature": 0.0, "n_probs": k, "stream": false})
        }
        Api::Ollama => {
            json!({"prompt": prompt, "stream": false, "options": {"temperature": 0.0, "num_predict": max_tokens}})
        }
    };
    if let Some(m) = model
        && api.needs_model()
    {
        v["model"] = json!(m);
    }
    v
}

fn missing(api: Api, field: &'static str) -> LogprobError {
    LogprobError::Missing { api: api.name(), field }
}

fn malformed(api: Api, field: &'static str, why: impl Into<String>) -> LogprobError {
    LogprobError::Malformed {
        api: api.name(),
        field,
        why: why.into(),
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn array<'a>(api: Api, v: &'a Value, field: &'static str) -> Result<&'a Vec<Value>, LogprobError> {
    match v {
        Value::Null => Err(missing(api, field)),
        Value::Array(a) => Ok(a),
        _ => Err(malformed(api, field, "not a list")),
    }
}

/// Parse a non-streamed response of `api`. `prompt_asked` says whether the prompt's log
/// probabilities were requested (then their absence is an error).
pub fn parse(api: Api, body: &Value, prompt_asked: bool) -> Result<Scored, LogprobError> {
    match api {
        Api::Completions => completions(body, prompt_asked),
        Api::Chat => chat(body),
        Api::Tgi => tgi(body, prompt_asked),
        Api::Sglang => sglang(body, prompt_asked),
        Api::Llamacpp => llamacpp(body),
        Api::Ollama => Err(missing(api, "logprobs")),
    }
}

fn completions(body: &Value, prompt_asked: bool) -> Result<Scored, LogprobError> {
    let api = Api::Completions;
    let c = &body["choices"][0];
    let lp = &c["logprobs"];
    let tokens = array(api, &lp["tokens"], "choices[0].logprobs.tokens")?;
    let lps = array(api, &lp["token_logprobs"], "choices[0].logprobs.token_logprobs")?;
    let tops = array(api, &lp["top_logprobs"], "choices[0].logprobs.top_logprobs")?;
    if lps.len() != tokens.len() || tops.len() != tokens.len() {
        return Err(malformed(
            api,
            "choices[0].logprobs",
            "tokens, token_logprobs and top_logprobs differ in length",
        ));
    }
    let mut all: Vec<Position> = Vec::with_capacity(tokens.len());
    for i in 0..tokens.len() {
        let top = match &tops[i] {
            Value::Object(m) => m.iter().filter_map(|(t, l)| Some((t.clone(), num(l)?))).collect(),
            _ => Vec::new(),
        };
        all.push(Position {
            token: text(&tokens[i]),
            logprob: num(&lps[i]),
            top,
        });
    }
    let full = text(&c["text"]);
    // With echo the list starts with the prompt; vLLM's prompt_logprobs holds exactly the
    // prompt positions and says where the split is.
    let prompt = match &c["prompt_logprobs"] {
        Value::Array(pl) => {
            let mut pos = Vec::with_capacity(pl.len());
            for (i, e) in pl.iter().enumerate() {
                let Some(m) = e.as_object() else {
                    pos.push(Position {
                        token: all.get(i).map(|p| p.token.clone()).unwrap_or_default(),
                        ..Default::default()
                    });
                    continue;
                };
                // The actual token is the entry whose id matches; it is the one returned in the
                // echoed tokens list at the same index.
                let tok = all.get(i).map(|p| p.token.clone()).unwrap_or_default();
                let k = m.len();
                let mut top: Vec<(String, f64, u64)> = Vec::with_capacity(k);
                let mut own = None;
                for (_, d) in m {
                    let t = text(&d["decoded_token"]);
                    let l = num(&d["logprob"]).ok_or_else(|| {
                        malformed(api, "choices[0].prompt_logprobs", format!("position {i}: no logprob"))
                    })?;
                    let rank = d["rank"].as_u64().unwrap_or(u64::MAX);
                    if t == tok {
                        own = Some(l);
                    }
                    top.push((t, l, rank));
                }
                top.sort_by_key(|x| x.2);
                pos.push(Position {
                    token: tok,
                    logprob: own,
                    top: top.into_iter().map(|(t, l, _)| (t, l)).collect(),
                });
            }
            Some(pos)
        }
        _ if prompt_asked => return Err(missing(api, "choices[0].prompt_logprobs")),
        _ => None,
    };
    let generated = match &prompt {
        Some(p) if p.len() <= all.len() => all.split_off(p.len()),
        Some(p) => {
            return Err(malformed(
                api,
                "choices[0].prompt_logprobs",
                format!("{} prompt positions but only {} echoed tokens", p.len(), all.len()),
            ));
        }
        None => all,
    };
    let text = match &prompt {
        Some(p) => {
            let ptxt: String = p.iter().map(|x| x.token.as_str()).collect();
            full.strip_prefix(&ptxt)
                .map(str::to_string)
                .unwrap_or_else(|| generated.iter().map(|g| g.token.as_str()).collect())
        }
        None => full,
    };
    Ok(Scored {
        prompt,
        generated,
        text,
    })
}

fn chat(body: &Value) -> Result<Scored, LogprobError> {
    let api = Api::Chat;
    let c = &body["choices"][0];
    let content = array(api, &c["logprobs"]["content"], "choices[0].logprobs.content")?;
    let generated = content
        .iter()
        .map(|e| Position {
            token: text(&e["token"]),
            logprob: num(&e["logprob"]),
            top: e["top_logprobs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| Some((text(&t["token"]), num(&t["logprob"])?)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok(Scored {
        prompt: None,
        generated,
        text: text(&c["message"]["content"]),
    })
}

fn tgi_tok(e: &Value) -> (String, Option<f64>) {
    (text(&e["text"]), num(&e["logprob"]))
}

fn tgi(body: &Value, prompt_asked: bool) -> Result<Scored, LogprobError> {
    let api = Api::Tgi;
    // /generate answers one object; a list of one where the request was a list.
    let b = if body.is_array() { &body[0] } else { body };
    let d = &b["details"];
    let tokens = array(api, &d["tokens"], "details.tokens")?;
    let tops = array(api, &d["top_tokens"], "details.top_tokens")?;
    let generated = tokens
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (token, logprob) = tgi_tok(e);
            let top = tops
                .get(i)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| Some((text(&t["text"]), num(&t["logprob"])?)))
                        .collect()
                })
                .unwrap_or_default();
            Position { token, logprob, top }
        })
        .collect();
    let prompt = match &d["prefill"] {
        // TGI gives the prompt tokens' own log probabilities only (no alternatives).
        Value::Array(p) if !p.is_empty() => Some(
            p.iter()
                .map(|e| {
                    let (token, logprob) = tgi_tok(e);
                    Position {
                        token,
                        logprob,
                        top: Vec::new(),
                    }
                })
                .collect(),
        ),
        _ if prompt_asked => return Err(missing(api, "details.prefill")),
        _ => None,
    };
    Ok(Scored {
        prompt,
        generated,
        text: text(&b["generated_text"]),
    })
}

fn sg_entry(api: Api, e: &Value, field: &'static str) -> Result<(String, Option<f64>), LogprobError> {
    let a = e
        .as_array()
        .ok_or_else(|| malformed(api, field, "entry is not [logprob, token_id, text]"))?;
    Ok((a.get(2).map(text).unwrap_or_default(), a.first().and_then(num)))
}

fn sg_positions(
    api: Api,
    lps: &Value,
    tops: &Value,
    lf: &'static str,
    tf: &'static str,
) -> Result<Vec<Position>, LogprobError> {
    let lps = array(api, lps, lf)?;
    let tops = match tops {
        Value::Array(a) => a.as_slice(),
        _ => &[],
    };
    lps.iter()
        .enumerate()
        .map(|(i, e)| {
            let (token, logprob) = sg_entry(api, e, lf)?;
            let top = match tops.get(i) {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|t| sg_entry(api, t, tf))
                    .filter_map(|r| r.ok())
                    .filter_map(|(t, l)| Some((t, l?)))
                    .collect(),
                _ => Vec::new(),
            };
            Ok(Position { token, logprob, top })
        })
        .collect()
}

fn sglang(body: &Value, prompt_asked: bool) -> Result<Scored, LogprobError> {
    let api = Api::Sglang;
    let b = if body.is_array() { &body[0] } else { body };
    let m = &b["meta_info"];
    let generated = sg_positions(
        api,
        &m["output_token_logprobs"],
        &m["output_top_logprobs"],
        "meta_info.output_token_logprobs",
        "meta_info.output_top_logprobs",
    )?;
    let prompt = if prompt_asked {
        Some(sg_positions(
            api,
            &m["input_token_logprobs"],
            &m["input_top_logprobs"],
            "meta_info.input_token_logprobs",
            "meta_info.input_top_logprobs",
        )?)
    } else {
        None
    };
    Ok(Scored {
        prompt,
        generated,
        text: text(&b["text"]),
    })
}

fn llamacpp(body: &Value) -> Result<Scored, LogprobError> {
    let api = Api::Llamacpp;
    let probs = array(api, &body["completion_probabilities"], "completion_probabilities")?;
    let generated = probs
        .iter()
        .map(|e| {
            if e.get("probs").is_some() {
                // Older servers: probabilities, not log probabilities.
                let ps: Vec<(String, f64)> = e["probs"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| Some((text(&t["tok_str"]), num(&t["prob"])?.ln())))
                            .collect()
                    })
                    .unwrap_or_default();
                let token = text(&e["content"]);
                let logprob = ps.iter().find(|(t, _)| *t == token).map(|(_, l)| *l);
                Position {
                    token,
                    logprob,
                    top: ps,
                }
            } else {
                Position {
                    token: text(&e["token"]),
                    logprob: num(&e["logprob"]),
                    top: e["top_logprobs"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|t| Some((text(&t["token"]), num(&t["logprob"])?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }
        })
        .collect();
    Ok(Scored {
        prompt: None,
        generated,
        text: text(&body["content"]),
    })
}
