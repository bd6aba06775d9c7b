//! The engine_metrics contract: scraped Prometheus samples, long format (enginemon -> agg).

use std::sync::Arc;

use super::Ts;

/// One row of the engine_metrics contract.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineRow {
    pub t_us: i64,
    pub metric: Arc<str>,
    pub labels: Option<Arc<str>>,
    pub value: f64,
    pub common: Option<&'static str>,
}

crate::contract! {
    /// one row per scraped Prometheus sample, long format
    pub static ENGINE_METRICS = ("engine_metrics", 1, "one row per scraped Prometheus sample, long format (enginemon -> agg, chart)");
    rows EngineRow, ctx ();
    /// Column names of the engine_metrics contract.
    names col;
    T "t": Ts, opt, "", "scrape time (midway between sending the request and the end of the response)", get(|r, _| r.t_us);
    METRIC "metric": Arc<str>, opt, "", "the engine's metric name (series name, with _bucket/_sum/_count)", field(metric);
    LABELS "labels": Option<Arc<str>>, opt, "", "labels as k=\"v\" pairs, comma separated, as exposed", field(labels);
    VALUE "value": f64, opt, "", "sample value", field(value);
    COMMON "common": Option<String>, opt, "", "common name of a well-known series: running, waiting (requests), kv_usage, prefix_cache_hit_rate (fractions 0-1), prefix_cache_hits, prefix_cache_queries, spec_drafts, spec_draft_tokens, spec_accepted_tokens (counters), spec_accept_rate (fraction 0-1), spec_accept_length (tokens per speculative step); derived rows are named servebench:<common>", get(|r, _| r.common);
}
