//! sweep: find the capacity of an endpoint at an SLO. The tool is [`servebench::cmd::sweep`].

use std::process::ExitCode;

use servebench::cli::run_main;
use servebench::cmd::sweep::{Args, run};

fn main() -> ExitCode {
    run_main("sweep", || run(servebench::cli::parse::<Args>("sweep")))
}
