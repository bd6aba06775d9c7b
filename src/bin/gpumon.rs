//! gpumon: sample GPUs through NVML.

use std::process::ExitCode;

use clap::Parser;
use servebench::cli::{OutArgs, run_main};
use servebench::schema::GPU;

#[derive(Parser)]
#[command(
    name = "gpumon",
    version,
    about = "Sample NVIDIA GPUs through NVML into the gpu contract"
)]
struct Cli {
    #[command(flatten)]
    out: OutArgs,
}

fn main() -> ExitCode {
    run_main("gpumon", || {
        let cli: Cli = servebench::cli::parse("gpumon");
        if cli.out.print_schema {
            print!("{}", GPU.print());
            return Ok(ExitCode::SUCCESS);
        }
        match nvml_wrapper::Nvml::init() {
            Ok(n) => {
                let c = n.device_count().unwrap_or(0);
                anyhow::bail!("NVML found {c} GPU(s) but sampling is not implemented yet")
            }
            Err(e) => anyhow::bail!(
                "no NVIDIA driver: NVML could not be loaded ({e}); gpumon needs an NVIDIA GPU and its driver"
            ),
        }
    })
}
