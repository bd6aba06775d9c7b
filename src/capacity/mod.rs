//! Capacity at an SLO: the search `sweep` runs, without HTTP (the command runs the steps).
//!
//! - [`Slo`]: limits on percentiles (`ttft_p99=500ms,tpot_p99=50ms`) or on every request with
//!   an attainment (`ttft=500ms,tpot=50ms` and `--attainment 0.99`), and the step's
//!   [`score`] (<= 1 meets the SLO).
//! - [`Search`]: bracket the highest passing open-loop rate with short probes (growing or
//!   shrinking by `grow`²), then, within a bracket no wider than `grow`, bisect (geometric
//!   mean) with full-length steps until (failing - passing) / passing <= tolerance, and confirm at full
//!   length any end of it only a probe measured.
//! - [`Saturation`]: the over-saturation rule, on the backlog (requests due minus requests
//!   done) and the engine's waiting-requests gauge, sampled over the step; [`Signal`] says
//!   which queue climbed.
//! - [`decided_fail`]: a step already lost (more misses than the SLO allows of the planned
//!   requests) ends early.
//! - [`crossing`], [`bootstrap_interval`], [`t_interval`]: the capacity between the final
//!   bracket and its 95% interval; [`cost_per_m_tokens`]: its price.

use std::collections::BTreeMap;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::stats::percentile_sorted;

/// A latency an SLO can limit (ttft and e2e are measured from the schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lat {
    Ttft,
    Tpot,
    E2e,
}

impl Lat {
    pub fn name(self) -> &'static str {
        match self {
            Lat::Ttft => "ttft",
            Lat::Tpot => "tpot",
            Lat::E2e => "e2e",
        }
    }
    fn parse(s: &str) -> Option<Lat> {
        [Lat::Ttft, Lat::Tpot, Lat::E2e].into_iter().find(|l| l.name() == s)
    }
}

/// One limit: a latency, the percentile limited (None in the attainment form), the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub lat: Lat,
    /// The percentile as a fraction (0.99), or None: every request must meet it.
    pub q: Option<f64>,
    pub ms: f64,
}

impl Limit {
    /// `ttft_p99_ms` (the summary's column naming), or `ttft_ms` in the attainment form.
    pub fn key(&self) -> String {
        match self.q {
            Some(q) => format!("{}_p{}_ms", self.lat.name(), pct_text(q)),
            None => format!("{}_ms", self.lat.name()),
        }
    }
}

fn pct_text(q: f64) -> String {
    let p = q * 100.0;
    let s = format!("{p}");
    s.replace('.', "")
}

/// Why an SLO was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SloError {
    #[error("--slo {0:?}: {1}")]
    Bad(String, String),
}

/// An SLO: percentile limits, or per-request limits with an attainment.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub limits: Vec<Limit>,
    /// The share of requests that must meet every limit (attainment form).
    pub attainment: Option<f64>,
}

