//! mock-engine: the built-in inference server.
//!
//! It speaks the OpenAI chat and completions routes (byte for byte like vLLM), TGI's
//! `/generate_stream`, SGLang's `/generate`, llama.cpp's `/completion` and Ollama's
//! `/api/generate`, with `/health`, `/v1/models`, `/version` and `/metrics` (vLLM's names).
//!
//! Exact mode: the first content chunk goes out `ttft_ms` after the request arrived and chunk
//! k at `ttft_ms + k * itl_ms`, each carrying `tokens_per_chunk` tokens, on absolute
//! deadlines (so nothing drifts), and exactly `max_tokens` tokens in all. With `--spec-draft`
//! (both modes) a step's chunk carries its accepted drafts plus one token instead (see [`spec`]).
//! Simulated mode: see [`sim`], with its prefix cache in [`prefix`] (the cached prompt tokens
//! are reported in each engine's usage shape and as vLLM's prefix-cache counters).
//!
//! Slots (`--slots N`, exact mode): at most N requests are served at once, admitted first in,
//! first out; a request's first chunk goes out `ttft_ms` after its admission, and it holds
//! its slot until its last chunk, `ttft_ms + (chunks - 1) * itl_ms` later. That service time
//! S is the same for every request of a trace with fixed output length, so the server
//! finishes at most N / S requests per second: an open loop below that rate keeps TTFT at
//! `ttft_ms` (a constant-rate arrival never waits; a Poisson one waits in an M/D/N queue),
//! and above it the queue, and with it TTFT, grows without bound (by (rate - N/S) requests
//! every second). The capacity at any TTFT limit above `ttft_ms` is therefore N / S (exactly,
//! as the step grows long): the sharp, known knee `sweep`'s tests search for. E.g. N = 4,
//! ttft 50 ms, itl 10 ms, 16 tokens of one chunk each: S = 50 + 15 x 10 = 200 ms, 20 req/s.
//! A client that goes away gives up its place in the queue or its slot. `/metrics` then shows
//! the streams holding a slot as `vllm:num_requests_running` and the ones queued for a slot
//! as `vllm:num_requests_waiting`.

pub mod fault;
pub mod format;
pub mod logprobs;
pub mod model;
pub mod prefix;
#[cfg(test)]
mod read_back;
pub mod sim;
pub mod spec;
pub mod sse;
pub mod tls;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;

use self::fault::{FaultKind, Faults, Style};
use self::format::{Fmt, Proto};
use self::sim::{SimParams, SimReq};
use crate::timer;
use crate::trace::tokens::approx_tokens;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub model: String,
    pub ttft_ms: f64,
    pub itl_ms: f64,
    pub tokens_per_chunk: u32,
    pub sim: Option<SimParams>,
    /// Speculative decoding: multi-token steps with a known acceptance law (see [`spec`]).
    pub spec: Option<spec::Spec>,
    /// What `/v1/models` says owns the model (vllm, sglang, ...): lets tests exercise probing.
    pub owned_by: String,
    pub version: String,
    /// Faults to inject (none by default).
    pub faults: Arc<Faults>,
    /// Serve HTTPS with this configuration (see [`tls::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Exact mode: at most this many requests served at once, FIFO (see the module docs).
    pub slots: Option<usize>,
    /// The pseudo-model variant behind log probabilities (see [`model`]).
    pub quality: model::Variant,
    /// Reasoning before each answer (none by default), and how it is sent.
    pub reasoning: Option<format::ReasoningTokens>,
    pub reasoning_format: format::ReasoningFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: "mock-llm".into(),
            ttft_ms: 50.0,
            itl_ms: 10.0,
            tokens_per_chunk: 1,
            sim: None,
            spec: None,
            owned_by: "servebench".into(),
            version: format!("mock-{}", crate::meta::VERSION),
            faults: Arc::new(Faults::default()),
            tls: None,
            slots: None,
            quality: model::Variant::default(),
            reasoning: None,
            reasoning_format: format::ReasoningFormat::default(),
        }
    }
}

