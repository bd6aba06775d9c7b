//! sweep: find the capacity of an endpoint at an SLO, the highest open-loop request rate at
//! which the SLO holds, by a search whose every step is an ordinary replay run (the client's
//! scheduler, in process) of the trace re-timed to the step's rate.
//!
//! The search itself (SLO, bracket and bisection, the saturation rule, the interval, the
//! cost) is [`crate::capacity`]; this module runs the steps and writes
//! `DIR/step=N/requests.parquet` and `DIR/capacity.parquet` (see [`crate::schema::capacity`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use crate::capacity::{self, Obs, Phase, Saturation, Search, Signal, Slo};
use crate::cli::{CheckFailed, TlsArgs};
use crate::client::http::Client;
use crate::client::probe::probe;
use crate::client::protocol::{Api, RequestOpts};
use crate::client::run::{self as scheduler, ApproxPrompter, Mode, Plan};
use crate::enginemon;
use crate::io::Sink;
use crate::meta::{Meta, RunClock};
use crate::monitor::scrape;
use crate::recorder::{self, Dest, Recorder, Spec};
use crate::schema::{CAPACITY, Capacity, CapacityStep, REQUESTS, Record, Rows, RunLabels, Status};
use crate::stats::LoadAcc;
use crate::stop::{self, Second, Stop, StopReason};
use crate::trace::{TraceReader, TraceRow};

pub const EXAMPLES: &str = "\
Examples:
  # capacity of mock-engine at p99 TTFT < 500 ms and p99 TPOT < 50 ms, Poisson arrivals
  mock-engine --port 8000 --slots 4 --ttft-ms 50 --itl-ms 10 &
  tracegen poisson --rate 1 --count 2000 --input-len 128 --output-len 16 --seed 1 -o t.parquet
  sweep t.parquet --url http://127.0.0.1:8000 --slo ttft_p99=500ms,tpot_p99=50ms --step 20s -o runs/cap
  # the attainment form (goodput): 99% of requests meet every limit; 3 repeats for a t-interval
  sweep t.parquet --engine vllm --slo ttft=500ms,tpot=50ms --attainment 0.99 --repeats 3 -o runs/vllm-cap
  # the engine's waiting-requests gauge as saturation evidence (mock-engine exports vLLM's)
  sweep t.parquet --url http://127.0.0.1:8000 --metrics-url http://127.0.0.1:8000 --slo ttft_p99=500ms -o runs/cap2
  # priced: $2.50 per GPU-hour on 2 GPUs (or cost_per_gpu_hour in configs/engines.toml)
  sweep t.parquet --engine sglang --slo ttft_p99=1s --gpu-hour-cost 2.5 --gpus 2 -o runs/sglang-cap
  agg runs/cap                       # every request of every step, one group per step rate
  duckdb -c \"SELECT label, capacity_rps, capacity_rps_ci_lo, capacity_rps_ci_hi FROM 'runs/cap/capacity.parquet'\"

The trace (any tracegen output: synthetic, prompt sets, imported production traces) is re-timed
to each step's rate (its arrival pattern kept, its times scaled; repeated when too short) and cut
at --warmup + --step. Requests due in the first --warmup are marked warmup and not scored;
latencies are measured from the schedule (ttft_sched_ms, e2e_sched_ms), and a request that did
not end ok misses every limit.
The search: short probes (--probe of the warm-up and of the step, at least 2 s and 3 requests
measured; a probe that cannot hold 3 requests in --step is a full-length step) grow the rate by
--grow squared from --start-rate until one fails (or shrink it until one passes),
and one more probe at the geometric mean brings the bracket to --grow wide; inside it every
step is full-length: bisection at the geometric mean until (failing - passing) / passing <=
--tolerance, then an end of the bracket measured only by a probe is confirmed at full length
(a probe can pass above the knee only because it was too short to build a queue: a
full-length step overrules it).
--probe 1: every step full-length, growing by --grow.
A step is stopped early, counted as failing, when it saturates: a queue climbs steadily over
at least 1.5 s (least-squares slope >= 10% of the offered rate, rise >= 5 requests, t >= 4,
while the server finished under 95% of the offered rate); the queues are the engine's
waiting-requests gauge (with --metrics-url, or --engine with metrics in engines.toml;
saturated_by engine_queue) and the client's backlog, requests due minus done (in_flight). It
is also stopped once more requests have missed than the SLO allows of the planned ones
(decided). A client-bound step (under 95% of the asked rate sent) never counts as passing.
The capacity is where the SLO score (worst percentile / limit, or missed share / allowed
share; <= 1 meets) crosses 1 between the final passing and failing steps; its 95% interval
is a t-interval over --repeats runs of that bracket, or with one run a bootstrap of the two
steps' requests. Progress goes to stderr, one line per step; DIR/capacity.parquet holds the
answer (one row: the capacity contract, `sweep --print-schema`).";

