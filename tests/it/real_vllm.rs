//! A real engine: the CPU build of vLLM serving a tiny dummy-weight Llama, installed by
//! `make real-vllm` under build/real-vllm. `make test` installs it and runs this test alone
//! (with SERVEBENCH_REQUIRE_REAL_VLLM=1, so that a missing install fails instead of skipping).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::common::*;

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("build/real-vllm")
}

#[test]
fn real_vllm_cpu_tiny_serves_chat_and_completions_and_stops_cleanly() {
    let dir = real_dir();
    if !dir.join(".ok").exists() {
        assert!(
            std::env::var_os("SERVEBENCH_REQUIRE_REAL_VLLM").is_none(),
            "the real vLLM is not installed in {}: run `make real-vllm`",
            dir.display()
        );
        eprintln!(
            "SKIPPED real_vllm: no real-vLLM install in {} (`make real-vllm` installs it; `make test` installs it and runs this test)",
            dir.display()
        );
        return;
    }
    let d = tmp();
    let sd = d.path().join("state");
    let t0 = Instant::now();
    let up = run(cmd("engine-up")
        .args([
            "vllm",
            "--model",
            "cpu-tiny",
            "--port",
            "0",
            "--timeout",
            "900s",
            "--state-dir",
        ])
        .arg(&sd)
        .env_remove("SERVEBENCH_ROOT"));
    assert!(
        up.status.success(),
        "engine-up vllm --model cpu-tiny failed: {}\n{}",
        stderr(&up),
        std::fs::read_to_string(sd.join("vllm.log")).unwrap_or_default()
    );
    eprintln!("real vLLM ready after {:.0} s", t0.elapsed().as_secs_f64());
    let url = String::from_utf8_lossy(&up.stdout).trim().to_string();
    let st: Value = serde_json::from_str(&std::fs::read_to_string(sd.join("vllm.json")).unwrap()).unwrap();
    assert_eq!(st["url"].as_str(), Some(url.as_str()));
    assert_eq!(st["served_model"], "tiny-llama");
    assert_eq!(st["quant"], "fp16");
    assert_eq!(st["ready"], true);
    assert!(
        st["version"].as_str().unwrap_or("").starts_with("0.32"),
        "{}",
        st["version"]
    );
    assert_eq!(st["env"]["VLLM_CPU_KVCACHE_SPACE"], "1");
    let argv0 = st["argv"][0].as_str().unwrap();
    assert_eq!(Path::new(argv0), dir.join("venv/bin/python"));
    let pgid = st["pgid"].as_i64().unwrap();
    let procs = process_group(pgid);
    assert!(
        procs.len() >= 2,
        "vLLM's EngineCore should run beside the API server: {procs:?}"
    );

    // A short trace in both OpenAI modes: every row ok, token counts from the server's usage,
    // exactly the requested length (ignore_eos).
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
    for api in ["chat", "completions"] {
        let out = d.path().join(format!("{api}.parquet"));
        ok(cmd("replay")
            .arg(&t)
            .args(["--engine", "vllm", "--api", api, "--concurrency", "3", "--state-dir"])
            .arg(&sd)
            .args(["--quiet", "-o"])
            .arg(&out));
        assert_eq!(rows(&out), 6, "{api}");
        assert!(
            column_text(&out, "status").iter().all(|s| s == "ok"),
            "{api}: {:?}",
            column_text(&out, "status")
        );
        assert!(
            column_text(&out, "output_tokens_source").iter().all(|s| s == "usage"),
            "{api}: {:?}",
            column_text(&out, "output_tokens_source")
        );
        assert!(
            column_text(&out, "output_tokens").iter().all(|s| s == "16"),
            "{api}: {:?}",
            column_text(&out, "output_tokens")
        );
        assert!(column_text(&out, "model").iter().all(|s| s == "tiny-llama"), "{api}");
        assert!(column_text(&out, "api").iter().all(|s| s == api), "{api}");
        assert!(
            column_f64(&out, "ttft_ms").iter().all(|v| v.is_some_and(|x| x > 0.0)),
            "{api}"
        );
    }

    // engine-down leaves nothing: not the API server, not EngineCore
    let o = ok(cmd("engine-down").args(["vllm", "--state-dir"]).arg(&sd));
    eprintln!("{}", stderr(&o).trim());
    assert_eq!(process_group(pgid), Vec::<i64>::new());
    for p in procs {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists() || process_group(pgid).is_empty(),
            "{p} survived"
        );
    }
    assert_eq!(
        processes_with(&dir.join("venv").to_string_lossy()),
        Vec::<String>::new()
    );
    assert!(!sd.join("vllm.json").exists());
}

