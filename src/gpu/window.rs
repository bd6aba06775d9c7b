//! GPU samples joined with a run's time window: idle and peak memory, mean utilisation and
//! power, energy, energy per output token. Pure functions over samples loaded from gpu files
//! (any writer: only `t`, `gpu` and the columns used need to be there).
//!
//! Definitions (a window is `[start_us, end_us]`, both included):
//! - **idle memory**: per GPU, the last `mem_used_mib` at or before `start_us` (the window's
//!   first request); summed over GPUs. None when no GPU has a sample that early.
//! - **peak memory**: rows in the window grouped by timestamp (gpumon gives every GPU of a
//!   tick the same `t`), summed over GPUs, the largest sum.
//! - **mean utilisation**: mean of `util_pct` over the window's rows (every GPU and tick).
//! - **mean power**: per timestamp the sum over GPUs of `power_w`, averaged over timestamps.
//! - **energy**: per GPU over the part of the window its samples cover, the delta of the
//!   device's energy counter (linearly interpolated at the window's edges) when it has one,
//!   else the trapezoid integral of its power (linearly interpolated between samples); summed
//!   over GPUs. A counter that goes backwards (driver reload) falls back to the power integral.
//! - **energy per output token**: energy / output tokens.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow_array::RecordBatch;

use crate::io::DataError;
use crate::io::cols::{self, RowCtx};
use crate::schema::gpu::col;
use crate::schema::{Contract, GPU, META_SCHEMA};

/// The columns of one gpu row the joins use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuSample {
    pub t_us: i64,
    pub gpu: u32,
    pub mem_used_mib: Option<f64>,
    pub util_pct: Option<f64>,
    pub power_w: Option<f64>,
    pub energy_j: Option<f64>,
}

/// How a window's energy was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergySource {
    /// Every GPU's energy counter.
    Counter,
    /// Every GPU's power integral (no counter: pre-Volta, or foreign files).
    PowerIntegral,
    /// Some GPUs one way, some the other.
    Mixed,
}

/// GPU figures for one window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuWindow {
    pub mem_idle_mib: Option<f64>,
    pub mem_peak_mib: Option<f64>,
    pub util_mean_pct: Option<f64>,
    pub power_mean_w: Option<f64>,
    pub energy_j: Option<f64>,
    pub energy_source: Option<EnergySource>,
    /// Rows inside the window.
    pub samples: usize,
    /// GPUs seen inside the window.
    pub gpus: usize,
}

/// Compute a window's GPU figures (see the module docs for the definitions).
pub fn gpu_window(samples: &[GpuSample], start_us: i64, end_us: i64) -> GpuWindow {
    let mut w = GpuWindow::default();
    let inside: Vec<&GpuSample> = samples
        .iter()
        .filter(|s| s.t_us >= start_us && s.t_us <= end_us)
        .collect();
    w.samples = inside.len();
    w.gpus = inside.iter().map(|s| s.gpu).collect::<BTreeSet<_>>().len();

    // Idle: last reading at or before the start, per GPU.
    let mut idle: BTreeMap<u32, (i64, f64)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.t_us <= start_us) {
        if let Some(m) = s.mem_used_mib {
            let e = idle.entry(s.gpu).or_insert((s.t_us, m));
            if s.t_us >= e.0 {
                *e = (s.t_us, m);
            }
        }
    }
    if !idle.is_empty() {
        w.mem_idle_mib = Some(idle.values().map(|(_, m)| m).sum());
    }

    // Per-timestamp sums.
    let mut mem_at: BTreeMap<i64, f64> = BTreeMap::new();
    let mut power_at: BTreeMap<i64, f64> = BTreeMap::new();
    let mut util = (0.0, 0usize);
    for s in &inside {
        if let Some(m) = s.mem_used_mib {
            *mem_at.entry(s.t_us).or_default() += m;
        }
        if let Some(p) = s.power_w {
            *power_at.entry(s.t_us).or_default() += p;
        }
        if let Some(u) = s.util_pct {
            util.0 += u;
            util.1 += 1;
        }
    }
    w.mem_peak_mib = mem_at.values().copied().reduce(f64::max);
    if util.1 > 0 {
        w.util_mean_pct = Some(util.0 / util.1 as f64);
    }
    if !power_at.is_empty() {
        w.power_mean_w = Some(power_at.values().sum::<f64>() / power_at.len() as f64);
    }

    // Energy, per GPU.
    let mut by_gpu: BTreeMap<u32, Vec<&GpuSample>> = BTreeMap::new();
    for s in samples {
        by_gpu.entry(s.gpu).or_default().push(s);
    }
    let (mut total, mut any, mut counters, mut integrals) = (0.0, false, 0, 0);
    for (_, mut v) in by_gpu {
        v.sort_by_key(|s| s.t_us);
        let energy: Vec<(i64, f64)> = v.iter().filter_map(|s| s.energy_j.map(|e| (s.t_us, e))).collect();
        let power: Vec<(i64, f64)> = v.iter().filter_map(|s| s.power_w.map(|p| (s.t_us, p))).collect();
        if let Some(e) = counter_delta(&energy, start_us, end_us).filter(|e| *e >= 0.0) {
            total += e;
            any = true;
            counters += 1;
        } else if let Some(e) = integral(&power, start_us, end_us) {
            total += e;
            any = true;
            integrals += 1;
        }
    }
    if any {
        w.energy_j = Some(total);
        w.energy_source = Some(match (counters, integrals) {
            (_, 0) => EnergySource::Counter,
            (0, _) => EnergySource::PowerIntegral,
            _ => EnergySource::Mixed,
        });
    }
    w
}

