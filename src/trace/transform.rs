//! The trace tools every importer (and `tracegen transform`) shares, applied to a stream of
//! rows in this order:
//!
//! 1. `--sort`: buffer every row and sort by arrival (the one step that holds the whole trace
//!    in memory; without it a row earlier than its predecessor is an error, since replay sends
//!    rows in file order). The earliest row becomes t = 0.
//! 2. `--max-input N`: drop rows with more input tokens (or `--clamp` them to N: the prompt
//!    text, if any, is cut to N tokens and prefix blocks to ceil(N/512)).
//! 3. `--start D` / `--window D`: keep rows with START <= arrival < START + WINDOW, in the
//!    source's time, re-based so that START is t = 0. Reading stops at the window's end.
//! 4. `--sample F`: keep each row with probability F (seeded); sessions are kept or dropped
//!    whole.
//! 5. `--count N`: stop after N rows.
//! 6. `--time-scale X`: multiply arrival times by X.
//! 7. `--rate R`: multiply arrival times by observed/R, where observed = (n-1)/(last - first)
//!    is the mean rate (one over the mean gap) of the rows that passed 1-6; the burst shape is
//!    kept. This needs the rows twice: they are spilled to a temporary Arrow file.
//!    `--ramp SPEC` instead: the times are first rescaled to a mean rate of 1 and then go
//!    through the ramp's change of time ([`super::ramp`]), so the burst shape is kept while
//!    the mean rate follows the ramp (spilled the same way).
//!
//! Rows are written in batches of 8192 (each flushed: a Parquet row group, or an Arrow batch
//! on a pipe), so memory stays bounded whatever the trace's length.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use super::import::{Flow, ImportError, RowSink};
use super::ramp::Ramp;
use super::synth::stream_seed;
use super::tokenizer::TokenCounter;
use super::tokens::SplitMix;
use super::{META_RAMP, META_RATE, META_TRANSFORM, TraceBatch, TraceReader, TraceRow};
use crate::io::{Format, Sink};
use crate::meta::Meta;
use crate::trace::BLOCK_TOKENS;

/// Rows per written batch.
pub const BATCH_ROWS: usize = 8192;

/// The trace tools' settings (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Transform {
    pub sort: bool,
    pub max_input: Option<u32>,
    pub clamp: bool,
    pub start_s: Option<f64>,
    pub window_s: Option<f64>,
    pub sample: Option<f64>,
    pub count: Option<u64>,
    pub time_scale: Option<f64>,
    pub rate: Option<f64>,
    pub ramp: Option<Ramp>,
    pub seed: u64,
    /// Category for rows that have none.
    pub category: Option<String>,
    /// Number rows 0, 1, ... in output order (importers); else keep request_id (transform).
    pub renumber: bool,
    pub first_id: u64,
}

impl Transform {
    pub fn validate(&self) -> Result<(), String> {
        let pos = |v: Option<f64>, name: &str| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(format!("{name} must be a positive number, got {x}")),
            _ => Ok(()),
        };
        pos(self.time_scale, "--time-scale")?;
        pos(self.rate, "--rate")?;
        pos(self.window_s, "--window")?;
        if let Some(s) = self.start_s
            && !(s.is_finite() && s >= 0.0)
        {
            return Err(format!("--start must be a non-negative duration, got {s}"));
        }
        if let Some(f) = self.sample
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(format!("--sample must be a fraction in (0, 1], got {f}"));
        }
        if [self.rate.is_some(), self.time_scale.is_some(), self.ramp.is_some()]
            .iter()
            .filter(|x| **x)
            .count()
            > 1
        {
            return Err(
                "give one of --rate (rescale to a mean rate), --ramp (a rate that changes) or --time-scale (multiply times)"
                    .into(),
            );
        }
        if self.clamp && self.max_input.is_none() {
            return Err("--clamp needs --max-input N".into());
        }
        if self.max_input == Some(0) {
            return Err("--max-input must be at least 1".into());
        }
        Ok(())
    }

    /// A one-line description for the trace's metadata.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.sort {
            v.push("sorted".to_string());
        }
        if let Some(n) = self.max_input {
            v.push(format!(
                "max_input={n} ({})",
                if self.clamp { "clamped" } else { "dropped" }
            ));
        }
        if let Some(s) = self.start_s {
            v.push(format!("start={s}s"));
        }
        if let Some(w) = self.window_s {
            v.push(format!("window={w}s"));
        }
        if let Some(f) = self.sample {
            v.push(format!("sample={f} seed={}", self.seed));
        }
        if let Some(n) = self.count {
            v.push(format!("count={n}"));
        }
        if let Some(x) = self.time_scale {
            v.push(format!("time_scale={x}"));
        }
        if let Some(r) = self.rate {
            v.push(format!("rate={r}"));
        }
        if let Some(r) = &self.ramp {
            v.push(format!("ramp={}", r.spec()));
        }
        v.join(", ")
    }
}

