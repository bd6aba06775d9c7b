//! The summary contract: one row per group (agg -> chart, report), a typed struct with one
//! statistics block per latency metric.

use super::Status;

/// The latency metrics that summary reports statistics for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Ttft,
    Tpot,
    Itl,
    E2e,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Ttft, Metric::Tpot, Metric::Itl, Metric::E2e];

    /// The metric's name as column prefixes use it (`ttft`, `tpot`, `itl`, `e2e`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::E2e => "e2e",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The summary column holding statistic `s` of this metric.
    pub fn column(self, s: Stat) -> &'static str {
        match (self, s) {
            (Metric::Ttft, Stat::Mean) => col::TTFT_MEAN_MS,
            (Metric::Ttft, Stat::P50) => col::TTFT_P50_MS,
            (Metric::Ttft, Stat::P90) => col::TTFT_P90_MS,
            (Metric::Ttft, Stat::P95) => col::TTFT_P95_MS,
            (Metric::Ttft, Stat::P99) => col::TTFT_P99_MS,
            (Metric::Ttft, Stat::P999) => col::TTFT_P999_MS,
            (Metric::Ttft, Stat::Max) => col::TTFT_MAX_MS,
            (Metric::Ttft, Stat::P50CiLo) => col::TTFT_P50_CI_LO_MS,
            (Metric::Ttft, Stat::P50CiHi) => col::TTFT_P50_CI_HI_MS,
            (Metric::Ttft, Stat::P99CiLo) => col::TTFT_P99_CI_LO_MS,
            (Metric::Ttft, Stat::P99CiHi) => col::TTFT_P99_CI_HI_MS,
            (Metric::Tpot, Stat::Mean) => col::TPOT_MEAN_MS,
            (Metric::Tpot, Stat::P50) => col::TPOT_P50_MS,
            (Metric::Tpot, Stat::P90) => col::TPOT_P90_MS,
            (Metric::Tpot, Stat::P95) => col::TPOT_P95_MS,
            (Metric::Tpot, Stat::P99) => col::TPOT_P99_MS,
            (Metric::Tpot, Stat::P999) => col::TPOT_P999_MS,
            (Metric::Tpot, Stat::Max) => col::TPOT_MAX_MS,
            (Metric::Tpot, Stat::P50CiLo) => col::TPOT_P50_CI_LO_MS,
            (Metric::Tpot, Stat::P50CiHi) => col::TPOT_P50_CI_HI_MS,
            (Metric::Tpot, Stat::P99CiLo) => col::TPOT_P99_CI_LO_MS,
            (Metric::Tpot, Stat::P99CiHi) => col::TPOT_P99_CI_HI_MS,
            (Metric::Itl, Stat::Mean) => col::ITL_MEAN_MS,
            (Metric::Itl, Stat::P50) => col::ITL_P50_MS,
            (Metric::Itl, Stat::P90) => col::ITL_P90_MS,
            (Metric::Itl, Stat::P95) => col::ITL_P95_MS,
            (Metric::Itl, Stat::P99) => col::ITL_P99_MS,
            (Metric::Itl, Stat::P999) => col::ITL_P999_MS,
            (Metric::Itl, Stat::Max) => col::ITL_MAX_MS,
            (Metric::Itl, Stat::P50CiLo) => col::ITL_P50_CI_LO_MS,
            (Metric::Itl, Stat::P50CiHi) => col::ITL_P50_CI_HI_MS,
            (Metric::Itl, Stat::P99CiLo) => col::ITL_P99_CI_LO_MS,
            (Metric::Itl, Stat::P99CiHi) => col::ITL_P99_CI_HI_MS,
            (Metric::E2e, Stat::Mean) => col::E2E_MEAN_MS,
            (Metric::E2e, Stat::P50) => col::E2E_P50_MS,
            (Metric::E2e, Stat::P90) => col::E2E_P90_MS,
            (Metric::E2e, Stat::P95) => col::E2E_P95_MS,
            (Metric::E2e, Stat::P99) => col::E2E_P99_MS,
            (Metric::E2e, Stat::P999) => col::E2E_P999_MS,
            (Metric::E2e, Stat::Max) => col::E2E_MAX_MS,
            (Metric::E2e, Stat::P50CiLo) => col::E2E_P50_CI_LO_MS,
            (Metric::E2e, Stat::P50CiHi) => col::E2E_P50_CI_HI_MS,
            (Metric::E2e, Stat::P99CiLo) => col::E2E_P99_CI_LO_MS,
            (Metric::E2e, Stat::P99CiHi) => col::E2E_P99_CI_HI_MS,
        }
    }
}

