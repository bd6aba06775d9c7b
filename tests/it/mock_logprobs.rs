//! mock-engine's log probabilities: deterministic, normalised over the whole vocabulary,
//! greedy, teacher-forced scoring of the prompt (echo), and a `--quality-noise` variant whose
//! reported `servebench_true_kl` is the exact KL of the distributions it served.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Mock;

/// The mock's vocabulary size: the largest k it allows.
fn vocab() -> usize {
    servebench::mock::model::vocab_size()
}

fn mock(extra: &[&str]) -> Mock {
    let mut a = vec!["--ttft-ms", "0", "--itl-ms", "0"];
    a.extend_from_slice(extra);
    Mock::start(&a)
}

/// POST a JSON body (HTTP/1.0, so the body ends with the connection): status and body.
fn post(m: &Mock, path: &str, body: &Value) -> (u16, String) {
    let addr = format!("127.0.0.1:{}", m.port);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let b = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn post_json(m: &Mock, path: &str, body: &Value) -> Value {
    let (status, b) = post(m, path, body);
    assert_eq!(status, 200, "{b}");
    serde_json::from_str(&b).unwrap()
}

/// The JSON events of an SSE body.
fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Vocabulary words only, so that each position's dict over the whole vocabulary has no extra key.
const PROMPT: &str = "the river through the city and the market of the world";

fn completion(k: usize) -> Value {
    json!({"model": "mock-llm", "prompt": PROMPT, "max_tokens": 6, "logprobs": k, "echo": true,
           "prompt_logprobs": 2, "temperature": 0})
}

fn logsumexp(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn dict(v: &Value) -> Vec<(String, f64)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_f64().unwrap()))
        .collect()
}

#[test]
fn completions_logprobs_are_deterministic_normalised_greedy_and_echo_the_prompt() {
    let m = mock(&[]);
    let a = post_json(&m, "/v1/completions", &completion(vocab()));
    let b = post_json(&m, "/v1/completions", &completion(vocab()));
    // same request, same bytes (but the id and the time)
    assert_eq!(a["choices"].to_string(), b["choices"].to_string());
    assert_eq!(a["servebench_true_kl"], b["servebench_true_kl"]);
    let c = &a["choices"][0];
    let lp = &c["logprobs"];
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let n_prompt = PROMPT.split_whitespace().count();
    assert_eq!(tokens.len(), n_prompt + 6);
    // echo: the prompt's own tokens first, the first unscored; the text is prompt + output
    assert_eq!(tokens[..n_prompt].concat(), PROMPT);
    assert!(lp["token_logprobs"][0].is_null() && lp["top_logprobs"][0].is_null());
    assert_eq!(c["text"].as_str().unwrap(), tokens.concat());
    for (i, t) in tokens.iter().enumerate().skip(1) {
        let top = dict(&lp["top_logprobs"][i]);
        // the whole vocabulary: normalised
        assert_eq!(top.len(), vocab(), "{i}");
        let lse = logsumexp(top.iter().map(|x| x.1));
        assert!(lse.abs() < 1e-9, "position {i}: logsumexp {lse}");
        let own = lp["token_logprobs"][i].as_f64().unwrap();
        assert_eq!(top.iter().find(|x| x.0 == *t).map(|x| x.1), Some(own), "{i} {t}");
        if i >= n_prompt {
            // greedy: the generated token is the most likely one
            let best = top.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(own, best, "{i}");
        }
    }
    // vLLM's prompt_logprobs: null, then the top 2 and the prompt's own token by id
    let pl = c["prompt_logprobs"].as_array().unwrap();
    assert_eq!(pl.len(), n_prompt);
    assert!(pl[0].is_null());
    for (i, d) in pl.iter().enumerate().skip(1) {
        let d = d.as_object().unwrap();
        assert!((2..=3).contains(&d.len()), "{d:?}");
        let own = d.values().find(|e| e["decoded_token"] == tokens[i]).unwrap();
        assert_eq!(own["logprob"], lp["token_logprobs"][i]);
        assert!(d.values().any(|e| e["rank"] == 1));
    }
    // noise 0: the true KL is zero everywhere
    let kl = &a["servebench_true_kl"];
    assert_eq!(kl["mean"].as_f64(), Some(0.0));
    assert_eq!(kl["prompt"].as_array().unwrap().len(), n_prompt);
    // a different prompt, a different output
    let mut other = completion(1);
    other["prompt"] = json!("a small garden in the summer");
    let o = post_json(&m, "/v1/completions", &other);
    assert_ne!(
        o["choices"][0]["logprobs"]["tokens"],
        a["choices"][0]["logprobs"]["tokens"]
    );
    // too many log probabilities: vLLM's 400
    let (status, body) = post(&m, "/v1/completions", &completion(vocab() + 1));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("max allowed"), "{body}");
}

