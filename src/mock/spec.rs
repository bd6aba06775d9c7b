//! Speculative decoding in the mock (`--spec-draft K --spec-accept P`): multi-token events
//! with a known acceptance distribution.
//!
//! The model: a request's first token comes alone (the prefill step's). Every later step
//! drafts K tokens and verifies them in order; each draft is accepted with probability P,
//! independently, until the first rejection, and the step emits its accepted drafts plus the
//! one token the target model adds (the correction or the bonus token). So a step's accepted
//! drafts A follow a geometric law truncated at K (P(A = a) = P^a (1 - P) for a < K,
//! P(A = K) = P^K) and a step emits 1 + A tokens, cut to what the request still needs. Hence
//!
//! ```text
//! mean tokens per step (accept length)   1 + E[A] = (1 - P^(K+1)) / (1 - P)   (K + 1 when P = 1)
//! acceptance rate (vLLM's definition)    E[A] / K = (P + P^2 + ... + P^K) / K
//! ```
//!
//! E.g. K = 3, P = 0.6: 2.176 tokens per step, acceptance 0.392. The draws are seeded by
//! `--spec-seed` and the request's number, so a trace replayed twice sees the same steps.
//! `/metrics` counts every verifying step (`vllm:spec_decode_num_drafts_total`), its K
//! drafts (`..._num_draft_tokens_total`) and the accepted ones as drawn
//! (`..._num_accepted_tokens_total`, also by position in `..._per_pos_total`), as vLLM does:
//! a step cut short by max_tokens still counts what it accepted.

use std::sync::atomic::Ordering;

use super::Metrics;
use crate::trace::tokens::SplitMix;

/// The drafting model of `--spec-draft` / `--spec-accept` / `--spec-seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// Draft tokens per step (K >= 1).
    pub draft: u32,
    /// Probability that each draft token is accepted, given the ones before it were (0-1).
    pub accept: f64,
    pub seed: u64,
}

impl Spec {
    /// Mean tokens a verifying step emits before truncation, 1 + E[A].
    pub fn mean_tokens_per_step(&self) -> f64 {
        let p = self.accept;
        (0..=self.draft).map(|i| p.powi(i as i32)).sum()
    }

    /// The expected acceptance rate, E[A] / K.
    pub fn acceptance_rate(&self) -> f64 {
        (self.mean_tokens_per_step() - 1.0) / self.draft as f64
    }

    /// The drafter of request number `n`.
    pub fn drafter(&self, n: u64) -> Drafter {
        Drafter {
            spec: *self,
            rng: SplitMix(self.seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5BEC_5BEC),
        }
    }
}

/// One request's seeded sequence of steps.
#[derive(Debug, Clone)]
pub struct Drafter {
    spec: Spec,
    rng: SplitMix,
}

/// One verifying step: the tokens it emits and the drafts it accepted (as drawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub tokens: u32,
    pub accepted: u32,
}

impl Drafter {
    /// The next verifying step of a request that still needs `left` (>= 1) tokens.
    pub fn step(&mut self, left: u32) -> Step {
        let mut a = 0;
        while a < self.spec.draft {
            // 53 random bits: a uniform draw in [0, 1)
            let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if u >= self.spec.accept {
                break;
            }
            a += 1;
        }
        Step {
            tokens: (1 + a).min(left.max(1)),
            accepted: a,
        }
    }

    /// The tokens of every event of a request of `total` tokens: the first token alone, then
    /// the verifying steps (what each accepted, for the counters).
    pub fn plan(&mut self, total: u32) -> Vec<Step> {
        let mut out = vec![Step { tokens: 1, accepted: 0 }];
        let mut sent = 1;
        while sent < total {
            let s = self.step(total - sent);
            sent += s.tokens;
            out.push(s);
        }
        out
    }
}

/// Counters behind vLLM's `spec_decode` metrics.
#[derive(Debug, Default)]
pub struct SpecCounters {
    pub drafts: std::sync::atomic::AtomicU64,
    pub draft_tokens: std::sync::atomic::AtomicU64,
    pub accepted: std::sync::atomic::AtomicU64,
    /// Accepted drafts by position (0 = the first draft token of a step).
    pub per_pos: std::sync::Mutex<Vec<u64>>,
}

