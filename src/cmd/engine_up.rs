//! engine-up: start an inference engine, wait until it is really ready, print its URL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::engine::config::{EnginesFile, Form, LaunchReq, hf_cache, project_root};
use crate::engine::{EngineError, UpOptions, free_port, up};
use crate::stop::{self, STOP_SIGNALS_AND_HUP, Second, Stop};

const EXAMPLES: &str = "\
Examples:
  URL=$(engine-up mock)                                   # built-in engine, exact timing
  URL=$(engine-up mock --quant fp16 --port 0)             # simulated batching, any free port
  URL=$(engine-up vllm --model llama-3.1-8b --quant fp8)  # a model and quant variant
  URL=$(engine-up vllm --model Qwen/Qwen2.5-7B-Instruct)  # any model id, no variant
  engine-up vllm --model cpu-tiny --dry-run               # print the launch as JSON only
  engine-up tgi --process --set gpus=device=1             # the process form; override a var
  engine-up sglang -- --max-running-requests 128          # extra engine arguments after --

The engine runs in its own session and process group (or a container), logs to
STATE_DIR/NAME.log, and is ready when its readiness endpoint answers (a port that accepts
connections is not enough). The state file STATE_DIR/NAME.json records pid, URL, model,
quant, argv, the engine's reported version and the start time; replay --engine NAME and
engine-down NAME read it. Ctrl-C while waiting stops the engine.";

#[derive(Parser)]
#[command(name = "engine-up", version, about = "Start an inference engine and wait until it is ready", after_help = EXAMPLES)]
pub struct Args {
    /// Engine name (a table in engines.toml: mock, vllm, sglang, tgi, trtllm, friendli, llamacpp, ollama)
    pub name: String,
    /// Model (a model variant in engines.toml, or a model id / path)
    #[arg(long)]
    pub model: Option<String>,
    /// Quantization variant (fp16, awq, fp8, ...)
    #[arg(long)]
    pub quant: Option<String>,
    /// Port (0 = a free one)
    #[arg(long)]
    pub port: Option<u16>,
    /// Host to bind
    #[arg(long)]
    pub host: Option<String>,
    /// Run the engine's process form
    #[arg(long, conflicts_with = "container")]
    pub process: bool,
    /// Run the engine's container form (docker)
    #[arg(long)]
    pub container: bool,
    /// Override a var of engines.toml (repeatable), e.g. --set gpus=device=0
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Allow binding a non-loopback address
    #[arg(long)]
    pub allow_remote: bool,
    #[command(flatten)]
    pub tls: crate::cli::TlsArgs,
    /// Engines file [default: the built-in configs/engines.toml]
    #[arg(long, env = "SERVEBENCH_ENGINES")]
    pub config: Option<PathBuf>,
    /// Directory for state and log files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    pub state_dir: PathBuf,
    /// Readiness timeout [default: the engine's ready_timeout_s]
    #[arg(long, value_parser = crate::units::duration_arg)]
    pub timeout: Option<Duration>,
    /// Print the launch (argv, env, files, readiness, ...) as JSON and exit without starting anything
    #[arg(long)]
    pub dry_run: bool,
    /// Extra arguments for the engine
    #[arg(last = true)]
    pub extra: Vec<String>,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: use KEY=VALUE")),
    }
}

/// Run engine-up: resolve the launch, start the engine, wait until it is ready, print its URL.
///
/// Signals: [`catch_stop_signals`] (SIGINT, SIGTERM, SIGHUP) is installed just before the
/// start; [`up`] polls it while waiting and stops the engine (exit 130).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = EnginesFile::load(args.config.as_deref())?;
    let cfg = file.get(&args.name)?;
    let host = args.host.clone().unwrap_or_else(|| cfg.host.clone());
    let port = match args.port {
        Some(0) if args.dry_run => Some(0),
        Some(0) => Some(free_port(&host)?),
        p => p,
    };
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    // Absolute, so that generated files can be mounted into containers.
    let state_dir = if args.state_dir.is_absolute() {
        args.state_dir.clone()
    } else {
        std::env::current_dir()?.join(&args.state_dir)
    };
    let form = match (args.process, args.container) {
        (true, _) => Some(Form::Process),
        (_, true) => Some(Form::Container),
        _ => None,
    };
    let launch = cfg.resolve(
        &args.name,
        &LaunchReq {
            model: args.model.as_deref(),
            quant: args.quant.as_deref(),
            port,
            host: Some(&host),
            form,
            extra_args: &args.extra,
            set: &args.set,
            bin_dir: bin_dir.to_string_lossy().to_string(),
            state_dir: state_dir.to_string_lossy().to_string(),
            root: project_root(&bin_dir).to_string_lossy().to_string(),
            hf_cache: hf_cache(),
        },
    )?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&launch)?);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "engine-up: starting {} ({}): {}",
        args.name,
        launch.form.name(),
        crate::meta::redact_args(&launch.argv).join(" ")
    );
    // SIGINT, SIGTERM and SIGHUP go to one thread that stops the wait (the engine started so
    // far is stopped, nothing is left running); blocked before any thread starts.
    let _ = stop::block(STOP_SIGNALS_AND_HUP);
    let halt = Stop::new();
    let _watch = stop::watch(&halt, "engine-up", Second::Cancel, STOP_SIGNALS_AND_HUP);
    let st = match up(
        &launch,
        &UpOptions {
            state_dir,
            stop: halt.clone(),
            ready_timeout: args.timeout,
            allow_remote: args.allow_remote,
            tls: args.tls.options(),
            verbose: true,
        },
    ) {
        Ok(st) => st,
        // The log tail keeps its lines (other errors are one line).
        Err(e @ (EngineError::Died { .. } | EngineError::NotReady { .. })) => {
            eprintln!("engine-up: error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e @ EngineError::Interrupted { .. }) => {
            eprintln!("engine-up: {e}");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "engine-up: {} ready after {:.1} s at {} (pid {}, model {}, version {}, log {})",
        st.name,
        st.ready_after_s,
        st.url,
        st.pid,
        st.served_model.as_deref().unwrap_or(&st.model),
        st.version.as_deref().unwrap_or("unknown"),
        st.log.display()
    );
    println!("{}", st.url);
    Ok(ExitCode::SUCCESS)
}
