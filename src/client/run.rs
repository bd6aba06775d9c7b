//! The scheduler: open loop (each request at its trace time, on absolute deadlines) or closed
//! loop (N users, each sending its next request when the previous one ends), multi-turn
//! sessions, warm-up, limits, timeouts, and orderly stop and cancel.
//!
//! Every trace row yields exactly one [`Record`], whatever happens: sent or not, answered or
//! not. Records flow to the writer as they complete.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::health::{Health, Tracker};
use super::http::{Client, SendError};
use super::protocol::{Api, Message, RequestOpts, StreamState, build_body, http_error_text};
use crate::schema::{Record, Status, tpot};

use super::sse::Framer;
use crate::meta::{RunClock, ms_between};
use crate::recorder::Feed;
use crate::stats::LoadAcc;
use crate::stop::Stop;
use crate::timer;
use crate::trace::tokens::{SplitMix, synth_text};
use crate::trace::{BLOCK_TOKENS, TraceRow};

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Send each request at its trace time (`arrival_s * time_scale`).
    Open {
        time_scale: f64,
        max_in_flight: Option<usize>,
    },
    /// N users; a user sends its next request as soon as the previous one ends.
    Closed { concurrency: u32 },
}

/// Warm-up before the measured run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warmup {
    Count(u64),
    For(Duration),
}

/// Everything fixed for a run.
pub struct Plan {
    pub client: Arc<Client>,
    pub api: Api,
    pub opts: RequestOpts,
    pub mode: Mode,
    pub warmup: Option<Warmup>,
    /// Stop scheduling at this time after the start; later rows are `not_sent`.
    pub duration: Option<Duration>,
    /// Send at most this many requests; later rows are `not_sent`.
    pub max_requests: Option<u64>,
    /// Whole-request timeout, from sent_at.
    pub timeout: Duration,
    /// Timeout for the first content chunk, from sent_at.
    pub ttft_timeout: Option<Duration>,
    /// Seed for synthesised prompt text.
    pub prompt_seed: u64,
    /// Largest SSE event accepted.
    pub max_event_bytes: usize,
    /// Build prompts for rows without text (tokenizer-exact when one is given).
    pub prompter: Arc<dyn Prompter>,
    /// Start the measured schedule at this instant (after warm-up), so that shards on
    /// several hosts start together (`--start-at`); None starts at once.
    pub start_at: Option<Instant>,
    /// Users who give up (`--cancel`): which requests are closed early, and when.
    pub cancel: Option<super::cancel::Cancel>,
}

/// Makes prompt text for rows that carry none.
pub trait Prompter: Send + Sync {
    /// Text of about `n` tokens, unique per `seed`.
    fn text(&self, seed: u64, n: u32) -> String;
    /// Text of exactly one prefix block of `n` tokens, the same for the same block id.
    fn block(&self, block_id: u64, n: u32) -> String;
}

/// The approximate-token prompter (see `trace::tokens`).
pub struct ApproxPrompter;

impl Prompter for ApproxPrompter {
    fn text(&self, seed: u64, n: u32) -> String {
        let mut s = String::new();
        synth_text(&mut s, seed, n);
        s
    }
    fn block(&self, block_id: u64, n: u32) -> String {
        let mut s = String::new();
        synth_text(&mut s, block_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB10C, n);
        s
    }
}

/// The shard (0..n) a row belongs to: whole sessions stay together; the split is a fixed
/// hash of the session id (or the request id), the same on every host.
pub fn shard_of(row: &TraceRow, n: u32) -> u32 {
    let key = match row.session_id {
        Some(s) => s ^ 0x5E55_1011,
        None => row.request_id,
    };
    (SplitMix(key).next_u64() % n.max(1) as u64) as u32
}

/// The tokenizer-exact prompter: text of exactly `n` tokens in the model's tokenizer (see
/// `trace::tokenizer`; prefix blocks are cached, as traces reuse them).
pub struct TokenizerPrompter(pub Arc<crate::trace::tokenizer::Tok>);

impl Prompter for TokenizerPrompter {
    fn text(&self, seed: u64, n: u32) -> String {
        self.0.exact_text(seed, n)
    }
    fn block(&self, block_id: u64, n: u32) -> String {
        self.0.exact_block(block_id, n).to_string()
    }
}

