//! One module per tool: its arguments (clap) and its `run`, the only code that wires several
//! parts together. The binaries in `src/bin/` parse and make one call.

pub mod agg;
pub mod chart;
pub mod engine_down;
pub mod engine_up;
pub mod enginemon;
pub mod gpumon;
pub mod mock_engine;
pub mod replay;
pub mod report;
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