/// What the pipeline did, for one line on stderr.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub read: u64,
    pub dropped_max_input: u64,
    pub clamped: u64,
    pub outside_window: u64,
    pub sampled_out: u64,
    pub written: u64,
    /// Mean rate of the written trace, (n-1)/(last-first), if it has two distinct times.
    pub rate: Option<f64>,
    pub span_s: f64,
}

impl Tally {
    pub fn describe(&self) -> String {
        let mut s = format!("{} rows read, {} written", self.read, self.written);
        if self.dropped_max_input > 0 {
            s.push_str(&format!(", {} over --max-input dropped", self.dropped_max_input));
        }
        if self.clamped > 0 {
            s.push_str(&format!(", {} clamped to --max-input", self.clamped));
        }
        if self.outside_window > 0 {
            s.push_str(&format!(", {} outside the window", self.outside_window));
        }
        if self.sampled_out > 0 {
            s.push_str(&format!(", {} not sampled", self.sampled_out));
        }
        if let Some(r) = self.rate {
            s.push_str(&format!("; {:.1} s, mean rate {:.3} req/s", self.span_s, r));
        }
        s
    }
}

/// Writes trace rows in batches of [`BATCH_ROWS`], flushing each.
pub struct TraceWriter {
    /// Opened at the first row (or at the end), so an input that fails before its first
    /// row leaves nothing on stdout.
    sink: Option<Sink>,
    open: Option<Opener>,
    buf: TraceBatch,
    n: u64,
    first: Option<f64>,
    last: f64,
}

struct Opener {
    path: Option<PathBuf>,
    format: Option<Format>,
    meta: Meta,
    journal: bool,
}

impl TraceWriter {
    fn new(open: Opener) -> TraceWriter {
        TraceWriter {
            sink: None,
            open: Some(open),
            buf: TraceBatch::default(),
            n: 0,
            first: None,
            last: 0.0,
        }
    }

    pub fn create(path: Option<&Path>, format: Option<Format>, meta: &Meta) -> Result<TraceWriter, ImportError> {
        // refuse a terminal now, not after reading the input
        crate::io::resolve_format(path, format)?;
        Ok(TraceWriter::new(Opener {
            path: path.map(Path::to_path_buf),
            format,
            meta: meta.clone(),
            journal: false,
        }))
    }

    fn journal(path: &Path, meta: &Meta) -> Result<TraceWriter, ImportError> {
        Ok(TraceWriter::new(Opener {
            path: Some(path.to_path_buf()),
            format: None,
            meta: meta.clone(),
            journal: true,
        }))
    }

    fn sink(&mut self) -> Result<&mut Sink, ImportError> {
        if self.sink.is_none()
            && let Some(o) = self.open.take()
        {
            let s = match (&o.path, o.journal) {
                (Some(p), true) => Sink::create_journal(p, super::schema(), &o.meta)?,
                _ => Sink::create(o.path.as_deref(), o.format, super::schema(), &o.meta)?,
            };
            self.sink = Some(s);
        }
        self.sink
            .as_mut()
            .ok_or_else(|| ImportError::Usage("the trace writer was closed".into()))
    }

    pub fn push(&mut self, row: TraceRow) -> Result<(), ImportError> {
        self.first.get_or_insert(row.arrival_s);
        self.last = row.arrival_s;
        self.n += 1;
        self.buf.push(row);
        if self.buf.len() >= BATCH_ROWS {
            let b = self.buf.take_batch();
            let sink = self.sink()?;
            sink.write(&b)?;
            sink.flush()?;
        }
        Ok(())
    }

    /// The mean rate so far: (n-1)/(last-first), one over the mean gap.
    pub fn rate(&self) -> Option<f64> {
        let span = self.last - self.first?;
        (self.n >= 2 && span > 0.0).then(|| (self.n - 1) as f64 / span)
    }

    fn span(&self) -> f64 {
        self.first.map(|f| self.last - f).unwrap_or(0.0)
    }

    /// Write what is buffered and the footer; records the mean rate in the metadata (Parquet
    /// keeps metadata in its footer) unless `rate_known`.
    pub fn finish(mut self, rate_known: bool) -> Result<(u64, Option<f64>, f64), ImportError> {
        let b = self.buf.take_batch();
        let rate = self.rate();
        let span = self.span();
        self.sink()?;
        let mut sink = self
            .sink
            .take()
            .ok_or_else(|| ImportError::Usage("the trace writer was closed".into()))?;
        if b.num_rows() > 0 || sink.rows() == 0 {
            sink.write(&b)?;
        }
        if !rate_known && let Some(r) = rate {
            sink.append_meta(META_RATE, &format!("{r}"));
        }
        let n = sink.finish()?;
        Ok((n, rate, span))
    }
}

