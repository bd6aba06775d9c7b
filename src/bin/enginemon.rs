//! enginemon: scrape an inference engine's Prometheus metrics into the engine_metrics contract. The tool is [`servebench::cmd::enginemon`].

use std::process::ExitCode;

use servebench::cli::run_main;
use servebench::cmd::enginemon::{Args, run};

fn main() -> ExitCode {
    run_main("enginemon", || run(servebench::cli::parse::<Args>("enginemon")))
}
