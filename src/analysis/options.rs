//! Options of one aggregation: the metric definitions (`--defs`), the SLO grammar (`--slo`),
//! grouping and the memory budget.

use crate::schema::requests::col as rc;
use crate::schema::summary::col;

/// The metric definitions of the tools people compare against (`agg --defs`, and the
/// definitions an imported file's numbers follow). The names are the tools' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Defs {
    /// vLLM `bench serve` (servebench's own): TPOT = (E2E - TTFT)/(tokens - 1) per request; ITL
    /// = every gap between content chunks, pooled over requests.
    Vllm,
    /// SGLang `bench_serving`: vLLM's definitions (TPOT per request, ITL pooled chunk gaps).
    Sglang,
    /// NVIDIA AIPerf: inter-token latency is per request, (E2E - TTFT)/(tokens - 1) (vLLM's
    /// TPOT); TPOT is reported as the same per-request value.
    Aiperf,
    /// GuideLLM: time per output token = E2E / tokens (TTFT included; E2E to the last token);
    /// inter-token latency = (E2E - TTFT)/(tokens - 1) per request.
    Guidellm,
    /// genai-bench: TPOT = (E2E - TTFT)/(tokens - 1) per request; no chunk-level ITL (ITL is
    /// the per-request TPOT).
    GenaiBench,
    /// inference-perf: TPOT = (last - first token)/(tokens - 1) per request; ITL = one gap per
    /// token, pooled (a chunk's further tokens count 0).
    InferencePerf,
    /// LLMPerf: inter-token latency = E2E / tokens per request (TTFT included); it reports no
    /// separate TPOT, so TPOT is the same value.
    Llmperf,
}

/// How a definition's ITL is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Itl {
    /// Every gap between consecutive content chunks, pooled over requests.
    ChunkGaps,
    /// One value per request: (E2E - TTFT)/(tokens - 1).
    PerRequestDecode,
    /// One value per request: E2E / tokens (TTFT included).
    PerRequestE2e,
    /// One gap per output token, pooled: each chunk's gap to the one before, and a 0 for
    /// every further token of a chunk (inference-perf's per-token arrival times).
    TokenGaps,
}

impl Defs {
    /// The name `--defs` takes (the tool's name).
    pub fn name(self) -> &'static str {
        match self {
            Defs::Vllm => "vllm",
            Defs::Sglang => "sglang",
            Defs::Aiperf => "aiperf",
            Defs::Guidellm => "guidellm",
            Defs::GenaiBench => "genai-bench",
            Defs::InferencePerf => "inference-perf",
            Defs::Llmperf => "llmperf",
        }
    }

    /// TPOT of one request as these definitions report it, from the request's vLLM-style
    /// TPOT ((E2E - TTFT)/(tokens - 1)), its E2E and its output tokens. Goodput and the
    /// `--slo tpot=` check use this same value: the SLO is judged on what is reported.
    pub fn tpot(self, vllm_tpot: Option<f64>, e2e: Option<f64>, out_tokens: u64) -> Option<f64> {
        match self {
            Defs::Vllm | Defs::Sglang | Defs::Aiperf | Defs::GenaiBench | Defs::InferencePerf => vllm_tpot,
            Defs::Guidellm | Defs::Llmperf => e2e.filter(|_| out_tokens > 0).map(|e| e / out_tokens as f64),
        }
    }

    /// Whether the tool's TTFT waits for the first answer token, reasoning left out (its
    /// client reads only `delta.content`): SGLang's bench_serving, inference-perf and LLMPerf.
    /// vLLM bench serve, AIPerf, GuideLLM and genai-bench count any first token, reasoning
    /// included (AIPerf's and GuideLLM's separate time to first output token is `ttfa`).
    pub fn ttft_is_answer(self) -> bool {
        matches!(self, Defs::Sglang | Defs::InferencePerf | Defs::Llmperf)
    }

    /// How these definitions make ITL.
    pub fn itl(self) -> Itl {
        match self {
            Defs::Vllm | Defs::Sglang => Itl::ChunkGaps,
            Defs::InferencePerf => Itl::TokenGaps,
            Defs::Aiperf | Defs::Guidellm | Defs::GenaiBench => Itl::PerRequestDecode,
            Defs::Llmperf => Itl::PerRequestE2e,
        }
    }
}

/// One metric as one tool defines it: a cell group of README's crosswalk, and what an imported
/// file's provenance records (`servebench.import.definitions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Definition {
    /// The metric (one of [`METRICS`]).
    pub metric: &'static str,
    /// The tool's own name for it (its key in the tool's output).
    pub name: &'static str,
    /// How it is computed.
    pub formula: &'static str,
    /// The unit the tool reports it in.
    pub unit: &'static str,
    /// What one sample is: per chunk (pooled over requests), per request, or per run.
    pub pooled: &'static str,
    /// Where the clock starts (and for throughputs, what the duration spans).
    pub clock: &'static str,
}

