//! replay: fire timed streaming requests from a trace at an endpoint and record every one.
//!
//! [`run`] is the whole tool (what `src/bin/replay.rs` calls); [`run_with`] runs it under a
//! [`Stop`] the caller holds, without taking signals (tests, embedding programs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{CheckFailed, OutArgs, TlsArgs};
use crate::client::http::{Client, SendError};
use crate::client::output::{self, Tally, connections_text, fresh_connections_line, summary_line};
use crate::client::probe::probe;
use crate::client::protocol::{Api, RequestOpts};
use crate::client::run::{self as scheduler, ApproxPrompter, Mode, Plan, Prompter, TokenizerPrompter, Warmup};
use crate::endpoint::{Endpoint, Scheme};
use crate::engine::state::EngineState;
use crate::meta::{Meta, RunClock};
use crate::recorder::{self, Dest, Recorder};
use crate::schema::REQUESTS;
use crate::schema::{RunLabels, Status};
use crate::stats::Load;
use crate::stop::{self, Second, Stop, StopReason};
use crate::trace::{self, TraceReader};
use anyhow::{Context, bail};
use clap::Parser;

pub const EXAMPLES: &str = "\
Examples:
  # open loop: each request at its trace time (Poisson at 8 req/s)
  tracegen poisson --rate 8 --count 500 | replay --url http://127.0.0.1:8000 --label vllm-fp16 -o runs/a.parquet
  # closed loop: 10 users, each sends its next request when the previous ends
  tracegen batch --count 300 --output-len 128 | replay --url $URL --concurrency 10 --label c10 -o c10.parquet
  # the engine started by engine-up (URL, model and version come from its state file)
  replay trace.parquet --engine vllm --warmup 5 --duration 2m -o runs/vllm.parquet
  # TGI's native protocol, twice as fast as the trace, 30 s to finish after Ctrl-C
  replay trace.parquet --url http://127.0.0.1:3000 --api tgi --time-scale 0.5 --grace 30s -o tgi.parquet
  # auth and engine-specific fields
  replay t.parquet --url $URL --api-key-env OPENAI_API_KEY --extra-body '{\"top_k\": 1}' -o out.parquet
  # 4 shards (here on one host; on many, the same command with each index), one dataset
  for i in 0 1 2 3; do replay t.parquet --url $URL --shard $i/4 --start-at 2026-11-22T10:00:00Z \
       --dataset runs/big & done; wait; agg runs/big
  # prompts exactly input_tokens long in the served model's tokenizer (a local tokenizer.json)
  replay mooncake.parquet --url $URL --tokenizer ./Llama-3.1-8B/tokenizer.json --time-scale 0.25 -o m.parquet
  # a run killed before it finished: write out what its journal holds
  replay --recover runs/_a.parquet.partial