#[test]
fn noise_zero_is_the_baseline_and_true_kl_is_the_exact_sum() {
    let base = mock(&[]);
    let zero = mock(&["--quality-noise", "0", "--quality-seed", "7"]);
    let noisy = mock(&["--quality-noise", "0.3", "--quality-seed", "3"]);
    let other = mock(&["--quality-noise", "0.3", "--quality-seed", "4"]);
    let req = completion(vocab());
    let b = post_json(&base, "/v1/completions", &req);
    let z = post_json(&zero, "/v1/completions", &req);
    assert_eq!(b["choices"].to_string(), z["choices"].to_string());
    assert_eq!(z["servebench_true_kl"]["mean"].as_f64(), Some(0.0));
    // the variant scores the baseline's own sequence (teacher forcing): prompt + greedy output
    let mut forced = req.clone();
    forced["prompt"] = b["choices"][0]["text"].clone();
    forced["max_tokens"] = json!(1);
    let bf = post_json(&base, "/v1/completions", &forced);
    let v = post_json(&noisy, "/v1/completions", &forced);
    let w = post_json(&other, "/v1/completions", &forced);
    assert_ne!(v["choices"][0]["logprobs"], w["choices"][0]["logprobs"]);
    let (bl, vl) = (&bf["choices"][0]["logprobs"], &v["choices"][0]["logprobs"]);
    assert_eq!(bl["tokens"], vl["tokens"]);
    let kl = v["servebench_true_kl"]["prompt"].as_array().unwrap();
    let n = bl["tokens"].as_array().unwrap().len() - 1;
    assert_eq!(kl.len(), n);
    assert!(kl[0].is_null());
    let mut sum = 0.0;
    for i in 1..n {
        let p = dict(&bl["top_logprobs"][i]);
        let q: std::collections::HashMap<String, f64> = dict(&vl["top_logprobs"][i]).into_iter().collect();
        let exact: f64 = p.iter().map(|(t, lp)| lp.exp() * (lp - q[t])).sum();
        let served = kl[i].as_f64().unwrap();
        assert!(exact > 0.0, "{i}");
        assert!(
            (served - exact).abs() < 1e-12,
            "position {i}: served {served}, summed {exact}"
        );
        sum += served;
    }
    // the variant's own greedy output is scored too, and the mean covers every position
    let generated = v["servebench_true_kl"]["completion"][0].as_f64().unwrap();
    let mean = v["servebench_true_kl"]["mean"].as_f64().unwrap();
    assert!((mean - (sum + generated) / n as f64).abs() < 1e-12, "{mean}");
    // noise 0.3 on logits of spread 2: a small but clear divergence
    assert!(mean > 1e-3 && mean < 0.3, "{mean}");
}