/// The statistics reported per latency metric, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    P50CiLo,
    P50CiHi,
    P99CiLo,
    P99CiHi,
}

impl Stat {
    pub const ALL: [Stat; 11] = [
        Stat::Mean,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::P999,
        Stat::Max,
        Stat::P50CiLo,
        Stat::P50CiHi,
        Stat::P99CiLo,
        Stat::P99CiHi,
    ];
}

/// The statistics of one latency metric in one group (ms); None where there were no samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyStats {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub p50_ci_lo: Option<f64>,
    pub p50_ci_hi: Option<f64>,
    pub p99_ci_lo: Option<f64>,
    pub p99_ci_hi: Option<f64>,
}

impl LatencyStats {
    pub fn get(&self, s: Stat) -> Option<f64> {
        match s {
            Stat::Mean => self.mean,
            Stat::P50 => self.p50,
            Stat::P90 => self.p90,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
            Stat::P999 => self.p999,
            Stat::Max => self.max,
            Stat::P50CiLo => self.p50_ci_lo,
            Stat::P50CiHi => self.p50_ci_hi,
            Stat::P99CiLo => self.p99_ci_lo,
            Stat::P99CiHi => self.p99_ci_hi,
        }
    }
}

/// Requests of a group by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub ok: u64,
    pub http_error: u64,
    pub timeout: u64,
    pub connect_error: u64,
    pub stream_error: u64,
    pub cancelled: u64,
    pub not_sent: u64,
}

impl StatusCounts {
    pub fn get(&self, s: Status) -> u64 {
        *self.slot(s)
    }

    pub fn add(&mut self, s: Status, n: u64) {
        *self.slot_mut(s) += n;
    }

    fn slot(&self, s: Status) -> &u64 {
        match s {
            Status::Ok => &self.ok,
            Status::HttpError => &self.http_error,
            Status::Timeout => &self.timeout,
            Status::ConnectError => &self.connect_error,
            Status::StreamError => &self.stream_error,
            Status::Cancelled => &self.cancelled,
            Status::NotSent => &self.not_sent,
        }
    }

    fn slot_mut(&mut self, s: Status) -> &mut u64 {
        match s {
            Status::Ok => &mut self.ok,
            Status::HttpError => &mut self.http_error,
            Status::Timeout => &mut self.timeout,
            Status::ConnectError => &mut self.connect_error,
            Status::StreamError => &mut self.stream_error,
            Status::Cancelled => &mut self.cancelled,
            Status::NotSent => &mut self.not_sent,
        }
    }
}

