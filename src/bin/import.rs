//! import: read other benchmark tools' per-request results into a requests file.
//!
//! The command lives in [`servebench::cmd::import`]; this binary parses and calls it.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::import::{Args, run};

fn main() -> ExitCode {
    run_main("import", || run(parse::<Args>("import")))
}
