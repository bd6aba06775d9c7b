//! The one HTTP/1.1 client (replay's measured requests, probes, engine warm-up, metrics
//! scrapes), with keep-alive reuse: the request is written and the response read in the
//! caller's task from one small buffer ([`Client::stream`], [`Client::get`]).
//!
//! replay owns its connections instead of using a general pooled client so that it knows
//! exactly when a request's first byte goes out (`sent_at`), never queues a request behind
//! another on a client-side pool limit, and keeps per-stream memory and CPU small.
//!
//! `https://` targets speak TLS (rustls, see [`super::tls`]) on the same connections. Every
//! response says what its connection cost ([`ConnUse`]): opened for it (TCP connect and TLS
//! handshake times, spent before `sent_at`), opened ahead by the warm pool
//! ([`Client::prewarm`], [`Client::keep_spare`]) off the request's path, or kept alive.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::tls::{self, TlsError, TlsOptions};
use crate::endpoint::{Endpoint, Scheme};
use crate::schema::Connection as ConnKind;

/// Why a request could not get a response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("connection failed before the response headers: {0}")]
    BeforeHeaders(String),
}

/// What a request's connection cost: its kind, and for a connection opened for it or ahead
/// of it, the TCP connect and TLS handshake times (ms; TLS None over plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnUse {
    pub kind: ConnKind,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
}

/// An error and its causes on one line ("connection error: Connection reset by peer (os
/// error 104)"): hyper's own message alone rarely says what happened.
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// HTTP client for one target.
pub struct Client {
    pub target: Endpoint,
    /// The `Host` header, from the target.
    host: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Kept-alive connections, and the warm pool's.
    pool: Arc<Pool>,
    keep_alive: bool,
    /// Header values (and bearer tokens) never to be recorded, even when a server echoes them.
    secrets: Vec<String>,
}

/// Where connections come from and wait between requests.
struct Pool {
    host: String,
    port: u16,
    /// For `https://` targets: the connector and the name the certificate must carry.
    tls: Option<(TlsConnector, rustls_pki_types::ServerName<'static>)>,
    idle: Mutex<Vec<Conn>>,
    /// Connections the warm pool keeps ready (0: none).
    spare: AtomicUsize,
    /// Warm connections being opened now.
    opening: AtomicUsize,
}

impl Client {
    /// A client of `target`; `tls` says how an `https://` target is trusted (unused over
    /// plain HTTP, so a machine without root certificates still speaks http).
    pub fn new(
        target: Endpoint,
        headers: Vec<(HeaderName, HeaderValue)>,
        keep_alive: bool,
        tls: &TlsOptions,
    ) -> Result<Client, TlsError> {
        let mut secrets: Vec<String> = Vec::new();
        for (_, v) in &headers {
            let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
            if let Some((_, token)) = v.split_once(' ') {
                secrets.push(token.trim().to_string());
            }
            secrets.push(v);
        }
        // short values would mangle messages more than they protect
        secrets.retain(|s| s.len() >= 6);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        // Endpoint::parse admits no byte a header value refuses; a hand-made host that holds
        // one is sent as an empty Host rather than a panic.
        let host = HeaderValue::from_str(&target.authority()).unwrap_or_else(|_| HeaderValue::from_static(""));
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => Some((
                TlsConnector::from(tls::client_config(tls)?),
                tls::server_name(&target.host)?,
            )),
        };
        let pool = Arc::new(Pool {
            host: target.host.clone(),
            port: target.port,
            tls,
            idle: Mutex::new(Vec::new()),
            spare: AtomicUsize::new(0),
            opening: AtomicUsize::new(0),
        });
        Ok(Client {
            target,
            host,
            headers,
            pool,
            keep_alive,
            secrets,
        })
    }

