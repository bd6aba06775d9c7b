//! agg: requests files in, one summary row per group out.
//!
//! Groups are the run's identity (label, engine, model, quant, concurrency, rate_rps) plus any
//! `--by` columns (category, turn). Failed requests count in the status totals and never in
//! latency statistics; warm-up rows are left out unless asked for.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{Array, ArrayRef, RecordBatch};

use crate::cols;
use crate::io::DataError;
use crate::schema::{SUMMARY, Ty};
use crate::stats::{self, Stats};

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
    /// `ttft=500ms,tpot=50ms,e2e=10s` (units ms or s; a bare number is ms)
    fn from_str(s: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--slo {part:?}: use metric=value, e.g. ttft=500ms"))?;
            let v = v.trim();
            let ms = if let Some(x) = v.strip_suffix("ms") {
                x.trim().parse::<f64>()
            } else if let Some(x) = v.strip_suffix('s') {
                x.trim().parse::<f64>().map(|x| x * 1000.0)
            } else {
                v.parse::<f64>()
            }
            .map_err(|_| format!("--slo {part:?}: {v:?} is not a duration (e.g. 500ms, 2s)"))?;
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            by: Vec::new(),
            slo: Slo::default(),
            include_warmup: false,
            defs: Defs::Vllm,
            bootstrap: 1000,
            seed: 0,
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
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
    pub itl: Vec<f64>,
    pub e2e: Vec<f64>,
    pub sched_lag: Vec<f64>,
    pub ttft_sched: Vec<f64>,
    pub slo_ttft_ok: u64,
    pub slo_tpot_ok: u64,
    pub slo_e2e_ok: u64,
    pub slo_all_ok: u64,
    /// Output tokens by arrival time, in bins of [`BIN_US`] (for the throughput CI).
    pub token_bins: BTreeMap<i64, f64>,
}

/// Width of the time bins output tokens are counted in.
pub const BIN_US: i64 = 100_000;

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
#[derive(Debug, Default)]
pub struct Groups {
    pub groups: HashMap<Key, Acc>,
    pub files: Vec<String>,
    /// Each input file's key-value metadata (provenance), in input order.
    pub metas: Vec<(String, crate::meta::Meta)>,
    pub rows: u64,
    pub warmup_skipped: u64,
}

impl Groups {
    /// Read one requests file (path or `-`) into the groups.
    pub fn add_file(&mut self, path: &str, o: &Options) -> Result<(), DataError> {
        let input = crate::io::open_projected(path, Some(READ_COLUMNS))?;
        for need in ["label", "status"] {
            if input.schema.field_with_name(need).is_err() {
                return Err(DataError::MissingColumn {
                    path: path.into(),
                    column: need.into(),
                    contract: "requests".into(),
                    required: "label, status (and the latency columns replay writes)".into(),
                });
            }
        }
        self.files.push(path.to_string());
        self.metas.push((path.to_string(), input.meta.clone()));
        for b in input {
            self.add_batch(&b?, o);
        }
        Ok(())
    }

