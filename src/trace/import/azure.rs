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
        // i128: two valid timestamps can be further apart than an i64 of nanoseconds holds
        let mut row = TraceRow::new(id, (ns as i128 - t0 as i128) as f64 / 1e9, input, output);
        row.source = Some("azure".into());
        id += 1;
        if sink.push(row, line)? == Flow::Stop {
            break;
        }
    }
    Ok(Skipped::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<TraceRow>);

    impl RowSink for Collect {
        fn push(&mut self, row: TraceRow, _line: u64) -> Result<Flow, ImportError> {
            self.0.push(row);
            Ok(Flow::Continue)
        }
    }

    fn import_text(text: &str) -> Result<Vec<TraceRow>, ImportError> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, text).unwrap();
        let mut c = Collect(Vec::new());
        import(&p.to_string_lossy(), &mut c)?;
        Ok(c.0)
    }

    /// Found by fuzzing (import_azure): a timestamp past 2262 overflowed i64 nanoseconds
    /// (a panic in debug builds, a wrapped arrival in release ones); two valid ones 550 years
    /// apart overflowed their difference.
    #[test]
    fn far_timestamps_are_an_error_or_exact_never_an_overflow() {
        let e =
            import_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:57,1,2\n2523-11-16 18:15:57,3,4\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("line 3") && e.contains("out of range"), "{e}");
        let rows =
            import_text("TIMESTAMP,ContextTokens,GeneratedTokens\n1700-01-01 00:00:00,1,2\n2250-01-01 00:00:00,3,4\n")
                .unwrap();
        let want = (chrono::NaiveDate::from_ymd_opt(2250, 1, 1).unwrap()
            - chrono::NaiveDate::from_ymd_opt(1700, 1, 1).unwrap())
        .num_seconds() as f64;
        assert_eq!(rows[1].arrival_s, want);
    }
}
