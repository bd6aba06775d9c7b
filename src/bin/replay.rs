//! replay: fire timed streaming requests from a trace at an endpoint and record every one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use servebench::cli::{OutArgs, run_main};
use servebench::client::http::{Client, Target};
use servebench::client::output::{Dest, finalize, journal_path, summary_line, write_records};
use servebench::client::probe::probe;
use servebench::client::protocol::{Api, RequestOpts};
use servebench::client::record::RunLabels;
use servebench::client::run::{ApproxPrompter, Mode, Plan, Prompter, Switches, TokenizerPrompter, Warmup, run};
use servebench::engine::state::EngineState;
use servebench::meta::{Meta, RunClock};
use servebench::schema::REQUESTS;
use servebench::trace::{self, TraceReader};

const EXAMPLES: &str = "\
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
  replay --recover runs/a.parquet.partial -o runs/a.parquet

One row per trace row is written, whatever happened (status ok, http_error, timeout, connect_error,
stream_error, cancelled, not_sent). Ctrl-C or SIGTERM stops scheduling, gives in-flight requests
--grace, cancels the rest and writes a valid file; a second Ctrl-C cancels at once.
Latencies are measured from sent_at (vLLM's definitions) and from scheduled_at (*_sched_ms).";

#[derive(Parser)]
#[command(name = "replay", version, about = "Send a trace's requests to an inference server on schedule and record each response", after_help = EXAMPLES)]
struct Cli {
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
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg)]
    duration: Option<Duration>,
    /// Send at most N requests; later rows are recorded as not_sent
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
    /// Whole-request timeout, from sent_at
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg, default_value = "10m")]
    timeout: Duration,
    /// Timeout for the first content chunk, from sent_at
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg)]
    ttft_timeout: Option<Duration>,
    /// After Ctrl-C/SIGTERM or --duration, how long in-flight requests may finish before they are cancelled
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg, default_value = "30s")]
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
    /// Write out the rows a killed run left in its journal (FILE.partial), then exit
    #[arg(long, value_name = "PARTIAL")]
    recover: Option<PathBuf>,
    /// No progress bar or summary line
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    out: OutArgs,
}