    /// `s` with every header value this client sends (and bearer token) replaced by
    /// `<redacted>`: a server that echoes a key in its error message never gets it recorded.
    pub fn redact(&self, s: &str) -> String {
        let mut out = s.to_string();
        for k in &self.secrets {
            if out.contains(k.as_str()) {
                out = out.replace(k.as_str(), "<redacted>");
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// The streaming path: replay's own HTTP/1.1 for its one request shape (a POST with a
// Content-Length body, a streamed response), read in the request's own task from one buffer.
// hyper's connection API costs a connection task, a body channel between it and the reader
// (two wake-ups and a BytesMut split per frame) and ~21 KB per connection (BENCHMARKS.md).
// Response framing follows RFC 9112 section 6.3: no body for 1xx/204/304, chunked when the
// last transfer coding is chunked, another transfer coding or no length reads to close,
// else Content-Length.

/// Read buffer per connection: enough for several events of one chunk each. A read that
/// fills it (a burst: many events at once) doubles it up to [`BURST_BUF`], so floods take
/// fewer reads; only a larger head grows it further (up to [`HEAD_LIMIT`]).
const READ_BUF: usize = 2048;
const BURST_BUF: usize = 8192;
/// Largest response head, and largest buffer.
const HEAD_LIMIT: usize = 64 * 1024;
/// Longest chunk-size or trailer line.
const LINE_LIMIT: usize = 4096;

/// The largest body [`Client::get`] keeps (a Prometheus page of a busy engine is a few MiB).
const GET_LIMIT: usize = 64 << 20;

/// The methods this client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over TCP.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(t) => t.read(buf).await,
            Io::Tls(t) => t.read(buf).await,
        }
    }

    /// Write all of `b` and flush it (TLS buffers records until flushed).
    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain(t) => t.write_all(b).await,
            Io::Tls(t) => {
                t.write_all(b).await?;
                t.flush().await
            }
        }
    }

    /// Open and quiet: a read that would wait. Over TLS this also takes in what a server
    /// sends between requests (TLS 1.3 session tickets) without losing a byte; a close
    /// (EOF or close_notify) or unexpected data make the connection unusable.
    fn quiet(&mut self) -> bool {
        let mut one = [0u8; 1];
        let mut rb = ReadBuf::new(&mut one);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let r = match self {
            Io::Plain(t) => Pin::new(t).poll_read(&mut cx, &mut rb),
            Io::Tls(t) => Pin::new(t.as_mut()).poll_read(&mut cx, &mut rb),
        };
        r.is_pending()
    }
}

/// One connection.
struct Conn {
    io: Io,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Requests sent on it so far.
    uses: u32,
    connect_ms: f64,
    tls_ms: Option<f64>,
}

