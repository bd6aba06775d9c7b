//! The one percentile method, bootstrap confidence intervals, and summaries of samples.
//!
//! Percentiles use linear interpolation between closest ranks, numpy's default (`method =
//! "linear"`, type 7 of Hyndman & Fan): for sorted x of length n and q in [0, 1], h = (n-1)q,
//! p = x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]). DuckDB's `quantile_cont` is
//! the same method, so agg's numbers match a DuckDB query on the same rows.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Beta, Distribution};

/// Percentile `q` (0..=1) of sorted, NaN-free data; None when empty.
pub fn percentile_sorted(x: &[f64], q: f64) -> Option<f64> {
    let n = x.len();
    if n == 0 {
        return None;
    }
    let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
    let h = (n - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(lerp(x[lo], x[hi], h - lo as f64))
}

/// a + t (b - a) for a <= b, as numpy's `_lerp` computes it (from b when t >= 0.5, so the
/// result is exact at both ends and monotone in t), kept within [a, b], and without the NaN
/// that infinite values would give (a value past +inf or equal ends is that value).
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    if t <= 0.0 || a == b {
        return a;
    }
    let d = b - a;
    if !d.is_finite() {
        return if t >= 1.0 || b == f64::INFINITY { b } else { a };
    }
    let v = if t >= 0.5 { b - d * (1.0 - t) } else { a + d * t };
    v.max(a).min(b)
}

/// Sort in place (total order; NaNs are removed first).
pub fn sort(v: &mut Vec<f64>) {
    v.retain(|x| !x.is_nan());
    v.sort_unstable_by(|a, b| a.total_cmp(b));
}

/// Summary statistics of one latency metric.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub p50_ci: (f64, f64),
    pub p99_ci: (f64, f64),
}

/// Summarise sorted data; None when empty. `boot` resamples for the CIs (0 = no CIs).
pub fn summarize(sorted: &[f64], boot: usize, seed: u64) -> Option<Stats> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // Kahan-free mean is fine here: values are latencies of similar magnitude; use f64 sum.
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let p = |q| percentile_sorted(sorted, q).expect("non-empty");
    let (p50_ci, p99_ci) = if boot > 0 {
        (
            bootstrap_ci(sorted, 0.5, boot, seed, 0.95),
            bootstrap_ci(sorted, 0.99, boot, seed ^ 0x99, 0.95),
        )
    } else {
        ((f64::NAN, f64::NAN), (f64::NAN, f64::NAN))
    };
    Some(Stats {
        n,
        mean,
        p50: p(0.5),
        p90: p(0.9),
        p95: p(0.95),
        p99: p(0.99),
        p999: p(0.999),
        max: sorted[n - 1],
        p50_ci,
        p99_ci,
    })
}

/// Samples of one metric: exact values while they fit the memory budget, else an HDR
/// histogram (see [`Samples::to_histogram`]).
#[derive(Debug, Clone)]
pub enum Samples {
    Exact(Vec<f64>),
    Hist(Box<Hist>),
}

impl Default for Samples {
    fn default() -> Self {
        Samples::Exact(Vec::new())
    }
}

/// Histogram units per millisecond (values are recorded in microseconds).
const HIST_SCALE: f64 = 1000.0;
/// Significant decimal digits kept by the histogram: values are exact to 0.1% relative
/// (plus the 1 µs unit).
pub const HIST_SIGFIG: u8 = 3;

