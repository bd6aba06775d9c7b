//! Starting and stopping engines: a process in its own session and process group (or a
//! container), readiness on the engine's real endpoint, provenance in a state file, and a
//! stop that leaves nothing behind.

pub mod config;
pub mod state;

use std::io::{BufRead, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use self::config::{EngineConfig, Launch};
use self::state::EngineState;
use crate::client::http::{Client, Target};

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
    #[error("{name}: processes survived SIGKILL: {who}")]
    Survivors { name: String, who: String },
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
    let lines: Vec<String> = std::io::BufReader::new(f).lines().map_while(Result::ok).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Options of `engine-up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub state_dir: PathBuf,
    pub ready_timeout: Option<Duration>,
    pub allow_remote: bool,
    /// Print progress to stderr.
    pub verbose: bool,
}

/// A process that belongs to an engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub pid: i32,
    pub state: char,
    pub name: String,
}

/// Live (non-zombie) processes in the process group `pgid` or the session `sid`.
pub fn members(pgid: i32, sid: i32) -> Vec<Member> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp session ...  -- comm may hold spaces and parens
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let name = stat[stat.find('(').map(|i| i + 1).unwrap_or(0)..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.len() < 4 {
            continue;
        }
        let state = rest[0].chars().next().unwrap_or('?');
        let pgrp: i32 = rest[2].parse().unwrap_or(-1);
        let session: i32 = rest[3].parse().unwrap_or(-1);
        if (pgrp == pgid || session == sid) && state != 'Z' && state != 'X' {
            out.push(Member { pid, state, name });
        }
    }
    out
}

fn http_ready(client: &Client, path: &str, status: u16, contains: Option<&str>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match rt.block_on(client.get(path, Duration::from_secs(3))) {
        Ok((s, body)) if s == status => match contains {
            Some(c) if !String::from_utf8_lossy(&body).contains(c) => {
                Err(format!("GET {path} answered {s} without {c:?}"))
            }
            _ => Ok(()),
        },
        Ok((s, _)) => Err(format!("GET {path} answered {s}, want {status}")),
        Err(e) => Err(format!("GET {path}: {e}")),
    }
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

/// Query version and served model of a ready engine.
pub fn describe(cfg: &EngineConfig, url: &str) -> (Option<String>, Option<String>) {
    let Ok(target) = Target::parse(url) else {
        return (None, None);
    };
    let client = Client::new(target, Vec::new(), false);
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return (None, None);
    };
    rt.block_on(async {
        let mut version = None;
        if let Some(v) = &cfg.version
            && let Ok((200, body)) = client.get(&v.path, Duration::from_secs(5)).await
        {
            if let Ok(j) = serde_json::from_slice::<serde_json::Value>(&body) {
                version = json_field(&j, &v.field);
            } else if !body.is_empty() && body.len() < 200 {
                version = Some(String::from_utf8_lossy(&body).trim().to_string());
            }
        }
        let mut served = None;
        if let Ok((200, body)) = client.get("/v1/models", Duration::from_secs(5)).await
            && let Ok(j) = serde_json::from_slice::<serde_json::Value>(&body)
        {
            served = j["data"][0]["id"].as_str().map(str::to_string);
        }
        (version, served)
    })
}

/// Start an engine and wait until it is ready. On failure nothing is left running.
pub fn up(cfg: &EngineConfig, launch: &Launch, o: &UpOptions) -> Result<EngineState, EngineError> {
    let name = launch.name.clone();
    if let Ok(s) = EngineState::load(&o.state_dir, &name) {
        if !members(s.pgid, s.pid).is_empty() || s.container.is_some() {
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
    std::fs::create_dir_all(&o.state_dir).map_err(|e| EngineError::Io {
        what: format!("creating {}", o.state_dir.display()),
        source: e,
    })?;
    let log = o.state_dir.join(format!("{name}.log"));
    let logf = std::fs::File::create(&log).map_err(|e| EngineError::Io {
        what: format!("creating {}", log.display()),
        source: e,
    })?;
    let logf2 = logf.try_clone().map_err(|e| EngineError::Io {
        what: "log".into(),
        source: e,
    })?;
    let mut cmd = Command::new(&launch.argv[0]);
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
    let mut child = cmd.spawn().map_err(|e| EngineError::Spawn {
        program: launch.argv[0].clone(),
        source: e,
    })?;
    let pid = child.id() as i32;
    let url = format!(
        "http://{}:{}",
        if launch.host == "0.0.0.0" {
            "127.0.0.1"
        } else {
            &launch.host
        },
        launch.port
    );
    let client = Client::new(Target::parse(&url).expect("url we built parses"), Vec::new(), false);
    let timeout = o.ready_timeout.unwrap_or(Duration::from_secs_f64(cfg.ready_timeout_s));
    let mut last: String;
    let mut announced = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            stop_group(pid, pid, Signal::SIGKILL, Duration::from_secs(2));
            return Err(EngineError::Died {
                name,
                status: status.to_string(),
                log: log.display().to_string(),
                tail: tail(&log, 20),
            });
        }
        match http_ready(
            &client,
            &cfg.ready.path,
            cfg.ready.status,
            cfg.ready.body_contains.as_deref(),
        ) {
            Ok(()) => break,
            Err(e) => last = e,
        }
        if started.elapsed() > timeout {
            stop_group(pid, pid, Signal::SIGKILL, Duration::from_secs(5));
            let _ = child.try_wait();
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
                cfg.ready.path,
                started.elapsed().as_secs_f64()
            );
            announced = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let ready_after_s = started.elapsed().as_secs_f64();
    let (version, served) = describe(cfg, &url);
    let metrics_url = cfg.metrics.as_ref().map(|m| {
        if m.starts_with("http://") {
            m.replace("{host}", &launch.host)
                .replace("{port}", &launch.port.to_string())
        } else {
            format!("{url}{m}")
        }
    });
    let st = EngineState {
        name: name.clone(),
        pid,
        pgid: pid,
        container: launch.container.clone(),
        url,
        port: launch.port,
        model: launch.model.clone(),
        served_model: served.or_else(|| Some(launch.served_model.clone())),
        quant: launch.quant.clone(),
        api: cfg.api.clone(),
        argv: launch.argv.clone(),
        env: launch.env.clone(),
        version,
        started_at,
        ready_after_s,
        log,
        stop_signal: cfg.stop_signal.clone(),
        grace_s: cfg.grace_s,
        metrics_url,
        gpu_mem_before_mib: Vec::new(),
    };
    st.save(&o.state_dir)?;
    Ok(st)
}

fn signal_of(s: &str) -> Signal {
    match s {
        "SIGINT" => Signal::SIGINT,
        "SIGQUIT" => Signal::SIGQUIT,
        _ => Signal::SIGTERM,
    }
}

/// Signal a group (and stragglers of its session), wait up to `wait` for it to empty.
/// Returns the members still alive.
pub fn stop_group(pgid: i32, sid: i32, sig: Signal, wait: Duration) -> Vec<Member> {
    let _ = killpg(Pid::from_raw(pgid), sig);
    for m in members(pgid, sid) {
        let _ = kill(Pid::from_raw(m.pid), sig);
    }
    let t0 = Instant::now();
    loop {
        let left = members(pgid, sid);
        if left.is_empty() || t0.elapsed() >= wait {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What engine-down did.
#[derive(Debug, Clone, PartialEq)]
pub enum Down {
    NotRunning,
    Stopped { graceful: bool, secs: f64 },
}

/// Stop an engine: its stop signal to the whole group, the grace period, then SIGKILL to
/// the group; containers with `docker stop -t`. Idempotent.
pub fn down(st: &EngineState, grace: Option<Duration>) -> Result<Down, EngineError> {
    let grace = grace.unwrap_or(Duration::from_secs_f64(st.grace_s));
    let t0 = Instant::now();
    if let Some(c) = &st.container {
        let secs = grace.as_secs().max(1).to_string();
        let out = Command::new("docker").args(["stop", "-t", &secs, c]).output();
        if let Ok(o) = &out
            && !o.status.success()
        {
            let err = String::from_utf8_lossy(&o.stderr);
            if !err.contains("No such container") {
                return Err(EngineError::Io {
                    what: format!("docker stop {c}"),
                    source: std::io::Error::other(err.trim().to_string()),
                });
            }
        }
    }
    if members(st.pgid, st.pid).is_empty() {
        return Ok(if st.container.is_some() {
            Down::Stopped {
                graceful: true,
                secs: t0.elapsed().as_secs_f64(),
            }
        } else {
            Down::NotRunning
        });
    }
    let left = stop_group(st.pgid, st.pid, signal_of(&st.stop_signal), grace);
    if left.is_empty() {
        return Ok(Down::Stopped {
            graceful: true,
            secs: t0.elapsed().as_secs_f64(),
        });
    }
    let left = stop_group(st.pgid, st.pid, Signal::SIGKILL, Duration::from_secs(10));
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
    Ok(Down::Stopped {
        graceful: false,
        secs: t0.elapsed().as_secs_f64(),
    })
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
}