impl Conn {
    /// Read more bytes after `end` (compacting or growing the buffer first); 0 at EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.end == self.buf.len() {
                if self.buf.len() >= HEAD_LIMIT {
                    return Err(std::io::Error::other(format!(
                        "a response head or line over {HEAD_LIMIT} bytes"
                    )));
                }
                self.buf.resize((self.buf.len() * 2).min(HEAD_LIMIT), 0);
            }
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        if self.end == self.buf.len() && self.buf.len() < BURST_BUF {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Ok(n)
    }

    /// The next line (without its CR LF) as a range of `buf`, when it is all there.
    fn line(&self) -> Option<(usize, usize)> {
        let nl = self.pos + memchr::memchr(b'\n', &self.buf[self.pos..self.end])?;
        let e = if nl > self.pos && self.buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some((e, nl + 1))
    }

    /// Usable again: nothing unread and the peer has not closed (checked without waiting).
    fn idle_ok(&mut self) -> bool {
        self.pos == self.end && self.io.quiet()
    }

    /// What using it for the next request costs that request.
    fn take_use(&mut self, opened_now: bool) -> ConnUse {
        let kind = match (opened_now, self.uses) {
            (true, _) => ConnKind::New,
            (false, 0) => ConnKind::Warm,
            (false, _) => ConnKind::Reused,
        };
        self.uses += 1;
        match kind {
            ConnKind::Reused => ConnUse {
                kind,
                connect_ms: None,
                tls_ms: None,
            },
            _ => ConnUse {
                kind,
                connect_ms: Some(self.connect_ms),
                tls_ms: self.tls_ms,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    Close,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
    Done,
}

/// A streamed response whose head has arrived; read its body with [`Stream::data`].
pub struct Stream {
    pub sent_at: Instant,
    pub status: u16,
    /// What the connection cost this request.
    pub conn_use: ConnUse,
    conn: Option<Conn>,
    state: BodyState,
    reusable: bool,
}

impl Stream {
    /// The next piece of the body, borrowed from the connection's buffer; None at its end.
    /// An error ends the stream (the connection is not reused).
    pub async fn data(&mut self) -> Option<Result<&[u8], String>> {
        let c = self.conn.as_mut()?;
        let r = loop {
            let avail = (c.end - c.pos) as u64;
            match self.state {
                BodyState::Done => return None,
                BodyState::Length(0) => {
                    self.state = BodyState::Done;
                    return None;
                }
                BodyState::Length(left) | BodyState::ChunkData(left) if avail > 0 => {
                    let k = left.min(avail);
                    self.state = match self.state {
                        BodyState::Length(_) => BodyState::Length(left - k),
                        _ if left == k => BodyState::ChunkEnd,
                        _ => BodyState::ChunkData(left - k),
                    };
                    let s = c.pos;
                    c.pos += k as usize;
                    break Ok((s, k as usize));
                }
                BodyState::Close if avail > 0 => {
                    let s = c.pos;
                    c.pos = c.end;
                    break Ok((s, avail as usize));
                }
                BodyState::ChunkSize | BodyState::Trailer => {
                    if let Some((e, next)) = c.line() {
                        let line = &c.buf[c.pos..e];
                        if self.state == BodyState::Trailer {
                            self.state = if line.is_empty() {
                                BodyState::Done
                            } else {
                                BodyState::Trailer
                            };
                        } else {
                            match chunk_size(line) {
                                Some(0) => self.state = BodyState::Trailer,
                                Some(n) => self.state = BodyState::ChunkData(n),
                                None => {
                                    break Err(format!(
                                        "invalid chunk size line {:?}",
                                        String::from_utf8_lossy(&line[..line.len().min(40)])
                                    ));
                                }
                            }
                        }
                        c.pos = next;
                        if self.state == BodyState::Done {
                            return None;
                        }
                        continue;
                    }
                    if avail as usize > LINE_LIMIT {
                        break Err(format!("a chunk size or trailer line over {LINE_LIMIT} bytes"));
                    }
                }
                BodyState::ChunkEnd => {
                    let b = &c.buf[c.pos..c.end];
                    if b.starts_with(b"\r\n") || b.starts_with(b"\n") {
                        c.pos += if b[0] == b'\r' { 2 } else { 1 };
                        self.state = BodyState::ChunkSize;
                        continue;
                    }
                    if !(b.is_empty() || b == b"\r") {
                        break Err("a chunk's data did not end with CRLF".into());
                    }
                }
                _ => {}
            }
            // more bytes are needed
            match c.fill().await {
                Ok(0) if self.state == BodyState::Close => {
                    self.state = BodyState::Done;
                    return None;
                }
                Ok(0) => {
                    let what = match self.state {
                        BodyState::Length(n) => format!("{n} bytes before the end of the body"),
                        _ => "before the end of the chunked body".into(),
                    };
                    break Err(format!("the server closed the connection {what}"));
                }
                Ok(_) => {}
                Err(e) => break Err(with_causes(&e)),
            }
        };
        match r {
            Ok((s, n)) => self.conn.as_ref().map(|c| Ok(&c.buf[s..s + n])),
            Err(m) => {
                self.conn = None;
                self.state = BodyState::Done;
                Some(Err(m))
            }
        }
    }

    /// The body, read to its end (at most `limit` bytes kept) and whether it ended cleanly.
    pub async fn read_to_end(&mut self, limit: usize) -> (Vec<u8>, bool) {
        let mut body = Vec::new();
        while let Some(d) = self.data().await {
            match d {
                Ok(d) => body.extend_from_slice(&d[..d.len().min(limit.saturating_sub(body.len()))]),
                Err(_) => return (body, false),
            }
        }
        (body, true)
    }
}

/// The size of a chunk from its size line (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line.split(|&b| b == b';').next()?;
    let hex = hex.trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &b in hex {
        n = n * 16 + (b as char).to_digit(16)? as u64;
    }
    Some(n)
}

/// What the response head says about the body.
struct Head {
    status: u16,
    state: BodyState,
    keep_alive: bool,
}

/// Read and parse a response head (skipping 1xx informational responses).
async fn read_head(c: &mut Conn) -> Result<Head, (String, bool)> {
    loop {
        if c.end > c.pos {
            let mut hs = [httparse::EMPTY_HEADER; 96];
            let mut r = httparse::Response::new(&mut hs);
            match r.parse(&c.buf[c.pos..c.end]) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = r.code.unwrap_or(0);
                    let v11 = r.version == Some(1);
                    let (mut chunked, mut coded, mut len, mut close, mut ka) = (false, false, None, false, false);
                    for h in r.headers.iter() {
                        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
                        if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            coded = true;
                            chunked = v
                                .rsplit(',')
                                .next()
                                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
                        } else if h.name.eq_ignore_ascii_case("content-length") {
                            let n: u64 = v
                                .parse()
                                .map_err(|_| (format!("invalid Content-Length {v:?}"), false))?;
                            if len.is_some_and(|l| l != n) {
                                return Err(("conflicting Content-Length headers".into(), false));
                            }
                            len = Some(n);
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            for t in v.split(',') {
                                close |= t.trim().eq_ignore_ascii_case("close");
                                ka |= t.trim().eq_ignore_ascii_case("keep-alive");
                            }
                        }
                    }
                    c.pos += n;
                    if (100..200).contains(&status) && status != 101 {
                        continue;
                    }
                    let state = if (100..200).contains(&status) || status == 204 || status == 304 {
                        BodyState::Length(0)
                    } else if coded {
                        if chunked {
                            BodyState::ChunkSize
                        } else {
                            BodyState::Close
                        }
                    } else if let Some(n) = len {
                        BodyState::Length(n)
                    } else {
                        BodyState::Close
                    };
                    let keep_alive = state != BodyState::Close && !close && (v11 || ka);
                    return Ok(Head {
                        status,
                        state,
                        keep_alive,
                    });
                }
                Ok(httparse::Status::Partial) => {}
                // A TLS record (alert 0x15, handshake 0x16) where a status line belongs.
                Err(_) if matches!(c.buf.get(c.pos), Some(0x15 | 0x16)) => {
                    return Err((
                        "the server answered in TLS: it speaks https; use https:// in the URL".to_string(),
                        false,
                    ));
                }
                Err(e) => return Err((format!("invalid response head: {e}"), false)),
            }
        }
        let got_any = c.end > c.pos;
        match c.fill().await {
            Ok(0) => {
                let m = if got_any {
                    "the server closed the connection in the middle of the response head"
                } else {
                    "the server closed the connection without a response"
                };
                return Err((m.into(), !got_any));
            }
            Ok(_) => {}
            Err(e) => {
                let retry = !got_any
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    );
                return Err((with_causes(&e), retry));
            }
        }
    }
}