#[test]
fn chat_logprobs_and_streams_carry_the_same_tokens() {
    let m = mock(&["--tokens-per-chunk", "2"]);
    let chat = json!({"model": "mock-llm", "messages": [{"role": "user", "content": PROMPT}],
                      "max_tokens": 5, "logprobs": true, "top_logprobs": 3, "temperature": 0});
    let whole = post_json(&m, "/v1/chat/completions", &chat);
    let content = whole["choices"][0]["logprobs"]["content"].as_array().unwrap().clone();
    assert_eq!(content.len(), 5);
    let mut text = String::new();
    for t in &content {
        let top = t["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert!(
            top.windows(2)
                .all(|w| w[0]["logprob"].as_f64() >= w[1]["logprob"].as_f64())
        );
        assert_eq!(t["token"], top[0]["token"]);
        let bytes: Vec<u8> = t["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(bytes, t["token"].as_str().unwrap().as_bytes());
        text.push_str(t["token"].as_str().unwrap());
    }
    assert_eq!(whole["choices"][0]["message"]["content"].as_str(), Some(text.as_str()));
    // streamed: the same tokens, chunk by chunk, the true KL on the last content chunk
    let mut s = chat.clone();
    s["stream"] = json!(true);
    let (status, body) = post(&m, "/v1/chat/completions", &s);
    assert_eq!(status, 200);
    let ev = events(&body);
    let streamed: Vec<Value> = ev
        .iter()
        .filter_map(|e| e["choices"][0]["logprobs"]["content"].as_array())
        .flatten()
        .cloned()
        .collect();
    assert_eq!(streamed, content);
    assert!(ev.iter().any(|e| e["servebench_true_kl"]["mean"].as_f64() == Some(0.0)));
    // completions streamed with echo: the first chunk carries the prompt and its scores
    let mut c = completion(2);
    c["stream"] = json!(true);
    let (_, body) = post(&m, "/v1/completions", &c);
    let whole = post_json(&m, "/v1/completions", &completion(2));
    let ev = events(&body);
    let mut tokens = Vec::new();
    let mut lps = Vec::new();
    let mut text = String::new();
    for e in &ev {
        let ch = &e["choices"][0];
        text.push_str(ch["text"].as_str().unwrap());
        tokens.extend(ch["logprobs"]["tokens"].as_array().unwrap().iter().cloned());
        lps.extend(ch["logprobs"]["token_logprobs"].as_array().unwrap().iter().cloned());
    }
    let wl = &whole["choices"][0]["logprobs"];
    assert_eq!(Value::Array(tokens), wl["tokens"]);
    assert_eq!(Value::Array(lps), wl["token_logprobs"]);
    assert_eq!(whole["choices"][0]["text"].as_str(), Some(text.as_str()));
    // temperature 0 alone: the same greedy text, without log probabilities or the true KL
    let mut greedy = completion(0);
    for f in ["logprobs", "echo", "prompt_logprobs"] {
        greedy.as_object_mut().unwrap().remove(f);
    }
    let g = post_json(&m, "/v1/completions", &greedy);
    let full = whole["choices"][0]["text"].as_str().unwrap();
    assert_eq!(full.strip_prefix(PROMPT), g["choices"][0]["text"].as_str());
    assert!(g["choices"][0]["logprobs"].is_null() && g.get("servebench_true_kl").is_none());
    // without log probabilities or temperature 0, the mock's usual words and no logprobs
    let plain = post_json(&m, "/v1/completions", &json!({"prompt": PROMPT, "max_tokens": 3}));
    assert!(plain["choices"][0].get("logprobs").is_none_or(Value::is_null));
    assert!(plain.get("servebench_true_kl").is_none());
}

/// llama.cpp's native route: `/tokenize` cuts a text as the completions route does, a prompt
/// of those token ids is scored as the text itself, `n_probs` gives the top k of each
/// generated token (llama.cpp's `completion_probabilities` shape) with the greedy token first,
/// and the variant's `servebench_true_kl` is the KL at the position after the prompt, the same
/// number the completions route reports for that position.
#[test]
fn llamacpp_tokenize_token_prompts_and_n_probs() {
    let m = mock(&["--quality-noise", "0.3", "--quality-seed", "5"]);
    let t = post_json(&m, "/tokenize", &json!({"content": PROMPT, "with_pieces": true}));
    let toks = t["tokens"].as_array().unwrap();
    let ids: Vec<u64> = toks.iter().map(|x| x["id"].as_u64().unwrap()).collect();
    let pieces: String = toks.iter().map(|x| x["piece"].as_str().unwrap()).collect();
    assert_eq!(pieces, PROMPT);
    let plain = post_json(&m, "/tokenize", &json!({"content": PROMPT}));
    assert_eq!(plain["tokens"], json!(ids));
    let ask = |prompt: Value| {
        post_json(
            &m,
            "/completion",
            &json!({"prompt": prompt, "n_predict": 1, "n_probs": 4, "temperature": 0.0, "stream": false}),
        )
    };
    let (a, b) = (ask(json!(ids)), ask(json!(PROMPT)));
    assert_eq!(a["completion_probabilities"], b["completion_probabilities"]);
    let cp = a["completion_probabilities"].as_array().unwrap();
    assert_eq!(cp.len(), 1);
    let top = cp[0]["top_logprobs"].as_array().unwrap();
    assert_eq!(top.len(), 4);
    assert_eq!(top[0]["id"], cp[0]["id"], "greedy: the generated token is the top one");
    assert!(
        top.windows(2)
            .all(|w| w[0]["logprob"].as_f64() >= w[1]["logprob"].as_f64())
    );
    let kl = a["servebench_true_kl"]["completion"][0].as_f64().unwrap();
    assert!(kl > 0.0, "{a}");
    // the completions route scores the same position (the first generated one) alike
    let c = post_json(
        &m,
        "/v1/completions",
        &json!({"model": "mock-llm", "prompt": PROMPT, "max_tokens": 1, "logprobs": 1, "temperature": 0}),
    );
    assert!((c["servebench_true_kl"]["completion"][0].as_f64().unwrap() - kl).abs() < 1e-12);
    // no n_probs: no probabilities (greedy text only)
    let n = post_json(
        &m,
        "/completion",
        &json!({"prompt": PROMPT, "n_predict": 1, "temperature": 0.0}),
    );
    assert!(n.get("completion_probabilities").is_none(), "{n}");
}
