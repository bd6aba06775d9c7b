//! A second real engine: llama.cpp's llama-server (built from the sources inside PyPI's
//! llama-cpp-python sdist by `make real-llamacpp`) serving a tiny random-weight Llama that is
//! quantized for real: one F16 GGUF and its Q8_0 and Q4_K_M quantizations by llama-quantize,
//! under build/real-llamacpp. `make test` installs it and runs this test with the other real
//! ones (with SERVEBENCH_REQUIRE_REAL_LLAMACPP=1, so that a missing install fails instead of
//! skipping).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::common::*;

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("build/real-llamacpp")
}

/// The quality tool's comparison of two files, as JSON.
fn compare(a: &Path, b: &Path) -> Value {
    let o = ok(cmd("quality").arg("--baseline").arg(a).arg(b));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// For each quant: engine-up (readiness is /health, which answers 503 while the model loads),
/// a short trace replayed over chat, completions and the native /completion with token
/// counts from the server, enginemon on /metrics, the quality tool (n_probs: passages
/// teacher-forced one position per request, greedy answers), engine-down with no process
/// left. Then the quants against F16: Q4_K_M further from it than Q8_0 in mean KL and greedy
/// agreement, F16 against itself at zero.
#[test]
fn real_llamacpp_cpu_tiny_quants_serve_every_protocol_and_rank_by_quality() {
    let dir = real_dir();
    if !dir.join(".ok").exists() {
        assert!(
            std::env::var_os("SERVEBENCH_REQUIRE_REAL_LLAMACPP").is_none(),
            "llama.cpp's server is not installed in {}: run `make real-llamacpp`",
            dir.display()
        );
        eprintln!(
            "SKIPPED real_llamacpp: no install in {} (`make real-llamacpp` builds it, about 25 min once per machine; `make test` installs it and runs this test)",
            dir.display()
        );
        return;
    }
    let t_all = Instant::now();
    let d = tmp();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "batch",
            "--count",
            "6",
            "--input-len",
            "32",
            "--output-len",
            "16",
            "--seed",
            "1",
        ],
    );
    // The checked-in set's first three passages (teacher-forced one /completion per position,
    // the first MAX_POSITIONS positions of each) and first 64 task items (greedy answers).
    const MAX_POSITIONS: usize = 16;
    let full = std::fs::read_to_string(root.join(servebench::cmd::quality::DEFAULT_SET)).unwrap();
    let passages: Vec<&str> = full.lines().filter(|l| l.contains("\"passage\"")).take(3).collect();
    let tasks: Vec<&str> = full.lines().filter(|l| l.contains("\"task\"")).take(64).collect();
    let set = d.path().join("set.jsonl");
    std::fs::write(&set, [passages.clone(), tasks.clone()].concat().join("\n") + "\n").unwrap();

    let mut quality = Vec::new();
    for quant in ["fp16", "q8_0", "q4_k_m"] {
        let sd = d.path().join(format!("state-{quant}"));
        let t0 = Instant::now();
        // --no-cache-prompt: every prompt is computed whole, so that a repeated request cannot
        // come from a cached prefix through another batch shape (other rounding).
        let (url, st) = engine_up(
            "llamacpp",
            &[
                "--model",
                "cpu-tiny",
                "--quant",
                quant,
                "--timeout",
                "120s",
                "--",
                "--no-cache-prompt",
            ],
            &sd,
        );
        let _down = EngineDown("llamacpp", sd.clone());
        eprintln!("llama-server {quant} ready after {:.1} s", t0.elapsed().as_secs_f64());
        assert_eq!(st["url"].as_str(), Some(url.as_str()));
        assert_eq!(st["served_model"], "tiny-llama");
        assert_eq!(st["quant"], quant);
        assert_eq!(st["ready"], true);
        // /props' build_info: b<N>-<commit>
        assert!(
            st["version"].as_str().unwrap_or("").starts_with('b'),
            "{}",
            st["version"]
        );
        assert_eq!(Path::new(st["argv"][0].as_str().unwrap()), dir.join("bin/llama-server"));
        let gguf = dir.join(format!("tiny-llama-{quant}.gguf"));
        assert!(
            st["argv"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.as_str() == gguf.to_str()),
            "{}",
            st["argv"]
        );
        let pid = st["pid"].as_i64().unwrap();
        let pgid = st["pgid"].as_i64().unwrap();
        assert!(alive(pid));

        // The trace over the three protocols: every row ok, exactly 16 tokens (ignore_eos)
        // counted by the server (usage, or /completion's tokens_predicted). The native one runs
        // under enginemon, which scrapes /metrics for exactly as long as it runs.
        let metrics = d.path().join(format!("metrics-{quant}.parquet"));
        for api in ["chat", "completions", "llamacpp"] {
            let out = d.path().join(format!("{quant}-{api}.parquet"));
            let mut c = if api == "llamacpp" {
                let mut c = cmd("enginemon");
                c.args(["--engine", "llamacpp", "--interval", "100ms", "--quiet", "--state-dir"])
                    .arg(&sd)
                    .arg("-o")
                    .arg(&metrics)
                    .arg("--")
                    .arg(bin("replay"));
                c
            } else {
                cmd("replay")
            };
            ok(c.arg(&t)
                .args([
                    "--engine",
                    "llamacpp",
                    "--api",
                    api,
                    "--concurrency",
                    "3",
                    "--state-dir",
                ])
                .arg(&sd)
                .args(["--quiet", "-o"])
                .arg(&out));
            assert_eq!(rows(&out), 6, "{quant} {api}");
            for (col, want) in [
                ("status", "ok"),
                ("output_tokens_source", "usage"),
                ("output_tokens", "16"),
                ("model", "tiny-llama"),
                ("api", api),
            ] {
                let got = column_text(&out, col);
                assert!(got.iter().all(|s| s == want), "{quant} {api} {col}: {got:?}");
            }
            assert!(
                column_f64(&out, "ttft_ms").iter().all(|v| v.is_some_and(|x| x > 0.0)),
                "{quant} {api}"
            );
        }
        // enginemon read llama.cpp's own series: its running-requests gauge as the common
        // `running`, and its generated-token counter, which saw at least the two earlier
        // replays' 2 x 6 x 16 tokens and at most all three's.
        let names = column_text(&metrics, "metric");
        let values = column_f64(&metrics, "value");
        let common = column_text(&metrics, "common");
        assert!(
            names
                .iter()
                .zip(&common)
                .any(|(n, c)| n == "llamacpp:requests_processing" && c == "running"),
            "{quant}: {names:?}"
        );
        let predicted = names
            .iter()
            .zip(&values)
            .filter(|(n, _)| *n == "llamacpp:tokens_predicted_total")
            .filter_map(|(_, v)| *v)
            .fold(0.0, f64::max);
        assert!(
            (192.0..=288.0).contains(&predicted),
            "{quant}: tokens_predicted_total {predicted}"
        );

        // The quality tool with top-20 log probabilities (n_probs): passages teacher-forced
        // position by position, greedy answers; F16 twice. One request at a time: with the
        // server's --no-cache-prompt every position is computed whole, in the same batch shape
        // each run (F16 against itself is then exactly the same).
        let runs = if quant == "fp16" { 2 } else { 1 };
        for i in 0..runs {
            let out = d.path().join(format!("quality-{quant}-{i}.parquet"));
            let t0 = Instant::now();
            let o = ok(cmd("quality")
                .args([
                    "--engine",
                    "llamacpp",
                    "--api",
                    "llamacpp",
                    "--top-k",
                    "20",
                    "--concurrency",
                    "1",
                    "--max-positions",
                    &MAX_POSITIONS.to_string(),
                    "--state-dir",
                ])
                .arg(&sd)
                .arg("--set")
                .arg(&set)
                .arg("-o")
                .arg(&out));
            eprintln!("quality {quant}: {:.1} s", t0.elapsed().as_secs_f64());
            assert!(stderr(&o).contains("one request per position"), "{}", stderr(&o));
            assert_eq!(
                rows(&out),
                passages.len() * (MAX_POSITIONS + 1) + tasks.len(),
                "{quant}"
            );
            let toks = column_text(&out, "output_tokens_json");
            // the task rows carry the answers (passage rows have none)
            let answered = toks.iter().filter(|t| t.len() > 2).count();
            assert_eq!(answered, tasks.len(), "{quant}: empty answers {toks:?}");
            quality.push(out);
        }

        // engine-down stops the server: its pid and its process group are gone.
        let o = ok(cmd("engine-down").args(["llamacpp", "--state-dir"]).arg(&sd));
        eprintln!("{}", stderr(&o).trim());
        assert!(!alive(pid), "llama-server {pid} ({quant}) survived engine-down");
        assert_eq!(process_group(pgid), Vec::<i64>::new(), "{quant}");
        assert!(!sd.join("llamacpp.json").exists());
    }

    // The quality tool's comparison. Teacher-forced: F16 against itself at zero KL and full
    // top-1 agreement; Q4_K_M's mean KL from F16 above Q8_0's, and Q8_0's above zero. The
    // sharpened model (make_gguf.py) puts most of the mass in the top 20, so the tail bucket
    // hides little. Greedy answers (16 tokens each): F16 against itself identical; Q8_0 keeps
    // closer to F16 than Q4_K_M (a longer common prefix on average), and Q4_K_M changes some.
    let same = compare(&quality[0], &quality[1]);
    let q8 = compare(&quality[0], &quality[2]);
    let q4 = compare(&quality[0], &quality[3]);
    eprintln!("F16 twice: {same}\nF16 vs Q8_0: {q8}\nF16 vs Q4_K_M: {q4}");
    let positions = passages.len() * MAX_POSITIONS;
    for c in [&same, &q8, &q4] {
        assert_eq!(c["positions"], positions, "{c}");
        assert_eq!(c["top_k"], serde_json::json!([20, 20]), "{c}");
    }
    assert!(f(&same, "mean_kl") < 1e-6, "F16 against itself: {same}");
    assert_eq!(f(&same, "top1_agreement"), 1.0, "{same}");
    // the top 20 hold most of the mass (the baseline's mean tail is small)
    let top20 = 1.0 - f(&same, "mean_p_tail");
    assert!(top20 > 0.8, "top-20 mass {top20}: {same}");
    let (k8, k4) = (f(&q8, "mean_kl"), f(&q4, "mean_kl"));
    assert!(
        k8 > 0.0 && k4 > k8,
        "Q4_K_M should be further from F16 than Q8_0: {k4} vs {k8}"
    );
    assert!(f(&q4, "top1_agreement") <= f(&q8, "top1_agreement"), "{q4}\n{q8}");
    eprintln!("mean KL from F16 (nats): Q8_0 {k8:.5}, Q4_K_M {k4:.5}; top-20 mass {top20:.3}");
    assert_eq!(same["greedy_prompts"], tasks.len(), "{same}");
    assert_eq!(f(&same, "greedy_identical_share"), 1.0, "{same}");
    assert_eq!(same["accuracy_diff_points"], 0.0, "{same}");
    let (p8, p4) = (f(&q8, "greedy_mean_common_prefix"), f(&q4, "greedy_mean_common_prefix"));
    assert!(p4 < p8, "Q4_K_M should part from F16 sooner than Q8_0: {p4} vs {p8}");
    assert!(f(&q4, "greedy_identical_share") < 1.0, "{q4}");
    assert!(
        f(&q4, "greedy_identical_share") <= f(&q8, "greedy_identical_share"),
        "{q4}\n{q8}"
    );
    eprintln!("real llama.cpp test: {:.0} s", t_all.elapsed().as_secs_f64());
}
