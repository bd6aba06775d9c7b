//! `tracegen stats`: what a trace looks like: arrival rate over time, burstiness (the
//! coefficient of variation of inter-arrival gaps: 0 for constant, 1 for Poisson, above 1
//! burstier), and length distributions. One pass over the file, in bounded memory (lengths
//! are kept as counts per value; percentiles use `stats::percentile_sorted` on the two order
//! statistics they fall between, so they equal the percentiles of the full sorted list).

use std::collections::{BTreeMap, HashSet};

use super::TraceReader;
use crate::io::DataError;
use crate::stats::percentile_sorted;

/// Distribution of a length column.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LenStats {
    pub n: u64,
    pub mean: f64,
    pub min: u32,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: u32,
    pub total: u64,
}

#[derive(Default)]
struct Counts(BTreeMap<u32, u64>);

impl Counts {
    fn add(&mut self, v: u32) {
        *self.0.entry(v).or_insert(0) += 1;
    }

    /// The k-th smallest value (0-based).
    fn nth(&self, k: u64) -> Option<u32> {
        let mut seen = 0u64;
        for (v, c) in &self.0 {
            seen += c;
            if k < seen {
                return Some(*v);
            }
        }
        None
    }

    fn percentile(&self, n: u64, q: f64) -> f64 {
        if n == 0 {
            return f64::NAN;
        }
        let h = (n - 1) as f64 * q;
        let lo = h.floor() as u64;
        let hi = (lo + 1).min(n - 1);
        let a = self.nth(lo).unwrap_or(0) as f64;
        let b = self.nth(hi).unwrap_or(0) as f64;
        // the one percentile method, on the two order statistics h falls between
        percentile_sorted(&[a, b], h - lo as f64).unwrap_or(a)
    }

    fn stats(&self) -> LenStats {
        let n: u64 = self.0.values().sum();
        let total: u64 = self.0.iter().map(|(v, c)| *v as u64 * c).sum();
        LenStats {
            n,
            mean: if n > 0 { total as f64 / n as f64 } else { f64::NAN },
            min: self.0.keys().next().copied().unwrap_or(0),
            p50: self.percentile(n, 0.5),
            p90: self.percentile(n, 0.9),
            p99: self.percentile(n, 0.99),
            max: self.0.keys().next_back().copied().unwrap_or(0),
            total,
        }
    }
}

/// Everything `tracegen stats` prints.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TraceStats {
    pub file: String,
    pub rows: u64,
    pub sessions: u64,
    pub rows_with_prompt: u64,
    pub rows_with_prefix_blocks: u64,
    pub first_s: f64,
    pub last_s: f64,
    pub span_s: f64,
    /// (n-1)/(last-first): one over the mean inter-arrival gap.
    pub mean_rate_rps: Option<f64>,
    pub gap_mean_s: Option<f64>,
    /// Coefficient of variation of the inter-arrival gaps (file order).
    pub gap_cv: Option<f64>,
    /// Rows earlier than the row before them (replay would send them late).
    pub out_of_order: u64,
    pub bucket_s: f64,
    /// Requests per bucket, from t = 0: bucket i covers [i*bucket_s, (i+1)*bucket_s).
    pub per_bucket: Vec<u64>,
    pub input_tokens: LenStats,
    pub output_tokens: LenStats,
    pub tokenizer: Option<String>,
}

/// Buckets beyond this many are refused (pick a larger --bucket).
const MAX_BUCKETS: usize = 10_000_000;

