//! The mock's pseudo-model: a deterministic next-token distribution per context, so that
//! mock-engine can serve log probabilities, and a known perturbation of it (`--quality-noise`)
//! standing in for a quantized variant whose true KL divergence from the baseline is exact.
//!
//! - Vocabulary: servebench's word list ([`WORDS`]) without repeats; token id = index.
//! - Tokenizer: the text is cut before every run of whitespace that follows a non-whitespace
//!   character, so each token is optional leading whitespace plus one whitespace-free word
//!   (`"a  b c"` → `"a"`, `"  b"`, `" c"`); a token's id is its word's index in the
//!   vocabulary, or, for a word outside it, an FNV-1a hash of the word modulo the vocabulary
//!   size (a lossy tokenizer: the model reads an unknown word as some vocabulary word). A
//!   prompt given as a list of token ids is taken as those ids (modulo the vocabulary size).
//! - Context: the ids before a position, folded into one 64-bit hash; the first token of a
//!   sequence has no context and so no distribution (vLLM's first prompt log probability is
//!   `null` for the same reason).
//! - Baseline logits at a context: `SCALE * z_j` for every vocabulary id j, each `z_j` a
//!   standard normal drawn from a SplitMix64 seeded by (context, j).
//! - Variant logits: baseline plus `noise * z'_j`, `z'_j` another standard normal seeded by
//!   (context, j, variant seed); noise 0 gives the baseline bit for bit.
//! - Log probabilities are logits minus their log-sum-exp over the whole vocabulary; greedy
//!   decoding takes the argmax (lowest id on a tie).
//! - The true KL(baseline ‖ variant) at a context is the exact sum over the vocabulary of
//!   `p_j (log p_j − log q_j)`.

use std::sync::OnceLock;

use crate::trace::tokens::{SplitMix, WORDS};

/// Spread of the baseline logits: large enough that the argmax usually holds well over
/// a tenth of the mass, small enough that the top 20 do not hold all of it.
pub const SCALE: f64 = 2.0;

/// The vocabulary: the word list without repeats, in its order.
pub fn vocab() -> &'static [&'static str] {
    static V: OnceLock<Vec<&'static str>> = OnceLock::new();
    V.get_or_init(|| {
        let mut v: Vec<&'static str> = Vec::new();
        for w in WORDS {
            if !v.contains(w) {
                v.push(w);
            }
        }
        v
    })
}

/// The vocabulary's size.
pub fn vocab_size() -> usize {
    vocab().len()
}

/// The id of a whitespace-free word.
pub fn word_id(word: &str) -> u32 {
    if let Some(i) = vocab().iter().position(|w| *w == word) {
        return i as u32;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in word.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % vocab_size() as u64) as u32
}

/// One token of a text: its id and its text (leading whitespace included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: u32,
    pub text: String,
}

/// Tokenize text (see the module documentation). Trailing whitespace is dropped.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut word_started = false;
    for ch in text.chars() {
        if ch.is_whitespace() && word_started {
            let word = cur.trim_start().to_string();
            out.push(Token {
                id: word_id(&word),
                text: std::mem::take(&mut cur),
            });
            word_started = false;
        }
        if !ch.is_whitespace() {
            word_started = true;
        }
        cur.push(ch);
    }
    if word_started {
        let word = cur.trim_start().to_string();
        out.push(Token {
            id: word_id(&word),
            text: cur,
        });
    }
    out
}

/// The text of a vocabulary id as generated after another token (a leading space).
pub fn id_text(id: u32) -> String {
    format!(" {}", vocab()[id as usize % vocab_size()])
}

/// The context hash before any token.
pub const CTX0: u64 = 0x5EB0_0C4E_6A11_2026;

