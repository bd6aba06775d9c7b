//! The quality tool: log probabilities of every protocol parsed from fixtures.

use std::path::PathBuf;

use serde_json::Value;
use servebench::client::protocol::Api;
use servebench::quality::logprobs::{LogprobError, Scored, parse, request_body, scores_prompt};
use servebench::quality::measures::{perplexity, teacher_forced};

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logprobs")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn tokens(s: &[servebench::quality::measures::Position]) -> Vec<&str> {
    s.iter().map(|p| p.token.as_str()).collect()
}

#[test]
fn every_logprob_fixture_is_parsed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logprobs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.contains("tokenize") {
            // not a completion: read by llamacpp_tokenize_and_position_fixtures
            continue;
        }
        let (api, prompt) = match name.split('_').next().unwrap() {
            "vllm" if name.contains("chat") => (Api::Chat, false),
            "vllm" => (Api::Completions, name.contains("prompt_logprobs")),
            "tgi" => (Api::Tgi, true),
            "sglang" => (Api::Sglang, true),
            "llamacpp" => (Api::Llamacpp, false),
            other => panic!("fixture {name}: no protocol for prefix {other}"),
        };
        let r = parse(api, &fixture(&name), prompt);
        if name.contains("no_logprobs") {
            assert!(r.is_err(), "{name}");
        } else {
            let s = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!s.generated.is_empty(), "{name}");
            assert!(
                s.generated.iter().all(|p| p.logprob.is_some() && p.top.len() >= 3),
                "{name}: {s:?}"
            );
            assert_eq!(s.prompt.is_some(), prompt, "{name}");
        }
        n += 1;
    }
    assert_eq!(n, 9);
}

/// llama.cpp's teacher forcing, from responses captured from llama-server (llama-cpp-python
/// 0.3.36's llama.cpp, the sharpened tiny model): `/tokenize` with pieces, and the
/// `/completion` whose prompt is the token ids [1878, 223, 370, 428] ("The river") with
/// n_probs 5. The observed token's log probability is its top-k entry, matched by id; a token
/// outside the top k has none (its mass is in the tail bucket).
#[test]
fn llamacpp_tokenize_and_position_fixtures() {
    use serde_json::json;
    use servebench::quality::logprobs::{
        Piece, llamacpp_position, llamacpp_position_body, llamacpp_tokenize_body, llamacpp_tokens, piece_text,
    };
    let toks = llamacpp_tokens(&fixture("llamacpp_tokenize_with_pieces.json")).unwrap();
    assert_eq!(toks.len(), 16);
    assert_eq!(
        toks[..4],
        [(1878, "The"), (223, " "), (370, "ri"), (428, "ver")].map(|(id, p)| Piece { id, piece: p.into() })
    );
    let b = llamacpp_tokenize_body("x");
    assert_eq!(
        (b["add_special"].clone(), b["with_pieces"].clone()),
        (json!(true), json!(true))
    );
    let b = llamacpp_position_body(&[1878, 223], 7);
    assert_eq!(
        (b["prompt"].clone(), b["n_predict"].clone(), b["n_probs"].clone()),
        (json!([1878, 223]), json!(1), json!(7))
    );
    let r = fixture("llamacpp_completion_token_prompt_n_probs.json");
    let top = &r["completion_probabilities"][0]["top_logprobs"];
    let (id1, lp1) = (top[1]["id"].as_i64().unwrap(), top[1]["logprob"].as_f64().unwrap());
    let inside = llamacpp_position(
        &r,
        &Piece {
            id: id1,
            piece: "x".into(),
        },
    )
    .unwrap();
    assert_eq!(inside.top.len(), 5);
    assert_eq!(inside.logprob, Some(lp1), "matched by id, not text");
    assert_eq!(inside.token, "x");
    assert!(inside.top.windows(2).all(|w| w[0].1 >= w[1].1));
    let outside = llamacpp_position(
        &r,
        &Piece {
            id: 999_999,
            piece: "y".into(),
        },
    )
    .unwrap();
    assert_eq!(outside.logprob, None);
    assert_eq!(outside.top, inside.top);
    // without probabilities (a response to a request without n_probs): the field is named
    let e = llamacpp_position(&json!({"content": "a"}), &toks[0]).unwrap_err();
    assert!(e.to_string().contains("completion_probabilities"), "{e}");
    // incomplete UTF-8 pieces stay distinct
    assert_eq!(piece_text(b" a"), " a");
    assert_ne!(piece_text(&[0xCD]), piece_text(&[0xCE]));
}

