//! The single source of truth for every column servebench writes or reads.
//!
//! Each data contract (trace, requests, gpu, summary, engine metrics) is a list of
//! [`Column`]s: name, Arrow type, nullability, unit and a one-line doc. Every tool builds its
//! Arrow schema from here, `--print-schema` prints it, and README's column tables are
//! generated from (and tested against) [`Contract::markdown`].

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Logical column types used by the contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    U16,
    U32,
    U64,
    F64,
    Bool,
    Utf8,
    /// `TIMESTAMP(us, UTC)`
    Ts,
    ListF64,
    ListU32,
    ListU64,
}

impl Ty {
    pub fn data_type(self) -> DataType {
        match self {
            Ty::U16 => DataType::UInt16,
            Ty::U32 => DataType::UInt32,
            Ty::U64 => DataType::UInt64,
            Ty::F64 => DataType::Float64,
            Ty::Bool => DataType::Boolean,
            Ty::Utf8 => DataType::Utf8,
            Ty::Ts => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Ty::ListF64 => DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            Ty::ListU32 => DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            Ty::ListU64 => DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
        }
    }

    /// The type as DuckDB shows it when it reads the Parquet file.
    pub fn duckdb(self) -> &'static str {
        match self {
            Ty::U16 => "USMALLINT",
            Ty::U32 => "UINTEGER",
            Ty::U64 => "UBIGINT",
            Ty::F64 => "DOUBLE",
            Ty::Bool => "BOOLEAN",
            Ty::Utf8 => "VARCHAR",
            Ty::Ts => "TIMESTAMP WITH TIME ZONE",
            Ty::ListF64 => "DOUBLE[]",
            Ty::ListU32 => "UINTEGER[]",
            Ty::ListU64 => "UBIGINT[]",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Ty::U16 => "u16",
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::F64 => "f64",
            Ty::Bool => "bool",
            Ty::Utf8 => "utf8",
            Ty::Ts => "timestamp(us, UTC)",
            Ty::ListF64 => "list<f64>",
            Ty::ListU32 => "list<u32>",
            Ty::ListU64 => "list<u64>",
        }
    }
}

/// One column of a contract.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: Ty,
    pub nullable: bool,
    /// Unit, or "" when the column has none (ids, text, flags).
    pub unit: &'static str,
    pub doc: &'static str,
    /// Required on input: a reader refuses a file without it. Optional columns are
    /// filled with nulls (or their documented default) when absent.
    pub required: bool,
}

const fn col(name: &'static str, ty: Ty, nullable: bool, unit: &'static str, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable,
        unit,
        doc,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty, unit: &'static str, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        unit,
        doc,
        required: true,
    }
}

/// A named, versioned data contract.
#[derive(Debug, Clone, Copy)]
pub struct Contract {
    pub name: &'static str,
    pub version: u32,
    pub doc: &'static str,
    pub columns: &'static [Column],
}

impl Contract {
    /// `name/version`, the value of the `servebench.schema` metadata key.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(self.schema_plain())
    }

    pub fn schema_plain(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.data_type(), c.nullable))
                .collect::<Vec<_>>(),
        )
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn index_of(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("column {name} is not in contract {}", self.name))
    }

    /// The Markdown table README.md carries for this contract (checked by a test).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| column | type | unit | description |\n|---|---|---|---|\n");
        for c in self.columns {
            let ty = if c.nullable {
                format!("{} (nullable)", c.ty.short())
            } else {
                c.ty.short().to_string()
            };
            let unit = if c.unit.is_empty() { "" } else { c.unit };
            s.push_str(&format!("| `{}` | {} | {} | {} |\n", c.name, ty, unit, c.doc));
        }
        s
    }

    /// Human-readable listing for `--print-schema`.
    pub fn print(&self) -> String {
        let mut s = format!("# contract {} ({})\n# {}\n", self.id(), self.name, self.doc);
        let w = self.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in self.columns {
            let null = if c.nullable { "null" } else { "    " };
            let unit = if c.unit.is_empty() {
                "-".into()
            } else {
                c.unit.to_string()
            };
            s.push_str(&format!(
                "{:w$}  {:18}  {}  {:8}  {}\n",
                c.name,
                c.ty.short(),
                null,
                unit,
                c.doc,
                w = w
            ));
        }
        s
    }
}

