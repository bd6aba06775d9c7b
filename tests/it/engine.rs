use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

#[test]
fn engine_up_and_down_mock_leave_nothing_behind() {
    let d = tmp();
    let sd = d.path().join("state");
    let up = ok(cmd("engine-up").args(["mock", "--port", "0", "--state-dir"]).arg(&sd));
    let url = String::from_utf8_lossy(&up.stdout).trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(sd.join("mock.json")).unwrap()).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        st["version"].as_str().unwrap(),
        format!("mock-{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(st["ready"], json!(true));
    assert_eq!(st["form"], json!("process"));
    // replay picks the engine's state up
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "3", "--output-len", "4"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--engine", "mock", "--state-dir"])
        .arg(&sd)
        .args(["--quiet", "-o"])
        .arg(&out));
    assert!(column_text(&out, "engine").iter().all(|e| e == "mock"));
    assert!(column_text(&out, "status").iter().all(|e| e == "ok"));
    // a second engine-up of the same name is refused
    let o = run(cmd("engine-up").args(["mock", "--port", "0", "--state-dir"]).arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already running"));
    ok(cmd("engine-down").args(["mock", "--state-dir"]).arg(&sd));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || processes_with(&format!("--port {}", st["port"])).is_empty()
    );
    assert!(!sd.join("mock.json").exists());
    // idempotent
    ok(cmd("engine-down").args(["mock", "--state-dir"]).arg(&sd));
}

