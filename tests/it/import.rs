//! import: the vLLM and SGLang fixtures (tests/fixtures/peers/) into the requests contract, and
//! agg under each tool's definitions reproducing the summary numbers the tool wrote in the file.
//! Broken files give one clear line and exit 2.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

pub fn peers_fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peers")
        .join(rel)
}

/// Import `files` (with `extra` flags) to `out`; panics with stderr on failure.
pub fn import(files: &[&Path], extra: &[&str], out: &Path) {
    let o = run(cmd("import").args(files).args(extra).arg("-o").arg(out));
    assert!(o.status.success(), "import failed: {}", stderr(&o));
}

/// agg's first summary row as JSON, under `defs`.
pub fn agg_json(file: &Path, defs: &str) -> Value {
    let o = ok(cmd("agg")
        .arg(file)
        .args(["--defs", defs, "--format", "json", "--bootstrap", "0"]));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    serde_json::from_str(text.lines().next().expect("a summary row")).expect("agg's JSON row")
}

/// `a` equals `b` to rounding (1e-9 relative): the same numbers, not merely close ones.
#[track_caller]
pub fn same(what: &str, a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1e-9),
        "{what}: servebench {a} vs the tool's own {b}"
    );
}

/// The file's own summary and the agg row's value, key by key: (tool's key, agg's key).
pub const VLLM_KEYS: &[(&str, &str)] = &[
    ("median_ttft_ms", "ttft_p50_ms"),
    ("p99_ttft_ms", "ttft_p99_ms"),
    ("median_tpot_ms", "tpot_p50_ms"),
    ("p99_tpot_ms", "tpot_p99_ms"),
    ("median_itl_ms", "itl_p50_ms"),
    ("p99_itl_ms", "itl_p99_ms"),
    ("median_e2el_ms", "e2e_p50_ms"),
    ("p99_e2el_ms", "e2e_p99_ms"),
    ("mean_ttft_ms", "ttft_mean_ms"),
    ("mean_tpot_ms", "tpot_mean_ms"),
    ("mean_e2el_ms", "e2e_mean_ms"),
    ("request_throughput", "req_per_s"),
    ("output_throughput", "output_tok_per_s"),
    ("total_token_throughput", "total_tok_per_s"),
];

#[test]
fn vllm_fixture_imports_and_agg_reproduces_vllms_own_numbers() {
    let d = tmp();
    let src = peers_fixture("vllm/bench-serve-c4-n40.json");
    let out = d.path().join("v.parquet");
    import(&[&src], &[], &out);
    assert_eq!(rows(&out), 40);
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "vllm"));
    assert!(column_text(&out, "status").iter().all(|s| s == "ok"));
    assert!(column_text(&out, "label").iter().all(|s| s == "bench-serve-c4-n40"));
    let file: Value = serde_json::from_slice(&std::fs::read(&src).unwrap()).unwrap();
    // every timing kept: TTFT and the chunk gaps, seconds to ms
    let ttft = column_f64(&out, "ttft_ms");
    let t0 = file["ttfts"][0].as_f64().unwrap() * 1e3;
    assert!((ttft[0].unwrap() - t0).abs() < 1e-9);
    let chunks = read(&out)[0]
        .column_by_name("chunk_times_ms")
        .map(|a| servebench::io::cell_json(a.as_ref(), 0))
        .unwrap();
    let n_itl = file["itls"][0].as_array().unwrap().len();
    assert_eq!(chunks.as_array().unwrap().len(), n_itl + 1, "one chunk time per chunk");
    // provenance: the tool, its definitions, the file's own numbers
    let meta = servebench::io::open(&out.to_string_lossy()).unwrap().meta;
    assert_eq!(meta.get("servebench.import.tool"), Some("vllm"));
    assert_eq!(meta.get("servebench.import.defs"), Some("vllm"));
    assert!(meta.get("servebench.import.definitions").unwrap().contains("semaphore"));
    let sources: Value = serde_json::from_str(meta.get("servebench.import.sources").unwrap()).unwrap();
    assert_eq!(sources[0]["duration_s"].as_f64(), file["duration"].as_f64());
    assert_eq!(sources[0]["instants"], "relative");
    let s = agg_json(&out, "vllm");
    for (theirs, ours) in VLLM_KEYS {
        same(
            theirs,
            s[ours].as_f64().unwrap_or_else(|| panic!("agg has no {ours}")),
            file[theirs].as_f64().unwrap(),
        );
    }
    assert_eq!(s["n_ok"], file["completed"]);
    assert_eq!(s["concurrency"], 4);
}

