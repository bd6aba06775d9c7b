//! Engine metrics: scrapes of an engine's Prometheus endpoint as long-format rows (the
//! engine_metrics contract), the well-known series mapped to common names, and their joins
//! with a run's time window.
//!
//! Common names (the `common` column) and the series they come from, by engine (ENGINES.md,
//! tables "Metrics", read from each engine's source; Friendli from its documentation). When
//! an engine exposes several candidates (vLLM keeps deprecated names for a while), the first
//! one present in a scrape is used, so nothing is counted twice.
//!
//! | common | unit | vLLM | SGLang | TGI | TensorRT-LLM | llama.cpp | Friendli |
//! |---|---|---|---|---|---|---|---|
//! | running | requests | `vllm:num_requests_running` | `sglang:num_running_reqs` | `tgi_batch_current_size` | `trtllm_num_requests_running` | `llamacpp:requests_processing` | `friendli_current_assigned_items` |
//! | waiting | requests | `vllm:num_requests_waiting` | `sglang:num_queue_reqs` | `tgi_queue_size` | `trtllm_num_requests_waiting` | `llamacpp:requests_deferred` | `friendli_current_waiting_items` |
//! | kv_usage | fraction 0-1 | `vllm:kv_cache_usage_perc` (`gpu_cache_usage_perc` before 0.10) | `sglang:token_usage` | derived: `tgi_batch_current_max_tokens` / `tgi_batch_max_total_tokens` | `trtllm_kv_cache_utilization` | - | - |
//! | prefix_cache_hit_rate | fraction 0-1 | derived: hits / queries | `sglang:cache_hit_rate` | - | `trtllm_kv_cache_hit_rate` | derived: hits / queries | derived: `friendli_tcache_hit_ratio` sum / count |
//! | spec_drafts, spec_draft_tokens, spec_accepted_tokens | counters | `vllm:spec_decode_num_drafts_total`, `…_num_draft_tokens_total`, `…_num_accepted_tokens_total` | - | - | - | `llamacpp:spec_decode_num_drafts_total`, `…_num_draft_tokens_total`, `…_num_accepted_tokens_total` | - |
//! | spec_accept_rate | fraction 0-1 | derived: accepted / draft tokens | `sglang:spec_accept_rate` | - | - | derived: accepted / draft tokens | - |
//! | spec_accept_length | tokens per step | derived: 1 + accepted / drafts | `sglang:spec_accept_length` | - | `trtllm_avg_decoded_tokens_per_iter` | derived: 1 + accepted / drafts | - |
//! | prefix_cache_hits, prefix_cache_queries | counters | `vllm:prefix_cache_hits_total`, `vllm:prefix_cache_queries_total` | - | - | - | `llamacpp:prompt_tokens_cached_total`, derived: cached + `llamacpp:prompt_tokens_total` | `friendli_tcache_hit_ratio_sum`, `_count` |
//!
//! Rows the engine exposes keep its name, labels and value; `common` marks the well-known
//! ones. Quantities an engine only exposes as parts (vLLM's hit rate is a ratio of two
//! counters) are added as derived rows named `servebench:<common>`, cumulative since the
//! engine started; window figures use counter deltas instead (see [`engine_window`]).
//! The `_created` series prometheus_client writes beside counters and histograms (creation
//! times, not measurements) are left out.
//!
//! This module is data only (what analysis reads); the scraper, which knows HTTP, is
//! [`crate::monitor::scrape`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::io::DataError;
use crate::io::cols;
use crate::prom::Exposition;
use crate::schema::ENGINE_METRICS;
use crate::schema::engine_metrics::col;

pub const RUNNING: &str = "running";
pub const WAITING: &str = "waiting";
pub const KV_USAGE: &str = "kv_usage";
pub const PREFIX_CACHE_HIT_RATE: &str = "prefix_cache_hit_rate";
pub const PREFIX_CACHE_HITS: &str = "prefix_cache_hits";
pub const PREFIX_CACHE_QUERIES: &str = "prefix_cache_queries";
pub const SPEC_DRAFTS: &str = "spec_drafts";
pub const SPEC_DRAFT_TOKENS: &str = "spec_draft_tokens";
pub const SPEC_ACCEPTED_TOKENS: &str = "spec_accepted_tokens";
pub const SPEC_ACCEPT_RATE: &str = "spec_accept_rate";
pub const SPEC_ACCEPT_LENGTH: &str = "spec_accept_length";

