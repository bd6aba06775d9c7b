//! engine-up: start an inference engine, wait until it is really ready, print its URL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use servebench::cli::{parse_duration, run_main};
use servebench::engine::config::{EnginesFile, LaunchReq};
use servebench::engine::{UpOptions, free_port, up};

const EXAMPLES: &str = "\
Examples:
  URL=$(engine-up mock)                                   # built-in engine, exact timing
  URL=$(engine-up mock --quant fp16 --port 0)             # simulated batching, any free port
  URL=$(engine-up vllm --model meta-llama/Llama-3.1-8B-Instruct --quant fp8)
  engine-up vllm --model cpu-tiny --dry-run               # print the launch command only
  engine-up sglang -- --max-running-requests 128          # extra engine arguments after --

The engine runs in its own session and process group, logs to STATE_DIR/NAME.log, and is ready
when its readiness endpoint answers (a port that accepts connections is not enough). The state
file STATE_DIR/NAME.json records pid, URL, model, quant, argv, version and start time; replay
--engine NAME and engine-down NAME read it.";

#[derive(Parser)]
#[command(name = "engine-up", version, about = "Start an inference engine and wait until it is ready", after_help = EXAMPLES)]
struct Cli {
    /// Engine name (a table in engines.toml: mock, vllm, sglang, tgi, trtllm, friendli, llamacpp, ollama)
    name: String,
    /// Model (a model variant in engines.toml, or a model id / path)
    #[arg(long)]
    model: Option<String>,
    /// Quantization variant (fp16, awq, fp8, ...)
    #[arg(long)]
    quant: Option<String>,
    /// Port (0 = a free one)
    #[arg(long)]
    port: Option<u16>,
    /// Host to bind
    #[arg(long)]
    host: Option<String>,
    /// Allow binding a non-loopback address
    #[arg(long)]
    allow_remote: bool,
    /// Engines file [default: the built-in configs/engines.toml]
    #[arg(long, env = "SERVEBENCH_ENGINES")]
    config: Option<PathBuf>,
    /// Directory for state and log files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    state_dir: PathBuf,
    /// Readiness timeout [default: the engine's ready_timeout_s]
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Print the launch (argv, env) as JSON and exit without starting anything
    #[arg(long)]
    dry_run: bool,
    /// Extra arguments for the engine
    #[arg(last = true)]
    extra: Vec<String>,
}

fn main() -> ExitCode {
    run_main("engine-up", || {
        let cli: Cli = servebench::cli::parse("engine-up");
        let file = EnginesFile::load(cli.config.as_deref())?;
        let cfg = file.get(&cli.name)?;
        let host = cli.host.clone().unwrap_or_else(|| cfg.host.clone());
        let port = match cli.port {
            Some(0) => Some(free_port(&host)?),
            p => p,
        };
        let bin_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.to_string_lossy().to_string()))
            .unwrap_or_else(|| ".".into());
        let launch = cfg.resolve(
            &cli.name,
            &LaunchReq {
                model: cli.model.as_deref(),
                quant: cli.quant.as_deref(),
                port,
                host: Some(&host),
                extra_args: &cli.extra,
                bin_dir,
                state_dir: cli.state_dir.to_string_lossy().to_string(),
            },
        )?;
        if cli.dry_run {
            println!("{}", serde_json::to_string_pretty(&launch)?);
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("engine-up: starting {}: {}", cli.name, launch.argv.join(" "));
        let st = up(
            cfg,
            &launch,
            &UpOptions {
                state_dir: cli.state_dir.clone(),
                ready_timeout: cli.timeout,
                allow_remote: cli.allow_remote,
                verbose: true,
            },
        )?;
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
    })
}
