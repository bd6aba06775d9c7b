//! NVIDIA AIPerf's per-request export, `profile_export.jsonl`.
//!
//! One JSON line per request: `metadata` (wall-clock `request_start_ns` and `request_end_ns`
//! from `time.time_ns()`, `benchmark_phase` warmup or profiling, `was_cancelled`, the
//! conversation's `turn_index`), `metrics` (each `{"value": ..., "unit": ...}`:
//! `time_to_first_token` ms, `request_latency` ms, `inter_chunk_latency` ms (a list, the gaps
//! between the content chunks after the first), `output_sequence_length` (AIPerf's own count,
//! by its tokenizer, which its ITL divides by), `input_sequence_length`, the server's
//! `usage_prompt_tokens`) and, for a failed request, `error` (`code`, `type`, `message`).
//! The version and the run's aggregate statistics are not in the lines: they are in the
//! `<stem>_aiperf.json` AIPerf writes beside it (`profile_export_aiperf.json`), which the
//! importer reads when it is there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Doc, Fields, Imported, Instants, Measured, PeerError, Spec, TOOL_COUNT, Tool, chunk_times_from_gaps};
use crate::analysis::Defs;
use crate::schema::Status;

pub static SPEC: Spec = Spec {
    name: "aiperf",
    written_for: "AIPerf 0.13 `aiperf profile` per-request export (profile_export.jsonl)",
    defs: Defs::Aiperf,
    detect,
    import,
};

/// The first line an object with `metadata.request_start_ns` and a `metrics` object (a later
/// line without them is a missing field, named).
fn detect(doc: &Doc) -> bool {
    let recs = doc.records();
    !recs.is_empty()
        && recs.first().is_some_and(|r| {
            r.get("metrics").is_some_and(Value::is_object)
                && r.get("metadata").and_then(|m| m.get("request_start_ns")).is_some()
        })
}

/// A metric's `value` (the metrics are `{"value": v, "unit": u}`).
fn metric<'v>(metrics: Option<&'v Map<String, Value>>, name: &str) -> Option<&'v Value> {
    metrics?.get(name)?.get("value").filter(|v| !v.is_null())
}

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let f = Fields::new(path, &SPEC);
    let mut out = Imported::new(Tool::Aiperf);
    for (i, rec) in doc.records().into_iter().enumerate() {
        let line = i + 1;
        let rec = rec
            .as_object()
            .ok_or_else(|| f.bad("(line)", format!("line {line}: expected a JSON object")))?;
        let meta = f
            .req(rec, "metadata")?
            .as_object()
            .ok_or_else(|| f.bad("metadata", format!("line {line}: expected an object")))?;
        let metrics = rec.get("metrics").and_then(Value::as_object);
        let num = |name: &str| -> Result<Option<f64>, PeerError> {
            match metric(metrics, name) {
                None => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                    f.bad(
                        &format!("metrics.{name}"),
                        format!("line {line}: expected a number, found {v}"),
                    )
                }),
            }
        };
        let count =
            |name: &str| -> Result<Option<u32>, PeerError> { Ok(num(name)?.map(|x| x.max(0.0).round() as u32)) };
        let start_ns = f.f64(meta, "request_start_ns")?;
        let end_ns = f.opt_f64(meta, "request_end_ns")?;
        let error = rec.get("error").and_then(Value::as_object);
        let cancelled = meta.get("was_cancelled").and_then(Value::as_bool).unwrap_or(false);
        let failure = if let Some(e) = error {
            let code = e.get("code").and_then(Value::as_u64);
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| Value::Object(e.clone()).to_string());
            let what = e
                .get("type")
                .and_then(Value::as_str)
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            let status = if cancelled {
                Status::Cancelled
            } else if code.is_some_and(|c| (400..600).contains(&c)) {
                Status::HttpError
            } else {
                Status::StreamError
            };
            Some((status, format!("{what}{msg}")))
        } else if cancelled {
            Some((
                Status::Cancelled,
                "cancelled by AIPerf (--request-cancellation-rate)".to_string(),
            ))
        } else {
            None
        };
        let http_status = error
            .and_then(|e| e.get("code"))
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .or(failure.is_none().then_some(200));
        // A successful request has its latency; a streamed one its first token.
        let e2e_ms = match num("request_latency")? {
            Some(v) => Some(v),
            None if failure.is_none() => return Err(f.missing(&format!("metrics.request_latency (line {line})"))),
            None => None,
        };
        let ttft_ms = num("time_to_first_token")?;
        let gaps: Vec<f64> = match metric(metrics, "inter_chunk_latency") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| f.bad("metrics.inter_chunk_latency", format!("line {line}: expected numbers")))
                })
                .collect::<Result<_, _>>()?,
            Some(v) => v.as_f64().into_iter().collect(),
        };
        let (output_tokens, source) = match (count("output_sequence_length")?, count("usage_completion_tokens")?) {
            (Some(n), _) => (n, TOOL_COUNT),
            (None, Some(n)) => (n, "usage"),
            (None, None) => (ttft_ms.map(|_| gaps.len() as u32 + 1).unwrap_or(0), "chunks"),
        };
        let sent_at_us = (start_ns / 1e3).round() as i64;
        let mut r = Measured {
            request_id: i as u64,
            sent_at_us: Some(sent_at_us),
            ttft_ms,
            chunk_times_ms: ttft_ms.map(|t| chunk_times_from_gaps(t, &gaps)).unwrap_or_default(),
            e2e_ms,
            input_tokens: count("input_sequence_length")?.unwrap_or(0),
            server_input_tokens: count("usage_prompt_tokens")?,
            output_tokens,
            output_tokens_source: source,
            failure,
            http_status,
            warmup: meta.get("benchmark_phase").and_then(Value::as_str) == Some("warmup"),
            ..Default::default()
        }
        .into_record();
        // its time to first output token (reasoning left out) and reasoning tokens
        let rtok = match count("reasoning_token_count")? {
            Some(n) => Some(n),
            None => count("usage_reasoning_tokens")?,
        };
        super::set_answer(&mut r, num("time_to_first_output_token")?, rtok);
        // AIPerf's own end instant (for a success, sent_at + request_latency to the ns)
        if let Some(e) = end_ns {
            r.done_at_us = Some((e / 1e3).round() as i64);
        }
        r.turn = meta
            .get("turn_index")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok());
        out.records.push(r);
    }
    out.instants = Instants::Absolute;
    out.labels.api = "unknown".into();
    if let Some(agg) = aggregate(path) {
        read_aggregate(&f, &agg, &mut out)?;
    } else {
        out.notes.insert(
            "aggregate".into(),
            "no <stem>_aiperf.json beside the file: version, settings and AIPerf's own statistics unknown".into(),
        );
    }
    Ok(out)
}

