//! Joins: GPU samples and engine metrics matched to each group by its time window.

use super::ingest::{Groups, Key};
use super::summary::window;
use crate::io::DataError;
use crate::schema::Summary;

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
/// usage, the prefix-cache hit rate and speculative decoding's acceptance.
pub fn join_monitors(
    rows: &mut [Summary],
    groups: &Groups,
    gpu: &[crate::gpu::window::GpuSample],
    eng: &[crate::enginemon::EngineRow],
) {
    for r in rows.iter_mut() {
        let k = Key::of(r);
        let Some((start, end)) = window(groups, &k) else {
            continue;
        };
        let out_tokens = groups.groups.get(&k).map(|a| a.out_tokens_ok).unwrap_or(0);
        if !gpu.is_empty() {
            let w = crate::gpu::window::gpu_window(gpu, start, end);
            r.gpu_mem_idle_mib = w.mem_idle_mib;
            r.gpu_mem_peak_mib = w.mem_peak_mib;
            r.gpu_util_mean_pct = w.util_mean_pct;
            r.power_mean_w = w.power_mean_w;
            r.energy_j = w.energy_j;
            r.energy_per_output_token_j = crate::gpu::window::energy_per_output_token(w.energy_j, out_tokens);
        }
        if !eng.is_empty() {
            let w = crate::enginemon::engine_window(eng, start, end);
            r.running_mean = w.running_mean;
            r.running_peak = w.running_peak;
            r.waiting_mean = w.waiting_mean;
            r.waiting_peak = w.waiting_peak;
            r.kv_usage_peak_pct = w.kv_usage_peak_pct;
            r.prefix_cache_hit_pct = w.prefix_cache_hit_rate.map(|x| 100.0 * x);
            r.spec_accept_pct = w.spec_accept_rate.map(|x| 100.0 * x);
            r.spec_tokens_per_step = w.spec_accept_length;
        }
    }
}