#[derive(Parser)]
#[command(name = "sweep", version, about = "Find the highest open-loop request rate an endpoint serves within an SLO (its capacity), with a 95% interval and a price", after_help = EXAMPLES)]
pub struct Args {
    /// Trace to re-time at each step's rate (Parquet or Arrow IPC; - for stdin)
    #[arg(default_value = "-")]
    pub trace: String,
    /// Base URL of the server, e.g. http://127.0.0.1:8000
    #[arg(long)]
    pub url: Option<String>,
    /// Use the engine started by `engine-up NAME`: its URL, model and quant
    #[arg(long, value_name = "NAME")]
    pub engine: Option<String>,
    /// Directory of engine-up state files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    pub state_dir: PathBuf,
    /// engines.toml to read cost_per_gpu_hour from [default: the built-in configs/engines.toml]
    #[arg(long, value_name = "FILE")]
    pub engines_config: Option<PathBuf>,
    /// Protocol: chat, completions, tgi, sglang, llamacpp, ollama, or auto
    #[arg(long, default_value = "auto")]
    pub api: String,
    /// Model name to send [default: the engine's, else the first the server lists]
    #[arg(long)]
    pub model: Option<String>,
    /// Label of the search (a column of every row) [default: the engine name, else "run"]
    #[arg(long)]
    pub label: Option<String>,
    /// Quantization variant to record
    #[arg(long)]
    pub quant: Option<String>,
    /// The SLO: percentile limits (ttft_p99=500ms,tpot_p99=50ms) or, with --attainment,
    /// limits every request must meet (ttft=500ms,tpot=50ms); latencies ttft, tpot, e2e
    #[arg(long, value_name = "LIMITS", required_unless_present = "print_schema")]
    pub slo: Option<String>,
    /// With per-request limits: the share (0-1) of requests that must meet every limit
    #[arg(long, value_name = "SHARE")]
    pub attainment: Option<f64>,
    /// Stop when (failing - passing) / passing is at most this
    #[arg(long, default_value_t = 0.05)]
    pub tolerance: f64,
    /// First rate tried, req/s
    #[arg(long, value_name = "RPS", default_value_t = 1.0)]
    pub start_rate: f64,
    /// Lowest rate tried, req/s
    #[arg(long, value_name = "RPS", default_value_t = 0.05)]
    pub min_rate: f64,
    /// Highest rate tried, req/s
    #[arg(long, value_name = "RPS", default_value_t = 10_000.0)]
    pub max_rate: f64,
    /// Factor between bracketing steps: probes grow (or shrink) by its square, full-length
    /// steps (with --probe 1) by it
    #[arg(long, default_value_t = 2.0)]
    pub grow: f64,
    /// Length of a bracketing probe as a share of --warmup and of --step (its measured part
    /// at least 2 s, so that the saturation rule can see it); the knee's bracket, no wider
    /// than --grow, is then searched with full-length steps. 1: every step full-length
    #[arg(long, value_name = "SHARE", default_value_t = 0.25)]
    pub probe: f64,
    /// Measured length of each step (after --warmup)
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "30s")]
    pub step: Duration,
    /// Start of each step whose requests are sent but not scored (marked warmup)
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "5s")]
    pub warmup: Duration,
    /// Run the final bracket (passing and failing step) this many times in all; 2 or more
    /// give a t-interval across runs, 1 a bootstrap interval
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub repeats: u32,
    /// Seed of the prompt text and the bootstrap (the same seed and trace give the same steps
    /// and the same request bytes); each step's prompts are drawn afresh from it and the step's
    /// number, so an engine's prefix cache never carries one step's prompts into the next
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Price of one GPU-hour in USD [default: the engine's cost_per_gpu_hour in engines.toml]
    #[arg(long, value_name = "USD")]
    pub gpu_hour_cost: Option<f64>,
    /// GPUs serving the endpoint
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub gpus: u32,
    /// The engine's Prometheus metrics URL (http://HOST:PORT or a full path): its
    /// waiting-requests gauge is sampled during each step as saturation evidence
    /// [default: with --engine, the engine's metrics URL from engines.toml, if it has one]
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    /// Never stop a step early (no saturation or decided-failure stop)
    #[arg(long)]
    pub no_early_stop: bool,
    /// After a step's schedule ends, how long its requests may still finish before they are
    /// cancelled (their rows say cancelled and miss the SLO)
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "30s")]
    pub drain: Duration,
    /// Whole-request timeout, from sent_at
    #[arg(long, value_name = "D", value_parser = crate::units::duration_arg, default_value = "5m")]
    pub timeout: Duration,
    /// Client threads
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Output directory: DIR/step=N/requests.parquet and DIR/capacity.parquet
    #[arg(short = 'o', long, value_name = "DIR", required_unless_present = "print_schema")]
    pub output: Option<PathBuf>,
    /// Print the capacity contract (columns, types, units) and exit
    #[arg(long)]
    pub print_schema: bool,
    /// No progress lines
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run sweep (taking SIGINT and SIGTERM: the running step is cancelled and the search ends
/// with what it has).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let halt = Stop::new();
    let _ = stop::block_signals();
    let _w = stop::watch_signals(&halt, "sweep", Second::Cancel);
    run_with(args, halt)
}

/// The trace, re-timed: its rows (arrival from 0) and its own rate.
struct Base {
    rows: Vec<TraceRow>,
    span_s: f64,
    rate: f64,
}

impl Base {
    fn load(path: &str) -> anyhow::Result<Base> {
        let mut rows = TraceReader::open(path)?.read_all()?;
        if rows.len() < 2 {
            bail!(
                "the trace {path} has {} rows; sweep re-times a trace of many requests",
                rows.len()
            );
        }
        rows.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        let t0 = rows[0].arrival_s;
        for r in &mut rows {
            r.arrival_s -= t0;
        }
        let span_s = rows[rows.len() - 1].arrival_s;
        if span_s.is_nan() || span_s <= 0.0 {
            bail!(
                "the trace's arrivals span no time (every request at t=0, a batch trace): give sweep one with arrival times (tracegen poisson, constant, gamma or an import)"
            );
        }
        let rate = (rows.len() - 1) as f64 / span_s;
        Ok(Base { rows, span_s, rate })
    }

