//! import of AIPerf, GuideLLM, genai-bench, inference-perf and LLMPerf files: the checked-in
//! files the tools wrote (tests/fixtures/peers/README.md says how), spot-checked against
//! the raw files; broken files; and `agg --defs <tool>` against the tool's own statistics.
//!
//! The spot-checked numbers were read by hand from the raw files: the first record of each
//! (AIPerf: line 1's `metrics.time_to_first_token.value`, `request_latency.value`,
//! `output_sequence_length.value`; GuideLLM: the first successful request's
//! `info.timings` (first_token_iteration - request_start, last_token_iteration -
//! request_start, in ms) and `output_tokens`; genai-bench: `individual_request_metrics[0]`'s
//! `ttft` and `e2e_latency` in s; inference-perf: entry 0's `output_token_times[0]` and
//! `chunk_times[15]` less `start_time`, in s; LLMPerf: entry 0's `ttft_s` and
//! `end_to_end_latency_s`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::common::{column_f64, column_text, ok, rows, run, stderr, tmp};

fn import_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_import"));
    c.env_remove("SERVEBENCH_STATE_DIR");
    c
}

fn agg_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_agg"));
    c.env_remove("SERVEBENCH_STATE_DIR");
    c
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peers")
        .join(rel)
}

const AIPERF: &str = "aiperf/profile_export.jsonl";
const GUIDELLM: &str = "guidellm/benchmarks.json";
const GENAI: &str = "genai-bench/D32_16_text-to-text_num_concurrency_2_time_2s.json";
const INFPERF: &str = "inference-perf/per_request_lifecycle_metrics.json";
const LLMPERF: &str = "llmperf/tiny-llama_32_16_individual_responses.json";

/// Import `file` (with `--tool tool` when given) to a Parquet file in `dir`.
fn import(dir: &Path, file: &Path, tool: Option<&str>) -> PathBuf {
    let out = dir.join("imported.parquet");
    let mut c = import_cmd();
    c.arg(file);
    if let Some(t) = tool {
        c.args(["--tool", t]);
    }
    ok(c.arg("-o").arg(&out));
    out
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn at(path: &Path, col: &str, i: usize) -> f64 {
    column_f64(path, col)[i].unwrap_or_else(|| panic!("{col}[{i}] is null"))
}

/// One summary row of `agg --defs defs` on `file`, as JSON.
fn agg(file: &Path, defs: &str) -> serde_json::Value {
    let o = ok(agg_cmd()
        .arg(file)
        .args(["--defs", defs, "--bootstrap", "0", "--format", "json"]));
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    serde_json::from_str(s.lines().next().expect("a summary row")).expect("agg writes JSON")
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("reads")).expect("JSON")
}

#[test]
fn aiperf_export_imports_with_every_chunk() {
    let d = tmp();
    let out = import(d.path(), &fixture(AIPERF), None);
    assert_eq!(rows(&out), 20);
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "aiperf"));
    assert!(column_text(&out, "status").iter().all(|s| s == "ok"));
    assert!(close(at(&out, "ttft_ms", 0), 61.384530999999996, 1e-9));
    assert!(close(at(&out, "e2e_ms", 0), 209.25099799999998, 1e-9));
    assert_eq!(at(&out, "output_tokens", 0), 19.0);
    assert_eq!(at(&out, "input_tokens", 0), 32.0);
    // 16 chunks: the first at the TTFT, then its 15 inter-chunk gaps, the last at the E2E
    let chunks = column_text(&out, "chunk_times_ms");
    let first: Vec<f64> = chunks[0]
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|x| x.trim().parse().expect("a number"))
        .collect();
    assert_eq!(first.len(), 16);
    assert!(close(first[0], 61.384530999999996, 1e-9));
    assert!(close(*first.last().unwrap(), 209.25099799999998, 1e-6), "{first:?}");
    // absolute instants: AIPerf's request_start_ns and request_end_ns, to the microsecond
    let sent = column_text(&out, "sent_at");
    assert!(
        sent[0].starts_with("2026-12-06") && sent[0].contains("05:34:54.451815"),
        "{}",
        sent[0]
    );
    let done = column_text(&out, "done_at");
    assert!(done[0].contains("05:34:54.661066"), "{}", done[0]);
}

