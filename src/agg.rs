//! agg: requests files in, one summary row per group out.
//!
//! Groups are the run's identity (label, engine, model, quant, concurrency, rate_rps) plus any
//! `--by` columns (category, turn). Failed requests count in the status totals and never in
//! latency statistics; warm-up rows are left out unless asked for.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{Array, ArrayRef, RecordBatch};

use crate::io::DataError;
use crate::io::cols;
use crate::schema::{SUMMARY, Ty};
use crate::stats::{self, Samples, Stats};

/// TPOT/ITL definitions of the tools people compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Defs {
    /// vLLM `bench serve`: TPOT = (E2E - TTFT)/(tokens - 1) per request; ITL = every gap
    /// between content chunks, pooled over requests.
    Vllm,
    /// NVIDIA AIPerf: inter-token latency is per request, (E2E - TTFT)/(tokens - 1); TPOT is
    /// reported as the same per-request value.
    Aiperf,
    /// GuideLLM: time per output token = E2E / tokens (TTFT included); inter-token latency =
    /// (E2E - TTFT)/(tokens - 1) per request.
    Guidellm,
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
pub const BY_COLUMNS: &[&str] = &["category", "turn"];
const ID_KEYS: &[&str] = &["label", "engine", "model", "quant", "concurrency", "rate_rps"];

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
    pub fn rate(&self) -> Option<f64> {
        self.rate_bits.map(f64::from_bits)
    }
}

/// Per-group accumulation.
#[derive(Debug, Default)]
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
    pub sched_lag: Samples,
    pub ttft_sched: Samples,
    pub slo_ttft_ok: u64,
    pub slo_tpot_ok: u64,
    pub slo_e2e_ok: u64,
    pub slo_all_ok: u64,
    /// Output tokens by arrival time, in bins of [`BIN_US`] (for the throughput CI).
    pub token_bins: BTreeMap<i64, f64>,
}

/// Width of the time bins output tokens are counted in.
pub const BIN_US: i64 = 100_000;

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

    fn samples_mut(&mut self) -> [&mut Samples; 6] {
        [
            &mut self.ttft,
            &mut self.tpot,
            &mut self.itl,
            &mut self.e2e,
            &mut self.sched_lag,
            &mut self.ttft_sched,
        ]
    }

    fn held(&self) -> usize {
        self.ttft.held()
            + self.tpot.held()
            + self.itl.held()
            + self.e2e.held()
            + self.sched_lag.held()
            + self.ttft_sched.held()
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
        self.slo_ttft_ok += o.slo_ttft_ok;
        self.slo_tpot_ok += o.slo_tpot_ok;
        self.slo_e2e_ok += o.slo_e2e_ok;
        self.slo_all_ok += o.slo_all_ok;
        for (k, v) in o.token_bins {
            *self.token_bins.entry(k).or_default() += v;
        }
    }
}

