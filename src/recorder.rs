//! The journalled recorder: rows of one contract in, batches out as they come, for every tool
//! that measures (replay, gpumon, enginemon), and its one recover path.
//!
//! To stdout, batches stream (Arrow IPC on a pipe). To a file `DIR/NAME`, batches go first to
//! a journal beside it, `DIR/_NAME.partial`: an Arrow IPC stream written by a thread of its
//! own, one batch every second (or every `batch_rows` rows), each flush fdatasync'ed. At the
//! end the journal becomes the final file, atomically; no file ever appears under the final
//! name half-written. A process killed meanwhile leaves the journal, readable up to its last
//! flush, which [`recover`] (`TOOL --recover DIR/_NAME.partial`) turns into the file.
//!
//! The journal's name starts with `_` so that Hadoop-style readers of a directory (Spark,
//! Hive) skip it, and ends in `.partial` so that `*.parquet` globs (agg, DuckDB) skip it too.
//! A journal already there (a killed run's) is never overwritten: [`check`] refuses to start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::io::{DataError, Format, Sink};
use crate::meta::Meta;
use crate::stop::{Stop, StopReason};

/// Longest a row waits before it is written (and the journal flushed).
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub use crate::schema::Rows;

/// Where rows go.
#[derive(Debug, Clone)]
pub enum Dest {
    Stdout(Option<Format>),
    File { path: PathBuf, format: Option<Format> },
}

impl Dest {
    /// `-o PATH` or stdout, with `--format`.
    pub fn new(path: Option<&Path>, format: Option<Format>) -> Dest {
        match path {
            Some(p) => Dest::File {
                path: p.to_path_buf(),
                format,
            },
            None => Dest::Stdout(format),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Dest::File { path, .. } => Some(path),
            Dest::Stdout(_) => None,
        }
    }
}

/// The journal of an output file: `DIR/NAME` -> `DIR/_NAME.partial`.
pub fn journal_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!("_{name}.partial"))
}

/// The output a journal stands for: `DIR/_NAME.partial` -> `DIR/NAME` (a journal named the
/// older way, `NAME.partial`, -> `NAME`).
pub fn output_of_journal(journal: &Path) -> PathBuf {
    let name = journal
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    match name.strip_suffix(".partial") {
        Some(base) => journal.with_file_name(base.strip_prefix('_').filter(|b| !b.is_empty()).unwrap_or(base)),
        None => journal.to_path_buf(),
    }
}

/// Why rows could not be recorded; each says how to get them back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Data(Box<DataError>),
    #[error(
        "{journal}: an earlier run's journal is there (that run was killed before it finished); \
         write out its rows with `{tool} --recover {journal} -o {out}`, or delete it"
    )]
    JournalExists {
        tool: &'static str,
        journal: String,
        out: String,
    },
    #[error("{source}; the run was stopped, as its rows could not be recorded{hint}")]
    Writer { source: Box<DataError>, hint: String },
    #[error(
        "cannot write {out}; every row is kept in {journal}: `{tool} --recover {journal} -o {out}` once the problem is fixed: {source}"
    )]
    Finalize {
        tool: &'static str,
        out: String,
        journal: String,
        source: Box<DataError>,
    },
}

impl From<DataError> for RecordError {
    fn from(e: DataError) -> Self {
        RecordError::Data(Box::new(e))
    }
}

