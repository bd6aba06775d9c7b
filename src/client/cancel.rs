//! Users who give up: `replay --cancel SHARE[:AFTER]` closes a share of the requests early, as
//! a user closing the tab would.
//!
//! - SHARE: the fraction of requests (0-1) whose user gives up at some point; which ones is
//!   drawn from `--seed` and the request id, so a run is reproducible.
//! - AFTER: when that user gives up, measured from the moment the request was sent, or from
//!   its first token with `ttft+`: a duration (`2s`), `exp:MEAN` (exponential, e.g. `exp:5s`)
//!   or `uniform:LO:HI` (e.g. `uniform:1s:10s`); default `uniform:0s:10s`. A request that
//!   ends before its user's moment simply ends `ok`.
//!
//! The client then drops the connection (it is never reused), the row is `cancelled` with
//! `cancel_after_ms` (the planned moment) set, so agg can tell a user who gave up from a run
//! that was stopped, and keeps the partial timings (TTFT and the chunks received).

use std::str::FromStr;
use std::time::Duration;

use crate::trace::tokens::SplitMix;

/// When a user gives up, measured from the request's sending or its first token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum After {
    Fixed(f64),
    Exp(f64),
    Uniform(f64, f64),
}

/// The `--cancel` setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancel {
    pub share: f64,
    /// Count from the first token (`ttft+`) rather than from sending.
    pub from_first_token: bool,
    pub after: After,
    spec: String,
}

/// One request's plan: give up this long after sending (or after the first token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GiveUp {
    pub from_first_token: bool,
    pub after: Duration,
}

impl Cancel {
    /// Whether (and when) the user of request `id` gives up; the same for the same seed.
    pub fn draw(&self, seed: u64, id: u64) -> Option<GiveUp> {
        let mut r = SplitMix(seed ^ 0xC0FF_EE00_D15C_0A11 ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut unit = || (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if unit() >= self.share {
            return None;
        }
        let secs = match self.after {
            After::Fixed(s) => s,
            After::Exp(mean) => -mean * (1.0 - unit()).ln(),
            After::Uniform(lo, hi) => lo + (hi - lo) * unit(),
        };
        Some(GiveUp {
            from_first_token: self.from_first_token,
            after: Duration::from_secs_f64(secs.max(0.0)),
        })
    }

    /// The setting as written (for the run's metadata).
    pub fn spec(&self) -> &str {
        &self.spec
    }
}

const GRAMMAR: &str = "use SHARE[:AFTER], SHARE a fraction 0-1 and AFTER [ttft+]D, [ttft+]exp:MEAN or \
                       [ttft+]uniform:LO:HI (e.g. 0.1, 0.1:ttft+2s, 0.2:exp:5s, 0.05:uniform:1s:30s)";

impl FromStr for Cancel {
    type Err = String;
    fn from_str(s: &str) -> Result<Cancel, String> {
        let bad = |why: &str| format!("invalid --cancel {s:?}: {why}; {GRAMMAR}");
        let (share, after) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let share: f64 = share
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| (0.0..=1.0).contains(v))
            .ok_or_else(|| bad(&format!("the share {share:?} is not a fraction from 0 to 1")))?;
        let after = after.unwrap_or("uniform:0s:10s");
        let (from_first_token, dist) = match after.strip_prefix("ttft+") {
            Some(rest) => (true, rest),
            None => (false, after),
        };
        let dur = |x: &str| {
            crate::units::duration_arg(x.trim())
                .map(|d| d.as_secs_f64())
                .map_err(|e| bad(&e))
        };
        let after = match dist.split(':').collect::<Vec<_>>().as_slice() {
            ["exp", m] => {
                let m = dur(m)?;
                if m <= 0.0 {
                    return Err(bad("an exponential's mean must be above zero"));
                }
                After::Exp(m)
            }
            ["uniform", lo, hi] => {
                let (lo, hi) = (dur(lo)?, dur(hi)?);
                if hi < lo {
                    return Err(bad("uniform:LO:HI needs LO <= HI"));
                }
                After::Uniform(lo, hi)
            }
            [d] => After::Fixed(dur(d)?),
            _ => return Err(bad(&format!("{dist:?} is not a duration or a distribution"))),
        };
        Ok(Cancel {
            share,
            from_first_token,
            after,
            spec: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_draws_reproducibly() {
        let c: Cancel = "0.25:ttft+exp:2s".parse().unwrap();
        assert!(c.from_first_token);
        assert_eq!(c.after, After::Exp(2.0));
        let draws: Vec<Option<GiveUp>> = (0..4000).map(|i| c.draw(7, i)).collect();
        assert_eq!(draws, (0..4000).map(|i| c.draw(7, i)).collect::<Vec<_>>());
        let chosen: Vec<f64> = draws.iter().flatten().map(|g| g.after.as_secs_f64()).collect();
        let share = chosen.len() as f64 / 4000.0;
        assert!((share - 0.25).abs() < 0.03, "{share}");
        let mean = chosen.iter().sum::<f64>() / chosen.len() as f64;
        assert!((mean - 2.0).abs() < 0.25, "{mean}");
        let u: Cancel = "1:uniform:1s:3s".parse().unwrap();
        for i in 0..100 {
            let g = u.draw(1, i).unwrap();
            assert!(!g.from_first_token);
            assert!((1.0..=3.0).contains(&g.after.as_secs_f64()));
        }
        assert_eq!("0.5".parse::<Cancel>().unwrap().after, After::Uniform(0.0, 10.0));
        assert!("0:2s".parse::<Cancel>().unwrap().draw(1, 1).is_none());
    }

    #[test]
    fn bad_settings_say_why() {
        for (s, why) in [
            ("1.5", "fraction"),
            ("x:2s", "fraction"),
            ("0.1:2", "has no unit"),
            ("0.1:exp:0s", "above zero"),
            ("0.1:uniform:3s:1s", "LO <= HI"),
            ("0.1:normal:1s:2s", "not a duration"),
        ] {
            let e = s.parse::<Cancel>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
