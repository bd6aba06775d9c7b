//! Traces: the rows of the trace contract, synthetic arrival processes, prompt sets, and
//! importers of public trace formats.

pub mod import;
pub mod prompts;
pub mod stats;
pub mod synth;
pub mod tokenizer;
pub mod tokens;
pub mod transform;

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt32Array, UInt64Array};

use crate::io::cols::{self, RowCtx};
use crate::io::{DataError, Input};
use crate::schema::TRACE;

/// Metadata keys a trace carries besides the common provenance.
pub const META_SEED: &str = "servebench.trace.seed";
pub const META_RATE: &str = "servebench.trace.rate_rps";
pub const META_PROCESS: &str = "servebench.trace.process";
pub const META_TOKENIZER: &str = "servebench.trace.tokenizer";
/// The importer (sharegpt, azure, ...) and the file it read.
pub const META_SOURCE: &str = "servebench.trace.source";
pub const META_SOURCE_FILE: &str = "servebench.trace.source_file";
/// The trace tools applied (`--window`, `--rate`, ...).
pub const META_TRANSFORM: &str = "servebench.trace.transform";

/// Tokens per Mooncake prefix block: the unit of a trace's `prefix_blocks` (importers check
/// it, replay synthesises each block's text to this length).
pub const BLOCK_TOKENS: u32 = 512;

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    pub request_id: u64,
    pub arrival_s: f64,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub prompt: Option<String>,
    pub prefix_blocks: Option<Vec<u64>>,
    pub category: Option<String>,
    pub source: Option<String>,
}

impl TraceRow {
    pub fn new(request_id: u64, arrival_s: f64, input_tokens: u32, output_tokens: u32) -> Self {
        TraceRow {
            request_id,
            arrival_s,
            session_id: None,
            turn: None,
            input_tokens,
            output_tokens,
            prompt: None,
            prefix_blocks: None,
            category: None,
            source: None,
        }
    }
}

/// Builds trace record batches from rows.
#[derive(Debug, Default)]
pub struct TraceBatch {
    rows: Vec<TraceRow>,
}

impl TraceBatch {
    pub fn push(&mut self, r: TraceRow) {
        self.rows.push(r);
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Turn the buffered rows into a batch of the trace contract and clear the buffer.
    pub fn take_batch(&mut self) -> RecordBatch {
        let rows = std::mem::take(&mut self.rows);
        to_batch(&rows)
    }
}

/// Rows to one record batch of the trace contract.
pub fn to_batch(rows: &[TraceRow]) -> RecordBatch {
    let mut blocks = ListBuilder::new(UInt64Builder::new());
    for r in rows {
        match &r.prefix_blocks {
            Some(v) => {
                blocks.values().append_slice(v);
                blocks.append(true);
            }
            None => blocks.append(false),
        }
    }
    let mut prompt = StringBuilder::new();
    let mut cat = StringBuilder::new();
    let mut src = StringBuilder::new();
    for r in rows {
        prompt.append_option(r.prompt.as_deref());
        cat.append_option(r.category.as_deref());
        src.append_option(r.source.as_deref());
    }
    let mut sess = UInt64Builder::with_capacity(rows.len());
    let mut turn = UInt32Builder::with_capacity(rows.len());
    for r in rows {
        sess.append_option(r.session_id);
        turn.append_option(r.turn);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.request_id))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.arrival_s))),
        Arc::new(sess.finish()),
        Arc::new(turn.finish()),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.input_tokens))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.output_tokens))),
        Arc::new(prompt.finish()),
        Arc::new(blocks.finish()),
        Arc::new(cat.finish()),
        Arc::new(src.finish()),
    ];
    RecordBatch::try_new(TRACE.schema(), cols).expect("trace batch matches its contract")
}

/// Reads trace rows from any file that has the trace contract's required columns, batch by
/// batch (a pipe from tracegen flows as it is written).
pub struct TraceReader {
    input: Input,
    base_row: u64,
}

