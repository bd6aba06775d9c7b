//! Joins: GPU samples and engine metrics matched to each group by its time window.

use super::ingest::Groups;
use super::summary::{Cell, Row, window};
use crate::io::DataError;

/// GPU samples and engine metrics loaded for [`join_monitors`].
#[derive(Debug, Default)]
pub struct Monitors {
    pub gpu: Vec<crate::gpu::window::GpuSample>,
    pub engine: Vec<crate::enginemon::EngineRow>,
}

impl Monitors {
    /// Load gpumon and enginemon files (paths, directories, globs); empty lists load nothing.
    pub fn load(gpu: &[String], engine: &[String]) -> Result<Monitors, DataError> {
        Ok(Monitors {
            gpu: if gpu.is_empty() {
                Vec::new()
            } else {
                crate::gpu::window::load_gpu(gpu)?
            },
            engine: if engine.is_empty() {
                Vec::new()
            } else {
                crate::enginemon::load_engine_metrics(engine)?
            },
        })
    }
}

/// Join GPU samples and engine metrics to each summary row by the group's time window
/// (first sent_at .. last done_at): idle and peak GPU memory, mean utilisation and power,
/// energy and energy per output token; mean and peak running and waiting requests, peak KV
/// usage and the prefix-cache hit rate.
pub fn join_monitors(
    rows: &mut [Row],
    groups: &Groups,
    gpu: &[crate::gpu::window::GpuSample],
    eng: &[crate::enginemon::EngineRow],
) {
    for r in rows.iter_mut() {
        let Some(k) = r.key.clone() else { continue };
        let Some((start, end)) = window(groups, &k) else {
            continue;
        };
        let out_tokens = groups.groups.get(&k).map(|a| a.out_tokens_ok).unwrap_or(0);
        if !gpu.is_empty() {
            let w = crate::gpu::window::gpu_window(gpu, start, end);
            r.cells.insert("gpu_mem_idle_mib", Cell::F(w.mem_idle_mib));
            r.cells.insert("gpu_mem_peak_mib", Cell::F(w.mem_peak_mib));
            r.cells.insert("gpu_util_mean_pct", Cell::F(w.util_mean_pct));
            r.cells.insert("power_mean_w", Cell::F(w.power_mean_w));
            r.cells.insert("energy_j", Cell::F(w.energy_j));
            r.cells.insert(
                "energy_per_output_token_j",
                Cell::F(crate::gpu::window::energy_per_output_token(w.energy_j, out_tokens)),
            );
        }
        if !eng.is_empty() {
            let w = crate::enginemon::engine_window(eng, start, end);
            r.cells.insert("running_mean", Cell::F(w.running_mean));
            r.cells.insert("running_peak", Cell::F(w.running_peak));
            r.cells.insert("waiting_mean", Cell::F(w.waiting_mean));
            r.cells.insert("waiting_peak", Cell::F(w.waiting_peak));
            r.cells.insert("kv_usage_peak_pct", Cell::F(w.kv_usage_peak_pct));
            r.cells.insert(
                "prefix_cache_hit_pct",
                Cell::F(w.prefix_cache_hit_rate.map(|x| 100.0 * x)),
            );
        }
    }
}