impl Slo {
    /// Parse `ttft_p99=500ms,tpot_p99=50ms` (percentile form) or `ttft=500ms,tpot=50ms` with
    /// `attainment` (0 < a < 1). Latencies: ttft, tpot, e2e; percentiles p50 to p99.9.
    pub fn parse(text: &str, attainment: Option<f64>) -> Result<Slo, SloError> {
        let bad = |m: &str| SloError::Bad(text.into(), m.into());
        let mut limits = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("each limit is NAME=DURATION, e.g. ttft_p99=500ms"))?;
            let ms = crate::units::parse_duration(v.trim())
                .map_err(|e| bad(&e.to_string()))?
                .as_secs_f64()
                * 1e3;
            if ms <= 0.0 {
                return Err(bad("a limit must be above zero"));
            }
            let k = k.trim();
            let (name, q) = match k.split_once("_p") {
                Some((n, p)) => {
                    let digits: String = p.chars().filter(|c| c.is_ascii_digit()).collect();
                    if digits.is_empty() || digits.len() != p.len() {
                        return Err(bad(&format!("{k}: a percentile is p50, p90, p99 or p999")));
                    }
                    // p99 -> 0.99, p999 -> 0.999, p50 -> 0.5
                    let q = format!("0.{digits}").parse::<f64>().map_err(|_| bad(k))?;
                    if !(0.0 < q && q < 1.0) {
                        return Err(bad(&format!("{k}: the percentile must be between p1 and p999")));
                    }
                    (n, Some(q))
                }
                None => (k, None),
            };
            let lat = Lat::parse(name).ok_or_else(|| bad(&format!("{name}: limit ttft, tpot or e2e")))?;
            limits.push(Limit { lat, q, ms });
        }
        if limits.is_empty() {
            return Err(bad("no limits; e.g. --slo ttft_p99=500ms,tpot_p99=50ms"));
        }
        let pct = limits.iter().filter(|l| l.q.is_some()).count();
        match attainment {
            Some(a) => {
                if pct > 0 {
                    return Err(bad(
                        "--attainment goes with limits on every request (ttft=500ms), not on percentiles (ttft_p99=500ms)",
                    ));
                }
                if !(a > 0.0 && a < 1.0) {
                    return Err(bad(&format!("--attainment {a}: a share between 0 and 1, e.g. 0.99")));
                }
            }
            None if pct != limits.len() => {
                return Err(bad(
                    "limits without a percentile (ttft=500ms) need --attainment, e.g. --attainment 0.99; or name percentiles (ttft_p99=500ms)",
                ));
            }
            None => {}
        }
        Ok(Slo { limits, attainment })
    }

    /// The normalised text (`ttft_p99<=500ms,tpot_p99<=50ms`).
    pub fn text(&self) -> String {
        self.limits
            .iter()
            .map(|l| {
                let name = match l.q {
                    Some(q) => format!("{}_p{}", l.lat.name(), pct_text(q)),
                    None => l.lat.name().to_string(),
                };
                format!("{name}<={}ms", l.ms)
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What one measured request tells the SLO (ms; None where it cannot be measured: tpot of a
/// one-token answer). `ok` false: the request failed, and misses every limit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Obs {
    pub ok: bool,
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub output_tokens: u32,
}

impl Obs {
    fn get(&self, l: Lat) -> Option<f64> {
        match l {
            Lat::Ttft => self.ttft_ms,
            Lat::Tpot => self.tpot_ms,
            Lat::E2e => self.e2e_ms,
        }
    }

    /// The value a limit sees: infinite for a failed request.
    fn value(&self, l: Lat) -> Option<f64> {
        if self.ok { self.get(l) } else { Some(f64::INFINITY) }
    }

    /// The request meets every limit.
    pub fn meets(&self, slo: &Slo) -> bool {
        slo.limits.iter().all(|l| self.value(l.lat).is_none_or(|v| v <= l.ms))
    }
}

/// A step's verdict on its requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Score {
    /// <= 1 meets the SLO (None without requests).
    pub score: Option<f64>,
    pub attained_pct: Option<f64>,
    /// The limited percentiles (finite ones), keyed by [`Limit::key`]; in the attainment form
    /// the p-th percentile where p is the attainment.
    pub percentiles: BTreeMap<String, f64>,
}

/// The SLO score of a set of requests: the worst percentile over its limit, or the missed
/// share over the allowed missed share.
pub fn score(slo: &Slo, obs: &[Obs]) -> Score {
    let mut out = Score::default();
    if obs.is_empty() {
        return out;
    }
    let met = obs.iter().filter(|o| o.meets(slo)).count();
    out.attained_pct = Some(100.0 * met as f64 / obs.len() as f64);
    let mut worst: f64 = 0.0;
    for l in &slo.limits {
        let q = l.q.or(slo.attainment).unwrap_or(0.99);
        let mut v: Vec<f64> = obs.iter().filter_map(|o| o.value(l.lat)).collect();
        v.sort_by(f64::total_cmp);
        let Some(p) = percentile_sorted(&v, q) else { continue };
        if p.is_finite() {
            let key = match l.q {
                Some(_) => l.key(),
                None => Limit { q: Some(q), ..*l }.key(),
            };
            out.percentiles.insert(key, p);
        }
        if l.q.is_some() {
            worst = worst.max(p / l.ms);
        }
    }
    out.score = Some(match slo.attainment {
        Some(a) => (1.0 - met as f64 / obs.len() as f64) / (1.0 - a),
        None => worst,
    });
    out
}

/// A step is already lost: of the `planned` measured requests, `misses` are known to miss
/// a limit, more than the SLO allows whatever the rest do. Percentile form: the q-th
/// percentile (linear interpolation) exceeds L once the values above L reach
/// planned - floor(q (planned - 1)); attainment form: misses > planned (1 - a).
pub fn decided_fail(slo: &Slo, planned: u64, misses_by_limit: &[u64]) -> bool {
    if planned == 0 {
        return false;
    }
    match slo.attainment {
        Some(a) => {
            let any = misses_by_limit.iter().copied().max().unwrap_or(0);
            any as f64 > planned as f64 * (1.0 - a) + 0.5
        }
        None => slo.limits.iter().zip(misses_by_limit).any(|(l, &m)| {
            let q = l.q.unwrap_or(0.99);
            let need = planned - ((q * (planned - 1) as f64).floor() as u64);
            m >= need
        }),
    }
}

/// Where the search is: the highest passing and the lowest failing rate so far, and whether
/// each was measured by a conclusive step (a full-length one, or one stopped saturated).
///
/// With probes (`probes`, sweep's `--probe` below 1) the bracket is found by short steps:
/// growing by `grow`² (shrinking likewise) until one fails (passes), then one probe at the
/// geometric mean while the bracket is wider than `grow`. Inside a bracket no wider than
/// `grow` (near the knee) every step is full-length: bisection (at the geometric mean, as the
/// tolerance is relative) until (failing - passing) / passing <= tolerance, then a full-length `confirm` of either end that only a probe
/// measured. A conclusive result overrides a probe's at the same or a conflicting rate, so a
/// probe that passed only because it was too short to build a queue is retried, never
/// reported. Without probes every step is full-length and the bracket grows by `grow`.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub start: f64,
    pub min: f64,
    pub max: f64,
    pub tolerance: f64,
    pub grow: f64,
    pub probes: bool,
    pub pass: Option<f64>,
    pub fail: Option<f64>,
    /// `pass` was measured by a conclusive step.
    pub pass_sure: bool,
    /// `fail` was measured by a conclusive step.
    pub fail_sure: bool,
}

/// The phase a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Finding a passing and a failing rate (short steps with probes).
    Bracket,
    /// Narrowing the bracket (full length).
    Bisect,
    /// An end of the final bracket measured only by a probe, run at full length.
    Confirm,
    /// `--repeats` of the final bracket (full length).
    Repeat,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Bracket => "bracket",
            Phase::Bisect => "bisect",
            Phase::Confirm => "confirm",
            Phase::Repeat => "repeat",
        }
    }
}