/// Statuses a requests row can have (`status` column).
pub const STATUSES: &[&str] = &[
    "ok",
    "http_error",
    "timeout",
    "connect_error",
    "stream_error",
    "cancelled",
    "not_sent",
];

pub static TRACE: Contract = Contract {
    name: "trace",
    version: 1,
    doc: "one row per request to send (tracegen -> replay)",
    columns: &[
        req("request_id", Ty::U64, "", "unique id of the request within the trace"),
        req(
            "arrival_s",
            Ty::F64,
            "s",
            "when to send it, seconds after the trace starts",
        ),
        col(
            "session_id",
            Ty::U64,
            true,
            "",
            "conversation id for multi-turn sessions",
        ),
        col("turn", Ty::U32, true, "", "turn number within the session, from 0"),
        req("input_tokens", Ty::U32, "tokens", "prompt length to send"),
        req(
            "output_tokens",
            Ty::U32,
            "tokens",
            "max_tokens to request (ignore_eos unless told otherwise)",
        ),
        col(
            "prompt",
            Ty::Utf8,
            true,
            "",
            "prompt text; null means replay synthesises input_tokens of text",
        ),
        col(
            "prefix_blocks",
            Ty::ListU64,
            true,
            "",
            "prefix-block hash ids (Mooncake, 512 tokens each): equal ids give identical text",
        ),
        col(
            "category",
            Ty::Utf8,
            true,
            "",
            "short, medium, long, code, or the source's own",
        ),
        col(
            "source",
            Ty::Utf8,
            true,
            "",
            "where the row came from: poisson, gamma, sharegpt, azure, ...",
        ),
    ],
};

pub static REQUESTS: Contract = Contract {
    name: "requests",
    version: 1,
    doc: "one row per trace row replay was asked to send, whatever happened to it (replay -> agg)",
    columns: &[
        col("request_id", Ty::U64, false, "", "the trace's request_id"),
        col("label", Ty::Utf8, false, "", "run label given to replay (--label)"),
        col("run_id", Ty::Utf8, false, "", "id of the replay run that wrote the row"),
        col(
            "engine",
            Ty::Utf8,
            true,
            "",
            "engine name (from engine-up state or --engine)",
        ),
        col("model", Ty::Utf8, true, "", "model served (from /v1/models or --model)"),
        col(
            "quant",
            Ty::Utf8,
            true,
            "",
            "quantization variant (fp16, awq, fp8, ...)",
        ),
        col(
            "api",
            Ty::Utf8,
            false,
            "",
            "protocol used: chat, completions, tgi, sglang, llamacpp",
        ),
        col(
            "concurrency",
            Ty::U32,
            true,
            "users",
            "closed-loop users (--concurrency); null in open loop",
        ),
        col(
            "rate_rps",
            Ty::F64,
            true,
            "req/s",
            "open-loop target rate of the trace (after --time-scale); null in closed loop",
        ),
        col(
            "scheduled_at",
            Ty::Ts,
            true,
            "",
            "when the schedule said the request should be sent",
        ),
        col(
            "sent_at",
            Ty::Ts,
            true,
            "",
            "when the request's first byte was written; null if never sent",
        ),
        col(
            "first_token_at",
            Ty::Ts,
            true,
            "",
            "arrival of the first chunk carrying generated content",
        ),
        col(
            "done_at",
            Ty::Ts,
            true,
            "",
            "when the response ended (last byte, error or cancel)",
        ),
        col("sched_lag_ms", Ty::F64, true, "ms", "sent_at - scheduled_at"),
        col("ttft_ms", Ty::F64, true, "ms", "first content chunk - sent_at"),
        col("e2e_ms", Ty::F64, true, "ms", "last content chunk - sent_at"),
        col(
            "tpot_ms",
            Ty::F64,
            true,
            "ms",
            "(e2e_ms - ttft_ms) / (output_tokens - 1), when output_tokens > 1",
        ),
        col(
            "ttft_sched_ms",
            Ty::F64,
            true,
            "ms",
            "first content chunk - scheduled_at (what a user of a late client sees)",
        ),
        col("e2e_sched_ms", Ty::F64, true, "ms", "last content chunk - scheduled_at"),
        col(
            "warmup",
            Ty::Bool,
            false,
            "",
            "a warm-up request (agg drops these unless asked)",
        ),
        col(
            "chunk_times_ms",
            Ty::ListF64,
            false,
            "ms",
            "arrival of every content chunk, ms after sent_at",
        ),
        col(
            "chunk_tokens",
            Ty::ListU32,
            true,
            "tokens",
            "tokens in each content chunk when the server says; null otherwise",
        ),
        col(
            "input_tokens",
            Ty::U32,
            false,
            "tokens",
            "prompt length asked for by the trace",
        ),
        col(
            "server_input_tokens",
            Ty::U32,
            true,
            "tokens",
            "prompt length the server reported (usage), if any",
        ),
        col("requested_output_tokens", Ty::U32, false, "tokens", "max_tokens sent"),
        col(
            "output_tokens",
            Ty::U32,
            false,
            "tokens",
            "output tokens received (see output_tokens_source)",
        ),
        col(
            "output_tokens_source",
            Ty::Utf8,
            false,
            "",
            "usage: the server's count; chunks: number of content chunks",
        ),
        col(
            "status",
            Ty::Utf8,
            false,
            "",
            "ok, http_error, timeout, connect_error, stream_error, cancelled, not_sent",
        ),
        col(
            "http_status",
            Ty::U16,
            true,
            "",
            "HTTP status of the response, if one came",
        ),
        col(
            "error",
            Ty::Utf8,
            true,
            "",
            "what went wrong, with the engine's own message where it gave one",
        ),
        col(
            "finish_reason",
            Ty::Utf8,
            true,
            "",
            "the server's finish reason (length, stop, ...)",
        ),
        col("category", Ty::Utf8, true, "", "the trace's category"),
        col("session_id", Ty::U64, true, "", "the trace's session_id"),
        col("turn", Ty::U32, true, "", "the trace's turn"),
    ],
};

