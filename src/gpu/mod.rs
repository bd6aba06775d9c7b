//! GPU sampling behind a trait: NVML on real machines ([`nvml`]), scripted devices for tests
//! and demos ([`fake`]), one sampler loop for both, and the joins of gpu samples with a run's
//! time window ([`window`]).
//!
//! The sampler keeps its own schedule: tick k is due at `start + k * interval` (absolute
//! deadlines, so nothing drifts); when sampling falls behind by whole intervals, the ticks it
//! skipped are counted in the next row's `missed_ticks` instead of being sampled late. Every
//! GPU of a tick gets the same timestamp (the tick's start), so rows of one tick can be summed
//! over GPUs. One extra sample is taken when sampling stops, so a run's window is covered to
//! its end.

pub mod fake;
pub mod nvml;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::meta::RunClock;
use crate::stop::Stop;

/// A device or field could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GpuError(pub String);

/// One device as the source lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// NVML device index.
    pub index: u32,
    pub uuid: String,
    pub name: String,
}

/// One sample of one device. Fields a device does not report are None.
pub use crate::schema::{GpuRow, ProcRow, Reading};

#[derive(Debug, Clone, PartialEq)]
pub struct ProcMem {
    pub pid: u32,
    pub mem_used_mib: Option<f64>,
}

/// Where samples come from.
pub trait GpuSource {
    /// The devices sampled, in row order.
    fn devices(&self) -> &[DeviceInfo];
    /// Read device `i` (an index into [`GpuSource::devices`]).
    fn sample(&mut self, i: usize) -> Result<Reading, GpuError>;
    /// Processes holding memory on device `i`.
    fn processes(&mut self, i: usize) -> Result<Vec<ProcMem>, GpuError>;
    /// Facts for the file's metadata (driver version, ...).
    fn facts(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// One row of the gpu contract.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
    /// Also list processes and their memory.
    pub processes: bool,
    /// Stop after this many ticks (tests).
    pub max_ticks: Option<u64>,
    /// Take one more sample when stopped.
    pub final_sample: bool,
}

/// What a sampling run did and cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplerStats {
    pub ticks: u64,
    pub rows: u64,
    pub process_rows: u64,
    pub missed_ticks: u64,
    /// Device reads that failed (the device is left out of that tick).
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU seconds of the sampling thread (getrusage RUSAGE_THREAD).
    pub thread_cpu_s: f64,
    pub wall_s: f64,
}

impl SamplerStats {
    /// Sampling-thread CPU time per tick, in microseconds.
    pub fn cpu_us_per_tick(&self) -> f64 {
        if self.ticks == 0 {
            0.0
        } else {
            self.thread_cpu_s * 1e6 / self.ticks as f64
        }
    }
}

/// After tick `done` (0-based) finished at `elapsed` since the start: the next tick to take
/// and how many ticks were skipped because their deadline had already passed. A tick whose
/// deadline passed less than a whole interval ago is still taken (late, not missed).
pub fn next_tick(done: u64, elapsed: Duration, interval: Duration) -> (u64, u64) {
    let iv = interval.as_nanos().max(1);
    // Deadlines that have passed: k * iv <= elapsed, for k in 0..=passed_last.
    let passed_last = (elapsed.as_nanos() / iv) as u64;
    let next = done + 1;
    if passed_last > next {
        // Take the most recent due tick; the ones between were missed.
        (passed_last, passed_last - next)
    } else {
        (next, 0)
    }
}

/// Sample until `stop` (or `max_ticks`), handing each tick's rows to `emit`.
pub fn run(
    src: &mut dyn GpuSource,
    cfg: &SamplerConfig,
    stop: &Stop,
    clock: &RunClock,
    emit: &mut dyn FnMut(Vec<GpuRow>, Vec<ProcRow>),
) -> SamplerStats {
    let cpu0 = crate::monitor::cpu_seconds(true);
    let devices: Vec<(DeviceInfo, Arc<str>, Arc<str>)> = src
        .devices()
        .iter()
        .map(|d| (d.clone(), Arc::from(d.uuid.as_str()), Arc::from(d.name.as_str())))
        .collect();
    let mut names = ProcessNames::default();
    let mut stats = SamplerStats::default();
    let start = Instant::now();
    let mut k: u64 = 0;
    let mut pending_missed: u64 = 0;
    loop {
        if cfg.max_ticks.is_some_and(|m| stats.ticks >= m) {
            break;
        }
        let due = start + cfg.interval.saturating_mul(k.min(u32::MAX as u64) as u32);
        if stop.wait_until(due) {
            break;
        }
        let missed = pending_missed.min(u32::MAX as u64) as u32;
        take(src, &devices, cfg, clock, missed, &mut names, &mut stats, emit);
        pending_missed = 0;
        let (next, skipped) = next_tick(k, start.elapsed(), cfg.interval);
        k = next;
        pending_missed += skipped;
        stats.missed_ticks += skipped;
    }
    if cfg.final_sample && stop.is_stopped() {
        let missed = pending_missed.min(u32::MAX as u64) as u32;
        take(src, &devices, cfg, clock, missed, &mut names, &mut stats, emit);
    }
    stats.wall_s = start.elapsed().as_secs_f64();
    stats.thread_cpu_s = crate::monitor::cpu_seconds(true) - cpu0;
    stats
}

