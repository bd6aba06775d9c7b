//! quality: a served model's quality through its endpoint (the quality contract), and the
//! comparison of a variant with its baseline.

use std::process::ExitCode;

use servebench::cli::{parse, run_main};
use servebench::cmd::quality;

fn main() -> ExitCode {
    run_main("quality", || quality::run(parse("quality")))
}