pub static GPU: Contract = Contract {
    name: "gpu",
    version: 1,
    doc: "one row per GPU per sample (gpumon -> agg, chart)",
    columns: &[
        col("t", Ty::Ts, false, "", "sample time"),
        col("gpu", Ty::U32, false, "", "NVML device index"),
        col("uuid", Ty::Utf8, false, "", "device UUID"),
        col("name", Ty::Utf8, false, "", "device name"),
        col(
            "util_pct",
            Ty::F64,
            true,
            "%",
            "GPU utilisation over the driver's last sample period",
        ),
        col("mem_util_pct", Ty::F64, true, "%", "memory-controller utilisation"),
        col("mem_used_mib", Ty::F64, true, "MiB", "device memory in use"),
        col("mem_total_mib", Ty::F64, true, "MiB", "device memory in total"),
        col("power_w", Ty::F64, true, "W", "board power draw"),
        col(
            "energy_j",
            Ty::F64,
            true,
            "J",
            "the device's running energy counter (since driver load)",
        ),
        col("temp_c", Ty::F64, true, "degC", "GPU temperature"),
        col("sm_clock_mhz", Ty::U32, true, "MHz", "SM clock"),
        col("mem_clock_mhz", Ty::U32, true, "MHz", "memory clock"),
        col("pcie_tx_kib_s", Ty::F64, true, "KiB/s", "PCIe transmit throughput"),
        col("pcie_rx_kib_s", Ty::F64, true, "KiB/s", "PCIe receive throughput"),
        col(
            "throttle_reasons",
            Ty::U64,
            true,
            "",
            "NVML clocks-event (throttle) reason bitmask",
        ),
        col(
            "missed_ticks",
            Ty::U32,
            false,
            "",
            "sampling ticks skipped before this sample because sampling ran late",
        ),
    ],
};

pub static GPU_PROCESSES: Contract = Contract {
    name: "gpu_processes",
    version: 1,
    doc: "per-process GPU memory (gpumon --processes, written beside the gpu file)",
    columns: &[
        col("t", Ty::Ts, false, "", "sample time"),
        col("gpu", Ty::U32, false, "", "NVML device index"),
        col("pid", Ty::U32, false, "", "process id"),
        col("process_name", Ty::Utf8, true, "", "process name from /proc"),
        col(
            "mem_used_mib",
            Ty::F64,
            true,
            "MiB",
            "device memory used by the process",
        ),
    ],
};

