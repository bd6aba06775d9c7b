//! vLLM `bench serve --save-result --save-detailed` JSON.
//!
//! One JSON object per run: the run's settings (`backend`, `model_id`, `request_rate`,
//! `max_concurrency`, `date`), its summary (`duration`, `request_throughput`,
//! `median_ttft_ms`, `p99_itl_ms`, ...) and, with `--save-detailed`, one list entry per
//! request: `input_lens`, `output_lens`, `ttfts` (s), `itls` (s, the gaps after the first
//! chunk), `errors`, and since 0.11 `latencies` (s) and `start_times` (the client's
//! `time.perf_counter()` when the request was sent, after the `--max-concurrency` semaphore).
//! The file does not say which requests succeeded: a request with an error message, or with
//! no output and no first token, failed.

use std::path::Path;

use serde_json::Value;

use super::{
    Doc, Fields, Imported, Instants, Measured, PeerError, Spec, TOOL_COUNT, Tool, chunk_times_from_gaps, secs_to_ms,
};
use crate::analysis::Defs;
use crate::schema::Status;

pub static SPEC: Spec = Spec {
    name: "vllm",
    written_for: "vLLM 0.32 `vllm bench serve --save-result --save-detailed` JSON",
    defs: Defs::Vllm,
    detect,
    import,
};

/// Fields only `bench serve` writes (SGLang's `bench_serving` shares the per-request lists
/// but calls its E2E `e2e_latency`).
fn detect(doc: &Doc) -> bool {
    matches!(doc, Doc::Json(_)) && doc.has_all(&["model_id", "num_prompts"]) && !doc.has_all(&["median_e2e_latency_ms"])
}

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let mut f = Fields::new(path, &SPEC);
    let o = f.object(doc)?;
    f.hint = "; per-request results need `vllm bench serve --save-result --save-detailed`";
    let duration = f.opt_f64(o, "duration")?;
    let mut out = Imported::new(Tool::Vllm);
    out.records = per_request(&f, o, duration)?;
    out.duration_s = duration;
    out.instants = if sent_at_us_known(&out) {
        Instants::Relative
    } else {
        Instants::None
    };
    if out.instants == Instants::Relative {
        out.anchor = Some(
            "vLLM's start_times (time.perf_counter() after its concurrency semaphore) placed so the \
             run starts at the file's date stamp (written at the run's end, local time read as UTC) \
             less its duration: gaps between requests are vLLM's, the wall-clock placement is not"
                .into(),
        );
    }
    let backend = f.opt_str(o, "backend").or_else(|| f.opt_str(o, "endpoint_type"));
    out.labels.api = match backend.as_deref() {
        Some("openai-chat") => "chat".into(),
        Some("openai") | Some("vllm") => "completions".into(),
        Some(b) => b.into(),
        None => "unknown".into(),
    };
    out.labels.model = f.opt_str(o, "model_id");
    out.labels.concurrency = f.opt_f64(o, "max_concurrency")?.map(|c| c as u32);
    // "inf" (all at once) is a string; a number is Poisson (or gamma with burstiness) arrivals
    out.labels.rate_rps = o.get("request_rate").and_then(Value::as_f64);
    out.reported = f.numbers(o, |k| {
        k.ends_with("_ms")
            || k.ends_with("throughput")
            || k.ends_with("goodput")
            || k.starts_with("total_")
            || [
                "duration",
                "completed",
                "failed",
                "num_prompts",
                "max_concurrent_requests",
            ]
            .contains(&k)
            || k == "max_output_tokens_per_s"
    });
    for k in ["date", "backend", "label", "tokenizer_id", "burstiness", "request_rate"] {
        if let Some(v) = f.opt_str(o, k) {
            out.notes.insert(k.into(), v);
        }
    }
    Ok(out)
}