/// The metrics of the crosswalk, in order.
pub const METRICS: [&str; 6] = ["TTFT", "TPOT", "ITL", "E2E", "request throughput", "output throughput"];

const PER_REQ: &str = "per request";
const PER_CHUNK: &str = "per chunk, pooled over requests";
const PER_RUN: &str = "per run";

const fn def(
    metric: &'static str,
    name: &'static str,
    formula: &'static str,
    unit: &'static str,
    pooled: &'static str,
    clock: &'static str,
) -> Definition {
    Definition {
        metric,
        name,
        formula,
        unit,
        pooled,
        clock,
    }
}

/// servebench's own definitions (replay's rows, `agg` with the default `--defs vllm`).
pub fn own_definitions() -> [Definition; 6] {
    const SENT: &str = "sent_at: the request's first byte written (scheduled_at for the _sched variants)";
    [
        def(
            METRICS[0],
            rc::TTFT_MS,
            "first chunk carrying generated content, reasoning or answer - sent_at (the first answer token: ttfa_ms)",
            "ms",
            PER_REQ,
            SENT,
        ),
        def(
            METRICS[1],
            rc::TPOT_MS,
            "(E2E - TTFT) / (output_tokens - 1), output_tokens > 1",
            "ms",
            PER_REQ,
            SENT,
        ),
        def(
            METRICS[2],
            "itl_*_ms",
            "gap between consecutive content chunks",
            "ms",
            PER_CHUNK,
            "the previous chunk",
        ),
        def(
            METRICS[3],
            rc::E2E_MS,
            "last content chunk - sent_at",
            "ms",
            PER_REQ,
            SENT,
        ),
        def(
            METRICS[4],
            col::REQ_PER_S,
            "requests / duration",
            "req/s",
            PER_RUN,
            "duration: first sent_at to last done_at of the group",
        ),
        def(
            METRICS[5],
            col::OUTPUT_TOK_PER_S,
            "output tokens of ok requests (server usage, else chunks) / duration",
            "tok/s",
            PER_RUN,
            "duration: first sent_at to last done_at of the group",
        ),
    ]
}

impl Defs {
    /// Every registered definition set, in README's order.
    pub const ALL: [Defs; 7] = [
        Defs::Vllm,
        Defs::Sglang,
        Defs::Aiperf,
        Defs::Guidellm,
        Defs::GenaiBench,
        Defs::InferencePerf,
        Defs::Llmperf,
    ];

