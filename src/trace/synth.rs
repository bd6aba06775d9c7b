//! Synthetic traces: arrival processes and length distributions, all seeded.
//!
//! Arrivals start at t = 0 and follow the chosen process's gaps (as vLLM's serving benchmark
//! does): `poisson` has exponential gaps of mean 1/rate; `gamma` has gamma gaps with shape
//! `burstiness` and scale 1/(rate * burstiness) (same mean; burstiness 1 is Poisson, below 1
//! is burstier, above 1 smoother; the coefficient of variation of gaps is 1/sqrt(burstiness));
//! `constant` is evenly spaced; `batch` sends everything at t = 0 (closed-loop runs).
//!
//! Each random choice has its own stream derived from `--seed` (arrivals, input lengths,
//! output lengths, prompts, shared-prefix groups), so changing one option never reshuffles the
//! others.

use std::str::FromStr;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Exp, Gamma, Normal};

use super::TraceRow;
use super::prompts::PromptSet;
use super::ramp::Ramp;
use super::shared::{self, SharedPrefix};

/// An arrival process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    Poisson { rate: f64 },
    Gamma { rate: f64, burstiness: f64 },
    Constant { rate: f64 },
    Batch,
}

impl Arrival {
    pub fn name(&self) -> &'static str {
        match self {
            Arrival::Poisson { .. } => "poisson",
            Arrival::Gamma { .. } => "gamma",
            Arrival::Constant { .. } => "constant",
            Arrival::Batch => "batch",
        }
    }

    pub fn rate(&self) -> Option<f64> {
        match *self {
            Arrival::Poisson { rate } | Arrival::Gamma { rate, .. } | Arrival::Constant { rate } => Some(rate),
            Arrival::Batch => None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = self.rate()
            && !(r.is_finite() && r > 0.0)
        {
            return Err(format!(
                "--rate must be a positive number of requests per second, got {r}"
            ));
        }
        if let Arrival::Gamma { burstiness, .. } = self
            && !(burstiness.is_finite() && *burstiness > 0.0)
        {
            return Err(format!("--burstiness must be positive (1 = Poisson), got {burstiness}"));
        }
        Ok(())
    }
}

/// Generates arrival offsets (seconds) for a process.
pub struct Arrivals {
    kind: Arrival,
    rng: Xoshiro256PlusPlus,
    t: f64,
    first: bool,
    n: u64,
}

impl Arrivals {
    pub fn new(kind: Arrival, seed: u64) -> Arrivals {
        Arrivals {
            kind,
            rng: Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, 1)),
            t: 0.0,
            first: true,
            n: 0,
        }
    }

    pub fn next_arrival(&mut self) -> f64 {
        if self.first {
            self.first = false;
            self.n = 1;
            return 0.0;
        }
        let gap = match self.kind {
            Arrival::Poisson { rate } => Exp::new(rate).expect("validated rate").sample(&mut self.rng),
            Arrival::Gamma { rate, burstiness } => Gamma::new(burstiness, 1.0 / (rate * burstiness))
                .expect("validated gamma")
                .sample(&mut self.rng),
            Arrival::Constant { rate } => {
                // multiply instead of accumulating, so 10^6 arrivals do not drift
                self.n += 1;
                return (self.n - 1) as f64 / rate;
            }
            Arrival::Batch => 0.0,
        };
        self.t += gap;
        self.t
    }
}

/// A length distribution for input or output tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LenDist {
    /// always L
    Fixed(u32),
    /// uniform integers in [L(1-r), L(1+r)] (vLLM's range-ratio meaning)
    Uniform { len: u32, ratio: f64 },
    /// normal with mean and standard deviation, rounded, at least 1
    Normal { mean: f64, std: f64 },
}

impl FromStr for LenDist {
    type Err = String;
    /// `512`, `fixed:512`, `uniform:512:0.25`, `normal:512:64`
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid length {s:?}: use N, fixed:N, uniform:N:RATIO (0<=RATIO<1) or normal:MEAN:STD");
        let parts: Vec<&str> = s.split(':').collect();
        let num = |x: &str| x.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
        match parts.as_slice() {
            [n] | ["fixed", n] => {
                let v = num(n).ok_or_else(bad)?;
                if v < 1.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
                    return Err(bad());
                }
                Ok(LenDist::Fixed(v as u32))
            }
            ["uniform", n, r] => {
                let v = num(n).ok_or_else(bad)?;
                let r = num(r).ok_or_else(bad)?;
                if v < 1.0 || r >= 1.0 || v.fract() != 0.0 {
                    return Err(bad());
                }
                Ok(LenDist::Uniform {
                    len: v as u32,
                    ratio: r,
                })
            }
            ["normal", m, sd] => {
                let m = num(m).ok_or_else(bad)?;
                let sd = num(sd).ok_or_else(bad)?;
                if m < 1.0 {
                    return Err(bad());
                }
                Ok(LenDist::Normal { mean: m, std: sd })
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for LenDist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LenDist::Fixed(n) => write!(f, "{n}"),
            LenDist::Uniform { len, ratio } => write!(f, "uniform:{len}:{ratio}"),
            LenDist::Normal { mean, std } => write!(f, "normal:{mean}:{std}"),
        }
    }
}

