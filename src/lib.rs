//! servebench: benchmark LLM inference servers.
//!
//! The binaries in `src/bin/` are thin command-line layers over this library. Modules are
//! nouns, one per concern; [`schema`] is the single source of truth for every column.

pub mod analysis;
pub mod capacity;
pub mod chart;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod endpoint;
pub mod engine;
pub mod enginemon;
pub mod gpu;
pub mod io;
pub mod meta;
pub mod mock;
pub mod monitor;
pub mod os;
pub mod peers;
pub mod prom;
pub mod quality;
pub mod recorder;
pub mod report;
pub mod schema;
pub mod stats;
pub mod stop;
pub mod timer;
pub mod trace;
pub mod units;
