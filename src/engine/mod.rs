//! Starting and stopping engines: a process in its own session and process group (or a
//! container), readiness on the engine's real endpoint, provenance in a state file, and a
//! stop that leaves nothing behind (nor GPU memory held).

pub mod config;
pub mod expand;
pub mod nvml;
pub mod state;

use std::collections::BTreeMap;
use std::io::{BufRead, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use self::config::{Launch, Ready, VersionSpec};
use self::state::EngineState;
use crate::client::http::Client;
use crate::client::tls::TlsOptions;
use crate::endpoint::{self, Endpoint};
use crate::prom;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("engine {name} is already running (pid {pid}, {url}); stop it with `engine-down {name}` first")]
    Running { name: String, pid: i32, url: String },
    #[error(
        "refusing to bind {name} to {host}: servebench starts engines on loopback only; pass --allow-remote to expose it on the network"
    )]
    NotLoopback { name: String, host: String },
    #[error("port {port} on {host} is already in use; pick another with --port (or --port 0 for a free one)")]
    PortInUse { host: String, port: u16 },
    #[error("cannot start {program}: {source}; install the engine or fix `command` in engines.toml")]
    Spawn { program: String, source: std::io::Error },
    #[error("{name} exited with {status} before it was ready; last log lines ({log}):\n{tail}")]
    Died {
        name: String,
        status: String,
        log: String,
        tail: String,
    },
    #[error("{name} was not ready after {secs:.0} s ({what}); last log lines ({log}):\n{tail}")]
    NotReady {
        name: String,
        secs: f64,
        what: String,
        log: String,
        tail: String,
    },
    #[error("{name}: warm-up request POST {path} failed: {what}; the engine was stopped")]
    Warmup { name: String, path: String, what: String },
    #[error("{name}: interrupted by {signal} while waiting for readiness; the engine was stopped")]
    Interrupted { name: String, signal: String },
    #[error("{name}: processes survived SIGKILL: {who}")]
    Survivors { name: String, who: String },
    #[error("{name}: the engine's processes {pids:?} still hold GPU memory {secs:.0} s after they were stopped")]
    GpuHeld { name: String, pids: Vec<u32>, secs: f64 },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Is this host a loopback address (or localhost)?
pub fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    host.trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(false)
}

/// A free TCP port on the host (bound then released).
pub fn free_port(host: &str) -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind((host, 0))?;
    Ok(l.local_addr()?.port())
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return "(no log)".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let lines: Vec<String> = std::io::BufReader::new(f)
        .split(b'\n')
        .map_while(Result::ok)
        .map(|l| String::from_utf8_lossy(&l).trim_end().to_string())
        .collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- processes -------------------------------------------------------------------------------

/// A process that belongs to an engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub pid: i32,
    pub state: char,
    pub name: String,
}

/// One row of /proc.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    session: i32,
    state: char,
    start: u64,
    name: String,
}

fn proc_stat(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp session ... starttime(22) -- comm may hold spaces and parens
    let close = stat.rfind(')')?;
    let name = stat[stat.find('(').map(|i| i + 1).unwrap_or(0)..close].to_string();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    if rest.len() < 20 {
        return None;
    }
    Some(Proc {
        pid,
        ppid: rest[1].parse().ok()?,
        pgrp: rest[2].parse().ok()?,
        session: rest[3].parse().ok()?,
        state: rest[0].chars().next().unwrap_or('?'),
        start: rest[19].parse().unwrap_or(0),
        name,
    })
}

fn proc_table() -> Vec<Proc> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// Start time of a process (clock ticks after boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|p| p.start)
}

/// Follows an engine's processes: its process group, its session, every descendant of
/// those (a child that called setsid() is still found through its parent), and every
/// process seen once that is still the same process (pid and start time), even after it was
/// reparented.
#[derive(Debug, Clone)]
pub struct Tracker {
    pgid: i32,
    sid: i32,
    /// Start time of the leader as recorded at launch; a different process with that pid is
    /// not ours (its group is then ignored).
    leader_start: Option<u64>,
    known: BTreeMap<i32, u64>,
}

impl Tracker {
    pub fn new(pgid: i32, sid: i32, leader_start: Option<u64>) -> Tracker {
        Tracker {
            pgid,
            sid,
            leader_start,
            known: BTreeMap::new(),
        }
    }

