//! inference-perf's per-request report (`per_request_lifecycle_metrics.json`, written with
//! `report.request_lifecycle.per_request: true`).
//!
//! A JSON list, one object per request: `start_time` and `end_time` (readings of a monotonic
//! clock in seconds, not wall-clock times), the raw `request` and `response`, `info` with
//! `input_tokens` and `response_metrics` (`output_tokens`, the tool's count by its
//! tokenizer; `server_usage`, the server's; `chunk_times`, the arrival of every streamed
//! chunk; `output_token_times`, one instant per counted token), and `error` (null, or
//! `error_type` and `error_msg`). TTFT is the first token's time less `start_time`; E2E the
//! last chunk's (inference-perf's TPOT uses it; its `request_latency` runs to `end_time`).
//! Neither the version nor the run's duration is in the file; the duration is read from
//! `summary_lifecycle_metrics.json` (`benchmark_time_seconds`) when it is beside the file.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Doc, Fields, Imported, Instants, Measured, PeerError, Spec, TOOL_COUNT, Tool, secs_to_ms};
use crate::analysis::Defs;
use crate::schema::Status;

pub static SPEC: Spec = Spec {
    name: "inference-perf",
    written_for: "inference-perf 0.7 per-request report (per_request_lifecycle_metrics.json)",
    defs: Defs::InferencePerf,
    detect,
    import,
};

fn detect(doc: &Doc) -> bool {
    let recs = doc.records();
    matches!(doc, Doc::Json(Value::Array(_)))
        && !recs.is_empty()
        && recs.first().is_some_and(|r| {
            r.get("start_time").is_some() && r.get("end_time").is_some() && r.get("info").is_some_and(Value::is_object)
        })
}

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let f = Fields::new(path, &SPEC);
    let mut out = Imported::new(Tool::InferencePerf);
    for (i, r) in doc.records().into_iter().enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        let r = r.as_object().ok_or_else(|| f.bad(&at(""), "expected an object"))?;
        out.records.push(request(&f, r, i, &at)?);
    }
    out.instants = Instants::None;
    out.anchor = None;
    out.labels.api = "unknown".into();
    out.notes.insert(
        "clock".into(),
        "start_time/end_time are monotonic-clock readings: latencies kept, wall-clock instants unknown".into(),
    );
    summary(path, &mut out);
    Ok(out)
}

fn request(
    f: &Fields<'_>,
    r: &Map<String, Value>,
    i: usize,
    at: &dyn Fn(&str) -> String,
) -> Result<crate::schema::Record, PeerError> {
    let num = |o: &Map<String, Value>, k: &str, name: &str| -> Result<Option<f64>, PeerError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| f.bad(&at(name), format!("expected a number, found {v}"))),
        }
    };
    let start = num(r, "start_time", "start_time")?.ok_or_else(|| f.missing(&at("start_time")))?;
    let end = num(r, "end_time", "end_time")?;
    let info = f
        .req(r, "info")?
        .as_object()
        .ok_or_else(|| f.bad(&at("info"), "expected an object"))?;
    let failure = match r.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::Object(e)) => {
            let kind = e.get("error_type").and_then(Value::as_str).unwrap_or("error");
            let msg = e.get("error_msg").and_then(Value::as_str).unwrap_or("");
            // an HTTP error's message carries its status; anything else is the client's exception
            let status = if msg.contains("status") || kind.contains("HTTP") || kind.contains("Response") {
                Status::HttpError
            } else {
                Status::StreamError
            };
            Some((status, format!("{kind}: {msg}")))
        }
        Some(v) => Some((
            Status::StreamError,
            v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
        )),
    };
    let rm = info.get("response_metrics").and_then(Value::as_object);
    let list = |k: &str| -> Result<Vec<f64>, PeerError> {
        match rm.and_then(|m| m.get(k)) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| f.bad(&at(&format!("info.response_metrics.{k}")), "expected numbers"))
                })
                .collect(),
            Some(_) => Err(f.bad(&at(&format!("info.response_metrics.{k}")), "expected a list")),
        }
    };
    let chunks: Vec<f64> = list("chunk_times")?
        .into_iter()
        .map(|t| secs_to_ms(t - start))
        .collect();
    let token_times = list("output_token_times")?;
    let ok = failure.is_none();
    let output_tokens = match rm.and_then(|m| m.get("output_tokens")).and_then(Value::as_u64) {
        Some(n) => n as u32,
        None if ok => return Err(f.missing(&at("info.response_metrics.output_tokens"))),
        None => 0,
    };
    // streamed: first token and last chunk; not streamed: the whole response at end_time
    let ttft_ms = token_times
        .first()
        .map(|t| secs_to_ms(t - start))
        .or_else(|| chunks.first().copied());
    let e2e_ms = if chunks.is_empty() {
        end.map(|e| secs_to_ms(e - start))
    } else {
        None
    };
    if ok && ttft_ms.is_none() && e2e_ms.is_none() {
        return Err(f.missing(&at("info.response_metrics.chunk_times")));
    }
    let usage = rm.and_then(|m| m.get("server_usage"));
    let input = info
        .get("input_tokens")
        .or_else(|| {
            info.get("request_metrics")
                .and_then(|m| m.pointer("/text/input_tokens"))
        })
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    Ok(Measured {
        request_id: i as u64,
        ttft_ms,
        chunk_times_ms: chunks,
        e2e_ms,
        input_tokens: input,
        server_input_tokens: usage
            .and_then(|u| u.get("prompt_tokens"))
            .and_then(Value::as_u64)
            .map(|n| n as u32),
        requested_output_tokens: requested_max_tokens(r).unwrap_or(0),
        output_tokens,
        output_tokens_source: TOOL_COUNT,
        failure,
        ..Default::default()
    }
    .into_record())
}

/// max_tokens of the request inference-perf sent (`request`, a JSON string).
fn requested_max_tokens(r: &Map<String, Value>) -> Option<u32> {
    let body: Value = serde_json::from_str(r.get("request")?.as_str()?).ok()?;
    body.get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// The run's duration and inference-perf's own statistics from
/// `summary_lifecycle_metrics.json` beside the file.
fn summary(path: &Path, out: &mut Imported) {
    let p = path.with_file_name("summary_lifecycle_metrics.json");
    let Some(s) = std::fs::read(&p)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        out.notes.insert(
            "summary".into(),
            "no summary_lifecycle_metrics.json beside the file: run duration unknown".into(),
        );
        return;
    };
    out.duration_s = s.get("benchmark_time_seconds").and_then(Value::as_f64);
    if let Some(lat) = s.pointer("/successes/latency").and_then(Value::as_object) {
        for (metric, stats) in lat {
            for stat in ["mean", "median", "p99"] {
                if let Some(x) = stats.get(stat).and_then(Value::as_f64) {
                    out.reported.insert(format!("successes.latency.{metric}.{stat}"), x);
                }
            }
        }
    }
    if let Some(tp) = s.pointer("/successes/throughput").and_then(Value::as_object) {
        for (k, v) in tp {
            if let Some(x) = v.as_f64() {
                out.reported.insert(format!("successes.throughput.{k}"), x);
            }
        }
    }
    out.notes.insert("summary".into(), p.display().to_string());
}
