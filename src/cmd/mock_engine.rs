//! mock-engine: the built-in inference server (exact timing or simulated batching), on a
//! loopback port until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::mock::fault::{FaultSpec, Faults, Style};
use crate::mock::{Config, serve, sim::SimParams};
use crate::stop::{self, Second, Stop};

const EXAMPLES: &str = "\
Examples:
  mock-engine --port 8100                          # exact: TTFT 50 ms, then a chunk every 10 ms
  mock-engine --port 8100 --ttft-ms 200 --itl-ms 25 --tokens-per-chunk 4
  mock-engine --port 8100 --sim                    # simulated continuous batching
  mock-engine --port 0 --port-file /tmp/port       # any free port, written to /tmp/port

Routes: POST /v1/chat/completions, /v1/completions (vLLM's byte format, streaming or not,
stream_options.include_usage and continuous_usage_stats), /generate_stream (TGI),
/generate (SGLang), /completion (llama.cpp), /api/generate (Ollama);
GET /health, /v1/models, /version, /metrics (vLLM's metric names).
Output length is exactly max_tokens. Prompt tokens use servebench's documented approximation.

Simulated mode: each engine step admits waiting requests (up to --sim-max-batch, within the
KV budget), prefills up to --sim-max-prefill-tokens prompt tokens, and gives every prefilled
sequence one token; a step lasts decode-base + decode-per-seq x batch + prefill-per-token x
prefilled tokens; KV overflow preempts the newest sequence (recomputed later). A prefix cache
(--sim-prefix-cache-tokens, LRU over chained hashes of 16-token prompt blocks, as vLLM's) serves
a prompt's longest cached prefix without prefill; the cached tokens appear in usage
(prompt_tokens_details.cached_tokens; SGLang meta_info.cached_tokens; llama.cpp timings.cache_n)
and in vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total.
  mock-engine --port 8100 --sim --sim-prefix-cache-tokens 262144

Speculative decoding (--spec-draft K, exact and simulated modes): a request's first token
comes alone, then every step drafts K tokens and accepts each with probability --spec-accept P
until the first rejection, emitting the accepted drafts plus one token (cut to max_tokens).
Mean tokens per step (accept length) = (1 - P^(K+1)) / (1 - P); acceptance rate (accepted /
drafted) = (P + P^2 + ... + P^K) / K. A step's tokens go out as one event (continuous usage,
SGLang's completion_tokens), or as back-to-back events of one token each (TGI, llama.cpp,
Ollama), as those engines do. Draws are seeded (--spec-seed, the request's number); /metrics
adds vLLM's vllm:spec_decode_num_drafts_total, _num_draft_tokens_total,
_num_accepted_tokens_total and _num_accepted_tokens_per_pos_total{position}.
  mock-engine --port 8100 --spec-draft 3 --spec-accept 0.6   # 2.176 tokens per step, 39.2%

Log probabilities (OpenAI routes): completions `logprobs: k`, `echo: true`, vLLM's
`prompt_logprobs: k`; chat `logprobs: true, top_logprobs: k` (k up to the mock's vocabulary
size). They come from a deterministic pseudo-model (a distribution per prompt and position);
asking for them, or `temperature: 0`, makes the output its greedy continuation of the prompt.
--quality-noise X adds X x seeded Gaussian noise (--quality-seed) to its logits, a stand-in
quantized variant; `servebench_true_kl` in the response is the exact KL(baseline || variant).
  mock-engine --port 8101 --quality-noise 0.1 --quality-seed 4

Reasoning (--reasoning-tokens N|uniform:LO:HI|exp:MEAN): each response starts with that many
reasoning tokens, within max_tokens (a draw that reaches it never answers). Chat sends them in
--reasoning-format's field (vllm: delta.reasoning and usage.completion_tokens_details.reasoning_tokens;
sglang: delta.reasoning_content and usage.reasoning_tokens) or, with tags and on every other
route, as <think> ... </think> text (SGLang's native route also counts meta_info.reasoning_tokens).
  mock-engine --port 8100 --reasoning-tokens uniform:20:60 --reasoning-format sglang

Faults (--fault KIND[:RATE], repeatable; RATE is the share of requests, default all; the
requests that fail are a seeded draw, --fault-seed; several faults share the requests):
  reset        read the request, then reset the connection before any header
  reset-mid    reset the connection after --fault-after content chunks
  http-429, http-500, http-503   that status with the engine's error body
  error-event  HTTP 200, then the engine's in-stream error event after --fault-after chunks
  stall        stop after --fault-after chunks and keep the connection open forever
  no-done      a complete stream without its [DONE] terminator (valid)
  garbage      garbage and invalid UTF-8 after --fault-after chunks
  huge-event   an event of --fault-event-bytes (10 MiB) after --fault-after chunks
  slow-drip    the response one byte every --fault-drip-ms (a slow-loris server)
Error shapes are the engine's own: --fault-style vllm|sglang|tgi|trtllm|llamacpp|ollama, else
by route. /metrics adds servebench_mock_faults_total{kind} and servebench_mock_requests_started_total.
  mock-engine --port 8100 --fault http-503:0.1 --fault reset-mid:0.05 --fault-seed 7";

#[derive(Parser)]
#[command(name = "mock-engine", version, about = "Built-in LLM inference server for benchmarks and tests", after_help = EXAMPLES)]
pub struct Args {
    /// Address to bind (loopback unless you mean it)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 = any free port)
    #[arg(long, default_value_t = 8100)]
    pub port: u16,
    /// Write the bound port to this file once listening
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Model name served (and required of clients that send one)
    #[arg(long, default_value = "mock-llm")]
    pub model_name: String,
    /// Exact mode: time to first content chunk, ms after the request arrives
    #[arg(long, default_value_t = 50.0)]
    pub ttft_ms: f64,
    /// Exact mode: time between content chunks, ms
    #[arg(long, default_value_t = 10.0)]
    pub itl_ms: f64,
    /// Exact mode: tokens per content chunk
    #[arg(long, default_value_t = 1)]
    pub tokens_per_chunk: u32,
    /// Speculative decoding: draft tokens per step (K); each step emits its accepted drafts
    /// plus one token, so events carry 1 to K + 1 tokens
    #[arg(long, value_name = "K")]
    pub spec_draft: Option<u32>,
    /// Speculative decoding: probability that each draft token is accepted, in order until the
    /// first rejection (0-1)
    #[arg(long, value_name = "P", default_value_t = 0.7, requires = "spec_draft")]
    pub spec_accept: f64,
    /// Speculative decoding: seed of the acceptance draws
    #[arg(long, default_value_t = 0, requires = "spec_draft")]
    pub spec_seed: u64,
    /// Simulated continuous batching instead of exact timing
    #[arg(long)]
    pub sim: bool,
    /// Simulated: fixed cost of a decode step, ms
    #[arg(long, default_value_t = 6.0)]
    pub sim_decode_base_ms: f64,
    /// Simulated: added decode cost per sequence in the batch, ms
    #[arg(long, default_value_t = 0.06)]
    pub sim_decode_per_seq_ms: f64,
    /// Simulated: prefill cost per prompt token, ms
    #[arg(long, default_value_t = 0.02)]
    pub sim_prefill_per_token_ms: f64,
    /// Simulated: largest batch
    #[arg(long, default_value_t = 256)]
    pub sim_max_batch: usize,
    /// Simulated: KV-cache budget, tokens
    #[arg(long, default_value_t = 262_144)]
    pub sim_kv_tokens: u64,
    /// Simulated: prompt tokens prefilled per step (chunked prefill)
    #[arg(long, default_value_t = 8192)]
    pub sim_max_prefill_tokens: u32,
    /// Simulated: prefix-cache capacity, tokens (an LRU of 16-token prompt blocks; cached
    /// prompt tokens skip prefill and are reported in usage), e.g. 262144; 0, the default, is
    /// no cache (sweep's steps resend the same prompts; the simulated capacity in the docs
    /// assumes every prompt is prefilled)
    #[arg(long, value_name = "TOKENS", default_value_t = 0)]
    pub sim_prefix_cache_tokens: u64,
    /// What /v1/models reports as the model's owner
    #[arg(long, default_value = "servebench")]
    pub owned_by: String,
    /// Server threads
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Inject a fault into a share of the requests: KIND[:RATE] (repeatable; kinds below)
    #[arg(long = "fault", value_name = "KIND[:RATE]")]
    pub faults: Vec<FaultSpec>,
    /// Seed of the draw that picks the failing requests
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Content chunks sent before a mid-stream fault
    #[arg(long, default_value_t = 2)]
    pub fault_after: u32,
    /// Whose error bytes to send [default: by route]
    #[arg(long, value_enum)]
    pub fault_style: Option<Style>,
    /// Size of the huge-event event, bytes
    #[arg(long, default_value_t = 10 << 20)]
    pub fault_event_bytes: usize,
    /// slow-drip: milliseconds between bytes
    #[arg(long, default_value_t = 1000)]
    pub fault_drip_ms: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Exact mode: serve at most N requests at once, first in first out (a request's TTFT is
    /// its wait for a slot plus --ttft-ms); the capacity is N / (ttft + (chunks - 1) x itl)
    /// requests per second, a sharp knee for sweep
    #[arg(long, value_name = "N")]
    pub slots: Option<usize>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log probabilities: standard deviation of the Gaussian noise added to the pseudo-model's
    /// logits (a quantized variant); 0 serves the baseline model exactly
    #[arg(long, default_value_t = 0.0)]
    pub quality_noise: f64,
    /// Log probabilities: seed of the noise (two variants with different seeds differ)
    #[arg(long, default_value_t = 1)]
    pub quality_seed: u64,
    /// A reasoning model: each response starts with this many reasoning tokens (within
    /// max_tokens): N, uniform:LO:HI or exp:MEAN, drawn per request
    #[arg(long, value_name = "N|DIST")]
    pub reasoning_tokens: Option<crate::mock::format::ReasoningTokens>,
    /// How reasoning is sent: vllm (chat delta.reasoning, usage.completion_tokens_details),
    /// sglang (chat delta.reasoning_content, usage.reasoning_tokens), tags (<think>...</think>
    /// in the text, uncounted); the other routes always send raw text with tags
    #[arg(long, value_enum, default_value = "vllm")]
    pub reasoning_format: crate::mock::format::ReasoningFormat,
}

impl Args {
    /// The server's configuration and address, or what is wrong with the arguments.
    pub fn config(&self) -> anyhow::Result<(Config, SocketAddr)> {
        for (n, v) in [
            ("--ttft-ms", self.ttft_ms),
            ("--itl-ms", self.itl_ms),
            ("--sim-decode-base-ms", self.sim_decode_base_ms),
            ("--sim-decode-per-seq-ms", self.sim_decode_per_seq_ms),
            ("--sim-prefill-per-token-ms", self.sim_prefill_per_token_ms),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                anyhow::bail!("{n} must be a non-negative number of milliseconds, got {v}");
            }
        }
        if !(self.quality_noise.is_finite() && self.quality_noise >= 0.0) {
            anyhow::bail!(
                "--quality-noise must be a non-negative number (0 = the baseline model), got {}",
                self.quality_noise
            );
        }
        if self.sim_prefix_cache_tokens > 0 && !self.sim {
            anyhow::bail!(
                "--sim-prefix-cache-tokens is a knob of the simulated mode (the exact mode's TTFT is --ttft-ms whatever the prompt): add --sim"
            );
        }
        if self.sim_max_batch == 0 || self.sim_kv_tokens == 0 {
            anyhow::bail!("--sim-max-batch and --sim-kv-tokens must be at least 1");
        }
        let spec = match self.spec_draft {
            None => None,
            Some(k) => {
                if !(1..=64).contains(&k) {
                    anyhow::bail!("--spec-draft must be 1 to 64 draft tokens per step, got {k}");
                }
                if !(0.0..=1.0).contains(&self.spec_accept) {
                    anyhow::bail!(
                        "--spec-accept must be a probability from 0 to 1, got {}",
                        self.spec_accept
                    );
                }
                if self.tokens_per_chunk > 1 {
                    anyhow::bail!(
                        "--spec-draft sets the tokens of each chunk; leave out --tokens-per-chunk {}",
                        self.tokens_per_chunk
                    );
                }
                Some(crate::mock::spec::Spec {
                    draft: k,
                    accept: self.spec_accept,
                    seed: self.spec_seed,
                })
            }
        };
        let mut faults = Faults::new(self.faults.clone());
        faults.seed = self.fault_seed;
        faults.after = self.fault_after;
        faults.style = self.fault_style;
        faults.event_bytes = self.fault_event_bytes;
        faults.drip = std::time::Duration::from_millis(self.fault_drip_ms);
        faults.validate().map_err(anyhow::Error::msg)?;
        let cfg = Config {
            model: self.model_name.clone(),
            ttft_ms: self.ttft_ms,
            itl_ms: self.itl_ms,
            tokens_per_chunk: self.tokens_per_chunk.max(1),
            sim: self.sim.then_some(SimParams {
                decode_base_ms: self.sim_decode_base_ms,
                decode_per_seq_ms: self.sim_decode_per_seq_ms,
                prefill_per_token_ms: self.sim_prefill_per_token_ms,
                max_batch: self.sim_max_batch,
                kv_tokens: self.sim_kv_tokens,
                max_prefill_tokens: self.sim_max_prefill_tokens.max(1),
                prefix_cache_tokens: self.sim_prefix_cache_tokens,
            }),
            spec,
            owned_by: self.owned_by.clone(),
            faults: std::sync::Arc::new(faults),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(c), Some(k)) => Some(crate::mock::tls::server_config(c, k)?),
                _ => None,
            },
            slots: match self.slots {
                Some(0) => anyhow::bail!("--slots must be at least 1"),
                Some(n) if self.sim => {
                    anyhow::bail!("--slots {n} is a knob of the exact mode; the simulated mode has --sim-max-batch")
                }
                n => n,
            },
            quality: crate::mock::model::Variant {
                noise: self.quality_noise,
                seed: self.quality_seed,
            },
            reasoning: self.reasoning_tokens,
            reasoning_format: self.reasoning_format,
            ..Config::default()
        };
        let addr: SocketAddr = format!(
            "{}:{}",
            if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            },
            self.port
        )
        .parse()
        .with_context(|| format!("--host {:?} is not an IP address", self.host))?;
        Ok((cfg, addr))
    }
}

