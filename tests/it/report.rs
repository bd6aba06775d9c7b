//! agg statistics against hand-computed values, the --defs formulas, --compare, and the
//! report's winners and recommendations following from the numbers: never from too few
//! requests, a tie, synthetic data or a mean across loads; the summary first, with warnings.

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
        quant: label.rsplit('-').next().map(str::to_string),
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
    // median TTFT at 10 users: the best is fast-fp16 or same-fp16 (a tie), never slow-fp16
    let row = md
        .lines()
        .find(|l| l.starts_with("| 10 users | median TTFT |"))
        .expect("ranking row");
    assert!(!row.contains("slow-fp16 |"), "{row}");
    assert!(
        row.contains("within noise") && !row.contains("**"),
        "fast and same differ only by noise: {row}"
    );
    // a p99 from 200 requests a side is no claim (it needs 1,000)
    let row = md
        .lines()
        .find(|l| l.starts_with("| 10 users | p99 TTFT |"))
        .expect("ranking row");
    assert!(row.contains("too few requests (n = 200 vs 200"), "{row}");
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

/// `n` ok requests from `t0`, 20 ms apart: TTFT = `ttft` + an exponential of mean 10 ms, then
/// 8 chunks `gap` ms apart (± 1%), all pseudo-random from `seed`.
fn noisy(n: u64, t0: i64, ttft: f64, gap: f64, seed: u64) -> Vec<Record> {
    let mut rng = servebench::trace::tokens::SplitMix(seed);
    let mut u = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (0..n)
        .map(|i| {
            let t = ttft - 10.0 * (1.0 - u()).ln();
            let g = gap * (1.0 + 0.02 * (u() - 0.5));
            req(i, t0 + i as i64 * 20_000, t, g, 8)
        })
        .collect()
}

/// report on `runs` (with `args`); its Markdown.
fn report_md(runs: &std::path::Path, args: &[&str]) -> String {
    let out = runs.parent().unwrap().join("report");
    ok(cmd("report")
        .arg(runs)
        .arg("-o")
        .arg(&out)
        .args(["--bootstrap", "500"])
        .args(args));
    std::fs::read_to_string(out.join("report.md")).unwrap()
}

/// The ranking row of a metric at a load.
fn ranking_row<'a>(md: &'a str, load: &str, metric: &str) -> &'a str {
    let head = format!("| {load} | {metric} |");
    md.lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no row {head} in\n{md}"))
}

/// The report's old defect: one request a side, a zero-width interval, called significant.
/// Now: "too few requests" with the count, below 20 a side for a median; at 20 a side a real
/// difference is a claim.
#[test]
fn one_request_per_side_is_too_few_for_a_claim() {
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    write(&runs.join("a1.parquet"), "a-fp16", 1, &[req(0, t0, 10.88, 5.0, 8)]);
    write(&runs.join("b1.parquet"), "b-fp16", 1, &[req(0, t0, 14.19, 6.0, 8)]);
    // 19 a side: one short of the minimum; 20 a side: enough (TTFT 50 vs 100 ms)
    write(
        &runs.join("a5.parquet"),
        "a-fp16",
        5,
        &noisy(19, t0 + 10_000_000, 50.0, 5.0, 1),
    );
    write(
        &runs.join("b5.parquet"),
        "b-fp16",
        5,
        &noisy(19, t0 + 10_000_000, 100.0, 5.0, 2),
    );
    write(
        &runs.join("a10.parquet"),
        "a-fp16",
        10,
        &noisy(20, t0 + 20_000_000, 50.0, 5.0, 3),
    );
    write(
        &runs.join("b10.parquet"),
        "b-fp16",
        10,
        &noisy(20, t0 + 20_000_000, 100.0, 5.0, 4),
    );
    let md = report_md(&runs, &[]);
    let row = ranking_row(&md, "1 user", "median TTFT");
    assert!(row.contains("too few requests (n = 1 vs 1;"), "{row}");
    assert!(!row.contains("**"), "no winner from one request a side: {row}");
    let row = ranking_row(&md, "1 user", "output throughput");
    assert!(
        row.contains("too few requests (n = 1 vs 1;"),
        "the real reason, not 'no samples': {row}"
    );
    let row = ranking_row(&md, "5 users", "median TTFT");
    assert!(
        row.contains("too few requests (n = 19 vs 19;") && !row.contains("**"),
        "{row}"
    );
    let row = ranking_row(&md, "10 users", "median TTFT");
    assert!(row.contains("| **a-fp16** |") && row.contains("**yes**"), "{row}");
    assert!(row.contains("| 20 vs 20 |"), "n per side shown: {row}");
    // the summary's decision table: a claim at 10 users with n, none at 1 or 5 users
    let summary = &md[..md.find("## Setup and provenance").unwrap()];
    let dec = summary
        .lines()
        .find(|l| l.starts_with("| all requests | 10 users |"))
        .expect("decision row");
    assert!(dec.contains("**a-fp16**") && dec.contains("(n = 20 vs 20)"), "{dec}");
    assert!(!summary.contains("| all requests | 1 user |"), "{summary}");
    assert!(
        summary.contains("all requests at 1 user (n ≤ 1 per side)") && summary.contains("all requests at 5 users"),
        "{summary}"
    );
    // and the recommendation at ≤ 10 users cannot say "at every such load"
    let rec = md.lines().find(|l| l.contains("responsive to few users")).unwrap();
    assert!(rec.contains("no recommendation") && rec.contains("n = 1 vs 1"), "{rec}");
}