#[test]
fn vllm_completions_split_the_prompt_from_the_output() {
    let s = parse(
        Api::Completions,
        &fixture("vllm_completions_echo_prompt_logprobs.json"),
        true,
    )
    .unwrap();
    let p = s.prompt.as_ref().unwrap();
    assert_eq!(tokens(p), ["The", " c", "at", " s", "at", " on", " the"]);
    assert_eq!(tokens(&s.generated), [" fullname", " the", " fullname", " the"]);
    assert_eq!(s.text, " fullname the fullname the");
    // The first prompt token has nothing before it; the others carry the actual token (rank
    // 7934 here, outside the top 3) and the top 3, ordered by rank.
    assert_eq!(p[0].logprob, None);
    assert!(p[0].top.is_empty());
    assert!((p[1].logprob.unwrap() + 9.010917663574219).abs() < 1e-9);
    assert_eq!(p[1].top.len(), 4);
    assert_eq!(p[1].top[0].0, "defaults");
    assert_eq!(p[1].top[3].0, " c");
    // Scoring the same sequence twice: zero KL, full agreement.
    let tf = teacher_forced(p, p).unwrap();
    assert_eq!((tf.positions, tf.agree), (6, 6));
    assert!(tf.kl_sum.abs() < 1e-12);
    let ppl = perplexity(p).unwrap();
    assert!((ppl.ln() - 9.0109).abs() < 1e-3, "{ppl}");
}

#[test]
fn chat_tgi_sglang_and_llamacpp_shapes() {
    let c = parse(Api::Chat, &fixture("vllm_chat.json"), false).unwrap();
    assert_eq!(tokens(&c.generated), [" construct", "\n", " construct"]);
    assert_eq!(c.text, " construct\n construct");
    assert_eq!(c.generated[0].top[1], ("signal".to_string(), -9.010912895202637));

    let t = parse(Api::Tgi, &fixture("tgi_generate_details.json"), true).unwrap();
    assert_eq!(tokens(&t.generated), [" Paris", "."]);
    assert_eq!(t.generated[0].top[1], (" a".to_string(), -3.1406));
    let tp = t.prompt.unwrap();
    assert_eq!(tp.len(), 6);
    assert_eq!((tp[0].logprob, tp[2].logprob), (None, Some(-6.5)));

    let g = parse(Api::Sglang, &fixture("sglang_generate_logprobs.json"), true).unwrap();
    assert_eq!(tokens(&g.generated), [" Paris", "."]);
    assert_eq!(g.generated[1].top[2], (" and".to_string(), -2.5));
    let gp = g.prompt.unwrap();
    assert_eq!(tokens(&gp), ["<|begin_of_text|>", "The", " capital", " of", " France"]);
    assert!(gp[0].top.is_empty() && gp[0].logprob.is_none());
    assert_eq!(gp[4].top[0], (" France".to_string(), -2.9531));

    for f in [
        "llamacpp_completion_n_probs.json",
        "llamacpp_completion_n_probs_legacy.json",
    ] {
        let l = parse(Api::Llamacpp, &fixture(f), false).unwrap();
        assert_eq!(tokens(&l.generated), [" Paris", "."], "{f}");
        assert_eq!(l.text, " Paris.");
        let lp = l.generated[0].logprob.unwrap();
        assert!((lp - (-0.0901)).abs() < 2e-3, "{f}: {lp}");
    }
}

