//! The simulated engine's prefix cache (`mock-engine --sim --sim-prefix-cache-tokens N`).
//!
//! Like vLLM's automatic prefix caching: the prompt's tokens (servebench's approximation, the
//! same tokens its usage counts) are cut into blocks of [`BLOCK`] tokens, and each full block
//! is named by a hash chained over every block before it, so a block is a hit only when the
//! whole prompt up to its end is the same. A request's cached tokens are the blocks found from
//! the start, up to the first miss, and never the prompt's last token (as in vLLM, at least
//! one token is computed). The cache holds at most N / [`BLOCK`] blocks and evicts the least
//! recently used; a request's blocks enter it once its prefill is done. It is kept apart from
//! the KV budget (`--sim-kv-tokens`): a simplification, blocks in use are not pinned.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::format::Proto;

/// Tokens per cache block (vLLM's default block size).
pub const BLOCK: u32 = 16;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Chained hashes of a prompt's full blocks.
struct Hasher {
    parent: u64,
    h: u64,
    n: u32,
    out: Vec<u64>,
}

impl Hasher {
    fn new() -> Hasher {
        Hasher {
            parent: 0x9E37_79B9_7F4A_7C15,
            h: FNV_OFFSET,
            n: 0,
            out: Vec::new(),
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.h = (self.h ^ *x as u64).wrapping_mul(FNV_PRIME);
        }
        // a separator, so tokens "ab" + "c" differ from "a" + "bc"
        self.h = (self.h ^ 0xFF).wrapping_mul(FNV_PRIME);
    }

    /// One token (counted toward the block).
    fn token(&mut self, b: &[u8]) {
        self.bytes(b);
        self.n += 1;
        if self.n == BLOCK {
            let mut m = crate::trace::tokens::SplitMix(self.parent ^ self.h.rotate_left(29));
            self.parent = m.next_u64();
            self.out.push(self.parent);
            self.h = FNV_OFFSET;
            self.n = 0;
        }
    }

    /// Text, token by token under the approximation of `trace::tokens` (a run of letters and
    /// digits is one token per 8 characters, any other visible character one token).
    fn text(&mut self, s: &str) {
        let mut run_start: Option<usize> = None;
        let mut run_chars = 0u32;
        for (i, c) in s.char_indices() {
            if c.is_alphanumeric() {
                if run_start.is_none() {
                    run_start = Some(i);
                }
                run_chars += 1;
                if run_chars == 8 {
                    let st = run_start.take().expect("a run");
                    self.token(&s.as_bytes()[st..i + c.len_utf8()]);
                    run_chars = 0;
                }
                continue;
            }
            if let Some(st) = run_start.take() {
                self.token(&s.as_bytes()[st..i]);
                run_chars = 0;
            }
            if !c.is_whitespace() {
                let mut b = [0u8; 4];
                self.token(c.encode_utf8(&mut b).as_bytes());
            }
        }
        if let Some(st) = run_start {
            self.token(&s.as_bytes()[st..]);
        }
    }

    /// A prompt value: text, or a list of texts and token ids.
    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.text(s),
            Value::Array(a) => {
                for e in a {
                    match e {
                        Value::String(s) => self.text(s),
                        Value::Number(n) => self.token(n.to_string().as_bytes()),
                        other => self.text(&other.to_string()),
                    }
                }
            }
            _ => {}
        }
    }
}

/// The chained hashes of the full blocks of a request's prompt, read as the mock counts its
/// prompt tokens (chat: every message's content, its role mixed into the hash).
pub fn block_hashes(proto: Proto, v: &Value) -> Vec<u64> {
    let mut h = Hasher::new();
    match proto {
        Proto::Chat => {
            for m in v.get("messages").and_then(|m| m.as_array()).into_iter().flatten() {
                h.bytes(m.get("role").and_then(|r| r.as_str()).unwrap_or("").as_bytes());
                match m.get("content") {
                    Some(Value::Array(parts)) => {
                        for p in parts {
                            if let Some(t) = p.get("text").and_then(|t| t.as_str()) {
                                h.text(t);
                            }
                        }
                    }
                    Some(c) => h.value(c),
                    None => {}
                }
            }
        }
        Proto::Completions | Proto::Llamacpp | Proto::Ollama => {
            if let Some(p) = v.get("prompt") {
                h.value(p);
            }
        }
        Proto::Tgi => {
            if let Some(p) = v.get("inputs") {
                h.value(p);
            }
        }
        Proto::Sglang => {
            if let Some(p) = v.get("text").or_else(|| v.get("input_ids")) {
                h.value(p);
            }
        }
    }
    h.out
}

