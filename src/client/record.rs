//! One requests row per trace row, and its conversion to the requests contract.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};

use crate::schema::REQUESTS;

/// What happened to a request (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Ok,
    HttpError,
    Timeout,
    ConnectError,
    StreamError,
    Cancelled,
    NotSent,
}

impl Status {
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
}

/// Labels shared by every row of a run.
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
    pub ttft_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub ttft_sched_ms: Option<f64>,
    pub e2e_sched_ms: Option<f64>,
    pub warmup: bool,
    pub chunk_times_ms: Vec<f64>,
    pub chunk_tokens: Option<Vec<u32>>,
    pub input_tokens: u32,
    pub server_input_tokens: Option<u32>,
    pub requested_output_tokens: u32,
    pub output_tokens: u32,
    pub output_tokens_source: &'static str,
    pub status: Status,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub finish_reason: Option<String>,
    pub category: Option<String>,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
}

impl Record {
    /// A row for a request that was never sent.
    pub fn not_sent(row: &crate::trace::TraceRow, scheduled_at_us: Option<i64>, why: &str) -> Record {
        Record {
            request_id: row.request_id,
            scheduled_at_us,
            sent_at_us: None,
            first_token_at_us: None,
            done_at_us: None,
            sched_lag_ms: None,
            ttft_ms: None,
            e2e_ms: None,
            tpot_ms: None,
            ttft_sched_ms: None,
            e2e_sched_ms: None,
            warmup: false,
            chunk_times_ms: Vec::new(),
            chunk_tokens: None,
            input_tokens: row.input_tokens,
            server_input_tokens: None,
            requested_output_tokens: row.output_tokens,
            output_tokens: 0,
            output_tokens_source: "chunks",
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
pub fn tpot(ttft_ms: f64, e2e_ms: f64, output_tokens: u32) -> Option<f64> {
    (output_tokens > 1).then(|| (e2e_ms - ttft_ms) / (output_tokens - 1) as f64)
}

/// Build a requests-contract batch from records.
pub fn to_batch(labels: &RunLabels, recs: &[Record]) -> RecordBatch {
    let n = recs.len();
    let s = |v: &str| {
        let mut b = StringBuilder::with_capacity(n, n * v.len());
        for _ in 0..n {
            b.append_value(v);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let so = |v: &Option<String>| {
        let mut b = StringBuilder::with_capacity(n, 0);
        for _ in 0..n {
            b.append_option(v.as_deref());
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let ts = |f: &dyn Fn(&Record) -> Option<i64>| {
        let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        for r in recs {
            b.append_option(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let f64c = |f: &dyn Fn(&Record) -> Option<f64>| {
        let mut b = Float64Builder::with_capacity(n);
        for r in recs {
            b.append_option(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let u32c = |f: &dyn Fn(&Record) -> Option<u32>| {
        let mut b = UInt32Builder::with_capacity(n);
        for r in recs {
            b.append_option(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let strc = |f: &dyn Fn(&Record) -> Option<&str>| {
        let mut b = StringBuilder::with_capacity(n, n * 8);
        for r in recs {
            b.append_option(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let mut ids = UInt64Builder::with_capacity(n);
    let mut sess = UInt64Builder::with_capacity(n);
    let mut warm = BooleanBuilder::with_capacity(n);
    let mut http = UInt16Builder::with_capacity(n);
    let total_chunks: usize = recs.iter().map(|r| r.chunk_times_ms.len()).sum();
    let mut times = ListBuilder::with_capacity(Float64Builder::with_capacity(total_chunks), n);
    let mut toks = ListBuilder::with_capacity(UInt32Builder::with_capacity(total_chunks), n);
    for r in recs {
        ids.append_value(r.request_id);
        sess.append_option(r.session_id);
        warm.append_value(r.warmup);
        http.append_option(r.http_status);
        times.values().append_slice(&r.chunk_times_ms);
        times.append(true);
        match &r.chunk_tokens {
            Some(v) => {
                toks.values().append_slice(v);
                toks.append(true);
            }
            None => toks.append(false),
        }
    }
    let mut conc = UInt32Builder::with_capacity(n);
    let mut rate = Float64Builder::with_capacity(n);
    for _ in 0..n {
        conc.append_option(labels.concurrency);
        rate.append_option(labels.rate_rps);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(ids.finish()),
        s(&labels.label),
        s(&labels.run_id),
        so(&labels.engine),
        so(&labels.model),
        so(&labels.quant),
        s(&labels.api),
        Arc::new(conc.finish()),
        Arc::new(rate.finish()),
        ts(&|r| r.scheduled_at_us),
        ts(&|r| r.sent_at_us),
        ts(&|r| r.first_token_at_us),
        ts(&|r| r.done_at_us),
        f64c(&|r| r.sched_lag_ms),
        f64c(&|r| r.ttft_ms),
        f64c(&|r| r.e2e_ms),
        f64c(&|r| r.tpot_ms),
        f64c(&|r| r.ttft_sched_ms),
        f64c(&|r| r.e2e_sched_ms),
        Arc::new(warm.finish()),
        Arc::new(times.finish()),
        Arc::new(toks.finish()),
        u32c(&|r| Some(r.input_tokens)),
        u32c(&|r| r.server_input_tokens),
        u32c(&|r| Some(r.requested_output_tokens)),
        u32c(&|r| Some(r.output_tokens)),
        strc(&|r| Some(r.output_tokens_source)),
        strc(&|r| Some(r.status.as_str())),
        Arc::new(http.finish()),
        strc(&|r| r.error.as_deref()),
        strc(&|r| r.finish_reason.as_deref()),
        strc(&|r| r.category.as_deref()),
        Arc::new(sess.finish()),
        u32c(&|r| r.turn),
    ];
    // The list builders make nullable items by default, matching the contract's fields.
    RecordBatch::try_new(REQUESTS.schema(), cols).expect("requests batch matches its contract")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceRow;

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
        let batch = to_batch(&labels, &[a, b]);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), REQUESTS.columns.len());
    }

    #[test]
    fn tpot_definition() {
        assert_eq!(tpot(50.0, 1320.0, 128), Some(10.0));
        assert_eq!(tpot(50.0, 50.0, 1), None);
    }
}
