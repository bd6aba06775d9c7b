//! LLMPerf's individual responses (`token_benchmark_ray.py --results-dir`,
//! `<model>_<in>_<out>_individual_responses.json`).
//!
//! A JSON list, one object per request: `ttft_s`, `end_to_end_latency_s`,
//! `inter_token_latency_s` (LLMPerf's: the sum of the gaps between content chunks, the first
//! one from the request's start, so the last chunk's time, divided by
//! `number_output_tokens`), `request_output_throughput_token_per_s`,
//! `number_input_tokens`, `number_output_tokens` (by re-tokenizing the text),
//! `number_total_tokens`, `error_code` (null when it succeeded) and `error_msg`. No
//! instants, no chunk times and no version. A failed request has zero latencies.

use std::path::Path;

use serde_json::Value;

use super::{Doc, Fields, Imported, Instants, Measured, PeerError, Spec, TOOL_COUNT, Tool, secs_to_ms};
use crate::analysis::Defs;
use crate::schema::Status;

pub static SPEC: Spec = Spec {
    name: "llmperf",
    written_for: "LLMPerf (ray-project/llmperf, token_benchmark_ray.py) individual_responses JSON",
    defs: Defs::Llmperf,
    detect,
    import,
};

fn detect(doc: &Doc) -> bool {
    let recs = doc.records();
    matches!(doc, Doc::Json(Value::Array(_)))
        && !recs.is_empty()
        && recs
            .first()
            .is_some_and(|r| r.get("end_to_end_latency_s").is_some() && r.get("number_output_tokens").is_some())
}

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let f = Fields::new(path, &SPEC);
    let mut out = Imported::new(Tool::Llmperf);
    for (i, r) in doc.records().into_iter().enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        let r = r.as_object().ok_or_else(|| f.bad(&at(""), "expected an object"))?;
        let num = |k: &str| -> Result<Option<f64>, PeerError> {
            match r.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| f.bad(&at(k), format!("expected a number, found {v}"))),
            }
        };
        let need = |k: &str| -> Result<f64, PeerError> { num(k)?.ok_or_else(|| f.missing(&at(k))) };
        if !r.contains_key("error_code") {
            return Err(f.missing(&at("error_code")));
        }
        let code = num("error_code")?;
        let failure = code.map(|c| {
            let msg = r.get("error_msg").and_then(Value::as_str).unwrap_or("").trim();
            let status = if (400.0..600.0).contains(&c) {
                Status::HttpError
            } else {
                Status::StreamError
            };
            let msg = if msg.is_empty() {
                format!("error code {c}")
            } else {
                msg.to_string()
            };
            (status, msg)
        });
        let (ttft, e2e) = if failure.is_none() {
            (
                Some(secs_to_ms(need("ttft_s")?)),
                Some(secs_to_ms(need("end_to_end_latency_s")?)),
            )
        } else {
            (None, None)
        };
        out.records.push(
            Measured {
                request_id: i as u64,
                ttft_ms: ttft,
                e2e_ms: e2e,
                input_tokens: num("number_input_tokens")?.unwrap_or(0.0).max(0.0) as u32,
                output_tokens: need("number_output_tokens")?.max(0.0) as u32,
                output_tokens_source: TOOL_COUNT,
                // LLMPerf records -1 when no response came
                http_status: code.filter(|c| (100.0..600.0).contains(c)).map(|c| c as u16),
                failure,
                ..Default::default()
            }
            .into_record(),
        );
    }
    out.instants = Instants::None;
    out.labels.api = "unknown".into();
    out.notes.insert(
        "inter_token_latency_s".into(),
        "LLMPerf's per-request value (last chunk's time / output tokens) is not kept; agg --defs llmperf \
         computes E2E / output tokens, which differs by the time after the last chunk"
            .into(),
    );
    Ok(out)
}
