//! chart: draw summary (and requests) files as PNG and SVG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use servebench::agg::{self, Groups, Options, read_summary};
use servebench::chart::kinds;
use servebench::cli::run_main;

const EXAMPLES: &str = "\
Examples:
  chart summary.parquet -o charts/
  chart runs/demo/summary.parquet --requests runs/demo/requests -o runs/demo/charts \\
        --title 'mock-engine, 512 in / 128 out'

From summaries: throughput (output tokens/s with 95% CIs, requests/s, goodput) and TTFT/TPOT/E2E
percentiles against concurrency and against request rate; heat maps of latency by engine and
load; the Pareto chart (output tokens/s per GPU against tokens/s per user); GPU memory idle vs
under load (when agg had --gpu). From requests (--requests): box plots and CDFs of TTFT, TPOT
and E2E per load level. From gpumon (--gpu) and enginemon (--engine-metrics) files: the GPU and
engine timelines with the request rate beneath. PNG and SVG each; colours follow engines,
markers quantization.";

#[derive(Parser)]
#[command(name = "chart", version, about = "Draw benchmark charts (PNG and SVG) from agg's summary files", after_help = EXAMPLES)]
struct Cli {
    /// Summary files (from agg)
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Requests files or directories, for distributions (box plots, CDFs)
    #[arg(long, value_name = "PATH")]
    requests: Vec<String>,
    /// gpumon files: the GPU timeline (memory, utilisation, power; request rate from --requests)
    #[arg(long, value_name = "PATH")]
    gpu: Vec<String>,
    /// enginemon files: the engine timeline (running, waiting, KV cache; request rate)
    #[arg(long, value_name = "PATH")]
    engine_metrics: Vec<String>,
    /// GPUs per engine, for throughput per GPU in the Pareto chart
    #[arg(long, default_value_t = 1.0)]
    gpus: f64,
    /// Output directory
    #[arg(short = 'o', long, default_value = "charts")]
    output: PathBuf,
    /// A line under every chart title (workload, hardware...)
    #[arg(long, default_value = "")]
    title: String,
}

fn main() -> ExitCode {
    run_main("chart", || {
        let cli: Cli = servebench::cli::parse("chart");
        if !(cli.gpus.is_finite() && cli.gpus > 0.0) {
            anyhow::bail!("--gpus must be a positive number");
        }
        let mut rows = Vec::new();
        for p in servebench::io::expand_inputs_of(&cli.inputs, Some("summary"))? {
            rows.extend(read_summary(&p).with_context(|| format!("reading {p}"))?);
        }
        std::fs::create_dir_all(&cli.output).with_context(|| format!("creating {}", cli.output.display()))?;
        let mut files = kinds::load_curves(&rows, &cli.output, &cli.title)?;
        files.extend(kinds::pareto(&rows, &cli.output, &cli.title, cli.gpus)?);
        files.extend(kinds::heatmaps(&rows, &cli.output, &cli.title)?);
        files.extend(kinds::gpu_memory(&rows, &cli.output, &cli.title)?);
        if !cli.requests.is_empty() {
            let o = Options {
                bootstrap: 0,
                ..Options::default()
            };
            let mut groups = Groups::default();
            for p in servebench::io::expand_inputs_of(&cli.requests, Some("requests"))? {
                groups.add_file(&p, &o).with_context(|| format!("reading {p}"))?;
            }
            groups.announce_mode(o.exact_budget);
            agg::finish(&mut groups, &o);
            files.extend(kinds::distributions(&groups, &cli.output, &cli.title)?);
        }
        if !cli.gpu.is_empty() || !cli.engine_metrics.is_empty() {
            let req = servebench::io::expand_inputs_of(&cli.requests, Some("requests")).unwrap_or_default();
            let sends = kinds::send_times(&req)?;
            let mons = agg::Monitors::load(&cli.gpu, &cli.engine_metrics)?;
            files.extend(kinds::gpu_timeline(&mons.gpu, &sends, &cli.output, &cli.title)?);
            files.extend(kinds::engine_timeline(&mons.engine, &sends, &cli.output, &cli.title)?);
        }
        if files.is_empty() {
            anyhow::bail!(
                "nothing to draw: the summaries have no concurrency or rate_rps values (run replay with --concurrency, or an open-loop trace from tracegen)"
            );
        }
        eprintln!("chart: wrote {} files to {}", files.len(), cli.output.display());
        Ok(ExitCode::SUCCESS)
    })
}
