//! enginemon: scrape an inference engine's Prometheus metrics into the engine_metrics contract.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use servebench::cli::{OutArgs, run_main};
use servebench::client::http::Client;
use servebench::engine::state::EngineState;
use servebench::enginemon::{EngineRow, RowFilter, detect_engine, metrics_endpoint, rows_from_scrape};
use servebench::meta::{Meta, RunClock};
use servebench::monitor::{self, Dest, Recorder, Stop, StopReason};
use servebench::schema::ENGINE_METRICS;

const EXAMPLES: &str = "\
Examples:
  # vLLM, SGLang, TGI, llama.cpp: the server's base URL (/metrics is added)
  enginemon --url http://127.0.0.1:8000 -o runs/engine.parquet &
  # TensorRT-LLM (Prometheus text at /prometheus/metrics), Friendli (port 8281)
  enginemon --url http://127.0.0.1:8000/prometheus/metrics -o runs/trtllm-metrics.parquet
  enginemon --url http://127.0.0.1:8281/metrics -o runs/friendli-metrics.parquet
  # the engine started by engine-up, for exactly as long as a replay runs
  enginemon --engine vllm -o runs/engine.parquet -- replay trace.parquet --engine vllm -o runs/vllm.parquet
  # a killed enginemon: write out what its journal holds
  enginemon --recover runs/engine.parquet.partial

One row per exposed sample and scrape (long format: t, metric, labels, value); the well-known
series carry a common name (running, waiting, kv_usage, prefix_cache_hit_rate, ...) whatever the
engine calls them. A failed scrape is reported and retried at the next tick. Stopping, the
wrapped command and the journal (FILE.partial, flushed every second) work as in gpumon.";

#[derive(Parser)]
#[command(
    name = "enginemon",
    version,
    about = "Scrape an inference engine's Prometheus metrics into the engine_metrics contract",
    after_help = EXAMPLES
)]
struct Cli {
    /// The engine's base URL (/metrics is added) or its full metrics URL
    #[arg(long)]
    url: Option<String>,
    /// Use the metrics URL of the engine started by `engine-up NAME`
    #[arg(long, value_name = "NAME")]
    engine: Option<String>,
    /// Directory of engine-up state files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    state_dir: PathBuf,
    /// Scrape interval
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg, default_value = "1s")]
    interval: Duration,
    /// Give up on a scrape after D
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg, default_value = "5s")]
    timeout: Duration,
    /// Stop after D (without a command)
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg)]
    duration: Option<Duration>,
    /// Keep only the well-known series (running, waiting, KV usage, prefix cache)
    #[arg(long)]
    common_only: bool,
    /// Write out what a killed enginemon left in a journal (FILE.partial), then exit
    #[arg(long, value_name = "PARTIAL")]
    recover: Option<PathBuf>,
    /// No closing summary line
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    out: OutArgs,
    /// A command to run: scraping lasts exactly as long as it runs, and enginemon exits with its status
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let _ = monitor::block_signals();
    run_main("enginemon", || {
        let cli: Cli = servebench::cli::parse("enginemon");
        if cli.out.print_schema {
            print!("{}", ENGINE_METRICS.print());
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(j) = &cli.recover {
            monitor::recover(j, cli.out.output.as_deref(), cli.out.format, "enginemon")?;
            return Ok(ExitCode::SUCCESS);
        }
        enginemon(cli)
    })
}

#[derive(Default)]
struct Tally {
    scrapes: u64,
    failed: u64,
    missed_ticks: u64,
    rows: u64,
    parse_errors: u64,
    engine: Option<&'static str>,
}