/// The streaming pipeline: importers push rows in, the trace comes out (see the module docs).
pub struct Pipeline {
    t: Transform,
    counter: TokenCounter,
    path: String,
    /// The source's arrival column, for "goes back in time" errors.
    arrival_col: String,
    at: &'static str,
    sorted_buf: Vec<(TraceRow, u64)>,
    last: Option<(f64, u64)>,
    sample_rng: Xoshiro256PlusPlus,
    session_keep: std::collections::HashMap<u64, bool>,
    out: Option<Out>,
    next_id: u64,
    pub tally: Tally,
    stopped: bool,
}

enum Out {
    Direct(TraceWriter),
    /// --rate: rows go to a temporary Arrow file first (removed when done).
    Spill {
        w: TraceWriter,
        path: RemoveOnDrop,
    },
}

/// Where the trace goes.
pub struct Dest<'a> {
    pub path: Option<&'a Path>,
    pub format: Option<Format>,
    pub meta: Meta,
}

impl Pipeline {
    /// `path` and `arrival_col` name the source in error messages.
    pub fn new(
        t: Transform,
        counter: TokenCounter,
        path: &str,
        arrival_col: &str,
        dest: &Dest<'_>,
    ) -> Result<Pipeline, ImportError> {
        t.validate().map_err(ImportError::Usage)?;
        let mut meta = dest.meta.clone();
        let desc = t.describe();
        if !desc.is_empty() {
            meta.set(META_TRANSFORM, desc);
        }
        if let Some(r) = t.rate {
            meta.set(META_RATE, format!("{r}"));
        }
        if let Some(r) = &t.ramp {
            meta.set(META_RAMP, r.spec());
        }
        let out = match (t.rate, &t.ramp) {
            (None, None) => Out::Direct(TraceWriter::create(dest.path, dest.format, &meta)?),
            _ => {
                let path = RemoveOnDrop(spill_path(dest.path));
                Out::Spill {
                    w: TraceWriter::journal(&path.0, &meta)?,
                    path,
                }
            }
        };
        Ok(Pipeline {
            sample_rng: Xoshiro256PlusPlus::seed_from_u64(stream_seed(t.seed, 7)),
            next_id: t.first_id,
            t,
            counter,
            path: path.into(),
            arrival_col: arrival_col.into(),
            at: "line",
            sorted_buf: Vec::new(),
            last: None,
            session_keep: Default::default(),
            out: Some(out),
            tally: Tally::default(),
            stopped: false,
        })
    }

    /// Say "row N" instead of "line N" in errors (for data files).
    pub fn rows_not_lines(mut self) -> Pipeline {
        self.at = "row";
        self
    }

    fn bad(&self, line: u64, msg: String) -> ImportError {
        ImportError::Bad {
            path: self.path.clone(),
            at: self.at,
            line,
            column: format!("column `{}`", self.arrival_col),
            msg,
        }
    }

