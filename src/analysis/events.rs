//! Events: what a server sent at once, from a request's content chunks and their tokens.
//!
//! A chunk is what the client read as one content event (`chunk_times_ms`, with its tokens in
//! `chunk_tokens`). An *event* here is one engine step's output as the client saw it: a chunk,
//! or a burst of chunks that arrived back to back (TGI and llama.cpp send the tokens of one
//! speculative step as separate events with ~0 µs between them, ENGINES.md): a chunk that
//! arrived less than [`BURST_MS`] after the one before it belongs to that one's event. An
//! event's time is its first chunk's, its tokens the sum of its chunks'.
//!
//! From them, per request:
//! - tokens per event: one value per event, the first included;
//! - per-event ITL: for every event after the first, the gap since the previous event (unlike
//!   the chunk gaps of `itl_*`, a burst's ~0 gaps are not among them);
//! - per-token ITL: that gap divided by the tokens of the event that ended it (gap / tokens),
//!   one value per gap. With one token per event it equals the per-event gap.
//!
//! Without token counts (`chunk_tokens` null) there is nothing to say: no values.

/// Chunks closer than this (ms) are one burst: no engine's decode step is that short, and the
/// client stamps the events of one read with one time (a gap of exactly 0).
pub const BURST_MS: f64 = 0.1;

/// The events of one request: (arrival ms, tokens), bursts merged. `times` and `tokens` are
/// the request's chunks (same length; a shorter `tokens` ends the events early).
pub fn events(times: &[f64], tokens: &[u32]) -> Vec<(f64, u32)> {
    let mut out: Vec<(f64, u32)> = Vec::with_capacity(times.len());
    let mut prev: Option<f64> = None;
    for (&t, &k) in times.iter().zip(tokens) {
        match (out.last_mut(), prev) {
            (Some(last), Some(p)) if t - p < BURST_MS => last.1 += k,
            _ => out.push((t, k)),
        }
        prev = Some(t);
    }
    out
}

/// Feed one request's tokens per event to `tpe`, and for each gap between events the gap and
/// its tokens to `gap` (the gap over the tokens is per-token ITL; events without tokens give
/// no gap). One pass, no allocation: the same events as [`events`].
pub fn per_request(times: &[f64], tokens: &[u32], mut tpe: impl FnMut(u32), mut gap: impl FnMut(f64, u32)) {
    // the event being read (its time and tokens), the one before it, the last chunk's time
    let mut cur: Option<(f64, u32)> = None;
    let mut before: Option<f64> = None;
    let mut last_chunk: Option<f64> = None;
    let mut close = |ev: (f64, u32), before: Option<f64>| {
        tpe(ev.1);
        if let Some(b) = before
            && ev.1 > 0
        {
            gap(ev.0 - b, ev.1);
        }
    };
    for (&t, &k) in times.iter().zip(tokens) {
        match (&mut cur, last_chunk) {
            (Some(ev), Some(p)) if t - p < BURST_MS => ev.1 += k,
            _ => {
                if let Some(ev) = cur.replace((t, k)) {
                    close(ev, before);
                    before = Some(ev.0);
                }
            }
        }
        last_chunk = Some(t);
    }
    if let Some(ev) = cur {
        close(ev, before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(times: &[f64], tokens: &[u32]) -> (Vec<u32>, Vec<f64>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        per_request(times, tokens, |k| a.push(k), |g, k| b.push(g / k as f64));
        // the one-pass reading gives the same events as the plain one
        let ev = events(times, tokens);
        assert_eq!(a, ev.iter().map(|e| e.1).collect::<Vec<_>>());
        (a, b)
    }

    /// vLLM-style multi-token chunks: each gap divided by the tokens of the chunk that ended it.
    #[test]
    fn multi_token_chunks() {
        let (tpe, itl) = run(&[50.0, 60.0, 70.0, 90.0], &[1, 4, 2, 1]);
        assert_eq!(tpe, [1, 4, 2, 1]);
        assert_eq!(itl, [2.5, 5.0, 20.0]);
    }

    /// TGI-style bursts: one token per event, back to back; a burst is one event whose gap is
    /// shared by its tokens.
    #[test]
    fn bursts_are_one_event() {
        let times = [50.0, 60.0, 60.0, 60.00005, 70.0, 80.0, 80.0];
        let (tpe, itl) = run(&times, &[1; 7]);
        assert_eq!(tpe, [1, 3, 1, 2]);
        assert_eq!(itl, [10.0 / 3.0, 10.0, 5.0]);
        // a gap of 0.1 ms or more is its own event
        assert_eq!(run(&[1.0, 1.2, 1.5], &[1, 1, 1]).0, [1, 1, 1]);
        // one token per event and no bursts: per-token ITL is the plain gap
        assert_eq!(run(&[0.0, 7.0, 9.0], &[1, 1, 1]).1, [7.0, 2.0]);
        assert!(run(&[], &[]).0.is_empty());
    }
}
