//! Any CSV or JSON Lines file through a column mapping, and Vidur's "splitwise" CSVs.
//!
//! Mapping: `arrival=COL,input=COL,output=COL[,prompt=COL,session=COL,turn=COL,category=COL]`.
//! `arrival` is a number in s, ms or us, or a datetime (`--arrival-unit`); arrival_s is
//! relative to the first row. `input` may be left out when `prompt` is given: the prompt's
//! tokens are counted (with `--tokenizer`, exactly). `session` values may be numbers or strings
//! (strings are hashed to an id); `turn`, when not mapped, counts a session's rows in file
//! order. CSV columns are found by header name; JSONL columns are keys of each object.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;

use super::{CsvFile, Flow, ImportError, RowSink, Skipped, open_text, parse_datetime_ns, parse_f64, parse_tokens};
use crate::trace::TraceRow;
use crate::trace::tokenizer::TokenCounter;

/// The unit of the arrival column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TimeUnit {
    /// seconds (a number)
    #[default]
    S,
    /// milliseconds
    Ms,
    /// microseconds
    Us,
    /// a datetime such as 2024-05-12 00:00:00.123+00:00 (UTC without a zone)
    Datetime,
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    Csv,
    Jsonl,
}

/// Which source column feeds which trace column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    pub arrival: String,
    pub input: Option<String>,
    pub output: String,
    pub prompt: Option<String>,
    pub session: Option<String>,
    pub turn: Option<String>,
    pub category: Option<String>,
}

impl std::str::FromStr for Mapping {
    type Err = String;
    /// `arrival=ts,input=in,output=out[,prompt=..,session=..,turn=..,category=..]`
    fn from_str(s: &str) -> Result<Mapping, String> {
        let mut m = Mapping::default();
        let mut input = None;
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--columns: {part:?} is not KEY=COLUMN"))?;
            let v = v.trim().to_string();
            if v.is_empty() {
                return Err(format!("--columns: {k} has no column name"));
            }
            match k.trim() {
                "arrival" => m.arrival = v,
                "input" => input = Some(v),
                "output" => m.output = v,
                "prompt" => m.prompt = Some(v),
                "session" => m.session = Some(v),
                "turn" => m.turn = Some(v),
                "category" => m.category = Some(v),
                other => {
                    return Err(format!(
                        "--columns: unknown key {other:?}; use arrival, input, output, prompt, session, turn, category"
                    ));
                }
            }
        }
        m.input = input;
        if m.arrival.is_empty() || m.output.is_empty() || (m.input.is_none() && m.prompt.is_none()) {
            return Err(
                "--columns needs arrival=COL, output=COL and input=COL (or prompt=COL to count tokens), e.g. arrival=ts,input=prompt_len,output=output_len"
                    .into(),
            );
        }
        Ok(m)
    }
}

/// Everything the mapped importer needs.
pub struct Spec {
    pub mapping: Mapping,
    pub unit: TimeUnit,
    pub format: Option<TextFormat>,
    /// The `source` column's value.
    pub source: String,
}

/// Vidur's splitwise CSVs: `arrived_at,num_prefill_tokens,num_decode_tokens`, seconds.
pub fn splitwise() -> Spec {
    Spec {
        mapping: Mapping {
            arrival: "arrived_at".into(),
            input: Some("num_prefill_tokens".into()),
            output: "num_decode_tokens".into(),
            ..Mapping::default()
        },
        unit: TimeUnit::S,
        format: Some(TextFormat::Csv),
        source: "splitwise".into(),
    }
}

/// Guess CSV or JSONL from the extension (CSV unless it says json/jsonl/ndjson).
pub fn guess_format(path: &str) -> TextFormat {
    let lower = path.to_ascii_lowercase();
    if [".jsonl", ".ndjson", ".json", ".jsonl.sample", ".json.sample"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        TextFormat::Jsonl
    } else {
        TextFormat::Csv
    }
}

