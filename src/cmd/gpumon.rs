//! gpumon: sample GPUs through NVML into the gpu contract.
//!
//! [`run`] is the whole tool (what `src/bin/gpumon.rs` calls); [`run_with`] samples under a
//! [`Stop`] the caller holds, without taking signals (tests).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::gpu::fake::{EngineLoad, FakeSource};
use crate::gpu::nvml::NvmlSource;
use crate::gpu::{GpuRow, GpuSource, ProcRow, SamplerConfig, parse_gpu_list};
use crate::meta::{Meta, RunClock};
use crate::recorder::{Dest, Recorder};
use crate::schema::{GPU, GPU_PROCESSES};
use crate::stop::{self, SignalWatch, Stop, StopReason};
use anyhow::bail;
use clap::Parser;

pub const EXAMPLES: &str = "\
Examples:
  # every GPU every 100 ms until Ctrl-C or SIGTERM (kill %1)
  gpumon -o runs/gpu.parquet &
  # exactly as long as a command runs; gpumon exits with the command's status
  gpumon -o runs/gpu.parquet -- replay trace.parquet --engine vllm -o runs/vllm.parquet
  # two GPUs, 20 ms, one minute, with each process's memory (runs/gpu.processes.parquet)
  gpumon --gpus 0,1 --interval 20ms --duration 1m --processes -o runs/gpu.parquet
  # no GPU here: two scripted devices (idle for 2 s, then an engine holding 70 GB)
  gpumon --fake 2 --duration 10s -o demo-gpu.parquet
  # a gpumon killed with SIGKILL: write out what its journal holds
  gpumon --recover runs/_gpu.parquet.partial

Rows go to DIR/_FILE.partial (an Arrow IPC journal flushed every second) and become FILE at the end,
so a killed gpumon loses at most the last second. SIGINT/SIGTERM end sampling (exit 0) and leave
a valid file; with a command they are forwarded to it instead, and sampling ends when it does.
Ticks are on absolute deadlines; ticks skipped because sampling fell behind are counted in
missed_ticks. PCIe throughput comes from the driver's PCIe byte counters (null where the driver
has none). The closing line and the file's metadata (servebench.gpumon) give gpumon's own CPU
cost.";

#[derive(Parser)]
#[command(
    name = "gpumon",
    version,
    about = "Sample NVIDIA GPUs through NVML into the gpu contract",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Sampling interval (10ms at least)
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "100ms")]
    interval: Duration,
    /// Devices to sample, by NVML index, e.g. 0,1 [default: all]
    #[arg(long, value_name = "LIST")]
    gpus: Option<String>,
    /// Also record the GPU memory of each process (pid, name, MiB) in a second file
    #[arg(long)]
    processes: bool,
    /// Where --processes rows go [default: beside -o, NAME.processes.parquet]
    #[arg(long, value_name = "PATH")]
    processes_out: Option<PathBuf>,
    /// Sample N scripted devices instead of NVML (for tests and demos on machines without a GPU):
    /// idle for 2 s, then an engine holding 70 GB at 25-95% utilisation
    #[arg(long, value_name = "N")]
    fake: Option<u32>,
    /// With --fake: the scripted devices follow this engine's running requests (its Prometheus
    /// metrics, read every --interval; a URL as enginemon's --url) instead of a scripted sine:
    /// idle while it does not answer, utilisation rising with its batch. Still marked synthetic
    #[arg(long, value_name = "URL", requires = "fake")]
    fake_load: Option<String>,
    #[command(flatten)]
    mon: super::MonitorArgs,
}

/// `runs/gpu.parquet` -> `runs/gpu.processes.parquet`.
fn beside(p: &Path) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "gpu".into());
    let ext = p
        .extension()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "parquet".into());
    p.with_file_name(format!("{stem}.processes.{ext}"))
}

/// Run gpumon: `--print-schema`, `--recover`, or sampling until SIGINT/SIGTERM, `--duration`
/// or the end of the wrapped command (whose status it then exits with).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::run_monitor("gpumon", args, side_commands, gpumon)
}

/// [`run`] under `stop`, without taking signals: the caller stops it.
pub fn run_with(args: Args, stop: Arc<Stop>) -> anyhow::Result<ExitCode> {
    super::run_monitor_with(args, stop, side_commands, gpumon)
}

fn side_commands(args: &Args) -> anyhow::Result<Option<ExitCode>> {
    let both = [&GPU, &GPU_PROCESSES];
    let contracts = if args.processes { &both[..] } else { &both[..1] };
    super::recorder_side_commands("gpumon", &args.mon.out, args.mon.recover.as_deref(), contracts)
}

