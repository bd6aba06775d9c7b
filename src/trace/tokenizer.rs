//! Exact token counts with a real tokenizer (a Hugging Face `tokenizer.json`, loaded from a
//! local file), and the counter importers use: that tokenizer when given, else the documented
//! approximation ([`super::tokens`]).
//!
//! Counts never include special tokens (`add_special_tokens = false`): they are the prompt
//! text's own tokens, before a chat template or BOS is added by the server.
//!
//! [`Tok::exact_text`] makes synthetic text of exactly `n` tokens: it writes `n` common words
//! (the same seeded stream as the approximation uses), encodes, and adjusts: too long, it cuts
//! the text at the end of token `n` and re-encodes; too short, it appends words and re-encodes,
//! until the count is exact (a few rounds at most in practice).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::tokens::{SplitMix, WORDS, approx_tokens};

/// What the `servebench.trace.tokenizer` metadata says when no tokenizer was given.
pub const APPROX_NAME: &str = "approx-v1 (see servebench::trace::tokens; lengths are approximate token counts)";

#[derive(Debug, thiserror::Error)]
pub enum TokError {
    #[error(
        "{path}: cannot load the tokenizer: {msg} (pass a Hugging Face tokenizer.json file, e.g. from the model's repository)"
    )]
    Load { path: String, msg: String },
    #[error("{path}: cannot read the tokenizer: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("tokenizer {path}: cannot encode text: {msg}")]
    Encode { path: String, msg: String },
}

/// A loaded tokenizer.
pub struct Tok {
    inner: tokenizers::Tokenizer,
    /// The words synthetic text is made of: those whose count is additive after a space in
    /// this tokenizer (so blocks joined with spaces have the sum of their lengths).
    words: Vec<&'static str>,
    path: String,
    sha256: String,
    /// Prefix blocks are reused many times (Mooncake): cache their text.
    blocks: Mutex<BlockCache>,
}

#[derive(Default)]
struct BlockCache {
    map: HashMap<(u64, u32), Arc<str>>,
    bytes: usize,
}

/// Cached block text is dropped wholesale past this size.
const BLOCK_CACHE_BYTES: usize = 256 << 20;

impl std::fmt::Debug for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tok").field("path", &self.path).finish()
    }
}

