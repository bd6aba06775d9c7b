//! report: from runs to a written recommendation, every claim derived from the numbers by a
//! stated rule, with its margin, its 95% bootstrap interval and the requests it rests on.
//!
//! The answer comes first (a summary: the decision table, the warnings, what was not
//! measured), the details and the method after. No winner is named from fewer requests than
//! [`min_samples`] asks, from a tie within the measurement's resolution, from a difference
//! within the noise, or from synthetic data (`gpumon --fake`); a metric is never averaged
//! across load levels into a winner.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::analysis::compare::sample_count;
use crate::analysis::{self, Cmp, Groups, Options};
use crate::chart::capacity::{limits, slo_words, slos, who};
use crate::io::fmt_num;
use crate::meta::Meta;
use crate::quality::compare::{CompareError, Comparison, META_ENGINE, META_QUANT, compare, read_rows};
use crate::quality::measures::BLOCK;
use crate::schema::capacity::Capacity;
use crate::schema::summary::col;
use crate::schema::{QualityRow, Status, Summary};
use crate::stats::min_samples;

/// Direction of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// A metric the report ranks engines on.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The summary column (and `--compare` metric) it is.
    pub column: &'static str,
    /// Its value in a summary row.
    pub get: fn(&Summary) -> Option<f64>,
    pub name: &'static str,
    pub unit: &'static str,
    pub better: Better,
    /// The percentile a claim on it rests on (rates: 0.5, as a median's sample).
    pub quantile: f64,
    /// The finest difference the measurement resolves, in the metric's unit (see [`tied`]).
    pub resolution: f64,
}

/// Relative resolution of every metric: 0.1%, what agg keeps when a run is too large for
/// exact samples (an HDR histogram of 3 significant digits).
pub const REL_RESOLUTION: f64 = 1e-3;

/// Timestamps are microseconds: 1 µs in milliseconds.
const US_IN_MS: f64 = 1e-3;

pub const RANKED: &[Metric] = &[
    Metric {
        column: col::OUTPUT_TOK_PER_S,
        get: |r| r.output_tok_per_s,
        name: "output throughput",
        unit: "tok/s",
        better: Better::Higher,
        quantile: 0.5,
        resolution: 0.0,
    },
    Metric {
        column: col::GOODPUT_REQ_PER_S,
        get: |r| r.goodput_req_per_s,
        name: "goodput",
        unit: "req/s",
        better: Better::Higher,
        quantile: 0.5,
        resolution: 0.0,
    },
    Metric {
        column: col::TTFT_P50_MS,
        get: |r| r.ttft.p50,
        name: "median TTFT",
        unit: "ms",
        better: Better::Lower,
        quantile: 0.5,
        resolution: US_IN_MS,
    },
    Metric {
        column: col::TTFT_P99_MS,
        get: |r| r.ttft.p99,
        name: "p99 TTFT",
        unit: "ms",
        better: Better::Lower,
        quantile: 0.99,
        resolution: US_IN_MS,
    },
    Metric {
        column: col::TPOT_P50_MS,
        get: |r| r.tpot.p50,
        name: "median TPOT",
        unit: "ms",
        better: Better::Lower,
        quantile: 0.5,
        resolution: US_IN_MS,
    },
    Metric {
        column: col::E2E_P99_MS,
        get: |r| r.e2e.p99,
        name: "p99 E2E latency",
        unit: "ms",
        better: Better::Lower,
        quantile: 0.99,
        resolution: US_IN_MS,
    },
];

/// The metrics of the summary's decision table (goodput has no interval, so it decides
/// nothing).
const DECIDING: [&str; 5] = [
    col::OUTPUT_TOK_PER_S,
    col::TTFT_P50_MS,
    col::TTFT_P99_MS,
    col::TPOT_P50_MS,
    col::E2E_P99_MS,
];

/// Two values of `m` are a tie: they differ by no more than the measurement resolves (1 µs
/// for latencies, and 0.1% of the larger).
pub fn tied(m: &Metric, a: f64, b: f64) -> bool {
    let d = (a - b).abs();
    d <= m.resolution || d <= REL_RESOLUTION * a.abs().max(b.abs())
}

pub use crate::meta::SYNTHETIC_KEY;

/// A load level: closed-loop users or open-loop rate.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Load {
    Users(u32),
    Rate(f64),
}

impl Load {
    pub fn of(r: &Summary) -> Option<Load> {
        match (r.concurrency, r.rate_rps) {
            (Some(c), _) => Some(Load::Users(c)),
            (None, Some(x)) => Some(Load::Rate(x)),
            _ => None,
        }
    }
    pub fn text(&self) -> String {
        match self {
            Load::Users(1) => "1 user".into(),
            Load::Users(c) => format!("{c} users"),
            Load::Rate(x) => format!("{} req/s", fmt_num(*x)),
        }
    }
    fn matches(&self, c: &Cmp) -> bool {
        match self {
            Load::Users(u) => c.concurrency == Some(*u),
            Load::Rate(x) => c.concurrency.is_none() && c.rate_rps.is_some_and(|r| (r - x).abs() < 1e-9),
        }
    }
}

fn by_load(a: &Load, b: &Load) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
}

/// What the numbers allow to be said of the best label against the runner-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The 95% interval of the ratio excludes 1 and both sides have enough samples.
    Winner,
    /// The interval contains 1.
    Noise,
    /// A side has fewer samples than [`min_samples`] asks for this metric.
    TooFew,
    /// The two values are equal within the measurement's resolution ([`tied`]).
    Tie,
    /// No interval could be computed (why).
    Untested(&'static str),
}

/// The outcome of ranking labels on one metric at one load.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub metric: &'static str,
    pub load: Load,
    pub category: Option<String>,
    pub winner: String,
    pub winner_value: f64,
    pub runner_up: (String, f64),
    /// Relative advantage of the best over the runner-up (0.12 = 12% better).
    pub margin: Option<f64>,
    /// The runner-up / best ratio's 95% CI.
    pub ci: Option<(f64, f64)>,
    /// Samples each side rests on: (best, runner-up).
    pub n: (u64, u64),
    /// The samples per side a claim on this metric needs.
    pub min_n: u64,
    pub verdict: Verdict,
}

impl Ranking {
    /// Whether this ranking names a winner.
    pub fn decides(&self) -> bool {
        self.verdict == Verdict::Winner
    }

    /// The margin's 95% interval (fractions, as `margin`), from the ratio's.
    fn margin_ci(&self) -> Option<(f64, f64)> {
        let (lo, hi) = self.ci?;
        match metric(self.metric).better {
            Better::Lower => Some((lo - 1.0, hi - 1.0)),
            Better::Higher if lo > 0.0 => Some((1.0 / hi - 1.0, 1.0 / lo - 1.0)),
            Better::Higher => None,
        }
    }

    fn n_text(&self) -> String {
        format!("n = {} vs {}", self.n.0, self.n.1)
    }
}

fn value(r: &Summary, m: &Metric) -> Option<f64> {
    (m.get)(r).filter(|v| v.is_finite())
}

/// The verdict on a difference between two groups: a tie, too few samples, no interval,
/// noise, or a winner (in that order of precedence).
fn judge(m: &Metric, va: f64, vb: f64, n: (u64, u64), c: Option<&Cmp>) -> Verdict {
    if tied(m, va, vb) {
        return Verdict::Tie;
    }
    if n.0.min(n.1) < min_samples(m.quantile) {
        return Verdict::TooFew;
    }
    match c.and_then(|c| c.ci.map(|_| c.significant())) {
        Some(true) => Verdict::Winner,
        Some(false) => Verdict::Noise,
        None if m.column == col::GOODPUT_REQ_PER_S => Verdict::Untested("goodput has no confidence interval"),
        None if m.column == col::OUTPUT_TOK_PER_S => {
            Verdict::Untested("runs shorter than 1 s have no throughput interval")
        }
        None => Verdict::Untested("no per-request samples for this metric"),
    }
}

/// Rank every label on every metric at every load (and category) present in `rows`.
pub fn rankings(rows: &[Summary], groups: &Groups, o: &Options) -> Vec<Ranking> {
    let mut by: BTreeMap<(String, Option<String>), Vec<&Summary>> = BTreeMap::new();
    for r in rows {
        if let Some(l) = Load::of(r) {
            by.entry((format!("{l:?}"), r.category.clone())).or_default().push(r);
        }
    }
    let mut cmp_cache: BTreeMap<(String, String), Vec<Cmp>> = BTreeMap::new();
    let mut out = Vec::new();
    for ((_, cat), rs) in by {
        let load = Load::of(rs[0]).expect("grouped by load");
        for m in RANKED {
            let mut vals: Vec<(&Summary, f64)> = rs.iter().filter_map(|r| value(r, m).map(|v| (*r, v))).collect();
            if vals.len() < 2 {
                continue;
            }
            vals.sort_by(|a, b| match m.better {
                Better::Lower => a.1.total_cmp(&b.1),
                Better::Higher => b.1.total_cmp(&a.1),
            });
            let ((wr, wv), (rr, rv)) = (vals[0], vals[1]);
            let (w, r) = (wr.label.clone(), rr.label.clone());
            let margin = match m.better {
                Better::Lower if wv > 0.0 => Some(rv / wv - 1.0),
                Better::Higher if rv > 0.0 => Some(wv / rv - 1.0),
                _ => None,
            };
            let count = |s: &Summary| {
                sample_count(
                    groups,
                    &s.label,
                    s.concurrency,
                    s.rate_rps,
                    s.category.as_deref(),
                    m.column,
                )
                .unwrap_or(0)
            };
            let n = (count(wr), count(rr));
            // Confidence from the bootstrap comparison of the two (goodput has none).
            let cmps = cmp_cache
                .entry((w.clone(), r.clone()))
                .or_insert_with(|| analysis::compare(groups, &w, &r, o));
            let c = cmps
                .iter()
                .find(|c| c.metric == m.column && load.matches(c) && c.category == cat);
            out.push(Ranking {
                metric: m.column,
                load,
                category: cat.clone(),
                winner: w,
                winner_value: wv,
                runner_up: (r, rv),
                margin,
                ci: c.and_then(|c| c.ci),
                n,
                min_n: min_samples(m.quantile),
                verdict: judge(m, wv, rv, n, c),
            });
        }
    }
    out
}

fn metric(col: &str) -> &'static Metric {
    RANKED.iter().find(|m| m.column == col).expect("ranked metric")
}

/// A signed percentage: "+12.3%".
fn pct(x: f64) -> String {
    format!("{:+.1}%", 100.0 * x)
}

