//! Scripted GPUs (`gpumon --fake N`): deterministic readings that look like an engine starting
//! and serving, for tests and demos on machines without a GPU.
//!
//! For the first 2 s a device is idle (600 MiB in use, 70 W, idle throttle bit); then an
//! engine holds 70 GB and utilisation swings between 25% and 95% on a 7 s period (device i
//! shifted by i radians), with power 70 W + 2.8 W per % of utilisation. The energy counter is
//! the trapezoid integral of the power readings, so counter deltas and power integrals agree.
//!
//! Following an engine ([`FakeSource::following`], `gpumon --fake N --fake-load URL`), the
//! devices follow its real load instead of the sine: idle while the engine does not answer,
//! then the engine's memory, and utilisation from the requests it is running
//! ([`util_for_running`]), so a demo's GPU timeline moves with the load. Still synthetic: the
//! file says so ([`SYNTHETIC_KEY`]) and `report` lets it decide nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{DeviceInfo, GpuError, GpuSource, ProcMem, Reading};

/// MiB in use by the driver and context before any engine starts.
pub const IDLE_MIB: f64 = 600.0;
/// MiB the fake engine holds once started.
pub const ENGINE_MIB: f64 = 70_000.0;
pub const TOTAL_MIB: f64 = 81_559.0;
/// Seconds before the fake engine starts.
pub const IDLE_S: f64 = 2.0;
/// The provenance key that marks a file's data synthetic (declared in `meta`); gpumon --fake
/// sets it to `true`, and `report` keeps such data out of winners and recommendations.
pub use crate::meta::SYNTHETIC_KEY;

/// The engine load a following fake device reads: requests running, as f64 bits (NaN while
/// the engine does not answer). Written by whoever watches the engine.
#[derive(Debug, Clone)]
pub struct EngineLoad(Arc<AtomicU64>);

impl Default for EngineLoad {
    fn default() -> Self {
        EngineLoad(Arc::new(AtomicU64::new(f64::NAN.to_bits())))
    }
}

impl EngineLoad {
    /// The engine's running requests now; None while unknown.
    pub fn running(&self) -> Option<f64> {
        Some(f64::from_bits(self.0.load(Ordering::Relaxed))).filter(|v| v.is_finite())
    }
    /// Set (None: the engine did not answer).
    pub fn set(&self, running: Option<f64>) {
        self.0.store(running.unwrap_or(f64::NAN).to_bits(), Ordering::Relaxed);
    }
}

/// Utilisation (%) of a device serving `running` requests: 0 when idle, rising with the batch
/// and saturating at 95% (95 · (1 − e^(−running / 8))).
pub fn util_for_running(running: f64) -> f64 {
    (95.0 * (1.0 - (-running.max(0.0) / 8.0).exp())).round()
}

pub struct FakeSource {
    devices: Vec<DeviceInfo>,
    start: Instant,
    /// The engine these devices follow, if any (else the scripted sine).
    follow: Option<EngineLoad>,
    /// Per device: (time of the previous reading in s, its power in W, the counter in J).
    energy: Vec<Option<(f64, f64, f64)>>,
}

impl FakeSource {
    /// `n` devices with indices 0..n, or those in `only`.
    pub fn new(n: u32, only: Option<&[u32]>) -> Result<FakeSource, GpuError> {
        let indices: Vec<u32> = match only {
            None => (0..n).collect(),
            Some(v) => {
                if let Some(bad) = v.iter().find(|i| **i >= n) {
                    return Err(GpuError(format!(
                        "--gpus {bad}: there are {n} fake devices (indices 0 to {})",
                        n.saturating_sub(1)
                    )));
                }
                v.to_vec()
            }
        };
        Ok(FakeSource {
            energy: vec![None; indices.len()],
            devices: indices
                .into_iter()
                .map(|i| DeviceInfo {
                    index: i,
                    uuid: format!("GPU-fake0000-0000-0000-0000-{i:012}"),
                    name: "Fake GPU (gpumon --fake)".into(),
                })
                .collect(),
            start: Instant::now(),
            follow: None,
        })
    }

    /// Devices that follow an engine's load (see the module's documentation).
    pub fn following(mut self, load: EngineLoad) -> FakeSource {
        self.follow = Some(load);
        self
    }

    /// The reading of a device whose engine is running `running` requests (None: no engine
    /// answers, the device is idle).
    pub fn reading_under(running: Option<f64>) -> Reading {
        let Some(r) = running else {
            return FakeSource::reading_at(0, 0.0);
        };
        let util = util_for_running(r);
        Reading {
            util_pct: Some(util),
            mem_util_pct: Some((util * 0.6).round()),
            mem_used_mib: Some(IDLE_MIB + ENGINE_MIB),
            mem_total_mib: Some(TOTAL_MIB),
            power_w: Some(70.0 + 2.8 * util),
            energy_j: None,
            temp_c: Some((35.0 + 0.4 * util).round()),
            sm_clock_mhz: Some(if util > 0.0 { 1980 } else { 1410 }),
            mem_clock_mhz: Some(2619),
            pcie_tx_kib_s: Some(if util > 0.0 { 900.0 } else { 0.0 }),
            pcie_rx_kib_s: Some(if util > 0.0 { 1200.0 } else { 0.0 }),
            throttle_reasons: Some(if util > 0.0 { 0 } else { 1 }),
        }
    }

