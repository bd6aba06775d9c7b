use std::time::Duration;

use servebench::enginemon::{
    KV_USAGE, PREFIX_CACHE_HIT_RATE, PREFIX_CACHE_HITS, PREFIX_CACHE_QUERIES, RUNNING, RowFilter, WAITING,
    common_values, detect_engine, engine_window, load_engine_metrics, rows_from_scrape,
};
use servebench::prom::{Kind, parse};

use crate::common::*;

fn text(name: &str) -> String {
    String::from_utf8(fixture(&format!("prometheus/{name}"))).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

/// Every fixture parses without a bad line, and the common values come out right.
#[test]
fn every_engine_exposition_parses_and_maps() {
    // (fixture, engine, samples, running, waiting, kv_usage, prefix-cache hit rate)
    type Case = (&'static str, &'static str, usize, f64, f64, Option<f64>, Option<f64>);
    let cases: &[Case] = &[
        (
            "vllm.txt",
            "vllm",
            0,
            21.0,
            3.0,
            Some(0.4213),
            Some(122880.0 / 368640.0),
        ),
        ("sglang.txt", "sglang", 0, 37.0, 5.0, Some(0.71), Some(0.5625)),
        ("tgi.txt", "tgi", 0, 24.0, 6.0, Some(0.25), None),
        ("trtllm.txt", "trtllm", 0, 48.0, 7.0, Some(0.8125), Some(0.25)),
        (
            "llamacpp.txt",
            "llamacpp",
            18,
            4.0,
            45.0,
            None,
            Some(411522.0 / (411522.0 + 1234570.0)),
        ),
        ("friendli.txt", "friendli", 0, 16.0, 3.0, None, Some(0.5625)),
    ];
    for (file, engine, n_samples, running, waiting, kv, hit) in cases {
        let e = parse(&text(file));
        assert!(e.errors.is_empty(), "{file}: {:?}", e.errors);
        assert!(!e.samples.is_empty(), "{file}");
        if *n_samples > 0 {
            assert_eq!(e.samples.len(), *n_samples, "{file}");
        }
        assert_eq!(detect_engine(&e), Some(*engine), "{file}");
        let c = common_values(&e);
        assert_eq!(c[RUNNING].1, *running, "{file}");
        assert_eq!(c[WAITING].1, *waiting, "{file}");
        // vLLM: 2 engines; the fullest KV cache counts
        assert_eq!(c.get(KV_USAGE).map(|x| x.1), *kv, "{file}");
        match hit {
            Some(h) => assert!(
                close(c[PREFIX_CACHE_HIT_RATE].1, *h),
                "{file}: {:?}",
                c.get(PREFIX_CACHE_HIT_RATE)
            ),
            None => assert!(!c.contains_key(PREFIX_CACHE_HIT_RATE), "{file}"),
        }
        // one scrape as rows: the mapped values are found again through `common`
        let rows = rows_from_scrape(1_000_000, &e, RowFilter::default());
        let w = engine_window(&rows, 0, 2_000_000);
        assert_eq!(w.scrapes, 1);
        assert_eq!(w.running_peak, Some(*running), "{file}");
        assert_eq!(w.waiting_mean, Some(*waiting), "{file}");
        if let Some(k) = kv {
            assert!(
                close(w.kv_usage_peak_pct.unwrap(), k * 100.0),
                "{file}: {:?}",
                w.kv_usage_peak_pct
            );
        }
    }
}

#[test]
fn exporter_details_survive_parsing() {
    // vLLM (prometheus_client): counters named with _total in HELP/TYPE, _created gauges
    // (dropped from rows), histograms with le="+Inf", two engines.
    let e = parse(&text("vllm.txt"));
    assert_eq!(e.family_of("vllm:prefix_cache_hits_total").1, Kind::Counter);
    assert!(e.is_created_series("vllm:prefix_cache_hits_created"));
    assert_eq!(
        e.family_of("vllm:time_to_first_token_seconds_bucket"),
        ("vllm:time_to_first_token_seconds", Kind::Histogram)
    );
    // a histogram whose own name ends in _total
    assert_eq!(
        e.family_of("vllm:iteration_tokens_total_bucket"),
        ("vllm:iteration_tokens_total", Kind::Histogram)
    );
    let inf = e
        .series("vllm:time_to_first_token_seconds_bucket")
        .find(|s| s.label("le") == Some("+Inf") && s.label("engine") == Some("1"))
        .unwrap();
    assert_eq!(inf.value, 5.0);
    let rows = rows_from_scrape(0, &e, RowFilter::default());
    assert!(rows.iter().all(|r| !r.metric.ends_with("_created")));
    assert_eq!(rows.iter().filter(|r| r.common == Some(PREFIX_CACHE_HITS)).count(), 2);
    assert_eq!(
        rows.iter().filter(|r| r.common == Some(PREFIX_CACHE_QUERIES)).count(),
        2
    );
    // SGLang (multiprocess mode): NaN gauge, _sum before the buckets
    let e = parse(&text("sglang.txt"));
    assert!(e.series("sglang:fwd_occupancy").next().unwrap().value.is_nan());
    assert_eq!(e.sum("sglang:time_to_first_token_seconds_count"), Some(4.0));
    assert_eq!(e.sum("sglang:prompt_tokens_total"), Some(1048576.0));
    // TGI (metrics-exporter-prometheus): Rust float Display in le, summaries, blank lines
    let e = parse(&text("tgi.txt"));
    assert!(
        e.series("tgi_request_duration_bucket")
            .any(|s| s.label("le") == Some("0.00015000000000000001"))
    );
    assert_eq!(e.family_of("tgi_request_skipped_tokens").1, Kind::Summary);
    assert_eq!(
        e.series("tgi_request_skipped_tokens")
            .filter(|s| s.label("quantile").is_some())
            .count(),
        7
    );
    assert_eq!(e.families["tgi_queue_size"].help.as_deref(), Some("Current queue size"));
    // llama.cpp: C++ stream numbers
    let e = parse(&text("llamacpp.txt"));
    assert_eq!(e.sum("llamacpp:prompt_tokens_total"), Some(1_234_570.0));
    assert_eq!(
        e.series("llamacpp:spec_decode_num_accepted_tokens_per_pos_total")
            .count(),
        3
    );
    // the format's own example: escapes, timestamps, +Inf, NaN, exemplars, quoted names
    let e = parse(&text("format-spec.txt"));
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    let s = e.series("msdos_file_access_time_seconds").next().unwrap();
    assert_eq!(s.label("path"), Some("C:\\DIR\\FILE.TXT"));
    assert_eq!(s.label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
    assert_eq!(s.value, 1.458255915e9);
    let w = e.series("something_weird").next().unwrap();
    assert_eq!((w.value, w.timestamp_ms), (f64::INFINITY, Some(-3982045)));
    assert_eq!(
        e.series("http_requests_total").nth(1).unwrap().timestamp_ms,
        Some(1395066363000)
    );
    assert_eq!(e.sum("rpc_duration_seconds_sum"), Some(1.7560473e7));
    assert_eq!(
        e.families["help_with_escapes"].help.as_deref(),
        Some("A \\ backslash and a\nnewline.")
    );
    assert_eq!(e.series("spaced_labels").next().unwrap().label("b"), Some("x y"));
    assert_eq!(e.sum("my.dotted.metric"), Some(1.0));
    assert!(e.series("not_a_number").next().unwrap().value.is_nan());
    assert_eq!(e.sum("minus_infinity"), Some(f64::NEG_INFINITY));
    assert_eq!(e.sum("with_exemplar_total"), Some(17.0));
    // rows keep labels escaped as exposed; NaN values are kept
    let rows = rows_from_scrape(0, &e, RowFilter::default());
    let r = rows
        .iter()
        .find(|r| &*r.metric == "msdos_file_access_time_seconds")
        .unwrap();
    assert_eq!(
        r.labels.as_deref(),
        Some("path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"")
    );
}

fn state_dir_with_mock(d: &std::path::Path) -> (std::path::PathBuf, String) {
    let sd = d.join("state");
    let up = ok(cmd("engine-up")
        .args(["mock", "--quant", "fp16", "--port", "0", "--state-dir"])
        .arg(&sd));
    (sd, String::from_utf8_lossy(&up.stdout).trim().to_string())
}

#[test]
fn against_mock_engine_wrapping_a_replay() {
    let d = tmp();
    let (sd, url) = state_dir_with_mock(d.path());
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "constant",
            "--rate",
            "40",
            "--count",
            "60",
            "--input-len",
            "64",
            "--output-len",
            "40",
        ],
    );
    let req = d.path().join("r.parquet");
    let out = d.path().join("engine.parquet");
    let o = run(cmd("enginemon")
        .args(["--engine", "mock", "--state-dir"])
        .arg(&sd)
        .args(["--interval", "100ms", "-o"])
        .arg(&out)
        .arg("--")
        .arg(bin("replay"))
        .arg(&t)
        .args(["--url", &url, "--quiet", "-o"])
        .arg(&req));
    ok(cmd("engine-down").args(["mock", "--state-dir"]).arg(&sd));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("scrapes of") && e.contains("/metrics"), "{e}");
    let m = servebench::io::open(&out.to_string_lossy()).unwrap().meta;
    assert_eq!(m.get("servebench.schema"), Some("engine_metrics/1"));
    assert_eq!(m.get("servebench.engine"), Some("mock"));
    assert_eq!(m.get("servebench.engine_metrics.flavor"), Some("vllm"));
    let rows = load_engine_metrics(&[out.to_string_lossy().to_string()]).unwrap();
    let metrics: std::collections::BTreeSet<&str> = rows.iter().map(|r| &*r.metric).collect();
    assert!(metrics.contains("vllm:num_requests_running"), "{metrics:?}");
    assert!(metrics.contains("servebench:prefix_cache_hit_rate"), "{metrics:?}");
    // the requests' window: the engine ran requests, and its KV cache held some
    let sent: Vec<i64> = servebench::io::open(&req.to_string_lossy())
        .unwrap()
        .flat_map(|b| {
            let b = b.unwrap();
            let c = b.column(b.schema().index_of("sent_at").unwrap()).clone();
            (0..b.num_rows())
                .filter_map(|i| servebench::io::cols::ts_us(c.as_ref(), i))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(sent.len(), 60);
    let (start, end) = (*sent.iter().min().unwrap(), *sent.iter().max().unwrap() + 1_000_000);
    let w = engine_window(&rows, start, end);
    assert!(w.scrapes >= 10, "{w:?}");
    assert!(w.running_peak.unwrap() >= 1.0, "{w:?}");
    assert!(w.running_mean.unwrap() > 0.0, "{w:?}");
    assert!(w.kv_usage_peak_pct.unwrap() > 0.0, "{w:?}");
    assert_eq!(w.prefix_cache_hit_rate, Some(0.0));
    // DuckDB sees the common names
    let q = duckdb(&format!(
        "SELECT count(*) > 0 FROM '{}' WHERE common = 'running' AND metric = 'vllm:num_requests_running'",
        out.display()
    ));
    assert_eq!(q.trim(), "(True,)");
}

#[test]
fn scripted_trtllm_endpoint_duration_and_common_only() {
    // TensorRT-LLM's Prometheus text lives at /prometheus/metrics (its /metrics is JSON).
    let s = Scripted::start(Script {
        gets: vec![("/prometheus/metrics".into(), text("trtllm.txt"))],
        ..Default::default()
    });
    let d = tmp();
    let out = d.path().join("m.parquet");
    let o = ok(cmd("enginemon")
        .args(["--url", &format!("{}/prometheus/metrics", s.url)])
        .args(["--interval", "50ms", "--duration", "600ms", "--common-only", "-o"])
        .arg(&out));
    let rows = load_engine_metrics(&[out.to_string_lossy().to_string()]).unwrap();
    assert!(!rows.is_empty(), "{}", stderr(&o));
    assert!(
        rows.iter().all(|r| r.common.is_some()),
        "--common-only keeps mapped rows"
    );
    let scrapes: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.t_us).collect();
    assert!((8..=15).contains(&scrapes.len()), "{} scrapes", scrapes.len());
    let w = engine_window(&rows, i64::MIN, i64::MAX);
    assert_eq!(w.running_peak, Some(48.0));
    assert_eq!(w.waiting_peak, Some(7.0));
    assert_eq!(w.kv_usage_peak_pct, Some(81.25));
    assert_eq!(w.prefix_cache_hit_rate, Some(0.25));
    // a directory of mixed files: the engine_metrics ones are picked
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "2"]);
    assert!(t.exists());
    let again = load_engine_metrics(&[d.path().to_string_lossy().to_string()]).unwrap();
    assert_eq!(again.len(), rows.len());
    // a trace file named explicitly is refused with the column it lacks
    let err = load_engine_metrics(&[t.to_string_lossy().to_string()]).unwrap_err();
    assert!(err.to_string().contains("metric"), "{err}");
}