/// An unsigned percentage: "12.3%".
fn pct_abs(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// "[+5.1%, +20.0%]"
fn pct_ci((lo, hi): (f64, f64)) -> String {
    format!("[{}, {}]", pct(lo), pct(hi))
}

/// The claim a ranking supports, with its evidence.
fn verdict(r: &Ranking) -> String {
    let m = metric(r.metric);
    match &r.verdict {
        Verdict::Winner => format!(
            "**yes**: {} better, 95% CI {}",
            r.margin.map(pct_abs).unwrap_or_default(),
            r.margin_ci().map(pct_ci).unwrap_or_default()
        ),
        Verdict::Noise => format!(
            "no winner: within noise (95% CI {} includes 0)",
            r.margin_ci().map(pct_ci).unwrap_or_default()
        ),
        Verdict::TooFew => format!(
            "no winner: too few requests ({}; a claim on {} needs ≥ {} per side)",
            r.n_text(),
            m.name,
            r.min_n
        ),
        Verdict::Tie => "no winner: tie (equal within the measurement's resolution)".into(),
        Verdict::Untested(why) => format!("no winner: untested ({why})"),
    }
}

/// The decision table's cell: the winner with margin, interval and n, or why there is none.
fn decision_cell(r: &Ranking) -> String {
    match &r.verdict {
        Verdict::Winner => format!(
            "**{}** {} better {} ({})",
            r.winner,
            r.margin.map(pct_abs).unwrap_or_default(),
            r.margin_ci().map(pct_ci).unwrap_or_default(),
            r.n_text()
        ),
        Verdict::Noise => format!("no winner: within noise ({})", r.n_text()),
        Verdict::TooFew => format!("too few requests ({})", r.n_text()),
        Verdict::Tie => format!("no winner: tie ({})", r.n_text()),
        Verdict::Untested(_) => format!("no winner: untested ({})", r.n_text()),
    }
}

/// Everything a report is written from.
pub struct ReportInput<'a> {
    pub title: String,
    pub rows: &'a [Summary],
    pub groups: &'a Groups,
    /// Rows and groups by category, when the requests carry categories.
    pub cat: Option<(&'a [Summary], &'a Groups)>,
    pub opts: &'a Options,
    /// Chart files, relative to the report.
    pub charts: Vec<String>,
    /// Metadata of the gpu files, when any were given ([`SYNTHETIC_KEY`] set when any of them
    /// is synthetic).
    pub gpu_meta: Option<Meta>,
    /// Capacity rows (sweep's capacity files): when any, the report opens with them.
    pub capacity: &'a [Capacity],
    /// Whether any capacity file is synthetic.
    pub capacity_synthetic: bool,
    /// Quality files (the `quality` tool's rows): the quantization section compares each
    /// variant's with its engine's baseline's.
    pub quality: &'a [QualityRun],
}

impl ReportInput<'_> {
    /// Whether the GPU numbers (memory, power, energy) are synthetic.
    pub fn gpu_synthetic(&self) -> bool {
        self.gpu_meta.as_ref().is_some_and(Meta::is_synthetic)
    }
}

fn meta_table(inp: &ReportInput<'_>) -> String {
    // One line per label: what ran, from the requests files' provenance.
    let mut by: BTreeMap<String, BTreeMap<&'static str, BTreeSet<String>>> = BTreeMap::new();
    for (_, m) in &inp.groups.metas {
        let label = m.get("servebench.label").unwrap_or("?").to_string();
        let e = by.entry(label).or_default();
        let mut put = |k: &'static str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                e.entry(k).or_default().insert(v.to_string());
            }
        };
        put("engine", m.get("servebench.engine"));
        put("version", m.get("servebench.engine_version"));
        put("model", m.get("servebench.model"));
        put("api", m.get("servebench.api"));
        put("url", m.get("servebench.url"));
        put("tls", m.get("servebench.tls"));
        put("host", m.get("servebench.host"));
        put("trace", m.get("servebench.trace.process"));
        put("seed", m.get("servebench.trace.seed"));
        put(
            "trace sha256",
            m.get("servebench.trace.sha256").map(|s| &s[..s.len().min(12)]),
        );
        put("servebench", m.get("servebench.git_sha"));
        if m.is_synthetic() {
            put("data", Some("synthetic"));
        }
        e.entry("runs").or_default().insert(
            inp.groups
                .metas
                .iter()
                .filter(|(_, x)| x.get("servebench.label") == m.get("servebench.label"))
                .count()
                .to_string(),
        );
    }
    let cols = [
        "engine",
        "version",
        "model",
        "api",
        "trace",
        "seed",
        "trace sha256",
        "host",
        "servebench",
        "runs",
    ];
    let mut s = String::from("| label |");
    for c in cols {
        let _ = write!(s, " {c} |");
    }
    s.push_str("\n|---|");
    for _ in cols {
        s.push_str("---|");
    }
    s.push('\n');
    for (label, m) in &by {
        let _ = write!(s, "| {label} |");
        for c in cols {
            let v = m
                .get(c)
                .map(|v| {
                    // numbers (seeds, run counts) in numeric order: 1, 7, 10, 50, 100
                    let mut v: Vec<String> = v.iter().cloned().collect();
                    if v.iter().all(|x| x.parse::<f64>().is_ok()) {
                        v.sort_by(|a, b| {
                            a.parse::<f64>()
                                .unwrap_or(0.0)
                                .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
                        });
                    }
                    v.join(", ")
                })
                .unwrap_or_else(|| "-".into());
            let _ = write!(s, " {v} |");
        }
        s.push('\n');
    }
    s
}

/// Runs read by `import` from other tools' files: a line per such label in the provenance (the
/// tool that measured it, its version, its definitions), and a warning when the report puts
/// side by side runs measured by different tools, whose clocks start at different points.
fn imported_runs(inp: &ReportInput<'_>) -> (String, Vec<String>) {
    use crate::analysis::imported::ImportMeta;
    let own = "servebench";
    let mut source: BTreeMap<String, (String, Option<analysis::Defs>)> = BTreeMap::new();
    let mut lines = String::new();
    for (path, m) in &inp.groups.metas {
        let Some(im) = ImportMeta::of(m) else { continue };
        for src in &im.sources {
            source.insert(src.label.clone(), (im.tool.clone(), im.defs));
            let _ = writeln!(
                lines,
                "- **{}**: measured by {} (version {}), imported from `{}` into `{path}`; its TTFT, E2E and \
                 throughput follow {}'s definitions (where its clock starts: {})",
                src.label,
                im.defs.map_or(im.tool.as_str(), |d| d.tool()),
                src.version.as_deref().unwrap_or("not recorded in the file"),
                src.path,
                im.tool,
                im.defs.map_or("unknown", |d| d.definitions()[0].clock),
            );
        }
    }
    if lines.is_empty() {
        return (String::new(), Vec::new());
    }
    let text = format!("\nRuns imported from other tools (`import`):\n\n{lines}");
    let labels: BTreeSet<&str> = inp.rows.iter().map(|r| r.label.as_str()).collect();
    let mut by_tool: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in &labels {
        let tool = source.get(*l).map_or(own, |(t, _)| t.as_str());
        by_tool.entry(tool).or_default().push(l);
    }
    let mut warn = Vec::new();
    if by_tool.len() > 1 {
        let who: Vec<String> = by_tool
            .iter()
            .map(|(t, ls)| format!("{} ({t})", ls.join(", ")))
            .collect();
        warn.push(format!(
            "Runs measured by different tools are compared: {}. TPOT and ITL are recomputed here from each \
             run's rows under one definition (`--defs {}`), but TTFT, E2E and the token counts keep each tool's \
             own clock and counting (README: Importing other tools' results, the crosswalk): a difference of a \
             few ms may be the tools', not the servers'.",
            who.join("; "),
            inp.opts.defs.name()
        ));
    }
    (text, warn)
}

/// A p99 that grows more than this between neighbouring load levels is a saturation cliff.
pub const CLIFF_FACTOR: f64 = 5.0;
/// Below this share of completed requests meeting the SLO, goodput is "far below" throughput.
pub const GOODPUT_SHARE: f64 = 0.9;

/// The summary's warnings, one Markdown bullet each: client-bound runs, saturation cliffs,
/// goodput far below throughput, failed requests, groups too small for any claim.
pub fn warnings(rows: &[Summary], slo: bool) -> Vec<String> {
    let mut w = Vec::new();
    for l in analysis::client_bound_lines(rows) {
        w.push(format!("**client-bound**: {l}"));
    }
    // saturation cliffs: per label, neighbouring closed-loop loads (and open-loop rates)
    let labels: BTreeSet<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    for label in &labels {
        let mut own: Vec<(&Summary, Load)> = rows
            .iter()
            .filter(|r| r.label == *label && r.category.is_none() && r.turn.is_none())
            .filter_map(|r| Load::of(r).map(|l| (r, l)))
            .collect();
        own.sort_by(|a, b| by_load(&a.1, &b.1));
        for pair in own.windows(2) {
            let ((a, la), (b, lb)) = (pair[0], pair[1]);
            if matches!(
                (la, lb),
                (Load::Users(_), Load::Rate(_)) | (Load::Rate(_), Load::Users(_))
            ) {
                continue;
            }
            for (name, get) in [
                ("p99 TTFT", (|r: &Summary| r.ttft.p99) as fn(&Summary) -> Option<f64>),
                ("p99 TPOT", |r: &Summary| r.tpot.p99),
                ("p99 E2E latency", |r: &Summary| r.e2e.p99),
            ] {
                if let (Some(x), Some(y)) = (get(a), get(b))
                    && x > 0.0
                    && y / x > CLIFF_FACTOR
                {
                    w.push(format!(
                        "**saturation cliff**: {label}'s {name} grows {:.1}× from {} ms at {} to {} ms at {} \
                         (n = {} and {} requests)",
                        y / x,
                        fmt_num(x),
                        la.text(),
                        fmt_num(y),
                        lb.text(),
                        a.n.ok,
                        b.n.ok
                    ));
                }
            }
        }
    }
    for r in rows.iter().filter(|r| r.category.is_none() && r.turn.is_none()) {
        let at = Load::of(r).map(|l| format!(" at {}", l.text())).unwrap_or_default();
        if slo
            && let (Some(g), Some(t)) = (r.goodput_req_per_s, r.req_per_s)
            && t > 0.0
            && g < GOODPUT_SHARE * t
        {
            w.push(format!(
                "**goodput far below throughput**: {}{at}: {} of {} completed req/s ({:.0}%) met the SLO",
                r.label,
                fmt_num(g),
                fmt_num(t),
                100.0 * g / t
            ));
        }
        let sent = r.n_requests - r.n.get(Status::NotSent);
        let failed = sent - r.n.get(Status::Ok).min(sent);
        if failed > 0 {
            let kinds: Vec<String> = Status::ALL
                .iter()
                .filter(|s| !matches!(s, Status::Ok | Status::NotSent) && r.n.get(**s) > 0)
                .map(|s| format!("{} {}", r.n.get(*s), s.as_str()))
                .collect();
            w.push(format!(
                "**errors**: {}{at}: {failed} of {sent} requests failed ({:.1}%: {}); failed requests count in no \
                 latency",
                r.label,
                100.0 * r.error_rate,
                kinds.join(", ")
            ));
        }
    }
    // groups too small for a median claim, by load
    let need = min_samples(0.5);
    let mut small: BTreeMap<String, (Load, Vec<String>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.category.is_none() && r.n.ok < need) {
        if let Some(l) = Load::of(r) {
            small
                .entry(format!("{l:?}"))
                .or_insert((l, Vec::new()))
                .1
                .push(format!("{} {}", r.label, r.n.ok));
        }
    }
    let mut small: Vec<(Load, Vec<String>)> = small.into_values().collect();
    small.sort_by(|a, b| by_load(&a.0, &b.0));
    for (l, who) in small {
        w.push(format!(
            "**small samples**: at {} the successful requests are {} (fewer than the {need} a median claim needs): no \
             winner is named there",
            l.text(),
            who.join(", ")
        ));
    }
    w
}

