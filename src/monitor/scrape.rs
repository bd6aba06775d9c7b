//! enginemon's scraper: fetch an engine's Prometheus endpoint on absolute deadlines and turn
//! each scrape into engine_metrics rows ([`crate::enginemon`]) for the recorder. The only
//! engine-metrics code that knows HTTP.

use std::time::{Duration, Instant};

use crate::client::http::Client;
use crate::endpoint::Endpoint;
use crate::enginemon::{EngineRow, RowFilter, detect_engine, rows_from_scrape};
use crate::meta::RunClock;
use crate::recorder::Feed;
use crate::stop::{Stop, StopReason};

/// Where to scrape: a base URL (`http://host:8000`, `/metrics` is added; a trailing `/v1` is
/// dropped) or a full metrics URL (`http://host:8000/prometheus/metrics` for TensorRT-LLM,
/// `http://host:8281/metrics` for Friendli).
pub fn metrics_endpoint(url: &str) -> Result<(Endpoint, String), String> {
    let e = Endpoint::parse(url).map_err(|e| e.to_string())?;
    let path = if e.path.is_empty() {
        "/metrics".to_string()
    } else {
        e.path.clone()
    };
    Ok((e.origin(), path))
}

/// What to scrape and how often.
pub struct Scrape {
    pub client: Client,
    /// The metrics path on the client's target.
    pub path: String,
    /// The URL as shown in messages.
    pub shown: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub filter: RowFilter,
}

/// What the scraper did.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub scrapes: u64,
    pub failed: u64,
    pub missed_ticks: u64,
    pub rows: u64,
    pub parse_errors: u64,
    pub engine: Option<&'static str>,
}

#[derive(Default)]
struct Warned {
    failing: bool,
    parse: bool,
}

/// Scrape every `interval` until `stop`, then once more (so counters cover the run to its
/// end), handing rows to `feed`. A failed scrape is reported once and retried every tick.
pub async fn scrape_loop(s: &Scrape, stop: &Stop, clock: &RunClock, feed: &Feed<EngineRow>) -> Tally {
    let mut t = Tally::default();
    let mut w = Warned::default();
    let start = Instant::now();
    let mut k: u64 = 0;
    loop {
        let due = start + s.interval.saturating_mul(k.min(u32::MAX as u64) as u32);
        if stop.wait_until_async(due).await {
            break;
        }
        scrape_once(s, s.timeout, clock, feed, stop, &mut t, &mut w).await;
        let (next, skipped) = crate::gpu::next_tick(k, start.elapsed(), s.interval);
        k = next;
        t.missed_ticks += skipped;
    }
    if stop.reason() != Some(StopReason::OutputFailed) {
        let last_timeout = s.timeout.min(Duration::from_secs(2));
        scrape_once(s, last_timeout, clock, feed, stop, &mut t, &mut w).await;
    }
    t
}

async fn scrape_once(
    s: &Scrape,
    timeout: Duration,
    clock: &RunClock,
    feed: &Feed<EngineRow>,
    stop: &Stop,
    t: &mut Tally,
    w: &mut Warned,
) {
    let sent = Instant::now();
    let r = s.client.get(&s.path, timeout).await;
    let done = Instant::now();
    let shown = &s.shown;
    let err = match r {
        Ok((200, body)) => {
            let text = String::from_utf8_lossy(&body);
            let e = crate::prom::parse(&text);
            let at = clock.unix_us(sent + done.duration_since(sent) / 2);
            let rows = rows_from_scrape(at, &e, s.filter);
            t.scrapes += 1;
            t.rows += rows.len() as u64;
            t.parse_errors += e.errors.len() as u64;
            if !w.parse
                && let Some((line, msg)) = e.errors.first()
            {
                eprintln!(
                    "enginemon: warning: {shown}: {} line(s) are not Prometheus text and were skipped; line {line}: {msg}",
                    e.errors.len()
                );
                w.parse = true;
            }
            if t.engine.is_none() {
                t.engine = detect_engine(&e);
            }
            if !feed.send(rows) {
                stop.request(StopReason::OutputFailed);
            }
            None
        }
        Ok((status, body)) => {
            let b = String::from_utf8_lossy(&body);
            let snippet: String = b.trim().chars().take(120).collect();
            Some(format!("HTTP {status}: {snippet}"))
        }
        Err(e) => Some(e),
    };
    match err {
        Some(e) => {
            t.failed += 1;
            if !w.failing {
                eprintln!("enginemon: scrape of {shown} failed: {e} (retrying every tick)");
                w.failing = true;
            }
        }
        None => {
            if w.failing {
                eprintln!("enginemon: scraping {shown} again");
                w.failing = false;
            }
        }
    }
}

/// One scrape's well-known values (enginemon's common names: `waiting`, `running`, ...), for
/// a caller that reads gauges live rather than recording rows (sweep's engine-queue signal).
pub async fn common_once(
    client: &Client,
    path: &str,
    timeout: Duration,
) -> Result<std::collections::BTreeMap<&'static str, (String, f64)>, String> {
    match client.get(path, timeout).await? {
        (200, body) => Ok(crate::enginemon::common_values(&crate::prom::parse(
            &String::from_utf8_lossy(&body),
        ))),
        (status, body) => {
            let b = String::from_utf8_lossy(&body);
            Err(format!(
                "HTTP {status}: {}",
                b.trim().chars().take(120).collect::<String>()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let (t, p) = metrics_endpoint("http://127.0.0.1:8000").unwrap();
        assert_eq!((t.port, p.as_str()), (8000, "/metrics"));
        let (_, p) = metrics_endpoint("http://127.0.0.1:8000/v1/").unwrap();
        assert_eq!(p, "/metrics");
        let (_, p) = metrics_endpoint("http://h:8000/prometheus/metrics").unwrap();
        assert_eq!(p, "/prometheus/metrics");
        let (t, p) = metrics_endpoint("http://h:8281/metrics").unwrap();
        assert_eq!((t.port, p.as_str()), (8281, "/metrics"));
        assert!(metrics_endpoint("h:80").is_err());
    }
}
