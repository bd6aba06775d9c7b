//! Inputs and outputs shared by every tool.
//!
//! Reading: a path or `-` (stdin); Parquet, Arrow IPC stream and Arrow IPC file are detected
//! from the first bytes. Parquet on stdin is buffered fully (its footer comes last); an IPC
//! stream flows batch by batch.
//!
//! Writing: `-o PATH` is written to a temporary name beside it and renamed when complete, so a
//! half-written file never carries the final name. Without `-o`, data goes to stdout: Parquet
//! when stdout is a regular file, Arrow IPC stream when it is a pipe, and never binary to a
//! terminal. `--format` overrides (parquet, arrow, csv, json, md).
//!
//! The parts: [`read`] (inputs), [`write`] (outputs, formats, journals), [`render`] (cells as
//! text), [`cols`] (typed access to the columns of a batch) and [`DataError`], the one error
//! of them all.

pub mod cols;
mod error;
pub mod read;
pub mod render;
pub mod write;

pub use error::DataError;
pub use read::*;
pub use render::*;
pub use write::*;
