//! What the sampling tools (gpumon, enginemon) share: when to stop, the wrapped command, the
//! journal writer, and their own CPU cost.
//!
//! A monitor runs until SIGINT/SIGTERM, until `--duration` has passed, or, when it wraps a
//! command (`gpumon -o gpu.parquet -- replay ...`), exactly as long as that command runs; it
//! then exits with the command's status. Signals sent to the monitor are forwarded to the
//! command, except those the terminal sent to the whole foreground process group (Ctrl-C),
//! which the command has already received: it must not get them twice (replay reads a second
//! SIGINT as "cancel now").
//!
//! Rows go to a journal beside the output (`FILE.partial`, an Arrow IPC stream flushed every
//! second) and become the final file at the end; a monitor killed with SIGKILL leaves the
//! journal, readable up to its last flush, which `--recover FILE.partial` turns into the file.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

use crate::client::output::journal_path;
use crate::io::{DataError, Format, Sink};
use crate::meta::Meta;
use crate::schema::Contract;

/// Why a monitor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM (the signal number) with no command to wait for.
    Signal(i32),
    /// `--duration` passed.
    Duration,
    /// The wrapped command ended.
    CommandExited(ExitStatus),
    /// The output could not be written (the error comes with the rows' file).
    OutputFailed,
}

impl StopReason {
    pub fn describe(&self) -> String {
        match self {
            StopReason::Signal(s) => format!("signal {}", signal_name(*s)),
            StopReason::Duration => "--duration reached".into(),
            StopReason::CommandExited(st) => format!("the command ended ({})", status_text(st)),
            StopReason::OutputFailed => "the output could not be written".into(),
        }
    }
}

fn signal_name(s: i32) -> String {
    nix::sys::signal::Signal::try_from(s)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| s.to_string())
}

fn status_text(st: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by {}", signal_name(s)),
        _ => "unknown status".into(),
    }
}

/// The exit code a monitor ends with: the command's (128 + N when a signal killed it, as
/// shells report it); 0 after a signal or `--duration` (stopping is the normal way to end).
pub fn exit_code(reason: Option<&StopReason>) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match reason {
        Some(StopReason::CommandExited(st)) => match (st.code(), st.signal()) {
            (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
            (None, Some(s)) => ExitCode::from((128 + s).clamp(0, 255) as u8),
            _ => ExitCode::from(1),
        },
        _ => ExitCode::SUCCESS,
    }
}

/// A stop flag that threads and async tasks can wait on; the first reason given wins.
#[derive(Debug, Default)]
pub struct Stop {
    reason: Mutex<Option<StopReason>>,
    cv: Condvar,
    notify: tokio::sync::Notify,
}

impl Stop {
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// Ask to stop; returns false if a reason was already given.
    pub fn request(&self, r: StopReason) -> bool {
        let mut g = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_some() {
            return false;
        }
        *g = Some(r);
        drop(g);
        self.cv.notify_all();
        self.notify.notify_waiters();
        true
    }

