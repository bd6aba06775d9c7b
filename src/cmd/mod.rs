//! Commands: one tool's `run(args)` each, the only code that wires several parts together.
//! The binaries in `src/bin/` parse their arguments and call one of these.

pub mod enginemon;
pub mod gpumon;
pub mod replay;