/// Prefix of rows enginemon derives itself.
pub const DERIVED_PREFIX: &str = "servebench:";

/// Series mapped to common names, in order of preference per common name.
const KNOWN: &[(&str, &str)] = &[
    (RUNNING, "vllm:num_requests_running"),
    (RUNNING, "sglang:num_running_reqs"),
    (RUNNING, "tgi_batch_current_size"),
    (RUNNING, "trtllm_num_requests_running"),
    (RUNNING, "llamacpp:requests_processing"),
    (RUNNING, "friendli_current_assigned_items"),
    (RUNNING, "lmdeploy:num_requests_running"),
    (WAITING, "vllm:num_requests_waiting"),
    (WAITING, "sglang:num_queue_reqs"),
    (WAITING, "tgi_queue_size"),
    (WAITING, "trtllm_num_requests_waiting"),
    (WAITING, "llamacpp:requests_deferred"),
    (WAITING, "friendli_current_waiting_items"),
    (WAITING, "lmdeploy:num_requests_waiting"),
    (KV_USAGE, "vllm:kv_cache_usage_perc"),
    (KV_USAGE, "vllm:gpu_cache_usage_perc"),
    (KV_USAGE, "sglang:token_usage"),
    (KV_USAGE, "trtllm_kv_cache_utilization"),
    (KV_USAGE, "lmdeploy:gpu_cache_usage_perc"),
    (PREFIX_CACHE_HIT_RATE, "sglang:cache_hit_rate"),
    (PREFIX_CACHE_HIT_RATE, "trtllm_kv_cache_hit_rate"),
    (PREFIX_CACHE_HIT_RATE, "vllm:gpu_prefix_cache_hit_rate"),
    (PREFIX_CACHE_HIT_RATE, "lmdeploy:prefix_cache_hit_rate"),
    (PREFIX_CACHE_HITS, "vllm:prefix_cache_hits_total"),
    (PREFIX_CACHE_HITS, "vllm:gpu_prefix_cache_hits_total"),
    (PREFIX_CACHE_HITS, "friendli_tcache_hit_ratio_sum"),
    (PREFIX_CACHE_HITS, "llamacpp:prompt_tokens_cached_total"),
    (PREFIX_CACHE_QUERIES, "vllm:prefix_cache_queries_total"),
    (PREFIX_CACHE_QUERIES, "vllm:gpu_prefix_cache_queries_total"),
    (PREFIX_CACHE_QUERIES, "friendli_tcache_hit_ratio_count"),
    (SPEC_DRAFTS, "vllm:spec_decode_num_drafts_total"),
    (SPEC_DRAFTS, "llamacpp:spec_decode_num_drafts_total"),
    (SPEC_DRAFT_TOKENS, "vllm:spec_decode_num_draft_tokens_total"),
    (SPEC_DRAFT_TOKENS, "llamacpp:spec_decode_num_draft_tokens_total"),
    (SPEC_ACCEPTED_TOKENS, "vllm:spec_decode_num_accepted_tokens_total"),
    (SPEC_ACCEPTED_TOKENS, "llamacpp:spec_decode_num_accepted_tokens_total"),
    (SPEC_ACCEPT_RATE, "sglang:spec_accept_rate"),
    (SPEC_ACCEPT_LENGTH, "sglang:spec_accept_length"),
    (SPEC_ACCEPT_LENGTH, "trtllm_avg_decoded_tokens_per_iter"),
];

/// Engine families recognised by their metric prefix.
const FLAVORS: &[(&str, &str)] = &[
    ("vllm:", "vllm"),
    ("sglang:", "sglang"),
    ("tgi_", "tgi"),
    ("trtllm_", "trtllm"),
    ("llamacpp:", "llamacpp"),
    ("friendli_", "friendli"),
    ("lmdeploy:", "lmdeploy"),
];

