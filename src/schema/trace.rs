//! The trace contract: one row per request to send (tracegen -> replay).

/// One request to send.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceRow {
    pub request_id: u64,
    pub arrival_s: f64,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub prompt: Option<String>,
    pub prefix_blocks: Option<Vec<u64>>,
    pub category: Option<String>,
    pub source: Option<String>,
}

impl TraceRow {
    pub fn new(request_id: u64, arrival_s: f64, input_tokens: u32, output_tokens: u32) -> Self {
        TraceRow {
            request_id,
            arrival_s,
            input_tokens,
            output_tokens,
            ..Default::default()
        }
    }
}

crate::contract! {
    /// one row per request to send (tracegen -> replay)
    pub static TRACE = ("trace", 1, "one row per request to send (tracegen -> replay)");
    rows TraceRow, ctx (), decode;
    /// Column names of the trace contract.
    names col;
    REQUEST_ID "request_id": u64, req, "", "unique id of the request within the trace", field(request_id);
    ARRIVAL_S "arrival_s": f64, req, "s", "when to send it, seconds after the trace starts", field(arrival_s);
    SESSION_ID "session_id": Option<u64>, opt, "", "conversation id for multi-turn sessions", field(session_id);
    TURN "turn": Option<u32>, opt, "", "turn number within the session, from 0", field(turn);
    INPUT_TOKENS "input_tokens": u32, req, "tokens", "prompt length to send", field(input_tokens);
    OUTPUT_TOKENS "output_tokens": u32, req, "tokens", "max_tokens to request (ignore_eos unless told otherwise)", field(output_tokens);
    PROMPT "prompt": Option<String>, opt, "", "prompt text; null means replay synthesises input_tokens of text", field(prompt);
    PREFIX_BLOCKS "prefix_blocks": Option<Vec<u64>>, opt, "", "prefix-block hash ids (Mooncake, 512 tokens each): equal ids give identical text", field(prefix_blocks);
    CATEGORY "category": Option<String>, opt, "", "short, medium, long, code, or the source's own", field(category);
    SOURCE "source": Option<String>, opt, "", "where the row came from: poisson, gamma, sharegpt, azure, ...", field(source);
}