/// Equal values (within the 1 µs / 0.1% resolution) are a tie: no winner, whatever the order
/// the sort left them in.
#[test]
fn a_tie_names_no_winner() {
    use servebench::report::{RANKED, tied};
    let ttft = RANKED.iter().find(|m| m.name == "median TTFT").unwrap();
    assert!(tied(ttft, 10.0, 10.0) && tied(ttft, 10.0, 10.0005) && tied(ttft, 0.0, 0.0009));
    assert!(!tied(ttft, 10.0, 10.02));
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    let same = noisy(30, t0, 50.0, 5.0, 7);
    write(&runs.join("a.parquet"), "a-fp16", 10, &same);
    write(&runs.join("b.parquet"), "b-fp16", 10, &same);
    let md = report_md(&runs, &[]);
    for m in ["median TTFT", "median TPOT", "output throughput"] {
        let row = ranking_row(&md, "10 users", m);
        assert!(row.contains("no winner: tie"), "{row}");
        assert!(!row.contains("**"), "a tie has no winner: {row}");
    }
    let dec = md
        .lines()
        .find(|l| l.starts_with("| all requests | 10 users |"))
        .unwrap();
    assert!(
        !dec.contains("**") && dec.contains("no winner: tie (n = 30 vs 30)"),
        "{dec}"
    );
}

/// A gpu file over the windows of two runs: `mib_a` during [t_a, t_a + 2 s), `mib_b` during
/// [t_b, t_b + 2 s), every 50 ms; provenance `source` (and synthetic when asked).
fn gpu_file(path: &std::path::Path, (t_a, mib_a): (i64, f64), (t_b, mib_b): (i64, f64), synthetic: bool) {
    use servebench::schema::{GpuRow, Reading};
    let mut rows = Vec::new();
    let mut e = 0.0;
    for (t0, mib, w) in [(t_a, mib_a, 100.0), (t_b, mib_b, 200.0)] {
        for k in 0..40 {
            e += w * 0.05;
            rows.push(GpuRow {
                t_us: t0 - 100_000 + k * 50_000,
                gpu: 0,
                uuid: "GPU-0".into(),
                name: "a GPU".into(),
                reading: Reading {
                    util_pct: Some(50.0),
                    mem_used_mib: Some(mib),
                    mem_total_mib: Some(81_559.0),
                    power_w: Some(w),
                    energy_j: Some(e),
                    ..Reading::default()
                },
                missed_ticks: 0,
            });
        }
    }
    let b = GpuRow::encode(&rows, &());
    let mut meta = servebench::meta::Meta::for_output(&servebench::schema::GPU, false);
    if synthetic {
        meta.set("servebench.gpu.source", "fake (scripted devices)");
        meta.set("servebench.synthetic", "true");
    } else {
        meta.set("servebench.gpu.source", "nvml");
    }
    servebench::io::write_all(Some(path), None, b.schema(), &meta, &[b]).unwrap();
}

