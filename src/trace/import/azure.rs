//! Azure LLM inference traces (Azure/AzurePublicDataset, Splitwise ISCA 2024, and the 2024
//! week-long release): `TIMESTAMP,ContextTokens,GeneratedTokens`, one row per request.
//!
//! Quirks handled: seven fractional digits (100 ns ticks) in 2023, `+00:00` and a missing
//! fraction in 2024, CRLF line endings, long gaps (the code trace has a 217 s stretch with no
//! arrivals: a gap is not the end). arrival_s = timestamp - first timestamp, computed in whole
//! nanoseconds so no tick is lost.

use super::{CsvFile, Flow, ImportError, RowSink, Skipped, field, parse_datetime_ns, parse_tokens};
use crate::trace::TraceRow;

pub const TIME: &str = "TIMESTAMP";
pub const INPUT: &str = "ContextTokens";
pub const OUTPUT: &str = "GeneratedTokens";

/// Import an Azure trace CSV into `sink`.
pub fn import(path: &str, sink: &mut dyn RowSink) -> Result<Skipped, ImportError> {
    let mut f = CsvFile::open(path)?;
    let hint = " (an Azure LLM inference trace has TIMESTAMP,ContextTokens,GeneratedTokens)";
    let (ti, ii, oi) = (f.col(TIME, hint)?, f.col(INPUT, hint)?, f.col(OUTPUT, hint)?);
    let path = f.path.clone();
    let mut first: Option<i64> = None;
    let mut id = 0u64;
    while let Some((line, rec)) = f.next_record()? {
        let ts = field(&path, line, rec, ti, TIME)?;
        let ns = parse_datetime_ns(ts).map_err(|m| ImportError::bad(&path, line, TIME, m))?;
        let input = parse_tokens(&path, line, INPUT, field(&path, line, rec, ii, INPUT)?)?;
        let output = parse_tokens(&path, line, OUTPUT, field(&path, line, rec, oi, OUTPUT)?)?;
        let t0 = *first.get_or_insert(ns);
        let mut row = TraceRow::new(id, (ns - t0) as f64 / 1e9, input, output);
        row.source = Some("azure".into());
        id += 1;
        if sink.push(row, line)? == Flow::Stop {
            break;
        }
    }
    Ok(Skipped::default())
}
