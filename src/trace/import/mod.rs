//! Importers of public trace formats into the trace contract.
//!
//! Each importer reads its file with a streaming reader (one CSV record or JSON line or
//! ShareGPT conversation at a time) and pushes rows into a [`RowSink`], normally a
//! [`crate::trace::transform::Pipeline`] that applies the trace tools and writes batches. A bad
//! row stops the import with one error naming the file, the line, the column and the problem.
//!
//! Formats and their quirks (facts from the datasets' own documentation and files):
//! - `azure`: Azure LLM inference traces 2023 (`TIMESTAMP,ContextTokens,GeneratedTokens`,
//!   `YYYY-MM-DD HH:MM:SS.fffffff`, CRLF) and 2024 (same columns, `+00:00`, the fraction
//!   sometimes missing). arrival_s = timestamp - first timestamp.
//! - `burstgpt`: BurstGPT v1 (`Timestamp,Model,Request tokens,Response tokens,Total tokens,Log
//!   Type`) and v3 (adds `Session ID,Elapsed time`), read by column name.
//! - `mooncake`: Mooncake (FAST'25) JSONL, `timestamp` in ms, `hash_ids` of 512-token blocks.
//! - `sharegpt`: ShareGPT JSON array of `{id, conversations: [{from, value}]}`.
//! - `splitwise` and `csv`: Vidur's `arrived_at,num_prefill_tokens,num_decode_tokens`, and any
//!   CSV or JSONL file through a column mapping.

pub mod azure;
pub mod burstgpt;
pub mod csvmap;
pub mod mooncake;
pub mod sharegpt;

use std::fs::File;
use std::io::{BufReader, Read};

use crate::io::DataError;
use crate::trace::TraceRow;
use crate::trace::tokenizer::TokError;

/// Errors of importers and trace tools: one line each, naming the file, line and column.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: no such file; check the path")]
    NotFound { path: String },
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {at} {line}: {column}: {msg}")]
    Bad {
        path: String,
        /// "line" for text files, "row" for data files
        at: &'static str,
        line: u64,
        /// "column `NAME`" or "column N"
        column: String,
        msg: String,
    },
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Tok(#[from] TokError),
    #[error("{0}")]
    Usage(String),
}

impl ImportError {
    /// A bad value at `line`, in the named column.
    pub fn bad(path: &str, line: u64, column: &str, msg: impl Into<String>) -> ImportError {
        ImportError::Bad {
            path: path.into(),
            at: "line",
            line,
            column: format!("column `{column}`"),
            msg: msg.into(),
        }
    }
}

/// Whether the importer should go on reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Nothing more is wanted (a --window or --count was filled): stop reading.
    Stop,
}

/// Where importers push rows: `arrival_s` relative to the source's first row (it may be
/// negative in an unsorted file), `line` for error messages.
pub trait RowSink {
    fn push(&mut self, row: TraceRow, line: u64) -> Result<Flow, ImportError>;
}

/// What an importer skipped (and other things worth a warning), for stderr.
#[derive(Debug, Default, Clone)]
pub struct Skipped {
    pub skipped: Vec<(String, u64)>,
    pub notes: Vec<String>,
}