/// GPU numbers from gpumon --fake (or any file marked synthetic) decide nothing: no memory or
/// energy recommendation, a "synthetic" mark where they are shown. The same numbers from a
/// real source do decide (so the exclusion comes from the mark, not from the data).
#[test]
fn synthetic_gpu_data_decides_nothing() {
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    let t1 = t0 + 10_000_000;
    write(&runs.join("a.parquet"), "a-fp16", 10, &noisy(30, t0, 50.0, 5.0, 1));
    write(&runs.join("b.parquet"), "a-fp8", 10, &noisy(30, t1, 40.0, 4.0, 2));
    let g = d.path().join("gpu.parquet");
    gpu_file(&g, (t0, 30_000.0), (t1, 20_000.0), true);
    let md = report_md(&runs, &["--gpu", g.to_str().unwrap()]);
    assert!(
        !md.contains("lowest memory") && !md.contains("lowest peak GPU memory"),
        "{md}"
    );
    assert!(!md.contains("lowest energy"), "{md}");
    let rec = md
        .lines()
        .find(|l| l.contains("memory and energy"))
        .expect("the sentence");
    assert!(rec.contains("synthetic") && rec.contains("no recommendation"), "{rec}");
    assert!(
        md.contains("peak GPU memory (synthetic)") && md.contains("-10000 MiB (synthetic)"),
        "{md}"
    );
    let summary = &md[..md.find("## Setup and provenance").unwrap()];
    assert!(summary.contains("synthetic here (`gpumon --fake`)"), "{summary}");
    // the same samples from a real source
    gpu_file(&g, (t0, 30_000.0), (t1, 20_000.0), false);
    let md = report_md(&runs, &["--gpu", g.to_str().unwrap()]);
    assert!(
        md.contains("- **lowest peak GPU memory: a-fp8**, at every load."),
        "{md}"
    );
    assert!(!md.contains("(synthetic)"), "{md}");
}

/// A metric is never averaged across loads into a winner: a-fp16 has the lower mean TPOT over
/// 1 and 10 users (20 vs 24 ms) but b-fp16 is faster at 10 users, so no label is recommended
/// for it; TTFT, where a-fp16 wins at each load, is recommended "at every such load".
#[test]
fn no_winner_from_a_mean_across_loads() {
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    let t1 = t0 + 10_000_000;
    write(&runs.join("a1.parquet"), "a-fp16", 1, &noisy(30, t0, 50.0, 10.0, 1));
    write(&runs.join("b1.parquet"), "b-fp16", 1, &noisy(30, t0, 100.0, 20.0, 2));
    write(&runs.join("a10.parquet"), "a-fp16", 10, &noisy(30, t1, 50.0, 30.0, 3));
    write(&runs.join("b10.parquet"), "b-fp16", 10, &noisy(30, t1, 100.0, 28.0, 4));
    let md = report_md(&runs, &[]);
    let row = ranking_row(&md, "10 users", "median TPOT");
    assert!(row.contains("| **b-fp16** |"), "b is faster at 10 users: {row}");
    let rec = md
        .lines()
        .find(|l| l.contains("smooth streaming to few users"))
        .unwrap();
    assert!(!rec.contains("**smooth streaming to few users: a-fp16**"), "{rec}");
    assert!(rec.contains("no label wins at every such load"), "{rec}");
    assert!(
        rec.contains("1 user: a-fp16") && rec.contains("10 users: b-fp16"),
        "{rec}"
    );
    let rec = md.lines().find(|l| l.contains("responsive to few users")).unwrap();
    assert!(
        rec.starts_with("- **responsive to few users: a-fp16**, at every such load."),
        "{rec}"
    );
}

