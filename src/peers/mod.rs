//! Other benchmark tools' result files, read into the requests contract (`import`).
//!
//! Each peer tool has one file here with its [`Spec`]: the tool's name, the version its format
//! was read from, a loose test of a file's shape (`detect`) and the importer (`import`), which
//! turns the file's per-request records into [`Record`]s and keeps every timing the file has:
//! chunk gaps become `chunk_times_ms`, absolute instants are kept where the file has them and
//! left null where it does not. The tool's own summary numbers, its run duration and its
//! definitions ([`Defs`]) travel with the rows as provenance. Unknown or newer fields are
//! ignored; a missing required field is a [`PeerError::Missing`] naming the field, the file and
//! the version the importer was written for.
//!
//! Adding a tool: a file `src/peers/<tool>.rs` with `pub static SPEC: Spec`, its `pub mod`
//! line, its [`Tool`] variant and its arm in [`Tool::spec`] (one line each, marked below).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::analysis::Defs;
use crate::schema::{Record, RunLabels, Status};

// One line per tool (keep the order of `Tool`).
pub mod aiperf;
pub mod genai_bench;
pub mod guidellm;
pub mod inference_perf;
pub mod llmperf;
pub mod sglang;
pub mod vllm;

/// The tools whose files `import` reads; `--tool` takes these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Tool {
    /// vLLM `bench serve --save-result --save-detailed` JSON
    Vllm,
    /// SGLang `bench_serving --output-file F --output-details` JSON lines
    Sglang,
    /// AIPerf `profile_export.jsonl` (per-request records)
    Aiperf,
    /// GuideLLM `benchmarks.json` report
    Guidellm,
    /// genai-bench per-run JSON (`individual_request_metrics`)
    GenaiBench,
    /// inference-perf `per_request_lifecycle_metrics.json`
    InferencePerf,
    /// LLMPerf `*_individual_responses.json`
    Llmperf,
}

impl Tool {
    /// Every registered tool, in the order auto-detection tries them.
    pub const ALL: &'static [Tool] = &[
        Tool::Vllm,
        Tool::Sglang,
        Tool::Aiperf,
        Tool::Guidellm,
        Tool::GenaiBench,
        Tool::InferencePerf,
        Tool::Llmperf,
    ];

    /// The tool's importer and what it knows of the tool.
    pub fn spec(self) -> &'static Spec {
        match self {
            Tool::Vllm => &vllm::SPEC,
            Tool::Sglang => &sglang::SPEC,
            Tool::Aiperf => &aiperf::SPEC,
            Tool::Guidellm => &guidellm::SPEC,
            Tool::GenaiBench => &genai_bench::SPEC,
            Tool::InferencePerf => &inference_perf::SPEC,
            Tool::Llmperf => &llmperf::SPEC,
        }
    }

    /// The tool's name as `--tool`, `--defs` and the `source_tool` column spell it.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The metric definitions the tool's numbers follow.
    pub fn defs(self) -> Defs {
        self.spec().defs
    }

    /// The tool named `s` (as [`Tool::name`] spells it).
    pub fn parse(s: &str) -> Option<Tool> {
        Tool::ALL.iter().copied().find(|t| t.name() == s)
    }
}

/// One tool's importer and what it knows of the tool.
pub struct Spec {
    /// The tool's name (`vllm`, `genai-bench`, ...): `--tool`, the `source_tool` column.
    pub name: &'static str,
    /// The tool and version whose files the importer was written from, e.g. "vLLM 0.32
    /// `bench serve --save-result --save-detailed`": named in every error.
    pub written_for: &'static str,
    /// The definitions its numbers follow (`agg --defs`).
    pub defs: Defs,
    /// Whether a file has this tool's shape (loose: a few signature fields; the importer
    /// then names any required field that is missing).
    pub detect: fn(&Doc) -> bool,
    /// The file's rows and provenance.
    pub import: fn(&Doc, &Path) -> Result<Imported, PeerError>,
}

