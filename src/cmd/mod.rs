//! One module per tool: its arguments (clap) and its `run`, the only code that wires several
//! parts together. The binaries in `src/bin/` parse and make one call.

pub mod agg;
pub mod chart;
pub mod engine_down;
pub mod engine_up;
pub mod enginemon;
pub mod gpumon;
pub mod import;
pub mod mock_engine;
pub mod quality;
pub mod replay;
pub mod report;
pub mod sweep;
pub mod tracegen;

use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use crate::cli::OutArgs;
use crate::schema::Contract;
use crate::stop::{self, Second, SignalWatch, Stop};

/// A monitor's side commands, then its body.
type Side<A> = fn(&A) -> anyhow::Result<Option<ExitCode>>;
type Body<A> = fn(A, Arc<Stop>, SignalWatch) -> anyhow::Result<ExitCode>;

/// Run a monitor (gpumon, enginemon) from its binary: SIGINT/SIGTERM blocked before any thread
/// starts and taken by the one signal thread (a second signal exits at once).
pub(crate) fn run_monitor<A>(tool: &'static str, args: A, side: Side<A>, body: Body<A>) -> anyhow::Result<ExitCode> {
    let _ = stop::block_signals();
    if let Some(code) = side(&args)? {
        return Ok(code);
    }
    let s = Stop::new();
    let signals = stop::watch_signals(&s, tool, Second::Exit);
    body(args, s, signals)
}

/// Run a monitor under a caller's `stop`, taking no signals (tests, embedding programs).
pub(crate) fn run_monitor_with<A>(args: A, stop: Arc<Stop>, side: Side<A>, body: Body<A>) -> anyhow::Result<ExitCode> {
    if let Some(code) = side(&args)? {
        return Ok(code);
    }
    body(args, stop, SignalWatch::default())
}

/// What every recording tool (replay, gpumon, enginemon) does before recording, if asked:
/// `--print-schema` prints its contracts; `--recover JOURNAL` turns a journal left by a killed
/// run into its file (see [`crate::recorder::recover`]). `Some(exit code)` when one of them ran.
pub(crate) fn recorder_side_commands(
    tool: &'static str,
    out: &OutArgs,
    recover: Option<&Path>,
    contracts: &[&Contract],
) -> anyhow::Result<Option<ExitCode>> {
    if out.print_schema {
        for c in contracts {
            print!("{}", c.print());
        }
        return Ok(Some(ExitCode::SUCCESS));
    }
    if let Some(j) = recover {
        crate::recorder::recover(j, out.output.as_deref(), out.format, tool)?;
        return Ok(Some(ExitCode::SUCCESS));
    }
    Ok(None)
}

/// The multi-threaded runtime of a tool that holds many connections (replay, mock-engine):
/// the file table sized and the open-files limit raised first ([`crate::os::prepare_fds`]).
pub(crate) fn many_connections_runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    crate::os::prepare_fds(65_536);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What both monitors (gpumon, enginemon) take besides their own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MonitorArgs {
    /// Stop after D (without a command)
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg)]
    pub duration: Option<std::time::Duration>,
    /// Write out what a killed run left in a journal (DIR/_FILE.partial), then exit
    #[arg(long, value_name = "PARTIAL")]
    pub recover: Option<std::path::PathBuf>,
    /// No closing summary line
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub out: OutArgs,
    /// A command to run: monitoring lasts exactly as long as it runs, and the monitor exits
    /// with its status
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl MonitorArgs {
    /// `--duration` and a command exclude each other: the command decides how long it lasts.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.duration.is_some() && !self.command.is_empty() {
            anyhow::bail!(
                "--duration cannot be combined with a command: the command decides how long monitoring lasts"
            );
        }
        Ok(())
    }
}

/// Where a client tool sends requests: `--url`, or the URL engine-up recorded for `--engine
/// NAME` (whose state, when found, also names the engine and its model). replay and sweep.
pub fn target(
    url: Option<&str>,
    engine: Option<&str>,
    state_dir: &Path,
) -> anyhow::Result<(Option<crate::engine::state::EngineState>, crate::endpoint::Endpoint)> {
    use crate::engine::state::EngineState;
    let state = match engine {
        Some(name) if url.is_none() => Some(EngineState::load(state_dir, name)?),
        Some(name) => EngineState::load(state_dir, name).ok(),
        None => None,
    };
    let url = match (url, &state) {
        (Some(u), _) => u.to_string(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => {
            anyhow::bail!("say where to send requests: --url http://HOST:PORT, or --engine NAME after engine-up")
        }
    };
    let target = crate::endpoint::Endpoint::parse(&url).map_err(anyhow::Error::msg)?;
    Ok((state, target))
}
