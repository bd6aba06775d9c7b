//! sweep: the capacity search against mock-engine's known knees (slots and the simulated
//! batch; derivations in src/mock/mod.rs and src/mock/sim.rs), its determinism, the
//! saturation stop, and its dataset read back by agg. Steps are a few seconds; the searches
//! measure latencies, so they are `timing_` tests (run alone).

use std::path::{Path, PathBuf};

use clap::Parser;
use servebench::cmd::sweep::{Args, run_with};
use servebench::schema::{Capacity, CapacityStep};
use servebench::stop::Stop;

use crate::common::*;

/// The slots mock: 4 slots, 50 ms to the first token, then 15 more chunks 10 ms apart: each
/// request holds a slot 200 ms, so the capacity is 4 / 0.2 s = 20 req/s.
const SLOTS: &[&str] = &["--slots", "4", "--ttft-ms", "50", "--itl-ms", "10"];
const SLOTS_CAPACITY: f64 = 20.0;

/// A constant-rate trace (re-timed by sweep) of 16-token answers.
fn constant_trace(dir: &Path, input: &str, output: &str) -> PathBuf {
    trace(
        dir,
        "t.parquet",
        &[
            "constant",
            "--rate",
            "1",
            "--count",
            "400",
            "--input-len",
            input,
            "--output-len",
            output,
            "--seed",
            "3",
        ],
    )
}

/// Run sweep in process; returns its capacity row.
fn sweep(trace: &Path, url: &str, out: &Path, extra: &[&str]) -> Capacity {
    let mut argv: Vec<String> = vec![
        "sweep".into(),
        trace.to_string_lossy().into(),
        "--url".into(),
        url.into(),
    ];
    argv.extend(["-o".to_string(), out.to_string_lossy().to_string()]);
    argv.extend(["--warmup", "1s", "--quiet"].map(String::from));
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = Args::try_parse_from(&argv).expect("arguments parse");
    run_with(args, Stop::new()).expect("sweep runs");
    read_capacity(&out.join("capacity.parquet"))
}

fn read_capacity(path: &Path) -> Capacity {
    let batches = read(path);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let b = &batches[0];
    let mut cell = |name: &'static str| -> servebench::schema::Cell {
        use arrow_array::Array;
        use arrow_array::cast::AsArray;
        use arrow_array::types::*;
        use servebench::schema::Cell;
        let a = b.column_by_name(name).expect("column");
        if a.is_null(0) {
            return Cell::Null;
        }
        match a.data_type() {
            arrow_schema::DataType::Utf8 => Cell::Str(a.as_string::<i32>().value(0).to_string()),
            arrow_schema::DataType::UInt32 => Cell::Int(a.as_primitive::<UInt32Type>().value(0).into()),
            arrow_schema::DataType::UInt64 => Cell::Int(a.as_primitive::<UInt64Type>().value(0).into()),
            arrow_schema::DataType::Float64 => Cell::Float(a.as_primitive::<Float64Type>().value(0)),
            arrow_schema::DataType::Boolean => Cell::Bool(a.as_boolean().value(0)),
            t => panic!("{t}"),
        }
    };
    Capacity::decode(&mut cell).expect("a capacity row")
}

fn rates(c: &Capacity) -> Vec<f64> {
    c.steps().unwrap().iter().map(|s| s.rate_rps).collect()
}

fn within(found: f64, want: f64, share: f64) -> bool {
    (found - want).abs() <= share * want
}

