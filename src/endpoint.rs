//! Endpoints: the one URL type of servebench (a leaf: it imports nothing of the project).
//!
//! Every URL servebench is given names a server: replay's `--url`, enginemon's `--url` (a base
//! URL or a full metrics URL), the URLs engines.toml builds and engine-up records. They are
//! all read here, by [`Endpoint::parse`], so that they follow one grammar and fail with one set
//! of messages:
//!
//! - `http://HOST[:PORT][/BASE/PATH]` or `https://…`; the port defaults to 80 (http) or 443
//!   (https); an IPv6 host is written in brackets (`http://[::1]:8000`).
//! - Credentials (`user:pw@`) are refused, because the URL is recorded in every output.
//! - The base path keeps no trailing slash, and a trailing `/v1` is dropped: base URLs are
//!   often written the OpenAI way (`http://h:8000/v1`), and every request path servebench sends
//!   carries its own version (`/v1/chat/completions`, `/metrics`, `/health`).

use std::fmt;
use std::str::FromStr;

/// The scheme of an endpoint: plain HTTP/1.1, or HTTP/1.1 over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Why a URL is not an endpoint. Each message names the URL and says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{0}: the URL must start with http:// or https://, e.g. http://127.0.0.1:8000")]
    NoScheme(String),
    #[error(
        "credentials in the URL are not supported (the URL is recorded in every output); pass them with --api-key-env, --api-key-file or --header"
    )]
    Credentials,
    #[error("{0}: bad IPv6 address; write it in brackets, e.g. http://[::1]:8000")]
    BadIpv6(String),
    #[error("{url}: bad port {port:?}; a port is a number from 0 to 65535")]
    BadPort { url: String, port: String },
    #[error("{0}: no host; write one, e.g. http://127.0.0.1:8000")]
    NoHost(String),
    #[error("{url}: the {part} holds {c:?}, which a URL cannot carry as it is; percent-encode it")]
    BadChar { url: String, part: &'static str, c: char },
}

/// Characters a host may hold (RFC 3986 reg-name, IPv4, and IPv6 with a zone).
fn host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:".contains(c)
}

/// Characters a path (with its query) may hold as written: printable ASCII but the ones
/// RFC 3986 leaves out.
fn path_char(c: char) -> bool {
    c.is_ascii_graphic() && !"\"#<>\\^`{|}".contains(c)
}

/// Messages as text, for callers whose errors are strings.
impl From<EndpointError> for String {
    fn from(e: EndpointError) -> String {
        e.to_string()
    }
}

/// Where a server listens: scheme, host, port and a base path.
///
/// Shown (`Display`) as `http://host[:port]/base`, the port left out when it is the scheme's
/// default, which is also the `Host` header's form ([`Endpoint::authority`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Base path without a trailing slash; empty for the server's root.
    pub path: String,
}

/// True when `s` is a URL with a scheme (`http://…`, `https://…`) rather than a path.
pub fn is_url(s: &str) -> bool {
    s.split_once("://")
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'))
}

impl Endpoint {
    /// An endpoint at the root of `host:port`.
    pub fn new(host: &str, port: u16) -> Endpoint {
        Endpoint {
            scheme: Scheme::Http,
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            path: String::new(),
        }
    }

