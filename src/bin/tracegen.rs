//! tracegen: build arrival traces (the trace contract) for replay.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use servebench::cli::{OutArgs, parse_duration, run_main};
use servebench::io::Sink;
use servebench::meta::Meta;
use servebench::schema::TRACE;
use servebench::trace::prompts::PromptSet;
use servebench::trace::synth::{Arrival, LenDist, SynthSpec};
use servebench::trace::{self, TraceBatch};

const EXAMPLES: &str = "\
Examples:
  tracegen poisson --rate 8 --duration 120s --input-len 512 --output-len 256 --seed 1 -o trace.parquet
  tracegen gamma --rate 8 --burstiness 0.5 --count 1000 --prompts builtin --category short,code -o t.parquet
  tracegen batch --count 200 --input-len uniform:512:0.25 --output-len 128 | replay --url $URL --concurrency 10
  tracegen constant --rate 2 --count 10 --format md      # look at it

Lengths: N | fixed:N | uniform:N:RATIO (vLLM's range ratio: [N(1-R), N(1+R)]) | normal:MEAN:STD.
Output: -o FILE (Parquet unless the extension says otherwise), or stdout: Arrow IPC on a pipe,
Parquet when redirected to a file. The same arguments and seed give a byte-identical file.";

#[derive(Parser)]
#[command(name = "tracegen", version, about = "Build arrival traces for replay (Poisson, gamma, constant, batch)", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Print the trace contract (columns, types, units) and exit
    #[arg(long)]
    print_schema: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Poisson arrivals: exponential gaps of mean 1/RATE
    Poisson {
        /// Mean requests per second
        #[arg(long)]
        rate: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Gamma arrivals (vLLM's burstiness): shape B, scale 1/(RATE*B); B=1 is Poisson, B<1 burstier
    Gamma {
        /// Mean requests per second
        #[arg(long)]
        rate: f64,
        /// Gamma shape; the gaps' coefficient of variation is 1/sqrt(B)
        #[arg(long, default_value_t = 1.0)]
        burstiness: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Evenly spaced arrivals, RATE per second
    Constant {
        /// Requests per second
        #[arg(long)]
        rate: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Every request at t=0 (for closed-loop runs with replay --concurrency N)
    Batch {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// Stop after N requests
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop at this trace time (e.g. 120s, 5m)
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<std::time::Duration>,
    /// Input (prompt) length distribution, in tokens; replay synthesises text this long
    #[arg(long, value_name = "SPEC", default_value = "512")]
    input_len: LenDist,
    /// Output length distribution (max_tokens, with ignore_eos)
    #[arg(long, value_name = "SPEC", default_value = "256")]
    output_len: LenDist,
    /// Draw real prompts from a JSONL prompt set instead of synthesising (builtin = configs/prompts.jsonl)
    #[arg(long, value_name = "FILE|builtin", num_args = 0..=1, default_missing_value = "builtin")]
    prompts: Option<String>,
    /// With --prompts: only these categories (comma separated: short, medium, long, code)
    #[arg(long, value_delimiter = ',', value_name = "CATS")]
    category: Vec<String>,
    /// Seed for every random choice
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// request_id of the first row
    #[arg(long, default_value_t = 0)]
    first_id: u64,
    #[command(flatten)]
    out: OutArgs,
}

fn main() -> ExitCode {
    run_main("tracegen", || {
        let cli: Cli = servebench::cli::parse("tracegen");
        if cli.print_schema {
            print!("{}", TRACE.print());
            return Ok(ExitCode::SUCCESS);
        }
        let Some(cmd) = cli.cmd else {
            anyhow::bail!("no trace kind given; try `tracegen poisson --rate 8 --count 100 -o t.parquet` (see --help)");
        };
        let (arrival, common) = match cmd {
            Cmd::Poisson { rate, common } => (Arrival::Poisson { rate }, common),
            Cmd::Gamma {
                rate,
                burstiness,
                common,
            } => (Arrival::Gamma { rate, burstiness }, common),
            Cmd::Constant { rate, common } => (Arrival::Constant { rate }, common),
            Cmd::Batch { common } => (Arrival::Batch, common),
        };
        synth(arrival, common)
    })
}

fn synth(arrival: Arrival, c: Common) -> anyhow::Result<ExitCode> {
    if c.out.print_schema {
        print!("{}", TRACE.print());
        return Ok(ExitCode::SUCCESS);
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
    };
    spec.validate().map_err(anyhow::Error::msg)?;
    let mut meta = Meta::for_output(&TRACE, true);
    meta.set(trace::META_SEED, c.seed.to_string());
    meta.set(trace::META_PROCESS, arrival.name());
    if let Some(r) = arrival.rate() {
        meta.set(trace::META_RATE, format!("{r}"));
    }
    meta.set(
        trace::META_TOKENIZER,
        "approx-v1 (see servebench::trace::tokens; lengths are approximate token counts)",
    );
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