impl Search {
    pub fn new(start: f64, min: f64, max: f64, tolerance: f64, grow: f64, probes: bool) -> Search {
        Search {
            start: start.clamp(min, max),
            min,
            max,
            tolerance,
            grow,
            probes,
            pass: None,
            fail: None,
            pass_sure: false,
            fail_sure: false,
        }
    }

    /// A step of this phase is a short probe (else full-length).
    pub fn is_probe(&self, phase: Phase) -> bool {
        self.probes && phase == Phase::Bracket
    }

    /// The next rate to try, or None when the search is over.
    pub fn next(&self) -> Option<(f64, Phase)> {
        let g = if self.probes { self.grow * self.grow } else { self.grow };
        match (self.pass, self.fail) {
            (None, None) => Some((self.start, Phase::Bracket)),
            (Some(p), None) if p < self.max => Some(((p * g).min(self.max), Phase::Bracket)),
            (Some(p), None) => (!self.pass_sure).then_some((p, Phase::Confirm)),
            (None, Some(f)) => (f > self.min).then(|| ((f / g).max(self.min), Phase::Bracket)),
            (Some(p), Some(f)) => {
                if self.probes && f / p > self.grow * (1.0 + 1e-9) {
                    Some(((p * f).sqrt(), Phase::Bracket))
                } else if (f - p) / p > self.tolerance {
                    // the tolerance is relative: halve the bracket's ratio, not its width
                    Some(((p * f).sqrt(), Phase::Bisect))
                } else if !self.pass_sure {
                    Some((p, Phase::Confirm))
                } else if !self.fail_sure {
                    Some((f, Phase::Confirm))
                } else {
                    None
                }
            }
        }
    }

