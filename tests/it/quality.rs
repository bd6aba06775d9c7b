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
    assert_eq!(n, 8);
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
