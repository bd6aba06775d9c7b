//! ShareGPT (the V3 "unfiltered cleaned split" and files like it): one JSON array of
//! `{"id": ..., "conversations": [{"from": "human", "value": "..."}, {"from": "gpt", ...}]}`.
//!
//! The file is parsed as a stream (one conversation in memory at a time; `--count N` keeps N
//! in a seeded reservoir). Without sessions a conversation gives one row: its first human turn
//! is the prompt (the text is kept in `prompt`) and the reply's length is the output length.
//! With sessions every human turn followed by a reply is a row of one session, turn 0, 1, ...;
//! turn k+1 arrives a think time after turn k (replay sends it that long after turn k's
//! reply ends). Roles: `human`/`user` are the user, `gpt`/`chatgpt`/`bing`/`bard`/`assistant`
//! the model; conversations that are empty, have one turn, or do not start with a user turn
//! (continuation chunks start with `gpt`, a few with `system`) are skipped and counted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};

use super::{Flow, ImportError, RowSink, Skipped, open_text};
use crate::trace::TraceRow;
use crate::trace::synth::{Arrival, Arrivals, stream_seed};
use crate::trace::tokenizer::TokenCounter;

#[derive(Deserialize)]
struct Conv {
    #[serde(default)]
    conversations: Option<Vec<Turn>>,
}

#[derive(Deserialize)]
struct Turn {
    from: String,
    value: String,
}

/// Think time between the turns of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThinkTime {
    /// Always this many seconds.
    Fixed(f64),
    /// Exponential with this mean (seconds).
    Exp(f64),
}

impl std::str::FromStr for ThinkTime {
    type Err = String;
    /// `5s`, `500ms`, or `exp:5s` (exponential with mean 5 s)
    fn from_str(s: &str) -> Result<ThinkTime, String> {
        let (exp, d) = match s.strip_prefix("exp:") {
            Some(d) => (true, d),
            None => (false, s),
        };
        let v = crate::units::parse_duration(d)
            .map_err(|e| e.to_string())?
            .as_secs_f64();
        Ok(if exp && v > 0.0 {
            ThinkTime::Exp(v)
        } else {
            ThinkTime::Fixed(v)
        })
    }
}

/// The ShareGPT importer's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Whole conversations as multi-turn sessions.
    pub sessions: bool,
    /// Draw this many conversations at random (seeded); else all, in file order.
    pub count: Option<u64>,
    pub seed: u64,
    /// Arrivals of conversations (first turns).
    pub arrival: Arrival,
    pub think: ThinkTime,
}

pub const SKIP_EMPTY: &str = "empty";
pub const SKIP_ONE_TURN: &str = "one-turn";
pub const SKIP_NOT_HUMAN_FIRST: &str = "not starting with a human turn";
pub const SKIP_EMPTY_TEXT: &str = "with an empty prompt or reply";

/// One exchange: the user's text and the model's reply.
type Exchange = (String, String);

fn is_user(role: &str) -> bool {
    matches!(role.to_ascii_lowercase().as_str(), "human" | "user")
}

fn is_model(role: &str) -> bool {
    matches!(
        role.to_ascii_lowercase().as_str(),
        "gpt" | "chatgpt" | "bing" | "bard" | "assistant" | "model"
    )
}

/// The exchanges of a conversation, or why it is skipped.
fn exchanges(c: Conv, sessions: bool) -> Result<Vec<Exchange>, &'static str> {
    let turns = c.conversations.unwrap_or_default();
    if turns.is_empty() {
        return Err(SKIP_EMPTY);
    }
    if !is_user(&turns[0].from) {
        return Err(SKIP_NOT_HUMAN_FIRST);
    }
    if turns.len() < 2 {
        return Err(SKIP_ONE_TURN);
    }
    let mut out = Vec::new();
    let mut it = turns.into_iter().peekable();
    while let Some(t) = it.next() {
        if !is_user(&t.from) {
            continue;
        }
        if it.peek().is_some_and(|n| is_model(&n.from)) {
            let reply = it.next().map(|r| r.value).unwrap_or_default();
            if t.value.trim().is_empty() || reply.trim().is_empty() {
                if out.is_empty() {
                    return Err(SKIP_EMPTY_TEXT);
                }
                break;
            }
            out.push((t.value, reply));
            if !sessions {
                break;
            }
        } else if out.is_empty() {
            // the first user turn has no reply
            return Err(SKIP_ONE_TURN);
        }
    }
    if out.is_empty() {
        return Err(SKIP_ONE_TURN);
    }
    Ok(out)
}