    /// Read a URL (see the module documentation for the grammar).
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(EndpointError::NoScheme(url.to_string()));
        };
        let (auth, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if auth.contains('@') {
            return Err(EndpointError::Credentials);
        }
        let (host, port) = if let Some(h) = auth.strip_prefix('[') {
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| EndpointError::BadIpv6(url.to_string()))?;
            let p = match p {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| EndpointError::BadIpv6(url.to_string()))?,
                ),
            };
            (h, p)
        } else {
            match auth.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (auth, None),
            }
        };
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p.parse::<u16>().map_err(|_| EndpointError::BadPort {
                url: url.to_string(),
                port: p.to_string(),
            })?,
        };
        if host.is_empty() {
            return Err(EndpointError::NoHost(url.to_string()));
        }
        let bad = |part: &'static str, c: char| EndpointError::BadChar {
            url: url.to_string(),
            part,
            c,
        };
        if let Some(c) = host.chars().find(|c| !host_char(*c)) {
            return Err(bad("host", c));
        }
        if let Some(c) = path.chars().find(|c| !path_char(*c)) {
            return Err(bad("path", c));
        }
        let mut path = path.trim_end_matches('/').to_string();
        if path.ends_with("/v1") {
            path.truncate(path.len() - 3);
        }
        Ok(Endpoint {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host[:port]` as the `Host` header carries it: IPv6 in brackets, the port left out
    /// when it is the scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The same server, at its root (no base path).
    pub fn origin(&self) -> Endpoint {
        Endpoint {
            path: String::new(),
            ..self.clone()
        }
    }

    /// The request target of `path` under the base path: `/proxy` joined with
    /// `/v1/completions` is `/proxy/v1/completions`. A missing leading slash is added; an
    /// empty path is the base itself (`/` at the root).
    pub fn join(&self, path: &str) -> String {
        let p = path.trim_start_matches('/');
        if p.is_empty() {
            return if self.path.is_empty() {
                "/".to_string()
            } else {
                self.path.clone()
            };
        }
        format!("{}/{p}", self.path)
    }

    /// The full URL of `path` under the base path (see [`Endpoint::join`]).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme.as_str(), self.authority(), self.join(path))
    }

    /// The URL as text; the same as `to_string()`.
    pub fn base_url(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.authority(), self.path)
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpp(e: &Endpoint) -> (&str, u16, &str) {
        (e.host.as_str(), e.port, e.path.as_str())
    }

    #[test]
    fn parses_hosts_ports_and_base_paths() {
        let e = Endpoint::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(hpp(&e), ("127.0.0.1", 8000, ""));
        assert_eq!(e.to_string(), "http://127.0.0.1:8000");
        let e = Endpoint::parse("http://localhost:30000/v1/").unwrap();
        assert_eq!(hpp(&e), ("localhost", 30000, ""));
        let e = Endpoint::parse("http://h/proxy/x/").unwrap();
        assert_eq!(hpp(&e), ("h", 80, "/proxy/x"));
        assert_eq!(e.to_string(), "http://h/proxy/x");
        assert_eq!(e.authority(), "h");
        let e = Endpoint::parse("http://h:8000/proxy/v1").unwrap();
        assert_eq!(e.path, "/proxy");
        let e = Endpoint::parse("http://[::1]:9").unwrap();
        assert_eq!(hpp(&e), ("::1", 9, ""));
        assert_eq!(e.authority(), "[::1]:9");
        assert_eq!(e.to_string(), "http://[::1]:9");
        let e = Endpoint::parse("http://[::1]").unwrap();
        assert_eq!(hpp(&e), ("::1", 80, ""));
        let e: Endpoint = "http://h:1/metrics?x=1".parse().unwrap();
        assert_eq!(e.path, "/metrics?x=1");
        assert!(Endpoint::parse("http://h:1/a#frag").is_err());
    }

    #[test]
    fn refuses_with_a_reason() {
        let msg = |u: &str| Endpoint::parse(u).unwrap_err().to_string();
        assert!(msg("ftp://x").contains("must start with http:// or https://"));
        assert!(msg("127.0.0.1:80").contains("must start with http://"));
        assert!(msg("https://user:pw@h").contains("credentials"));
        assert!(msg("http://h:99999").contains("bad port \"99999\""));
        assert!(msg("http://h:").contains("bad port"));
        assert!(msg("http://user:pw@h:80").contains("credentials"));
        assert!(msg("http://[::1").contains("IPv6"));
        assert!(msg("http://[::1]x").contains("IPv6"));
        assert!(msg("http://:80").contains("no host"));
        assert!(msg("http://").contains("no host"));
        assert!(msg("http://a b:80").contains("the host holds ' '"));
        assert!(msg("http://h:80/a b").contains("the path holds ' '"));
        assert!(msg("http://h:80/\u{e9}").contains("percent-encode"));
        let s: String = EndpointError::Credentials.into();
        assert!(s.contains("--header"));
    }

    #[test]
    fn joins_paths_and_builds_urls() {
        let root = Endpoint::new("127.0.0.1", 8000);
        assert_eq!(root.join("/v1/completions"), "/v1/completions");
        assert_eq!(root.join("health"), "/health");
        assert_eq!(root.join(""), "/");
        assert_eq!(root.url_for("/metrics"), "http://127.0.0.1:8000/metrics");
        let p = Endpoint::parse("http://h:1/proxy").unwrap();
        assert_eq!(p.join("/v1/completions"), "/proxy/v1/completions");
        assert_eq!(p.join(""), "/proxy");
        assert_eq!(p.origin().to_string(), "http://h:1");
        assert_eq!(Endpoint::new("[::1]", 80).to_string(), "http://[::1]");
        assert_eq!(Endpoint::new("::1", 8000).url_for("/x"), "http://[::1]:8000/x");
        // parse(display(e)) == e
        // https: port 443 unless written, and the port is left out of the Host form at 443
        let e = Endpoint::parse("https://gw.example.com/v1").unwrap();
        assert_eq!((e.scheme, e.port, e.path.as_str()), (Scheme::Https, 443, ""));
        assert_eq!(e.authority(), "gw.example.com");
        assert_eq!(Endpoint::parse("https://h:8443").unwrap().authority(), "h:8443");
        assert_eq!(Endpoint::parse("https://h:80").unwrap().authority(), "h:80");
        for u in [
            "http://h",
            "http://h:81/a/b",
            "http://[fe80::1]:8000/p",
            "https://h",
            "https://[::1]:8443/p",
        ] {
            let e = Endpoint::parse(u).unwrap();
            assert_eq!(Endpoint::parse(&e.to_string()).unwrap(), e);
            assert_eq!(e.to_string(), u);
        }
    }

    #[test]
    fn tells_urls_from_paths() {
        assert!(is_url("http://h/metrics"));
        assert!(is_url("https://h"));
        assert!(!is_url("/metrics"));
        assert!(!is_url("/x?u=http://h"));
    }
}
