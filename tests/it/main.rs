//! The one integration test binary: one module per tool, talking to real processes on
//! 127.0.0.1 (mock-engine, scripted servers replaying engines' exact bytes).

mod common;

mod achieved_load;
mod agg;
mod bench;
mod browser;
mod cancel;
mod chart;
mod duckdb;
mod engine;
mod enginemon;
mod faults;
mod fixtures;
mod gateway;
mod gpumon;
mod import;
mod layers;
mod mock_logprobs;
mod peers_import;
mod prefix;
mod quality;
mod readme;
mod real_llamacpp;
mod real_peers;
mod real_quality;
mod real_vllm;
mod reasoning;
mod reliability;
mod replay;
mod report;
mod shard;
mod spark;
mod spec;
mod sweep;
mod tls;
mod tracegen;
mod traces;
