//! agg: compute percentiles, throughput and goodput per group from requests files.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::analysis::{self, Analysis, Defs, Monitors, Options, Slo};
use crate::cli::{CheckFailed, OutArgs};
use crate::io::{Format, Sink};
use crate::meta::Meta;
use crate::schema::{COMPARISON, SUMMARY};

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
SLOs are judged on the definitions in force: --slo tpot= checks the TPOT that --defs reports.
Percentiles: linear interpolation between closest ranks (numpy's default, DuckDB's quantile_cont).
Output: a Markdown table on a terminal; otherwise the summary contract (Parquet to files,
Arrow IPC to pipes) unless --format says csv, json or md.";

/// agg's command line.
#[derive(Parser, Debug)]
#[command(name = "agg", version, about = "Summarise requests files: percentiles, throughput, goodput, confidence intervals", after_help = EXAMPLES)]
pub struct Args {
    /// Requests files, directories or globs (- for stdin)
    #[arg(required_unless_present = "print_schema")]
    pub inputs: Vec<String>,
    /// Also group by these columns (comma separated): category, turn
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Service-level objectives for goodput, e.g. ttft=500ms,tpot=50ms,e2e=10s (durations need
    /// a unit). TPOT is judged on the definitions in force (--defs), the TPOT the summary reports
    #[arg(long)]
    pub slo: Option<Slo>,
    /// Keep warm-up rows
    #[arg(long)]
    pub include_warmup: bool,
    /// TPOT/ITL definitions of a tool (README: the crosswalk): vllm (default), sglang, aiperf,
    /// guidellm, genai-bench, inference-perf, llmperf; goodput and --slo use the same
    #[arg(long, value_enum, default_value = "vllm")]
    pub defs: Defs,
    /// Bootstrap resamples for confidence intervals (0 = none)
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compare label B against label A on every shared load: ratios B/A with 95% CIs
    /// (writes the comparison contract instead of the summary)
    #[arg(long, value_name = "A,B")]
    pub compare: Option<String>,
    /// gpumon files (or directories) to join by each group's time window: idle and peak
    /// memory, utilisation, power, energy per output token
    #[arg(long, value_name = "PATH")]
    pub gpu: Vec<String>,
    /// enginemon files (or directories) to join: running and waiting requests, KV usage,
    /// prefix-cache hit rate, speculative decoding's acceptance
    #[arg(long, value_name = "PATH")]
    pub engine_metrics: Vec<String>,
    /// Latency values kept exactly in memory (8 bytes each); beyond it, HDR histograms with
    /// percentiles within 0.1% and bounded memory
    #[arg(long, default_value_t = analysis::EXACT_BUDGET)]
    pub exact_budget: usize,
    /// Exit 1 if any group's error rate (failed / sent) is above this (0-1)
    #[arg(long, value_name = "RATE")]
    pub max_error_rate: Option<f64>,
    #[command(flatten)]
    pub out: OutArgs,
}

/// Run agg.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.print_schema {
        print!("{}", SUMMARY.print());
        return Ok(ExitCode::SUCCESS);
    }
    for b in &args.by {
        if !analysis::BY_COLUMNS.contains(&b.as_str()) {
            anyhow::bail!(
                "--by {b}: use {} (label, engine, model, quant, concurrency and rate_rps are always grouped on)",
                analysis::BY_COLUMNS.join(", ")
            );
        }
    }
    let o = Options {
        by: args.by.clone(),
        slo: args.slo.unwrap_or_default(),
        include_warmup: args.include_warmup,
        defs: args.defs,
        bootstrap: args.bootstrap,
        seed: args.seed,
        exact_budget: args.exact_budget,
    };
    let inputs = crate::io::expand_inputs_of(&args.inputs, Some("requests"))?;
    let mons = Monitors::load(&args.gpu, &args.engine_metrics)?;
    let an = analysis::analyse(&inputs, &o, &mons)?;
    if let Some(pair) = &args.compare {
        return compare(&args, pair, &an, &o);
    }
    let (rows, groups) = (&an.rows, &an.groups);
    let to_terminal = args.out.output.is_none() && std::io::stdout().is_terminal();
    let format = match (args.out.format, to_terminal) {
        (Some(f), _) => Some(f),
        (None, true) => Some(Format::Md),
        (None, false) => None,
    };
    if format == Some(Format::Md) && args.out.output.is_none() {
        print!("{}", analysis::markdown(rows, o.slo.any()));
    } else {
        let mut meta = Meta::for_output(&SUMMARY, false);
        meta.set("servebench.agg.inputs", serde_json::to_string(&inputs)?);
        meta.set("servebench.agg.defs", args.defs.name());
        meta.set(
            "servebench.agg.percentiles",
            if groups.exact() {
                "exact (linear interpolation)"
            } else {
                "hdr histogram (3 significant digits)"
            },
        );
        if let Some(s) = &args.slo {
            meta.set("servebench.agg.slo", format!("{s:?}"));
        }
        let mut sink = Sink::create(args.out.output.as_deref(), format, SUMMARY.schema(), &meta)?;
        if sink.format == Format::Md {
            drop(sink);
            std::fs::write(
                args.out.output.as_ref().expect("md to a file"),
                analysis::markdown(rows, o.slo.any()),
            )?;
        } else {
            sink.write(&analysis::to_batch(rows))?;
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
    for line in analysis::client_bound_lines(rows) {
        eprintln!("agg: warning: client-bound: {line}; the client set the pace, not the server");
    }
    if let Some(max) = args.max_error_rate {
        let bad: Vec<String> = rows
            .iter()
            .filter(|r| r.error_rate > max)
            .map(|r| format!("{} ({:.1}%)", r.label, 100.0 * r.error_rate))
            .collect();
        if !bad.is_empty() {
            return Err(CheckFailed(format!("error rate above {max}: {}", bad.join(", "))).into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--compare A,B`: the comparison contract (or its Markdown table) instead of the summary.
fn compare(args: &Args, pair: &str, an: &Analysis, o: &Options) -> anyhow::Result<ExitCode> {
    let groups = &an.groups;
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
    let cmp = analysis::compare(groups, &a, &b, o);
    if cmp.is_empty() {
        anyhow::bail!("--compare: {a} and {b} share no load level (concurrency or rate) to compare at");
    }
    let to_terminal = args.out.output.is_none() && std::io::stdout().is_terminal();
    if args.out.format == Some(Format::Md) || (args.out.format.is_none() && to_terminal) {
        let md = analysis::comparison_markdown(&cmp);
        match &args.out.output {
            Some(p) => std::fs::write(p, md)?,
            None => print!("{md}"),
        }
    } else {
        let meta = Meta::for_output(&COMPARISON, false);
        let mut sink = Sink::create(args.out.output.as_deref(), args.out.format, COMPARISON.schema(), &meta)?;
        sink.write(&analysis::comparison_batch(&cmp))?;
        sink.finish()?;
    }
    eprintln!("agg: compared {b} with {a} on {} metric(s) x load(s)", cmp.len());
    Ok(ExitCode::SUCCESS)
}