fn enginemon(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.interval < Duration::from_millis(10) {
        bail!("--interval {:?} is too short: 10ms at least", cli.interval);
    }
    if cli.duration.is_some() && !cli.command.is_empty() {
        bail!("--duration cannot be combined with a command: the command decides how long scraping lasts");
    }
    let stop = Stop::new();
    let signals = monitor::watch_signals(&stop, "enginemon");
    let state = match &cli.engine {
        Some(name) => Some(EngineState::load(&cli.state_dir, name)?),
        None => None,
    };
    let url = match (&cli.url, &state) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.metrics_url.clone().unwrap_or_else(|| s.url.clone()),
        (None, None) => bail!("say where the metrics are: --url http://HOST:PORT, or --engine NAME after engine-up"),
    };
    let (target, path) = metrics_endpoint(&url).map_err(anyhow::Error::msg)?;
    let shown = format!("{}{path}", target.base_url());
    let dest = match &cli.out.output {
        Some(p) => Dest::File {
            path: p.clone(),
            format: cli.out.format,
        },
        None => Dest::Stdout(cli.out.format),
    };
    let clock = RunClock::global();
    let mut meta = Meta::for_output(&ENGINE_METRICS, false);
    meta.set("servebench.metrics_url", shown.clone());
    if let Some(s) = &state {
        meta.set("servebench.engine", s.name.clone());
        if let Some(v) = &s.version {
            meta.set("servebench.engine_version", v.clone());
        }
        meta.set("servebench.model", s.model.clone());
    }
    let rec = Recorder::<EngineRow>::start(dest, &meta)?;
    if let Err(e) = monitor::supervise(&stop, &signals, cli.duration, &cli.command) {
        rec.abandon();
        return Err(e.into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = Client::new(target, Vec::new(), false);
    let filter = RowFilter {
        common_only: cli.common_only,
    };
    let started = Instant::now();
    let cpu0 = monitor::cpu_seconds(false);
    let tally = rt.block_on(scrape_loop(&cli, &client, &path, &shown, &stop, clock, filter, &rec));
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = monitor::cpu_seconds(false) - cpu0;
    let reason = stop.reason();
    let summary = serde_json::json!({
        "url": shown,
        "engine": tally.engine,
        "interval_ms": cli.interval.as_secs_f64() * 1e3,
        "scrapes": tally.scrapes,
        "failed_scrapes": tally.failed,
        "missed_ticks": tally.missed_ticks,
        "parse_errors": tally.parse_errors,
        "rows": tally.rows,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "stopped_by": reason.as_ref().map(|r| r.describe()),
    });
    let mut extra = Meta::default();
    extra.set("servebench.enginemon", summary.to_string());
    if let Some(e) = tally.engine {
        extra.set("servebench.engine_metrics.flavor", e);
    }
    extra.set("servebench.ended_at", servebench::meta::rfc3339_us(clock.now_unix_us()));
    let n = rec.finish(&extra)?;
    if !cli.quiet {
        eprintln!(
            "enginemon: {n} rows from {} scrapes of {shown} ({} failed, {} ticks missed) in {:.1} s; {:.2} s CPU; stopped: {}",
            tally.scrapes,
            tally.failed,
            tally.missed_ticks,
            wall_s,
            cpu_s,
            reason.as_ref().map(|r| r.describe()).unwrap_or_default()
        );
    }
    Ok(monitor::exit_code(reason.as_ref()))
}

#[allow(clippy::too_many_arguments)]
async fn scrape_loop(
    cli: &Cli,
    client: &Client,
    path: &str,
    shown: &str,
    stop: &Stop,
    clock: &RunClock,
    filter: RowFilter,
    rec: &Recorder<EngineRow>,
) -> Tally {
    let mut t = Tally::default();
    let start = Instant::now();
    let mut k: u64 = 0;
    let mut failing = false;
    let mut warned_parse = false;
    loop {
        let due = start + cli.interval.saturating_mul(k.min(u32::MAX as u64) as u32);
        if stop.wait_until_async(due).await {
            break;
        }
        scrape_once(
            client,
            path,
            shown,
            cli.timeout,
            clock,
            filter,
            rec,
            stop,
            &mut t,
            &mut failing,
            &mut warned_parse,
        )
        .await;
        let (next, skipped) = servebench::gpu::next_tick(k, start.elapsed(), cli.interval);
        k = next;
        t.missed_ticks += skipped;
    }
    // One last scrape, so counters cover the run to its end.
    let last_timeout = cli.timeout.min(Duration::from_secs(2));
    if stop.reason() != Some(StopReason::OutputFailed) {
        scrape_once(
            client,
            path,
            shown,
            last_timeout,
            clock,
            filter,
            rec,
            stop,
            &mut t,
            &mut failing,
            &mut warned_parse,
        )
        .await;
    }
    t
}

#[allow(clippy::too_many_arguments)]
async fn scrape_once(
    client: &Client,
    path: &str,
    shown: &str,
    timeout: Duration,
    clock: &RunClock,
    filter: RowFilter,
    rec: &Recorder<EngineRow>,
    stop: &Stop,
    t: &mut Tally,
    failing: &mut bool,
    warned_parse: &mut bool,
) {
    let sent = Instant::now();
    let r = client.get(path, timeout).await;
    let done = Instant::now();
    let err = match r {
        Ok((200, body)) => {
            let text = String::from_utf8_lossy(&body);
            let e = servebench::prom::parse(&text);
            let at = clock.unix_us(sent + done.duration_since(sent) / 2);
            let rows = rows_from_scrape(at, &e, filter);
            t.scrapes += 1;
            t.rows += rows.len() as u64;
            t.parse_errors += e.errors.len() as u64;
            if !*warned_parse && let Some((line, msg)) = e.errors.first() {
                eprintln!(
                    "enginemon: warning: {shown}: {} line(s) are not Prometheus text and were skipped; line {line}: {msg}",
                    e.errors.len()
                );
                *warned_parse = true;
            }
            if t.engine.is_none() {
                t.engine = detect_engine(&e);
            }
            if !rec.send(rows) {
                stop.request(StopReason::OutputFailed);
            }
            None
        }
        Ok((status, body)) => {
            let b = String::from_utf8_lossy(&body);
            let b = b.trim();
            let snippet: String = b.chars().take(120).collect();
            Some(format!("HTTP {status}: {snippet}"))
        }
        Err(e) => Some(e),
    };
    match err {
        Some(e) => {
            t.failed += 1;
            if !*failing {
                eprintln!("enginemon: scrape of {shown} failed: {e} (retrying every tick)");
                *failing = true;
            }
        }
        None => {
            if *failing {
                eprintln!("enginemon: scraping {shown} again");
                *failing = false;
            }
        }
    }
}