/// What the report could not measure, one Markdown bullet each.
fn not_measured(inp: &ReportInput<'_>) -> Vec<String> {
    let rows = inp.rows;
    let mut v = quality_not_measured(inp);
    if inp.gpu_meta.is_none() {
        v.push("GPU memory, power and energy: no gpumon file was given.".into());
    } else if inp.gpu_synthetic() {
        v.push(
            "GPU memory, power and energy: the GPU samples are synthetic (`gpumon --fake`, scripted devices), so \
             they are shown marked *synthetic* and decide no winner or recommendation."
                .into(),
        );
    }
    if rows
        .iter()
        .all(|r| r.running_peak.is_none() && r.kv_usage_peak_pct.is_none())
    {
        v.push("The engine's own view (running and waiting requests, KV cache): no enginemon file was given.".into());
    }
    if !inp.opts.slo.any() {
        v.push("Goodput: no `--slo` was given.".into());
    }
    // loads some labels were measured at and others not
    let labels: BTreeSet<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    let mut loads: Vec<Load> = rows.iter().filter_map(Load::of).collect();
    loads.sort_by(by_load);
    loads.dedup();
    for l in &loads {
        let missing: Vec<&str> = labels
            .iter()
            .filter(|lab| !rows.iter().any(|r| r.label == **lab && Load::of(r) == Some(*l)))
            .copied()
            .collect();
        if !missing.is_empty() {
            v.push(format!("{}: not measured for {}.", l.text(), missing.join(", ")));
        }
    }
    let p99 = min_samples(0.99);
    if !rows.iter().any(|r| r.n.ok >= p99) {
        v.push(format!(
            "Tail latency claims: no group has the {p99} successful requests a p99 claim needs, so p99s are shown \
             but no p99 winner is named."
        ));
    }
    let rates: BTreeSet<u64> = rows.iter().filter_map(|r| r.rate_rps.map(f64::to_bits)).collect();
    if rates.len() == 1 {
        v.push("Open loop: one offered rate only, so how latency grows with the offered rate is not measured.".into());
    }
    v.push(
        "Variation between runs: the intervals describe request-to-request noise within each run; a repeat on \
         another day, host or engine restart may differ by more."
            .into(),
    );
    v
}

/// The summary's decision table: per workload and load level, the winner on each deciding
/// metric with margin, interval and n, or why there is none. A metric no group has enough
/// requests for, and rows where no claim is possible at all, are named in a line under it.
fn decision_table(workloads: &[(String, Vec<Ranking>)]) -> String {
    let all = || workloads.iter().flat_map(|(_, r)| r.iter());
    let (shown, dropped): (Vec<&str>, Vec<&str>) = DECIDING.iter().partition(|c| {
        let mut on = all().filter(|r| r.metric == **c).peekable();
        on.peek().is_none() || on.any(|r| r.verdict != Verdict::TooFew)
    });
    let mut s = String::from("| workload | load |");
    for c in &shown {
        let _ = write!(s, " {} |", metric(c).name);
    }
    s.push_str("\n|---|---|");
    for _ in &shown {
        s.push_str("---|");
    }
    s.push('\n');
    let mut none = Vec::new();
    let mut any = false;
    for (wl, ranks) in workloads {
        let mut loads: Vec<Load> = ranks.iter().map(|r| r.load).collect();
        loads.sort_by(by_load);
        loads.dedup();
        for l in loads {
            let at: Vec<Option<&Ranking>> = shown
                .iter()
                .map(|c| ranks.iter().find(|r| r.load == l && r.metric == *c))
                .collect();
            if at.iter().flatten().all(|r| r.verdict == Verdict::TooFew) {
                let most = at.iter().flatten().map(|r| r.n.0.max(r.n.1)).max().unwrap_or(0);
                none.push(format!("{wl} at {} (n ≤ {most} per side)", l.text()));
                continue;
            }
            any = true;
            let _ = write!(s, "| {wl} | {} |", l.text());
            for r in at {
                let _ = write!(s, " {} |", r.map(decision_cell).unwrap_or_else(|| "-".into()));
            }
            s.push('\n');
        }
    }
    let mut out = if any { s } else { String::new() };
    for c in dropped {
        let most = all()
            .filter(|r| r.metric == c)
            .map(|r| r.n.0.min(r.n.1))
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "\n{}: no claim anywhere: too few requests (at most {most} per side; it needs ≥ {}).",
            metric(c).name,
            min_samples(metric(c).quantile)
        );
    }
    if !none.is_empty() {
        let _ = writeln!(
            out,
            "\nToo few requests for any claim (a median needs ≥ {} per side, a p99 ≥ {}): {}.",
            min_samples(0.5),
            min_samples(0.99),
            none.join("; ")
        );
    }
    out
}

/// The report, as Markdown: the summary first, then the details and the method.
pub fn markdown(inp: &ReportInput<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", inp.title);
    let _ = writeln!(
        s,
        "Generated by servebench {} from {} requests file(s), {} requests ({} warm-up rows left out). \
         Every number below comes from the requests files; a winner is named only when the 95% bootstrap interval of \
         the ratio excludes 1 **and** each side has the requests the claim needs (see Method).\n",
        crate::meta::VERSION,
        inp.groups.files.len(),
        inp.groups.rows - inp.groups.warmup_skipped,
        inp.groups.warmup_skipped
    );
    if !inp.capacity.is_empty() {
        s.push_str(&capacity_section(inp.capacity, inp.capacity_synthetic));
        s.push('\n');
    }
    let ranks = rankings(inp.rows, inp.groups, inp.opts);
    let cat_ranks: Vec<(String, Vec<Ranking>)> = match inp.cat {
        Some((crow, cgroups)) => {
            let cr = rankings(crow, cgroups, inp.opts);
            let cats: BTreeSet<String> = cr.iter().filter_map(|r| r.category.clone()).collect();
            cats.into_iter()
                .map(|c| {
                    let sub = cr
                        .iter()
                        .filter(|r| r.category.as_deref() == Some(&c))
                        .cloned()
                        .collect();
                    (c, sub)
                })
                .collect()
        }
        None => Vec::new(),
    };
    s.push_str(&summary(inp, &ranks, &cat_ranks));

    s.push_str("\n## Setup and provenance\n\n");
    s.push_str(&meta_table(inp));
    s.push_str(&imported_runs(inp).0);
    if let Some(g) = &inp.gpu_meta {
        let _ = writeln!(
            s,
            "\nGPU: {} (source: {}; driver {}; sampled every {} ms by gpumon){}.",
            g.get("servebench.gpu.devices").unwrap_or("?"),
            g.get("servebench.gpu.source").unwrap_or("?"),
            g.get("servebench.gpu.driver").unwrap_or("n/a"),
            g.get("servebench.gpumon.interval_ms").unwrap_or("?"),
            if g.is_synthetic() {
                ": **synthetic** data, shown marked and excluded from winners and recommendations"
            } else {
                ""
            }
        );
    } else {
        s.push_str("\nNo GPU samples were given (run gpumon beside replay and pass its file to see memory, power and energy).\n");
    }
    let slo = inp.opts.slo;
    if slo.any() {
        let _ = writeln!(s, "\nSLO for goodput: {}.", slo_text(inp.opts));
    }
    s.push_str("\n## Results\n\n");
    s.push_str(&analysis::markdown(inp.rows, slo.any()));
    let bound = analysis::client_bound_lines(inp.rows);
    if !bound.is_empty() {
        s.push_str(
            "\n> **⚠ Client-bound** (also in the summary's warnings). In these groups the load generator, not the \
             server, set the pace: it delivered less than 95% of the load asked for, so their latencies and \
             throughputs describe a lighter load than their label says. Likely causes: too little client CPU, \
             `--max-in-flight`, the file-descriptor limit. Rerun with more client cores, `--shard` across hosts, or \
             more `--threads`.\n>\n",
        );
        for l in &bound {
            let _ = writeln!(s, "> - {l}");
        }
    }

    s.push_str(&workload_features(inp.rows));

    s.push_str("\n## Winners by load level\n\n");
    s.push_str(
        "For each load level and metric: the best label, its margin over the runner-up, the requests each side rests \
         on, and whether the margin is a claim (bold) or not (and why).\n\n",
    );
    s.push_str(&ranking_table(&ranks));
    if !cat_ranks.is_empty() {
        s.push_str("\n## Winners by workload (prompt category)\n\n");
        for (c, sub) in &cat_ranks {
            let _ = writeln!(s, "### {c}\n");
            s.push_str(&ranking_table(sub));
            s.push('\n');
        }
    }
    s.push_str(&quantization(inp));
    s.push_str(&recommendations(inp, &ranks));
    if !inp.charts.is_empty() {
        s.push_str("\n## Charts\n\n");
        for c in &inp.charts {
            let name = c.rsplit('/').next().unwrap_or(c).trim_end_matches(".png");
            if inp.gpu_synthetic() && name.starts_with("gpu-") {
                let _ = writeln!(
                    s,
                    "*Synthetic GPU data (`gpumon --fake`): for the demo's timelines only.*\n"
                );
            }
            let _ = writeln!(s, "![{name}]({c})\n");
        }
    }
    s.push_str(&method());
    s
}

/// A group's name in the feature tables: its label and load level.
fn group_cells(r: &Summary) -> String {
    format!(
        "{} | {}",
        r.label,
        Load::of(r).map(|l| l.text()).unwrap_or_else(|| "-".into())
    )
}

fn ms_cell(v: Option<f64>) -> String {
    v.map(|x| format!("{} ms", sig3(x))).unwrap_or_else(|| "-".into())
}

/// What today's workloads change in the numbers, shown only where a run has it: reasoning
/// (TTFT against time to first answer), multi-token events, users who gave up.
fn workload_features(rows: &[Summary]) -> String {
    let mut s = String::new();
    let reasoning: Vec<&Summary> = rows.iter().filter(|r| r.n_reasoning > 0).collect();
    if !reasoning.is_empty() {
        s.push_str(
            "\n### Reasoning\n\nTTFT counts the first token of any kind; a reasoning model's user waits for the \
             answer, so time to first answer (TTFA) is the latency they feel. Reasoning tokens are paid for and \
             unread.\n\n\
             | label | load | with reasoning | TTFT p50 | TTFA p50 | TTFA p99 | reasoning tokens (mean) | share of output | never answered |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &reasoning {
            let _ = writeln!(
                s,
                "| {} | {} of {} | {} | {} | {} | {} | {} | {} |",
                group_cells(r),
                r.n_reasoning,
                r.n.ok,
                ms_cell(r.ttft.p50),
                ms_cell(r.ttfa_p50_ms),
                ms_cell(r.ttfa_p99_ms),
                r.reasoning_tokens_mean.map(sig3).unwrap_or_else(|| "-".into()),
                r.reasoning_token_pct
                    .map(|x| format!("{x:.0}%"))
                    .unwrap_or_else(|| "-".into()),
                r.n_unanswered
            );
        }
        if let Some(r) = reasoning.iter().find(|r| r.n_unanswered > 0) {
            let _ = writeln!(
                s,
                "\n{} request(s) of {} ran out of tokens before answering: raise max_tokens (the trace's output \
                 lengths) or count them as failures.",
                r.n_unanswered,
                group_cells(r).replace(" | ", " at ")
            );
        }
    }
    s.push_str(&events_section(rows));
    let gave_up: Vec<&Summary> = rows.iter().filter(|r| r.n_gave_up > 0).collect();
    if !gave_up.is_empty() {
        s.push_str(
            "\n### Users who gave up\n\n`replay --cancel` closed these requests early, as a user closing the tab: \
             they are neither successes nor errors, kept out of the latency statistics and of the error rate. \
             The engine's own metrics show what it did with the dropped streams.\n\n\
             | label | load | gave up | of requests | error rate (others) |\n|---|---|---|---|---|\n",
        );
        for r in &gave_up {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1}% |",
                group_cells(r),
                r.n_gave_up,
                r.n_requests,
                100.0 * r.error_rate
            );
        }
    }
    if s.is_empty() {
        return s;
    }
    format!("\n## Today's workloads\n{s}")
}