/// sweep finds a capacity for the real vLLM at a loose SLO (p99 TTFT ≤ 10 s, p99 TPOT ≤ 2 s),
/// bounded in time: short steps (4 s after 1 s of warm-up, 15 s to drain), rates from 0.5 to at
/// most 8 req/s, a coarse tolerance; every step's requests on disk beside the capacity row.
#[test]
fn real_vllm_cpu_tiny_has_a_capacity_at_a_loose_slo() {
    let dir = real_dir();
    if !dir.join(".ok").exists() {
        assert!(
            std::env::var_os("SERVEBENCH_REQUIRE_REAL_VLLM").is_none(),
            "the real vLLM is not installed in {}: run `make real-vllm`",
            dir.display()
        );
        eprintln!("SKIPPED real_vllm capacity: no real-vLLM install in {}", dir.display());
        return;
    }
    let d = tmp();
    let sd = d.path().join("state");
    let up = run(cmd("engine-up")
        .args([
            "vllm",
            "--model",
            "cpu-tiny",
            "--port",
            "0",
            "--timeout",
            "900s",
            "--state-dir",
        ])
        .arg(&sd)
        .env_remove("SERVEBENCH_ROOT"));
    assert!(
        up.status.success(),
        "engine-up vllm --model cpu-tiny failed: {}\n{}",
        stderr(&up),
        std::fs::read_to_string(sd.join("vllm.log")).unwrap_or_default()
    );
    // whatever fails below, the engine is stopped (a later test checks nothing is left behind)
    struct Down(std::path::PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = run(cmd("engine-down").args(["vllm", "--state-dir"]).arg(&self.0));
        }
    }
    let _down = Down(sd.clone());
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "poisson",
            "--rate",
            "1",
            "--count",
            "400",
            "--input-len",
            "32",
            "--output-len",
            "16",
            "--seed",
            "1",
        ],
    );
    let out = d.path().join("cap");
    let t0 = Instant::now();
    let o = run(cmd("sweep")
        .arg(&t)
        .args(["--engine", "vllm", "--state-dir"])
        .arg(&sd)
        .args([
            "--slo",
            "ttft_p99=10s,tpot_p99=2s",
            "--step",
            "4s",
            "--warmup",
            "1s",
            "--drain",
            "15s",
            "--start-rate",
            "0.5",
            "--max-rate",
            "8",
            "--tolerance",
            "0.5",
            "--seed",
            "1",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    let took = t0.elapsed().as_secs_f64();
    // stop the engine whatever the search did
    let down = run(cmd("engine-down").args(["vllm", "--state-dir"]).arg(&sd));
    assert!(o.status.success(), "sweep failed after {took:.0} s: {}", stderr(&o));
    assert!(down.status.success(), "{}", stderr(&down));
    eprintln!("real vLLM capacity search: {took:.0} s\n{}", stderr(&o).trim());
    let cap = out.join("capacity.parquet");
    assert_eq!(rows(&cap), 1);
    let c = column_f64(&cap, "capacity_rps")[0];
    assert!(c.is_some_and(|c| c > 0.0 && c <= 8.0 * 1.0001), "capacity {c:?}");
    assert_eq!(column_text(&cap, "label")[0], "vllm");
    let steps = column_f64(&cap, "n_steps")[0].unwrap() as usize;
    assert!(steps >= 2, "{steps} steps");
    for n in 1..=steps {
        let f = out.join(format!("step={n}/requests.parquet"));
        assert!(rows(&f) > 0, "{} is empty", f.display());
    }
    // bounded: steps of 5 s plus their drain
    assert!(took < 300.0, "the search took {took:.0} s");
}