/// Session values: numbers as they are, other strings hashed (FNV-1a) to an id.
fn session_id(s: &str) -> u64 {
    if let Ok(v) = s.parse::<u64>() {
        return v;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct RowBuilder<'a> {
    spec: &'a Spec,
    path: &'a str,
    counter: &'a TokenCounter,
    first: Option<i128>,
    turns: HashMap<u64, u32>,
    id: u64,
}

impl RowBuilder<'_> {
    /// Build a row from a lookup of the mapped columns (None = column absent or null).
    fn build<'v>(&mut self, line: u64, get: &dyn Fn(&str) -> Option<Cow<'v, str>>) -> Result<TraceRow, ImportError> {
        let m = &self.spec.mapping;
        let path = self.path;
        let need = |col: &str| get(col).ok_or_else(|| ImportError::bad(path, line, col, "missing or null"));
        let raw = need(&m.arrival)?;
        // arrival in integer nanoseconds where possible, so datetimes lose nothing
        let ns: i128 = match self.spec.unit {
            TimeUnit::Datetime => {
                parse_datetime_ns(&raw).map_err(|e| ImportError::bad(path, line, &m.arrival, e))? as i128
            }
            u => {
                let v = parse_f64(path, line, &m.arrival, raw.trim())?;
                let mult = match u {
                    TimeUnit::S => 1e9,
                    TimeUnit::Ms => 1e6,
                    _ => 1e3,
                };
                let ns = (v * mult).round();
                // beyond ~3e20 years: a cast would saturate and the difference overflow
                if ns.abs() >= 1e37 {
                    return Err(ImportError::bad(path, line, &m.arrival, format!("{v} is out of range")));
                }
                ns as i128
            }
        };
        let t0 = *self.first.get_or_insert(ns);
        let prompt = match &m.prompt {
            Some(c) => get(c).map(|p| p.into_owned()),
            None => None,
        };
        let input = match (&m.input, &prompt) {
            (Some(c), _) => parse_tokens(path, line, c, need(c)?.trim())?,
            (None, Some(p)) => self.counter.count(p)?,
            (None, None) => {
                return Err(ImportError::bad(
                    path,
                    line,
                    m.prompt.as_deref().unwrap_or("prompt"),
                    "missing or null, and no input column is mapped to give the length",
                ));
            }
        };
        let output = parse_tokens(path, line, &m.output, need(&m.output)?.trim())?;
        let mut row = TraceRow::new(self.id, (ns - t0) as f64 / 1e9, input, output);
        self.id += 1;
        row.prompt = prompt;
        row.source = Some(self.spec.source.clone());
        if let Some(c) = &m.category {
            row.category = get(c).map(|v| v.into_owned());
        }
        if let Some(c) = &m.session
            && let Some(s) = get(c)
        {
            let sid = session_id(s.trim());
            row.session_id = Some(sid);
            let counted = self.turns.entry(sid).or_insert(0);
            row.turn = Some(*counted);
            *counted += 1;
        }
        if let Some(c) = &m.turn
            && let Some(v) = get(c)
        {
            row.turn = Some(parse_tokens(path, line, c, v.trim())?);
        }
        Ok(row)
    }
}