#[test]
fn a_response_without_logprobs_names_the_missing_field() {
    let e = parse(Api::Completions, &fixture("vllm_completions_no_logprobs.json"), false).unwrap_err();
    assert_eq!(
        e,
        LogprobError::Missing {
            api: "completions",
            field: "choices[0].logprobs.tokens"
        }
    );
    assert!(e.to_string().contains("no `choices[0].logprobs.tokens`"), "{e}");
    // Prompt log probabilities asked for but absent (an engine without vLLM's extension).
    let e = parse(Api::Completions, &fixture("vllm_completions.json"), true).unwrap_err();
    assert_eq!(
        e,
        LogprobError::Missing {
            api: "completions",
            field: "choices[0].prompt_logprobs"
        }
    );
    let e = parse(Api::Llamacpp, &serde_json::json!({"content": "x"}), false).unwrap_err();
    assert!(e.to_string().contains("completion_probabilities"), "{e}");
    assert_eq!(
        parse(Api::Ollama, &serde_json::json!({}), false).unwrap_err(),
        LogprobError::Missing {
            api: "ollama",
            field: "logprobs"
        }
    );
    let _: Scored = parse(Api::Chat, &fixture("vllm_chat.json"), false).unwrap();
}

#[test]
fn request_bodies_ask_for_logprobs_in_each_protocol() {
    let b = request_body(Api::Completions, Some("m"), "hi", 4, 5, true);
    assert_eq!(
        (
            b["logprobs"].as_u64(),
            b["echo"].as_bool(),
            b["prompt_logprobs"].as_u64()
        ),
        (Some(5), Some(true), Some(5))
    );
    assert_eq!(b["model"], "m");
    let b = request_body(Api::Chat, Some("m"), "hi", 4, 5, false);
    assert_eq!(
        (b["logprobs"].as_bool(), b["top_logprobs"].as_u64()),
        (Some(true), Some(5))
    );
    let b = request_body(Api::Tgi, None, "hi", 4, 5, true);
    let p = &b["parameters"];
    assert_eq!(
        (
            p["details"].as_bool(),
            p["top_n_tokens"].as_u64(),
            p["decoder_input_details"].as_bool()
        ),
        (Some(true), Some(5), Some(true))
    );
    let b = request_body(Api::Sglang, None, "hi", 4, 5, true);
    assert_eq!(
        (
            b["return_logprob"].as_bool(),
            b["top_logprobs_num"].as_u64(),
            b["logprob_start_len"].as_i64()
        ),
        (Some(true), Some(5), Some(0))
    );
    assert_eq!(
        request_body(Api::Sglang, None, "hi", 4, 5, false)["logprob_start_len"],
        -1
    );
    assert_eq!(request_body(Api::Llamacpp, None, "hi", 4, 5, false)["n_probs"], 5);
    assert!(scores_prompt(Api::Completions) && scores_prompt(Api::Tgi) && scores_prompt(Api::Sglang));
    assert!(!scores_prompt(Api::Chat) && !scores_prompt(Api::Llamacpp));
}

// ---- the quality tool against mock-engine ---------------------------------------------------

use crate::common::{Mock, cmd, run, stderr, tmp};
use std::path::Path;

/// A small evaluation set: two passages, four tasks.
fn small_set(dir: &Path) -> PathBuf {
    let p = dir.join("set.jsonl");
    std::fs::write(
        &p,
        concat!(
            "{\"id\":\"p1\",\"kind\":\"passage\",\"text\":\"the river rose for three days and the mill flooded in the spring\"}\n",
            "{\"id\":\"p2\",\"kind\":\"passage\",\"text\":\"a good map leaves things out and every line on it is a decision\"}\n",
            "{\"id\":\"t1\",\"kind\":\"task\",\"prompt\":\"Compute 2 + 2.\",\"answer\":\"4\"}\n",
            "{\"id\":\"t2\",\"kind\":\"task\",\"prompt\":\"Capital of France?\",\"answer\":\"Paris\"}\n",
            "{\"id\":\"t3\",\"kind\":\"task\",\"prompt\":\"Compute 3 * 3.\",\"answer\":\"9\"}\n",
            "{\"id\":\"t4\",\"kind\":\"task\",\"prompt\":\"Largest planet?\",\"answer\":\"Jupiter\"}\n",
        ),
    )
    .unwrap();
    p
}

