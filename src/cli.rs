//! What every binary shares: exit codes, error lines, output options, duration parsing.
//!
//! Exit 0 on success, 1 when the run finished but a requested check failed, 2 on bad usage
//! or a fatal error, with one line on stderr naming the problem. A closed pipe downstream
//! ends a tool quietly with 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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

/// Parse a duration: `250ms`, `30s`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 500ms, 30s, 2m, 1h"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("invalid duration {s:?}: must be a non-negative number"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Log a line to stderr with the tool's name (data never goes to stderr, talk never to stdout).
#[macro_export]
macro_rules! say {
    ($tool:expr, $($arg:tt)*) => {
        eprintln!("{}: {}", $tool, format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
