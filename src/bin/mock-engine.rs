//! mock-engine: the built-in inference server (exact timing or simulated batching).

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::mock_engine;

fn main() -> ExitCode {
    run_main("mock-engine", || mock_engine::run(parse("mock-engine")))
}