One row per trace row is written, whatever happened (status ok, http_error, timeout, connect_error,
stream_error, cancelled, not_sent). Ctrl-C or SIGTERM stops scheduling, gives in-flight requests
--grace, cancels the rest and writes a valid file; a second Ctrl-C cancels at once.
Latencies are measured from sent_at (vLLM's definitions) and from scheduled_at (*_sched_ms); a
closed-loop request is due (scheduled_at) when its user's previous request ended.
The closing line gives the load delivered (mean in flight of the users asked, or the rate sent
of the rate scheduled); below 95% of the asked load a line starting 'replay: CLIENT-BOUND:'
(printed even with --quiet) names the likely cause and what to do; the exit status stays 0.";

#[derive(Parser)]
#[command(name = "replay", version, about = "Send a trace's requests to an inference server on schedule and record each response", after_help = EXAMPLES)]
pub struct Args {
    /// Trace file (Parquet or Arrow IPC), or - for stdin
    #[arg(default_value = "-")]
    trace: String,
    /// Base URL of the server, e.g. http://127.0.0.1:8000
    #[arg(long)]
    url: Option<String>,
    /// Use the engine started by `engine-up NAME`: its URL, model, quant and version
    #[arg(long, value_name = "NAME")]
    engine: Option<String>,
    /// Directory of engine-up state files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    state_dir: PathBuf,
    /// Protocol: chat, completions, tgi, sglang, llamacpp, ollama, or auto (the --engine's configured api, else ask the server)
    #[arg(long, default_value = "auto")]
    api: String,
    /// Model name to send [default: the first model the server lists]
    #[arg(long)]
    model: Option<String>,
    /// Label of this run (a column in every row) [default: the engine name, else "run"]
    #[arg(long)]
    label: Option<String>,
    /// Quantization variant to record (fp16, awq, fp8, ...)
    #[arg(long)]
    quant: Option<String>,
    /// Closed loop with N users (each sends its next request when the previous ends); without it, open loop
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,
    /// Open loop: multiply trace arrival times by X (0.5 = twice as fast)
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    time_scale: f64,
    /// Open loop: at most N requests in flight; held-back requests show sched_lag_ms > 0 (never dropped)
    #[arg(long, value_name = "N")]
    max_in_flight: Option<usize>,
    /// Warm-up before the run: N requests, or a duration such as 30s (rows marked warmup)
    #[arg(long, value_name = "N|D")]
    warmup: Option<String>,
    /// Stop scheduling after D; later rows are recorded as not_sent
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg)]
    duration: Option<Duration>,
    /// Send at most N requests; later rows are recorded as not_sent
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
    /// Whole-request timeout, from sent_at
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "10m")]
    timeout: Duration,
    /// Timeout for the first content chunk, from sent_at
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg)]
    ttft_timeout: Option<Duration>,
    /// After Ctrl-C/SIGTERM or --duration, how long in-flight requests may finish before they are cancelled
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "30s")]
    grace: Duration,
    /// JSON object merged into every request body
    #[arg(long, value_name = "JSON")]
    extra_body: Option<String>,
    /// Extra header 'Name: value' (repeatable); values are never written to outputs
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    headers: Vec<String>,
    /// Read an API key from this environment variable (sent as Authorization: Bearer)
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// Read an API key from this file
    #[arg(long, value_name = "PATH")]
    api_key_file: Option<PathBuf>,
    /// Do not ask the server to ignore end-of-sequence (outputs may end before max_tokens)
    #[arg(long)]
    no_ignore_eos: bool,
    /// Do not ask for usage on every chunk (stream_options.continuous_usage_stats)
    #[arg(long)]
    no_continuous_usage: bool,
    /// Sampling temperature to send
    #[arg(long)]
    temperature: Option<f64>,
    /// Seed of synthesised prompt text
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Make synthesised prompts exactly input_tokens long in this Hugging Face tokenizer.json (else approximate)
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Client threads
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Open a new connection for every request
    #[arg(long)]
    no_keep_alive: bool,
    #[command(flatten)]
    tls: TlsArgs,
    /// Users who give up: close SHARE of the requests early, AFTER sending (or ttft+AFTER the
    /// first token): D, exp:MEAN or uniform:LO:HI [default AFTER: uniform:0s:10s]; e.g.
    /// 0.1:ttft+2s. Those rows are cancelled with cancel_after_ms set and keep their partial
    /// timings; agg counts them apart (n_gave_up) and leaves them out of latencies and errors
    #[arg(long, value_name = "SHARE[:AFTER]")]
    cancel: Option<crate::client::cancel::Cancel>,
    /// Exit 1 when more than this share (0-1) of the measured requests sent did not end ok
    /// (agg's error_rate); without it, replay exits 1 only when none ended ok
    #[arg(long, value_name = "RATE", value_parser = rate_0_1)]
    max_error_rate: Option<f64>,
    /// Connections kept open ahead of need (the warm pool), so that a request rarely waits
    /// for a TCP connect or TLS handshake; 0 turns it off (then every new connection's set-up
    /// shows in that request's due→sent time) [default: the users, up to 16; open loop 16;
    /// 0 with --no-keep-alive]
    #[arg(long, value_name = "N")]
    warm_pool: Option<usize>,
    /// Largest stream event accepted, in bytes (bigger is a stream_error)
    #[arg(long, default_value_t = 16 << 20)]
    max_event_bytes: usize,
    /// Replay only shard I of N of the trace (whole sessions stay in one shard); run N of
    /// these, on one host or many, and analyse their files together
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Start the schedule at this wall-clock instant (RFC 3339, e.g. 2026-11-22T10:00:00Z, or
    /// Unix seconds), after warm-up: shards on several hosts start together (keep clocks in NTP sync)
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// Write into a hive-partitioned dataset: DIR/shard=I/part-RUNID.parquet (DIR/part-RUNID.parquet
    /// without --shard); agg, chart and report read the directory as one
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    dataset: Option<PathBuf>,
    /// Write out the rows a killed run left in its journal (DIR/_FILE.partial), then exit
    #[arg(long, value_name = "PARTIAL")]
    recover: Option<PathBuf>,
    /// No progress bar or summary line
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    out: OutArgs,
}

