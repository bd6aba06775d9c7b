//! Output for people and programs: the summary contract's batch and the Markdown table.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};

use super::summary::{Cell, Row};
use crate::schema::{SUMMARY, Ty};

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
