//! SGLang `python -m sglang.bench_serving --output-file F --output-details` JSON lines.
//!
//! bench_serving appends one JSON object per run to its output file: the run's settings
//! (`backend`, `dataset_name`, `request_rate`, `max_concurrency`, ...), its summary
//! (`duration`, `request_throughput`, `median_ttft_ms`, `median_e2e_latency_ms`, ...) and,
//! with `--output-details`, one list entry per request: `input_lens`, `output_lens`, `ttfts`
//! (s), `itls` (s, gaps after the first chunk), `generated_texts`, `errors`. The newest run
//! (the last line) is imported. No per-request instants or end-to-end latencies are saved:
//! E2E is the last chunk's time (TTFT plus the gaps), and sent_at is null.

use std::path::Path;

use super::{Doc, Fields, Imported, Instants, PeerError, Spec, Tool};
use crate::analysis::Defs;

pub static SPEC: Spec = Spec {
    name: "sglang",
    written_for: "SGLang 0.5 `python -m sglang.bench_serving --output-file F --output-details` JSON lines",
    defs: Defs::Sglang,
    detect,
    import,
};

/// SGLang's own summary keys (vLLM writes `mean_e2el_ms`, SGLang `mean_e2e_latency_ms`).
fn detect(doc: &Doc) -> bool {
    doc.has_all(&["backend", "median_e2e_latency_ms", "completed"])
}

fn import(doc: &Doc, path: &Path) -> Result<Imported, PeerError> {
    let mut f = Fields::new(path, &SPEC);
    let o = f.object(doc)?;
    f.hint = "; per-request results need `bench_serving --output-details`";
    let duration = f.opt_f64(o, "duration")?;
    let mut out = Imported::new(Tool::Sglang);
    out.records = super::vllm::per_request(&f, o, duration)?;
    out.duration_s = duration;
    out.instants = Instants::None;
    let backend = f.opt_str(o, "backend");
    out.labels.api = match backend.as_deref() {
        Some("sglang") | Some("sglang-native") => "sglang".into(),
        Some(b) if b.ends_with("-chat") => "chat".into(),
        Some("sglang-oai") | Some("vllm") | Some("lmdeploy") => "completions".into(),
        Some(b) => b.into(),
        None => "unknown".into(),
    };
    out.labels.model = f.opt_str(o, "model_id").or_else(|| f.opt_str(o, "tokenizer_id"));
    out.labels.concurrency = f.opt_f64(o, "max_concurrency")?.map(|c| c as u32);
    out.labels.rate_rps = o
        .get("request_rate")
        .and_then(serde_json::Value::as_f64)
        .filter(|r| r.is_finite());
    out.reported = f.numbers(o, |k| {
        k.ends_with("_ms")
            || k.ends_with("throughput")
            || k.starts_with("total_")
            || ["duration", "completed", "concurrency"].contains(&k)
    });
    for k in [
        "backend",
        "dataset_name",
        "request_rate",
        "random_input_len",
        "random_output_len",
    ] {
        if let Some(v) = f.opt_str(o, k) {
            out.notes.insert(k.into(), v);
        }
    }
    if let Doc::Lines(l) = doc
        && l.len() > 1
    {
        out.notes.insert(
            "runs_in_file".into(),
            format!("{} (the last, newest, was imported)", l.len()),
        );
    }
    Ok(out)
}
