//! The one error type of reading and writing data files.

use std::io;

use arrow_schema::ArrowError;

/// Errors reading or writing data files. Each message names the file and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: no such file; check the path (or pass - to read stdin)")]
    NotFound { path: String },
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: io::Error },
    #[error(
        "{path}: not a Parquet or Arrow IPC file ({what}); servebench reads files written by its tools, pyarrow or DuckDB{hint}"
    )]
    NotData { path: String, what: String, hint: String },
    #[error("{path}: invalid Parquet: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: invalid Arrow data: {source}")]
    Arrow { path: String, source: ArrowError },
    #[error("{path}: column `{column}` is missing; a {contract} file needs the columns {required}")]
    MissingColumn {
        path: String,
        column: String,
        contract: String,
        required: String,
    },
    #[error("{path}: column `{column}` has type {found}, expected {expected}")]
    BadType {
        path: String,
        column: String,
        found: String,
        expected: String,
    },
    #[error("{path}: row {row}: column `{column}`: {msg}")]
    BadValue {
        path: String,
        row: u64,
        column: String,
        msg: String,
    },
    #[error(
        "refusing to write binary {format} data to a terminal: use -o FILE, pipe into another tool, or --format csv|json|md"
    )]
    Terminal { format: &'static str },
    #[error("{path}: cannot write: {source}")]
    Write { path: String, source: io::Error },
    #[error("{path}: cannot write Parquet: {source}")]
    WriteParquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: cannot write Arrow: {source}")]
    WriteArrow { path: String, source: ArrowError },
}

impl DataError {
    /// True when the error is a closed pipe downstream (not an error for a CLI tool).
    pub fn is_broken_pipe(&self) -> bool {
        let s = self.to_string();
        match self {
            DataError::Write { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
            _ => s.contains("Broken pipe") || s.contains("os error 32"),
        }
    }
}
