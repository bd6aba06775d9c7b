//! Ingest: requests files read in parallel under a memory budget, each row into its group.
//!
//! Groups are the run's identity (label, engine, model, quant, concurrency, rate_rps) plus any
//! `--by` columns (category, turn). Failed requests count in the status totals and never in
//! latency statistics; warm-up rows are left out unless asked for.

use std::collections::{BTreeMap, HashMap};

use arrow_array::RecordBatch;

use super::options::{Itl, Options};
use crate::io::DataError;
use crate::io::cols::{self, BoolCol, F64Col, IntCol, ListCol, StrCol, TsCol};
use crate::schema::requests::col as rc;
use crate::schema::{Connection, Metric, REQUESTS, Status, Summary};
use crate::stats::{BIN_US, LoadAcc, Samples};

/// A group's identity: the run's keys and the `--by` columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub label: String,
    pub engine: Option<String>,
    pub model: Option<String>,
    pub quant: Option<String>,
    pub concurrency: Option<u32>,
    /// f64 bits, so the key is hashable
    pub rate_bits: Option<u64>,
    pub category: Option<String>,
    pub turn: Option<u32>,
}

impl Key {
    /// The key of a summary row's group (its key columns are the key's fields).
    pub fn of(s: &Summary) -> Key {
        Key {
            label: s.label.clone(),
            engine: s.engine.clone(),
            model: s.model.clone(),
            quant: s.quant.clone(),
            concurrency: s.concurrency,
            rate_bits: s.rate_rps.map(f64::to_bits),
            category: s.category.clone(),
            turn: s.turn,
        }
    }

    pub fn rate(&self) -> Option<f64> {
        self.rate_bits.map(f64::from_bits)
    }
}

/// Per-group accumulation.
#[derive(Debug, Default, Clone)]
pub struct Acc {
    pub n: u64,
    pub by_status: BTreeMap<String, u64>,
    pub first_sent_us: Option<i64>,
    pub last_done_us: Option<i64>,
    pub out_tokens_ok: u64,
    pub in_tokens_ok: u64,
    pub ttft: Samples,
    pub tpot: Samples,
    pub itl: Samples,
    pub e2e: Samples,
    /// Tokens of every event (bursts merged, [`super::events`]) of ok requests whose chunks
    /// have token counts.
    pub tokens_per_event: Samples,
    /// Per-token ITL: each gap between events over the tokens of the event that ended it.
    pub itl_token: Samples,
    /// Per-event ITL with bursts merged: each gap between events.
    pub itl_event: Samples,
    /// Events counted in `tokens_per_event`, and those with more than one token.
    pub events: u64,
    pub events_multi: u64,
    pub sched_lag: Samples,
    pub ttft_sched: Samples,
    /// Time to first answer token of ok requests that answered (`ttfa_ms`).
    pub ttfa: Samples,
    /// Ok requests whose output had reasoning, those of them that never answered, and their
    /// reasoning tokens.
    pub n_reasoning: u64,
    pub n_unanswered: u64,
    pub reasoning_tokens: u64,
    /// Ok requests with reasoning tokens counted (some servers count hidden reasoning).
    pub n_reasoning_counted: u64,
    pub slo_ttft_ok: u64,
    pub slo_tpot_ok: u64,
    pub slo_e2e_ok: u64,
    pub slo_all_ok: u64,
    /// Output tokens by arrival time, in bins of [`BIN_US`] (for the throughput CI).
    pub token_bins: BTreeMap<i64, f64>,
    /// The load the requests put on the server (in flight, due-to-sent, rates).
    pub load: LoadAcc,
    /// Sent requests whose connection is known, those on a fresh (new or warm) one, and the
    /// connect + TLS ms spent on the path of the new ones.
    pub conn_known: u64,
    pub conn_fresh: u64,
    pub conn_setup_ms: f64,
    /// Cancelled rows whose user gave up (cancel_after_ms set).
    pub gave_up: u64,
    /// Ok rows whose server reported cached prompt tokens: those tokens, and their prompt
    /// tokens (the server's count, else the trace's).
    pub cached_tokens: u64,
    pub cached_of_prompt: u64,
    /// Imported runs' own durations (by label, from the files' provenance).
    pub tool_runs: super::imported::ToolRuns,
}

