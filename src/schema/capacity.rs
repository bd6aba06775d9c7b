//! The capacity contract: `sweep`'s answer, one row per label × SLO: the highest open-loop
//! request rate at which the SLO held, its 95% interval, its price, and every step tried.
//!
//! Output layout of `sweep ... -o DIR`: every step's requests in the hive layout that agg,
//! chart, report and DuckDB read as one dataset, and this contract beside them:
//!
//! ```text
//! DIR/step=1/requests.parquet   the requests contract, rate_rps = the step's rate
//! DIR/step=2/requests.parquet
//! ...
//! DIR/capacity.parquet          this contract (agg leaves it out when it reads DIR)
//! ```
//!
//! The steps tried are in `steps_json`, a JSON array of [`CapacityStep`] objects (decode it
//! with [`CapacityStep::parse_list`]); its `step` is the `N` of `DIR/step=N/`.

use std::collections::BTreeMap;

/// One step of a capacity search: a bounded open-loop run at one rate.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CapacityStep {
    /// The `N` of `DIR/step=N/requests.parquet` (1-based, in the order run).
    pub step: u32,
    /// `bracket` (short probes, growing or shrinking to find a passing and a failing rate),
    /// `bisect` (narrowing to --tolerance, full length), `confirm` (an end of the final
    /// bracket measured only by a probe, run at full length) or `repeat` (--repeats of the
    /// final bracket).
    pub phase: String,
    /// Offered (scheduled) open-loop rate, req/s.
    pub rate_rps: f64,
    /// Rate the client really sent at, req/s (null with fewer than 2 sent).
    pub achieved_rate_rps: Option<f64>,
    /// How long the step was planned to run (warm-up included; a probe's is --probe of a
    /// full step's), s.
    pub planned_s: f64,
    /// How long it ran (shorter when stopped early: saturated or already decided), s.
    pub duration_s: f64,
    /// Measured (not warm-up) requests sent.
    pub n_sent: u64,
    /// Of them, ended ok.
    pub n_ok: u64,
    /// Share of sent measured requests meeting every limit of the SLO, % (0-100).
    pub attained_pct: Option<f64>,
    /// The limited percentiles, keyed like summary columns (`ttft_p99_ms`, `tpot_p99_ms`,
    /// `e2e_p95_ms`), ttft and e2e measured from the schedule (`*_sched_ms`); requests that
    /// did not end ok count as infinitely late (left out of the map when infinite).
    pub percentiles: BTreeMap<String, f64>,
    /// The SLO score: the worst limited value over its limit (percentile form), or the
    /// missed share over the allowed missed share (attainment form); <= 1 meets the SLO.
    pub score: Option<f64>,
    /// The step counted as meeting the SLO (never when saturated or client-bound).
    pub meets: bool,
    /// Stopped early because its queue grew steadily (the saturation rule).
    pub saturated: bool,
    /// The client delivered under 95% of the asked rate (stats' client_bound).
    pub client_bound: bool,
    /// Output tokens of ok requests / duration, tokens/s.
    pub output_tok_per_s: Option<f64>,
    /// Why the step ended before its planned end, if it did (`saturated`, `decided`).
    pub stopped: Option<String>,
    /// What showed a saturated step saturated: `engine_queue` (the engine's waiting-requests
    /// gauge climbed) or `in_flight` (the client's backlog, requests due minus done, climbed).
    #[serde(default)]
    pub saturated_by: Option<String>,
}

impl CapacityStep {
    /// The steps of a `steps_json` cell.
    pub fn parse_list(json: &str) -> Result<Vec<CapacityStep>, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The steps as a `steps_json` cell.
    pub fn to_json_list(steps: &[CapacityStep]) -> String {
        serde_json::to_string(steps).unwrap_or_else(|_| "[]".into())
    }
}

/// One capacity row: the search's result for one label and one SLO.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capacity {
    pub label: String,
    pub engine: Option<String>,
    pub model: Option<String>,
    pub quant: Option<String>,
    pub slo: String,
    pub attainment: Option<f64>,
    pub capacity_rps: Option<f64>,
    pub capacity_rps_ci_lo: Option<f64>,
    pub capacity_rps_ci_hi: Option<f64>,
    pub capacity_output_tok_s: Option<f64>,
    pub capacity_output_tok_s_ci_lo: Option<f64>,
    pub capacity_output_tok_s_ci_hi: Option<f64>,
    pub interval: String,
    pub repeats: u32,
    pub passing_rps: Option<f64>,
    pub failing_rps: Option<f64>,
    pub gpu_count: u32,
    pub gpu_hour_cost_usd: Option<f64>,
    pub cost_per_m_output_tokens_usd: Option<f64>,
    pub tolerance: f64,
    pub seed: u64,
    pub step_s: f64,
    pub n_steps: u32,
    pub search_s: f64,
    pub note: Option<String>,
    pub steps_json: String,
}

impl Capacity {
    /// The steps tried, decoded from `steps_json`.
    pub fn steps(&self) -> Result<Vec<CapacityStep>, serde_json::Error> {
        CapacityStep::parse_list(&self.steps_json)
    }
}