/// The report opens with the summary (decision, warnings, not measured) before any detail,
/// and warns of a p99 that grows more than 5× between neighbouring loads, goodput far below
/// throughput and failed requests; a 2× growth is no cliff.
#[test]
fn summary_comes_first_with_its_warnings() {
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    let t1 = t0 + 10_000_000;
    // x: p99 TTFT ~96 ms at 10 users, ~1,046 ms at 50 users (a cliff); y: ~96 then ~196 ms
    write(&runs.join("x10.parquet"), "x-fp16", 10, &noisy(30, t0, 50.0, 5.0, 1));
    let mut x50 = noisy(30, t1, 1000.0, 5.0, 2);
    for i in 0..2u64 {
        let mut r = Record::not_sent(&TraceRow::new(100 + i, 0.0, 100, 8), Some(t1), "");
        r.status = Status::HttpError;
        r.http_status = Some(500);
        r.error = Some("HTTP 500".into());
        r.sent_at_us = Some(t1 + 1000);
        r.done_at_us = Some(t1 + 2000);
        x50.push(r);
    }
    write(&runs.join("x50.parquet"), "x-fp16", 50, &x50);
    write(&runs.join("y10.parquet"), "y-fp16", 10, &noisy(30, t0, 50.0, 5.0, 3));
    write(&runs.join("y50.parquet"), "y-fp16", 50, &noisy(30, t1, 150.0, 5.0, 4));
    let md = report_md(&runs, &["--slo", "ttft=500ms"]);
    let heads: Vec<&str> = md.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(heads.first(), Some(&"## Summary"), "{heads:?}");
    let at = |h: &str| md.find(h).unwrap_or_else(|| panic!("{h} missing"));
    assert!(at("### Decision") < at("### Warnings") && at("### Warnings") < at("### Not measured"));
    assert!(at("### Not measured") < at("## Setup and provenance"));
    assert!(at("## Setup and provenance") < at("## Results") && at("## Results") < at("## Winners by load level"));
    assert!(at("## Recommendations") < at("## Method"));
    let summary = &md[..at("## Setup and provenance")];
    let warn = |what: &str| -> Vec<&str> { summary.lines().filter(|l| l.contains(what)).collect() };
    let cliffs = warn("**saturation cliff**");
    assert!(
        cliffs
            .iter()
            .any(|l| l.contains("x-fp16's p99 TTFT grows") && l.contains("at 10 users") && l.contains("at 50 users")),
        "{summary}"
    );
    assert!(
        cliffs.iter().all(|l| !l.contains("y-fp16")),
        "2× is no cliff: {cliffs:?}"
    );
    let good = warn("**goodput far below throughput**");
    assert!(good.len() == 1 && good[0].contains("x-fp16 at 50 users"), "{good:?}");
    let err = warn("**errors**");
    assert!(
        err.len() == 1 && err[0].contains("2 of 32 requests failed") && err[0].contains("2 http_error"),
        "{err:?}"
    );
    assert!(summary.contains("Output quality"), "{summary}");
    // the method states the minimum-sample rule
    assert!(md.contains("**20 requests per side for a median**") && md.contains("**1000 for a p99**"));
}