/// `agg --defs aiperf` on the imported rows gives AIPerf's own statistics
/// (profile_export_aiperf.json): TTFT, inter-token latency (AIPerf's per-request
/// (E2E - TTFT) / (tokens - 1)) and request latency, mean and percentiles, to 1e-6 relative
/// (both use linear percentiles), and its request and output-token throughputs.
#[test]
fn aiperf_defs_reproduce_its_summary() {
    let d = tmp();
    let out = import(d.path(), &fixture(AIPERF), Some("aiperf"));
    let s = agg(&out, "aiperf");
    let theirs = json(&fixture("aiperf/profile_export_aiperf.json"));
    for (ours, key) in [
        ("ttft", "time_to_first_token"),
        ("itl", "inter_token_latency"),
        ("e2e", "request_latency"),
    ] {
        for (stat, their_stat) in [("mean", "avg"), ("p50", "p50"), ("p90", "p90"), ("p99", "p99")] {
            let a = num(&s, &format!("{ours}_{stat}_ms"));
            let b = num(&theirs[key], their_stat);
            assert!(close(a, b, 1e-6), "{ours} {stat}: agg {a} vs AIPerf {b}");
        }
    }
    assert_eq!(num(&s, "n_ok"), 20.0);
    // its throughputs: divided by its profiling phase's span (start_time to end_time), which
    // import keeps as the run's duration
    for (ours, key) in [
        ("req_per_s", "request_throughput"),
        ("output_tok_per_s", "output_token_throughput"),
    ] {
        let (a, b) = (num(&s, ours), num(&theirs[key], "avg"));
        assert!(close(a, b, 1e-5), "{ours}: agg {a} vs AIPerf {b}");
    }
}

#[test]
fn guidellm_report_imports() {
    let d = tmp();
    let out = import(d.path(), &fixture(GUIDELLM), None);
    assert_eq!(rows(&out), 8);
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "guidellm"));
    // first successful request: first_token_iteration - request_start = 51.294 ms,
    // last_token_iteration - request_start = 201.127 ms, 16 tokens (max_completion_tokens 16)
    assert!(close(at(&out, "ttft_ms", 0), 51.29408836364746, 1e-6));
    assert!(close(at(&out, "e2e_ms", 0), 201.1270523071289, 1e-6));
    assert_eq!(at(&out, "output_tokens", 0), 16.0);
    assert_eq!(at(&out, "input_tokens", 0), 18.0);
    assert_eq!(at(&out, "requested_output_tokens", 0), 16.0);
    // no chunk times in the report; wall-clock instants kept (done_at is request_end)
    assert!(
        column_text(&out, "chunk_times_ms")
            .iter()
            .all(|c| c == "[]" || c.is_empty())
    );
    assert!(column_text(&out, "done_at")[0].contains("05:38:05.83102"));
}

/// `agg --defs guidellm` gives GuideLLM's own means of TTFT, TPOT (E2E / tokens) and ITL
/// ((E2E - TTFT) / (tokens - 1)) to 1e-5 (E2E comes from epoch-second instants, which
/// resolve 0.24 µs). Its medians are not compared: GuideLLM's
/// percentiles are nearest-rank values, agg's interpolate.
#[test]
fn guidellm_defs_reproduce_its_means() {
    let d = tmp();
    let out = import(d.path(), &fixture(GUIDELLM), Some("guidellm"));
    let s = agg(&out, "guidellm");
    let m = &json(&fixture(GUIDELLM))["benchmarks"][0]["metrics"];
    for (ours, key) in [
        ("ttft_mean_ms", "time_to_first_token_ms"),
        ("tpot_mean_ms", "time_per_output_token_ms"),
        ("itl_mean_ms", "inter_token_latency_ms"),
    ] {
        let a = num(&s, ours);
        let b = num(&m[key]["successful"], "mean");
        assert!(close(a, b, 1e-5), "{ours}: agg {a} vs GuideLLM {b}");
    }
    for (ours, key) in [
        ("req_per_s", "requests_per_second"),
        ("output_tok_per_s", "output_tokens_per_second"),
    ] {
        let (a, b) = (num(&s, ours), num(&m[key]["successful"], "mean"));
        assert!(close(a, b, 1e-6), "{ours}: agg {a} vs GuideLLM {b}");
    }
}

#[test]
fn genai_bench_run_imports() {
    let d = tmp();
    let out = import(d.path(), &fixture(GENAI), None);
    assert_eq!(rows(&out), 18);
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "genai-bench"));
    assert!(close(at(&out, "ttft_ms", 0), 106.58134599907498, 1e-9));
    assert!(close(at(&out, "e2e_ms", 0), 256.74450999940746, 1e-9));
    assert_eq!(at(&out, "output_tokens", 0), 16.0);
    // genai-bench's own TPOT for this request: output_latency / 15 = 10.0109 ms
    assert!(close(at(&out, "tpot_ms", 0), 10.010877600022165, 1e-6));
    // no instants in the file
    assert!(column_f64(&out, "sched_lag_ms").iter().all(Option::is_none));
    assert!(column_text(&out, "sent_at").iter().all(|s| s.is_empty() || s == "null"));
}

