//! A small HTTP/1.1 client over hyper's connection API, with keep-alive reuse.
//!
//! replay owns its connections instead of using a general pooled client so that it knows
//! exactly when a request's first byte goes out (`sent_at`), never queues a request behind
//! another on a client-side pool limit, and keeps per-stream memory small.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, body::Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;

/// Where requests go: an [`Endpoint`] (`http://host:port[/base]`). The old name, kept while
/// callers move to `crate::endpoint::Endpoint`.
pub type Target = Endpoint;

/// Why a request could not get a response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connection failed before the response headers: {0}")]
    BeforeHeaders(String),
}

type Sender = SendRequest<Full<Bytes>>;

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
    idle: Mutex<Vec<Sender>>,
    keep_alive: bool,
    /// Header values (and bearer tokens) never to be recorded, even when a server echoes them.
    secrets: Vec<String>,
}

/// A response whose headers have arrived; its body is read by the caller.
pub struct Started {
    pub sent_at: Instant,
    pub response: Response<Incoming>,
    sender: Option<Sender>,
}

impl Client {
    pub fn new(target: Endpoint, headers: Vec<(HeaderName, HeaderValue)>, keep_alive: bool) -> Client {
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
        Client {
            target,
            host,
            headers,
            idle: Mutex::new(Vec::new()),
            keep_alive,
            secrets,
        }
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

    async fn connect(&self) -> Result<Sender, SendError> {
        let addr = format!("{}:{}", self.target.host, self.target.port);
        let stream = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| SendError::Connect {
                addr: addr.clone(),
                source: e,
            })?;
        let _ = stream.set_nodelay(true);
        // A fixed 4 KiB read buffer: hyper's adaptive one starts at 8 KiB and grows with
        // bursty streams, which costs tens of KiB per stream at thousands of streams.
        let (sender, conn) = http1::Builder::new()
            .read_buf_exact_size(Some(4096))
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect {
                addr,
                source: std::io::Error::other(e),
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// A ready connection: an idle one when there is one, else a new one. Returns whether it
    /// was reused (a reused connection may have been closed by the server meanwhile).
    async fn conn(&self) -> Result<(Sender, bool), SendError> {
        loop {
            let s = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match s {
                Some(mut s) => {
                    if s.is_closed() {
                        continue;
                    }
                    if s.ready().await.is_ok() {
                        return Ok((s, true));
                    }
                }
                None => return Ok((self.connect().await?, false)),
            }
        }
    }

    fn request(&self, method: hyper::Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(self.target.join(path))
            .header(hyper::header::HOST, self.host.clone());
        if !body.is_empty() {
            b = b.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if !self.keep_alive {
            b = b.header(hyper::header::CONNECTION, "close");
        }
        let mut req = b.body(Full::new(body)).expect("valid request parts");
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        req
    }

    /// Send a POST and wait for the response head. `on_sent` is the instant the request was
    /// handed to the connection (after connecting), i.e. when its first byte goes out.
    pub async fn post(&self, path: &str, body: Bytes) -> Result<Started, SendError> {
        let mut retried = false;
        loop {
            let (mut sender, reused) = self.conn().await?;
            let req = self.request(hyper::Method::POST, path, body.clone());
            let sent_at = Instant::now();
            match sender.send_request(req).await {
                Ok(response) => {
                    return Ok(Started {
                        sent_at,
                        response,
                        sender: Some(sender),
                    });
                }
                Err(e) => {
                    // A kept-alive connection the server closed while idle: retry once, fresh.
                    if reused && !retried && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) {
                        retried = true;
                        continue;
                    }
                    return Err(SendError::BeforeHeaders(with_causes(&e)));
                }
            }
        }
    }

    /// Return a connection whose response body was read to its end.
    pub fn release(&self, started: &mut Started) {
        if !self.keep_alive {
            return;
        }
        if let Some(s) = started.sender.take()
            && !s.is_closed()
        {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        }
    }

    /// GET a small resource (probes): status and body, with a timeout.
    pub async fn get(&self, path: &str, timeout: Duration) -> Result<(u16, Bytes), String> {
        let fut = async {
            let mut s = self.connect().await.map_err(|e| e.to_string())?;
            let req = self.request(hyper::Method::GET, path, Bytes::new());
            let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_base_path_and_host() {
        let c = Client::new(Endpoint::parse("http://[::1]:9/proxy/v1").unwrap(), Vec::new(), false);
        let r = c.request(hyper::Method::GET, "/v1/models", Bytes::new());
        assert_eq!(r.uri(), "/proxy/v1/models");
        assert_eq!(r.headers()[hyper::header::HOST], "[::1]:9");
        assert_eq!(r.headers()[hyper::header::CONNECTION], "close");
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
        let c = Client::new(t, h, true);
        assert_eq!(
            c.redact("HTTP 401: invalid key sk-secret-123 (Bearer sk-secret-123) ab"),
            "HTTP 401: invalid key <redacted> (<redacted>) ab"
        );
    }
}