/// Calls `f` for each element of the top-level array; `f` returns false to stop.
struct Each<'a> {
    f: &'a mut dyn FnMut(Conv) -> Result<bool, ImportError>,
    err: &'a mut Option<ImportError>,
}

const STOP: &str = "servebench: stop reading";

impl<'de> Visitor<'de> for Each<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of conversations ({\"id\": ..., \"conversations\": [...]})")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(c) = seq.next_element::<Conv>()? {
            match (self.f)(c) {
                Ok(true) => {}
                Ok(false) => return Err(A::Error::custom(STOP)),
                Err(e) => {
                    *self.err = Some(e);
                    return Err(A::Error::custom(STOP));
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Each<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

/// Parse the array, calling `f` for each conversation.
fn for_each(
    path: &str,
    r: Box<dyn Read + Send>,
    f: &mut dyn FnMut(Conv) -> Result<bool, ImportError>,
) -> Result<(), ImportError> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let mut err = None;
    let res = Each { f, err: &mut err }.deserialize(&mut de);
    if let Some(e) = err {
        return Err(e);
    }
    match res {
        Ok(()) => de.end().map_err(|e| json_err(path, &e)),
        Err(e) if e.to_string().starts_with(STOP) => Ok(()),
        Err(e) if e.is_io() => Err(ImportError::Read {
            path: path.into(),
            source: std::io::Error::other(e.to_string()),
        }),
        Err(e) => Err(json_err(path, &e)),
    }
}

fn json_err(path: &str, e: &serde_json::Error) -> ImportError {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(p) => msg[..p].to_string(),
        None => msg,
    };
    let msg = if e.is_eof() {
        format!("{msg} (the file is truncated: a ShareGPT file is one JSON array)")
    } else {
        msg
    };
    ImportError::Bad {
        path: path.into(),
        at: "line",
        line: e.line() as u64,
        column: format!("column {}", e.column()),
        msg,
    }
}

/// Emits rows in arrival order: later turns wait in a heap until every conversation that
/// starts before them has been emitted.
struct Emitter<'a> {
    sink: &'a mut dyn RowSink,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    rows: std::collections::HashMap<u64, TraceRow>,
    seq: u64,
    stopped: bool,
}

impl Emitter<'_> {
    fn add(&mut self, row: TraceRow) {
        let key = (row.arrival_s.max(0.0).to_bits(), self.seq);
        self.rows.insert(self.seq, row);
        self.heap.push(Reverse(key));
        self.seq += 1;
    }

    /// Emit every row due at or before `t`.
    fn release(&mut self, t: f64) -> Result<(), ImportError> {
        while let Some(Reverse((bits, seq))) = self.heap.peek().copied() {
            if f64::from_bits(bits) > t || self.stopped {
                break;
            }
            self.heap.pop();
            if let Some(row) = self.rows.remove(&seq)
                && self.sink.push(row, 0)? == Flow::Stop
            {
                self.stopped = true;
            }
        }
        Ok(())
    }
}