impl Tok {
    /// Load a `tokenizer.json` file.
    pub fn load(path: &Path) -> Result<Tok, TokError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| TokError::Read {
            path: name.clone(),
            source: e,
        })?;
        Tok::from_bytes(&name, &bytes)
    }

    /// Load from the bytes of a `tokenizer.json`; `name` is used in messages and metadata.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Tok, TokError> {
        use sha2::{Digest, Sha256};
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokError::Load {
            path: name.into(),
            msg: one_line(&e.to_string()),
        })?;
        let sha256: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let words = additive_words(&inner);
        Ok(Tok {
            inner,
            words,
            path: name.into(),
            sha256,
            blocks: Mutex::new(BlockCache::default()),
        })
    }

    /// How traces and runs name this tokenizer (`servebench.trace.tokenizer`).
    pub fn describe(&self) -> String {
        let file = Path::new(&self.path)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| self.path.clone());
        format!("{file} sha256:{} (exact counts, no special tokens)", &self.sha256)
    }

    fn ids(&self, text: &str) -> Result<Vec<u32>, TokError> {
        let e = self.inner.encode_fast(text, false).map_err(|e| self.enc_err(e))?;
        Ok(e.get_ids().to_vec())
    }

    fn enc_err(&self, e: tokenizers::Error) -> TokError {
        TokError::Encode {
            path: self.path.clone(),
            msg: one_line(&e.to_string()),
        }
    }

    /// Tokens in `text` (no special tokens).
    pub fn count(&self, text: &str) -> Result<u32, TokError> {
        let e = self.inner.encode_fast(text, false).map_err(|e| self.enc_err(e))?;
        Ok(e.len().min(u32::MAX as usize) as u32)
    }

    /// The longest prefix of `text` (cut at a token boundary) with at most `n` tokens.
    pub fn truncate<'a>(&self, text: &'a str, n: u32) -> Result<&'a str, TokError> {
        let e = self.inner.encode(text, false).map_err(|e| self.enc_err(e))?;
        if e.len() <= n as usize {
            return Ok(text);
        }
        if n == 0 {
            return Ok("");
        }
        let end = e.get_offsets()[n as usize - 1].1;
        Ok(&text[..floor_boundary(text, end)])
    }

    /// Synthetic text of exactly `n` tokens, the same for the same `seed` (see the module
    /// docs). Falls back to the closest text found if the tokenizer never lands on `n`.
    pub fn exact_text(&self, seed: u64, n: u32) -> String {
        let mut rng = SplitMix(seed ^ 0x5EB5_EB5E_B5EB_5EB5);
        let mut text = String::with_capacity(n as usize * 6);
        push_words(&mut text, &self.words, &mut rng, n);
        if n == 0 {
            return text;
        }
        let mut best: Option<(u32, String)> = None;
        for _ in 0..48 {
            let e = match self.inner.encode(text.as_str(), false) {
                Ok(e) => e,
                Err(_) => break,
            };
            let m = e.len() as u32;
            let miss = m.abs_diff(n);
            if best.as_ref().is_none_or(|(d, _)| miss < *d) {
                best = Some((miss, text.clone()));
            }
            if m == n {
                return text;
            }
            if m > n {
                let end = floor_boundary(&text, e.get_offsets()[n as usize - 1].1);
                if end >= text.len() {
                    // the cut would not shorten it: drop the last character instead
                    text.pop();
                } else {
                    text.truncate(end);
                }
            } else {
                push_words(&mut text, &self.words, &mut rng, (n - m).max(1));
            }
        }
        // Last resort: the first n ids, decoded.
        if let Ok(ids) = self.ids(&text)
            && ids.len() >= n as usize
            && let Ok(t) = self.inner.decode(&ids[..n as usize], true)
            && self.count(&t).ok() == Some(n)
        {
            return t;
        }
        best.map(|(_, t)| t).unwrap_or(text)
    }

    /// Text of exactly one prefix block of `n` tokens: the same for the same block id (and a
    /// shorter block of the same id is a prefix of a longer one in word terms).
    pub fn exact_block(&self, block_id: u64, n: u32) -> Arc<str> {
        let key = (block_id, n);
        if let Some(t) = self.blocks.lock().unwrap_or_else(|e| e.into_inner()).map.get(&key) {
            return t.clone();
        }
        // The seed is the approximate prompter's block seed, so both prompters start blocks
        // with the same words.
        let t: Arc<str> = Arc::from(self.exact_text(block_seed(block_id), n));
        let mut g = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if g.bytes + t.len() > BLOCK_CACHE_BYTES {
            g.map.clear();
            g.bytes = 0;
        }
        g.bytes += t.len();
        g.map.insert(key, t.clone());
        t
    }
}

/// The seed of a prefix block's text (shared by both prompters).
pub fn block_seed(block_id: u64) -> u64 {
    block_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB10C
}

fn push_words(out: &mut String, words: &[&str], rng: &mut SplitMix, n: u32) {
    for _ in 0..n {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(words[(rng.next_u64() % words.len() as u64) as usize]);
    }
}

/// The common words whose token count does not change after a space: count("the " + w) =
/// count("the") + count(w). Byte-level BPE (GPT, Llama 3) tokenizes " w" and "w" differently,
/// and for some words the counts differ; SentencePiece-style tokenizers add a prefix either
/// way. Texts made of these words can be joined with a space (prefix blocks) and keep the sum
/// of their lengths. All the words when none qualifies (an unusual tokenizer).
fn additive_words(t: &tokenizers::Tokenizer) -> Vec<&'static str> {
    let count = |s: &str| t.encode_fast(s, false).map(|e| e.len()).ok();
    let Some(base) = count("the") else {
        return WORDS.to_vec();
    };
    let v: Vec<&'static str> = WORDS
        .iter()
        .copied()
        .filter(|w| match (count(w), count(&format!("the {w}"))) {
            (Some(a), Some(b)) => a >= 1 && b == base + a,
            _ => false,
        })
        .collect();
    if v.len() < 16 { WORDS.to_vec() } else { v }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// Token counts for importers: a real tokenizer, or the approximation.
#[derive(Clone, Debug, Default)]
pub enum TokenCounter {
    #[default]
    Approx,
    Exact(Arc<Tok>),
}

impl TokenCounter {
    /// The counter for `--tokenizer FILE` (or the approximation without one).
    pub fn from_arg(path: Option<&PathBuf>) -> Result<TokenCounter, TokError> {
        Ok(match path {
            Some(p) => TokenCounter::Exact(Arc::new(Tok::load(p)?)),
            None => TokenCounter::Approx,
        })
    }

