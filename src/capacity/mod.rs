//! Capacity at an SLO: the search `sweep` runs, without HTTP (the command runs the steps).
//!
//! - [`Slo`]: limits on percentiles (`ttft_p99=500ms,tpot_p99=50ms`) or on every request with
//!   an attainment (`ttft=500ms,tpot=50ms` and `--attainment 0.99`), and the step's
//!   [`score`] (<= 1 meets the SLO).
//! - [`Search`]: bracket the highest passing open-loop rate (growing or shrinking by
//!   `grow`), then bisect until (failing - passing) / passing <= tolerance.
//! - [`Saturation`]: the over-saturation rule, on the backlog (requests due minus requests
//!   done) sampled over the step.
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

/// Where the search is: the highest passing and the lowest failing rate so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub start: f64,
    pub min: f64,
    pub max: f64,
    pub tolerance: f64,
    pub grow: f64,
    pub pass: Option<f64>,
    pub fail: Option<f64>,
}

/// The phase a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Bracket,
    Bisect,
    Repeat,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Bracket => "bracket",
            Phase::Bisect => "bisect",
            Phase::Repeat => "repeat",
        }
    }
}

impl Search {
    pub fn new(start: f64, min: f64, max: f64, tolerance: f64, grow: f64) -> Search {
        Search {
            start: start.clamp(min, max),
            min,
            max,
            tolerance,
            grow,
            pass: None,
            fail: None,
        }
    }

    /// The next rate to try, or None when the search is over.
    pub fn next(&self) -> Option<(f64, Phase)> {
        match (self.pass, self.fail) {
            (None, None) => Some((self.start, Phase::Bracket)),
            (Some(p), None) => (p < self.max).then(|| ((p * self.grow).min(self.max), Phase::Bracket)),
            (None, Some(f)) => (f > self.min).then(|| ((f / self.grow).max(self.min), Phase::Bracket)),
            (Some(p), Some(f)) => ((f - p) / p > self.tolerance).then(|| ((p + f) / 2.0, Phase::Bisect)),
        }
    }

    /// A step at `rate` met the SLO or not.
    pub fn record(&mut self, rate: f64, meets: bool) {
        if meets {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
        // a noisy pass above a fail: the fail is not the bracket's top any more
        if let (Some(p), Some(f)) = (self.pass, self.fail)
            && f <= p
        {
            self.fail = None;
        }
    }
}

/// The over-saturation rule. Every sample is the backlog at one instant of the step: requests
/// due by then (scheduled_at passed) minus requests done. Over the samples since the warm-up
/// ended, an ordinary least-squares line backlog = a + b t is fitted; the step is saturated
/// when, over at least `min_window_s`:
/// 1. the slope b is at least `min_growth` (0.1) of the offered rate: the server finishes
///    fewer than ~91% of the arrivals, so the queue can only grow;
/// 2. the rise b x window is at least `min_rise` (5) requests: not one burst;
/// 3. the slope's t statistic is at least `min_t` (4): a steady climb, not noise;
/// 4. the server finished fewer requests per second over the window than 95% of the offered
///    rate: a queue that grows while the server keeps up with the rate asked is a burst of
///    the trace (a Poisson stretch above its mean), not saturation.
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    pub min_window_s: f64,
    pub min_growth: f64,
    pub min_rise: f64,
    pub min_t: f64,
    samples: Vec<(f64, f64)>,
    done: Vec<f64>,
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
        }
    }
}

impl Saturation {
    /// One sample: `t_s` into the step, the backlog then and the requests done by then.
    pub fn push(&mut self, t_s: f64, backlog: f64, done: f64) {
        self.samples.push((t_s, backlog));
        self.done.push(done);
    }

    /// The fitted slope (requests per second) and its t statistic, with two samples or more.
    pub fn slope(&self) -> Option<(f64, f64)> {
        let n = self.samples.len();
        if n < 3 {
            return None;
        }
        let nf = n as f64;
        let mt = self.samples.iter().map(|s| s.0).sum::<f64>() / nf;
        let mb = self.samples.iter().map(|s| s.1).sum::<f64>() / nf;
        let sxx: f64 = self.samples.iter().map(|s| (s.0 - mt).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let sxy: f64 = self.samples.iter().map(|s| (s.0 - mt) * (s.1 - mb)).sum();
        let b = sxy / sxx;
        let a = mb - b * mt;
        let sse: f64 = self.samples.iter().map(|s| (s.1 - a - b * s.0).powi(2)).sum();
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

    /// The rule above, for a step offered `rate` req/s.
    pub fn saturated(&self, rate: f64) -> bool {
        let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
            return false;
        };
        let window = last.0 - first.0;
        if window < self.min_window_s {
            return false;
        }
        let finished = match (self.done.first(), self.done.last()) {
            (Some(a), Some(b)) => (b - a) / window,
            _ => 0.0,
        };
        match self.slope() {
            Some((b, t)) => {
                b >= self.min_growth * rate && b * window >= self.min_rise && t >= self.min_t && finished < 0.95 * rate
            }
            None => false,
        }
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

    #[test]
    fn the_search_brackets_then_bisects_to_the_tolerance() {
        let cap = 13.0;
        let mut s = Search::new(1.0, 0.1, 1000.0, 0.05, 2.0);
        let mut rates = Vec::new();
        while let Some((r, _)) = s.next() {
            rates.push(r);
            s.record(r, r <= cap);
            assert!(rates.len() < 30);
        }
        let (p, f) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(p <= cap && cap < f && (f - p) / p <= 0.05, "{p} {f}");
        assert_eq!(&rates[..5], &[1.0, 2.0, 4.0, 8.0, 16.0]);
        // and down from a start above capacity
        let mut s = Search::new(100.0, 0.1, 1000.0, 0.05, 2.0);
        while let Some((r, _)) = s.next() {
            s.record(r, r <= cap);
        }
        assert!(s.pass.unwrap() <= cap && cap < s.fail.unwrap());
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
        assert!(grow.saturated(40.0));
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