#[test]
fn engine_up_refuses_remote_bind_and_reports_failures() {
    let d = tmp();
    let sd = d.path().join("state");
    let o = run(cmd("engine-up")
        .args(["mock", "--host", "0.0.0.0", "--port", "0", "--state-dir"])
        .arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--allow-remote"), "{}", stderr(&o));
    let o = run(cmd("engine-up").args(["nosuch", "--state-dir"]).arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown engine"), "{}", stderr(&o));
    let o = run(cmd("engine-up").args(["vllm", "--quant", "int3", "--dry-run"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("awq, fp16, fp8"), "{}", stderr(&o));
}

// ---- launch argv of every engine, checked against its documented flags -----------------------

/// `engine-up ARGS --dry-run` with fixed paths; returns the launch JSON.
fn dry_run(args: &[&str]) -> Value {
    let o = ok(cmd("engine-up")
        .args(["--dry-run", "--state-dir", "/st"])
        .args(args)
        .env("HF_HOME", "/hf")
        .env("SERVEBENCH_ROOT", "/proj")
        .env_remove("SERVEBENCH_ENGINES"));
    serde_json::from_slice(&o.stdout).expect("dry-run prints JSON")
}

fn argv(v: &Value) -> Vec<String> {
    v["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn engine_launch_argv_matches_each_engines_documented_flags() {
    let l8 = "meta-llama/Llama-3.1-8B-Instruct";
    let awq = "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4";
    let fp8 = "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8";
    let cases: Vec<(Vec<&str>, String)> = vec![
        // vLLM: `vllm serve MODEL`, --served-model-name, --host, --port, --dtype, --quantization
        (
            vec!["vllm"],
            format!("vllm serve {l8} --served-model-name {l8} --host 127.0.0.1 --port 8000 --dtype float16"),
        ),
        (
            vec!["vllm", "--quant", "fp8", "--port", "8010"],
            format!("vllm serve {fp8} --served-model-name {fp8} --host 127.0.0.1 --port 8010"),
        ),
        (
            vec!["vllm", "--model", "Qwen/Qwen2.5-7B-Instruct", "--quant", "fp8"],
            "vllm serve Qwen/Qwen2.5-7B-Instruct --served-model-name Qwen/Qwen2.5-7B-Instruct --host 127.0.0.1 --port 8000 --quantization fp8".into(),
        ),
        (
            vec!["vllm", "--model", "llama-3.1-70b", "--set", "tp=8", "--", "--max-num-seqs", "64"],
            "vllm serve meta-llama/Llama-3.1-70B-Instruct --served-model-name meta-llama/Llama-3.1-70B-Instruct --host 127.0.0.1 --port 8000 --tensor-parallel-size 8 --dtype float16 --max-num-seqs 64".into(),
        ),
        (
            vec!["vllm", "--quant", "awq", "--container", "--port", "8001"],
            format!(
                "docker run --rm --name servebench-vllm-8001 -p 127.0.0.1:8001:8000 --gpus all --ipc=host -v /hf:/root/.cache/huggingface -e HF_TOKEN vllm/vllm-openai:v0.33.0 --model {awq} --served-model-name {awq} --host 0.0.0.0 --port 8000"
            ),
        ),
        // the CPU build on this machine: module entry point, dummy weights
        (
            vec!["vllm", "--model", "cpu-tiny"],
            "/proj/build/real-vllm/venv/bin/python -m vllm.entrypoints.openai.api_server --model /proj/build/real-vllm/tiny-llama --served-model-name tiny-llama --host 127.0.0.1 --port 8000 --load-format dummy --max-model-len 2048".into(),
        ),
        // SGLang: `sglang serve --model-path`, --enable-metrics, --quantization, --tp-size
        (
            vec!["sglang", "--quant", "awq"],
            format!(
                "sglang serve --model-path {awq} --served-model-name {awq} --host 127.0.0.1 --port 30000 --enable-metrics"
            ),
        ),
        (
            vec!["sglang", "--model", "llama-3.1-70b", "--quant", "fp8"],
            "sglang serve --model-path meta-llama/Llama-3.1-70B-Instruct --served-model-name meta-llama/Llama-3.1-70B-Instruct --host 127.0.0.1 --port 30000 --enable-metrics --tp-size 4 --quantization fp8".into(),
        ),
        // TGI: Docker by default (PORT=80 inside, HF_HOME=/data); --model-id, --dtype, --quantize
        (
            vec!["tgi"],
            format!(
                "docker run --rm --name servebench-tgi-3000 -p 127.0.0.1:3000:80 --gpus all --shm-size 1g -v /hf:/data -e HF_TOKEN ghcr.io/huggingface/text-generation-inference:3.3.5 --model-id {l8} --dtype float16"
            ),
        ),
        (
            vec!["tgi", "--process", "--quant", "awq"],
            format!("text-generation-launcher --model-id {awq} --hostname 127.0.0.1 --port 3000 --quantize awq"),
        ),
        (
            vec!["tgi", "--process", "--quant", "fp8", "--set", "gpus=device=1"],
            format!("text-generation-launcher --model-id {l8} --hostname 127.0.0.1 --port 3000 --quantize fp8"),
        ),
        // TensorRT-LLM: `trtllm-serve MODEL`, --backend pytorch, LLM-API options file
        (
            vec!["trtllm"],
            format!(
                "docker run --rm --name servebench-trtllm-8000 -p 127.0.0.1:8000:8000 --gpus all --ipc=host --ulimit memlock=-1 --ulimit stack=67108864 -v /hf:/root/.cache/huggingface -v /st/trtllm.files/llm_api_options.yaml:/servebench/llm_api_options.yaml:ro -e HF_TOKEN nvcr.io/nvidia/tensorrt-llm/release:latest trtllm-serve {l8} --host 0.0.0.0 --port 8000 --backend pytorch --extra_llm_api_options /servebench/llm_api_options.yaml"
            ),
        ),
        (
            vec!["trtllm", "--process", "--quant", "fp8"],
            "trtllm-serve nvidia/Llama-3.1-8B-Instruct-FP8 --host 127.0.0.1 --port 8000 --backend pytorch --extra_llm_api_options /st/trtllm.files/llm_api_options.yaml".into(),
        ),
        // Friendli: documented container flags; metrics on their own port
        (
            vec!["friendli", "--quant", "fp8"],
            "docker run --rm --name servebench-friendli-8000 -p 127.0.0.1:8000:8000 --gpus all -p 127.0.0.1:8281:8281 -v /hf:/root/.cache/huggingface -e FRIENDLI_CONTAINER_SECRET -e HF_TOKEN registry.friendli.ai/trial --web-server-port 8000 --metrics-port 8281 --hf-model-name FriendliAI/Meta-Llama-3.1-8B-Instruct-fp8".into(),
        ),
        // llama.cpp: -hf REPO:QUANT (or -m FILE), --alias, --metrics, -ngl, -np, -c
        (
            vec!["llamacpp", "--quant", "q4_k_m"],
            "llama-server -hf bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M --alias llama-3.1-8b --host 127.0.0.1 --port 8080 --metrics -ngl 999 -np 16 -c 65536".into(),
        ),
        (
            vec!["llamacpp", "--model", "/models/x.gguf", "--set", "slots=4"],
            "llama-server -m /models/x.gguf --alias /models/x.gguf --host 127.0.0.1 --port 8080 --metrics -ngl 999 -np 4 -c 65536".into(),
        ),
        // Ollama: `ollama serve`, address in OLLAMA_HOST
        (vec!["ollama", "--quant", "q8_0"], "ollama serve".into()),
    ];
    for (args, want) in cases {
        let v = dry_run(&args);
        assert_eq!(argv(&v), words(&want), "engine-up {}", args.join(" "));
    }

    // what else the launch records
    let v = dry_run(&["vllm", "--model", "cpu-tiny"]);
    assert_eq!(v["env"], json!({"VLLM_CPU_KVCACHE_SPACE": "1"}));
    assert_eq!(v["served_model"], json!("tiny-llama"));
    assert_eq!(v["quant"], json!("fp16"));
    assert_eq!(v["ready"]["path"], json!("/health"));
    assert_eq!(v["version"]["path"], json!("http://127.0.0.1:8000/version"));
    assert_eq!(v["metrics_url"], json!("http://127.0.0.1:8000/metrics"));
    assert_eq!(v["form"], json!("process"));
    // SGLang: /v1/models answers during warm-up, so readiness is /health (a real generation)
    let v = dry_run(&["sglang"]);
    assert_eq!(v["ready"]["path"], json!("/health"));
    assert!(v["ready"]["timeout_s"].as_f64().unwrap() >= 20.0);
    assert_eq!(v["version"]["path"], json!("http://127.0.0.1:30000/server_info"));
    // TGI drains for up to 90 s on SIGTERM: the grace (docker stop -t) must exceed it
    let v = dry_run(&["tgi"]);
    assert!(v["grace_s"].as_f64().unwrap() > 90.0);
    assert_eq!(v["container"], json!("servebench-tgi-3000"));
    assert_eq!(v["version"]["field"], json!("version"));
    // TRT-LLM: Prometheus text needs return_perf_metrics and lives under /prometheus
    let v = dry_run(&["trtllm"]);
    assert_eq!(v["metrics_url"], json!("http://127.0.0.1:8000/prometheus/metrics"));
    assert_eq!(
        v["files"]["/st/trtllm.files/llm_api_options.yaml"],
        json!("return_perf_metrics: true\nenable_iter_perf_stats: true\ndtype: float16\n")
    );
    // Friendli: version from a metric label on the metrics port
    let v = dry_run(&["friendli"]);
    assert_eq!(v["version"]["path"], json!("http://127.0.0.1:8281/metrics"));
    assert_eq!(v["version"]["metric"], json!("friendli_engine_version"));
    assert_eq!(v["metrics_url"], json!("http://127.0.0.1:8281/metrics"));
    // llama.cpp: 503 JSON while loading, then {"status":"ok"}
    let v = dry_run(&["llamacpp"]);
    assert_eq!(v["ready"]["body_contains"], json!("ok"));
    assert_eq!(v["version"]["field"], json!("build_info"));
    // Ollama: loads lazily, so engine-up warms the model up
    let v = dry_run(&["ollama", "--quant", "q8_0"]);
    assert_eq!(
        v["env"],
        json!({"OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_KEEP_ALIVE": "24h", "OLLAMA_NUM_PARALLEL": "16"})
    );
    assert_eq!(v["warmup"]["path"], json!("/api/generate"));
    assert_eq!(
        v["warmup"]["body"],
        json!({"model": "llama3.1:8b-instruct-q8_0", "keep_alive": "24h"})
    );
    assert_eq!(v["api"], json!("ollama"));
    assert_eq!(v["metrics_url"], Value::Null);
    // mock: the servebench binaries' directory
    let v = dry_run(&["mock", "--quant", "fp8"]);
    let bin_dir = bin("engine-up").parent().unwrap().to_string_lossy().to_string();
    assert_eq!(argv(&v)[0], format!("{bin_dir}/mock-engine"));
    // without SERVEBENCH_ROOT, {root} is this checkout (found from the binaries' directory)
    let o = ok(cmd("engine-up")
        .args(["vllm", "--model", "cpu-tiny", "--dry-run"])
        .env_remove("SERVEBENCH_ROOT"));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        argv(&v)[0],
        format!("{}/build/real-vllm/venv/bin/python", env!("CARGO_MANIFEST_DIR"))
    );
    // forms that do not exist, and variants that bring their own command
    for (args, want) in [
        (vec!["friendli", "--process"], "no process form"),
        (vec!["llamacpp", "--container"], "no container form"),
        (vec!["vllm", "--model", "cpu-tiny", "--container"], "only as a process"),
        (vec!["vllm", "--set", "port=1"], "built-in"),
    ] {
        let o = run(cmd("engine-up").args(&args).arg("--dry-run"));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

// ---- readiness against scripted servers that start up like each engine ----------------------

fn fake_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engines/fake_engine.py")
}

/// An engines file whose engines are tests/fixtures/engines/fake_engine.py in each mode.
fn fake_engines(dir: &Path) -> PathBuf {
    let gate = dir.join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let py = "python3";
    let script = fake_script();
    let script = script.to_string_lossy();
    let gate = gate.to_string_lossy();
    let base = |mode: &str| {
        format!(
            "command = [\"{py}\", \"{script}\", \"--mode\", \"{mode}\", \"--port\", \"{{port}}\", \"--gate\", \"{gate}\", \"--served\", \"{{served_model}}\"]\nport = 8000\napi = \"chat\"\ngrace_s = 5\nready_timeout_s = 120\ndefault_model = \"fake-model\"\n"
        )
    };
    let text = format!(
        r#"
[engines.fake-vllm]
{vllm}ready = {{ path = "/health" }}
version = {{ path = "/version", field = "version" }}

[engines.fake-sglang]
{sglang}ready = {{ path = "/health", timeout_s = 5 }}
version = {{ path = "/server_info", field = "version" }}

[engines.fake-llamacpp]
{llamacpp}ready = {{ path = "/health", body_contains = "ok" }}
version = {{ path = "/props", field = "build_info" }}

[engines.fake-ollama]
{ollama}ready = {{ path = "/", body_contains = "Ollama is running" }}
version = {{ path = "/api/version", field = "version" }}
warmup = {{ path = "/api/generate", body = {{ model = "{{served_model}}", keep_alive = "24h" }}, timeout_s = 30 }}

[engines.fake-friendli]
command = ["{py}", "{script}", "--mode", "friendli", "--port", "{{port}}", "--metrics-port", "{{metrics_port}}"]
port = 8000
api = "chat"
default_model = "fake-model"
ready = {{ path = "/health" }}
version = {{ path = "http://{{host}}:{{metrics_port}}/metrics", metric = "friendli_engine_version", label = "version" }}
metrics = "http://{{host}}:{{metrics_port}}/metrics"
vars = {{ metrics_port = "1" }}

[engines.fake-die]
{die}ready = {{ path = "/health" }}

[engines.fake-hang]
command = ["{py}", "{script}", "--mode", "hang", "--port", "{{port}}", "--children", "--marker", "{{marker}}"]
port = 8000
api = "chat"
default_model = "m"
ready = {{ path = "/health" }}
vars = {{ marker = "" }}

[engines.fake-drain]
command = ["{py}", "{script}", "--mode", "refused", "--port", "{{port}}", "--drain", "--marker", "{{marker}}"]
port = 8000
api = "chat"
default_model = "m"
grace_s = 20
ready = {{ path = "/health" }}
vars = {{ marker = "" }}

[engines.fake-kids]
command = ["{py}", "{script}", "--mode", "refused", "--port", "{{port}}", "--children", "--marker", "{{marker}}"]
port = 8000
api = "chat"
default_model = "m"
grace_s = 1
ready = {{ path = "/health" }}
vars = {{ marker = "" }}
"#,
        vllm = base("refused"),
        sglang = base("sglang"),
        llamacpp = base("llamacpp"),
        ollama = base("ollama"),
        die = base("die"),
    );
    let p = dir.join("engines.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Start `engine-up NAME` in the background (it waits for readiness).
fn spawn_up(cfg: &Path, sd: &Path, name: &str, extra: &[&str]) -> Child {
    cmd("engine-up")
        .arg(name)
        .args(["--port", "0", "--config"])
        .arg(cfg)
        .arg("--state-dir")
        .arg(sd)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("engine-up starts")
}

/// Wait until the engine's log holds `needle`, while engine-up keeps waiting.
fn wait_log(child: &mut Child, log: &Path, needle: &str) {
    let t0 = Instant::now();
    loop {
        if std::fs::read_to_string(log).unwrap_or_default().contains(needle) {
            return;
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("engine-up exited ({s}) before the log showed {needle:?}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the log never showed {needle:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().matches(needle).count()
}

/// Wait until engine-up has made `n` more checks that matched `needle`, and is still waiting.
fn wait_more_checks(child: &mut Child, log: &Path, needle: &str, n: usize) {
    let start = count(log, needle);
    let t0 = Instant::now();
    while count(log, needle) < start + n {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("engine-up exited ({s}) while the engine was not ready");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "engine-up stopped checking {needle:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "engine-up took a not-ready engine for ready"
    );
}

fn finish(child: Child) -> (String, String) {
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "engine-up failed: {err}");
    (String::from_utf8_lossy(&o.stdout).trim().to_string(), err)
}

fn state(sd: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(sd.join(format!("{name}.json"))).unwrap()).unwrap()
}

fn touch(p: PathBuf) {
    std::fs::write(p, "").unwrap();
}

#[test]
fn engine_up_waits_through_refused_connections_like_vllm_tgi_trtllm() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let log = sd.join("fake-vllm.log");
    let mut up = spawn_up(&cfg, &sd, "fake-vllm", &[]);
    wait_log(&mut up, &log, "bound, not listening");
    // the state file exists at once (engine-down can stop a loading engine) but is not ready
    let t0 = Instant::now();
    while !sd.join("fake-vllm.json").exists() {
        assert!(t0.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state(&sd, "fake-vllm")["ready"], json!(false));
    // the port is bound but refuses connections: engine-up must keep waiting
    std::thread::sleep(Duration::from_millis(1500));
    assert!(up.try_wait().unwrap().is_none(), "ready while connections were refused");
    assert_eq!(count(&log, "GET /health"), 0);
    touch(d.path().join("gate/listen"));
    let (url, _) = finish(up);
    let st = state(&sd, "fake-vllm");
    assert_eq!(st["url"].as_str().unwrap(), url);
    assert_eq!(st["ready"], json!(true));
    assert_eq!(st["version"], json!("fake-1.0"));
    assert_eq!(st["served_model"], json!("fake-model"));
    assert!(st["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(st["argv"][1].as_str().unwrap().ends_with("fake_engine.py"));
    ok(cmd("engine-down").args(["fake-vllm", "--state-dir"]).arg(&sd));
    assert!(!sd.join("fake-vllm.json").exists());
}

#[test]
fn engine_up_ignores_sglangs_early_v1_models_and_waits_for_health() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let log = sd.join("fake-sglang.log");
    let mut up = spawn_up(&cfg, &sd, "fake-sglang", &[]);
    wait_log(&mut up, &log, "bound, not listening");
    touch(d.path().join("gate/listen"));
    // warm-up: /v1/models answers 200 (checked here), /health 503 (engine-up keeps polling)
    wait_log(&mut up, &log, "listening");
    let url = format!("http://127.0.0.1:{}", state(&sd, "fake-sglang")["port"]);
    let o = ok(std::process::Command::new("python3").args([
        "-c",
        &format!("import urllib.request as u; print(u.urlopen('{url}/v1/models').status)"),
    ]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "200");
    wait_more_checks(&mut up, &log, "GET /health -> 503", 3);
    touch(d.path().join("gate/warm"));
    let (u, _) = finish(up);
    assert_eq!(u, url);
    let st = state(&sd, "fake-sglang");
    assert_eq!(st["version"], json!("0.5.23-fake"));
    ok(cmd("engine-down").args(["fake-sglang", "--state-dir"]).arg(&sd));
}

#[test]
fn engine_up_waits_through_llamacpp_503_loading_json() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let log = sd.join("fake-llamacpp.log");
    let mut up = spawn_up(&cfg, &sd, "fake-llamacpp", &[]);
    wait_log(&mut up, &log, "listening");
    wait_more_checks(&mut up, &log, "GET /health -> 503", 3);
    touch(d.path().join("gate/warm"));
    finish(up);
    assert_eq!(state(&sd, "fake-llamacpp")["version"], json!("b1-fake"));
    ok(cmd("engine-down").args(["fake-llamacpp", "--state-dir"]).arg(&sd));
}

#[test]
fn engine_up_warms_ollama_models_up_and_fails_clearly_on_a_missing_one() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let (_, err) = finish(spawn_up(&cfg, &sd, "fake-ollama", &["--model", "llama3.1:8b"]));
    assert!(err.contains("warming up"), "{err}");
    let log = sd.join("fake-ollama.log");
    assert_eq!(count(&log, "warm-up model=llama3.1:8b"), 1);
    let st = state(&sd, "fake-ollama");
    assert_eq!(st["version"], json!("0.33.0-fake"));
    assert_eq!(st["model"], json!("llama3.1:8b"));
    ok(cmd("engine-down").args(["fake-ollama", "--state-dir"]).arg(&sd));
    // a model that was never pulled: a clear error and nothing left running
    let o = run(cmd("engine-up")
        .args(["fake-ollama", "--model", "missing", "--port", "0", "--config"])
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("warm-up request POST /api/generate failed") && e.contains("try pulling it"),
        "{e}"
    );
    assert!(!sd.join("fake-ollama.json").exists());
    assert!(processes_with(&format!("--mode ollama --port {}", st["port"])).is_empty());
}

#[test]
fn engine_up_reads_friendlis_version_from_a_metric_label() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let mp = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let set = format!("metrics_port={mp}");
    finish(spawn_up(&cfg, &sd, "fake-friendli", &["--set", &set]));
    let st = state(&sd, "fake-friendli");
    assert_eq!(st["version"], json!("1.9.9"));
    assert_eq!(st["metrics_url"], json!(format!("http://127.0.0.1:{mp}/metrics")));
    ok(cmd("engine-down").args(["fake-friendli", "--state-dir"]).arg(&sd));
}

#[test]
fn engine_up_reports_a_dead_engine_with_its_last_log_lines() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let o = run(cmd("engine-up")
        .args(["fake-die", "--port", "0", "--config"])
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("exited with exit status: 3 before it was ready"), "{e}");
    assert!(e.contains("  | fatal: out of memory"), "{e}");
    assert!(!sd.join("fake-die.json").exists());
}

/// A unique token for the argv of a test's processes.
fn marker(tag: &str) -> String {
    format!("sbmark-{tag}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn engine_up_timeout_stops_the_engine_and_its_children() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let m = marker("timeout");
    let o = run(cmd("engine-up")
        .args(["fake-hang", "--port", "0", "--timeout", "2s", "--set"])
        .arg(format!("marker={m}"))
        .arg("--config")
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("was not ready after 2 s"), "{e}");
    assert!(e.contains("Connection refused") || e.contains("refused"), "{e}");
    assert!(e.contains("  | bound, not listening"), "{e}");
    assert_eq!(processes_with(&m), Vec::<String>::new());
    assert!(!sd.join("fake-hang.json").exists());
}

#[test]
fn engine_up_interrupted_stops_the_engine_and_its_children() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let m = marker("sigint");
    let set = format!("marker={m}");
    let mut up = spawn_up(&cfg, &sd, "fake-hang", &["--set", &set]);
    wait_log(&mut up, &sd.join("fake-hang.log"), "bound, not listening");
    wait_log(&mut up, &sd.join("fake-hang.log"), "children");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = up.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted by SIGINT"));
    assert_eq!(processes_with(&m), Vec::<String>::new());
    assert!(!sd.join("fake-hang.json").exists());
}

#[test]
fn engine_down_kills_children_that_ignore_sigterm_or_leave_the_session() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let m = marker("kids");
    let set = format!("marker={m}");
    finish(spawn_up(&cfg, &sd, "fake-kids", &["--set", &set]));
    // the leader and its three children (one ignores SIGTERM, one called setsid() and
    // ignores SIGTERM too), once they have set their signal handlers up
    let t0 = Instant::now();
    while count(&sd.join("fake-kids.log"), "child ready") < 3 {
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", processes_with(&m));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_with(&m).len(), 4, "{:?}", processes_with(&m));
    let o = ok(cmd("engine-down").args(["fake-kids", "--state-dir"]).arg(&sd));
    assert!(stderr(&o).contains("SIGKILL after the grace period"), "{}", stderr(&o));
    assert_eq!(processes_with(&m), Vec::<String>::new());
    assert!(!sd.join("fake-kids.json").exists());
    // engine-down --all with nothing left: fine
    ok(cmd("engine-down").args(["--all", "--state-dir"]).arg(&sd));
}

#[test]
fn engine_down_stops_an_engine_still_loading() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let m = marker("loading");
    let set = format!("marker={m}");
    let mut up = spawn_up(&cfg, &sd, "fake-hang", &["--set", &set]);
    wait_log(&mut up, &sd.join("fake-hang.log"), "children");
    ok(cmd("engine-down")
        .args(["--all", "--grace", "1s", "--state-dir"])
        .arg(&sd));
    // engine-up notices and fails (its own argv holds the marker too)
    let o = up.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("before it was ready"));
    assert_eq!(processes_with(&m), Vec::<String>::new());
}

#[test]
fn engine_down_signals_the_leader_first_so_it_stops_its_workers_in_order() {
    let d = tmp();
    let cfg = fake_engines(d.path());
    let sd = d.path().join("state");
    let m = marker("drain");
    let set = format!("marker={m}");
    finish(spawn_up(&cfg, &sd, "fake-drain", &["--set", &set]));
    let log = sd.join("fake-drain.log");
    let t0 = Instant::now();
    while count(&log, "child ready") < 1 {
        assert!(t0.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = ok(cmd("engine-down").args(["fake-drain", "--state-dir"]).arg(&sd));
    assert!(!stderr(&o).contains("SIGKILL"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("leader stopped its child"), "{text}");
    assert!(!text.contains("child got SIGTERM"), "{text}");
    assert_eq!(processes_with(&m), Vec::<String>::new());
}
