//! engine-down: stop engines started by engine-up, leaving no process (and no GPU memory) behind.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::engine::nvml::Release;
use crate::engine::state::EngineState;
use crate::engine::{Down, DownOptions, down};

const EXAMPLES: &str = "\
Examples:
  engine-down vllm
  engine-down --all
  engine-down tgi --grace 100s

Sends the engine's stop signal to its leader (which shuts its workers down in order), then to
whatever of its process group, session or descendants outlives the leader, waits the grace
period, then SIGKILLs them all; containers get `docker stop -t GRACE` first. Where an NVIDIA driver is present it then waits until the engine's processes no
longer hold GPU memory (and warns if memory in use stays above its level before the engine
started). Stopping an engine that is not running succeeds. Exits 2 if any process survives
or still holds GPU memory.";

#[derive(Parser)]
#[command(name = "engine-down", version, about = "Stop engines started by engine-up", after_help = EXAMPLES)]
pub struct Args {
    /// Engine names
    pub names: Vec<String>,
    /// Stop every engine with a state file
    #[arg(long)]
    pub all: bool,
    /// Grace period before SIGKILL [default: the engine's grace_s]
    #[arg(long, value_parser = crate::units::duration_arg)]
    pub grace: Option<Duration>,
    /// How long to wait for the engine's GPU memory to be released (NVML only)
    #[arg(long, value_parser = crate::units::duration_arg, default_value = "60s")]
    pub gpu_wait: Duration,
    /// Directory of state files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    pub state_dir: PathBuf,
}

/// Run engine-down: stop each named engine (or all), in order. It installs no signal
/// handler: a signal ends it with the default action.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let names = if args.all {
        EngineState::list(&args.state_dir)
    } else {
        args.names.clone()
    };
    if names.is_empty() && !args.all {
        anyhow::bail!("name an engine to stop (engine-down vllm) or pass --all");
    }
    let opts = DownOptions {
        grace: args.grace,
        gpu_wait: args.gpu_wait,
    };
    let mut failed = Vec::new();
    for n in &names {
        let st = match EngineState::load(&args.state_dir, n) {
            Ok(s) => s,
            Err(_) => {
                eprintln!("engine-down: {n}: not running");
                continue;
            }
        };
        match down(&st, &opts) {
            Ok(Down::NotRunning) => {
                eprintln!("engine-down: {n}: was not running (pid {} gone)", st.pid);
                EngineState::remove(&args.state_dir, n);
            }
            Ok(Down::Stopped { graceful, secs, gpu }) => {
                let gpu_note = match gpu {
                    Some(Release::Released { secs }) => format!("; GPU memory released after {secs:.1} s"),
                    Some(Release::AboveBaseline { used_mib, before_mib }) => format!(
                        "; warning: GPU memory in use {used_mib:.0?} MiB is still above {before_mib:.0?} MiB before the engine started (another process?)"
                    ),
                    _ => String::new(),
                };
                eprintln!(
                    "engine-down: {n}: stopped in {secs:.1} s{}{gpu_note}",
                    if graceful {
                        ""
                    } else {
                        " (SIGKILL after the grace period)"
                    }
                );
                EngineState::remove(&args.state_dir, n);
            }
            Err(e) => {
                eprintln!("engine-down: {n}: {e}");
                failed.push(n.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("could not stop: {}", failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