/// The context after `ctx` has read token `id`.
pub fn extend(ctx: u64, id: u32) -> u64 {
    SplitMix(ctx ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

fn normal(seed: u64) -> f64 {
    let mut m = SplitMix(seed);
    // two uniforms in (0, 1], Box–Muller
    let u1 = ((m.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (m.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A variant of the model: baseline plus `noise` times seeded Gaussian logit noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    pub noise: f64,
    pub seed: u64,
}

impl Default for Variant {
    fn default() -> Self {
        Variant { noise: 0.0, seed: 1 }
    }
}

/// Log-normalise logits in place: subtract their log-sum-exp.
fn normalise(l: &mut [f64]) {
    let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = l.iter().map(|x| (x - m).exp()).sum();
    let lse = m + s.ln();
    for x in l.iter_mut() {
        *x -= lse;
    }
}

/// Baseline log probabilities over the vocabulary at a context.
pub fn baseline(ctx: u64) -> Vec<f64> {
    let mut l: Vec<f64> = (0..vocab_size() as u64)
        .map(|j| SCALE * normal(ctx ^ (j + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)))
        .collect();
    normalise(&mut l);
    l
}

impl Variant {
    /// This variant's log probabilities over the vocabulary at a context.
    pub fn logprobs(&self, ctx: u64) -> Vec<f64> {
        if self.noise == 0.0 {
            return baseline(ctx);
        }
        let mut l: Vec<f64> = (0..vocab_size() as u64)
            .map(|j| {
                SCALE * normal(ctx ^ (j + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
                    + self.noise
                        * normal(
                            ctx ^ (j + 1).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7)
                                ^ self.seed.wrapping_mul(0xA076_1D64_78BD_642F),
                        )
            })
            .collect();
        normalise(&mut l);
        l
    }

    /// The exact KL(baseline ‖ this variant) at a context, in nats.
    pub fn true_kl(&self, ctx: u64) -> f64 {
        if self.noise == 0.0 {
            return 0.0;
        }
        kl(&baseline(ctx), &self.logprobs(ctx))
    }
}

/// KL(p ‖ q) of two full log-probability vectors, by exact summation.
pub fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(a, b)| a.exp() * (a - b)).sum()
}

/// The argmax id (lowest on a tie).
pub fn argmax(lp: &[f64]) -> u32 {
    let mut best = 0;
    for (i, x) in lp.iter().enumerate() {
        if *x > lp[best] {
            best = i;
        }
    }
    best as u32
}

/// The `k` most likely ids with their log probabilities and 1-based ranks, best first (ties
/// by lower id).
pub fn top_k(lp: &[f64], k: usize) -> Vec<(u32, f64)> {
    let mut idx: Vec<u32> = (0..lp.len() as u32).collect();
    idx.sort_by(|a, b| lp[*b as usize].total_cmp(&lp[*a as usize]).then(a.cmp(b)));
    idx.truncate(k);
    idx.into_iter().map(|i| (i, lp[i as usize])).collect()
}

/// The 1-based rank of `id` under `lp` (vLLM's `rank`: 1 + how many ids are more likely).
pub fn rank(lp: &[f64], id: u32) -> u32 {
    let x = lp[id as usize];
    1 + lp
        .iter()
        .enumerate()
        .filter(|(i, y)| **y > x || (**y == x && (*i as u32) < id))
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_keeps_the_text_and_reads_words() {
        let t = tokenize("the  river\nzzqx end ");
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["the", "  river", "\nzzqx", " end"]);
        assert_eq!(t[0].id, 0);
        assert_eq!(vocab()[t[1].id as usize], "river");
        assert!((t[2].id as usize) < vocab_size());
        assert!(tokenize("   ").is_empty());
        // the vocabulary has no repeats
        let mut v = vocab().to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), vocab_size());
    }

    #[test]
    fn distributions_are_normalised_deterministic_and_distinct() {
        let c1 = extend(CTX0, 3);
        let c2 = extend(c1, 4);
        let a = baseline(c1);
        assert_eq!(a, baseline(c1));
        assert_ne!(a, baseline(c2));
        for lp in [a, Variant { noise: 0.3, seed: 2 }.logprobs(c2)] {
            let s: f64 = lp.iter().map(|x| x.exp()).sum();
            assert!((s - 1.0).abs() < 1e-12, "{s}");
            let top = top_k(&lp, 5);
            assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
            assert_eq!(top[0].0, argmax(&lp));
            assert_eq!(rank(&lp, top[3].0), 4);
        }
    }

    #[test]
    fn noise_zero_is_the_baseline_and_noise_moves_kl() {
        let ctx = extend(extend(CTX0, 7), 11);
        let zero = Variant { noise: 0.0, seed: 9 };
        assert_eq!(zero.logprobs(ctx), baseline(ctx));
        assert_eq!(zero.true_kl(ctx), 0.0);
        let small = Variant { noise: 0.05, seed: 9 };
        let big = Variant { noise: 0.5, seed: 9 };
        let other = Variant { noise: 0.05, seed: 10 };
        assert_ne!(small.logprobs(ctx), other.logprobs(ctx));
        let (ks, kb) = (small.true_kl(ctx), big.true_kl(ctx));
        assert!(ks > 0.0 && kb > ks, "{ks} {kb}");
        // small noise: KL ≈ noise² / 2 × Var_p(z') ≤ noise² / 2 (z' standard normal)
        assert!(ks < 0.05f64.powi(2) * 2.0, "{ks}");
        assert_eq!(ks, kl(&baseline(ctx), &small.logprobs(ctx)));
    }
}