/// Run replay with its arguments: `--print-schema`, `--recover`, or a run (taking SIGINT and
/// SIGTERM: the first stops scheduling and gives in-flight requests `--grace`, the second
/// cancels them; the exit status is then 130 or 143).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(code) = side_commands(&args)? {
        return Ok(code);
    }
    let stop = Stop::with_grace(args.grace);
    let prepared = prepare(&args)?;
    // Signals are taken from here on by one thread (see crate::stop); no other thread runs yet.
    let _ = stop::block_signals();
    let _w = stop::watch_signals(&stop, "replay", Second::Cancel);
    launch(args, prepared, stop)
}

/// [`run`] under `stop` (no signal handling): the caller stops or cancels the run.
pub fn run_with(args: Args, stop: Arc<Stop>) -> anyhow::Result<ExitCode> {
    if let Some(code) = side_commands(&args)? {
        return Ok(code);
    }
    let prepared = prepare(&args)?;
    launch(args, prepared, stop)
}

fn side_commands(args: &Args) -> anyhow::Result<Option<ExitCode>> {
    super::recorder_side_commands("replay", &args.out, args.recover.as_deref(), &[&REQUESTS])
}

fn parse_header(h: &str) -> anyhow::Result<(hyper::header::HeaderName, hyper::header::HeaderValue)> {
    let (k, v) = h
        .split_once(':')
        .with_context(|| "a --header needs the form 'Name: value'")?;
    Ok((
        k.trim()
            .parse()
            .with_context(|| format!("bad header name {:?}", k.trim()))?,
        v.trim()
            .parse()
            .with_context(|| format!("bad value for header {}", k.trim()))?,
    ))
}

/// Everything checked before anything is sent.
struct Prepared {
    state: Option<EngineState>,
    target: Endpoint,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    api_choice: Option<Api>,
    extra_body: Option<serde_json::Map<String, serde_json::Value>>,
    warmup: Option<Warmup>,
    reader: TraceReader,
    dest: Dest,
    shard: Option<(u32, u32)>,
    start_at_unix_us: Option<i64>,
}