#[test]
fn timing_sweep_finds_the_slots_capacity() {
    let d = tmp();
    let m = Mock::start(SLOTS);
    let t = constant_trace(d.path(), "32", "16");
    let c = sweep(
        &t,
        &m.url,
        &d.path().join("cap"),
        &["--slo", "ttft_p99=150ms", "--start-rate", "8", "--step", "3s"],
    );
    let cap = c.capacity_rps.expect("a capacity");
    assert!(
        within(cap, SLOTS_CAPACITY, 0.10),
        "found {cap} req/s, the slots allow {SLOTS_CAPACITY}; steps {:?}",
        c.steps_json
    );
    let (p, f) = (c.passing_rps.unwrap(), c.failing_rps.unwrap());
    assert!((f - p) / p <= 0.05 + 1e-9, "bracket {p}..{f}");
    assert_eq!(c.interval, "bootstrap");
    let (lo, hi) = (c.capacity_rps_ci_lo.unwrap(), c.capacity_rps_ci_hi.unwrap());
    assert!(lo <= cap && cap <= hi, "{lo} {cap} {hi}");
    // output tokens per second at capacity: 16 tokens a request
    assert!(within(c.capacity_output_tok_s.unwrap(), cap * 16.0, 0.01));
    assert_eq!(c.cost_per_m_output_tokens_usd, None);
}

#[test]
fn timing_sweep_finds_the_simulated_capacity() {
    // B = 8, O = 10, I = 100, 20 ms + 1 ms per decoding sequence + 0.1 ms per prefill token:
    // capacity = B / (O base + B (per_seq (O - 1) + per_token I)) = 8 / 352 ms = 22.7 req/s
    let want = 8.0 / (10.0 * 20.0 + 8.0 * (1.0 * 9.0 + 0.1 * 100.0)) * 1e3;
    let d = tmp();
    let m = Mock::start(&[
        "--sim",
        "--sim-max-batch",
        "8",
        "--sim-decode-base-ms",
        "20",
        "--sim-decode-per-seq-ms",
        "1",
        "--sim-prefill-per-token-ms",
        "0.1",
    ]);
    let t = constant_trace(d.path(), "100", "10");
    let c = sweep(
        &t,
        &m.url,
        &d.path().join("cap"),
        &[
            "--slo",
            "ttft_p99=200ms",
            "--start-rate",
            "6",
            "--step",
            "4s",
            "--gpu-hour-cost",
            "2",
            "--gpus",
            "2",
        ],
    );
    let cap = c.capacity_rps.expect("a capacity");
    assert!(
        within(cap, want, 0.10),
        "found {cap} req/s, derived {want}; steps {}",
        c.steps_json
    );
    // priced: $2 x 2 GPUs an hour over the output tokens an hour at capacity
    let tok = c.capacity_output_tok_s.unwrap();
    let cost = c.cost_per_m_output_tokens_usd.unwrap();
    assert!((cost - 4.0 / (3600.0 * tok) * 1e6).abs() < 1e-9, "{cost}");
}

/// The same trace and seed give the same steps and the same request schedules.
#[test]
fn timing_sweep_is_deterministic() {
    let d = tmp();
    let m = Mock::start(SLOTS);
    let t = constant_trace(d.path(), "32", "16");
    // a loose tolerance keeps every step away from the knee: probes at 6, 24 (x4) and 12
    // (the geometric mean), then full-length steps at 17 (bisection at the geometric mean,
    // 12 x 2^0.5) and 24 (the failing end, measured only by a probe, confirmed); no early
    // stops, so no timing decides whether the probe at 24 was conclusive
    let args = [
        "--slo",
        "ttft_p99=150ms",
        "--start-rate",
        "6",
        "--step",
        "2s",
        "--tolerance",
        "0.45",
        "--seed",
        "9",
        "--no-early-stop",
    ];
    let a = sweep(&t, &m.url, &d.path().join("a"), &args);
    let b = sweep(&t, &m.url, &d.path().join("b"), &args);
    let rounded: Vec<f64> = rates(&a).iter().map(|r| (r * 100.0).round() / 100.0).collect();
    assert_eq!(rounded, vec![6.0, 24.0, 12.0, 16.97, 24.0], "{}", a.steps_json);
    assert_eq!(rates(&a), rates(&b));
    let phases: Vec<String> = a.steps().unwrap().into_iter().map(|s| s.phase).collect();
    assert_eq!(phases, ["bracket", "bracket", "bracket", "bisect", "confirm"]);
    // probes are a quarter of a full step's warm-up and at least 2 s measured
    let planned: Vec<f64> = a.steps().unwrap().iter().map(|s| s.planned_s).collect();
    assert_eq!(planned, [2.25, 2.25, 2.25, 3.0, 3.0]);
    let hashes = |dir: &Path| -> Vec<String> {
        (1..=5)
            .map(|n| {
                let p = dir.join(format!("step={n}")).join("requests.parquet");
                let i = servebench::io::open(&p.to_string_lossy()).unwrap();
                i.meta
                    .get("servebench.trace.sha256")
                    .expect("the step's schedule hash")
                    .to_string()
            })
            .collect()
    };
    let (ha, hb) = (hashes(&d.path().join("a")), hashes(&d.path().join("b")));
    assert_eq!(ha, hb);
    assert_ne!(ha[0], ha[1], "steps at other rates have other schedules");
    assert_eq!(a.seed, 9);
}