/// Counters and gauges behind `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    pub kv_used: AtomicU64,
    pub kv_total: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub requests_done: AtomicU64,
    /// Streams whose client went away before the end (not a fault the mock injected).
    pub client_disconnects: AtomicU64,
    pub requests_started: AtomicU64,
    pub preemptions: AtomicU64,
    pub active_streams: AtomicU64,
    /// vLLM's spec_decode counters (`--spec-draft`).
    pub spec: spec::SpecCounters,
    /// Prompt tokens served from the simulated prefix cache.
    pub prefix_hits: AtomicU64,
}

struct Shared {
    cfg: Config,
    metrics: Arc<Metrics>,
    sim: Option<mpsc::UnboundedSender<SimReq>>,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    next_id: AtomicU64,
    started: Instant,
}

type Resp = Response<MockBody>;

/// Ends a connection without a complete response (an injected fault).
#[derive(Debug)]
pub struct Abort(&'static str);

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "injected fault: {}", self.0)
    }
}

impl std::error::Error for Abort {}

/// Bind and serve until the process ends. Returns after binding: the address and the task.
pub async fn serve(cfg: Config, addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    // A deep accept queue: tokio's bind listens with a backlog of 1,024, and a closed loop of
    // 1,024 users or more connects all at once; a connection dropped from a full queue is
    // retried by the kernel one second later (TCP's initial SYN retransmission timeout), which
    // showed as a one-second schedule lag of the client, not of the server. Real engines listen
    // deeper (uvicorn's default backlog is 2,048); the kernel caps this at net.core.somaxconn.
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener: TcpListener = socket.listen(8192)?;
    let local = listener.local_addr()?;
    let metrics = Arc::new(Metrics::default());
    if metrics.kv_total.load(Ordering::Relaxed) == 0 {
        metrics
            .kv_total
            .store(cfg.sim.map(|s| s.kv_tokens).unwrap_or(262_144), Ordering::Relaxed);
    }
    let sim = cfg
        .sim
        .map(|p| sim::start(p, metrics.clone(), cfg.spec.map(|s| s.draft)));
    let tls = cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = cfg.slots.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    let shared = Arc::new(Shared {
        cfg,
        metrics,
        sim,
        slots,
        next_id: AtomicU64::new(1),
        started: Instant::now(),
    });
    let h = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(_) => {
                    // Out of file descriptors or similar: back off and keep serving.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let fd = stream.as_raw_fd();
            let shared = shared.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { handle(shared, req, fd).await }
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.keep_alive(true);
                match tls {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                    // A failed handshake (an untrusting client) just ends the connection.
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                }
            });
        }
    });
    Ok((local, h))
}

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(MockBody::full(serde_json::to_vec(v).unwrap_or_default()))
        .expect("valid response")
}

fn text_resp(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(MockBody::full(body))
        .expect("valid response")
}

fn error(status: StatusCode, msg: &str, ty: &str) -> Resp {
    json_resp(
        status,
        &serde_json::json!({"error": {"message": msg, "type": ty, "param": null, "code": status.as_u16()}}),
    )
}

async fn handle(sh: Arc<Shared>, req: Request<Incoming>, fd: RawFd) -> Result<Resp, Abort> {
    // The request is here once its headers are parsed: the TTFT clock starts now, before
    // the body is read (a slow body read is the server's time, as on a real engine).
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    Ok(match (method.as_str(), path.as_str()) {
        ("GET", "/health") | ("GET", "/ping") => text_resp(StatusCode::OK, "text/plain", ""),
        ("GET", "/v1/models") => json_resp(
            StatusCode::OK,
            &serde_json::json!({"object": "list", "data": [{"id": sh.cfg.model, "object": "model",
                "created": 0, "owned_by": sh.cfg.owned_by, "max_model_len": 131072}]}),
        ),
        ("GET", "/version") => json_resp(StatusCode::OK, &serde_json::json!({"version": sh.cfg.version})),
        ("GET", "/metrics") => text_resp(StatusCode::OK, "text/plain; version=0.0.4", metrics_text(&sh)),
        ("POST", p) => {
            let proto = match p {
                "/tokenize" => Proto::Llamacpp,
                "/v1/chat/completions" => Proto::Chat,
                "/v1/completions" => Proto::Completions,
                "/generate_stream" => Proto::Tgi,
                "/generate" => Proto::Sglang,
                "/completion" | "/completions" => Proto::Llamacpp,
                "/api/generate" => Proto::Ollama,
                _ => {
                    return Ok(error(StatusCode::NOT_FOUND, &format!("no route {p}"), "NotFoundError"));
                }
            };
            let body = match Limited::new(req.into_body(), 256 << 20).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read body: {e}"),
                        "BadRequestError",
                    ));
                }
            };
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        &format!("body is not JSON: {e}"),
                        "BadRequestError",
                    ));
                }
            };
            if p == "/tokenize" {
                return Ok(json_resp(StatusCode::OK, &logprobs::tokenize_response(&v)));
            }
            return generate(&sh, proto, &v, arrived, fd);
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no route {method} {path}"),
            "NotFoundError",
        ),
    })
}