/// Which engine wrote this exposition, from its metric names.
pub fn detect_engine(e: &Exposition) -> Option<&'static str> {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for s in &e.samples {
        if let Some((_, f)) = FLAVORS.iter().find(|(p, _)| s.name.starts_with(p)) {
            *counts.entry(f).or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(f, _)| f)
}

pub use crate::schema::EngineRow;

/// The well-known values of one scrape: common name -> (series used, value over its label
/// sets: summed for counts, the largest for KV usage, the mean for hit rates; or the derived
/// value).
pub fn common_values(e: &Exposition) -> BTreeMap<&'static str, (String, f64)> {
    let mut out: BTreeMap<&'static str, (String, f64)> = BTreeMap::new();
    for (common, metric) in KNOWN {
        if out.contains_key(common) {
            continue;
        }
        // Over label sets (one per data-parallel rank): counts add up, the fullest KV cache
        // counts, hit rates are averaged.
        let vals: Vec<f64> = e.series(metric).map(|s| s.value).collect();
        if vals.is_empty() {
            continue;
        }
        let v = match *common {
            KV_USAGE => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            PREFIX_CACHE_HIT_RATE | SPEC_ACCEPT_RATE | SPEC_ACCEPT_LENGTH => {
                vals.iter().sum::<f64>() / vals.len() as f64
            }
            _ => vals.iter().sum(),
        };
        out.insert(common, (metric.to_string(), v));
    }
    if !out.contains_key(KV_USAGE)
        && let (Some(cur), Some(max)) = (
            e.sum("tgi_batch_current_max_tokens"),
            e.sum("tgi_batch_max_total_tokens"),
        )
        && max > 0.0
    {
        out.insert(KV_USAGE, (format!("{DERIVED_PREFIX}{KV_USAGE}"), cur / max));
    }
    // llama.cpp counts prompt tokens "excluding cached tokens" and the cached ones apart.
    if !out.contains_key(PREFIX_CACHE_QUERIES)
        && let Some((m, cached)) = out.get(PREFIX_CACHE_HITS)
        && m == "llamacpp:prompt_tokens_cached_total"
        && let Some(computed) = e.sum("llamacpp:prompt_tokens_total")
    {
        let q = cached + computed;
        out.insert(
            PREFIX_CACHE_QUERIES,
            (format!("{DERIVED_PREFIX}{PREFIX_CACHE_QUERIES}"), q),
        );
    }
    if !out.contains_key(PREFIX_CACHE_HIT_RATE)
        && let (Some((_, hits)), Some((_, queries))) = (out.get(PREFIX_CACHE_HITS), out.get(PREFIX_CACHE_QUERIES))
        && *queries > 0.0
    {
        let r = hits / queries;
        out.insert(
            PREFIX_CACHE_HIT_RATE,
            (format!("{DERIVED_PREFIX}{PREFIX_CACHE_HIT_RATE}"), r),
        );
    }
    // Speculative decoding from its counters (since the engine started; windows use deltas).
    if let (Some((_, drafts)), Some((_, drafted)), Some((_, accepted))) = (
        out.get(SPEC_DRAFTS).cloned(),
        out.get(SPEC_DRAFT_TOKENS).cloned(),
        out.get(SPEC_ACCEPTED_TOKENS).cloned(),
    ) {
        if !out.contains_key(SPEC_ACCEPT_RATE) && drafted > 0.0 {
            let r = accepted / drafted;
            out.insert(SPEC_ACCEPT_RATE, (format!("{DERIVED_PREFIX}{SPEC_ACCEPT_RATE}"), r));
        }
        if !out.contains_key(SPEC_ACCEPT_LENGTH) && drafts > 0.0 {
            let l = 1.0 + accepted / drafts;
            out.insert(SPEC_ACCEPT_LENGTH, (format!("{DERIVED_PREFIX}{SPEC_ACCEPT_LENGTH}"), l));
        }
    }
    out
}

