//! Fault injection, end to end: mock-engine fails in every way engines and networks fail
//! (`--fault`), replay runs against it, and every trace row must come back as exactly one
//! row with the right status and a message that says what happened, with no hang, no panic
//! and bounded memory, and agg's counts must match the rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// What a replay against a faulty server left.
pub struct Outcome {
    pub path: PathBuf,
    pub status: Vec<String>,
    pub error: Vec<String>,
    pub http: Vec<String>,
    pub stderr: String,
}

impl Outcome {
    pub fn count(&self, s: &str) -> usize {
        self.status.iter().filter(|x| *x == s).count()
    }

    /// The rows with status `s` all have an error message containing `want`.
    pub fn errors_say(&self, s: &str, want: &str) {
        let mut seen = 0;
        for (st, e) in self.status.iter().zip(&self.error) {
            if st == s {
                seen += 1;
                assert!(e.contains(want), "{s}: expected {want:?} in {e:?}");
            }
        }
        assert!(seen > 0, "no {s} rows: {:?}", self.by_status());
    }

    pub fn by_status(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for s in &self.status {
            *m.entry(s.clone()).or_default() += 1;
        }
        m
    }

    /// Peak resident memory replay recorded for itself (the `servebench.client` metadata).
    pub fn max_rss_mib(&self) -> f64 {
        let meta = servebench::io::open(&self.path.to_string_lossy()).unwrap().meta;
        let c: serde_json::Value = serde_json::from_str(meta.get("servebench.client").unwrap()).unwrap();
        c["max_rss_mib"].as_f64().unwrap()
    }
}

/// Check the promises every run keeps, whatever the server did: exactly one row per trace
/// row (ids 0..n, each once), every row a known status with an error message unless ok, and
/// agg's summary counting the same rows.
pub fn check_rows(out: &Outcome, n: usize) {
    assert_eq!(out.status.len(), n, "one row per trace row: {:?}", out.by_status());
    let mut ids: Vec<u64> = column_text(&out.path, "request_id")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..n as u64).collect::<Vec<_>>(), "every request id exactly once");
    for (s, e) in out.status.iter().zip(&out.error) {
        assert!(
            [
                "ok",
                "http_error",
                "timeout",
                "connect_error",
                "stream_error",
                "cancelled",
                "not_sent"
            ]
            .contains(&s.as_str())
        );
        if s != "ok" {
            assert!(!e.is_empty() && e != "null", "{s} row without a message");
        }
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    check_agg(&out.path, &out.by_status());
}

/// agg's summary of a requests file counts exactly its rows, by status.
pub fn check_agg(path: &Path, want: &BTreeMap<String, usize>) {
    let o = ok(cmd("agg").arg(path).args(["--format", "json"]));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut total = BTreeMap::<String, u64>::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        n += v["n_requests"].as_u64().unwrap();
        for s in [
            "ok",
            "http_error",
            "timeout",
            "connect_error",
            "stream_error",
            "cancelled",
            "not_sent",
        ] {
            *total.entry(s.to_string()).or_default() += v[format!("n_{s}")].as_u64().unwrap();
        }
    }
    assert_eq!(n as usize, want.values().sum::<usize>(), "agg n_requests");
    for (s, k) in total {
        assert_eq!(k as usize, want.get(&s).copied().unwrap_or(0), "agg n_{s}");
    }
}

/// Faults injected so far by a mock, by kind.
pub fn faults_fired(url: &str, kind: &str) -> usize {
    metric(url, "servebench_mock_faults_total", Some(&format!("kind=\"{kind}\""))) as usize
}

/// Replay `trace` against `url` with `args`; the run must end within `limit`, with exit 0, or 1
/// when no request succeeded.
pub fn replay_to(dir: &Path, name: &str, trace: &Path, url: &str, args: &[&str], limit: Duration) -> Outcome {
    let path = dir.join(format!("{name}.parquet"));
    let mut c = cmd("replay");
    c.arg(trace)
        .args(["--url", url, "--quiet", "-o"])
        .arg(&path)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let o = run_within(&mut c, limit);
    let stderr = stderr(&o);
    let status = column_text(&path, "status");
    // exit 0 when something was measured, 1 (the file still written) when nothing succeeded
    let want = if status.iter().any(|s| s == "ok") { 0 } else { 1 };
    assert_eq!(o.status.code(), Some(want), "{name}: {stderr}");
    if want == 1 {
        assert!(stderr.contains("no request succeeded"), "{name}: {stderr}");
    }
    Outcome {
        status,
        error: column_text(&path, "error"),
        http: column_text(&path, "http_status"),
        path,
        stderr,
    }
}