    /// The step's rows: the first k = ceil(rate x len_s) arrivals (the trace repeated when
    /// too short), scaled so that the (k+1)-th would fall at `len_s`: the step offers
    /// exactly `rate` on average over its length, whatever the trace's own rate over its
    /// first rows. Request ids 0, 1, 2, ... in arrival order.
    fn at_rate(&self, rate: f64, len_s: f64) -> Vec<TraceRow> {
        let period = self.span_s + 1.0 / self.rate;
        let n = self.rows.len();
        let k = ((rate * len_s).ceil() as usize).max(1);
        let arrival = |j: usize| self.rows[j % n].arrival_s + (j / n) as f64 * period;
        // arrivals all at t=0 up to k (a burst at the start): the trace's own rate instead
        let scale = if arrival(k) > 0.0 {
            len_s / arrival(k)
        } else {
            self.rate / rate
        };
        let sessions = self.rows.iter().filter_map(|r| r.session_id).max().map_or(0, |m| m + 1);
        (0..k)
            .map(|j| {
                let r = &self.rows[j % n];
                let mut row = r.clone();
                row.arrival_s = arrival(j) * scale;
                row.request_id = j as u64;
                row.session_id = r.session_id.map(|s| s + (j / n) as u64 * sessions);
                row
            })
            .collect()
    }
}

/// What the search needs to run steps.
struct Ctx {
    rt: tokio::runtime::Runtime,
    client: Arc<Client>,
    api: Api,
    opts: RequestOpts,
    labels: RunLabels,
    meta: Meta,
    base: Base,
    slo: Slo,
    dir: PathBuf,
    halt: Arc<Stop>,
    warmup_s: f64,
    step_s: f64,
    drain: Duration,
    timeout: Duration,
    seed: u64,
    early: bool,
    quiet: bool,
    probe: f64,
    /// The engine's metrics endpoint, when it has a waiting-requests gauge.
    metrics: Option<Metrics>,
}

/// Where the engine's waiting-requests gauge is scraped.
struct Metrics {
    client: Arc<Client>,
    path: String,
}

/// The shortest measured part of a probe, s: the saturation rule needs 1.5 s of samples.
const PROBE_MIN_S: f64 = 2.0;
/// The fewest requests a probe's measured part is planned to hold: at low rates a probe is
/// lengthened so that it sends some (a probe as long as the step is a full-length step). A
/// probe only brackets; the ends of the final bracket are measured at full length.
const PROBE_MIN_REQUESTS: f64 = 3.0;
/// How often the engine's metrics are scraped during a step.
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
/// Ticks (of 100 ms) a backlog verdict waits for the engine's gauge to catch up.
const GAUGE_LAG: u32 = 3;

/// A step run: its contract entry and its scored requests.
struct StepRun {
    step: CapacityStep,
    obs: Vec<Obs>,
}

/// What the writer thread learns of a step's records as they arrive.
#[derive(Default)]
struct Live {
    done: u64,
    obs: Vec<Obs>,
    misses: Vec<u64>,
    misses_any: u64,
    load: LoadAcc,
    first_sent_us: Option<i64>,
    last_done_us: Option<i64>,
}

fn obs_of(r: &Record) -> Obs {
    Obs {
        ok: r.status == Status::Ok,
        ttft_ms: r.ttft_sched_ms,
        tpot_ms: r.tpot_ms,
        e2e_ms: r.e2e_sched_ms,
        output_tokens: r.output_tokens,
    }
}

impl Live {
    fn add(&mut self, r: &Record, warm_n: u64, slo: &Slo) {
        self.done += 1;
        if r.request_id < warm_n || r.status == Status::NotSent {
            return;
        }
        let o = obs_of(r);
        if self.misses.len() < slo.limits.len() {
            self.misses.resize(slo.limits.len(), 0);
        }
        for (i, l) in slo.limits.iter().enumerate() {
            let v = match l.lat {
                capacity::Lat::Ttft => o.ttft_ms,
                capacity::Lat::Tpot => o.tpot_ms,
                capacity::Lat::E2e => o.e2e_ms,
            };
            if !o.ok || v.is_some_and(|v| v > l.ms) {
                self.misses[i] += 1;
            }
        }
        if !o.meets(slo) {
            self.misses_any += 1;
        }
        self.load.add(r.scheduled_at_us, r.sent_at_us, r.done_at_us);
        if let Some(s) = r.sent_at_us {
            self.first_sent_us = Some(self.first_sent_us.map_or(s, |f| f.min(s)));
        }
        if let Some(d) = r.done_at_us {
            self.last_done_us = Some(self.last_done_us.map_or(d, |l| l.max(d)));
        }
        self.obs.push(o);
    }
}

impl Ctx {
    /// The measured length of a probe at `rate`: --probe of --step, at least [`PROBE_MIN_S`]
    /// and long enough for [`PROBE_MIN_REQUESTS`], at most --step.
    fn probe_s(&self, rate: f64) -> f64 {
        (self.step_s * self.probe)
            .max(PROBE_MIN_S)
            .max(PROBE_MIN_REQUESTS / rate)
            .min(self.step_s)
    }