/// Energy per output token, None without tokens or energy.
pub fn energy_per_output_token(energy_j: Option<f64>, output_tokens: u64) -> Option<f64> {
    match energy_j {
        Some(e) if output_tokens > 0 => Some(e / output_tokens as f64),
        _ => None,
    }
}

/// The part of [start, end] that points (sorted by t) cover, if it has a length.
fn covered(points: &[(i64, f64)], start: i64, end: i64) -> Option<(i64, i64)> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let a = start.max(first);
    let b = end.min(last);
    (a < b).then_some((a, b))
}

/// Value at t by linear interpolation between the points around it (t within their range).
fn interp(points: &[(i64, f64)], t: i64) -> f64 {
    let i = points.partition_point(|p| p.0 < t);
    if i < points.len() && points[i].0 == t {
        return points[i].1;
    }
    if i == 0 {
        return points[0].1;
    }
    if i >= points.len() {
        return points[points.len() - 1].1;
    }
    let (t0, v0) = points[i - 1];
    let (t1, v1) = points[i];
    v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64
}

fn counter_delta(points: &[(i64, f64)], start: i64, end: i64) -> Option<f64> {
    let (a, b) = covered(points, start, end)?;
    Some(interp(points, b) - interp(points, a))
}

/// Trapezoid integral (J from W and µs) of the piecewise-linear curve over the covered part.
fn integral(points: &[(i64, f64)], start: i64, end: i64) -> Option<f64> {
    let (a, b) = covered(points, start, end)?;
    let mut knots: Vec<(i64, f64)> = vec![(a, interp(points, a))];
    knots.extend(points.iter().copied().filter(|p| p.0 > a && p.0 < b));
    knots.push((b, interp(points, b)));
    let mut j = 0.0;
    for w in knots.windows(2) {
        j += (w[1].0 - w[0].0) as f64 * 1e-6 * (w[0].1 + w[1].1) / 2.0;
    }
    Some(j)
}

// ---------------------------------------------------------------------------------------
// Loading

/// Expand arguments (files, directories, globs) and read every file of `contract` with the
/// columns in `must`. Files named explicitly must match; files found in a directory that
/// belong to another contract (their `servebench.schema` says so, or they lack `must`) are
/// skipped, so `runs/` can hold requests, gpu and engine files side by side.
pub(crate) fn load_contract(
    args: &[String],
    contract: &Contract,
    must: &[&str],
    mut each: impl FnMut(&RecordBatch, &RowCtx) -> Result<(), DataError>,
) -> Result<usize, DataError> {
    let mut files: Vec<(String, bool)> = Vec::new();
    for a in args {
        let from_dir = Path::new(a).is_dir() || a.contains(['*', '?', '[']);
        for p in crate::io::expand_inputs(std::slice::from_ref(a))? {
            files.push((p, from_dir));
        }
    }
    let mut n = 0;
    for (path, lenient) in files {
        let input = crate::io::open(&path)?;
        let theirs = input
            .meta
            .get(META_SCHEMA)
            .map(|s| s.split('/').next().unwrap_or("").to_string());
        let missing = must.iter().find(|c| input.schema.field_with_name(c).is_err());
        if lenient && (theirs.as_deref().is_some_and(|s| s != contract.name) || missing.is_some()) {
            continue;
        }
        if let Some(c) = missing {
            return Err(DataError::MissingColumn {
                path: path.clone(),
                column: (*c).into(),
                contract: contract.name.into(),
                required: must.join(", "),
            });
        }
        cols::check_required(&path, &input.schema, contract)?;
        let mut base = 0u64;
        for b in input {
            let b = b?;
            let ctx = RowCtx {
                path: &path,
                base_row: base,
            };
            each(&b, &ctx)?;
            base += b.num_rows() as u64;
        }
        n += 1;
    }
    Ok(n)
}