impl Skipped {
    pub fn add(&mut self, why: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.skipped.iter_mut().find(|(w, _)| w == why) {
            Some((_, k)) => *k += n,
            None => self.skipped.push((why.to_string(), n)),
        }
    }
    pub fn get(&self, why: &str) -> u64 {
        self.skipped
            .iter()
            .find(|(w, _)| w == why)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
    pub fn total(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
    /// "12 empty, 3 one-turn" or None when nothing was skipped.
    pub fn describe(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        Some(
            self.skipped
                .iter()
                .map(|(w, n)| format!("{n} {w}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// Open a text input (path or `-` for stdin) as a buffered reader.
pub fn open_text(path: &str) -> Result<Box<dyn Read + Send>, ImportError> {
    if path == "-" {
        return Ok(Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())));
    }
    let f = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImportError::NotFound { path: path.into() },
        _ => ImportError::Read {
            path: path.into(),
            source: e,
        },
    })?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ImportError::File {
            path: path.into(),
            msg: "is a directory; pass a file".into(),
        });
    }
    Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
}

/// A CSV file read record by record, with columns found by name in its header.
pub struct CsvFile {
    pub path: String,
    reader: csv::Reader<Box<dyn Read + Send>>,
    pub headers: Vec<String>,
    record: csv::StringRecord,
}

impl CsvFile {
    pub fn open(path: &str) -> Result<CsvFile, ImportError> {
        let r = open_text(path)?;
        // Lines end at '\n' (a CRLF's '\r' is trimmed with the field): the csv crate's own
        // CRLF handling miscounts line numbers, and errors must name the right line.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(r);
        let headers = match reader.headers() {
            Ok(h) => h
                .iter()
                .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
                .collect(),
            Err(e) => return Err(csv_err(path, e)),
        };
        Ok(CsvFile {
            path: path.into(),
            reader,
            headers,
            record: csv::StringRecord::new(),
        })
    }

    /// The index of a column, or an error at line 1 that lists the header.
    pub fn col(&self, name: &str, hint: &str) -> Result<usize, ImportError> {
        if self.headers.iter().all(|h| h.is_empty()) {
            return Err(ImportError::bad(
                &self.path,
                1,
                name,
                format!("missing: the file is empty (no header line){hint}"),
            ));
        }
        self.find(name).ok_or_else(|| {
            ImportError::bad(
                &self.path,
                1,
                name,
                format!("missing from the header (it has: {}){hint}", self.headers.join(", ")),
            )
        })
    }

    /// The index of a column if present (exact name, else case-insensitive).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h == name)
            .or_else(|| self.headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
    }

    /// The next record and its line number, or None at the end.
    pub fn next_record(&mut self) -> Result<Option<(u64, &csv::StringRecord)>, ImportError> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) => {
                    let line = self.record.position().map(|p| p.line()).unwrap_or(0);
                    // blank lines (a trailing newline pair) are not rows
                    if self.record.len() == 1 && self.record[0].trim().is_empty() {
                        continue;
                    }
                    return Ok(Some((line, &self.record)));
                }
                Err(e) => return Err(csv_err(&self.path, e)),
            }
        }
    }
}

fn csv_err(path: &str, e: csv::Error) -> ImportError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.kind() {
        csv::ErrorKind::Io(_) => ImportError::Read {
            path: path.into(),
            source: std::io::Error::other(e.to_string()),
        },
        csv::ErrorKind::Utf8 { err, .. } => ImportError::Bad {
            path: path.into(),
            at: "line",
            line,
            column: format!("column {}", err.field() + 1),
            msg: "not valid UTF-8".into(),
        },
        _ => ImportError::File {
            path: path.into(),
            msg: format!("line {line}: {e}"),
        },
    }
}

/// Field `i` of a record, or an error naming the missing column.
pub fn field<'r>(
    path: &str,
    line: u64,
    rec: &'r csv::StringRecord,
    i: usize,
    name: &str,
) -> Result<&'r str, ImportError> {
    rec.get(i).map(str::trim).ok_or_else(|| {
        ImportError::bad(
            path,
            line,
            name,
            format!("missing: the row has {} fields, the header names more", rec.len()),
        )
    })
}

/// A whole non-negative number of tokens.
pub fn parse_tokens(path: &str, line: u64, name: &str, s: &str) -> Result<u32, ImportError> {
    if let Ok(v) = s.parse::<u32>() {
        return Ok(v);
    }
    // "12.0" from tools that write integers as floats
    match s.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v) => Ok(v as u32),
        Ok(v) => Err(ImportError::bad(
            path,
            line,
            name,
            format!("{v} is not a whole non-negative number of tokens"),
        )),
        Err(_) => Err(ImportError::bad(
            path,
            line,
            name,
            format!("{s:?} is not a number of tokens"),
        )),
    }
}

