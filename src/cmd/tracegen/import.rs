//! tracegen's importers and `transform`: a source read into the streaming pipeline of
//! [`crate::trace::transform`], with the trace tools applied on the way.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use super::help;
use crate::cli::OutArgs;
use crate::meta::Meta;
use crate::schema::TRACE;
use crate::trace::import::csvmap::{self, Mapping, TextFormat, TimeUnit};
use crate::trace::import::{self, ImportError, Skipped, burstgpt, sharegpt};
use crate::trace::synth::Arrival;
use crate::trace::tokenizer::TokenCounter;
use crate::trace::transform::{Dest, Pipeline, Transform, push_trace};
use crate::trace::{self, TraceReader};

/// The subcommands that read a source: the importers and `transform`.
#[derive(Subcommand)]
pub enum Import {
    /// Import ShareGPT conversations (one JSON array, parsed as a stream)
    #[command(after_help = help::SHAREGPT_HELP)]
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
    #[command(after_help = help::AZURE_HELP)]
    Azure {
        /// The CSV file (- for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import a BurstGPT CSV (v1 or v3 columns, found by name)
    #[command(after_help = help::BURSTGPT_HELP)]
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
    #[command(after_help = help::MOONCAKE_HELP)]
    Mooncake {
        /// The JSONL file (- for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import a Splitwise/Vidur CSV (arrived_at,num_prefill_tokens,num_decode_tokens; seconds)
    #[command(after_help = help::SPLITWISE_HELP)]
    Splitwise {
        /// The CSV file (- for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
    /// Import any CSV or JSONL file through a column mapping
    #[command(after_help = help::CSV_HELP)]
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
    #[command(after_help = help::TRANSFORM_HELP)]
    Transform {
        /// A trace file (Parquet or Arrow IPC; - for stdin)
        file: String,
        #[command(flatten)]
        tools: Tools,
    },
}

/// The trace tools, on every importer and `transform`.
#[derive(clap::Args)]
pub struct Tools {
    /// Multiply arrival times by X (0.5 = twice as fast)
    #[arg(long, value_name = "X")]
    pub time_scale: Option<f64>,
    /// Rescale times to this mean rate (req/s), keeping the burst shape (sharegpt: the rate of --process)
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Re-time to a rate that changes, keeping the burst shape: FROM:TO:OVER (0:20:60s) or steps:R1@D1,...,Rn (sharegpt: its --process at a mean rate of 1, re-timed)
    #[arg(long, value_name = "RAMP", conflicts_with_all = ["rate", "time_scale"])]
    pub ramp: Option<crate::trace::ramp::Ramp>,
    /// Cut a slice starting at D in the source's time (e.g. 10m); START becomes t=0
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg)]
    pub start: Option<Duration>,
    /// Length of the slice (e.g. 5m); reading stops at its end
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg)]
    pub window: Option<Duration>,
    /// Drop rows with more than N input tokens (with --clamp: cut them to N)
    #[arg(long, value_name = "N")]
    pub max_input: Option<u32>,
    /// With --max-input: clamp longer rows to N tokens (text and prefix blocks cut) instead of dropping them
    #[arg(long)]
    pub clamp: bool,
    /// Keep each row with probability F (seeded; sessions whole)
    #[arg(long, value_name = "F")]
    pub sample: Option<f64>,
    /// Stop after N requests (sharegpt: draw N conversations at random, seeded)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Sort rows by arrival time (holds the whole trace in memory); without it, time going backwards is an error
    #[arg(long)]
    pub sort: bool,
    /// Category for rows that have none (e.g. code, conv)
    #[arg(long, value_name = "NAME")]
    pub category: Option<String>,
    /// Count text tokens with this Hugging Face tokenizer.json instead of the approximation
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Seed for --sample, sharegpt's --count, arrivals and think times
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number rows from N (importers number rows from 0; transform keeps request_id unless given)
    #[arg(long, value_name = "N")]
    pub first_id: Option<u64>,
    #[command(flatten)]
    pub out: OutArgs,
}

impl Import {
    /// The subcommand's name, its source file and its trace tools.
    fn source(&self) -> (&'static str, &str, &Tools) {
        match self {
            Import::Sharegpt { file, tools, .. } => ("sharegpt", file, tools),
            Import::Azure { file, tools } => ("azure", file, tools),
            Import::Burstgpt { file, tools, .. } => ("burstgpt", file, tools),
            Import::Mooncake { file, tools } => ("mooncake", file, tools),
            Import::Splitwise { file, tools } => ("splitwise", file, tools),
            Import::Csv { file, tools, .. } => ("csv", file, tools),
            Import::Transform { file, tools } => ("transform", file, tools),
        }
    }

    /// Does the source carry prompt text (whose tokens are counted)?
    fn has_text(&self) -> bool {
        match self {
            Import::Sharegpt { .. } | Import::Transform { .. } => true,
            Import::Csv { columns, .. } => columns.prompt.is_some(),
            _ => false,
        }
    }

    /// The source's arrival column, named in "goes back in time" errors.
    fn arrival_col(&self) -> String {
        match self {
            Import::Azure { .. } => import::azure::TIME.to_string(),
            Import::Burstgpt { .. } => burstgpt::TIME.to_string(),
            Import::Mooncake { .. } => "timestamp".to_string(),
            Import::Splitwise { .. } => "arrived_at".to_string(),
            Import::Csv { columns, .. } => columns.arrival.clone(),
            Import::Transform { .. } => crate::schema::trace::col::ARRIVAL_S.to_string(),
            Import::Sharegpt { .. } => String::new(),
        }
    }