/// The minimum sample follows from the bootstrap's behaviour (the simulation the Method
/// section cites, smaller): one request a side gives a zero-width interval that calls any
/// difference significant; two a side still do often; at 20 a side the median's false-positive
/// rate is near its nominal 5%. A p99's interval from 100 samples misses the true p99 far more
/// often than its 95% says, and from 1,000 it is near nominal.
#[test]
fn min_samples_follows_from_the_bootstrap() {
    use servebench::stats::{Samples, bootstrap_ci, min_samples, ratio_ci};
    assert_eq!(min_samples(0.5), 20);
    assert_eq!(min_samples(0.99), 1000);
    assert_eq!(min_samples(0.9), 100);
    let mut rng = servebench::trace::tokens::SplitMix(42);
    let mut u = move || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let mut draw = |n: usize| -> Vec<f64> {
        let mut v: Vec<f64> = (0..n).map(|_| 50.0 - 10.0 * (1.0 - u()).ln()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    };
    // false positives of the ratio test when both sides come from one distribution
    let mut fp = |n: usize, trials: u64| -> f64 {
        let hits = (0..trials)
            .filter(|t| {
                let (a, b) = (Samples::Exact(draw(n)), Samples::Exact(draw(n)));
                ratio_ci(&a, &b, 0.5, 500, *t, 0.95).is_some_and(|(_, lo, hi)| lo > 1.0 || hi < 1.0)
            })
            .count();
        hits as f64 / trials as f64
    };
    assert_eq!(fp(1, 50), 1.0, "one a side: every difference is 'significant'");
    assert!(fp(2, 300) > 0.2);
    assert!(fp(20, 300) < 0.1);
    // coverage of the true p99 (50 + 10 ln 100 ms) by a p99's 95% interval
    let truth = 50.0 + 10.0 * 100f64.ln();
    let mut cover = |n: usize, trials: u64| -> f64 {
        let hits = (0..trials)
            .filter(|t| {
                let (lo, hi) = bootstrap_ci(&draw(n), 0.99, 500, *t, 0.95);
                lo <= truth && truth <= hi
            })
            .count();
        hits as f64 / trials as f64
    };
    assert!(cover(100, 300) < 0.75);
    assert!(cover(1000, 300) > 0.85);
}

/// `gpumon --fake 1 --fake-load URL`: the fake device follows the engine's running requests
/// (read from its metrics) instead of the scripted sine, which is idle for its first 2 s, so
/// the demo's GPU timeline moves with the load; the file stays marked synthetic.
#[test]
fn fake_gpus_follow_the_engines_load() {
    let m = Mock::start(&["--ttft-ms", "10", "--itl-ms", "5"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "20", "--count", "40", "--output-len", "20"],
    );
    let g = d.path().join("g.parquet");
    ok(std::process::Command::new(bin("gpumon"))
        .args(["--fake", "1", "--fake-load", &m.url, "--interval", "50ms", "-o"])
        .arg(&g)
        .arg("--")
        .arg(bin("replay"))
        .arg(&t)
        .args(["--url", &m.url, "--label", "x", "--quiet", "-o"])
        .arg(d.path().join("r.parquet")));
    let util: Vec<f64> = column_f64(&g, "util_pct").into_iter().flatten().collect();
    let mem: Vec<f64> = column_f64(&g, "mem_used_mib").into_iter().flatten().collect();
    // 50 ms apart: the first 1.5 s are the first 30 samples; requests ran from the start
    let early = &util[..util.len().min(30)];
    assert!(early.iter().any(|u| *u > 0.0), "busy while requests run: {util:?}");
    assert!(
        mem.iter().all(|m| *m > 70_000.0),
        "the engine answers: its memory is held: {mem:?}"
    );
    let meta = servebench::io::open(g.to_str().unwrap()).unwrap().meta;
    assert_eq!(meta.get("servebench.synthetic"), Some("true"));
    assert!(meta.get("servebench.gpu.source").unwrap().contains("following"));
    // without an engine to follow the device is idle
    let g2 = d.path().join("g2.parquet");
    ok(std::process::Command::new(bin("gpumon")).args([
        "--fake",
        "1",
        "--fake-load",
        "http://127.0.0.1:9",
        "--interval",
        "50ms",
        "--duration",
        "300ms",
        "-o",
        g2.to_str().unwrap(),
    ]));
    assert!(column_f64(&g2, "util_pct").into_iter().all(|u| u == Some(0.0)));
}

/// With a capacity file beside the requests (a sweep's directory), the report opens with the
/// capacity table: each label's capacity with its interval and cost, a claim over the next one
/// only when the intervals do not overlap and each side has the requests a p99 claim needs,
/// and the pairs that cannot be told apart named.
#[test]
fn report_opens_with_the_capacity_table() {
    use crate::chart::{capacity_rows, write_capacity};
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(runs.join("step=1")).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    write(
        &runs.join("step=1/requests.parquet"),
        "mock-fp8",
        1,
        &noisy(30, t0, 50.0, 5.0, 1),
    );
    write_capacity(&runs.join("capacity.parquet"), &capacity_rows(), false);
    let md = report_md(&runs, &[]);
    let first = md.lines().find(|l| l.starts_with("## ")).unwrap();
    assert_eq!(first, "## Capacity at the SLO", "{md}");
    assert!(md.find("## Capacity at the SLO") < md.find("## Summary"));
    let line = |who: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("- **{who}** carries")))
            .unwrap_or_else(|| panic!("no line for {who}: {md}"))
            .to_string()
    };
    // 14.1 / 12.4 = +13.7%; the intervals widened to their brackets, [13.6, 15] and [11.9, 13]:
    // ratio interval [13.6 / 13, 15 / 11.9] = [1.05, 1.26]
    assert_eq!(
        line("mock-b fp8"),
        "- **mock-b fp8** carries 14.1 req/s [13.6, 14.5] at p99 TTFT ≤ 500 ms and p99 TPOT ≤ 50 ms, +13.7% over \
         mock fp8 (ratio 95% interval [1.05, 1.26], n = 1200 vs 1200); $0.21 per million output tokens (1 GPU at \
         $2.50/GPU-hour)."
    );
    // 12.4 [11.9, 13] and 12.2 [11.7, 13] (widened to their brackets) overlap
    assert!(
        line("mock fp8").contains("not distinguishable from mock fp16 (the intervals overlap)"),
        "{}",
        line("mock fp8")
    );
    assert!(
        md.contains(
            "Not distinguishable at this SLO: mock fp8 and mock fp16 (ratio 95% interval [0.915, 1.11] contains 1)."
        ),
        "{md}"
    );
    assert!(md.contains("| mock-b fp8 | 14.1 [13.6, 14.5] | 1805 [1741, 1856] | 14.0 / 15.0 | 1 | $0.21 | 6 (1) | 1200 | bootstrap |"), "{md}");
    for c in ["capacity-attainment.png", "capacity-rps.png"] {
        assert!(d.path().join("report/charts").join(c).exists(), "{c} missing");
    }
    assert!(
        md.contains("![capacity-attainment](charts/capacity-attainment.png)"),
        "{md}"
    );
}

