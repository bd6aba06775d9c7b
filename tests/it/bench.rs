//! scripts/bench.sh (make bench-ENGINE): the fixed grid (MODE=grid) and the capacity search (the
//! default) on mock-engine, and Ctrl-C.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn bench(run_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new("bash");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench.sh"))
        .arg("mock")
        .env("BIN", bin("engine-up").parent().unwrap())
        .env("RUN_DIR", run_dir)
        .env_remove("SERVEBENCH_STATE_DIR")
        .env_remove("SERVEBENCH_ENGINES");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn engine_port(state: &Path) -> u64 {
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    st["port"].as_u64().unwrap()
}

#[test]
fn bench_script_runs_a_small_sweep_on_mock() {
    let d = tmp();
    let run_dir = d.path().join("run");
    let o = run(&mut bench(
        &run_dir,
        &[
            ("MODE", "grid"),
            ("QUANTS", "fp16 fp8"),
            ("CONCURRENCY", "1 4"),
            ("RATES", "10"),
            ("POISSON_DURATION", "1s"),
            ("CATEGORIES", "short code"),
            ("REQS_PER_USER", "2"),
            ("MIN_REQS", "4"),
            ("OUTPUT_LEN", "8"),
            ("WARMUP", "1"),
        ],
    ));
    assert!(o.status.success(), "bench.sh failed: {}", stderr(&o));
    let req = files(&run_dir.join("requests"));
    let mut want = Vec::new();
    for q in ["fp16", "fp8"] {
        for c in ["code", "short"] {
            for s in ["c1", "c4", "r10"] {
                want.push(format!("mock-{q}-{c}-{s}.parquet"));
            }
        }
    }
    want.sort();
    assert_eq!(req, want);
    for f in &req {
        let p = run_dir.join("requests").join(f);
        assert!(column_text(&p, "status").iter().all(|s| s == "ok"), "{f}");
        assert!(column_text(&p, "engine").iter().all(|s| s == "mock"), "{f}");
    }
    assert_eq!(
        column_text(&run_dir.join("requests/mock-fp8-short-c4.parquet"), "quant")[0],
        "fp8"
    );
    // 4 users x 2 requests, plus the warm-up request
    let c4 = run_dir.join("requests/mock-fp16-code-c4.parquet");
    assert_eq!(rows(&c4), 9);
    assert_eq!(column_text(&c4, "warmup").iter().filter(|w| *w == "true").count(), 1);
    assert!(rows(&run_dir.join("summary.parquet")) >= 12);
    let md = std::fs::read_to_string(run_dir.join("summary.md")).unwrap();
    // a data row of the fp8 variant (not only a mention somewhere in the text)
    assert!(md.lines().any(|l| l.starts_with("| mock-fp8 |")), "{md}");
    assert!(!files(&run_dir.join("charts")).is_empty());
    let eng = files(&run_dir.join("engine"));
    for f in ["mock-fp16.json", "mock-fp16.log", "mock-fp8.json", "mock-fp8.log"] {
        assert!(eng.contains(&f.to_string()), "{eng:?}");
    }
    // both engines were stopped
    for q in ["fp16", "fp8"] {
        let port = engine_port(&run_dir.join(format!("engine/mock-{q}.json")));
        assert_eq!(processes_with(&format!("--port {port} ")), Vec::<String>::new());
    }
    assert!(!files(&run_dir.join(".engines")).iter().any(|f| f.ends_with(".json")));
}

#[test]
fn bench_script_ctrl_c_stops_the_engine() {
    let d = tmp();
    let run_dir = d.path().join("run");
    // a long Poisson run, interrupted in the middle
    let mut child = bench(
        &run_dir,
        &[
            ("MODE", "grid"),
            ("QUANTS", "fp16"),
            ("CONCURRENCY", ""),
            ("RATES", "2"),
            ("POISSON_DURATION", "120s"),
            ("CATEGORIES", "short"),
            ("OUTPUT_LEN", "8"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .process_group(0)
    .spawn()
    .unwrap();
    let state: PathBuf = run_dir.join(".engines/mock.json");
    let t0 = Instant::now();
    let port = loop {
        if let Ok(s) = std::fs::read_to_string(&state)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&s)
            && v["ready"] == true
        {
            break v["port"].as_u64().unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "bench.sh ended early");
        assert!(t0.elapsed() < Duration::from_secs(60), "the engine never came up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(processes_with(&format!("--port {port} ")).len(), 1);
    // Ctrl-C: SIGINT to the terminal's foreground process group
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("stopping the engine"), "{err}");
    assert_eq!(processes_with(&format!("--port {port} ")), Vec::<String>::new());
    assert!(!state.exists());
}

/// By default bench.sh runs the capacity search: one sweep per quant and category (bounded
/// here: 1 s steps, rates 16 to at most 64 req/s), every step's requests and the capacity row
/// under sweep/LABEL-CATEGORY/, and a report that opens with the capacity table.
#[test]
fn bench_script_searches_capacity_by_default() {
    let d = tmp();
    let run_dir = d.path().join("run");
    let o = run(&mut bench(
        &run_dir,
        &[
            ("QUANTS", "fp16 fp8"),
            ("CATEGORIES", "short"),
            ("OUTPUT_LEN", "8"),
            ("SWEEP_STEP", "1s"),
            ("SWEEP_WARMUP", "500ms"),
            ("SWEEP_START", "16"),
            ("SWEEP_TOLERANCE", "0.5"),
            ("SWEEP_ARGS", "--max-rate 64 --drain 5s"),
            ("GPU_HOUR_COST", "2.5"),
        ],
    ));
    assert!(o.status.success(), "bench.sh failed: {}", stderr(&o));
    assert_eq!(files(&run_dir.join("sweep")), vec!["mock-fp16-short", "mock-fp8-short"]);
    for q in ["fp16", "fp8"] {
        let dir = run_dir.join(format!("sweep/mock-{q}-short"));
        let cap = dir.join("capacity.parquet");
        assert_eq!(rows(&cap), 1, "{q}");
        assert_eq!(column_text(&cap, "label"), vec![format!("mock-{q}")]);
        assert_eq!(column_text(&cap, "quant"), vec![q.to_string()]);
        assert_eq!(column_f64(&cap, "gpu_hour_cost_usd"), vec![Some(2.5)]);
        assert!(files(&dir).contains(&"step=1".to_string()), "{:?}", files(&dir));
        let s1 = dir.join("step=1/requests.parquet");
        assert!(column_text(&s1, "status").iter().all(|s| s == "ok"), "{q}");
    }
    // the grid did not run
    assert!(files(&run_dir.join("requests")).is_empty());
    let md = std::fs::read_to_string(run_dir.join("report/report.md")).unwrap();
    assert_eq!(
        md.lines().find(|l| l.starts_with("## ")),
        Some("## Capacity at the SLO"),
        "{md}"
    );
    assert!(md.contains("**mock fp16**") && md.contains("**mock fp8**"), "{md}");
    let charts = files(&run_dir.join("charts"));
    assert!(charts.contains(&"capacity-rps.png".to_string()), "{charts:?}");
    let eng = files(&run_dir.join("engine"));
    for q in ["fp16", "fp8"] {
        let port = engine_port(&run_dir.join(format!("engine/mock-{q}.json")));
        assert_eq!(processes_with(&format!("--port {port} ")), Vec::<String>::new());
        assert!(eng.contains(&format!("mock-{q}.log")), "{eng:?}");
    }
}