/// Columns agg reads (others are skipped, so big chunk_tokens lists are never decoded).
pub const READ_COLUMNS: &[&str] = &[
    "label",
    "engine",
    "model",
    "quant",
    "concurrency",
    "rate_rps",
    "category",
    "turn",
    "status",
    "warmup",
    "sent_at",
    "done_at",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "sched_lag_ms",
    "ttft_sched_ms",
    "output_tokens",
    "input_tokens",
    "server_input_tokens",
    "chunk_times_ms",
    "chunk_tokens",
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
        Ok(meta)
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
        let by_cat = o.by.iter().any(|c| c == "category");
        let by_turn = o.by.iter().any(|c| c == "turn");
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
    for need in ["label", "status"] {
        if schema.field_with_name(need).is_err() {
            return Err(DataError::MissingColumn {
                path: path.into(),
                column: need.into(),
                contract: "requests".into(),
                required: "label, status (and the latency columns replay writes)".into(),
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
    if let Some(t) = sent_us {
        acc.first_sent_us = Some(acc.first_sent_us.map_or(t, |x| x.min(t)));
        if let Some(l) = v.lag.get(i) {
            acc.sched_lag.push(l);
        }
        if let Some(t) = v.done.get(i) {
            acc.last_done_us = Some(acc.last_done_us.map_or(t, |x| x.max(t)));
        }
    }
    if st != "ok" {
        return;
    }
    let out = v.out.get(i).unwrap_or(0).max(0) as u64;
    let inn = v.sin.get(i).or_else(|| v.inp.get(i)).unwrap_or(0).max(0) as u64;
    acc.out_tokens_ok += out;
    acc.in_tokens_ok += inn;
    let t_ttft = v.ttft.get(i);
    let t_e2e = v.e2e.get(i);
    let t_tpot = v.tpot.get(i).or_else(|| match (t_ttft, t_e2e) {
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
            if o.defs == Defs::Vllm
                && let Some(p) = prev
            {
                acc.itl.push(x - p);
            }
            prev = Some(x);
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
    });
    match o.defs {
        Defs::Vllm => {
            if let Some(x) = t_tpot {
                acc.tpot.push(x);
            }
        }
        Defs::Aiperf => {
            if let Some(x) = t_tpot {
                acc.tpot.push(x);
                acc.itl.push(x);
            }
        }
        Defs::Guidellm => {
            if let (Some(e), true) = (t_e2e, out > 0) {
                acc.tpot.push(e / out as f64);
            }
            if let Some(x) = t_tpot {
                acc.itl.push(x);
            }
        }
    }
    if o.slo.any() {
        let ok_t = o.slo.ttft_ms.is_none_or(|s| t_ttft.is_some_and(|x| x <= s));
        let ok_p = o.slo.tpot_ms.is_none_or(|s| t_tpot.is_none_or(|x| x <= s));
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
    label: SCol<'a>,
    engine: SCol<'a>,
    model: SCol<'a>,
    quant: SCol<'a>,
    cat: SCol<'a>,
    status: SCol<'a>,
    conc: ICol<'a>,
    turn: ICol<'a>,
    out: ICol<'a>,
    inp: ICol<'a>,
    sin: ICol<'a>,
    rate: FCol<'a>,
    ttft: FCol<'a>,
    tpot: FCol<'a>,
    e2e: FCol<'a>,
    lag: FCol<'a>,
    ttfts: FCol<'a>,
    sent: TCol<'a>,
    done: TCol<'a>,
    warm: BCol<'a>,
    chunks: LCol<'a>,
    ctoks: LCol<'a>,
}

impl<'a> View<'a> {
    fn of(b: &'a RecordBatch) -> View<'a> {
        let c = |n: &str| -> Option<&'a dyn Array> { b.schema_ref().index_of(n).ok().map(|i| b.column(i).as_ref()) };
        View {
            label: SCol::of(c("label")),
            engine: SCol::of(c("engine")),
            model: SCol::of(c("model")),
            quant: SCol::of(c("quant")),
            cat: SCol::of(c("category")),
            status: SCol::of(c("status")),
            conc: icol(c("concurrency")),
            turn: icol(c("turn")),
            out: icol(c("output_tokens")),
            inp: icol(c("input_tokens")),
            sin: icol(c("server_input_tokens")),
            rate: fcol(c("rate_rps")),
            ttft: fcol(c("ttft_ms")),
            tpot: fcol(c("tpot_ms")),
            e2e: fcol(c("e2e_ms")),
            lag: fcol(c("sched_lag_ms")),
            ttfts: fcol(c("ttft_sched_ms")),
            sent: tcol(c("sent_at")),
            done: tcol(c("done_at")),
            warm: BCol(c("warmup").and_then(|a| a.as_any().downcast_ref::<arrow_array::BooleanArray>())),
            chunks: LCol::of(c("chunk_times_ms")),
            ctoks: LCol::of(c("chunk_tokens")),
        }
    }
}

enum SCol<'a> {
    Utf8(&'a arrow_array::StringArray),
    Any(&'a dyn Array),
    Absent,
}

impl<'a> SCol<'a> {
    fn of(a: Option<&'a dyn Array>) -> SCol<'a> {
        match a {
            None => SCol::Absent,
            Some(a) => match a.as_any().downcast_ref::<arrow_array::StringArray>() {
                Some(s) => SCol::Utf8(s),
                None => SCol::Any(a),
            },
        }
    }
    #[inline]
    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            SCol::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            SCol::Any(a) => cols::str_at(*a, i),
            SCol::Absent => None,
        }
    }
}

/// A primitive column: the contract's own Arrow type read directly, anything else (other
/// widths, signedness, units) converted through `slow`.
struct Prim<'a, T: arrow_array::ArrowPrimitiveType, O> {
    fast: Option<&'a arrow_array::PrimitiveArray<T>>,
    any: Option<&'a dyn Array>,
    conv: fn(T::Native) -> O,
    slow: fn(&dyn Array, usize) -> Option<O>,
}

impl<'a, T: arrow_array::ArrowPrimitiveType, O> Prim<'a, T, O> {
    fn new(a: Option<&'a dyn Array>, conv: fn(T::Native) -> O, slow: fn(&dyn Array, usize) -> Option<O>) -> Self {
        let fast = a.and_then(|a| a.as_any().downcast_ref::<arrow_array::PrimitiveArray<T>>());
        Prim {
            fast,
            any: if fast.is_some() { None } else { a },
            conv,
            slow,
        }
    }
    #[inline]
    fn get(&self, i: usize) -> Option<O> {
        match (self.fast, self.any) {
            (Some(a), _) => (!a.is_null(i)).then(|| (self.conv)(a.value(i))),
            (None, Some(a)) => (self.slow)(a, i),
            (None, None) => None,
        }
    }
}

type ICol<'a> = Prim<'a, arrow_array::types::UInt32Type, i64>;
type FCol<'a> = Prim<'a, arrow_array::types::Float64Type, f64>;
type TCol<'a> = Prim<'a, arrow_array::types::TimestampMicrosecondType, i64>;

fn icol(a: Option<&dyn Array>) -> ICol<'_> {
    Prim::new(
        a,
        |v| v as i64,
        |a, i| {
            cols::int_at(a, i)
                .ok()
                .flatten()
                .map(|v| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        },
    )
}

fn fcol(a: Option<&dyn Array>) -> FCol<'_> {
    Prim::new(a, |v| v, cols::f64_at)
}

fn tcol(a: Option<&dyn Array>) -> TCol<'_> {
    Prim::new(a, |v| v, cols::ts_us)
}

struct BCol<'a>(Option<&'a arrow_array::BooleanArray>);

impl BCol<'_> {
    #[inline]
    fn get(&self, i: usize) -> bool {
        self.0.is_some_and(|a| !a.is_null(i) && a.value(i))
    }
}

/// A list column: List<Float64>/List<UInt32> read straight from their buffers, anything
/// else converted.
enum LCol<'a> {
    List(&'a arrow_array::ListArray),
    Any(&'a dyn Array),
    Absent,
}

impl<'a> LCol<'a> {
    fn of(a: Option<&'a dyn Array>) -> LCol<'a> {
        match a {
            None => LCol::Absent,
            Some(a) => match a.as_any().downcast_ref::<arrow_array::ListArray>() {
                Some(l) => LCol::List(l),
                None => LCol::Any(a),
            },
        }
    }

    /// Call `f` with row i's values as f64 (and the token list's values, when `toks` has one
    /// of the same length).
    fn for_each(&self, i: usize, toks: &LCol<'_>, mut f: impl FnMut(&[f64], Option<&[u32]>)) {
        let times: std::borrow::Cow<'_, [f64]> = match self {
            LCol::Absent => return,
            LCol::List(l) => {
                if l.is_null(i) {
                    return;
                }
                let (s, e) = (l.value_offsets()[i] as usize, l.value_offsets()[i + 1] as usize);
                match l.values().as_any().downcast_ref::<arrow_array::Float64Array>() {
                    Some(v) if v.null_count() == 0 => std::borrow::Cow::Borrowed(&v.values()[s..e]),
                    _ => {
                        let v = l.values();
                        std::borrow::Cow::Owned((s..e).filter_map(|k| cols::f64_at(v.as_ref(), k)).collect())
                    }
                }
            }
            LCol::Any(a) => match cols::list_at(*a, i) {
                Some(v) => std::borrow::Cow::Owned((0..v.len()).filter_map(|k| cols::f64_at(v.as_ref(), k)).collect()),
                None => return,
            },
        };
        let tk: Option<std::borrow::Cow<'_, [u32]>> = match toks {
            LCol::List(l) if !l.is_null(i) => {
                let (s, e) = (l.value_offsets()[i] as usize, l.value_offsets()[i + 1] as usize);
                match l.values().as_any().downcast_ref::<arrow_array::UInt32Array>() {
                    Some(v) if v.null_count() == 0 => Some(std::borrow::Cow::Borrowed(&v.values()[s..e])),
                    _ => None,
                }
            }
            _ => None,
        };
        let tk = tk.filter(|t| t.len() == times.len());
        f(&times, tk.as_deref());
    }
}

/// A cell of a summary row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    S(Option<String>),
    U(Option<u64>),
    F(Option<f64>),
}

