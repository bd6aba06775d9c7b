//! Reasoning models: replay splits the first token (of any kind) from the first answer token
//! and counts reasoning tokens on every route mock-engine speaks, in each engine's shape; agg
//! summarises both and `--defs` follows each tool's choice of TTFT.

use crate::common::*;

fn list_column(path: &std::path::Path, col: &str) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for b in read(path) {
        let a = b.column(b.schema().index_of(col).unwrap());
        for i in 0..b.num_rows() {
            let l = servebench::io::cols::list_at(a.as_ref(), i).expect("a list");
            let v = l
                .as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .expect("f64 list");
            out.push(v.values().to_vec());
        }
    }
    out
}

fn replay_api(m: &Mock, dir: &std::path::Path, api: &str, out_len: &str) -> std::path::PathBuf {
    let t = trace(
        dir,
        &format!("t-{api}.parquet"),
        &["batch", "--count", "6", "--input-len", "16", "--output-len", out_len],
    );
    let out = dir.join(format!("r-{api}.parquet"));
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--api", api, "--concurrency", "3", "--quiet", "-o"])
        .arg(&out));
    out
}

#[test]
fn reasoning_is_split_from_the_answer_on_every_route() {
    // 8 reasoning tokens, then 12 answer tokens, one token per chunk
    let m = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2", "--reasoning-tokens", "8"]);
    let d = tmp();
    for api in ["chat", "completions", "tgi", "sglang", "llamacpp", "ollama"] {
        let out = replay_api(&m, d.path(), api, "20");
        let status = column_text(&out, "status");
        let (ttft, ttfr, ttfa) = (
            column_f64(&out, "ttft_ms"),
            column_f64(&out, "ttfr_ms"),
            column_f64(&out, "ttfa_ms"),
        );
        let rt = column_f64(&out, "reasoning_tokens");
        let tokens = column_f64(&out, "output_tokens");
        let chunks = list_column(&out, "chunk_times_ms");
        for i in 0..status.len() {
            assert_eq!(status[i], "ok", "{api} row {i}");
            assert_eq!(
                tokens[i],
                Some(20.0),
                "{api} row {i}: reasoning counts among the output tokens"
            );
            assert_eq!(rt[i], Some(8.0), "{api} row {i}: reasoning tokens");
            // TTFT is the first token of any kind: the first reasoning token
            assert_eq!(ttfr[i], ttft[i], "{api} row {i}");
            assert_eq!(ttft[i], Some(chunks[i][0]), "{api} row {i}");
            // the answer starts with token 8, the 9th chunk
            assert_eq!(ttfa[i], Some(chunks[i][8]), "{api} row {i}: {:?}", chunks[i]);
        }
    }
}

#[test]
fn agg_summarises_the_split_and_follows_each_tools_ttft() {
    // SGLang's shape (delta.reasoning_content, usage.reasoning_tokens); a quarter of the
    // requests reason past max_tokens and never answer
    let m = Mock::start(&[
        "--ttft-ms",
        "20",
        "--itl-ms",
        "2",
        "--reasoning-tokens",
        "uniform:4:23",
        "--reasoning-format",
        "sglang",
    ]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["batch", "--count", "40", "--input-len", "16", "--output-len", "20"],
    );
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--api", "chat", "--concurrency", "8", "--quiet", "-o"])
        .arg(&out));
    let rt: Vec<f64> = column_f64(&out, "reasoning_tokens")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let ttfa = column_f64(&out, "ttfa_ms");
    let unanswered = ttfa.iter().filter(|x| x.is_none()).count();
    for (i, r) in rt.iter().enumerate() {
        assert!((4.0..=20.0).contains(r), "row {i}: {r} reasoning tokens");
        // all reasoning (20 of 20 tokens) is exactly an unanswered request
        assert_eq!(*r == 20.0, ttfa[i].is_none(), "row {i}");
    }
    assert!(unanswered > 0 && unanswered < 40, "{unanswered} unanswered");

    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&out).arg("-o").arg(&s));
    let one = |p: &std::path::Path, c: &str| column_f64(p, c)[0].unwrap();
    assert_eq!(one(&s, "n_reasoning"), 40.0);
    assert_eq!(one(&s, "n_unanswered") as usize, unanswered);
    let sum: f64 = rt.iter().sum();
    assert!((one(&s, "reasoning_tokens_mean") - sum / 40.0).abs() < 1e-9);
    assert!((one(&s, "reasoning_token_pct") - 100.0 * sum / 800.0).abs() < 1e-9);
    // time to first answer waits for the reasoning; TTFT does not
    assert!(one(&s, "ttfa_p50_ms") > one(&s, "ttft_p50_ms"));
    let mut answered: Vec<f64> = ttfa.iter().flatten().copied().collect();
    answered.sort_by(f64::total_cmp);
    let own_mean = answered.iter().sum::<f64>() / answered.len() as f64;
    assert!((one(&s, "ttfa_mean_ms") - own_mean).abs() < 1e-6);

    // the report shows the split, and the requests that never answered
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::copy(&out, runs.join("r.parquet")).unwrap();
    let rep = d.path().join("report");
    ok(cmd("report")
        .arg(&runs)
        .arg("-o")
        .arg(&rep)
        .args(["--bootstrap", "200"]));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    let section = md.split("### Reasoning").nth(1).expect("a reasoning section");
    let row = section
        .lines()
        .find(|l| l.contains("| 40 of 40 |"))
        .expect("the group's row");
    assert!(row.contains(&format!("| {unanswered} |")), "{row}");
    assert!(section.contains(&format!("{unanswered} request(s)")), "{section}");

    // tools whose TTFT is the first answer token report ttfa as TTFT; the others the first token
    for (defs, answer) in [
        ("sglang", true),
        ("llmperf", true),
        ("inference-perf", true),
        ("vllm", false),
        ("aiperf", false),
        ("guidellm", false),
    ] {
        let sd = d.path().join(format!("s-{defs}.parquet"));
        ok(cmd("agg").arg(&out).args(["--defs", defs, "-o"]).arg(&sd));
        let want = if answer {
            one(&s, "ttfa_p50_ms")
        } else {
            one(&s, "ttft_p50_ms")
        };
        assert!((one(&sd, "ttft_p50_ms") - want).abs() < 1e-9, "--defs {defs}");
    }
}