impl TraceReader {
    pub fn new(input: Input) -> Result<TraceReader, DataError> {
        cols::check_required(&input.name, &input.schema, &TRACE)?;
        Ok(TraceReader { input, base_row: 0 })
    }

    pub fn open(path: &str) -> Result<TraceReader, DataError> {
        TraceReader::new(crate::io::open(path)?)
    }

    pub fn meta(&self) -> &crate::meta::Meta {
        &self.input.meta
    }

    pub fn name(&self) -> &str {
        &self.input.name
    }

    pub fn num_rows(&self) -> Option<u64> {
        self.input.num_rows
    }

    /// The next batch of rows, or None at the end.
    pub fn next_rows(&mut self) -> Option<Result<Vec<TraceRow>, DataError>> {
        let b = match self.input.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let ctx = RowCtx {
            path: &self.input.name,
            base_row: self.base_row,
        };
        let r = batch_rows(&ctx, &b);
        self.base_row += b.num_rows() as u64;
        Some(r)
    }

    /// Read everything (for tools that need the whole trace, such as `tracegen stats`).
    pub fn read_all(mut self) -> Result<Vec<TraceRow>, DataError> {
        let mut out = Vec::new();
        while let Some(r) = self.next_rows() {
            out.extend(r?);
        }
        Ok(out)
    }
}

fn batch_rows(ctx: &RowCtx<'_>, b: &RecordBatch) -> Result<Vec<TraceRow>, DataError> {
    let c = |n: &str| cols::get(b, n).cloned();
    let id = c("request_id").expect("checked");
    let arr = c("arrival_s").expect("checked");
    let inp = c("input_tokens").expect("checked");
    let out = c("output_tokens").expect("checked");
    let sess = c("session_id");
    let turn = c("turn");
    let prompt = c("prompt");
    let blocks = c("prefix_blocks");
    let cat = c("category");
    let src = c("source");
    let mut rows = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let arrival_s = ctx.req(ctx.f64(arr.as_ref(), i, "arrival_s")?, i, "arrival_s")?;
        if arrival_s < 0.0 {
            return Err(ctx.err(i, "arrival_s", format!("{arrival_s} is negative")));
        }
        let prefix_blocks = match &blocks {
            Some(a) => match cols::list_at(a.as_ref(), i) {
                Some(v) => {
                    let mut ids = Vec::with_capacity(v.len());
                    for j in 0..v.len() {
                        ids.push(ctx.req(ctx.u64(v.as_ref(), j, "prefix_blocks")?, i, "prefix_blocks")?);
                    }
                    Some(ids)
                }
                None => None,
            },
            None => None,
        };
        rows.push(TraceRow {
            request_id: ctx.req(ctx.u64(id.as_ref(), i, "request_id")?, i, "request_id")?,
            arrival_s,
            session_id: match &sess {
                Some(a) => ctx.u64(a.as_ref(), i, "session_id")?,
                None => None,
            },
            turn: match &turn {
                Some(a) => ctx.u32(a.as_ref(), i, "turn")?,
                None => None,
            },
            input_tokens: ctx.req(ctx.u32(inp.as_ref(), i, "input_tokens")?, i, "input_tokens")?,
            output_tokens: ctx.req(ctx.u32(out.as_ref(), i, "output_tokens")?, i, "output_tokens")?,
            prompt: prompt
                .as_ref()
                .and_then(|a| cols::str_at(a.as_ref(), i))
                .map(str::to_string),
            prefix_blocks,
            category: cat
                .as_ref()
                .and_then(|a| cols::str_at(a.as_ref(), i))
                .map(str::to_string),
            source: src
                .as_ref()
                .and_then(|a| cols::str_at(a.as_ref(), i))
                .map(str::to_string),
        });
    }
    Ok(rows)
}

/// The trace contract's schema.
pub fn schema() -> arrow_schema::SchemaRef {
    TRACE.schema()
}