/// One summary row, by column name.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub key: Option<Key>,
    pub cells: HashMap<&'static str, Cell>,
}

impl Row {
    pub fn f(&self, name: &str) -> Option<f64> {
        match self.cells.get(name) {
            Some(Cell::F(v)) => *v,
            Some(Cell::U(v)) => v.map(|x| x as f64),
            _ => None,
        }
    }
    pub fn s(&self, name: &str) -> Option<&str> {
        match self.cells.get(name) {
            Some(Cell::S(v)) => v.as_deref(),
            _ => None,
        }
    }
}

fn nan_none(v: f64) -> Option<f64> {
    if v.is_nan() { None } else { Some(v) }
}

fn put_stats(cells: &mut HashMap<&'static str, Cell>, metric: &str, s: Option<Stats>) {
    for c in SUMMARY.columns {
        if let Some(rest) = c.name.strip_prefix(metric).and_then(|r| r.strip_prefix('_')) {
            if !rest.ends_with("_ms") || rest.starts_with("sched") {
                continue;
            }
            let v = s.map(|s| match rest {
                "mean_ms" => s.mean,
                "p50_ms" => s.p50,
                "p90_ms" => s.p90,
                "p95_ms" => s.p95,
                "p99_ms" => s.p99,
                "p999_ms" => s.p999,
                "max_ms" => s.max,
                "p50_ci_lo_ms" => s.p50_ci.0,
                "p50_ci_hi_ms" => s.p50_ci.1,
                "p99_ci_lo_ms" => s.p99_ci.0,
                "p99_ci_hi_ms" => s.p99_ci.1,
                _ => f64::NAN,
            });
            cells.insert(c.name, Cell::F(v.and_then(nan_none)));
        }
    }
}