    /// Run step `n` at `rate`: full-length (--warmup + --step), or a probe (--probe of the
    /// warm-up, and [`Ctx::probe_s`] measured).
    fn run_step(&self, n: u32, rate: f64, phase: Phase, probe: bool) -> anyhow::Result<StepRun> {
        let (warmup_s, step_s) = if probe {
            (self.warmup_s * self.probe, self.probe_s(rate))
        } else {
            (self.warmup_s, self.step_s)
        };
        let planned_s = warmup_s + step_s;
        let rows = self.base.at_rate(rate, planned_s);
        let warm_n = rows.iter().filter(|r| r.arrival_s < warmup_s).count() as u64;
        let planned = rows.len() as u64 - warm_n;
        let arrivals: Vec<f64> = rows.iter().map(|r| r.arrival_s).collect();
        let path = self.dir.join(format!("step={n}")).join("requests.parquet");
        std::fs::create_dir_all(path.parent().expect("a step file has a directory"))
            .with_context(|| format!("cannot create {}", path.display()))?;
        let dest = Dest::new(Some(&path), None);
        recorder::check(&dest, "sweep")?;
        let mut meta = self.meta.clone();
        meta.set("servebench.sweep.step", n.to_string());
        meta.set("servebench.sweep.phase", phase.name());
        meta.set("servebench.sweep.probe", probe.to_string());
        meta.set("servebench.sweep.rate_rps", format!("{rate}"));
        meta.set("servebench.mode", format!("open loop, {rate} req/s (sweep step {n})"));
        let labels = RunLabels {
            rate_rps: Some(rate),
            ..self.labels.clone()
        };
        let live = Arc::new(Mutex::new(Live::default()));
        let slo = self.slo.clone();
        let seen = live.clone();
        let spec = Spec {
            schema: REQUESTS.schema(),
            batch_rows: crate::client::output::BATCH_ROWS,
            encode: Box::new(move |rows: &[Record]| {
                let rows: Vec<Record> = rows
                    .iter()
                    .map(|r| Record {
                        warmup: r.warmup || r.request_id < warm_n,
                        ..r.clone()
                    })
                    .collect();
                Record::encode(&rows, &labels)
            }),
            observe: Some(Box::new(move |r: &Record| {
                seen.lock().unwrap_or_else(|e| e.into_inner()).add(r, warm_n, &slo)
            })),
        };
        let stop = Stop::with_grace(self.drain);
        let rec = Recorder::start_with("sweep", dest, &meta, spec, Some(&stop))?;
        let feed = rec.feed();
        let plan = Arc::new(Plan {
            client: self.client.clone(),
            api: self.api,
            opts: self.opts.clone(),
            mode: Mode::Open {
                time_scale: 1.0,
                max_in_flight: None,
            },
            warmup: None,
            duration: None,
            max_requests: None,
            timeout: self.timeout,
            ttft_timeout: None,
            // fresh prompt text every step (the seed and the step's number): an engine's prefix
            // cache must not serve one step's prompts to the next and inflate its capacity
            prompt_seed: step_prompt_seed(self.seed, n),
            max_event_bytes: 16 << 20,
            prompter: Arc::new(ApproxPrompter),
            start_at: None,
            cancel: None,
        });
        let hash = trace_hash(&rows);
        let t0 = Instant::now();
        let stopped: Arc<Mutex<Option<&'static str>>> = Arc::new(Mutex::new(None));
        let signal: Arc<Mutex<Option<Signal>>> = Arc::new(Mutex::new(None));
        // the engine's waiting gauge, (s into the step, value), filled by a scrape task
        let waiting: Arc<Mutex<Vec<(f64, f64)>>> = Arc::new(Mutex::new(Vec::new()));
        let health = self.rt.block_on(async {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                for chunk in rows.chunks(1024) {
                    if tx.send(chunk.to_vec()).await.is_err() {
                        break;
                    }
                }
            });
            let scraper = self.metrics.as_ref().map(|m| {
                let (client, path, waiting) = (m.client.clone(), m.path.clone(), waiting.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(SCRAPE_EVERY);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        tick.tick().await;
                        let sent = t0.elapsed().as_secs_f64();
                        if let Ok(v) = scrape::common_once(&client, &path, Duration::from_secs(1)).await
                            && let Some((_, w)) = v.get(enginemon::WAITING)
                        {
                            // the gauge's time: the middle of the scrape
                            let at = (sent + t0.elapsed().as_secs_f64()) / 2.0;
                            waiting.lock().unwrap_or_else(|e| e.into_inner()).push((at, *w));
                        }
                    }
                })
            });
            let watch = {
                let (live, stop, stopped, signal, halt, slo, waiting) = (
                    live.clone(),
                    stop.clone(),
                    stopped.clone(),
                    signal.clone(),
                    self.halt.clone(),
                    self.slo.clone(),
                    waiting.clone(),
                );
                let (early, drain_s, gauge) = (self.early, self.drain.as_secs_f64(), self.metrics.is_some());
                tokio::spawn(async move {
                    let mut sat = Saturation::default();
                    let mut gauge_seen = 0;
                    let mut waited = 0;
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    loop {
                        tick.tick().await;
                        let e = t0.elapsed().as_secs_f64();
                        let (done, misses, any) = {
                            let l = live.lock().unwrap_or_else(|e| e.into_inner());
                            (l.done, l.misses.clone(), l.misses_any)
                        };
                        let due = arrivals.partition_point(|a| *a <= e) as u64;
                        // the queues are sampled from the warm-up's end to the schedule's
                        // (after it the queue can only drain); the gauge from its last
                        // scrape before the warm-up ended
                        if e >= warmup_s && e <= planned_s {
                            sat.push(e, due.saturating_sub(done) as f64, done as f64);
                        }
                        {
                            let w = waiting.lock().unwrap_or_else(|e| e.into_inner());
                            let from = w.partition_point(|x| x.0 < warmup_s).saturating_sub(1);
                            let to = w.partition_point(|x| x.0 <= planned_s);
                            if from < to && w.len() != gauge_seen {
                                sat.set_waiting(&w[from..to]);
                            }
                            gauge_seen = w.len();
                        }
                        let mut by = if early { sat.saturated_by(rate) } else { None };
                        // the gauge's samples lag the backlog's by up to a scrape: when only
                        // the backlog climbs yet, wait up to GAUGE_LAG ticks for the gauge, so
                        // that a step where both climb names the engine's queue
                        if gauge && by == Some(Signal::InFlight) && waited < GAUGE_LAG {
                            waited += 1;
                            by = None;
                        }
                        let why = if halt.is_stopped() {
                            Some("interrupted")
                        } else if let Some(b) = by {
                            *signal.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
                            Some("saturated")
                        } else if early
                            && capacity::decided_fail(
                                &slo,
                                planned,
                                if slo.attainment.is_some() {
                                    std::slice::from_ref(&any)
                                } else {
                                    &misses
                                },
                            )
                        {
                            Some("decided")
                        } else if e > planned_s + drain_s {
                            Some("drain")
                        } else {
                            None
                        };
                        if let Some(w) = why {
                            *stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
                            stop.request(StopReason::Requested);
                            stop.cancel();
                            return;
                        }
                    }
                })
            };
            let h = scheduler::run(plan, rx, feed, stop.clone()).await;
            watch.abort();
            if let Some(s) = scraper {
                s.abort();
            }
            h
        });
        let wall = t0.elapsed().as_secs_f64();
        let mut extra = Meta::default();
        extra.set("servebench.client", serde_json::to_string(&health).unwrap_or_default());
        extra.set("servebench.trace.sha256", hash);
        rec.finish(&extra)?;
        let stopped = *stopped.lock().unwrap_or_else(|e| e.into_inner());
        let live = std::mem::take(&mut *live.lock().unwrap_or_else(|e| e.into_inner()));
        let load = live.load.finish(None, Some(rate));
        let sc = capacity::score(&self.slo, &live.obs);
        let n_ok = live.obs.iter().filter(|o| o.ok).count() as u64;
        let out_tokens: u64 = live.obs.iter().filter(|o| o.ok).map(|o| o.output_tokens as u64).sum();
        let span = match (live.first_sent_us, live.last_done_us) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e6),
            _ => None,
        };
        let saturated = stopped == Some("saturated");
        let signal = *signal.lock().unwrap_or_else(|e| e.into_inner());
        let meets = stopped.is_none() && !load.client_bound && n_ok > 0 && sc.score.is_some_and(|s| s <= 1.0);
        let step = CapacityStep {
            step: n,
            phase: phase.name().into(),
            rate_rps: rate,
            achieved_rate_rps: load.achieved_rate,
            planned_s,
            duration_s: wall,
            n_sent: live.load.sent,
            n_ok,
            attained_pct: sc.attained_pct,
            percentiles: sc.percentiles.clone(),
            score: sc.score.filter(|s| s.is_finite()),
            meets,
            saturated,
            client_bound: load.client_bound,
            output_tok_per_s: span.map(|s| out_tokens as f64 / s),
            stopped: stopped.map(str::to_string),
            saturated_by: signal.filter(|_| saturated).map(|s| s.name().to_string()),
        };
        if !self.quiet {
            eprintln!("{}", step_line(&step, &self.slo));
        }
        Ok(StepRun { step, obs: live.obs })
    }
}