pub static ENGINE_METRICS: Contract = Contract {
    name: "engine_metrics",
    version: 1,
    doc: "one row per scraped Prometheus sample, long format (enginemon -> agg, chart)",
    columns: &[
        col(
            "t",
            Ty::Ts,
            false,
            "",
            "scrape time (midway between sending the request and the end of the response)",
        ),
        col(
            "metric",
            Ty::Utf8,
            false,
            "",
            "the engine's metric name (series name, with _bucket/_sum/_count)",
        ),
        col(
            "labels",
            Ty::Utf8,
            true,
            "",
            "labels as k=\"v\" pairs, comma separated, as exposed",
        ),
        col("value", Ty::F64, false, "", "sample value"),
        col(
            "common",
            Ty::Utf8,
            true,
            "",
            "common name of a well-known series: running, waiting (requests), kv_usage, prefix_cache_hit_rate (fractions 0-1), prefix_cache_hits, prefix_cache_queries (counters); derived rows are named servebench:<common>",
        ),
    ],
};

/// The latency metrics that summary reports statistics for.
pub const LATENCY_METRICS: &[&str] = &["ttft", "tpot", "itl", "e2e"];

/// Statistics reported per latency metric in summary, in column order.
pub const LATENCY_STATS: &[&str] = &[
    "mean",
    "p50",
    "p90",
    "p95",
    "p99",
    "p999",
    "max",
    "p50_ci_lo",
    "p50_ci_hi",
    "p99_ci_lo",
    "p99_ci_hi",
];

pub static SUMMARY: Contract = Contract {
    name: "summary",
    version: 1,
    doc: "one row per group (label, engine, model, quant, concurrency or rate, and --by columns) (agg -> chart, report)",
    columns: &SUMMARY_COLUMNS,
};