/// Finish the groups into summary rows, sorted by key. Sorts the accumulated samples.
pub fn finish(groups: &mut Groups, o: &Options) -> Vec<Row> {
    sort_all(groups);
    let mut keys: Vec<Key> = groups.groups.keys().cloned().collect();
    keys.sort_by(|a, b| {
        (
            &a.label,
            &a.engine,
            &a.model,
            &a.quant,
            a.concurrency,
            a.rate().map(|r| (r * 1e6) as i64),
            &a.category,
            a.turn,
        )
            .cmp(&(
                &b.label,
                &b.engine,
                &b.model,
                &b.quant,
                b.concurrency,
                b.rate().map(|r| (r * 1e6) as i64),
                &b.category,
                b.turn,
            ))
    });
    let mut group_by: Vec<&str> = ID_KEYS.to_vec();
    for b in &o.by {
        if BY_COLUMNS.contains(&b.as_str()) {
            group_by.push(b);
        }
    }
    let group_by = group_by.join(",");
    let mut rows = Vec::new();
    for (gi, k) in keys.into_iter().enumerate() {
        let acc = groups.groups.get_mut(&k).expect("key from map");
        let mut c: HashMap<&'static str, Cell> = HashMap::new();
        c.insert("label", Cell::S(Some(k.label.clone())));
        c.insert("engine", Cell::S(k.engine.clone()));
        c.insert("model", Cell::S(k.model.clone()));
        c.insert("quant", Cell::S(k.quant.clone()));
        c.insert("concurrency", Cell::U(k.concurrency.map(u64::from)));
        c.insert("rate_rps", Cell::F(k.rate()));
        c.insert("category", Cell::S(k.category.clone()));
        c.insert("turn", Cell::U(k.turn.map(u64::from)));
        c.insert("group_by", Cell::S(Some(group_by.clone())));
        let st = |s: &str| acc.by_status.get(s).copied().unwrap_or(0);
        let ok = st("ok");
        c.insert("n_requests", Cell::U(Some(acc.n)));
        for s in crate::schema::Status::ALL.map(|s| s.as_str()) {
            let name: &'static str = match s {
                "ok" => "n_ok",
                "http_error" => "n_http_error",
                "timeout" => "n_timeout",
                "connect_error" => "n_connect_error",
                "stream_error" => "n_stream_error",
                "cancelled" => "n_cancelled",
                _ => "n_not_sent",
            };
            c.insert(name, Cell::U(Some(st(s))));
        }
        let sent = acc.n - st("not_sent");
        c.insert(
            "error_rate",
            Cell::F(Some(if sent > 0 {
                (sent - ok) as f64 / sent as f64
            } else {
                0.0
            })),
        );
        let dur = match (acc.first_sent_us, acc.last_done_us) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e6),
            _ => None,
        };
        c.insert("duration_s", Cell::F(dur));
        let per_s = |x: f64| dur.map(|d| x / d);
        c.insert("req_per_s", Cell::F(per_s(ok as f64)));
        c.insert("output_tok_per_s", Cell::F(per_s(acc.out_tokens_ok as f64)));
        let (lo, hi) = match (acc.first_sent_us, acc.last_done_us) {
            (Some(a), Some(b)) => rate_ci(&acc.token_bins, a, b).map(|(_, lo, hi)| (lo, hi)).unzip(),
            _ => (None, None),
        };
        c.insert("output_tok_per_s_ci_lo", Cell::F(lo));
        c.insert("output_tok_per_s_ci_hi", Cell::F(hi));
        c.insert(
            "total_tok_per_s",
            Cell::F(per_s((acc.in_tokens_ok + acc.out_tokens_ok) as f64)),
        );
        let pct = |x: u64| {
            if ok > 0 {
                Some(100.0 * x as f64 / ok as f64)
            } else {
                None
            }
        };
        if o.slo.any() {
            c.insert("goodput_req_per_s", Cell::F(per_s(acc.slo_all_ok as f64)));
            c.insert("slo_ttft_pct", Cell::F(o.slo.ttft_ms.and(pct(acc.slo_ttft_ok))));
            c.insert("slo_tpot_pct", Cell::F(o.slo.tpot_ms.and(pct(acc.slo_tpot_ok))));
            c.insert("slo_e2e_pct", Cell::F(o.slo.e2e_ms.and(pct(acc.slo_e2e_ok))));
        }
        c.insert(
            "mean_output_tokens",
            Cell::F(if ok > 0 {
                Some(acc.out_tokens_ok as f64 / ok as f64)
            } else {
                None
            }),
        );
        let seed = o.seed.wrapping_add(gi as u64 * 1_000_003);
        let summ = |v: &mut Samples, salt: u64| {
            v.finish();
            v.summarize(o.bootstrap, seed ^ salt)
        };
        let s_ttft = summ(&mut acc.ttft, 1);
        let s_tpot = summ(&mut acc.tpot, 2);
        let s_itl = summ(&mut acc.itl, 3);
        let s_e2e = summ(&mut acc.e2e, 4);
        put_stats(&mut c, "ttft", s_ttft);
        put_stats(&mut c, "tpot", s_tpot);
        put_stats(&mut c, "itl", s_itl);
        put_stats(&mut c, "e2e", s_e2e);
        c.insert(
            "interactivity_tok_s",
            Cell::F(s_tpot.filter(|s| s.p50 > 0.0).map(|s| 1000.0 / s.p50)),
        );
        acc.sched_lag.finish();
        acc.ttft_sched.finish();
        c.insert("sched_lag_p99_ms", Cell::F(acc.sched_lag.percentile(0.99)));
        c.insert("ttft_sched_p99_ms", Cell::F(acc.ttft_sched.percentile(0.99)));
        rows.push(Row { key: Some(k), cells: c });
    }
    rows
}

/// Output-token rates of consecutive time batches covering [start, end] (batch means): the
/// run is cut into up to 20 equal batches of whole 100 ms bins, at least 5, each at least
/// one bin. None when the run is too short for 5 batches.
pub fn batch_rates(bins: &BTreeMap<i64, f64>, start_us: i64, end_us: i64) -> Option<Vec<f64>> {
    let b0 = start_us.div_euclid(BIN_US);
    let b1 = end_us.div_euclid(BIN_US);
    let nbins = (b1 - b0 + 1).max(0);
    let k = (nbins / 2).min(20);
    if k < 5 {
        return None;
    }
    let per = nbins / k;
    let mut rates = Vec::with_capacity(k as usize);
    for j in 0..k {
        let lo = b0 + j * per;
        let hi = if j + 1 == k { b1 + 1 } else { lo + per };
        let tokens: f64 = bins.range(lo..hi).map(|(_, v)| v).sum();
        rates.push(tokens / ((hi - lo) as f64 * BIN_US as f64 / 1e6));
    }
    Some(rates)
}

