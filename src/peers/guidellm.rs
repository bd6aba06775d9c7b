//! GuideLLM's benchmarks report (`guidellm run --output kind=json`, `benchmarks.json`).
//!
//! One JSON object: `metadata.guidellm_version`, the run's `config`, and `benchmarks`, one per
//! strategy run (a sweep has several), each with its `config.strategy`, `duration`, its own
//! statistics under `metrics` (`time_to_first_token_ms`, `time_per_output_token_ms`,
//! `inter_token_latency_ms`, `request_latency`, ... each with `successful`, `errored`,
//! `incomplete` and `total` statistics) and its requests under `requests.successful`,
//! `requests.errored` and `requests.incomplete` (all of them unless `sample_size` was set).
//! A request has wall-clock instants (epoch seconds) under `info.timings`: `request_start`,
//! `first_token_iteration`, `last_token_iteration`, `request_end`; its token counts
//! `prompt_tokens` and `output_tokens` (the server's usage when it gave one); no per-chunk
//! times, only the first and the last, so `chunk_times_ms` stays empty. E2E is the last
//! token's arrival (GuideLLM's TPOT and ITL use it); `done_at` is GuideLLM's `request_end`.

use std::path::Path;

use serde_json::{Map, Value};

use super::{
    Doc, Fields, Imported, Instants, Measured, PeerError, Spec, TOOL_COUNT, Tool, epoch_secs_to_us, secs_to_ms,
};
use crate::analysis::Defs;
use crate::schema::Status;

pub static SPEC: Spec = Spec {
    name: "guidellm",
    written_for: "GuideLLM 0.8 `guidellm run --output kind=json` benchmarks report",
    defs: Defs::Guidellm,
    detect,
    import,
};

fn detect(doc: &Doc) -> bool {
    matches!(doc, Doc::Json(_))
        && doc.object().is_some_and(|o| {
            o.get("benchmarks").is_some_and(Value::is_array)
                && (o.get("metadata").and_then(|m| m.get("guidellm_version")).is_some()
                    || o.get("benchmarks")
                        .and_then(|b| b.pointer("/0/type_"))
                        .and_then(Value::as_str)
                        == Some("generative_benchmark"))
        })
}

/// The statistics kept from each benchmark's `metrics` (as `<metric>.successful.<stat>`).
const REPORTED: &[&str] = &[
    "time_to_first_token_ms",
    "time_per_output_token_ms",
    "inter_token_latency_ms",
    "request_latency",
    "requests_per_second",
    "output_tokens_per_second",
    "tokens_per_second",
    "output_token_count",
    "prompt_token_count",
];
const STATS: &[&str] = &["mean", "median", "min", "max"];

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let f = Fields::new(path, &SPEC);
    let o = f.object(doc)?;
    let benchmarks = f.array(o, "benchmarks")?;
    let mut out = Imported::new(Tool::Guidellm);
    out.version = o
        .get("metadata")
        .and_then(|m| m.get("guidellm_version"))
        .and_then(Value::as_str)
        .map(str::to_string);
    out.instants = Instants::Absolute;
    let backend = o.get("config").and_then(|c| c.pointer("/spec/backend"));
    out.labels.model = backend
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str)
        .map(str::to_string);
    out.labels.api = match backend.and_then(|b| b.get("request_format")).and_then(Value::as_str) {
        Some(r) if r.contains("chat") => "chat".into(),
        Some(r) if r.contains("completions") => "completions".into(),
        Some(r) => r.into(),
        None => "unknown".into(),
    };
    let several = benchmarks.len() > 1;
    let mut duration = 0.0;
    for (b, bench) in benchmarks.iter().enumerate() {
        let bench = bench
            .as_object()
            .ok_or_else(|| f.bad("benchmarks", format!("entry {b}: expected an object")))?;
        let strategy = bench.get("config").and_then(|c| c.get("strategy"));
        let name = strategy_name(strategy).unwrap_or_else(|| format!("benchmark {b}"));
        if !several {
            out.labels.concurrency = strategy
                .and_then(|s| s.get("streams").or_else(|| s.get("max_concurrency")))
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok());
            out.labels.rate_rps = strategy.and_then(|s| s.get("rate")).and_then(Value::as_f64);
        }
        duration += f.opt_f64(bench, "duration")?.unwrap_or(0.0);
        let requests = f
            .req(bench, "requests")?
            .as_object()
            .ok_or_else(|| f.bad("requests", "expected an object"))?;
        for (group, failed) in [
            ("successful", None),
            ("errored", Some(Status::HttpError)),
            ("incomplete", Some(Status::Cancelled)),
        ] {
            let Some(list) = f.opt_array(requests, group)? else {
                continue;
            };
            for (i, req) in list.iter().enumerate() {
                let at = format!("requests.{group}[{i}] of benchmark {b}");
                let req = req.as_object().ok_or_else(|| f.bad(&at, "expected an object"))?;
                let mut r = request(&f, req, &at, failed)?;
                r.request_id = out.records.len() as u64;
                if several {
                    // a sweep: agg groups by category, one group per strategy
                    r.category = Some(name.clone());
                }
                out.records.push(r);
            }
        }
        if let Some(m) = bench.get("metrics").and_then(Value::as_object) {
            for metric in REPORTED {
                for stat in STATS {
                    let key = format!("{metric}.successful.{stat}");
                    if let Some(x) = m
                        .get(*metric)
                        .and_then(|v| v.get("successful"))
                        .and_then(|v| v.get(*stat))
                        .and_then(Value::as_f64)
                    {
                        let key = if several { format!("{name}: {key}") } else { key };
                        out.reported.insert(key, x);
                    }
                }
            }
        }
    }
    if duration > 0.0 {
        out.duration_s = Some(duration);
    }
    if several {
        out.notes.insert(
            "benchmarks".into(),
            "several strategies: each row's category names its benchmark's".into(),
        );
    }
    Ok(out)
}

