//! tracegen: build arrival traces (the trace contract) for replay: synthetic processes here,
//! the importers and `transform` in [`import`], the help texts in [`help`].

mod help;
pub mod import;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::cli::OutArgs;
use crate::io::Sink;
use crate::meta::Meta;
use crate::schema::TRACE;
use crate::trace::prompts::PromptSet;
use crate::trace::ramp::Ramp;
use crate::trace::shared::{Order, Popularity, SharedPrefix};
use crate::trace::synth::{Arrival, LenDist, SynthSpec};
use crate::trace::{self, TraceBatch, TraceReader};

pub use self::import::{Import, Tools};

#[derive(Parser)]
#[command(name = "tracegen", version, about = "Build arrival traces for replay: synthetic (Poisson, gamma, constant, batch) or imported (ShareGPT, Azure, BurstGPT, Mooncake, Splitwise, any CSV/JSONL)", after_help = help::EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// Print the trace contract (columns, types, units) and exit
    #[arg(long)]
    pub print_schema: bool,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Cmd {
    /// Poisson arrivals: exponential gaps of mean 1/RATE
    Poisson {
        /// Mean requests per second
        #[arg(long, required_unless_present = "ramp", conflicts_with = "ramp")]
        rate: Option<f64>,
        #[command(flatten)]
        common: Common,
    },
    /// Gamma arrivals (vLLM's burstiness): shape B, scale 1/(RATE*B); B=1 is Poisson, B<1 burstier
    Gamma {
        /// Mean requests per second
        #[arg(long, required_unless_present = "ramp", conflicts_with = "ramp")]
        rate: Option<f64>,
        /// Gamma shape; the gaps' coefficient of variation is 1/sqrt(B)
        #[arg(long, default_value_t = 1.0)]
        burstiness: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Evenly spaced arrivals, RATE per second
    Constant {
        /// Requests per second
        #[arg(long, required_unless_present = "ramp", conflicts_with = "ramp")]
        rate: Option<f64>,
        #[command(flatten)]
        common: Common,
    },
    /// Every request at t=0 (for closed-loop runs with replay --concurrency N)
    Batch {
        #[command(flatten)]
        common: Common,
    },
    // the importers (sharegpt, azure, burstgpt, mooncake, splitwise, csv) and transform
    #[command(flatten)]
    Import(Import),
    /// Describe a trace: arrival rate over time, burstiness, length percentiles
    #[command(after_help = help::STATS_HELP)]
    Stats {
        /// A trace file (Parquet or Arrow IPC; - for stdin)
        file: String,
        /// Width of the rate-over-time buckets
        #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "60s")]
        bucket: Duration,
        /// text (a table) or json
        #[arg(long, value_enum, default_value = "text")]
        format: StatsFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    Text,
    Json,
}

/// The options of the synthetic kinds.
#[derive(clap::Args)]
pub struct Common {
    /// Stop after N requests
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop at this trace time (e.g. 120s, 5m)
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg)]
    pub duration: Option<Duration>,
    /// A rate that changes over the trace instead of --rate: FROM:TO:OVER (0:20:60s: 0 to 20 req/s over 60 s, then 20) or steps:R1@D1,R2@D2,...,Rn
    #[arg(long, value_name = "RAMP")]
    pub ramp: Option<Ramp>,
    /// Input (prompt) length distribution, in tokens; replay synthesises text this long
    #[arg(long, value_name = "SPEC", default_value = "512")]
    pub input_len: LenDist,
    /// Output length distribution (max_tokens, with ignore_eos)
    #[arg(long, value_name = "SPEC", default_value = "256")]
    pub output_len: LenDist,
    /// Draw real prompts from a JSONL prompt set instead of synthesising (builtin = configs/prompts.jsonl)
    #[arg(long, value_name = "FILE|builtin", num_args = 0..=1, default_missing_value = "builtin")]
    pub prompts: Option<String>,
    /// With --prompts: only these categories (comma separated: short, medium, long, code)
    #[arg(long, value_delimiter = ',', value_name = "CATS")]
    pub category: Vec<String>,
    /// Shared-prefix workload: G groups of requests, each sharing a system prompt of
    /// --prefix-len tokens followed by the request's own --input-len tokens
    #[arg(long, value_name = "G")]
    pub prefix_groups: Option<u32>,
    /// With --prefix-groups: the shared prompt's length, tokens (a multiple of 512, the prefix block)
    #[arg(long, value_name = "P", default_value_t = 2048, requires = "prefix_groups")]
    pub prefix_len: u32,
    /// With --prefix-groups: how often each group is used: uniform, zipf or zipf:S (group k has weight 1/(k+1)^S)
    #[arg(long, value_name = "DIST", default_value = "uniform", requires = "prefix_groups")]
    pub prefix_popularity: Popularity,
    /// With --prefix-groups: the order of the groups' requests
    #[arg(long, value_enum, default_value = "random", requires = "prefix_groups")]
    pub prefix_order: Order,
    /// Seed for every random choice
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// request_id of the first row
    #[arg(long, default_value_t = 0)]
    pub first_id: u64,
    #[command(flatten)]
    pub out: OutArgs,
}