/// The prompt text replay sends for a trace row.
pub fn prompt_for(plan: &Plan, row: &TraceRow, seed: u64) -> String {
    if let Some(p) = &row.prompt {
        return p.clone();
    }
    if let Some(ids) = row.prefix_blocks.as_ref().filter(|v| !v.is_empty()) {
        let n = ids.len() as u32;
        let mut s = String::new();
        for (k, id) in ids.iter().enumerate() {
            let len = if (k as u32) + 1 < n {
                BLOCK_TOKENS
            } else {
                row.input_tokens
                    .saturating_sub(BLOCK_TOKENS.saturating_mul(n - 1))
                    .clamp(1, BLOCK_TOKENS)
            };
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&plan.prompter.block(*id, len));
        }
        return s;
    }
    let mut m = SplitMix(seed ^ row.request_id.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    plan.prompter.text(m.next_u64(), row.input_tokens)
}

#[derive(Default)]
struct Session {
    history: Vec<Message>,
    in_flight: bool,
    /// The session's first turn was never sent: its later turns are not sent either.
    dead: bool,
    last_arrival_s: f64,
    last_done: Option<Instant>,
    pending: VecDeque<TraceRow>,
}

struct Ctx {
    plan: Arc<Plan>,
    out: Feed<Record>,
    stop: Arc<Stop>,
    clock: &'static RunClock,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    sent: AtomicU64,
    max_lag_bits: AtomicU64,
    tracker: Arc<Tracker>,
    sessions: Mutex<HashMap<u64, Session>>,
    start: Instant,
    /// Open loop's `--max-in-flight`: every send (first requests and later turns) holds a permit.
    limit: Option<Arc<Semaphore>>,
    /// The load the measured requests delivered (from the timestamps their records carry).
    load: Mutex<LoadAcc>,
}

impl Ctx {
    fn us(&self, t: Instant) -> i64 {
        self.clock.unix_us(t)
    }

    fn emit(&self, r: Record) {
        if !r.warmup {
            self.load
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(r.scheduled_at_us, r.sent_at_us, r.done_at_us);
        }
        let _ = self.out.send_one(r);
    }

    fn not_sent(&self, row: &TraceRow, at: Option<Instant>, why: &str) {
        self.emit(Record::not_sent(row, at.map(|t| self.us(t)), why));
    }

    /// Claim one send against --max-requests; false when the limit is reached.
    fn claim(&self) -> bool {
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        match self.plan.max_requests {
            Some(m) if n >= m => {
                self.sent.fetch_sub(1, Ordering::SeqCst);
                false
            }
            _ => true,
        }
    }

    fn past_duration(&self, at: Instant) -> bool {
        match self.plan.duration {
            Some(d) => at >= self.start + d,
            None => false,
        }
    }