/// Two-sided 97.5% Student t quantiles for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// Mean and 95% t-interval of batch rates.
pub fn rate_ci(bins: &BTreeMap<i64, f64>, start_us: i64, end_us: i64) -> Option<(f64, f64, f64)> {
    let r = batch_rates(bins, start_us, end_us)?;
    let n = r.len() as f64;
    let m = r.iter().sum::<f64>() / n;
    let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = T975[(r.len() - 2).min(29)];
    let h = t * sd / n.sqrt();
    Some((m, (m - h).max(0.0), m + h))
}

/// GPU samples and engine metrics loaded for [`join_monitors`].
#[derive(Debug, Default)]
pub struct Monitors {
    pub gpu: Vec<crate::gpu::window::GpuSample>,
    pub engine: Vec<crate::enginemon::EngineRow>,
}

impl Monitors {
    /// Load gpumon and enginemon files (paths, directories, globs); empty lists load nothing.
    pub fn load(gpu: &[String], engine: &[String]) -> Result<Monitors, DataError> {
        Ok(Monitors {
            gpu: if gpu.is_empty() {
                Vec::new()
            } else {
                crate::gpu::window::load_gpu(gpu)?
            },
            engine: if engine.is_empty() {
                Vec::new()
            } else {
                crate::enginemon::load_engine_metrics(engine)?
            },
        })
    }
}

/// Join GPU samples and engine metrics to each summary row by the group's time window
/// (first sent_at .. last done_at): idle and peak GPU memory, mean utilisation and power,
/// energy and energy per output token; mean and peak running and waiting requests, peak KV
/// usage and the prefix-cache hit rate.
pub fn join_monitors(
    rows: &mut [Row],
    groups: &Groups,
    gpu: &[crate::gpu::window::GpuSample],
    eng: &[crate::enginemon::EngineRow],
) {
    for r in rows.iter_mut() {
        let Some(k) = r.key.clone() else { continue };
        let Some((start, end)) = window(groups, &k) else {
            continue;
        };
        let out_tokens = groups.groups.get(&k).map(|a| a.out_tokens_ok).unwrap_or(0);
        if !gpu.is_empty() {
            let w = crate::gpu::window::gpu_window(gpu, start, end);
            r.cells.insert("gpu_mem_idle_mib", Cell::F(w.mem_idle_mib));
            r.cells.insert("gpu_mem_peak_mib", Cell::F(w.mem_peak_mib));
            r.cells.insert("gpu_util_mean_pct", Cell::F(w.util_mean_pct));
            r.cells.insert("power_mean_w", Cell::F(w.power_mean_w));
            r.cells.insert("energy_j", Cell::F(w.energy_j));
            r.cells.insert(
                "energy_per_output_token_j",
                Cell::F(crate::gpu::window::energy_per_output_token(w.energy_j, out_tokens)),
            );
        }
        if !eng.is_empty() {
            let w = crate::enginemon::engine_window(eng, start, end);
            r.cells.insert("running_mean", Cell::F(w.running_mean));
            r.cells.insert("running_peak", Cell::F(w.running_peak));
            r.cells.insert("waiting_mean", Cell::F(w.waiting_mean));
            r.cells.insert("waiting_peak", Cell::F(w.waiting_peak));
            r.cells.insert("kv_usage_peak_pct", Cell::F(w.kv_usage_peak_pct));
            r.cells.insert(
                "prefix_cache_hit_pct",
                Cell::F(w.prefix_cache_hit_rate.map(|x| 100.0 * x)),
            );
        }
    }
}

/// Sort every group's samples, spread over the machine's cores (largest first, each to the
/// least loaded thread).
fn sort_all(groups: &mut Groups) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let mut all: Vec<&mut Samples> = groups.groups.values_mut().flat_map(|a| a.samples_mut()).collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.held()));
    let mut bins: Vec<(usize, Vec<&mut Samples>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for s in all {
        let b = bins.iter_mut().min_by_key(|b| b.0).expect("at least one thread");
        b.0 += s.held();
        b.1.push(s);
    }
    std::thread::scope(|sc| {
        for (_, work) in bins {
            sc.spawn(move || {
                for s in work {
                    s.finish();
                }
            });
        }
    });
}

/// Window of a group: first sent_at .. last done_at (µs since the epoch).
pub fn window(groups: &Groups, k: &Key) -> Option<(i64, i64)> {
    let a = groups.groups.get(k)?;
    Some((a.first_sent_us?, a.last_done_us?))
}

