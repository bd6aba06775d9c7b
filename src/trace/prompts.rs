//! Prompt sets: `configs/prompts.jsonl` (built into the binaries) or any JSONL file with
//! `{"category": ..., "prompt": ...}` lines (an optional `"tokens"` overrides the count).

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

use super::tokens::approx_tokens;

/// The prompt set shipped with servebench (short, medium, long, code).
pub const BUILTIN: &str = include_str!("../../configs/prompts.jsonl");

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub category: String,
    pub prompt: String,
    pub tokens: u32,
}

#[derive(Debug, Clone)]
pub struct PromptSet {
    pub prompts: Vec<Prompt>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: line {line}: {msg}")]
    Line { path: String, line: usize, msg: String },
    #[error("{path}: no prompts in categories {cats}; the file has {have}")]
    Empty { path: String, cats: String, have: String },
}

#[derive(serde::Deserialize)]
struct Line {
    category: Option<String>,
    prompt: String,
    tokens: Option<u32>,
}

impl PromptSet {
    /// Parse JSONL text; `name` is used in error messages.
    pub fn parse(name: &str, text: &str) -> Result<PromptSet, PromptError> {
        let mut prompts = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() {
                continue;
            }
            let v: Line = serde_json::from_str(l).map_err(|e| PromptError::Line {
                path: name.into(),
                line: i + 1,
                msg: format!("{e} (want {{\"category\": \"short\", \"prompt\": \"...\"}})"),
            })?;
            let tokens = v.tokens.unwrap_or_else(|| approx_tokens(&v.prompt));
            prompts.push(Prompt {
                category: v.category.unwrap_or_else(|| "default".into()),
                prompt: v.prompt,
                tokens,
            });
        }
        Ok(PromptSet { prompts })
    }

    pub fn builtin() -> PromptSet {
        PromptSet::parse("configs/prompts.jsonl", BUILTIN).expect("the built-in prompt set parses")
    }

    /// Load from a file, or the built-in set for `builtin`.
    pub fn load(path: &str) -> Result<PromptSet, PromptError> {
        if path == "builtin" {
            return Ok(PromptSet::builtin());
        }
        let text = std::fs::read_to_string(path).map_err(|e| PromptError::Read {
            path: path.into(),
            source: e,
        })?;
        PromptSet::parse(path, &text)
    }

    pub fn categories(&self) -> Vec<String> {
        let mut c: Vec<String> = self.prompts.iter().map(|p| p.category.clone()).collect();
        c.sort();
        c.dedup();
        c
    }

    /// Keep only the given categories (empty keeps all).
    pub fn filter(self, name: &str, cats: &[String]) -> Result<PromptSet, PromptError> {
        if cats.is_empty() {
            return Ok(self);
        }
        let have = self.categories().join(", ");
        let prompts: Vec<Prompt> = self
            .prompts
            .into_iter()
            .filter(|p| cats.contains(&p.category))
            .collect();
        if prompts.is_empty() {
            return Err(PromptError::Empty {
                path: name.into(),
                cats: cats.join(","),
                have,
            });
        }
        Ok(PromptSet { prompts })
    }

    pub fn pick(&self, rng: &mut Xoshiro256PlusPlus) -> &Prompt {
        &self.prompts[rng.random_range(0..self.prompts.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_set_has_four_categories_in_their_ranges() {
        let s = PromptSet::builtin();
        for (cat, lo, hi) in [
            ("short", 0, 49),
            ("medium", 50, 200),
            ("long", 201, u32::MAX),
            ("code", 0, u32::MAX),
        ] {
            let v: Vec<&Prompt> = s.prompts.iter().filter(|p| p.category == cat).collect();
            assert!(v.len() >= 50, "{cat}: {}", v.len());
            for p in v {
                assert!(
                    p.tokens >= lo && p.tokens <= hi,
                    "{cat} prompt has {} tokens: {}",
                    p.tokens,
                    p.prompt
                );
            }
        }
    }

    #[test]
    fn bad_lines_are_reported() {
        let e = PromptSet::parse("x.jsonl", "{\"prompt\": \"a\"}\nnot json\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let s = PromptSet::parse("x", "{\"category\":\"a\",\"prompt\":\"hi\"}").unwrap();
        assert!(s.filter("x", &["b".into()]).unwrap_err().to_string().contains("has a"));
    }
}