    /// The tool's display name.
    pub fn tool(self) -> &'static str {
        match self {
            Defs::Vllm => "vLLM bench serve",
            Defs::Sglang => "SGLang bench_serving",
            Defs::Aiperf => "AIPerf",
            Defs::Guidellm => "GuideLLM",
            Defs::GenaiBench => "genai-bench",
            Defs::InferencePerf => "inference-perf",
            Defs::Llmperf => "LLMPerf",
        }
    }

    /// Each metric of [`METRICS`] as the tool defines it. `agg --defs` computes TPOT and ITL
    /// this way ([`Defs::tpot`], [`Defs::itl`]); TTFT and E2E are the rows' own (a file's clock
    /// cannot be moved after the fact: the `clock` column says where each tool's starts).
    pub fn definitions(self) -> [Definition; 6] {
        match self {
            Defs::Vllm => {
                const ST: &str = "start_time: just before the POST, after the --max-concurrency semaphore (client queueing not included)";
                const DUR: &str = "duration: before the first request is scheduled to after the last response";
                [
                    def(
                        METRICS[0],
                        "ttft",
                        "first SSE chunk with `choices` (text may be empty; reasoning counts) - start_time",
                        "s per request, ms in the summary",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "tpot",
                        "(latency - ttft) / (output_tokens - 1), output_tokens > 1",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "itl",
                        "gap between consecutive chunks with `choices`",
                        "s per request, ms in the summary",
                        PER_CHUNK,
                        "the previous chunk",
                    ),
                    def(
                        METRICS[3],
                        "e2el",
                        "last chunk with `choices` - start_time",
                        "s per request, ms in the summary",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[4],
                        "request_throughput",
                        "completed / duration",
                        "req/s",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "output_throughput",
                        "output tokens (server usage, else its tokenizer on the text) / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
            Defs::Sglang => {
                const ST: &str = "st: just before the POST, after the --max-concurrency semaphore";
                const DUR: &str = "duration: after its warm-up and a 1 s pause, before the first request is scheduled, to after the last response";
                [
                    def(
                        METRICS[0],
                        "ttft",
                        "first chunk with non-empty `delta.content` or text - st (answer only: reasoning deltas do not count, so agg --defs sglang uses ttfa_ms)",
                        "s per request, ms in the summary",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "tpot",
                        "(latency - ttft) / (output_len - 1), output_len > 1 (latency not saved per request)",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "itl",
                        "gap between consecutive chunks with non-empty text",
                        "s per request, ms in the summary",
                        PER_CHUNK,
                        "the previous chunk",
                    ),
                    def(
                        METRICS[3],
                        "e2e_latency",
                        "the stream's last line (`[DONE]` included) - st; not saved per request",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[4],
                        "request_throughput",
                        "completed / duration",
                        "req/s",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "output_throughput",
                        "output_len summed (server usage, else the length asked for) / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
            Defs::Aiperf => {
                const ST: &str = "request start: when the worker sends the request (after its concurrency credit)";
                const DUR: &str = "duration: the profiling phase's start_time to end_time (profile_export_aiperf.json), a little longer than first request start to last response";
                [
                    def(
                        METRICS[0],
                        "time_to_first_token",
                        "first response chunk, reasoning included - request start (its time_to_first_output_token leaves reasoning out: ttfa_ms)",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "inter_token_latency",
                        "AIPerf reports no TPOT; its ITL is vLLM's TPOT",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "inter_token_latency",
                        "(request_latency - TTFT) / (output_sequence_length - 1); the length by AIPerf's tokenizer unless --use-server-token-count",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[3],
                        "request_latency",
                        "last response chunk - request start",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[4],
                        "request_throughput",
                        "requests / duration",
                        "req/s",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "output_token_throughput",
                        "output tokens (its tokenizer's count) / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
            Defs::Guidellm => {
                const ST: &str = "request_start: when the worker sends the request";
                const DUR: &str = "duration: the benchmark's start to its end";
                [
                    def(
                        METRICS[0],
                        "time_to_first_token_ms",
                        "first token, reasoning included - request_start (its time_to_first_output_token_ms leaves reasoning out: ttfa_ms)",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "time_per_output_token_ms",
                        "(last token - request_start) / output tokens (TTFT included)",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "inter_token_latency_ms",
                        "(last token - first token) / (output tokens - 1)",
                        "ms",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[3],
                        "request_latency",
                        "request_end - request_start (runs past the last token)",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[4],
                        "requests_per_second",
                        "completed requests / duration",
                        "req/s",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "output_tokens_per_second",
                        "output tokens / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
            Defs::GenaiBench => {
                const ST: &str = "start_time: when the request is sent";
                const DUR: &str = "duration: the run's first request start to its last end";
                [
                    def(
                        METRICS[0],
                        "ttft",
                        "first content or reasoning delta - start_time",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "tpot",
                        "(e2e_latency - ttft) / (num_output_tokens - 1)",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "tpot",
                        "genai-bench keeps no chunk gaps; its ITL is the per-request TPOT",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(METRICS[3], "e2e_latency", "end - start_time", "s", PER_REQ, ST),
                    def(
                        METRICS[4],
                        "requests_per_second",
                        "completed requests / duration",
                        "req/s",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "mean_output_throughput_tokens_per_s",
                        "output tokens / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
            Defs::InferencePerf => {
                const ST: &str = "start_time: when the request is sent";
                const DUR: &str = "duration: the stage's first request start to its last end";
                [
                    def(
                        METRICS[0],
                        "time_to_first_token",
                        "first chunk with `delta.content` or text - start_time (answer only: agg --defs inference-perf uses ttfa_ms)",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "time_per_output_token",
                        "(last - first output token time) / (output tokens - 1); tokens by its tokenizer",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "inter_token_latency",
                        "gap between consecutive output token times, one per token (a chunk's tokens share its arrival, so most gaps inside a chunk are 0)",
                        "s",
                        "per token, pooled over requests",
                        "the previous token",
                    ),
                    def(
                        METRICS[3],
                        "request_latency",
                        "end_time - start_time (normalized_time_per_output_token = request_latency / output tokens)",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[4],
                        "requests_per_sec",
                        "requests / duration",
                        "req/s",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "output_tokens_per_sec",
                        "output tokens / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
            Defs::Llmperf => {
                const ST: &str = "start_time: just before the request is sent";
                const DUR: &str = "duration: the run's start to its end";
                [
                    def(
                        METRICS[0],
                        "ttft_s",
                        "first chunk with `delta.content` - start_time (answer only: agg --defs llmperf uses ttfa_ms)",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[1],
                        "inter_token_latency_s",
                        "LLMPerf reports no TPOT; its ITL is E2E / output tokens",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[2],
                        "inter_token_latency_s",
                        "(last content chunk - start_time) / output tokens (TTFT included; tokens by its tokenizer)",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[3],
                        "end_to_end_latency_s",
                        "the stream's close - start_time",
                        "s",
                        PER_REQ,
                        ST,
                    ),
                    def(
                        METRICS[4],
                        "results_num_completed_requests_per_min",
                        "completed requests / duration x 60",
                        "req/min",
                        PER_RUN,
                        DUR,
                    ),
                    def(
                        METRICS[5],
                        "results_mean_output_throughput_token_per_s",
                        "output tokens / duration",
                        "tok/s",
                        PER_RUN,
                        DUR,
                    ),
                ]
            }
        }
    }
}

/// README's crosswalk: every metric of [`METRICS`] as servebench and each tool of [`Defs::ALL`]
/// define it (checked against README by `tests/it/readme.rs`).
pub fn crosswalk_markdown() -> String {
    let mut s = String::from(
        "| metric | tool | its name | formula | unit | one sample is | the clock starts at |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, m) in METRICS.iter().enumerate() {
        let own = own_definitions()[i];
        let rows = std::iter::once(("servebench (replay, `--defs vllm`)", own))
            .chain(Defs::ALL.iter().map(|d| (d.tool(), d.definitions()[i])));
        for (tool, d) in rows {
            s.push_str(&format!(
                "| {m} | {tool} | `{}` | {} | {} | {} | {} |\n",
                d.name,
                d.formula.replace('|', "\\|"),
                d.unit,
                d.pooled,
                d.clock.replace('|', "\\|")
            ));
        }
    }
    s
}

/// Service-level objectives for goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl std::str::FromStr for Slo {
    type Err = String;
    /// `ttft=500ms,tpot=50ms,e2e=10s`: each value in the one duration grammar ([`crate::units`])
    fn from_str(s: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--slo {part:?}: use metric=value, e.g. ttft=500ms"))?;
            let v = v.trim();
            let ms = crate::units::parse_ms(v).map_err(|e| format!("--slo {part:?}: {e}"))?;
            if !(ms.is_finite() && ms > 0.0) {
                return Err(format!("--slo {part:?}: must be positive"));
            }
            match k.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2e" => slo.e2e_ms = Some(ms),
                o => return Err(format!("--slo: unknown metric {o:?}; use ttft, tpot, e2e")),
            }
        }
        Ok(slo)
    }
}

impl Slo {
    pub fn any(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }
}

/// Options of one aggregation.
#[derive(Debug, Clone)]
pub struct Options {
    pub by: Vec<String>,
    pub slo: Slo,
    pub include_warmup: bool,
    pub defs: Defs,
    pub bootstrap: usize,
    pub seed: u64,
    /// Latency values kept exactly in memory, over all groups (8 bytes each). Beyond it,
    /// every metric moves to an HDR histogram (bounded memory, percentiles within 0.1%).
    pub exact_budget: usize,
}

/// Default exact-value budget: 256 M values (2 GiB).
pub const EXACT_BUDGET: usize = 256 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            by: Vec::new(),
            slo: Slo::default(),
            include_warmup: false,
            defs: Defs::Vllm,
            bootstrap: 1000,
            seed: 0,
            exact_budget: EXACT_BUDGET,
        }
    }
}

/// Columns `--by` may name besides the run-identity keys, which are always grouped on.
pub const BY_COLUMNS: &[&str] = &[col::CATEGORY, col::TURN];
pub(crate) const ID_KEYS: &[&str] = &[
    col::LABEL,
    col::ENGINE,
    col::MODEL,
    col::QUANT,
    col::CONCURRENCY,
    col::RATE_RPS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_is_of_its_metric() {
        for d in Defs::ALL {
            let defs = d.definitions();
            for (i, m) in METRICS.iter().enumerate() {
                assert_eq!(defs[i].metric, *m, "{d:?}");
            }
            assert_eq!(<Defs as clap::ValueEnum>::from_str(d.name(), false), Ok(d));
        }
        assert_eq!(
            crosswalk_markdown().lines().count(),
            2 + METRICS.len() * (1 + Defs::ALL.len())
        );
    }

    #[test]
    fn slo_parse() {
        let s: Slo = "ttft=500ms, tpot=50ms, e2e=2s".parse().unwrap();
        assert_eq!(
            s,
            Slo {
                ttft_ms: Some(500.0),
                tpot_ms: Some(50.0),
                e2e_ms: Some(2000.0)
            }
        );
        assert!("ttft".parse::<Slo>().is_err());
        assert!("x=1".parse::<Slo>().is_err());
        assert!("ttft=-1ms".parse::<Slo>().is_err());
        let e = "ttft=500".parse::<Slo>().unwrap_err();
        assert!(e.contains("no unit"), "{e}");
    }
}