/// Import a CSV or JSONL file through `spec` into `sink`.
pub fn import(path: &str, spec: &Spec, counter: &TokenCounter, sink: &mut dyn RowSink) -> Result<Skipped, ImportError> {
    let mut b = RowBuilder {
        spec,
        path,
        counter,
        first: None,
        turns: HashMap::new(),
        id: 0,
    };
    match spec.format.unwrap_or_else(|| guess_format(path)) {
        TextFormat::Csv => {
            let mut f = CsvFile::open(path)?;
            let m = &spec.mapping;
            let mut cols: Vec<(String, usize)> = Vec::new();
            let hint = format!(" (see --columns; the {} columns are found by name)", spec.source);
            for c in [Some(&m.arrival), m.input.as_ref(), Some(&m.output)]
                .into_iter()
                .flatten()
            {
                cols.push((c.clone(), f.col(c, &hint)?));
            }
            for c in [&m.prompt, &m.session, &m.turn, &m.category].into_iter().flatten() {
                cols.push((c.clone(), f.col(c, &hint)?));
            }
            while let Some((line, rec)) = f.next_record()? {
                let get = |name: &str| -> Option<Cow<'_, str>> {
                    let i = cols.iter().find(|(n, _)| n == name)?.1;
                    rec.get(i).filter(|v| !v.is_empty()).map(Cow::Borrowed)
                };
                let row = b.build(line, &get)?;
                if sink.push(row, line)? == Flow::Stop {
                    break;
                }
            }
        }
        TextFormat::Jsonl => {
            let r = std::io::BufReader::new(open_text(path)?);
            for (i, l) in r.split(b'\n').enumerate() {
                let line = i as u64 + 1;
                let l = l.map_err(|e| ImportError::Read {
                    path: path.into(),
                    source: e,
                })?;
                let text = String::from_utf8_lossy(&l);
                if text.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(text.trim()).map_err(|e| ImportError::Bad {
                        path: path.into(),
                        at: "line",
                        line,
                        column: format!("column {}", e.column()),
                        msg: format!("not a JSON object: {}", strip_pos(&e.to_string())),
                    })?;
                let get = |name: &str| -> Option<Cow<'_, str>> {
                    match v.get(name)? {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                        other => Some(Cow::Owned(other.to_string())),
                    }
                };
                let row = b.build(line, &get)?;
                if sink.push(row, line)? == Flow::Stop {
                    break;
                }
            }
        }
    }
    Ok(Skipped::default())
}

fn strip_pos(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(p) => &msg[..p],
        None => msg,
    }
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

    /// Found while reviewing the importers against the fuzz targets' invariants: arrival
    /// times of +-1e300 s saturated the i128 cast and their difference overflowed.
    #[test]
    fn huge_arrival_times_are_an_error_not_an_overflow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(
            &p,
            "arrived_at,num_prefill_tokens,num_decode_tokens\n-1e300,1,2\n1e300,3,4\n",
        )
        .unwrap();
        let mut c = Collect(Vec::new());
        let e = import(&p.to_string_lossy(), &splitwise(), &TokenCounter::Approx, &mut c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("out of range"), "{e}");
        std::fs::write(
            &p,
            "arrived_at,num_prefill_tokens,num_decode_tokens\n-1e20,1,2\n1e20,3,4\n",
        )
        .unwrap();
        let mut c = Collect(Vec::new());
        import(&p.to_string_lossy(), &splitwise(), &TokenCounter::Approx, &mut c).unwrap();
        assert!((c.0[1].arrival_s / 2e20 - 1.0).abs() < 1e-12, "{}", c.0[1].arrival_s);
    }

    #[test]
    fn mapping_parses() {
        let m: Mapping = "arrival=t,input=i,output=o,session=s".parse().unwrap();
        assert_eq!(m.arrival, "t");
        assert_eq!(m.input.as_deref(), Some("i"));
        assert_eq!(m.session.as_deref(), Some("s"));
        assert!("arrival=t,output=o,prompt=p".parse::<Mapping>().is_ok());
        assert!("arrival=t,output=o".parse::<Mapping>().is_err());
        assert!("arrival=t,input=i,output=o,bogus=x".parse::<Mapping>().is_err());
        assert!("arrival".parse::<Mapping>().is_err());
        assert_eq!(session_id("42"), 42);
        assert_eq!(session_id("abc"), session_id("abc"));
        assert_ne!(session_id("abc"), session_id("abd"));
        assert_eq!(guess_format("x.JSONL"), TextFormat::Jsonl);
        assert_eq!(guess_format("x.csv"), TextFormat::Csv);
    }
}