    fn note_lag(&self, ms: f64) {
        let mut cur = self.max_lag_bits.load(Ordering::Relaxed);
        while f64::from_bits(cur) < ms {
            match self
                .max_lag_bits
                .compare_exchange_weak(cur, ms.to_bits(), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
    }
}

/// Run the trace: rows arrive in batches on `rows`; one record per row goes to `out`.
/// `stop` ends scheduling (later rows are `not_sent`); its cancel ends in-flight requests
/// (`cancelled`). See [`crate::stop`].
pub async fn run(
    plan: Arc<Plan>,
    mut rows: mpsc::Receiver<Vec<TraceRow>>,
    out: Feed<Record>,
    stop: Arc<Stop>,
) -> Health {
    let clock = RunClock::global();
    let t_wall = Instant::now();
    // Warm-up first, from copies of the first rows.
    let mut first: VecDeque<Vec<TraceRow>> = VecDeque::new();
    if let Some(w) = plan.warmup
        && let Some(b) = rows.recv().await
    {
        let ctx = Arc::new(new_ctx(plan.clone(), out.clone(), stop.clone(), clock, Instant::now()));
        warmup(&ctx, &b, w).await;
        first.push_back(b);
    }
    if let Some(at) = plan.start_at {
        tokio::select! {
            _ = timer::sleep_until(at) => {}
            _ = stop.stopped() => {}
        }
    }
    let start_late_ms = plan.start_at.map(|at| ms_between(at, Instant::now()).max(0.0));
    let ctx = Arc::new(new_ctx(plan.clone(), out, stop.clone(), clock, Instant::now()));
    let source = Source { first, rows };
    match plan.mode {
        Mode::Open { time_scale, .. } => open_loop(ctx.clone(), source, time_scale).await,
        Mode::Closed { concurrency } => closed_loop(ctx.clone(), source, concurrency).await,
    }
    ctx.tracker.wait().await;
    let (u, s, rss) = crate::os::usage(false);
    Health {
        requests_sent: ctx.sent.load(Ordering::SeqCst),
        peak_in_flight: ctx.peak.load(Ordering::SeqCst) as u64,
        max_sched_lag_ms: f64::from_bits(ctx.max_lag_bits.load(Ordering::SeqCst)),
        wall_s: t_wall.elapsed().as_secs_f64(),
        cpu_user_s: u,
        cpu_sys_s: s,
        max_rss_mib: rss,
        start_late_ms,
        load: {
            let users = match plan.mode {
                Mode::Closed { concurrency } => Some(concurrency),
                Mode::Open { .. } => None,
            };
            ctx.load.lock().unwrap_or_else(|e| e.into_inner()).finish(users, None)
        },
    }
}

fn new_ctx(plan: Arc<Plan>, out: Feed<Record>, stop: Arc<Stop>, clock: &'static RunClock, start: Instant) -> Ctx {
    let plan_limit = match plan.mode {
        Mode::Open { max_in_flight, .. } => max_in_flight,
        Mode::Closed { .. } => None,
    };
    Ctx {
        plan,
        out,
        stop,
        clock,
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        max_lag_bits: AtomicU64::new(0f64.to_bits()),
        tracker: Arc::new(Tracker {
            n: AtomicUsize::new(0),
            done: Notify::new(),
        }),
        sessions: Mutex::new(HashMap::new()),
        start,
        limit: plan_limit.map(|n| Arc::new(Semaphore::new(n))),
        load: Mutex::new(LoadAcc::default()),
    }
}

struct Source {
    first: VecDeque<Vec<TraceRow>>,
    rows: mpsc::Receiver<Vec<TraceRow>>,
}

impl Source {
    async fn next_batch(&mut self) -> Option<Vec<TraceRow>> {
        if let Some(b) = self.first.pop_front() {
            return Some(b);
        }
        self.rows.recv().await
    }
}

async fn warmup(ctx: &Arc<Ctx>, rows: &[TraceRow], w: Warmup) {
    if rows.is_empty() {
        return;
    }
    let conc = match ctx.plan.mode {
        Mode::Closed { concurrency } => concurrency.max(1) as usize,
        Mode::Open { .. } => 1,
    };
    let next = Arc::new(AtomicU64::new(0));
    let until = match w {
        Warmup::For(d) => Some(Instant::now() + d),
        Warmup::Count(_) => None,
    };
    let count = match w {
        Warmup::Count(n) => n,
        Warmup::For(_) => u64::MAX,
    };
    let rows: Arc<Vec<TraceRow>> = Arc::new(rows.to_vec());
    let mut hs = Vec::new();
    for _ in 0..conc {
        let ctx = ctx.clone();
        let next = next.clone();
        let rows = rows.clone();
        hs.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= count || ctx.stop.is_stopped() || until.is_some_and(|u| Instant::now() >= u) {
                    break;
                }
                let row = rows[(k % rows.len() as u64) as usize].clone();
                let seed = ctx.plan.prompt_seed ^ 0x3A3A_3A3A ^ k;
                let (mut rec, _) = execute(&ctx, &row, Instant::now(), &[], seed).await;
                rec.warmup = true;
                ctx.emit(rec);
            }
        }));
    }
    for h in hs {
        let _ = h.await;
    }
}