/// What went wrong reading another tool's file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON or JSON lines ({msg}); import reads the result files the tools write, whole")]
    NotParsable { path: PathBuf, msg: String },
    #[error("{path}: the {tool} file lacks the required field `{field}` (the importer reads {written_for}){hint}")]
    Missing {
        path: PathBuf,
        tool: &'static str,
        field: String,
        written_for: &'static str,
        /// How to get a file that has it, with a leading "; " (or empty).
        hint: String,
    },
    #[error("{path}: field `{field}` of the {tool} file: {msg} (the importer reads {written_for})")]
    Bad {
        path: PathBuf,
        tool: &'static str,
        field: String,
        written_for: &'static str,
        msg: String,
    },
    #[error("{path}: not a result file of {tool} ({written_for}){looks}; name the right tool with --tool")]
    WrongTool {
        path: PathBuf,
        tool: &'static str,
        written_for: &'static str,
        /// ", it looks like a X file" when another importer recognises it (or empty).
        looks: String,
    },
    #[error("{path}: no importer recognises this file; name its tool with --tool ({known})")]
    Unknown { path: PathBuf, known: String },
    #[error("{path}: the file looks like a file of each of {tools}; name its tool with --tool")]
    Ambiguous { path: PathBuf, tools: String },
}

/// A file as read once: a JSON document, JSON lines, or other text (CSV, YAML) for importers
/// that parse it themselves.
#[derive(Debug, Clone)]
pub enum Doc {
    Json(Value),
    Lines(Vec<Value>),
    Text(String),
}

impl Doc {
    /// Parse `bytes`: one JSON document; else JSON lines (every non-empty line a JSON value);
    /// else UTF-8 text.
    /// Python's `json.dumps` writes `NaN`, `Infinity` and `-Infinity` for such floats (a
    /// `--request-rate inf`, the mean of nothing): they are read as null.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Doc, PeerError> {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return Ok(Doc::Json(v));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| PeerError::NotParsable {
            path: path.into(),
            msg: format!("not UTF-8 text: {e}"),
        })?;
        let text = python_floats_to_null(text);
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            return Ok(Doc::Json(v));
        }
        let lines: Result<Vec<Value>, _> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str::<Value>)
            .collect();
        match lines {
            Ok(v) if !v.is_empty() => Ok(Doc::Lines(v)),
            // JSON that does not parse (a file cut short): serde's line and column
            Err(e) if text.trim_start().starts_with(['{', '[']) => Err(PeerError::NotParsable {
                path: path.into(),
                msg: match serde_json::from_str::<Value>(&text) {
                    Err(whole) if text.lines().filter(|l| !l.trim().is_empty()).count() <= 1 => whole.to_string(),
                    _ => e.to_string(),
                },
            }),
            _ => Ok(Doc::Text(text.to_string())),
        }
    }

    /// The one JSON object of a document, or the last object of JSON lines (tools that append
    /// a line per run: the newest run).
    pub fn object(&self) -> Option<&serde_json::Map<String, Value>> {
        match self {
            Doc::Json(v) => v.as_object(),
            Doc::Lines(v) => v.iter().rev().find_map(Value::as_object),
            Doc::Text(_) => None,
        }
    }

    /// Every JSON record: the lines of JSON lines, the elements of a JSON array, or the one
    /// JSON document.
    pub fn records(&self) -> Vec<&Value> {
        match self {
            Doc::Json(Value::Array(a)) => a.iter().collect(),
            Doc::Json(v) => vec![v],
            Doc::Lines(v) => v.iter().collect(),
            Doc::Text(_) => Vec::new(),
        }
    }

    /// Whether the object (see [`Doc::object`]) has every one of `keys`.
    pub fn has_all(&self, keys: &[&str]) -> bool {
        self.object().is_some_and(|o| keys.iter().all(|k| o.contains_key(*k)))
    }
}

/// `NaN`, `Infinity` and `-Infinity` outside strings replaced by `null` (Python's JSON).
fn python_floats_to_null(text: &str) -> std::borrow::Cow<'_, str> {
    if !(text.contains("NaN") || text.contains("Infinity")) {
        return std::borrow::Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut start, mut in_str) = (0, 0, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| b[i..].starts_with(t.as_bytes()));
        if let Some(t) = token {
            out.push_str(&text[start..i]);
            out.push_str("null");
            i += t.len();
            start = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[start..]);
    std::borrow::Cow::Owned(out)
}

