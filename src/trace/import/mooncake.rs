//! Mooncake traces (kvcache-ai/Mooncake, FAST'25): JSON Lines of
//! `{"timestamp": MS, "input_length": N, "output_length": M, "hash_ids": [...]}`.
//!
//! `timestamp` is integer milliseconds since the trace start (bucketed: many requests share
//! one value); `hash_ids` are the ids of the prompt's 512-token blocks
//! (`len == ceil(input_length / 512)`), equal ids meaning identical blocks. They are kept as
//! `prefix_blocks`: replay turns each id into the same 512 tokens of text every time, the last
//! block holding the remainder, so prefix caching behaves as it did for the real prompts.

use std::io::BufRead;

use super::{Flow, ImportError, RowSink, Skipped, open_text};
use crate::trace::BLOCK_TOKENS;
use crate::trace::TraceRow;

#[derive(serde::Deserialize)]
struct Line {
    timestamp: serde_json::Value,
    input_length: serde_json::Value,
    output_length: serde_json::Value,
    #[serde(default)]
    hash_ids: Option<Vec<serde_json::Value>>,
}

/// Import a Mooncake JSONL trace into `sink`.
pub fn import(path: &str, sink: &mut dyn RowSink) -> Result<Skipped, ImportError> {
    let r = std::io::BufReader::new(open_text(path)?);
    let mut skipped = Skipped::default();
    let mut first: Option<f64> = None;
    let mut mismatched = 0u64;
    for (i, l) in r.split(b'\n').enumerate() {
        let line = i as u64 + 1;
        let l = l.map_err(|e| ImportError::Read {
            path: path.into(),
            source: e,
        })?;
        let text = std::str::from_utf8(&l).map_err(|_| ImportError::Bad {
            path: path.into(),
            at: "line",
            line,
            column: "column 1".into(),
            msg: "not valid UTF-8".into(),
        })?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let v: Line = serde_json::from_str(text).map_err(|e| json_err(path, line, &e))?;
        let ms = number(path, line, "timestamp", &v.timestamp)?;
        let input = tokens(path, line, "input_length", &v.input_length)?;
        let output = tokens(path, line, "output_length", &v.output_length)?;
        let blocks = match v.hash_ids {
            None => None,
            Some(ids) => {
                let mut out = Vec::with_capacity(ids.len());
                for (k, x) in ids.iter().enumerate() {
                    match x.as_u64() {
                        Some(u) => out.push(u),
                        None => {
                            return Err(ImportError::bad(
                                path,
                                line,
                                "hash_ids",
                                format!("element {k} is {x}, not a non-negative integer block id"),
                            ));
                        }
                    }
                }
                if out.len() as u64 != (input as u64).div_ceil(BLOCK_TOKENS as u64) {
                    mismatched += 1;
                }
                Some(out)
            }
        };
        let t0 = *first.get_or_insert(ms);
        let mut row = TraceRow::new(i as u64, (ms - t0) / 1000.0, input, output);
        row.prefix_blocks = blocks;
        row.source = Some("mooncake".into());
        if sink.push(row, line)? == Flow::Stop {
            break;
        }
    }
    if mismatched > 0 {
        // Not an error: replay still sends input_length tokens' worth of blocks, but the
        // prompt length follows the block count.
        skipped.notes.push(format!(
            "{mismatched} rows have a hash_ids count other than ceil(input_length/512); kept, but replay's prompts for them follow the block count"
        ));
    }
    Ok(skipped)
}

fn json_err(path: &str, line: u64, e: &serde_json::Error) -> ImportError {
    let msg = e.to_string();
    // serde_json says "... at line 1 column 17": keep the column, drop the line (it is ours).
    let msg = match msg.rfind(" at line ") {
        Some(p) => msg[..p].to_string(),
        None => msg,
    };
    ImportError::Bad {
        path: path.into(),
        at: "line",
        line,
        column: format!("column {}", e.column()),
        msg: format!(
            "{msg} (want {{\"timestamp\": MS, \"input_length\": N, \"output_length\": M, \"hash_ids\": [...]}})"
        ),
    }
}

fn number(path: &str, line: u64, name: &str, v: &serde_json::Value) -> Result<f64, ImportError> {
    match v.as_f64() {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(ImportError::bad(
            path,
            line,
            name,
            format!("{v} is not a non-negative number"),
        )),
    }
}

fn tokens(path: &str, line: u64, name: &str, v: &serde_json::Value) -> Result<u32, ImportError> {
    match v.as_u64() {
        Some(x) if x <= u32::MAX as u64 => Ok(x as u32),
        _ => match v.as_f64() {
            Some(x) if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) => Ok(x as u32),
            _ => Err(ImportError::bad(
                path,
                line,
                name,
                format!("{v} is not a whole non-negative number of tokens"),
            )),
        },
    }
}