/// A finite number.
pub fn parse_f64(path: &str, line: u64, name: &str, s: &str) -> Result<f64, ImportError> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ImportError::bad(path, line, name, format!("{s:?} is not a number"))),
    }
}

/// Parse `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM]` to nanoseconds since the Unix
/// epoch (UTC; a time without a zone is taken as UTC). Azure 2023 has seven fractional digits
/// and no zone, Azure 2024 `+00:00` and sometimes no fraction.
pub fn parse_datetime_ns(s: &str) -> Result<i64, String> {
    let b = s.trim().as_bytes();
    let bad = || {
        format!(
            "{:?} is not a timestamp like 2023-11-16 18:15:46.6805900 or 2024-05-12 00:00:00+00:00",
            s.trim()
        )
    };
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = b.get(r).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |a, d| a * 10 + (d - b'0') as i64))
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32).ok_or_else(bad)?;
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return Err(bad());
        }
        for (k, dch) in digits.iter().enumerate() {
            frac_ns += (dch - b'0') as i64 * 10i64.pow(8 - k as u32);
        }
    }
    let mut offset_s: i64 = 0;
    match b.get(i) {
        None => {}
        Some(b'Z') if i + 1 == b.len() => {}
        Some(&sign @ (b'+' | b'-')) => {
            if b.len() != i + 6 || b[i + 3] != b':' {
                return Err(bad());
            }
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            offset_s = (oh * 3600 + om * 60) * if sign == b'+' { 1 } else { -1 };
        }
        _ => return Err(bad()),
    }
    let days = date
        .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch"))
        .num_days();
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    // nanoseconds since 1970 fit an i64 from 1677 to 2262 only
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac_ns))
        .ok_or_else(|| format!("{:?} is out of range (years 1678 to 2261)", s.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        let a = parse_datetime_ns("2023-11-16 18:15:46.6805900").unwrap();
        let b = parse_datetime_ns("2023-11-16 18:15:50.9951690").unwrap();
        assert_eq!(b - a, 4_314_579_000);
        let c = parse_datetime_ns("2024-05-12 00:00:00+00:00").unwrap();
        let d = parse_datetime_ns("2024-05-12 00:00:00.5+00:00").unwrap();
        assert_eq!(d - c, 500_000_000);
        assert_eq!(c, 1_715_472_000 * 1_000_000_000);
        assert_eq!(parse_datetime_ns("2024-05-12T02:00:00+02:00").unwrap(), c);
        assert_eq!(parse_datetime_ns("2024-05-12T00:00:00Z").unwrap(), c);
        assert_eq!(parse_datetime_ns("1970-01-01 00:00:01").unwrap(), 1_000_000_000);
        for bad in [
            "",
            "2023-11-16",
            "2023-13-16 18:15:46",
            "2023-11-16 25:15:46",
            "2023-11-16 18:15:46.",
            "2023-11-16 18:15:46.1234567890",
            "2023-11-16 18:15:46+0000",
            "2023/11/16 18:15:46",
            "16-11-2023 18:15:46",
            "2023-11-16 18:15:46 junk",
            // found by fuzzing (import_azure): nanoseconds overflowed an i64
            "9999-11-16 18:15:46",
            "0001-01-01 00:00:00",
        ] {
            assert!(parse_datetime_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_and_numbers() {
        assert_eq!(parse_tokens("f", 3, "x", "12").unwrap(), 12);
        assert_eq!(parse_tokens("f", 3, "x", "12.0").unwrap(), 12);
        let e = parse_tokens("f", 3, "x", "abc").unwrap_err().to_string();
        assert_eq!(e, "f: line 3: column `x`: \"abc\" is not a number of tokens");
        assert!(parse_tokens("f", 3, "x", "-1").is_err());
        assert!(parse_tokens("f", 3, "x", "1.5").is_err());
        assert!(parse_f64("f", 1, "t", "inf").is_err());
    }
}