/// One summary row: a group's keys, counts, throughputs, latency statistics and the GPU and
/// engine figures joined from its run's window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub label: String,
    pub engine: Option<String>,
    pub model: Option<String>,
    pub quant: Option<String>,
    pub concurrency: Option<u32>,
    pub rate_rps: Option<f64>,
    pub category: Option<String>,
    pub turn: Option<u32>,
    pub group_by: String,
    pub n_requests: u64,
    pub n: StatusCounts,
    pub error_rate: f64,
    /// Cancelled rows whose user gave up on purpose (replay --cancel).
    pub n_gave_up: u64,
    pub duration_s: Option<f64>,
    pub req_per_s: Option<f64>,
    pub output_tok_per_s: Option<f64>,
    pub output_tok_per_s_ci_lo: Option<f64>,
    pub output_tok_per_s_ci_hi: Option<f64>,
    pub total_tok_per_s: Option<f64>,
    pub goodput_req_per_s: Option<f64>,
    pub slo_ttft_pct: Option<f64>,
    pub slo_tpot_pct: Option<f64>,
    pub slo_e2e_pct: Option<f64>,
    pub mean_output_tokens: Option<f64>,
    pub ttft: LatencyStats,
    pub tpot: LatencyStats,
    pub itl: LatencyStats,
    /// Tokens per event and per-token ITL (`analysis::events`); None without token counts.
    pub tokens_per_event_mean: Option<f64>,
    pub tokens_per_event_p50: Option<f64>,
    pub tokens_per_event_p90: Option<f64>,
    pub tokens_per_event_max: Option<f64>,
    pub multi_token_event_pct: Option<f64>,
    pub itl_token_mean_ms: Option<f64>,
    pub itl_token_p50_ms: Option<f64>,
    pub itl_token_p90_ms: Option<f64>,
    pub itl_token_p99_ms: Option<f64>,
    pub itl_event_mean_ms: Option<f64>,
    pub itl_event_p50_ms: Option<f64>,
    pub itl_event_p99_ms: Option<f64>,
    pub e2e: LatencyStats,
    pub interactivity_tok_s: Option<f64>,
    pub sched_lag_p50_ms: Option<f64>,
    pub sched_lag_p99_ms: Option<f64>,
    pub ttft_sched_p99_ms: Option<f64>,
    pub ttfa_mean_ms: Option<f64>,
    pub ttfa_p50_ms: Option<f64>,
    pub ttfa_p90_ms: Option<f64>,
    pub ttfa_p99_ms: Option<f64>,
    pub n_reasoning: u64,
    pub n_unanswered: u64,
    pub reasoning_tokens_mean: Option<f64>,
    pub reasoning_token_pct: Option<f64>,
    pub in_flight_mean: Option<f64>,
    pub concurrency_pct: Option<f64>,
    pub achieved_rate_rps: Option<f64>,
    pub target_rate_rps: Option<f64>,
    pub rate_pct: Option<f64>,
    pub load_pct: Option<f64>,
    pub client_bound: Option<bool>,
    pub conn_fresh_pct: Option<f64>,
    pub conn_setup_mean_ms: Option<f64>,
    pub gpu_mem_idle_mib: Option<f64>,
    pub gpu_mem_peak_mib: Option<f64>,
    pub gpu_util_mean_pct: Option<f64>,
    pub power_mean_w: Option<f64>,
    pub energy_j: Option<f64>,
    pub energy_per_output_token_j: Option<f64>,
    pub running_mean: Option<f64>,
    pub running_peak: Option<f64>,
    pub waiting_mean: Option<f64>,
    pub waiting_peak: Option<f64>,
    /// The engine's speculative decoding over the group (enginemon).
    pub spec_accept_pct: Option<f64>,
    pub spec_tokens_per_step: Option<f64>,
    pub kv_usage_peak_pct: Option<f64>,
    pub usage_cache_hit_pct: Option<f64>,
    pub prefix_cache_hit_pct: Option<f64>,
}

impl Summary {
    pub fn latency(&self, m: Metric) -> &LatencyStats {
        match m {
            Metric::Ttft => &self.ttft,
            Metric::Tpot => &self.tpot,
            Metric::Itl => &self.itl,
            Metric::E2e => &self.e2e,
        }
    }

    pub fn latency_mut(&mut self, m: Metric) -> &mut LatencyStats {
        match m {
            Metric::Ttft => &mut self.ttft,
            Metric::Tpot => &mut self.tpot,
            Metric::Itl => &mut self.itl,
            Metric::E2e => &mut self.e2e,
        }
    }
}

