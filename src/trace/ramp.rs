//! Rate ramps: a request rate that changes over the trace, so a run starts gently and its
//! warm-up is part of the trace rather than a separate phase.
//!
//! Grammar (`--ramp`):
//! - `FROM:TO:OVER`: the rate goes linearly from FROM to TO requests per second over OVER (a
//!   duration, e.g. `60s`), then stays at TO: `0:20:60s`, `2:16:5m`, `20:4:30s` (down).
//! - `steps:R1@D1,R2@D2,...,Rn`: R1 req/s for D1, then R2 for D2, ...; the last rate holds
//!   (its `@D` may be left out): `steps:2@30s,4@30s,8`.
//!
//! A ramp is a rate function λ(t). Arrivals follow it by a change of time (the standard
//! construction of a non-homogeneous Poisson process): arrivals are drawn at a mean rate of 1
//! in "operational time" u, and each goes to the real time t where Λ(t) = ∫₀ᵗ λ = u. So a
//! Poisson process becomes a Poisson process of rate λ(t), a gamma process keeps its
//! burstiness in operational time, and an imported trace (first rescaled to a mean rate of 1)
//! keeps its burst shape while its mean rate follows the ramp.

use std::str::FromStr;

/// One piece of a ramp: the rate goes linearly from `from` to `to` (req/s) over `secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    secs: f64,
    from: f64,
    to: f64,
}

impl Seg {
    /// Requests expected over the whole segment.
    fn mass(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.secs
    }

    /// The time τ into the segment where the expected requests reach `u` (0 ≤ u ≤ mass).
    fn inverse(&self, u: f64) -> f64 {
        let slope = (self.to - self.from) / self.secs;
        if slope.abs() < 1e-12 {
            return u / self.from;
        }
        // slope/2 τ² + from τ - u = 0, the root in [0, secs]
        let disc = (self.from * self.from + 2.0 * slope * u).max(0.0);
        ((disc.sqrt() - self.from) / slope).clamp(0.0, self.secs)
    }
}

/// A rate that changes over the trace (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    segs: Vec<Seg>,
    /// The rate after the last segment.
    hold: f64,
    spec: String,
}

impl Ramp {
    /// The rate at time t (req/s).
    pub fn rate_at(&self, t: f64) -> f64 {
        let mut start = 0.0;
        for s in &self.segs {
            if t < start + s.secs {
                return s.from + (s.to - s.from) * (t - start) / s.secs;
            }
            start += s.secs;
        }
        self.hold
    }

    /// Expected requests from 0 to t: Λ(t).
    pub fn expected(&self, t: f64) -> f64 {
        let mut start = 0.0;
        let mut u = 0.0;
        for s in &self.segs {
            if t < start + s.secs {
                let tau = t - start;
                return u + s.from * tau + (s.to - s.from) / s.secs * tau * tau / 2.0;
            }
            u += s.mass();
            start += s.secs;
        }
        u + self.hold * (t - start)
    }

    /// The time at which the expected requests reach u: Λ⁻¹(u). Arrivals drawn at a mean
    /// rate of 1 go through this to follow the ramp.
    pub fn time_at(&self, u: f64) -> f64 {
        let mut start = 0.0;
        let mut left = u.max(0.0);
        for s in &self.segs {
            let m = s.mass();
            if left < m {
                return start + s.inverse(left);
            }
            left -= m;
            start += s.secs;
        }
        start + left / self.hold
    }

    /// The ramp as the user wrote it (for metadata).
    pub fn spec(&self) -> &str {
        &self.spec
    }
}

const GRAMMAR: &str = "use FROM:TO:OVER (e.g. 0:20:60s: from 0 to 20 req/s over 60 s, then 20) or \
                       steps:R1@D1,R2@D2,...,Rn (e.g. steps:2@30s,4@30s,8)";