#[allow(clippy::too_many_arguments)]
fn take(
    src: &mut dyn GpuSource,
    devices: &[(DeviceInfo, Arc<str>, Arc<str>)],
    cfg: &SamplerConfig,
    clock: &RunClock,
    missed: u32,
    names: &mut ProcessNames,
    stats: &mut SamplerStats,
    emit: &mut dyn FnMut(Vec<GpuRow>, Vec<ProcRow>),
) {
    let t_us = clock.unix_us(Instant::now());
    let mut rows = Vec::with_capacity(devices.len());
    let mut procs = Vec::new();
    for (i, (d, uuid, name)) in devices.iter().enumerate() {
        match src.sample(i) {
            Ok(reading) => rows.push(GpuRow {
                t_us,
                gpu: d.index,
                uuid: uuid.clone(),
                name: name.clone(),
                reading,
                missed_ticks: missed,
            }),
            Err(e) => {
                stats.errors += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("gpu {}: {e}", d.index));
                }
            }
        }
        if cfg.processes {
            match src.processes(i) {
                Ok(ps) => {
                    for p in ps {
                        procs.push(ProcRow {
                            t_us,
                            gpu: d.index,
                            pid: p.pid,
                            process_name: names.get(p.pid),
                            mem_used_mib: p.mem_used_mib,
                        });
                    }
                }
                Err(e) => {
                    stats.errors += 1;
                    if stats.first_error.is_none() {
                        stats.first_error = Some(format!("gpu {} processes: {e}", d.index));
                    }
                }
            }
        }
    }
    stats.ticks += 1;
    stats.rows += rows.len() as u64;
    stats.process_rows += procs.len() as u64;
    emit(rows, procs);
}

/// Process names from /proc/PID/comm, remembered (a pid's name is read once).
#[derive(Default)]
struct ProcessNames(HashMap<u32, Option<String>>);

impl ProcessNames {
    fn get(&mut self, pid: u32) -> Option<String> {
        if self.0.len() > 4096 {
            self.0.clear();
        }
        self.0
            .entry(pid)
            .or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .ok()
                    .map(|s| s.trim_end().to_string())
                    .filter(|s| !s.is_empty())
            })
            .clone()
    }
}