/// The aggregate file AIPerf writes beside `profile_export.jsonl`: `profile_export_aiperf.json`.
fn aggregate_path(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_string_lossy().to_string();
    Some(path.with_file_name(format!("{stem}_aiperf.json")))
}

fn aggregate(path: &Path) -> Option<(PathBuf, Map<String, Value>)> {
    let p = aggregate_path(path)?;
    let bytes = std::fs::read(&p).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(o) => Some((p, o)),
        _ => None,
    }
}

/// Version, settings and AIPerf's own statistics (`<metric>.<stat>`, in the metric's unit)
/// from the aggregate file.
fn read_aggregate(f: &Fields<'_>, (p, o): &(PathBuf, Map<String, Value>), out: &mut Imported) -> Result<(), PeerError> {
    out.notes.insert("aggregate".into(), p.display().to_string());
    out.version = f.opt_str(o, "aiperf_version");
    let mut reported = BTreeMap::new();
    for (k, v) in o {
        let Some(stats) = v.as_object() else { continue };
        if !stats.contains_key("unit") {
            continue;
        }
        for (s, x) in stats {
            if let Some(x) = x.as_f64() {
                reported.insert(format!("{k}.{s}"), x);
            }
        }
        if let Some(u) = stats.get("unit").and_then(Value::as_str) {
            out.notes.insert(format!("unit.{k}"), u.to_string());
        }
    }
    // AIPerf's throughputs divide by its profiling phase's span (start_time to end_time),
    // which runs past the last response; benchmark_duration (first start to last end) when
    // the span is not there
    let at = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok())
    };
    out.duration_s = match (at("start_time"), at("end_time")) {
        (Some(a), Some(b)) if b > a => Some((b - a).num_microseconds().unwrap_or(0) as f64 / 1e6),
        _ => reported.get("benchmark_duration.avg").copied(),
    };
    out.reported = reported;
    let cfg = o.get("input_config");
    let endpoint = cfg.and_then(|c| c.get("endpoint"));
    if let Some(t) = endpoint.and_then(|e| e.get("type")).and_then(Value::as_str) {
        out.labels.api = match t {
            "chat" => "chat".into(),
            "completions" => "completions".into(),
            other => other.into(),
        };
    }
    out.labels.model = cfg
        .and_then(|c| c.pointer("/models/items/0/name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    // the (last) profiling phase's load: closed loop (concurrency) or open loop (rate)
    let phase = cfg
        .and_then(|c| c.get("phases"))
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .rev()
                .find(|p| p.get("kind").and_then(Value::as_str) == Some("profiling"))
        });
    out.labels.concurrency = phase
        .and_then(|l| l.get("concurrency"))
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok());
    out.labels.rate_rps = phase.and_then(|l| l.get("rate")).and_then(Value::as_f64);
    for k in ["start_time", "end_time", "benchmark_id"] {
        if let Some(v) = f.opt_str(o, k) {
            out.notes.insert(k.into(), v);
        }
    }
    Ok(())
}