/// Which instants an imported file gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instants {
    /// Wall-clock instants (sent_at, first_token_at, done_at as the tool recorded them).
    Absolute,
    /// Only a monotonic clock's readings: the rows' instants are placed at an anchor (see
    /// [`Imported::anchor`]); differences between rows are the tool's, the placement is not.
    Relative,
    /// No instants: sent_at, first_token_at and done_at are null (the group's duration, and so
    /// the throughputs, come from the tool's own run duration).
    None,
}

impl Instants {
    pub fn as_str(self) -> &'static str {
        match self {
            Instants::Absolute => "absolute",
            Instants::Relative => "relative",
            Instants::None => "none",
        }
    }
}

/// One imported file: rows in the requests contract and where they came from.
#[derive(Debug, Clone)]
pub struct Imported {
    pub tool: Tool,
    /// The tool's version as the file records it; None when the file does not say.
    pub version: Option<String>,
    /// engine (the tool's backend name), model, api, concurrency, rate; `label`, `run_id`
    /// and `source_tool` are set by the command.
    pub labels: RunLabels,
    pub records: Vec<Record>,
    /// The tool's own run duration (its throughputs divide by it), in seconds.
    pub duration_s: Option<f64>,
    /// The summary numbers the tool wrote in the file, by its own key (`median_ttft_ms`, ...).
    pub reported: BTreeMap<String, f64>,
    pub instants: Instants,
    /// How relative instants were placed (with [`Instants::Relative`]), in words.
    pub anchor: Option<String>,
    /// Anything else worth keeping in provenance (the tool's own arguments, its date, ...).
    pub notes: BTreeMap<String, String>,
}

impl Imported {
    /// An empty import of `tool`'s file.
    pub fn new(tool: Tool) -> Imported {
        Imported {
            tool,
            version: None,
            labels: RunLabels::default(),
            records: Vec::new(),
            duration_s: None,
            reported: BTreeMap::new(),
            instants: Instants::None,
            anchor: None,
            notes: BTreeMap::new(),
        }
    }
}

/// Import one file: `tool` if given (the file must have its shape), else the one tool whose
/// shape the file has.
pub fn import(bytes: &[u8], path: &Path, tool: Option<Tool>) -> Result<Imported, PeerError> {
    let doc = Doc::parse(bytes, path)?;
    let tool = match tool {
        Some(t) => {
            if !(t.spec().detect)(&doc) {
                let others: Vec<&str> = detect(&doc).into_iter().map(Tool::name).collect();
                return Err(PeerError::WrongTool {
                    path: path.into(),
                    tool: t.name(),
                    written_for: t.spec().written_for,
                    looks: if others.is_empty() {
                        String::new()
                    } else {
                        format!("; it looks like a {} file", others.join(" or "))
                    },
                });
            }
            t
        }
        None => match detect(&doc).as_slice() {
            [t] => *t,
            [] => {
                return Err(PeerError::Unknown {
                    path: path.into(),
                    known: Tool::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
                });
            }
            many => {
                return Err(PeerError::Ambiguous {
                    path: path.into(),
                    tools: many.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
                });
            }
        },
    };
    (tool.spec().import)(&doc, path)
}

/// Read and import one file.
pub fn import_file(path: &Path, tool: Option<Tool>) -> Result<Imported, PeerError> {
    let bytes = std::fs::read(path).map_err(|source| PeerError::Io {
        path: path.into(),
        source,
    })?;
    import(&bytes, path, tool)
}

/// The tools whose shape `doc` has.
pub fn detect(doc: &Doc) -> Vec<Tool> {
    Tool::ALL.iter().copied().filter(|t| (t.spec().detect)(doc)).collect()
}

// ---- helpers shared by the importers ------------------------------------------------------

/// Milliseconds of seconds.
pub fn secs_to_ms(s: f64) -> f64 {
    s * 1e3
}

/// Microseconds since the Unix epoch of epoch seconds (a tool's `time.time()`).
pub fn epoch_secs_to_us(s: f64) -> i64 {
    (s * 1e6).round() as i64
}

