//! Traces: the rows of the trace contract, synthetic arrival processes, prompt sets, and
//! importers of public trace formats.

pub mod import;
pub mod prompts;
pub mod ramp;
pub mod shared;
pub mod stats;
pub mod synth;
pub mod tokenizer;
pub mod tokens;
pub mod transform;

use arrow_array::RecordBatch;

use crate::io::cols::{self, RowCtx};
use crate::io::{DataError, Input};
use crate::schema::trace::col;
use crate::schema::{Rows, TRACE};

/// Metadata keys a trace carries besides the common provenance.
pub const META_SEED: &str = "servebench.trace.seed";
pub const META_RATE: &str = "servebench.trace.rate_rps";
pub const META_PROCESS: &str = "servebench.trace.process";
/// The rate ramp the arrivals follow (`--ramp`, as written), where there is one.
pub const META_RAMP: &str = "servebench.trace.ramp";
pub const META_TOKENIZER: &str = "servebench.trace.tokenizer";
/// The importer (sharegpt, azure, ...) and the file it read.
pub const META_SOURCE: &str = "servebench.trace.source";
pub const META_SOURCE_FILE: &str = "servebench.trace.source_file";
/// The shared-prefix workload (`--prefix-groups`), as `groups=G,prefix_tokens=P,...`.
pub const META_SHARED_PREFIX: &str = "servebench.trace.shared_prefix";
/// The trace tools applied (`--window`, `--rate`, ...).
pub const META_TRANSFORM: &str = "servebench.trace.transform";

/// Tokens per Mooncake prefix block: the unit of a trace's `prefix_blocks` (importers check
/// it, replay synthesises each block's text to this length).
pub const BLOCK_TOKENS: u32 = 512;

pub use crate::schema::TraceRow;

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
        TraceRow::encode(&rows, &())
    }
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
    let id = c(col::REQUEST_ID).expect("checked");
    let arr = c(col::ARRIVAL_S).expect("checked");
    let inp = c(col::INPUT_TOKENS).expect("checked");
    let out = c(col::OUTPUT_TOKENS).expect("checked");
    let sess = c(col::SESSION_ID);
    let turn = c(col::TURN);
    let prompt = c(col::PROMPT);
    let blocks = c(col::PREFIX_BLOCKS);
    let cat = c(col::CATEGORY);
    let src = c(col::SOURCE);
    let mut rows = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let arrival_s = ctx.req(ctx.f64(arr.as_ref(), i, col::ARRIVAL_S)?, i, col::ARRIVAL_S)?;
        if arrival_s < 0.0 {
            return Err(ctx.err(i, col::ARRIVAL_S, format!("{arrival_s} is negative")));
        }
        let prefix_blocks = match &blocks {
            Some(a) => match cols::list_at(a.as_ref(), i) {
                Some(v) => {
                    let mut ids = Vec::with_capacity(v.len());
                    for j in 0..v.len() {
                        ids.push(ctx.req(ctx.u64(v.as_ref(), j, col::PREFIX_BLOCKS)?, i, col::PREFIX_BLOCKS)?);
                    }
                    Some(ids)
                }
                None => None,
            },
            None => None,
        };
        rows.push(TraceRow {
            request_id: ctx.req(ctx.u64(id.as_ref(), i, col::REQUEST_ID)?, i, col::REQUEST_ID)?,
            arrival_s,
            session_id: match &sess {
                Some(a) => ctx.u64(a.as_ref(), i, col::SESSION_ID)?,
                None => None,
            },
            turn: match &turn {
                Some(a) => ctx.u32(a.as_ref(), i, col::TURN)?,
                None => None,
            },
            input_tokens: ctx.req(ctx.u32(inp.as_ref(), i, col::INPUT_TOKENS)?, i, col::INPUT_TOKENS)?,
            output_tokens: ctx.req(ctx.u32(out.as_ref(), i, col::OUTPUT_TOKENS)?, i, col::OUTPUT_TOKENS)?,
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