/// Tokens per event, per-token ITL and the engine's acceptance, for the groups whose events
/// carried more than one token (speculative decoding, stream intervals); empty when none did.
fn events_section(rows: &[Summary]) -> String {
    let multi: Vec<&Summary> = rows
        .iter()
        .filter(|r| r.category.is_none() && r.tokens_per_event_max.is_some_and(|m| m > 1.0))
        .collect();
    if multi.is_empty() {
        return String::new();
    }
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "n/a".into());
    let mut s = String::from(
        "
### Tokens per event

These groups' events carried more than one token, so ITL above is per chunk, not \
         per token. Here an event is a chunk or a burst of back-to-back chunks (one engine step): per-event ITL is \
         the gap between events, per-token ITL that gap divided by the tokens of the event that ended it; \
         acceptance is the engine's own (enginemon).\n\n\
         | label | load | tokens/event mean (p50, p90, max) | multi-token events | ITL p50 ms (per event) | per-token \
         ITL p50 ms | acceptance | accept length |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in multi {
        let _ = writeln!(
            s,
            "| {} | {} | {} ({}, {}, {}) | {} | {} | {} | {} | {} |",
            r.label,
            Load::of(r).map(|l| l.text()).unwrap_or_default(),
            opt(r.tokens_per_event_mean, &|v| format!("{v:.2}")),
            opt(r.tokens_per_event_p50, &|v| format!("{v:.0}")),
            opt(r.tokens_per_event_p90, &|v| format!("{v:.0}")),
            opt(r.tokens_per_event_max, &|v| format!("{v:.0}")),
            opt(r.multi_token_event_pct, &|v| format!("{v:.1}%")),
            opt(r.itl_event_p50_ms, &sig3),
            opt(r.itl_token_p50_ms, &sig3),
            opt(r.spec_accept_pct, &|v| format!("{v:.1}%")),
            opt(r.spec_tokens_per_step, &|v| format!("{v:.2}")),
        );
    }
    s
}

fn slo_text(o: &Options) -> String {
    let mut parts = Vec::new();
    if let Some(v) = o.slo.ttft_ms {
        parts.push(format!("TTFT ≤ {v} ms"));
    }
    if let Some(v) = o.slo.tpot_ms {
        parts.push(format!("TPOT ≤ {v} ms"));
    }
    if let Some(v) = o.slo.e2e_ms {
        parts.push(format!("E2E ≤ {v} ms"));
    }
    parts.join(", ")
}

/// The summary: the decision table, the warnings, what was not measured.
fn summary(inp: &ReportInput<'_>, ranks: &[Ranking], cat_ranks: &[(String, Vec<Ranking>)]) -> String {
    let mut s = String::from("## Summary\n\n### Decision\n\n");
    s.push_str(
        "The best label per workload and load level on each metric: its margin over the runner-up with the 95% \
         interval of that margin, and the successful requests each side rests on (best vs runner-up). \"No winner\" \
         where the difference is within the noise, a tie, or rests on too few requests.\n\n",
    );
    let mut workloads = vec![("all requests".to_string(), ranks.to_vec())];
    workloads.extend(cat_ranks.iter().cloned());
    if ranks.is_empty() {
        s.push_str("No load level was measured for two labels or more: there is nothing to decide between.\n");
    } else {
        s.push_str(&decision_table(&workloads));
    }
    if inp.gpu_synthetic() {
        s.push_str(
            "\nGPU memory, power and energy are synthetic here (`gpumon --fake`): they decide no winner and no \
             recommendation.\n",
        );
    }
    s.push_str("\n### Warnings\n\n");
    let mut w = warnings(inp.rows, inp.opts.slo.any());
    w.extend(imported_runs(inp).1);
    if w.is_empty() {
        s.push_str("None: no client-bound run, saturation cliff, SLO shortfall, failed request or small sample.\n");
    }
    for l in w {
        let _ = writeln!(s, "- {l}");
    }
    s.push_str("\n### Not measured\n\n");
    for l in not_measured(inp) {
        let _ = writeln!(s, "- {l}");
    }
    s
}

fn method() -> String {
    let (med, p99) = (min_samples(0.5), min_samples(0.99));
    format!(
        "\n## Method\n\n\
         - TTFT: first chunk carrying generated content − the request's first byte (`sent_at`); E2E: last content chunk \
         − `sent_at`; TPOT: (E2E − TTFT) / (output tokens − 1); ITL: gaps between content chunks (vLLM's definitions).\n\
         - Output tokens: the server's own count (usage), else content chunks.\n\
         - Throughput: tokens of successful requests / (first `sent_at` … last `done_at`); its CI: batch means over \
         time windows. Failed requests count in totals, never in latency statistics.\n\
         - Percentiles: linear interpolation between closest ranks (numpy's default, DuckDB's `quantile_cont`). CIs: 95% \
         bootstrap, computed exactly from order statistics, seeded (reproducible).\n\
         - **When a difference is a claim.** The best label and the runner-up are compared by the 95% bootstrap \
         interval of their ratio (each side resampled independently); a winner is named only when that interval \
         excludes 1, the two values differ by more than the measurement resolves, and each side has enough samples.\n\
         - **Minimum sample: n · min(q, 1 − q) ≥ {tail} per side** for a claim on percentile q, i.e. at least {tail} \
         samples expected beyond the percentile on its thin side: **{med} requests per side for a median** (and for \
         throughput), **{p99} for a p99**. Derived from the bootstrap's own behaviour (simulated with this code's \
         bootstrap, 1,000 resamples, on exponential-tailed latencies): with 1 request per side the ratio's interval \
         has zero width and excludes 1 whenever the values differ (100% false positives), with 2 per side 33%, with 3 \
         10%; a median's interval reaches its nominal coverage (93–95%) from about 5 per side, and {med} leaves room \
         for requests of one run sharing the server's batches (not independent). A p99's interval is set by the few \
         largest values: it covered the true p99 in 63% of runs at n = 100 (one value beyond it), 85% at 200 and 93% \
         at 1,000. Below the minimum the verdict is \"too few requests (n = a vs b)\". (`crate::stats::min_samples`; \
         `tests/it/report.rs` re-runs the simulation.)\n\
         - **Ties**: values that differ by no more than 1 µs (latencies) or {rel}% of the larger (the resolution agg \
         keeps in histogram mode) are a tie: no winner.\n\
         - **One load level at a time**: a winner is picked per load level (and workload); a recommendation names a \
         label \"at every load\" only when it wins at each such load, never from a mean across loads.\n\
         - **Synthetic data** (`gpumon --fake`, or any file whose provenance sets `{key}=true`) is marked synthetic \
         wherever it is shown and decides no winner or recommendation.\n\
         - **Warnings**: client-bound (the client delivered < 95% of the asked load); saturation cliff (a p99 that \
         grows more than {cliff}× between neighbouring load levels of one label); goodput far below throughput (under \
         {good}% of completed requests met the SLO); any failed request.\n\
         - Achieved load: requests in flight (`sent_at` … `done_at`), time-weighted over first `sent_at` … last \
         `done_at`. A request is due at `scheduled_at` (closed loop: when its user's previous request ended); \
         due→sent is the time it waited on the client. Load delivered: closed loop, in-flight time / (in-flight + \
         due→sent time); open loop, achieved rate / the schedule's rate. Below 95%: client-bound.\n",
        tail = crate::stats::MIN_TAIL,
        rel = 100.0 * REL_RESOLUTION,
        key = SYNTHETIC_KEY,
        cliff = CLIFF_FACTOR,
        good = 100.0 * GOODPUT_SHARE,
    )
}

fn ranking_table(ranks: &[Ranking]) -> String {
    let mut s = String::from(
        "| load | metric | best | value | runner-up | value | margin | n (best vs runner-up) | winner? |\n\
         |---|---|---|---:|---|---:|---:|---:|---|\n",
    );
    let mut sorted: Vec<&Ranking> = ranks.iter().collect();
    sorted.sort_by(|a, b| by_load(&a.load, &b.load));
    for r in sorted {
        let m = metric(r.metric);
        let (rn, rv) = &r.runner_up;
        let best = if r.decides() {
            format!("**{}**", r.winner)
        } else {
            r.winner.clone()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {best} | {} {} | {rn} | {} {} | {} | {} vs {} | {} |",
            r.load.text(),
            m.name,
            fmt_num(r.winner_value),
            m.unit,
            fmt_num(*rv),
            m.unit,
            r.margin
                .map(|x| format!("{:.1}%", 100.0 * x))
                .unwrap_or_else(|| "-".into()),
            r.n.0,
            r.n.1,
            verdict(r)
        );
    }
    s
}

/// FP16 vs AWQ vs FP8 within each engine: throughput gained, latency changed, memory saved.
fn quantization(inp: &ReportInput<'_>) -> String {
    let (rows, groups, o) = (inp.rows, inp.groups, inp.opts);
    let synthetic = inp.gpu_synthetic();
    // engine -> quant -> label
    let mut eq: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in rows {
        if let (Some(e), Some(q), l) = (&r.engine, &r.quant, &r.label) {
            eq.entry(e.to_string())
                .or_default()
                .insert(q.to_string(), l.to_string());
        }
    }
    let speed_engines: BTreeSet<String> = eq
        .iter()
        .filter(|(_, q)| q.len() >= 2)
        .map(|(e, _)| e.clone())
        .collect();
    let pairs = variant_pairs(inp);
    eq.retain(|e, _| speed_engines.contains(e));
    if eq.is_empty() && pairs.is_empty() {
        return "\n## Quantization\n\nNo engine was run in more than one quantization variant.\n".into();
    }
    let mut s = String::from("\n## Quantization\n");
    s.push_str(&quality_section(inp, &pairs));
    if eq.is_empty() {
        return s;
    }
    s.push_str(
        "\n### Speed per load level\n\nEach variant against its engine's baseline (fp16 where measured, else the first \
         variant), per load level: the change of each metric, in **bold** where it is a claim (interval excludes 0, \
         enough requests per side); otherwise why not. n: successful requests (baseline vs variant).\n",
    );
    if synthetic {
        s.push_str("GPU memory here is *synthetic* (`gpumon --fake`): shown for the pipeline, it says nothing of the variants.\n");
    }
    for (engine, qs) in eq {
        let base_q = baseline_quant(qs.keys());
        let base = qs[&base_q].clone();
        for (q, label) in &qs {
            if *q == base_q {
                continue;
            }
            let _ = writeln!(s, "\n#### {engine}: {q} vs {base_q}\n");
            let _ = writeln!(
                s,
                "| load | n | throughput | median TTFT | p99 TTFT | median TPOT | p99 E2E | peak GPU memory{} |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|",
                if synthetic { " (synthetic)" } else { "" }
            );
            let cmps = analysis::compare(groups, &base, label, o);
            let mut loads: Vec<Load> = cmps
                .iter()
                .filter_map(|c| match (c.concurrency, c.rate_rps) {
                    (Some(u), _) => Some(Load::Users(u)),
                    (None, Some(x)) => Some(Load::Rate(x)),
                    _ => None,
                })
                .collect();
            loads.sort_by(by_load);
            loads.dedup();
            for l in loads {
                let find = |lab: &str| {
                    rows.iter()
                        .find(|r| r.label == lab && Load::of(r) == Some(l) && r.category.is_none())
                };
                let (ra, rb) = (find(&base), find(label));
                let cell = |m: &str| -> String {
                    let Some(c) = cmps
                        .iter()
                        .find(|c| c.metric == m && l.matches(c) && c.category.is_none())
                    else {
                        return "-".into();
                    };
                    let (Some(r), Some(va), Some(vb)) = (c.ratio, c.value_a, c.value_b) else {
                        return "-".into();
                    };
                    let mm = metric(m);
                    let count = |s: Option<&Summary>| {
                        s.and_then(|s| sample_count(groups, &s.label, s.concurrency, s.rate_rps, None, m))
                            .unwrap_or(0)
                    };
                    let n = (count(ra), count(rb));
                    let t = pct(r - 1.0);
                    match judge(mm, va, vb, n, Some(c)) {
                        Verdict::Winner => format!("**{t}**"),
                        Verdict::Noise => format!("{t} (noise)"),
                        Verdict::TooFew => format!("{t} (too few)"),
                        Verdict::Tie => "0% (tie)".into(),
                        Verdict::Untested(_) => format!("{t} (untested)"),
                    }
                };
                let mem = match (ra.and_then(|r| r.gpu_mem_peak_mib), rb.and_then(|r| r.gpu_mem_peak_mib)) {
                    (Some(a), Some(b)) if synthetic => format!("{:+.0} MiB (synthetic)", b - a),
                    (Some(a), Some(b)) => format!("{:+.0} MiB", b - a),
                    _ => "-".into(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} vs {} | {} | {} | {} | {} | {} | {} |",
                    l.text(),
                    ra.map(|r| r.n.ok).unwrap_or(0),
                    rb.map(|r| r.n.ok).unwrap_or(0),
                    cell(col::OUTPUT_TOK_PER_S),
                    cell(col::TTFT_P50_MS),
                    cell(col::TTFT_P99_MS),
                    cell(col::TPOT_P50_MS),
                    cell(col::E2E_P99_MS),
                    mem
                );
            }
        }
    }
    s
}

