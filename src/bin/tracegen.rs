//! tracegen: build arrival traces (the trace contract) for replay.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use servebench::cli::{OutArgs, run_main};
use servebench::io::Sink;
use servebench::meta::Meta;
use servebench::schema::TRACE;
use servebench::trace::import::csvmap::{self, Mapping, TextFormat, TimeUnit};
use servebench::trace::import::{self, ImportError, Skipped, burstgpt, sharegpt};
use servebench::trace::prompts::PromptSet;
use servebench::trace::synth::{Arrival, LenDist, SynthSpec};
use servebench::trace::tokenizer::TokenCounter;
use servebench::trace::transform::{Dest, Pipeline, Transform, push_trace};
use servebench::trace::{self, TraceBatch, TraceReader};

const EXAMPLES: &str = "\
Examples:
  tracegen poisson --rate 8 --duration 120s --input-len 512 --output-len 256 --seed 1 -o trace.parquet
  tracegen gamma --rate 8 --burstiness 0.5 --count 1000 --prompts builtin --category short,code -o t.parquet
  tracegen batch --count 200 --input-len uniform:512:0.25 --output-len 128 | replay --url $URL --concurrency 10
  tracegen constant --rate 2 --count 10 --format md      # look at it

Real traces (see `tracegen azure --help` etc. for each format's quirks):
  tracegen sharegpt ShareGPT_V3_unfiltered_cleaned_split.json --count 1000 --process poisson --rate 8 --seed 1 -o sg.parquet
  tracegen sharegpt sg.json --sessions --think-time exp:10s --count 200 --rate 2 -o sessions.parquet
  tracegen azure AzureLLMInferenceTrace_conv.csv --start 10m --window 5m -o azure.parquet
  tracegen burstgpt BurstGPT_1.csv --model ChatGPT --log-type conversation --rate 4 -o burst.parquet
  tracegen mooncake conversation_trace.jsonl --max-input 32768 --clamp -o mooncake.parquet
  tracegen splitwise splitwise_conv.csv --sample 0.1 --seed 3 -o s.parquet
  tracegen csv my.csv --columns arrival=ts,input=prompt_len,output=output_len --arrival-unit ms -o mine.parquet
  tracegen transform azure.parquet --time-scale 0.5 -o faster.parquet
  tracegen stats azure.parquet --bucket 30s        # rate over time, burstiness, length percentiles

Trace tools, on every importer and transform (applied in this order):
  tracegen azure conv.csv --sort --max-input 8192 --clamp --start 2m --window 5m --sample 0.5 --seed 2 \\
      --count 1000 --time-scale 0.5 --category conv --first-id 0 -o t.parquet
  tracegen azure conv.csv --rate 12 -o t.parquet        # same burst shape, mean 12 req/s
  tracegen sharegpt sg.json --tokenizer ./Llama-3.1-8B/tokenizer.json -o sg.parquet   # exact token counts

Lengths: N | fixed:N | uniform:N:RATIO (vLLM's range ratio: [N(1-R), N(1+R)]) | normal:MEAN:STD.
Output: -o FILE (Parquet unless the extension says otherwise), or stdout: Arrow IPC on a pipe,
Parquet when redirected to a file. The same arguments and seed give a byte-identical file.";

#[derive(Parser)]
#[command(name = "tracegen", version, about = "Build arrival traces for replay: synthetic (Poisson, gamma, constant, batch) or imported (ShareGPT, Azure, BurstGPT, Mooncake, Splitwise, any CSV/JSONL)", after_help = EXAMPLES)]
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
    /// Import ShareGPT conversations (one JSON array, parsed as a stream)
    #[command(after_help = SHAREGPT_HELP)]
    Sharegpt {
        /// The ShareGPT JSON file (- for stdin)
        file: String,
        /// Whole conversations as multi-turn sessions (session_id, turn; each human turn with its reply's length)
        #[arg(long)]
        sessions: bool,
        /// With --sessions: time between a reply and the next turn: D (e.g. 5s) or exp:D (exponential, mean D)
        #[arg(long, value_name = "D|exp:D", default_value = "0s")]
        think_time: sharegpt::ThinkTime,
        /// Arrival process of conversations: poisson, gamma, constant or batch [default: poisson with --rate, else batch]
        #[arg(long, value_name = "KIND")]
        process: Option<String>,
        /// With --process gamma: the gamma shape (1 = Poisson, < 1 burstier)
        #[arg(long, value_name = "B", default_value_t = 1.0)]
        burstiness: f64,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import an Azure LLM inference trace (2023 or 2024 CSV: TIMESTAMP,ContextTokens,GeneratedTokens)
    #[command(after_help = AZURE_HELP)]
    Azure {
        /// The CSV file (- for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import a BurstGPT CSV (v1 or v3 columns, found by name)
    #[command(after_help = BURSTGPT_HELP)]
    Burstgpt {
        /// The CSV file (- for stdin)
        file: String,
        /// Keep only these models (comma separated, e.g. ChatGPT,GPT-4)
        #[arg(long, value_delimiter = ',', value_name = "MODELS")]
        model: Vec<String>,
        /// Keep only these log types: conversation, api (or the full 'Conversation log')
        #[arg(long, value_delimiter = ',', value_name = "TYPES")]
        log_type: Vec<String>,
        /// Keep failed requests (Response tokens = 0), which are dropped and counted by default
        #[arg(long)]
        keep_failed: bool,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import a Mooncake trace (JSONL: timestamp ms, input_length, output_length, hash_ids)
    #[command(after_help = MOONCAKE_HELP)]
    Mooncake {
        /// The JSONL file (- for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import a Splitwise/Vidur CSV (arrived_at,num_prefill_tokens,num_decode_tokens; seconds)
    #[command(after_help = SPLITWISE_HELP)]
    Splitwise {
        /// The CSV file (- for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import any CSV or JSONL file through a column mapping
    #[command(after_help = CSV_HELP)]
    Csv {
        /// The CSV or JSONL file (- for stdin)
        file: String,
        /// Which column is which: arrival=COL,input=COL,output=COL[,prompt=COL,session=COL,turn=COL,category=COL]
        #[arg(long, value_name = "MAP")]
        columns: Mapping,
        /// Unit of the arrival column
        #[arg(long, value_enum, default_value = "s")]
        arrival_unit: TimeUnit,
        /// csv or jsonl [default: from the extension: .jsonl/.ndjson/.json are JSONL]
        #[arg(long, value_enum, value_name = "FMT")]
        input_format: Option<TextFormat>,
        #[command(flatten)]
        tools: Tools,
    },
    /// Apply the trace tools (--window, --rate, --time-scale, --sample, ...) to an existing trace file
    #[command(after_help = TRANSFORM_HELP)]
    Transform {
        /// A trace file (Parquet or Arrow IPC; - for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Describe a trace: arrival rate over time, burstiness, length percentiles
    #[command(after_help = STATS_HELP)]
    Stats {
        /// A trace file (Parquet or Arrow IPC; - for stdin)
        file: String,
        /// Width of the rate-over-time buckets
        #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg, default_value = "60s")]
        bucket: std::time::Duration,
        /// text (a table) or json
        #[arg(long, value_enum, default_value = "text")]
        format: StatsFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatsFormat {
    Text,
    Json,
}

/// The trace tools, on every importer and `transform`.
#[derive(Args)]
struct Tools {
    /// Multiply arrival times by X (0.5 = twice as fast)
    #[arg(long, value_name = "X")]
    time_scale: Option<f64>,
    /// Rescale times to this mean rate (req/s), keeping the burst shape (sharegpt: the rate of --process)
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Cut a slice starting at D in the source's time (e.g. 10m); START becomes t=0
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg)]
    start: Option<std::time::Duration>,
    /// Length of the slice (e.g. 5m); reading stops at its end
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg)]
    window: Option<std::time::Duration>,
    /// Drop rows with more than N input tokens (with --clamp: cut them to N)
    #[arg(long, value_name = "N")]
    max_input: Option<u32>,
    /// With --max-input: clamp longer rows to N tokens (text and prefix blocks cut) instead of dropping them
    #[arg(long)]
    clamp: bool,
    /// Keep each row with probability F (seeded; sessions whole)
    #[arg(long, value_name = "F")]
    sample: Option<f64>,
    /// Stop after N requests (sharegpt: draw N conversations at random, seeded)
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Sort rows by arrival time (holds the whole trace in memory); without it, time going backwards is an error
    #[arg(long)]
    sort: bool,
    /// Category for rows that have none (e.g. code, conv)
    #[arg(long, value_name = "NAME")]
    category: Option<String>,
    /// Count text tokens with this Hugging Face tokenizer.json instead of the approximation
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Seed for --sample, sharegpt's --count, arrivals and think times
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number rows from N (importers number rows from 0; transform keeps request_id unless given)
    #[arg(long, value_name = "N")]
    first_id: Option<u64>,
    #[command(flatten)]
    out: OutArgs,
}

const SHAREGPT_HELP: &str = "\
Examples:
  tracegen sharegpt ShareGPT_V3_unfiltered_cleaned_split.json --count 1000 --seed 1 -o sg.parquet   # all at t=0
  tracegen sharegpt sg.json --count 500 --process poisson --rate 8 -o sg.parquet
  tracegen sharegpt sg.json --count 500 --process gamma --rate 8 --burstiness 0.5 -o bursty.parquet
  tracegen sharegpt sg.json --process constant --rate 2 --max-input 4096 --tokenizer tokenizer.json -o sg.parquet
  tracegen sharegpt sg.json --sessions --think-time exp:10s --count 100 --rate 1 -o sessions.parquet

A conversation's first human turn is the prompt (its text is kept; replay sends it as is) and the reply's
length is the output length. Empty, one-turn and not-human-first conversations (continuation chunks start
with gpt) are skipped and counted on stderr. Roles human/user and gpt/chatgpt/bing/bard/assistant are
understood. With --sessions, every human turn followed by a reply is a row: session_id per conversation,
turn 0, 1, ...; replay sends turn k+1 a think time after turn k's reply ends. Token counts use
--tokenizer when given (exact), else the approximation, and the trace's metadata says which.";

const AZURE_HELP: &str = "\
Examples:
  tracegen azure AzureLLMInferenceTrace_conv.csv --category conv -o azure-conv.parquet
  tracegen azure AzureLLMInferenceTrace_code.csv --start 3m --window 2m --time-scale 0.5 -o slice.parquet
  tracegen azure AzureLLMInferenceTrace_conv_1week.csv --rate 20 --max-input 8192 -o week.parquet

Formats: 2023 (`2023-11-16 18:15:46.6805900`: seven fractional digits, no zone, CRLF) and 2024
(`2024-05-12 00:00:00.123+00:00`, sometimes no fraction). arrival_s = timestamp - first timestamp, in
whole ticks. No text: replay synthesises prompts of ContextTokens tokens. Gaps are kept (the code trace
has a 217 s stretch without arrivals).";

const BURSTGPT_HELP: &str = "\
Examples:
  tracegen burstgpt BurstGPT_1.csv -o burst.parquet
  tracegen burstgpt BurstGPT_1.csv --model GPT-4 --log-type api --keep-failed -o gpt4-api.parquet
  tracegen burstgpt BurstGPT_v3.csv --model ChatGPT --start 1h --window 10m --rate 5 -o slice.parquet

v1 columns: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type; v3 adds Session ID,Elapsed
time (columns are found by name). Timestamp is seconds since the first day's midnight; arrival_s is
relative to the first kept row. The model becomes the row's category. Failed requests (Response tokens = 0)
are dropped and counted unless --keep-failed.";

const MOONCAKE_HELP: &str = "\
Examples:
  tracegen mooncake conversation_trace.jsonl -o mooncake.parquet
  tracegen mooncake conversation_trace.jsonl --max-input 32768 --clamp --time-scale 0.25 -o m.parquet

Timestamps are integer milliseconds (bucketed: many requests share one). hash_ids are kept as prefix_blocks:
replay turns each block id into the same 512 tokens of text every time (the last block holds the
remainder), so requests that shared a prefix share it again and prefix caching is exercised as it was.
--clamp cuts prefix blocks to ceil(N/512).";

const SPLITWISE_HELP: &str = "\
Examples:
  tracegen splitwise splitwise_conv.csv -o s.parquet
  tracegen splitwise splitwise_code.csv --sample 0.25 --seed 7 -o quarter.parquet

Vidur's derived Azure format: arrived_at (float seconds since the first request), num_prefill_tokens,
num_decode_tokens.";

const CSV_HELP: &str = "\
Examples:
  tracegen csv my.csv --columns arrival=ts,input=prompt_len,output=output_len -o t.parquet
  tracegen csv log.csv --columns arrival=time,input=in,output=out --arrival-unit datetime -o t.parquet
  tracegen csv req.jsonl --columns arrival=t_ms,prompt=text,output=max_tokens,session=user --arrival-unit ms -o t.parquet
  tracegen csv dump.txt --input-format jsonl --columns arrival=t,input=n_in,output=n_out,category=kind -o t.parquet

--columns maps trace columns to the file's: arrival, input (prompt tokens) and output (tokens to generate)
are required, except that input may be left out when prompt is given (its tokens are then counted, exactly
with --tokenizer). session values may be numbers or strings; turn, when not mapped, counts a session's rows
in file order. --arrival-unit: s, ms, us (numbers) or datetime (YYYY-MM-DD HH:MM:SS[.f][+HH:MM], UTC when
no zone). arrival_s is relative to the first row.";

const TRANSFORM_HELP: &str = "\
Examples:
  tracegen transform azure.parquet --time-scale 0.5 -o faster.parquet
  tracegen transform azure.parquet --rate 10 -o at10.parquet           # same burst shape, mean 10 req/s
  tracegen transform big.parquet --start 30m --window 10m --sample 0.5 --seed 2 -o slice.parquet
  tracegen transform t.parquet --max-input 2048 --clamp --tokenizer tokenizer.json -o clamped.parquet
  tracegen transform unsorted.parquet --sort -o sorted.parquet
  tracegen transform part2.parquet --first-id 100000 -o part2-renumbered.parquet

The tools apply in this order: --sort, --max-input, --start/--window (in the source's time; START becomes
t=0), --sample, --count, --time-scale, --rate (times x observed/R, where observed = (n-1)/(last-first)).
Rows keep their request_id. Every importer takes the same options.";

const STATS_HELP: &str = "\
Examples:
  tracegen stats trace.parquet
  tracegen stats trace.parquet --bucket 10s
  tracegen stats trace.parquet --format json | jq .gap_cv

Prints the number of rows and sessions, the span, the mean rate ((n-1)/(last-first)), burstiness (the
coefficient of variation of inter-arrival gaps: 0 constant, 1 Poisson, > 1 burstier), input and output
token percentiles, and requests per bucket from t=0.";

#[derive(Args)]
struct Common {
    /// Stop after N requests
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop at this trace time (e.g. 120s, 5m)
    #[arg(long, value_name = "D", value_parser = servebench::units::duration_arg)]
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
            other => return import_cmd(other),
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
    meta.set(trace::META_TOKENIZER, servebench::trace::tokenizer::APPROX_NAME);
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

fn secs(d: Option<std::time::Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// The importers, `transform` and `stats`.
fn import_cmd(cmd: Cmd) -> anyhow::Result<ExitCode> {
    if let Cmd::Stats { file, bucket, format } = cmd {
        let r = TraceReader::open(&file)?;
        let s = trace::stats::compute(r, bucket.as_secs_f64()).map_err(anyhow::Error::msg)?;
        let text = match format {
            StatsFormat::Text => s.to_text(),
            StatsFormat::Json => s.to_json() + "\n",
        };
        use std::io::Write;
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let (name, file, tools) = match &cmd {
        Cmd::Sharegpt { file, tools, .. } => ("sharegpt", file, tools),
        Cmd::Azure { file, tools } => ("azure", file, tools),
        Cmd::Burstgpt { file, tools, .. } => ("burstgpt", file, tools),
        Cmd::Mooncake { file, tools } => ("mooncake", file, tools),
        Cmd::Splitwise { file, tools } => ("splitwise", file, tools),
        Cmd::Csv { file, tools, .. } => ("csv", file, tools),
        Cmd::Transform { file, tools } => ("transform", file, tools),
        _ => unreachable!("synthetic kinds are handled by synth()"),
    };
    let file = file.clone();
    if tools.out.print_schema {
        print!("{}", TRACE.print());
        return Ok(ExitCode::SUCCESS);
    }
    let counter = TokenCounter::from_arg(tools.tokenizer.as_ref())?;
    let is_sharegpt = matches!(cmd, Cmd::Sharegpt { .. });
    let transform = Transform {
        sort: tools.sort,
        max_input: tools.max_input,
        clamp: tools.clamp,
        start_s: secs(tools.start),
        window_s: secs(tools.window),
        sample: tools.sample,
        // sharegpt draws --count conversations itself, and --rate is its process's rate
        count: if is_sharegpt { None } else { tools.count },
        time_scale: tools.time_scale,
        rate: if is_sharegpt { None } else { tools.rate },
        seed: tools.seed,
        category: tools.category.clone(),
        renumber: name != "transform" || tools.first_id.is_some(),
        first_id: tools.first_id.unwrap_or(0),
    };
    transform.validate().map_err(anyhow::Error::msg)?;

    let mut meta = Meta::for_output(&TRACE, true);
    meta.set(trace::META_SEED, tools.seed.to_string());
    meta.set(trace::META_SOURCE, name);
    meta.set(trace::META_SOURCE_FILE, file.clone());
    let has_text = matches!(cmd, Cmd::Sharegpt { .. } | Cmd::Transform { .. })
        || matches!(&cmd, Cmd::Csv { columns, .. } if columns.prompt.is_some());
    meta.set(
        trace::META_TOKENIZER,
        if has_text {
            counter.describe()
        } else {
            format!("none: lengths as recorded in the {name} trace")
        },
    );
    let mut reader = None;
    let arrival_col = match &cmd {
        Cmd::Azure { .. } => import::azure::TIME.to_string(),
        Cmd::Burstgpt { .. } => burstgpt::TIME.to_string(),
        Cmd::Mooncake { .. } => "timestamp".to_string(),
        Cmd::Splitwise { .. } => "arrived_at".to_string(),
        Cmd::Csv { columns, .. } => columns.arrival.clone(),
        Cmd::Transform { file, .. } => {
            let r = TraceReader::open(file)?;
            for (k, v) in &r.meta().0 {
                // carry the source's description forward
                if k.starts_with("servebench.trace.") && k != trace::META_RATE && k != trace::META_TRANSFORM {
                    meta.set(k.clone(), v.clone());
                }
            }
            meta.set(trace::META_SOURCE, "transform");
            meta.set(trace::META_SOURCE_FILE, file.clone());
            if matches!(counter, TokenCounter::Exact(_)) {
                meta.set(trace::META_TOKENIZER, counter.describe());
            }
            reader = Some(r);
            "arrival_s".to_string()
        }
        _ => String::new(),
    };
    if let Cmd::Sharegpt { .. } = &cmd {
        meta.set(trace::META_SOURCE, "sharegpt");
    }
    let dest = Dest {
        path: tools.out.output.as_deref(),
        format: tools.out.format,
        meta,
    };
    let skipped: Skipped;
    let mut pipe;
    match &cmd {
        Cmd::Sharegpt {
            sessions,
            think_time,
            process,
            burstiness,
            ..
        } => {
            let arrival = sharegpt_arrival(process.as_deref(), tools.rate, *burstiness)?;
            let mut meta = dest.meta.clone();
            meta.set(trace::META_PROCESS, arrival.name());
            if let Some(r) = arrival.rate() {
                let r = r / tools.time_scale.unwrap_or(1.0);
                meta.set(trace::META_RATE, format!("{r}"));
            }
            let dest2 = Dest { meta, ..dest };
            pipe = Pipeline::new(transform, counter.clone(), &file, "", &dest2)?;
            let opts = sharegpt::Options {
                sessions: *sessions,
                count: tools.count,
                seed: tools.seed,
                arrival,
                think: *think_time,
            };
            skipped = sharegpt::import(&file, &opts, &counter, &mut pipe)?;
            return finish(name, pipe, &dest2, &skipped, tools);
        }
        Cmd::Azure { .. } => {
            pipe = Pipeline::new(transform, counter.clone(), &file, &arrival_col, &dest)?;
            skipped = import::azure::import(&file, &mut pipe)?;
        }
        Cmd::Burstgpt {
            model,
            log_type,
            keep_failed,
            ..
        } => {
            pipe = Pipeline::new(transform, counter.clone(), &file, &arrival_col, &dest)?;
            let f = burstgpt::Filter {
                models: model.clone(),
                log_types: log_type.clone(),
                keep_failed: *keep_failed,
            };
            skipped = burstgpt::import(&file, &f, &mut pipe)?;
        }
        Cmd::Mooncake { .. } => {
            pipe = Pipeline::new(transform, counter.clone(), &file, &arrival_col, &dest)?;
            skipped = import::mooncake::import(&file, &mut pipe)?;
        }
        Cmd::Splitwise { .. } => {
            pipe = Pipeline::new(transform, counter.clone(), &file, &arrival_col, &dest)?;
            skipped = csvmap::import(&file, &csvmap::splitwise(), &counter, &mut pipe)?;
        }
        Cmd::Csv {
            columns,
            arrival_unit,
            input_format,
            ..
        } => {
            pipe = Pipeline::new(transform, counter.clone(), &file, &arrival_col, &dest)?;
            let spec = csvmap::Spec {
                mapping: columns.clone(),
                unit: *arrival_unit,
                format: *input_format,
                source: "csv".into(),
            };
            skipped = csvmap::import(&file, &spec, &counter, &mut pipe)?;
        }
        Cmd::Transform { .. } => {
            pipe = Pipeline::new(transform, counter.clone(), &file, &arrival_col, &dest)?.rows_not_lines();
            let mut r = reader.take().context("trace reader")?;
            push_trace(&mut r, &mut pipe, &counter)?;
            skipped = Skipped::default();
        }
        _ => unreachable!("handled above"),
    }
    finish(name, pipe, &dest, &skipped, tools)
}

fn sharegpt_arrival(process: Option<&str>, rate: Option<f64>, burstiness: f64) -> anyhow::Result<Arrival> {
    let need_rate =
        |kind: &str| rate.with_context(|| format!("--process {kind} needs --rate R (mean requests per second)"));
    let a = match process {
        None => match rate {
            Some(rate) => Arrival::Poisson { rate },
            None => Arrival::Batch,
        },
        Some("poisson") => Arrival::Poisson {
            rate: need_rate("poisson")?,
        },
        Some("gamma") => Arrival::Gamma {
            rate: need_rate("gamma")?,
            burstiness,
        },
        Some("constant") => Arrival::Constant {
            rate: need_rate("constant")?,
        },
        Some("batch") => Arrival::Batch,
        Some(other) => anyhow::bail!("--process {other}: use poisson, gamma, constant or batch"),
    };
    a.validate().map_err(anyhow::Error::msg)?;
    Ok(a)
}

fn finish(name: &str, pipe: Pipeline, dest: &Dest<'_>, skipped: &Skipped, tools: &Tools) -> anyhow::Result<ExitCode> {
    let tally = pipe.finish(dest).map_err(|e: ImportError| anyhow::Error::new(e))?;
    if let Some(s) = skipped.describe() {
        eprintln!("tracegen: {name}: skipped {s}");
    }
    for n in &skipped.notes {
        eprintln!("tracegen: {name}: warning: {n}");
    }
    let mut line = tally.describe();
    if let Some(p) = &tools.out.output {
        line.push_str(&format!(" -> {}", p.display()));
    }
    eprintln!("tracegen: {name}: {line}");
    Ok(ExitCode::SUCCESS)
}
