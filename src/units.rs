//! Units: the one duration grammar of every tool and every config.
//!
//! A duration is a non-negative number followed by its unit: `us`, `ms`, `s`, `m` or `h`
//! (`250ms`, `1.5s`, `2m`). A bare number is refused, with a message naming both readings,
//! because `--slo ttft=500` (ms?) and `--duration 500` (s?) would otherwise mean different
//! things in different places. `0` alone is accepted: it is the same in every unit.

use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration {0:?} has no unit: write {0}ms or {0}s (units: us, ms, s, m, h)")]
    NoUnit(String),
    #[error("invalid duration {0:?}: use a number and a unit, e.g. 500ms, 30s, 2m, 1h")]
    Invalid(String),
    #[error("invalid duration {0:?}: must be a finite, non-negative number")]
    Negative(String),
}

/// Parse a duration with its unit: `250ms`, `30s`, `2m`, `1h`, `1.5s`, `20us`; `0` alone.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let units: [(&str, f64); 5] = [("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
    let Some((num, mult)) = units
        .iter()
        .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim(), *m)))
    else {
        return match t.parse::<f64>() {
            Ok(0.0) => Ok(Duration::ZERO),
            Ok(_) => Err(DurationError::NoUnit(t.to_string())),
            Err(_) => Err(DurationError::Invalid(s.to_string())),
        };
    };
    let v: f64 = num.parse().map_err(|_| DurationError::Invalid(s.to_string()))?;
    if !v.is_finite() || v < 0.0 {
        return Err(DurationError::Negative(s.to_string()));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// [`parse_duration`] for clap's `value_parser`.
pub fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// A duration in milliseconds (SLO thresholds, `--slo ttft=500ms`).
pub fn parse_ms(s: &str) -> Result<f64, DurationError> {
    parse_duration(s).map(|d| d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("20us").unwrap(), Duration::from_micros(20));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_ms("500ms").unwrap(), 500.0);
        assert_eq!(parse_ms("2s").unwrap(), 2000.0);
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn a_bare_number_is_refused_with_both_readings() {
        let e = parse_duration("500").unwrap_err().to_string();
        assert!(e.contains("500ms") && e.contains("500s"), "{e}");
        assert_eq!(parse_duration("1.5"), Err(DurationError::NoUnit("1.5".into())));
    }
}
