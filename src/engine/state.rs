//! The state file engine-up writes and engine-down and replay read:
//! `STATE_DIR/NAME.json` (default `.servebench/engines/`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("engine {name} is not running here (no state file {path}); start it with `engine-up {name}` or pass --url")]
    Missing { name: String, path: String },
    #[error("{path}: cannot read engine state: {msg}")]
    Bad { path: String, msg: String },
    #[error("{path}: cannot write engine state: {source}")]
    Write { path: String, source: std::io::Error },
}

/// What is known about a running engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EngineState {
    pub name: String,
    /// Leader pid; its process group holds every process it started.
    pub pid: i32,
    pub pgid: i32,
    #[serde(default)]
    pub container: Option<String>,
    pub url: String,
    pub port: u16,
    pub model: String,
    #[serde(default)]
    pub served_model: Option<String>,
    #[serde(default)]
    pub quant: Option<String>,
    pub api: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub version: Option<String>,
    pub started_at: String,
    #[serde(default)]
    pub ready_after_s: f64,
    pub log: PathBuf,
    pub stop_signal: String,
    pub grace_s: f64,
    #[serde(default)]
    pub metrics_url: Option<String>,
    /// GPU memory (MiB) in use before the engine started, per GPU, where NVML was present.
    #[serde(default)]
    pub gpu_mem_before_mib: Vec<f64>,
    /// "process" or "container".
    #[serde(default)]
    pub form: Option<String>,
    /// False while engine-up is still waiting for readiness (the file is written at launch so
    /// that engine-down can stop an engine whose engine-up was interrupted).
    #[serde(default = "yes")]
    pub ready: bool,
    /// Start time of the leader (clock ticks after boot, /proc/PID/stat field 22), so that a
    /// reused pid is never taken for the engine.
    #[serde(default)]
    pub leader_start: Option<u64>,
}

fn yes() -> bool {
    true
}

impl EngineState {
    pub fn path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.json"))
    }

    pub fn load(dir: &Path, name: &str) -> Result<EngineState, StateError> {
        let p = EngineState::path(dir, name);
        let text = std::fs::read_to_string(&p).map_err(|_| StateError::Missing {
            name: name.into(),
            path: p.to_string_lossy().into(),
        })?;
        serde_json::from_str(&text).map_err(|e| StateError::Bad {
            path: p.to_string_lossy().into(),
            msg: e.to_string(),
        })
    }

    pub fn save(&self, dir: &Path) -> Result<PathBuf, StateError> {
        let p = EngineState::path(dir, &self.name);
        let we = |e| StateError::Write {
            path: p.to_string_lossy().into(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(we)?;
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self).unwrap_or_default()).map_err(we)?;
        std::fs::rename(&tmp, &p).map_err(we)?;
        Ok(p)
    }

    /// Names of every engine with a state file in `dir`.
    pub fn list(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().to_string();
                        n.strip_suffix(".json").map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn remove(dir: &Path, name: &str) {
        let _ = std::fs::remove_file(EngineState::path(dir, name));
    }
}