impl Acc {
    /// An empty group; in histogram mode once the memory budget is spent.
    pub fn new(hist_mode: bool) -> Acc {
        let mut a = Acc::default();
        if hist_mode {
            for s in a.samples_mut() {
                s.to_histogram();
            }
        }
        a
    }

    /// The samples of one latency metric.
    pub fn samples(&self, m: Metric) -> &Samples {
        match m {
            Metric::Ttft => &self.ttft,
            Metric::Tpot => &self.tpot,
            Metric::Itl => &self.itl,
            Metric::E2e => &self.e2e,
        }
    }

    pub(crate) fn samples_mut(&mut self) -> [&mut Samples; 10] {
        [
            &mut self.ttft,
            &mut self.tpot,
            &mut self.itl,
            &mut self.e2e,
            &mut self.sched_lag,
            &mut self.ttft_sched,
            &mut self.ttfa,
            &mut self.tokens_per_event,
            &mut self.itl_token,
            &mut self.itl_event,
        ]
    }

    pub(crate) fn held(&self) -> usize {
        self.ttft.held()
            + self.tpot.held()
            + self.itl.held()
            + self.e2e.held()
            + self.sched_lag.held()
            + self.ttft_sched.held()
            + self.ttfa.held()
            + self.tokens_per_event.held()
            + self.itl_token.held()
            + self.itl_event.held()
    }

    /// Fold another partial accumulation of the same group into this one.
    pub fn merge(&mut self, o: Acc) {
        self.n += o.n;
        for (k, v) in o.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.first_sent_us = match (self.first_sent_us, o.first_sent_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done_us = match (self.last_done_us, o.last_done_us) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.out_tokens_ok += o.out_tokens_ok;
        self.in_tokens_ok += o.in_tokens_ok;
        self.ttft.merge(o.ttft);
        self.tpot.merge(o.tpot);
        self.itl.merge(o.itl);
        self.e2e.merge(o.e2e);
        self.sched_lag.merge(o.sched_lag);
        self.ttft_sched.merge(o.ttft_sched);
        self.ttfa.merge(o.ttfa);
        self.n_reasoning += o.n_reasoning;
        self.n_unanswered += o.n_unanswered;
        self.reasoning_tokens += o.reasoning_tokens;
        self.n_reasoning_counted += o.n_reasoning_counted;
        self.tokens_per_event.merge(o.tokens_per_event);
        self.itl_token.merge(o.itl_token);
        self.itl_event.merge(o.itl_event);
        self.events += o.events;
        self.events_multi += o.events_multi;
        self.slo_ttft_ok += o.slo_ttft_ok;
        self.slo_tpot_ok += o.slo_tpot_ok;
        self.slo_e2e_ok += o.slo_e2e_ok;
        self.slo_all_ok += o.slo_all_ok;
        for (k, v) in o.token_bins {
            *self.token_bins.entry(k).or_default() += v;
        }
        self.load.merge(&o.load);
        self.conn_known += o.conn_known;
        self.conn_fresh += o.conn_fresh;
        self.conn_setup_ms += o.conn_setup_ms;
        self.gave_up += o.gave_up;
        self.cached_tokens += o.cached_tokens;
        self.cached_of_prompt += o.cached_of_prompt;
        self.tool_runs = self.tool_runs.merge(o.tool_runs);
    }
}

/// Columns agg reads (others are skipped, so big chunk_tokens lists are never decoded).
pub const READ_COLUMNS: &[&str] = &[
    rc::LABEL,
    rc::ENGINE,
    rc::MODEL,
    rc::QUANT,
    rc::CONCURRENCY,
    rc::RATE_RPS,
    rc::CATEGORY,
    rc::TURN,
    rc::STATUS,
    rc::WARMUP,
    rc::SCHEDULED_AT,
    rc::SENT_AT,
    rc::DONE_AT,
    rc::TTFT_MS,
    rc::TTFR_MS,
    rc::TTFA_MS,
    rc::REASONING_TOKENS,
    rc::TPOT_MS,
    rc::E2E_MS,
    rc::SCHED_LAG_MS,
    rc::CONNECTION,
    rc::CONNECT_MS,
    rc::TLS_MS,
    rc::CANCEL_AFTER_MS,
    rc::TTFT_SCHED_MS,
    rc::OUTPUT_TOKENS,
    rc::INPUT_TOKENS,
    rc::SERVER_INPUT_TOKENS,
    rc::CACHED_TOKENS,
    rc::CHUNK_TIMES_MS,
    rc::CHUNK_TOKENS,
];

/// All groups, accumulated from any number of requests files.
#[derive(Debug)]
pub struct Groups {
    pub groups: HashMap<Key, Acc>,
    pub files: Vec<String>,
    /// Each input file's key-value metadata (provenance), in input order.
    pub metas: Vec<(String, crate::meta::Meta)>,
    pub rows: u64,
    pub warmup_skipped: u64,
    /// Values held exactly (for the memory budget); None once everything is a histogram.
    pub held: Option<usize>,
}

impl Default for Groups {
    fn default() -> Self {
        Groups {
            groups: HashMap::new(),
            files: Vec::new(),
            metas: Vec::new(),
            rows: 0,
            warmup_skipped: 0,
            held: Some(0),
        }
    }
}

impl Groups {
    /// True when percentiles are exact (numpy's linear method); false once the memory
    /// budget moved the samples to HDR histograms.
    pub fn exact(&self) -> bool {
        self.held.is_some() || self.groups.is_empty()
    }