// ---- quantization: speed next to quality (the quality tool's files) ----

/// One quality file (the `quality` tool's rows) as the report reads it: what it measured
/// (engine and quantization from its provenance, as the speed runs carry them) and its rows.
pub struct QualityRun {
    pub path: String,
    pub engine: Option<String>,
    pub quant: Option<String>,
    pub rows: Vec<QualityRow>,
    pub meta: Meta,
}

impl QualityRun {
    /// Read a quality file; its engine and quantization come from its provenance.
    pub fn read(path: &str) -> Result<QualityRun, CompareError> {
        let (rows, meta) = read_rows(std::path::Path::new(path))?;
        Ok(QualityRun {
            path: path.to_string(),
            engine: meta.get(META_ENGINE).map(str::to_string),
            quant: meta.get(META_QUANT).map(str::to_string),
            rows,
            meta,
        })
    }
}

/// The baseline of an engine's variants: fp16 where measured, else the first by name.
fn baseline_quant<'a>(qs: impl Iterator<Item = &'a String>) -> String {
    let qs: BTreeSet<&String> = qs.collect();
    if qs.iter().any(|q| *q == "fp16") {
        return "fp16".into();
    }
    qs.first().map(|q| q.to_string()).unwrap_or_default()
}

/// One variant against its engine's baseline: the speed runs' labels and the quality files'
/// comparison, where there are any.
struct VariantPair {
    engine: String,
    base_q: String,
    q: String,
    labels: (Option<String>, Option<String>),
    /// Paths of the quality files (baseline, variant).
    files: (Option<String>, Option<String>),
    /// The comparison, or why the two files could not be compared.
    quality: Option<Result<Comparison, String>>,
}

/// Every variant of every engine measured in two or more variants (speed or quality), against
/// its baseline.
fn variant_pairs(inp: &ReportInput<'_>) -> Vec<VariantPair> {
    type Side<'b> = (Option<String>, Option<&'b QualityRun>);
    let mut eq: BTreeMap<String, BTreeMap<String, Side<'_>>> = BTreeMap::new();
    for r in inp.rows {
        if let (Some(e), Some(q)) = (&r.engine, &r.quant) {
            eq.entry(e.clone()).or_default().entry(q.clone()).or_default().0 = Some(r.label.clone());
        }
    }
    for f in inp.quality {
        if let (Some(e), Some(q)) = (&f.engine, &f.quant) {
            eq.entry(e.clone()).or_default().entry(q.clone()).or_default().1 = Some(f);
        }
    }
    let mut out = Vec::new();
    for (engine, qs) in eq {
        if qs.len() < 2 {
            continue;
        }
        let base_q = baseline_quant(qs.keys());
        let (base_label, base_file) = qs[&base_q].clone();
        for (q, (label, file)) in &qs {
            if *q == base_q {
                continue;
            }
            let quality = match (base_file, file) {
                (Some(b), Some(v)) => Some(compare(&b.rows, &b.meta, &v.rows, &v.meta).map_err(|e| e.to_string())),
                _ => None,
            };
            out.push(VariantPair {
                engine: engine.clone(),
                base_q: base_q.clone(),
                q: q.clone(),
                labels: (base_label.clone(), label.clone()),
                files: (base_file.map(|f| f.path.clone()), file.map(|f| f.path.clone())),
                quality,
            });
        }
    }
    out
}

/// A speed ratio (variant / baseline) with its interval, where it was measured, and why it is
/// no claim ("" when it is one).
struct Gain {
    ratio: f64,
    ci: Option<(f64, f64)>,
    at: String,
    why_not: String,
}

impl Gain {
    fn text(&self) -> String {
        let ci = self
            .ci
            .map(|(lo, hi)| format!(" [{}, {}]", sig3(lo), sig3(hi)))
            .unwrap_or_default();
        format!(
            "{}x output tokens/s{ci} at {}{}",
            sig3(self.ratio),
            self.at,
            self.why_not
        )
    }
}

/// Output tokens/s at the highest load level both labels were measured at, with the ratio's
/// interval and the report's verdict rules (enough requests, interval excludes 1).
fn throughput_gain(inp: &ReportInput<'_>, base: &str, label: &str) -> Option<Gain> {
    let cmps = analysis::compare(inp.groups, base, label, inp.opts);
    let load_of = |c: &Cmp| match (c.concurrency, c.rate_rps) {
        (Some(u), _) => Some(Load::Users(u)),
        (None, Some(x)) => Some(Load::Rate(x)),
        _ => None,
    };
    let c = cmps
        .iter()
        .filter(|c| c.metric == col::OUTPUT_TOK_PER_S && c.category.is_none() && c.ratio.is_some())
        .filter(|c| c.value_a.is_some() && c.value_b.is_some())
        .filter_map(|c| Some((load_of(c)?, c)))
        .max_by(|a, b| by_load(&a.0, &b.0))?;
    let (l, c) = c;
    let count = |lab: &str| {
        inp.rows
            .iter()
            .find(|r| r.label == lab && Load::of(r) == Some(l) && r.category.is_none())
            .and_then(|s| {
                sample_count(
                    inp.groups,
                    &s.label,
                    s.concurrency,
                    s.rate_rps,
                    None,
                    col::OUTPUT_TOK_PER_S,
                )
            })
            .unwrap_or(0)
    };
    let n = (count(base), count(label));
    let m = metric(col::OUTPUT_TOK_PER_S);
    let why_not = match judge(m, c.value_a?, c.value_b?, n, Some(c)) {
        Verdict::Winner => String::new(),
        Verdict::Noise => " (within noise)".into(),
        Verdict::TooFew => format!(" (too few requests, n = {} vs {})", n.0, n.1),
        Verdict::Tie => " (tie)".into(),
        Verdict::Untested(why) => format!(" (no claim: {why})"),
    };
    Some(Gain {
        ratio: c.ratio?,
        ci: c.ci,
        at: l.text(),
        why_not,
    })
}

/// Output tokens/s at capacity (sweep's capacity files) of the variant over the baseline's, at
/// the first SLO both were searched at (one capacity row each), with the interval of the
/// ratio (one interval's low end over the other's high end) and [`compare_capacity`]'s verdict.
fn capacity_gain(inp: &ReportInput<'_>, engine: &str, base_q: &str, q: &str) -> Option<Gain> {
    let caps = inp.capacity;
    for (slo, att) in slos(caps) {
        let one = |quant: &str| {
            let v: Vec<&Capacity> = caps
                .iter()
                .filter(|r| r.slo == slo && r.attainment == att)
                .filter(|r| r.engine.as_deref() == Some(engine) && r.quant.as_deref() == Some(quant))
                .collect();
            (v.len() == 1).then(|| v[0])
        };
        let (Some(b), Some(v)) = (one(base_q), one(q)) else {
            continue;
        };
        let (Some(tb), Some(tv)) = (b.capacity_output_tok_s, v.capacity_output_tok_s) else {
            continue;
        };
        if tb <= 0.0 {
            continue;
        }
        let ci = match (
            v.capacity_output_tok_s_ci_lo.zip(v.capacity_output_tok_s_ci_hi),
            b.capacity_output_tok_s_ci_lo.zip(b.capacity_output_tok_s_ci_hi),
        ) {
            (Some((vl, vh)), Some((bl, bh))) if bl > 0.0 => Some((vl / bh, vh / bl)),
            _ => None,
        };
        let (hi, lo) = if tv >= tb { (v, b) } else { (b, v) };
        let why_not = match compare_capacity(hi, lo, inp.capacity_synthetic) {
            Some(CapacityVerdict::More { .. }) => String::new(),
            Some(CapacityVerdict::NotDistinguishable { .. }) => " (not distinguishable: the intervals overlap)".into(),
            Some(CapacityVerdict::TooFew { n, min }) => {
                format!(
                    " (too few requests at the knee, n = {} vs {}; ≥ {min} needed)",
                    n.0, n.1
                )
            }
            Some(CapacityVerdict::Synthetic) => " (synthetic: no claim)".into(),
            Some(CapacityVerdict::NoInterval) | None => " (no interval)".into(),
        };
        return Some(Gain {
            ratio: tv / tb,
            ci,
            at: slo_words(&slo, att),
            why_not,
        });
    }
    None
}

/// Three significant digits at any magnitude: 0.00123, 0.0456, 1.23, 152.
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let d = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.d$}")
}

/// A share as a percentage, with two decimals below 1% (a small disagreement is not 0.0%).
fn share(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.01 {
        format!("{:.2}%", 100.0 * x)
    } else {
        pct_abs(x)
    }
}

/// The teacher-forced and accuracy measures, each with its interval (table cells).
fn quality_cells(c: &Comparison) -> [String; 4] {
    let or_dash = |o: Option<String>| o.unwrap_or_else(|| "-".into());
    let ci = |c: Option<(f64, f64)>, f: &dyn Fn(f64) -> String| {
        c.map(|(lo, hi)| format!(" [{}, {}]", f(lo), f(hi))).unwrap_or_default()
    };
    let pcts = share;
    [
        or_dash(
            c.disagreement()
                .map(|d| format!("{}{}", pcts(d), ci(c.intervals.disagreement, &pcts))),
        ),
        or_dash(
            c.tf.mean_kl()
                .map(|k| format!("{}{}", sig(k), ci(c.intervals.mean_kl, &sig))),
        ),
        or_dash(
            c.perplexity_ratio()
                .map(|r| format!("{:.3}{}", r, ci(c.intervals.perplexity_ratio, &|x| format!("{x:.3}")))),
        ),
        or_dash(c.accuracy.map(|a| {
            format!(
                "{:+.1} [{:+.1}, {:+.1}] ({} → {})",
                a.diff_points,
                a.lo,
                a.hi,
                pct_abs(a.base),
                pct_abs(a.variant)
            )
        })),
    ]
}

/// What the quality measures allow to be said of a variant against its baseline, by the
/// report's rules: a difference needs its 95% interval to exclude "no difference" (0, or 1 for
/// the perplexity ratio) and at least [`min_samples`]`(0.5)` resampling units per side (task
/// items for accuracy, blocks of positions for the teacher-forced measures).
fn quality_verdict(c: &Comparison, base_q: &str) -> String {
    let min = min_samples(0.5) as usize;
    let acc = match c.accuracy {
        None => None,
        Some(a) if a.items < min => Some(format!(
            "too few task items for an accuracy claim (n = {}; ≥ {min} needed)",
            a.items
        )),
        Some(a) if a.lo > 0.0 => Some(format!("accuracy higher than {base_q}")),
        Some(a) if a.hi < 0.0 => Some(format!("accuracy lower than {base_q}")),
        Some(_) => Some(String::new()),
    };
    let iv = c.intervals;
    let mut differ = Vec::new();
    if iv.disagreement.is_some_and(|(lo, _)| lo > 0.0) {
        differ.push("top-1 disagreement > 0");
    }
    if iv.mean_kl.is_some_and(|(lo, _)| lo > 0.0) {
        differ.push("KL > 0");
    }
    match iv.perplexity_ratio {
        Some((lo, _)) if lo > 1.0 => differ.push("perplexity ratio > 1"),
        Some((_, hi)) if hi < 1.0 => differ.push("perplexity ratio < 1"),
        _ => {}
    }
    let dist = if c.tf.positions == 0 && c.perplexity_ratio().is_none() {
        None
    } else if c.blocks < min {
        Some(format!(
            "too few scored positions for a distribution claim ({} blocks of {BLOCK}; ≥ {min} needed)",
            c.blocks
        ))
    } else if differ.is_empty() {
        Some(String::new())
    } else {
        Some(format!(
            "the next-token distributions differ from {base_q} (intervals: {})",
            differ.join(", ")
        ))
    };
    match (acc, dist) {
        (Some(a), Some(d)) if a.is_empty() && d.is_empty() => format!("not distinguishable from {base_q}"),
        (Some(a), Some(d)) if a.is_empty() => format!("accuracy not distinguishable from {base_q}; {d}"),
        (Some(a), Some(d)) if d.is_empty() => {
            format!("{a}; next-token distributions not distinguishable from {base_q}")
        }
        (Some(a), Some(d)) => format!("{a}; {d}"),
        (Some(a), None) if a.is_empty() => format!("accuracy not distinguishable from {base_q}"),
        (Some(a), None) => a,
        (None, Some(d)) if d.is_empty() => format!("not distinguishable from {base_q}"),
        (None, Some(d)) => d,
        (None, None) => "no measure to judge".into(),
    }
}