    pub fn add_batch(&mut self, b: &RecordBatch, o: &Options) {
        let g = |n: &str| cols::get(b, n).cloned();
        let label = g("label").expect("checked");
        let status = g("status").expect("checked");
        let (engine, model, quant, conc, rate, cat, turn) = (
            g("engine"),
            g("model"),
            g("quant"),
            g("concurrency"),
            g("rate_rps"),
            g("category"),
            g("turn"),
        );
        let warm = g("warmup");
        let (sent, done) = (g("sent_at"), g("done_at"));
        let (ttft, tpot, e2e, lag, ttfts) = (
            g("ttft_ms"),
            g("tpot_ms"),
            g("e2e_ms"),
            g("sched_lag_ms"),
            g("ttft_sched_ms"),
        );
        let (outt, inp, sin) = (g("output_tokens"), g("input_tokens"), g("server_input_tokens"));
        let chunks = g("chunk_times_ms");
        let ctoks = g("chunk_tokens");
        let by_cat = o.by.iter().any(|c| c == "category");
        let by_turn = o.by.iter().any(|c| c == "turn");
        let s =
            |a: &Option<ArrayRef>, i: usize| a.as_ref().and_then(|a| cols::str_at(a.as_ref(), i)).map(str::to_string);
        let f = |a: &Option<ArrayRef>, i: usize| a.as_ref().and_then(|a| cols::f64_at(a.as_ref(), i));
        let u = |a: &Option<ArrayRef>, i: usize| a.as_ref().and_then(|a| cols::int_at(a.as_ref(), i).ok().flatten());
        let ts = |a: &Option<ArrayRef>, i: usize| a.as_ref().and_then(|a| cols::ts_us(a.as_ref(), i));
        for i in 0..b.num_rows() {
            self.rows += 1;
            let is_warm = warm
                .as_ref()
                .map(|w| {
                    !w.is_null(i)
                        && w.as_any()
                            .downcast_ref::<arrow_array::BooleanArray>()
                            .map(|a| a.value(i))
                            .unwrap_or(false)
                })
                .unwrap_or(false);
            if is_warm && !o.include_warmup {
                self.warmup_skipped += 1;
                continue;
            }
            let key = Key {
                label: cols::str_at(label.as_ref(), i).unwrap_or("").to_string(),
                engine: s(&engine, i),
                model: s(&model, i),
                quant: s(&quant, i),
                concurrency: u(&conc, i).map(|v| v as u32),
                rate_bits: f(&rate, i).map(f64::to_bits),
                category: if by_cat { s(&cat, i) } else { None },
                turn: if by_turn { u(&turn, i).map(|v| v as u32) } else { None },
            };
            let acc = self.groups.entry(key).or_default();
            acc.n += 1;
            let st = cols::str_at(status.as_ref(), i).unwrap_or("unknown");
            *acc.by_status.entry(st.to_string()).or_default() += 1;
            if let Some(t) = ts(&sent, i) {
                acc.first_sent_us = Some(acc.first_sent_us.map_or(t, |x| x.min(t)));
                if let Some(l) = f(&lag, i) {
                    acc.sched_lag.push(l);
                }
            }
            if let Some(t) = ts(&done, i)
                && ts(&sent, i).is_some()
            {
                acc.last_done_us = Some(acc.last_done_us.map_or(t, |x| x.max(t)));
            }
            if st != "ok" {
                continue;
            }
            let out = u(&outt, i).unwrap_or(0).max(0) as u64;
            let inn = u(&sin, i).or_else(|| u(&inp, i)).unwrap_or(0).max(0) as u64;
            acc.out_tokens_ok += out;
            acc.in_tokens_ok += inn;
            let t_ttft = f(&ttft, i);
            let t_e2e = f(&e2e, i);
            let t_tpot = f(&tpot, i).or_else(|| match (t_ttft, t_e2e) {
                (Some(a), Some(e)) if out > 1 => Some((e - a) / (out - 1) as f64),
                _ => None,
            });
            if let Some(v) = t_ttft {
                acc.ttft.push(v);
            }
            if let Some(v) = t_e2e {
                acc.e2e.push(v);
            }
            if let Some(v) = f(&ttfts, i) {
                acc.ttft_sched.push(v);
            }
            // One pass over the chunks: ITL gaps (vLLM definition) and output tokens by
            // arrival time (for the throughput confidence interval).
            let sent_us = ts(&sent, i);
            if let Some(l) = chunks.as_ref().and_then(|c| cols::list_at(c.as_ref(), i)) {
                let nt = l.len();
                let toks = ctoks
                    .as_ref()
                    .and_then(|c| cols::list_at(c.as_ref(), i))
                    .filter(|t| t.len() == nt);
                let even = if nt > 0 { out as f64 / nt as f64 } else { 0.0 };
                let mut prev: Option<f64> = None;
                for j in 0..nt {
                    let Some(x) = cols::f64_at(l.as_ref(), j) else { continue };
                    if o.defs == Defs::Vllm
                        && let Some(p) = prev
                    {
                        acc.itl.push(x - p);
                    }
                    prev = Some(x);
                    if let Some(s0) = sent_us {
                        let tok = toks.as_ref().and_then(|t| cols::f64_at(t.as_ref(), j)).unwrap_or(even);
                        let t_us = s0 + (x * 1000.0).round() as i64;
                        *acc.token_bins.entry(t_us.div_euclid(BIN_US)).or_default() += tok;
                    }
                }
            }
            match o.defs {
                Defs::Vllm => {
                    if let Some(v) = t_tpot {
                        acc.tpot.push(v);
                    }
                }
                Defs::Aiperf => {
                    if let Some(v) = t_tpot {
                        acc.tpot.push(v);
                        acc.itl.push(v);
                    }
                }
                Defs::Guidellm => {
                    if let (Some(e), true) = (t_e2e, out > 0) {
                        acc.tpot.push(e / out as f64);
                    }
                    if let Some(v) = t_tpot {
                        acc.itl.push(v);
                    }
                }
            }
            if o.slo.any() {
                let ok_t = o.slo.ttft_ms.is_none_or(|s| t_ttft.is_some_and(|v| v <= s));
                let ok_p = o.slo.tpot_ms.is_none_or(|s| t_tpot.is_none_or(|v| v <= s));
                let ok_e = o.slo.e2e_ms.is_none_or(|s| t_e2e.is_some_and(|v| v <= s));
                acc.slo_ttft_ok += ok_t as u64;
                acc.slo_tpot_ok += ok_p as u64;
                acc.slo_e2e_ok += ok_e as u64;
                acc.slo_all_ok += (ok_t && ok_p && ok_e) as u64;
            }
        }
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
        for s in crate::schema::STATUSES {
            let name: &'static str = match *s {
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
        let summ = |v: &mut Vec<f64>, salt: u64| {
            stats::sort(v);
            stats::summarize(v, o.bootstrap, seed ^ salt)
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
        stats::sort(&mut acc.sched_lag);
        stats::sort(&mut acc.ttft_sched);
        c.insert(
            "sched_lag_p99_ms",
            Cell::F(stats::percentile_sorted(&acc.sched_lag, 0.99)),
        );
        c.insert(
            "ttft_sched_p99_ms",
            Cell::F(stats::percentile_sorted(&acc.ttft_sched, 0.99)),
        );
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
        let s: Slo = "ttft=500ms, tpot=50, e2e=2s".parse().unwrap();
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
        assert!("ttft=-1".parse::<Slo>().is_err());
    }
}

/// One row of `agg --compare A,B`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    pub metric: &'static str,
    pub a: String,
    pub b: String,
    pub concurrency: Option<u32>,
    pub rate_rps: Option<f64>,
    pub category: Option<String>,
    pub value_a: Option<f64>,
    pub value_b: Option<f64>,
    pub ratio: Option<f64>,
    pub ci: Option<(f64, f64)>,
}

impl Cmp {
    pub fn significant(&self) -> bool {
        self.ci.is_some_and(|(lo, hi)| lo > 1.0 || hi < 1.0)
    }
    /// "a", "b" or "not significant".
    pub fn better(&self) -> &'static str {
        if !self.significant() {
            return "not significant";
        }
        let higher_is_better = self.metric.ends_with("_per_s");
        let b_higher = self.ratio.unwrap_or(1.0) > 1.0;
        if b_higher == higher_is_better { "b" } else { "a" }
    }
}

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
                    let pick = |acc: &Acc| -> Vec<f64> {
                        match *m {
                            "ttft" => acc.ttft.clone(),
                            "tpot" => acc.tpot.clone(),
                            "itl" => acc.itl.clone(),
                            _ => acc.e2e.clone(),
                        }
                    };
                    let (xa, xb) = (pick(acc_a), pick(acc_b));
                    let va = stats::percentile_sorted(&xa, *q);
                    let vb = stats::percentile_sorted(&xb, *q);
                    match stats::ratio_ci(&xa, &xb, *q, o.bootstrap.max(200), seed, 0.95) {
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
    use arrow_array::builder::BooleanBuilder;
    let mut metric = StringBuilder::new();
    let mut a = StringBuilder::new();
    let mut b = StringBuilder::new();
    let mut conc = UInt32Builder::new();
    let mut rate = Float64Builder::new();
    let mut cat = StringBuilder::new();
    let mut va = Float64Builder::new();
    let mut vb = Float64Builder::new();
    let mut ratio = Float64Builder::new();
    let mut lo = Float64Builder::new();
    let mut hi = Float64Builder::new();
    let mut sig = BooleanBuilder::new();
    let mut better = StringBuilder::new();
    for r in rows {
        metric.append_value(r.metric);
        a.append_value(&r.a);
        b.append_value(&r.b);
        conc.append_option(r.concurrency);
        rate.append_option(r.rate_rps);
        cat.append_option(r.category.as_deref());
        va.append_option(r.value_a);
        vb.append_option(r.value_b);
        ratio.append_option(r.ratio);
        lo.append_option(r.ci.map(|c| c.0));
        hi.append_option(r.ci.map(|c| c.1));
        sig.append_value(r.significant());
        better.append_value(r.better());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(metric.finish()),
        Arc::new(a.finish()),
        Arc::new(b.finish()),
        Arc::new(conc.finish()),
        Arc::new(rate.finish()),
        Arc::new(cat.finish()),
        Arc::new(va.finish()),
        Arc::new(vb.finish()),
        Arc::new(ratio.finish()),
        Arc::new(lo.finish()),
        Arc::new(hi.finish()),
        Arc::new(sig.finish()),
        Arc::new(better.finish()),
    ];
    RecordBatch::try_new(crate::schema::COMPARISON.schema(), cols).expect("comparison batch matches its contract")
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
