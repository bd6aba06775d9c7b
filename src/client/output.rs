//! Where replay's records go: batched into the requests contract and written as they come.
//!
//! To stdout, batches stream (Arrow IPC on a pipe). To a file, batches go first to a journal
//! (`FILE.partial`, an Arrow IPC stream flushed every second or 4,096 rows), which is turned
//! into the final file at the end. If replay is killed, the journal holds everything up to
//! its last flush: `replay --recover FILE.partial -o FILE` writes it out.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::record::{Record, RunLabels, Status, to_batch};
use crate::io::{DataError, Format, Sink};
use crate::meta::Meta;
use crate::schema::REQUESTS;

/// Rows per batch, and the longest a finished record waits before it is written.
pub const BATCH_ROWS: usize = 4096;
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The destination of a run's records.
pub enum Dest {
    Stdout(Option<Format>),
    File { path: PathBuf, format: Option<Format> },
}

/// Counts by status, for the closing summary line.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub rows: u64,
    pub by_status: std::collections::BTreeMap<&'static str, u64>,
    pub warmup: u64,
}

/// The journal beside an output file.
pub fn journal_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Receive records until every sender is gone, writing batches as they fill or age.
/// Returns the tally and, for files, the journal to finalise.
pub fn write_records(
    rx: Receiver<Record>,
    labels: &RunLabels,
    dest: &Dest,
    meta: &Meta,
    progress: &ProgressBar,
) -> Result<(Tally, Option<PathBuf>), DataError> {
    let (mut sink, journal) = match dest {
        Dest::Stdout(f) => (Sink::create(None, *f, REQUESTS.schema(), meta)?, None),
        Dest::File { path, .. } => {
            let j = journal_path(path);
            (Sink::create_journal(&j, REQUESTS.schema(), meta)?, Some(j))
        }
    };
    let mut tally = Tally::default();
    let mut buf: Vec<Record> = Vec::with_capacity(BATCH_ROWS);
    let mut oldest: Option<Instant> = None;
    loop {
        let wait = match oldest {
            Some(t) => FLUSH_EVERY.saturating_sub(t.elapsed()),
            None => FLUSH_EVERY,
        };
        let r = rx.recv_timeout(wait);
        match r {
            Ok(rec) => {
                tally.rows += 1;
                if rec.warmup {
                    tally.warmup += 1;
                }
                *tally.by_status.entry(rec.status.as_str()).or_default() += 1;
                progress.inc(1);
                if oldest.is_none() {
                    oldest = Some(Instant::now());
                }
                buf.push(rec);
                if buf.len() >= BATCH_ROWS {
                    flush(&mut sink, labels, &mut buf)?;
                    oldest = None;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if !buf.is_empty() {
                    flush(&mut sink, labels, &mut buf)?;
                }
                oldest = None;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if !buf.is_empty() || tally.rows == 0 {
        flush(&mut sink, labels, &mut buf)?;
    }
    sink.finish()?;
    Ok((tally, journal))
}

fn flush(sink: &mut Sink, labels: &RunLabels, buf: &mut Vec<Record>) -> Result<(), DataError> {
    let b = to_batch(labels, buf);
    buf.clear();
    sink.write(&b)?;
    sink.flush()
}

/// Turn a journal into the final file (atomically), adding `extra` metadata, and delete the
/// journal. A journal cut short by a crash is read up to its last complete batch.
/// Returns (rows written, whether the journal was truncated).
pub fn finalize(journal: &Path, out: &Path, format: Option<Format>, extra: &Meta) -> Result<(u64, bool), DataError> {
    crate::io::finalize_journal(journal, out, format, extra)
}

/// One line for stderr summarising a run.
pub fn summary_line(t: &Tally) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in [
        Status::Ok,
        Status::HttpError,
        Status::Timeout,
        Status::ConnectError,
        Status::StreamError,
        Status::Cancelled,
        Status::NotSent,
    ] {
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
