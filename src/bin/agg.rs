//! agg: compute percentiles, throughput and goodput per group from requests files.
//!
//! The command lives in [`servebench::cmd::agg`]; this binary parses and calls it.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::agg::{Args, run};

fn main() -> ExitCode {
    run_main("agg", || run(parse::<Args>("agg")))
}