    /// Live (non-zombie) members now; remembers them.
    pub fn alive(&mut self) -> Vec<Member> {
        let table = proc_table();
        let leader_reused = match (self.leader_start, table.iter().find(|p| p.pid == self.pgid)) {
            (Some(s), Some(p)) => p.start != s,
            _ => false,
        };
        let mut ours: BTreeMap<i32, &Proc> = BTreeMap::new();
        for p in &table {
            let in_group = !leader_reused && (p.pgrp == self.pgid || p.session == self.sid);
            let seen = self.known.get(&p.pid) == Some(&p.start);
            if in_group || seen {
                ours.insert(p.pid, p);
            }
        }
        loop {
            let before = ours.len();
            for p in &table {
                if !ours.contains_key(&p.pid) && ours.contains_key(&p.ppid) && p.ppid > 1 {
                    ours.insert(p.pid, p);
                }
            }
            if ours.len() == before {
                break;
            }
        }
        let mut out = Vec::new();
        for p in ours.values() {
            self.known.insert(p.pid, p.start);
            if p.state != 'Z' && p.state != 'X' {
                out.push(Member {
                    pid: p.pid,
                    state: p.state,
                    name: p.name.clone(),
                });
            }
        }
        out
    }

    /// The graceful stop: `sig` to the leader only (vLLM's API server, TGI's launcher and
    /// SGLang's launcher shut their children down in order; a signal to every child at once
    /// would cut TGI's drain short). Once the leader is gone, members left behind get `sig`
    /// too. Waits up to `wait` for all to exit; returns the members still alive.
    pub fn stop_leader_first(&mut self, sig: Signal, wait: Duration) -> Vec<Member> {
        let left = self.alive();
        let leader = left.iter().any(|m| m.pid == self.pgid);
        if !leader {
            return self.signal_and_wait(sig, wait);
        }
        let _ = kill(Pid::from_raw(self.pgid), sig);
        let t0 = Instant::now();
        loop {
            let left = self.alive();
            if left.is_empty() {
                return left;
            }
            if !left.iter().any(|m| m.pid == self.pgid) {
                let rest = wait.saturating_sub(t0.elapsed());
                return self.signal_and_wait(sig, rest);
            }
            if t0.elapsed() >= wait {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send `sig` to the group and to every member, then wait up to `wait` for all to exit.
    /// Returns the members still alive.
    pub fn signal_and_wait(&mut self, sig: Signal, wait: Duration) -> Vec<Member> {
        let left = self.alive();
        if left.is_empty() {
            return left;
        }
        if !(self.leader_start.is_some() && start_time(self.pgid).is_some_and(|s| Some(s) != self.leader_start)) {
            let _ = killpg(Pid::from_raw(self.pgid), sig);
        }
        for m in &left {
            let _ = kill(Pid::from_raw(m.pid), sig);
        }
        let t0 = Instant::now();
        loop {
            let left = self.alive();
            if left.is_empty() || t0.elapsed() >= wait {
                // Members that appeared meanwhile get the signal too.
                for m in &left {
                    let _ = kill(Pid::from_raw(m.pid), sig);
                }
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Live processes of the process group `pgid` or the session `sid`, and their descendants.
pub fn members(pgid: i32, sid: i32) -> Vec<Member> {
    Tracker::new(pgid, sid, None).alive()
}

// ---- readiness, version, warm-up -------------------------------------------------------------

/// Does one answer of the readiness endpoint mean "ready"? `Err` says why not.
pub fn judge_ready(ready: &Ready, answer: Result<(u16, &[u8]), String>) -> Result<(), String> {
    let path = &ready.path;
    match answer {
        Ok((s, body)) if s == ready.status => match &ready.body_contains {
            Some(c) if !String::from_utf8_lossy(body).contains(c.as_str()) => {
                Err(format!("GET {path} answered {s} without {c:?}"))
            }
            _ => Ok(()),
        },
        Ok((s, body)) => {
            let b = String::from_utf8_lossy(body);
            let b: String = b.trim().chars().take(120).collect();
            Err(if b.is_empty() {
                format!("GET {path} answered {s}")
            } else {
                format!("GET {path} answered {s}: {b}")
            })
        }
        Err(e) => Err(format!("GET {path}: {e}")),
    }
}

/// GET a URL (path on `base`, or a full http:// URL).
async fn get_url(base: &str, path_or_url: &str, timeout: Duration, tls: &TlsOptions) -> Result<(u16, Vec<u8>), String> {
    let (target, path) = if endpoint::is_url(path_or_url) {
        // The whole path is requested from the bare server.
        let e = Endpoint::parse(path_or_url)?;
        let path = e.join("");
        (e.origin(), path)
    } else {
        (Endpoint::parse(base)?, path_or_url.to_string())
    };
    Client::new(target, Vec::new(), false, tls)
        .map_err(|e| e.to_string())?
        .get(&path, timeout)
        .await
}

/// Read a dotted field from a JSON document.
fn json_field(v: &serde_json::Value, dotted: &str) -> Option<String> {
    let mut cur = v;
    for k in dotted.split('.') {
        cur = cur.get(k)?;
    }
    Some(match cur {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The value of `label` on the first sample of `metric` that carries it, in Prometheus text
/// (read by [`prom::parse`], so quoted commas, braces and escapes are read as written).
pub fn prometheus_label(text: &str, metric: &str, label: &str) -> Option<String> {
    prom::parse(text).label_value(metric, label).map(str::to_string)
}

/// The version an engine reports, per its `version` spec.
pub async fn read_version(base: &str, spec: &VersionSpec, tls: &TlsOptions) -> Option<String> {
    let (status, body) = get_url(base, &spec.path, Duration::from_secs(5), tls).await.ok()?;
    if status != 200 {
        return None;
    }
    if let (Some(m), Some(l)) = (&spec.metric, &spec.label) {
        return prometheus_label(&String::from_utf8_lossy(&body), m, l);
    }
    let field = spec.field.as_deref()?;
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(j) => json_field(&j, field),
        Err(_) if !body.is_empty() && body.len() < 200 => Some(String::from_utf8_lossy(&body).trim().to_string()),
        Err(_) => None,
    }
}

/// The served model name from /v1/models, if the engine has that endpoint.
async fn served_model(base: &str, tls: &TlsOptions) -> Option<String> {
    let (status, body) = get_url(base, "/v1/models", Duration::from_secs(5), tls).await.ok()?;
    if status != 200 {
        return None;
    }
    let j: serde_json::Value = serde_json::from_slice(&body).ok()?;
    j["data"][0]["id"].as_str().map(str::to_string)
}

/// The most of a warm-up answer kept (it is only checked for an error).
const WARMUP_BODY_LIMIT: usize = 16 << 20;

async fn warmup(base: &str, w: &config::Warmup, tls: &TlsOptions) -> Result<(), String> {
    let client = Client::new(Endpoint::parse(base)?, Vec::new(), false, tls).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&w.body).map_err(|e| e.to_string())?;
    let fut = async {
        let mut started = client.stream(&w.path, &body).await.map_err(|e| e.to_string())?;
        let status = started.status;
        let (body, clean) = started.read_to_end(WARMUP_BODY_LIMIT).await;
        if !clean {
            return Err("the connection failed while reading the warm-up answer".to_string());
        }
        let text = String::from_utf8_lossy(&body);
        if !(200..300).contains(&status) {
            return Err(format!(
                "HTTP {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            ));
        }
        // Ollama reports failures as an error line in a 200 stream.
        for line in text.lines() {
            if let Ok(j) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(e) = j.get("error")
            {
                return Err(format!("the engine answered an error: {e}"));
            }
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs_f64(w.timeout_s), fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", w.timeout_s)),
    }
}

// ---- up --------------------------------------------------------------------------------------

/// Options of `engine-up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub state_dir: PathBuf,
    /// Stopped (by the caller's signal thread, see [`crate::stop`]): stop the engine that is
    /// starting and give up.
    pub stop: std::sync::Arc<crate::stop::Stop>,
    pub ready_timeout: Option<Duration>,
    pub allow_remote: bool,
    /// How an engine that serves https is trusted (readiness, warm-up, version).
    pub tls: TlsOptions,
    /// Print progress to stderr.
    pub verbose: bool,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> EngineError {
    move |e| EngineError::Io { what, source: e }
}

/// Remove a container (kill it if it runs); quiet when it is already gone.
fn docker_rm(name: &str) {
    let _ = Command::new("docker")
        .args(["rm", "-f", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Host pids of a container's processes (for the GPU check), if docker answers.
fn docker_pids(name: &str) -> Vec<u32> {
    Command::new("docker")
        .args(["top", name, "-eo", "pid"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Start an engine and wait until it is ready. On failure (death, timeout, failed warm-up,
/// SIGINT/SIGTERM/SIGHUP to engine-up, which stops `o.stop`) nothing is left running.
pub fn up(launch: &Launch, o: &UpOptions) -> Result<EngineState, EngineError> {
    let name = launch.name.clone();
    if let Ok(s) = EngineState::load(&o.state_dir, &name) {
        let mut t = Tracker::new(s.pgid, s.pid, s.leader_start);
        if !t.alive().is_empty() || s.container.is_some() {
            return Err(EngineError::Running {
                name,
                pid: s.pid,
                url: s.url,
            });
        }
        EngineState::remove(&o.state_dir, &name);
    }
    if !o.allow_remote && !is_loopback(&launch.host) {
        return Err(EngineError::NotLoopback {
            name,
            host: launch.host.clone(),
        });
    }
    if std::net::TcpListener::bind((launch.host.as_str(), launch.port)).is_err() {
        return Err(EngineError::PortInUse {
            host: launch.host.clone(),
            port: launch.port,
        });
    }
    std::fs::create_dir_all(&o.state_dir).map_err(io_err(format!("creating {}", o.state_dir.display())))?;
    for (path, text) in &launch.files {
        let p = Path::new(path);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        std::fs::write(p, text).map_err(io_err(format!("writing {path}")))?;
    }
    let log = o.state_dir.join(format!("{name}.log"));
    let logf = std::fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
    let logf2 = logf.try_clone().map_err(io_err("log".into()))?;
    let gpu_before = nvml::snapshot();
    let mut cmd = Command::new(&launch.argv[0]);
    // engine-up blocks its stop signals for its signal thread; the engine must get them
    crate::stop::unblock_in_child(&mut cmd, crate::stop::STOP_SIGNALS_AND_HUP);
    cmd.args(&launch.argv[1..])
        .envs(&launch.env)
        .stdin(Stdio::null())
        .stdout(logf)
        .stderr(logf2);
    // SAFETY: setsid() is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let started = Instant::now();
    let started_at = crate::meta::rfc3339_us(crate::meta::RunClock::global().now_unix_us());
    let mut child = cmd.spawn().map_err(|e| {
        let _ = std::fs::remove_file(&log);
        EngineError::Spawn {
            program: launch.argv[0].clone(),
            source: e,
        }
    })?;
    let pid = child.id() as i32;
    let mut tracker = Tracker::new(pid, pid, start_time(pid));
    let mut st = EngineState {
        name: name.clone(),
        pid,
        pgid: pid,
        container: launch.container.clone(),
        url: launch.url.clone(),
        port: launch.port,
        model: launch.model.clone(),
        served_model: Some(launch.served_model.clone()),
        quant: launch.quant.clone(),
        api: launch.api.clone(),
        // provenance only (the process already runs): secrets passed as flags are not kept
        argv: crate::meta::redact_args(&launch.argv),
        env: launch.env.clone(),
        version: None,
        started_at,
        ready_after_s: 0.0,
        log: log.clone(),
        stop_signal: launch.stop_signal.clone(),
        grace_s: launch.grace_s,
        metrics_url: launch.metrics_url.clone(),
        gpu_mem_before_mib: gpu_before.map(|s| s.used_mib).unwrap_or_default(),
        form: Some(launch.form.name().into()),
        ready: false,
        leader_start: tracker.leader_start,
    };
    // Written now, so that `engine-down NAME` can stop an engine still loading.
    st.save(&o.state_dir)?;
    let fail = |tracker: &mut Tracker, child: &mut std::process::Child| {
        if let Some(c) = &launch.container {
            docker_rm(c);
        }
        tracker.signal_and_wait(Signal::SIGKILL, Duration::from_secs(5));
        let _ = child.try_wait();
        EngineState::remove(&o.state_dir, &name);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the async runtime".into()))?;
    let timeout = o
        .ready_timeout
        .unwrap_or(Duration::from_secs_f64(launch.ready_timeout_s));
    let check_timeout = Duration::from_secs_f64(launch.ready.timeout_s);
    let mut last: String;
    let mut announced = Instant::now();
    loop {
        if let Some(reason) = o.stop.reason() {
            fail(&mut tracker, &mut child);
            let signal = match reason {
                crate::stop::StopReason::Signal(s) => crate::stop::signal_name(s),
                r => r.describe(),
            };
            return Err(EngineError::Interrupted { name, signal });
        }
        if let Ok(Some(status)) = child.try_wait() {
            fail(&mut tracker, &mut child);
            return Err(EngineError::Died {
                name,
                status: status.to_string(),
                log: log.display().to_string(),
                tail: tail(&log, 20),
            });
        }
        let answer = rt.block_on(get_url(&launch.url, &launch.ready.path, check_timeout, &o.tls));
        match judge_ready(
            &launch.ready,
            answer.as_ref().map(|(s, b)| (*s, &b[..])).map_err(Clone::clone),
        ) {
            Ok(()) => break,
            Err(e) => last = e,
        }
        if started.elapsed() > timeout {
            fail(&mut tracker, &mut child);
            return Err(EngineError::NotReady {
                name,
                secs: timeout.as_secs_f64(),
                what: last,
                log: log.display().to_string(),
                tail: tail(&log, 20),
            });
        }
        if o.verbose && announced.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "engine-up: {name}: waiting for {} ({:.0} s): {last}",
                launch.ready.path,
                started.elapsed().as_secs_f64()
            );
            announced = Instant::now();
        }
        // Wakes at once when stopped.
        o.stop.wait_until(Instant::now() + Duration::from_millis(250));
    }
    if let Some(w) = &launch.warmup {
        if o.verbose {
            eprintln!("engine-up: {name}: ready; warming up with POST {}", w.path);
        }
        if let Err(what) = rt.block_on(warmup(&launch.url, w, &o.tls)) {
            fail(&mut tracker, &mut child);
            return Err(EngineError::Warmup {
                name,
                path: w.path.clone(),
                what,
            });
        }
    }
    st.ready_after_s = started.elapsed().as_secs_f64();
    st.version = match &launch.version {
        Some(v) => rt.block_on(read_version(&launch.url, v, &o.tls)),
        None => None,
    };
    if let Some(s) = rt.block_on(served_model(&launch.url, &o.tls)) {
        st.served_model = Some(s);
    }
    st.ready = true;
    st.save(&o.state_dir)?;
    // The child is not waited for: it outlives engine-up (engine-down stops it).
    drop(child);
    Ok(st)
}

// ---- down ------------------------------------------------------------------------------------

fn signal_of(s: &str) -> Signal {
    match s {
        "SIGINT" => Signal::SIGINT,
        "SIGQUIT" => Signal::SIGQUIT,
        _ => Signal::SIGTERM,
    }
}

/// Signal a group (and stragglers of its session and their descendants), wait up to `wait`
/// for it to empty. Returns the members still alive.
pub fn stop_group(pgid: i32, sid: i32, sig: Signal, wait: Duration) -> Vec<Member> {
    Tracker::new(pgid, sid, None).signal_and_wait(sig, wait)
}

/// What engine-down did.
#[derive(Debug, Clone, PartialEq)]
pub enum Down {
    NotRunning,
    Stopped {
        graceful: bool,
        secs: f64,
        /// The GPU check, where NVML is present.
        gpu: Option<nvml::Release>,
    },
}

/// Options of `engine-down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Grace period [default: the engine's grace_s].
    pub grace: Option<Duration>,
    /// How long to wait for GPU memory to be released.
    pub gpu_wait: Duration,
}

/// Stop an engine: its stop signal to the leader (then to whatever of the group outlives
/// it), the grace period, then SIGKILL to the group and every process it started;
/// containers with `docker stop -t GRACE` first. Then, where NVML is present, wait until its
/// processes no longer hold GPU memory. Idempotent.
pub fn down(st: &EngineState, o: &DownOptions) -> Result<Down, EngineError> {
    let grace = o.grace.unwrap_or(Duration::from_secs_f64(st.grace_s));
    let t0 = Instant::now();
    let mut tracker = Tracker::new(st.pgid, st.pid, st.leader_start);
    let first = tracker.alive();
    let mut gpu_pids: Vec<u32> = first.iter().map(|m| m.pid as u32).collect();
    let mut graceful = true;
    let mut was_running = !first.is_empty();
    if let Some(c) = &st.container {
        gpu_pids.extend(docker_pids(c));
        // `docker stop` sends the stop signal to PID 1 and SIGKILL after -t seconds.
        let secs = grace.as_secs_f64().ceil().max(1.0).to_string();
        match Command::new("docker")
            .args(["stop", "-t", &secs, c])
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => was_running = true,
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                if !err.contains("No such container") {
                    return Err(EngineError::Io {
                        what: format!("docker stop {c}"),
                        source: std::io::Error::other(err.trim().to_string()),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(EngineError::Io {
                    what: format!("docker stop {c}"),
                    source: e,
                });
            }
        }
        docker_rm(c);
    }
    if !was_running {
        return Ok(Down::NotRunning);
    }
    let left = tracker.stop_leader_first(signal_of(&st.stop_signal), grace);
    if !left.is_empty() {
        graceful = false;
        let left = tracker.signal_and_wait(Signal::SIGKILL, Duration::from_secs(10));
        if !left.is_empty() {
            let who = left
                .iter()
                .map(|m| format!("{} ({}, {})", m.pid, m.name, m.state))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(EngineError::Survivors {
                name: st.name.clone(),
                who,
            });
        }
    }
    let gpu = nvml::wait_released(
        &gpu_pids,
        &st.gpu_mem_before_mib,
        o.gpu_wait,
        Duration::from_millis(250),
        nvml::snapshot,
    );
    if let Some(nvml::Release::StillHeld { pids }) = &gpu {
        return Err(EngineError::GpuHeld {
            name: st.name.clone(),
            pids: pids.clone(),
            secs: o.gpu_wait.as_secs_f64(),
        });
    }
    Ok(Down::Stopped {
        graceful,
        secs: t0.elapsed().as_secs_f64(),
        gpu,
    })
}

/// Is the engine of this state file running (any live process, or a container)?
pub fn is_running(st: &EngineState) -> bool {
    st.container.is_some() || !Tracker::new(st.pgid, st.pid, st.leader_start).alive().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("::1"));
        assert!(!is_loopback("0.0.0.0"));
        assert!(!is_loopback("10.1.2.3"));
    }

    fn ready(path: &str, contains: Option<&str>) -> Ready {
        Ready {
            path: path.into(),
            status: 200,
            body_contains: contains.map(str::to_string),
            timeout_s: 5.0,
        }
    }

    #[test]
    fn readiness_per_engine_behaviour() {
        // vLLM / TGI / TRT-LLM: refused while loading, then an empty 200
        let r = ready("/health", None);
        let e = judge_ready(&r, Err("cannot connect to 127.0.0.1:1: Connection refused".into())).unwrap_err();
        assert!(e.contains("refused"), "{e}");
        assert!(judge_ready(&r, Ok((200, b""))).is_ok());
        // vLLM with a dead engine, SGLang during warm-up: 503
        let e = judge_ready(&r, Ok((503, b""))).unwrap_err();
        assert_eq!(e, "GET /health answered 503");
        // llama.cpp: 503 JSON while loading, then {"status":"ok"}
        let r = ready("/health", Some("ok"));
        let loading = br#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#;
        let e = judge_ready(&r, Ok((503, loading))).unwrap_err();
        assert!(e.contains("Loading model"), "{e}");
        assert!(judge_ready(&r, Ok((200, br#"{"status":"ok"}"#))).is_ok());
        // a 200 without the expected text is not ready
        assert!(judge_ready(&r, Ok((200, b"{}"))).is_err());
        // Ollama: GET / says so in plain text
        let r = ready("/", Some("Ollama is running"));
        assert!(judge_ready(&r, Ok((200, b"Ollama is running"))).is_ok());
    }

    #[test]
    fn prometheus_labels() {
        let t = "# HELP friendli_engine_version v\nfriendli_engine_version_x{version=\"no\"} 1\nfriendli_engine_version{commit=\"ab\", version=\"1.2.3\"} 1\n";
        assert_eq!(
            prometheus_label(t, "friendli_engine_version", "version").as_deref(),
            Some("1.2.3")
        );
        assert_eq!(prometheus_label(t, "friendli_engine_version", "nope"), None);
        assert_eq!(prometheus_label(t, "other", "version"), None);
        // a quoted comma (or `version=` inside another label's value) is not a separator
        let t = "m{commit=\"a,version=\\\"bad\\\"\",version=\"2.0, rc1\"} 1\n";
        assert_eq!(prometheus_label(t, "m", "version").as_deref(), Some("2.0, rc1"));
    }

    #[test]
    fn json_fields() {
        let j: serde_json::Value = serde_json::json!({"version": "0.33.0", "a": {"b": 3}});
        assert_eq!(json_field(&j, "version").as_deref(), Some("0.33.0"));
        assert_eq!(json_field(&j, "a.b").as_deref(), Some("3"));
        assert_eq!(json_field(&j, "a.c"), None);
    }
}