/// Import a ShareGPT file into `sink`.
pub fn import(
    path: &str,
    opts: &Options,
    counter: &TokenCounter,
    sink: &mut dyn RowSink,
) -> Result<Skipped, ImportError> {
    opts.arrival.validate().map_err(ImportError::Usage)?;
    let r = open_text(path)?;
    let mut skipped = Skipped::default();
    let mut arrivals = Arrivals::new(opts.arrival, opts.seed);
    let mut think_rng = Xoshiro256PlusPlus::seed_from_u64(stream_seed(opts.seed, 9));
    let mut em = Emitter {
        sink,
        heap: BinaryHeap::new(),
        rows: Default::default(),
        seq: 0,
        stopped: false,
    };
    let mut next_session = 0u64;
    // Turn one conversation into rows (all its turns go to the heap).
    let mut emit_conv = |em: &mut Emitter<'_>, ex: Vec<Exchange>| -> Result<bool, ImportError> {
        let t0 = arrivals.next_arrival();
        let mut t = t0;
        let sid = next_session;
        next_session += 1;
        for (k, (prompt, reply)) in ex.into_iter().enumerate() {
            if k > 0 {
                t += match opts.think {
                    ThinkTime::Fixed(s) => s,
                    ThinkTime::Exp(m) => Exp::new(1.0 / m).map(|d| d.sample(&mut think_rng)).unwrap_or(m),
                };
            }
            let mut row = TraceRow::new(0, t, counter.count(&prompt)?, counter.count(&reply)?);
            row.prompt = Some(prompt);
            row.source = Some("sharegpt".into());
            if opts.sessions {
                row.session_id = Some(sid);
                row.turn = Some(k as u32);
            }
            em.add(row);
        }
        em.release(t0)?;
        Ok(!em.stopped)
    };
    match opts.count {
        None => {
            for_each(path, r, &mut |c| match exchanges(c, opts.sessions) {
                Ok(ex) => emit_conv(&mut em, ex),
                Err(why) => {
                    skipped.add(why, 1);
                    Ok(true)
                }
            })?;
        }
        Some(n) => {
            // Algorithm R: a uniform sample of n conversations, seeded, then in file order.
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream_seed(opts.seed, 10));
            let mut res: Vec<(u64, Vec<Exchange>)> = Vec::new();
            let mut seen = 0u64;
            for_each(path, r, &mut |c| {
                match exchanges(c, opts.sessions) {
                    Ok(ex) => {
                        if (res.len() as u64) < n {
                            res.push((seen, ex));
                        } else {
                            let j = rng.random_range(0..=seen);
                            if j < n {
                                res[j as usize] = (seen, ex);
                            }
                        }
                        seen += 1;
                    }
                    Err(why) => skipped.add(why, 1),
                }
                Ok(true)
            })?;
            res.sort_by_key(|(i, _)| *i);
            for (_, ex) in res {
                if !emit_conv(&mut em, ex)? {
                    break;
                }
            }
        }
    }
    em.release(f64::INFINITY)?;
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(turns: &[(&str, &str)]) -> Conv {
        Conv {
            conversations: Some(
                turns
                    .iter()
                    .map(|(f, v)| Turn {
                        from: f.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn which_conversations_count() {
        assert_eq!(exchanges(conv(&[]), false).unwrap_err(), SKIP_EMPTY);
        assert_eq!(exchanges(conv(&[("human", "hi")]), false).unwrap_err(), SKIP_ONE_TURN);
        assert_eq!(
            exchanges(conv(&[("gpt", "a"), ("human", "b")]), false).unwrap_err(),
            SKIP_NOT_HUMAN_FIRST
        );
        assert_eq!(
            exchanges(conv(&[("system", "a"), ("human", "b"), ("gpt", "c")]), false).unwrap_err(),
            SKIP_NOT_HUMAN_FIRST
        );
        assert_eq!(
            exchanges(conv(&[("human", " "), ("gpt", "c")]), false).unwrap_err(),
            SKIP_EMPTY_TEXT
        );
        let t = [
            ("human", "a"),
            ("gpt", "b"),
            ("human", "c"),
            ("chatgpt", "d"),
            ("human", "e"),
        ];
        assert_eq!(exchanges(conv(&t), false).unwrap().len(), 1);
        let ex = exchanges(conv(&t), true).unwrap();
        assert_eq!(ex, vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
    }

    #[test]
    fn think_times_parse() {
        assert_eq!("5s".parse::<ThinkTime>().unwrap(), ThinkTime::Fixed(5.0));
        assert_eq!("exp:500ms".parse::<ThinkTime>().unwrap(), ThinkTime::Exp(0.5));
        assert!("exp:x".parse::<ThinkTime>().is_err());
    }
}