    /// A step at `rate` met the SLO or not; `sure`: it was conclusive (full-length, or
    /// stopped saturated).
    pub fn record(&mut self, rate: f64, meets: bool, sure: bool) {
        if meets {
            // a probe's pass does not overrule a conclusive failure at or below it
            if !sure && self.fail_sure && self.fail.is_some_and(|f| f <= rate) {
                return;
            }
            match self.pass {
                Some(p) if p > rate => {}
                Some(p) if p == rate => self.pass_sure |= sure,
                _ => (self.pass, self.pass_sure) = (Some(rate), sure),
            }
            // a pass at or above the failing rate: the fail is not the bracket's top any more
            if self.fail.is_some_and(|f| f <= rate) {
                (self.fail, self.fail_sure) = (None, false);
            }
        } else {
            // a probe's failure does not overrule a conclusive pass at or above it; nor (as
            // before probes) does a conclusive failure below a conclusive pass: noise
            if self.pass_sure && self.pass.is_some_and(|p| p >= rate) {
                return;
            }
            match self.fail {
                Some(f) if f < rate => {}
                Some(f) if f == rate => self.fail_sure |= sure,
                _ => (self.fail, self.fail_sure) = (Some(rate), sure),
            }
            // a conclusive failure at or below a probe's pass: the probe was too short
            if self.pass.is_some_and(|p| p >= rate) {
                (self.pass, self.pass_sure) = (None, false);
            }
        }
    }
}

/// What showed a step saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The engine's own waiting-requests gauge (enginemon's `waiting`) climbed.
    EngineQueue,
    /// The client's backlog (requests due minus requests done) climbed.
    InFlight,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::EngineQueue => "engine_queue",
            Signal::InFlight => "in_flight",
        }
    }
}

/// The over-saturation rule, on two queues sampled over the step after its warm-up: the
/// client's backlog (requests due, their scheduled_at passed, minus requests done) and, when
/// the engine exposes one, its waiting-requests gauge (vLLM `vllm:num_requests_waiting`,
/// SGLang `sglang:num_queue_reqs`, TGI `tgi_queue_size`, llama.cpp
/// `llamacpp:requests_deferred`, ...: enginemon's `waiting`). For each queue an ordinary
/// least-squares line queue = a + b t is fitted; the queue *climbs* when, over at least
/// `min_window_s`:
/// 1. the slope b is at least `min_growth` (0.1) of the offered rate: the server finishes
///    (admits) fewer than ~91% of the arrivals, so the queue can only grow;
/// 2. the rise b x window is at least `min_rise` (5) requests: not one burst;
/// 3. the slope's t statistic is at least `min_t` (4): a steady climb, not noise;
/// 4. the server finished fewer requests per second over the backlog's window than 95% of the
///    offered rate (when the backlog was sampled): a queue that grows while the server keeps
///    up with the rate asked is a burst of the trace (a Poisson stretch above its mean), not
///    saturation.
///
/// The step is saturated when either queue climbs; the engine's queue is named first (it
/// counts only requests the engine has not started, where the backlog also counts the
/// running batch and the network).
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    pub min_window_s: f64,
    pub min_growth: f64,
    pub min_rise: f64,
    pub min_t: f64,
    samples: Vec<(f64, f64)>,
    done: Vec<f64>,
    waiting: Vec<(f64, f64)>,
}

impl Default for Saturation {
    fn default() -> Self {
        Saturation {
            min_window_s: 1.5,
            min_growth: 0.1,
            min_rise: 5.0,
            min_t: 4.0,
            samples: Vec::new(),
            done: Vec::new(),
            waiting: Vec::new(),
        }
    }
}

