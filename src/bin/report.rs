//! report: runs in, a Markdown and HTML report with charts and derived recommendations out.
//!
//! The command lives in [`servebench::cmd::report`]; this binary parses and calls it.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::report::{Args, run};

fn main() -> ExitCode {
    run_main("report", || run(parse::<Args>("report")))
}
