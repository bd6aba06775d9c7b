//! How replay's records are recorded: the requests contract's [`Spec`] for the journalled
//! [`crate::recorder`] (4,096 rows a batch, labelled with the run), and the closing tally.

use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use crate::recorder::Spec;
use crate::schema::{Connection, Record, RunLabels, Status};

/// Rows per batch (a batch is also written when its oldest record is a second old).
pub const BATCH_ROWS: usize = 4096;

/// Counts by status, for the closing summary line.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub rows: u64,
    pub by_status: std::collections::BTreeMap<&'static str, u64>,
    pub warmup: u64,
    /// Sent requests by how they got their connection: new, warm, reused.
    pub conn: [u64; 3],
    /// Connect + TLS ms of the connections opened on a request's path.
    pub setup_ms: f64,
    /// Measured (not warm-up) rows that were sent, those that ended ok, and those whose user
    /// gave up (`--cancel`: neither a success nor an error).
    pub sent: u64,
    pub ok: u64,
    pub gave_up: u64,
}

impl Tally {
    /// Share of the measured requests sent that did not end ok, users who gave up left out
    /// (agg's `error_rate`).
    pub fn error_rate(&self) -> f64 {
        let judged = self.sent - self.gave_up;
        if judged == 0 {
            0.0
        } else {
            (judged - self.ok) as f64 / judged as f64
        }
    }
}

impl Tally {
    fn count(&mut self, rec: &Record) {
        self.rows += 1;
        if rec.warmup {
            self.warmup += 1;
        } else if rec.status != Status::NotSent {
            self.sent += 1;
            if rec.status == Status::Ok {
                self.ok += 1;
            } else if rec.gave_up() {
                self.gave_up += 1;
            }
        }
        match rec.connection {
            Some(Connection::New) => {
                self.conn[0] += 1;
                self.setup_ms += rec.connect_ms.unwrap_or(0.0) + rec.tls_ms.unwrap_or(0.0);
            }
            Some(Connection::Warm) => self.conn[1] += 1,
            Some(Connection::Reused) => self.conn[2] += 1,
            None => {}
        }
        *self.by_status.entry(rec.status.as_str()).or_default() += 1;
    }
}

/// The recorder spec of a run's records: encoded with its labels; each record counted in
/// `tally` and on `progress` as it arrives.
pub fn spec(labels: RunLabels, progress: ProgressBar, tally: Arc<Mutex<Tally>>) -> Spec<Record> {
    Spec {
        batch_rows: BATCH_ROWS,
        observe: Some(Box::new(move |rec| {
            tally.lock().unwrap_or_else(|e| e.into_inner()).count(rec);
            progress.inc(1);
        })),
        ..Spec::with_ctx(labels)
    }
}

/// How the sent requests got their connections ("4 warm, 16 reused"), if any were sent.
pub fn connections_text(t: &Tally) -> Option<String> {
    let kinds = [Connection::New, Connection::Warm, Connection::Reused];
    let parts: Vec<String> = kinds
        .iter()
        .zip(t.conn)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A line worth saying when most requests could not reuse a kept-alive connection (the
/// server or a gateway closes them, or --no-keep-alive): the share, and what set-up cost.
pub fn fresh_connections_line(t: &Tally, keep_alive: bool) -> Option<String> {
    let sent: u64 = t.conn.iter().sum();
    let fresh = t.conn[0] + t.conn[1];
    if sent < 10 || fresh * 2 <= sent {
        return None;
    }
    let why = if keep_alive {
        "the server or a gateway in front of it closes connections"
    } else {
        "--no-keep-alive"
    };
    Some(format!(
        "replay: {:.0}% of requests got a fresh connection ({why}); set-up added {:.3} ms per request on average ({} opened on a request's path, inside due→sent, never TTFT; {} opened ahead by the warm pool)",
        100.0 * fresh as f64 / sent as f64,
        t.setup_ms / sent as f64,
        t.conn[0],
        t.conn[1]
    ))
}

/// One line for stderr summarising a run.
pub fn summary_line(t: &Tally) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in Status::ALL {
        if let Some(n) = t.by_status.get(s.as_str()) {
            parts.push(format!("{} {}", n, s.as_str()));
        }
    }
    let warm = if t.warmup > 0 {
        format!(" (incl. {} warm-up)", t.warmup)
    } else {
        String::new()
    };
    format!("{} rows{}: {}", t.rows, warm, parts.join(", "))
}