fn metrics_text(sh: &Shared) -> String {
    let m = &sh.metrics;
    let model = &sh.cfg.model;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (running, waiting) = if sh.sim.is_some() {
        (g(&m.running), g(&m.waiting))
    } else if let (Some(sem), Some(n)) = (&sh.slots, sh.cfg.slots) {
        // --slots: the streams holding a slot run, the others wait for one
        let busy = (n.max(1) - sem.available_permits()) as u64;
        let streams = g(&m.active_streams);
        (busy.min(streams), streams.saturating_sub(busy))
    } else {
        (g(&m.active_streams), 0)
    };
    let kv_total = g(&m.kv_total).max(1);
    let kv = g(&m.kv_used) as f64 / kv_total as f64;
    let labels = format!("engine=\"0\",model_name=\"{model}\"");
    format!(
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
         # TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{{labels}}} {running}\n\
         # HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{{labels}}} {waiting}\n\
         # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{{labels}}} {kv}\n\
         # HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n\
         # TYPE vllm:prompt_tokens_total counter\n\
         vllm:prompt_tokens_total{{{labels}}} {}\n\
         # HELP vllm:generation_tokens_total Number of generation tokens processed.\n\
         # TYPE vllm:generation_tokens_total counter\n\
         vllm:generation_tokens_total{{{labels}}} {}\n\
         # HELP vllm:request_success_total Count of successfully processed requests.\n\
         # TYPE vllm:request_success_total counter\n\
         vllm:request_success_total{{{labels},finished_reason=\"length\"}} {}\n\
         # HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.\n\
         # TYPE vllm:num_preemptions_total counter\n\
         vllm:num_preemptions_total{{{labels}}} {}\n\
         # HELP vllm:prefix_cache_queries_total Prefix cache queries, in tokens.\n\
         # TYPE vllm:prefix_cache_queries_total counter\n\
         vllm:prefix_cache_queries_total{{{labels}}} {}\n\
         # HELP vllm:prefix_cache_hits_total Prefix cache hits, in tokens.\n\
         # TYPE vllm:prefix_cache_hits_total counter\n\
         vllm:prefix_cache_hits_total{{{labels}}} {}\n\
         # HELP servebench_mock_requests_started_total Generation requests received.\n\
         # TYPE servebench_mock_requests_started_total counter\n\
         servebench_mock_requests_started_total {}\n\
         # HELP servebench_mock_client_disconnects_total Streams whose client closed the connection before the end.\n\
         # TYPE servebench_mock_client_disconnects_total counter\n\
         servebench_mock_client_disconnects_total {}\n\
         # HELP process_uptime_seconds Seconds since the server started.\n\
         # TYPE process_uptime_seconds gauge\n\
         process_uptime_seconds {:.3}\n{}",
        g(&m.prompt_tokens),
        g(&m.generation_tokens),
        g(&m.requests_done),
        g(&m.preemptions),
        g(&m.prompt_tokens),
        g(&m.prefix_hits),
        g(&m.requests_started),
        g(&m.client_disconnects),
        sh.started.elapsed().as_secs_f64(),
        sh.cfg
            .spec
            .map(|s| spec::metrics_text(m, s.draft, &labels))
            .unwrap_or_default(),
    ) + &fault_metrics(&sh.cfg.faults)
}

/// Injected faults by kind (only when faults are configured).
fn fault_metrics(f: &Faults) -> String {
    if !f.any() {
        return String::new();
    }
    let mut s = String::from(
        "# HELP servebench_mock_faults_total Faults injected, by kind.\n# TYPE servebench_mock_faults_total counter\n",
    );
    for (k, n) in f.counts() {
        s.push_str(&format!("servebench_mock_faults_total{{kind=\"{k}\"}} {n}\n"));
    }
    s
}

fn u32_at(v: &Value, path: &[&str]) -> Option<u32> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64().map(|n| n.min(u32::MAX as u64) as u32)
}

fn prompt_tokens(proto: Proto, v: &Value) -> u32 {
    let text_tokens = |x: &Value| -> u32 {
        match x {
            Value::String(s) => approx_tokens(s),
            Value::Array(a) => a
                .iter()
                .map(|e| match e {
                    Value::String(s) => approx_tokens(s),
                    Value::Number(_) => 1,
                    other => approx_tokens(&other.to_string()),
                })
                .sum(),
            _ => 0,
        }
    };
    match proto {
        Proto::Chat => v
            .get("messages")
            .and_then(|m| m.as_array())
            .map(|ms| {
                ms.iter()
                    .map(|m| match m.get("content") {
                        Some(Value::Array(parts)) => parts
                            .iter()
                            .map(|p| p.get("text").and_then(|t| t.as_str()).map(approx_tokens).unwrap_or(0))
                            .sum(),
                        Some(c) => text_tokens(c),
                        None => 0,
                    })
                    .sum()
            })
            .unwrap_or(0),
        Proto::Completions | Proto::Llamacpp | Proto::Ollama => v.get("prompt").map(text_tokens).unwrap_or(0),
        Proto::Tgi => v.get("inputs").map(text_tokens).unwrap_or(0),
        Proto::Sglang => v
            .get("text")
            .or_else(|| v.get("input_ids"))
            .map(text_tokens)
            .unwrap_or(0),
    }
}

fn generate(sh: &Arc<Shared>, proto: Proto, v: &Value, arrived: Instant, fd: RawFd) -> Result<Resp, Abort> {
    // vLLM answers an unknown model with 404 before streaming.
    if matches!(proto, Proto::Chat | Proto::Completions)
        && let Some(m) = v.get("model").and_then(|m| m.as_str())
        && !m.is_empty()
        && m != sh.cfg.model
    {
        return Ok(error(
            StatusCode::NOT_FOUND,
            &format!("The model `{m}` does not exist."),
            "NotFoundError",
        ));
    }
    let max_tokens = match proto {
        Proto::Chat | Proto::Completions => u32_at(v, &["max_tokens"])
            .or_else(|| u32_at(v, &["max_completion_tokens"]))
            .unwrap_or(16),
        Proto::Tgi => u32_at(v, &["parameters", "max_new_tokens"]).unwrap_or(20),
        Proto::Sglang => u32_at(v, &["sampling_params", "max_new_tokens"]).unwrap_or(128),
        Proto::Llamacpp => u32_at(v, &["n_predict"])
            .or_else(|| u32_at(v, &["max_tokens"]))
            .unwrap_or(128),
        Proto::Ollama => u32_at(v, &["options", "num_predict"]).unwrap_or(128),
    }
    .max(1);
    let stream = match proto {
        Proto::Tgi => true,
        Proto::Ollama => v.get("stream").and_then(|s| s.as_bool()).unwrap_or(true),
        _ => v.get("stream").and_then(|s| s.as_bool()).unwrap_or(false),
    };
    let so = v.get("stream_options");
    let include_usage = so
        .and_then(|s| s.get("include_usage"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    let continuous = so
        .and_then(|s| s.get("continuous_usage_stats"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    let n = sh.next_id.fetch_add(1, Ordering::Relaxed);
    let faults = &sh.cfg.faults;
    let fault = faults.pick(n);
    let style = faults.style.unwrap_or(Style::of_route(proto));
    match fault {
        Some(FaultKind::Reset) => {
            faults.fired(FaultKind::Reset);
            sh.metrics.requests_started.fetch_add(1, Ordering::Relaxed);
            fault::set_reset_on_close(fd);
            return Err(Abort("connection reset before the response headers"));
        }
        Some(FaultKind::Http(code)) => {
            faults.fired(FaultKind::Http(code));
            sh.metrics.requests_started.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Ok(text_resp(
                status,
                "application/json",
                fault::http_error_body(style, code),
            ));
        }
        _ => {}
    }
    let id = match proto {
        Proto::Chat => format!("chatcmpl-{n:016x}"),
        Proto::Completions => format!("cmpl-{n:016x}"),
        _ => format!("{n:032x}"),
    };
    let pt = prompt_tokens(proto, v);
    let lp = match logprobs::ask(proto, v) {
        Ok(a) if a.engaged() => Some(Arc::new(logprobs::Scored::new(
            sh.cfg.quality,
            a,
            logprobs::prompt_tokens(proto, v),
            max_tokens,
        ))),
        Ok(_) => None,
        Err(e) => return Ok(error(StatusCode::BAD_REQUEST, &e, "BadRequestError")),
    };
    let mut fmt = Fmt {
        proto,
        id,
        model: sh.cfg.model.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        prompt_tokens: pt,
        max_tokens,
        include_usage,
        continuous_usage: continuous,
        seed: n,
        sent: 0,
        text: String::new(),
        lp,
        reasoning: sh.cfg.reasoning.map(|r| r.draw(n).min(max_tokens)).unwrap_or(0),
        reasoning_format: sh.cfg.reasoning_format,
        cached: None,
    };
    sh.metrics.requests_started.fetch_add(1, Ordering::Relaxed);
    let source = match &sh.sim {
        Some(tx) => {
            let (ttx, rx) = mpsc::unbounded_channel();
            let cache_on = sh.cfg.sim.is_some_and(|p| p.prefix_cache_tokens > 0);
            let cached = Arc::new(std::sync::atomic::AtomicU32::new(0));
            fmt.cached = cache_on.then(|| cached.clone());
            let _ = tx.send(SimReq {
                prompt_tokens: pt,
                max_tokens,
                tx: ttx,
                spec: sh.cfg.spec.map(|s| s.drafter(n)),
                blocks: if cache_on {
                    prefix::block_hashes(proto, v)
                } else {
                    Vec::new()
                },
                cached,
            });
            Source::Sim { rx }
        }
        None => {
            if sh.cfg.sim.is_none() {
                sh.metrics.prompt_tokens.fetch_add(pt as u64, Ordering::Relaxed);
            }
            Source::Exact {
                first: arrived + Duration::from_secs_f64(sh.cfg.ttft_ms / 1e3),
                ttft: Duration::from_secs_f64(sh.cfg.ttft_ms / 1e3),
                itl: Duration::from_secs_f64(sh.cfg.itl_ms / 1e3),
                sleep: None,
                admit: sh.slots.clone().map(|s| -> Admit { Box::pin(s.acquire_owned()) }),
            }
        }
    };
    let exact = sh.sim.is_none();
    let per_chunk = if exact { sh.cfg.tokens_per_chunk.max(1) } else { 1 };
    // exact mode with --spec-draft: every event's tokens, drawn up front
    let plan = sh.cfg.spec.filter(|_| exact).map(|s| s.drafter(n).plan(max_tokens));
    let chunks = match (&plan, stream) {
        (_, false) => 1,
        (Some(p), true) => p.len() as u32,
        (None, true) => max_tokens.div_ceil(per_chunk),
    };
    let body = MockBody {
        inner: Inner::Stream(Box::new(StreamBody {
            fmt,
            source,
            chunk: 0,
            per_chunk,
            plan: plan.map(VecDeque::from),
            spec_draft: sh.cfg.spec.map(|s| s.draft).unwrap_or(0),
            spec_prefill_sent: false,
            stream,
            metrics: sh.metrics.clone(),
            exact,
            done: false,
            pending_tokens: 0,
            permit: None,
            fault: fault.map(|kind| FaultState {
                kind,
                // a mid-stream fault always fires, even in a response shorter than --fault-after
                at: faults.after.min(chunks.saturating_sub(1)),
                style,
                fd,
                faults: sh.cfg.faults.clone(),
                fired: false,
                stalled: false,
                huge_left: 0,
                drip: VecDeque::new(),
                drip_sleep: None,
            }),
        })),
    };
    sh.metrics.active_streams.fetch_add(1, Ordering::Relaxed);
    let ctype = match (stream, proto) {
        (false, _) => "application/json",
        (true, Proto::Ollama) => "application/x-ndjson",
        (true, _) => "text/event-stream",
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", ctype)
        .body(body)
        .expect("valid response"))
}

/// Waiting for a slot (`--slots`): resolves, first in first out, when one is free.
type Admit = Pin<Box<dyn Future<Output = Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

enum Source {
    Exact {
        first: Instant,
        ttft: Duration,
        itl: Duration,
        sleep: Option<timer::Sleep>,
        /// With `--slots`: the wait for a slot; `first` counts from the admission.
        admit: Option<Admit>,
    },
    Sim {
        rx: mpsc::UnboundedReceiver<u32>,
    },
}

struct StreamBody {
    fmt: Fmt,
    source: Source,
    chunk: u32,
    per_chunk: u32,
    /// Exact mode with `--spec-draft`: the steps still to send (the first is the prefill's).
    plan: Option<VecDeque<spec::Step>>,
    spec_draft: u32,
    spec_prefill_sent: bool,
    stream: bool,
    metrics: Arc<Metrics>,
    exact: bool,
    done: bool,
    pending_tokens: u32,
    /// The slot held until the stream ends (`--slots`).
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    fault: Option<FaultState>,
}

/// A fault under way in one response.
struct FaultState {
    kind: FaultKind,
    /// Content chunks sent before a mid-stream fault fires.
    at: u32,
    style: Style,
    fd: RawFd,
    faults: Arc<Faults>,
    fired: bool,
    stalled: bool,
    /// Bytes of the huge event still to send.
    huge_left: usize,
    /// slow-drip: bytes waiting to drip out, and the pause before the next one.
    drip: VecDeque<u8>,
    drip_sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// 64 KiB of filler for the huge event.
static FILL: [u8; 65536] = [b'x'; 65536];

impl Drop for StreamBody {
    fn drop(&mut self) {
        self.metrics.active_streams.fetch_sub(1, Ordering::Relaxed);
        if self.exact && self.done {
            self.metrics.requests_done.fetch_add(1, Ordering::Relaxed);
        }
        // hyper drops the body when the client closes the connection mid-stream
        if !self.done && !self.fault.as_ref().is_some_and(|f| f.fired) {
            self.metrics.client_disconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

enum Inner {
    Full(Option<Bytes>),
    Stream(Box<StreamBody>),
}

/// Response body: a whole buffer, or a timed token stream.
pub struct MockBody {
    inner: Inner,
}

impl MockBody {
    fn full(b: impl Into<Bytes>) -> MockBody {
        MockBody {
            inner: Inner::Full(Some(b.into())),
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Abort;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(s) => s.poll_next(cx),
        }
    }
}

impl StreamBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        if let Some(f) = &mut self.fault {
            if f.huge_left > 0 {
                let n = f.huge_left.min(FILL.len());
                f.huge_left -= n;
                if f.huge_left > 0 {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILL[..n])))));
                }
                let mut v = FILL[..n].to_vec();
                fault::huge_event_end(&mut v);
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(v)))));
            }
            if f.stalled {
                // never woken: the stream stays open and silent until the client gives up
                return Poll::Pending;
            }
            if f.kind == FaultKind::SlowDrip {
                return self.poll_drip(cx);
            }
        }
        if self.done {
            return Poll::Ready(None);
        }
        let total = self.fmt.max_tokens;
        // How many tokens the next write carries, once its time has come.
        let n = match &mut self.source {
            Source::Exact {
                first,
                ttft,
                itl,
                sleep,
                admit,
            } => {
                if let Some(a) = admit {
                    match a.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(p) => {
                            self.permit = p.ok();
                            *first = Instant::now() + *ttft;
                            *admit = None;
                        }
                    }
                }
                let (at, n) = if self.stream {
                    let n = match &self.plan {
                        Some(p) => p.front().map_or(1, |s| s.tokens),
                        None => self.per_chunk,
                    };
                    (*first + *itl * self.chunk, n.min(total - self.fmt.sent))
                } else {
                    let chunks = match &self.plan {
                        Some(p) => p.len() as u32,
                        None => total.div_ceil(self.per_chunk),
                    };
                    (*first + *itl * (chunks.max(1) - 1), total)
                };
                let s = sleep.get_or_insert_with(|| timer::sleep_until(at));
                if s.deadline() != at {
                    s.reset(at);
                }
                match Pin::new(s).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => n,
                }
            }
            Source::Sim { rx } => loop {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(k)) => {
                        self.pending_tokens += k;
                        if self.stream || self.fmt.sent + self.pending_tokens >= total {
                            let n = self.pending_tokens;
                            self.pending_tokens = 0;
                            break n;
                        }
                    }
                    Poll::Ready(None) => {
                        // The engine ended (it never drops a live request): finish cleanly.
                        self.done = true;
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            },
        };
        // A mid-stream fault fires when the chunk after the first `at` chunks is due.
        if let Some(f) = &mut self.fault
            && !f.fired
            && self.chunk >= f.at
            && f.kind != FaultKind::NoDone
        {
            f.fired = true;
            f.faults.fired(f.kind);
            let proto = self.fmt.proto;
            match f.kind {
                FaultKind::ResetMid => {
                    fault::set_reset_on_close(f.fd);
                    self.done = true;
                    return Poll::Ready(Some(Err(Abort("connection reset mid-stream"))));
                }
                FaultKind::ErrorEvent => {
                    let (bytes, drop) = fault::error_event(f.style, proto);
                    self.done = true;
                    if drop {
                        fault::set_reset_on_close(f.fd);
                        return Poll::Ready(Some(Err(Abort("the engine dropped the connection"))));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))));
                }
                FaultKind::Stall => {
                    f.stalled = true;
                    return Poll::Pending;
                }
                FaultKind::Garbage => {
                    self.done = true;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(fault::garbage(proto))))));
                }
                FaultKind::HugeEvent => {
                    // the tokens of this chunk go out after the huge event
                    if !self.exact {
                        self.pending_tokens += n;
                    }
                    f.huge_left = f.faults.event_bytes.max(1);
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(fault::huge_event_start(proto))))));
                }
                _ => {}
            }
        }
        self.chunk += 1;
        if self.exact {
            self.metrics.generation_tokens.fetch_add(n as u64, Ordering::Relaxed);
            self.spec_steps_sent();
        }
        let mut bytes = if self.stream {
            let mut out = Vec::with_capacity(512);
            self.fmt.chunk(&mut out, n);
            out
        } else {
            self.fmt.whole()
        };
        if self.fmt.sent >= total {
            self.done = true;
            // the last chunk is out: the slot is free for the next in line
            self.permit = None;
            if let Some(f) = &mut self.fault
                && f.kind == FaultKind::NoDone
            {
                // the stream ends with its last event, without the [DONE] terminator
                if bytes.ends_with(sse::DONE) {
                    bytes.truncate(bytes.len() - sse::DONE.len());
                }
                f.fired = true;
                f.faults.fired(f.kind);
            }
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))))
    }

    /// The planned steps just sent (one per streamed event, all of a whole response) leave the
    /// plan; the verifying ones count in `/metrics`.
    fn spec_steps_sent(&mut self) {
        let Some(p) = &mut self.plan else { return };
        let take = if self.stream { 1 } else { p.len() };
        for _ in 0..take {
            let Some(s) = p.pop_front() else { break };
            // the prefill's token, the first, is no verifying step
            if self.spec_prefill_sent {
                spec::count(&self.metrics, self.spec_draft, s);
            }
            self.spec_prefill_sent = true;
        }
    }

    /// slow-drip: the whole response, one byte at a time.
    fn poll_drip(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        let Some(f) = self.fault.as_mut() else {
            return Poll::Ready(None);
        };
        if !f.fired {
            f.fired = true;
            f.faults.fired(f.kind);
        }
        if f.drip.is_empty() {
            let total = self.fmt.max_tokens;
            if self.fmt.sent >= total {
                self.done = true;
                return Poll::Ready(None);
            }
            let bytes = if self.stream {
                let mut out = Vec::with_capacity(512);
                let n = match &self.plan {
                    Some(p) => p.front().map_or(1, |s| s.tokens),
                    None => self.per_chunk,
                };
                self.fmt.chunk(&mut out, n.min(total - self.fmt.sent));
                out
            } else {
                self.fmt.whole()
            };
            self.spec_steps_sent();
            let Some(f) = self.fault.as_mut() else {
                return Poll::Ready(None);
            };
            f.drip.extend(bytes);
        }
        let Some(f) = self.fault.as_mut() else {
            return Poll::Ready(None);
        };
        let every = f.faults.drip;
        let sleep = f.drip_sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        sleep.as_mut().reset(tokio::time::Instant::now() + every);
        match f.drip.pop_front() {
            Some(b) => Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(&[b]))))),
            None => Poll::Ready(None),
        }
    }
}