/// Check the inputs and the destination before anything is sent.
fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let (state, target) = super::target(args.url.as_deref(), args.engine.as_deref(), &args.state_dir)?;
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        bail!("--time-scale must be a positive number, got {}", args.time_scale);
    }
    if args.concurrency == Some(0) {
        bail!("--concurrency must be at least 1");
    }
    let warmup = match args.warmup.as_deref() {
        None => None,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => Some(Warmup::Count(n)),
            Err(_) => Some(Warmup::For(crate::units::parse_duration(s)?)),
        },
    };
    let extra_body = match &args.extra_body {
        None => None,
        Some(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            Ok(_) => bail!("--extra-body must be a JSON object, e.g. '{{\"top_k\": 1}}'"),
            Err(e) => bail!("--extra-body is not valid JSON: {e}"),
        },
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        headers.push(parse_header(h)?);
    }
    let key = match (&args.api_key_env, &args.api_key_file) {
        (Some(n), _) => Some(std::env::var(n).with_context(|| format!("--api-key-env {n}: the variable is not set"))?),
        (None, Some(p)) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("--api-key-file {}: cannot read", p.display()))?
                .trim()
                .to_string(),
        ),
        _ => None,
    };
    if let Some(k) = &key {
        headers.push((
            hyper::header::AUTHORIZATION,
            format!("Bearer {k}")
                .parse()
                .with_context(|| "the API key is not a valid header value")?,
        ));
    }
    let api_choice = match args.api.as_str() {
        // The engine's configured protocol (engines.toml `api`) wins over probing.
        "auto" => state.as_ref().and_then(|s| Api::from_name(&s.api)),
        s => Some(
            Api::from_name(s)
                .with_context(|| format!("--api {s}: use chat, completions, tgi, sglang, llamacpp, ollama or auto"))?,
        ),
    };
    let shard = match &args.shard {
        None => None,
        Some(s) => {
            let bad = || anyhow::anyhow!("--shard {s:?}: use I/N with 0 <= I < N, e.g. --shard 0/4");
            let (i, n) = s.split_once('/').ok_or_else(bad)?;
            let (i, n): (u32, u32) = (
                i.trim().parse().map_err(|_| bad())?,
                n.trim().parse().map_err(|_| bad())?,
            );
            if n == 0 || i >= n {
                return Err(bad());
            }
            Some((i, n))
        }
    };
    let start_at_unix_us = match &args.start_at {
        None => None,
        Some(t) => Some(parse_start_at(t)?),
    };
    let reader = TraceReader::open(&args.trace)?;
    let dataset_path = args.dataset.as_ref().map(|d| {
        let run = crate::meta::RunClock::global().run_id.clone();
        match shard {
            Some((i, _)) => d.join(format!("shard={i}")).join(format!("part-{run}.parquet")),
            None => d.join(format!("part-{run}.parquet")),
        }
    });
    let dest = Dest::new(args.out.output.as_deref().or(dataset_path.as_deref()), args.out.format);
    // A destination that cannot be written fails now, before anything is sent; a journal
    // left by a killed run is never overwritten.
    recorder::check(&dest, "replay")?;
    Ok(Prepared {
        state,
        target,
        headers,
        api_choice,
        extra_body,
        warmup,
        reader,
        dest,
        shard,
        start_at_unix_us,
    })
}

fn launch(args: Args, p: Prepared, stop: Arc<Stop>) -> anyhow::Result<ExitCode> {
    let rt = super::many_connections_runtime(args.threads)?;
    rt.block_on(async_main(args, p, stop))
}

/// `--start-at`: RFC 3339 (UTC offset allowed) or Unix seconds; returns Unix microseconds.
/// A share from 0 to 1 (`--max-error-rate`).
fn rate_0_1(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a share from 0 to 1 (0.01 allows 1% of requests to fail)"
        )),
    }
}

fn parse_start_at(t: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = t.trim().parse::<f64>()
        && secs.is_finite()
        && secs > 0.0
    {
        return Ok((secs * 1e6) as i64);
    }
    let dt = chrono::DateTime::parse_from_rfc3339(t.trim())
        .with_context(|| format!("--start-at {t:?}: use RFC 3339 (2026-11-22T10:00:00Z) or Unix seconds"))?;
    Ok(dt.timestamp_micros())
}

/// What the probe and the arguments say about the server and the run.
struct Facts {
    api: Api,
    model: Option<String>,
    labels: RunLabels,
    meta: Meta,
}