/// `concurrent@4`, `constant@2.5`, `synchronous`: GuideLLM's own way of naming a strategy.
fn strategy_name(s: Option<&Value>) -> Option<String> {
    let s = s?;
    let t = s.get("type_").and_then(Value::as_str)?;
    let at = s.get("streams").or_else(|| s.get("rate")).filter(|v| !v.is_null());
    Some(match at {
        Some(v) => format!("{t}@{v}"),
        None => t.to_string(),
    })
}

/// One request's row; `failed` is the status of its group (errored, incomplete).
fn request(
    f: &Fields<'_>,
    req: &Map<String, Value>,
    at: &str,
    failed: Option<Status>,
) -> Result<crate::schema::Record, PeerError> {
    let missing = |field: &str| f.missing(&format!("{field} ({at})"));
    let timings = req
        .get("info")
        .and_then(|i| i.get("timings"))
        .and_then(Value::as_object)
        .ok_or_else(|| missing("info.timings"))?;
    let t = |k: &str| timings.get(k).and_then(Value::as_f64);
    let start = t("request_start").or_else(|| req.get("request_start_time").and_then(Value::as_f64));
    let first = t("first_token_iteration");
    let last = t("last_token_iteration");
    let output_tokens = req.get("output_tokens").and_then(Value::as_u64).map(|n| n as u32);
    let (ttft_ms, e2e_ms) = if failed.is_none() {
        let start = start.ok_or_else(|| missing("info.timings.request_start"))?;
        let first = first.ok_or_else(|| missing("info.timings.first_token_iteration"))?;
        let last = last.ok_or_else(|| missing("info.timings.last_token_iteration"))?;
        output_tokens.ok_or_else(|| missing("output_tokens"))?;
        // GuideLLM's own TTFT where it wrote one (the epoch-second instants resolve 0.24 µs)
        let ttft = req
            .get("time_to_first_token_ms")
            .and_then(Value::as_f64)
            .unwrap_or(secs_to_ms(first - start));
        (Some(ttft), Some(secs_to_ms(last - start)))
    } else {
        (None, None)
    };
    let failure = failed.map(|s| {
        let msg = req
            .get("info")
            .and_then(|i| i.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                if s == Status::Cancelled {
                    "incomplete: cancelled when GuideLLM's benchmark ended".into()
                } else {
                    "errored (GuideLLM gave no message)".into()
                }
            });
        // GuideLLM keeps the exception's text; a status code in it makes an HTTP error
        let status = if s == Status::HttpError && !msg.contains("status") && !msg.contains("HTTP") {
            Status::StreamError
        } else {
            s
        };
        (status, msg)
    });
    let mut r = Measured {
        sent_at_us: start.map(epoch_secs_to_us),
        ttft_ms,
        e2e_ms,
        input_tokens: req.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0) as u32,
        requested_output_tokens: requested_max_tokens(req).unwrap_or(0),
        output_tokens: output_tokens.unwrap_or(0),
        output_tokens_source: TOOL_COUNT,
        failure,
        ..Default::default()
    }
    .into_record();
    // GuideLLM's time to first output token (reasoning left out)
    super::set_answer(
        &mut r,
        req.get("time_to_first_output_token_ms").and_then(Value::as_f64),
        None,
    );
    if let Some(end) = t("request_end").or_else(|| req.get("request_end_time").and_then(Value::as_f64)) {
        r.done_at_us = Some(epoch_secs_to_us(end));
    }
    Ok(r)
}

/// max_tokens (or max_completion_tokens) of the request GuideLLM sent (`request_args`, a JSON
/// string).
fn requested_max_tokens(req: &Map<String, Value>) -> Option<u32> {
    let args: Value = serde_json::from_str(req.get("request_args")?.as_str()?).ok()?;
    let body = args.get("body")?;
    body.get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}
