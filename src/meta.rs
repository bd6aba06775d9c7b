//! Provenance: the key-value metadata every file carries, run ids, and the run clock.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::schema::{Contract, META_ARGV, META_GIT_SHA, META_RUN_ID, META_SCHEMA, META_STARTED_AT, META_VERSION};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_SHA: &str = env!("SERVEBENCH_GIT_SHA");

/// Key-value metadata of one output file, ordered by key so that files are reproducible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta(pub BTreeMap<String, String>);

/// The provenance key a file carries when its data is synthetic (`gpumon --fake`): such data
/// is marked on every chart and table and decides nothing.
pub const SYNTHETIC_KEY: &str = "servebench.synthetic";

impl Meta {
    /// Whether this provenance marks the data synthetic: [`SYNTHETIC_KEY`] set to `true`, or a
    /// gpumon file of scripted devices (`servebench.gpu.source` "fake ...", files written
    /// before the key existed).
    pub fn is_synthetic(&self) -> bool {
        self.get(SYNTHETIC_KEY)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
            || self
                .get("servebench.gpu.source")
                .is_some_and(|s| s.to_ascii_lowercase().starts_with("fake"))
    }

    /// Metadata for a file of `contract` written by the current process.
    ///
    /// `reproducible` files (traces) carry no clock time and no random id, so the same
    /// arguments give the same bytes; measurements carry both.
    pub fn for_output(contract: &Contract, reproducible: bool) -> Meta {
        let mut m = BTreeMap::new();
        m.insert(META_SCHEMA.to_string(), contract.id());
        m.insert(META_VERSION.to_string(), VERSION.to_string());
        m.insert(META_GIT_SHA.to_string(), GIT_SHA.to_string());
        m.insert(META_ARGV.to_string(), argv_json());
        if !reproducible {
            let clock = RunClock::global();
            m.insert(META_RUN_ID.to_string(), clock.run_id.clone());
            m.insert(META_STARTED_AT.to_string(), clock.started_at_rfc3339());
            m.insert("servebench.host".to_string(), hostname());
        }
        Meta(m)
    }

    pub fn set(&mut self, k: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.0.insert(k.into(), v.into());
        self
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|s| s.as_str())
    }
}

/// Argument names whose values are secrets: never written anywhere.
const SECRET_FLAGS: &[&str] = &["--api-key", "--token", "--hf-token", "--password", "--header", "-H"];

/// This process's argv as a JSON array, with secret values replaced by `<redacted>`.
pub fn argv_json() -> String {
    let args: Vec<String> = std::env::args().collect();
    serde_json::to_string(&redact_args(&args)).unwrap_or_default()
}

/// Replace the values of secret-bearing flags (both `--flag value` and `--flag=value`).
/// Headers are kept by name only (`Authorization: <redacted>`).
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut redact_next = false;
    for a in args {
        if redact_next {
            out.push(redact_value(a));
            redact_next = false;
            continue;
        }
        if let Some((flag, val)) = a.split_once('=')
            && SECRET_FLAGS.contains(&flag)
        {
            out.push(format!("{flag}={}", redact_value(val)));
            continue;
        }
        if SECRET_FLAGS.contains(&a.as_str()) {
            redact_next = true;
        }
        // a short flag with its value attached: -H'Authorization: Bearer x'
        if let Some(v) = a.strip_prefix("-H")
            && !v.is_empty()
            && !a.starts_with("--")
        {
            out.push(format!("-H{}", redact_value(v)));
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// Replace the values of environment variables whose names say they hold a secret (token,
/// key, secret, password, credentials, auth).
pub fn redact_env(env: &mut BTreeMap<String, String>) {
    for (k, v) in env.iter_mut() {
        let u = k.to_ascii_uppercase();
        if ["TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"]
            .iter()
            .any(|w| u.contains(w))
        {
            *v = "<redacted>".into();
        }
    }
}

fn redact_value(v: &str) -> String {
    match v.split_once(':') {
        Some((name, _)) if !name.contains(' ') => format!("{name}: <redacted>"),
        _ => "<redacted>".to_string(),
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Wall-clock anchor plus a monotonic clock: timestamps are `anchor + monotonic elapsed`, so
/// they never jump when NTP adjusts the wall clock during a run.
#[derive(Debug, Clone)]
pub struct RunClock {
    pub anchor: Instant,
    pub anchor_unix_us: i64,
    pub run_id: String,
}

static GLOBAL_CLOCK: std::sync::OnceLock<RunClock> = std::sync::OnceLock::new();

impl RunClock {
    pub fn global() -> &'static RunClock {
        GLOBAL_CLOCK.get_or_init(RunClock::new)
    }

    pub fn new() -> RunClock {
        let anchor = Instant::now();
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let anchor_unix_us = unix.as_micros() as i64;
        let dt = chrono::DateTime::from_timestamp_micros(anchor_unix_us).unwrap_or_default();
        let run_id = format!(
            "{}-{:04x}",
            dt.format("%Y%m%dT%H%M%SZ"),
            (std::process::id() ^ (unix.subsec_nanos() >> 8)) & 0xffff
        );
        RunClock {
            anchor,
            anchor_unix_us,
            run_id,
        }
    }

    /// Microseconds since the Unix epoch of a monotonic instant.
    pub fn unix_us(&self, t: Instant) -> i64 {
        if t >= self.anchor {
            self.anchor_unix_us + t.duration_since(self.anchor).as_micros() as i64
        } else {
            self.anchor_unix_us - self.anchor.duration_since(t).as_micros() as i64
        }
    }

    pub fn now_unix_us(&self) -> i64 {
        self.unix_us(Instant::now())
    }

    pub fn started_at_rfc3339(&self) -> String {
        rfc3339_us(self.anchor_unix_us)
    }
}

impl Default for RunClock {
    fn default() -> Self {
        RunClock::new()
    }
}

pub fn rfc3339_us(unix_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(unix_us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Milliseconds between two instants (b - a), negative if b is earlier.
pub fn ms_between(a: Instant, b: Instant) -> f64 {
    if b >= a {
        b.duration_since(a).as_secs_f64() * 1e3
    } else {
        -(a.duration_since(b).as_secs_f64() * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let a: Vec<String> = [
            "replay",
            "--api-key",
            "sk-123",
            "--header=Authorization: Bearer x",
            "-H",
            "X-Key: abc",
            "-HAuthorization: Bearer attached",
            "--hf-token=hf_abc",
            "--label",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redact_args(&a).join(" ");
        assert!(!r.contains("sk-123"));
        assert!(!r.contains("Bearer x"));
        assert!(!r.contains("abc"));
        assert!(!r.contains("attached"));
        let mut env = BTreeMap::new();
        env.insert("HF_TOKEN".to_string(), "hf_secret".to_string());
        env.insert("CUDA_VISIBLE_DEVICES".to_string(), "0".to_string());
        redact_env(&mut env);
        assert_eq!(env["HF_TOKEN"], "<redacted>");
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "0");
        assert!(r.contains("Authorization: <redacted>"));
        assert!(r.contains("--label x"));
    }

    #[test]
    fn clock_is_monotonic_and_anchored() {
        let c = RunClock::new();
        let t1 = c.now_unix_us();
        let t2 = c.now_unix_us();
        assert!(t2 >= t1);
        assert!((t1 - c.anchor_unix_us) < 1_000_000);
        assert!(c.started_at_rfc3339().ends_with('Z'));
    }
}