macro_rules! lat_cols {
    ($m:literal, $what:literal) => {
        [
            col(concat!($m, "_mean_ms"), Ty::F64, true, "ms", concat!("mean ", $what)),
            col(concat!($m, "_p50_ms"), Ty::F64, true, "ms", concat!("median ", $what)),
            col(
                concat!($m, "_p90_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("90th percentile ", $what),
            ),
            col(
                concat!($m, "_p95_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("95th percentile ", $what),
            ),
            col(
                concat!($m, "_p99_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("99th percentile ", $what),
            ),
            col(
                concat!($m, "_p999_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("99.9th percentile ", $what),
            ),
            col(concat!($m, "_max_ms"), Ty::F64, true, "ms", concat!("maximum ", $what)),
            col(
                concat!($m, "_p50_ci_lo_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("95% bootstrap CI of the median ", $what, ", low"),
            ),
            col(
                concat!($m, "_p50_ci_hi_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("95% bootstrap CI of the median ", $what, ", high"),
            ),
            col(
                concat!($m, "_p99_ci_lo_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("95% bootstrap CI of the p99 ", $what, ", low"),
            ),
            col(
                concat!($m, "_p99_ci_hi_ms"),
                Ty::F64,
                true,
                "ms",
                concat!("95% bootstrap CI of the p99 ", $what, ", high"),
            ),
        ]
    };
}

const SUMMARY_KEYS: [Column; 9] = [
    col("label", Ty::Utf8, false, "", "run label"),
    col("engine", Ty::Utf8, true, "", "engine"),
    col("model", Ty::Utf8, true, "", "model"),
    col("quant", Ty::Utf8, true, "", "quantization variant"),
    col("concurrency", Ty::U32, true, "users", "closed-loop users"),
    col("rate_rps", Ty::F64, true, "req/s", "open-loop target rate"),
    col("category", Ty::Utf8, true, "", "prompt category (when grouped by it)"),
    col("turn", Ty::U32, true, "", "session turn (when grouped by it)"),
    col("group_by", Ty::Utf8, false, "", "the grouping columns, comma separated"),
];

const SUMMARY_COUNTS: [Column; 20] = [
    col(
        "n_requests",
        Ty::U64,
        false,
        "",
        "rows in the group (warm-up rows excluded unless --include-warmup)",
    ),
    col("n_ok", Ty::U64, false, "", "status ok"),
    col("n_http_error", Ty::U64, false, "", "status http_error"),
    col("n_timeout", Ty::U64, false, "", "status timeout"),
    col("n_connect_error", Ty::U64, false, "", "status connect_error"),
    col("n_stream_error", Ty::U64, false, "", "status stream_error"),
    col("n_cancelled", Ty::U64, false, "", "status cancelled"),
    col("n_not_sent", Ty::U64, false, "", "status not_sent"),
    col(
        "error_rate",
        Ty::F64,
        false,
        "",
        "share of sent requests that did not end ok (0-1)",
    ),
    col(
        "duration_s",
        Ty::F64,
        true,
        "s",
        "first sent_at to last done_at of the group",
    ),
    col("req_per_s", Ty::F64, true, "req/s", "ok requests / duration"),
    col(
        "output_tok_per_s",
        Ty::F64,
        true,
        "tokens/s",
        "output tokens of ok requests / duration",
    ),
    col(
        "output_tok_per_s_ci_lo",
        Ty::F64,
        true,
        "tokens/s",
        "95% CI of output throughput, low (batch means over time windows)",
    ),
    col(
        "output_tok_per_s_ci_hi",
        Ty::F64,
        true,
        "tokens/s",
        "95% CI of output throughput, high",
    ),
    col(
        "total_tok_per_s",
        Ty::F64,
        true,
        "tokens/s",
        "input + output tokens of ok requests / duration",
    ),
    col(
        "goodput_req_per_s",
        Ty::F64,
        true,
        "req/s",
        "ok requests meeting every --slo / duration; null without --slo",
    ),
    col(
        "slo_ttft_pct",
        Ty::F64,
        true,
        "%",
        "share of ok requests meeting the TTFT SLO",
    ),
    col(
        "slo_tpot_pct",
        Ty::F64,
        true,
        "%",
        "share of ok requests meeting the TPOT SLO",
    ),
    col(
        "slo_e2e_pct",
        Ty::F64,
        true,
        "%",
        "share of ok requests meeting the E2E SLO",
    ),
    col(
        "mean_output_tokens",
        Ty::F64,
        true,
        "tokens",
        "mean output tokens of ok requests",
    ),
];

const SUMMARY_TAIL: [Column; 15] = [
    col(
        "interactivity_tok_s",
        Ty::F64,
        true,
        "tokens/s",
        "1000 / median TPOT: tokens per second per user",
    ),
    col(
        "sched_lag_p99_ms",
        Ty::F64,
        true,
        "ms",
        "99th percentile of sched_lag_ms (client falling behind)",
    ),
    col(
        "ttft_sched_p99_ms",
        Ty::F64,
        true,
        "ms",
        "99th percentile TTFT measured from scheduled_at",
    ),
    col(
        "gpu_mem_idle_mib",
        Ty::F64,
        true,
        "MiB",
        "GPU memory in use before the group's first request (sum over GPUs)",
    ),
    col(
        "gpu_mem_peak_mib",
        Ty::F64,
        true,
        "MiB",
        "peak GPU memory in use during the group (sum over GPUs)",
    ),
    col(
        "gpu_util_mean_pct",
        Ty::F64,
        true,
        "%",
        "mean GPU utilisation during the group",
    ),
    col(
        "power_mean_w",
        Ty::F64,
        true,
        "W",
        "mean board power during the group (sum over GPUs)",
    ),
    col(
        "energy_j",
        Ty::F64,
        true,
        "J",
        "energy used during the group (energy counter, else power integral)",
    ),
    col(
        "energy_per_output_token_j",
        Ty::F64,
        true,
        "J/token",
        "energy_j / output tokens",
    ),
    col(
        "running_mean",
        Ty::F64,
        true,
        "requests",
        "engine's running requests, mean during the group",
    ),
    col(
        "running_peak",
        Ty::F64,
        true,
        "requests",
        "engine's running requests, peak",
    ),
    col(
        "waiting_mean",
        Ty::F64,
        true,
        "requests",
        "engine's waiting requests, mean",
    ),
    col(
        "waiting_peak",
        Ty::F64,
        true,
        "requests",
        "engine's waiting requests, peak",
    ),
    col("kv_usage_peak_pct", Ty::F64, true, "%", "engine's KV-cache usage, peak"),
    col(
        "prefix_cache_hit_pct",
        Ty::F64,
        true,
        "%",
        "engine's prefix-cache hit rate over the group (counter deltas where exposed)",
    ),
];

const SUMMARY_LAT: [[Column; 11]; 4] = [
    lat_cols!("ttft", "time to first token"),
    lat_cols!("tpot", "time per output token"),
    lat_cols!("itl", "inter-token (inter-chunk) latency"),
    lat_cols!("e2e", "end-to-end latency"),
];

const N_SUMMARY: usize = 9 + 20 + 44 + 15;

const fn build_summary() -> [Column; N_SUMMARY] {
    let mut out = [SUMMARY_KEYS[0]; N_SUMMARY];
    let mut i = 0;
    let mut k = 0;
    while k < SUMMARY_KEYS.len() {
        out[i] = SUMMARY_KEYS[k];
        i += 1;
        k += 1;
    }
    k = 0;
    while k < SUMMARY_COUNTS.len() {
        out[i] = SUMMARY_COUNTS[k];
        i += 1;
        k += 1;
    }
    let mut m = 0;
    while m < SUMMARY_LAT.len() {
        k = 0;
        while k < SUMMARY_LAT[m].len() {
            out[i] = SUMMARY_LAT[m][k];
            i += 1;
            k += 1;
        }
        m += 1;
    }
    k = 0;
    while k < SUMMARY_TAIL.len() {
        out[i] = SUMMARY_TAIL[k];
        i += 1;
        k += 1;
    }
    out
}

static SUMMARY_COLUMNS: [Column; N_SUMMARY] = build_summary();

pub static COMPARISON: Contract = Contract {
    name: "comparison",
    version: 1,
    doc: "agg --compare A,B: one row per metric and matched group, the ratio B/A with its 95% CI",
    columns: &[
        col(
            "metric",
            Ty::Utf8,
            false,
            "",
            "the metric compared (e.g. ttft_p99_ms, output_tok_per_s)",
        ),
        col("a", Ty::Utf8, false, "", "label A (the baseline)"),
        col("b", Ty::Utf8, false, "", "label B"),
        col("concurrency", Ty::U32, true, "users", "matched load (closed loop)"),
        col("rate_rps", Ty::F64, true, "req/s", "matched load (open loop)"),
        col("category", Ty::Utf8, true, "", "matched category (with --by category)"),
        col("value_a", Ty::F64, true, "", "the metric for A, in the metric's unit"),
        col("value_b", Ty::F64, true, "", "the metric for B"),
        col("ratio", Ty::F64, true, "", "value_b / value_a"),
        col("ratio_ci_lo", Ty::F64, true, "", "95% bootstrap CI of the ratio, low"),
        col("ratio_ci_hi", Ty::F64, true, "", "95% bootstrap CI of the ratio, high"),
        col(
            "significant",
            Ty::Bool,
            false,
            "",
            "the CI excludes 1: the difference is not noise",
        ),
        col(
            "better",
            Ty::Utf8,
            false,
            "",
            "a, b, or \"not significant\" (lower is better for latencies, higher for throughput)",
        ),
    ],
};

/// Every contract, in the order README documents them.
pub fn all() -> [&'static Contract; 7] {
    [
        &TRACE,
        &REQUESTS,
        &GPU,
        &GPU_PROCESSES,
        &ENGINE_METRICS,
        &SUMMARY,
        &COMPARISON,
    ]
}

pub fn by_name(name: &str) -> Option<&'static Contract> {
    all().into_iter().find(|c| c.name == name)
}

// ---------------------------------------------------------------------------------------
// Provenance metadata keys (Parquet key-value metadata; Arrow IPC schema metadata).

pub const META_SCHEMA: &str = "servebench.schema";
pub const META_VERSION: &str = "servebench.version";
pub const META_GIT_SHA: &str = "servebench.git_sha";
pub const META_ARGV: &str = "servebench.argv";
pub const META_RUN_ID: &str = "servebench.run_id";
pub const META_STARTED_AT: &str = "servebench.started_at";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_units_in_names() {
        for c in all() {
            let mut names: Vec<_> = c.columns.iter().map(|c| c.name).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "duplicate column in {}", c.name);
            for col in c.columns {
                let suffix_ok = match col.unit {
                    "ms" => col.name.ends_with("_ms"),
                    "s" => col.name.ends_with("_s"),
                    "W" => col.name.ends_with("_w"),
                    "J" => col.name.ends_with("_j"),
                    "MiB" => col.name.ends_with("_mib"),
                    "%" => col.name.ends_with("_pct"),
                    _ => true,
                };
                assert!(
                    suffix_ok,
                    "{}.{} has unit {} but not in its name",
                    c.name, col.name, col.unit
                );
            }
        }
    }

    #[test]
    fn summary_is_complete() {
        assert_eq!(SUMMARY.columns.len(), N_SUMMARY);
        assert!(SUMMARY.column("itl_p99_ci_hi_ms").is_some());
        assert!(SUMMARY.column("kv_usage_peak_pct").is_some());
        assert_eq!(SUMMARY.columns[0].name, "label");
    }
}