/// Run tracegen.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.print_schema {
        return print_schema();
    }
    let Some(cmd) = args.cmd else {
        anyhow::bail!("no trace kind given; try `tracegen poisson --rate 8 --count 100 -o t.parquet` (see --help)");
    };
    let (arrival, common) = match cmd {
        // with --ramp the process runs at a mean rate of 1 and the ramp re-times it
        Cmd::Poisson { rate, common } => (
            Arrival::Poisson {
                rate: rate.unwrap_or(1.0),
            },
            common,
        ),
        Cmd::Gamma {
            rate,
            burstiness,
            common,
        } => (
            Arrival::Gamma {
                rate: rate.unwrap_or(1.0),
                burstiness,
            },
            common,
        ),
        Cmd::Constant { rate, common } => (
            Arrival::Constant {
                rate: rate.unwrap_or(1.0),
            },
            common,
        ),
        Cmd::Batch { common } => (Arrival::Batch, common),
        Cmd::Import(import) => return import::run(import),
        Cmd::Stats { file, bucket, format } => return stats(&file, bucket, format),
    };
    synth(arrival, common)
}

fn print_schema() -> anyhow::Result<ExitCode> {
    print!("{}", TRACE.print());
    Ok(ExitCode::SUCCESS)
}

/// A synthetic trace: `arrival` and the lengths, prompts and counts of `c`.
pub fn synth(arrival: Arrival, c: Common) -> anyhow::Result<ExitCode> {
    if c.out.print_schema {
        return print_schema();
    }
    let prompts = match &c.prompts {
        Some(p) => Some(
            PromptSet::load(p)?
                .filter(p, &c.category)
                .with_context(|| "choosing prompt categories")?,
        ),
        None => {
            if !c.category.is_empty() && c.category.len() > 1 {
                anyhow::bail!("several --category values need --prompts (real prompts carry their category)");
            }
            None
        }
    };
    let spec = SynthSpec {
        arrival,
        count: c.count,
        duration_s: c.duration.map(|d| d.as_secs_f64()),
        input: c.input_len,
        output: c.output_len,
        seed: c.seed,
        prompts,
        first_id: c.first_id,
        category: c.category.first().cloned(),
        ramp: c.ramp.clone(),
        shared_prefix: c.prefix_groups.map(|groups| SharedPrefix {
            groups,
            prefix_tokens: c.prefix_len,
            popularity: c.prefix_popularity,
            order: c.prefix_order,
        }),
    };
    if arrival == Arrival::Batch && c.ramp.is_some() {
        anyhow::bail!(
            "batch puts every request at t=0, so it has no rate to ramp: use poisson, gamma or constant with --ramp"
        );
    }
    spec.validate().map_err(anyhow::Error::msg)?;
    let mut meta = Meta::for_output(&TRACE, true);
    meta.set(trace::META_SEED, c.seed.to_string());
    meta.set(trace::META_PROCESS, arrival.name());
    match &c.ramp {
        Some(r) => {
            meta.set(trace::META_RAMP, r.spec());
        }
        None => {
            if let Some(r) = arrival.rate() {
                meta.set(trace::META_RATE, format!("{r}"));
            }
        }
    }
    meta.set(trace::META_TOKENIZER, trace::tokenizer::APPROX_NAME);
    if let Some(sp) = &spec.shared_prefix {
        meta.set(trace::META_SHARED_PREFIX, sp.describe());
    }
    let mut sink = Sink::create(c.out.output.as_deref(), c.out.format, trace::schema(), &meta)?;
    let mut buf = TraceBatch::default();
    for row in spec.rows() {
        buf.push(row);
        if buf.len() >= 8192 {
            sink.write(&buf.take_batch())?;
            sink.flush()?;
        }
    }
    if !buf.is_empty() || sink.rows() == 0 {
        sink.write(&buf.take_batch())?;
    }
    let n = sink.finish()?;
    if let Some(p) = &c.out.output {
        eprintln!("tracegen: wrote {n} requests to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `tracegen stats`: describe a trace on stdout.
pub fn stats(file: &str, bucket: Duration, format: StatsFormat) -> anyhow::Result<ExitCode> {
    let r = TraceReader::open(file)?;
    let s = trace::stats::compute(r, bucket.as_secs_f64()).map_err(anyhow::Error::msg)?;
    let text = match format {
        StatsFormat::Text => s.to_text(),
        StatsFormat::Json => s.to_json() + "\n",
    };
    use std::io::Write;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tracegen runs in process: arguments in, a trace file out, no child process.
    #[test]
    fn runs_in_process() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.parquet");
        let p_arg = p.to_string_lossy().to_string();
        let args = Args::try_parse_from(["tracegen", "constant", "--rate", "2", "--count", "5", "-o", &p_arg]).unwrap();
        assert_eq!(run(args).unwrap(), ExitCode::SUCCESS);
        let mut r = TraceReader::open(&p_arg).unwrap();
        assert_eq!(r.meta().get(trace::META_PROCESS), Some("constant"));
        let mut rows = Vec::new();
        while let Some(b) = r.next_rows() {
            rows.extend(b.unwrap());
        }
        let t: Vec<f64> = rows.iter().map(|r| r.arrival_s).collect();
        assert_eq!(t, [0.0, 0.5, 1.0, 1.5, 2.0]);
        // the importers and transform are one subcommand group
        let p2 = d.path().join("u.parquet").to_string_lossy().to_string();
        let args = Args::try_parse_from(["tracegen", "transform", &p_arg, "--time-scale", "2", "-o", &p2]).unwrap();
        assert!(matches!(args.cmd, Some(Cmd::Import(Import::Transform { .. }))));
        assert_eq!(run(args).unwrap(), ExitCode::SUCCESS);
        assert!(run(Args::try_parse_from(["tracegen"]).unwrap()).is_err());
    }
}
