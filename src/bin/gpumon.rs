//! gpumon: sample GPUs through NVML into the gpu contract. The tool is [`servebench::cmd::gpumon`].

use std::process::ExitCode;

use servebench::cli::run_main;
use servebench::cmd::gpumon::{Args, run};

fn main() -> ExitCode {
    run_main("gpumon", || run(servebench::cli::parse::<Args>("gpumon")))
}