/// Summary rows as a record batch of the summary contract.
pub fn to_batch(rows: &[Row]) -> RecordBatch {
    let mut cols: Vec<ArrayRef> = Vec::new();
    for c in SUMMARY.columns {
        let arr: ArrayRef = match c.ty {
            Ty::Utf8 => {
                let mut b = StringBuilder::new();
                for r in rows {
                    match r.cells.get(c.name) {
                        Some(Cell::S(v)) => b.append_option(v.as_deref()),
                        _ => b.append_option(if c.nullable { None } else { Some("") }),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::U32 => {
                let mut b = UInt32Builder::new();
                for r in rows {
                    match r.cells.get(c.name) {
                        Some(Cell::U(v)) => b.append_option(v.map(|x| x as u32)),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::U64 => {
                let mut b = UInt64Builder::new();
                for r in rows {
                    match r.cells.get(c.name) {
                        Some(Cell::U(v)) => b.append_option(*v),
                        _ => b.append_option(if c.nullable { None } else { Some(0) }),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::F64 => {
                let mut b = Float64Builder::new();
                for r in rows {
                    match r.cells.get(c.name) {
                        Some(Cell::F(v)) => b.append_option(*v),
                        Some(Cell::U(v)) => b.append_option(v.map(|x| x as f64)),
                        _ => b.append_option(if c.nullable { None } else { Some(0.0) }),
                    }
                }
                Arc::new(b.finish())
            }
            other => unreachable!("summary has no {other:?} columns"),
        };
        cols.push(arr);
    }
    RecordBatch::try_new(SUMMARY.schema(), cols).expect("summary batch matches its contract")
}

/// Summary rows back from a summary file (for chart and report).
pub fn read_summary(path: &str) -> Result<Vec<Row>, DataError> {
    let input = crate::io::open(path)?;
    let mut rows = Vec::new();
    if input.schema.field_with_name("label").is_err() || input.schema.field_with_name("n_requests").is_err() {
        return Err(DataError::MissingColumn {
            path: path.into(),
            column: "n_requests".into(),
            contract: "summary".into(),
            required: "the columns agg writes (is this a requests file? run agg on it first)".into(),
        });
    }
    for b in input {
        let b = b?;
        for i in 0..b.num_rows() {
            let mut cells = HashMap::new();
            for c in SUMMARY.columns {
                let Some(a) = cols::get(&b, c.name) else {
                    continue;
                };
                let cell = match c.ty {
                    Ty::Utf8 => Cell::S(cols::str_at(a.as_ref(), i).map(str::to_string)),
                    Ty::U32 | Ty::U64 => Cell::U(cols::int_at(a.as_ref(), i).ok().flatten().map(|v| v.max(0) as u64)),
                    _ => Cell::F(cols::f64_at(a.as_ref(), i)),
                };
                cells.insert(c.name, cell);
            }
            rows.push(Row { key: None, cells });
        }
    }
    Ok(rows)
}

/// The compact Markdown table agg prints for people.
pub fn markdown(rows: &[Row], slo: bool) -> String {
    let varies = |name: &str| {
        let mut seen: Vec<Option<String>> = rows.iter().map(|r| cell_text(r, name)).collect();
        seen.sort();
        seen.dedup();
        seen.len() > 1 || seen.first().is_some_and(|v| v.is_some())
    };
    let mut cols: Vec<(&str, &str)> = vec![("label", "label")];
    for (k, h) in [
        ("engine", "engine"),
        ("quant", "quant"),
        ("concurrency", "users"),
        ("rate_rps", "rate req/s"),
        ("category", "category"),
        ("turn", "turn"),
    ] {
        if varies(k) {
            cols.push((k, h));
        }
    }
    cols.extend([
        ("n_ok", "ok"),
        ("n_requests", "n"),
        ("req_per_s", "req/s"),
        ("output_tok_per_s", "out tok/s"),
        ("ttft_p50_ms", "TTFT p50 ms"),
        ("ttft_p99_ms", "TTFT p99 ms"),
        ("tpot_p50_ms", "TPOT p50 ms"),
        ("tpot_p99_ms", "TPOT p99 ms"),
        ("itl_p50_ms", "ITL p50 ms"),
        ("itl_p99_ms", "ITL p99 ms"),
        ("e2e_p50_ms", "E2E p50 ms"),
        ("e2e_p99_ms", "E2E p99 ms"),
    ]);
    if slo {
        cols.push(("goodput_req_per_s", "goodput req/s"));
    }
    let mut s = String::new();
    s.push('|');
    for (_, h) in &cols {
        s.push_str(&format!(" {h} |"));
    }
    s.push_str("\n|");
    for (k, _) in &cols {
        s.push_str(if matches!(*k, "label" | "engine" | "quant" | "category") {
            "---|"
        } else {
            "---:|"
        });
    }
    s.push('\n');
    for r in rows {
        s.push('|');
        for (k, _) in &cols {
            s.push_str(&format!(" {} |", cell_text(r, k).unwrap_or_default()));
        }
        s.push('\n');
    }
    s
}

fn cell_text(r: &Row, name: &str) -> Option<String> {
    match r.cells.get(name)? {
        Cell::S(v) => v.clone(),
        Cell::U(v) => v.map(|x| x.to_string()),
        Cell::F(v) => v.map(crate::io::fmt_num),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

pub use crate::schema::Cmp;

/// Metrics compared by `--compare`, with the percentile they are (None: throughput).
const COMPARED: &[(&str, Option<(&str, f64)>)] = &[
    ("ttft_p50_ms", Some(("ttft", 0.5))),
    ("ttft_p99_ms", Some(("ttft", 0.99))),
    ("tpot_p50_ms", Some(("tpot", 0.5))),
    ("tpot_p99_ms", Some(("tpot", 0.99))),
    ("itl_p50_ms", Some(("itl", 0.5))),
    ("itl_p99_ms", Some(("itl", 0.99))),
    ("e2e_p50_ms", Some(("e2e", 0.5))),
    ("e2e_p99_ms", Some(("e2e", 0.99))),
    ("output_tok_per_s", None),
];

/// Compare label `b` against label `a` on every matched load (same concurrency or rate, and
/// category/turn when grouped by them). Call after [`finish`] (which sorts the samples).
pub fn compare(groups: &Groups, a: &str, b: &str, o: &Options) -> Vec<Cmp> {
    let mut out = Vec::new();
    let mut keys: Vec<&Key> = groups.groups.keys().filter(|k| k.label == a).collect();
    keys.sort();
    for ka in keys {
        let Some((kb, acc_b)) = groups.groups.iter().find(|(k, _)| {
            k.label == b
                && k.concurrency == ka.concurrency
                && k.rate_bits == ka.rate_bits
                && k.category == ka.category
                && k.turn == ka.turn
        }) else {
            continue;
        };
        let acc_a = &groups.groups[ka];
        for (mi, (metric, pct)) in COMPARED.iter().enumerate() {
            let seed = o.seed ^ (mi as u64 * 7919);
            let (va, vb, ratio, ci) = match pct {
                Some((m, q)) => {
                    fn pick<'x>(acc: &'x Acc, m: &str) -> &'x Samples {
                        match m {
                            "ttft" => &acc.ttft,
                            "tpot" => &acc.tpot,
                            "itl" => &acc.itl,
                            _ => &acc.e2e,
                        }
                    }
                    let (xa, xb) = (pick(acc_a, m), pick(acc_b, m));
                    let va = xa.percentile(*q);
                    let vb = xb.percentile(*q);
                    match stats::ratio_ci(xa, xb, *q, o.bootstrap.max(200), seed, 0.95) {
                        Some((r, lo, hi)) => (va, vb, Some(r), Some((lo, hi))),
                        None => (va, vb, None, None),
                    }
                }
                None => {
                    let rates = |acc: &Acc| match (acc.first_sent_us, acc.last_done_us) {
                        (Some(s), Some(e)) => batch_rates(&acc.token_bins, s, e),
                        _ => None,
                    };
                    let dur = |acc: &Acc| match (acc.first_sent_us, acc.last_done_us) {
                        (Some(s), Some(e)) if e > s => Some(acc.out_tokens_ok as f64 / ((e - s) as f64 / 1e6)),
                        _ => None,
                    };
                    let (va, vb) = (dur(acc_a), dur(acc_b));
                    let ci = match (rates(acc_a), rates(acc_b)) {
                        (Some(ra), Some(rb)) => stats::mean_ratio_ci(&ra, &rb, o.bootstrap.max(200), seed, 0.95),
                        _ => None,
                    };
                    let ratio = match (va, vb) {
                        (Some(x), Some(y)) if x > 0.0 => Some(y / x),
                        _ => None,
                    };
                    (va, vb, ratio, ci)
                }
            };
            out.push(Cmp {
                metric,
                a: a.to_string(),
                b: b.to_string(),
                concurrency: ka.concurrency,
                rate_rps: ka.rate(),
                category: ka.category.clone(),
                value_a: va,
                value_b: vb,
                ratio,
                ci,
            });
            let _ = kb;
        }
    }
    out
}

/// Comparison rows as a batch of the comparison contract.
pub fn comparison_batch(rows: &[Cmp]) -> RecordBatch {
    crate::schema::Rows::encode(rows, &())
}

/// The comparison as a Markdown table for people; differences that are noise are marked.
pub fn comparison_markdown(rows: &[Cmp]) -> String {
    let mut s = String::from(
        "| load | category | metric | A | B | B/A | 95% CI | verdict |\n|---|---|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let load = match (r.concurrency, r.rate_rps) {
            (Some(c), _) => format!("{c} users"),
            (None, Some(x)) => format!("{} req/s", crate::io::fmt_num(x)),
            _ => "-".into(),
        };
        let f = |v: Option<f64>| v.map(crate::io::fmt_num).unwrap_or_else(|| "-".into());
        let ci =
            r.ci.map(|(lo, hi)| format!("[{:.3}, {:.3}]", lo, hi))
                .unwrap_or_else(|| "-".into());
        let verdict = match r.better() {
            "a" => format!("{} better", r.a),
            "b" => format!("{} better", r.b),
            _ => "~ not significant".into(),
        };
        s.push_str(&format!(
            "| {load} | {} | {} | {} | {} | {} | {ci} | {verdict} |\n",
            r.category.as_deref().unwrap_or("-"),
            r.metric,
            f(r.value_a),
            f(r.value_b),
            r.ratio.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into()),
        ));
    }
    s
}

/// Properties of agg on generated requests: counts are conserved whatever the statuses and
/// the grouping, and the percentiles are ordered, in exact and in histogram mode.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::client::record::{Record, RunLabels, Status, to_batch};
    use crate::trace::TraceRow;

    const ST: [Status; 7] = [
        Status::Ok,
        Status::HttpError,
        Status::Timeout,
        Status::ConnectError,
        Status::StreamError,
        Status::Cancelled,
        Status::NotSent,
    ];

    /// (status index, ttft, gaps between chunks, category, warm-up)
    type Gen = (usize, f64, Vec<f64>, u8, bool);

    fn latency() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => 0.0f64..5_000.0,
            1 => Just(0.0),
            1 => 1e-9f64..1e9,
        ]
    }

    fn rec_strategy() -> impl Strategy<Value = Gen> {
        (
            0usize..7,
            latency(),
            prop::collection::vec(0.0f64..200.0, 0..12),
            0u8..3,
            prop::bool::weighted(0.1),
        )
    }

    fn record(id: u64, g: &Gen) -> Record {
        let (si, ttft, gaps, cat, warm) = g;
        let mut r = Record::not_sent(&TraceRow::new(id, 0.0, 10, 10), Some(1_000_000 + id as i64), "x");
        r.status = ST[*si];
        r.warmup = *warm;
        r.category = Some(["short", "long", "code"][*cat as usize].to_string());
        if r.status != Status::NotSent {
            r.sent_at_us = Some(1_000_000 + id as i64 * 1000);
            r.done_at_us = Some(r.sent_at_us.unwrap() + 5000);
            r.sched_lag_ms = Some(0.5);
        }
        if r.status == Status::Ok {
            let mut t = *ttft;
            r.chunk_times_ms = vec![t];
            for g in gaps {
                t += g;
                r.chunk_times_ms.push(t);
            }
            r.output_tokens = r.chunk_times_ms.len() as u32;
            r.ttft_ms = Some(*ttft);
            r.e2e_ms = Some(t);
            r.tpot_ms = crate::client::record::tpot(*ttft, t, r.output_tokens);
            r.error = None;
        }
        r
    }

    fn run(runs: &[Vec<Gen>], by: &[&str], budget: usize) -> (Vec<Row>, Vec<Vec<Record>>) {
        let o = Options {
            by: by.iter().map(|s| s.to_string()).collect(),
            bootstrap: 20,
            exact_budget: budget,
            ..Options::default()
        };
        let mut g = Groups::default();
        let mut all = Vec::new();
        for (k, gens) in runs.iter().enumerate() {
            let labels = RunLabels {
                label: format!("run{k}"),
                run_id: "r".into(),
                api: "chat".into(),
                concurrency: Some(k as u32 + 1),
                ..Default::default()
            };
            let recs: Vec<Record> = gens.iter().enumerate().map(|(i, x)| record(i as u64, x)).collect();
            // in two batches, as a file read in pieces would come
            let cut = recs.len() / 2;
            g.add_batch(&to_batch(&labels, &recs[..cut]), &o);
            g.add_batch(&to_batch(&labels, &recs[cut..]), &o);
            all.push(recs);
        }
        (finish(&mut g, &o), all)
    }

    fn u(r: &Row, c: &str) -> u64 {
        r.f(c).expect(c) as u64
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn counts_are_conserved_by_status_and_grouping(
            runs in prop::collection::vec(prop::collection::vec(rec_strategy(), 1..60), 1..4),
            by_cat in any::<bool>(),
            hist in any::<bool>(),
        ) {
            let by: &[&str] = if by_cat { &["category"] } else { &[] };
            let (rows, recs) = run(&runs, by, if hist { 4 } else { EXACT_BUDGET });
            let measured: Vec<&Record> = recs.iter().flatten().filter(|r| !r.warmup).collect();
            // grouping conserves rows
            let total: u64 = rows.iter().map(|r| u(r, "n_requests")).sum();
            prop_assert_eq!(total as usize, measured.len());
            for r in &rows {
                let by_status: u64 = ST.iter().map(|s| u(r, &format!("n_{}", s.as_str()))).sum();
                prop_assert_eq!(by_status, u(r, "n_requests"));
                let e = r.f("error_rate").unwrap();
                prop_assert!((0.0..=1.0).contains(&e));
            }
            // and the status totals are the rows' statuses
            for s in ST {
                let want = measured.iter().filter(|r| r.status == s).count() as u64;
                let got: u64 = rows.iter().map(|r| u(r, &format!("n_{}", s.as_str()))).sum();
                prop_assert_eq!(got, want, "{}", s.as_str());
            }
        }

        #[test]
        fn percentiles_are_ordered(
            runs in prop::collection::vec(prop::collection::vec(rec_strategy(), 1..80), 1..3),
            hist in any::<bool>(),
        ) {
            let (rows, _) = run(&runs, &[], if hist { 4 } else { EXACT_BUDGET });
            for r in &rows {
                for m in ["ttft", "tpot", "itl", "e2e"] {
                    let p = |s: &str| r.f(&format!("{m}_{s}_ms"));
                    let Some(max) = p("max") else { continue };
                    let qs = [p("p50"), p("p90"), p("p95"), p("p99"), p("p999"), Some(max)];
                    for w in qs.windows(2) {
                        let (a, b) = (w[0].unwrap(), w[1].unwrap());
                        prop_assert!(a <= b, "{} not ordered: {:?}", m, qs);
                    }
                    let mean = p("mean").unwrap();
                    prop_assert!(mean <= max * (1.0 + 1e-12) + 1e-9, "{} mean {} > max {}", m, mean, max);
                }
            }
        }

        #[test]
        fn percentile_is_monotone_in_q(
            mut v in prop::collection::vec(prop_oneof![9 => -1e6f64..1e6, 1 => Just(f64::INFINITY)], 1..200),
            qs in prop::collection::vec(0.0f64..=1.0, 2..20),
            hist in any::<bool>(),
        ) {
            let mut s = Samples::default();
            for x in &v {
                s.push(*x);
            }
            if hist {
                s.to_histogram();
            }
            s.finish();
            crate::stats::sort(&mut v);
            let mut qs = qs;
            qs.sort_by(|a, b| a.total_cmp(b));
            let ps: Vec<f64> = qs.iter().map(|q| s.percentile(*q).unwrap()).collect();
            for w in ps.windows(2) {
                prop_assert!(w[0] <= w[1], "{:?} at {:?}", ps, qs);
            }
            for p in &ps {
                prop_assert!(!p.is_nan());
            }
            if !hist {
                prop_assert_eq!(s.percentile(0.0), Some(v[0]));
                prop_assert_eq!(s.percentile(1.0), Some(v[v.len() - 1]));
            }
        }
    }
}