    fn enforce_budget(&mut self, budget: usize) {
        let Some(h) = self.held else { return };
        if h <= budget {
            return;
        }
        for a in self.groups.values_mut() {
            for s in a.samples_mut() {
                s.to_histogram();
            }
        }
        self.held = None;
    }

    /// Says once, on stderr, that percentiles come from HDR histograms (past `budget` values).
    pub fn announce_mode(&self, budget: usize) {
        if !self.exact() {
            eprintln!(
                "agg: more than {budget} latency values: percentiles from HDR histograms (within 0.1%); raise --exact-budget for exact ones"
            );
        }
    }

    /// The same groups keyed by `by` only (of [`super::BY_COLUMNS`]): groups that differ only
    /// in a column left out of `by` are merged. Samples are copied, so call before or after
    /// [`super::finish`] alike (finish sorts them again).
    pub fn regroup(&self, by: &[String]) -> Groups {
        let keep = |c: &str| by.iter().any(|b| b == c);
        let (cat, turn) = (keep(rc::CATEGORY), keep(rc::TURN));
        let hist_mode = self.held.is_none();
        let mut groups: HashMap<Key, Acc> = HashMap::new();
        for (k, acc) in &self.groups {
            let mut k = k.clone();
            if !cat {
                k.category = None;
            }
            if !turn {
                k.turn = None;
            }
            groups
                .entry(k)
                .or_insert_with(|| Acc::new(hist_mode))
                .merge(acc.clone());
        }
        Groups {
            groups,
            files: self.files.clone(),
            metas: self.metas.clone(),
            rows: self.rows,
            warmup_skipped: self.warmup_skipped,
            held: self.held,
        }
    }

    /// Fold another partial result (another file or row-group range) into this one.
    pub fn merge(&mut self, o: Groups, budget: usize) {
        let hist_mode = self.held.is_none() || o.held.is_none();
        if hist_mode && self.held.is_some() {
            self.held = Some(usize::MAX);
            self.enforce_budget(0);
        }
        let other_held = o.held;
        for (k, acc) in o.groups {
            self.groups.entry(k).or_insert_with(|| Acc::new(hist_mode)).merge(acc);
        }
        self.files.extend(o.files);
        self.metas.extend(o.metas);
        self.rows += o.rows;
        self.warmup_skipped += o.warmup_skipped;
        if let Some(h) = self.held {
            self.held = Some(h + other_held.unwrap_or(0));
            self.enforce_budget(budget);
        }
    }

