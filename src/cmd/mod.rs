//! Commands: each tool's `run(args)`, the only code that wires several parts together. The
//! binaries in `src/bin/` parse their arguments and make one call here.

pub mod agg;
pub mod chart;
pub mod report;