/// The least-squares slope of a series and its t statistic, with three samples or more.
pub fn slope_t(series: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = series.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mt = series.iter().map(|s| s.0).sum::<f64>() / nf;
    let mb = series.iter().map(|s| s.1).sum::<f64>() / nf;
    let sxx: f64 = series.iter().map(|s| (s.0 - mt).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = series.iter().map(|s| (s.0 - mt) * (s.1 - mb)).sum();
    let b = sxy / sxx;
    let a = mb - b * mt;
    let sse: f64 = series.iter().map(|s| (s.1 - a - b * s.0).powi(2)).sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    let t = if se > 0.0 {
        b / se
    } else if b > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Some((b, t))
}

impl Saturation {
    /// One backlog sample: `t_s` into the step, the backlog then and the requests done by then.
    pub fn push(&mut self, t_s: f64, backlog: f64, done: f64) {
        self.samples.push((t_s, backlog));
        self.done.push(done);
    }

    /// One sample of the engine's waiting-requests gauge, `t_s` into the step.
    pub fn push_waiting(&mut self, t_s: f64, waiting: f64) {
        if waiting.is_finite() {
            self.waiting.push((t_s, waiting));
        }
    }

    /// The engine's waiting-requests gauge over the step, replacing any samples before.
    pub fn set_waiting(&mut self, series: &[(f64, f64)]) {
        self.waiting = series.iter().copied().filter(|s| s.1.is_finite()).collect();
    }

    /// The backlog's fitted slope (requests per second) and its t statistic.
    pub fn slope(&self) -> Option<(f64, f64)> {
        slope_t(&self.samples)
    }

    /// Requests finished per second over the backlog's samples (None without two).
    fn finished_rate(&self) -> Option<f64> {
        let (a, b) = (self.samples.first()?, self.samples.last()?);
        let w = b.0 - a.0;
        let (d0, d1) = (self.done.first()?, self.done.last()?);
        (w > 0.0).then(|| (d1 - d0) / w)
    }

    fn climbs(&self, series: &[(f64, f64)], rate: f64) -> bool {
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            return false;
        };
        let window = last.0 - first.0;
        if window < self.min_window_s {
            return false;
        }
        if self.finished_rate().is_some_and(|f| f >= 0.95 * rate) {
            return false;
        }
        match slope_t(series) {
            Some((b, t)) => b >= self.min_growth * rate && b * window >= self.min_rise && t >= self.min_t,
            None => false,
        }
    }

    /// The rule above, for a step offered `rate` req/s: the queue that climbs, if one does.
    pub fn saturated_by(&self, rate: f64) -> Option<Signal> {
        if self.climbs(&self.waiting, rate) {
            Some(Signal::EngineQueue)
        } else if self.climbs(&self.samples, rate) {
            Some(Signal::InFlight)
        } else {
            None
        }
    }

    /// Either queue climbs.
    pub fn saturated(&self, rate: f64) -> bool {
        self.saturated_by(rate).is_some()
    }
}

/// The rate where the SLO score crosses 1, on the line through (pass, s_pass) and
/// (fail, s_fail), kept within one bracket width of the bracket; a failing step whose score
/// does not show the failure (saturated or client-bound with a score <= 1) puts it at `pass`.
pub fn crossing(pass: f64, s_pass: f64, fail: f64, s_fail: f64) -> f64 {
    let w = fail - pass;
    if s_fail.is_nan() || s_fail <= 1.0 || !s_fail.is_finite() {
        return if s_pass <= 1.0 { pass } else { pass - w };
    }
    if s_fail <= s_pass {
        return if s_pass <= 1.0 { fail } else { pass - w };
    }
    (pass + w * (1.0 - s_pass) / (s_fail - s_pass)).clamp(pass - w, fail + w)
}

