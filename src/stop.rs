//! Stopping, once for every tool: a stop flag with its reason, an optional grace period after
//! which in-flight work is cancelled, the SIGINT/SIGTERM thread, `--duration`, and the command
//! a monitor wraps.
//!
//! How a tool uses it (replay, gpumon and enginemon do exactly this):
//!
//! ```no_run
//! use servebench::stop::{self, Second, Stop, StopReason};
//! // first thing in main, before any thread starts: SIGINT/SIGTERM go to the signal thread
//! let _ = stop::block_signals();
//! // a stop with a grace period: after the first stop request, in-flight work has 30 s
//! let s = Stop::with_grace(std::time::Duration::from_secs(30));
//! // first signal: stop (grace starts); second: cancel now (or exit at once: Second::Exit)
//! let _w = stop::watch_signals(&s, "mytool", Second::Cancel);
//! s.stop_after(std::time::Duration::from_secs(60), StopReason::Duration);
//! while !s.is_stopped() { /* work; or s.wait_until(deadline), s.stopped().await */ }
//! ```
//!
//! A tool that waits in a loop of its own (engine-up waiting for readiness) polls
//! [`Stop::is_stopped`] or sleeps with [`Stop::wait_until`]; one that must also stop on
//! SIGHUP uses [`block`] and [`watch`] with [`STOP_SIGNALS_AND_HUP`], and starts its children
//! with [`unblock_in_child`]. An async server (mock-engine) awaits [`Stop::stopped`].
//!
//! The first [`StopReason`] given wins. A stop with a grace period cancels itself that long
//! after the first request ([`Stop::cancelled`] resolves); [`Stop::cancel`] cancels at once.
//!
//! Signals are taken by one thread with `sigwaitinfo` (they must be blocked in every other
//! thread: call [`block_signals`] first in `main`). When a monitor wraps a command
//! ([`supervise`]), signals sent to the monitor are forwarded to the command, except those the
//! terminal sent to the whole foreground process group (Ctrl-C), which the command has already
//! received: it must not get them twice (replay reads a second SIGINT as "cancel now").
//! Tests call tools in process without [`watch_signals`] and stop them with
//! [`Stop::request`].

use std::process::{Child, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM (the signal number).
    Signal(i32),
    /// `--duration` passed.
    Duration,
    /// The wrapped command ended.
    CommandExited(ExitStatus),
    /// The output could not be written (the error comes with the rows' file).
    OutputFailed,
    /// The input could not be read further (the error comes from the reader).
    InputFailed,
    /// Asked by the caller (a test, an embedding program).
    Requested,
}

impl StopReason {
    pub fn describe(&self) -> String {
        match self {
            StopReason::Signal(s) => format!("signal {}", signal_name(*s)),
            StopReason::Duration => "--duration reached".into(),
            StopReason::CommandExited(st) => format!("the command ended ({})", status_text(st)),
            StopReason::OutputFailed => "the output could not be written".into(),
            StopReason::InputFailed => "the input could not be read".into(),
            StopReason::Requested => "stop requested".into(),
        }
    }
}