/// Run a command; kill it and fail if it is still running after `limit` (a hang).
pub fn run_within(c: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("hung: still running after {limit:?}: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LIMIT: Duration = Duration::from_secs(60);

fn fast_trace(d: &Path, n: usize, out_len: u32) -> PathBuf {
    trace(
        d,
        &format!("t{n}-{out_len}.parquet"),
        &[
            "batch",
            "--count",
            &n.to_string(),
            "--input-len",
            "16",
            "--output-len",
            &out_len.to_string(),
        ],
    )
}

const FAST: &[&str] = &["--ttft-ms", "2", "--itl-ms", "1"];

fn mock(extra: &[&str]) -> Mock {
    let mut a: Vec<&str> = FAST.to_vec();
    a.extend_from_slice(extra);
    Mock::start(&a)
}

#[test]
fn reset_before_headers_is_a_stream_error_for_every_row() {
    let d = tmp();
    let t = fast_trace(d.path(), 30, 8);
    let m = mock(&["--fault", "reset"]);
    let o = replay_to(
        d.path(),
        "all",
        &t,
        &m.url,
        &["--concurrency", "4", "--api", "chat"],
        LIMIT,
    );
    check_rows(&o, 30);
    assert_eq!(o.count("stream_error"), 30, "{:?}", o.by_status());
    o.errors_say("stream_error", "before the response headers");
    // a share of the requests, on fresh connections: exactly the reset ones fail
    let m = mock(&["--fault", "reset:0.4", "--fault-seed", "3"]);
    let o = replay_to(
        d.path(),
        "some",
        &t,
        &m.url,
        &["--concurrency", "4", "--api", "chat", "--no-keep-alive"],
        LIMIT,
    );
    check_rows(&o, 30);
    assert_eq!(o.count("stream_error"), faults_fired(&m.url, "reset"));
    assert_eq!(o.count("ok") + o.count("stream_error"), 30);
    assert!(o.count("ok") > 0 && o.count("stream_error") > 0, "{:?}", o.by_status());
}

#[test]
fn reset_mid_stream_is_a_stream_error_and_keeps_what_came() {
    let d = tmp();
    let t = fast_trace(d.path(), 40, 8);
    // chunks 20 ms apart, so the client has read the first ones when the reset comes (a
    // reset makes the kernel drop data not yet read)
    let m = Mock::start(&[
        "--ttft-ms",
        "2",
        "--itl-ms",
        "20",
        "--fault",
        "reset-mid:0.5",
        "--fault-after",
        "3",
        "--fault-seed",
        "1",
    ]);
    for api in ["chat", "tgi", "ollama"] {
        let o = replay_to(d.path(), api, &t, &m.url, &["--concurrency", "4", "--api", api], LIMIT);
        check_rows(&o, 40);
        assert!(
            o.count("ok") > 0 && o.count("stream_error") > 0,
            "{api}: {:?}",
            o.by_status()
        );
        assert_eq!(o.count("ok") + o.count("stream_error"), 40, "{api}");
        o.errors_say("stream_error", "mid-stream");
        // the chunks that came before the reset are kept (those the client had read)
        let chunks = column_text(&o.path, "chunk_times_ms");
        let kept = o
            .status
            .iter()
            .zip(chunks)
            .filter(|(s, c)| *s == "stream_error" && !serde_json::from_str::<Vec<f64>>(c).unwrap().is_empty())
            .count();
        assert!(kept > 0, "{api}: no failed row kept its chunks");
    }
    // keep-alive connections and all: one failure per fault the server injected
    assert_eq!(
        faults_fired(&m.url, "reset-mid"),
        column_text(&d.path().join("chat.parquet"), "status")
            .iter()
            .chain(&column_text(&d.path().join("tgi.parquet"), "status"))
            .chain(&column_text(&d.path().join("ollama.parquet"), "status"))
            .filter(|s| *s == "stream_error")
            .count()
    );
}

#[test]
fn http_errors_carry_each_engines_message() {
    let d = tmp();
    let t = fast_trace(d.path(), 12, 4);
    // each engine's error body on its own route
    for (code, style, api, want) in [
        ("429", "vllm", "chat", "HTTP 429: Too many requests"),
        ("500", "vllm", "completions", "HTTP 500: Internal server error"),
        ("503", "vllm", "chat", "HTTP 503: The engine is currently busy"),
        ("503", "sglang", "chat", "HTTP 503: The engine is currently busy"),
        ("503", "tgi", "tgi", "HTTP 503: The engine is currently busy"),
        ("500", "tgi", "tgi", "HTTP 500: Internal server error"),
        ("503", "llamacpp", "llamacpp", "unavailable_error"),
        ("429", "sglang", "sglang", "HTTP 429"),
        ("503", "ollama", "ollama", "HTTP 503: The engine is currently busy"),
    ] {
        let m = mock(&["--fault", &format!("http-{code}:0.5"), "--fault-style", style]);
        let o = replay_to(
            d.path(),
            &format!("{code}-{style}"),
            &t,
            &m.url,
            &["--concurrency", "3", "--api", api],
            LIMIT,
        );
        check_rows(&o, 12);
        assert_eq!(o.count("http_error"), faults_fired(&m.url, &format!("http-{code}")));
        assert_eq!(o.count("http_error") + o.count("ok"), 12, "{:?}", o.by_status());
        o.errors_say("http_error", want);
        for (s, h) in o.status.iter().zip(&o.http) {
            assert_eq!(h, if s == "ok" { "200" } else { code });
        }
    }
}

#[test]
fn in_stream_errors_after_http_200_are_stream_errors() {
    let d = tmp();
    let t = fast_trace(d.path(), 10, 8);
    for (style, api, want) in [
        ("vllm", "chat", "Internal server error (code 500, InternalServerError)"),
        ("vllm", "completions", "Internal server error"),
        ("sglang", "chat", "The request queue is full."),
        ("sglang", "sglang", "The request queue is full."),
        ("tgi", "tgi", "Model is overloaded"),
        ("tgi", "chat", "Model is overloaded (code 422)"),
        ("trtllm", "completions", "Generation failed"),
        // TensorRT-LLM's chat route drops the connection instead of sending an error
        ("trtllm", "chat", "connection failed mid-stream"),
        ("llamacpp", "llamacpp", "out of KV cache slots"),
        ("ollama", "ollama", "unexpected EOF"),
    ] {
        let m = mock(&["--fault", "error-event", "--fault-style", style]);
        let o = replay_to(
            d.path(),
            &format!("{style}-{api}"),
            &t,
            &m.url,
            &["--concurrency", "3", "--api", api],
            LIMIT,
        );
        check_rows(&o, 10);
        assert_eq!(o.count("stream_error"), 10, "{style} {api}: {:?}", o.by_status());
        o.errors_say("stream_error", want);
        assert!(o.http.iter().all(|h| h == "200"), "HTTP 200, and still an error");
        assert_eq!(faults_fired(&m.url, "error-event"), 10);
    }
}

#[test]
fn a_stalled_stream_times_out_and_nothing_hangs() {
    let d = tmp();
    let t = fast_trace(d.path(), 8, 16);
    let m = mock(&["--fault", "stall:0.5", "--fault-seed", "2"]);
    let o = replay_to(
        d.path(),
        "stall",
        &t,
        &m.url,
        &["--concurrency", "8", "--api", "chat", "--timeout", "800ms"],
        LIMIT,
    );
    check_rows(&o, 8);
    assert_eq!(o.count("timeout"), faults_fired(&m.url, "stall"));
    assert_eq!(o.count("timeout") + o.count("ok"), 8, "{:?}", o.by_status());
    o.errors_say("timeout", "response not complete within --timeout");
    // stalled before any content: the TTFT timeout says so
    let m = mock(&["--fault", "stall", "--fault-after", "0"]);
    let o = replay_to(
        d.path(),
        "stall0",
        &t,
        &m.url,
        &[
            "--concurrency",
            "8",
            "--api",
            "tgi",
            "--ttft-timeout",
            "300ms",
            "--timeout",
            "5s",
        ],
        LIMIT,
    );
    check_rows(&o, 8);
    assert_eq!(o.count("timeout"), 8);
    o.errors_say("timeout", "no content within --ttft-timeout");
}

#[test]
fn a_stream_without_done_is_ok_on_every_protocol() {
    let d = tmp();
    let t = fast_trace(d.path(), 6, 8);
    let m = mock(&["--fault", "no-done"]);
    for api in ["chat", "completions", "tgi", "sglang", "llamacpp", "ollama"] {
        let o = replay_to(d.path(), api, &t, &m.url, &["--concurrency", "3", "--api", api], LIMIT);
        check_rows(&o, 6);
        assert_eq!(o.count("ok"), 6, "{api}: {:?} {:?}", o.by_status(), o.error);
        assert!(column_text(&o.path, "output_tokens").iter().all(|v| v == "8"), "{api}");
    }
    assert_eq!(faults_fired(&m.url, "no-done"), 36);
}

#[test]
fn garbage_and_invalid_utf8_are_stream_errors() {
    let d = tmp();
    let t = fast_trace(d.path(), 12, 8);
    let m = mock(&["--fault", "garbage:0.5", "--fault-seed", "4"]);
    for api in ["chat", "sglang", "ollama"] {
        let o = replay_to(d.path(), api, &t, &m.url, &["--concurrency", "3", "--api", api], LIMIT);
        check_rows(&o, 12);
        assert_eq!(
            o.count("ok") + o.count("stream_error"),
            12,
            "{api}: {:?}",
            o.by_status()
        );
        o.errors_say("stream_error", "unreadable event");
        // what is recorded is valid UTF-8 (the file reads back, DuckDB-readable strings)
        for e in &o.error {
            assert!(!e.contains('\0'), "{e:?}");
        }
    }
}

#[test]
fn a_10_mb_event_line_is_refused_with_bounded_memory() {
    let d = tmp();
    let t = fast_trace(d.path(), 8, 8);
    // a 10 MB line: refused at the limit, the rest never read
    let m = mock(&["--fault", "huge-event"]);
    let o = replay_to(
        d.path(),
        "huge",
        &t,
        &m.url,
        &["--concurrency", "4", "--api", "chat", "--max-event-bytes", "1048576"],
        LIMIT,
    );
    check_rows(&o, 8);
    assert_eq!(o.count("stream_error"), 8, "{:?}", o.by_status());
    o.errors_say("stream_error", "an event exceeded 1048576 bytes");
    // 8 concurrent 64 MiB lines (512 MiB sent at the client): its memory stays small
    let m = mock(&["--fault", "huge-event", "--fault-event-bytes", "67108864"]);
    let o = replay_to(
        d.path(),
        "huge64",
        &t,
        &m.url,
        &["--concurrency", "8", "--api", "ollama", "--max-event-bytes", "1048576"],
        LIMIT,
    );
    check_rows(&o, 8);
    assert_eq!(o.count("stream_error"), 8);
    let rss = o.max_rss_mib();
    assert!(rss < 120.0, "peak RSS {rss} MiB");
    // with room for it, a big event is just a big event
    let m = mock(&["--fault", "huge-event", "--fault-event-bytes", "2000000"]);
    let o = replay_to(
        d.path(),
        "big-ok",
        &t,
        &m.url,
        &["--concurrency", "2", "--api", "chat"],
        LIMIT,
    );
    check_rows(&o, 8);
    assert_eq!(o.count("ok"), 8, "{:?} {:?}", o.by_status(), o.error);
}

#[test]
fn a_slow_loris_server_times_out_with_bounded_memory() {
    let d = tmp();
    let t = fast_trace(d.path(), 6, 8);
    let m = mock(&["--fault", "slow-drip", "--fault-drip-ms", "100"]);
    let o = replay_to(
        d.path(),
        "drip",
        &t,
        &m.url,
        &["--concurrency", "6", "--api", "chat", "--timeout", "1200ms"],
        LIMIT,
    );
    check_rows(&o, 6);
    assert_eq!(o.count("timeout"), 6, "{:?}", o.by_status());
    o.errors_say("timeout", "within --timeout");
    let rss = o.max_rss_mib();
    assert!(rss < 120.0, "peak RSS {rss} MiB");
    // one byte a second, as the issue says: still bounded by the timeout
    let m = mock(&["--fault", "slow-drip"]);
    let o = replay_to(
        d.path(),
        "drip1s",
        &t,
        &m.url,
        &["--concurrency", "6", "--api", "tgi", "--ttft-timeout", "1500ms"],
        LIMIT,
    );
    check_rows(&o, 6);
    assert_eq!(o.count("timeout"), 6);
    o.errors_say("timeout", "no content within --ttft-timeout");
}

/// Every fault at once, open loop: each status count equals what the server injected.
#[test]
fn every_fault_at_once_nothing_lost() {
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "poisson",
            "--rate",
            "150",
            "--count",
            "300",
            "--output-len",
            "6",
            "--seed",
            "5",
        ],
    );
    let m = mock(&[
        "--fault",
        "reset-mid:0.1",
        "--fault",
        "http-503:0.1",
        "--fault",
        "http-429:0.05",
        "--fault",
        "error-event:0.1",
        "--fault",
        "stall:0.05",
        "--fault",
        "garbage:0.05",
        "--fault",
        "no-done:0.1",
        "--fault-seed",
        "11",
        "--fault-after",
        "1",
    ]);
    let o = replay_to(
        d.path(),
        "chaos",
        &t,
        &m.url,
        &["--api", "chat", "--timeout", "1s"],
        LIMIT,
    );
    check_rows(&o, 300);
    let f = |k: &str| faults_fired(&m.url, k);
    assert_eq!(
        o.count("http_error"),
        f("http-503") + f("http-429"),
        "{:?}",
        o.by_status()
    );
    assert_eq!(
        o.count("stream_error"),
        f("reset-mid") + f("error-event") + f("garbage")
    );
    assert_eq!(o.count("timeout"), f("stall"));
    assert_eq!(
        o.count("ok"),
        300 - f("http-503") - f("http-429") - f("reset-mid") - f("error-event") - f("garbage") - f("stall")
    );
    assert!(f("no-done") > 0 && f("stall") > 0 && f("garbage") > 0);
}

