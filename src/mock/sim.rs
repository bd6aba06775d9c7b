//! A simulated continuous-batching engine, so that throughput saturates and TTFT climbs
//! under load the way a real engine's do.
//!
//! The model (a simplification of vLLM's scheduler):
//! - the engine runs in steps; each step, waiting requests are admitted in arrival order while
//!   the batch has fewer than `max_batch` sequences and the KV budget holds the request's
//!   prompt plus one token;
//! - a step prefills at most `max_prefill_tokens` prompt tokens (chunked prefill); a request
//!   whose prefill completes emits its first token at the end of that step;
//! - every sequence already prefilled emits one token per step (with `--spec-draft`, its
//!   step's accepted drafts plus one, drawn as in [`super::spec`]; the step costs the same);
//! - a step lasts `decode_base_ms + decode_per_seq_ms * decoding + prefill_per_token_ms *
//!   prefilled tokens`;
//! - with the prefix cache on (`prefix_cache_tokens` > 0, see [`super::prefix`]), a request
//!   admitted with nothing computed looks its prompt's blocks up first: the cached tokens are
//!   not prefilled (they cost no step time), and its blocks enter the cache once its prefill
//!   is done;
//! - when the KV tokens in use (prompt + generated, over the batch) exceed `kv_tokens`, the
//!   newest sequence is preempted: it goes back to the head of the queue and must prefill
//!   its prompt and what it had generated again (vLLM's recompute preemption).
//!
//! Capacity (what `sweep` should find; tested in `tests/it/sweep.rs`). Take requests of I
//! prompt and O output tokens, a KV budget that never preempts and I <= max_prefill_tokens.
//! A request spends O steps in the batch: its prefill step (which emits its first token) and
//! O - 1 decode steps. With n sequences in the batch on average, a step admits n / O of them
//! (their prefill, I tokens each) and decodes n (O - 1) / O, so it lasts
//! t(n) = decode_base + decode_per_seq n (O - 1) / O + prefill_per_token I n / O, and
//! requests finish at n / (O t(n)) per second. That grows with n, so the most the engine
//! finishes is at a full batch, n = B (max_batch):
//!
//! ```text
//! capacity = B / (O decode_base + B (decode_per_seq (O - 1) + prefill_per_token I))  req/s
//! ```
//!
//! Below it the batch settles where arrivals equal completions (n = rate O t(n)), and TTFT
//! is about one step and a half (the wait for the running step, then the prefill step), well
//! under any TTFT limit of several steps; above it requests queue for a slot in the batch and
//! TTFT grows by (rate - capacity) / capacity seconds every second. So for a TTFT limit of
//! many steps and a TPOT limit above t(B), the SLO's capacity is this rate, and with
//! constant-rate arrivals the knee is sharp. E.g. B = 8, O = 10, I = 100, decode_base 20 ms,
//! decode_per_seq 1 ms, prefill_per_token 0.1 ms: 8 / (200 + 8 (9 + 10)) ms = 22.7 req/s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Metrics;
use super::prefix::{self, PrefixCache};
use crate::timer;

/// Simulation parameters (all flags of `mock-engine --sim`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimParams {
    pub decode_base_ms: f64,
    pub decode_per_seq_ms: f64,
    pub prefill_per_token_ms: f64,
    pub max_batch: usize,
    pub kv_tokens: u64,
    pub max_prefill_tokens: u32,
    /// Prefix-cache capacity, tokens (0: no prefix cache).
    pub prefix_cache_tokens: u64,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            decode_base_ms: 6.0,
            decode_per_seq_ms: 0.06,
            prefill_per_token_ms: 0.02,
            max_batch: 256,
            kv_tokens: 262_144,
            max_prefill_tokens: 8192,
            prefix_cache_tokens: 0,
        }
    }
}

/// A request handed to the engine. Tokens come back on `tx`, one message per step that
/// produced tokens for it.
pub struct SimReq {
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub tx: mpsc::UnboundedSender<u32>,
    /// The request's drafter (`--spec-draft`): each decode step emits 1 + accepted tokens.
    pub spec: Option<super::spec::Drafter>,
    /// The prompt's chained block hashes (empty without a prefix cache).
    pub blocks: Vec<u64>,
    /// Set at the first admission: the prompt tokens served from the prefix cache.
    pub cached: Arc<AtomicU32>,
}

struct Seq {
    req: SimReq,
    generated: u32,
    /// Tokens to prefill before the next token can be generated.
    to_prefill: u32,
    /// Admitted before (the cached tokens it reports are those of its first admission).
    admitted: bool,
}

impl Seq {
    fn kv(&self) -> u64 {
        (self.req.prompt_tokens + self.generated) as u64
    }
}