/// Ask the server what it is, then write down the run's labels and provenance.
async fn facts(args: &Args, p: &Prepared, client: &Client) -> Facts {
    let clock = RunClock::global();
    let (state, target) = (&p.state, &p.target);
    let info = probe(client, Duration::from_secs(3)).await;
    let api = match p.api_choice {
        Some(a) => a,
        None => match info.api {
            Some(a) => a,
            None => {
                eprintln!(
                    "replay: warning: {} did not answer /v1/models, /info, /server_info, /props or /api/version; using --api chat",
                    target.base_url()
                );
                Api::Chat
            }
        },
    };
    let model = args
        .model
        .clone()
        .or_else(|| state.as_ref().and_then(|s| s.served_model.clone()))
        .or_else(|| info.models.first().cloned());
    if model.is_none() && api.needs_model() {
        eprintln!("replay: warning: no --model given and the server lists none; sending an empty model name");
    }
    let engine = state
        .as_ref()
        .map(|s| s.name.clone())
        .or_else(|| args.engine.clone())
        .or(info.engine.clone());
    let quant = args
        .quant
        .clone()
        .or_else(|| state.as_ref().and_then(|s| s.quant.clone()));
    let trace_meta = p.reader.meta();
    let rate_rps = match args.concurrency {
        Some(_) => None,
        None => trace_meta
            .get(trace::META_RATE)
            .and_then(|r| r.parse::<f64>().ok())
            .or_else(|| observed_rate(&args.trace, p.reader.num_rows()))
            .map(|r| r / args.time_scale),
    };
    let labels = RunLabels {
        label: args.label.clone().or(engine.clone()).unwrap_or_else(|| "run".into()),
        run_id: clock.run_id.clone(),
        engine: engine.clone(),
        model: model.clone(),
        quant,
        api: api.name().into(),
        concurrency: args.concurrency,
        rate_rps,
    };
    let mut meta = Meta::for_output(&REQUESTS, false);
    meta.set("servebench.url", target.base_url());
    if target.scheme == Scheme::Https {
        meta.set("servebench.tls", args.tls.options().describe());
    }
    meta.set("servebench.api", api.name());
    meta.set("servebench.label", labels.label.clone());
    if let Some(m) = &model {
        meta.set("servebench.model", m.clone());
    }
    if let Some(e) = &engine {
        meta.set("servebench.engine", e.clone());
    }
    if let Some(v) = state.as_ref().and_then(|s| s.version.clone()).or(info.version.clone()) {
        meta.set("servebench.engine_version", v);
    }
    if let Some(s) = state {
        // the engine's own argv and environment may hold keys: never write them
        let mut s = s.clone();
        s.argv = crate::meta::redact_args(&s.argv);
        crate::meta::redact_env(&mut s.env);
        meta.set("servebench.engine_state", serde_json::to_string(&s).unwrap_or_default());
    }
    if !info.facts.is_empty() {
        meta.set(
            "servebench.server_info",
            serde_json::to_string(&info.facts).unwrap_or_default(),
        );
    }
    meta.set("servebench.trace.path", args.trace.clone());
    for (k, v) in &trace_meta.0 {
        if k.starts_with("servebench.trace.") {
            meta.set(k.clone(), v.clone());
        }
    }
    if let Some((i, n)) = p.shard {
        meta.set("servebench.shard", format!("{i}/{n}"));
    }
    if let Some(c) = &args.cancel {
        meta.set("servebench.cancel", c.spec());
    }
    if let Some(at) = p.start_at_unix_us {
        meta.set("servebench.start_at", crate::meta::rfc3339_us(at));
        if at < clock.now_unix_us() - 1_000_000 {
            eprintln!("replay: warning: --start-at is already past; starting now (the file records how late)");
        }
    }
    meta.set(
        "servebench.mode",
        match args.concurrency {
            Some(c) => format!("closed loop, {c} users"),
            None => format!("open loop, time scale {}", args.time_scale),
        },
    );
    Facts {
        api,
        model,
        labels,
        meta,
    }
}

/// The rate a trace file shows when its metadata declares none (one written by pyarrow,
/// pandas or DuckDB): (rows - 1) / (last - first arrival_s), which is exact for a constant
/// rate. Only for files (a pipe cannot be read twice); None when it cannot be told.
fn observed_rate(path: &str, num_rows: Option<u64>) -> Option<f64> {
    if path == "-" || num_rows.is_none_or(|n| n < 2) {
        return None;
    }
    let mut r = TraceReader::open(path).ok()?;
    let (mut n, mut lo, mut hi) = (0u64, f64::INFINITY, f64::NEG_INFINITY);
    while let Some(b) = r.next_rows() {
        for row in b.ok()? {
            n += 1;
            lo = lo.min(row.arrival_s);
            hi = hi.max(row.arrival_s);
        }
    }
    let span = hi - lo;
    (n >= 2 && span.is_finite() && span > 0.0).then(|| (n - 1) as f64 / span)
}

