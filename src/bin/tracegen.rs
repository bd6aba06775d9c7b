//! tracegen: build arrival traces (the trace contract) for replay.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::tracegen;

fn main() -> ExitCode {
    run_main("tracegen", || tracegen::run(parse("tracegen")))
}