    pub fn is_stopped(&self) -> bool {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sleep until `at` or until stopped; true when stopped.
    pub fn wait_until(&self, at: Instant) -> bool {
        let mut g = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if g.is_some() {
                return true;
            }
            let now = Instant::now();
            if now >= at {
                return false;
            }
            g = self.cv.wait_timeout(g, at - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Async form of [`Stop::wait_until`] (precise deadline, see [`crate::timer`]).
    pub async fn wait_until_async(&self, at: Instant) -> bool {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_stopped() {
            return true;
        }
        tokio::select! {
            _ = notified => true,
            _ = crate::timer::sleep_until(at) => self.is_stopped(),
        }
    }
}

/// Block SIGINT and SIGTERM in the calling thread and in every thread it starts afterwards,
/// so that [`supervise`]'s signal thread receives them. Call it first in `main`. (The mask is
/// inherited across exec: [`supervise`] unblocks them again in the command it starts.)
pub fn block_signals() -> std::io::Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(std::io::Error::from)
}

/// Errors starting the wrapped command.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot run `{cmd}`: {source}; check the command after `--`")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("--duration cannot be combined with a command: the command decides how long sampling lasts")]
    DurationWithCommand,
}

/// The signal thread's view of the wrapped command.
#[derive(Clone, Default)]
pub struct SignalWatch {
    /// The command's pid once started (0: none).
    child: Arc<AtomicI32>,
    child_done: Arc<AtomicBool>,
}

/// Take SIGINT and SIGTERM (blocked with [`block_signals`] first) in a thread of their own:
/// without a command, the first one stops the run and a second one exits at once (128 + N;
/// a journal is left for `--recover`); with a command they are forwarded to it (see the
/// module docs). Start it before any slow set-up, so that a hung start can be interrupted.
pub fn watch_signals(stop: &Arc<Stop>, tool: &'static str) -> SignalWatch {
    let w = SignalWatch::default();
    let (stop, w2) = (stop.clone(), w.clone());
    let _ = std::thread::Builder::new()
        .name("monitor-signals".into())
        .spawn(move || signal_loop(&stop, &w2, tool));
    w
}

/// Start the rest of the watch: a timer for `duration` and, when `command` is not empty, the
/// command itself (stdin, stdout and stderr inherited) and a thread waiting for it.
pub fn supervise(
    stop: &Arc<Stop>,
    signals: &SignalWatch,
    duration: Option<Duration>,
    command: &[String],
) -> Result<(), MonitorError> {
    if duration.is_some() && !command.is_empty() {
        return Err(MonitorError::DurationWithCommand);
    }
    if let Some((prog, args)) = command.split_first() {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new(prog);
        c.args(args);
        // The command must not inherit our blocked SIGINT/SIGTERM (see block_signals).
        // SAFETY: between fork and exec only async-signal-safe calls are made
        // (sigemptyset, sigaddset, sigprocmask), with no allocation.
        unsafe {
            c.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let mut child: Child = c.spawn().map_err(|e| MonitorError::Spawn {
            cmd: command.join(" "),
            source: e,
        })?;
        signals.child.store(child.id() as i32, Ordering::SeqCst);
        let stop = stop.clone();
        let done = signals.child_done.clone();
        std::thread::Builder::new()
            .name("monitor-child".into())
            .spawn(move || {
                let st = child.wait();
                done.store(true, Ordering::SeqCst);
                let st = st.unwrap_or_else(|_| {
                    use std::os::unix::process::ExitStatusExt;
                    ExitStatus::from_raw(1 << 8)
                });
                stop.request(StopReason::CommandExited(st));
            })
            .map_err(|e| MonitorError::Spawn {
                cmd: command.join(" "),
                source: e,
            })?;
    }
    if let Some(d) = duration {
        let stop = stop.clone();
        let at = Instant::now() + d;
        let _ = std::thread::Builder::new()
            .name("monitor-duration".into())
            .spawn(move || {
                if !stop.wait_until(at) {
                    stop.request(StopReason::Duration);
                }
            });
    }
    Ok(())
}

/// si_code of signals the kernel sends for the terminal (Ctrl-C, Ctrl-\) to the whole
/// foreground process group.
const SI_KERNEL: i32 = 0x80;

fn signal_loop(stop: &Stop, w: &SignalWatch, tool: &str) {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset; sigwaitinfo only
    // writes into the siginfo_t we pass.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
    }
    loop {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe { libc::sigwaitinfo(&set, &mut info) };
        if sig < 0 {
            continue; // EINTR
        }
        let pid = w.child.load(Ordering::SeqCst);
        if pid > 0 && !w.child_done.load(Ordering::SeqCst) {
            if info.si_code == SI_KERNEL {
                // From the terminal: the command, in the same process group, has it too.
                continue;
            }
            eprintln!("{tool}: forwarding {} to the command (pid {pid})", signal_name(sig));
            // SAFETY: kill with a valid signal number; the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, sig);
            }
            continue;
        }
        if !stop.request(StopReason::Signal(sig)) {
            eprintln!(
                "{tool}: {} again: exiting now (rows after the last second are in FILE.partial: --recover)",
                signal_name(sig)
            );
            std::process::exit(128 + sig);
        }
    }
}

/// CPU seconds (user + system) of this process (`thread = false`) or of the calling thread.
pub fn cpu_seconds(thread: bool) -> f64 {
    let who = if thread { libc::RUSAGE_THREAD } else { libc::RUSAGE_SELF };
    // SAFETY: getrusage fills the struct we pass; `who` is a valid selector.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------------------
// Writing rows as they come

/// Rows of one contract that a monitor produces.
pub trait Rows: Send + Sized + 'static {
    fn contract() -> &'static Contract;
    fn to_batch(rows: &[Self]) -> RecordBatch;
}

/// Where a monitor's rows go.
#[derive(Debug, Clone)]
pub enum Dest {
    Stdout(Option<Format>),
    File { path: PathBuf, format: Option<Format> },
}

/// Longest a row waits before it is written (and the journal flushed).
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
const BATCH_ROWS: usize = 8192;

enum Msg<R> {
    Rows(Vec<R>),
    Finish(Meta),
}

/// A writer thread: rows in, batches out every second (or 8,192 rows), to a journal for files
/// or straight to stdout.
pub struct Recorder<R: Rows> {
    tx: Sender<Msg<R>>,
    handle: std::thread::JoinHandle<Result<u64, DataError>>,
    dest: Dest,
    journal: Option<PathBuf>,
}

