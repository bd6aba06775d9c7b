//! engine-up: start an inference engine, wait until it is really ready, print its URL.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::engine_up;

fn main() -> ExitCode {
    run_main("engine-up", || engine_up::run(parse("engine-up")))
}