/// Check, before any work, that `dest` can be written and that no earlier journal is in the way.
pub fn check(dest: &Dest, tool: &'static str) -> Result<(), RecordError> {
    match dest {
        Dest::Stdout(f) => {
            crate::io::resolve_format(None, *f)?;
        }
        Dest::File { path, format } => {
            crate::io::resolve_format(Some(path), *format)?;
            crate::io::check_output(path)?;
            let j = journal_path(path);
            if j.exists() {
                return Err(RecordError::JournalExists {
                    tool,
                    journal: j.display().to_string(),
                    out: path.display().to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Turns rows into one batch of their contract.
pub type Encode<R> = Box<dyn FnMut(&[R]) -> RecordBatch + Send>;
/// Sees each row as it arrives.
pub type Observe<R> = Box<dyn FnMut(&R) + Send>;

/// How rows become batches, for rows that do not encode themselves (replay's records carry
/// the run's labels).
pub struct Spec<R> {
    pub schema: SchemaRef,
    /// Write a batch when this many rows wait (else every [`FLUSH_EVERY`]).
    pub batch_rows: usize,
    pub encode: Encode<R>,
    /// Called in the writer thread for each row as it arrives (counts, progress).
    pub observe: Option<Observe<R>>,
}

impl<R: Rows + 'static> Spec<R>
where
    R::Ctx: Send + 'static,
{
    /// The spec of a contract's rows, encoded with what every row shares (a run's labels, or
    /// `()`): 8,192 rows a batch.
    pub fn with_ctx(ctx: R::Ctx) -> Spec<R> {
        Spec {
            schema: R::contract().schema(),
            batch_rows: 8192,
            encode: Box::new(move |rows| R::encode(rows, &ctx)),
            observe: None,
        }
    }
}

enum Msg<R> {
    Row(R),
    Rows(Vec<R>),
    Finish(Meta),
}

/// A handle to give rows to the recorder from anywhere (clone it freely).
pub struct Feed<R>(Sender<Msg<R>>);

impl<R> Clone for Feed<R> {
    fn clone(&self) -> Self {
        Feed(self.0.clone())
    }
}

impl<R> Feed<R> {
    /// False when the writer has stopped (its error comes with [`Recorder::finish`]).
    pub fn send_one(&self, row: R) -> bool {
        self.0.send(Msg::Row(row)).is_ok()
    }

    /// Hand rows to the writer; false when the writer has stopped.
    pub fn send(&self, rows: Vec<R>) -> bool {
        rows.is_empty() || self.0.send(Msg::Rows(rows)).is_ok()
    }
}

/// A writer thread: rows in, batches out every second (or `batch_rows` rows), to a journal
/// for files or straight to stdout.
pub struct Recorder<R> {
    feed: Feed<R>,
    handle: std::thread::JoinHandle<Result<u64, DataError>>,
    dest: Dest,
    journal: Option<PathBuf>,
    tool: &'static str,
}

impl<R: Rows<Ctx = ()> + Send + 'static> Recorder<R> {
    /// Start recording rows that need no context; see [`Recorder::start_with`].
    pub fn start(tool: &'static str, dest: Dest, meta: &Meta, stop: Option<&Arc<Stop>>) -> Result<Self, RecordError> {
        Recorder::start_with(tool, dest, meta, Spec::with_ctx(()), stop)
    }
}

impl<R: Send + 'static> Recorder<R> {
    /// Check the destination, create the output (errors surface here, before the run starts)
    /// and the writer thread. When writing fails, `stop` (if given) is stopped with
    /// [`StopReason::OutputFailed`] and cancelled: rows can no longer be recorded.
    pub fn start_with(
        tool: &'static str,
        dest: Dest,
        meta: &Meta,
        spec: Spec<R>,
        stop: Option<&Arc<Stop>>,
    ) -> Result<Self, RecordError> {
        check(&dest, tool)?;
        let (sink, journal) = match &dest {
            Dest::Stdout(f) => (Sink::create(None, *f, spec.schema.clone(), meta)?, None),
            Dest::File { path, .. } => {
                let j = journal_path(path);
                (Sink::create_journal(&j, spec.schema.clone(), meta)?, Some(j))
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = stop.cloned();
        let handle = std::thread::Builder::new()
            .name(format!("{tool}-writer"))
            .spawn(move || {
                crate::os::background_thread();
                let r = write_loop(rx, sink, spec);
                if r.is_err()
                    && let Some(s) = stop
                {
                    s.request(StopReason::OutputFailed);
                    s.cancel();
                }
                r
            })
            .map_err(|e| DataError::Write {
                path: "writer thread".into(),
                source: e,
            })?;
        Ok(Recorder {
            feed: Feed(tx),
            handle,
            dest,
            journal,
            tool,
        })
    }

    /// A handle for other threads and tasks.
    pub fn feed(&self) -> Feed<R> {
        self.feed.clone()
    }

    /// Hand rows to the writer; false when the writer has stopped (its error comes with
    /// [`Recorder::finish`]).
    pub fn send(&self, rows: Vec<R>) -> bool {
        self.feed.send(rows)
    }

    /// Write what is left (rows sent before this call, from any feed), close the journal and
    /// turn it into the final file with `extra` metadata (for stdout, Parquet footers get it
    /// too). Returns the rows written.
    pub fn finish(self, extra: &Meta) -> Result<u64, RecordError> {
        let _ = self.feed.0.send(Msg::Finish(extra.clone()));
        drop(self.feed);
        let written = match self.handle.join() {
            Ok(r) => r,
            Err(_) => Err(DataError::Write {
                path: "writer thread".into(),
                source: std::io::Error::other("the writer thread panicked"),
            }),
        };
        let n = match written {
            Ok(n) => n,
            Err(source) => {
                let hint = match (&self.dest, &self.journal) {
                    (Dest::File { path, .. }, Some(j)) if j.exists() => format!(
                        "; rows recorded before the failure are in {}: `{} --recover {} -o {}` once there is room",
                        j.display(),
                        self.tool,
                        j.display(),
                        path.display()
                    ),
                    _ => String::new(),
                };
                return Err(RecordError::Writer {
                    source: Box::new(source),
                    hint,
                });
            }
        };
        match (&self.dest, &self.journal) {
            (Dest::File { path, format }, Some(j)) => {
                let (n, _) =
                    crate::io::finalize_journal(j, path, *format, extra).map_err(|source| RecordError::Finalize {
                        tool: self.tool,
                        out: path.display().to_string(),
                        journal: j.display().to_string(),
                        source: Box::new(source),
                    })?;
                Ok(n)
            }
            _ => Ok(n),
        }
    }

    /// Give up (the run never started): stop the writer and delete the journal.
    pub fn abandon(self) {
        drop(self.feed);
        let _ = self.handle.join();
        if let Some(j) = &self.journal {
            let _ = std::fs::remove_file(j);
        }
    }

    /// The journal path (files only).
    pub fn journal(&self) -> Option<&Path> {
        self.journal.as_deref()
    }
}

fn write_loop<R>(rx: Receiver<Msg<R>>, mut sink: Sink, mut spec: Spec<R>) -> Result<u64, DataError> {
    let mut buf: Vec<R> = Vec::with_capacity(spec.batch_rows.min(8192));
    let mut oldest: Option<Instant> = None;
    let mut wrote_any = false;
    let mut extra = Meta::default();
    loop {
        let wait = match oldest {
            Some(t) => FLUSH_EVERY.saturating_sub(t.elapsed()),
            None => FLUSH_EVERY,
        };
        let rows = match rx.recv_timeout(wait) {
            Ok(Msg::Row(r)) => vec![r],
            Ok(Msg::Rows(rows)) => rows,
            Ok(Msg::Finish(m)) => {
                extra = m;
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                if !buf.is_empty() {
                    write_batch(&mut sink, &mut spec, &mut buf)?;
                    wrote_any = true;
                }
                oldest = None;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(f) = spec.observe.as_mut() {
            rows.iter().for_each(f);
        }
        if oldest.is_none() {
            oldest = Some(Instant::now());
        }
        buf.extend(rows);
        if buf.len() >= spec.batch_rows {
            write_batch(&mut sink, &mut spec, &mut buf)?;
            wrote_any = true;
            oldest = None;
        }
    }
    if !buf.is_empty() || !wrote_any {
        write_batch(&mut sink, &mut spec, &mut buf)?;
    }
    for (k, v) in &extra.0 {
        sink.append_meta(k, v);
    }
    sink.finish()
}

/// Encode, write, and flush (for a journal: fdatasync) one batch.
fn write_batch<R>(sink: &mut Sink, spec: &mut Spec<R>, buf: &mut Vec<R>) -> Result<(), DataError> {
    let b = (spec.encode)(buf);
    buf.clear();
    sink.write(&b)?;
    sink.flush()
}

/// `TOOL --recover JOURNAL [-o FILE]`: write out what a killed run's journal holds. The output
/// defaults to the file the journal stands for ([`output_of_journal`]). Says on stderr how
/// many rows were recovered.
pub fn recover(journal: &Path, out: Option<&Path>, format: Option<Format>, tool: &str) -> Result<u64, DataError> {
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| output_of_journal(journal));
    if out == journal {
        return Err(DataError::Write {
            path: out.to_string_lossy().into(),
            source: std::io::Error::other("the output would overwrite the journal; pass -o FILE"),
        });
    }
    let (n, truncated) = crate::io::finalize_journal(journal, &out, format, &Meta::default())?;
    eprintln!(
        "{tool}: recovered {n} rows into {}{}",
        out.display(),
        if truncated {
            " (the journal ended mid-batch; rows after its last flush are lost)"
        } else {
            ""
        }
    );
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_names_are_skipped_by_hadoop_readers_and_map_back() {
        let j = journal_path(Path::new("runs/big/shard=0/part-abc.parquet"));
        assert_eq!(j, Path::new("runs/big/shard=0/_part-abc.parquet.partial"));
        assert_eq!(output_of_journal(&j), Path::new("runs/big/shard=0/part-abc.parquet"));
        assert_eq!(journal_path(Path::new("r.parquet")), Path::new("_r.parquet.partial"));
        // the older name still maps back
        assert_eq!(
            output_of_journal(Path::new("d/r.parquet.partial")),
            Path::new("d/r.parquet")
        );
        assert_eq!(output_of_journal(Path::new("d/x")), Path::new("d/x"));
    }
}