/// A capacity claim needs the requests of a claim at the SLO's quantile on each side (1,000
/// at the knee for a p99), and synthetic capacity files decide nothing.
#[test]
fn capacity_claims_need_requests_and_real_data() {
    use crate::chart::{capacity_rows, write_capacity};
    use servebench::report::{CapacityVerdict, compare_capacity, knee_requests};
    let rows = capacity_rows();
    let (b, a) = (&rows[2], &rows[1]);
    assert_eq!(knee_requests(b), 1200);
    assert!(matches!(
        compare_capacity(b, a, false),
        Some(CapacityVerdict::More { .. })
    ));
    assert_eq!(compare_capacity(b, a, true), Some(CapacityVerdict::Synthetic));
    // 300 requests per knee step: 600 < 1000 per side
    let thin = |r: &servebench::schema::Capacity| {
        let mut r = r.clone();
        let mut steps = r.steps().unwrap();
        for s in &mut steps {
            s.n_sent = s.n_sent.min(300);
        }
        r.steps_json = servebench::schema::CapacityStep::to_json_list(&steps);
        r
    };
    let few: Vec<_> = rows.iter().map(thin).collect();
    assert_eq!(
        compare_capacity(&few[2], &few[1], false),
        Some(CapacityVerdict::TooFew {
            n: (600, 600),
            min: 1000
        })
    );
    let d = tmp();
    let runs = d.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    write(&runs.join("r.parquet"), "mock-fp8", 1, &noisy(30, t0, 50.0, 5.0, 1));
    let cap = d.path().join("cap.parquet");
    write_capacity(&cap, &few, false);
    let md = report_md(&runs, &["--capacity", cap.to_str().unwrap()]);
    assert!(!md.contains("+13.7% over mock fp8"), "{md}");
    assert!(
        md.contains("no claim over mock fp8: too few requests at the knee (n = 600 vs 600; ≥ 1000 per side needed)"),
        "{md}"
    );
    write_capacity(&cap, &rows, true);
    let md = report_md(&runs, &["--capacity", cap.to_str().unwrap()]);
    assert!(md.contains("no claim over mock fp8: synthetic data"), "{md}");
    assert!(md.contains("**Synthetic data**"), "{md}");
}

/// The quality tool's file for `url` (the checked-in evaluation set), recorded as engine mock
/// in quantization `quant`.
fn quality_file(url: &str, quant: &str, out: &std::path::Path) {
    ok(cmd("quality")
        .args([
            "--url",
            url,
            "--api",
            "completions",
            "--model",
            "mock-llm",
            "--engine",
            "mock",
        ])
        .args(["--quant", quant, "--state-dir"])
        .arg(out.parent().unwrap().join("no-state"))
        .arg("-o")
        .arg(out));
}

