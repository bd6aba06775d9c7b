//! The quality contract: one row per scored position of an evaluation passage and one per task
//! item (quality -> quality --baseline).

/// One scored position (kind `passage`) or one task item's greedy output (kind `task`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QualityRow {
    pub item_id: String,
    pub item_kind: String,
    pub position: Option<u32>,
    pub position_token: Option<String>,
    pub token_logprob: Option<f64>,
    pub top_logprobs_json: Option<String>,
    pub output_text: Option<String>,
    pub output_tokens_json: Option<String>,
    pub expected: Option<String>,
    pub correct: Option<bool>,
    pub top_k: u32,
    pub api: String,
}

crate::contract! {
    /// one row per scored position and per task item (quality)
    pub static QUALITY = ("quality", 1, "one row per scored position of a passage and one per task item (quality)");
    rows QualityRow, ctx (), decode;
    /// Column names of the quality contract.
    names col;
    ITEM_ID "item_id": String, req, "", "id of the evaluation-set item", field(item_id);
    ITEM_KIND "item_kind": String, req, "", "passage (teacher-forced, one row per position) or task (greedy answer, one row)", field(item_kind);
    POSITION "position": Option<u32>, opt, "tokens", "position of the scored token in the passage, from 0; null for a task row", field(position);
    POSITION_TOKEN "position_token": Option<String>, opt, "", "the passage's token at this position, as the engine detokenizes it", field(position_token);
    TOKEN_LOGPROB "token_logprob": Option<f64>, opt, "nats", "log probability of that token given the tokens before it; null where the engine gives none (the first token)", field(token_logprob);
    TOP_LOGPROBS_JSON "top_logprobs_json": Option<String>, opt, "", "the engine's top-k alternatives at this position as JSON [[token, logprob], ...]", field(top_logprobs_json);
    OUTPUT_TEXT "output_text": Option<String>, opt, "", "a task row's greedy output", field(output_text);
    OUTPUT_TOKENS_JSON "output_tokens_json": Option<String>, opt, "", "a task row's greedy output tokens as a JSON list of strings (for the common prefix)", field(output_tokens_json);
    EXPECTED "expected": Option<String>, opt, "", "a task row's expected answer", field(expected);
    CORRECT "correct": Option<bool>, opt, "", "exact match of the output's first line with the answer (case, surrounding space and a final period ignored)", field(correct);
    TOP_K "top_k": u32, req, "", "log probabilities asked for per position (--top-k)", field(top_k);
    API "api": String, req, "", "protocol the endpoint was spoken to with", field(api);
}