    /// Read requests files in parallel: files and Parquet row groups are split across
    /// `threads`, each with a share of the memory budget, and the parts merged.
    pub fn read(paths: &[String], o: &Options, threads: usize) -> Result<Groups, DataError> {
        // Units of work: (input index, path, some row groups or all of the file).
        let mut units: Vec<(usize, String, Option<Vec<usize>>)> = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            match crate::io::parquet_row_groups(p) {
                Some(n) if n > 1 && threads > 1 => {
                    let per = n.div_ceil(threads * 4).max(1);
                    for start in (0..n).step_by(per) {
                        units.push((i, p.clone(), Some((start..(start + per).min(n)).collect())));
                    }
                }
                _ => units.push((i, p.clone(), None)),
            }
        }
        let threads = threads.clamp(1, units.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let po = Options {
            exact_budget: (o.exact_budget / threads).max(1),
            ..o.clone()
        };
        type Part = (Groups, Vec<(usize, String, crate::meta::Meta)>);
        let results: Vec<Result<Part, DataError>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    sc.spawn(|| -> Result<Part, DataError> {
                        let mut g = Groups::default();
                        let mut seen = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let Some((i, p, rgs)) = units.get(k) else { break };
                            let meta = g.add_unit(p, rgs.clone(), &po)?;
                            if rgs.as_ref().is_none_or(|r| r.first() == Some(&0)) {
                                seen.push((*i, p.clone(), meta));
                            }
                        }
                        Ok((g, seen))
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(_) => Err(DataError::Read {
                        path: "agg".into(),
                        source: std::io::Error::other("a reader thread panicked"),
                    }),
                })
                .collect()
        });
        let mut all = Groups::default();
        let mut seen = Vec::new();
        for r in results {
            let (g, s) = r?;
            seen.extend(s);
            all.merge(g, o.exact_budget);
        }
        // files and their provenance in input order, whatever thread read them
        seen.sort_by_key(|(i, _, _)| *i);
        all.files = seen.iter().map(|(_, p, _)| p.clone()).collect();
        all.metas = seen.into_iter().map(|(_, p, m)| (p, m)).collect();
        all.announce_mode(o.exact_budget);
        Ok(all)
    }

    /// Read one file, or some of its Parquet row groups; returns its metadata.
    fn add_unit(
        &mut self,
        path: &str,
        row_groups: Option<Vec<usize>>,
        o: &Options,
    ) -> Result<crate::meta::Meta, DataError> {
        let input = crate::io::open_row_groups(path, Some(READ_COLUMNS), row_groups)?;
        check_requests(path, &input.schema)?;
        let meta = input.meta.clone();
        for b in input {
            self.add_batch(&b?, o);
        }
        self.note_tool_runs(&meta);
        Ok(meta)
    }

    /// An imported file's own run durations, on the groups of its labels (agg uses them for a
    /// group's duration under the tool's own definitions, see [`super::finish`]).
    fn note_tool_runs(&mut self, meta: &crate::meta::Meta) {
        use super::imported::{ImportMeta, ToolRun, ToolRuns};
        let Some(im) = ImportMeta::of(meta) else { return };
        let Some(defs) = im.defs else { return };
        for s in &im.sources {
            let Some(d) = s.duration_s.filter(|d| *d > 0.0) else {
                continue;
            };
            let run = ToolRuns::One(ToolRun { defs, duration_s: d });
            for (k, acc) in self.groups.iter_mut() {
                if k.label == s.label {
                    acc.tool_runs = acc.tool_runs.merge(run);
                }
            }
        }
    }

    /// Read one requests file (path or `-`) into the groups.
    pub fn add_file(&mut self, path: &str, o: &Options) -> Result<(), DataError> {
        let meta = self.add_unit(path, None, o)?;
        self.files.push(path.to_string());
        self.metas.push((path.to_string(), meta));
        Ok(())
    }

    pub fn add_batch(&mut self, b: &RecordBatch, o: &Options) {
        self.add_rows(b, o);
        if self.held.is_some() {
            let held: usize = self.groups.values().map(Acc::held).sum();
            self.held = Some(held);
            self.enforce_budget(o.exact_budget);
        }
    }

    fn add_rows(&mut self, b: &RecordBatch, o: &Options) {
        let v = View::of(b);
        let by_cat = o.by.iter().any(|c| c == rc::CATEGORY);
        let by_turn = o.by.iter().any(|c| c == rc::TURN);
        let n = b.num_rows();
        self.rows += n as u64;
        let key_of = |i: usize| KeyRef {
            label: v.label.get(i).unwrap_or(""),
            engine: v.engine.get(i),
            model: v.model.get(i),
            quant: v.quant.get(i),
            concurrency: v.conc.get(i).map(|x| x as u32),
            rate_bits: v.rate.get(i).map(f64::to_bits),
            category: if by_cat { v.cat.get(i) } else { None },
            turn: if by_turn { v.turn.get(i).map(|x| x as u32) } else { None },
        };
        // Partition the batch by key (a batch rarely holds more than a few groups), so each
        // key is built and looked up once per batch, not once per row.
        let mut keys: Vec<KeyRef<'_>> = Vec::new();
        let mut rows_of: Vec<Vec<u32>> = Vec::new();
        let mut last = usize::MAX;
        for i in 0..n {
            let k = key_of(i);
            let slot = if last != usize::MAX && keys[last] == k {
                last
            } else {
                match keys.iter().position(|x| *x == k) {
                    Some(p) => p,
                    None => {
                        keys.push(k);
                        rows_of.push(Vec::new());
                        keys.len() - 1
                    }
                }
            };
            last = slot;
            rows_of[slot].push(i as u32);
        }
        let hist_mode = self.held.is_none();
        for (k, rows) in keys.iter().zip(&rows_of) {
            let acc = self.groups.entry(k.to_key()).or_insert_with(|| Acc::new(hist_mode));
            for &r in rows {
                let r = r as usize;
                if !o.include_warmup && v.warm.get(r) {
                    self.warmup_skipped += 1;
                    continue;
                }
                add_row(acc, &v, r, o);
            }
        }
    }
}