#[allow(clippy::too_many_arguments)]
/// 95% bootstrap interval of the crossing: the requests of the passing and the failing step
/// resampled `reps` times (seeded).
pub fn bootstrap_interval(
    slo: &Slo,
    pass: f64,
    pass_obs: &[Obs],
    fail: f64,
    fail_obs: &[Obs],
    fail_counts: bool,
    reps: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if pass_obs.is_empty() {
        return None;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let draw = |v: &[Obs], rng: &mut Xoshiro256PlusPlus| -> Vec<Obs> {
        (0..v.len()).map(|_| v[rng.random_range(0..v.len())]).collect()
    };
    let mut c: Vec<f64> = Vec::with_capacity(reps);
    for _ in 0..reps {
        let sp = score(slo, &draw(pass_obs, &mut rng)).score.unwrap_or(f64::INFINITY);
        let sf = if fail_counts && !fail_obs.is_empty() {
            score(slo, &draw(fail_obs, &mut rng)).score.unwrap_or(f64::INFINITY)
        } else {
            f64::INFINITY
        };
        c.push(crossing(pass, sp, fail, sf));
    }
    c.sort_by(f64::total_cmp);
    Some((percentile_sorted(&c, 0.025)?, percentile_sorted(&c, 0.975)?))
}

/// Mean and 95% t-interval of repeated estimates (two or more).
pub fn t_interval(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let h = crate::stats::T975[(v.len() - 2).min(29)] * sd / n.sqrt();
    Some((m, m - h, m + h))
}

/// Dollars per million output tokens at `tok_s` output tokens per second on `gpus` GPUs at
/// `usd_per_gpu_hour` each: usd x gpus / (3600 x tok_s) x 1e6.
pub fn cost_per_m_tokens(usd_per_gpu_hour: f64, gpus: u32, tok_s: f64) -> Option<f64> {
    (tok_s > 0.0 && usd_per_gpu_hour >= 0.0).then(|| usd_per_gpu_hour * gpus as f64 / (3600.0 * tok_s) * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_forms_parse_and_refuse() {
        let s = Slo::parse("ttft_p99=500ms,tpot_p99=50ms", None).unwrap();
        assert_eq!(s.limits.len(), 2);
        assert_eq!(s.limits[0].q, Some(0.99));
        assert_eq!(s.text(), "ttft_p99<=500ms,tpot_p99<=50ms");
        assert_eq!(Slo::parse("e2e_p999=2s", None).unwrap().limits[0].q, Some(0.999));
        let a = Slo::parse("ttft=500ms,tpot=50ms", Some(0.99)).unwrap();
        assert_eq!(a.attainment, Some(0.99));
        assert!(Slo::parse("ttft=500ms", None).is_err());
        assert!(Slo::parse("ttft_p99=500ms", Some(0.9)).is_err());
        assert!(Slo::parse("ttft_p99=500", None).is_err());
        assert!(Slo::parse("itl_p99=5ms", None).is_err());
        assert!(Slo::parse("ttft=5ms", Some(1.0)).is_err());
    }

    fn obs(ttft: f64) -> Obs {
        Obs {
            ok: true,
            ttft_ms: Some(ttft),
            tpot_ms: Some(10.0),
            e2e_ms: Some(ttft + 100.0),
            output_tokens: 10,
        }
    }

    #[test]
    fn scores_meet_at_one() {
        let slo = Slo::parse("ttft_p50=100ms", None).unwrap();
        let v: Vec<Obs> = [50.0, 60.0, 200.0].map(obs).to_vec();
        let s = score(&slo, &v);
        assert_eq!(s.score, Some(0.6));
        assert_eq!(s.percentiles["ttft_p50_ms"], 60.0);
        let att = Slo::parse("ttft=100ms", Some(0.5)).unwrap();
        // one of three misses: missed 1/3 over allowed 1/2
        let s = score(&att, &v);
        assert!((s.score.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        let mut bad = v.clone();
        bad[0].ok = false;
        assert!(score(&att, &bad).score.unwrap() > 1.0);
    }

    #[test]
    fn a_step_is_decided_once_the_misses_exceed_the_allowance() {
        let slo = Slo::parse("ttft_p99=100ms", None).unwrap();
        // 100 planned: p99 interpolates between the 99th and 100th values (index 98.01)
        assert!(!decided_fail(&slo, 100, &[1]));
        assert!(decided_fail(&slo, 100, &[2]));
        let att = Slo::parse("ttft=100ms", Some(0.9)).unwrap();
        assert!(!decided_fail(&att, 100, &[10]));
        assert!(decided_fail(&att, 100, &[11]));
    }

    /// Run a search against a server whose full-length steps pass up to `cap` and whose
    /// probes pass up to `probe_cap` (a probe too short to build a queue passes above the
    /// knee); returns the steps (rate, phase, probe).
    fn drive(mut s: Search, cap: f64, probe_cap: f64) -> (Search, Vec<(f64, Phase, bool)>) {
        let mut steps = Vec::new();
        while let Some((r, ph)) = s.next() {
            let probe = s.is_probe(ph);
            steps.push((r, ph, probe));
            s.record(r, r <= if probe { probe_cap } else { cap }, !probe);
            assert!(steps.len() < 40, "{steps:?}");
        }
        (s, steps)
    }

    #[test]
    fn the_search_brackets_then_bisects_to_the_tolerance() {
        let cap = 13.0;
        let (s, steps) = drive(Search::new(1.0, 0.1, 1000.0, 0.05, 2.0, false), cap, cap);
        let rates: Vec<f64> = steps.iter().map(|x| x.0).collect();
        let (p, f) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(p <= cap && cap < f && (f - p) / p <= 0.05, "{p} {f}");
        assert_eq!(&rates[..5], &[1.0, 2.0, 4.0, 8.0, 16.0]);
        assert!(steps.iter().all(|x| !x.2), "without probes every step is full-length");
        // and down from a start above capacity
        let (s, _) = drive(Search::new(100.0, 0.1, 1000.0, 0.05, 2.0, false), cap, cap);
        assert!(s.pass.unwrap() <= cap && cap < s.fail.unwrap());
    }

    #[test]
    fn probes_bracket_fast_and_only_full_steps_decide() {
        let cap = 13.0;
        let (s, steps) = drive(Search::new(1.0, 0.1, 1000.0, 0.05, 2.0, true), cap, cap);
        let (p, f) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(p <= cap && cap < f && (f - p) / p <= 0.05, "{steps:?}");
        assert!(s.pass_sure && s.fail_sure);
        // probes grow by 4, then one at the geometric mean brings the bracket to 2x
        let probes: Vec<f64> = steps.iter().filter(|x| x.2).map(|x| x.0).collect();
        assert_eq!(probes, vec![1.0, 4.0, 16.0, 8.0]);
        // inside [8, 16] every step is full-length; none below the knee's bracket
        assert!(
            steps.iter().filter(|x| !x.2).all(|x| x.0 > 8.0 && x.0 < 16.0),
            "{steps:?}"
        );

        // probes that pass far above the knee (too short to build a queue): the full-length
        // steps fail, the probe's pass is retried at full length, and the search still ends
        // with a bracket around the real capacity, both ends measured at full length
        let (s, steps) = drive(Search::new(1.0, 0.1, 1000.0, 0.05, 2.0, true), cap, 40.0);
        let (p, f) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(p <= cap && cap < f && (f - p) / p <= 0.05, "{steps:?}");
        assert!(s.pass_sure && s.fail_sure, "{steps:?}");
        assert!(steps.iter().any(|x| x.1 == Phase::Confirm), "{steps:?}");

        // probes that fail below the knee (noisy short steps): the top is confirmed at full
        // length, passes, and the search goes on above it
        let (s, steps) = drive(Search::new(1.0, 0.1, 1000.0, 0.05, 2.0, true), cap, 3.0);
        let (p, f) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(p <= cap && cap < f && (f - p) / p <= 0.05, "{steps:?}");
        assert!(s.pass_sure && s.fail_sure);

        // --max-rate passes: confirmed at full length, then the search ends
        let (s, steps) = drive(Search::new(1.0, 0.1, 50.0, 0.05, 2.0, true), 1e9, 1e9);
        assert_eq!(s.pass, Some(50.0));
        assert!(s.pass_sure && s.fail.is_none());
        assert_eq!(steps.last().unwrap().1, Phase::Confirm);
    }

    #[test]
    fn saturation_needs_a_steady_climb() {
        let mut grow = Saturation::default();
        let mut flat = Saturation::default();
        let mut burst = Saturation::default();
        for i in 0..30 {
            let t = i as f64 * 0.1;
            // 40 req/s offered, 10 finished a second: the backlog climbs 30 a second
            grow.push(t, 5.0 + 30.0 * t, 10.0 * t);
            flat.push(t, 5.0 + if i % 2 == 0 { 3.0 } else { -3.0 }, 40.0 * t);
            // the same climb while the server finishes the 40 a second asked: a burst
            burst.push(t, 5.0 + 30.0 * t, 40.0 * t);
        }
        assert_eq!(grow.saturated_by(40.0), Some(Signal::InFlight));
        assert!(!flat.saturated(40.0));
        assert!(!burst.saturated(40.0));
        // a climb slower than 10% of the offered rate is not saturation
        assert!(!grow.saturated(400.0));
        let mut short = Saturation::default();
        for i in 0..10 {
            short.push(i as f64 * 0.1, 30.0 * i as f64, 0.0);
        }
        assert!(!short.saturated(40.0));
    }

    /// The engine's waiting gauge: a steady rise is saturation (named engine_queue, before
    /// the backlog), a flat or noisy one is not.
    #[test]
    fn the_engine_queue_saturates_when_it_rises_steadily() {
        // the backlog is flat (the client sees nothing yet), the server finishes 30 of 40
        let with = |waiting: &dyn Fn(usize, f64) -> f64| {
            let mut s = Saturation::default();
            for i in 0..25 {
                let t = 2.0 + i as f64 * 0.1;
                s.push(t, 4.0, 30.0 * t);
                s.push_waiting(t, waiting(i, t));
            }
            s
        };
        let rising = with(&|_, t| 20.0 * (t - 2.0));
        assert_eq!(rising.saturated_by(40.0), Some(Signal::EngineQueue));
        let flat = with(&|_, _| 3.0);
        assert_eq!(flat.saturated_by(40.0), None);
        // noise of +-6 around a flat queue: no steady climb
        let noisy = with(&|i, _| 6.0 + [6.0, -6.0, 4.0, -5.0, 0.0][i % 5]);
        assert_eq!(noisy.saturated_by(40.0), None);
        // noise around a rising queue: still a steady climb (t well above 4)
        let rising_noisy = with(&|i, t| 20.0 * (t - 2.0) + [2.0, -2.0, 1.0, -1.5, 0.0][i % 5]);
        assert_eq!(rising_noisy.saturated_by(40.0), Some(Signal::EngineQueue));
        // rising, but the server finishes the 40 a second asked: a burst, not saturation
        let mut keeps_up = Saturation::default();
        for i in 0..25 {
            let t = 2.0 + i as f64 * 0.1;
            keeps_up.push(t, 4.0, 40.0 * t);
            keeps_up.push_waiting(t, 20.0 * (t - 2.0));
        }
        assert_eq!(keeps_up.saturated_by(40.0), None);
        // too short a window of the gauge
        let mut short = Saturation::default();
        for i in 0..10 {
            short.push_waiting(i as f64 * 0.1, 30.0 * i as f64);
        }
        assert_eq!(short.saturated_by(40.0), None);
        // both climb: the engine's queue is named
        let mut both = Saturation::default();
        for i in 0..25 {
            let t = i as f64 * 0.1;
            both.push(t, 30.0 * t, 10.0 * t);
            both.push_waiting(t, 26.0 * t);
        }
        assert_eq!(both.saturated_by(40.0), Some(Signal::EngineQueue));
    }

    #[test]
    fn crossing_interpolates_within_the_bracket() {
        assert_eq!(crossing(10.0, 0.5, 12.0, 1.5), 11.0);
        assert_eq!(crossing(10.0, 0.5, 12.0, f64::INFINITY), 10.0);
        assert_eq!(crossing(10.0, 0.5, 12.0, 0.9), 10.0);
        let (m, lo, hi) = t_interval(&[10.0, 11.0, 12.0]).unwrap();
        assert!(lo < m && m < hi && (m - 11.0).abs() < 1e-9);
        assert!((cost_per_m_tokens(2.0, 1, 1000.0).unwrap() - 2.0 / 3.6).abs() < 1e-9);
    }
}
