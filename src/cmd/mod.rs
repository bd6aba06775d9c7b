//! One module per tool: its arguments (clap) and its `run`, the only code that wires several
//! parts together. The binaries in `src/bin/` parse and make one call.

pub mod agg;
pub mod chart;
pub mod engine_down;
pub mod engine_up;
pub mod enginemon;
pub mod gpumon;
pub mod mock_engine;
pub mod replay;
pub mod report;
pub mod tracegen;
