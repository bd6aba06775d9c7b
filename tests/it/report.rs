//! agg statistics against hand-computed values, the --defs formulas, --compare, and the
//! report's winners and recommendations following from the numbers.

use servebench::schema::{Record, Rows, RunLabels, Status, tpot};
use servebench::trace::TraceRow;

use crate::common::*;

/// A hand-made ok request: TTFT, then `n` chunks `gap` ms apart, one token each.
fn req(id: u64, t0_us: i64, ttft: f64, gap: f64, n: u32) -> Record {
    let mut r = Record::not_sent(&TraceRow::new(id, 0.0, 100, n), Some(t0_us), "");
    r.status = Status::Ok;
    r.error = None;
    r.sent_at_us = Some(t0_us);
    r.sched_lag_ms = Some(0.0);
    r.chunk_times_ms = (0..n).map(|k| ttft + gap * k as f64).collect();
    let e2e = ttft + gap * (n - 1) as f64;
    r.ttft_ms = Some(ttft);
    r.e2e_ms = Some(e2e);
    r.tpot_ms = tpot(ttft, e2e, n);
    r.first_token_at_us = Some(t0_us + (ttft * 1000.0) as i64);
    r.done_at_us = Some(t0_us + (e2e * 1000.0) as i64);
    r.output_tokens = n;
    r.output_tokens_source = "usage";
    r
}

fn write(path: &std::path::Path, label: &str, conc: u32, recs: &[Record]) {
    let labels = RunLabels {
        label: label.into(),
        run_id: "r".into(),
        api: "chat".into(),
        engine: Some(label.split('-').next().unwrap().into()),
        concurrency: Some(conc),
        ..Default::default()
    };
    let b = Record::encode(recs, &labels);
    let mut meta = servebench::meta::Meta::for_output(&servebench::schema::REQUESTS, false);
    meta.set("servebench.label", label);
    servebench::io::write_all(Some(path), None, b.schema(), &meta, &[b]).unwrap();
}

fn summary_value(path: &std::path::Path, col: &str) -> f64 {
    column_f64(path, col)[0].unwrap()
}

#[test]
fn agg_matches_hand_computed_values_and_each_defs_formula() {
    let d = tmp();
    // Two requests: A: TTFT 100, 5 chunks 10 ms apart (E2E 140); B: TTFT 200, 3 chunks 30 ms apart (E2E 260).
    let t0 = 1_700_000_000_000_000i64;
    let recs = vec![req(0, t0, 100.0, 10.0, 5), req(1, t0 + 1_000_000, 200.0, 30.0, 3)];
    let f = d.path().join("r.parquet");
    write(&f, "x", 1, &recs);
    let s = d.path().join("s.parquet");
    for (defs, tpot_vals, itl_vals) in [
        // vLLM: TPOT per request (E2E-TTFT)/(n-1): 10, 30; ITL every gap: 10,10,10,10,30,30
        ("vllm", vec![10.0, 30.0], vec![10.0, 10.0, 10.0, 10.0, 30.0, 30.0]),
        // AIPerf: ITL is the per-request (E2E-TTFT)/(n-1)
        ("aiperf", vec![10.0, 30.0], vec![10.0, 30.0]),
        // GuideLLM: TPOT = E2E / n (TTFT included): 140/5 = 28, 260/3; ITL = (E2E-TTFT)/(n-1)
        ("guidellm", vec![28.0, 260.0 / 3.0], vec![10.0, 30.0]),
    ] {
        ok(cmd("agg").arg(&f).args(["--defs", defs, "-o"]).arg(&s));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let p = |v: &[f64], q: f64| servebench::stats::percentile_sorted(v, q).unwrap();
        assert!(
            (summary_value(&s, "tpot_mean_ms") - mean(&tpot_vals)).abs() < 1e-9,
            "{defs} tpot mean"
        );
        assert!(
            (summary_value(&s, "tpot_p90_ms") - p(&tpot_vals, 0.9)).abs() < 1e-9,
            "{defs} tpot p90"
        );
        assert!(
            (summary_value(&s, "itl_mean_ms") - mean(&itl_vals)).abs() < 1e-9,
            "{defs} itl mean"
        );
        assert!(
            (summary_value(&s, "itl_p50_ms") - p(&itl_vals, 0.5)).abs() < 1e-9,
            "{defs} itl p50"
        );
    }
    // TTFT: 100, 200 -> p50 150, p90 190 (numpy linear), mean 150
    assert!((summary_value(&s, "ttft_p50_ms") - 150.0).abs() < 1e-9);
    assert!((summary_value(&s, "ttft_p90_ms") - 190.0).abs() < 1e-9);
    // Duration: first sent (t0) to last done (t0 + 1 s + 260 ms) = 1.26 s; 8 tokens
    assert!((summary_value(&s, "duration_s") - 1.26).abs() < 1e-6);
    assert!((summary_value(&s, "output_tok_per_s") - 8.0 / 1.26).abs() < 1e-6);
    assert!((summary_value(&s, "req_per_s") - 2.0 / 1.26).abs() < 1e-6);
    // goodput with an SLO only request A meets (TTFT <= 150 ms)
    ok(cmd("agg").arg(&f).args(["--slo", "ttft=150ms", "-o"]).arg(&s));
    assert!((summary_value(&s, "goodput_req_per_s") - 1.0 / 1.26).abs() < 1e-6);
    assert!((summary_value(&s, "slo_ttft_pct") - 50.0).abs() < 1e-9);
}