/// A report of mock runs in three variants: fp8 with a known quality noise against fp16 shows
/// the quality row with every interval and the sentence, distinguishable on the next-token
/// distributions; awq, the baseline's own model (noise 0), is not distinguishable.
#[test]
fn report_puts_quality_next_to_speed_per_variant() {
    let d = tmp();
    let runs = d.path().join("runs");
    let qdir = d.path().join("quality");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::create_dir_all(&qdir).unwrap();
    let t0 = 1_700_000_000_000_000i64;
    // speed: fp8 and awq a little faster than fp16 (100 requests, 2 s each)
    for (q, gap, seed) in [("fp16", 10.0, 1), ("fp8", 6.0, 2), ("awq", 8.0, 3)] {
        write(
            &runs.join(format!("mock-{q}.parquet")),
            &format!("mock-{q}"),
            1,
            &noisy(100, t0, 50.0, gap, seed),
        );
    }
    let base = Mock::start(&["--ttft-ms", "0", "--itl-ms", "0"]);
    let noisy_m = Mock::start(&[
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
        "--quality-noise",
        "0.3",
        "--quality-seed",
        "8",
    ]);
    quality_file(&base.url, "fp16", &qdir.join("fp16.parquet"));
    quality_file(&noisy_m.url, "fp8", &qdir.join("fp8.parquet"));
    quality_file(&base.url, "awq", &qdir.join("awq.parquet"));
    let md = report_md(&runs, &["--quality", qdir.to_str().unwrap()]);
    let sec = &md[md.find("## Quantization").expect("quantization section")..];
    assert!(
        !md.contains("no quality files were given"),
        "quality files were given: {md}"
    );
    let row = |q: &str| {
        sec.lines()
            .find(|l| l.starts_with(&format!("| mock | {q} vs fp16 |")))
            .unwrap_or_else(|| panic!("no quality row for {q}: {sec}"))
            .to_string()
    };
    let sentence = |q: &str| {
        sec.lines()
            .find(|l| l.starts_with(&format!("- **mock {q}** vs fp16: ")))
            .unwrap_or_else(|| panic!("no sentence for {q}: {sec}"))
            .to_string()
    };
    // fp8: every measure with its interval, and the distributions differ
    let r = row("fp8");
    let cells: Vec<&str> = r.split(" | ").collect();
    assert_eq!(cells.len(), 9, "{r}");
    for c in &cells[2..8] {
        if *c != "-" {
            assert!(
                c.contains('[') && c.contains(']'),
                "a cell without its interval: {c} in {r}"
            );
        }
    }
    assert!(cells[2].contains('x'), "throughput ratio: {r}");
    let s = sentence("fp8");
    assert!(s.contains("x output tokens/s [") && s.contains("] at 1 user"), "{s}");
    assert!(s.contains("% top-1 disagreement ["), "{s}");
    assert!(s.contains(" nats ["), "{s}");
    assert!(s.contains("perplexity ratio "), "{s}");
    assert!(
        s.contains("accuracy +0.0 points [+0.0, +0.0] (neither side answered"),
        "{s}"
    );
    assert!(
        s.ends_with(
            ": accuracy not distinguishable from fp16; the next-token distributions differ from fp16 (intervals: \
             top-1 disagreement > 0, KL > 0)."
        ) || s.contains("the next-token distributions differ from fp16 (intervals: top-1 disagreement > 0, KL > 0"),
        "{s}"
    );
    // the KL's interval lies above 0 and holds the estimate
    let kl: Vec<f64> = s
        .split("mean KL ")
        .nth(1)
        .unwrap()
        .replace(" nats [", " ")
        .replace([',', ']'], "")
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(kl[1] > 0.0 && kl[1] <= kl[0] && kl[0] <= kl[2], "{s}");
    // awq: the baseline's model itself: nothing to tell apart
    let s = sentence("awq");
    assert!(s.contains("0.0% top-1 disagreement [0.0%, 0.0%]"), "{s}");
    assert!(s.contains("mean KL 0 nats [0, 0]"), "{s}");
    assert!(s.contains("perplexity ratio 1.000 [1.000, 1.000]"), "{s}");
    assert!(s.ends_with(": not distinguishable from fp16."), "{s}");
    assert!(
        row("awq").ends_with("| not distinguishable from fp16 |"),
        "{}",
        row("awq")
    );
    // the speed tables follow
    assert!(sec.contains("#### mock: fp8 vs fp16"), "{sec}");
    // quality files under the input directory are found without --quality
    std::fs::rename(&qdir, runs.join("quality")).unwrap();
    let found = report_md(&runs, &[]);
    assert!(
        found.contains(&sentence("awq")) && found.contains(&sentence("fp8")),
        "{found}"
    );
    // without them, the report says quality was not measured
    std::fs::remove_dir_all(runs.join("quality")).unwrap();
    let none = report_md(&runs, &[]);
    assert!(none.contains("Output quality: no quality files were given"), "{none}");
    assert!(
        none.contains("- **mock fp8** vs fp16: ")
            && none.contains("quality not measured (no quality file for fp16 and fp8)"),
        "{none}"
    );
}
