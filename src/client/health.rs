//! What the scheduler keeps about itself: the requests in flight (to wait for at the end) and
//! the client's health, recorded in the requests file so a reader can see the client was not
//! the bottleneck.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// What the client itself did, so a reader can see it was not the bottleneck.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub requests_sent: u64,
    pub peak_in_flight: u64,
    pub max_sched_lag_ms: f64,
    pub wall_s: f64,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub max_rss_mib: f64,
    /// With --start-at: how late the schedule began after the agreed instant (this host's clock).
    pub start_late_ms: Option<f64>,
    /// The load the measured (not warm-up) requests delivered: in flight, rates, due→sent,
    /// and whether the client fell short of the load asked (see [`crate::stats::LoadAcc`]).
    pub load: crate::stats::Load,
}

pub(super) struct Tracker {
    pub(super) n: AtomicUsize,
    pub(super) done: Notify,
}

pub(super) struct TrackGuard(Arc<Tracker>);

impl Tracker {
    pub(super) fn enter(self: &Arc<Self>) -> TrackGuard {
        self.n.fetch_add(1, Ordering::SeqCst);
        TrackGuard(self.clone())
    }
    pub(super) async fn wait(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.n.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}