/// The engine's waiting-requests gauge at `url`, checked with one scrape: None (with a
/// warning) when the endpoint answers without one, an error when it cannot be parsed as a URL.
fn engine_queue(rt: &tokio::runtime::Runtime, url: Option<&str>, args: &Args) -> anyhow::Result<Option<Metrics>> {
    let Some(url) = url else { return Ok(None) };
    let (target, path) = scrape::metrics_endpoint(url)
        .map_err(|e| anyhow::anyhow!("--metrics-url {url}: {e} (give http://HOST:PORT or a full metrics URL)"))?;
    let shown = format!("{}{path}", target.base_url());
    let client = Arc::new(Client::new(target, Vec::new(), false, &args.tls.options())?);
    let first = rt.block_on(scrape::common_once(&client, &path, Duration::from_secs(3)));
    match first {
        Ok(v) => match v.get(enginemon::WAITING) {
            Some((series, _)) => {
                if !args.quiet {
                    eprintln!(
                        "sweep: engine queue: {series} from {shown}, sampled every {SCRAPE_EVERY:?} as saturation evidence"
                    );
                }
                Ok(Some(Metrics { client, path }))
            }
            None => {
                eprintln!(
                    "sweep: warning: {shown} has no waiting-requests gauge enginemon knows; the saturation rule uses the client's backlog only"
                );
                Ok(None)
            }
        },
        Err(e) => {
            eprintln!(
                "sweep: warning: {shown}: {e}; the saturation rule uses the client's backlog only (check --metrics-url)"
            );
            Ok(None)
        }
    }
}

