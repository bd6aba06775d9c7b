//! agg: compute percentiles, throughput and goodput per group from requests files.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use servebench::agg::{self, Defs, Groups, Options, Slo};
use servebench::cli::{CheckFailed, OutArgs, run_main};
use servebench::io::{Format, Sink};
use servebench::meta::Meta;
use servebench::schema::SUMMARY;

const EXAMPLES: &str = "\
Examples:
  agg runs/*.parquet                                  # a table on the terminal
  agg runs/ --slo ttft=500ms,tpot=50ms -o summary.parquet
  agg runs/vllm.parquet --by category --format csv > by-category.csv
  agg runs/ --gpu runs/gpu.parquet --engine-metrics runs/engine.parquet -o summary.parquet
  agg runs/ --defs guidellm --format md               # TPOT/ITL as GuideLLM defines them
  agg runs/ --compare vllm-fp16,vllm-fp8              # ratios B/A with 95% CIs, noise marked

Inputs: files, directories (every .parquet/.arrow under them), globs, or - for stdin.
Groups: label, engine, model, quant, concurrency, rate_rps, plus --by columns.
Warm-up rows are left out unless --include-warmup; failed rows never enter latency statistics.
Percentiles: linear interpolation between closest ranks (numpy's default, DuckDB's quantile_cont).
Output: a Markdown table on a terminal; otherwise the summary contract (Parquet to files,
Arrow IPC to pipes) unless --format says csv, json or md.";

#[derive(Parser)]
#[command(name = "agg", version, about = "Summarise requests files: percentiles, throughput, goodput, confidence intervals", after_help = EXAMPLES)]
struct Cli {
    /// Requests files, directories or globs (- for stdin)
    #[arg(required_unless_present = "print_schema")]
    inputs: Vec<String>,
    /// Also group by these columns (comma separated): category, turn
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Service-level objectives for goodput, e.g. ttft=500ms,tpot=50ms,e2e=10s
    #[arg(long)]
    slo: Option<Slo>,
    /// Keep warm-up rows
    #[arg(long)]
    include_warmup: bool,
    /// TPOT/ITL definitions: vllm (default), aiperf, guidellm
    #[arg(long, value_enum, default_value = "vllm")]
    defs: Defs,
    /// Bootstrap resamples for confidence intervals (0 = none)
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compare label B against label A on every shared load: ratios B/A with 95% CIs
    /// (writes the comparison contract instead of the summary)
    #[arg(long, value_name = "A,B")]
    compare: Option<String>,
    /// gpumon files (or directories) to join by each group's time window: idle and peak
    /// memory, utilisation, power, energy per output token
    #[arg(long, value_name = "PATH")]
    gpu: Vec<String>,
    /// enginemon files (or directories) to join: running and waiting requests, KV usage,
    /// prefix-cache hit rate
    #[arg(long, value_name = "PATH")]
    engine_metrics: Vec<String>,
    /// Latency values kept exactly in memory (8 bytes each); beyond it, HDR histograms with
    /// percentiles within 0.1% and bounded memory
    #[arg(long, default_value_t = agg::EXACT_BUDGET)]
    exact_budget: usize,
    /// Exit 1 if any group's error rate (failed / sent) is above this (0-1)
    #[arg(long, value_name = "RATE")]
    max_error_rate: Option<f64>,
    #[command(flatten)]
    out: OutArgs,
}

fn main() -> ExitCode {
    run_main("agg", || {
        let cli: Cli = servebench::cli::parse("agg");
        if cli.out.print_schema {
            print!("{}", SUMMARY.print());
            return Ok(ExitCode::SUCCESS);
        }
        for b in &cli.by {
            if !agg::BY_COLUMNS.contains(&b.as_str()) {
                anyhow::bail!(
                    "--by {b}: use {} (label, engine, model, quant, concurrency and rate_rps are always grouped on)",
                    agg::BY_COLUMNS.join(", ")
                );
            }
        }
        let o = Options {
            by: cli.by.clone(),
            slo: cli.slo.unwrap_or_default(),
            include_warmup: cli.include_warmup,
            defs: cli.defs,
            bootstrap: cli.bootstrap,
            seed: cli.seed,
            exact_budget: cli.exact_budget,
        };
        let inputs = servebench::io::expand_inputs_of(&cli.inputs, Some("requests"))?;
        let groups_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let mut groups = Groups::read(&inputs, &o, groups_threads)?;
        let mut rows = agg::finish(&mut groups, &o);
        let mons = agg::Monitors::load(&cli.gpu, &cli.engine_metrics)?;
        agg::join_monitors(&mut rows, &groups, &mons.gpu, &mons.engine);
        if let Some(pair) = &cli.compare {
            let (a, b) = pair
                .split_once(',')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .context("--compare needs two labels: --compare A,B")?;
            for l in [&a, &b] {
                if !groups.groups.keys().any(|k| &k.label == l) {
                    let mut known: Vec<&str> = groups.groups.keys().map(|k| k.label.as_str()).collect();
                    known.sort();
                    known.dedup();
                    anyhow::bail!("--compare: no rows labelled {l:?}; labels here: {}", known.join(", "));
                }
            }
            let cmp = agg::compare(&groups, &a, &b, &o);
            if cmp.is_empty() {
                anyhow::bail!("--compare: {a} and {b} share no load level (concurrency or rate) to compare at");
            }
            let to_terminal = cli.out.output.is_none() && std::io::stdout().is_terminal();
            if cli.out.format == Some(Format::Md) || (cli.out.format.is_none() && to_terminal) {
                let md = agg::comparison_markdown(&cmp);
                match &cli.out.output {
                    Some(p) => std::fs::write(p, md)?,
                    None => print!("{md}"),
                }
            } else {
                let meta = Meta::for_output(&servebench::schema::COMPARISON, false);
                let mut sink = Sink::create(
                    cli.out.output.as_deref(),
                    cli.out.format,
                    servebench::schema::COMPARISON.schema(),
                    &meta,
                )?;
                sink.write(&agg::comparison_batch(&cmp))?;
                sink.finish()?;
            }
            eprintln!("agg: compared {b} with {a} on {} metric(s) x load(s)", cmp.len());
            return Ok(ExitCode::SUCCESS);
        }
        let to_terminal = cli.out.output.is_none() && std::io::stdout().is_terminal();
        let format = match (cli.out.format, to_terminal) {
            (Some(f), _) => Some(f),
            (None, true) => Some(Format::Md),
            (None, false) => None,
        };
        if format == Some(Format::Md) && cli.out.output.is_none() {
            print!("{}", agg::markdown(&rows, o.slo.any()));
        } else {
            let mut meta = Meta::for_output(&SUMMARY, false);
            meta.set("servebench.agg.inputs", serde_json::to_string(&inputs)?);
            meta.set("servebench.agg.defs", format!("{:?}", cli.defs).to_lowercase());
            meta.set(
                "servebench.agg.percentiles",
                if groups.exact() {
                    "exact (linear interpolation)"
                } else {
                    "hdr histogram (3 significant digits)"
                },
            );
            if let Some(s) = &cli.slo {
                meta.set("servebench.agg.slo", format!("{s:?}"));
            }
            let mut sink = Sink::create(cli.out.output.as_deref(), format, SUMMARY.schema(), &meta)?;
            if sink.format == Format::Md {
                drop(sink);
                std::fs::write(
                    cli.out.output.as_ref().expect("md to a file"),
                    agg::markdown(&rows, o.slo.any()),
                )?;
            } else {
                sink.write(&agg::to_batch(&rows))?;
                sink.finish()?;
            }
        }
        eprintln!(
            "agg: {} groups from {} rows in {} file(s){}",
            rows.len(),
            groups.rows,
            groups.files.len(),
            if groups.warmup_skipped > 0 {
                format!(" ({} warm-up rows left out)", groups.warmup_skipped)
            } else {
                String::new()
            }
        );
        if let Some(max) = cli.max_error_rate {
            let bad: Vec<String> = rows
                .iter()
                .filter(|r| r.f("error_rate").unwrap_or(0.0) > max)
                .map(|r| {
                    format!(
                        "{} ({:.1}%)",
                        r.s("label").unwrap_or(""),
                        100.0 * r.f("error_rate").unwrap_or(0.0)
                    )
                })
                .collect();
            if !bad.is_empty() {
                return Err(CheckFailed(format!("error rate above {max}: {}", bad.join(", "))).into());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