    fn stage(&mut self, mut row: TraceRow, line: u64) -> Result<Flow, ImportError> {
        if self.stopped {
            return Ok(Flow::Stop);
        }
        if let Some((prev, prev_line)) = self.last
            && row.arrival_s < prev
        {
            return Err(self.bad(
                line,
                format!(
                    "time goes backwards ({:.6} s after the first row, but {} {prev_line} was at {:.6} s); replay sends rows in file order: sort the file by time, or pass --sort",
                    row.arrival_s, self.at, prev
                ),
            ));
        }
        self.last = Some((row.arrival_s, line));
        // max input
        if let Some(max) = self.t.max_input
            && row.input_tokens > max
        {
            if !self.t.clamp {
                self.tally.dropped_max_input += 1;
                return Ok(Flow::Continue);
            }
            self.tally.clamped += 1;
            row.input_tokens = max;
            if let Some(p) = &row.prompt {
                let cut = self.counter.truncate(p, max)?.to_string();
                row.prompt = Some(cut);
            }
            if let Some(b) = &mut row.prefix_blocks {
                b.truncate(max.div_ceil(BLOCK_TOKENS) as usize);
            }
        }
        // window
        let start = self.t.start_s.unwrap_or(0.0);
        if row.arrival_s < start {
            self.tally.outside_window += 1;
            return Ok(Flow::Continue);
        }
        if let Some(w) = self.t.window_s
            && row.arrival_s >= start + w
        {
            self.tally.outside_window += 1;
            if !self.t.sort {
                // sorted input: nothing later can be inside the window
                self.stopped = true;
                return Ok(Flow::Stop);
            }
            return Ok(Flow::Continue);
        }
        row.arrival_s -= start;
        // sample
        if let Some(f) = self.t.sample {
            let keep = match row.session_id {
                Some(s) => *self.session_keep.entry(s).or_insert_with(|| {
                    let mut m = SplitMix(stream_seed(self.t.seed, 8) ^ s.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    (m.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= f
                }),
                None => {
                    use rand::RngExt;
                    self.sample_rng.random::<f64>() < f
                }
            };
            if !keep {
                self.tally.sampled_out += 1;
                return Ok(Flow::Continue);
            }
        }
        // count
        if let Some(c) = self.t.count
            && self.tally.written >= c
        {
            self.stopped = true;
            return Ok(Flow::Stop);
        }
        if let Some(x) = self.t.time_scale {
            row.arrival_s *= x;
        }
        if row.category.is_none() {
            row.category = self.t.category.clone();
        }
        if self.t.renumber {
            row.request_id = self.next_id;
            self.next_id += 1;
        }
        self.tally.written += 1;
        if let Some(Out::Direct(w) | Out::Spill { w, .. }) = &mut self.out {
            w.push(row)?;
        }
        if let Some(c) = self.t.count
            && self.tally.written >= c
        {
            self.stopped = true;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    /// Sort (with --sort), rescale (with --rate), and write the footer.
    pub fn finish(mut self, dest: &Dest<'_>) -> Result<Tally, ImportError> {
        if self.t.sort {
            let mut buf = std::mem::take(&mut self.sorted_buf);
            buf.sort_by(|a, b| a.0.arrival_s.total_cmp(&b.0.arrival_s));
            let t0 = buf.first().map(|r| r.0.arrival_s).unwrap_or(0.0);
            for (mut row, line) in buf {
                row.arrival_s -= t0;
                if self.stage(row, line)? == Flow::Stop {
                    break;
                }
            }
        }
        let mut tally = self.tally.clone();
        match self.out.take() {
            None => {}
            Some(Out::Direct(w)) => {
                // a rate given up front (sharegpt's process) stays; else the observed one
                let (n, rate, span) = w.finish(dest.meta.get(META_RATE).is_some())?;
                tally.written = n;
                tally.rate = rate;
                tally.span_s = span;
            }
            Some(Out::Spill { w, path }) => {
                let observed = w.rate();
                w.finish(true)?;
                // --rate R: times x observed/R; --ramp: times x observed (a mean rate of 1),
                // then through the ramp
                let target = self.t.rate.unwrap_or(1.0);
                let factor = match observed {
                    Some(o) => o / target,
                    None => {
                        return Err(ImportError::Usage(format!(
                            "{} needs at least two rows at different times to measure the trace's rate",
                            if self.t.ramp.is_some() { "--ramp" } else { "--rate" }
                        )));
                    }
                };
                let ramp = self.t.ramp.clone();
                let mut meta = dest.meta.clone();
                let desc = self.t.describe();
                meta.set(META_TRANSFORM, format!("{desc} (times x{factor})"));
                match &ramp {
                    Some(r) => meta.set(META_RAMP, r.spec()),
                    None => meta.set(META_RATE, format!("{target}")),
                };
                let mut out = TraceWriter::create(dest.path, dest.format, &meta)?;
                let mut r = TraceReader::open(&path.0.to_string_lossy())?;
                while let Some(b) = r.next_rows() {
                    for mut row in b? {
                        row.arrival_s *= factor;
                        if let Some(r) = &ramp {
                            row.arrival_s = r.time_at(row.arrival_s);
                        }
                        out.push(row)?;
                    }
                }
                let (n, rate, span) = out.finish(true)?;
                drop(r);
                drop(path);
                tally.written = n;
                tally.rate = rate;
                tally.span_s = span;
            }
        }
        Ok(tally)
    }
}

impl RowSink for Pipeline {
    fn push(&mut self, row: TraceRow, line: u64) -> Result<Flow, ImportError> {
        self.tally.read += 1;
        if self.t.sort {
            self.sorted_buf.push((row, line));
            return Ok(Flow::Continue);
        }
        self.stage(row, line)
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spill_path(dest: Option<&Path>) -> PathBuf {
    let name = format!(".servebench-rate-{}-{}.arrows", std::process::id(), unique());
    match dest.and_then(|p| p.parent()).filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.join(name),
        None => std::env::temp_dir().join(name),
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Push every row of an existing trace file through a pipeline (`tracegen transform`).
pub fn push_trace(reader: &mut TraceReader, sink: &mut dyn RowSink, counter: &TokenCounter) -> Result<(), ImportError> {
    let mut row_no = 0u64;
    while let Some(b) = reader.next_rows() {
        for mut row in b? {
            row_no += 1;
            if let (TokenCounter::Exact(_), Some(p)) = (counter, &row.prompt) {
                row.input_tokens = counter.count(p)?;
            }
            if sink.push(row, row_no)? == Flow::Stop {
                return Ok(());
            }
        }
    }
    Ok(())
}