#[test]
fn failed_scrapes_are_reported_and_retried() {
    // Nothing listens on this port: every scrape fails, the run still ends with a valid file.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let d = tmp();
    let out = d.path().join("m.parquet");
    let o = ok(cmd("enginemon")
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(["--interval", "50ms", "--duration", "300ms", "-o"])
        .arg(&out));
    let e = stderr(&o);
    assert_eq!(e.matches("failed").count(), 2, "one warning, then the summary: {e}");
    assert_eq!(rows(&out), 0);
}

#[test]
fn sigterm_and_sigkill() {
    let m = Mock::start(&["--sim"]);
    let d = tmp();
    // SIGTERM: exit 0, valid file, no journal left
    let out = d.path().join("a.parquet");
    let child = cmd("enginemon")
        .args(["--url", &m.url, "--interval", "50ms", "--quiet", "-o"])
        .arg(&out)
        .spawn()
        .unwrap();
    let j = d.path().join("_a.parquet.partial");
    wait_for("rows in the journal", Duration::from_secs(30), || journal_rows(&j) > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(rows(&out) > 0);
    assert!(!j.exists());
    // SIGKILL: the journal holds every flushed second; --recover writes it out
    let out = d.path().join("b.parquet");
    let mut child = cmd("enginemon")
        .args(["--url", &m.url, "--interval", "50ms", "--quiet", "-o"])
        .arg(&out)
        .spawn()
        .unwrap();
    let j = d.path().join("_b.parquet.partial");
    // two flushes (a second apart): many scrapes in the journal
    let mut first = 0;
    wait_for("two flushes of the journal", Duration::from_secs(30), || {
        let n = journal_rows(&j);
        if first == 0 {
            first = n;
        }
        first > 0 && n > first
    });
    let flushed = journal_rows(&j);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists());
    ok(cmd("enginemon").arg("--recover").arg(&j));
    let rows = load_engine_metrics(&[out.to_string_lossy().to_string()]).unwrap();
    // every row flushed before the kill is recovered
    assert!(rows.len() >= flushed, "{} rows of {flushed} flushed", rows.len());
    let scrapes: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.t_us).collect();
    assert!(scrapes.len() >= 15, "{} scrapes", scrapes.len());
    assert!(!j.exists());
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    let d = tmp();
    for args in [
        vec!["--format", "csv"],
        vec!["--url", "ftp://x", "--format", "csv"],
        vec!["--url", "http://127.0.0.1:1", "--interval", "1ms", "--format", "csv"],
        vec!["--engine", "nosuch", "--state-dir", "/nonexistent", "--format", "csv"],
        vec![
            "--url",
            "http://127.0.0.1:1",
            "--duration",
            "1s",
            "--format",
            "csv",
            "--",
            "true",
        ],
    ] {
        let o = run(cmd("enginemon").args(&args).current_dir(d.path()));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
    let o = ok(cmd("enginemon").arg("--print-schema"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("common"));
}

/// enginemon runs in process under a stop the caller holds.
#[test]
fn enginemon_in_process_stops_on_request() {
    use clap::Parser;
    use servebench::stop::{Stop, StopReason};
    let m = Mock::start(&["--sim"]);
    let d = tmp();
    let out = d.path().join("e.parquet");
    let args = servebench::cmd::enginemon::Args::parse_from([
        "enginemon",
        "--url",
        &m.url,
        "--interval",
        "20ms",
        "--quiet",
        "-o",
        &out.to_string_lossy(),
    ]);
    let stop = Stop::new();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || servebench::cmd::enginemon::run_with(args, s2));
    let j = d.path().join("_e.parquet.partial");
    wait_for("rows in the journal", Duration::from_secs(30), || journal_rows(&j) > 0);
    stop.request(StopReason::Requested);
    let code = h.join().unwrap().unwrap();
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::SUCCESS));
    let rows = load_engine_metrics(&[out.to_string_lossy().to_string()]).unwrap();
    assert!(rows.iter().any(|r| r.common == Some(RUNNING)));
    assert!(!j.exists());
}
