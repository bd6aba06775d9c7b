//! chart: draw summary (and requests) files as PNG and SVG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use servebench::agg::read_summary;
use servebench::chart::kinds;
use servebench::cli::run_main;

const EXAMPLES: &str = "\
Examples:
  chart summary.parquet -o charts/
  chart runs/demo/summary.parquet -o runs/demo/charts --title 'mock-engine, 512 in / 256 out'

Writes PNG and SVG for each chart the data supports: throughput (output tokens/s and
requests/s) and TTFT/TPOT/E2E percentiles against concurrency and against request rate, with
95% confidence intervals as error bars. Colours follow engines, markers follow quantization.";

#[derive(Parser)]
#[command(name = "chart", version, about = "Draw benchmark charts (PNG and SVG) from agg's summary files", after_help = EXAMPLES)]
struct Cli {
    /// Summary files (from agg)
    #[arg(required = true)]
    inputs: Vec<String>,
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
        let mut rows = Vec::new();
        for p in servebench::io::expand_inputs(&cli.inputs)? {
            rows.extend(read_summary(&p).with_context(|| format!("reading {p}"))?);
        }
        std::fs::create_dir_all(&cli.output).with_context(|| format!("creating {}", cli.output.display()))?;
        let files = kinds::load_curves(&rows, &cli.output, &cli.title)?;
        if files.is_empty() {
            anyhow::bail!(
                "nothing to draw: the summaries have no concurrency or rate_rps values (run replay with --concurrency, or an open-loop trace from tracegen)"
            );
        }
        for f in &files {
            eprintln!("chart: wrote {}", f.display());
        }
        Ok(ExitCode::SUCCESS)
    })
}
