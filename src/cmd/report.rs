//! report: runs in, a Markdown and HTML report with charts and derived recommendations out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::analysis::{self, Monitors, Options, Slo};
use crate::chart::kinds;
use crate::io::Sink;
use crate::meta::Meta;
use crate::report::{QualityRun, ReportInput, html, markdown};
use crate::schema::{SUMMARY, Summary, gpu::col as gpu_col, summary::col as summary_col};

const EXAMPLES: &str = "\
Examples:
  report runs/ -o runs/report                             # everything under runs/
  report runs/demo/requests --slo ttft=500ms,tpot=50ms -o runs/demo/report --title 'Demo'
  report runs/sweep -o runs/sweep/report             # a sweep's steps and its capacity.parquet

Writes DIR/report.md and DIR/report.html, DIR/summary.parquet (and summary-by-category.parquet
when the requests carry prompt categories) and DIR/charts/. The report opens with a summary (the
decision table per load level and workload, warnings, what was not measured); winners, the
quantization section and the recommendations follow from the numbers by stated rules. A winner
is named only when the 95% bootstrap CI of the ratio excludes 1 and each side has enough
requests (n*min(q,1-q) >= 10: 20 for a median, 1000 for a p99), never from a tie, from a mean
across load levels, or from synthetic data (gpumon --fake). Metrics follow vLLM's definitions,
and SLOs are judged on them (as agg's default --defs vllm does).

With a capacity file (sweep's capacity.parquet, found under the input directories or given with
--capacity) the report opens with the capacity table: per SLO, each label's capacity with its 95%
interval and cost, from the highest down, each against the next (a claim only when the ratio's
interval excludes 1, i.e. the intervals do not overlap, and each side has enough requests at its
knee), the pairs that are not distinguishable, and the capacity charts.

With quality files (the quality tool's, found under the input directories or given with
--quality; matched to the speed runs by the engine and quantization in their provenance) the
quantization section puts, per engine and variant against its baseline (fp16 where measured),
the speed gain next to top-1 disagreement, mean KL, perplexity ratio and accuracy change, each
with its 95% interval, and says whether the variant is distinguishable from the baseline.";

/// report's command line.
#[derive(Parser, Debug)]
#[command(name = "report", version, about = "Write a benchmark report (Markdown + HTML + charts) from requests files", after_help = EXAMPLES)]
pub struct Args {
    /// Requests files, directories or globs
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Output directory
    #[arg(short = 'o', long, default_value = "report")]
    pub output: PathBuf,
    /// Service-level objectives for goodput, e.g. ttft=500ms,tpot=50ms (durations need a
    /// unit). TPOT is judged on the definitions the report uses (vLLM's), the TPOT it reports
    #[arg(long)]
    pub slo: Option<Slo>,
    /// Report title
    #[arg(long, default_value = "servebench report")]
    pub title: String,
    /// A line under every chart title (workload, hardware...)
    #[arg(long, default_value = "")]
    pub subtitle: String,
    /// gpumon files or directories: GPU memory, power and energy per group, the GPU timeline
    #[arg(long, value_name = "PATH")]
    pub gpu: Vec<String>,
    /// enginemon files or directories: running/waiting requests, KV usage, the engine timeline
    #[arg(long, value_name = "PATH")]
    pub engine_metrics: Vec<String>,
    /// GPUs per engine, for throughput per GPU in the Pareto chart
    #[arg(long, default_value_t = 1.0)]
    pub gpus: f64,
    /// Capacity files (sweep's capacity.parquet) besides those found under the inputs
    #[arg(long, value_name = "PATH")]
    pub capacity: Vec<String>,
    /// Quality files or directories (the quality tool's output, one per engine and variant)
    /// besides those found under the inputs
    #[arg(long, value_name = "PATH")]
    pub quality: Vec<String>,
    /// Bootstrap resamples for confidence intervals
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Run report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // capacity files among the inputs (a sweep's directory holds one beside its steps)
    let mut cap_files = crate::chart::capacity::files_among(&args.inputs);
    cap_files.extend(crate::io::expand_inputs_of(
        &args.capacity,
        Some(crate::schema::CAPACITY.name),
    )?);
    cap_files.sort();
    cap_files.dedup();
    let (capacity, capacity_synthetic) =
        crate::chart::capacity::read(&cap_files).with_context(|| format!("reading {}", cap_files.join(" ")))?;
    let qual_files = quality_files(&args.inputs, &args.quality)?;
    let quality = qual_files
        .iter()
        .map(|p| QualityRun::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs: Vec<String> = crate::io::expand_inputs_of(&args.inputs, Some("requests"))?
        .into_iter()
        .filter(|p| !cap_files.contains(p) && !qual_files.contains(p))
        .collect();
    let o = Options {
        slo: args.slo.unwrap_or_default(),
        bootstrap: args.bootstrap,
        seed: args.seed,
        ..Options::default()
    };
    let mons = Monitors::load(&args.gpu, &args.engine_metrics)?;
    // One read, grouped by category too; the per-run groups are those merged over categories.
    let oc = Options {
        by: vec![summary_col::CATEGORY.into()],
        ..o.clone()
    };
    let by_cat = analysis::analyse(&inputs, &oc, &mons)?;
    let all = by_cat.regroup(&o, &mons);
    let gpu_meta = gpu_meta(&args.gpu);
    if all.rows.is_empty() {
        anyhow::bail!("no requests in {}", args.inputs.join(" "));
    }
    std::fs::create_dir_all(args.output.join("charts"))
        .with_context(|| format!("creating {}", args.output.display()))?;
    write_summary(&args.output.join("summary.parquet"), &all.rows)?;
    let has_cats = by_cat.rows.iter().any(|r| r.category.is_some());
    if has_cats {
        write_summary(&args.output.join("summary-by-category.parquet"), &by_cat.rows)?;
    }
    let cdir = args.output.join("charts");
    let ctx = args.subtitle.clone();
    let rows = &all.rows;
    let mut charts = crate::chart::capacity::charts(&capacity, &cdir, &ctx)?;
    charts.extend(kinds::load_curves(rows, &cdir, &ctx)?);
    charts.extend(kinds::pareto(rows, &cdir, &ctx, args.gpus)?);
    charts.extend(kinds::heatmaps(rows, &cdir, &ctx, &o.slo)?);
    let synthetic = crate::chart::gpu_files_synthetic(&args.gpu);
    charts.extend(kinds::gpu_memory(rows, &cdir, &ctx, synthetic)?);
    charts.extend(kinds::distributions(&all.groups, &cdir, &ctx)?);
    if !mons.gpu.is_empty() || !mons.engine.is_empty() {
        let runs = kinds::runs_of(&inputs)?;
        charts.extend(kinds::gpu_timeline(&mons.gpu, &runs, &cdir, &ctx, synthetic)?);
        charts.extend(kinds::engine_timeline(&mons.engine, &runs, &cdir, &ctx)?);
    }
    let pngs: Vec<String> = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .filter_map(|p| p.file_name().map(|f| format!("charts/{}", f.to_string_lossy())))
        .collect();
    let inp = ReportInput {
        title: args.title.clone(),
        rows,
        groups: &all.groups,
        cat: if has_cats {
            Some((&by_cat.rows, &by_cat.groups))
        } else {
            None
        },
        opts: &o,
        charts: pngs,
        gpu_meta,
        capacity: &capacity,
        capacity_synthetic,
        quality: &quality,
    };
    let md = markdown(&inp);
    std::fs::write(args.output.join("report.md"), &md)?;
    std::fs::write(args.output.join("report.html"), html(&md, &args.title))?;
    eprintln!(
        "report: {} groups, {} charts; wrote {}/report.md and report.html",
        rows.len(),
        charts.len() / 2,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Quality files: those under the input directories (by their contract in the provenance) and
/// those given with --quality (each must be one, or a directory holding some).
fn quality_files(inputs: &[String], given: &[String]) -> anyhow::Result<Vec<String>> {
    let is_quality = |p: &str| {
        crate::io::open(p).is_ok_and(|i| {
            i.meta
                .get(crate::schema::META_SCHEMA)
                .is_some_and(|s| s.starts_with(&format!("{}/", crate::schema::QUALITY.name)))
        })
    };
    let mut out = Vec::new();
    for a in inputs.iter().filter(|a| std::path::Path::new(a).is_dir()) {
        let found =
            crate::io::expand_inputs_of(std::slice::from_ref(a), Some(crate::schema::QUALITY.name)).unwrap_or_default();
        out.extend(found.into_iter().filter(|p| is_quality(p)));
    }
    for g in given {
        let found = crate::io::expand_inputs_of(std::slice::from_ref(g), Some(crate::schema::QUALITY.name))?;
        let q: Vec<String> = found.into_iter().filter(|p| is_quality(p)).collect();
        if q.is_empty() {
            anyhow::bail!("--quality {g}: no quality files there (the quality tool's output)");
        }
        out.extend(q);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Summary rows to a Parquet file of the summary contract.
fn write_summary(path: &Path, rows: &[Summary]) -> anyhow::Result<()> {
    let meta = Meta::for_output(&SUMMARY, false);
    let mut sink = Sink::create(Some(path), None, SUMMARY.schema(), &meta)?;
    sink.write(&analysis::to_batch(rows))?;
    sink.finish()?;
    Ok(())
}

/// Provenance of the first gpumon file, with device names from its data when its metadata
/// has none, marked synthetic when any of the gpumon files is.
fn gpu_meta(gpu: &[String]) -> Option<Meta> {
    let files = crate::io::expand_inputs_of(gpu, Some(crate::schema::GPU.name)).ok()?;
    let p = files.first().cloned()?;
    let mut i = crate::io::open(&p).ok()?;
    let mut m = i.meta.clone();
    if m.get("servebench.gpu.devices").is_none()
        && let Some(Ok(b)) = i.next()
        && let Some(a) = crate::io::cols::get(&b, gpu_col::NAME)
    {
        let mut names: Vec<String> = (0..b.num_rows())
            .filter_map(|k| crate::io::cols::str_at(a.as_ref(), k).map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        m.set("servebench.gpu.devices", names.join("; "));
    }
    let synthetic = files
        .iter()
        .any(|f| crate::io::open(f).is_ok_and(|i| i.meta.is_synthetic()));
    if synthetic {
        m.set(crate::report::SYNTHETIC_KEY, "true");
    }
    Some(m)
}