/// Open loop: each row at `start + arrival_s * time_scale`, whatever is in flight.
async fn open_loop(ctx: Arc<Ctx>, mut src: Source, scale: f64) {
    // A small lead so the first request's deadline is not already past; with --start-at the
    // schedule starts exactly at the agreed instant.
    let t0 = match ctx.plan.start_at {
        Some(at) if at + Duration::from_millis(100) > Instant::now() => at,
        _ => Instant::now() + Duration::from_millis(5),
    };
    while let Some(batch) = src.next_batch().await {
        for row in batch {
            let at = t0 + Duration::from_secs_f64((row.arrival_s * scale).max(0.0));
            if ctx.stop.is_stopped() {
                ctx.not_sent(&row, Some(at), "run stopped before this request's time");
                continue;
            }
            if ctx.past_duration(at) {
                ctx.not_sent(&row, Some(at), "after --duration");
                continue;
            }
            // Later turns of a session wait for the previous turn's reply, not the clock.
            if let Some(sid) = row.session_id {
                let mut g = ctx.sessions.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = g.get_mut(&sid) {
                    if s.dead {
                        drop(g);
                        ctx.not_sent(&row, Some(at), "an earlier turn of this session was not sent");
                        continue;
                    }
                    if s.in_flight {
                        s.pending.push_back(row);
                        continue;
                    }
                    let think = (row.arrival_s - s.last_arrival_s).max(0.0) * scale;
                    let at2 = s
                        .last_done
                        .map(|d| d + Duration::from_secs_f64(think))
                        .unwrap_or(at)
                        .max(at);
                    s.in_flight = true;
                    s.last_arrival_s = row.arrival_s;
                    let history = s.history.clone();
                    drop(g);
                    spawn_turn(ctx.clone(), row, at2, history);
                    continue;
                }
                g.insert(
                    sid,
                    Session {
                        in_flight: true,
                        last_arrival_s: row.arrival_s,
                        ..Default::default()
                    },
                );
            }
            let permit = match admit(&ctx, at).await {
                Ok(p) => p,
                Err(why) => {
                    abandon_session(&ctx, row, at, why);
                    continue;
                }
            };
            let guard = ctx.tracker.enter();
            let c = ctx.clone();
            tokio::spawn(async move {
                let _g = guard;
                let _p = permit;
                run_turn(&c, row, at, Vec::new()).await;
            });
        }
    }
}

/// Send a later session turn at `at` (after its think time), from outside the dispatcher,
/// under the same admission rule as every other request ([`admit`]).
fn spawn_turn(ctx: Arc<Ctx>, row: TraceRow, at: Instant, history: Vec<Message>) {
    let guard = ctx.tracker.enter();
    tokio::spawn(async move {
        let _g = guard;
        let _p = match admit(&ctx, at).await {
            Ok(p) => p,
            Err(why) => {
                abandon_session(&ctx, row, at, why);
                return;
            }
        };
        run_turn(&ctx, row, at, history).await;
    });
}

/// The one admission rule of the open loop, for a first request and a session's later turn
/// alike: wait for the request's time, then for a `--max-in-flight` permit, both cut short
/// by stop; then check `--duration` and `--max-requests` (claiming one send). Err says why
/// the request is not sent.
async fn admit(ctx: &Ctx, at: Instant) -> Result<Option<OwnedSemaphorePermit>, &'static str> {
    tokio::select! {
        _ = timer::sleep_until(at) => {}
        _ = ctx.stop.stopped() => return Err("run stopped before this request's time"),
    }
    let permit = match &ctx.limit {
        Some(s) => tokio::select! {
            p = s.clone().acquire_owned() => p.ok(),
            _ = ctx.stop.stopped() => return Err("run stopped while held back by --max-in-flight"),
        },
        None => None,
    };
    if ctx.past_duration(at) {
        return Err("after --duration");
    }
    if !ctx.claim() {
        return Err("after --max-requests");
    }
    Ok(permit)
}

/// Record a turn (and any turns queued behind it) as not sent.
fn abandon_session(ctx: &Ctx, row: TraceRow, at: Instant, why: &str) {
    let rest: Vec<TraceRow> = match row.session_id {
        Some(sid) => {
            let mut g = ctx.sessions.lock().unwrap_or_else(|e| e.into_inner());
            g.get_mut(&sid).map(|s| {
                s.in_flight = false;
                s.dead = true;
                s.pending.drain(..).collect()
            })
        }
        .unwrap_or_default(),
        None => Vec::new(),
    };
    ctx.not_sent(&row, Some(at), why);
    for r in rest {
        ctx.not_sent(&r, None, why);
    }
}