/// The server is killed (SIGKILL) mid-run and restarted on the same port: what was in flight
/// is a stream_error, what was sent while it was down a connect_error, the rest ok.
#[test]
fn server_killed_and_restarted_mid_run() {
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "50", "--count", "200", "--output-len", "20"],
    );
    let mut m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "10"]);
    let port = m.port;
    let url = m.url.clone();
    let out = d.path().join("r.parquet");
    let child = cmd("replay")
        .arg(&t)
        .args(["--url", &url, "--api", "chat", "--quiet", "-o"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // a third of the trace is under way (50 req/s for 4 s)
    m.wait_started(60);
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    let killed = servebench::meta::RunClock::global().now_unix_us();
    // down for a while, so that requests meet a closed port
    std::thread::sleep(Duration::from_millis(800));
    // the same port again
    let pf = d.path().join("port2");
    let mut again = cmd("mock-engine")
        .args([
            "--ttft-ms",
            "5",
            "--itl-ms",
            "10",
            "--port",
            &port.to_string(),
            "--port-file",
        ])
        .arg(&pf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !pf.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "restart failed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let restarted = servebench::meta::RunClock::global().now_unix_us();
    let o = child.wait_with_output().unwrap();
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = Outcome {
        status: column_text(&out, "status"),
        error: column_text(&out, "error"),
        http: column_text(&out, "http_status"),
        path: out,
        stderr: stderr(&o),
    };
    check_rows(&out, 200);
    let by = out.by_status();
    assert_eq!(
        out.count("ok") + out.count("connect_error") + out.count("stream_error"),
        200,
        "{by:?}"
    );
    assert!(out.count("connect_error") >= 20, "sent while down: {by:?}");
    assert!(out.count("stream_error") >= 1, "in flight at the kill: {by:?}");
    assert!(out.count("ok") >= 100, "{by:?}");
    out.errors_say("connect_error", "cannot connect to 127.0.0.1");
    // the failures are where they belong in time: while the server was down
    let sched: Vec<i64> = read(&out.path)
        .iter()
        .flat_map(|b| {
            let a = b.column(b.schema().index_of("scheduled_at").unwrap()).clone();
            (0..b.num_rows())
                .map(move |i| servebench::io::cols::ts_us(a.as_ref(), i).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    for (s, at) in out.status.iter().zip(&sched) {
        if s == "connect_error" {
            assert!(
                *at >= killed - 300_000 && *at <= restarted + 300_000,
                "connect_error scheduled {} ms from the kill",
                (*at - killed) / 1000
            );
        }
    }
}
