//! A bare streaming reader: the floor replay's client cost is measured against
//! (`make bench-client`). Tokio and hyper used directly, on one thread, with no recording:
//! N users in a closed loop, each on its own kept-alive connection, send the same streamed
//! OpenAI chat request as replay and read the response body to its end, counting SSE events
//! (`\n\n`) and noting the first content event and the end.
//!
//! ```text
//! cargo run --release --example bare_reader -- --url http://127.0.0.1:8100 --users 256 --requests 16384
//! ```
//!
//! Prints one JSON line: requests, events, wall_s, cpu_s (user+sys of this process),
//! delivered (time-weighted mean of requests in flight: sum of send-to-done / wall),
//! ttft_p50_ms and e2e_p50_ms.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Args {
    host: String,
    port: u16,
    users: usize,
    requests: usize,
    max_tokens: u32,
    continuous_usage: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bare_reader --url http://HOST:PORT [--users N] [--requests N] [--max-tokens N] [--no-continuous-usage]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        host: String::new(),
        port: 0,
        users: 256,
        requests: 16384,
        max_tokens: 128,
        continuous_usage: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--url" => {
                let u = v();
                let hp = u.strip_prefix("http://").unwrap_or_else(|| usage());
                let hp = hp.trim_end_matches('/');
                let (h, p) = hp.rsplit_once(':').unwrap_or_else(|| usage());
                a.host = h.to_string();
                a.port = p.parse().unwrap_or_else(|_| usage());
            }
            "--users" => a.users = v().parse().unwrap_or_else(|_| usage()),
            "--requests" => a.requests = v().parse().unwrap_or_else(|_| usage()),
            "--max-tokens" => a.max_tokens = v().parse().unwrap_or_else(|_| usage()),
            "--no-continuous-usage" => a.continuous_usage = false,
            _ => usage(),
        }
    }
    if a.host.is_empty() || a.users == 0 {
        usage()
    }
    a
}

#[derive(Default)]
struct Totals {
    events: u64,
    failed: u64,
    busy_s: f64,
    ttft_ms: Vec<f64>,
    e2e_ms: Vec<f64>,
}

fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn p50(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn user(a: Rc<Args>, body: Bytes, next: Rc<Cell<usize>>, tot: Rc<RefCell<Totals>>) {
    let authority = format!("{}:{}", a.host, a.port);
    let mut sender = None;
    loop {
        let i = next.get();
        if i >= a.requests {
            return;
        }
        next.set(i + 1);
        if sender.is_none() {
            let s = TcpStream::connect((a.host.as_str(), a.port)).await.expect("connect");
            let _ = s.set_nodelay(true);
            let (tx, conn) = http1::handshake(TokioIo::new(s)).await.expect("handshake");
            tokio::task::spawn_local(async move {
                let _ = conn.await;
            });
            sender = Some(tx);
        }
        let tx = sender.as_mut().expect("connected");
        if tx.ready().await.is_err() {
            sender = None;
            tot.borrow_mut().failed += 1;
            continue;
        }
        let req = Request::post("/v1/chat/completions")
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .expect("request");
        let sent = Instant::now();
        let Ok(mut resp) = tx.send_request(req).await else {
            sender = None;
            tot.borrow_mut().failed += 1;
            continue;
        };
        let mut events = 0u64;
        let mut first: Option<Instant> = None;
        let mut last_nl = false;
        let mut ok = resp.status().is_success();
        while let Some(f) = resp.body_mut().frame().await {
            let Ok(f) = f else {
                ok = false;
                break;
            };
            let Some(d) = f.data_ref() else { continue };
            if d.is_empty() {
                continue;
            }
            // events end with a blank line: count "\n\n", also across frame boundaries
            if last_nl && d[0] == b'\n' {
                events += 1;
            }
            events += memchr::memmem::find_iter(d, b"\n\n").count() as u64;
            last_nl = d[d.len() - 1] == b'\n';
            if first.is_none() {
                // the first event that carries text
                let has = memchr::memmem::find_iter(d, b"\"content\":\"").any(|p| d.get(p + 11) != Some(&b'"'));
                if has {
                    first = Some(Instant::now());
                }
            }
        }
        let done = Instant::now();
        let mut t = tot.borrow_mut();
        t.events += events;
        if !ok {
            t.failed += 1;
            sender = None;
            continue;
        }
        let e2e = done.duration_since(sent).as_secs_f64();
        t.busy_s += e2e;
        t.e2e_ms.push(e2e * 1e3);
        if let Some(f) = first {
            t.ttft_ms.push(f.duration_since(sent).as_secs_f64() * 1e3);
        }
    }
}

fn main() {
    let a = Rc::new(args());
    let stream_options = if a.continuous_usage {
        r#"{"include_usage":true,"continuous_usage_stats":true}"#
    } else {
        r#"{"include_usage":true}"#
    };
    let body = Bytes::from(format!(
        r#"{{"model":"mock-llm","messages":[{{"role":"user","content":"hello"}}],"max_tokens":{},"stream":true,"stream_options":{},"ignore_eos":true}}"#,
        a.max_tokens, stream_options
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tot = Rc::new(RefCell::new(Totals::default()));
    let next = Rc::new(Cell::new(0usize));
    let local = tokio::task::LocalSet::new();
    let cpu0 = cpu_s();
    let t0 = Instant::now();
    local.block_on(&rt, async {
        let mut hs = Vec::new();
        for _ in 0..a.users {
            hs.push(tokio::task::spawn_local(user(
                a.clone(),
                body.clone(),
                next.clone(),
                tot.clone(),
            )));
        }
        for h in hs {
            let _ = h.await;
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_s() - cpu0;
    let mut t = tot.borrow_mut();
    let n = t.e2e_ms.len();
    let ttft = p50(&mut t.ttft_ms);
    let e2e = p50(&mut t.e2e_ms);
    println!(
        "{{\"requests\":{n},\"failed\":{},\"events\":{},\"wall_s\":{wall:.4},\"cpu_s\":{cpu:.4},\"delivered\":{:.2},\"ttft_p50_ms\":{ttft:.4},\"e2e_p50_ms\":{e2e:.4}}}",
        t.failed,
        t.events,
        t.busy_s / wall
    );
}