/// Send one request (a session turn carries its history) and record it; then start the
/// session's next turn, if one is waiting.
async fn run_turn(ctx: &Arc<Ctx>, row: TraceRow, at: Instant, history: Vec<Message>) {
    let (rec, reply) = execute(ctx, &row, at, &history, ctx.plan.prompt_seed).await;
    let done = Instant::now();
    // A failed turn still lets the conversation go on (its reply is empty).
    ctx.emit(rec);
    let Some(sid) = row.session_id else { return };
    let next = {
        let mut g = ctx.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = g.get_mut(&sid) else { return };
        let prompt = prompt_for(&ctx.plan, &row, ctx.plan.prompt_seed);
        s.history.push(Message {
            role: "user",
            content: prompt,
        });
        s.history.push(Message {
            role: "assistant",
            content: reply.unwrap_or_default(),
        });
        s.last_done = Some(done);
        match s.pending.pop_front() {
            Some(n) => {
                let think = (n.arrival_s - s.last_arrival_s).max(0.0);
                s.last_arrival_s = n.arrival_s;
                Some((n, think, s.history.clone()))
            }
            None => {
                s.in_flight = false;
                None
            }
        }
    };
    if let Some((n, think, history)) = next {
        let scale = match ctx.plan.mode {
            Mode::Open { time_scale, .. } => time_scale,
            Mode::Closed { .. } => 1.0,
        };
        spawn_turn(ctx.clone(), n, done + Duration::from_secs_f64(think * scale), history);
    }
}

/// Closed loop: `n` users. Rows of one session go to one user, in turn order, with their
/// think times; other rows go to whichever user is free.
///
/// A user's request is due the moment that user's previous request ended (the run start for
/// its first), and `scheduled_at` says so: whatever the client takes to hand the user its next
/// row and send it shows as schedule lag. The hand-off is cheap: users pop rows from a queue
/// under a plain mutex held only to pop, and one dispatcher task refills it from the trace.
async fn closed_loop(ctx: Arc<Ctx>, mut src: Source, n: u32) {
    let n = n.max(1) as usize;
    // Sessions need whole conversations up front; plain rows stream.
    let mut units: VecDeque<Vec<TraceRow>> = VecDeque::new();
    let mut ended = true;
    if let Some(b) = src.next_batch().await {
        if b.iter().any(|r| r.session_id.is_some()) {
            let mut all = b;
            while let Some(more) = src.next_batch().await {
                all.extend(more);
            }
            units = group_sessions(all);
        } else {
            units.extend(b.into_iter().map(|r| vec![r]));
            ended = false;
        }
    }
    let q = Arc::new(Units {
        q: Mutex::new(UnitQueue { units, ended }),
        more: Notify::new(),
        want: Notify::new(),
        low: n.max(64),
    });
    // The dispatcher: keeps at least `low` units queued while the trace lasts.
    let dispatcher = {
        let q = q.clone();
        let stop = ctx.stop.clone();
        tokio::spawn(async move {
            loop {
                if q.lock().ended {
                    break;
                }
                if q.lock().units.len() >= q.low {
                    tokio::select! {
                        _ = q.want.notified() => {}
                        _ = stop.stopped() => break,
                    }
                    continue;
                }
                let b = tokio::select! {
                    b = src.next_batch() => b,
                    _ = stop.stopped() => break,
                };
                {
                    let mut g = q.lock();
                    match b {
                        Some(b) => g.units.extend(b.into_iter().map(|r| vec![r])),
                        None => g.ended = true,
                    }
                }
                q.more.notify_waiters();
            }
            src
        })
    };
    let mut hs = Vec::new();
    for _ in 0..n {
        let ctx = ctx.clone();
        let q = q.clone();
        hs.push(tokio::spawn(async move {
            // when this user became free: its next request is due then
            let mut free_at = ctx.start;
            loop {
                if ctx.stop.is_stopped() {
                    break;
                }
                let more = q.more.notified();
                tokio::pin!(more);
                more.as_mut().enable();
                let (unit, ended) = {
                    let mut g = q.lock();
                    let u = g.units.pop_front();
                    if g.units.len() < q.low && !g.ended {
                        q.want.notify_one();
                    }
                    (u, g.ended)
                };
                match unit {
                    Some(unit) => free_at = play_unit(&ctx, unit, free_at).await,
                    None if ended => break,
                    None => {
                        tokio::select! {
                            _ = &mut more => {}
                            _ = ctx.stop.stopped() => break,
                        }
                    }
                }
            }
        }));
    }
    for h in hs {
        let _ = h.await;
    }
    // The users are done: the trace ended (so did the dispatcher) or the run was stopped (the
    // dispatcher stops too). Whatever is left was never sent.
    let mut src = dispatcher.await.ok();
    let left: Vec<Vec<TraceRow>> = q.lock().units.drain(..).collect();
    for u in left {
        for r in u {
            ctx.not_sent(&r, None, "run stopped before this request was sent");
        }
    }
    if let Some(src) = src.as_mut() {
        while let Some(b) = src.next_batch().await {
            for r in b {
                ctx.not_sent(&r, None, "run stopped before this request was sent");
            }
        }
    }
}