    /// The scripted reading of device index `dev` at `t` seconds (without the energy counter).
    pub fn reading_at(dev: u32, t: f64) -> Reading {
        let loaded = t >= IDLE_S;
        let util = if loaded {
            60.0 + 35.0 * (std::f64::consts::TAU * t / 7.0 + dev as f64).sin()
        } else {
            0.0
        };
        Reading {
            util_pct: Some(util.round()),
            mem_util_pct: Some((util * 0.6).round()),
            mem_used_mib: Some(if loaded { IDLE_MIB + ENGINE_MIB } else { IDLE_MIB }),
            mem_total_mib: Some(TOTAL_MIB),
            power_w: Some(70.0 + 2.8 * util.round()),
            energy_j: None,
            temp_c: Some((35.0 + 0.4 * util).round()),
            sm_clock_mhz: Some(if loaded { 1980 } else { 345 }),
            mem_clock_mhz: Some(2619),
            pcie_tx_kib_s: Some(if loaded { 900.0 } else { 0.0 }),
            pcie_rx_kib_s: Some(if loaded { 1200.0 } else { 0.0 }),
            throttle_reasons: Some(if loaded { 0 } else { 1 }),
        }
    }
}

impl GpuSource for FakeSource {
    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn sample(&mut self, i: usize) -> Result<Reading, GpuError> {
        let d = self
            .devices
            .get(i)
            .ok_or_else(|| GpuError(format!("no fake device {i}")))?;
        let t = self.start.elapsed().as_secs_f64();
        let mut r = match &self.follow {
            Some(l) => FakeSource::reading_under(l.running()),
            None => FakeSource::reading_at(d.index, t),
        };
        let p = r.power_w.unwrap_or(0.0);
        let e = match self.energy[i] {
            // Start the counter at a device-specific value, as a driver loaded long ago would.
            None => 1.0e6 * (d.index + 1) as f64,
            Some((t0, p0, e0)) => e0 + (t - t0) * (p0 + p) / 2.0,
        };
        self.energy[i] = Some((t, p, e));
        r.energy_j = Some(e);
        Ok(r)
    }

    fn processes(&mut self, i: usize) -> Result<Vec<ProcMem>, GpuError> {
        let idle = match &self.follow {
            Some(l) => l.running().is_none(),
            None => self.start.elapsed().as_secs_f64() < IDLE_S,
        };
        if idle || i >= self.devices.len() {
            return Ok(Vec::new());
        }
        Ok(vec![ProcMem {
            pid: std::process::id(),
            mem_used_mib: Some(ENGINE_MIB),
        }])
    }

    fn facts(&self) -> Vec<(String, String)> {
        let source = if self.follow.is_some() {
            "fake (scripted devices following the engine's running requests)"
        } else {
            "fake (scripted devices)"
        };
        vec![
            ("servebench.gpu.source".into(), source.into()),
            (SYNTHETIC_KEY.into(), "true".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_then_loaded() {
        let r = FakeSource::reading_at(0, 0.5);
        assert_eq!(r.mem_used_mib, Some(IDLE_MIB));
        assert_eq!(r.util_pct, Some(0.0));
        assert_eq!(r.power_w, Some(70.0));
        let r = FakeSource::reading_at(0, 2.0 + 7.0 / 4.0 - 2.0 * 0.0 + 0.0);
        assert_eq!(r.mem_used_mib, Some(IDLE_MIB + ENGINE_MIB));
        assert!(r.util_pct.unwrap() >= 25.0 && r.util_pct.unwrap() <= 95.0);
    }

    #[test]
    fn following_devices_move_with_the_engines_load() {
        let load = EngineLoad::default();
        let mut f = FakeSource::new(1, None).unwrap().following(load.clone());
        // no engine answers: idle, no engine memory
        let r = f.sample(0).unwrap();
        assert_eq!(
            (r.util_pct, r.mem_used_mib, r.power_w),
            (Some(0.0), Some(IDLE_MIB), Some(70.0))
        );
        assert!(f.processes(0).unwrap().is_empty());
        // an idle engine holds its memory; utilisation and power rise with its batch
        load.set(Some(0.0));
        let r = f.sample(0).unwrap();
        assert_eq!((r.util_pct, r.mem_used_mib), (Some(0.0), Some(IDLE_MIB + ENGINE_MIB)));
        let mut last = 0.0;
        for running in [1.0, 4.0, 16.0, 64.0] {
            load.set(Some(running));
            let r = f.sample(0).unwrap();
            let u = r.util_pct.unwrap();
            assert!(u > last && u <= 95.0, "{running}: {u}");
            assert_eq!(r.power_w, Some(70.0 + 2.8 * u));
            last = u;
        }
        assert!(f.facts().iter().any(|(k, v)| k == SYNTHETIC_KEY && v == "true"));
        load.set(None);
        assert_eq!(f.sample(0).unwrap().util_pct, Some(0.0));
    }

    #[test]
    fn energy_counter_integrates_power() {
        let mut f = FakeSource::new(2, Some(&[1])).unwrap();
        assert_eq!(f.devices()[0].index, 1);
        let a = f.sample(0).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = f.sample(0).unwrap();
        assert_eq!(a.energy_j, Some(2.0e6));
        let de = b.energy_j.unwrap() - a.energy_j.unwrap();
        // idle: 70 W for ~20 ms
        assert!(de > 70.0 * 0.015 && de < 70.0 * 0.5, "{de}");
        assert!(FakeSource::new(2, Some(&[2])).is_err());
    }
}