/// `quality` against `url`; `k` empty: the protocol's default --top-k.
fn measure(url: &str, set: &Path, out: &Path, k: &str) {
    let mut c = cmd("quality");
    c.args(["--url", url, "--api", "completions", "--model", "mock-llm"]);
    if !k.is_empty() {
        c.args(["--top-k", k]);
    }
    let o = run(c.arg("--set").arg(set).arg("-o").arg(out));
    assert!(o.status.success(), "quality failed: {}", stderr(&o));
}

fn compare(base: &Path, var: &Path) -> Value {
    let o = run(cmd("quality").arg("--baseline").arg(base).arg(var));
    assert!(o.status.success(), "quality --baseline failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The mock's own exact KL(baseline || variant) over the prompt positions of `text`.
fn true_kl(url: &str, text: &str) -> Vec<f64> {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").unwrap();
    let body = serde_json::json!({"model": "mock-llm", "prompt": text, "max_tokens": 1, "temperature": 0.0,
        "logprobs": 1, "echo": true, "prompt_logprobs": 1})
    .to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let body = &r[r.find("\r\n\r\n").unwrap() + 4..];
    // the first JSON value of the body (a chunked body has a size line before it)
    let json = &body[body.find('{').unwrap()..];
    let v: Value = serde_json::Deserializer::from_str(json)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    v["servebench_true_kl"]["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect()
}

#[test]
fn quality_zero_noise_gives_zero_kl_and_full_agreement() {
    let d = tmp();
    let set = small_set(d.path());
    let m = Mock::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let (a, b) = (d.path().join("a.parquet"), d.path().join("b.parquet"));
    measure(&m.url, &set, &a, "");
    measure(&m.url, &set, &b, "");
    let c = compare(&a, &b);
    // without --top-k, the completions protocol's default: vLLM's --max-logprobs default, 20
    assert_eq!(c["top_k"], serde_json::json!([20, 20]), "{c}");
    assert!(c["positions"].as_u64().unwrap() > 10, "{c}");
    assert_eq!(c["top1_agreement"], 1.0, "{c}");
    assert!(c["mean_kl"].as_f64().unwrap().abs() < 1e-12, "{c}");
    // identical sides: every interval is the point itself
    assert_eq!(c["top1_disagreement_ci95"], serde_json::json!([0.0, 0.0]), "{c}");
    assert_eq!(c["mean_kl_ci95"], serde_json::json!([0.0, 0.0]), "{c}");
    assert_eq!(c["perplexity_ratio_ci95"], serde_json::json!([1.0, 1.0]), "{c}");
    assert_eq!(c["accuracy_diff_ci95"], serde_json::json!([0.0, 0.0]), "{c}");
    assert!((c["perplexity_ratio"].as_f64().unwrap() - 1.0).abs() < 1e-12, "{c}");
    assert_eq!(c["greedy_identical_share"], 1.0, "{c}");
    assert_eq!(c["accuracy_diff_points"], 0.0, "{c}");
    assert_eq!(c["tasks"], 4);
    assert_eq!(c["missing_in_variant"].as_array().unwrap().len(), 0);
}

#[test]
fn quality_known_noise_gives_kl_above_zero_and_within_the_estimator_bound() {
    let d = tmp();
    let set = small_set(d.path());
    let base = Mock::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let var = Mock::start(&[
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
        "--quality-noise",
        "0.5",
        "--quality-seed",
        "3",
    ]);
    let (a, b) = (d.path().join("a.parquet"), d.path().join("b.parquet"));
    measure(&base.url, &set, &a, "5");
    measure(&var.url, &set, &b, "5");
    let c = compare(&a, &b);
    let est = c["mean_kl"].as_f64().unwrap();
    let n = c["positions"].as_u64().unwrap() as usize;
    // The truth over the same positions, from the mock itself.
    let mut truth = Vec::new();
    for t in [
        "the river rose for three days and the mill flooded in the spring",
        "a good map leaves things out and every line on it is a decision",
    ] {
        truth.extend(true_kl(&var.url, t));
    }
    assert_eq!(truth.len(), n, "{c}");
    let true_mean = truth.iter().sum::<f64>() / n as f64;
    assert!(true_mean > 0.0);
    // The stated bound: 0 < KL-hat <= KL (coarse-graining never raises divergence).
    assert!(est > 0.0, "{c}");
    assert!(
        est <= true_mean * (1.0 + 1e-6) + 1e-9,
        "estimate {est} above the true {true_mean}: {c}"
    );
    assert!(c["top1_agreement"].as_f64().unwrap() <= 1.0);
    // the intervals (a bootstrap over blocks of positions) hold their estimates, KL's above 0
    let ci = |k: &str| -> (f64, f64) { (c[k][0].as_f64().unwrap(), c[k][1].as_f64().unwrap()) };
    let (lo, hi) = ci("mean_kl_ci95");
    assert!(0.0 < lo && lo <= est && est <= hi, "{c}");
    let (lo, hi) = ci("top1_disagreement_ci95");
    let dis = c["top1_disagreement"].as_f64().unwrap();
    assert!(lo <= dis && dis <= hi && hi <= 1.0, "{c}");
    let (lo, hi) = ci("perplexity_ratio_ci95");
    let r = c["perplexity_ratio"].as_f64().unwrap();
    assert!(lo <= r && r <= hi, "{c}");
    assert_eq!(c["blocks"], 4, "two passages of 13 and 14 positions: blocks of 8: {c}");
    // With k the whole vocabulary nothing is left in the tail: the estimate is the truth.
    let k = servebench::mock::model::vocab_size().to_string();
    let (fa, fb) = (d.path().join("fa.parquet"), d.path().join("fb.parquet"));
    measure(&base.url, &set, &fa, &k);
    measure(&var.url, &set, &fb, &k);
    let f = compare(&fa, &fb);
    let full = f["mean_kl"].as_f64().unwrap();
    assert!(
        (full - true_mean).abs() < 1e-6 * true_mean.max(1.0),
        "top-{k}: {full} vs true {true_mean}: {f}"
    );
    assert!(f["mean_p_tail"].as_f64().unwrap() < 1e-9, "{f}");
    eprintln!(
        "noise 0.5, top-5: KL-hat {est:.4} nats, true {true_mean:.4}, mean tail {}",
        c["mean_p_tail"]
    );
}

#[test]
fn quality_bad_input_exits_2_naming_the_line_or_the_missing_field() {
    let d = tmp();
    let set = d.path().join("bad.jsonl");
    std::fs::write(&set, "{\"id\":\"a\",\"kind\":\"task\",\"prompt\":\"x\",\"answer\":\"1\"}\n{\"id\":\"b\",\"kind\":\"task\",\"prompt\":\"y\"}\n").unwrap();
    let o = run(cmd("quality")
        .args(["--url", "http://127.0.0.1:9", "--model", "m", "--set"])
        .arg(&set));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bad.jsonl:2: malformed item \"b\""),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        &set,
        "{\"id\":\"a\",\"kind\":\"task\",\"prompt\":\"x\",\"answer\":\"1\"}\nnot json\n",
    )
    .unwrap();
    let o = run(cmd("quality")
        .args(["--url", "http://127.0.0.1:9", "--model", "m", "--set"])
        .arg(&set));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.jsonl:2: malformed item"), "{}", stderr(&o));
    // An engine that returns no log probabilities: mock-engine's SGLang route has none.
    let m = Mock::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let set = small_set(d.path());
    let o = run(cmd("quality")
        .args(["--url", &m.url, "--api", "sglang", "--set"])
        .arg(&set));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&m.url) && e.contains("meta_info.") && e.contains("no log probabilities"),
        "{e}"
    );
    // llama.cpp's per-position scoring needs at least one position
    let o = run(cmd("quality")
        .args(["--url", &m.url, "--api", "llamacpp", "--max-positions", "0", "--set"])
        .arg(&set));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-positions"), "{}", stderr(&o));
}