fn check_requests(path: &str, schema: &arrow_schema::Schema) -> Result<(), DataError> {
    for need in [rc::LABEL, rc::STATUS] {
        if schema.field_with_name(need).is_err() {
            return Err(DataError::MissingColumn {
                path: path.into(),
                column: need.into(),
                contract: REQUESTS.name.into(),
                required: format!("{}, {} (and the latency columns replay writes)", rc::LABEL, rc::STATUS),
            });
        }
    }
    Ok(())
}

/// A row's group key, borrowed from the batch (compared without allocating).
#[derive(PartialEq)]
struct KeyRef<'a> {
    label: &'a str,
    engine: Option<&'a str>,
    model: Option<&'a str>,
    quant: Option<&'a str>,
    concurrency: Option<u32>,
    rate_bits: Option<u64>,
    category: Option<&'a str>,
    turn: Option<u32>,
}

impl KeyRef<'_> {
    fn to_key(&self) -> Key {
        Key {
            label: self.label.to_string(),
            engine: self.engine.map(str::to_string),
            model: self.model.map(str::to_string),
            quant: self.quant.map(str::to_string),
            concurrency: self.concurrency,
            rate_bits: self.rate_bits,
            category: self.category.map(str::to_string),
            turn: self.turn,
        }
    }
}