/// Trace rows flow in from a reader thread (a pipe from tracegen streams), hashed on the way
/// (the trace's sha256 goes into the output's metadata) and filtered to this shard.
type FeedResult = Result<(u64, String), crate::io::DataError>;

fn spawn_feeder(
    mut reader: TraceReader,
    shard: Option<(u32, u32)>,
    rows_tx: tokio::sync::mpsc::Sender<Vec<crate::trace::TraceRow>>,
    stop: Arc<Stop>,
) -> std::thread::JoinHandle<FeedResult> {
    std::thread::spawn(move || -> FeedResult {
        use sha2::{Digest, Sha256};
        crate::os::background_thread();
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(batch) = reader.next_rows() {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    stop.request(StopReason::InputFailed);
                    return Err(e);
                }
            };
            for r in &batch {
                h.update(r.request_id.to_le_bytes());
                h.update(r.arrival_s.to_le_bytes());
                h.update(r.input_tokens.to_le_bytes());
                h.update(r.output_tokens.to_le_bytes());
                h.update(r.session_id.unwrap_or(u64::MAX).to_le_bytes());
                if let Some(p) = &r.prompt {
                    h.update(p.as_bytes());
                }
                if let Some(b) = &r.prefix_blocks {
                    for x in b {
                        h.update(x.to_le_bytes());
                    }
                }
            }
            n += batch.len() as u64;
            let batch = match shard {
                Some((i, k)) => batch
                    .into_iter()
                    .filter(|r| crate::client::run::shard_of(r, k) == i)
                    .collect(),
                None => batch,
            };
            if rows_tx.blocking_send(batch).is_err() {
                break;
            }
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((n, hex))
    })
}

fn progress_bar(quiet: bool, total_rows: Option<u64>) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = match total_rows {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} requests ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

/// The achieved load in a few words: in flight against users asked (closed loop), or the
/// rate sent against the rate scheduled (open loop).
fn achieved_text(l: &Load, users: Option<u32>) -> String {
    let f = |v: Option<f64>| v.map_or("?".to_string(), crate::io::fmt_num);
    let due = f(l.wait_mean_ms);
    match users {
        Some(u) => format!(
            "achieved {} of {u} users in flight ({}%), delivered {}% of the asked load, mean due→sent {due} ms",
            f(l.in_flight_mean),
            f(l.concurrency_pct),
            f(l.load_pct)
        ),
        None => format!(
            "achieved {} req/s of {} req/s scheduled ({}%), {} in flight on average, mean due→sent {due} ms",
            f(l.achieved_rate),
            f(l.target_rate),
            f(l.rate_pct),
            f(l.in_flight_mean)
        ),
    }
}

/// Spare connections the warm pool keeps by default (see `--warm-pool`).
const WARM_POOL: usize = 16;
/// Most connections opened before the start in a closed loop (one per user).
const PREWARM_MAX: usize = 1024;

/// What to do about a client that ran short of CPU.
const DO_MORE_CLIENT: &str = "do: give the client more cores (or fewer busy neighbours), split the run with --shard across hosts, or raise --threads";