fn main() -> ExitCode {
    run_main("replay", || {
        let cli: Cli = servebench::cli::parse("replay");
        if cli.out.print_schema {
            print!("{}", REQUESTS.print());
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(j) = &cli.recover {
            let out = cli.out.output.clone().unwrap_or_else(|| {
                let s = j.to_string_lossy();
                PathBuf::from(s.strip_suffix(".partial").unwrap_or(&s).to_string())
            });
            let (n, truncated) = finalize(j, &out, cli.out.format, &Meta::default())?;
            eprintln!(
                "replay: recovered {n} rows into {}{}",
                out.display(),
                if truncated {
                    " (the journal ended mid-batch; rows after its last flush are lost)"
                } else {
                    ""
                }
            );
            return Ok(ExitCode::SUCCESS);
        }
        replay(cli)
    })
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

fn replay(cli: Cli) -> anyhow::Result<ExitCode> {
    // Inputs and destination are checked before anything is sent.
    let state = match &cli.engine {
        Some(name) if cli.url.is_none() => Some(EngineState::load(&cli.state_dir, name)?),
        Some(name) => EngineState::load(&cli.state_dir, name).ok(),
        None => None,
    };
    let url = match (&cli.url, &state) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => bail!("say where to send requests: --url http://HOST:PORT, or --engine NAME after engine-up"),
    };
    let target = Target::parse(&url).map_err(anyhow::Error::msg)?;
    if !(cli.time_scale.is_finite() && cli.time_scale > 0.0) {
        bail!("--time-scale must be a positive number, got {}", cli.time_scale);
    }
    if cli.concurrency == Some(0) {
        bail!("--concurrency must be at least 1");
    }
    let warmup = match cli.warmup.as_deref() {
        None => None,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => Some(Warmup::Count(n)),
            Err(_) => Some(Warmup::For(servebench::units::parse_duration(s)?)),
        },
    };
    let extra_body = match &cli.extra_body {
        None => None,
        Some(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            Ok(_) => bail!("--extra-body must be a JSON object, e.g. '{{\"top_k\": 1}}'"),
            Err(e) => bail!("--extra-body is not valid JSON: {e}"),
        },
    };
    let mut headers = Vec::new();
    for h in &cli.headers {
        headers.push(parse_header(h)?);
    }
    let key = match (&cli.api_key_env, &cli.api_key_file) {
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
    let api_choice = match cli.api.as_str() {
        // The engine's configured protocol (engines.toml `api`) wins over probing.
        "auto" => state.as_ref().and_then(|s| Api::from_name(&s.api)),
        s => Some(
            Api::from_name(s)
                .with_context(|| format!("--api {s}: use chat, completions, tgi, sglang, llamacpp, ollama or auto"))?,
        ),
    };
    let shard = match &cli.shard {
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
    let start_at_unix_us = match &cli.start_at {
        None => None,
        Some(t) => Some(parse_start_at(t)?),
    };
    let reader = TraceReader::open(&cli.trace)?;
    let dataset_path = cli.dataset.as_ref().map(|d| {
        let run = servebench::meta::RunClock::global().run_id.clone();
        match shard {
            Some((i, _)) => d.join(format!("shard={i}")).join(format!("part-{run}.parquet")),
            None => d.join(format!("part-{run}.parquet")),
        }
    });
    let dest = match cli.out.output.as_ref().or(dataset_path.as_ref()) {
        Some(p) => Dest::File {
            path: p.clone(),
            format: cli.out.format,
        },
        None => {
            servebench::io::resolve_format(None, cli.out.format)?;
            Dest::Stdout(cli.out.format)
        }
    };
    // A destination that cannot be written fails now, before anything is sent; a journal
    // left by a killed run is never overwritten.
    if let Dest::File { path, .. } = &dest {
        servebench::io::check_output(path)?;
        let j = journal_path(path);
        if j.exists() {
            bail!(
                "{}: an earlier run's journal is there (that run was killed before it finished); \
                 write out its rows with `replay --recover {} -o {}`, or delete it",
                j.display(),
                j.display(),
                path.display()
            );
        }
    }

    servebench::os::prepare_fds(65_536);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async_main(
        cli,
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
    ))
}

/// `--start-at`: RFC 3339 (UTC offset allowed) or Unix seconds; returns Unix microseconds.
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

#[allow(clippy::too_many_arguments)]
async fn async_main(
    cli: Cli,
    state: Option<EngineState>,
    target: Target,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    api_choice: Option<Api>,
    extra_body: Option<serde_json::Map<String, serde_json::Value>>,
    warmup: Option<Warmup>,
    mut reader: TraceReader,
    dest: Dest,
    shard: Option<(u32, u32)>,
    start_at_unix_us: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let clock = RunClock::global();
    let client = Arc::new(Client::new(target.clone(), headers, !cli.no_keep_alive));
    let info = probe(&client, Duration::from_secs(3)).await;
    let api = match api_choice {
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
    let model = cli
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
        .or_else(|| cli.engine.clone())
        .or(info.engine.clone());
    let quant = cli
        .quant
        .clone()
        .or_else(|| state.as_ref().and_then(|s| s.quant.clone()));
    let trace_meta = reader.meta().clone();
    let total_rows = reader.num_rows().filter(|_| shard.is_none()).map(|n| {
        match cli.warmup.as_deref().and_then(|w| w.parse::<u64>().ok()) {
            Some(w) => n + w,
            None => n,
        }
    });
    let rate_rps = match cli.concurrency {
        Some(_) => None,
        None => trace_meta
            .get(trace::META_RATE)
            .and_then(|r| r.parse::<f64>().ok())
            .map(|r| r / cli.time_scale),
    };
    let labels = RunLabels {
        label: cli.label.clone().or(engine.clone()).unwrap_or_else(|| "run".into()),
        run_id: clock.run_id.clone(),
        engine: engine.clone(),
        model: model.clone(),
        quant: quant.clone(),
        api: api.name().into(),
        concurrency: cli.concurrency,
        rate_rps,
    };
    let mut meta = Meta::for_output(&REQUESTS, false);
    meta.set("servebench.url", target.base_url());
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
    if let Some(s) = &state {
        // the engine's own argv and environment may hold keys: never write them
        let mut s = s.clone();
        s.argv = servebench::meta::redact_args(&s.argv);
        servebench::meta::redact_env(&mut s.env);
        meta.set("servebench.engine_state", serde_json::to_string(&s).unwrap_or_default());
    }
    if !info.facts.is_empty() {
        meta.set(
            "servebench.server_info",
            serde_json::to_string(&info.facts).unwrap_or_default(),
        );
    }
    meta.set("servebench.trace.path", cli.trace.clone());
    for (k, v) in &trace_meta.0 {
        if k.starts_with("servebench.trace.") {
            meta.set(k.clone(), v.clone());
        }
    }
    if let Some((i, n)) = shard {
        meta.set("servebench.shard", format!("{i}/{n}"));
    }
    if let Some(at) = start_at_unix_us {
        meta.set("servebench.start_at", servebench::meta::rfc3339_us(at));
        if at < clock.now_unix_us() - 1_000_000 {
            eprintln!("replay: warning: --start-at is already past; starting now (the file records how late)");
        }
    }
    meta.set(
        "servebench.mode",
        match cli.concurrency {
            Some(c) => format!("closed loop, {c} users"),
            None => format!("open loop, time scale {}", cli.time_scale),
        },
    );

    let prompter: Arc<dyn Prompter> = match &cli.tokenizer {
        Some(p) => {
            let t = servebench::trace::tokenizer::Tok::load(p)?;
            meta.set("servebench.prompter", t.describe());
            Arc::new(TokenizerPrompter(Arc::new(t)))
        }
        None => Arc::new(ApproxPrompter),
    };
    let mode = match cli.concurrency {
        Some(c) => Mode::Closed { concurrency: c },
        None => Mode::Open {
            time_scale: cli.time_scale,
            max_in_flight: cli.max_in_flight,
        },
    };
    let plan = Arc::new(Plan {
        client,
        api,
        opts: RequestOpts {
            model,
            ignore_eos: !cli.no_ignore_eos,
            continuous_usage: !cli.no_continuous_usage,
            temperature: cli.temperature,
            extra_body,
        },
        mode,
        warmup,
        duration: cli.duration,
        max_requests: cli.max_requests,
        timeout: cli.timeout,
        ttft_timeout: cli.ttft_timeout,
        prompt_seed: cli.seed,
        max_event_bytes: cli.max_event_bytes,
        prompter,
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

    let sw = Switches::new(cli.grace);
    // Signals: the first stops scheduling (grace for in-flight), the second cancels now.
    let signalled = Arc::new(std::sync::atomic::AtomicI32::new(0));
    {
        let sw = sw.clone();
        let signalled = signalled.clone();
        let grace = cli.grace;
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            let mut n = 0;
            loop {
                let code = tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                };
                signalled.store(code, std::sync::atomic::Ordering::SeqCst);
                n += 1;
                if n == 1 {
                    eprintln!("replay: stopping: no new requests; in-flight ones get {grace:?} (again to cancel now)");
                    sw.stop();
                } else {
                    eprintln!("replay: cancelling in-flight requests");
                    sw.cancel();
                }
            }
        });
    }
    if let Some(d) = cli.duration {
        let sw = sw.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            sw.stop();
        });
    }

    // Trace rows flow in from a reader thread (a pipe from tracegen streams).
    let (rows_tx, rows_rx) = tokio::sync::mpsc::channel(4);
    let feeder_sw = sw.clone();
    let feeder = std::thread::spawn(move || -> Result<(u64, String), servebench::io::DataError> {
        use sha2::{Digest, Sha256};
        servebench::os::background_thread();
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(batch) = reader.next_rows() {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    feeder_sw.stop();
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
                    .filter(|r| servebench::client::run::shard_of(r, k) == i)
                    .collect(),
                None => batch,
            };
            if rows_tx.blocking_send(batch).is_err() {
                break;
            }
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((n, hex))
    });

    let (tx, rx) = std::sync::mpsc::channel();
    let progress = if cli.quiet {
        indicatif::ProgressBar::hidden()
    } else {
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
    };
    let writer_labels = labels.clone();
    let writer_meta = meta.clone();
    let writer_progress = progress.clone();
    let writer_sw = sw.clone();
    let out_path = match &dest {
        Dest::File { path, .. } => Some(path.clone()),
        Dest::Stdout(_) => None,
    };
    let writer = std::thread::spawn(move || {
        servebench::os::background_thread();
        let r = write_records(rx, &writer_labels, &dest, &writer_meta, &writer_progress);
        if r.is_err() {
            // Rows can no longer be recorded (disk full, output gone): stop sending at once.
            writer_sw.cancel();
        }
        r.map(|r| (r, dest))
    });

    let health = run(plan, rows_rx, tx, sw).await;
    progress.finish_and_clear();
    let (tally, journal, dest) = match writer.join() {
        Ok(Ok(((t, j), d))) => (t, j, d),
        Ok(Err(e)) => {
            let mut msg = format!("{e}; the run was stopped, as its rows could not be recorded");
            if let Some(p) = &out_path
                && journal_path(p).exists()
            {
                let j = journal_path(p);
                msg.push_str(&format!(
                    "; rows recorded before the failure are in {}: `replay --recover {} -o {}` once there is room",
                    j.display(),
                    j.display(),
                    p.display()
                ));
            }
            bail!(msg);
        }
        Err(_) => bail!("the writer thread failed"),
    };
    let feed = feeder
        .join()
        .map_err(|_| anyhow::anyhow!("the trace reader thread failed"))?;
    let mut extra = Meta::default();
    extra.set("servebench.client", serde_json::to_string(&health).unwrap_or_default());
    if let Ok((n, hash)) = &feed {
        extra.set("servebench.trace.sha256", hash.clone());
        extra.set("servebench.trace.rows", n.to_string());
    }
    if let (Some(j), Dest::File { path, format }) = (&journal, &dest) {
        finalize(j, path, *format, &extra).map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "cannot write {}; every row is kept in {}: `replay --recover {} -o {}` once the problem is fixed",
                path.display(),
                j.display(),
                j.display(),
                path.display()
            ))
        })?;
    }
    if !cli.quiet {
        eprintln!(
            "replay: {} | client: {:.1} s CPU over {:.1} s, peak {} in flight, max sched lag {:.2} ms",
            summary_line(&tally),
            health.cpu_user_s + health.cpu_sys_s,
            health.wall_s,
            health.peak_in_flight,
            health.max_sched_lag_ms
        );
    }
    if let Err(e) = feed {
        return Err(anyhow::Error::new(e).context("the trace has a bad row; rows before it were replayed and written"));
    }
    // Interrupted runs wrote a valid file; the exit status says they were interrupted
    // (130 for SIGINT, 143 for SIGTERM, as shells report them).
    match signalled.load(std::sync::atomic::Ordering::SeqCst) {
        0 => Ok(ExitCode::SUCCESS),
        c => Ok(ExitCode::from(c as u8)),
    }
}