crate::contract! {
    /// sweep's capacity rows
    pub static CAPACITY = ("capacity", 1, "one row per label and SLO: the highest open-loop rate meeting the SLO, its 95% interval, cost and the steps tried (sweep -> chart, report)");
    rows Capacity, ctx (), decode;
    /// Column names of the capacity contract.
    names col;
    LABEL "label": String, opt, "", "run label (sweep --label; default the engine name)", field(label);
    ENGINE "engine": Option<String>, opt, "", "engine", field(engine);
    MODEL "model": Option<String>, opt, "", "model", field(model);
    QUANT "quant": Option<String>, opt, "", "quantization variant", field(quant);
    SLO "slo": String, opt, "", "the SLO searched, normalised: limits on percentiles (ttft_p99<=500ms,tpot_p99<=50ms) or on every request (ttft<=500ms,tpot<=50ms with attainment); ttft and e2e from the schedule", field(slo);
    ATTAINMENT "attainment": Option<f64>, opt, "", "attainment form: the share (0-1) of requests that must meet every limit; null in percentile form", field(attainment);
    CAPACITY_RPS "capacity_rps": Option<f64>, opt, "req/s", "capacity: the offered rate where the SLO score crosses 1, interpolated between the highest passing and the lowest failing step (mean over --repeats); null when even the lowest rate failed", field(capacity_rps);
    CAPACITY_RPS_CI_LO "capacity_rps_ci_lo": Option<f64>, opt, "req/s", "95% interval of capacity_rps, low (t-interval across repeats; with one, bootstrap of the bracketing steps' requests)", field(capacity_rps_ci_lo);
    CAPACITY_RPS_CI_HI "capacity_rps_ci_hi": Option<f64>, opt, "req/s", "95% interval of capacity_rps, high", field(capacity_rps_ci_hi);
    CAPACITY_OUTPUT_TOK_S "capacity_output_tok_s": Option<f64>, opt, "tokens/s", "output tokens per second at capacity: capacity_rps x mean output tokens of the passing step's ok requests", field(capacity_output_tok_s);
    CAPACITY_OUTPUT_TOK_S_CI_LO "capacity_output_tok_s_ci_lo": Option<f64>, opt, "tokens/s", "95% interval of capacity_output_tok_s, low", field(capacity_output_tok_s_ci_lo);
    CAPACITY_OUTPUT_TOK_S_CI_HI "capacity_output_tok_s_ci_hi": Option<f64>, opt, "tokens/s", "95% interval of capacity_output_tok_s, high", field(capacity_output_tok_s_ci_hi);
    INTERVAL "interval": String, opt, "", "how the interval was made: t-interval (across repeats), bootstrap (one run), none", field(interval);
    REPEATS "repeats": u32, opt, "", "runs of the final bracket (--repeats)", field(repeats);
    PASSING_RPS "passing_rps": Option<f64>, opt, "req/s", "highest step rate that met the SLO", field(passing_rps);
    FAILING_RPS "failing_rps": Option<f64>, opt, "req/s", "lowest step rate above it that did not; null when --max-rate still passed", field(failing_rps);
    GPU_COUNT "gpu_count": u32, opt, "GPUs", "GPUs serving the endpoint (--gpus, else the engine's configured count, else 1)", field(gpu_count);
    GPU_HOUR_COST_USD "gpu_hour_cost_usd": Option<f64>, opt, "USD", "price of one GPU-hour (--gpu-hour-cost, else engines.toml cost_per_gpu_hour); null when unknown", field(gpu_hour_cost_usd);
    COST_PER_M_OUTPUT_TOKENS_USD "cost_per_m_output_tokens_usd": Option<f64>, opt, "USD", "dollars per million output tokens at capacity: gpu_hour_cost_usd x gpu_count / (3600 x capacity_output_tok_s) x 1e6", field(cost_per_m_output_tokens_usd);
    TOLERANCE "tolerance": f64, opt, "", "the search stopped when (failing - passing) / passing <= this (--tolerance)", field(tolerance);
    SEARCH_SEED "search_seed": u64, opt, "", "sweep --seed: fixes the prompt text of every step and the bootstrap", field(seed);
    STEP_S "step_s": f64, opt, "s", "planned length of each step after warm-up (--step)", field(step_s);
    N_STEPS "n_steps": u32, opt, "", "steps run, repeats included", field(n_steps);
    SEARCH_S "search_s": f64, opt, "s", "wall time of the whole search", field(search_s);
    NOTE "note": Option<String>, opt, "", "what limits the answer (e.g. 'at least: --max-rate met the SLO', 'below --min-rate')", field(note);
    STEPS_JSON "steps_json": String, opt, "", "the steps tried, a JSON array of objects: step, phase, rate_rps, achieved_rate_rps, planned_s, duration_s, n_sent, n_ok, attained_pct, percentiles {ttft_p99_ms: ...}, score, meets, saturated, client_bound, output_tok_per_s, stopped, saturated_by (engine_queue or in_flight)", field(steps_json);
}
