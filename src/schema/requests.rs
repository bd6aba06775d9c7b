//! The requests contract: one row per trace row replay was asked to send (replay -> agg).

use super::{TraceRow, Ts};

/// What happened to a request (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Status {
    #[default]
    Ok,
    HttpError,
    Timeout,
    ConnectError,
    StreamError,
    Cancelled,
    NotSent,
}

impl Status {
    /// Every status, in the order the summary counts them.
    pub const ALL: [Status; 7] = [
        Status::Ok,
        Status::HttpError,
        Status::Timeout,
        Status::ConnectError,
        Status::StreamError,
        Status::Cancelled,
        Status::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::HttpError => "http_error",
            Status::Timeout => "timeout",
            Status::ConnectError => "connect_error",
            Status::StreamError => "stream_error",
            Status::Cancelled => "cancelled",
            Status::NotSent => "not_sent",
        }
    }

    /// The status named `s` in a requests file.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How a request got its connection (the `connection` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Connection {
    /// Opened for this request, on its path: its set-up delayed `sent_at`.
    New,
    /// Opened ahead by replay's warm pool and first used by this request.
    Warm,
    /// Kept alive from an earlier request.
    Reused,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::New => "new",
            Connection::Warm => "warm",
            Connection::Reused => "reused",
        }
    }
}

/// Labels shared by every row of a run (the encoder's context).
#[derive(Debug, Clone, Default)]
pub struct RunLabels {
    pub label: String,
    pub run_id: String,
    pub engine: Option<String>,
    pub model: Option<String>,
    pub quant: Option<String>,
    pub api: String,
    pub concurrency: Option<u32>,
    pub rate_rps: Option<f64>,
    /// The tool that measured the rows when `import` read them from another tool's file
    /// (`vllm`, `sglang`, ...); None for servebench's own measurements.
    pub source_tool: Option<String>,
}

/// One measured (or unsent) request.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub request_id: u64,
    pub scheduled_at_us: Option<i64>,
    pub sent_at_us: Option<i64>,
    pub first_token_at_us: Option<i64>,
    pub done_at_us: Option<i64>,
    pub sched_lag_ms: Option<f64>,
    /// How the request got its connection (`new`, `warm`, `reused`); None if never sent.
    pub connection: Option<Connection>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    /// When the client planned to give up on the request (replay --cancel), ms after sent_at.
    pub cancel_after_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    /// First chunk carrying reasoning, ms after sent_at (None without reasoning).
    pub ttfr_ms: Option<f64>,
    /// First chunk carrying the answer, ms after sent_at (None when the output was all reasoning).
    pub ttfa_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub ttft_sched_ms: Option<f64>,
    pub e2e_sched_ms: Option<f64>,
    pub warmup: bool,
    pub chunk_times_ms: Vec<f64>,
    pub chunk_tokens: Option<Vec<u32>>,
    pub input_tokens: u32,
    pub server_input_tokens: Option<u32>,
    pub cached_tokens: Option<u32>,
    pub requested_output_tokens: u32,
    pub output_tokens: u32,
    pub output_tokens_source: &'static str,
    /// Reasoning tokens among output_tokens (see the column).
    pub reasoning_tokens: Option<u32>,
    pub status: Status,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub finish_reason: Option<String>,
    pub category: Option<String>,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
}

impl Record {
    /// The client closed it on purpose, as a user giving up (`replay --cancel`).
    pub fn gave_up(&self) -> bool {
        self.status == Status::Cancelled && self.cancel_after_ms.is_some()
    }

    /// A row for a request that was never sent.
    pub fn not_sent(row: &TraceRow, scheduled_at_us: Option<i64>, why: &str) -> Record {
        Record {
            request_id: row.request_id,
            scheduled_at_us,
            sent_at_us: None,
            first_token_at_us: None,
            done_at_us: None,
            sched_lag_ms: None,
            connection: None,
            connect_ms: None,
            tls_ms: None,
            cancel_after_ms: None,
            ttft_ms: None,
            ttfr_ms: None,
            ttfa_ms: None,
            e2e_ms: None,
            tpot_ms: None,
            ttft_sched_ms: None,
            e2e_sched_ms: None,
            warmup: false,
            chunk_times_ms: Vec::new(),
            chunk_tokens: None,
            input_tokens: row.input_tokens,
            server_input_tokens: None,
            cached_tokens: None,
            requested_output_tokens: row.output_tokens,
            output_tokens: 0,
            output_tokens_source: "chunks",
            reasoning_tokens: None,
            status: Status::NotSent,
            http_status: None,
            error: Some(why.to_string()),
            finish_reason: None,
            category: row.category.clone(),
            session_id: row.session_id,
            turn: row.turn,
        }
    }
}