/// `agg --defs genai-bench` gives genai-bench's own aggregated statistics: TTFT, TPOT and
/// E2E mean, p50, p90 and p99 (both interpolate linearly), and its throughputs (divided by
/// its run_duration), to 1e-6.
#[test]
fn genai_bench_defs_reproduce_its_aggregates() {
    let d = tmp();
    let out = import(d.path(), &fixture(GENAI), Some("genai-bench"));
    let s = agg(&out, "genai-bench");
    let a = &json(&fixture(GENAI))["aggregated_metrics"];
    for (ours, key) in [("ttft", "ttft"), ("tpot", "tpot"), ("e2e", "e2e_latency")] {
        for stat in ["mean", "p50", "p90", "p99"] {
            let (x, y) = (num(&s, &format!("{ours}_{stat}_ms")), num(&a["stats"][key], stat) * 1e3);
            assert!(close(x, y, 1e-6), "{ours} {stat}: agg {x} vs genai-bench {y}");
        }
    }
    for (ours, key) in [
        ("req_per_s", "requests_per_second"),
        ("output_tok_per_s", "mean_output_throughput_tokens_per_s"),
    ] {
        let (x, y) = (num(&s, ours), num(a, key));
        assert!(close(x, y, 1e-6), "{ours}: agg {x} vs genai-bench {y}");
    }
}

#[test]
fn inference_perf_report_imports_with_chunks() {
    let d = tmp();
    let out = import(d.path(), &fixture(INFPERF), None);
    assert_eq!(rows(&out), 6);
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "inference-perf"));
    assert!(close(at(&out, "ttft_ms", 0), 54.61085400020238, 1e-6));
    assert!(close(at(&out, "e2e_ms", 0), 204.62004399996658, 1e-6));
    assert_eq!(at(&out, "output_tokens", 0), 18.0);
    assert_eq!(at(&out, "server_input_tokens", 0), 29.0);
    let chunks = column_text(&out, "chunk_times_ms");
    assert_eq!(chunks[0].matches(',').count() + 1, 16, "{}", chunks[0]);
}

/// inference-perf's TTFT mean, TPOT mean ((last token - first token) / (tokens - 1)), ITL
/// and throughputs from `agg --defs inference-perf`, against its summary file.
#[test]
fn inference_perf_defs_reproduce_its_means() {
    let d = tmp();
    let out = import(d.path(), &fixture(INFPERF), Some("inference-perf"));
    let s = agg(&out, "inference-perf");
    let lat = &json(&fixture("inference-perf/summary_lifecycle_metrics.json"))["successes"]["latency"];
    for (ours, key) in [
        ("ttft_mean_ms", "time_to_first_token"),
        ("tpot_mean_ms", "time_per_output_token"),
    ] {
        let a = num(&s, ours);
        let b = num(&lat[key], "mean") * 1e3;
        assert!(close(a, b, 1e-6), "{ours}: agg {a} vs inference-perf {b}");
    }
    // its ITL: one gap per counted token (the tokens of one chunk share its arrival), pooled
    for (ours, stat) in [("itl_mean_ms", "mean"), ("itl_p50_ms", "median"), ("itl_p99_ms", "p99")] {
        let (a, b) = (num(&s, ours), num(&lat["inter_token_latency"], stat) * 1e3);
        assert!(close(a, b, 1e-6), "{ours}: agg {a} vs inference-perf {b}");
    }
    let tp = &json(&fixture("inference-perf/summary_lifecycle_metrics.json"))["successes"]["throughput"];
    for (ours, key) in [
        ("req_per_s", "requests_per_sec"),
        ("output_tok_per_s", "output_tokens_per_sec"),
    ] {
        let (a, b) = (num(&s, ours), num(tp, key));
        assert!(close(a, b, 1e-6), "{ours}: agg {a} vs inference-perf {b}");
    }
}

#[test]
fn llmperf_responses_import_with_their_failure() {
    let d = tmp();
    let out = import(d.path(), &fixture(LLMPERF), None);
    assert_eq!(rows(&out), 8);
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "llmperf"));
    assert!(close(at(&out, "ttft_ms", 0), 51.12, 1e-9));
    assert!(close(at(&out, "e2e_ms", 0), 202.18, 1e-9));
    assert_eq!(at(&out, "output_tokens", 0), 19.0);
    let status = column_text(&out, "status");
    assert_eq!(status.iter().filter(|s| *s == "http_error").count(), 1, "{status:?}");
    assert_eq!(status[5], "http_error");
    assert_eq!(column_f64(&out, "http_status")[5], Some(500.0));
    assert!(column_text(&out, "error")[5].contains("injected fault"));
    assert!(column_f64(&out, "ttft_ms")[5].is_none());
}

