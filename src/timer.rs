//! A sub-millisecond timer for async code.
//!
//! tokio's timer wheel has a 1 ms resolution and rounds every deadline up to the next tick,
//! which alone would bias a 50 ms TTFT by up to 1 ms. Both the mock engine's token schedule and
//! replay's open-loop dispatcher need better, so deadlines are kept in a heap served by one
//! thread that parks until the earliest deadline (a futex wait with nanosecond timeout, with the
//! thread's timer slack lowered to 1 µs); it spins only for waits under 3 µs, so that dense
//! deadlines (thousands of streams) never keep a core busy.
//!
//! Deadlines are absolute (`Instant`), so a schedule never drifts: a late wake-up makes that
//! one event late, not every event after it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct Shared {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct Entry {
    at: Instant,
    seq: u64,
    shared: Arc<Shared>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Wheel {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    thread: OnceLock<Thread>,
}

/// How long before a deadline the timer thread stops parking and spins.
const SPIN: Duration = Duration::from_micros(3);
/// Deadlines this close ahead fire with the ones due now: one wake-up serves a cluster of
/// deadlines (thousands of streams) instead of a park and a wake per deadline. Waking from a
/// park is itself some tens of microseconds late, so this keeps the error centred.
const EARLY: Duration = Duration::from_micros(20);

fn wheel() -> &'static Wheel {
    static W: OnceLock<&'static Wheel> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Wheel = Box::leak(Box::new(Wheel {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            thread: OnceLock::new(),
        }));
        let h = std::thread::Builder::new()
            .name("servebench-timer".into())
            .spawn(move || run(w))
            .expect("spawn timer thread");
        let _ = w.thread.set(h.thread().clone());
        w
    })
}

fn run(w: &'static Wheel) {
    // Ask the kernel for 1 µs timer slack on this thread (default 50 µs) so parking wakes
    // on time.
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
    let mut due: Vec<Arc<Shared>> = Vec::with_capacity(256);
    loop {
        let next = {
            let mut g = w.heap.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now() + EARLY;
            while let Some(Reverse(e)) = g.0.peek() {
                if e.at <= now {
                    let Reverse(e) = g.0.pop().expect("peeked");
                    due.push(e.shared);
                } else {
                    break;
                }
            }
            g.0.peek().map(|Reverse(e)| e.at)
        };
        for s in due.drain(..) {
            s.fired.store(true, Ordering::Release);
            if let Some(wk) = s.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                wk.wake();
            }
        }
        match next {
            None => std::thread::park(),
            Some(at) => {
                let now = Instant::now();
                if at > now + SPIN {
                    // Park for the whole wait: with many deadlines close together, spinning
                    // would keep a core busy that the engine and the client need.
                    std::thread::park_timeout(at - now);
                } else {
                    while Instant::now() < at {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }
}

/// A future that completes at `at` (precisely, see the module docs).
pub struct Sleep {
    at: Instant,
    shared: Option<Arc<Shared>>,
}

/// Sleep until an absolute deadline.
pub fn sleep_until(at: Instant) -> Sleep {
    Sleep { at, shared: None }
}

impl Sleep {
    pub fn deadline(&self) -> Instant {
        self.at
    }

    /// Re-arm for a new deadline.
    pub fn reset(&mut self, at: Instant) {
        self.at = at;
        self.shared = None;
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // (the timer thread may fire a deadline up to EARLY ahead; a deadline already within
        // that window is ready at once)
        if let Some(s) = &self.shared {
            if s.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            let mut g = s.waker.lock().unwrap_or_else(|e| e.into_inner());
            if s.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            match &*g {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *g = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        if Instant::now() + EARLY >= self.at {
            return Poll::Ready(());
        }
        let shared = Arc::new(Shared {
            fired: AtomicBool::new(false),
            waker: Mutex::new(Some(cx.waker().clone())),
        });
        let w = wheel();
        let earliest = {
            let mut g = w.heap.lock().unwrap_or_else(|e| e.into_inner());
            let seq = g.1;
            g.1 += 1;
            let is_first = g.0.peek().map(|Reverse(e)| self.at < e.at).unwrap_or(true);
            g.0.push(Reverse(Entry {
                at: self.at,
                seq,
                shared: shared.clone(),
            }));
            is_first
        };
        if earliest && let Some(t) = w.thread.get() {
            t.unpark();
        }
        self.shared = Some(shared);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_close_to_deadline() {
        let mut errs = Vec::new();
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_millis(3);
            sleep_until(at).await;
            let now = Instant::now();
            assert!(now + EARLY >= at, "woke more than EARLY before the deadline");
            errs.push(now.saturating_duration_since(at).as_secs_f64() * 1e3);
        }
        errs.sort_by(|a, b| a.total_cmp(b));
        // at most EARLY early; the median wake-up is well inside a millisecond
        assert!(errs[10] < 1.0, "median lateness {} ms", errs[10]);
    }

    #[tokio::test]
    async fn many_sleepers_in_order() {
        let t0 = Instant::now();
        let mut hs = Vec::new();
        for k in (0..50u64).rev() {
            hs.push(tokio::spawn(async move {
                let at = t0 + Duration::from_micros(500 * k);
                sleep_until(at).await;
                assert!(Instant::now() + EARLY >= at);
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
    }
}