/// The closed loop's queue of units (a row, or a whole session).
struct Units {
    q: Mutex<UnitQueue>,
    /// Units were added, or the trace ended.
    more: Notify,
    /// The queue ran low.
    want: Notify,
    /// Refill below this many units.
    low: usize,
}

struct UnitQueue {
    units: VecDeque<Vec<TraceRow>>,
    /// The trace has no more rows.
    ended: bool,
}

impl Units {
    fn lock(&self) -> std::sync::MutexGuard<'_, UnitQueue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn group_sessions(rows: Vec<TraceRow>) -> VecDeque<Vec<TraceRow>> {
    let mut order: Vec<Vec<TraceRow>> = Vec::new();
    let mut idx: HashMap<u64, usize> = HashMap::new();
    for r in rows {
        match r.session_id {
            Some(s) => match idx.get(&s) {
                Some(&i) => order[i].push(r),
                None => {
                    idx.insert(s, order.len());
                    order.push(vec![r]);
                }
            },
            None => order.push(vec![r]),
        }
    }
    for u in &mut order {
        u.sort_by(|a, b| a.turn.cmp(&b.turn).then(a.arrival_s.total_cmp(&b.arrival_s)));
    }
    order.into()
}

/// Play one unit for a user that became free at `free_at` (its first request is due then);
/// returns when the user is free again (its last request ended).
async fn play_unit(ctx: &Arc<Ctx>, unit: Vec<TraceRow>, free_at: Instant) -> Instant {
    let mut history: Vec<Message> = Vec::new();
    let mut prev: Option<(f64, Instant)> = None;
    let mut it = unit.into_iter();
    while let Some(row) = it.next() {
        let mut at = free_at;
        if let Some((arr, done)) = prev {
            let think = Duration::from_secs_f64((row.arrival_s - arr).max(0.0));
            at = done + think;
            tokio::select! {
                _ = timer::sleep_until(at) => {}
                _ = ctx.stop.stopped() => {}
            }
        }
        if ctx.stop.is_stopped() || ctx.past_duration(at) || !ctx.claim() {
            let why = if ctx.stop.is_stopped() {
                "run stopped before this request was sent"
            } else {
                "after --duration or --max-requests"
            };
            ctx.not_sent(&row, Some(at), why);
            for r in it.by_ref() {
                ctx.not_sent(&r, None, why);
            }
            return prev.map_or(free_at, |p| p.1);
        }
        let _g = ctx.tracker.enter();
        let (rec, reply) = execute(ctx, &row, at, &history, ctx.plan.prompt_seed).await;
        let done = Instant::now();
        ctx.emit(rec);
        if row.session_id.is_some() {
            history.push(Message {
                role: "user",
                content: prompt_for(&ctx.plan, &row, ctx.plan.prompt_seed),
            });
            history.push(Message {
                role: "assistant",
                content: reply.unwrap_or_default(),
            });
        }
        prev = Some((row.arrival_s, done));
    }
    prev.map_or(free_at, |p| p.1)
}

/// Send one request and measure it. Returns the record and, for sessions, the reply text.
async fn execute(
    ctx: &Arc<Ctx>,
    row: &TraceRow,
    scheduled: Instant,
    history: &[Message],
    seed: u64,
) -> (Record, Option<String>) {
    let (mut rec, reply) = measure(ctx, row, scheduled, history, seed).await;
    // a server may echo what it was sent (an API key in a 401 message): never record it
    if let Some(e) = &rec.error {
        rec.error = Some(ctx.plan.client.redact(e));
    }
    (rec, reply)
}