    /// The trace tools as a [`Transform`].
    fn transform(&self) -> Transform {
        let (name, _, tools) = self.source();
        // sharegpt draws --count conversations itself, and --rate is its process's rate
        let is_sharegpt = matches!(self, Import::Sharegpt { .. });
        Transform {
            sort: tools.sort,
            max_input: tools.max_input,
            clamp: tools.clamp,
            start_s: tools.start.map(|d| d.as_secs_f64()),
            window_s: tools.window.map(|d| d.as_secs_f64()),
            sample: tools.sample,
            count: if is_sharegpt { None } else { tools.count },
            time_scale: tools.time_scale,
            rate: if is_sharegpt { None } else { tools.rate },
            ramp: tools.ramp.clone(),
            seed: tools.seed,
            category: tools.category.clone(),
            renumber: name != "transform" || tools.first_id.is_some(),
            first_id: tools.first_id.unwrap_or(0),
        }
    }
}

/// Run one importer (or `transform`) to its end.
pub fn run(cmd: Import) -> anyhow::Result<ExitCode> {
    let (name, file, tools) = cmd.source();
    if tools.out.print_schema {
        print!("{}", TRACE.print());
        return Ok(ExitCode::SUCCESS);
    }
    let counter = TokenCounter::from_arg(tools.tokenizer.as_ref())?;
    let transform = cmd.transform();
    transform.validate().map_err(anyhow::Error::msg)?;

    let mut meta = Meta::for_output(&TRACE, true);
    meta.set(trace::META_SEED, tools.seed.to_string());
    meta.set(trace::META_SOURCE, name);
    meta.set(trace::META_SOURCE_FILE, file.to_string());
    meta.set(
        trace::META_TOKENIZER,
        if cmd.has_text() {
            counter.describe()
        } else {
            format!("none: lengths as recorded in the {name} trace")
        },
    );
    let arrival_col = cmd.arrival_col();
    let mut dest = Dest {
        path: tools.out.output.as_deref(),
        format: tools.out.format,
        meta,
    };
    let pipeline =
        |transform: Transform, dest: &Dest<'_>| Pipeline::new(transform, counter.clone(), file, &arrival_col, dest);
    let (pipe, skipped) = match &cmd {
        Import::Sharegpt {
            sessions,
            think_time,
            process,
            burstiness,
            ..
        } => {
            // with --ramp, the process draws at a mean rate of 1 and the ramp re-times it
            let rate = tools.rate.or(tools.ramp.as_ref().map(|_| 1.0));
            let arrival = sharegpt_arrival(process.as_deref(), rate, *burstiness)?;
            dest.meta.set(trace::META_PROCESS, arrival.name());
            if let Some(r) = arrival.rate() {
                let r = r / tools.time_scale.unwrap_or(1.0);
                dest.meta.set(trace::META_RATE, format!("{r}"));
            }
            let mut pipe = pipeline(transform, &dest)?;
            let opts = sharegpt::Options {
                sessions: *sessions,
                count: tools.count,
                seed: tools.seed,
                arrival,
                think: *think_time,
            };
            let skipped = sharegpt::import(file, &opts, &counter, &mut pipe)?;
            (pipe, skipped)
        }
        Import::Azure { .. } => {
            let mut pipe = pipeline(transform, &dest)?;
            let skipped = import::azure::import(file, &mut pipe)?;
            (pipe, skipped)
        }
        Import::Burstgpt {
            model,
            log_type,
            keep_failed,
            ..
        } => {
            let mut pipe = pipeline(transform, &dest)?;
            let f = burstgpt::Filter {
                models: model.clone(),
                log_types: log_type.clone(),
                keep_failed: *keep_failed,
            };
            let skipped = burstgpt::import(file, &f, &mut pipe)?;
            (pipe, skipped)
        }
        Import::Mooncake { .. } => {
            let mut pipe = pipeline(transform, &dest)?;
            let skipped = import::mooncake::import(file, &mut pipe)?;
            (pipe, skipped)
        }
        Import::Splitwise { .. } => {
            let mut pipe = pipeline(transform, &dest)?;
            let skipped = csvmap::import(file, &csvmap::splitwise(), &counter, &mut pipe)?;
            (pipe, skipped)
        }
        Import::Csv {
            columns,
            arrival_unit,
            input_format,
            ..
        } => {
            let mut pipe = pipeline(transform, &dest)?;
            let spec = csvmap::Spec {
                mapping: columns.clone(),
                unit: *arrival_unit,
                format: *input_format,
                source: "csv".into(),
            };
            let skipped = csvmap::import(file, &spec, &counter, &mut pipe)?;
            (pipe, skipped)
        }
        Import::Transform { .. } => {
            let mut r = TraceReader::open(file)?;
            carry_source_meta(&mut dest.meta, &r, file, &counter);
            let mut pipe = pipeline(transform, &dest)?.rows_not_lines();
            push_trace(&mut r, &mut pipe, &counter)?;
            (pipe, Skipped::default())
        }
    };
    finish(name, pipe, &dest, &skipped, tools)
}

/// `transform` carries the source trace's description forward (not its rate or the tools
/// applied to it: those are this run's), naming itself as the source.
fn carry_source_meta(meta: &mut Meta, r: &TraceReader, file: &str, counter: &TokenCounter) {
    for (k, v) in &r.meta().0 {
        if k.starts_with("servebench.trace.") && k != trace::META_RATE && k != trace::META_TRANSFORM {
            meta.set(k.clone(), v.clone());
        }
    }
    meta.set(trace::META_SOURCE, "transform");
    meta.set(trace::META_SOURCE_FILE, file.to_string());
    if matches!(counter, TokenCounter::Exact(_)) {
        meta.set(trace::META_TOKENIZER, counter.describe());
    }
}

/// sharegpt's arrival process of conversations: `--process` (default: Poisson with `--rate`,
/// else all at t=0).
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

/// End the pipeline and say what was written and skipped.
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