#[test]
fn vllm_failures_keep_their_status_and_open_loop_arrivals() {
    let d = tmp();
    let src = peers_fixture("vllm/bench-serve-rate40-faults.json");
    let out = d.path().join("v.parquet");
    import(&[&src], &["--label", "faults"], &out);
    let file: Value = serde_json::from_slice(&std::fs::read(&src).unwrap()).unwrap();
    let st = column_text(&out, "status");
    assert_eq!(st.len(), 24);
    assert_eq!(st.iter().filter(|s| *s == "http_error").count(), 1, "{st:?}");
    assert_eq!(st.iter().filter(|s| *s == "stream_error").count(), 1, "{st:?}");
    let errs = column_text(&out, "error");
    assert!(errs.iter().any(|e| e.contains("Internal Server Error")), "{errs:?}");
    // a finite --request-rate: start less queue time is the arrival
    let lag = column_f64(&out, "sched_lag_ms");
    assert!(lag.iter().all(|l| l.is_some_and(|l| l >= 0.0)), "{lag:?}");
    let s = agg_json(&out, "vllm");
    assert_eq!(s["n_ok"], file["completed"]);
    assert_eq!(s["rate_rps"].as_f64(), Some(40.0));
    for (theirs, ours) in VLLM_KEYS.iter().filter(|(t, _)| !t.starts_with("mean_")) {
        if let Some(want) = file[theirs].as_f64() {
            same(theirs, s[ours].as_f64().unwrap(), want);
        }
    }
}

