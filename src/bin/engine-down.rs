//! engine-down: stop engines started by engine-up, leaving no process (and no GPU memory) behind.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::engine_down;

fn main() -> ExitCode {
    run_main("engine-down", || engine_down::run(parse("engine-down")))
}