/// Chunk arrival times (ms after the request was sent) from the TTFT and the gaps between
/// consecutive chunks (vLLM's and SGLang's `itl` lists): `[ttft, ttft + g1, ttft + g1 + g2, ...]`.
/// A tool's time to first output token (reasoning left out: AIPerf's and GuideLLM's TTFO) and
/// reasoning token count, onto an imported row: a TTFO after the TTFT means the output began
/// with reasoning (`ttfr_ms` = TTFT, `ttfa_ms` = TTFO); one equal to it, that it did not.
pub fn set_answer(r: &mut Record, ttfo_ms: Option<f64>, reasoning_tokens: Option<u32>) {
    let Some(ttft) = r.ttft_ms else { return };
    r.reasoning_tokens = reasoning_tokens;
    if let Some(a) = ttfo_ms {
        // (a microsecond of slack: the tools compute both from the same float instants)
        if a > ttft + 1e-3 || reasoning_tokens.is_some_and(|n| n > 0) {
            r.ttfr_ms = Some(ttft);
        }
        r.ttfa_ms = Some(a);
    }
}

pub fn chunk_times_from_gaps(ttft_ms: f64, gaps_ms: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(gaps_ms.len() + 1);
    let mut t = ttft_ms;
    out.push(t);
    for g in gaps_ms {
        t += g;
        out.push(t);
    }
    out
}

/// Field access that names what is missing: the file, the field, the tool and the version the
/// importer was written for.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    pub path: &'a Path,
    pub spec: &'static Spec,
    /// Appended to a missing-field error ("; run it with --save-detailed"), or "".
    pub hint: &'static str,
}

impl<'a> Fields<'a> {
    pub fn new(path: &'a Path, spec: &'static Spec) -> Fields<'a> {
        Fields { path, spec, hint: "" }
    }

    pub fn missing(&self, field: &str) -> PeerError {
        PeerError::Missing {
            path: self.path.into(),
            tool: self.spec.name,
            field: field.to_string(),
            written_for: self.spec.written_for,
            hint: self.hint.to_string(),
        }
    }

    pub fn bad(&self, field: &str, msg: impl Into<String>) -> PeerError {
        PeerError::Bad {
            path: self.path.into(),
            tool: self.spec.name,
            field: field.to_string(),
            written_for: self.spec.written_for,
            msg: msg.into(),
        }
    }

    /// The document's object (see [`Doc::object`]), or an error naming `what` it should be.
    pub fn object<'d>(&self, doc: &'d Doc) -> Result<&'d serde_json::Map<String, Value>, PeerError> {
        doc.object()
            .ok_or_else(|| self.bad("(top level)", "expected a JSON object"))
    }

    /// A required field (present and not null).
    pub fn req<'v>(&self, o: &'v serde_json::Map<String, Value>, field: &str) -> Result<&'v Value, PeerError> {
        o.get(field).filter(|v| !v.is_null()).ok_or_else(|| self.missing(field))
    }

    /// A required array.
    pub fn array<'v>(&self, o: &'v serde_json::Map<String, Value>, field: &str) -> Result<&'v [Value], PeerError> {
        self.req(o, field)?
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.bad(field, "expected a list"))
    }

    /// An optional array (missing or null: None).
    pub fn opt_array<'v>(
        &self,
        o: &'v serde_json::Map<String, Value>,
        field: &str,
    ) -> Result<Option<&'v [Value]>, PeerError> {
        match o.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_array()
                .map(|a| Some(a.as_slice()))
                .ok_or_else(|| self.bad(field, "expected a list")),
        }
    }

    /// A required number.
    pub fn f64(&self, o: &serde_json::Map<String, Value>, field: &str) -> Result<f64, PeerError> {
        let v = self.req(o, field)?;
        v.as_f64()
            .ok_or_else(|| self.bad(field, format!("expected a number, found {v}")))
    }

    /// An optional number (missing or null: None).
    pub fn opt_f64(&self, o: &serde_json::Map<String, Value>, field: &str) -> Result<Option<f64>, PeerError> {
        match o.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("expected a number, found {v}"))),
        }
    }

    /// An optional string (missing or null: None; a number is written as text).
    pub fn opt_str(&self, o: &serde_json::Map<String, Value>, field: &str) -> Option<String> {
        match o.get(field) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ Value::Number(_)) | Some(v @ Value::Bool(_)) => Some(v.to_string()),
            _ => None,
        }
    }

    /// Element `i` of list `field` as a number (null: None).
    pub fn elem_f64(&self, list: &[Value], field: &str, i: usize) -> Result<Option<f64>, PeerError> {
        match list.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("entry {i}: expected a number, found {v}"))),
        }
    }

    /// Element `i` of list `field` as a count (a non-negative integer; null: None).
    pub fn elem_u32(&self, list: &[Value], field: &str, i: usize) -> Result<Option<u32>, PeerError> {
        match list.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.bad(field, format!("entry {i}: expected a token count, found {v}"))),
        }
    }

    /// Element `i` of list `field` as a list of numbers (null or missing: empty).
    pub fn elem_f64s(&self, list: &[Value], field: &str, i: usize) -> Result<Vec<f64>, PeerError> {
        match list.get(i) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    x.as_f64()
                        .ok_or_else(|| self.bad(field, format!("entry {i}, item {j}: expected a number, found {x}")))
                })
                .collect(),
            Some(v) => Err(self.bad(field, format!("entry {i}: expected a list, found {v}"))),
        }
    }

    /// Every number-valued field of `o` whose key passes `keep` (a tool's own summary numbers).
    pub fn numbers(&self, o: &serde_json::Map<String, Value>, keep: impl Fn(&str) -> bool) -> BTreeMap<String, f64> {
        o.iter()
            .filter(|(k, _)| keep(k))
            .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
            .collect()
    }
}