impl FromStr for Ramp {
    type Err = String;
    fn from_str(s: &str) -> Result<Ramp, String> {
        let bad = |why: &str| format!("invalid --ramp {s:?}: {why}; {GRAMMAR}");
        let rate = |x: &str| -> Result<f64, String> {
            x.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(&format!("{x:?} is not a rate in requests per second (a number >= 0)")))
        };
        let dur = |x: &str| -> Result<f64, String> {
            let d = crate::units::duration_arg(x.trim()).map_err(|e| bad(&e))?.as_secs_f64();
            if d > 0.0 {
                Ok(d)
            } else {
                Err(bad("a duration must be above zero"))
            }
        };
        let (segs, hold) = if let Some(list) = s.strip_prefix("steps:") {
            let parts: Vec<&str> = list.split(',').collect();
            let mut segs = Vec::new();
            let mut hold = 0.0;
            for (i, p) in parts.iter().enumerate() {
                match p.split_once('@') {
                    Some((r, d)) => {
                        let r = rate(r)?;
                        segs.push(Seg {
                            secs: dur(d)?,
                            from: r,
                            to: r,
                        });
                        hold = r;
                    }
                    None if i + 1 == parts.len() => hold = rate(p)?,
                    None => {
                        return Err(bad(&format!(
                            "step {p:?} needs its duration (R@D); only the last may omit it"
                        )));
                    }
                }
            }
            (segs, hold)
        } else {
            match s.split(':').collect::<Vec<_>>().as_slice() {
                [a, b, d] => {
                    let (from, to) = (rate(a)?, rate(b)?);
                    (
                        vec![Seg {
                            secs: dur(d)?,
                            from,
                            to,
                        }],
                        to,
                    )
                }
                _ => return Err(bad("expected three parts or a steps: list")),
            }
        };
        if hold <= 0.0 {
            return Err(bad(
                "the rate the ramp ends on must be above zero, or the trace would never end",
            ));
        }
        Ok(Ramp {
            segs,
            hold,
            spec: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + b.abs())
    }

    #[test]
    fn linear_ramp_integrates_and_inverts() {
        let r: Ramp = "0:20:60s".parse().unwrap();
        assert!(close(r.rate_at(30.0), 10.0));
        assert!(close(r.rate_at(90.0), 20.0));
        // Λ(60) = 600 requests over the ramp, then 20 per second
        assert!(close(r.expected(60.0), 600.0));
        assert!(close(r.expected(70.0), 800.0));
        for u in [0.0, 0.5, 37.0, 599.0, 600.0, 1234.5] {
            assert!(close(r.expected(r.time_at(u)), u), "u={u}");
        }
        // Λ(t) = t²/6 on the ramp: t = sqrt(6u)
        assert!(close(r.time_at(150.0), 30.0));
        let down: Ramp = "20:4:30s".parse().unwrap();
        for u in [0.0, 100.0, 359.9, 360.0, 400.0] {
            assert!(close(down.expected(down.time_at(u)), u), "u={u}");
        }
    }

    #[test]
    fn steps_hold_their_rates() {
        let r: Ramp = "steps:2@30s,4@30s,8".parse().unwrap();
        assert!(close(r.rate_at(10.0), 2.0));
        assert!(close(r.rate_at(45.0), 4.0));
        assert!(close(r.rate_at(1000.0), 8.0));
        assert!(close(r.time_at(60.0), 30.0));
        assert!(close(r.time_at(180.0), 60.0));
        assert!(close(r.time_at(260.0), 70.0));
        // a pause (rate 0) is skipped by the arrivals
        let p: Ramp = "steps:1@10s,0@20s,1".parse().unwrap();
        assert!(close(p.time_at(10.0), 10.0) || close(p.time_at(10.0), 30.0));
        assert!(close(p.time_at(11.0), 31.0));
    }

    #[test]
    fn bad_ramps_say_why() {
        for (s, why) in [
            ("0:20", "three parts"),
            ("0:x:60s", "not a rate"),
            ("0:20:60", "unit"),
            ("0:0:60s", "above zero"),
            ("steps:2,4@30s", "needs its duration"),
            ("steps:2@0s,4", "above zero"),
            ("-1:20:60s", "not a rate"),
        ] {
            let e = s.parse::<Ramp>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