/// Start the engine loop; returns the submission channel.
/// `spec_draft`: the drafts per step when requests carry a drafter (for the counters).
pub fn start(p: SimParams, metrics: Arc<Metrics>, spec_draft: Option<u32>) -> mpsc::UnboundedSender<SimReq> {
    let (tx, mut rx) = mpsc::unbounded_channel::<SimReq>();
    metrics.kv_total.store(p.kv_tokens, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut waiting: VecDeque<Seq> = VecDeque::new();
        let mut running: Vec<Seq> = Vec::new();
        let mut cache = (p.prefix_cache_tokens > 0).then(|| PrefixCache::new(p.prefix_cache_tokens));
        loop {
            // Idle: block until a request arrives.
            if waiting.is_empty() && running.is_empty() {
                match rx.recv().await {
                    Some(r) => waiting.push_back(new_seq(r)),
                    None => return,
                }
            }
            while let Ok(r) = rx.try_recv() {
                waiting.push_back(new_seq(r));
            }
            let step_start = Instant::now();
            // Drop sequences whose client went away.
            running.retain(|s| !s.req.tx.is_closed());
            waiting.retain(|s| !s.req.tx.is_closed());
            // Admit.
            let mut kv_used: u64 = running.iter().map(Seq::kv).sum();
            while running.len() < p.max_batch {
                let Some(s) = waiting.front() else { break };
                if kv_used + s.kv() + 1 > p.kv_tokens && !running.is_empty() {
                    break;
                }
                let mut s = waiting.pop_front().expect("front exists");
                kv_used += s.kv();
                if let Some(c) = cache.as_mut()
                    && s.to_prefill == s.req.prompt_tokens + s.generated
                {
                    let hit =
                        c.lookup(prefix::usable_blocks(&s.req.blocks, s.req.prompt_tokens)) as u32 * prefix::BLOCK;
                    s.to_prefill -= hit.min(s.to_prefill.saturating_sub(1));
                    if !s.admitted {
                        s.req.cached.store(hit, Ordering::Relaxed);
                    }
                    // vLLM counts cached tokens among the prompt tokens (and the queries)
                    metrics.prompt_tokens.fetch_add(hit as u64, Ordering::Relaxed);
                    metrics.prefix_hits.fetch_add(hit as u64, Ordering::Relaxed);
                }
                s.admitted = true;
                running.push(s);
            }
            // Prefill (chunked), then decode one token for every prefilled sequence.
            let mut budget = p.max_prefill_tokens;
            let mut prefilled = 0u32;
            let mut emits: Vec<usize> = Vec::with_capacity(running.len());
            let mut decoding = 0usize;
            for (i, s) in running.iter_mut().enumerate() {
                if s.to_prefill > 0 {
                    let take = s.to_prefill.min(budget);
                    s.to_prefill -= take;
                    budget -= take;
                    prefilled += take;
                    if s.to_prefill == 0 {
                        emits.push(i);
                        if let Some(c) = cache.as_mut() {
                            c.insert(&s.req.blocks);
                        }
                    }
                } else {
                    decoding += 1;
                    emits.push(i);
                }
            }
            let step_ms = if emits.is_empty() && prefilled == 0 {
                p.decode_base_ms
            } else {
                p.decode_base_ms + p.decode_per_seq_ms * decoding as f64 + p.prefill_per_token_ms * prefilled as f64
            };
            metrics.running.store(running.len() as u64, Ordering::Relaxed);
            metrics.waiting.store(waiting.len() as u64, Ordering::Relaxed);
            metrics.kv_used.store(kv_used, Ordering::Relaxed);
            metrics.prompt_tokens.fetch_add(prefilled as u64, Ordering::Relaxed);
            timer::sleep_until(step_start + Duration::from_secs_f64(step_ms / 1e3)).await;
            // Emit.
            let mut generated_now = 0u64;
            for &i in &emits {
                let s = &mut running[i];
                let left = s.req.max_tokens.saturating_sub(s.generated).max(1);
                // the first token comes alone (the prefill's); later steps verify drafts
                let n = match (&mut s.req.spec, spec_draft) {
                    (Some(d), Some(k)) if s.generated > 0 => {
                        let st = d.step(left);
                        super::spec::count(&metrics, k, st);
                        st.tokens
                    }
                    _ => 1,
                };
                s.generated += n;
                generated_now += n as u64;
                let _ = s.req.tx.send(n);
            }
            metrics.generation_tokens.fetch_add(generated_now, Ordering::Relaxed);
            // finished sequences count as done; those whose client went away are aborted
            let finished = running.iter().filter(|s| s.generated >= s.req.max_tokens).count();
            running.retain(|s| s.generated < s.req.max_tokens && !s.req.tx.is_closed());
            metrics.requests_done.fetch_add(finished as u64, Ordering::Relaxed);
            // Preempt the newest sequences while the KV cache overflows.
            let mut kv_used: u64 = running.iter().map(Seq::kv).sum();
            while kv_used > p.kv_tokens && running.len() > 1 {
                let mut s = running.pop().expect("non-empty");
                kv_used -= s.kv();
                s.to_prefill = s.req.prompt_tokens + s.generated;
                metrics.preemptions.fetch_add(1, Ordering::Relaxed);
                waiting.push_front(s);
            }
        }
    });
    tx
}

fn new_seq(r: SimReq) -> Seq {
    let to_prefill = r.prompt_tokens.max(1);
    Seq {
        req: r,
        generated: 0,
        to_prefill,
        admitted: false,
    }
}
