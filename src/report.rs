//! report: from runs to a written recommendation, every claim derived from the numbers by a
//! stated rule, with its margin and whether it survives the noise (95% bootstrap CIs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::analysis::{self, Cmp, Groups, Options};
use crate::io::fmt_num;
use crate::meta::Meta;
use crate::schema::Summary;
use crate::schema::summary::col;

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
}

pub const RANKED: &[Metric] = &[
    Metric {
        column: col::OUTPUT_TOK_PER_S,
        get: |r| r.output_tok_per_s,
        name: "output throughput",
        unit: "tok/s",
        better: Better::Higher,
    },
    Metric {
        column: col::GOODPUT_REQ_PER_S,
        get: |r| r.goodput_req_per_s,
        name: "goodput",
        unit: "req/s",
        better: Better::Higher,
    },
    Metric {
        column: col::TTFT_P50_MS,
        get: |r| r.ttft.p50,
        name: "median TTFT",
        unit: "ms",
        better: Better::Lower,
    },
    Metric {
        column: col::TTFT_P99_MS,
        get: |r| r.ttft.p99,
        name: "p99 TTFT",
        unit: "ms",
        better: Better::Lower,
    },
    Metric {
        column: col::TPOT_P50_MS,
        get: |r| r.tpot.p50,
        name: "median TPOT",
        unit: "ms",
        better: Better::Lower,
    },
    Metric {
        column: col::E2E_P99_MS,
        get: |r| r.e2e.p99,
        name: "p99 E2E latency",
        unit: "ms",
        better: Better::Lower,
    },
];

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

/// The outcome of ranking labels on one metric at one load.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub metric: &'static str,
    pub load: Load,
    pub category: Option<String>,
    pub winner: String,
    pub winner_value: f64,
    pub runner_up: Option<(String, f64)>,
    /// Relative advantage of the winner over the runner-up (0.12 = 12% better).
    pub margin: Option<f64>,
    /// The runner-up / winner ratio's 95% CI, and whether it excludes 1.
    pub ci: Option<(f64, f64)>,
    pub significant: Option<bool>,
}

fn value(r: &Summary, m: &Metric) -> Option<f64> {
    (m.get)(r).filter(|v| v.is_finite())
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
            let mut vals: Vec<(String, f64)> = rs
                .iter()
                .filter_map(|r| value(r, m).map(|v| (r.label.clone(), v)))
                .collect();
            if vals.len() < 2 {
                continue;
            }
            vals.sort_by(|a, b| match m.better {
                Better::Lower => a.1.total_cmp(&b.1),
                Better::Higher => b.1.total_cmp(&a.1),
            });
            let (w, wv) = vals[0].clone();
            let (r, rv) = vals[1].clone();
            let margin = match m.better {
                Better::Lower if wv > 0.0 => Some(rv / wv - 1.0),
                Better::Higher if rv > 0.0 => Some(wv / rv - 1.0),
                _ => None,
            };
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
                runner_up: Some((r, rv)),
                margin,
                ci: c.and_then(|c| c.ci),
                significant: c.and_then(|c| c.ci.map(|_| c.significant())),
            });
        }
    }
    out
}

fn metric(col: &str) -> &'static Metric {
    RANKED.iter().find(|m| m.column == col).expect("ranked metric")
}