/// The one line replay says when it could not deliver the load asked: what fell short, the
/// likely cause, and what to do.
fn client_bound_line(l: &Load, args: &Args, h: &crate::client::health::Health, t: &Tally) -> String {
    let f = |v: Option<f64>| v.map_or("?".to_string(), crate::io::fmt_num);
    let what = match args.concurrency {
        Some(u) => format!("{} of {u} users in flight on average", f(l.in_flight_mean)),
        None => format!(
            "{} req/s sent of {} req/s scheduled",
            f(l.achieved_rate),
            f(l.target_rate)
        ),
    };
    let cpu = format!(
        "client CPU ({:.1} s CPU over {:.1} s on --threads {}, {} here)",
        h.cpu_user_s + h.cpu_sys_s,
        h.wall_s,
        args.threads,
        match std::thread::available_parallelism().map_or(1, |n| n.get()) {
            1 => "1 core".to_string(),
            n => format!("{n} cores"),
        }
    );
    let failed = t.by_status.get(Status::ConnectError.as_str()).copied().unwrap_or(0);
    let cause = match args.max_in_flight {
        Some(m) if args.concurrency.is_none() && h.peak_in_flight >= m as u64 => format!(
            "--max-in-flight {m} held requests back (peak {} in flight); do: raise --max-in-flight, or lower the rate",
            h.peak_in_flight
        ),
        _ if failed > 0 => format!(
            "{failed} connections failed (the open-files limit is {}), or {cpu}; do: raise `ulimit -n`, or {}",
            crate::os::prepare_fds(0),
            DO_MORE_CLIENT.trim_start_matches("do: ")
        ),
        _ => format!(
            "{cpu} (else --max-in-flight or the open-files limit, {}); {DO_MORE_CLIENT}",
            crate::os::prepare_fds(0)
        ),
    };
    format!(
        "replay: CLIENT-BOUND: delivered only {}% of the asked load ({what}; mean due→sent {} ms), so the file describes a lighter load than asked; likely cause: {cause}",
        f(l.load_pct),
        f(l.wait_mean_ms)
    )
}