/// Which rows to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowFilter {
    /// Only the rows with a common name (and the derived ones).
    pub common_only: bool,
}

/// The rows of one scrape taken at `t_us`.
pub fn rows_from_scrape(t_us: i64, e: &Exposition, filter: RowFilter) -> Vec<EngineRow> {
    let commons = common_values(e);
    let by_metric: BTreeMap<&str, &'static str> = commons.iter().map(|(c, (m, _))| (m.as_str(), *c)).collect();
    let mut names: BTreeMap<&str, Arc<str>> = BTreeMap::new();
    let mut out = Vec::with_capacity(e.samples.len() + 2);
    for s in &e.samples {
        let common = by_metric.get(s.name.as_str()).copied();
        if filter.common_only && common.is_none() {
            continue;
        }
        if e.is_created_series(&s.name) {
            continue;
        }
        let metric = names
            .entry(s.name.as_str())
            .or_insert_with(|| Arc::from(s.name.as_str()))
            .clone();
        out.push(EngineRow {
            t_us,
            metric,
            labels: s.labels_text().map(Arc::from),
            value: s.value,
            common,
        });
    }
    for (c, (m, v)) in &commons {
        if m.starts_with(DERIVED_PREFIX) {
            out.push(EngineRow {
                t_us,
                metric: Arc::from(m.as_str()),
                labels: None,
                value: *v,
                common: Some(c),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Joins

/// Engine figures for one window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineWindow {
    pub running_mean: Option<f64>,
    pub running_peak: Option<f64>,
    pub waiting_mean: Option<f64>,
    pub waiting_peak: Option<f64>,
    /// Peak KV-cache usage in percent (0-100).
    pub kv_usage_peak_pct: Option<f64>,
    /// Prefix-cache hit rate over the window (0-1).
    pub prefix_cache_hit_rate: Option<f64>,
    /// Speculative decoding over the window: accepted / drafted tokens (0-1), and mean tokens
    /// per verifying step (1 + accepted / drafts).
    pub spec_accept_rate: Option<f64>,
    pub spec_accept_length: Option<f64>,
    /// Scrapes inside the window.
    pub scrapes: usize,
}

/// Compute a window's engine figures from rows loaded from engine_metrics files.
///
/// A window is `[start_us, end_us]`, both included. Per scrape (rows sharing `t`), running
/// and waiting are the sums of their rows (data-parallel engines expose one series per rank);
/// mean and peak are over the scrapes in the window that have them. KV usage is the largest
/// value in the window, in percent. The prefix-cache hit rate is Δhits / Δqueries between the
/// last scrape at or before the start (else the first in the window) and the last scrape in
/// the window, where the engine has those counters; else the mean of its hit-rate gauge over
/// the window. Speculative decoding likewise: the acceptance rate is Δaccepted / Δdrafted
/// tokens and the accept length 1 + Δaccepted / Δdrafts from the counters, else the means of
/// the engine's gauges (SGLang, TensorRT-LLM).
pub fn engine_window(rows: &[EngineRow], start_us: i64, end_us: i64) -> EngineWindow {
    let mut w = EngineWindow::default();
    let mut per: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut scrapes = BTreeSet::new();
    let mut gauge_hit = (0.0, 0usize);
    let mut gauge_spec: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for r in rows {
        let inside = r.t_us >= start_us && r.t_us <= end_us;
        if inside {
            scrapes.insert(r.t_us);
        }
        let Some(c) = r.common else { continue };
        if !r.value.is_finite() {
            continue;
        }
        match c {
            SPEC_ACCEPT_RATE | SPEC_ACCEPT_LENGTH => {
                if inside && !r.metric.starts_with(DERIVED_PREFIX) {
                    let g = gauge_spec.entry(c).or_default();
                    g.0 += r.value;
                    g.1 += 1;
                }
            }
            PREFIX_CACHE_HITS | PREFIX_CACHE_QUERIES | SPEC_DRAFTS | SPEC_DRAFT_TOKENS | SPEC_ACCEPTED_TOKENS => {
                if r.t_us <= end_us {
                    *per.entry(c).or_default().entry(r.t_us).or_default() += r.value;
                }
            }
            PREFIX_CACHE_HIT_RATE => {
                if inside && !r.metric.starts_with(DERIVED_PREFIX) {
                    gauge_hit.0 += r.value;
                    gauge_hit.1 += 1;
                }
            }
            _ => {
                if inside {
                    *per.entry(c).or_default().entry(r.t_us).or_default() += r.value;
                }
            }
        }
    }
    w.scrapes = scrapes.len();
    let mean_peak = |m: Option<&BTreeMap<i64, f64>>| -> (Option<f64>, Option<f64>) {
        match m {
            Some(m) if !m.is_empty() => (
                Some(m.values().sum::<f64>() / m.len() as f64),
                m.values().copied().reduce(f64::max),
            ),
            _ => (None, None),
        }
    };
    (w.running_mean, w.running_peak) = mean_peak(per.get(RUNNING));
    (w.waiting_mean, w.waiting_peak) = mean_peak(per.get(WAITING));
    // Several KV series at one scrape (one per rank): the fullest one counts.
    w.kv_usage_peak_pct = rows
        .iter()
        .filter(|r| r.common == Some(KV_USAGE) && r.t_us >= start_us && r.t_us <= end_us && r.value.is_finite())
        .map(|r| r.value * 100.0)
        .reduce(f64::max);
    w.prefix_cache_hit_rate = counter_ratio(per.get(PREFIX_CACHE_HITS), per.get(PREFIX_CACHE_QUERIES), start_us)
        .or_else(|| (gauge_hit.1 > 0).then(|| gauge_hit.0 / gauge_hit.1 as f64));
    let gauge_mean = |c: &str| gauge_spec.get(c).filter(|g| g.1 > 0).map(|g| g.0 / g.1 as f64);
    let accepted = per.get(SPEC_ACCEPTED_TOKENS);
    w.spec_accept_rate =
        counter_ratio(accepted, per.get(SPEC_DRAFT_TOKENS), start_us).or_else(|| gauge_mean(SPEC_ACCEPT_RATE));
    w.spec_accept_length = counter_ratio(accepted, per.get(SPEC_DRAFTS), start_us)
        .map(|r| 1.0 + r)
        .or_else(|| gauge_mean(SPEC_ACCEPT_LENGTH));
    w
}

fn counter_ratio(
    hits: Option<&BTreeMap<i64, f64>>,
    queries: Option<&BTreeMap<i64, f64>>,
    start_us: i64,
) -> Option<f64> {
    let (h, q) = (hits?, queries?);
    // Scrapes with both counters.
    let both: Vec<(i64, f64, f64)> = h
        .iter()
        .filter_map(|(t, hv)| q.get(t).map(|qv| (*t, *hv, *qv)))
        .collect();
    let before = both.iter().rev().find(|x| x.0 <= start_us);
    let first_in = both.iter().find(|x| x.0 >= start_us);
    let from = before.or(first_in)?;
    let to = both.last()?;
    if to.0 <= from.0 {
        return None;
    }
    let (dh, dq) = (to.1 - from.1, to.2 - from.2);
    // A counter that went backwards means the engine restarted: take its value since then.
    let (dh, dq) = if dh < 0.0 || dq < 0.0 { (to.1, to.2) } else { (dh, dq) };
    (dq > 0.0).then(|| dh / dq)
}

/// Read engine_metrics files (paths, directories, globs) into rows, sorted by time.
pub fn load_engine_metrics(args: &[String]) -> Result<Vec<EngineRow>, DataError> {
    let mut out = Vec::new();
    let mut names: BTreeMap<String, Arc<str>> = BTreeMap::new();
    crate::gpu::window::load_contract(args, &ENGINE_METRICS, &[col::T, col::METRIC, col::VALUE], |b, ctx| {
        let t = cols::get(b, col::T).expect("checked");
        let m = cols::get(b, col::METRIC).expect("checked");
        let v = cols::get(b, col::VALUE).expect("checked");
        let l = cols::get(b, col::LABELS);
        let c = cols::get(b, col::COMMON);
        for i in 0..b.num_rows() {
            let metric = ctx.req(cols::str_at(m.as_ref(), i), i, col::METRIC)?;
            let metric = names
                .entry(metric.to_string())
                .or_insert_with(|| Arc::from(metric))
                .clone();
            out.push(EngineRow {
                t_us: ctx.req(cols::ts_us(t.as_ref(), i), i, col::T)?,
                metric,
                labels: l.and_then(|l| cols::str_at(l.as_ref(), i)).map(Arc::from),
                value: ctx.req(cols::f64_at(v.as_ref(), i), i, col::VALUE)?,
                common: c.and_then(|c| cols::str_at(c.as_ref(), i)).and_then(common_name),
            });
        }
        Ok(())
    })?;
    out.sort_by_key(|r| r.t_us);
    Ok(out)
}

/// The static name of a common quantity.
pub fn common_name(s: &str) -> Option<&'static str> {
    [
        RUNNING,
        WAITING,
        KV_USAGE,
        PREFIX_CACHE_HIT_RATE,
        PREFIX_CACHE_HITS,
        PREFIX_CACHE_QUERIES,
        SPEC_DRAFTS,
        SPEC_DRAFT_TOKENS,
        SPEC_ACCEPTED_TOKENS,
        SPEC_ACCEPT_RATE,
        SPEC_ACCEPT_LENGTH,
    ]
    .into_iter()
    .find(|c| *c == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_s: f64, metric: &str, labels: Option<&str>, value: f64, common: Option<&'static str>) -> EngineRow {
        EngineRow {
            t_us: (t_s * 1e6) as i64,
            metric: Arc::from(metric),
            labels: labels.map(Arc::from),
            value,
            common,
        }
    }

    #[test]
    fn vllm_scrape_rows_and_derived_hit_rate() {
        let e = crate::prom::parse(
            "# TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n\
             vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 2.0\n\
             # TYPE vllm:kv_cache_usage_perc gauge\n\
             vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n\
             # TYPE vllm:gpu_cache_usage_perc gauge\n\
             vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n\
             # TYPE vllm:prefix_cache_queries counter\n\
             vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 400.0\n\
             # TYPE vllm:prefix_cache_queries_created gauge\n\
             vllm:prefix_cache_queries_created{engine=\"0\",model_name=\"m\"} 1.7e9\n\
             # TYPE vllm:prefix_cache_hits counter\n\
             vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 100.0\n",
        );
        assert_eq!(detect_engine(&e), Some("vllm"));
        let c = common_values(&e);
        assert_eq!(c[RUNNING], ("vllm:num_requests_running".to_string(), 5.0));
        assert_eq!(c[KV_USAGE].0, "vllm:kv_cache_usage_perc");
        assert_eq!(
            c[PREFIX_CACHE_HIT_RATE],
            ("servebench:prefix_cache_hit_rate".to_string(), 0.25)
        );
        let rows = rows_from_scrape(7, &e, RowFilter::default());
        // the _created gauge is dropped; the derived hit rate is added
        assert_eq!(rows.len(), 7);
        assert!(rows.iter().all(|r| r.t_us == 7));
        assert_eq!(rows[0].labels.as_deref(), Some("engine=\"0\",model_name=\"m\""));
        assert_eq!(rows[0].common, Some(RUNNING));
        // the deprecated duplicate is kept as a row but not counted as kv_usage
        let dup = rows.iter().find(|r| &*r.metric == "vllm:gpu_cache_usage_perc").unwrap();
        assert_eq!(dup.common, None);
        let last = rows.last().unwrap();
        assert_eq!(
            (&*last.metric, last.value, last.common),
            ("servebench:prefix_cache_hit_rate", 0.25, Some(PREFIX_CACHE_HIT_RATE))
        );
        let only = rows_from_scrape(7, &e, RowFilter { common_only: true });
        assert_eq!(only.len(), 6);
    }

    /// vLLM's spec_decode counters: derived rows per scrape, counter deltas per window;
    /// SGLang's and TensorRT-LLM's gauges averaged over the window.
    #[test]
    fn speculative_decoding_from_counters_and_gauges() {
        let scrape = |drafts: f64, drafted: f64, accepted: f64| {
            crate::prom::parse(&format!(
                "# TYPE vllm:spec_decode_num_drafts counter\n\
                 vllm:spec_decode_num_drafts_total{{engine=\"0\"}} {drafts}\n\
                 # TYPE vllm:spec_decode_num_draft_tokens counter\n\
                 vllm:spec_decode_num_draft_tokens_total{{engine=\"0\"}} {drafted}\n\
                 # TYPE vllm:spec_decode_num_accepted_tokens counter\n\
                 vllm:spec_decode_num_accepted_tokens_total{{engine=\"0\"}} {accepted}\n\
                 vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine=\"0\",position=\"0\"}} 1\n"
            ))
        };
        let c = common_values(&scrape(10.0, 30.0, 12.0));
        assert_eq!(c[SPEC_ACCEPT_RATE], ("servebench:spec_accept_rate".to_string(), 0.4));
        assert_eq!(c[SPEC_ACCEPT_LENGTH].1, 2.2);
        assert!(!common_values(&scrape(0.0, 0.0, 0.0)).contains_key(SPEC_ACCEPT_RATE));
        let mut rows = rows_from_scrape(1_000_000, &scrape(10.0, 30.0, 12.0), RowFilter::default());
        rows.extend(rows_from_scrape(
            2_000_000,
            &scrape(110.0, 330.0, 192.0),
            RowFilter::default(),
        ));
        rows.extend(rows_from_scrape(
            3_000_000,
            &scrape(210.0, 630.0, 432.0),
            RowFilter::default(),
        ));
        // from t=1 s (before the start) to t=2 s: 180 of 300 drafted over 100 steps
        let w = engine_window(&rows, 1_500_000, 2_500_000);
        assert!((w.spec_accept_rate.unwrap() - 0.6).abs() < 1e-12, "{w:?}");
        assert!((w.spec_accept_length.unwrap() - 2.8).abs() < 1e-12, "{w:?}");
        // the whole run: 420 of 600 over 200 steps (the cumulative derived rows are not used)
        let w = engine_window(&rows, 1_000_000, 3_000_000);
        assert!((w.spec_accept_rate.unwrap() - 0.7).abs() < 1e-12, "{w:?}");
        assert_eq!(engine_window(&data(), 0, 5_000_000).spec_accept_rate, None);
        let g = |t: f64, m: &str, v: f64, c| row(t, m, None, v, Some(c));
        let rows = vec![
            g(1.0, "sglang:spec_accept_rate", 0.5, SPEC_ACCEPT_RATE),
            g(2.0, "sglang:spec_accept_rate", 0.7, SPEC_ACCEPT_RATE),
            g(1.0, "sglang:spec_accept_length", 2.0, SPEC_ACCEPT_LENGTH),
            g(2.0, "sglang:spec_accept_length", 3.0, SPEC_ACCEPT_LENGTH),
            g(9.0, "sglang:spec_accept_length", 9.0, SPEC_ACCEPT_LENGTH),
        ];
        let w = engine_window(&rows, 0, 5_000_000);
        assert!((w.spec_accept_rate.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(w.spec_accept_length, Some(2.5));
        let t = crate::prom::parse("trtllm_avg_decoded_tokens_per_iter{model_name=\"m\"} 2.5\n");
        assert_eq!(common_values(&t)[SPEC_ACCEPT_LENGTH].1, 2.5);
    }

    #[test]
    fn tgi_kv_proxy_is_derived() {
        let e = crate::prom::parse(
            "# TYPE tgi_batch_current_max_tokens gauge\ntgi_batch_current_max_tokens 3000\n\
             # TYPE tgi_batch_max_total_tokens gauge\ntgi_batch_max_total_tokens 12000\n\
             tgi_queue_size 4\n",
        );
        let c = common_values(&e);
        assert_eq!(c[KV_USAGE], ("servebench:kv_usage".to_string(), 0.25));
        assert_eq!(c[WAITING].1, 4.0);
        assert_eq!(detect_engine(&e), Some("tgi"));
    }

    /// Scrapes every second from t=0 to t=4; two ranks of running requests.
    fn data() -> Vec<EngineRow> {
        let mut v = Vec::new();
        let running = [[0.0, 0.0], [2.0, 1.0], [4.0, 4.0], [3.0, 2.0], [0.0, 0.0]];
        let waiting = [0.0, 0.0, 5.0, 1.0, 0.0];
        let kv = [0.0, 0.1, 0.42, 0.3, 0.0];
        let hits = [0.0, 0.0, 300.0, 500.0, 500.0];
        let queries = [100.0, 200.0, 800.0, 1200.0, 1300.0];
        for k in 0..5 {
            let t = k as f64;
            for (rank, r) in running[k].iter().enumerate() {
                v.push(row(
                    t,
                    "vllm:num_requests_running",
                    Some(&format!("engine=\"{rank}\"")),
                    *r,
                    Some(RUNNING),
                ));
            }
            v.push(row(t, "vllm:num_requests_waiting", None, waiting[k], Some(WAITING)));
            v.push(row(t, "vllm:kv_cache_usage_perc", None, kv[k], Some(KV_USAGE)));
            v.push(row(
                t,
                "vllm:prefix_cache_hits_total",
                None,
                hits[k],
                Some(PREFIX_CACHE_HITS),
            ));
            v.push(row(
                t,
                "vllm:prefix_cache_queries_total",
                None,
                queries[k],
                Some(PREFIX_CACHE_QUERIES),
            ));
            v.push(row(t, "vllm:generation_tokens_total", None, 10.0 * t, None));
        }
        v
    }

    #[test]
    fn window_figures_by_hand() {
        // [0.5 s, 3.0 s]: scrapes at 1, 2, 3.
        let w = engine_window(&data(), 500_000, 3_000_000);
        assert_eq!(w.scrapes, 3);
        // running per scrape: 3, 8, 5 -> mean 16/3, peak 8
        assert!((w.running_mean.unwrap() - 16.0 / 3.0).abs() < 1e-12);
        assert_eq!(w.running_peak, Some(8.0));
        // waiting: 0, 5, 1 -> mean 2, peak 5
        assert_eq!(w.waiting_mean, Some(2.0));
        assert_eq!(w.waiting_peak, Some(5.0));
        assert!((w.kv_usage_peak_pct.unwrap() - 42.0).abs() < 1e-9);
        // counters from t=0 (last scrape before the start) to t=3: 500 / 1100
        assert!((w.prefix_cache_hit_rate.unwrap() - 500.0 / 1100.0).abs() < 1e-12);
    }

    #[test]
    fn hit_rate_from_a_gauge_and_resets() {
        let rows = vec![
            row(1.0, "sglang:cache_hit_rate", None, 0.5, Some(PREFIX_CACHE_HIT_RATE)),
            row(2.0, "sglang:cache_hit_rate", None, 0.7, Some(PREFIX_CACHE_HIT_RATE)),
            row(
                2.0,
                "servebench:prefix_cache_hit_rate",
                None,
                0.0,
                Some(PREFIX_CACHE_HIT_RATE),
            ),
        ];
        let w = engine_window(&rows, 0, 5_000_000);
        assert!((w.prefix_cache_hit_rate.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(w.running_mean, None);
        // counters that went backwards (engine restart): the values since the restart
        let rows = vec![
            row(1.0, "h", None, 900.0, Some(PREFIX_CACHE_HITS)),
            row(1.0, "q", None, 1000.0, Some(PREFIX_CACHE_QUERIES)),
            row(2.0, "h", None, 10.0, Some(PREFIX_CACHE_HITS)),
            row(2.0, "q", None, 40.0, Some(PREFIX_CACHE_QUERIES)),
        ];
        let w = engine_window(&rows, 0, 5_000_000);
        assert_eq!(w.prefix_cache_hit_rate, Some(0.25));
        // nothing in the window
        assert_eq!(engine_window(&data(), 10_000_000, 11_000_000).scrapes, 0);
    }
}