/// A step far past capacity is stopped early and marked saturated; the search goes on
/// below it; every request of every step is in the dataset agg reads.
#[test]
fn timing_a_saturated_step_stops_early_and_the_search_goes_on_below() {
    let d = tmp();
    let m = Mock::start(SLOTS);
    let t = constant_trace(d.path(), "32", "16");
    let out = d.path().join("cap");
    // a TTFT limit this loose is never decided by misses within a step: only the saturation
    // rule can end a step early; every step full-length (--probe 1)
    let c = sweep(
        &t,
        &m.url,
        &out,
        &[
            "--slo",
            "ttft_p99=20s",
            "--start-rate",
            "80",
            "--step",
            "6s",
            "--tolerance",
            "0.3",
            "--probe",
            "1",
        ],
    );
    let steps: Vec<CapacityStep> = c.steps().unwrap();
    let first = &steps[0];
    assert_eq!(first.rate_rps, 80.0);
    assert!(first.saturated && !first.meets, "{first:?}");
    assert_eq!(first.stopped.as_deref(), Some("saturated"));
    // without the engine's metrics, the client's backlog showed it
    assert_eq!(first.saturated_by.as_deref(), Some("in_flight"));
    assert!(
        first.duration_s < 0.6 * first.planned_s,
        "stopped after {} s of {} s",
        first.duration_s,
        first.planned_s
    );
    let below = steps.iter().find(|s| s.meets).expect("a lower step met the SLO");
    assert!(below.rate_rps < SLOTS_CAPACITY * 1.1 && !below.saturated, "{below:?}");
    assert!(
        steps
            .iter()
            .filter(|s| s.saturated)
            .all(|s| s.rate_rps > SLOTS_CAPACITY)
    );
    let cap = c.capacity_rps.unwrap();
    assert!(cap >= below.rate_rps && cap < 30.0, "{cap}");

    // agg reads the directory: every request of every step, one group per step rate
    let files: Vec<PathBuf> = (1..=steps.len())
        .map(|n| out.join(format!("step={n}")).join("requests.parquet"))
        .collect();
    let total: usize = files.iter().map(|p| rows(p)).sum();
    assert!(total > 0);
    let summary = d.path().join("s.parquet");
    ok(cmd("agg").arg(&out).args(["--include-warmup", "-o"]).arg(&summary));
    let n: f64 = column_f64(&summary, servebench::schema::summary::col::N_REQUESTS)
        .into_iter()
        .map(|v| v.unwrap())
        .sum();
    assert_eq!(n as usize, total);
    let mut distinct: Vec<f64> = steps.iter().map(|s| s.rate_rps).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    assert_eq!(rows(&summary), distinct.len());
}