/// `SIGTERM` for 15.
pub fn signal_name(s: i32) -> String {
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
/// With a grace period, a second flag (cancel) follows the first stop request by that long.
#[derive(Debug)]
pub struct Stop {
    reason: Mutex<Option<StopReason>>,
    cv: Condvar,
    notify: tokio::sync::Notify,
    cancelled: AtomicBool,
    cancel_notify: tokio::sync::Notify,
    grace: Option<Duration>,
    me: Weak<Stop>,
}

impl Stop {
    /// A stop without cancel (monitors: stopping ends the run).
    pub fn new() -> Arc<Stop> {
        Stop::build(None)
    }

    /// A stop whose first request gives in-flight work `grace`, then cancels it.
    pub fn with_grace(grace: Duration) -> Arc<Stop> {
        Stop::build(Some(grace))
    }

    fn build(grace: Option<Duration>) -> Arc<Stop> {
        Arc::new_cyclic(|me| Stop {
            reason: Mutex::new(None),
            cv: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            cancelled: AtomicBool::new(false),
            cancel_notify: tokio::sync::Notify::new(),
            grace,
            me: me.clone(),
        })
    }

    /// The grace period, if any.
    pub fn grace(&self) -> Option<Duration> {
        self.grace
    }

    /// Ask to stop; returns false if a reason was already given. With a grace period, a
    /// timer cancels in-flight work that long after the first request.
    pub fn request(&self, r: StopReason) -> bool {
        let mut g = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_some() {
            return false;
        }
        *g = Some(r);
        drop(g);
        self.cv.notify_all();
        self.notify.notify_waiters();
        if let (Some(grace), Some(me)) = (self.grace, self.me.upgrade()) {
            let _ = std::thread::Builder::new().name("stop-grace".into()).spawn(move || {
                // Sleep out the grace, waking early if cancelled meanwhile.
                let at = Instant::now() + grace;
                let mut g = me.reason.lock().unwrap_or_else(|e| e.into_inner());
                while !me.is_cancelled() {
                    let now = Instant::now();
                    if now >= at {
                        break;
                    }
                    g = me.cv.wait_timeout(g, at - now).unwrap_or_else(|e| e.into_inner()).0;
                }
                drop(g);
                me.cancel();
            });
        }
        true
    }

    /// Cancel in-flight work now (and stop, if not stopped yet).
    pub fn cancel(&self) {
        self.request(StopReason::Requested);
        if !self.cancelled.swap(true, Ordering::SeqCst) {
            // Take the lock so a waiter between its check and its wait is not missed.
            drop(self.reason.lock().unwrap_or_else(|e| e.into_inner()));
            self.cv.notify_all();
            self.cancel_notify.notify_waiters();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
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
        tokio::select! {
            _ = self.stopped() => true,
            _ = crate::timer::sleep_until(at) => self.is_stopped(),
        }
    }

    /// Resolves once stopped.
    pub async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }

    /// Resolves once cancelled (never, for a stop without grace that nobody cancels).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.cancel_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Stop with `reason` after `d`, unless stopped before (a timer thread).
    pub fn stop_after(&self, d: Duration, reason: StopReason) {
        let Some(me) = self.me.upgrade() else { return };
        let at = Instant::now() + d;
        let _ = std::thread::Builder::new().name("stop-timer".into()).spawn(move || {
            if !me.wait_until(at) {
                me.request(reason);
            }
        });
    }
}

/// The signals that stop a tool: SIGINT and SIGTERM.
pub const STOP_SIGNALS: &[Signal] = &[Signal::SIGINT, Signal::SIGTERM];
/// The same and SIGHUP (a tool that must clean up when its terminal goes away: engine-up).
pub const STOP_SIGNALS_AND_HUP: &[Signal] = &[Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Block SIGINT and SIGTERM in the calling thread and in every thread it starts afterwards,
/// so that [`watch_signals`]'s thread receives them. Call it first in `main`. (The mask is
/// inherited across exec: [`supervise`] unblocks them again in the command it starts; other
/// commands a tool starts need [`unblock_in_child`].)
pub fn block_signals() -> std::io::Result<()> {
    block(STOP_SIGNALS)
}

/// [`block_signals`] for another set of signals (give the same set to [`watch`]).
pub fn block(signals: &[Signal]) -> std::io::Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(std::io::Error::from)
}

/// Make a command started from a tool that blocks `signals` receive them again (the mask is
/// inherited across exec).
pub fn unblock_in_child(c: &mut std::process::Command, signals: &'static [Signal]) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (sigemptyset, sigaddset, sigprocmask), with no allocation.
    unsafe {
        c.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in signals {
                libc::sigaddset(&mut set, *s as libc::c_int);
            }
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// What a second SIGINT/SIGTERM does (the first one stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Second {
    /// Cancel in-flight work now (replay); the tool still writes its file.
    Cancel,
    /// Exit at once with 128 + N, leaving the journal for `--recover` (monitors).
    Exit,
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
/// the first one stops the run (saying so on stderr when the stop has a grace), a second one
/// does what `second` says; with a command they are forwarded to it (see the module docs).
/// Start it before any slow set-up, so that a hung start can be interrupted.
pub fn watch_signals(stop: &Arc<Stop>, tool: &'static str, second: Second) -> SignalWatch {
    watch(stop, tool, second, STOP_SIGNALS)
}

/// [`watch_signals`] for another set of signals (blocked first with [`block`]).
pub fn watch(stop: &Arc<Stop>, tool: &'static str, second: Second, signals: &'static [Signal]) -> SignalWatch {
    let w = SignalWatch::default();
    let (stop, w2) = (stop.clone(), w.clone());
    let _ = std::thread::Builder::new()
        .name("stop-signals".into())
        .spawn(move || signal_loop(&stop, &w2, tool, second, signals));
    w
}

/// Start the rest of a monitor's watch: a timer for `duration` and, when `command` is not
/// empty, the command itself (stdin, stdout and stderr inherited) and a thread waiting for it.
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
        let mut c = std::process::Command::new(prog);
        c.args(args);
        // The command must not inherit our blocked SIGINT/SIGTERM (see block_signals).
        unblock_in_child(&mut c, STOP_SIGNALS);
        let spawn_err = |e| MonitorError::Spawn {
            cmd: command.join(" "),
            source: e,
        };
        let mut child: Child = c.spawn().map_err(spawn_err)?;
        signals.child.store(child.id() as i32, Ordering::SeqCst);
        let stop = stop.clone();
        let done = signals.child_done.clone();
        std::thread::Builder::new()
            .name("stop-child".into())
            .spawn(move || {
                let st = child.wait();
                done.store(true, Ordering::SeqCst);
                let st = st.unwrap_or_else(|_| {
                    use std::os::unix::process::ExitStatusExt;
                    ExitStatus::from_raw(1 << 8)
                });
                stop.request(StopReason::CommandExited(st));
            })
            .map_err(spawn_err)?;
    }
    if let Some(d) = duration {
        stop.stop_after(d, StopReason::Duration);
    }
    Ok(())
}

/// si_code of signals the kernel sends for the terminal (Ctrl-C, Ctrl-\) to the whole
/// foreground process group.
const SI_KERNEL: i32 = 0x80;

fn signal_loop(stop: &Stop, w: &SignalWatch, tool: &str, second: Second, signals: &[Signal]) {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset; sigwaitinfo only
    // writes into the siginfo_t we pass.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s as libc::c_int);
        }
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
        if stop.request(StopReason::Signal(sig)) {
            if let Some(g) = stop.grace() {
                eprintln!("{tool}: stopping: no new requests; in-flight ones get {g:?} (again to cancel now)");
            }
            continue;
        }
        match second {
            Second::Cancel => {
                eprintln!("{tool}: cancelling in-flight requests");
                stop.cancel();
            }
            Second::Exit => {
                eprintln!(
                    "{tool}: {} again: exiting now (rows after the last second are in the journal: --recover)",
                    signal_name(sig)
                );
                std::process::exit(128 + sig);
            }
        }
    }
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
        assert!(!s.is_cancelled());
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

    #[tokio::test]
    async fn grace_then_cancel_and_cancel_at_once() {
        let s = Stop::with_grace(Duration::from_millis(30));
        let t0 = Instant::now();
        s.request(StopReason::Duration);
        assert!(!s.is_cancelled());
        tokio::time::timeout(Duration::from_secs(10), s.cancelled())
            .await
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(30));
        // a second request changes nothing; cancel() cancels at once
        let s = Stop::with_grace(Duration::from_secs(3600));
        s.request(StopReason::Signal(2));
        s.cancel();
        tokio::time::timeout(Duration::from_secs(10), s.cancelled())
            .await
            .unwrap();
        assert_eq!(s.reason(), Some(StopReason::Signal(2)));
    }

    #[test]
    fn stop_after_requests_the_reason() {
        let s = Stop::new();
        s.stop_after(Duration::from_millis(10), StopReason::Duration);
        assert!(s.wait_until(Instant::now() + Duration::from_secs(10)));
        assert_eq!(s.reason(), Some(StopReason::Duration));
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