impl LenDist {
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> u32 {
        use rand::RngExt;
        match *self {
            LenDist::Fixed(n) => n,
            LenDist::Uniform { len, ratio } => {
                let lo = ((len as f64) * (1.0 - ratio)).floor().max(1.0) as u32;
                let hi = ((len as f64) * (1.0 + ratio)).floor().max(lo as f64) as u32;
                rng.random_range(lo..=hi)
            }
            LenDist::Normal { mean, std } => {
                let v = if std > 0.0 {
                    Normal::new(mean, std).expect("valid normal").sample(rng)
                } else {
                    mean
                };
                v.round().clamp(1.0, u32::MAX as f64) as u32
            }
        }
    }
}

/// Derive an independent stream seed for one kind of random choice.
pub fn stream_seed(seed: u64, stream: u64) -> u64 {
    let mut s = super::tokens::SplitMix(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
    s.next_u64()
}

/// Everything a synthetic trace is made from.
pub struct SynthSpec {
    pub arrival: Arrival,
    pub count: Option<u64>,
    pub duration_s: Option<f64>,
    pub input: LenDist,
    pub output: LenDist,
    pub seed: u64,
    pub prompts: Option<PromptSet>,
    pub first_id: u64,
    pub category: Option<String>,
    /// Arrivals follow this rate ramp: the process runs at a mean rate of 1 and its times go
    /// through the ramp's change of time (see [`super::ramp`]).
    pub ramp: Option<Ramp>,
    /// The shared-prefix workload: `input` is then each request's own suffix (see
    /// [`super::shared`]).
    pub shared_prefix: Option<SharedPrefix>,
}

/// Iterator over the rows of a synthetic trace.
pub struct SynthIter {
    spec: SynthSpec,
    arrivals: Arrivals,
    in_rng: Xoshiro256PlusPlus,
    out_rng: Xoshiro256PlusPlus,
    prompt_rng: Xoshiro256PlusPlus,
    groups: Option<shared::Groups>,
    i: u64,
}

impl SynthSpec {
    pub fn validate(&self) -> Result<(), String> {
        self.arrival.validate()?;
        if self.count.is_none() && self.duration_s.is_none() {
            return Err("say when the trace ends: --count N or --duration D".into());
        }
        if self.arrival == Arrival::Batch && self.count.is_none() {
            return Err("batch puts every request at t=0, so it needs --count N".into());
        }
        if self.ramp.is_some() && self.arrival.rate() != Some(1.0) {
            return Err("with --ramp the ramp gives the rate: leave --rate out".into());
        }
        if let Some(sp) = &self.shared_prefix {
            if self.prompts.is_some() {
                return Err("--prefix-groups builds its own prompts: leave --prompts out".into());
            }
            sp.validate(self.count)?;
        }
        Ok(())
    }

    pub fn rows(self) -> SynthIter {
        let seed = self.seed;
        SynthIter {
            arrivals: Arrivals::new(self.arrival, seed),
            in_rng: Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, 2)),
            out_rng: Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, 3)),
            prompt_rng: Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, 4)),
            groups: self
                .shared_prefix
                .as_ref()
                .map(|sp| shared::Groups::new(sp, seed, self.count)),
            spec: self,
            i: 0,
        }
    }
}