/// Count one verifying step of `k` drafts.
pub fn count(m: &Metrics, k: u32, s: Step) {
    let c = &m.spec;
    c.drafts.fetch_add(1, Ordering::Relaxed);
    c.draft_tokens.fetch_add(k as u64, Ordering::Relaxed);
    c.accepted.fetch_add(s.accepted as u64, Ordering::Relaxed);
    if let Ok(mut p) = c.per_pos.lock() {
        if p.len() < k as usize {
            p.resize(k as usize, 0);
        }
        for x in p.iter_mut().take(s.accepted as usize) {
            *x += 1;
        }
    }
}

/// The `vllm:spec_decode_*` series (only when the mock drafts).
pub fn metrics_text(m: &Metrics, k: u32, labels: &str) -> String {
    let c = &m.spec;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut s = format!(
        "# HELP vllm:spec_decode_num_drafts Number of spec decoding drafts.\n\
         # TYPE vllm:spec_decode_num_drafts counter\n\
         vllm:spec_decode_num_drafts_total{{{labels}}} {}\n\
         # HELP vllm:spec_decode_num_draft_tokens Number of draft tokens.\n\
         # TYPE vllm:spec_decode_num_draft_tokens counter\n\
         vllm:spec_decode_num_draft_tokens_total{{{labels}}} {}\n\
         # HELP vllm:spec_decode_num_accepted_tokens Number of accepted tokens.\n\
         # TYPE vllm:spec_decode_num_accepted_tokens counter\n\
         vllm:spec_decode_num_accepted_tokens_total{{{labels}}} {}\n\
         # HELP vllm:spec_decode_num_accepted_tokens_per_pos Accepted tokens per draft position.\n\
         # TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter\n",
        g(&c.drafts),
        g(&c.draft_tokens),
        g(&c.accepted),
    );
    let per = c.per_pos.lock().map(|p| p.clone()).unwrap_or_default();
    for i in 0..k as usize {
        s.push_str(&format!(
            "vllm:spec_decode_num_accepted_tokens_per_pos_total{{{labels},position=\"{i}\"}} {}\n",
            per.get(i).copied().unwrap_or(0)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        let s = Spec {
            draft: 3,
            accept: 0.6,
            seed: 0,
        };
        assert!((s.mean_tokens_per_step() - 2.176).abs() < 1e-12);
        assert!((s.acceptance_rate() - 0.392).abs() < 1e-12);
        let all = Spec { accept: 1.0, ..s };
        assert_eq!(all.mean_tokens_per_step(), 4.0);
        assert_eq!(
            all.drafter(1).plan(9).iter().map(|s| s.tokens).collect::<Vec<_>>(),
            [1, 4, 4]
        );
        let none = Spec { accept: 0.0, ..s };
        assert!(none.drafter(1).plan(5).iter().all(|s| s.tokens == 1 && s.accepted == 0));
    }

    /// The drawn steps follow the law: mean within 5 standard errors (seeded, so fixed).
    #[test]
    fn draws_follow_the_truncated_geometric() {
        let s = Spec {
            draft: 4,
            accept: 0.7,
            seed: 9,
        };
        let n = 40_000;
        let mut d = s.drafter(3);
        let xs: Vec<f64> = (0..n).map(|_| d.step(u32::MAX).tokens as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se = (var / n as f64).sqrt();
        assert!(
            (mean - s.mean_tokens_per_step()).abs() < 5.0 * se,
            "{mean} vs {}",
            s.mean_tokens_per_step()
        );
        // a plan sums to the request's tokens, every step within 1..=K+1
        let p = s.drafter(5).plan(1000);
        assert_eq!(p.iter().map(|x| x.tokens).sum::<u32>(), 1000);
        assert!(p.iter().all(|x| (1..=5).contains(&x.tokens) && x.accepted <= 4));
        assert_eq!(s.drafter(5).plan(1000), p, "seeded");
    }
}
