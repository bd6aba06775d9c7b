//! chart: draw summary (and requests) files as PNG and SVG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::analysis::{self, Monitors, Options, Slo, read_summary};
use crate::chart::kinds;

const EXAMPLES: &str = "\
Examples:
  chart summary.parquet -o charts/
  chart runs/demo/summary.parquet --requests runs/demo/requests -o runs/demo/charts \\
        --title 'mock-engine, 512 in / 128 out' --slo ttft=500ms,tpot=50ms
  chart runs/sweep/capacity.parquet -o runs/sweep/charts     # a sweep's capacity charts

From summaries: percentiles of TTFT, TPOT, ITL and E2E per group (any summary); throughput
(output tokens/s with 95% CIs, requests/s, goodput) and TTFT/TPOT/E2E percentiles against
concurrency and against request rate (load levels on a log axis, ticks only at measured levels; a
single measured level is drawn as bars); heat maps of latency by engine and load (coloured
against --slo when given); the Pareto chart
(output tokens/s per GPU against tokens/s per user); GPU memory idle vs under load (when agg had
--gpu). From requests (--requests): box plots and CDFs of TTFT, TPOT and E2E per load level (or
of all requests, for runs without one). From gpumon (--gpu) and enginemon (--engine-metrics)
files: the GPU and engine timelines with the request rate beneath, each run shaded and
labelled. From capacity files (sweep's capacity.parquet, as an input or with --capacity): SLO
attainment and each limited percentile against the offered rate, each label's capacity (the
knee) and the SLO drawn, saturated steps ringed; capacity per engine and quantization as bars with
their 95% intervals (req/s and output tokens/s). Charts of synthetic data (gpumon --fake) carry a SYNTHETIC DATA banner. PNG and SVG
each; colours follow engines, markers and dashes quantization; legends sit where they cover no
data.";

/// chart's command line.
#[derive(Parser, Debug)]
#[command(name = "chart", version, about = "Draw benchmark charts (PNG and SVG) from agg's summary files", after_help = EXAMPLES)]
pub struct Args {
    /// Summary files (from agg), or capacity files (from sweep)
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Capacity files (sweep's capacity.parquet): the capacity charts
    #[arg(long, value_name = "PATH")]
    pub capacity: Vec<String>,
    /// Requests files or directories, for distributions (box plots, CDFs)
    #[arg(long, value_name = "PATH")]
    pub requests: Vec<String>,
    /// gpumon files: the GPU timeline (memory, utilisation, power; request rate from --requests)
    #[arg(long, value_name = "PATH")]
    pub gpu: Vec<String>,
    /// enginemon files: the engine timeline (running, waiting, KV cache; request rate)
    #[arg(long, value_name = "PATH")]
    pub engine_metrics: Vec<String>,
    /// SLOs the heat maps colour against (`ttft=500ms,tpot=50ms`; agg's --slo grammar);
    /// without one a heat map colours each cell relative to the others
    #[arg(long, value_name = "SLO")]
    pub slo: Option<Slo>,
    /// GPUs per engine, for throughput per GPU in the Pareto chart
    #[arg(long, default_value_t = 1.0)]
    pub gpus: f64,
    /// Output directory
    #[arg(short = 'o', long, default_value = "charts")]
    pub output: PathBuf,
    /// A line under every chart title (workload, hardware...)
    #[arg(long, default_value = "")]
    pub title: String,
}

/// Run chart.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.gpus.is_finite() && args.gpus > 0.0) {
        anyhow::bail!("--gpus must be a positive number");
    }
    // capacity files given as inputs (or with --capacity) draw the capacity charts
    let mut cap_files = crate::chart::capacity::files_among(&args.inputs);
    cap_files.extend(crate::io::expand_inputs_of(
        &args.capacity,
        Some(crate::schema::CAPACITY.name),
    )?);
    cap_files.sort();
    cap_files.dedup();
    let mut summaries = Vec::new();
    for a in args.inputs.iter().filter(|p| !cap_files.contains(p)) {
        match crate::io::expand_inputs_of(std::slice::from_ref(a), Some("summary")) {
            Ok(v) => summaries.extend(v),
            // a sweep's directory: its capacity file, and requests rather than summaries
            Err(_) if std::path::Path::new(a).is_dir() && cap_files.iter().any(|c| c.starts_with(a.as_str())) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut rows = Vec::new();
    for p in summaries.iter().filter(|p| !cap_files.contains(p)) {
        rows.extend(read_summary(p).with_context(|| format!("reading {p}"))?);
    }
    let (dir, title) = (&args.output, &args.title);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (capacity, _) =
        crate::chart::capacity::read(&cap_files).with_context(|| format!("reading {}", cap_files.join(" ")))?;
    let mut files = crate::chart::capacity::charts(&capacity, dir, title)?;
    files.extend(kinds::percentiles(&rows, dir, title)?);
    files.extend(kinds::load_curves(&rows, dir, title)?);
    files.extend(kinds::pareto(&rows, dir, title, args.gpus)?);
    files.extend(kinds::heatmaps(&rows, dir, title, &args.slo.unwrap_or_default())?);
    // GPU figures from scripted devices (gpumon --fake) carry a synthetic-data banner
    let synthetic = crate::chart::gpu_files_synthetic(&args.gpu);
    files.extend(kinds::gpu_memory(&rows, dir, title, synthetic)?);
    let requests = crate::io::expand_inputs_of(&args.requests, Some("requests"))?;
    if !requests.is_empty() {
        let o = Options {
            bootstrap: 0,
            ..Options::default()
        };
        let an = analysis::analyse(&requests, &o, &Monitors::default())?;
        files.extend(kinds::distributions(&an.groups, dir, title)?);
    }
    if !args.gpu.is_empty() || !args.engine_metrics.is_empty() {
        let runs = kinds::runs_of(&requests)?;
        let mons = Monitors::load(&args.gpu, &args.engine_metrics)?;
        files.extend(kinds::gpu_timeline(&mons.gpu, &runs, dir, title, synthetic)?);
        files.extend(kinds::engine_timeline(&mons.engine, &runs, dir, title)?);
    }
    if files.is_empty() {
        anyhow::bail!(
            "nothing to draw: the summaries have no groups with latencies (did every request fail? see agg's n_* counts)"
        );
    }
    eprintln!("chart: wrote {} files to {}", files.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}