/// TPOT as DESIGN.md defines it: (E2E - TTFT) / (output_tokens - 1), for more than one token.
/// The one definition: replay's rows and agg's other definitions call it.
pub fn tpot(ttft_ms: f64, e2e_ms: f64, output_tokens: u32) -> Option<f64> {
    (output_tokens > 1).then(|| (e2e_ms - ttft_ms) / (output_tokens - 1) as f64)
}

crate::contract! {
    /// one row per trace row replay was asked to send, whatever happened to it
    pub static REQUESTS = ("requests", 1, "one row per trace row replay was asked to send, whatever happened to it (replay -> agg)");
    rows Record, ctx RunLabels;
    /// Column names of the requests contract.
    names col;
    REQUEST_ID "request_id": u64, opt, "", "the trace's request_id", field(request_id);
    LABEL "label": String, opt, "", "run label given to replay (--label)", get(|_, l| l.label.as_str());
    RUN_ID "run_id": String, opt, "", "id of the replay run that wrote the row", get(|_, l| l.run_id.as_str());
    ENGINE "engine": Option<String>, opt, "", "engine name (from engine-up state or --engine)", get(|_, l| l.engine.as_deref());
    MODEL "model": Option<String>, opt, "", "model served (from /v1/models or --model)", get(|_, l| l.model.as_deref());
    QUANT "quant": Option<String>, opt, "", "quantization variant (fp16, awq, fp8, ...)", get(|_, l| l.quant.as_deref());
    API "api": String, opt, "", "protocol used: chat, completions, tgi, sglang, llamacpp", get(|_, l| l.api.as_str());
    CONCURRENCY "concurrency": Option<u32>, opt, "users", "closed-loop users (--concurrency); null in open loop", get(|_, l| l.concurrency);
    RATE_RPS "rate_rps": Option<f64>, opt, "req/s", "open-loop target rate of the trace (after --time-scale); null in closed loop", get(|_, l| l.rate_rps);
    SCHEDULED_AT "scheduled_at": Option<Ts>, opt, "", "when the request became due: its trace time (open loop), or when its user's previous request ended (closed loop; the run start for a user's first)", get(|r, _| r.scheduled_at_us);
    SENT_AT "sent_at": Option<Ts>, opt, "", "when the request's first byte was written; null if never sent", get(|r, _| r.sent_at_us);
    FIRST_TOKEN_AT "first_token_at": Option<Ts>, opt, "", "arrival of the first chunk carrying generated content", get(|r, _| r.first_token_at_us);
    DONE_AT "done_at": Option<Ts>, opt, "", "when the response ended (last byte, error or cancel)", get(|r, _| r.done_at_us);
    SCHED_LAG_MS "sched_lag_ms": Option<f64>, opt, "ms", "sent_at - scheduled_at", field(sched_lag_ms);
    CONNECTION "connection": Option<String>, opt, "", "how the request got its connection: new (opened for it, so its set-up is inside sched_lag_ms), warm (opened ahead by replay's warm pool, off the schedule), reused (kept alive); a gateway that closes connections shows as few reused; null if never sent", get(|r, _| r.connection.map(Connection::as_str));
    CONNECT_MS "connect_ms": Option<f64>, opt, "ms", "TCP connect time of the request's connection when new or warm; null when reused", field(connect_ms);
    TLS_MS "tls_ms": Option<f64>, opt, "ms", "TLS handshake time of the request's connection when new or warm over https; null over http or when reused", field(tls_ms);
    CANCEL_AFTER_MS "cancel_after_ms": Option<f64>, opt, "ms", "when the client planned to give up on this request (replay --cancel), after sent_at (ttft+D: TTFT + D, known once the first token came); null when its user never gives up. A cancelled row with it set is a user who gave up, not a stopped run", field(cancel_after_ms);
    TTFT_MS "ttft_ms": Option<f64>, opt, "ms", "first content chunk - sent_at: the first token of any kind, reasoning or answer", field(ttft_ms);
    TTFR_MS "ttfr_ms": Option<f64>, opt, "ms", "first chunk carrying reasoning - sent_at: a reasoning field (delta.reasoning_content as SGLang, llama.cpp, TensorRT-LLM send it, delta.reasoning as vLLM does, Ollama's thinking) or, where no field carries reasoning, text before a closing </think> tag; null without reasoning", field(ttfr_ms);
    TTFA_MS "ttfa_ms": Option<f64>, opt, "ms", "time to first answer token: first chunk carrying answer content (not reasoning) - sent_at; equals ttft_ms without reasoning; null when the output was all reasoning (it ran out of tokens before answering)", field(ttfa_ms);
    E2E_MS "e2e_ms": Option<f64>, opt, "ms", "last content chunk - sent_at", field(e2e_ms);
    TPOT_MS "tpot_ms": Option<f64>, opt, "ms", "(e2e_ms - ttft_ms) / (output_tokens - 1), when output_tokens > 1", field(tpot_ms);
    TTFT_SCHED_MS "ttft_sched_ms": Option<f64>, opt, "ms", "first content chunk - scheduled_at (what a user of a late client sees)", field(ttft_sched_ms);
    E2E_SCHED_MS "e2e_sched_ms": Option<f64>, opt, "ms", "last content chunk - scheduled_at", field(e2e_sched_ms);
    WARMUP "warmup": bool, opt, "", "a warm-up request (agg drops these unless asked)", field(warmup);
    CHUNK_TIMES_MS "chunk_times_ms": Vec<f64>, opt, "ms", "arrival of every content chunk, ms after sent_at", field(chunk_times_ms);
    CHUNK_TOKENS "chunk_tokens": Option<Vec<u32>>, opt, "tokens", "tokens in each content chunk when the server says; null otherwise", field(chunk_tokens);
    INPUT_TOKENS "input_tokens": u32, opt, "tokens", "prompt length asked for by the trace", field(input_tokens);
    SERVER_INPUT_TOKENS "server_input_tokens": Option<u32>, opt, "tokens", "prompt length the server reported (usage), if any", field(server_input_tokens);
    CACHED_TOKENS "cached_tokens": Option<u32>, opt, "tokens", "prompt tokens the server served from its prefix cache, as it reported them (OpenAI usage.prompt_tokens_details.cached_tokens, SGLang meta_info.cached_tokens, llama.cpp timings.cache_n); null when it did not say", field(cached_tokens);
    REQUESTED_OUTPUT_TOKENS "requested_output_tokens": u32, opt, "tokens", "max_tokens sent", field(requested_output_tokens);
    OUTPUT_TOKENS "output_tokens": u32, opt, "tokens", "output tokens received (see output_tokens_source)", field(output_tokens);
    REASONING_TOKENS "reasoning_tokens": Option<u32>, opt, "tokens", "reasoning tokens among output_tokens: the server's count (usage.completion_tokens_details.reasoning_tokens, SGLang's usage.reasoning_tokens and meta_info.reasoning_tokens) when above 0, else the tokens of the chunks before the first answer chunk (per-chunk counts, else one per chunk); 0 without reasoning; null without content", field(reasoning_tokens);
    OUTPUT_TOKENS_SOURCE "output_tokens_source": String, opt, "", "usage: the server's count; chunks: number of content chunks; tool: an imported tool's own count (its tokenizer or its record)", get(|r, _| r.output_tokens_source);
    STATUS "status": String, opt, "", "ok, http_error, timeout, connect_error, stream_error, cancelled, not_sent", get(|r, _| r.status.as_str());
    HTTP_STATUS "http_status": Option<u16>, opt, "", "HTTP status of the response, if one came", field(http_status);
    ERROR "error": Option<String>, opt, "", "what went wrong, with the engine's own message where it gave one", field(error);
    FINISH_REASON "finish_reason": Option<String>, opt, "", "the server's finish reason (length, stop, ...)", field(finish_reason);
    CATEGORY "category": Option<String>, opt, "", "the trace's category", field(category);
    SESSION_ID "session_id": Option<u64>, opt, "", "the trace's session_id", field(session_id);
    TURN "turn": Option<u32>, opt, "", "the trace's turn", field(turn);
    SOURCE_TOOL "source_tool": Option<String>, opt, "", "the tool that measured the row when `import` read it from another tool's file (vllm, sglang, aiperf, guidellm, genai-bench, inference-perf, llmperf), whose definitions it follows; null for servebench's own measurements (replay)", get(|_, l| l.source_tool.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Rows;

    #[test]
    fn batch_matches_contract() {
        let labels = RunLabels {
            label: "x".into(),
            run_id: "r".into(),
            api: "chat".into(),
            ..Default::default()
        };
        let mut a = Record::not_sent(&TraceRow::new(1, 0.0, 10, 20), Some(5), "stopped");
        a.chunk_times_ms = vec![1.0, 2.0];
        a.chunk_tokens = Some(vec![1, 1]);
        let b = Record::not_sent(&TraceRow::new(2, 0.0, 10, 20), None, "stopped");
        let batch = Record::encode(&[a, b], &labels);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), REQUESTS.columns.len());
    }

    #[test]
    fn tpot_definition() {
        assert_eq!(tpot(50.0, 1320.0, 128), Some(10.0));
        assert_eq!(tpot(50.0, 50.0, 1), None);
    }
}