#[test]
fn the_checked_in_evaluation_set_is_well_formed() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(servebench::cmd::quality::DEFAULT_SET);
    let (items, sha) = servebench::cmd::quality::load_set(&p).unwrap();
    assert_eq!(sha.len(), 64);
    let tasks = items.iter().filter(|i| i.kind == "task").count();
    let passages = items.len() - tasks;
    assert!(tasks >= 100 && passages >= 6, "{tasks} tasks, {passages} passages");
}

/// `quality --api llamacpp` against `url`: passages teacher-forced one `/completion` per
/// position (token ids from `/tokenize`); returns the tool's stderr.
fn measure_llamacpp(url: &str, set: &Path, out: &Path, extra: &[&str]) -> String {
    let o = run(cmd("quality")
        .args(["--url", url, "--api", "llamacpp"])
        .args(extra)
        .arg("--set")
        .arg(set)
        .arg("-o")
        .arg(out));
    assert!(o.status.success(), "quality failed: {}", stderr(&o));
    stderr(&o)
}

/// llama.cpp's native protocol cannot score a prompt in one request; the tool scores each
/// position with its own request. Against the mock: zero noise gives zero KL and full
/// agreement; a known noise gives KL-hat above zero and at most the mock's true KL over the
/// very same positions (which the completions route reports for the same text), and with k
/// the whole vocabulary the estimate is the truth; --max-positions bounds the requests.
#[test]
fn quality_llamacpp_teacher_forces_position_by_position_within_the_estimator_bound() {
    let d = tmp();
    let set = small_set(d.path());
    let base = Mock::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let var = Mock::start(&[
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
        "--quality-noise",
        "0.5",
        "--quality-seed",
        "3",
    ]);
    let p = |n: &str| d.path().join(n);
    let e = measure_llamacpp(&base.url, &set, &p("a.parquet"), &["--top-k", "5"]);
    assert!(e.contains("one request per position"), "{e}");
    measure_llamacpp(
        &base.url,
        &set,
        &p("a2.parquet"),
        &["--top-k", "5", "--concurrency", "1"],
    );
    measure_llamacpp(&var.url, &set, &p("b.parquet"), &["--top-k", "5"]);
    let same = compare(&p("a.parquet"), &p("a2.parquet"));
    assert_eq!(same["top1_agreement"], 1.0, "{same}");
    assert!(same["mean_kl"].as_f64().unwrap().abs() < 1e-12, "{same}");
    assert_eq!(same["tasks"], 4, "{same}");
    let c = compare(&p("a.parquet"), &p("b.parquet"));
    let est = c["mean_kl"].as_f64().unwrap();
    let n = c["positions"].as_u64().unwrap() as usize;
    let mut truth = Vec::new();
    for t in [
        "the river rose for three days and the mill flooded in the spring",
        "a good map leaves things out and every line on it is a decision",
    ] {
        truth.extend(true_kl(&var.url, t));
    }
    assert_eq!(truth.len(), n, "{c}");
    let true_mean = truth.iter().sum::<f64>() / n as f64;
    assert!(est > 0.0, "{c}");
    assert!(
        est <= true_mean * (1.0 + 1e-6) + 1e-9,
        "estimate {est} above the true {true_mean}: {c}"
    );
    assert!(c["perplexity_ratio"].as_f64().is_some(), "{c}");
    // k the whole vocabulary: nothing in the tail, the estimate is the truth
    let k = servebench::mock::model::vocab_size().to_string();
    measure_llamacpp(&base.url, &set, &p("fa.parquet"), &["--top-k", &k]);
    measure_llamacpp(&var.url, &set, &p("fb.parquet"), &["--top-k", &k]);
    let f = compare(&p("fa.parquet"), &p("fb.parquet"));
    let full = f["mean_kl"].as_f64().unwrap();
    assert!(
        (full - true_mean).abs() < 1e-6 * true_mean.max(1.0),
        "top-{k}: {full} vs true {true_mean}: {f}"
    );
    // --max-positions 5: position 0 and 5 scored positions per passage, then the 4 tasks
    measure_llamacpp(&base.url, &set, &p("m.parquet"), &["--max-positions", "5"]);
    assert_eq!(crate::common::rows(&p("m.parquet")), 2 * 6 + 4);
}
