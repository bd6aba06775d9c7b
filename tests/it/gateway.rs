//! Gateways that reshape streams (issue 15): a small proxy between replay and mock-engine
//! re-frames every response the way HTTP gateways and ingresses do — chunk boundaries at
//! random places (SSE events split across chunks, inside `data:`, between `\r` and `\n`),
//! close-delimited bodies, bytes that arrived apart sent together, SSE re-serialized with
//! CRLF line ends — and replay must record the same rows as against the server directly:
//! every count unchanged, every timing unchanged except for the proxy's own small delay.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use servebench::schema::requests::col;

use crate::common::*;

/// How the proxy frames the response body it sends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// HTTP/1.1 chunked, with chunk boundaries at random places (keep-alive kept).
    Rechunk,
    /// Neither Transfer-Encoding nor Content-Length, `Connection: close`: the body ends when
    /// the proxy closes the connection.
    CloseDelimited,
}

/// What the proxy does to responses.
#[derive(Clone, Copy, Debug)]
struct Gateway {
    framing: Framing,
    seed: u64,
    /// Sleep up to this long between the proxy's writes, so that the client reads the
    /// pieces apart (0: write and flush each piece as soon as it is cut).
    pause_us: u64,
    /// Sometimes hold what one read from upstream brought and send it with the next read's
    /// bytes (events that arrived apart leave together).
    coalesce: bool,
    /// Re-serialize `text/event-stream` bodies with CRLF line ends.
    crlf: bool,
}

impl Gateway {
    fn new(framing: Framing, seed: u64) -> Gateway {
        Gateway {
            framing,
            seed,
            pause_us: 0,
            coalesce: false,
            crlf: false,
        }
    }
}

/// What the proxy did, to check that it really reshaped the streams.
#[derive(Default)]
struct Tally {
    /// responses relayed
    responses: AtomicU64,
    /// writes to the client (each flushed with TCP_NODELAY)
    writes: AtomicU64,
    /// chunks sent (re-chunking)
    chunks: AtomicU64,
    /// reads from upstream held back and sent with the next one
    held: AtomicU64,
    /// writes that ended inside a line (their last byte not a line feed)
    mid_line: AtomicU64,
    /// responses cut short: the upstream closed early or the client went away
    broken: AtomicU64,
}