impl<R: Rows> Recorder<R> {
    /// Create the output (errors surface here, before sampling starts) and the writer thread.
    pub fn start(dest: Dest, meta: &Meta) -> Result<Recorder<R>, DataError> {
        let schema = R::contract().schema();
        let (sink, journal) = match &dest {
            Dest::Stdout(f) => (Sink::create(None, *f, schema, meta)?, None),
            Dest::File { path, format } => {
                // Check the format now rather than at the end.
                crate::io::resolve_format(Some(path), *format)?;
                let j = journal_path(path);
                (Sink::create_journal(&j, schema, meta)?, Some(j))
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("monitor-writer".into())
            .spawn(move || write_loop::<R>(rx, sink))
            .map_err(|e| DataError::Write {
                path: "writer thread".into(),
                source: e,
            })?;
        Ok(Recorder {
            tx,
            handle,
            dest,
            journal,
        })
    }

    /// Hand rows to the writer; false when the writer has stopped (its error comes with
    /// [`Recorder::finish`]).
    pub fn send(&self, rows: Vec<R>) -> bool {
        rows.is_empty() || self.tx.send(Msg::Rows(rows)).is_ok()
    }

    /// Write what is left, close the journal and turn it into the final file with `extra`
    /// metadata (for stdout, Parquet footers get it too). Returns the rows written.
    pub fn finish(self, extra: &Meta) -> Result<u64, DataError> {
        let _ = self.tx.send(Msg::Finish(extra.clone()));
        drop(self.tx);
        let n = match self.handle.join() {
            Ok(r) => r?,
            Err(_) => {
                return Err(DataError::Write {
                    path: "writer thread".into(),
                    source: std::io::Error::other("the writer thread panicked"),
                });
            }
        };
        match (&self.dest, &self.journal) {
            (Dest::File { path, format }, Some(j)) => Ok(crate::io::finalize_journal(j, path, *format, extra)?.0),
            _ => Ok(n),
        }
    }

    /// Give up (the run never started): stop the writer and delete the journal.
    pub fn abandon(self) {
        drop(self.tx);
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

fn write_loop<R: Rows>(rx: Receiver<Msg<R>>, mut sink: Sink) -> Result<u64, DataError> {
    let mut buf: Vec<R> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut wrote_any = false;
    let mut extra = Meta::default();
    loop {
        let wait = match oldest {
            Some(t) => FLUSH_EVERY.saturating_sub(t.elapsed()),
            None => FLUSH_EVERY,
        };
        match rx.recv_timeout(wait) {
            Ok(Msg::Rows(mut rows)) => {
                if oldest.is_none() {
                    oldest = Some(Instant::now());
                }
                buf.append(&mut rows);
                if buf.len() >= BATCH_ROWS {
                    write_batch(&mut sink, &mut buf)?;
                    wrote_any = true;
                    oldest = None;
                }
            }
            Ok(Msg::Finish(m)) => {
                extra = m;
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                if !buf.is_empty() {
                    write_batch(&mut sink, &mut buf)?;
                    wrote_any = true;
                }
                oldest = None;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if !buf.is_empty() || !wrote_any {
        write_batch(&mut sink, &mut buf)?;
    }
    for (k, v) in &extra.0 {
        sink.append_meta(k, v);
    }
    sink.finish()
}

fn write_batch<R: Rows>(sink: &mut Sink, buf: &mut Vec<R>) -> Result<(), DataError> {
    let b = R::to_batch(buf);
    buf.clear();
    sink.write(&b)?;
    sink.flush()
}

/// `--recover JOURNAL [-o FILE]`: write out what a killed monitor's journal holds. The output
/// defaults to the journal's name without `.partial`.
pub fn recover(journal: &Path, out: Option<&Path>, format: Option<Format>, tool: &str) -> Result<(), DataError> {
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        let s = journal.to_string_lossy();
        PathBuf::from(s.strip_suffix(".partial").unwrap_or(&s).to_string())
    });
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_wakes_waiters_and_keeps_the_first_reason() {
        let s = Stop::new();
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.wait_until(Instant::now() + Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.request(StopReason::Duration));
        assert!(!s.request(StopReason::Signal(15)));
        assert!(h.join().unwrap());
        assert_eq!(s.reason(), Some(StopReason::Duration));
        assert!(s.wait_until(Instant::now() + Duration::from_secs(30)));
    }

    #[test]
    fn wait_until_returns_false_at_the_deadline() {
        let s = Stop::new();
        let t0 = Instant::now();
        assert!(!s.wait_until(t0 + Duration::from_millis(15)));
        assert!(t0.elapsed() >= Duration::from_millis(15));
    }

    #[tokio::test]
    async fn async_wait_is_woken_by_request() {
        let s = Stop::new();
        let s2 = s.clone();
        let h = tokio::spawn(async move { s2.wait_until_async(Instant::now() + Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.request(StopReason::Duration);
        assert!(h.await.unwrap());
    }

    #[test]
    fn exit_codes_follow_the_command() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(None), ExitCode::SUCCESS);
        assert_eq!(exit_code(Some(&StopReason::Signal(15))), ExitCode::SUCCESS);
        assert_eq!(
            exit_code(Some(&StopReason::CommandExited(ExitStatus::from_raw(3 << 8)))),
            ExitCode::from(3)
        );
        // killed by SIGTERM (15): 143
        assert_eq!(
            exit_code(Some(&StopReason::CommandExited(ExitStatus::from_raw(15)))),
            ExitCode::from(143)
        );
    }
}