/// Run mock-engine: serve until SIGINT or SIGTERM (or the server ends).
///
/// Signals: the one stop module's signal thread ([`crate::stop`]); the first SIGINT or SIGTERM
/// stops the server at once (the runtime drops open connections).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (cfg, addr) = args.config()?;
    // before the runtime's threads start, so that only the signal thread takes them
    let _ = stop::block_signals();
    let halt = Stop::new();
    let _watch = stop::watch_signals(&halt, "mock-engine", Second::Exit);
    let rt = super::many_connections_runtime(args.threads)?;
    rt.block_on(async move {
        let (local, server) = serve(cfg, addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        if let Some(p) = &args.port_file {
            std::fs::write(p, local.port().to_string()).with_context(|| format!("writing {}", p.display()))?;
        }
        eprintln!(
            "mock-engine: listening on {}://{local} ({} mode)",
            if args.tls_cert.is_some() { "https" } else { "http" },
            if args.sim { "simulated" } else { "exact" }
        );
        tokio::select! {
            _ = halt.stopped() => {}
            _ = server => {}
        }
        eprintln!("mock-engine: stopping");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks_the_arguments_without_serving() {
        let a = |v: &[&str]| Args::try_parse_from(std::iter::once("mock-engine").chain(v.iter().copied())).unwrap();
        let (cfg, addr) = a(&["--port", "0", "--sim", "--ttft-ms", "5"]).config().unwrap();
        assert_eq!((cfg.ttft_ms, addr.to_string().as_str()), (5.0, "127.0.0.1:0"));
        assert!(cfg.sim.is_some());
        assert_eq!(
            a(&["--host", "::1", "--port", "9"]).config().unwrap().1.to_string(),
            "[::1]:9"
        );
        let e = a(&["--itl-ms", "NaN"]).config().unwrap_err().to_string();
        assert!(e.contains("--itl-ms"), "{e}");
        assert!(a(&["--host", "localhost"]).config().is_err());
        assert!(a(&["--fault", "reset:0.7", "--fault", "stall:0.7"]).config().is_err());
        let q = a(&["--quality-noise", "0.05", "--quality-seed", "8"])
            .config()
            .unwrap()
            .0
            .quality;
        assert_eq!((q.noise, q.seed), (0.05, 8));
        let e = a(&["--quality-noise=-1"]).config().unwrap_err().to_string();
        assert!(e.contains("--quality-noise"), "{e}");
        let s = a(&["--spec-draft", "3", "--spec-accept", "0.6"])
            .config()
            .unwrap()
            .0
            .spec;
        assert_eq!(s.map(|s| (s.draft, s.accept)), Some((3, 0.6)));
        for bad in [
            &["--spec-draft", "0"][..],
            &["--spec-draft", "2", "--spec-accept", "1.5"],
            &["--spec-draft", "2", "--tokens-per-chunk", "4"],
        ] {
            let e = a(bad).config().unwrap_err().to_string();
            assert!(e.contains("--spec-"), "{e}");
        }
    }
}
