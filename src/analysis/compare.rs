//! `agg --compare A,B`: ratios B/A on every shared load, with bootstrap 95% intervals.

use arrow_array::RecordBatch;

use super::ingest::{Acc, Groups, Key};
use super::options::Options;
use crate::schema::summary::col;
use crate::schema::{Metric, Stat};
use crate::stats::{self, batch_rates};

pub use crate::schema::Cmp;

/// Metrics compared by `--compare`: a latency percentile (metric, statistic, quantile), or
/// output throughput (None).
const COMPARED: [Option<(Metric, Stat, f64)>; 9] = [
    Some((Metric::Ttft, Stat::P50, 0.5)),
    Some((Metric::Ttft, Stat::P99, 0.99)),
    Some((Metric::Tpot, Stat::P50, 0.5)),
    Some((Metric::Tpot, Stat::P99, 0.99)),
    Some((Metric::Itl, Stat::P50, 0.5)),
    Some((Metric::Itl, Stat::P99, 0.99)),
    Some((Metric::E2e, Stat::P50, 0.5)),
    Some((Metric::E2e, Stat::P99, 0.99)),
    None,
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
        for (mi, pct) in COMPARED.into_iter().enumerate() {
            let metric = match pct {
                Some((m, st, _)) => m.column(st),
                None => col::OUTPUT_TOK_PER_S,
            };
            let seed = o.seed ^ (mi as u64 * 7919);
            let (va, vb, ratio, ci) = match pct {
                Some((m, _, q)) => {
                    let (xa, xb) = (acc_a.samples(m), acc_b.samples(m));
                    let va = xa.percentile(q);
                    let vb = xb.percentile(q);
                    match stats::ratio_ci(xa, xb, q, o.bootstrap.max(200), seed, 0.95) {
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

/// How many values a comparison of `metric` (a column `--compare` compares) rests on in
/// label's group at a load (and category): the samples of a latency metric, the successful
/// requests for output throughput and any other rate. None when no such group exists.
pub fn sample_count(
    groups: &Groups,
    label: &str,
    concurrency: Option<u32>,
    rate_rps: Option<f64>,
    category: Option<&str>,
    metric: &str,
) -> Option<u64> {
    let latency = COMPARED
        .iter()
        .flatten()
        .find(|(m, st, _)| m.column(*st) == metric)
        .map(|(m, _, _)| *m);
    let rate_bits = rate_rps.map(f64::to_bits);
    let mut found = None;
    for (k, acc) in &groups.groups {
        if k.label != label
            || k.concurrency != concurrency
            || k.rate_bits != rate_bits
            || k.category.as_deref() != category
        {
            continue;
        }
        let n = match latency {
            Some(m) => acc.samples(m).len() as u64,
            None => acc
                .by_status
                .get(crate::schema::Status::Ok.as_str())
                .copied()
                .unwrap_or(0),
        };
        *found.get_or_insert(0) += n;
    }
    found
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