/// With the engine's metrics endpoint (mock-engine --slots exports its queue as
/// `vllm:num_requests_waiting`), a step far past capacity is stopped early on the engine's
/// waiting gauge, and the step says so.
#[test]
fn timing_a_saturated_step_stops_on_the_engine_queue() {
    let d = tmp();
    let m = Mock::start(SLOTS);
    let t = constant_trace(d.path(), "32", "16");
    let out = d.path().join("cap");
    let c = sweep(
        &t,
        &m.url,
        &out,
        &[
            "--slo",
            "ttft_p99=20s",
            "--start-rate",
            "80",
            "--step",
            "6s",
            "--tolerance",
            "0.3",
            "--probe",
            "1",
            "--metrics-url",
            &m.url,
        ],
    );
    let steps: Vec<CapacityStep> = c.steps().unwrap();
    let first = &steps[0];
    assert_eq!(first.rate_rps, 80.0);
    assert!(first.saturated && !first.meets, "{first:?}");
    assert_eq!(first.saturated_by.as_deref(), Some("engine_queue"), "{first:?}");
    assert!(
        first.duration_s < 0.6 * first.planned_s,
        "stopped after {} s of {} s",
        first.duration_s,
        first.planned_s
    );
    // the search goes on below it and finds the knee
    let cap = c.capacity_rps.expect("a capacity");
    assert!(cap > 10.0 && cap < 30.0, "{cap}; {}", c.steps_json);
    assert!(steps.iter().any(|s| s.meets && s.saturated_by.is_none()));
}

#[test]
fn sweep_refuses_bad_arguments_and_shows_an_example() {
    let help = match Args::try_parse_from(["sweep", "--help"]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("--help prints help"),
    };
    assert!(help.contains("sweep t.parquet --url"), "{help}");
    let d = tmp();
    let t = constant_trace(d.path(), "8", "4");
    let bad = |extra: &[&str]| {
        let mut argv: Vec<String> = vec!["sweep".into(), t.to_string_lossy().into(), "--url".into()];
        argv.push("http://127.0.0.1:9".into());
        argv.extend(["-o".to_string(), d.path().join("x").to_string_lossy().to_string()]);
        argv.extend(extra.iter().map(|s| s.to_string()));
        run_with(Args::try_parse_from(&argv).unwrap(), Stop::new())
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&["--slo", "ttft=500ms"]).contains("--attainment"));
    assert!(bad(&["--slo", "ttft_p99=500ms", "--tolerance", "0"]).contains("--tolerance"));
    assert!(bad(&["--slo", "ttft_p99=500ms", "--min-rate", "5", "--max-rate", "1"]).contains("--min-rate"));
    assert!(bad(&["--slo", "ttft_p99=500ms", "--probe", "0"]).contains("--probe"));
    assert!(bad(&["--slo", "ttft_p99=500ms", "--metrics-url", "nohost"]).contains("--metrics-url"));
}

/// Every step draws its prompt text afresh: against an engine with a prefix cache (the
/// simulated mock's), no step is served the prompts of the step before it, which would make
/// it faster than its load and inflate the capacity.
#[test]
fn sweep_steps_send_fresh_prompts_past_a_prefix_cache() {
    let d = tmp();
    let m = Mock::start(&["--sim", "--sim-prefix-cache-tokens", "10000000"]);
    let t = constant_trace(d.path(), "256", "4");
    let out = d.path().join("cap");
    let c = sweep(
        &t,
        &m.url,
        &out,
        &[
            "--slo",
            "ttft_p99=30s",
            "--start-rate",
            "8",
            "--max-rate",
            "16",
            "--probe",
            "1",
            "--step",
            "2s",
            "--no-early-stop",
        ],
    );
    let steps = c.steps().unwrap();
    assert!(steps.len() >= 2, "{}", c.steps_json);
    let mut cached = 0.0;
    let mut prompts = 0.0;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path().join("requests.parquet");
        if !p.exists() {
            continue;
        }
        for (c, n) in column_f64(&p, "cached_tokens")
            .into_iter()
            .zip(column_f64(&p, "server_input_tokens"))
        {
            cached += c.expect("the sim mock reports cached tokens");
            prompts += n.unwrap();
        }
    }
    // distinct prompts share at most a chance first block; a repeated prompt would be cached
    // whole (255 of its 256 tokens)
    assert!(
        prompts > 0.0 && cached / prompts < 0.05,
        "{cached} of {prompts} prompt tokens cached"
    );
}