    pub fn count(&self, text: &str) -> Result<u32, TokError> {
        match self {
            TokenCounter::Approx => Ok(approx_tokens(text)),
            TokenCounter::Exact(t) => t.count(text),
        }
    }

    /// The longest prefix of `text` with at most `n` tokens.
    pub fn truncate<'a>(&self, text: &'a str, n: u32) -> Result<&'a str, TokError> {
        match self {
            TokenCounter::Approx => Ok(truncate_approx(text, n)),
            TokenCounter::Exact(t) => t.truncate(text, n),
        }
    }

    /// What `servebench.trace.tokenizer` says.
    pub fn describe(&self) -> String {
        match self {
            TokenCounter::Approx => APPROX_NAME.into(),
            TokenCounter::Exact(t) => t.describe(),
        }
    }
}

/// The longest prefix of `text` with at most `n` approximate tokens.
pub fn truncate_approx(text: &str, n: u32) -> &str {
    let mut count: u32 = 0;
    let mut run: u32 = 0;
    for (i, ch) in text.char_indices() {
        if ch.is_alphanumeric() {
            // a run's token count grows at characters 1, 9, 17, ...
            if run.is_multiple_of(8) {
                if count == n {
                    return text[..i].trim_end();
                }
                count += 1;
            }
            run += 1;
        } else {
            run = 0;
            if !ch.is_whitespace() {
                if count == n {
                    return text[..i].trim_end();
                }
                count += 1;
            }
        }
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny character-level BPE tokenizer with a few merges (words are one or several tokens).
    pub fn bpe_json() -> String {
        let mut vocab = serde_json::Map::new();
        let mut add = |t: &str| {
            let n = vocab.len();
            vocab.entry(t.to_string()).or_insert(serde_json::json!(n));
        };
        add("[UNK]");
        for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"()-_/".chars() {
            add(&c.to_string());
        }
        let merges = ["t h", "th e", "a n", "an d", "o f", "i n", "t o", "i s", "e r", "o n"];
        for m in merges {
            add(&m.replace(' ', ""));
        }
        serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "BPE", "dropout": null, "unk_token": "[UNK]", "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "vocab": vocab, "merges": merges}
        })
        .to_string()
    }

    fn bpe() -> Tok {
        Tok::from_bytes("bpe.json", bpe_json().as_bytes()).unwrap()
    }

    #[test]
    fn counts_and_exact_text() {
        let t = bpe();
        assert_eq!(t.count("the and").unwrap(), 2);
        assert_eq!(t.count("water").unwrap(), 4); // w a t er
        for n in [1u32, 2, 3, 7, 50, 511, 512, 2000] {
            for seed in [0u64, 1, 99] {
                let s = t.exact_text(seed, n);
                assert_eq!(t.count(&s).unwrap(), n, "seed {seed} n {n}: {s}");
            }
        }
        assert_eq!(t.exact_text(5, 64), t.exact_text(5, 64));
        assert_ne!(t.exact_text(5, 64), t.exact_text(6, 64));
        assert_eq!(t.exact_text(5, 0), "");
    }

    #[test]
    fn blocks_are_stable_and_exact() {
        let t = bpe();
        let a = t.exact_block(7, 512);
        assert_eq!(t.count(&a).unwrap(), 512);
        assert_eq!(a, t.exact_block(7, 512));
        assert_ne!(a, t.exact_block(8, 512));
        let short = t.exact_block(7, 100);
        assert_eq!(t.count(&short).unwrap(), 100);
    }

    #[test]
    fn truncation() {
        let t = bpe();
        let s = "the water is on the river";
        let cut = t.truncate(s, 6).unwrap();
        assert_eq!(t.count(cut).unwrap(), 6);
        assert!(s.starts_with(cut));
        assert_eq!(t.truncate(s, 1000).unwrap(), s);
        assert_eq!(truncate_approx("Hello, world!", 2), "Hello,");
        assert_eq!(truncate_approx("internationalization x", 2), "internationaliza");
        assert_eq!(approx_tokens(truncate_approx("internationalization x", 2)), 2);
        assert_eq!(truncate_approx("a b", 5), "a b");
        for n in 0..20 {
            let s = "The quick, brown fox (jumps) over 1234567890123 lazy dogs!";
            assert_eq!(approx_tokens(truncate_approx(s, n)), n.min(approx_tokens(s)));
        }
    }

    #[test]
    fn bad_file_is_one_clear_error() {
        let e = Tok::from_bytes("x.json", b"{not json").unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("tokenizer.json"), "{e}");
        assert!(!e.contains('\n'));
    }
}