/// The proxy: a loopback listener, one thread per client connection, one upstream
/// connection per request (the request forwarded byte for byte).
struct Proxy {
    url: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: &str, gw: Gateway) -> Proxy {
        let upstream = upstream.strip_prefix("http://").expect("an http URL").to_string();
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let (st, ta) = (stop.clone(), tally.clone());
        // a blocking accept (no polling delay before a new connection is served); Drop wakes
        // it with a connection of its own
        let handle = std::thread::spawn(move || {
            for (n, s) in l.incoming().enumerate() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(s) = s else { continue };
                let (up, ta) = (upstream.clone(), ta.clone());
                let seed = gw.seed.wrapping_mul(1_000_003).wrapping_add(n as u64);
                let rng = Xoshiro256PlusPlus::seed_from_u64(seed);
                std::thread::spawn(move || {
                    let mut c = Conn { gw, rng, tally: ta };
                    if c.serve(s, &up).is_err() {
                        c.tally.broken.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            tally,
            stop,
            handle: Some(handle),
        }
    }

    fn count(&self, f: impl Fn(&Tally) -> &AtomicU64) -> u64 {
        f(&self.tally).load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// An upstream body, decoded as it arrives.
enum Body {
    /// chunked: the decoder's state and the undecoded bytes
    Chunked(Dechunk, Vec<u8>),
    Length(u64),
    Close,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dechunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl Body {
    /// Decode `raw` (the next bytes from upstream) into `out`; true once the body is complete.
    fn feed(&mut self, raw: &[u8], out: &mut Vec<u8>) -> bool {
        match self {
            Body::Length(n) => {
                let take = (*n as usize).min(raw.len());
                out.extend_from_slice(&raw[..take]);
                *n -= take as u64;
                *n == 0
            }
            Body::Close => {
                out.extend_from_slice(raw);
                false
            }
            Body::Chunked(st, pend) => {
                pend.extend_from_slice(raw);
                let mut at = 0;
                loop {
                    let rest = &pend[at..];
                    match *st {
                        Dechunk::Size | Dechunk::Trailer => {
                            let Some(e) = rest.windows(2).position(|w| w == b"\r\n") else {
                                break;
                            };
                            let line = &rest[..e];
                            at += e + 2;
                            *st = if *st == Dechunk::Trailer {
                                if line.is_empty() {
                                    Dechunk::Done
                                } else {
                                    Dechunk::Trailer
                                }
                            } else {
                                let hex = String::from_utf8_lossy(line.split(|b| *b == b';').next().unwrap());
                                match u64::from_str_radix(hex.trim(), 16).expect("upstream chunk size") {
                                    0 => Dechunk::Trailer,
                                    n => Dechunk::Data(n),
                                }
                            };
                        }
                        Dechunk::Data(n) => {
                            if rest.is_empty() {
                                break;
                            }
                            let take = (n as usize).min(rest.len());
                            out.extend_from_slice(&rest[..take]);
                            at += take;
                            *st = if take as u64 == n {
                                Dechunk::DataEnd
                            } else {
                                Dechunk::Data(n - take as u64)
                            };
                        }
                        Dechunk::DataEnd => {
                            if rest.len() < 2 {
                                break;
                            }
                            assert_eq!(&rest[..2], b"\r\n", "upstream chunk data ends with CRLF");
                            at += 2;
                            *st = Dechunk::Size;
                        }
                        Dechunk::Done => break,
                    }
                }
                pend.drain(..at);
                *st == Dechunk::Done
            }
        }
    }
}

/// One client connection.
struct Conn {
    gw: Gateway,
    rng: Xoshiro256PlusPlus,
    tally: Arc<Tally>,
}

impl Conn {
    fn serve(&mut self, mut client: TcpStream, upstream: &str) -> std::io::Result<()> {
        client.set_nonblocking(false)?;
        client.set_nodelay(true)?;
        let mut pending = Vec::new();
        // the upstream connection, kept while the upstream keeps it (gateways pool theirs)
        let mut kept: Option<TcpStream> = None;
        while let Some(req) = read_request(&mut client, &mut pending)? {
            let reused = kept.take().and_then(|mut up| up.write_all(&req).is_ok().then_some(up));
            let mut up = match reused {
                Some(up) => up,
                None => {
                    let mut up = TcpStream::connect(upstream)?;
                    up.set_nodelay(true)?;
                    up.write_all(&req)?;
                    up
                }
            };
            let (client_open, upstream_open) = self.relay(&mut up, &mut client)?;
            if !client_open {
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            if upstream_open {
                kept = Some(up);
            }
        }
        Ok(())
    }

    /// Relay one response, re-framed; whether the client connection and the upstream one
    /// stay open.
    fn relay(&mut self, up: &mut TcpStream, client: &mut TcpStream) -> std::io::Result<(bool, bool)> {
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 16 * 1024];
        let (head_len, status, reason, headers) = loop {
            let n = up.read(&mut tmp)?;
            if n == 0 {
                return Err(std::io::Error::other("upstream closed before a response head"));
            }
            buf.extend_from_slice(&tmp[..n]);
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(len) = r.parse(&buf).expect("upstream response head") {
                let headers: Vec<(String, Vec<u8>)> = r
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect();
                break (len, r.code.unwrap(), r.reason.unwrap_or("").to_string(), headers);
            }
        };
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        };
        let mut body = if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Body::Chunked(Dechunk::Size, Vec::new())
        } else if let Some(n) = value("content-length") {
            Body::Length(n.trim().parse().expect("upstream Content-Length"))
        } else {
            Body::Close
        };
        let upstream_close = value("connection").is_some_and(|v| v.contains("close"));
        let sse = value("content-type").is_some_and(|v| v.contains("text/event-stream"));
        let keep = self.gw.framing == Framing::Rechunk && !upstream_close;

        let mut head = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
        for (n, v) in &headers {
            if !matches!(n.as_str(), "transfer-encoding" | "content-length" | "connection") {
                head.extend_from_slice(format!("{n}: ").as_bytes());
                head.extend_from_slice(v);
                head.extend_from_slice(b"\r\n");
            }
        }
        head.extend_from_slice(match (self.gw.framing, keep) {
            (Framing::Rechunk, true) => b"transfer-encoding: chunked\r\n\r\n".as_slice(),
            (Framing::Rechunk, false) => b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            (Framing::CloseDelimited, _) => b"connection: close\r\n\r\n",
        });
        self.send(client, &head)?;
        self.tally.responses.fetch_add(1, Ordering::Relaxed);

        let mut raw = buf.split_off(head_len);
        let mut held: Vec<u8> = Vec::new();
        loop {
            let mut data = Vec::new();
            let done = body.feed(&raw, &mut data);
            if self.gw.crlf && sse {
                data = data.iter().fold(Vec::new(), |mut v, &b| {
                    if b == b'\n' {
                        v.push(b'\r');
                    }
                    v.push(b);
                    v
                });
            }
            if !done && self.gw.coalesce && held.is_empty() && !data.is_empty() && self.rng.random_range(0..3) == 0 {
                held = data;
                self.tally.held.fetch_add(1, Ordering::Relaxed);
            } else {
                held.extend_from_slice(&data);
                let out = std::mem::take(&mut held);
                self.emit(client, &out)?;
            }
            if done {
                break;
            }
            let n = up.read(&mut tmp)?;
            if n == 0 {
                if matches!(body, Body::Close) {
                    let out = std::mem::take(&mut held);
                    self.emit(client, &out)?;
                    break;
                }
                return Err(std::io::Error::other("upstream closed in the middle of the body"));
            }
            raw = tmp[..n].to_vec();
        }
        if self.gw.framing == Framing::Rechunk {
            let last = b"0\r\n\r\n";
            let cut = self.rng.random_range(1..last.len());
            self.send(client, &last[..cut])?;
            self.send(client, &last[cut..])?;
        }
        Ok((keep, !upstream_close && !matches!(body, Body::Close)))
    }

    /// Send body bytes in the gateway's framing, cut at random places.
    fn emit(&mut self, client: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let wire = match self.gw.framing {
            Framing::CloseDelimited => data.to_vec(),
            Framing::Rechunk => {
                let mut wire = Vec::new();
                for piece in self.cut(data) {
                    // chunk sizes in either case of hex
                    if self.rng.random_range(0..2) == 0 {
                        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    } else {
                        wire.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
                    }
                    wire.extend_from_slice(piece);
                    wire.extend_from_slice(b"\r\n");
                    self.tally.chunks.fetch_add(1, Ordering::Relaxed);
                }
                wire
            }
        };
        let pieces: Vec<Vec<u8>> = self.cut(&wire).into_iter().map(<[u8]>::to_vec).collect();
        for p in pieces {
            self.send(client, &p)?;
        }
        Ok(())
    }

    /// `b` cut into 1 to 4 non-empty pieces at random places.
    fn cut<'a>(&mut self, b: &'a [u8]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = (0..self.rng.random_range(0..4))
            .filter(|_| b.len() > 1)
            .map(|_| self.rng.random_range(1..b.len()))
            .collect();
        at.sort_unstable();
        at.dedup();
        let mut out = Vec::new();
        let mut prev = 0;
        for c in at.into_iter().chain([b.len()]) {
            out.push(&b[prev..c]);
            prev = c;
        }
        out
    }

    /// One write, flushed at once (TCP_NODELAY), then the optional pause.
    fn send(&mut self, client: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
        client.write_all(b)?;
        client.flush()?;
        self.tally.writes.fetch_add(1, Ordering::Relaxed);
        if b.last() != Some(&b'\n') {
            self.tally.mid_line.fetch_add(1, Ordering::Relaxed);
        }
        if self.gw.pause_us > 0 {
            std::thread::sleep(Duration::from_micros(self.rng.random_range(0..=self.gw.pause_us)));
        }
        Ok(())
    }
}

/// Read one request (head and Content-Length body) from the client; None when it closed.
fn read_request(s: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let mut tmp = [0u8; 8192];
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Request::new(&mut hs);
        if let httparse::Status::Complete(n) = r.parse(pending).expect("a request head") {
            let len: usize = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| String::from_utf8_lossy(h.value).trim().parse().expect("Content-Length"))
                .unwrap_or(0);
            if pending.len() >= n + len {
                return Ok(Some(pending.drain(..n + len).collect()));
            }
        }
        let k = s.read(&mut tmp)?;
        if k == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(&tmp[..k]);
    }
}

/// What the mock is: exact mode, TTFT 40 ms and one token every 8 ms.
const MOCK: &[&str] = &["--ttft-ms", "40", "--itl-ms", "8"];
const TOKENS: u32 = 24;
const REQUESTS: u32 = 24;
const USERS: u32 = 6;

fn run_replay(trace: &Path, url: &str, out: &Path) {
    ok(cmd("replay")
        .arg(trace)
        .args(["--url", url, "--concurrency", &USERS.to_string(), "--quiet", "-o"])
        .arg(out));
}

/// Everything replay counts about each request, by request_id: status, HTTP status,
/// output tokens and their source, number of chunk times, tokens per chunk, finish reason
/// and error.
fn counts(path: &Path) -> Vec<[String; 9]> {
    let text = |c: &str| column_text(path, c);
    let (id, st, http, tok, src, fin, ct, err) = (
        text(col::REQUEST_ID),
        text(col::STATUS),
        text(col::HTTP_STATUS),
        text(col::OUTPUT_TOKENS),
        text(col::OUTPUT_TOKENS_SOURCE),
        text(col::FINISH_REASON),
        text(col::CHUNK_TOKENS),
        text(col::ERROR),
    );
    let n_chunks = chunk_times(path)
        .iter()
        .map(|v| v.len().to_string())
        .collect::<Vec<_>>();
    let mut v: Vec<[String; 9]> = (0..id.len())
        .map(|i| {
            [
                id[i].clone(),
                st[i].clone(),
                http[i].clone(),
                tok[i].clone(),
                src[i].clone(),
                n_chunks[i].clone(),
                ct[i].clone(),
                fin[i].clone(),
                err[i].clone(),
            ]
        })
        .collect();
    v.sort_by_key(|r| r[0].parse::<u64>().unwrap());
    v
}

fn chunk_times(path: &Path) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for b in read(path) {
        let a = b.column(b.schema().index_of(col::CHUNK_TIMES_MS).unwrap());
        for i in 0..b.num_rows() {
            let l = servebench::io::cols::list_at(a.as_ref(), i).unwrap();
            out.push(
                (0..l.len())
                    .map(|j| servebench::io::cols::f64_at(l.as_ref(), j).unwrap())
                    .collect(),
            );
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    servebench::stats::percentile_sorted(&v, 0.5).unwrap()
}

fn col_median(path: &Path, c: &str) -> f64 {
    median(column_f64(path, c).into_iter().flatten().collect())
}

fn itl_median(path: &Path) -> f64 {
    median(
        chunk_times(path)
            .iter()
            .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>())
            .collect(),
    )
}

/// Every count replay records is the same through every kind of gateway as directly: rows,
/// statuses, output tokens, chunk times per request, finish reasons. The proxy pauses
/// between its writes so that replay reads the pieces apart.
#[test]
fn gateways_that_reshape_streams_change_no_count() {
    let m = Mock::start(MOCK);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "batch",
            "--count",
            &REQUESTS.to_string(),
            "--input-len",
            "16",
            "--output-len",
            &TOKENS.to_string(),
        ],
    );
    let direct = d.path().join("direct.parquet");
    run_replay(&t, &m.url, &direct);
    let want = counts(&direct);
    assert_eq!(want.len(), REQUESTS as usize);
    assert!(
        want.iter()
            .all(|r| r[1] == "ok" && r[3] == TOKENS.to_string() && r[5] == TOKENS.to_string()),
        "the direct run is not clean: {want:?}"
    );
    let gateways = [
        (
            "re-chunked",
            Gateway {
                pause_us: 300,
                ..Gateway::new(Framing::Rechunk, 1)
            },
        ),
        (
            "re-chunked, coalesced, CRLF",
            Gateway {
                pause_us: 300,
                coalesce: true,
                crlf: true,
                ..Gateway::new(Framing::Rechunk, 2)
            },
        ),
        (
            "close-delimited",
            Gateway {
                pause_us: 300,
                ..Gateway::new(Framing::CloseDelimited, 3)
            },
        ),
        (
            "close-delimited, coalesced",
            Gateway {
                pause_us: 300,
                coalesce: true,
                ..Gateway::new(Framing::CloseDelimited, 4)
            },
        ),
    ];
    for (name, gw) in gateways {
        let p = Proxy::start(&m.url, gw);
        let out = d.path().join(format!("{name}.parquet"));
        run_replay(&t, &p.url, &out);
        assert_eq!(counts(&out), want, "{name}: the counts differ from the direct run's");
        // the proxy did reshape: every response relayed, in more writes than there were
        // content events, many of them ending inside a line
        let events = (REQUESTS * TOKENS) as u64;
        assert!(p.count(|t| &t.responses) >= REQUESTS as u64, "{name}");
        assert!(
            p.count(|t| &t.writes) > events,
            "{name}: {} writes",
            p.count(|t| &t.writes)
        );
        assert!(
            p.count(|t| &t.mid_line) > events / 2,
            "{name}: {} mid-line",
            p.count(|t| &t.mid_line)
        );
        if gw.framing == Framing::Rechunk {
            assert!(
                p.count(|t| &t.chunks) > events,
                "{name}: {} chunks",
                p.count(|t| &t.chunks)
            );
        }
        if gw.coalesce {
            assert!(
                p.count(|t| &t.held) > events / 10,
                "{name}: {} held",
                p.count(|t| &t.held)
            );
        }
        assert_eq!(p.count(|t| &t.broken), 0, "{name}: a response was cut short");
        // close-delimited bodies cannot keep a connection: every request opens its own
        let conns = column_text(&out, col::CONNECTION);
        if gw.framing == Framing::CloseDelimited {
            assert!(conns.iter().all(|c| c != "reused"), "{name}: {conns:?}");
        } else {
            assert!(conns.iter().any(|c| c == "reused"), "{name}: {conns:?}");
        }
    }
}