impl Iterator for SynthIter {
    type Item = TraceRow;
    fn next(&mut self) -> Option<TraceRow> {
        if let Some(c) = self.spec.count
            && self.i >= c
        {
            return None;
        }
        let u = self.arrivals.next_arrival();
        let t = self.spec.ramp.as_ref().map_or(u, |r| r.time_at(u));
        if let Some(d) = self.spec.duration_s
            && t >= d
        {
            return None;
        }
        let id = self.spec.first_id + self.i;
        self.i += 1;
        let output = self.spec.output.sample(&mut self.out_rng);
        let mut row = TraceRow::new(id, t, 0, output);
        row.source = Some(self.spec.arrival.name().to_string());
        match &self.spec.prompts {
            Some(set) => {
                let p = set.pick(&mut self.prompt_rng);
                row.input_tokens = p.tokens;
                row.prompt = Some(p.prompt.clone());
                row.category = Some(p.category.clone());
            }
            None => {
                row.input_tokens = self.spec.input.sample(&mut self.in_rng);
                row.category = self.spec.category.clone();
                if let (Some(sp), Some(g)) = (&self.spec.shared_prefix, &mut self.groups) {
                    let group = g.next_group();
                    let suffix = row.input_tokens;
                    row.input_tokens = suffix.saturating_add(sp.prefix_tokens);
                    row.prefix_blocks = Some(sp.row_blocks(self.spec.seed, group, id, suffix));
                }
            }
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(kind: Arrival, n: usize) -> Vec<f64> {
        let mut a = Arrivals::new(kind, 7);
        let t: Vec<f64> = (0..n).map(|_| a.next_arrival()).collect();
        t.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn mean_cv(v: &[f64]) -> (f64, f64) {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
        (m, var.sqrt() / m)
    }

    #[test]
    fn processes_have_their_rate_and_shape() {
        let (m, cv) = mean_cv(&gaps(Arrival::Poisson { rate: 10.0 }, 50_000));
        assert!((m - 0.1).abs() < 0.003, "{m}");
        assert!((cv - 1.0).abs() < 0.03, "{cv}");
        let (m, cv) = mean_cv(&gaps(
            Arrival::Gamma {
                rate: 10.0,
                burstiness: 0.25,
            },
            50_000,
        ));
        assert!((m - 0.1).abs() < 0.005, "{m}");
        assert!((cv - 2.0).abs() < 0.1, "{cv}");
        let (m, cv) = mean_cv(&gaps(Arrival::Constant { rate: 4.0 }, 1000));
        assert!((m - 0.25).abs() < 1e-12);
        assert!(cv < 1e-9);
    }

    #[test]
    fn a_ramped_poisson_process_follows_the_ramp() {
        let spec = |ramp: &str| SynthSpec {
            arrival: Arrival::Poisson { rate: 1.0 },
            count: None,
            duration_s: Some(120.0),
            input: LenDist::Fixed(8),
            output: LenDist::Fixed(8),
            seed: 3,
            prompts: None,
            first_id: 0,
            category: None,
            ramp: Some(ramp.parse().unwrap()),
            shared_prefix: None,
        };
        let t: Vec<f64> = spec("0:40:60s").rows().map(|r| r.arrival_s).collect();
        let count = |a: f64, b: f64| t.iter().filter(|x| **x >= a && **x < b).count() as f64;
        // expected: 0-30 s: 300, 30-60 s: 900, 60-120 s: 2400 (±4 standard deviations)
        for (a, b, want) in [(0.0, 30.0, 300.0), (30.0, 60.0, 900.0), (60.0, 120.0, 2400.0)] {
            let n = count(a, b);
            assert!(
                (n - want).abs() < 4.0 * want.sqrt(),
                "{a}-{b}: {n} arrivals, expected {want}"
            );
        }
        assert!(t.windows(2).all(|w| w[1] >= w[0]));
        // the same seed gives the same trace
        let again: Vec<f64> = spec("0:40:60s").rows().map(|r| r.arrival_s).collect();
        assert_eq!(t, again);
    }

    #[test]
    fn lengths() {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(1);
        let u: LenDist = "uniform:100:0.5".parse().unwrap();
        let v: Vec<u32> = (0..10_000).map(|_| u.sample(&mut r)).collect();
        assert_eq!(*v.iter().min().unwrap(), 50);
        assert_eq!(*v.iter().max().unwrap(), 150);
        assert_eq!("128".parse::<LenDist>().unwrap(), LenDist::Fixed(128));
        assert!("uniform:100:1.5".parse::<LenDist>().is_err());
        assert!("0".parse::<LenDist>().is_err());
        assert!("normal:x:1".parse::<LenDist>().is_err());
        let n: LenDist = "normal:200:20".parse().unwrap();
        let v: Vec<f64> = (0..20_000).map(|_| n.sample(&mut r) as f64).collect();
        let (m, _) = mean_cv(&v);
        assert!((m - 200.0).abs() < 1.0);
    }
}

/// Properties of synthetic traces: seeded determinism, the asked-for rate, and rows within
/// their bounds, for any process, rate, seed and length distribution.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn arrival() -> impl Strategy<Value = Arrival> {
        prop_oneof![
            (0.01f64..2000.0).prop_map(|rate| Arrival::Poisson { rate }),
            (0.01f64..2000.0, 0.05f64..20.0).prop_map(|(rate, burstiness)| Arrival::Gamma { rate, burstiness }),
            (0.01f64..2000.0).prop_map(|rate| Arrival::Constant { rate }),
            Just(Arrival::Batch),
        ]
    }

    fn len_dist() -> impl Strategy<Value = LenDist> {
        prop_oneof![
            (1u32..100_000).prop_map(LenDist::Fixed),
            (1u32..100_000, 0.0f64..0.99).prop_map(|(len, ratio)| LenDist::Uniform { len, ratio }),
            (1.0f64..10_000.0, 0.0f64..5_000.0).prop_map(|(mean, std)| LenDist::Normal { mean, std }),
        ]
    }

    fn spec(
        arrival: Arrival,
        count: Option<u64>,
        duration_s: Option<f64>,
        input: LenDist,
        output: LenDist,
        seed: u64,
    ) -> SynthSpec {
        SynthSpec {
            arrival,
            count,
            duration_s,
            input,
            output,
            seed,
            prompts: None,
            first_id: 0,
            category: None,
            ramp: None,
            shared_prefix: None,
        }
    }

    fn within(d: LenDist, v: u32) -> bool {
        match d {
            LenDist::Fixed(n) => v == n,
            LenDist::Uniform { len, ratio } => {
                let lo = ((len as f64) * (1.0 - ratio)).floor().max(1.0) as u32;
                let hi = ((len as f64) * (1.0 + ratio)).floor().max(lo as f64) as u32;
                (lo..=hi).contains(&v)
            }
            LenDist::Normal { .. } => v >= 1,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn same_spec_and_seed_same_rows(
            a in arrival(), i in len_dist(), o in len_dist(), seed in any::<u64>(), n in 1u64..300,
        ) {
            let x: Vec<TraceRow> = spec(a, Some(n), None, i, o, seed).rows().collect();
            let y: Vec<TraceRow> = spec(a, Some(n), None, i, o, seed).rows().collect();
            prop_assert_eq!(&x, &y);
            prop_assert_eq!(x.len() as u64, n);
            // another seed gives another trace (unless nothing is random)
            let z: Vec<TraceRow> = spec(a, Some(n), None, i, o, seed ^ 1).rows().collect();
            if matches!(a, Arrival::Poisson { .. } | Arrival::Gamma { .. }) && n > 2 {
                prop_assert_ne!(x, z);
            }
        }

        #[test]
        fn rows_stay_within_their_bounds(
            a in arrival(), i in len_dist(), o in len_dist(), seed in any::<u64>(),
            n in 1u64..400, dur in prop::option::of(0.01f64..100.0),
        ) {
            let count = if dur.is_some() && !matches!(a, Arrival::Batch) { None } else { Some(n) };
            let rows: Vec<TraceRow> = spec(a, count, dur, i, o, seed).rows().take(100_000).collect();
            let mut prev = 0.0;
            for (k, r) in rows.iter().enumerate() {
                prop_assert_eq!(r.request_id, k as u64);
                prop_assert!(r.arrival_s.is_finite() && r.arrival_s >= prev, "{} after {}", r.arrival_s, prev);
                if let Some(d) = dur {
                    prop_assert!(r.arrival_s < d, "{} past --duration {}", r.arrival_s, d);
                }
                prop_assert!(within(i, r.input_tokens), "input {} outside {:?}", r.input_tokens, i);
                prop_assert!(within(o, r.output_tokens), "output {} outside {:?}", r.output_tokens, o);
                prev = r.arrival_s;
            }
            if let Some(first) = rows.first() {
                prop_assert_eq!(first.arrival_s, 0.0);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// The mean gap of a large trace is 1/rate (within 6 standard errors; gamma's gaps
        /// have a coefficient of variation of 1/sqrt(burstiness)).
        #[test]
        fn mean_gap_is_one_over_the_rate(a in arrival(), seed in any::<u64>()) {
            let Some(rate) = a.rate() else { return Ok(()) };
            let n = 20_000usize;
            let mut arr = Arrivals::new(a, seed);
            let t: Vec<f64> = (0..n).map(|_| arr.next_arrival()).collect();
            let mean = t[n - 1] / (n - 1) as f64;
            let cv = match a {
                Arrival::Gamma { burstiness, .. } => 1.0 / burstiness.sqrt(),
                Arrival::Poisson { .. } => 1.0,
                _ => 0.0,
            };
            let tol = 6.0 * cv / ((n - 1) as f64).sqrt() + 1e-9;
            prop_assert!(((mean * rate) - 1.0).abs() <= tol, "{:?}: mean gap {} vs {}", a, mean, 1.0 / rate);
        }
    }
}
