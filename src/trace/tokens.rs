//! The token-count approximation used when no tokenizer is given, and synthetic prompt text.
//!
//! **Approximation (v1).** Text is split into maximal runs of alphanumeric characters and
//! single other non-whitespace characters; a run of length L counts ceil(L/8) tokens, every
//! other non-whitespace character counts 1, whitespace counts 0. For English prose this lands
//! within about 15% of Llama-3 and GPT-4 tokenizers (common words are one token; punctuation
//! is usually its own token); code and unusual words are undercounted somewhat. The same rule
//! is used by tracegen (prompt categories), replay (synthesised prompts) and mock-engine
//! (usage), so the three agree exactly; `--tokenizer` replaces it with a real tokenizer.

/// Approximate token count of `text` (see the module docs).
pub fn approx_tokens(text: &str) -> u32 {
    let mut n: u32 = 0;
    let mut run: u32 = 0;
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            run += 1;
        } else {
            if run > 0 {
                n += run.div_ceil(8);
                run = 0;
            }
            if !ch.is_whitespace() {
                n += 1;
            }
        }
    }
    if run > 0 {
        n += run.div_ceil(8);
    }
    n
}

/// Common English words that are one token in mainstream BPE vocabularies (and one token
/// under the approximation). Synthesised prompts are made of these.
pub const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
    "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
    "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    "she", "other", "its", "may", "these", "about", "than", "into", "them", "some", "could", "time", "only", "new",
    "two", "any", "like", "then", "our", "first", "what", "also", "over", "such", "made", "after", "most", "many",
    "well", "where", "people", "through", "should", "very", "each", "water", "work", "world", "state", "year", "still",
    "between", "city", "back", "under", "long", "good", "great", "house", "light", "school", "small", "large",
    "number", "part", "place", "case", "point", "group", "problem", "fact", "hand", "line", "name", "word", "system",
    "order", "power", "change", "music", "river", "table", "market", "story", "money", "family", "night", "road",
    "paper", "field", "plan", "model", "game", "level", "table", "garden", "window", "morning", "summer", "winter",
    "color", "green", "blue", "red", "black", "white", "little", "open", "close", "early", "late", "short", "high",
    "low", "free", "clear", "simple", "real", "best", "better", "human", "local", "public",
];

/// Deterministic pseudo-random stream (SplitMix64) for synthesised text: the same seed always
/// gives the same words, independent of the rand crate's version.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Append `n` approximate tokens of synthetic text seeded by `seed` to `out`.
///
/// Different seeds give different text from the first word on, so synthesised prompts never
/// share a prefix by accident (no accidental prefix-cache hits).
pub fn synth_text(out: &mut String, seed: u64, n: u32) {
    let mut rng = SplitMix(seed ^ 0x5EB5_EB5E_B5EB_5EB5);
    out.reserve(n as usize * 6);
    for i in 0..n {
        if i > 0 || (!out.is_empty() && !out.ends_with(' ')) {
            out.push(' ');
        }
        let w = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
        out.push_str(w);
    }
}

/// A synthesised prompt of exactly `n` approximate tokens, unique per `seed`.
pub fn synth_prompt(seed: u64, n: u32) -> String {
    let mut s = String::new();
    synth_text(&mut s, seed, n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximation_rule() {
        assert_eq!(approx_tokens("Hello, world!"), 4);
        assert_eq!(approx_tokens("internationalization"), 3);
        assert_eq!(approx_tokens(""), 0);
        assert_eq!(approx_tokens("  a  b  "), 2);
        assert_eq!(approx_tokens("fn main() {}"), 6);
    }

    #[test]
    fn synth_is_exact_and_unique() {
        for n in [0u32, 1, 7, 512, 3000] {
            let p = synth_prompt(42, n);
            assert_eq!(approx_tokens(&p), n);
        }
        assert_ne!(synth_prompt(1, 20)[..20], synth_prompt(2, 20)[..20]);
        assert_eq!(synth_prompt(9, 50), synth_prompt(9, 50));
        for w in WORDS {
            assert_eq!(approx_tokens(w), 1, "{w}");
        }
    }
}