/// The quantization section's head: per engine and variant, the speed gain next to the
/// quality measures with their intervals, one table and one sentence each.
fn quality_section(inp: &ReportInput<'_>, pairs: &[VariantPair]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nEach variant against its engine's baseline (fp16 where measured, else the first variant by name): the \
         speed gain (output tokens/s at the highest load level both ran, and at capacity under the SLO where \
         sweep's capacity files are given) next to what the variant costs in quality, measured by `quality` \
         through the same endpoint: top-1 disagreement and mean KL(baseline ‖ variant) of the teacher-forced \
         next-token distributions (from top-k log probabilities: a lower bound), the perplexity ratio (variant / \
         baseline) and the change in task accuracy (exact match, points). Every interval is 95%: the speed \
         ratios' as in the rest of this report; the teacher-forced measures' from a bootstrap over blocks of {BLOCK} \
         consecutive passage positions; the accuracy change's from a paired bootstrap over task items. A \
         difference is claimed only when its interval excludes no difference (0, or 1 for a ratio) and each side \
         has at least {} resampling units (blocks, items; requests for speed as everywhere); otherwise \"not \
         distinguishable\" or \"too few\".",
        min_samples(0.5)
    );
    let _ = writeln!(
        s,
        "\n| engine | variant | output tok/s [95% CI] | at capacity [95% CI] | top-1 disagreement [95% CI] | mean KL, \
         nats [95% CI] | perplexity ratio [95% CI] | accuracy change, points [95% CI] | verdict |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    let mut lines = Vec::new();
    for p in pairs {
        let thr = match &p.labels {
            (Some(b), Some(v)) => throughput_gain(inp, b, v),
            _ => None,
        };
        let cap = capacity_gain(inp, &p.engine, &p.base_q, &p.q);
        let gain_cell = |g: &Option<Gain>, at: bool| {
            g.as_ref()
                .map(|g| {
                    let ci =
                        g.ci.map(|(lo, hi)| format!(" [{}, {}]", sig3(lo), sig3(hi)))
                            .unwrap_or_default();
                    let at = if at { format!(" at {}", g.at) } else { String::new() };
                    let t = format!("{}x{ci}{at}", sig3(g.ratio));
                    if g.why_not.is_empty() {
                        format!("**{t}**")
                    } else {
                        format!("{t}{}", g.why_not)
                    }
                })
                .unwrap_or_else(|| "-".into())
        };
        // the sentence leads with capacity at the SLO where there is one (the seed's claim)
        let speed = cap
            .as_ref()
            .or(thr.as_ref())
            .map(Gain::text)
            .unwrap_or_else(|| "speed not measured".into());
        let who = format!("{} {}", p.engine, p.q);
        let (cells, verdict, line) = match &p.quality {
            Some(Ok(c)) => {
                let cells = quality_cells(c);
                let v = quality_verdict(c, &p.base_q);
                let mut parts = vec![speed];
                if let Some(d) = c.disagreement() {
                    let ci = c
                        .intervals
                        .disagreement
                        .map(|(lo, hi)| format!(" [{}, {}]", share(lo), share(hi)))
                        .unwrap_or_default();
                    parts.push(format!("{} top-1 disagreement{ci}", share(d)));
                }
                if let Some(k) = c.tf.mean_kl() {
                    let ci = c
                        .intervals
                        .mean_kl
                        .map(|(lo, hi)| format!(" [{}, {}]", sig(lo), sig(hi)))
                        .unwrap_or_default();
                    parts.push(format!("mean KL {} nats{ci}", sig(k)));
                }
                if let Some(r) = c.perplexity_ratio() {
                    let ci = c
                        .intervals
                        .perplexity_ratio
                        .map(|(lo, hi)| format!(" [{lo:.3}, {hi:.3}]"))
                        .unwrap_or_default();
                    parts.push(format!("perplexity ratio {r:.3}{ci}"));
                }
                if let Some(a) = c.accuracy {
                    // an interval of [0, 0] because neither side answered anything tells nothing
                    let none = if a.base == 0.0 && a.variant == 0.0 {
                        " (neither side answered any task item right: the tasks tell nothing of this model)"
                    } else {
                        ""
                    };
                    parts.push(format!(
                        "accuracy {:+.1} points [{:+.1}, {:+.1}]{none}",
                        a.diff_points, a.lo, a.hi
                    ));
                }
                let line = format!("- **{who}** vs {}: {}: {v}.", p.base_q, parts.join(", "));
                (cells, v, line)
            }
            Some(Err(e)) => {
                let why = format!("quality files not comparable: {e}");
                let dash = || "-".to_string();
                (
                    [dash(), dash(), dash(), dash()],
                    why.clone(),
                    format!("- **{who}** vs {}: {speed}; {why}.", p.base_q),
                )
            }
            None => {
                let lacking: Vec<&str> = [(&p.files.0, p.base_q.as_str()), (&p.files.1, p.q.as_str())]
                    .iter()
                    .filter(|(f, _)| f.is_none())
                    .map(|(_, q)| *q)
                    .collect();
                let why = format!("quality not measured (no quality file for {})", lacking.join(" and "));
                let dash = || "-".to_string();
                (
                    [dash(), dash(), dash(), dash()],
                    why.clone(),
                    format!("- **{who}** vs {}: {speed}; {why}.", p.base_q),
                )
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} vs {} | {} | {} | {} | {} | {} | {} | {} |",
            p.engine,
            p.q,
            p.base_q,
            gain_cell(&thr, true),
            gain_cell(&cap, false),
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            verdict
        );
        lines.push(line);
    }
    s.push('\n');
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
    s
}

/// What the report could not say of output quality (the first bullets of "not measured").
fn quality_not_measured(inp: &ReportInput<'_>) -> Vec<String> {
    let mut v = Vec::new();
    if inp.quality.is_empty() {
        v.push(
            "Output quality: no quality files were given (`quality` measures it through the same endpoint; \
             `report --quality DIR`), so the quantization section compares speed only."
                .to_string(),
        );
        return v;
    }
    for f in inp.quality {
        if f.engine.is_none() || f.quant.is_none() {
            v.push(format!(
                "Output quality in {}: its provenance names no engine and quantization (`quality --engine NAME \
                 --quant Q`), so it is matched to no variant.",
                f.path
            ));
        }
    }
    for p in variant_pairs(inp) {
        match &p.quality {
            None => v.push(format!(
                "Output quality of {} {} against {}: no quality file for {}.",
                p.engine,
                p.q,
                p.base_q,
                if p.files.0.is_none() { &p.base_q } else { &p.q }
            )),
            Some(Ok(c)) if c.tf.positions == 0 => v.push(format!(
                "Top-1 disagreement and KL of {} {}: its protocol returned no alternatives for a given text (task \
                 accuracy{} only).",
                p.engine,
                p.q,
                if c.perplexity_ratio().is_some() {
                    " and perplexity"
                } else {
                    ""
                }
            )),
            _ => {}
        }
    }
    v.push(
        "Quality beyond the evaluation set: the measures describe its passages and task items only; KL from \
         top-k log probabilities is a lower bound (the divergence inside the tail bucket is not seen)."
            .into(),
    );
    v
}

/// One recommendation from the per-load rankings of `column` at the loads `at` admits: the
/// label that wins at every such load, or, when none does, each load's verdict.
fn across_loads(s: &mut String, ranks: &[Ranking], column: &str, name: &str, rule: &str, at: &dyn Fn(Load) -> bool) {
    let mut here: Vec<&Ranking> = ranks
        .iter()
        .filter(|k| k.metric == column && k.category.is_none() && at(k.load))
        .collect();
    here.sort_by(|a, b| by_load(&a.load, &b.load));
    let Some(first) = here.first() else {
        let _ = writeln!(
            s,
            "- {name}: no recommendation; no such load was measured for two labels (*rule: {rule}*)."
        );
        return;
    };
    let each: Vec<String> = here
        .iter()
        .map(|k| {
            let m = metric(k.metric);
            // the verdict on too few requests carries n itself
            let n = if k.verdict == Verdict::TooFew {
                String::new()
            } else {
                format!(" ({})", k.n_text())
            };
            format!(
                "{}: {} {} vs {} {} for {}{n} — {}",
                k.load.text(),
                k.winner,
                fmt_num(k.winner_value),
                fmt_num(k.runner_up.1),
                m.unit,
                k.runner_up.0,
                verdict(k)
            )
        })
        .collect();
    if here.iter().all(|k| k.decides() && k.winner == first.winner) {
        let _ = writeln!(
            s,
            "- **{name}: {}**, at every such load. *Rule: {rule}.* {}.",
            first.winner,
            each.join("; ")
        );
    } else {
        let _ = writeln!(
            s,
            "- {name}: **no recommendation**: no label wins at every such load. *Rule: {rule}.* {}.",
            each.join("; ")
        );
    }
}

/// Memory or energy (no interval): the label lowest at every load, beyond the 0.1%
/// resolution, or each load's lowest and why no label is named.
fn lowest_at_every_load(rows: &[Summary], get: fn(&Summary) -> Option<f64>, name: &str, unit: &str) -> String {
    let mut by: BTreeMap<String, (Load, Vec<(String, f64)>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.category.is_none()) {
        if let (Some(l), Some(v)) = (Load::of(r), get(r).filter(|v| v.is_finite())) {
            by.entry(format!("{l:?}"))
                .or_insert((l, Vec::new()))
                .1
                .push((r.label.clone(), v));
        }
    }
    let mut loads: Vec<(Load, Vec<(String, f64)>)> = by.into_values().filter(|(_, v)| v.len() >= 2).collect();
    loads.sort_by(|a, b| by_load(&a.0, &b.0));
    if loads.is_empty() {
        return String::new();
    }
    let mut each = Vec::new();
    let mut winners = BTreeSet::new();
    let mut tie = false;
    for (l, v) in &mut loads {
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (w, r) = (&v[0], &v[1]);
        if (w.1 - r.1).abs() <= REL_RESOLUTION * w.1.abs().max(r.1.abs()) {
            tie = true;
            each.push(format!("{}: tie, {} = {} {unit}", l.text(), w.0, r.0));
        } else {
            winners.insert(w.0.clone());
            each.push(format!(
                "{}: {} {} vs {} {unit} for {}",
                l.text(),
                w.0,
                fmt_num(w.1),
                fmt_num(r.1),
                r.0
            ));
        }
    }
    let rule = "the lowest value at each load, beyond the 0.1% resolution (no interval: one run per load)";
    match (tie, winners.len()) {
        (false, 1) => format!(
            "- **{name}: {}**, at every load. *Rule: {rule}.* {}.\n",
            winners.iter().next().expect("one"),
            each.join("; ")
        ),
        _ => format!(
            "- {name}: **no recommendation**: no label is lowest at every load. *Rule: {rule}.* {}.\n",
            each.join("; ")
        ),
    }
}

/// Recommendations, each from a stated rule applied one load level at a time.
fn recommendations(inp: &ReportInput<'_>, ranks: &[Ranking]) -> String {
    let rows = inp.rows;
    let mut s = String::from(
        "\n## Recommendations\n\nEach line applies the rule in italics to the rankings above, one load level at a \
         time; a label is recommended only where it wins (a claim, in bold above) at every load the rule names.\n\n",
    );
    let few = |l: Load| matches!(l, Load::Users(u) if u <= 10);
    across_loads(
        &mut s,
        ranks,
        col::TTFT_P99_MS,
        "latency-sensitive use",
        "the lowest p99 TTFT at each closed-loop load of ≤ 10 users",
        &few,
    );
    across_loads(
        &mut s,
        ranks,
        col::TTFT_P50_MS,
        "responsive to few users",
        "the lowest median TTFT at each closed-loop load of ≤ 10 users",
        &few,
    );
    across_loads(
        &mut s,
        ranks,
        col::TPOT_P50_MS,
        "smooth streaming to few users",
        "the lowest median TPOT at each closed-loop load of ≤ 10 users",
        &few,
    );
    let max_c = rows.iter().filter_map(|r| r.concurrency).max();
    if let Some(c) = max_c {
        across_loads(
            &mut s,
            ranks,
            col::OUTPUT_TOK_PER_S,
            "throughput at scale",
            &format!(
                "the highest output tokens/s at the highest measured concurrency ({})",
                Load::Users(c).text()
            ),
            &|l| l == Load::Users(c),
        );
    }
    if inp.opts.slo.any() {
        across_loads(
            &mut s,
            ranks,
            col::GOODPUT_REQ_PER_S,
            "goodput under the SLO",
            &format!(
                "the highest goodput (requests/s meeting {}) at each load",
                slo_text(inp.opts)
            ),
            &|_| true,
        );
    }
    // Memory and energy: no interval; synthetic data decides nothing.
    let has_gpu = rows
        .iter()
        .any(|r| r.gpu_mem_peak_mib.is_some() || r.energy_per_output_token_j.is_some());
    if has_gpu && inp.gpu_synthetic() {
        s.push_str(
            "- memory and energy: **no recommendation**: the GPU samples are synthetic (`gpumon --fake`), and \
             synthetic data decides nothing.\n",
        );
    } else if has_gpu {
        for (get, name, unit) in [
            (
                (|r: &Summary| r.gpu_mem_peak_mib) as fn(&Summary) -> Option<f64>,
                "lowest peak GPU memory",
                "MiB",
            ),
            (
                |r: &Summary| r.energy_per_output_token_j,
                "lowest energy per output token",
                "J/token",
            ),
        ] {
            s.push_str(&lowest_at_every_load(rows, get, name, unit));
        }
    }
    s
}

/// The report as a self-contained HTML page (images referenced beside it; nothing fetched
/// from the network). Tables read as tables: text columns left, number columns right (a
/// column is numeric when every filled cell is a number, possibly with a unit, a sign or a
/// note in parentheses), labels never broken at their hyphens, headers that could be misread
/// (offered vs achieved rate, ...) explained in a tooltip, and a click on a header sorts the
/// rows (numerically for number columns).
pub fn html(md: &str, title: &str) -> String {
    use pulldown_cmark::{Event, Options as MdOptions, Parser, Tag, TagEnd, html};
    let events: Vec<Event> = Parser::new_ext(md, MdOptions::ENABLE_TABLES).collect();
    let mut body = String::new();
    let mut i = 0;
    while i < events.len() {
        if matches!(events[i], Event::Start(Tag::Table(_))) {
            let end = (i..events.len())
                .find(|&k| matches!(events[k], Event::End(TagEnd::Table)))
                .unwrap_or(events.len());
            body.push_str(&html_table(&events[i + 1..end.min(events.len())]));
            i = end + 1;
        } else {
            let start = i;
            while i < events.len() && !matches!(events[i], Event::Start(Tag::Table(_))) {
                i += 1;
            }
            html::push_html(&mut body, events[start..i].iter().cloned());
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
         .tw{{max-width:100%;overflow-x:auto}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;vertical-align:top}}\
         th{{background:#f2f2f2;cursor:pointer;user-select:none}}th.num,td.num{{text-align:right;font-variant-numeric:tabular-nums}}td.num{{white-space:nowrap}}\
         th.txt,td.txt{{text-align:left}}.nw{{white-space:nowrap}}\
         th[title]{{text-decoration:underline dotted;text-underline-offset:3px}}\
         th[aria-sort=ascending]::after{{content:\" \\25B2\"}}th[aria-sort=descending]::after{{content:\" \\25BC\"}}\
         img{{max-width:100%;border:1px solid #eee}}\
         </style></head><body>\n{}\n<p><small>Headers with a dotted underline explain themselves on hover; \
         click a header to sort its table.</small></p>\n<script>\n{}</script>\n</body></html>\n",
        escape_html(title),
        body,
        SORT_JS
    )
}

/// Click-to-sort for every table: numbers by value (a "-" last), text in natural order.
const SORT_JS: &str = r#"(function () {
  function key(td, num) {
    var s = td.textContent.trim();
    if (!num) return s.toLowerCase();
    var v = parseFloat(s.replace(/,/g, '').replace(/^[^0-9+\-.]*/, ''));
    return isNaN(v) ? null : v;
  }
  function sortBy(t, i, th) {
    var num = th.classList.contains('num');
    var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    Array.prototype.forEach.call(th.parentElement.cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    var tb = t.tBodies[0];
    var rows = Array.prototype.slice.call(tb.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[i], num), y = key(b.cells[i], num);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (num ? x - y : x.localeCompare(y, undefined, { numeric: true })) * dir;
    });
    rows.forEach(function (r) { tb.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table'), function (t) {
    if (!t.tHead || !t.tBodies.length) return;
    Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
      th.addEventListener('click', function () { sortBy(t, i, th); });
    });
  });
})();
"#;

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether a cell's text is a number: an optional sign or comparison, a number (thousands
/// separators allowed), then nothing, a unit, and/or a note in parentheses.
fn numeric_cell(t: &str) -> bool {
    let t = t.trim();
    let t = t
        .trim_start_matches(['+', '-', '−', '~', '≈', '<', '>', '≤', '≥'])
        .trim_start();
    let num_end = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(t.len(), |(k, _)| k);
    let (n, rest) = t.split_at(num_end);
    if n.is_empty() || n.replace(',', "").parse::<f64>().is_err() {
        return false;
    }
    let rest = rest.trim_start_matches(['%', '×', 'x']).trim();
    let rest = match rest.find('(') {
        Some(k) if rest.ends_with(')') => rest[..k].trim(),
        _ => rest,
    };
    const UNITS: &[&str] = &[
        "", "ms", "s", "%", "req/s", "tok/s", "tokens/s", "MiB", "GiB", "W", "J", "J/token", "Wh",
    ];
    UNITS.contains(&rest)
}

/// What a header means, for the ones a reader could take for something else.
fn header_tip(h: &str) -> Option<&'static str> {
    let l = h.trim().to_ascii_lowercase();
    let exact: &[(&str, &str)] = &[
        (
            "rate req/s",
            "Offered load: the request rate the trace asked for (open loop). What the server achieved is req/s.",
        ),
        (
            "req/s",
            "Achieved: requests completed per second over the run's window (not the rate asked for).",
        ),
        (
            "users",
            "Closed loop: simulated users, each sending its next request when its previous one ends.",
        ),
        ("ok", "Requests that succeeded."),
        (
            "tokens/event mean (p50, p90, max)",
            "Tokens per event: an event is a chunk, or a burst of chunks under 0.1 ms apart (one engine step).",
        ),
        (
            "multi-token events",
            "Share of events that carried more than one token.",
        ),
        (
            "itl p50 ms (per event)",
            "Median gap between events (a burst of back-to-back chunks is one event).",
        ),
        (
            "per-token itl p50 ms",
            "Median of each gap between events divided by the tokens of the event that ended it.",
        ),
        (
            "acceptance",
            "The engine's speculative-decoding acceptance: accepted / drafted tokens over the group (enginemon).",
        ),
        (
            "accept length",
            "The engine's mean tokens per speculative step: 1 + accepted / drafts over the group (enginemon).",
        ),
        ("n", "Requests counted in this group (warm-up left out)."),
        ("out tok/s", "Achieved output tokens per second (successful requests)."),
        (
            "goodput req/s",
            "Requests per second that met every SLO (see the SLO line above).",
        ),
        (
            "in flight",
            "Achieved concurrency: requests in flight, averaged over time.",
        ),
        (
            "load %",
            "Share of the asked load the client delivered; below 95% the run was client-bound.",
        ),
        (
            "margin",
            "How much better the winner is than the runner-up, relative to the runner-up.",
        ),
        (
            "significant?",
            "Whether the 95% bootstrap interval of the runner-up/winner ratio excludes 1.",
        ),
        ("runs", "Requests files (replay runs) with this label."),
        ("load", "Closed-loop users or open-loop request rate (offered)."),
    ];
    if let Some((_, t)) = exact.iter().find(|(k, _)| *k == l) {
        return Some(t);
    }
    let prefixes: &[(&str, &str)] = &[
        (
            "due",
            "How long a request waited on the client after it was due (client-side delay, not server latency).",
        ),
        (
            "ttft",
            "Time to first token: first content chunk − the request's first byte.",
        ),
        (
            "tpot",
            "Time per output token after the first: (E2E − TTFT) / (output tokens − 1).",
        ),
        ("itl", "Inter-token latency: gaps between content chunks."),
        (
            "e2e",
            "End-to-end latency: last content chunk − the request's first byte.",
        ),
        ("median ttft", "Time to first token, median."),
        ("p99 ttft", "Time to first token, 99th percentile."),
        ("median tpot", "Time per output token after the first, median."),
        ("p99 e2e", "End-to-end latency, 99th percentile."),
    ];
    prefixes.iter().find(|(k, _)| l.starts_with(k)).map(|(_, t)| *t)
}

