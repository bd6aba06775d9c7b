//! enginemon: scrape an inference engine's Prometheus metrics into the engine_metrics contract.
//!
//! [`run`] is the whole tool (what `src/bin/enginemon.rs` calls); [`run_with`] scrapes under
//! a [`Stop`] the caller holds, without taking signals (tests). The scraper itself is
//! [`crate::monitor::scrape`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::http::Client;
use crate::engine::state::EngineState;
use crate::enginemon::{EngineRow, RowFilter};
use crate::meta::{Meta, RunClock};
use crate::monitor::scrape::{Scrape, metrics_endpoint, scrape_loop};
use crate::recorder::{Dest, Recorder};
use crate::schema::ENGINE_METRICS;
use crate::stop::{self, SignalWatch, Stop};
use anyhow::{Context, bail};
use clap::Parser;

pub const EXAMPLES: &str = "\
Examples:
  # vLLM, SGLang, TGI, llama.cpp: the server's base URL (/metrics is added)
  enginemon --url http://127.0.0.1:8000 -o runs/engine.parquet &
  # TensorRT-LLM (Prometheus text at /prometheus/metrics), Friendli (port 8281)
  enginemon --url http://127.0.0.1:8000/prometheus/metrics -o runs/trtllm-metrics.parquet
  enginemon --url http://127.0.0.1:8281/metrics -o runs/friendli-metrics.parquet
  # the engine started by engine-up, for exactly as long as a replay runs
  enginemon --engine vllm -o runs/engine.parquet -- replay trace.parquet --engine vllm -o runs/vllm.parquet
  # a killed enginemon: write out what its journal holds
  enginemon --recover runs/_engine.parquet.partial

One row per exposed sample and scrape (long format: t, metric, labels, value); the well-known
series carry a common name (running, waiting, kv_usage, prefix_cache_hit_rate, ...) whatever the
engine calls them. A failed scrape is reported and retried at the next tick. Stopping, the
wrapped command and the journal (DIR/_FILE.partial, flushed every second) work as in gpumon.";

#[derive(Parser)]
#[command(
    name = "enginemon",
    version,
    about = "Scrape an inference engine's Prometheus metrics into the engine_metrics contract",
    after_help = EXAMPLES
)]
pub struct Args {
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
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "1s")]
    interval: Duration,
    /// Give up on a scrape after D
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "5s")]
    timeout: Duration,
    /// Keep only the well-known series (running, waiting, KV usage, prefix cache, speculative decoding)
    #[arg(long)]
    common_only: bool,
    #[command(flatten)]
    tls: crate::cli::TlsArgs,
    #[command(flatten)]
    mon: super::MonitorArgs,
}

/// Run enginemon: `--print-schema`, `--recover`, or scraping until SIGINT/SIGTERM,
/// `--duration` or the end of the wrapped command (whose status it then exits with).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::run_monitor("enginemon", args, side_commands, enginemon)
}

/// [`run`] under `stop`, without taking signals: the caller stops it.
pub fn run_with(args: Args, stop: Arc<Stop>) -> anyhow::Result<ExitCode> {
    super::run_monitor_with(args, stop, side_commands, enginemon)
}

fn side_commands(args: &Args) -> anyhow::Result<Option<ExitCode>> {
    super::recorder_side_commands(
        "enginemon",
        &args.mon.out,
        args.mon.recover.as_deref(),
        &[&ENGINE_METRICS],
    )
}

fn enginemon(cli: Args, stop: Arc<Stop>, signals: SignalWatch) -> anyhow::Result<ExitCode> {
    if cli.interval < Duration::from_millis(10) {
        bail!("--interval {:?} is too short: 10ms at least", cli.interval);
    }
    cli.mon.check()?;
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
    let dest = Dest::new(cli.mon.out.output.as_deref(), cli.mon.out.format);
    let clock = RunClock::global();
    let mut meta = Meta::for_output(&ENGINE_METRICS, false);
    meta.set("servebench.metrics_url", shown.clone());
    if target.scheme == crate::endpoint::Scheme::Https {
        meta.set("servebench.tls", cli.tls.options().describe());
    }
    if let Some(s) = &state {
        meta.set("servebench.engine", s.name.clone());
        if let Some(v) = &s.version {
            meta.set("servebench.engine_version", v.clone());
        }
        meta.set("servebench.model", s.model.clone());
    }
    let rec = Recorder::<EngineRow>::start("enginemon", dest, &meta, None)?;
    if let Err(e) = stop::supervise(&stop, &signals, cli.mon.duration, &cli.mon.command) {
        rec.abandon();
        return Err(e.into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let scrape = Scrape {
        client: Client::new(target, Vec::new(), false, &cli.tls.options())?,
        path,
        shown: shown.clone(),
        interval: cli.interval,
        timeout: cli.timeout,
        filter: RowFilter {
            common_only: cli.common_only,
        },
    };
    let started = Instant::now();
    let cpu0 = crate::monitor::cpu_seconds(false);
    let tally = rt.block_on(scrape_loop(&scrape, &stop, clock, &rec.feed()));
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = crate::monitor::cpu_seconds(false) - cpu0;
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
    extra.set("servebench.ended_at", crate::meta::rfc3339_us(clock.now_unix_us()));
    let n = rec.finish(&extra)?;
    if !cli.mon.quiet {
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
    Ok(stop::exit_code(reason.as_ref()))
}