/// Parse `--gpus 0,1,3`.
pub fn parse_gpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let i: u32 = part
            .parse()
            .map_err(|_| format!("--gpus {s:?}: {part:?} is not a device index; use e.g. --gpus 0,1"))?;
        if !v.contains(&i) {
            v.push(i);
        }
    }
    if v.is_empty() {
        return Err(format!("--gpus {s:?}: no device index; use e.g. --gpus 0,1"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GPU, Rows};
    use std::collections::VecDeque;

    /// A scripted device: readings (or errors) in order, an optional pause on chosen calls.
    pub(crate) struct Scripted {
        pub devices: Vec<DeviceInfo>,
        pub script: Vec<VecDeque<Result<Reading, GpuError>>>,
        pub pause_on_call: Option<(usize, Duration)>,
        pub calls: usize,
    }

    impl GpuSource for Scripted {
        fn devices(&self) -> &[DeviceInfo] {
            &self.devices
        }
        fn sample(&mut self, i: usize) -> Result<Reading, GpuError> {
            self.calls += 1;
            if let Some((n, d)) = self.pause_on_call
                && n == self.calls
            {
                std::thread::sleep(d);
            }
            self.script[i].pop_front().unwrap_or(Ok(Reading::default()))
        }
        fn processes(&mut self, i: usize) -> Result<Vec<ProcMem>, GpuError> {
            Ok(vec![ProcMem {
                pid: std::process::id(),
                mem_used_mib: Some(100.0 * (i + 1) as f64),
            }])
        }
    }

    fn dev(i: u32) -> DeviceInfo {
        DeviceInfo {
            index: i,
            uuid: format!("GPU-{i}"),
            name: "Scripted".into(),
        }
    }

    fn reading(mem: f64) -> Reading {
        Reading {
            mem_used_mib: Some(mem),
            power_w: Some(100.0),
            ..Default::default()
        }
    }

    #[test]
    fn next_tick_counts_whole_missed_intervals() {
        let iv = Duration::from_millis(10);
        // on time
        assert_eq!(next_tick(0, Duration::from_millis(3), iv), (1, 0));
        // late for tick 1 but before tick 2's deadline: tick 1 is taken late
        assert_eq!(next_tick(0, Duration::from_millis(19), iv), (1, 0));
        // exactly at tick 2's deadline: tick 1 is skipped, tick 2 taken now
        assert_eq!(next_tick(0, Duration::from_millis(20), iv), (2, 1));
        // 35 ms: ticks 1 and 2 skipped, tick 3 due now
        assert_eq!(next_tick(0, Duration::from_millis(35), iv), (3, 2));
        assert_eq!(next_tick(7, Duration::from_millis(75), iv), (8, 0));
    }

    #[test]
    fn scripted_devices_give_one_row_per_device_per_tick() {
        let mut src = Scripted {
            devices: vec![dev(0), dev(3)],
            script: vec![
                VecDeque::from(vec![Ok(reading(1.0)), Ok(reading(2.0)), Ok(reading(3.0))]),
                VecDeque::from(vec![
                    Ok(reading(10.0)),
                    Err(GpuError("GPU is lost".into())),
                    Ok(reading(30.0)),
                ]),
            ],
            pause_on_call: None,
            calls: 0,
        };
        let cfg = SamplerConfig {
            interval: Duration::from_millis(5),
            processes: true,
            max_ticks: Some(3),
            final_sample: false,
        };
        let stop = Stop::new();
        let clock = RunClock::new();
        let mut rows = Vec::new();
        let mut procs = Vec::new();
        let st = run(&mut src, &cfg, &stop, &clock, &mut |r, p| {
            rows.extend(r);
            procs.extend(p);
        });
        assert_eq!(st.ticks, 3);
        assert_eq!(st.rows, 5);
        assert_eq!(st.errors, 1);
        assert_eq!(st.first_error.as_deref(), Some("gpu 3: GPU is lost"));
        let mem: Vec<(u32, f64)> = rows.iter().map(|r| (r.gpu, r.reading.mem_used_mib.unwrap())).collect();
        assert_eq!(mem, [(0, 1.0), (3, 10.0), (0, 2.0), (0, 3.0), (3, 30.0)]);
        // both devices of a tick share its timestamp; ticks are ~5 ms apart and increasing
        assert_eq!(rows[0].t_us, rows[1].t_us);
        assert!(rows[2].t_us - rows[0].t_us >= 4_000);
        assert_eq!(procs.len(), 6);
        assert_eq!(procs[1].gpu, 3);
        assert_eq!(procs[1].mem_used_mib, Some(200.0));
        assert!(procs[0].process_name.is_some());
        let b = GpuRow::encode(&rows, &());
        assert_eq!(b.num_rows(), 5);
        assert_eq!(b.schema(), GPU.schema());
        let b = ProcRow::encode(&procs, &());
        assert_eq!(b.num_rows(), 6);
    }

    #[test]
    fn a_slow_read_is_recorded_as_missed_ticks() {
        // The 3rd read takes 45 ms at a 10 ms interval: at least 3 ticks are skipped.
        let mut src = Scripted {
            devices: vec![dev(0)],
            script: vec![VecDeque::new()],
            pause_on_call: Some((3, Duration::from_millis(45))),
            calls: 0,
        };
        let cfg = SamplerConfig {
            interval: Duration::from_millis(10),
            processes: false,
            max_ticks: Some(6),
            final_sample: false,
        };
        let stop = Stop::new();
        let mut rows = Vec::new();
        let st = run(&mut src, &cfg, &stop, &RunClock::new(), &mut |r, _| rows.extend(r));
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[..3].iter().map(|r| r.missed_ticks).sum::<u32>(), 0);
        assert!(
            rows[3].missed_ticks >= 3,
            "{:?}",
            rows.iter().map(|r| r.missed_ticks).collect::<Vec<_>>()
        );
        assert_eq!(st.missed_ticks, rows.iter().map(|r| r.missed_ticks as u64).sum::<u64>());
        // never early: the row after the skip is taken at or after its deadline (tick >= 6)
        let after = rows[3].t_us - rows[0].t_us;
        assert!(after >= 55_000, "{after} us");
    }

    #[test]
    fn stop_ends_sampling_with_a_final_sample() {
        let mut src = Scripted {
            devices: vec![dev(0)],
            script: vec![VecDeque::new()],
            pause_on_call: None,
            calls: 0,
        };
        let cfg = SamplerConfig {
            interval: Duration::from_secs(3600),
            processes: false,
            max_ticks: None,
            final_sample: true,
        };
        let stop = Stop::new();
        let s2 = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            s2.request(crate::stop::StopReason::Duration);
        });
        let mut n = 0;
        let st = run(&mut src, &cfg, &stop, &RunClock::new(), &mut |r, _| n += r.len());
        // tick 0 at once, then the hour-long wait is cut short, then the final sample
        assert_eq!((st.ticks, n), (2, 2));
        assert!(st.wall_s < 10.0);
    }

    #[test]
    fn gpu_lists() {
        assert_eq!(parse_gpu_list("0,1, 3,1").unwrap(), [0, 1, 3]);
        assert!(parse_gpu_list("a").is_err());
        assert!(parse_gpu_list(",").is_err());
    }
}