/// Timings through a re-chunking or close-delimiting gateway (no pauses, every piece written
/// as soon as it is cut) are the direct run's plus the proxy's own delay: TTFT, ITL and E2E
/// medians within a small tolerance, ITL still the mock's 8 ms.
#[test]
fn timing_gateways_that_reshape_streams_add_only_their_own_delay() {
    let m = Mock::start(MOCK);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "batch",
            "--count",
            &REQUESTS.to_string(),
            "--input-len",
            "16",
            "--output-len",
            &TOKENS.to_string(),
        ],
    );
    let direct = d.path().join("direct.parquet");
    run_replay(&t, &m.url, &direct);
    let (ttft, itl, e2e) = (
        col_median(&direct, col::TTFT_MS),
        itl_median(&direct),
        col_median(&direct, col::E2E_MS),
    );
    assert!((itl - 8.0).abs() < 1.0, "direct ITL p50 {itl}");
    assert!((ttft - 40.0).abs() < 3.0, "direct TTFT p50 {ttft}");
    for (name, gw) in [
        ("re-chunked", Gateway::new(Framing::Rechunk, 5)),
        ("close-delimited", Gateway::new(Framing::CloseDelimited, 6)),
    ] {
        let p = Proxy::start(&m.url, gw);
        let out = d.path().join(format!("{name}.parquet"));
        run_replay(&t, &p.url, &out);
        assert_eq!(counts(&out), counts(&direct), "{name}");
        let (pt, pi, pe) = (
            col_median(&out, col::TTFT_MS),
            itl_median(&out),
            col_median(&out, col::E2E_MS),
        );
        // the proxy's own delay: a thread's wake-up and a few writes per event, under a
        // millisecond on an idle machine (3 ms allowed for a busy one)
        assert!((pt - ttft).abs() < 3.0, "{name}: TTFT p50 {pt} ms, direct {ttft} ms");
        assert!((pi - itl).abs() < 0.5, "{name}: ITL p50 {pi} ms, direct {itl} ms");
        assert!((pi - 8.0).abs() < 1.0, "{name}: ITL p50 {pi} ms, the mock's is 8");
        assert!((pe - e2e).abs() < 3.0, "{name}: E2E p50 {pe} ms, direct {e2e} ms");
    }
}