/// A histogram of non-negative millisecond values with their exact count, sum, min and max.
#[derive(Debug, Clone)]
pub struct Hist {
    h: hdrhistogram::Histogram<u64>,
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Hist {
    fn new() -> Hist {
        Hist {
            h: hdrhistogram::Histogram::new(HIST_SIGFIG).expect("valid sigfig"),
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
    fn push(&mut self, v: f64) {
        let u = (v.max(0.0) * HIST_SCALE).round().min(u64::MAX as f64 / 4.0) as u64;
        // an auto-resizing histogram only fails on absurd values; those are clamped above
        let _ = self.h.record(u);
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
    fn quantile(&self, q: f64) -> f64 {
        if q >= 1.0 {
            return self.max;
        }
        if q <= 0.0 {
            return self.min;
        }
        (self.h.value_at_quantile(q) as f64 / HIST_SCALE).clamp(self.min, self.max)
    }
}

impl Samples {
    pub fn push(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        match self {
            Samples::Exact(x) => x.push(v),
            Samples::Hist(h) => h.push(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Samples::Exact(x) => x.len(),
            Samples::Hist(h) => h.n as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values held in memory (what the memory budget counts).
    pub fn held(&self) -> usize {
        match self {
            Samples::Exact(x) => x.len(),
            Samples::Hist(_) => 0,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Samples::Exact(_))
    }

    /// Move the values into an HDR histogram: bounded memory from here on, percentiles exact
    /// to 0.1% of their value.
    pub fn to_histogram(&mut self) {
        if let Samples::Exact(x) = self {
            let mut h = Hist::new();
            for v in x.iter() {
                h.push(*v);
            }
            *self = Samples::Hist(Box::new(h));
        }
    }

    /// Add another sample set's values to this one (exact stays exact only if both are).
    pub fn merge(&mut self, other: Samples) {
        match (&mut *self, other) {
            (Samples::Exact(a), Samples::Exact(b)) => a.extend(b),
            (Samples::Hist(a), Samples::Hist(b)) => {
                let _ = a.h.add(&b.h);
                a.n += b.n;
                a.sum += b.sum;
                a.min = a.min.min(b.min);
                a.max = a.max.max(b.max);
            }
            (Samples::Hist(a), Samples::Exact(b)) => {
                for v in b {
                    a.push(v);
                }
            }
            (Samples::Exact(_), other @ Samples::Hist(_)) => {
                self.to_histogram();
                self.merge(other);
            }
        }
    }

    /// Sort exact values (call once, before the statistics).
    pub fn finish(&mut self) {
        if let Samples::Exact(x) = self {
            sort(x);
        }
    }

    /// Sorted values, for exact samples (after [`Samples::finish`]).
    pub fn sorted(&self) -> Option<&[f64]> {
        match self {
            Samples::Exact(x) => Some(x),
            Samples::Hist(_) => None,
        }
    }

    /// Percentile q (0..=1): numpy's linear method on exact values, the histogram's value at
    /// that quantile otherwise.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        match self {
            Samples::Exact(x) => percentile_sorted(x, q),
            Samples::Hist(h) => (h.n > 0).then(|| h.quantile(q)),
        }
    }

    /// The mean, None without values.
    pub fn mean(&self) -> Option<f64> {
        match self {
            Samples::Exact(x) => (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64),
            Samples::Hist(h) => (h.n > 0).then(|| h.sum / h.n as f64),
        }
    }

    /// The empirical inverse CDF F^-1(u), for the bootstrap.
    fn inverse(&self, u: f64) -> f64 {
        match self {
            Samples::Exact(x) => {
                let n = x.len();
                let r = (u * n as f64).ceil() as usize;
                x[r.clamp(1, n) - 1]
            }
            Samples::Hist(h) => h.quantile(u),
        }
    }

    pub fn summarize(&self, boot: usize, seed: u64) -> Option<Stats> {
        match self {
            Samples::Exact(x) => summarize(x, boot, seed),
            Samples::Hist(h) => {
                if h.n == 0 {
                    return None;
                }
                let ci = |q: f64, s: u64| {
                    if boot == 0 {
                        return (f64::NAN, f64::NAN);
                    }
                    let mut r = replicates_with(h.n as usize, q, boot, s, &|u| self.inverse(u), None);
                    sort(&mut r);
                    (
                        percentile_sorted(&r, 0.025).unwrap_or(f64::NAN),
                        percentile_sorted(&r, 0.975).unwrap_or(f64::NAN),
                    )
                };
                Some(Stats {
                    n: h.n as usize,
                    mean: h.sum / h.n as f64,
                    p50: h.quantile(0.5),
                    p90: h.quantile(0.9),
                    p95: h.quantile(0.95),
                    p99: h.quantile(0.99),
                    p999: h.quantile(0.999),
                    max: h.max,
                    p50_ci: ci(0.5, seed),
                    p99_ci: ci(0.99, seed ^ 0x99),
                })
            }
        }
    }

    /// Bootstrap replicates of percentile q (exact order-statistic method, see
    /// [`bootstrap_replicates`]).
    pub fn replicates(&self, q: f64, b: usize, seed: u64) -> Vec<f64> {
        match self {
            Samples::Exact(x) => bootstrap_replicates(x, q, b, seed),
            Samples::Hist(h) => replicates_with(h.n as usize, q, b, seed, &|u| self.inverse(u), None),
        }
    }
}

/// Bootstrap replicates of percentile `q` given the sample size and the empirical inverse
/// CDF; `sorted` enables exact interpolation between order statistics.
fn replicates_with(
    n: usize,
    q: f64,
    b: usize,
    seed: u64,
    inv: &dyn Fn(f64) -> f64,
    sorted: Option<&[f64]>,
) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![inv(0.5); b];
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let k = h.floor() as usize;
    let frac = if sorted.is_some() { h - k as f64 } else { 0.0 };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let a = Beta::new((k + 1) as f64, (n - k) as f64).expect("valid beta");
    let next = if k + 2 <= n {
        Some(Beta::new(1.0, (n - k - 1) as f64).expect("valid beta"))
    } else {
        None
    };
    (0..b)
        .map(|_| {
            let u1: f64 = a.sample(&mut rng);
            let lo = inv(u1);
            if frac == 0.0 {
                return lo;
            }
            let u2 = match &next {
                Some(bt) => u1 + (1.0 - u1) * bt.sample(&mut rng),
                None => u1,
            };
            lo + frac * (inv(u2) - lo)
        })
        .collect()
}

/// Bootstrap replicates of percentile `q` of sorted data, drawn exactly without resampling
/// n values.
///
/// A bootstrap resample is n draws from the empirical distribution F_n, so its order
/// statistics are F_n^{-1}(U_(1..n)) for uniform order statistics U. The percentile
/// interpolates the order statistics at ranks k+1 and k+2 (k = floor((n-1)q)), and
/// U_(k+1) ~ Beta(k+1, n-k), U_(k+2) = U_(k+1) + (1 - U_(k+1)) Beta(1, n-k-1) (the next
/// order statistic of the remaining n-k-1 uniforms). Each replicate therefore costs O(1)
/// after sorting, and the result has exactly the distribution of the classical (resampling)
/// bootstrap of this percentile.
pub fn bootstrap_replicates(sorted: &[f64], q: f64, b: usize, seed: u64) -> Vec<f64> {
    let n = sorted.len();
    let inv = |u: f64| -> f64 {
        // F_n^{-1}(u) = x_(ceil(n u)), 1-based
        let r = (u * n as f64).ceil() as usize;
        sorted[r.clamp(1, n) - 1]
    };
    replicates_with(n, q, b, seed, &inv, Some(sorted))
}

/// Percentile bootstrap confidence interval (level, e.g. 0.95) of percentile `q`.
pub fn bootstrap_ci(sorted: &[f64], q: f64, b: usize, seed: u64, level: f64) -> (f64, f64) {
    let mut reps = bootstrap_replicates(sorted, q, b, seed);
    if reps.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    sort(&mut reps);
    let a = (1.0 - level) / 2.0;
    (
        percentile_sorted(&reps, a).expect("non-empty"),
        percentile_sorted(&reps, 1.0 - a).expect("non-empty"),
    )
}

/// Confidence interval of a ratio of two medians (or any percentile), B/A, by the bootstrap
/// of each side independently (the groups are independent runs).
pub fn ratio_ci(a: &Samples, b: &Samples, q: f64, reps: usize, seed: u64, level: f64) -> Option<(f64, f64, f64)> {
    let pa = a.percentile(q)?;
    let pb = b.percentile(q)?;
    let ra = a.replicates(q, reps, seed);
    let rb = b.replicates(q, reps, seed ^ 0x5151);
    let mut r: Vec<f64> = ra
        .iter()
        .zip(&rb)
        .filter(|(x, _)| **x != 0.0)
        .map(|(x, y)| y / x)
        .collect();
    if r.is_empty() || pa == 0.0 {
        return None;
    }
    sort(&mut r);
    let al = (1.0 - level) / 2.0;
    Some((pb / pa, percentile_sorted(&r, al)?, percentile_sorted(&r, 1.0 - al)?))
}

/// Confidence interval of the ratio of two means (B/A), bootstrapping each sample's mean
/// independently. Returns (lo, hi).
pub fn mean_ratio_ci(a: &[f64], b: &[f64], reps: usize, seed: u64, level: f64) -> Option<(f64, f64)> {
    use rand::RngExt;
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut mean =
        |x: &[f64]| -> f64 { (0..x.len()).map(|_| x[rng.random_range(0..x.len())]).sum::<f64>() / x.len() as f64 };
    let mut r: Vec<f64> = Vec::with_capacity(reps);
    for _ in 0..reps {
        let ma = mean(a);
        let mb = mean(b);
        if ma > 0.0 {
            r.push(mb / ma);
        }
    }
    if r.is_empty() {
        return None;
    }
    sort(&mut r);
    let al = (1.0 - level) / 2.0;
    Some((percentile_sorted(&r, al)?, percentile_sorted(&r, 1.0 - al)?))
}

/// Width of the time bins output tokens are counted in (for the throughput interval).
pub const BIN_US: i64 = 100_000;

/// Output-token rates of consecutive time batches covering [start, end] (batch means): the
/// run is cut into up to 20 equal batches of whole 100 ms bins, at least 5, each at least
/// one bin. None when the run is too short for 5 batches.
pub fn batch_rates(bins: &BTreeMap<i64, f64>, start_us: i64, end_us: i64) -> Option<Vec<f64>> {
    let b0 = start_us.div_euclid(BIN_US);
    let b1 = end_us.div_euclid(BIN_US);
    let nbins = (b1 - b0 + 1).max(0);
    let k = (nbins / 2).min(20);
    if k < 5 {
        return None;
    }
    let per = nbins / k;
    let mut rates = Vec::with_capacity(k as usize);
    for j in 0..k {
        let lo = b0 + j * per;
        let hi = if j + 1 == k { b1 + 1 } else { lo + per };
        let tokens: f64 = bins.range(lo..hi).map(|(_, v)| v).sum();
        rates.push(tokens / ((hi - lo) as f64 * BIN_US as f64 / 1e6));
    }
    Some(rates)
}

/// Two-sided 97.5% Student t quantiles for 1..=30 degrees of freedom.
pub const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// Mean and 95% t-interval of batch rates.
pub fn rate_ci(bins: &BTreeMap<i64, f64>, start_us: i64, end_us: i64) -> Option<(f64, f64, f64)> {
    let r = batch_rates(bins, start_us, end_us)?;
    let n = r.len() as f64;
    let m = r.iter().sum::<f64>() / n;
    let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = T975[(r.len() - 2).min(29)];
    let h = t * sd / n.sqrt();
    Some((m, (m - h).max(0.0), m + h))
}

/// Below this share (%) of the asked load, a run is client-bound: the client, not the server,
/// set the pace (see [`LoadAcc`]).
pub const CLIENT_BOUND_PCT: f64 = 95.0;

/// The load a group of requests actually put on the server, accumulated one request at a time
/// from its timestamps (µs since the epoch), mergeable across files and threads.
///
/// - in flight: a request is in flight from `sent_at` to `done_at`. The time-weighted mean in
///   flight is the sum of those intervals over the window from the first `sent_at` to the last
///   `done_at` (the group's `duration_s`).
/// - due: a request is due at `scheduled_at` (open loop: its trace time; closed loop: the
///   moment its user's previous request ended, or the run start for a user's first). Between
///   due and `sent_at` it waits on the client.
/// - closed loop (users asked): the delivered share is in-flight time / (in-flight time + time
///   due but not yet sent), i.e. the share of their busy time users had a request on the
///   wire; 100% means users never waited on the client. Time a user is idle by design (the
///   trace's think time between session turns, users with no work left at the end) counts in
///   neither, so a short or uneven run is not flagged for its tail.
/// - open loop: achieved rate = (sent − 1) / (last `sent_at` − first `sent_at`), against the
///   trace's rate over the same requests, (sent − 1) / (last `scheduled_at` − first
///   `scheduled_at`); the delivered share is their ratio.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadAcc {
    /// Requests with a `sent_at`.
    pub sent: u64,
    pub first_sent_us: Option<i64>,
    pub last_sent_us: Option<i64>,
    pub last_done_us: Option<i64>,
    /// Sent requests with a `scheduled_at`.
    pub due_n: u64,
    pub first_due_us: Option<i64>,
    pub last_due_us: Option<i64>,
    /// Sum of done − sent over requests with both (µs).
    pub busy_us: i64,
    /// Sum of max(0, sent − scheduled) over sent requests with a schedule (µs).
    pub wait_us: i64,
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl LoadAcc {
    /// One request's timestamps (rows never sent add nothing).
    pub fn add(&mut self, scheduled_us: Option<i64>, sent_us: Option<i64>, done_us: Option<i64>) {
        let Some(s) = sent_us else { return };
        self.sent += 1;
        self.first_sent_us = min_opt(self.first_sent_us, Some(s));
        self.last_sent_us = max_opt(self.last_sent_us, Some(s));
        if let Some(d) = done_us {
            self.last_done_us = max_opt(self.last_done_us, Some(d));
            self.busy_us += (d - s).max(0);
        }
        if let Some(due) = scheduled_us {
            self.due_n += 1;
            self.first_due_us = min_opt(self.first_due_us, Some(due));
            self.last_due_us = max_opt(self.last_due_us, Some(due));
            self.wait_us += (s - due).max(0);
        }
    }

    pub fn merge(&mut self, o: &LoadAcc) {
        self.sent += o.sent;
        self.first_sent_us = min_opt(self.first_sent_us, o.first_sent_us);
        self.last_sent_us = max_opt(self.last_sent_us, o.last_sent_us);
        self.last_done_us = max_opt(self.last_done_us, o.last_done_us);
        self.due_n += o.due_n;
        self.first_due_us = min_opt(self.first_due_us, o.first_due_us);
        self.last_due_us = max_opt(self.last_due_us, o.last_due_us);
        self.busy_us += o.busy_us;
        self.wait_us += o.wait_us;
    }

    /// The achieved load: against `users` asked (closed loop) or, without users, against the
    /// trace's own schedule (open loop; `label_rate` stands in for the target when the rows
    /// carry no schedule).
    pub fn finish(&self, users: Option<u32>, label_rate: Option<f64>) -> Load {
        let mut l = Load::default();
        if let (Some(a), Some(b)) = (self.first_sent_us, self.last_done_us)
            && b > a
        {
            l.in_flight_mean = Some(self.busy_us as f64 / (b - a) as f64);
        }
        if self.sent > 0 {
            l.wait_mean_ms = Some(self.wait_us as f64 / 1e3 / self.due_n.max(1) as f64);
        }
        match users {
            Some(u) => {
                let u = u.max(1) as f64;
                l.concurrency_pct = l.in_flight_mean.map(|m| 100.0 * m / u);
                let owed = self.busy_us + self.wait_us;
                if owed > 0 {
                    l.load_pct = Some(100.0 * self.busy_us as f64 / owed as f64);
                }
            }
            None => {
                let per = |a: Option<i64>, b: Option<i64>, n: u64| match (a, b) {
                    (Some(a), Some(b)) if b > a && n >= 2 => Some((n - 1) as f64 * 1e6 / (b - a) as f64),
                    _ => None,
                };
                l.achieved_rate = per(self.first_sent_us, self.last_sent_us, self.sent);
                l.target_rate = if self.due_n == self.sent {
                    per(self.first_due_us, self.last_due_us, self.due_n)
                } else {
                    None
                }
                .or(label_rate.filter(|r| *r > 0.0 && r.is_finite()));
                if let (Some(a), Some(t)) = (l.achieved_rate, l.target_rate) {
                    l.rate_pct = Some(100.0 * a / t);
                }
                l.load_pct = l.rate_pct;
            }
        }
        l.client_bound = l.load_pct.is_some_and(|p| p < CLIENT_BOUND_PCT);
        l
    }
}

/// What [`LoadAcc::finish`] tells (None where the requests cannot tell it).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Load {
    /// Time-weighted mean requests in flight.
    pub in_flight_mean: Option<f64>,
    /// Closed loop: `in_flight_mean` as a share of the users asked (%).
    pub concurrency_pct: Option<f64>,
    /// Open loop: achieved and target rates (req/s) and their ratio (%).
    pub achieved_rate: Option<f64>,
    pub target_rate: Option<f64>,
    pub rate_pct: Option<f64>,
    /// Mean time from due to sent (ms).
    pub wait_mean_ms: Option<f64>,
    /// The share of the asked load delivered (%): closed loop, in-flight time over in-flight
    /// plus due-but-unsent time; open loop, `rate_pct`.
    pub load_pct: Option<f64>,
    /// `load_pct` below [`CLIENT_BOUND_PCT`].
    pub client_bound: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two users for 10 s (µs below): one busy 0..4 s and 5..10 s, the other 0..10 s; the first
    /// user's second request was due at 4 s and sent at 5 s. In flight: 19 s over 10 s = 1.9
    /// (95% of 2); delivered: 19 / (19 + 1) = 95%, right at the line (not flagged).
    #[test]
    fn closed_loop_load_from_known_intervals() {
        const S: i64 = 1_000_000;
        let mut a = LoadAcc::default();
        a.add(Some(0), Some(0), Some(4 * S));
        a.add(Some(4 * S), Some(5 * S), Some(10 * S));
        a.add(Some(0), Some(0), Some(10 * S));
        // a row never sent adds nothing
        a.add(Some(3 * S), None, None);
        let l = a.finish(Some(2), None);
        assert_eq!(l.in_flight_mean, Some(1.9));
        assert!((l.concurrency_pct.unwrap() - 95.0).abs() < 1e-12);
        assert_eq!(l.load_pct, Some(95.0));
        assert!(!l.client_bound);
        assert!((l.wait_mean_ms.unwrap() - 1000.0 / 3.0).abs() < 1e-9);
        assert_eq!((l.achieved_rate, l.target_rate, l.rate_pct), (None, None, None));
        // one more second of waiting tips it: 19 / 21 < 95%
        a.add(Some(10 * S), Some(11 * S), Some(11 * S));
        let l = a.finish(Some(2), None);
        assert!((l.load_pct.unwrap() - 100.0 * 19.0 / 21.0).abs() < 1e-9);
        assert!(l.client_bound);
    }

    /// Open loop: 5 requests due every 100 ms (10 req/s) but sent every 200 ms (5 req/s): 50%
    /// of the schedule, client-bound; the label's rate stands in only when rows carry no
    /// schedule. Merging partial accumulations gives the same answer as one.
    #[test]
    fn open_loop_rate_from_known_schedule() {
        let mut parts = [LoadAcc::default(), LoadAcc::default()];
        for k in 0..5i64 {
            parts[(k % 2) as usize].add(Some(k * 100_000), Some(k * 200_000), Some(k * 200_000 + 50_000));
        }
        let mut a = parts[0];
        a.merge(&parts[1]);
        let l = a.finish(None, Some(99.0));
        assert!((l.achieved_rate.unwrap() - 5.0).abs() < 1e-12);
        assert!((l.target_rate.unwrap() - 10.0).abs() < 1e-12);
        assert!((l.rate_pct.unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(l.load_pct, l.rate_pct);
        assert!(l.client_bound);
        // in flight: 5 x 50 ms over 0 .. 850 ms
        assert!((l.in_flight_mean.unwrap() - 250.0 / 850.0).abs() < 1e-12);
        // no schedule: against the label's rate
        let mut b = LoadAcc::default();
        for k in 0..5i64 {
            b.add(None, Some(k * 200_000), Some(k * 200_000 + 50_000));
        }
        let l = b.finish(None, Some(5.0));
        assert_eq!(l.target_rate, Some(5.0));
        assert!(!l.client_bound);
        // nothing sent: nothing known, nothing flagged
        let l = LoadAcc::default().finish(Some(8), None);
        assert_eq!(l, Load::default());
    }

    #[test]
    fn numpy_linear_known_vectors() {
        // numpy.percentile(x, q) with the default method, computed by hand:
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&x, 0.5), Some(2.5));
        assert!((percentile_sorted(&x, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(percentile_sorted(&x, 0.0), Some(1.0));
        assert_eq!(percentile_sorted(&x, 1.0), Some(4.0));
        let y: Vec<f64> = (1..=10).map(|v| v as f64 * 10.0).collect();
        // np.percentile([10..100], 99) = 99.1 ; 95 -> 95.5 ; 50 -> 55
        assert!((percentile_sorted(&y, 0.99).unwrap() - 99.1).abs() < 1e-9);
        assert!((percentile_sorted(&y, 0.95).unwrap() - 95.5).abs() < 1e-9);
        assert!((percentile_sorted(&y, 0.5).unwrap() - 55.0).abs() < 1e-9);
        assert_eq!(percentile_sorted(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile_sorted(&[], 0.5), None);
    }

    /// Found by agg's property tests: infinite values gave NaN percentiles (inf - inf).
    #[test]
    fn infinite_values_give_ordered_percentiles_not_nan() {
        let inf = f64::INFINITY;
        assert_eq!(percentile_sorted(&[inf], 0.0), Some(inf));
        assert_eq!(percentile_sorted(&[1.0, inf, inf], 0.75), Some(inf));
        assert_eq!(percentile_sorted(&[1.0, inf], 0.5), Some(inf));
        assert_eq!(percentile_sorted(&[-inf, 1.0], 0.5), Some(-inf));
        assert_eq!(percentile_sorted(&[1.0, inf], 0.0), Some(1.0));
        // exact at the ends and never outside them
        assert_eq!(percentile_sorted(&[0.1, 0.3], 1.0), Some(0.3));
        let v = percentile_sorted(&[0.1, 0.3], 0.9999999).unwrap();
        assert!((0.1..=0.3).contains(&v));
    }

    #[test]
    fn bootstrap_matches_resampling() {
        // The O(1) replicates have the same distribution as classical resampling.
        let mut x: Vec<f64> = (0..200).map(|i| ((i * 37) % 200) as f64 + (i as f64).sqrt()).collect();
        sort(&mut x);
        let fast = bootstrap_replicates(&x, 0.5, 20_000, 1);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        use rand::RngExt;
        let mut slow = Vec::new();
        for _ in 0..4000 {
            let mut r: Vec<f64> = (0..x.len()).map(|_| x[rng.random_range(0..x.len())]).collect();
            sort(&mut r);
            slow.push(percentile_sorted(&r, 0.5).unwrap());
        }
        let m = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let sd = |v: &[f64]| {
            let mu = m(v);
            (v.iter().map(|a| (a - mu).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        assert!(
            (m(&fast) - m(&slow)).abs() < 0.15 * sd(&slow) + 0.05,
            "{} vs {}",
            m(&fast),
            m(&slow)
        );
        assert!(
            (sd(&fast) / sd(&slow) - 1.0).abs() < 0.12,
            "{} vs {}",
            sd(&fast),
            sd(&slow)
        );
    }

    #[test]
    fn histogram_percentiles_are_within_a_tenth_of_a_percent() {
        let mut e = Samples::default();
        let mut h = Samples::default();
        h.to_histogram();
        for i in 0..100_000u64 {
            let v = 5.0 + ((i * 7919) % 100_003) as f64 / 97.0;
            e.push(v);
            h.push(v);
        }
        e.finish();
        h.finish();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let (x, y) = (e.percentile(q).unwrap(), h.percentile(q).unwrap());
            assert!((x - y).abs() / x < 1.5e-3, "q {q}: exact {x} hist {y}");
        }
        let (se, sh) = (e.summarize(500, 1).unwrap(), h.summarize(500, 1).unwrap());
        assert!((se.mean - sh.mean).abs() < 1e-9);
        assert_eq!(se.max, sh.max);
        assert!((se.p50_ci.0 - sh.p50_ci.0).abs() / se.p50 < 0.01);
    }

    #[test]
    fn bootstrap_is_seeded() {
        let x: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        assert_eq!(
            bootstrap_ci(&x, 0.99, 500, 7, 0.95),
            bootstrap_ci(&x, 0.99, 500, 7, 0.95)
        );
        let (lo, hi) = bootstrap_ci(&x, 0.5, 2000, 7, 0.95);
        assert!(lo < 499.5 && hi > 499.5 && hi - lo < 120.0, "{lo} {hi}");
    }
}

/// A property of the one percentile method: monotone in q, exact or from a histogram.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn percentile_is_monotone_in_q(
            mut v in prop::collection::vec(prop_oneof![9 => -1e6f64..1e6, 1 => Just(f64::INFINITY)], 1..200),
            qs in prop::collection::vec(0.0f64..=1.0, 2..20),
            hist in any::<bool>(),
        ) {
            let mut s = Samples::default();
            for x in &v {
                s.push(*x);
            }
            if hist {
                s.to_histogram();
            }
            s.finish();
            sort(&mut v);
            let mut qs = qs;
            qs.sort_by(|a, b| a.total_cmp(b));
            let ps: Vec<f64> = qs.iter().map(|q| s.percentile(*q).unwrap()).collect();
            for w in ps.windows(2) {
                prop_assert!(w[0] <= w[1], "{:?} at {:?}", ps, qs);
            }
            for p in &ps {
                prop_assert!(!p.is_nan());
            }
            if !hist {
                prop_assert_eq!(s.percentile(0.0), Some(v[0]));
                prop_assert_eq!(s.percentile(1.0), Some(v[v.len() - 1]));
            }
        }
    }
}

/// Samples expected beyond a percentile, on its thin side, before a difference in it may be
/// called significant: n · min(q, 1 − q) ≥ 10 (see [`min_samples`]).
pub const MIN_TAIL: f64 = 10.0;

/// The fewest samples per side from which a difference in percentile `q` is called
/// significant: at least [`MIN_TAIL`] samples expected beyond the percentile on its thin side,
/// n · min(q, 1 − q) ≥ 10, so 20 for a median and 1,000 for a p99.
///
/// Why, from the bootstrap's own behaviour (the order-statistic bootstrap above, 95%, 1,000
/// resamples, on exponential-tailed latencies): with one request per side the ratio's
/// interval has zero width and excludes 1 whenever the two values differ (100% false
/// positives), with two 33%, with three 10%. Once a few samples lie beyond the percentile the
/// interval behaves: a median's interval covers the true median in 93–95% of runs from
/// n ≈ 5 on, and 20 leaves room for requests of one run not being independent (they share the
/// server's batches). A p99's interval is set by the few largest values: it covered the true
/// p99 in 63% of runs at n = 100 (one value beyond it), 85% at 200 and 93% (the plateau) at
/// 1,000. `report` names no winner below this count.
pub fn min_samples(q: f64) -> u64 {
    let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
    let thin = q.min(1.0 - q).max(1e-6);
    (MIN_TAIL / thin - 1e-9).ceil().max(2.0) as u64
}
