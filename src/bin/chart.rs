//! chart: draw summary (and requests) files as PNG and SVG.
//!
//! The command lives in [`servebench::cmd::chart`]; this binary parses and calls it.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::chart::{Args, run};

fn main() -> ExitCode {
    run_main("chart", || run(parse::<Args>("chart")))
}