/// One row into its group.
fn add_row(acc: &mut Acc, v: &View<'_>, i: usize, o: &Options) {
    acc.n += 1;
    let st = v.status.get(i).unwrap_or("unknown");
    match acc.by_status.get_mut(st) {
        Some(c) => *c += 1,
        None => {
            acc.by_status.insert(st.to_string(), 1);
        }
    }
    let sent_us = v.sent.get(i);
    acc.load.add(v.sched.get(i), sent_us, v.done.get(i));
    if let Some(t) = sent_us {
        acc.first_sent_us = Some(acc.first_sent_us.map_or(t, |x| x.min(t)));
        if let Some(l) = v.lag.get(i) {
            acc.sched_lag.push(l);
        }
        if let Some(kind) = v.conn.get(i) {
            acc.conn_known += 1;
            if kind != Connection::Reused.as_str() {
                acc.conn_fresh += 1;
            }
            if kind == Connection::New.as_str() {
                acc.conn_setup_ms += v.connect.get(i).unwrap_or(0.0) + v.tls.get(i).unwrap_or(0.0);
            }
        }
        if let Some(t) = v.done.get(i) {
            acc.last_done_us = Some(acc.last_done_us.map_or(t, |x| x.max(t)));
        }
    }
    if st != Status::Ok.as_str() {
        if st == Status::Cancelled.as_str() && v.cancel_after.get(i).is_some() {
            acc.gave_up += 1;
        }
        return;
    }
    let out = v.out.get(i).unwrap_or(0).max(0) as u64;
    let inn = v.sin.get(i).or_else(|| v.inp.get(i)).unwrap_or(0).max(0) as u64;
    acc.out_tokens_ok += out;
    acc.in_tokens_ok += inn;
    if let Some(c) = v.cached.get(i) {
        acc.cached_tokens += c.max(0) as u64;
        acc.cached_of_prompt += inn;
    }
    let t_first = v.ttft.get(i);
    let t_e2e = v.e2e.get(i);
    // Reasoning: the first answer token (the first token when nothing was reasoning).
    let reasoned = v.ttfr.get(i).is_some();
    let t_answer = v.ttfa.get(i).or(if reasoned { None } else { t_first });
    if reasoned {
        acc.n_reasoning += 1;
        acc.n_unanswered += u64::from(t_answer.is_none());
    }
    let rtok = v.rtok.get(i).unwrap_or(0).max(0) as u64;
    acc.reasoning_tokens += rtok;
    acc.n_reasoning_counted += u64::from(rtok > 0);
    if let Some(x) = t_answer {
        acc.ttfa.push(x);
    }
    // TTFT as the definitions in force report it: the first token of any kind, or (tools that
    // only look at answer content) the first answer token; TPOT counts from the same point.
    let answer_only = o.defs.ttft_is_answer() && reasoned;
    let t_ttft = if answer_only { t_answer } else { t_first };
    let t_tpot = if answer_only { None } else { v.tpot.get(i) }.or_else(|| match (t_ttft, t_e2e) {
        (Some(a), Some(e)) => crate::schema::tpot(a, e, u32::try_from(out).unwrap_or(u32::MAX)),
        _ => None,
    });
    if let Some(x) = t_ttft {
        acc.ttft.push(x);
    }
    if let Some(x) = t_e2e {
        acc.e2e.push(x);
    }
    if let Some(x) = v.ttfts.get(i) {
        acc.ttft_sched.push(x);
    }
    // One pass over the chunks: ITL gaps (vLLM definition) and output tokens by arrival
    // time (for the throughput confidence interval).
    v.chunks.for_each(i, &v.ctoks, |times, toks| {
        let nt = times.len();
        let even = if nt > 0 { out as f64 / nt as f64 } else { 0.0 };
        let mut prev: Option<f64> = None;
        // consecutive chunks mostly fall in the same 100 ms bin: add to the map per bin
        let mut bin: Option<(i64, f64)> = None;
        for (j, &x) in times.iter().enumerate() {
            if o.defs.itl() == Itl::ChunkGaps
                && let Some(p) = prev
            {
                acc.itl.push(x - p);
            }
            prev = Some(x);
            if o.defs.itl() == Itl::TokenGaps {
                // one gap per token: the chunk's gap (after the first), then a 0 for each of
                // its further tokens
                if j > 0 {
                    acc.itl.push(x - times[j - 1]);
                }
                let k = match toks {
                    Some(t) => t[j] as u64,
                    // tokens spread over the chunks as evenly as whole tokens go
                    None => out / nt as u64 + u64::from((j as u64) < out % nt as u64),
                };
                for _ in 1..k {
                    acc.itl.push(0.0);
                }
            }
            if let Some(s0) = sent_us {
                let tok = toks.map(|t| t[j] as f64).unwrap_or(even);
                let b = (s0 + (x * 1000.0 + 0.5).floor() as i64).div_euclid(BIN_US);
                match &mut bin {
                    Some((k, sum)) if *k == b => *sum += tok,
                    _ => {
                        if let Some((k, sum)) = bin.replace((b, tok)) {
                            *acc.token_bins.entry(k).or_default() += sum;
                        }
                    }
                }
            }
        }
        if let Some((k, sum)) = bin {
            *acc.token_bins.entry(k).or_default() += sum;
        }
        // engine steps as the client saw them: only where the server counted every chunk
        if let Some(toks) = toks {
            let (tpe, itl_token, itl_event) = (&mut acc.tokens_per_event, &mut acc.itl_token, &mut acc.itl_event);
            let (events, multi) = (&mut acc.events, &mut acc.events_multi);
            super::events::per_request(
                times,
                toks,
                |k| {
                    tpe.push(k as f64);
                    *events += 1;
                    *multi += u64::from(k > 1);
                },
                |g, k| {
                    itl_event.push(g);
                    itl_token.push(g / k as f64);
                },
            );
        }
    });
    // TPOT as the definitions in force report it; the SLO is judged on that same value.
    let tpot = o.defs.tpot(t_tpot, t_e2e, out);
    if let Some(x) = tpot {
        acc.tpot.push(x);
    }
    match o.defs.itl() {
        Itl::ChunkGaps | Itl::TokenGaps => {}
        // per-request inter-token latency: (E2E - TTFT)/(tokens - 1)
        Itl::PerRequestDecode => {
            if let Some(x) = t_tpot {
                acc.itl.push(x);
            }
        }
        // per-request inter-token latency: E2E / tokens
        Itl::PerRequestE2e => {
            if let Some(x) = t_e2e.filter(|_| out > 0) {
                acc.itl.push(x / out as f64);
            }
        }
    }
    if o.slo.any() {
        let ok_t = o.slo.ttft_ms.is_none_or(|s| t_ttft.is_some_and(|x| x <= s));
        let ok_p = o.slo.tpot_ms.is_none_or(|s| tpot.is_none_or(|x| x <= s));
        let ok_e = o.slo.e2e_ms.is_none_or(|s| t_e2e.is_some_and(|x| x <= s));
        acc.slo_ttft_ok += ok_t as u64;
        acc.slo_tpot_ok += ok_p as u64;
        acc.slo_e2e_ok += ok_e as u64;
        acc.slo_all_ok += (ok_t && ok_p && ok_e) as u64;
    }
}