/// What one imported request measured, in the tool's terms converted to ms; made into a row
/// by [`Measured::into_record`].
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub request_id: u64,
    /// When it was due (its arrival in an open-loop schedule), µs since the Unix epoch.
    pub scheduled_at_us: Option<i64>,
    /// When it was sent, µs since the Unix epoch (absolute or placed relative instants).
    pub sent_at_us: Option<i64>,
    pub ttft_ms: Option<f64>,
    /// Arrival of every content chunk, ms after sending (empty when the file has none).
    pub chunk_times_ms: Vec<f64>,
    pub chunk_tokens: Option<Vec<u32>>,
    /// End to end as the tool measured it (None: the last chunk's time).
    pub e2e_ms: Option<f64>,
    pub input_tokens: u32,
    pub server_input_tokens: Option<u32>,
    pub requested_output_tokens: u32,
    pub output_tokens: u32,
    /// usage (the server's count), chunks, or tool (the tool's own count).
    pub output_tokens_source: &'static str,
    /// None for a request the tool counts as successful.
    pub failure: Option<(Status, String)>,
    pub http_status: Option<u16>,
    pub finish_reason: Option<String>,
    pub warmup: bool,
}

/// The `output_tokens_source` of a count made by the imported tool itself.
pub const TOOL_COUNT: &str = "tool";

impl Measured {
    /// The requests row: TPOT by the one definition ([`crate::schema::tpot`]), first-token
    /// and done instants from `sent_at_us` when known, failed rows with their status and
    /// message and no latencies.
    pub fn into_record(self) -> Record {
        let ok = self.failure.is_none();
        let e2e = self.e2e_ms.or_else(|| self.chunk_times_ms.last().copied());
        let (ttft, e2e) = if ok { (self.ttft_ms, e2e) } else { (None, None) };
        let at = |ms: Option<f64>| self.sent_at_us.zip(ms).map(|(s, m)| s + (m * 1e3).round() as i64);
        let (status, error) = match self.failure {
            None => (Status::Ok, None),
            Some((s, e)) => (s, Some(e)),
        };
        let lag = self
            .scheduled_at_us
            .zip(self.sent_at_us)
            .map(|(a, b)| (b - a) as f64 / 1e3);
        Record {
            request_id: self.request_id,
            scheduled_at_us: self.scheduled_at_us,
            sent_at_us: self.sent_at_us,
            first_token_at_us: at(ttft),
            done_at_us: at(e2e).or(self.sent_at_us.filter(|_| !ok)),
            sched_lag_ms: lag,
            connection: None,
            connect_ms: None,
            tls_ms: None,
            cancel_after_ms: None,
            ttfr_ms: None,
            ttfa_ms: None,
            reasoning_tokens: None,
            ttft_ms: ttft,
            e2e_ms: e2e,
            tpot_ms: match (ttft, e2e) {
                (Some(a), Some(e)) => crate::schema::tpot(a, e, self.output_tokens),
                _ => None,
            },
            ttft_sched_ms: lag.zip(ttft).map(|(l, t)| l + t),
            e2e_sched_ms: lag.zip(e2e).map(|(l, e)| l + e),
            warmup: self.warmup,
            chunk_times_ms: if ok { self.chunk_times_ms } else { Vec::new() },
            chunk_tokens: if ok { self.chunk_tokens } else { None },
            input_tokens: self.input_tokens,
            server_input_tokens: self.server_input_tokens,
            cached_tokens: None,
            requested_output_tokens: self.requested_output_tokens,
            output_tokens: self.output_tokens,
            output_tokens_source: self.output_tokens_source,
            status,
            http_status: self.http_status,
            error,
            finish_reason: self.finish_reason,
            category: None,
            session_id: None,
            turn: None,
        }
    }
}