impl Pool {
    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Open a connection: TCP, then the TLS handshake for https.
    async fn connect(&self) -> Result<Conn, SendError> {
        let t0 = Instant::now();
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| SendError::Connect {
                addr: self.addr(),
                source: e,
            })?;
        let _ = tcp.set_nodelay(true);
        let t1 = Instant::now();
        let connect_ms = (t1 - t0).as_secs_f64() * 1e3;
        let (io, tls_ms) = match &self.tls {
            None => (Io::Plain(tcp), None),
            Some((connector, name)) => {
                let s = connector.connect(name.clone(), tcp).await.map_err(|e| SendError::Tls {
                    addr: self.addr(),
                    reason: tls::explain(&e),
                })?;
                (Io::Tls(Box::new(s)), Some(t1.elapsed().as_secs_f64() * 1e3))
            }
        };
        Ok(Conn {
            io,
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            uses: 0,
            connect_ms,
            tls_ms,
        })
    }

    /// A kept or warm connection that is still usable, if any.
    fn pop_idle(&self) -> Option<Conn> {
        loop {
            let c = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match c {
                Some(mut c) => {
                    if c.idle_ok() {
                        return Some(c);
                    }
                }
                None => return None,
            }
        }
    }

    fn put(&self, c: Conn) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    /// Open warm connections in the background until `spare` wait idle (or are opening).
    fn top_up(self: &Arc<Self>) {
        let want = self.spare.load(Ordering::Relaxed);
        if want == 0 {
            return;
        }
        let have = self.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        let opening = self.opening.load(Ordering::Relaxed);
        for _ in have + opening..want {
            self.opening.fetch_add(1, Ordering::Relaxed);
            let pool = self.clone();
            tokio::spawn(async move {
                if let Ok(c) = pool.connect().await {
                    pool.put(c);
                }
                pool.opening.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
}

impl Client {
    /// Open `n` connections at once and keep them for the first requests, so that their
    /// set-up is off the run's schedule. The first failure is returned (a TLS failure here
    /// is the clearest place to say it, before any request is sent).
    pub async fn prewarm(&self, n: usize) -> Result<(), SendError> {
        let opened = futures_util::future::join_all((0..n).map(|_| self.pool.connect())).await;
        let mut first_err = None;
        for c in opened {
            match c {
                Ok(c) => self.pool.put(c),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Keep `n` connections open ahead of need during the run (the warm pool): whenever a
    /// request takes one, another is opened in the background. A request that finds none
    /// opens its own, and that set-up shows in its due→sent time.
    pub fn keep_spare(&self, n: usize) {
        self.pool.spare.store(n, Ordering::Relaxed);
    }

    /// The bytes of a `method` request of `body` to `path`: our Host, Content-Type and
    /// Connection unless the run's own headers set them; Content-Length always ours (a GET
    /// without a body has none).
    fn request_bytes(&self, method: Method, path: &str, body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut r = Vec::with_capacity(256 + body.len());
        let _ = write!(r, "{} {} HTTP/1.1\r\n", method.as_str(), self.target.join(path));
        let custom = |n: &HeaderName| self.headers.iter().any(|(k, _)| k == n);
        let mut header = |k: &[u8], v: &[u8]| {
            r.extend_from_slice(k);
            r.extend_from_slice(b": ");
            r.extend_from_slice(v);
            r.extend_from_slice(b"\r\n");
        };
        if !custom(&hyper::header::HOST) {
            header(b"host", self.host.as_bytes());
        }
        if !body.is_empty() && !custom(&hyper::header::CONTENT_TYPE) {
            header(b"content-type", b"application/json");
        }
        if !self.keep_alive && !custom(&hyper::header::CONNECTION) {
            header(b"connection", b"close");
        }
        for (k, v) in &self.headers {
            if k != hyper::header::CONTENT_LENGTH && k != hyper::header::TRANSFER_ENCODING {
                header(k.as_str().as_bytes(), v.as_bytes());
            }
        }
        if method == Method::Post || !body.is_empty() {
            header(b"content-length", body.len().to_string().as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body);
        r
    }

    /// Send a POST and wait for the response head (replay's hot path); read its body with
    /// [`Stream::data`]. `sent_at` is the instant the request is written (after connecting).
    /// A kept-alive connection the server closed meanwhile is retried once on a fresh one.
    pub async fn stream(&self, path: &str, body: &[u8]) -> Result<Stream, SendError> {
        self.send(Method::Post, path, body).await
    }

    /// GET a small resource (probes, metrics): status and body (at most `limit` bytes kept),
    /// all within `timeout`. The connection is kept for the next call when the client keeps
    /// connections alive.
    pub async fn get(&self, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        let fut = async {
            let mut s = self.send(Method::Get, path, b"").await.map_err(|e| e.to_string())?;
            let (body, clean) = s.read_to_end(GET_LIMIT).await;
            if !clean {
                return Err("the connection failed while reading the response body".to_string());
            }
            self.release_stream(&mut s);
            Ok((s.status, body))
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    async fn send(&self, method: Method, path: &str, body: &[u8]) -> Result<Stream, SendError> {
        let req = self.request_bytes(method, path, body);
        let mut retried = false;
        loop {
            let idle = self.pool.pop_idle();
            self.pool.top_up();
            let reused = idle.is_some();
            let mut c = match idle {
                Some(c) => c,
                None => self.pool.connect().await?,
            };
            let conn_use = c.take_use(!reused);
            let sent_at = Instant::now();
            if let Err(e) = c.io.write_all(&req).await {
                if reused && !retried {
                    retried = true;
                    continue;
                }
                return Err(SendError::BeforeHeaders(with_causes(&e)));
            }
            match read_head(&mut c).await {
                Ok(h) => {
                    return Ok(Stream {
                        sent_at,
                        status: h.status,
                        conn_use,
                        conn: Some(c),
                        state: h.state,
                        reusable: h.keep_alive && self.keep_alive,
                    });
                }
                Err((_, true)) if reused && !retried => retried = true,
                Err((m, _)) => return Err(SendError::BeforeHeaders(m)),
            }
        }
    }

    /// Return the connection of a stream whose body was read to its end.
    pub fn release_stream(&self, s: &mut Stream) {
        if s.reusable
            && s.state == BodyState::Done
            && let Some(c) = s.conn.take()
            && c.pos == c.end
        {
            self.pool.put(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection-at-a-time server: for each accepted connection, reads requests and
    /// answers each with the next canned response (raw bytes, written in the given pieces);
    /// a response list ends the connection after it is sent.
    async fn serve(conns: Vec<Vec<Vec<&'static [u8]>>>) -> (Endpoint, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let h = tokio::spawn(async move {
            let mut seen = Vec::new();
            for responses in conns {
                let (mut s, _) = l.accept().await.unwrap();
                for pieces in responses {
                    // read one request: head, then Content-Length bytes
                    let mut req = Vec::new();
                    let mut b = [0u8; 4096];
                    loop {
                        let n = s.read(&mut b).await.unwrap();
                        req.extend_from_slice(&b[..n]);
                        if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&req[..p]).to_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .map(|v| v.trim().parse().unwrap())
                                .unwrap_or(0);
                            if req.len() >= p + 4 + len || n == 0 {
                                break;
                            }
                        }
                        if n == 0 {
                            break;
                        }
                    }
                    seen.push(req);
                    for p in pieces {
                        s.write_all(p).await.unwrap();
                        s.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
            seen
        });
        (Endpoint::parse(&url).unwrap(), h)
    }

    async fn body(s: &mut Stream) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        while let Some(d) = s.data().await {
            out.extend_from_slice(d?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn chunked_length_and_keep_alive_on_one_connection() {
        let (ep, srv) = serve(vec![vec![
            vec![
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r",
                b"\nhello\r\n1;ext=1\r\n ",
                b"\r\n0\r\nx-trailer: 1\r\n\r\n",
            ],
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", b"c"],
            vec![b"HTTP/1.1 204 No Content\r\n\r\n"],
        ]])
        .await;
        let c = Client::new(
            ep,
            vec![(HeaderName::from_static("x-key"), HeaderValue::from_static("v"))],
            true,
            &TlsOptions::default(),
        )
        .unwrap();
        let mut s = c.stream("/v1/x", b"{}").await.unwrap();
        assert_eq!(s.status, 200);
        assert_eq!(body(&mut s).await.unwrap(), b"hello ");
        c.release_stream(&mut s);
        let mut s = c.stream("/v1/x", b"{\"a\":1}").await.unwrap();
        assert_eq!(body(&mut s).await.unwrap(), b"abc");
        c.release_stream(&mut s);
        let mut s = c.stream("/v1/x", b"").await.unwrap();
        assert_eq!((s.status, body(&mut s).await.unwrap()), (204, Vec::new()));
        let seen = srv.await.unwrap();
        assert_eq!(seen.len(), 3, "all three on one connection");
        let first = String::from_utf8(seen[0].clone()).unwrap();
        assert!(first.starts_with("POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:"), "{first}");
        assert!(
            first.contains("x-key: v\r\n") && first.ends_with("content-length: 2\r\n\r\n{}"),
            "{first}"
        );
    }

    #[tokio::test]
    async fn close_delimited_bodies_and_truncation() {
        let (ep, srv) = serve(vec![
            vec![vec![b"HTTP/1.0 200 OK\r\n\r\ndata: a\n\n", b"data: b\n\n"]],
            vec![vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"]],
            vec![vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]],
            vec![vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]],
            vec![vec![b"HTTP/1.1 200 OK\r\nContent-"]],
            vec![vec![]],
        ])
        .await;
        let c = Client::new(ep, Vec::new(), true, &TlsOptions::default()).unwrap();
        let mut s = c.stream("/", b"{}").await.unwrap();
        assert_eq!(body(&mut s).await.unwrap(), b"data: a\n\ndata: b\n\n");
        c.release_stream(&mut s);
        assert!(
            c.pool.idle.lock().unwrap().is_empty(),
            "a close-delimited body's connection is not reused"
        );
        let mut s = c.stream("/", b"{}").await.unwrap();
        let e = body(&mut s).await.unwrap_err();
        assert!(e.contains("before the end of the chunked body"), "{e}");
        let mut s = c.stream("/", b"{}").await.unwrap();
        let e = body(&mut s).await.unwrap_err();
        assert!(e.contains("7 bytes before the end of the body"), "{e}");
        let mut s = c.stream("/", b"{}").await.unwrap();
        let e = body(&mut s).await.unwrap_err();
        assert!(e.contains("invalid chunk size"), "{e}");
        let e = c.stream("/", b"{}").await.err().unwrap().to_string();
        assert!(e.contains("in the middle of the response head"), "{e}");
        let e = c.stream("/", b"{}").await.err().unwrap().to_string();
        assert!(e.contains("without a response"), "{e}");
        srv.await.unwrap();
    }

    /// A kept-alive connection the server closed while idle is retried once, fresh.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced() {
        let (ep, srv) = serve(vec![
            vec![vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"]],
            vec![vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"]],
        ])
        .await;
        let c = Client::new(ep, Vec::new(), true, &TlsOptions::default()).unwrap();
        let mut s = c.stream("/", b"{}").await.unwrap();
        assert_eq!(body(&mut s).await.unwrap(), b"a");
        c.release_stream(&mut s);
        tokio::time::sleep(Duration::from_millis(50)).await; // the server has closed it
        let mut s = c.stream("/", b"{}").await.unwrap();
        assert_eq!(body(&mut s).await.unwrap(), b"b");
        srv.await.unwrap();
    }

    #[test]
    fn requests_carry_the_base_path_and_host() {
        let c = Client::new(
            Endpoint::parse("http://[::1]:9/proxy/v1").unwrap(),
            Vec::new(),
            false,
            &TlsOptions::default(),
        )
        .unwrap();
        let r = String::from_utf8(c.request_bytes(Method::Get, "/v1/models", b"")).unwrap();
        assert_eq!(
            r,
            "GET /proxy/v1/models HTTP/1.1\r\nhost: [::1]:9\r\nconnection: close\r\n\r\n"
        );
        let r = String::from_utf8(c.request_bytes(Method::Post, "/v1/completions", b"{}")).unwrap();
        assert!(r.starts_with("POST /proxy/v1/completions HTTP/1.1\r\n"), "{r}");
        assert!(r.ends_with("content-length: 2\r\n\r\n{}"), "{r}");
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let t = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let h = vec![
            (
                hyper::header::AUTHORIZATION,
                HeaderValue::from_static("Bearer sk-secret-123"),
            ),
            (HeaderName::from_static("x-id"), HeaderValue::from_static("ab")),
        ];
        let c = Client::new(t, h, true, &TlsOptions::default()).unwrap();
        assert_eq!(
            c.redact("HTTP 401: invalid key sk-secret-123 (Bearer sk-secret-123) ab"),
            "HTTP 401: invalid key <redacted> (<redacted>) ab"
        );
    }
}
