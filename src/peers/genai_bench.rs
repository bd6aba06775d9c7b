//! genai-bench's per-run file (`<scenario>_<task>_num_concurrency_<n>_time_<t>s.json`).
//!
//! One JSON object: `aggregated_metrics` (the run's `scenario`, `num_concurrency`,
//! `run_duration` s, throughputs and `stats` per metric) and `individual_request_metrics`,
//! one object per request: `ttft`, `tpot`, `e2e_latency`, `output_latency` (all in the
//! file's `_time_unit`, seconds unless it says `ms`), `num_input_tokens`,
//! `num_output_tokens`, `error_code`, `error_message`. No instants and no chunk times. The
//! version is in the experiment's `experiment_metadata.json` (`benchmark_version`), read when
//! it is beside the file.

use std::path::Path;

use serde_json::Value;

use super::{Doc, Fields, Imported, Instants, Measured, PeerError, Spec, TOOL_COUNT, Tool};
use crate::analysis::Defs;
use crate::schema::Status;

pub static SPEC: Spec = Spec {
    name: "genai-bench",
    written_for: "genai-bench 0.0.5 `genai-bench benchmark` per-run JSON",
    defs: Defs::GenaiBench,
    detect,
    import,
};

fn detect(doc: &Doc) -> bool {
    matches!(doc, Doc::Json(_)) && doc.has_all(&["aggregated_metrics", "individual_request_metrics"])
}

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let f = Fields::new(path, &SPEC);
    let o = f.object(doc)?;
    let reqs = f.array(o, "individual_request_metrics")?;
    let agg = f
        .req(o, "aggregated_metrics")?
        .as_object()
        .ok_or_else(|| f.bad("aggregated_metrics", "expected an object"))?;
    // seconds unless the file says ms (`--metrics-time-unit`)
    let to_ms = match o.get("_time_unit").and_then(Value::as_str) {
        Some("ms") => 1.0,
        Some("s") | None => 1e3,
        Some(u) => return Err(f.bad("_time_unit", format!("unknown unit {u:?} (s or ms)"))),
    };
    let mut out = Imported::new(Tool::GenaiBench);
    for (i, r) in reqs.iter().enumerate() {
        let at = |field: &str| format!("individual_request_metrics[{i}].{field}");
        let r = r.as_object().ok_or_else(|| f.bad(&at(""), "expected an object"))?;
        let error_code = r.get("error_code").and_then(Value::as_u64);
        let failure = match (error_code, r.get("error_message").and_then(Value::as_str)) {
            (None, None) => None,
            (code, msg) => Some((
                if code.is_some_and(|c| (400..600).contains(&c)) {
                    Status::HttpError
                } else {
                    Status::StreamError
                },
                msg.map(str::to_string)
                    .unwrap_or_else(|| format!("error code {}", code.unwrap_or(0))),
            )),
        };
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
        let (ttft, e2e) = if failure.is_none() {
            (Some(need("ttft")? * to_ms), Some(need("e2e_latency")? * to_ms))
        } else {
            (None, None)
        };
        let output_tokens = match num("num_output_tokens")? {
            Some(n) => n.max(0.0) as u32,
            None if failure.is_none() => return Err(f.missing(&at("num_output_tokens"))),
            None => 0,
        };
        out.records.push(
            Measured {
                request_id: i as u64,
                ttft_ms: ttft,
                e2e_ms: e2e,
                input_tokens: num("num_input_tokens")?.unwrap_or(0.0).max(0.0) as u32,
                output_tokens,
                output_tokens_source: TOOL_COUNT,
                http_status: error_code.and_then(|c| u16::try_from(c).ok()),
                failure,
                ..Default::default()
            }
            .into_record(),
        );
    }
    out.instants = Instants::None;
    out.duration_s = f.opt_f64(agg, "run_duration")?;
    out.labels.concurrency = agg
        .get("num_concurrency")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok());
    out.labels.api = "unknown".into();
    out.reported = f.numbers(agg, |k| k != "batch_size");
    if let Some(stats) = agg.get("stats").and_then(Value::as_object) {
        for (metric, s) in stats {
            for (stat, x) in s.as_object().into_iter().flatten() {
                if let Some(x) = x.as_f64() {
                    out.reported.insert(format!("stats.{metric}.{stat}"), x);
                }
            }
        }
    }
    out.notes
        .insert("time_unit".into(), if to_ms == 1.0 { "ms" } else { "s" }.into());
    for k in ["scenario", "iteration_type"] {
        if let Some(v) = f.opt_str(agg, k) {
            out.notes.insert(k.into(), v);
        }
    }
    experiment_metadata(path, &mut out);
    Ok(out)
}

/// Version, model and API from the experiment's `experiment_metadata.json`, when it is beside
/// the file.
fn experiment_metadata(path: &Path, out: &mut Imported) {
    let p = path.with_file_name("experiment_metadata.json");
    let Some(m) = std::fs::read(&p)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        out.notes.insert(
            "metadata".into(),
            "no experiment_metadata.json beside the file: version unknown".into(),
        );
        return;
    };
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    out.version = s("benchmark_version");
    out.labels.model = s("api_model_name").or_else(|| s("model"));
    out.labels.engine = s("server_engine");
    // genai-bench's openai backend sends text-to-text as chat completions
    if s("api_backend").as_deref() == Some("openai") && s("task").as_deref() == Some("text-to-text") {
        out.labels.api = "chat".into();
    }
    out.notes.insert("metadata".into(), p.display().to_string());
}
