//! Output for people and programs: the summary contract's batch and the Markdown table.

use arrow_array::RecordBatch;

use crate::io::fmt_num;
use crate::schema::summary::col;
use crate::schema::{Rows, Summary};

/// Summary rows as a record batch of the summary contract.
pub fn to_batch(rows: &[Summary]) -> RecordBatch {
    Summary::encode(rows, &())
}

/// A column of the Markdown table: header, left-aligned (text) or not, and its cell.
type MdCol = (&'static str, bool, fn(&Summary) -> Option<String>);

fn num(v: Option<f64>) -> Option<String> {
    v.map(fmt_num)
}

/// The delivered share of the asked load, marked when the client set the pace.
fn load_cell(r: &Summary) -> Option<String> {
    let v = num(r.load_pct);
    if r.client_bound == Some(true) {
        Some(format!("{} ⚠ client-bound", v.unwrap_or_default()))
    } else {
        v
    }
}

/// One line per client-bound group (empty when none): what it was asked, what it delivered.
pub fn client_bound_lines(rows: &[Summary]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.client_bound == Some(true))
        .map(|r| {
            let mut who = r.label.clone();
            match (r.concurrency, r.rate_rps) {
                (Some(c), _) => who.push_str(&format!(" at {c} users")),
                (None, Some(x)) => who.push_str(&format!(" at {} req/s", fmt_num(x))),
                _ => {}
            }
            for k in [r.category.as_deref(), r.turn.map(|t| format!("turn {t}")).as_deref()]
                .into_iter()
                .flatten()
            {
                who.push_str(&format!(" / {k}"));
            }
            let asked = match (r.concurrency, r.achieved_rate_rps, r.target_rate_rps) {
                (Some(c), _, _) => format!(
                    "{} of {c} users in flight on average ({}% of the asked concurrency)",
                    num(r.in_flight_mean).unwrap_or("?".into()),
                    num(r.concurrency_pct).unwrap_or("?".into())
                ),
                (None, Some(a), Some(t)) => format!("{} req/s sent of {} req/s scheduled", fmt_num(a), fmt_num(t)),
                _ => String::new(),
            };
            format!(
                "{who}: delivered {}% of the asked load ({asked}; due→sent p50 {} ms, p99 {} ms)",
                num(r.load_pct).unwrap_or("?".into()),
                num(r.sched_lag_p50_ms).unwrap_or("?".into()),
                num(r.sched_lag_p99_ms).unwrap_or("?".into()),
            )
        })
        .collect()
}

/// The compact Markdown table agg prints for people.
pub fn markdown(rows: &[Summary], slo: bool) -> String {
    let varies = |f: fn(&Summary) -> Option<String>| {
        let mut seen: Vec<Option<String>> = rows.iter().map(f).collect();
        seen.sort();
        seen.dedup();
        seen.len() > 1 || seen.first().is_some_and(|v| v.is_some())
    };
    let mut cols: Vec<MdCol> = vec![(col::LABEL, true, |r| Some(r.label.clone()))];
    let keys: [MdCol; 6] = [
        (col::ENGINE, true, |r| r.engine.clone()),
        (col::QUANT, true, |r| r.quant.clone()),
        ("users", false, |r| r.concurrency.map(|c| c.to_string())),
        ("rate req/s", false, |r| num(r.rate_rps)),
        (col::CATEGORY, true, |r| r.category.clone()),
        (col::TURN, false, |r| r.turn.map(|t| t.to_string())),
    ];
    cols.extend(keys.into_iter().filter(|c| varies(c.2)));
    cols.extend::<[MdCol; 12]>([
        ("ok", false, |r| Some(r.n.ok.to_string())),
        ("n", false, |r| Some(r.n_requests.to_string())),
        ("req/s", false, |r| num(r.req_per_s)),
        ("out tok/s", false, |r| num(r.output_tok_per_s)),
        ("TTFT p50 ms", false, |r| num(r.ttft.p50)),
        ("TTFT p99 ms", false, |r| num(r.ttft.p99)),
        ("TPOT p50 ms", false, |r| num(r.tpot.p50)),
        ("TPOT p99 ms", false, |r| num(r.tpot.p99)),
        ("ITL p50 ms", false, |r| num(r.itl.p50)),
        ("ITL p99 ms", false, |r| num(r.itl.p99)),
        ("E2E p50 ms", false, |r| num(r.e2e.p50)),
        ("E2E p99 ms", false, |r| num(r.e2e.p99)),
    ]);
    if slo {
        cols.push(("goodput req/s", false, |r| num(r.goodput_req_per_s)));
    }
    // the load the client delivered (see crate::stats::LoadAcc), flagged where it fell short
    cols.extend::<[MdCol; 3]>([
        ("in flight", false, |r| num(r.in_flight_mean)),
        ("load %", false, load_cell),
        ("due→sent p99 ms", false, |r| num(r.sched_lag_p99_ms)),
    ]);
    // the prefix-cache hit rate, from usage and from the engine's counters, where measured
    let cache: [MdCol; 2] = [
        ("cache hit % (usage)", false, |r| num(r.usage_cache_hit_pct)),
        ("cache hit % (engine)", false, |r| num(r.prefix_cache_hit_pct)),
    ];
    cols.extend(cache.into_iter().filter(|c| rows.iter().any(|r| (c.2)(r).is_some())));
    let mut s = String::new();
    s.push('|');
    for (h, _, _) in &cols {
        s.push_str(&format!(" {h} |"));
    }
    s.push_str("\n|");
    for (_, left, _) in &cols {
        s.push_str(if *left { "---|" } else { "---:|" });
    }
    s.push('\n');
    for r in rows {
        s.push('|');
        for (_, _, f) in &cols {
            s.push_str(&format!(" {} |", f(r).unwrap_or_default()));
        }
        s.push('\n');
    }
    s
}