crate::contract! {
    /// one row per group
    pub static SUMMARY = ("summary", 1, "one row per group (label, engine, model, quant, concurrency or rate, and --by columns) (agg -> chart, report)");
    rows Summary, ctx (), decode;
    /// Column names of the summary contract.
    names col;
    LABEL "label": String, opt, "", "run label", field(label);
    ENGINE "engine": Option<String>, opt, "", "engine", field(engine);
    MODEL "model": Option<String>, opt, "", "model", field(model);
    QUANT "quant": Option<String>, opt, "", "quantization variant", field(quant);
    CONCURRENCY "concurrency": Option<u32>, opt, "users", "closed-loop users", field(concurrency);
    RATE_RPS "rate_rps": Option<f64>, opt, "req/s", "open-loop target rate", field(rate_rps);
    CATEGORY "category": Option<String>, opt, "", "prompt category (when grouped by it)", field(category);
    TURN "turn": Option<u32>, opt, "", "session turn (when grouped by it)", field(turn);
    GROUP_BY "group_by": String, opt, "", "the grouping columns, comma separated", field(group_by);
    N_REQUESTS "n_requests": u64, opt, "", "rows in the group (warm-up rows excluded unless --include-warmup)", field(n_requests);
    N_OK "n_ok": u64, opt, "", "status ok", field(n.ok);
    N_HTTP_ERROR "n_http_error": u64, opt, "", "status http_error", field(n.http_error);
    N_TIMEOUT "n_timeout": u64, opt, "", "status timeout", field(n.timeout);
    N_CONNECT_ERROR "n_connect_error": u64, opt, "", "status connect_error", field(n.connect_error);
    N_STREAM_ERROR "n_stream_error": u64, opt, "", "status stream_error", field(n.stream_error);
    N_CANCELLED "n_cancelled": u64, opt, "", "status cancelled", field(n.cancelled);
    N_NOT_SENT "n_not_sent": u64, opt, "", "status not_sent", field(n.not_sent);
    N_GAVE_UP "n_gave_up": u64, opt, "", "of n_cancelled, the requests whose user gave up on purpose (replay --cancel: cancel_after_ms set); neither successes nor errors", field(n_gave_up);
    ERROR_RATE "error_rate": f64, opt, "", "share of sent requests that did not end ok (0-1), users who gave up (n_gave_up) left out", field(error_rate);
    DURATION_S "duration_s": Option<f64>, opt, "s", "first sent_at to last done_at of the group", field(duration_s);
    REQ_PER_S "req_per_s": Option<f64>, opt, "req/s", "ok requests / duration", field(req_per_s);
    OUTPUT_TOK_PER_S "output_tok_per_s": Option<f64>, opt, "tokens/s", "output tokens of ok requests / duration", field(output_tok_per_s);
    OUTPUT_TOK_PER_S_CI_LO "output_tok_per_s_ci_lo": Option<f64>, opt, "tokens/s", "95% CI of output throughput, low (batch means over time windows)", field(output_tok_per_s_ci_lo);
    OUTPUT_TOK_PER_S_CI_HI "output_tok_per_s_ci_hi": Option<f64>, opt, "tokens/s", "95% CI of output throughput, high", field(output_tok_per_s_ci_hi);
    TOTAL_TOK_PER_S "total_tok_per_s": Option<f64>, opt, "tokens/s", "input + output tokens of ok requests / duration", field(total_tok_per_s);
    GOODPUT_REQ_PER_S "goodput_req_per_s": Option<f64>, opt, "req/s", "ok requests meeting every --slo / duration; null without --slo", field(goodput_req_per_s);
    SLO_TTFT_PCT "slo_ttft_pct": Option<f64>, opt, "%", "share of ok requests meeting the TTFT SLO", field(slo_ttft_pct);
    SLO_TPOT_PCT "slo_tpot_pct": Option<f64>, opt, "%", "share of ok requests meeting the TPOT SLO", field(slo_tpot_pct);
    SLO_E2E_PCT "slo_e2e_pct": Option<f64>, opt, "%", "share of ok requests meeting the E2E SLO", field(slo_e2e_pct);
    MEAN_OUTPUT_TOKENS "mean_output_tokens": Option<f64>, opt, "tokens", "mean output tokens of ok requests", field(mean_output_tokens);
    TTFT_MEAN_MS "ttft_mean_ms": Option<f64>, opt, "ms", "mean time to first token", field(ttft.mean);
    TTFT_P50_MS "ttft_p50_ms": Option<f64>, opt, "ms", "median time to first token", field(ttft.p50);
    TTFT_P90_MS "ttft_p90_ms": Option<f64>, opt, "ms", "90th percentile time to first token", field(ttft.p90);
    TTFT_P95_MS "ttft_p95_ms": Option<f64>, opt, "ms", "95th percentile time to first token", field(ttft.p95);
    TTFT_P99_MS "ttft_p99_ms": Option<f64>, opt, "ms", "99th percentile time to first token", field(ttft.p99);
    TTFT_P999_MS "ttft_p999_ms": Option<f64>, opt, "ms", "99.9th percentile time to first token", field(ttft.p999);
    TTFT_MAX_MS "ttft_max_ms": Option<f64>, opt, "ms", "maximum time to first token", field(ttft.max);
    TTFT_P50_CI_LO_MS "ttft_p50_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median time to first token, low", field(ttft.p50_ci_lo);
    TTFT_P50_CI_HI_MS "ttft_p50_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median time to first token, high", field(ttft.p50_ci_hi);
    TTFT_P99_CI_LO_MS "ttft_p99_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 time to first token, low", field(ttft.p99_ci_lo);
    TTFT_P99_CI_HI_MS "ttft_p99_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 time to first token, high", field(ttft.p99_ci_hi);
    TPOT_MEAN_MS "tpot_mean_ms": Option<f64>, opt, "ms", "mean time per output token", field(tpot.mean);
    TPOT_P50_MS "tpot_p50_ms": Option<f64>, opt, "ms", "median time per output token", field(tpot.p50);
    TPOT_P90_MS "tpot_p90_ms": Option<f64>, opt, "ms", "90th percentile time per output token", field(tpot.p90);
    TPOT_P95_MS "tpot_p95_ms": Option<f64>, opt, "ms", "95th percentile time per output token", field(tpot.p95);
    TPOT_P99_MS "tpot_p99_ms": Option<f64>, opt, "ms", "99th percentile time per output token", field(tpot.p99);
    TPOT_P999_MS "tpot_p999_ms": Option<f64>, opt, "ms", "99.9th percentile time per output token", field(tpot.p999);
    TPOT_MAX_MS "tpot_max_ms": Option<f64>, opt, "ms", "maximum time per output token", field(tpot.max);
    TPOT_P50_CI_LO_MS "tpot_p50_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median time per output token, low", field(tpot.p50_ci_lo);
    TPOT_P50_CI_HI_MS "tpot_p50_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median time per output token, high", field(tpot.p50_ci_hi);
    TPOT_P99_CI_LO_MS "tpot_p99_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 time per output token, low", field(tpot.p99_ci_lo);
    TPOT_P99_CI_HI_MS "tpot_p99_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 time per output token, high", field(tpot.p99_ci_hi);
    ITL_MEAN_MS "itl_mean_ms": Option<f64>, opt, "ms", "mean inter-token (inter-chunk) latency", field(itl.mean);
    ITL_P50_MS "itl_p50_ms": Option<f64>, opt, "ms", "median inter-token (inter-chunk) latency", field(itl.p50);
    ITL_P90_MS "itl_p90_ms": Option<f64>, opt, "ms", "90th percentile inter-token (inter-chunk) latency", field(itl.p90);
    ITL_P95_MS "itl_p95_ms": Option<f64>, opt, "ms", "95th percentile inter-token (inter-chunk) latency", field(itl.p95);
    ITL_P99_MS "itl_p99_ms": Option<f64>, opt, "ms", "99th percentile inter-token (inter-chunk) latency", field(itl.p99);
    ITL_P999_MS "itl_p999_ms": Option<f64>, opt, "ms", "99.9th percentile inter-token (inter-chunk) latency", field(itl.p999);
    ITL_MAX_MS "itl_max_ms": Option<f64>, opt, "ms", "maximum inter-token (inter-chunk) latency", field(itl.max);
    ITL_P50_CI_LO_MS "itl_p50_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median inter-token (inter-chunk) latency, low", field(itl.p50_ci_lo);
    ITL_P50_CI_HI_MS "itl_p50_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median inter-token (inter-chunk) latency, high", field(itl.p50_ci_hi);
    ITL_P99_CI_LO_MS "itl_p99_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 inter-token (inter-chunk) latency, low", field(itl.p99_ci_lo);
    ITL_P99_CI_HI_MS "itl_p99_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 inter-token (inter-chunk) latency, high", field(itl.p99_ci_hi);
    TOKENS_PER_EVENT_MEAN "tokens_per_event_mean": Option<f64>, opt, "tokens", "mean tokens per event: an event is one content chunk, or a burst of chunks less than 0.1 ms apart (TGI and llama.cpp send a speculative step's tokens as back-to-back events), first event included; above 1 means itl_* is per event, not per token; null unless the server counted every chunk's tokens (chunk_tokens)", field(tokens_per_event_mean);
    TOKENS_PER_EVENT_P50 "tokens_per_event_p50": Option<f64>, opt, "tokens", "median tokens per event (see tokens_per_event_mean)", field(tokens_per_event_p50);
    TOKENS_PER_EVENT_P90 "tokens_per_event_p90": Option<f64>, opt, "tokens", "90th percentile tokens per event", field(tokens_per_event_p90);
    TOKENS_PER_EVENT_MAX "tokens_per_event_max": Option<f64>, opt, "tokens", "most tokens in one event", field(tokens_per_event_max);
    MULTI_TOKEN_EVENT_PCT "multi_token_event_pct": Option<f64>, opt, "%", "share of events carrying more than one token (speculative decoding, stream intervals, a client falling behind)", field(multi_token_event_pct);
    ITL_TOKEN_MEAN_MS "itl_token_mean_ms": Option<f64>, opt, "ms", "mean per-token ITL: each gap between consecutive events divided by the tokens of the event that ended it, one value per gap (equal to the gap with one token per event); null without chunk_tokens", field(itl_token_mean_ms);
    ITL_TOKEN_P50_MS "itl_token_p50_ms": Option<f64>, opt, "ms", "median per-token ITL (see itl_token_mean_ms)", field(itl_token_p50_ms);
    ITL_TOKEN_P90_MS "itl_token_p90_ms": Option<f64>, opt, "ms", "90th percentile per-token ITL", field(itl_token_p90_ms);
    ITL_TOKEN_P99_MS "itl_token_p99_ms": Option<f64>, opt, "ms", "99th percentile per-token ITL", field(itl_token_p99_ms);
    ITL_EVENT_MEAN_MS "itl_event_mean_ms": Option<f64>, opt, "ms", "mean per-event ITL: the gaps between consecutive events, a burst of back-to-back chunks being one event (so, unlike itl_*, TGI's and llama.cpp's speculative bursts add no ~0 gaps); null without chunk_tokens", field(itl_event_mean_ms);
    ITL_EVENT_P50_MS "itl_event_p50_ms": Option<f64>, opt, "ms", "median per-event ITL (see itl_event_mean_ms)", field(itl_event_p50_ms);
    ITL_EVENT_P99_MS "itl_event_p99_ms": Option<f64>, opt, "ms", "99th percentile per-event ITL", field(itl_event_p99_ms);
    E2E_MEAN_MS "e2e_mean_ms": Option<f64>, opt, "ms", "mean end-to-end latency", field(e2e.mean);
    E2E_P50_MS "e2e_p50_ms": Option<f64>, opt, "ms", "median end-to-end latency", field(e2e.p50);
    E2E_P90_MS "e2e_p90_ms": Option<f64>, opt, "ms", "90th percentile end-to-end latency", field(e2e.p90);
    E2E_P95_MS "e2e_p95_ms": Option<f64>, opt, "ms", "95th percentile end-to-end latency", field(e2e.p95);
    E2E_P99_MS "e2e_p99_ms": Option<f64>, opt, "ms", "99th percentile end-to-end latency", field(e2e.p99);
    E2E_P999_MS "e2e_p999_ms": Option<f64>, opt, "ms", "99.9th percentile end-to-end latency", field(e2e.p999);
    E2E_MAX_MS "e2e_max_ms": Option<f64>, opt, "ms", "maximum end-to-end latency", field(e2e.max);
    E2E_P50_CI_LO_MS "e2e_p50_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median end-to-end latency, low", field(e2e.p50_ci_lo);
    E2E_P50_CI_HI_MS "e2e_p50_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the median end-to-end latency, high", field(e2e.p50_ci_hi);
    E2E_P99_CI_LO_MS "e2e_p99_ci_lo_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 end-to-end latency, low", field(e2e.p99_ci_lo);
    E2E_P99_CI_HI_MS "e2e_p99_ci_hi_ms": Option<f64>, opt, "ms", "95% bootstrap CI of the p99 end-to-end latency, high", field(e2e.p99_ci_hi);
    INTERACTIVITY_TOK_S "interactivity_tok_s": Option<f64>, opt, "tokens/s", "1000 / median TPOT: tokens per second per user", field(interactivity_tok_s);
    SCHED_LAG_P50_MS "sched_lag_p50_ms": Option<f64>, opt, "ms", "median sched_lag_ms: due (scheduled_at) to first byte written (sent_at)", field(sched_lag_p50_ms);
    SCHED_LAG_P99_MS "sched_lag_p99_ms": Option<f64>, opt, "ms", "99th percentile of sched_lag_ms (client falling behind)", field(sched_lag_p99_ms);
    TTFT_SCHED_P99_MS "ttft_sched_p99_ms": Option<f64>, opt, "ms", "99th percentile TTFT measured from scheduled_at", field(ttft_sched_p99_ms);
    TTFA_MEAN_MS "ttfa_mean_ms": Option<f64>, opt, "ms", "mean time to first answer token (requests ttfa_ms) of ok requests that answered: the first token after the reasoning; equal to TTFT without reasoning", field(ttfa_mean_ms);
    TTFA_P50_MS "ttfa_p50_ms": Option<f64>, opt, "ms", "median time to first answer token", field(ttfa_p50_ms);
    TTFA_P90_MS "ttfa_p90_ms": Option<f64>, opt, "ms", "90th percentile time to first answer token", field(ttfa_p90_ms);
    TTFA_P99_MS "ttfa_p99_ms": Option<f64>, opt, "ms", "99th percentile time to first answer token", field(ttfa_p99_ms);
    N_REASONING "n_reasoning": u64, opt, "", "ok requests whose output had reasoning (requests ttfr_ms set)", field(n_reasoning);
    N_UNANSWERED "n_unanswered": u64, opt, "", "of n_reasoning, the requests that ran out of tokens before answering (no ttfa_ms): raise max_tokens or count them as failures", field(n_unanswered);
    REASONING_TOKENS_MEAN "reasoning_tokens_mean": Option<f64>, opt, "tokens", "mean reasoning tokens of the ok requests that had any (reasoning_tokens > 0: streamed reasoning, or reasoning a server counts but hides); null without any", field(reasoning_tokens_mean);
    REASONING_TOKEN_PCT "reasoning_token_pct": Option<f64>, opt, "%", "reasoning tokens as a share of the output tokens of ok requests (the tokens paid for that the user does not read); null without reasoning", field(reasoning_token_pct);
    IN_FLIGHT_MEAN "in_flight_mean": Option<f64>, opt, "requests", "achieved concurrency: time-weighted mean requests in flight (sent_at to done_at) over duration_s", field(in_flight_mean);
    CONCURRENCY_PCT "concurrency_pct": Option<f64>, opt, "%", "closed loop: in_flight_mean as a share of the users asked", field(concurrency_pct);
    ACHIEVED_RATE_RPS "achieved_rate_rps": Option<f64>, opt, "req/s", "open loop: (sent - 1) / (last sent_at - first sent_at)", field(achieved_rate_rps);
    TARGET_RATE_RPS "target_rate_rps": Option<f64>, opt, "req/s", "open loop: the schedule's rate over the same requests, (sent - 1) / (last scheduled_at - first scheduled_at)", field(target_rate_rps);
    RATE_PCT "rate_pct": Option<f64>, opt, "%", "open loop: achieved_rate_rps / target_rate_rps", field(rate_pct);
    LOAD_PCT "load_pct": Option<f64>, opt, "%", "share of the asked load delivered: closed loop, in-flight time / (in-flight + due-but-unsent time); open loop, rate_pct", field(load_pct);
    CLIENT_BOUND "client_bound": Option<bool>, opt, "", "load_pct below 95: the client, not the server, set the pace (more client cores, shards, --threads); null without load_pct", field(client_bound);
    CONN_FRESH_PCT "conn_fresh_pct": Option<f64>, opt, "%", "share of sent requests on a connection not kept alive from an earlier request (connection new or warm): near 100 when the server or a gateway closes connections after each request; null without the connection column", field(conn_fresh_pct);
    CONN_SETUP_MEAN_MS "conn_setup_mean_ms": Option<f64>, opt, "ms", "what connection set-up added per sent request, on average: TCP connect + TLS handshake of the connections opened on a request's path (connection new; already inside sched_lag_ms, never inside TTFT); warm and reused add none", field(conn_setup_mean_ms);
    GPU_MEM_IDLE_MIB "gpu_mem_idle_mib": Option<f64>, opt, "MiB", "GPU memory in use before the group's first request (sum over GPUs)", field(gpu_mem_idle_mib);
    GPU_MEM_PEAK_MIB "gpu_mem_peak_mib": Option<f64>, opt, "MiB", "peak GPU memory in use during the group (sum over GPUs)", field(gpu_mem_peak_mib);
    GPU_UTIL_MEAN_PCT "gpu_util_mean_pct": Option<f64>, opt, "%", "mean GPU utilisation during the group", field(gpu_util_mean_pct);
    POWER_MEAN_W "power_mean_w": Option<f64>, opt, "W", "mean board power during the group (sum over GPUs)", field(power_mean_w);
    ENERGY_J "energy_j": Option<f64>, opt, "J", "energy used during the group (energy counter, else power integral)", field(energy_j);
    ENERGY_PER_OUTPUT_TOKEN_J "energy_per_output_token_j": Option<f64>, opt, "J/token", "energy_j / output tokens", field(energy_per_output_token_j);
    RUNNING_MEAN "running_mean": Option<f64>, opt, "requests", "engine's running requests, mean during the group", field(running_mean);
    RUNNING_PEAK "running_peak": Option<f64>, opt, "requests", "engine's running requests, peak", field(running_peak);
    WAITING_MEAN "waiting_mean": Option<f64>, opt, "requests", "engine's waiting requests, mean", field(waiting_mean);
    WAITING_PEAK "waiting_peak": Option<f64>, opt, "requests", "engine's waiting requests, peak", field(waiting_peak);
    SPEC_ACCEPT_PCT "spec_accept_pct": Option<f64>, opt, "%", "engine's speculative-decoding acceptance rate over the group: accepted / drafted tokens (counter deltas; vLLM, llama.cpp), else the mean of SGLang's spec_accept_rate gauge", field(spec_accept_pct);
    SPEC_TOKENS_PER_STEP "spec_tokens_per_step": Option<f64>, opt, "tokens", "engine's accept length: mean tokens per speculative step over the group, 1 + accepted / drafts (counter deltas), else the mean of its gauge (SGLang spec_accept_length, TensorRT-LLM avg_decoded_tokens_per_iter)", field(spec_tokens_per_step);
    KV_USAGE_PEAK_PCT "kv_usage_peak_pct": Option<f64>, opt, "%", "engine's KV-cache usage, peak", field(kv_usage_peak_pct);
    USAGE_CACHE_HIT_PCT "usage_cache_hit_pct": Option<f64>, opt, "%", "prefix-cache hit rate from the responses' usage: cached_tokens / prompt tokens (server_input_tokens, else input_tokens) over the ok requests whose server reported cached_tokens; null when none did", field(usage_cache_hit_pct);
    PREFIX_CACHE_HIT_PCT "prefix_cache_hit_pct": Option<f64>, opt, "%", "engine's prefix-cache hit rate over the group (counter deltas where exposed)", field(prefix_cache_hit_pct);
}