async fn measure(
    ctx: &Arc<Ctx>,
    row: &TraceRow,
    scheduled: Instant,
    history: &[Message],
    seed: u64,
) -> (Record, Option<String>) {
    let plan = &ctx.plan;
    let prompt = prompt_for(plan, row, seed);
    let body = Bytes::from(build_body(plan.api, &plan.opts, history, &prompt, row.output_tokens));
    drop(prompt);
    let mut rec = Record::not_sent(row, Some(ctx.us(scheduled)), "");
    rec.error = None;
    let capture = row.session_id.is_some();

    let n = ctx.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    ctx.peak.fetch_max(n, Ordering::SeqCst);
    struct Dec<'a>(&'a AtomicUsize);
    impl Drop for Dec<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _dec = Dec(&ctx.in_flight);

    let hard_deadline = Instant::now() + plan.timeout;
    let started = tokio::select! {
        r = plan.client.stream(plan.api.path(), &body) => r,
        _ = tokio::time::sleep_until(hard_deadline.into()) => {
            let now = Instant::now();
            rec.status = Status::Timeout;
            rec.error = Some(format!("no response headers within --timeout {:?}", plan.timeout));
            rec.done_at_us = Some(ctx.us(now));
            return (rec, None);
        }
        _ = ctx.stop.cancelled() => {
            rec.status = Status::Cancelled;
            rec.error = Some("cancelled before the response headers (stop/grace ended)".into());
            rec.done_at_us = Some(ctx.us(Instant::now()));
            return (rec, None);
        }
    };
    drop(body);
    let mut started = match started {
        Ok(s) => s,
        Err(e) => {
            rec.status = match e {
                SendError::Connect { .. } | SendError::Tls { .. } => Status::ConnectError,
                SendError::BeforeHeaders(_) => Status::StreamError,
            };
            rec.error = Some(e.to_string());
            rec.done_at_us = Some(ctx.us(Instant::now()));
            return (rec, None);
        }
    };
    let sent = started.sent_at;
    let cu = started.conn_use;
    rec.connection = Some(cu.kind);
    rec.connect_ms = cu.connect_ms;
    rec.tls_ms = cu.tls_ms;
    let lag = ms_between(scheduled, sent).max(0.0);
    ctx.note_lag(lag);
    rec.sent_at_us = Some(ctx.us(sent));
    rec.sched_lag_ms = Some(lag);
    let status = started.status;
    rec.http_status = Some(status);
    let deadline = sent + plan.timeout;
    let ttft_deadline = plan.ttft_timeout.map(|t| sent + t);

    if !(200..300).contains(&status) {
        // Read a bounded error body.
        let body = tokio::time::timeout_at(deadline.into(), started.read_to_end(65536))
            .await
            .map(|(b, _)| b)
            .unwrap_or_default();
        rec.status = Status::HttpError;
        rec.error = Some(http_error_text(status, &body));
        rec.done_at_us = Some(ctx.us(Instant::now()));
        return (rec, None);
    }

    let mut framer = Framer::with_limit(plan.api.framing(), plan.max_event_bytes);
    let mut st = StreamState::new(capture);
    st.reserve(row.output_tokens);
    let api = plan.api;
    let mut end_status = Status::Ok;
    let mut end_error: Option<String> = None;
    let mut clean_end = false;
    // One timer and one cancel watch for the whole stream, not one per frame: registering and
    // dropping them for every chunk was a tenth of replay's CPU at high token rates.
    let limit_now = |st: &StreamState| match ttft_deadline {
        Some(t) if !st.has_content() => t.min(deadline),
        _ => deadline,
    };
    // --cancel: the moment this request's user gives up (from sending, or from the first
    // token once it has come), on the same timer as the deadlines
    let give_up = plan
        .cancel
        .as_ref()
        .and_then(|c| c.draw(plan.prompt_seed, row.request_id));
    let give_up_at = |st: &StreamState| -> Option<Instant> {
        let g = give_up?;
        if g.from_first_token {
            st.chunk_ms
                .first()
                .map(|ms| sent + Duration::from_secs_f64(ms / 1e3) + g.after)
        } else {
            Some(sent + g.after)
        }
    };
    let limit_now = |st: &StreamState| match give_up_at(st) {
        Some(u) => limit_now(st).min(u),
        None => limit_now(st),
    };
    let mut armed = limit_now(&st);
    let sleep = tokio::time::sleep_until(armed.into());
    tokio::pin!(sleep);
    let cancel = ctx.stop.cancelled();
    tokio::pin!(cancel);
    loop {
        let limit = limit_now(&st);
        if limit != armed {
            armed = limit;
            sleep.as_mut().reset(limit.into());
        }
        let frame = tokio::select! {
            f = started.data() => f,
            _ = &mut sleep => {
                if let (Some(g), Some(_)) = (give_up, give_up_at(&st).filter(|u| *u <= Instant::now())) {
                    end_status = Status::Cancelled;
                    end_error = Some(format!(
                        "the client gave up (--cancel) {:.0} ms after {}",
                        g.after.as_secs_f64() * 1e3,
                        if g.from_first_token { "the first token" } else { "sending" }
                    ));
                    break;
                }
                end_status = Status::Timeout;
                end_error = Some(if !st.has_content() && ttft_deadline.is_some_and(|t| t <= deadline) {
                    format!("no content within --ttft-timeout {:?}", plan.ttft_timeout.unwrap_or_default())
                } else {
                    format!("response not complete within --timeout {:?}", plan.timeout)
                });
                break;
            }
            _ = &mut cancel => {
                end_status = Status::Cancelled;
                end_error = Some("cancelled mid-stream (stop/grace ended)".into());
                break;
            }
        };
        match frame {
            None => {
                clean_end = true;
                break;
            }
            Some(Err(e)) => {
                if !st.done {
                    end_status = Status::StreamError;
                    end_error = Some(format!("connection failed mid-stream: {e}"));
                }
                break;
            }
            Some(Ok(data)) => {
                let t_ms = ms_between(sent, Instant::now());
                let r = framer.feed(data, &mut |ev| st.on_event(api, ev, t_ms));
                if let Err(e) = r {
                    end_status = Status::StreamError;
                    end_error = Some(e.to_string());
                    break;
                }
                if st.done && st.error.is_some() {
                    break;
                }
            }
        }
    }
    let end = Instant::now();
    if clean_end {
        let t_ms = ms_between(sent, end);
        let _ = framer.finish(&mut |ev| st.on_event(api, ev, t_ms));
        plan.client.release_stream(&mut started);
    }
    drop(started);
    if end_status == Status::Ok {
        if let Some(e) = st.error.take() {
            end_status = Status::StreamError;
            end_error = Some(e);
        } else if !st.has_content() {
            end_status = Status::StreamError;
            end_error = Some("the stream ended without any generated content".into());
        }
    }
    rec.cancel_after_ms = give_up_at(&st).map(|u| ms_between(sent, u));
    rec.status = end_status;
    rec.error = end_error;
    rec.done_at_us = Some(ctx.us(end));
    let (out_tokens, source) = st.output_tokens();
    rec.output_tokens = out_tokens;
    rec.output_tokens_source = source;
    rec.server_input_tokens = st.usage_prompt;
    rec.cached_tokens = st.usage_cached;
    rec.finish_reason = st.finish_reason.take();
    let split = st.reasoning();
    rec.ttfr_ms = split.ttfr_ms;
    rec.ttfa_ms = split.ttfa_ms;
    rec.reasoning_tokens = split.reasoning_tokens;
    rec.chunk_tokens = st.take_chunk_tokens();
    if let (Some(&first), Some(&last)) = (st.chunk_ms.first(), st.chunk_ms.last()) {
        rec.ttft_ms = Some(first);
        rec.e2e_ms = Some(last);
        rec.ttft_sched_ms = Some(first + lag);
        rec.e2e_sched_ms = Some(last + lag);
        rec.first_token_at_us = Some(ctx.us(sent) + (first * 1000.0).round() as i64);
        rec.tpot_ms = tpot(first, last, out_tokens);
    }
    rec.chunk_times_ms = std::mem::take(&mut st.chunk_ms);
    let reply = st.text.take();
    (rec, reply)
}
