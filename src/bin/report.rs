//! report: runs in, a Markdown and HTML report with charts and derived recommendations out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use servebench::agg::{self, Groups, Options, Slo};
use servebench::chart::kinds;
use servebench::cli::run_main;
use servebench::io::Sink;
use servebench::meta::Meta;
use servebench::report::{ReportInput, html, markdown};
use servebench::schema::SUMMARY;

const EXAMPLES: &str = "\
Examples:
  report runs/ -o runs/report                             # everything under runs/
  report runs/demo/requests --slo ttft=500ms,tpot=50ms -o runs/demo/report --title 'Demo'

Writes DIR/report.md and DIR/report.html, DIR/summary.parquet (and summary-by-category.parquet
when the requests carry prompt categories) and DIR/charts/. Winners per load level (and per
category), the quantization section and the recommendations all follow from the numbers by
stated rules; a margin is called significant only when the 95% bootstrap CI of the ratio
excludes 1.";

#[derive(Parser)]
#[command(name = "report", version, about = "Write a benchmark report (Markdown + HTML + charts) from requests files", after_help = EXAMPLES)]
struct Cli {
    /// Requests files, directories or globs
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output directory
    #[arg(short = 'o', long, default_value = "report")]
    output: PathBuf,
    /// Service-level objectives for goodput, e.g. ttft=500ms,tpot=50ms
    #[arg(long)]
    slo: Option<Slo>,
    /// Report title
    #[arg(long, default_value = "servebench report")]
    title: String,
    /// A line under every chart title (workload, hardware...)
    #[arg(long, default_value = "")]
    subtitle: String,
    /// gpumon files or directories: GPU memory, power and energy per group, the GPU timeline
    #[arg(long, value_name = "PATH")]
    gpu: Vec<String>,
    /// enginemon files or directories: running/waiting requests, KV usage, the engine timeline
    #[arg(long, value_name = "PATH")]
    engine_metrics: Vec<String>,
    /// GPUs per engine, for throughput per GPU in the Pareto chart
    #[arg(long, default_value_t = 1.0)]
    gpus: f64,
    /// Bootstrap resamples for confidence intervals
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> ExitCode {
    run_main("report", || {
        let cli: Cli = servebench::cli::parse("report");
        let inputs = servebench::io::expand_inputs_of(&cli.inputs, Some("requests"))?;
        let o = Options {
            slo: cli.slo.unwrap_or_default(),
            bootstrap: cli.bootstrap,
            seed: cli.seed,
            ..Options::default()
        };
        let groups_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let mut groups = Groups::read(&inputs, &o, groups_threads)?;
        let mut rows = agg::finish(&mut groups, &o);
        let agg::Monitors { gpu, engine: eng } = agg::Monitors::load(&cli.gpu, &cli.engine_metrics)?;
        agg::join_monitors(&mut rows, &groups, &gpu, &eng);
        let gpu_meta = match servebench::io::expand_inputs_of(&cli.gpu, Some("gpu"))
            .ok()
            .and_then(|v| v.first().cloned())
        {
            Some(p) => servebench::io::open(&p).ok().map(|mut i| {
                let mut m = i.meta.clone();
                // device names from the data when the metadata has none
                if m.get("servebench.gpu.devices").is_none()
                    && let Some(Ok(b)) = i.next()
                    && let Some(a) = servebench::cols::get(&b, "name")
                {
                    let mut names: Vec<String> = (0..b.num_rows())
                        .filter_map(|k| servebench::cols::str_at(a.as_ref(), k).map(str::to_string))
                        .collect();
                    names.sort();
                    names.dedup();
                    m.set("servebench.gpu.devices", names.join("; "));
                }
                m
            }),
            None => None,
        };
        if rows.is_empty() {
            anyhow::bail!("no requests in {}", cli.inputs.join(" "));
        }
        std::fs::create_dir_all(cli.output.join("charts"))
            .with_context(|| format!("creating {}", cli.output.display()))?;
        let write_summary = |name: &str, rows: &[agg::Row]| -> anyhow::Result<()> {
            let meta = Meta::for_output(&SUMMARY, false);
            let mut sink = Sink::create(Some(&cli.output.join(name)), None, SUMMARY.schema(), &meta)?;
            sink.write(&agg::to_batch(rows))?;
            sink.finish()?;
            Ok(())
        };
        write_summary("summary.parquet", &rows)?;
        // Per-category groups when the runs used categorised prompts.
        let oc = Options {
            by: vec!["category".into()],
            ..o.clone()
        };
        let mut cgroups = Groups::read(&inputs, &oc, groups_threads)?;
        let mut crows = agg::finish(&mut cgroups, &oc);
        agg::join_monitors(&mut crows, &cgroups, &gpu, &eng);
        let has_cats = crows.iter().any(|r| r.s("category").is_some());
        if has_cats {
            write_summary("summary-by-category.parquet", &crows)?;
        }
        let cdir = cli.output.join("charts");
        let ctx = cli.subtitle.clone();
        let mut charts = kinds::load_curves(&rows, &cdir, &ctx)?;
        charts.extend(kinds::pareto(&rows, &cdir, &ctx, cli.gpus)?);
        charts.extend(kinds::heatmaps(&rows, &cdir, &ctx)?);
        charts.extend(kinds::gpu_memory(&rows, &cdir, &ctx)?);
        charts.extend(kinds::distributions(&groups, &cdir, &ctx)?);
        if !gpu.is_empty() || !eng.is_empty() {
            let sends = kinds::send_times(&inputs)?;
            charts.extend(kinds::gpu_timeline(&gpu, &sends, &cdir, &ctx)?);
            charts.extend(kinds::engine_timeline(&eng, &sends, &cdir, &ctx)?);
        }
        let pngs: Vec<String> = charts
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .filter_map(|p| p.file_name().map(|f| format!("charts/{}", f.to_string_lossy())))
            .collect();
        let inp = ReportInput {
            title: cli.title.clone(),
            rows: &rows,
            groups: &groups,
            cat: if has_cats { Some((&crows, &cgroups)) } else { None },
            opts: &o,
            charts: pngs,
            gpu_meta,
        };
        let md = markdown(&inp);
        std::fs::write(cli.output.join("report.md"), &md)?;
        std::fs::write(cli.output.join("report.html"), html(&md, &cli.title))?;
        eprintln!(
            "report: {} groups, {} charts; wrote {}/report.md and report.html",
            rows.len(),
            charts.len() / 2,
            cli.output.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}
