//! What every binary shares: exit codes, error lines, output options.
//!
//! Exit 0 on success, 1 when the run finished but a requested check failed, 2 on bad usage
//! or a fatal error, with one line on stderr naming the problem. A closed pipe downstream
//! ends a tool quietly with 0.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::io::Format;

/// A requested check failed (SLO gate, error-rate limit): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

/// Run a tool's main function with servebench's exit conventions.
pub fn run_main(tool: &str, f: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    match f() {
        Ok(code) => code,
        Err(e) => exit_for(tool, &e),
    }
}

/// Map an error to the exit code and one line on stderr.
pub fn exit_for(tool: &str, e: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(e) {
        return ExitCode::SUCCESS;
    }
    let msg = one_line(e);
    if e.downcast_ref::<CheckFailed>().is_some() {
        eprintln!("{tool}: check failed: {msg}");
        return ExitCode::from(1);
    }
    eprintln!("{tool}: error: {msg}");
    ExitCode::from(2)
}

/// The error and its causes on one line, without repeating a cause already in the message.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for c in e.chain() {
        let s = c.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out.replace('\n', " ")
}

pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        if let Some(d) = c.downcast_ref::<crate::io::DataError>() {
            return d.is_broken_pipe();
        }
        let s = c.to_string();
        s.contains("Broken pipe (os error 32)")
    })
}

/// Parse arguments; a usage error is one line on stderr and exit 2 (help and version print
/// as usual).
pub fn parse<T: clap::Parser>(tool: &str) -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
                _ => {
                    let text = e.to_string();
                    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("bad usage");
                    let msg = first.trim().strip_prefix("error: ").unwrap_or(first.trim());
                    eprintln!("{tool}: error: {msg} (see {tool} --help)");
                    std::process::exit(2);
                }
            }
        }
    }
}

/// Output options shared by every tool that writes a data contract.
#[derive(Debug, Clone, clap::Args)]
pub struct OutArgs {
    /// Write to PATH (a temporary name, renamed when complete); default: stdout
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Output format [default: from the extension; else Parquet for files, Arrow IPC for pipes]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print the output contract (columns, types, units) and exit
    #[arg(long)]
    pub print_schema: bool,
}

/// How an `https://` server is trusted (replay, enginemon, engine-up's readiness check).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Trust only the certificate authorities in this PEM file for https:// URLs (a private
    /// CA), instead of the platform's root certificates
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// DANGEROUS: do not verify the https:// server's certificate or name (anyone on the path
    /// can pose as the server); recorded in the output's provenance
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    pub fn options(&self) -> crate::client::tls::TlsOptions {
        crate::client::tls::TlsOptions {
            cacert: self.cacert.clone(),
            insecure: self.insecure,
        }
    }
}

/// Log a line to stderr with the tool's name (data never goes to stderr, talk never to stdout).
#[macro_export]
macro_rules! say {
    ($tool:expr, $($arg:tt)*) => {
        eprintln!("{}: {}", $tool, format!($($arg)*))
    };
}