async fn async_main(args: Args, p: Prepared, stop: Arc<Stop>) -> anyhow::Result<ExitCode> {
    let clock = RunClock::global();
    let client = Arc::new(Client::new(
        p.target.clone(),
        p.headers.clone(),
        !args.no_keep_alive,
        &args.tls.options(),
    )?);
    // An https server this client does not trust is said first, in one line, and nothing is
    // sent (exit 2); the connection is kept for the first request.
    let https = p.target.scheme == Scheme::Https;
    if https && let Err(e @ SendError::Tls { .. }) = client.prewarm(1).await {
        bail!("{e}");
    }
    let Facts {
        api,
        model,
        labels,
        mut meta,
    } = facts(&args, &p, &client).await;
    let total_rows = p.reader.num_rows().filter(|_| p.shard.is_none()).map(|n| {
        match args.warmup.as_deref().and_then(|w| w.parse::<u64>().ok()) {
            Some(w) => n + w,
            None => n,
        }
    });
    let prompter: Arc<dyn Prompter> = match &args.tokenizer {
        Some(path) => {
            let t = crate::trace::tokenizer::Tok::load(path)?;
            meta.set("servebench.prompter", t.describe());
            Arc::new(TokenizerPrompter(Arc::new(t)))
        }
        None => Arc::new(ApproxPrompter),
    };
    let mode = match args.concurrency {
        Some(c) => Mode::Closed { concurrency: c },
        None => Mode::Open {
            time_scale: args.time_scale,
            max_in_flight: args.max_in_flight,
        },
    };
    let start_at_unix_us = p.start_at_unix_us;
    let plan = Arc::new(Plan {
        client,
        api,
        opts: RequestOpts {
            model,
            ignore_eos: !args.no_ignore_eos,
            continuous_usage: !args.no_continuous_usage,
            temperature: args.temperature,
            extra_body: p.extra_body.clone(),
        },
        mode,
        warmup: p.warmup,
        duration: args.duration,
        max_requests: args.max_requests,
        timeout: args.timeout,
        ttft_timeout: args.ttft_timeout,
        prompt_seed: args.seed,
        max_event_bytes: args.max_event_bytes,
        prompter,
        cancel: args.cancel.clone(),
        start_at: start_at_unix_us.map(|at| {
            let now = clock.now_unix_us();
            let now_i = std::time::Instant::now();
            if at >= now {
                now_i + Duration::from_micros((at - now) as u64)
            } else {
                now_i
                    .checked_sub(Duration::from_micros((now - at) as u64))
                    .unwrap_or(now_i)
            }
        }),
    });
    if let Some(d) = args.duration {
        stop.stop_after(d, StopReason::Duration);
    }

    // Connections for the first requests, opened before the clock starts, and the warm pool
    // that keeps some ready during the run. A TLS failure stops here, before any request is
    // sent; a server that is not up yet is left to the run (its rows say connect_error).
    // --no-keep-alive asks for a connection per request, opened on its path: no pool unless
    // --warm-pool asks for one.
    let spare = args
        .warm_pool
        .unwrap_or_else(|| match (args.no_keep_alive, args.concurrency) {
            (true, _) => 0,
            (false, None) => WARM_POOL,
            (false, Some(u)) => (u as usize).min(WARM_POOL),
        });
    let first = match spare {
        0 => 0,
        _ => args
            .concurrency
            .map_or(spare, |u| (u as usize).min(PREWARM_MAX))
            .max(spare),
    };
    if let Err(e @ SendError::Tls { .. }) = plan.client.prewarm(first.saturating_sub(usize::from(https))).await {
        bail!("{e}");
    }
    plan.client.keep_spare(spare);

    let (rows_tx, rows_rx) = tokio::sync::mpsc::channel(4);
    let feeder = spawn_feeder(p.reader, p.shard, rows_tx, stop.clone());
    let progress = progress_bar(args.quiet, total_rows);
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let users = labels.concurrency;
    let spec = output::spec(labels, progress.clone(), tally.clone());
    // Rows can no longer be recorded (disk full, output gone): the recorder stops the run.
    let rec = Recorder::start_with("replay", p.dest, &meta, spec, Some(&stop))?;

    let health = scheduler::run(plan, rows_rx, rec.feed(), stop.clone()).await;
    progress.finish_and_clear();
    let feed = feeder
        .join()
        .map_err(|_| anyhow::anyhow!("the trace reader thread failed"))?;
    let mut extra = Meta::default();
    extra.set("servebench.client", serde_json::to_string(&health).unwrap_or_default());
    if let Ok((n, hash)) = &feed {
        extra.set("servebench.trace.sha256", hash.clone());
        extra.set("servebench.trace.rows", n.to_string());
    }
    rec.finish(&extra)?;
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let load = health.load;
    if !args.quiet {
        eprintln!(
            "replay: {} | connections: {} | client: {:.1} s CPU over {:.1} s, peak {} in flight, max sched lag {:.2} ms | {}",
            summary_line(&tally),
            connections_text(&tally).unwrap_or_else(|| "none".into()),
            health.cpu_user_s + health.cpu_sys_s,
            health.wall_s,
            health.peak_in_flight,
            health.max_sched_lag_ms,
            achieved_text(&load, users),
        );
    }
    if !args.quiet
        && let Some(l) = fresh_connections_line(&tally, !args.no_keep_alive)
    {
        eprintln!("{l}");
    }
    // Said even with --quiet: the numbers in the file describe a lighter load than asked.
    if load.client_bound {
        eprintln!("{}", client_bound_line(&load, &args, &health, &tally));
    }
    if let Err(e) = feed {
        return Err(anyhow::Error::new(e).context("the trace has a bad row; rows before it were replayed and written"));
    }
    // Interrupted runs wrote a valid file; the exit status says they were interrupted
    // (130 for SIGINT, 143 for SIGTERM, as shells report them).
    if let Some(StopReason::Signal(s)) = stop.reason() {
        return Ok(ExitCode::from((128 + s).clamp(0, 255) as u8));
    }
    // The file is written either way; the status tells a script whether it measured anything.
    let measured = tally.rows - tally.warmup;
    if tally.ok == 0 && measured > 0 {
        return Err(CheckFailed(format!(
            "no request succeeded ({}); the file holds every row and its error",
            summary_line(&tally)
        ))
        .into());
    }
    if let Some(max) = args.max_error_rate
        && tally.error_rate() > max
    {
        return Err(CheckFailed(format!(
            "error rate {:.2}% is above --max-error-rate {max} ({})",
            100.0 * tally.error_rate(),
            summary_line(&tally)
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}