/// Provenance keys `import` writes (besides the usual [`crate::meta`] keys).
pub use crate::analysis::imported as meta_keys;

#[cfg(test)]
mod tests {
    #[test]
    fn a_tools_ttfo_splits_reasoning_from_the_answer() {
        let row = |ttft: Option<f64>| {
            Measured {
                ttft_ms: ttft,
                e2e_ms: Some(900.0),
                output_tokens: 40,
                ..Default::default()
            }
            .into_record()
        };
        // TTFO after TTFT: the output began with reasoning
        let mut r = row(Some(50.0));
        set_answer(&mut r, Some(400.0), Some(30));
        assert_eq!(
            (r.ttfr_ms, r.ttfa_ms, r.reasoning_tokens),
            (Some(50.0), Some(400.0), Some(30))
        );
        // TTFO equal to TTFT: no reasoning
        let mut r = row(Some(50.0));
        set_answer(&mut r, Some(50.0), None);
        assert_eq!((r.ttfr_ms, r.ttfa_ms, r.reasoning_tokens), (None, Some(50.0), None));
        // no first token at all (a failure): nothing to split
        let mut r = row(None);
        set_answer(&mut r, Some(400.0), Some(3));
        assert_eq!((r.ttfr_ms, r.ttfa_ms, r.reasoning_tokens), (None, None, None));
    }

    use super::*;

    #[test]
    fn gaps_become_chunk_times() {
        assert_eq!(chunk_times_from_gaps(10.0, &[2.0, 3.0]), vec![10.0, 12.0, 15.0]);
        assert_eq!(chunk_times_from_gaps(7.0, &[]), vec![7.0]);
    }

    #[test]
    fn doc_shapes() {
        let p = Path::new("x");
        assert!(matches!(Doc::parse(b"{\"a\":1}", p).unwrap(), Doc::Json(_)));
        assert!(matches!(Doc::parse(b"{\"a\":1}\n{\"a\":2}\n", p).unwrap(), Doc::Lines(v) if v.len() == 2));
        assert!(matches!(Doc::parse(b"a,b\n1,2\n", p).unwrap(), Doc::Text(_)));
        assert!(Doc::parse(&[0xff, 0xfe, 0x00], p).is_err());
        let py = br#"{"rate": Infinity, "m": NaN, "n": -Infinity, "s": "NaN \" Infinity"}"#;
        let Doc::Json(v) = Doc::parse(py, p).unwrap() else {
            panic!("not JSON")
        };
        assert!(v["rate"].is_null() && v["m"].is_null() && v["n"].is_null());
        assert_eq!(v["s"], "NaN \" Infinity");
    }

    #[test]
    fn measured_row() {
        let r = Measured {
            request_id: 3,
            sent_at_us: Some(1_000_000),
            ttft_ms: Some(10.0),
            chunk_times_ms: vec![10.0, 12.0, 15.0],
            output_tokens: 3,
            output_tokens_source: TOOL_COUNT,
            ..Default::default()
        }
        .into_record();
        assert_eq!(r.e2e_ms, Some(15.0));
        assert_eq!(r.tpot_ms, Some(2.5));
        assert_eq!(r.first_token_at_us, Some(1_010_000));
        assert_eq!(r.done_at_us, Some(1_015_000));
        let f = Measured {
            ttft_ms: Some(1.0),
            failure: Some((Status::HttpError, "HTTP 500".into())),
            ..Default::default()
        }
        .into_record();
        assert_eq!(
            (f.status, f.ttft_ms, f.error.as_deref()),
            (Status::HttpError, None, Some("HTTP 500"))
        );
    }
}
