//! mock-engine: the built-in inference server.
//!
//! It speaks the OpenAI chat and completions routes (byte for byte like vLLM), TGI's
//! `/generate_stream`, SGLang's `/generate`, llama.cpp's `/completion` and Ollama's
//! `/api/generate`, with `/health`, `/v1/models`, `/version` and `/metrics` (vLLM's names).
//!
//! Exact mode: the first content chunk goes out `ttft_ms` after the request arrived and chunk
//! k at `ttft_ms + k * itl_ms`, each carrying `tokens_per_chunk` tokens, on absolute
//! deadlines (so nothing drifts), and exactly `max_tokens` tokens in all.
//! Simulated mode: see [`sim`].

pub mod format;
pub mod sim;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
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
use tokio::net::TcpListener;
use tokio::sync::mpsc;

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
    /// What `/v1/models` says owns the model (vllm, sglang, ...): lets tests exercise probing.
    pub owned_by: String,
    pub version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: "mock-llm".into(),
            ttft_ms: 50.0,
            itl_ms: 10.0,
            tokens_per_chunk: 1,
            sim: None,
            owned_by: "servebench".into(),
            version: format!("mock-{}", crate::meta::VERSION),
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
    pub requests_started: AtomicU64,
    pub preemptions: AtomicU64,
    pub active_streams: AtomicU64,
}

struct Shared {
    cfg: Config,
    metrics: Arc<Metrics>,
    sim: Option<mpsc::UnboundedSender<SimReq>>,
    next_id: AtomicU64,
    started: Instant,
}

type Resp = Response<MockBody>;

/// Bind and serve until the process ends. Returns after binding: the address and the task.
pub async fn serve(cfg: Config, addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let metrics = Arc::new(Metrics::default());
    if metrics.kv_total.load(Ordering::Relaxed) == 0 {
        metrics
            .kv_total
            .store(cfg.sim.map(|s| s.kv_tokens).unwrap_or(262_144), Ordering::Relaxed);
    }
    let sim = cfg.sim.map(|p| sim::start(p, metrics.clone()));
    let shared = Arc::new(Shared {
        cfg,
        metrics,
        sim,
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
            let shared = shared.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(shared, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
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

async fn handle(sh: Arc<Shared>, req: Request<Incoming>) -> Resp {
    // The request is here once its headers are parsed: the TTFT clock starts now, before
    // the body is read (a slow body read is the server's time, as on a real engine).
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method.as_str(), path.as_str()) {
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
                "/v1/chat/completions" => Proto::Chat,
                "/v1/completions" => Proto::Completions,
                "/generate_stream" => Proto::Tgi,
                "/generate" => Proto::Sglang,
                "/completion" | "/completions" => Proto::Llamacpp,
                "/api/generate" => Proto::Ollama,
                _ => {
                    return error(StatusCode::NOT_FOUND, &format!("no route {p}"), "NotFoundError");
                }
            };
            let body = match Limited::new(req.into_body(), 256 << 20).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read body: {e}"),
                        "BadRequestError",
                    );
                }
            };
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("body is not JSON: {e}"),
                        "BadRequestError",
                    );
                }
            };
            generate(&sh, proto, &v, arrived)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no route {method} {path}"),
            "NotFoundError",
        ),
    }
}

fn metrics_text(sh: &Shared) -> String {
    let m = &sh.metrics;
    let model = &sh.cfg.model;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (running, waiting) = if sh.sim.is_some() {
        (g(&m.running), g(&m.waiting))
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
         vllm:prefix_cache_hits_total{{{labels}}} 0\n\
         # HELP process_uptime_seconds Seconds since the server started.\n\
         # TYPE process_uptime_seconds gauge\n\
         process_uptime_seconds {:.3}\n",
        g(&m.prompt_tokens),
        g(&m.generation_tokens),
        g(&m.requests_done),
        g(&m.preemptions),
        g(&m.prompt_tokens),
        sh.started.elapsed().as_secs_f64(),
    )
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

fn generate(sh: &Arc<Shared>, proto: Proto, v: &Value, arrived: Instant) -> Resp {
    // vLLM answers an unknown model with 404 before streaming.
    if matches!(proto, Proto::Chat | Proto::Completions)
        && let Some(m) = v.get("model").and_then(|m| m.as_str())
        && !m.is_empty()
        && m != sh.cfg.model
    {
        return error(
            StatusCode::NOT_FOUND,
            &format!("The model `{m}` does not exist."),
            "NotFoundError",
        );
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
    let id = match proto {
        Proto::Chat => format!("chatcmpl-{n:016x}"),
        Proto::Completions => format!("cmpl-{n:016x}"),
        _ => format!("{n:032x}"),
    };
    let pt = prompt_tokens(proto, v);
    let fmt = Fmt {
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
    };
    sh.metrics.requests_started.fetch_add(1, Ordering::Relaxed);
    let source = match &sh.sim {
        Some(tx) => {
            let (ttx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(SimReq {
                prompt_tokens: pt,
                max_tokens,
                tx: ttx,
            });
            Source::Sim { rx }
        }
        None => {
            if sh.cfg.sim.is_none() {
                sh.metrics.prompt_tokens.fetch_add(pt as u64, Ordering::Relaxed);
            }
            Source::Exact {
                first: arrived + Duration::from_secs_f64(sh.cfg.ttft_ms / 1e3),
                itl: Duration::from_secs_f64(sh.cfg.itl_ms / 1e3),
                sleep: None,
            }
        }
    };
    let exact = sh.sim.is_none();
    let body = MockBody {
        inner: Inner::Stream(Box::new(StreamBody {
            fmt,
            source,
            chunk: 0,
            per_chunk: if exact { sh.cfg.tokens_per_chunk.max(1) } else { 1 },
            stream,
            metrics: sh.metrics.clone(),
            exact,
            done: false,
            pending_tokens: 0,
        })),
    };
    sh.metrics.active_streams.fetch_add(1, Ordering::Relaxed);
    let ctype = match (stream, proto) {
        (false, _) => "application/json",
        (true, Proto::Ollama) => "application/x-ndjson",
        (true, _) => "text/event-stream",
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", ctype)
        .body(body)
        .expect("valid response")
}

enum Source {
    Exact {
        first: Instant,
        itl: Duration,
        sleep: Option<timer::Sleep>,
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
    stream: bool,
    metrics: Arc<Metrics>,
    exact: bool,
    done: bool,
    pending_tokens: u32,
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        self.metrics.active_streams.fetch_sub(1, Ordering::Relaxed);
        if self.exact && self.done {
            self.metrics.requests_done.fetch_add(1, Ordering::Relaxed);
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
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(s) => s.poll_next(cx),
        }
    }
}

impl StreamBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let total = self.fmt.max_tokens;
        // How many tokens the next write carries, once its time has come.
        let n = match &mut self.source {
            Source::Exact { first, itl, sleep } => {
                let (at, n) = if self.stream {
                    (*first + *itl * self.chunk, self.per_chunk.min(total - self.fmt.sent))
                } else {
                    let chunks = total.div_ceil(self.per_chunk);
                    (*first + *itl * (chunks - 1), total)
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
        self.chunk += 1;
        if self.exact {
            self.metrics.generation_tokens.fetch_add(n as u64, Ordering::Relaxed);
        }
        let bytes = if self.stream {
            let mut out = Vec::with_capacity(512);
            self.fmt.chunk(&mut out, n);
            out
        } else {
            self.fmt.whole()
        };
        if self.fmt.sent >= total {
            self.done = true;
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))))
    }
}
