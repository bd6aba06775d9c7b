//! Just enough NVML for engine-up and engine-down: GPU memory in use before an engine starts,
//! and, after it stops, waiting until its processes no longer hold GPU memory. Where NVML is
//! absent (no NVIDIA driver) every function returns None and callers skip the check quietly.

use std::time::{Duration, Instant};

/// One look at every GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Memory in use per GPU (index order), MiB.
    pub used_mib: Vec<f64>,
    /// Processes holding a compute context on any GPU.
    pub pids: Vec<u32>,
}

/// Sample every GPU; None without NVML (or when a device cannot be read).
pub fn snapshot() -> Option<Snapshot> {
    let nvml = nvml_wrapper::Nvml::init().ok()?;
    let n = nvml.device_count().ok()?;
    let mut used_mib = Vec::new();
    let mut pids = Vec::new();
    for i in 0..n {
        let d = nvml.device_by_index(i).ok()?;
        used_mib.push(d.memory_info().ok()?.used as f64 / (1024.0 * 1024.0));
        if let Ok(ps) = d.running_compute_processes() {
            pids.extend(ps.iter().map(|p| p.pid));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Some(Snapshot { used_mib, pids })
}

/// GPU memory may be this much above the level recorded before the engine started and still
/// count as released (other processes share the GPU; allocators keep small pools).
pub const SLACK_MIB: f64 = 256.0;

/// Outcome of [`wait_released`].
#[derive(Debug, Clone, PartialEq)]
pub enum Release {
    /// None of the engine's processes holds GPU memory and memory is back to its level.
    Released { secs: f64 },
    /// Some of the engine's processes still hold GPU memory after the timeout.
    StillHeld { pids: Vec<u32> },
    /// The engine's processes are gone from the GPU but memory in use stays above the level
    /// recorded before it started (another process, or a slow driver).
    AboveBaseline { used_mib: Vec<f64>, before_mib: Vec<f64> },
}

/// Wait until none of `ours` appears among the GPU's compute processes and memory in use is
/// back within [`SLACK_MIB`] of `before_mib` (skipped when empty). `sample` is [`snapshot`]
/// in real use; None from it (no NVML) returns None at once.
pub fn wait_released(
    ours: &[u32],
    before_mib: &[f64],
    timeout: Duration,
    poll: Duration,
    mut sample: impl FnMut() -> Option<Snapshot>,
) -> Option<Release> {
    let t0 = Instant::now();
    loop {
        let s = sample()?;
        let held: Vec<u32> = s.pids.iter().copied().filter(|p| ours.contains(p)).collect();
        let mem_ok =
            before_mib.len() != s.used_mib.len() || s.used_mib.iter().zip(before_mib).all(|(u, b)| *u <= b + SLACK_MIB);
        if held.is_empty() && mem_ok {
            return Some(Release::Released {
                secs: t0.elapsed().as_secs_f64(),
            });
        }
        if t0.elapsed() >= timeout {
            return Some(if held.is_empty() {
                Release::AboveBaseline {
                    used_mib: s.used_mib,
                    before_mib: before_mib.to_vec(),
                }
            } else {
                Release::StillHeld { pids: held }
            });
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(used: &[f64], pids: &[u32]) -> Snapshot {
        Snapshot {
            used_mib: used.to_vec(),
            pids: pids.to_vec(),
        }
    }

    #[test]
    fn waits_for_pids_and_memory() {
        let z = Duration::ZERO;
        // no NVML: nothing to wait for
        assert_eq!(wait_released(&[1], &[], Duration::from_secs(9), z, || None), None);
        // released once the engine's pid leaves and memory comes back
        let mut seq = vec![snap(&[9000.0], &[7, 42]), snap(&[9000.0], &[7]), snap(&[1100.0], &[7])].into_iter();
        let r = wait_released(&[42], &[1000.0], Duration::from_secs(60), z, || seq.next());
        assert!(matches!(r, Some(Release::Released { .. })), "{r:?}");
        // still held at the timeout
        let r = wait_released(&[42], &[1000.0], z, z, || Some(snap(&[9000.0], &[42])));
        assert_eq!(r, Some(Release::StillHeld { pids: vec![42] }));
        // pids gone but memory stays up: reported, not confused with a survivor
        let r = wait_released(&[42], &[1000.0], z, z, || Some(snap(&[9000.0], &[7])));
        assert!(matches!(r, Some(Release::AboveBaseline { .. })), "{r:?}");
        // no baseline recorded: only the pids count
        let r = wait_released(&[42], &[], z, z, || Some(snap(&[9000.0], &[7])));
        assert!(matches!(r, Some(Release::Released { .. })), "{r:?}");
    }
}