/// The prompt seed of step `n`: the same for the same --seed, different for every step.
fn step_prompt_seed(seed: u64, n: u32) -> u64 {
    seed ^ u64::from(n).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The sha256 of a step's schedule: what must be the same for the same seed and trace.
fn trace_hash(rows: &[TraceRow]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for r in rows {
        h.update(r.request_id.to_le_bytes());
        h.update(r.arrival_s.to_le_bytes());
        h.update(r.input_tokens.to_le_bytes());
        h.update(r.output_tokens.to_le_bytes());
        if let Some(p) = &r.prompt {
            h.update(p.as_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One progress line for a step.
fn step_line(s: &CapacityStep, slo: &Slo) -> String {
    let f = crate::io::fmt_num;
    let verdict = if s.meets {
        "met".to_string()
    } else {
        match s.stopped.as_deref() {
            Some("saturated") => format!(
                "SATURATED ({}), stopped after {:.1} s of {:.1} s",
                s.saturated_by.as_deref().unwrap_or("in_flight"),
                s.duration_s,
                s.planned_s
            ),
            Some("decided") => format!(
                "missed, stopped after {:.1} s of {:.1} s (already lost)",
                s.duration_s, s.planned_s
            ),
            Some(w) => format!("missed ({w})"),
            None if s.client_bound => "CLIENT-BOUND (not counted as meeting)".to_string(),
            None => "missed".to_string(),
        }
    };
    let pct: Vec<String> = s.percentiles.iter().map(|(k, v)| format!("{k} {}", f(*v))).collect();
    format!(
        "sweep: step {} ({}) {} req/s: {verdict}; score {} ({}), attained {}%, sent at {} req/s, {} ok of {} [{}]",
        s.step,
        s.phase,
        f(s.rate_rps),
        s.score.map_or("-".into(), f),
        if pct.is_empty() {
            "no percentiles".into()
        } else {
            pct.join(", ")
        },
        s.attained_pct.map_or("-".into(), f),
        s.achieved_rate_rps.map_or("-".into(), f),
        s.n_ok,
        s.n_sent,
        slo.text()
    )
}

/// [`run`] under `halt` (no signal handling): stopping it ends the search with what it has.
pub fn run_with(args: Args, halt: Arc<Stop>) -> anyhow::Result<ExitCode> {
    if args.print_schema {
        print!("{}", CAPACITY.print());
        return Ok(ExitCode::SUCCESS);
    }
    let Some(dir) = args.output.clone() else {
        bail!("say where to write: -o DIR (DIR/step=N/requests.parquet and DIR/capacity.parquet)");
    };
    let Some(slo_text) = args.slo.as_deref() else {
        bail!("say what to meet: --slo ttft_p99=500ms,tpot_p99=50ms (or --slo ttft=500ms --attainment 0.99)");
    };
    let slo = Slo::parse(slo_text, args.attainment)?;
    for (n, v) in [
        ("--start-rate", args.start_rate),
        ("--min-rate", args.min_rate),
        ("--max-rate", args.max_rate),
    ] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{n} must be a positive rate in requests per second, got {v}");
        }
    }
    if args.min_rate > args.max_rate {
        bail!("--min-rate {} is above --max-rate {}", args.min_rate, args.max_rate);
    }
    if !(args.tolerance > 0.0 && args.tolerance < 1.0) {
        bail!(
            "--tolerance must be a share between 0 and 1, e.g. 0.05, got {}",
            args.tolerance
        );
    }
    if !(args.grow > 1.0 && args.grow.is_finite()) {
        bail!("--grow must be above 1, got {}", args.grow);
    }
    if args.repeats == 0 || args.gpus == 0 {
        bail!("--repeats and --gpus must be at least 1");
    }
    if let Some(u) = &args.metrics_url {
        scrape::metrics_endpoint(u)
            .map_err(|e| anyhow::anyhow!("--metrics-url {u}: {e} (give http://HOST:PORT or a full metrics URL)"))?;
    }
    if !(args.probe > 0.0 && args.probe <= 1.0) {
        bail!(
            "--probe must be a share of the step above 0 and at most 1 (1: no probes), got {}",
            args.probe
        );
    }
    if args.step.is_zero() {
        bail!("--step must be longer than zero, e.g. 30s");
    }
    if let Some(c) = args.gpu_hour_cost
        && !(c.is_finite() && c >= 0.0)
    {
        bail!("--gpu-hour-cost must be a price in USD, got {c}");
    }
    if dir.join("capacity.parquet").exists() || dir.join("step=1").exists() {
        bail!(
            "{} already holds a sweep: give another -o DIR (or remove it), so that two searches never mix",
            dir.display()
        );
    }
    let (state, target) = super::target(args.url.as_deref(), args.engine.as_deref(), &args.state_dir)?;
    let base = Base::load(&args.trace)?;
    let engine_name = state.as_ref().map(|s| s.name.clone()).or_else(|| args.engine.clone());
    let price = match args.gpu_hour_cost {
        Some(c) => Some(c),
        None => match &engine_name {
            Some(e) => crate::engine::config::EnginesFile::load(args.engines_config.as_deref())
                .ok()
                .and_then(|f| f.engines.get(e).and_then(|c| c.cost_per_gpu_hour)),
            None => None,
        },
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let rt = super::many_connections_runtime(args.threads)?;
    let client = Arc::new(Client::new(target.clone(), Vec::new(), true, &args.tls.options())?);
    let info = rt.block_on(probe(&client, Duration::from_secs(3)));
    let api = match args.api.as_str() {
        "auto" => state
            .as_ref()
            .and_then(|s| Api::from_name(&s.api))
            .or(info.api)
            .unwrap_or(Api::Chat),
        s => Api::from_name(s)
            .with_context(|| format!("--api {s}: use chat, completions, tgi, sglang, llamacpp, ollama or auto"))?,
    };
    let model = args
        .model
        .clone()
        .or_else(|| state.as_ref().and_then(|s| s.served_model.clone()))
        .or_else(|| info.models.first().cloned());
    let engine = engine_name.or(info.engine.clone());
    let quant = args
        .quant
        .clone()
        .or_else(|| state.as_ref().and_then(|s| s.quant.clone()));
    let labels = RunLabels {
        label: args.label.clone().or(engine.clone()).unwrap_or_else(|| "run".into()),
        run_id: RunClock::global().run_id.clone(),
        engine: engine.clone(),
        model: model.clone(),
        quant: quant.clone(),
        api: api.name().into(),
        concurrency: None,
        rate_rps: None,
        source_tool: None,
    };
    let metrics = engine_queue(
        &rt,
        args.metrics_url
            .as_deref()
            .or_else(|| state.as_ref().and_then(|s| s.metrics_url.as_deref())),
        &args,
    )?;
    let mut meta = Meta::for_output(&REQUESTS, false);
    meta.set("servebench.url", target.base_url());
    meta.set("servebench.api", api.name());
    meta.set("servebench.label", labels.label.clone());
    if let Some(m) = &model {
        meta.set("servebench.model", m.clone());
    }
    if let Some(e) = &engine {
        meta.set("servebench.engine", e.clone());
    }
    if let Some(v) = state.as_ref().and_then(|s| s.version.clone()).or(info.version.clone()) {
        meta.set("servebench.engine_version", v);
    }
    meta.set("servebench.trace.path", args.trace.clone());
    meta.set("servebench.sweep.slo", slo.text());
    let ctx = Ctx {
        rt,
        client,
        api,
        opts: RequestOpts {
            model: model.clone(),
            ignore_eos: true,
            continuous_usage: true,
            temperature: None,
            extra_body: None,
        },
        labels: labels.clone(),
        meta,
        base,
        slo: slo.clone(),
        dir: dir.clone(),
        halt: halt.clone(),
        warmup_s: args.warmup.as_secs_f64(),
        step_s: args.step.as_secs_f64(),
        drain: args.drain,
        timeout: args.timeout,
        seed: args.seed,
        early: !args.no_early_stop,
        quiet: args.quiet,
        probe: args.probe,
        metrics,
    };
    let t_search = Instant::now();
    let mut search = Search::new(
        args.start_rate,
        args.min_rate,
        args.max_rate,
        args.tolerance,
        args.grow,
        args.probe < 1.0,
    );
    let mut runs: Vec<StepRun> = Vec::new();
    let mut n = 0u32;
    while let Some((rate, phase)) = search.next() {
        if halt.is_stopped() || n >= 64 {
            break;
        }
        n += 1;
        // a probe that could not hold its few requests within the step is a full-length step
        let probe = search.is_probe(phase) && PROBE_MIN_REQUESTS / rate <= ctx.step_s;
        let r = ctx.run_step(n, rate, phase, probe)?;
        if r.step.n_sent == 0 && !r.step.saturated && !halt.is_stopped() {
            anyhow::bail!(
                "step {n} at {rate:.3} req/s measured no request in {:.1} s: a verdict needs requests; lengthen \
                 --step, raise --start-rate or --min-rate, or give a longer trace",
                r.step.planned_s
            );
        }
        // a probe is conclusive only when it saturated (a climbing queue at any length)
        search.record(rate, r.step.meets, !probe || r.step.saturated);
        runs.push(r);
    }
    // The final bracket: the last step at the passing rate and at the failing one.
    let last_at = |runs: &[StepRun], rate: Option<f64>| -> Option<usize> {
        let rate = rate?;
        runs.iter().rposition(|r| r.step.rate_rps == rate)
    };
    let (pass, fail) = (search.pass, search.fail);
    let mut estimates: Vec<f64> = Vec::new();
    let mut tok_per_req: Vec<f64> = Vec::new();
    let estimate = |runs: &[StepRun], ip: usize, jf: Option<usize>| -> f64 {
        let p = &runs[ip].step;
        let sp = p.score.unwrap_or(f64::INFINITY);
        match jf {
            Some(j) => {
                let f = &runs[j].step;
                let sf = if f.saturated || f.client_bound {
                    f64::INFINITY
                } else {
                    f.score.unwrap_or(f64::INFINITY)
                };
                capacity::crossing(p.rate_rps, sp, f.rate_rps, sf)
            }
            None => p.rate_rps,
        }
    };
    let mean_tokens = |r: &StepRun| -> Option<f64> {
        let ok: Vec<f64> = r.obs.iter().filter(|o| o.ok).map(|o| o.output_tokens as f64).collect();
        (!ok.is_empty()).then(|| ok.iter().sum::<f64>() / ok.len() as f64)
    };
    let mut row = Capacity {
        label: labels.label.clone(),
        engine,
        model,
        quant,
        slo: slo.text(),
        attainment: slo.attainment,
        interval: "none".into(),
        repeats: 1,
        passing_rps: pass,
        failing_rps: fail,
        gpu_count: args.gpus,
        gpu_hour_cost_usd: price,
        tolerance: args.tolerance,
        seed: args.seed,
        step_s: args.step.as_secs_f64(),
        ..Default::default()
    };
    if let Some(ip) = last_at(&runs, pass) {
        let jf = last_at(&runs, fail);
        estimates.push(estimate(&runs, ip, jf));
        tok_per_req.extend(mean_tokens(&runs[ip]));
        let mut repeated = 1;
        for _ in 1..args.repeats {
            if halt.is_stopped() {
                break;
            }
            n += 1;
            let rp = ctx.run_step(n, runs[ip].step.rate_rps, Phase::Repeat, false)?;
            runs.push(rp);
            let ip2 = runs.len() - 1;
            let jf2 = match fail {
                Some(f) => {
                    n += 1;
                    runs.push(ctx.run_step(n, f, Phase::Repeat, false)?);
                    Some(runs.len() - 1)
                }
                None => None,
            };
            estimates.push(estimate(&runs, ip2, jf2));
            tok_per_req.extend(mean_tokens(&runs[ip2]));
            repeated += 1;
        }
        row.repeats = repeated;
        let tokens = if tok_per_req.is_empty() {
            None
        } else {
            Some(tok_per_req.iter().sum::<f64>() / tok_per_req.len() as f64)
        };
        let (c, lo, hi, how) = if estimates.len() >= 2 {
            let (m, lo, hi) = capacity::t_interval(&estimates).expect("two or more estimates");
            (m, Some(lo.max(0.0)), Some(hi), "t-interval")
        } else {
            let c = estimates[0];
            match jf.filter(|_| fail.is_some()) {
                Some(j) => {
                    let f = &runs[j];
                    let counts = !(f.step.saturated || f.step.client_bound);
                    let ci = capacity::bootstrap_interval(
                        &slo,
                        runs[ip].step.rate_rps,
                        &runs[ip].obs,
                        f.step.rate_rps,
                        &f.obs,
                        counts,
                        1000,
                        args.seed,
                    );
                    // a failing step stopped before its score showed the failure says only
                    // that the crossing is below it: the interval reaches up to it
                    let shown = counts && f.step.score.is_some_and(|x| x > 1.0);
                    let hi = ci.map(|x| if shown { x.1 } else { x.1.max(f.step.rate_rps) });
                    (c, ci.map(|x| x.0.max(0.0)), hi, "bootstrap")
                }
                None => (c, None, None, "none"),
            }
        };
        row.capacity_rps = Some(c);
        row.capacity_rps_ci_lo = lo;
        row.capacity_rps_ci_hi = hi;
        row.interval = if lo.is_some() { how.into() } else { "none".into() };
        if let Some(t) = tokens {
            row.capacity_output_tok_s = Some(c * t);
            row.capacity_output_tok_s_ci_lo = lo.map(|x| x * t);
            row.capacity_output_tok_s_ci_hi = hi.map(|x| x * t);
            row.cost_per_m_output_tokens_usd = price.and_then(|p| capacity::cost_per_m_tokens(p, args.gpus, c * t));
        }
        if fail.is_none() {
            row.note = Some(format!(
                "at least: {} req/s (--max-rate) met the SLO",
                crate::io::fmt_num(args.max_rate)
            ));
        }
    } else {
        row.note = Some(format!(
            "below {} req/s: no rate tried met the SLO (lower --min-rate, or loosen the SLO)",
            crate::io::fmt_num(runs.iter().map(|r| r.step.rate_rps).fold(f64::INFINITY, f64::min))
        ));
    }
    if halt.is_stopped() {
        row.note = Some(format!(
            "interrupted{}",
            row.note.as_deref().map_or(String::new(), |n| format!("; {n}"))
        ));
    }
    let steps: Vec<CapacityStep> = runs.iter().map(|r| r.step.clone()).collect();
    row.n_steps = steps.len() as u32;
    row.steps_json = CapacityStep::to_json_list(&steps);
    row.search_s = t_search.elapsed().as_secs_f64();
    write_capacity(&dir, &row, &slo)?;
    if !args.quiet {
        eprintln!("{}", result_line(&row));
    }
    if row.capacity_rps.is_none() {
        return Err(CheckFailed(row.note.clone().unwrap_or_default()).into());
    }
    if let Some(StopReason::Signal(s)) = halt.reason() {
        return Ok(ExitCode::from((128 + s).clamp(0, 255) as u8));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_capacity(dir: &Path, row: &Capacity, slo: &Slo) -> anyhow::Result<()> {
    let path = dir.join("capacity.parquet");
    let mut meta = Meta::for_output(&CAPACITY, false);
    meta.set("servebench.sweep.slo", slo.text());
    let mut sink = Sink::create(Some(&path), None, CAPACITY.schema(), &meta)?;
    sink.write(&Capacity::encode(std::slice::from_ref(row), &()))?;
    sink.finish()?;
    Ok(())
}

/// The answer in one line.
fn result_line(r: &Capacity) -> String {
    let f = crate::io::fmt_num;
    let Some(c) = r.capacity_rps else {
        return format!("sweep: {}: {}", r.label, r.note.clone().unwrap_or_default());
    };
    let ci = match (r.capacity_rps_ci_lo, r.capacity_rps_ci_hi) {
        (Some(a), Some(b)) => format!(" [{}, {}] ({})", f(a), f(b), r.interval),
        _ => String::new(),
    };
    let tok = r
        .capacity_output_tok_s
        .map_or(String::new(), |t| format!(", {} output tok/s", f(t)));
    let cost = r
        .cost_per_m_output_tokens_usd
        .map_or(String::new(), |c| format!("; ${:.3} per million output tokens", c));
    let note = r.note.as_deref().map_or(String::new(), |n| format!(" ({n})"));
    format!(
        "sweep: {} carries {} req/s{ci}{tok} at {} on {} GPU(s){cost}; {} steps in {:.1} s{note}",
        r.label,
        f(c),
        r.slo,
        r.gpu_count,
        r.n_steps,
        r.search_s
    )
}