/// Read gpu files (paths, directories, globs) into samples, sorted by time then GPU.
pub fn load_gpu(args: &[String]) -> Result<Vec<GpuSample>, DataError> {
    let mut out = Vec::new();
    load_contract(args, &GPU, &[col::T, col::GPU_INDEX], |b, ctx| {
        let t = cols::get(b, col::T).expect("checked");
        let g = cols::get(b, col::GPU_INDEX).expect("checked");
        let mem = cols::get(b, col::MEM_USED_MIB);
        let util = cols::get(b, col::UTIL_PCT);
        let pw = cols::get(b, col::POWER_W);
        let en = cols::get(b, col::ENERGY_J);
        let opt = |a: Option<&arrow_array::ArrayRef>, i: usize, name: &str| -> Result<Option<f64>, DataError> {
            match a {
                Some(a) => ctx.f64(a.as_ref(), i, name),
                None => Ok(None),
            }
        };
        for i in 0..b.num_rows() {
            out.push(GpuSample {
                t_us: ctx.req(cols::ts_us(t.as_ref(), i), i, col::T)?,
                gpu: ctx.req(ctx.u32(g.as_ref(), i, col::GPU_INDEX)?, i, col::GPU_INDEX)?,
                mem_used_mib: opt(mem, i, col::MEM_USED_MIB)?,
                util_pct: opt(util, i, col::UTIL_PCT)?,
                power_w: opt(pw, i, col::POWER_W)?,
                energy_j: opt(en, i, col::ENERGY_J)?,
            });
        }
        Ok(())
    })?;
    out.sort_by_key(|s| (s.t_us, s.gpu));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000; // one second in µs

    fn s(t_s: f64, gpu: u32, mem: f64, util: f64, power: f64, energy: Option<f64>) -> GpuSample {
        GpuSample {
            t_us: (t_s * S as f64) as i64,
            gpu,
            mem_used_mib: Some(mem),
            util_pct: Some(util),
            power_w: Some(power),
            energy_j: energy,
        }
    }

    /// Two GPUs sampled every second from t=0 to t=4.
    fn data() -> Vec<GpuSample> {
        vec![
            s(0.0, 0, 500.0, 0.0, 60.0, Some(1000.0)),
            s(0.0, 1, 400.0, 0.0, 50.0, Some(5000.0)),
            s(1.0, 0, 8000.0, 50.0, 200.0, Some(1130.0)),
            s(1.0, 1, 7000.0, 40.0, 150.0, Some(5100.0)),
            s(2.0, 0, 9000.0, 100.0, 300.0, Some(1380.0)),
            s(2.0, 1, 7500.0, 80.0, 250.0, Some(5300.0)),
            s(3.0, 0, 9000.0, 90.0, 280.0, Some(1670.0)),
            s(3.0, 1, 7600.0, 70.0, 230.0, Some(5540.0)),
            s(4.0, 0, 8500.0, 10.0, 100.0, Some(1860.0)),
            s(4.0, 1, 7000.0, 10.0, 90.0, Some(5700.0)),
        ]
    }

    #[test]
    fn window_figures_by_hand() {
        // Window [0.5 s, 3.0 s]: rows at t = 1, 2, 3.
        let w = gpu_window(&data(), S / 2, 3 * S);
        assert_eq!(w.samples, 6);
        assert_eq!(w.gpus, 2);
        // idle: last rows at or before 0.5 s are t=0: 500 + 400
        assert_eq!(w.mem_idle_mib, Some(900.0));
        // peak: sums 15000, 16500, 16600
        assert_eq!(w.mem_peak_mib, Some(16600.0));
        // util: (50+40+100+80+90+70)/6 = 430/6
        assert!((w.util_mean_pct.unwrap() - 430.0 / 6.0).abs() < 1e-9);
        // power: sums 350, 550, 510 -> mean 470
        assert!((w.power_mean_w.unwrap() - 470.0).abs() < 1e-9);
        // energy (counters): gpu0 E(0.5)=1065, E(3)=1670 -> 605; gpu1 E(0.5)=5050, E(3)=5540 -> 490
        assert_eq!(w.energy_source, Some(EnergySource::Counter));
        assert!((w.energy_j.unwrap() - 1095.0).abs() < 1e-9, "{:?}", w.energy_j);
        // 1095 J over 219 output tokens = 5 J/token
        assert_eq!(energy_per_output_token(w.energy_j, 219), Some(5.0));
        assert_eq!(energy_per_output_token(w.energy_j, 0), None);
        assert_eq!(energy_per_output_token(None, 10), None);
    }

    #[test]
    fn energy_from_power_when_no_counter() {
        let mut d = data();
        for x in &mut d {
            x.energy_j = None;
        }
        // gpu0 power over [0.5, 3]: P(0.5)=130; trapezoids 0.5*(130+200)/2 = 82.5,
        // (200+300)/2 = 250, (300+280)/2 = 290 -> 622.5
        // gpu1: P(0.5)=100; 0.5*(100+150)/2 = 62.5, (150+250)/2 = 200, (250+230)/2 = 240 -> 502.5
        let w = gpu_window(&d, S / 2, 3 * S);
        assert_eq!(w.energy_source, Some(EnergySource::PowerIntegral));
        assert!((w.energy_j.unwrap() - 1125.0).abs() < 1e-9, "{:?}", w.energy_j);
        // one GPU with a counter, one without: mixed, 605 + 502.5
        let mut d = data();
        for x in d.iter_mut().filter(|x| x.gpu == 1) {
            x.energy_j = None;
        }
        let w = gpu_window(&d, S / 2, 3 * S);
        assert_eq!(w.energy_source, Some(EnergySource::Mixed));
        assert!((w.energy_j.unwrap() - 1107.5).abs() < 1e-9);
    }

    #[test]
    fn counter_reset_falls_back_to_power() {
        let mut d = data();
        d[6].energy_j = Some(10.0); // gpu0 at t=3: the driver reloaded
        let w = gpu_window(&d, S / 2, 3 * S);
        // gpu0 by power (622.5) + gpu1 by counter (490)
        assert_eq!(w.energy_source, Some(EnergySource::Mixed));
        assert!((w.energy_j.unwrap() - 1112.5).abs() < 1e-9);
    }

    #[test]
    fn window_past_the_samples_and_empty_windows() {
        // [3.5 s, 10 s]: only t=4 inside; energy covers 3.5..4 only.
        let w = gpu_window(&data(), 3 * S + S / 2, 10 * S);
        assert_eq!(w.samples, 2);
        assert_eq!(w.mem_idle_mib, Some(9000.0 + 7600.0));
        assert_eq!(w.mem_peak_mib, Some(15500.0));
        // gpu0 E(3.5)=1765 -> 1860: 95; gpu1 E(3.5)=5620 -> 5700: 80
        assert!((w.energy_j.unwrap() - 175.0).abs() < 1e-9);
        // before any sample: no idle figure, nothing inside
        let w = gpu_window(&data(), -10 * S, -5 * S);
        assert_eq!(w, GpuWindow::default());
        // a single instant: figures from that tick, no energy (no duration)
        let w = gpu_window(&data(), 2 * S, 2 * S);
        assert_eq!(w.mem_peak_mib, Some(16500.0));
        assert_eq!(w.energy_j, None);
    }

    #[test]
    fn interpolation_and_integral_helpers() {
        let p = [(0, 0.0), (10, 10.0), (20, 0.0)];
        assert_eq!(interp(&p, 5), 5.0);
        assert_eq!(interp(&p, 10), 10.0);
        assert_eq!(interp(&p, 15), 5.0);
        assert_eq!(covered(&p, -5, 30), Some((0, 20)));
        assert_eq!(covered(&p, 25, 30), None);
        // triangle of height 10 W over 20 µs: 100 W·µs = 1e-4 J
        assert!((integral(&p, -5, 30).unwrap() - 1e-4).abs() < 1e-15);
    }
}