fn verdict(r: &Ranking) -> String {
    match (r.significant, r.ci) {
        (Some(true), Some((lo, hi))) => format!("yes (runner-up/winner 95% CI [{lo:.3}, {hi:.3}])"),
        (Some(false), Some((lo, hi))) => format!("**no: within noise** (CI [{lo:.3}, {hi:.3}] contains 1)"),
        _ => "not tested (no per-request samples for this metric)".into(),
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
    /// Metadata of a gpu file, when one was given.
    pub gpu_meta: Option<Meta>,
}

fn meta_table(inp: &ReportInput<'_>) -> String {
    // One line per label: what ran, from the requests files' provenance.
    let mut by: BTreeMap<String, BTreeMap<&'static str, BTreeSet<String>>> = BTreeMap::new();
    for (path, m) in &inp.groups.metas {
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
        put("host", m.get("servebench.host"));
        put("trace", m.get("servebench.trace.process"));
        put("seed", m.get("servebench.trace.seed"));
        put(
            "trace sha256",
            m.get("servebench.trace.sha256").map(|s| &s[..s.len().min(12)]),
        );
        put("servebench", m.get("servebench.git_sha"));
        let _ = path;
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

/// The report, as Markdown.
pub fn markdown(inp: &ReportInput<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", inp.title);
    let _ = writeln!(
        s,
        "Generated by servebench {} from {} requests file(s), {} requests ({} warm-up rows left out). \
         Every number below comes from the requests files; every recommendation follows from a stated rule; a \
         difference counts only if the 95% bootstrap confidence interval of the ratio excludes 1.\n",
        crate::meta::VERSION,
        inp.groups.files.len(),
        inp.groups.rows - inp.groups.warmup_skipped,
        inp.groups.warmup_skipped
    );
    s.push_str("## Setup and provenance\n\n");
    s.push_str(&meta_table(inp));
    if let Some(g) = &inp.gpu_meta {
        let _ = writeln!(
            s,
            "\nGPU: {} (source: {}; driver {}; sampled every {} ms by gpumon).",
            g.get("servebench.gpu.devices").unwrap_or("?"),
            g.get("servebench.gpu.source").unwrap_or("?"),
            g.get("servebench.gpu.driver").unwrap_or("n/a"),
            g.get("servebench.gpumon.interval_ms").unwrap_or("?")
        );
    } else {
        s.push_str("\nNo GPU samples were given (run gpumon beside replay and pass its file to see memory, power and energy).\n");
    }
    let slo = inp.opts.slo;
    if slo.any() {
        let mut parts = Vec::new();
        if let Some(v) = slo.ttft_ms {
            parts.push(format!("TTFT ≤ {v} ms"));
        }
        if let Some(v) = slo.tpot_ms {
            parts.push(format!("TPOT ≤ {v} ms"));
        }
        if let Some(v) = slo.e2e_ms {
            parts.push(format!("E2E ≤ {v} ms"));
        }
        let _ = writeln!(s, "\nSLO for goodput: {}.", parts.join(", "));
    }
    s.push_str("\n## Results\n\n");
    s.push_str(&analysis::markdown(inp.rows, slo.any()));
    let bound = analysis::client_bound_lines(inp.rows);
    if !bound.is_empty() {
        s.push_str(
            "\n> **⚠ Client-bound.** In these groups the load generator, not the server, set the pace: it delivered \
             less than 95% of the load asked for, so their latencies and throughputs describe a lighter load than \
             their label says. Likely causes: too little client CPU, `--max-in-flight`, the file-descriptor limit. \
             Rerun with more client cores, `--shard` across hosts, or more `--threads`.\n>\n",
        );
        for l in &bound {
            let _ = writeln!(s, "> - {l}");
        }
    }

    let ranks = rankings(inp.rows, inp.groups, inp.opts);
    s.push_str("\n## Winners by load level\n\n");
    s.push_str(
        "For each load level and metric: the best label, its margin over the runner-up, and whether the margin is \
         larger than the noise.\n\n",
    );
    s.push_str(&ranking_table(&ranks));
    if let Some((crow, cgroups)) = inp.cat {
        let cr = rankings(crow, cgroups, inp.opts);
        let cats: BTreeSet<String> = cr.iter().filter_map(|r| r.category.clone()).collect();
        if !cats.is_empty() {
            s.push_str("\n## Winners by workload (prompt category)\n\n");
            for c in cats {
                let _ = writeln!(s, "### {c}\n");
                let sub: Vec<Ranking> = cr
                    .iter()
                    .filter(|r| r.category.as_deref() == Some(&c))
                    .cloned()
                    .collect();
                s.push_str(&ranking_table(&sub));
                s.push('\n');
            }
        }
    }
    s.push_str(&quantization(inp.rows, inp.groups, inp.opts));
    s.push_str(&recommendations(inp.rows, &ranks));
    if !inp.charts.is_empty() {
        s.push_str("\n## Charts\n\n");
        for c in &inp.charts {
            let name = c.rsplit('/').next().unwrap_or(c).trim_end_matches(".png");
            let _ = writeln!(s, "![{name}]({c})\n");
        }
    }
    s.push_str(
        "\n## Method\n\n\
         - TTFT: first chunk carrying generated content − the request's first byte (`sent_at`); E2E: last content chunk \
         − `sent_at`; TPOT: (E2E − TTFT) / (output tokens − 1); ITL: gaps between content chunks (vLLM's definitions).\n\
         - Output tokens: the server's own count (usage), else content chunks.\n\
         - Throughput: tokens of successful requests / (first `sent_at` … last `done_at`); its CI: batch means over \
         time windows. Failed requests count in totals, never in latency statistics.\n\
         - Percentiles: linear interpolation between closest ranks (numpy's default, DuckDB's `quantile_cont`). CIs: 95% \
         bootstrap, computed exactly from order statistics, seeded (reproducible).\n\
         - Achieved load: requests in flight (`sent_at` … `done_at`), time-weighted over first `sent_at` … last \
         `done_at`. A request is due at `scheduled_at` (closed loop: when its user's previous request ended); \
         due→sent is the time it waited on the client. Load delivered: closed loop, in-flight time / (in-flight + \
         due→sent time); open loop, achieved rate / the schedule's rate. Below 95%: client-bound.\n",
    );
    s
}

fn ranking_table(ranks: &[Ranking]) -> String {
    let mut s = String::from(
        "| load | metric | winner | value | runner-up | value | margin | significant? |\n|---|---|---|---:|---|---:|---:|---|\n",
    );
    let mut sorted: Vec<&Ranking> = ranks.iter().collect();
    sorted.sort_by(|a, b| a.load.partial_cmp(&b.load).unwrap_or(std::cmp::Ordering::Equal));
    for r in sorted {
        let m = metric(r.metric);
        let (rn, rv) = r.runner_up.clone().unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | **{}** | {} {} | {} | {} {} | {} | {} |",
            r.load.text(),
            m.name,
            r.winner,
            fmt_num(r.winner_value),
            m.unit,
            rn,
            fmt_num(rv),
            m.unit,
            r.margin
                .map(|x| format!("{:.1}%", 100.0 * x))
                .unwrap_or_else(|| "-".into()),
            verdict(r)
        );
    }
    s
}

/// FP16 vs AWQ vs FP8 within each engine: throughput gained, latency changed, memory saved.
fn quantization(rows: &[Summary], groups: &Groups, o: &Options) -> String {
    // engine -> quant -> label
    let mut eq: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in rows {
        if let (Some(e), Some(q), l) = (&r.engine, &r.quant, &r.label) {
            eq.entry(e.to_string())
                .or_default()
                .insert(q.to_string(), l.to_string());
        }
    }
    eq.retain(|_, q| q.len() >= 2);
    if eq.is_empty() {
        return "\n## Quantization\n\nNo engine was run in more than one quantization variant.\n".into();
    }
    let mut s = String::from(
        "\n## Quantization\n\nEach variant against its engine's baseline (fp16 where measured, else the first \
         variant), per load level. Ratios in **bold** are significant (95% CI excludes 1).\n",
    );
    for (engine, qs) in eq {
        let base_q = if qs.contains_key("fp16") {
            "fp16".to_string()
        } else {
            qs.keys().next().cloned().unwrap_or_default()
        };
        let base = qs[&base_q].clone();
        for (q, label) in &qs {
            if *q == base_q {
                continue;
            }
            let _ = writeln!(s, "\n### {engine}: {q} vs {base_q}\n");
            s.push_str("| load | throughput | median TTFT | p99 TTFT | median TPOT | p99 E2E | peak GPU memory |\n|---|---:|---:|---:|---:|---:|---:|\n");
            let cmps = analysis::compare(groups, &base, label, o);
            let mut loads: Vec<Load> = cmps
                .iter()
                .filter_map(|c| match (c.concurrency, c.rate_rps) {
                    (Some(u), _) => Some(Load::Users(u)),
                    (None, Some(x)) => Some(Load::Rate(x)),
                    _ => None,
                })
                .collect();
            loads.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            loads.dedup();
            for l in loads {
                let cell = |m: &str| -> String {
                    match cmps
                        .iter()
                        .find(|c| c.metric == m && l.matches(c) && c.category.is_none())
                    {
                        Some(c) => match c.ratio {
                            Some(r) => {
                                let t = format!("{:+.1}%", 100.0 * (r - 1.0));
                                if c.significant() {
                                    format!("**{t}**")
                                } else {
                                    format!("{t} (noise)")
                                }
                            }
                            None => "-".into(),
                        },
                        None => "-".into(),
                    }
                };
                let mem = {
                    let find = |lab: &str| {
                        rows.iter()
                            .find(|r| r.label == lab && Load::of(r) == Some(l))
                            .and_then(|r| r.gpu_mem_peak_mib)
                    };
                    match (find(&base), find(label)) {
                        (Some(a), Some(b)) => format!("{:+.0} MiB", b - a),
                        _ => "-".into(),
                    }
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    l.text(),
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

/// Recommendations, each from a stated rule.
fn recommendations(rows: &[Summary], ranks: &[Ranking]) -> String {
    let mut s = String::from("\n## Recommendations\n\nEach line applies the rule in italics to the numbers above.\n\n");
    let labels: BTreeSet<String> = rows.iter().map(|r| r.label.clone()).collect();
    // Rule 1 and 2: latency at low concurrency (mean over loads <= 10 users measured for every label).
    for (get, column, name, rule) in [
        (
            (|r: &Summary| r.ttft.p99) as fn(&Summary) -> Option<f64>,
            col::TTFT_P99_MS,
            "latency-sensitive use",
            "lowest mean p99 TTFT over the closed-loop loads of ≤ 10 users",
        ),
        (
            |r: &Summary| r.tpot.p50,
            col::TPOT_P50_MS,
            "smooth streaming to few users",
            "lowest mean median TPOT over the closed-loop loads of ≤ 10 users",
        ),
    ] {
        let mut score: Vec<(String, f64, usize)> = labels
            .iter()
            .filter_map(|l| {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| &r.label == l && r.category.is_none())
                    .filter(|r| r.concurrency.is_some_and(|c| c <= 10))
                    .filter_map(get)
                    .collect();
                (!v.is_empty()).then(|| (l.clone(), v.iter().sum::<f64>() / v.len() as f64, v.len()))
            })
            .collect();
        score.sort_by(|a, b| a.1.total_cmp(&b.1));
        match score.as_slice() {
            [w, r, ..] => {
                let sig = ranks
                    .iter()
                    .filter(|k| {
                        k.metric == column && matches!(k.load, Load::Users(u) if u <= 10) && k.category.is_none()
                    })
                    .all(|k| k.winner == w.0 && k.significant == Some(true));
                let _ = writeln!(
                    s,
                    "- **{name}: {}**. *Rule: {rule}.* {} ms vs {} ms for {} ({:.1}% lower){}.",
                    w.0,
                    fmt_num(w.1),
                    fmt_num(r.1),
                    r.0,
                    100.0 * (1.0 - w.1 / r.1),
                    if sig {
                        "; it wins significantly at every such load"
                    } else {
                        "; not a significant win at every such load"
                    }
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "- {name}: no label was measured at ≤ 10 users with a competitor (*rule: {rule}*)."
                );
            }
        }
    }
    // Rule 3: throughput at the highest concurrency measured.
    let max_c = rows
        .iter()
        .filter_map(|r| r.concurrency.map(f64::from))
        .fold(f64::NAN, f64::max);
    if max_c.is_finite()
        && let Some(k) = ranks
            .iter()
            .find(|k| k.metric == col::OUTPUT_TOK_PER_S && k.load == Load::Users(max_c as u32) && k.category.is_none())
    {
        let _ = writeln!(
            s,
            "- **throughput at scale: {}**. *Rule: highest output tokens/s at the highest measured concurrency ({}).* {} tok/s, {} ahead of {}; significant: {}.",
            k.winner,
            Load::Users(max_c as u32).text(),
            fmt_num(k.winner_value),
            k.margin.map(|m| format!("{:.1}%", 100.0 * m)).unwrap_or_default(),
            k.runner_up.as_ref().map(|r| r.0.as_str()).unwrap_or("-"),
            k.significant
                .map(|b| if b { "yes" } else { "no (within noise)" })
                .unwrap_or("not tested")
        );
    }
    // Rule 4: goodput under the SLO, best at any load.
    let best_good = rows
        .iter()
        .filter(|r| r.category.is_none())
        .filter_map(|r| r.goodput_req_per_s.map(|g| (r, g)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((r, g)) = best_good {
        let _ = writeln!(
            s,
            "- **highest goodput under the SLO: {}**. *Rule: the largest goodput (requests/s meeting every SLO) at any measured load.* {} req/s at {}.",
            r.label,
            fmt_num(g),
            Load::of(r).map(|l| l.text()).unwrap_or_default()
        );
    }
    // Rule 5 and 6: memory and energy, when measured.
    // (value, name, rule, unit, peak over loads rather than mean)
    for (get, name, rule, unit, peak) in [
        (
            (|r: &Summary| r.gpu_mem_peak_mib) as fn(&Summary) -> Option<f64>,
            "lowest memory",
            "the smallest peak GPU memory under load",
            "MiB",
            true,
        ),
        (
            |r: &Summary| r.energy_per_output_token_j,
            "lowest energy",
            "the fewest joules per output token, averaged over loads",
            "J/token",
            false,
        ),
    ] {
        let mut v: Vec<(String, f64)> = labels
            .iter()
            .filter_map(|l| {
                let x: Vec<f64> = rows.iter().filter(|r| &r.label == l).filter_map(get).collect();
                (!x.is_empty()).then(|| {
                    (
                        l.clone(),
                        if peak {
                            x.iter().cloned().fold(0.0, f64::max)
                        } else {
                            x.iter().sum::<f64>() / x.len() as f64
                        },
                    )
                })
            })
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        if let Some(w) = v.first() {
            let _ = writeln!(s, "- **{name}: {}**. *Rule: {rule}.* {} {unit}.", w.0, fmt_num(w.1));
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