#[test]
fn sglang_fixture_imports_its_newest_run() {
    let d = tmp();
    let src = peers_fixture("sglang/bench-serving-details.jsonl");
    let out = d.path().join("s.parquet");
    import(&[&src], &[], &out);
    let last: Value = serde_json::from_str(std::fs::read_to_string(&src).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(rows(&out), 16, "the last line's run");
    assert!(column_text(&out, "source_tool").iter().all(|t| t == "sglang"));
    assert_eq!(
        column_text(&out, "status")
            .iter()
            .filter(|s| *s == "http_error")
            .count(),
        1
    );
    // no instants in the file: sent_at is null, the duration is SGLang's own
    let b = &read(&out)[0];
    let sent = b.column_by_name("sent_at").unwrap();
    assert_eq!(sent.null_count(), b.num_rows());
    let s = agg_json(&out, "sglang");
    for (theirs, ours) in [
        ("median_ttft_ms", "ttft_p50_ms"),
        ("p99_ttft_ms", "ttft_p99_ms"),
        ("median_itl_ms", "itl_p50_ms"),
        ("p99_itl_ms", "itl_p99_ms"),
        ("request_throughput", "req_per_s"),
        ("output_throughput", "output_tok_per_s"),
    ] {
        same(theirs, s[ours].as_f64().unwrap(), last[theirs].as_f64().unwrap());
    }
    // SGLang's E2E runs to the stream's end ([DONE]), which it does not save per request: the
    // imported E2E ends at the last chunk, a little earlier (README: the crosswalk)
    let (ours, theirs) = (
        s["e2e_p50_ms"].as_f64().unwrap(),
        last["median_e2e_latency_ms"].as_f64().unwrap(),
    );
    assert!(ours < theirs && theirs - ours < 1.0, "{ours} vs {theirs}");
    assert_eq!(s["rate_rps"].as_f64(), Some(20.0));
}

/// One line on stderr, exit 2, naming what is wrong.
#[track_caller]
fn fails(args: &[&std::ffi::OsStr], want: &[&str]) {
    let d = tmp();
    let o = run(cmd("import").args(args).arg("-o").arg(d.path().join("x.parquet")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    for w in want {
        assert!(e.contains(w), "{w:?} not in {e}");
    }
    assert!(!d.path().join("x.parquet").exists(), "no output on failure");
}

#[test]
fn broken_files_give_one_clear_error() {
    let d = tmp();
    let good: Value = serde_json::from_slice(&fixture("peers/vllm/bench-serve-c4-n40.json")).unwrap();
    // a required field missing: named, with the file and the version the importer reads
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("ttfts");
    let missing = d.path().join("no-ttfts.json");
    std::fs::write(&missing, v.to_string()).unwrap();
    fails(
        &[missing.as_os_str()],
        &["no-ttfts.json", "`ttfts`", "vLLM 0.32", "--save-detailed"],
    );
    // lists of different lengths
    let mut v = good.clone();
    v["errors"].as_array_mut().unwrap().pop();
    let short = d.path().join("short.json");
    std::fs::write(&short, v.to_string()).unwrap();
    fails(&[short.as_os_str()], &["`errors`", "39 entries", "40"]);
    // not JSON at all
    let text = d.path().join("notes.txt");
    std::fs::write(&text, "this is not a result file\n").unwrap();
    fails(&[text.as_os_str()], &["notes.txt", "no importer recognises", "--tool"]);
    let bin = d.path().join("x.bin");
    std::fs::write(&bin, [0xffu8, 0xfe, 0, 1]).unwrap();
    fails(&[bin.as_os_str()], &["x.bin", "not valid JSON"]);
    // a file cut short: JSON's own line and column
    let cut = d.path().join("cut.json");
    std::fs::write(&cut, &fixture("peers/vllm/bench-serve-c4-n40.json")[..500]).unwrap();
    fails(&[cut.as_os_str()], &["cut.json", "not valid JSON", "EOF while parsing"]);
    // the wrong tool named
    let vllm = peers_fixture("vllm/bench-serve-c4-n40.json");
    fails(
        &["--tool".as_ref(), "sglang".as_ref(), vllm.as_os_str()],
        &["not a result file of sglang", "looks like a vllm file"],
    );
    // two tools in one import
    let sg = peers_fixture("sglang/bench-serving-details.jsonl");
    fails(&[vllm.as_os_str(), sg.as_os_str()], &["one tool's files at a time"]);
    // --append-result: one JSON line per run, the newest imported
    let lines = d.path().join("appended.jsonl");
    let faults: Value = serde_json::from_slice(&fixture("peers/vllm/bench-serve-rate40-faults.json")).unwrap();
    std::fs::write(&lines, format!("{good}\n{faults}\n")).unwrap();
    import(&[&lines], &[], &d.path().join("a.parquet"));
    assert_eq!(rows(&d.path().join("a.parquet")), 24, "the last line's run");
    // unknown fields are ignored
    let mut v = good;
    v["a_field_from_vllm_0_99"] = serde_json::json!({"x": [1, 2]});
    let newer = d.path().join("newer.json");
    std::fs::write(&newer, v.to_string()).unwrap();
    import(&[&newer], &[], &d.path().join("n.parquet"));
    assert_eq!(rows(&d.path().join("n.parquet")), 40);
}

/// report labels imported runs by the tool that measured them, and warns when runs of
/// different tools are side by side (their clocks start at different points).
#[test]
fn report_labels_imported_runs_and_warns_on_mixed_tools() {
    let d = tmp();
    let v = d.path().join("vllm.parquet");
    let s = d.path().join("sglang.parquet");
    import(
        &[&peers_fixture("vllm/bench-serve-c4-n40.json")],
        &["--label", "vllm-bench"],
        &v,
    );
    import(
        &[&peers_fixture("sglang/bench-serving-details.jsonl")],
        &["--label", "sglang-bench"],
        &s,
    );
    let one = d.path().join("one");
    ok(cmd("report").arg(&v).args(["--bootstrap", "0", "-o"]).arg(&one));
    let md = std::fs::read_to_string(one.join("report.md")).unwrap();
    assert!(md.contains("**vllm-bench**: measured by vLLM bench serve"), "{md}");
    assert!(md.contains("semaphore"), "where vLLM's clock starts: {md}");
    assert!(!md.contains("different tools are compared"), "{md}");
    let both = d.path().join("both");
    ok(cmd("report")
        .arg(&v)
        .arg(&s)
        .args(["--bootstrap", "0", "-o"])
        .arg(&both));
    let md = std::fs::read_to_string(both.join("report.md")).unwrap();
    assert!(
        md.contains("**sglang-bench**: measured by SGLang bench_serving"),
        "{md}"
    );
    assert!(
        md.contains("Runs measured by different tools are compared: sglang-bench (sglang); vllm-bench (vllm)"),
        "{md}"
    );
}