/// One Markdown table (the events between its start and end) as HTML.
fn html_table(evs: &[pulldown_cmark::Event<'_>]) -> String {
    use pulldown_cmark::{Event, Tag, TagEnd, html};
    // rows of cells; each cell its inline events
    let mut head: Vec<Vec<pulldown_cmark::Event<'_>>> = Vec::new();
    let mut rows: Vec<Vec<Vec<pulldown_cmark::Event<'_>>>> = Vec::new();
    let (mut in_head, mut cell): (bool, Option<Vec<pulldown_cmark::Event<'_>>>) = (false, None);
    for e in evs {
        match e {
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableRow) => rows.push(Vec::new()),
            Event::Start(Tag::TableCell) => cell = Some(Vec::new()),
            Event::End(TagEnd::TableCell) => {
                let c = cell.take().unwrap_or_default();
                if in_head {
                    head.push(c);
                } else if let Some(r) = rows.last_mut() {
                    r.push(c);
                }
            }
            other => {
                if let Some(c) = cell.as_mut() {
                    c.push(other.clone());
                }
            }
        }
    }
    let text = |c: &[pulldown_cmark::Event<'_>]| -> String {
        c.iter()
            .filter_map(|e| match e {
                Event::Text(t) | Event::Code(t) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    };
    let ncols = head.len().max(rows.iter().map(|r| r.len()).max().unwrap_or(0));
    let numeric: Vec<bool> = (0..ncols)
        .map(|k| {
            let vals: Vec<String> = rows
                .iter()
                .filter_map(|r| r.get(k))
                .map(|c| text(c).trim().to_string())
                .filter(|t| !t.is_empty() && t != "-" && t != "–" && t != "n/a")
                .collect();
            !vals.is_empty() && vals.iter().all(|t| numeric_cell(t))
        })
        .collect();
    // a cell's HTML, with hyphenated words kept whole
    let cell_html = |c: &[pulldown_cmark::Event<'_>]| -> String {
        let evs: Vec<Event> = c
            .iter()
            .map(|e| match e {
                Event::Text(t) if t.contains('-') => {
                    let parts: Vec<String> = t
                        .split(' ')
                        .map(|w| {
                            if w.contains('-') {
                                format!("<span class=\"nw\">{}</span>", escape_html(w))
                            } else {
                                escape_html(w)
                            }
                        })
                        .collect();
                    Event::InlineHtml(parts.join(" ").into())
                }
                other => other.clone(),
            })
            .collect();
        let mut s = String::new();
        html::push_html(&mut s, evs.into_iter());
        s
    };
    let class = |k: usize| {
        if numeric.get(k).copied().unwrap_or(false) {
            "num"
        } else {
            "txt"
        }
    };
    let mut s = String::from("<div class=\"tw\"><table>\n<thead><tr>");
    for (k, h) in head.iter().enumerate() {
        let t = text(h);
        match header_tip(&t) {
            Some(tip) => {
                let _ = write!(
                    s,
                    "<th class=\"{}\" title=\"{}\">{}</th>",
                    class(k),
                    escape_html(tip),
                    cell_html(h)
                );
            }
            None => {
                let _ = write!(s, "<th class=\"{}\">{}</th>", class(k), cell_html(h));
            }
        }
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in &rows {
        s.push_str("<tr>");
        for (k, c) in r.iter().enumerate() {
            let _ = write!(s, "<td class=\"{}\">{}</td>", class(k), cell_html(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></div>\n");
    s
}

// ---- capacity at an SLO (sweep's capacity rows) ----

/// Three significant digits: 14.1, 3.27, 152.
fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// "14.1 req/s [13.6, 14.5]"
fn with_ci(v: f64, ci: Option<(f64, f64)>, unit: &str) -> String {
    match ci {
        Some((lo, hi)) => format!("{} {unit} [{}, {}]", sig3(v), sig3(lo), sig3(hi)),
        None => format!("{} {unit} (no interval)", sig3(v)),
    }
}

/// The quantile a capacity claim rests on: the highest limited percentile (percentile form),
/// or the attainment share (attainment form).
pub fn capacity_quantile(r: &Capacity) -> f64 {
    match r.attainment {
        Some(a) => a,
        None => limits(&r.slo)
            .iter()
            .filter_map(|l| l.pct)
            .fold(0.5f64, |q, p| q.max(p / 100.0)),
    }
}

/// Requests a capacity rests on: the measured requests sent in the steps that bracket the
/// knee (every run at the highest passing and the lowest failing rate, repeats included).
pub fn knee_requests(r: &Capacity) -> u64 {
    let Ok(steps) = r.steps() else { return 0 };
    let near = |x: f64, y: Option<f64>| y.is_some_and(|y| (x - y).abs() <= 1e-9 * y.abs().max(1.0));
    steps
        .iter()
        .filter(|s| near(s.rate_rps, r.passing_rps) || near(s.rate_rps, r.failing_rps))
        .map(|s| s.n_sent)
        .sum()
}

/// What can be said of capacity `a` against a lower capacity `b`.
#[derive(Debug, Clone, PartialEq)]
pub enum CapacityVerdict {
    /// `a` carries more: the interval of the ratio a / b excludes 1 (its bounds: a's low
    /// over b's high and a's high over b's low, so the two 95% intervals do not overlap).
    More { margin: f64, ci: (f64, f64) },
    /// The intervals overlap: the ratio's interval contains 1.
    NotDistinguishable { ci: (f64, f64) },
    /// A side rests on fewer requests at its knee than a claim at this quantile needs.
    TooFew { n: (u64, u64), min: u64 },
    /// A side has no interval.
    NoInterval,
    /// Synthetic data decides nothing.
    Synthetic,
}

/// Compare two capacities found at the same SLO (`a` the higher). Each interval is widened to
/// span at least its search bracket (highest passing .. lowest failing rate), the finest the
/// search resolved.
pub fn compare_capacity(a: &Capacity, b: &Capacity, synthetic: bool) -> Option<CapacityVerdict> {
    let (va, vb) = (a.capacity_rps?, b.capacity_rps?);
    if synthetic {
        return Some(CapacityVerdict::Synthetic);
    }
    let min = min_samples(capacity_quantile(a).max(capacity_quantile(b)));
    let n = (knee_requests(a), knee_requests(b));
    if n.0.min(n.1) < min {
        return Some(CapacityVerdict::TooFew { n, min });
    }
    let (Some(alo), Some(ahi), Some(blo), Some(bhi)) = (
        a.capacity_rps_ci_lo,
        a.capacity_rps_ci_hi,
        b.capacity_rps_ci_lo,
        b.capacity_rps_ci_hi,
    ) else {
        return Some(CapacityVerdict::NoInterval);
    };
    // the search resolves a capacity no finer than its bracket: each interval spans at least
    // the highest passing .. the lowest failing rate
    let (alo, ahi) = (
        alo.min(a.passing_rps.unwrap_or(alo)),
        ahi.max(a.failing_rps.unwrap_or(ahi)),
    );
    let (blo, bhi) = (
        blo.min(b.passing_rps.unwrap_or(blo)),
        bhi.max(b.failing_rps.unwrap_or(bhi)),
    );
    if vb <= 0.0 || blo <= 0.0 {
        return Some(CapacityVerdict::NoInterval);
    }
    let ci = (alo / bhi, ahi / blo);
    Some(if ci.0 > 1.0 || ci.1 < 1.0 {
        CapacityVerdict::More {
            margin: va / vb - 1.0,
            ci,
        }
    } else {
        CapacityVerdict::NotDistinguishable { ci }
    })
}

/// The capacity section: per SLO, one sentence per label from the highest capacity down,
/// each against the next below it, the pairs that cannot be told apart, and the table.
pub fn capacity_section(rows: &[Capacity], synthetic: bool) -> String {
    let mut s = String::from("## Capacity at the SLO\n\n");
    let _ = writeln!(
        s,
        "The highest open-loop request rate each label carried while meeting the SLO (sweep's search: latencies \
         from the schedule, saturated steps stopped early and counted as failing), with its 95% interval. One label \
         carries more than another only when the interval of their ratio excludes 1 (its bounds are the low end of \
         one interval over the high end of the other: the two intervals do not overlap; each interval is widened to \
         span at least the search's final bracket, the highest passing to the lowest failing rate, the finest the \
         search resolved) and each side rests on \
         enough requests at its knee (the steps at the highest passing and lowest failing rate; n · min(q, 1 − q) ≥ \
         {} for the SLO's quantile q, as for every claim in this report).",
        crate::stats::MIN_TAIL
    );
    if synthetic {
        s.push_str(
            "\n**Synthetic data**: these capacity files are marked synthetic; they are shown, and decide nothing.\n",
        );
    }
    for (slo, attainment) in slos(rows) {
        let words = slo_words(&slo, attainment);
        let _ = writeln!(s, "\n### At {words}\n");
        let mut sub: Vec<&Capacity> = rows
            .iter()
            .filter(|r| r.slo == slo && r.attainment == attainment)
            .collect();
        sub.sort_by(|a, b| {
            b.capacity_rps
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.capacity_rps.unwrap_or(f64::NEG_INFINITY))
                .then_with(|| a.label.cmp(&b.label))
        });
        let name = |r: &Capacity| who(rows, r);
        for (i, r) in sub.iter().enumerate() {
            let mut line = match r.capacity_rps {
                Some(c) => format!(
                    "- **{}** carries {} at {words}",
                    name(r),
                    with_ci(c, r.capacity_rps_ci_lo.zip(r.capacity_rps_ci_hi), "req/s")
                ),
                None => format!(
                    "- **{}** met the SLO at no rate tried{}",
                    name(r),
                    r.failing_rps
                        .map(|f| format!(" (it failed at {} req/s)", sig3(f)))
                        .unwrap_or_default()
                ),
            };
            if let Some(next) = sub.get(i + 1)
                && let Some(v) = compare_capacity(r, next, synthetic)
            {
                let other = name(next);
                line.push_str(&match v {
                    CapacityVerdict::More { margin, ci } => format!(
                        ", {} over {other} (ratio 95% interval [{}, {}], n = {} vs {})",
                        pct(margin),
                        sig3(ci.0),
                        sig3(ci.1),
                        knee_requests(r),
                        knee_requests(next)
                    ),
                    CapacityVerdict::NotDistinguishable { .. } => {
                        format!(", not distinguishable from {other} (the intervals overlap)")
                    }
                    CapacityVerdict::TooFew { n, min } => format!(
                        ", no claim over {other}: too few requests at the knee (n = {} vs {}; ≥ {min} per side needed)",
                        n.0, n.1
                    ),
                    CapacityVerdict::NoInterval => format!(", no claim over {other}: no interval"),
                    CapacityVerdict::Synthetic => format!(", no claim over {other}: synthetic data"),
                });
            }
            if let Some(c) = r.cost_per_m_output_tokens_usd {
                let _ = write!(line, "; ${c:.2} per million output tokens");
                if let Some(h) = r.gpu_hour_cost_usd {
                    let _ = write!(
                        line,
                        " ({} GPU{} at ${h:.2}/GPU-hour)",
                        r.gpu_count,
                        if r.gpu_count == 1 { "" } else { "s" }
                    );
                }
            }
            if let Some(n) = r.note.as_deref().filter(|n| !n.is_empty()) {
                let _ = write!(line, " ({n})");
            }
            line.push('.');
            let _ = writeln!(s, "{line}");
        }
        // every pair that cannot be told apart, not only neighbours
        let mut tied = Vec::new();
        for (i, a) in sub.iter().enumerate() {
            for b in &sub[i + 1..] {
                if let Some(CapacityVerdict::NotDistinguishable { ci }) = compare_capacity(a, b, synthetic) {
                    tied.push(format!(
                        "{} and {} (ratio 95% interval [{}, {}] contains 1)",
                        name(a),
                        name(b),
                        sig3(ci.0),
                        sig3(ci.1)
                    ));
                }
            }
        }
        if !tied.is_empty() {
            let _ = writeln!(s, "\nNot distinguishable at this SLO: {}.", tied.join("; "));
        }
        s.push_str(
            "\n| label | capacity (req/s) [95% CI] | output tok/s at capacity [95% CI] | passing / failing rate (req/s) | \
             GPUs | $ per M output tokens | steps (saturated) | requests at the knee | interval |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &sub {
            let steps = r.steps().unwrap_or_default();
            let opt = |v: Option<f64>| v.map(sig3).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} / {} | {} | {} | {} ({}) | {} | {} |",
                name(r),
                r.capacity_rps
                    .map(|c| with_ci(c, r.capacity_rps_ci_lo.zip(r.capacity_rps_ci_hi), ""))
                    .unwrap_or_else(|| "none".into())
                    .replace("  ", " "),
                r.capacity_output_tok_s
                    .map(|c| with_ci(c, r.capacity_output_tok_s_ci_lo.zip(r.capacity_output_tok_s_ci_hi), ""))
                    .unwrap_or_else(|| "-".into())
                    .replace("  ", " "),
                opt(r.passing_rps),
                opt(r.failing_rps),
                r.gpu_count,
                r.cost_per_m_output_tokens_usd
                    .map(|c| format!("${c:.2}"))
                    .unwrap_or_else(|| "-".into()),
                steps.len(),
                steps.iter().filter(|s| s.saturated).count(),
                knee_requests(r),
                if r.interval.is_empty() { "-" } else { &r.interval },
            );
        }
    }
    s
}
