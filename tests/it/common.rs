//! Helpers shared by the integration tests: binaries, temp dirs, a mock engine, DuckDB.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

pub fn bin(name: &str) -> PathBuf {
    let p = match name {
        "tracegen" => env!("CARGO_BIN_EXE_tracegen"),
        "replay" => env!("CARGO_BIN_EXE_replay"),
        "agg" => env!("CARGO_BIN_EXE_agg"),
        "chart" => env!("CARGO_BIN_EXE_chart"),
        "gpumon" => env!("CARGO_BIN_EXE_gpumon"),
        "enginemon" => env!("CARGO_BIN_EXE_enginemon"),
        "engine-up" => env!("CARGO_BIN_EXE_engine-up"),
        "engine-down" => env!("CARGO_BIN_EXE_engine-down"),
        "mock-engine" => env!("CARGO_BIN_EXE_mock-engine"),
        "report" => env!("CARGO_BIN_EXE_report"),
        "quality" => env!("CARGO_BIN_EXE_quality"),
        "sweep" => env!("CARGO_BIN_EXE_sweep"),
        other => panic!("unknown binary {other}"),
    };
    PathBuf::from(p)
}

pub fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env_remove("SERVEBENCH_STATE_DIR");
    c
}

/// Run a command; return its output (stdout, stderr, status).
pub fn run(c: &mut Command) -> Output {
    c.output().expect("command runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn ok(c: &mut Command) -> Output {
    let o = run(c);
    assert!(o.status.success(), "command failed ({:?}): {}", o.status, stderr(&o));
    o
}

/// Run a replay in which no request can succeed: it records every row and exits 1.
pub fn nothing_succeeds(c: &mut Command) -> Output {
    let o = run(c);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no request succeeded"), "{}", stderr(&o));
    o
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A mock-engine process on a free loopback port, killed on drop.
pub struct Mock {
    pub child: Child,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Mock {
    pub fn start(args: &[&str]) -> Mock {
        let dir = tmp();
        let pf = dir.path().join("port");
        let child = cmd("mock-engine")
            .args(["--port", "0", "--port-file"])
            .arg(&pf)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mock-engine starts");
        let t0 = Instant::now();
        let port = loop {
            if let Ok(s) = std::fs::read_to_string(&pf)
                && let Ok(p) = s.trim().parse::<u16>()
            {
                break p;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "mock-engine did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Mock {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Mock {
    /// Wait until the mock has received at least `n` generation requests in all (its own
    /// counter on `/metrics`), at most 30 s: the event a test waits on instead of a sleep.
    pub fn wait_started(&self, n: usize) {
        wait_for("requests at the server", Duration::from_secs(30), || {
            metric(&self.url, "servebench_mock_requests_started_total", None) as usize >= n
        });
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write a trace with tracegen; returns its path.
pub fn trace(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let p = dir.join(name);
    ok(cmd("tracegen").args(args).arg("-o").arg(&p));
    p
}

/// Read every batch of a data file.
pub fn read(path: &Path) -> Vec<RecordBatch> {
    servebench::io::open(&path.to_string_lossy())
        .expect("opens")
        .map(|b| b.expect("batch"))
        .collect()
}

pub fn rows(path: &Path) -> usize {
    read(path).iter().map(|b| b.num_rows()).sum()
}

/// Column values as strings (for quick assertions).
pub fn column_text(path: &Path, col: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in read(path) {
        let a = b.column(b.schema().index_of(col).expect("column"));
        for i in 0..b.num_rows() {
            out.push(servebench::io::cell_text(a.as_ref(), i));
        }
    }
    out
}

pub fn column_f64(path: &Path, col: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for b in read(path) {
        let a = b.column(b.schema().index_of(col).expect("column"));
        for i in 0..b.num_rows() {
            out.push(servebench::io::cols::f64_at(a.as_ref(), i));
        }
    }
    out
}

/// The Python with DuckDB that `make test` installs (build/venv).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SERVEBENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/venv/bin/python");
    assert!(
        local.exists(),
        "DuckDB tests need the venv that `make test` creates (build/venv with duckdb); run `make venv` or `make test`"
    );
    local
}

/// Run a DuckDB query with Python's duckdb; returns stdout (rows printed as repr tuples).
pub fn duckdb(sql: &str) -> String {
    let script = format!(
        "import duckdb, sys\ncon = duckdb.connect()\nfor r in con.sql({sql:?}).fetchall():\n    print(repr(r))\n"
    );
    let o = Command::new(python())
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "duckdb query failed: {sql}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A loopback server that answers every POST with fixed bytes (a fixture), optionally in
/// pieces with pauses, so parsers are tested on exactly what engines send.
pub struct Scripted {
    pub url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// What a scripted server sends for each request.
#[derive(Clone)]
pub struct Script {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Split the body into pieces at these offsets, pausing between them.
    pub cuts: Vec<usize>,
    pub pause: Duration,
    /// Send headers, then wait this long before the body (SGLang sends headers with the first token).
    pub head_delay: Duration,
    /// Use chunked transfer encoding (else Content-Length).
    pub chunked: bool,
    /// Close the connection without finishing the body after this many body bytes.
    pub drop_after: Option<usize>,
    /// JSON answers for GET paths (probing).
    pub gets: Vec<(String, String)>,
    /// Keep the body of every POST here (to see exactly what was sent).
    pub record: Option<std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            status: 200,
            content_type: "text/event-stream".into(),
            body: Vec::new(),
            cuts: Vec::new(),
            pause: Duration::from_millis(5),
            head_delay: Duration::ZERO,
            chunked: true,
            drop_after: None,
            gets: Vec::new(),
            record: None,
        }
    }
}

impl Scripted {
    pub fn start(script: Script) -> Scripted {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let handle = std::thread::spawn(move || {
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                let (mut s, _) = match l.accept() {
                    Ok(x) => x,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                };
                let script = script.clone();
                std::thread::spawn(move || {
                    s.set_nonblocking(false).ok();
                    s.set_nodelay(true).ok();
                    // Read one request (headers + body by Content-Length).
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    let (head_end, clen) = loop {
                        let n = match s.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
                            let clen = head
                                .lines()
                                .find_map(|l| {
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            break (p + 4, clen);
                        }
                    };
                    while buf.len() < head_end + clen {
                        let n = match s.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    let first = String::from_utf8_lossy(&buf[..head_end])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    if let Some(rec) = &script.record
                        && first.starts_with("POST")
                    {
                        rec.lock().unwrap().push(buf[head_end..head_end + clen].to_vec());
                    }
                    if first.starts_with("GET") {
                        let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                        let (code, body) = match script.gets.iter().find(|(p, _)| *p == path) {
                            Some((_, b)) => (200, b.clone()),
                            None => (404, "{\"error\":\"not found\"}".to_string()),
                        };
                        let _ = write!(
                            s,
                            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        return;
                    }
                    let body = &script.body;
                    let limit = script.drop_after.unwrap_or(body.len()).min(body.len());
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-type: {}\r\nconnection: close\r\n",
                        script.status, script.content_type
                    );
                    if script.chunked {
                        head.push_str("transfer-encoding: chunked\r\n\r\n");
                    } else {
                        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
                    }
                    if s.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(script.head_delay);
                    let mut cuts: Vec<usize> = script.cuts.iter().copied().filter(|c| *c < limit).collect();
                    cuts.push(limit);
                    let mut prev = 0;
                    for c in cuts {
                        if c <= prev {
                            continue;
                        }
                        let piece = &body[prev..c];
                        let ok = if script.chunked {
                            write!(s, "{:x}\r\n", piece.len()).is_ok()
                                && s.write_all(piece).is_ok()
                                && s.write_all(b"\r\n").is_ok()
                        } else {
                            s.write_all(piece).is_ok()
                        };
                        let _ = s.flush();
                        if !ok {
                            return;
                        }
                        prev = c;
                        std::thread::sleep(script.pause);
                    }
                    if script.drop_after.is_some() {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    if script.chunked {
                        let _ = s.write_all(b"0\r\n\r\n");
                    }
                    let _ = s.flush();
                });
            }
        });
        Scripted {
            url: format!("http://127.0.0.1:{port}"),
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Read a fixture file under tests/fixtures.
pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)).expect("fixture exists")
}

/// Offsets of the event boundaries (blank lines) in a body, to cut it event by event.
pub fn event_cuts(body: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut i = 0;
    while i + 1 < body.len() {
        if body[i] == b'\n' && body[i + 1] == b'\n' {
            v.push(i + 2);
        }
        i += 1;
    }
    v
}

/// Live processes whose command line contains `needle` (for orphan checks).
pub fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if let Some(close) = stat.rfind(')')
            && stat[close + 1..].trim_start().starts_with('Z')
        {
            continue;
        }
        let mut cl = String::new();
        if let Ok(mut f) = std::fs::File::open(e.path().join("cmdline")) {
            let _ = f.read_to_string(&mut cl);
        }
        let cl = cl.replace('\0', " ");
        if cl.contains(needle) {
            out.push(format!("{name}: {cl}"));
        }
    }
    out
}

/// Rows readable so far in a journal being written (an Arrow IPC stream): 0 while it is
/// missing or has no complete batch yet.
pub fn journal_rows(path: &Path) -> usize {
    let Ok(r) = servebench::io::open(&path.to_string_lossy()) else {
        return 0;
    };
    let mut n = 0;
    for b in r {
        match b {
            Ok(b) => n += b.num_rows(),
            Err(_) => break,
        }
    }
    n
}

/// Wait until `f` holds (checked every 10 ms); fail naming `what` after `limit`.
pub fn wait_for(what: &str, limit: std::time::Duration, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + limit;
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Fetch `/metrics` from a server and read one counter (summing its series when `label`
/// is None, else the series with that label text).
pub fn metric(url: &str, name: &str, label: Option<&str>) -> f64 {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let mut sum = 0.0;
    for l in body.lines() {
        if l.starts_with('#') || !l.starts_with(name) {
            continue;
        }
        let rest = &l[name.len()..];
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(want) = label
            && !rest.contains(want)
        {
            continue;
        }
        sum += l.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    }
    sum
}

/// Replay `trace` against `url` as 4 shards (`--shard i/4`, one `--start-at` 1.5 s ahead) into
/// the dataset `ds`, labelled "sharded"; every shard must succeed.
pub fn replay_4_shards(trace: &Path, url: &str, ds: &Path) {
    let start = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let start = start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let children: Vec<_> = (0..4)
        .map(|i| {
            cmd("replay")
                .arg(trace)
                .args([
                    "--url",
                    url,
                    "--label",
                    "sharded",
                    "--shard",
                    &format!("{i}/4"),
                    "--start-at",
                    &start,
                    "--quiet",
                    "--dataset",
                ])
                .arg(ds)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
}

/// Start an engine of this checkout's `configs/engines.toml` with engine-up on a free port and
/// wait for its readiness; `args` come last (`--model`, `--quant`, `--timeout`, and `-- ...`
/// for the engine). Fails with engine-up's error and the engine's log. Returns the URL
/// engine-up printed and the state file it wrote (`NAME.json` under `state_dir`).
pub fn engine_up(engine: &str, args: &[&str], state_dir: &Path) -> (String, serde_json::Value) {
    let up = run(cmd("engine-up")
        .arg(engine)
        .args(["--port", "0", "--state-dir"])
        .arg(state_dir)
        .args(args)
        .env_remove("SERVEBENCH_ROOT"));
    assert!(
        up.status.success(),
        "engine-up {engine} {} failed: {}\n{}",
        args.join(" "),
        stderr(&up),
        std::fs::read_to_string(state_dir.join(format!("{engine}.log"))).unwrap_or_default()
    );
    let url = String::from_utf8_lossy(&up.stdout).trim().to_string();
    let st = std::fs::read_to_string(state_dir.join(format!("{engine}.json"))).expect("engine-up wrote its state");
    (url, serde_json::from_str(&st).expect("engine-up's state is JSON"))
}

/// Runs `engine-down ENGINE --state-dir DIR` when dropped: an engine started by a test is
/// stopped whatever fails after it started (a later test checks that nothing is left behind).
pub struct EngineDown(pub &'static str, pub PathBuf);

impl Drop for EngineDown {
    fn drop(&mut self) {
        if self.1.join(format!("{}.json", self.0)).exists() {
            let _ = run(cmd("engine-down").arg(self.0).arg("--state-dir").arg(&self.1));
        }
    }
}

/// Live (not zombie) pids whose process group or session is `pgid` (from /proc).
pub fn process_group(pgid: i64) -> Vec<i64> {
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

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').is_some_and(|c| !s[c + 1..].trim_start().starts_with('Z')))
}