/// The per-request lists both vLLM's and SGLang's files hold (`input_lens`, `output_lens`,
/// `ttfts`, `itls`, `errors`; vLLM's also `latencies` and `start_times`), one row each.
pub(super) fn per_request(
    f: &Fields<'_>,
    o: &serde_json::Map<String, Value>,
    duration: Option<f64>,
) -> Result<Vec<crate::schema::Record>, PeerError> {
    let input_lens = f.array(o, "input_lens")?;
    let output_lens = f.array(o, "output_lens")?;
    let ttfts = f.array(o, "ttfts")?;
    let itls = f.array(o, "itls")?;
    let errors = f.array(o, "errors")?;
    let latencies = f.opt_array(o, "latencies")?;
    let starts = f.opt_array(o, "start_times")?;
    // the wait for the --max-concurrency semaphore; with a finite request rate, start less
    // queue is the request's arrival in the schedule (with rate inf all arrive at once)
    let open_loop = o
        .get("request_rate")
        .and_then(Value::as_f64)
        .is_some_and(f64::is_finite);
    let queues = f.opt_array(o, "queue_times")?.filter(|_| open_loop);
    let n = input_lens.len();
    for (name, l) in [
        ("output_lens", output_lens),
        ("ttfts", ttfts),
        ("itls", itls),
        ("errors", errors),
    ]
    .into_iter()
    .chain(latencies.map(|l| ("latencies", l)))
    .chain(starts.map(|l| ("start_times", l)))
    {
        if l.len() != n {
            return Err(f.bad(name, format!("{} entries, but input_lens has {n}", l.len())));
        }
    }
    // Relative instants: perf_counter readings, placed so the run starts at the file's `date`
    // stamp less its duration (the stamp is written when the run ends, in the writer's local
    // time, read here as UTC).
    let anchor_us = match (starts, f.opt_str(o, "date"), duration) {
        (Some(_), Some(d), Some(dur)) => chrono::NaiveDateTime::parse_from_str(&d, "%Y%m%d-%H%M%S")
            .ok()
            .map(|t| t.and_utc().timestamp_micros() - (dur * 1e6).round() as i64),
        _ => None,
    };
    let t0 = starts.and_then(|s| s.iter().filter_map(Value::as_f64).reduce(f64::min));
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let output_tokens = f.elem_u32(output_lens, "output_lens", i)?.unwrap_or(0);
        let ttft_s = f.elem_f64(ttfts, "ttfts", i)?;
        let gaps: Vec<f64> = f.elem_f64s(itls, "itls", i)?.into_iter().map(secs_to_ms).collect();
        let error = errors.get(i).and_then(Value::as_str).unwrap_or("").trim().to_string();
        let never_answered = output_tokens == 0 && gaps.is_empty() && ttft_s.unwrap_or(0.0) == 0.0;
        let failure = if !error.is_empty() {
            // a traceback is the client's exception; otherwise the HTTP reason phrase
            let status = if error.contains("Traceback") {
                Status::StreamError
            } else {
                Status::HttpError
            };
            Some((status, error))
        } else if never_answered {
            Some((
                Status::StreamError,
                format!("{} recorded no output and no first token", f.spec.name),
            ))
        } else {
            None
        };
        let ttft_ms = ttft_s.map(secs_to_ms);
        let sent_at_us = match (anchor_us, t0, starts) {
            (Some(a), Some(t0), Some(s)) => f
                .elem_f64(s, "start_times", i)?
                .map(|t| a + ((t - t0) * 1e6).round() as i64),
            _ => None,
        };
        let scheduled_at_us = match (sent_at_us, queues) {
            (Some(s), Some(q)) => f.elem_f64(q, "queue_times", i)?.map(|q| s - (q * 1e6).round() as i64),
            _ => None,
        };
        rows.push(
            Measured {
                request_id: i as u64,
                scheduled_at_us,
                sent_at_us,
                ttft_ms,
                chunk_times_ms: ttft_ms.map(|t| chunk_times_from_gaps(t, &gaps)).unwrap_or_default(),
                e2e_ms: match latencies {
                    Some(l) => f.elem_f64(l, "latencies", i)?.map(secs_to_ms),
                    None => None,
                },
                input_tokens: f.elem_u32(input_lens, "input_lens", i)?.unwrap_or(0),
                output_tokens,
                output_tokens_source: TOOL_COUNT,
                failure,
                ..Default::default()
            }
            .into_record(),
        );
    }
    Ok(rows)
}

pub(super) fn sent_at_us_known(i: &Imported) -> bool {
    !i.records.is_empty() && i.records.iter().all(|r| r.sent_at_us.is_some())
}
