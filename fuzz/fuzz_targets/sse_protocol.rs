//! The SSE / JSON-lines framer and every protocol's event parser, on arbitrary bytes cut
//! into arbitrary pieces: no panic, bounded buffering, and the same events whatever the cuts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::client::protocol::{Api, StreamState};
use servebench::client::sse::{Framer, Framing};

const APIS: [Api; 6] = [
    Api::Chat,
    Api::Completions,
    Api::Tgi,
    Api::Sglang,
    Api::Llamacpp,
    Api::Ollama,
];

/// Events (name, data) of a body fed in pieces cut at `cuts`.
fn events(framing: Framing, body: &[u8], cuts: &[usize], limit: usize) -> (Vec<(Option<String>, Vec<u8>)>, bool) {
    let mut f = Framer::with_limit(framing, limit);
    let mut out = Vec::new();
    let mut prev = 0;
    let mut biggest = 0;
    let mut failed = false;
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        let c = c.clamp(prev, body.len());
        let piece = &body[prev..c];
        biggest = biggest.max(piece.len());
        let r = f.feed(piece, &mut |e| out.push((e.name.map(str::to_string), e.data.to_vec())));
        // buffering is bounded by the limit plus the piece being scanned
        assert!(
            f.buffered() <= limit + piece.len() + 1,
            "buffered {} > limit {limit}",
            f.buffered()
        );
        if r.is_err() {
            failed = true;
            break;
        }
        prev = c;
    }
    if !failed {
        f.finish(&mut |e| out.push((e.name.map(str::to_string), e.data.to_vec())))
            .unwrap();
    }
    (out, failed)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let api = APIS[data[0] as usize % APIS.len()];
    let step = 1 + data[1] as usize % 17;
    let body = &data[2..];
    // cuts: every `step` bytes, after every CR, and (for some steps) empty pieces, as
    // network reads and hyper's frames may cut a body anywhere
    let mut cuts: Vec<usize> = (0..body.len()).step_by(step).collect();
    cuts.extend(
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\r')
            .map(|(i, _)| i + 1),
    );
    cuts.sort();
    if step % 3 == 0 {
        let dup: Vec<usize> = cuts.iter().flat_map(|c| [*c, *c]).collect();
        cuts = dup;
    }
    let framing = api.framing();
    let (whole, _) = events(framing, body, &[], 1 << 20);
    let (split, _) = events(framing, body, &cuts, 1 << 20);
    if whole != split {
        let i = whole.iter().zip(&split).take_while(|(a, b)| a == b).count();
        let show =
            |v: &[(Option<String>, Vec<u8>)]| v.get(i).map(|(n, d)| format!("{n:?} {:?}", String::from_utf8_lossy(d)));
        panic!(
            "events depend on where the body was cut: event {i} is {:?} whole, {:?} cut ({} vs {} events)",
            show(&whole),
            show(&split),
            whole.len(),
            split.len()
        );
    }
    // a small limit: errors, never a panic or unbounded buffer
    let _ = events(framing, body, &cuts, 64);
    // every event through the protocol parser; the borrowed OpenAI reader, whenever it
    // takes an event, reads what serde reads
    let mut st = StreamState::new(true);
    for (i, (name, d)) in whole.iter().enumerate() {
        servebench::client::protocol::check_openai_reader(d);
        st.on_event(
            api,
            servebench::client::sse::Event {
                name: name.as_deref(),
                data: d,
            },
            i as f64,
        );
    }
    let (n, src) = st.output_tokens();
    assert!(src == "usage" || src == "chunks");
    if src == "chunks" {
        assert_eq!(n as usize, st.chunk_ms.len());
    }
    if let Some(t) = st.chunk_tokens() {
        assert_eq!(t.len(), st.chunk_ms.len());
    }
    assert!(st.chunk_ms.windows(2).all(|w| w[0] <= w[1]));
    // an error row always says something: the engine's words, or that it gave none and
    // what it sent instead
    if let Some(e) = &st.error {
        assert!(!e.trim().is_empty(), "an empty error message");
    }
});
