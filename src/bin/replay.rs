//! replay: fire timed streaming requests from a trace at an endpoint and record every one. The tool is [`servebench::cmd::replay`].

use std::process::ExitCode;

use servebench::cli::run_main;
use servebench::cmd::replay::{Args, run};

fn main() -> ExitCode {
    run_main("replay", || run(servebench::cli::parse::<Args>("replay")))
}
