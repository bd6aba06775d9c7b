//! BurstGPT (HPMLL/BurstGPT): Azure OpenAI GPT service logs.
//!
//! v1 files have `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`; v3
//! files insert `Session ID,Elapsed time` after `Timestamp`, so columns are found by name.
//! `Timestamp` is whole seconds since the first day's midnight (many requests share one
//! value); `Model` is `ChatGPT` or `GPT-4` (kept as the row's category); `Log Type` is
//! `Conversation log` or `API log`. Failed requests appear as rows with `Response tokens` = 0:
//! they are dropped and counted unless `keep_failed`.

use super::{CsvFile, Flow, ImportError, RowSink, Skipped, field, parse_f64, parse_tokens};
use crate::trace::TraceRow;

pub const TIME: &str = "Timestamp";
pub const MODEL: &str = "Model";
pub const INPUT: &str = "Request tokens";
pub const OUTPUT: &str = "Response tokens";
pub const LOG_TYPE: &str = "Log Type";

/// Filters of the BurstGPT importer.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep only these models (case-insensitive), e.g. ChatGPT, GPT-4.
    pub models: Vec<String>,
    /// Keep only these log types, matched case-insensitively on their first word
    /// (`conversation` or `api`) or in full.
    pub log_types: Vec<String>,
    /// Keep failed requests (Response tokens = 0).
    pub keep_failed: bool,
}

fn matches(wanted: &[String], value: &str, first_word: bool) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            w.eq_ignore_ascii_case(value)
                || (first_word
                    && value
                        .split_whitespace()
                        .next()
                        .is_some_and(|f| f.eq_ignore_ascii_case(w)))
        })
}

pub const SKIP_FAILED: &str = "failed (Response tokens = 0; --keep-failed keeps them)";
pub const SKIP_MODEL: &str = "of other models (--model)";
pub const SKIP_LOG: &str = "of other log types (--log-type)";

/// Import a BurstGPT CSV into `sink`.
pub fn import(path: &str, filter: &Filter, sink: &mut dyn RowSink) -> Result<Skipped, ImportError> {
    let mut f = CsvFile::open(path)?;
    let hint = " (BurstGPT files have Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type)";
    let ti = f.col(TIME, hint)?;
    let ii = f.col(INPUT, hint)?;
    let oi = f.col(OUTPUT, hint)?;
    let mi = f.find(MODEL);
    let li = f.find(LOG_TYPE);
    if !filter.models.is_empty() && mi.is_none() {
        f.col(MODEL, " (needed by --model)")?;
    }
    if !filter.log_types.is_empty() && li.is_none() {
        f.col(LOG_TYPE, " (needed by --log-type)")?;
    }
    let path = f.path.clone();
    let mut skipped = Skipped::default();
    let mut first: Option<f64> = None;
    let mut zero_input = 0u64;
    let mut id = 0u64;
    while let Some((line, rec)) = f.next_record()? {
        let t = parse_f64(&path, line, TIME, field(&path, line, rec, ti, TIME)?)?;
        if t < 0.0 {
            return Err(ImportError::bad(&path, line, TIME, format!("{t} is negative")));
        }
        let input = parse_tokens(&path, line, INPUT, field(&path, line, rec, ii, INPUT)?)?;
        let output = parse_tokens(&path, line, OUTPUT, field(&path, line, rec, oi, OUTPUT)?)?;
        let model = match mi {
            Some(i) => Some(field(&path, line, rec, i, MODEL)?),
            None => None,
        };
        let log = match li {
            Some(i) => Some(field(&path, line, rec, i, LOG_TYPE)?),
            None => None,
        };
        if !matches(&filter.models, model.unwrap_or(""), false) {
            skipped.add(SKIP_MODEL, 1);
            continue;
        }
        if !matches(&filter.log_types, log.unwrap_or(""), true) {
            skipped.add(SKIP_LOG, 1);
            continue;
        }
        if output == 0 && !filter.keep_failed {
            skipped.add(SKIP_FAILED, 1);
            continue;
        }
        if input == 0 {
            zero_input += 1;
        }
        let t0 = *first.get_or_insert(t);
        let mut row = TraceRow::new(id, t - t0, input, output);
        id += 1;
        row.category = model.filter(|m| !m.is_empty()).map(str::to_string);
        row.source = Some("burstgpt".into());
        if sink.push(row, line)? == Flow::Stop {
            break;
        }
    }
    if zero_input > 0 {
        skipped.notes.push(format!(
            "{zero_input} kept rows have Request tokens = 0 (replay sends an empty prompt for them)"
        ));
    }
    Ok(skipped)
}