#[test]
fn bootstrap_is_reproducible_with_a_seed() {
    let d = tmp();
    let t0 = 1_700_000_000_000_000i64;
    let recs: Vec<Record> = (0..300)
        .map(|i| {
            req(
                i,
                t0 + i as i64 * 10_000,
                50.0 + (i * 37 % 101) as f64 + i as f64 * 0.0137,
                5.0,
                4,
            )
        })
        .collect();
    let f = d.path().join("r.parquet");
    write(&f, "x", 8, &recs);
    let a = d.path().join("a.parquet");
    let b = d.path().join("b.parquet");
    let c = d.path().join("c.parquet");
    ok(cmd("agg").arg(&f).args(["--seed", "5", "-o"]).arg(&a));
    ok(cmd("agg").arg(&f).args(["--seed", "5", "-o"]).arg(&b));
    ok(cmd("agg").arg(&f).args(["--seed", "6", "-o"]).arg(&c));
    for col in [
        "ttft_p50_ci_lo_ms",
        "ttft_p50_ci_hi_ms",
        "ttft_p99_ci_lo_ms",
        "ttft_p99_ci_hi_ms",
    ] {
        assert_eq!(column_f64(&a, col), column_f64(&b, col), "{col}");
    }
    assert_ne!(column_f64(&a, "ttft_p50_ci_lo_ms"), column_f64(&c, "ttft_p50_ci_lo_ms"));
}