/// Full blocks of a prompt of `prompt_tokens` that may be served from the cache (never the
/// last token).
pub fn usable_blocks(hashes: &[u64], prompt_tokens: u32) -> &[u64] {
    let n = (prompt_tokens.saturating_sub(1) / BLOCK) as usize;
    &hashes[..n.min(hashes.len())]
}

/// A least-recently-used set of block hashes.
#[derive(Debug)]
pub struct PrefixCache {
    cap: usize,
    tick: u64,
    last_use: HashMap<u64, u64>,
    by_use: BTreeMap<u64, u64>,
}

impl PrefixCache {
    /// A cache of `tokens` (rounded down to whole blocks).
    pub fn new(tokens: u64) -> PrefixCache {
        PrefixCache {
            cap: (tokens / BLOCK as u64) as usize,
            tick: 0,
            last_use: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    fn touch(&mut self, h: u64) {
        self.tick += 1;
        if let Some(old) = self.last_use.insert(h, self.tick) {
            self.by_use.remove(&old);
        }
        self.by_use.insert(self.tick, h);
    }

    /// Blocks found from the start of `hashes`, up to the first miss (the hits are used, so
    /// they become the most recent).
    pub fn lookup(&mut self, hashes: &[u64]) -> usize {
        let n = hashes.iter().take_while(|h| self.last_use.contains_key(h)).count();
        for h in &hashes[..n] {
            self.touch(*h);
        }
        n
    }

    /// Put a prefilled prompt's blocks in the cache, evicting the least recently used.
    pub fn insert(&mut self, hashes: &[u64]) {
        if self.cap == 0 {
            return;
        }
        for h in hashes {
            self.touch(*h);
        }
        while self.last_use.len() > self.cap {
            let Some((_, h)) = self.by_use.pop_first() else { break };
            self.last_use.remove(&h);
        }
    }

    pub fn len(&self) -> usize {
        self.last_use.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_use.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tokens::{approx_tokens, synth_prompt};

    fn comp(p: &str) -> Vec<u64> {
        block_hashes(Proto::Completions, &serde_json::json!({ "prompt": p }))
    }

    #[test]
    fn blocks_follow_the_token_count_and_chain() {
        for text in [
            synth_prompt(3, 100),
            "internationalization, of the {code}: fn main() {}".repeat(9),
            "é€😀 x".repeat(30),
        ] {
            assert_eq!(comp(&text).len() as u32, approx_tokens(&text) / BLOCK, "{text}");
        }
        let sys = synth_prompt(1, 64);
        let a = comp(&format!("{sys} {}", synth_prompt(2, 40)));
        let b = comp(&format!("{sys} {}", synth_prompt(3, 40)));
        assert_eq!(a[..4], b[..4]);
        assert_ne!(a[4], b[4]);
        // the same block after another prefix is another block
        let c = comp(&format!("{} {sys}", synth_prompt(4, 16)));
        assert!(c[1..5].iter().all(|h| !a.contains(h)));
        // chat: the same text in the same roles hashes the same
        let chat = |u: &str| {
            block_hashes(
                Proto::Chat,
                &serde_json::json!({"messages": [{"role": "user", "content": u}]}),
            )
        };
        assert_eq!(chat(&sys), chat(&sys));
        assert_eq!(chat(&sys).len(), 4);
        assert_eq!(usable_blocks(&a, 64).len(), 3);
        assert_eq!(usable_blocks(&a, 65).len(), 4);
    }

    #[test]
    fn lru_keeps_the_recent_blocks() {
        let mut c = PrefixCache::new(4 * BLOCK as u64);
        c.insert(&[1, 2, 3]);
        assert_eq!(c.lookup(&[1, 2, 9, 3]), 2);
        c.insert(&[5, 6]);
        // 3 was used least recently: evicted
        assert_eq!(c.len(), 4);
        assert_eq!(c.lookup(&[1, 2]), 2);
        assert_eq!(c.lookup(&[3]), 0);
        assert_eq!(c.lookup(&[5, 6]), 2);
        let mut off = PrefixCache::new(0);
        off.insert(&[1]);
        assert!(off.is_empty());
    }
}
