//! The quality tool against the real vLLM (CPU build, tiny dummy-weight model) in two numeric
//! precisions: float32 against itself gives a KL of (nearly) zero, float32 against bfloat16 a
//! KL above zero and below a loose bound. Skipped (with a line) where the real vLLM is not
//! installed; `SERVEBENCH_REQUIRE_REAL_VLLM` makes that a failure.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{cmd, run, stderr, tmp};

fn real_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build/real-vllm")
}

/// Start the tiny model with `dtype`, measure `set` into each of `outs`, stop it.
fn measure_with(dtype: &str, sd: &Path, set: &Path, outs: &[&Path]) {
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
        .arg(sd)
        .args(["--", "--dtype", dtype])
        .env_remove("SERVEBENCH_ROOT"));
    assert!(
        up.status.success(),
        "engine-up vllm --dtype {dtype} failed: {}\n{}",
        stderr(&up),
        std::fs::read_to_string(sd.join("vllm.log")).unwrap_or_default()
    );
    let url = String::from_utf8_lossy(&up.stdout).trim().to_string();
    for out in outs {
        let o = run(cmd("quality")
            .args([
                "--url",
                &url,
                "--api",
                "completions",
                "--model",
                "tiny-llama",
                "--top-k",
                "5",
                "--max-tokens",
                "4",
                "--set",
            ])
            .arg(set)
            .arg("-o")
            .arg(out));
        if !o.status.success() {
            let _ = run(cmd("engine-down").args(["vllm", "--state-dir"]).arg(sd));
            panic!("quality against vLLM --dtype {dtype} failed: {}", stderr(&o));
        }
    }
    let down = run(cmd("engine-down").args(["vllm", "--state-dir"]).arg(sd));
    assert!(down.status.success(), "{}", stderr(&down));
}

fn compare(a: &Path, b: &Path) -> Value {
    let o = run(cmd("quality").arg("--baseline").arg(a).arg(b));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn real_quality_float32_against_bfloat16_on_vllm_cpu() {
    let dir = real_dir();
    if !dir.join(".ok").exists() {
        assert!(
            std::env::var_os("SERVEBENCH_REQUIRE_REAL_VLLM").is_none(),
            "the real vLLM is not installed in {}: run `make real-vllm`",
            dir.display()
        );
        eprintln!(
            "SKIPPED real_quality: no real-vLLM install in {} (`make real-vllm`)",
            dir.display()
        );
        return;
    }
    let d = tmp();
    // A few dozen items: the checked-in set's passages and its first 24 tasks.
    let full =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(servebench::cmd::quality::DEFAULT_SET))
            .unwrap();
    let mut lines: Vec<&str> = full.lines().filter(|l| l.contains("\"passage\"")).collect();
    lines.extend(full.lines().filter(|l| l.contains("\"task\"")).take(24));
    let set = d.path().join("set.jsonl");
    std::fs::write(&set, lines.join("\n") + "\n").unwrap();
    let (f1, f2, b1) = (
        d.path().join("f32a.parquet"),
        d.path().join("f32b.parquet"),
        d.path().join("bf16.parquet"),
    );
    measure_with("float32", &d.path().join("s1"), &set, &[&f1, &f2]);
    measure_with("bfloat16", &d.path().join("s2"), &set, &[&b1]);
    let same = compare(&f1, &f2);
    let diff = compare(&f1, &b1);
    eprintln!("float32 twice: {same}\nfloat32 vs bfloat16: {diff}");
    assert!(same["positions"].as_u64().unwrap() > 50, "{same}");
    assert!(same["mean_kl"].as_f64().unwrap() < 1e-6, "{same}");
    assert_eq!(same["greedy_identical_share"], 1.0, "{same}");
    assert_eq!(same["top1_agreement"], 1.0, "{same}");
    // The dummy-weight model is nearly uniform (perplexity about its vocabulary, 8192), so the
    // top-5 lists hold almost no mass (mean_p_tail about 0.999) and KL-hat is tiny (about
    // 1e-16 nats, measured); the precisions still differ visibly in which token is on top.
    let kl = diff["mean_kl"].as_f64().unwrap();
    assert!(kl > 0.0 && kl < 1.0, "{diff}");
    assert!(diff["top1_agreement"].as_f64().unwrap() < 1.0, "{diff}");
}