fn gpumon(cli: Args, stop: Arc<Stop>, signals: SignalWatch) -> anyhow::Result<ExitCode> {
    if cli.interval < Duration::from_millis(10) {
        bail!(
            "--interval {:?} is too short: 10ms at least (NVML's own counters update every few ms)",
            cli.interval
        );
    }
    cli.mon.check()?;
    let only = cli
        .gpus
        .as_deref()
        .map(parse_gpu_list)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut follower = None;
    let mut src: Box<dyn GpuSource> = match cli.fake {
        Some(0) => bail!("--fake 0: give the number of scripted devices, e.g. --fake 2"),
        Some(n) => {
            let f = FakeSource::new(n, only.as_deref())?;
            match &cli.fake_load {
                Some(url) => {
                    let (load, h) = follow_engine(url, cli.interval, stop.clone())?;
                    follower = Some(h);
                    Box::new(f.following(load))
                }
                None => Box::new(f),
            }
        }
        None => Box::new(NvmlSource::open(only.as_deref())?),
    };
    let dest = Dest::new(cli.mon.out.output.as_deref(), cli.mon.out.format);
    let proc_dest = match (cli.processes, &cli.processes_out, &cli.mon.out.output) {
        (false, None, _) => None,
        (false, Some(_), _) => bail!("--processes-out needs --processes"),
        (true, Some(p), _) => Some(p.clone()),
        (true, None, Some(o)) => Some(beside(o)),
        (true, None, None) => {
            bail!("--processes with output to stdout: say where process rows go with --processes-out FILE")
        }
    };
    let clock = RunClock::global();
    let facts = src.facts();
    let mut meta = Meta::for_output(&GPU, false);
    let mut pmeta = Meta::for_output(&GPU_PROCESSES, false);
    for (k, v) in &facts {
        meta.set(k.clone(), v.clone());
        pmeta.set(k.clone(), v.clone());
    }
    meta.set(
        "servebench.gpumon.interval_ms",
        format!("{}", cli.interval.as_secs_f64() * 1e3),
    );
    let rec = Recorder::<GpuRow>::start("gpumon", dest, &meta, None)?;
    let prec = match &proc_dest {
        Some(p) => match Recorder::<ProcRow>::start("gpumon", Dest::new(Some(p), None), &pmeta, None) {
            Ok(r) => Some(r),
            Err(e) => {
                rec.abandon();
                return Err(e.into());
            }
        },
        None => None,
    };
    let supervised = stop::supervise(&stop, &signals, cli.mon.duration, &cli.mon.command);
    if let Err(e) = supervised {
        rec.abandon();
        if let Some(p) = prec {
            p.abandon();
        }
        return Err(e.into());
    }
    let cfg = SamplerConfig {
        interval: cli.interval,
        processes: proc_dest.is_some(),
        max_ticks: None,
        final_sample: true,
    };
    let stats = crate::gpu::run(src.as_mut(), &cfg, &stop, clock, &mut |rows, procs| {
        let ok = rec.send(rows) && prec.as_ref().is_none_or(|p| p.send(procs));
        if !ok {
            stop.request(StopReason::OutputFailed);
        }
    });
    if let Some(h) = follower {
        let _ = h.join();
    }
    let process_cpu_s = crate::monitor::cpu_seconds(false);
    let reason = stop.reason();
    let summary = serde_json::json!({
        "interval_ms": cli.interval.as_secs_f64() * 1e3,
        "gpus": src.devices().len(),
        "ticks": stats.ticks,
        "rows": stats.rows,
        "process_rows": stats.process_rows,
        "missed_ticks": stats.missed_ticks,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "wall_s": stats.wall_s,
        "sampler_cpu_s": stats.thread_cpu_s,
        "process_cpu_s": process_cpu_s,
        "sampler_cpu_us_per_tick": stats.cpu_us_per_tick(),
        "stopped_by": reason.as_ref().map(|r| r.describe()),
    });
    let mut extra = Meta::default();
    extra.set("servebench.gpumon", summary.to_string());
    extra.set("servebench.ended_at", crate::meta::rfc3339_us(clock.now_unix_us()));
    let written = rec.finish(&extra);
    let pwritten = prec.map(|p| p.finish(&extra));
    if let Some(e) = &stats.first_error {
        eprintln!("gpumon: warning: {} failed reads, the first: {e}", stats.errors);
    }
    let n = written?;
    if let Some(r) = pwritten {
        r?;
    }
    if !cli.mon.quiet {
        let cpu_pct = if stats.wall_s > 0.0 {
            100.0 * stats.thread_cpu_s / stats.wall_s
        } else {
            0.0
        };
        eprintln!(
            "gpumon: {n} rows from {} GPU(s), {} ticks ({} missed) in {:.1} s; sampling cost {:.0} us CPU per tick ({:.2}% of a core), {:.2} s CPU in all; stopped: {}",
            src.devices().len(),
            stats.ticks,
            stats.missed_ticks,
            stats.wall_s,
            stats.cpu_us_per_tick(),
            cpu_pct,
            process_cpu_s,
            reason.as_ref().map(|r| r.describe()).unwrap_or_default()
        );
    }
    Ok(stop::exit_code(reason.as_ref()))
}

/// `--fake-load URL`: a thread reading the engine's running requests from its metrics every
/// `interval` until `stop`, for the fake devices to follow.
fn follow_engine(
    url: &str,
    interval: Duration,
    stop: Arc<Stop>,
) -> anyhow::Result<(EngineLoad, std::thread::JoinHandle<()>)> {
    let (origin, path) =
        crate::monitor::scrape::metrics_endpoint(url).map_err(|e| anyhow::anyhow!("--fake-load {url}: {e}"))?;
    let client = crate::client::http::Client::new(origin, Vec::new(), true, &crate::client::tls::TlsOptions::default())
        .map_err(|e| anyhow::anyhow!("--fake-load {url}: {e}"))?;
    let load = EngineLoad::default();
    let out = load.clone();
    let timeout = interval.clamp(Duration::from_millis(200), Duration::from_secs(1));
    // the first reading is waited for, so the first sample does not show a running engine idle
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::Builder::new()
        .name("gpumon-fake-load".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            let start = std::time::Instant::now();
            let mut k: u32 = 0;
            loop {
                let running = match rt.block_on(client.get(&path, timeout)) {
                    Ok((200, body)) => {
                        let e = crate::prom::parse(&String::from_utf8_lossy(&body));
                        crate::enginemon::common_values(&e)
                            .get(crate::enginemon::RUNNING)
                            .map(|v| v.1)
                    }
                    _ => None,
                };
                out.set(running);
                let _ = first_tx.send(());
                k = k.saturating_add(1);
                if stop.wait_until(start + interval.saturating_mul(k)) {
                    break;
                }
            }
        })?;
    let _ = first_rx.recv_timeout(timeout + Duration::from_millis(500));
    Ok((load, h))
}