/// Typed views of a requests batch: the contract's own types take a fast path; files from
/// other tools (other integer widths, large strings, dictionaries) go through `cols`.
struct View<'a> {
    label: StrCol<'a>,
    engine: StrCol<'a>,
    model: StrCol<'a>,
    quant: StrCol<'a>,
    cat: StrCol<'a>,
    status: StrCol<'a>,
    conc: IntCol<'a>,
    turn: IntCol<'a>,
    out: IntCol<'a>,
    inp: IntCol<'a>,
    sin: IntCol<'a>,
    cached: IntCol<'a>,
    rate: F64Col<'a>,
    ttft: F64Col<'a>,
    ttfr: F64Col<'a>,
    ttfa: F64Col<'a>,
    rtok: IntCol<'a>,
    tpot: F64Col<'a>,
    e2e: F64Col<'a>,
    lag: F64Col<'a>,
    conn: StrCol<'a>,
    connect: F64Col<'a>,
    tls: F64Col<'a>,
    cancel_after: F64Col<'a>,
    ttfts: F64Col<'a>,
    sched: TsCol<'a>,
    sent: TsCol<'a>,
    done: TsCol<'a>,
    warm: BoolCol<'a>,
    chunks: ListCol<'a>,
    ctoks: ListCol<'a>,
}

impl<'a> View<'a> {
    fn of(b: &'a RecordBatch) -> View<'a> {
        let c = |n: &str| cols::column(b, n);
        View {
            label: StrCol::of(c(rc::LABEL)),
            engine: StrCol::of(c(rc::ENGINE)),
            model: StrCol::of(c(rc::MODEL)),
            quant: StrCol::of(c(rc::QUANT)),
            cat: StrCol::of(c(rc::CATEGORY)),
            status: StrCol::of(c(rc::STATUS)),
            conc: cols::int_col(c(rc::CONCURRENCY)),
            turn: cols::int_col(c(rc::TURN)),
            out: cols::int_col(c(rc::OUTPUT_TOKENS)),
            inp: cols::int_col(c(rc::INPUT_TOKENS)),
            sin: cols::int_col(c(rc::SERVER_INPUT_TOKENS)),
            cached: cols::int_col(c(rc::CACHED_TOKENS)),
            rate: cols::f64_col(c(rc::RATE_RPS)),
            ttft: cols::f64_col(c(rc::TTFT_MS)),
            ttfr: cols::f64_col(c(rc::TTFR_MS)),
            ttfa: cols::f64_col(c(rc::TTFA_MS)),
            rtok: cols::int_col(c(rc::REASONING_TOKENS)),
            tpot: cols::f64_col(c(rc::TPOT_MS)),
            e2e: cols::f64_col(c(rc::E2E_MS)),
            lag: cols::f64_col(c(rc::SCHED_LAG_MS)),
            conn: StrCol::of(c(rc::CONNECTION)),
            connect: cols::f64_col(c(rc::CONNECT_MS)),
            tls: cols::f64_col(c(rc::TLS_MS)),
            cancel_after: cols::f64_col(c(rc::CANCEL_AFTER_MS)),
            ttfts: cols::f64_col(c(rc::TTFT_SCHED_MS)),
            sched: cols::ts_col(c(rc::SCHEDULED_AT)),
            sent: cols::ts_col(c(rc::SENT_AT)),
            done: cols::ts_col(c(rc::DONE_AT)),
            warm: BoolCol::of(c(rc::WARMUP)),
            chunks: ListCol::of(c(rc::CHUNK_TIMES_MS)),
            ctoks: ListCol::of(c(rc::CHUNK_TOKENS)),
        }
    }
}