#[test]
fn compare_and_report_winners_follow_from_the_numbers() {
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    // fast: TTFT ~50 ms; slow: TTFT ~80 ms; same: TTFT ~50 ms with noise (a tie with fast).
    // TTFT = base + an exponential with mean 10 ms (pseudo-random, fixed seeds)
    let mk = |base: f64, seed: u64| -> Vec<Record> {
        let mut rng = servebench::trace::tokens::SplitMix(seed);
        (0..200u64)
            .map(|i| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                req(i, t0 + i as i64 * 20_000, base - 10.0 * (1.0 - u).ln(), 10.0, 8)
            })
            .collect()
    };
    write(&runs.join("fast.parquet"), "fast-fp16", 10, &mk(50.0, 1));
    write(&runs.join("slow.parquet"), "slow-fp16", 10, &mk(80.0, 2));
    write(&runs.join("same.parquet"), "same-fp16", 10, &mk(50.0, 3));
    let o = ok(cmd("agg")
        .arg(&runs)
        .args(["--compare", "fast-fp16,slow-fp16", "--format", "csv"]));
    let csv = String::from_utf8_lossy(&o.stdout).to_string();
    let line = csv.lines().find(|l| l.starts_with("ttft_p50_ms,")).expect("ttft row");
    assert!(line.ends_with(",true,a"), "fast is significantly better: {line}");
    let o = ok(cmd("agg")
        .arg(&runs)
        .args(["--compare", "fast-fp16,same-fp16", "--format", "csv"]));
    let csv = String::from_utf8_lossy(&o.stdout).to_string();
    let line = csv.lines().find(|l| l.starts_with("ttft_p50_ms,")).expect("ttft row");
    assert!(line.ends_with(",false,not significant"), "a tie within noise: {line}");

    let out = d.path().join("report");
    ok(cmd("report")
        .arg(&runs)
        .arg("-o")
        .arg(&out)
        .args(["--bootstrap", "500"]));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    // p99 TTFT at 10 users: the winner is fast-fp16 or same-fp16 (a tie), never slow-fp16
    let row = md
        .lines()
        .find(|l| l.starts_with("| 10 users | p99 TTFT |"))
        .expect("ranking row");
    assert!(!row.contains("**slow-fp16**"), "{row}");
    assert!(
        row.contains("within noise"),
        "fast and same differ only by noise: {row}"
    );
    let rec = md
        .lines()
        .find(|l| l.contains("latency-sensitive use"))
        .expect("recommendation");
    assert!(!rec.contains("slow-fp16**"), "{rec}");
    assert!(out.join("report.html").exists());
    assert!(out.join("charts/box-ttft-concurrency.png").exists());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("charts/"));
}

#[test]
fn gpu_and_engine_samples_join_the_summary_and_draw_timelines() {
    let m = Mock::start(&["--ttft-ms", "10", "--itl-ms", "5"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "20", "--count", "60", "--output-len", "20"],
    );
    let r = d.path().join("r.parquet");
    let g = d.path().join("g.parquet");
    let e = d.path().join("e.parquet");
    // enginemon beside, gpumon wrapping replay: sampling lasts exactly as long as the run
    let mut em = std::process::Command::new(bin("enginemon"))
        .args(["--url", &m.url, "--interval", "100ms", "-o"])
        .arg(&e)
        .spawn()
        .unwrap();
    ok(std::process::Command::new(bin("gpumon"))
        .args(["--fake", "1", "--interval", "50ms", "-o"])
        .arg(&g)
        .arg("--")
        .arg(bin("replay"))
        .arg(&t)
        .args(["--url", &m.url, "--label", "x", "--quiet", "-o"])
        .arg(&r));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(em.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(em.wait().unwrap().success());
    let s = d.path().join("s.parquet");
    ok(cmd("agg")
        .arg(&r)
        .arg("--gpu")
        .arg(&g)
        .arg("--engine-metrics")
        .arg(&e)
        .arg("-o")
        .arg(&s));
    for c in [
        "gpu_mem_peak_mib",
        "gpu_util_mean_pct",
        "power_mean_w",
        "energy_j",
        "energy_per_output_token_j",
        "running_peak",
        "kv_usage_peak_pct",
    ] {
        let v = column_f64(&s, c)[0];
        assert!(v.is_some_and(|v| v >= 0.0), "{c}: {v:?}");
    }
    assert!(column_f64(&s, "running_peak")[0].unwrap() >= 1.0);
    let cd = d.path().join("charts");
    ok(cmd("chart")
        .arg(&s)
        .arg("--requests")
        .arg(&r)
        .arg("--gpu")
        .arg(&g)
        .arg("--engine-metrics")
        .arg(&e)
        .arg("-o")
        .arg(&cd));
    for f in ["gpu-timeline.png", "engine-timeline.png", "gpu-memory.png"] {
        assert!(cd.join(f).exists(), "{f}");
    }
}