/// Exit 2 and one line naming the file (and what is wrong).
fn fails(c: &mut Command, file: &Path, want: &[&str]) -> Output {
    let o = run(c);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert!(e.contains(&*file.to_string_lossy()), "names the file: {e}");
    for w in want {
        assert!(e.contains(w), "says {w:?}: {e}");
    }
    o
}

/// Write `text` to `dir/name`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("writes");
    p
}

#[test]
fn missing_fields_are_named_with_the_version_expected() {
    let d = tmp();
    let text = |rel: &str| std::fs::read_to_string(fixture(rel)).expect("fixture");
    // AIPerf: line 3 without its request_start_ns
    let lines: Vec<String> = text(AIPERF).lines().map(str::to_string).collect();
    let mut v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    v["metadata"].as_object_mut().unwrap().remove("request_start_ns");
    let mut broken = lines.clone();
    broken[2] = v.to_string();
    let p = write(d.path(), "profile_export.jsonl", &(broken.join("\n") + "\n"));
    fails(
        import_cmd().arg(&p).args(["--format", "csv"]),
        &p,
        &["request_start_ns", "AIPerf 0.13"],
    );
    // GuideLLM: a successful request without info.timings
    let mut g = json(&fixture(GUIDELLM));
    g["benchmarks"][0]["requests"]["successful"][2]["info"]
        .as_object_mut()
        .unwrap()
        .remove("timings");
    let p = write(d.path(), "benchmarks.json", &g.to_string());
    fails(
        import_cmd().arg(&p).args(["--format", "csv"]),
        &p,
        &["info.timings", "GuideLLM 0.8"],
    );
    // genai-bench: a request without e2e_latency
    let mut g = json(&fixture(GENAI));
    g["individual_request_metrics"][4]
        .as_object_mut()
        .unwrap()
        .remove("e2e_latency");
    let p = write(d.path(), "genai.json", &g.to_string());
    fails(
        import_cmd().arg(&p).args(["--format", "csv"]),
        &p,
        &["e2e_latency", "genai-bench 0.0.5"],
    );
    // inference-perf: a request without its output token count
    let mut g = json(&fixture(INFPERF));
    g[1]["info"]["response_metrics"]
        .as_object_mut()
        .unwrap()
        .remove("output_tokens");
    let p = write(d.path(), "per_request.json", &g.to_string());
    fails(
        import_cmd().arg(&p).args(["--format", "csv"]),
        &p,
        &["output_tokens", "inference-perf 0.7"],
    );
    // LLMPerf: a response without ttft_s
    let mut g = json(&fixture(LLMPERF));
    g[2].as_object_mut().unwrap().remove("ttft_s");
    let p = write(d.path(), "llmperf.json", &g.to_string());
    fails(
        import_cmd().arg(&p).args(["--format", "csv"]),
        &p,
        &["ttft_s", "LLMPerf"],
    );
}

#[test]
fn truncated_and_wrong_tool_files_fail_cleanly() {
    let d = tmp();
    for (rel, tool) in [
        (AIPERF, "aiperf"),
        (GUIDELLM, "guidellm"),
        (GENAI, "genai-bench"),
        (INFPERF, "inference-perf"),
        (LLMPERF, "llmperf"),
    ] {
        let bytes = std::fs::read(fixture(rel)).expect("fixture");
        // cut in the middle of a record: named as a file cut short, with and without --tool
        let p = d.path().join(format!("cut-{}.json", rel.len()));
        std::fs::write(&p, &bytes[..bytes.len() / 2 + 7]).unwrap();
        fails(
            import_cmd().arg(&p).args(["--tool", tool, "--format", "csv"]),
            &p,
            &["not valid JSON", "EOF while parsing"],
        );
        fails(
            import_cmd().arg(&p).args(["--format", "csv"]),
            &p,
            &["EOF while parsing"],
        );
        // another tool's file named as this tool's: says which tool it looks like
        let (other, looks) = if tool == "llmperf" {
            (GENAI, "genai-bench")
        } else {
            (LLMPERF, "llmperf")
        };
        let q = fixture(other);
        fails(
            import_cmd().arg(&q).args(["--tool", tool, "--format", "csv"]),
            &q,
            &[
                &format!("not a result file of {tool}"),
                &format!("looks like a {looks} file"),
                "--tool",
            ],
        );
    }
}