/// Read a whole trace and describe it.
pub fn compute(mut r: TraceReader, bucket_s: f64) -> Result<TraceStats, String> {
    if !(bucket_s.is_finite() && bucket_s > 0.0) {
        return Err(format!("--bucket must be a positive duration, got {bucket_s}"));
    }
    let mut s = TraceStats {
        file: r.name().to_string(),
        bucket_s,
        tokenizer: r.meta().get(super::META_TOKENIZER).map(str::to_string),
        ..Default::default()
    };
    let mut sessions = HashSet::new();
    let (mut inp, mut out) = (Counts::default(), Counts::default());
    let mut prev: Option<f64> = None;
    let (mut gn, mut gmean, mut gm2) = (0u64, 0.0f64, 0.0f64);
    while let Some(b) = r.next_rows() {
        let b = b.map_err(|e: DataError| e.to_string())?;
        for row in b {
            let t = row.arrival_s;
            if s.rows == 0 {
                s.first_s = t;
                s.last_s = t;
            }
            s.rows += 1;
            s.first_s = s.first_s.min(t);
            s.last_s = s.last_s.max(t);
            if let Some(p) = prev {
                let g = t - p;
                if g < 0.0 {
                    s.out_of_order += 1;
                } else {
                    // Welford
                    gn += 1;
                    let d = g - gmean;
                    gmean += d / gn as f64;
                    gm2 += d * (g - gmean);
                }
            }
            prev = Some(t);
            let k = (t / bucket_s).floor() as usize;
            if k >= MAX_BUCKETS {
                return Err(format!(
                    "{}: a row at {t} s needs more than {MAX_BUCKETS} buckets of {bucket_s} s; pass a larger --bucket",
                    s.file
                ));
            }
            if s.per_bucket.len() <= k {
                s.per_bucket.resize(k + 1, 0);
            }
            s.per_bucket[k] += 1;
            if let Some(id) = row.session_id {
                sessions.insert(id);
            }
            s.rows_with_prompt += row.prompt.is_some() as u64;
            s.rows_with_prefix_blocks += row.prefix_blocks.is_some() as u64;
            inp.add(row.input_tokens);
            out.add(row.output_tokens);
        }
    }
    s.sessions = sessions.len() as u64;
    s.span_s = s.last_s - s.first_s;
    if s.rows >= 2 && s.span_s > 0.0 {
        s.mean_rate_rps = Some((s.rows - 1) as f64 / s.span_s);
    }
    if gn > 0 {
        s.gap_mean_s = Some(gmean);
        if gmean > 0.0 {
            s.gap_cv = Some((gm2 / gn as f64).sqrt() / gmean);
        }
    }
    s.input_tokens = inp.stats();
    s.output_tokens = out.stats();
    Ok(s)
}

fn num(v: f64) -> String {
    crate::io::fmt_num(v)
}

impl TraceStats {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(o, "trace        {}", self.file);
        let _ = writeln!(
            o,
            "rows         {}{}",
            self.rows,
            if self.sessions > 0 {
                format!(" in {} sessions", self.sessions)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            o,
            "span         {} s ({} .. {})",
            num(self.span_s),
            num(self.first_s),
            num(self.last_s)
        );
        let _ = writeln!(
            o,
            "mean rate    {} req/s (one over the mean gap)",
            self.mean_rate_rps.map(num).unwrap_or_else(|| "-".into())
        );
        let _ = writeln!(
            o,
            "burstiness   CV of gaps {} (0 constant, 1 Poisson, >1 burstier); mean gap {} s",
            self.gap_cv.map(num).unwrap_or_else(|| "-".into()),
            self.gap_mean_s.map(num).unwrap_or_else(|| "-".into())
        );
        if self.out_of_order > 0 {
            let _ = writeln!(
                o,
                "warning      {} rows arrive before the row above them (replay sends rows in file order; `tracegen transform --sort` fixes it)",
                self.out_of_order
            );
        }
        if self.rows_with_prompt > 0 || self.rows_with_prefix_blocks > 0 {
            let _ = writeln!(
                o,
                "text         {} rows with prompt text, {} with prefix blocks",
                self.rows_with_prompt, self.rows_with_prefix_blocks
            );
        }
        if let Some(t) = &self.tokenizer {
            let _ = writeln!(o, "tokenizer    {t}");
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "tokens        mean      min      p50      p90      p99      max");
        for (name, l) in [("input", &self.input_tokens), ("output", &self.output_tokens)] {
            let _ = writeln!(
                o,
                "{name:<8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
                num(l.mean),
                l.min,
                num(l.p50),
                num(l.p90),
                num(l.p99),
                l.max
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "arrivals per {} s", num(self.bucket_s));
        let peak = self.per_bucket.iter().copied().max().unwrap_or(0).max(1);
        let _ = writeln!(o, "{:>10} {:>8} {:>10}", "from_s", "requests", "req/s");
        for (i, c) in self.per_bucket.iter().enumerate() {
            let bar = "#".repeat(((*c as f64 / peak as f64) * 40.0).round() as usize);
            let _ = writeln!(
                o,
                "{:>10} {:>8} {:>10}  {bar}",
                num(i as f64 * self.bucket_s),
                c,
                num(*c as f64 / self.bucket_s)
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_counts_match_the_sorted_list() {
        let vals = [5u32, 1, 9, 9, 3, 7, 7, 7, 100, 2, 2];
        let mut c = Counts::default();
        for v in vals {
            c.add(v);
        }
        let mut sorted: Vec<f64> = vals.iter().map(|v| *v as f64).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(
                c.percentile(vals.len() as u64, q),
                percentile_sorted(&sorted, q).unwrap(),
                "{q}"
            );
        }
        let s = c.stats();
        assert_eq!((s.min, s.max, s.n), (1, 100, 11));
    }
}
