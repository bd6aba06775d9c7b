//! Capacity charts, from sweep's capacity rows: SLO attainment and each limited percentile
//! against the offered rate, with each label's knee (its capacity) and the SLO's limits drawn;
//! capacity per engine and quantization as bars with their 95% intervals.

use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

use super::figures::Bars;
use super::kinds::style_of;
use super::{ChartError, LinePlot, Panels, Pt, RefLine, Series, XAxis, fmt_tick, save};
use crate::schema::capacity::{Capacity, CapacityStep};

/// Colour of the SLO's limit lines.
pub const SLO_COLOR: RGBColor = RGBColor(200, 30, 30);

/// A percentile panel draws values up to this many times its limit; higher ones (and the
/// infinite percentiles of steps whose requests failed) sit at this height.
pub const CLIP: f64 = 3.0;

/// One limit of a normalised SLO (`ttft_p99<=500ms`, or `ttft<=500ms` in attainment form).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// `ttft`, `tpot`, `itl`, `e2e`.
    pub metric: String,
    /// The percentile limited (99 for `_p99`), None in attainment form (every request).
    pub pct: Option<f64>,
    pub ms: f64,
}

impl Limit {
    /// "p99 TTFT ≤ 500 ms" (percentile form), "TTFT ≤ 500 ms" (attainment form).
    pub fn text(&self) -> String {
        let m = self.metric.to_uppercase();
        match self.pct {
            Some(p) => format!("p{} {m} ≤ {} ms", fmt_pct(p), fmt_tick(self.ms)),
            None => format!("{m} ≤ {} ms", fmt_tick(self.ms)),
        }
    }
}

fn fmt_pct(p: f64) -> String {
    if (p - p.round()).abs() < 1e-6 {
        format!("{}", p.round() as i64)
    } else {
        format!("{}", (p * 1000.0).round() / 1000.0)
    }
}

/// The percentile of sweep's spelling: `99` is p99, `999` p99.9, `5` p50 (the digits after
/// "0.", as a share).
fn pct_of(digits: &str) -> Option<f64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    format!("0.{digits}").parse::<f64>().ok().map(|q| 100.0 * q)
}

/// A duration with its unit (`500ms`, `0.5s`, `800us`) in milliseconds.
fn parse_ms(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("us").or_else(|| v.strip_suffix("µs")) {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        (v, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(|x| x * scale)
}

/// The limits of a capacity row's `slo` (limits it cannot read are left out).
pub fn limits(slo: &str) -> Vec<Limit> {
    slo.split(',')
        .filter_map(|part| {
            let (name, v) = part.split_once("<=").or_else(|| part.split_once('<'))?;
            let ms = parse_ms(v)?;
            let name = name.trim().to_ascii_lowercase();
            let (metric, pct) = match name.split_once("_p") {
                Some((m, p)) => (m.to_string(), Some(pct_of(p)?)),
                None => (name, None),
            };
            Some(Limit { metric, pct, ms })
        })
        .collect()
}

/// An SLO in words: "p99 TTFT ≤ 500 ms and p99 TPOT ≤ 50 ms", or in attainment form
/// "99% of requests within TTFT ≤ 500 ms and TPOT ≤ 50 ms"; the raw string when unreadable.
pub fn slo_words(slo: &str, attainment: Option<f64>) -> String {
    let l = limits(slo);
    if l.is_empty() {
        return slo.to_string();
    }
    let all = l.iter().map(Limit::text).collect::<Vec<_>>().join(" and ");
    match attainment {
        Some(a) => format!("{}% of requests within {all}", fmt_tick(100.0 * a)),
        None => all,
    }
}

/// A step's percentile key: its metric and percentile (`ttft_p99_ms`: ttft, 99); in the
/// attainment form (`ttft_ms`) the percentile is the attainment's.
fn key_parts(key: &str, attainment: Option<f64>) -> Option<(String, f64)> {
    let k = key.strip_suffix("_ms")?;
    match k.split_once("_p") {
        Some((m, p)) => Some((m.to_string(), pct_of(p)?)),
        None => Some((k.to_string(), 100.0 * attainment?)),
    }
}

/// How a capacity row is named: "engine quant" when both are known and no other row has the
/// same pair, else its label.
pub fn who(rows: &[Capacity], r: &Capacity) -> String {
    match (&r.engine, &r.quant) {
        (Some(e), Some(q))
            if rows
                .iter()
                .filter(|o| o.engine.as_ref() == Some(e) && o.quant.as_ref() == Some(q))
                .map(|o| &o.label)
                .all(|l| *l == r.label) =>
        {
            format!("{e} {q}")
        }
        _ if r.label.is_empty() => "run".into(),
        _ => r.label.clone(),
    }
}

/// The distinct SLOs of the rows (with their attainment), in order of first appearance.
pub fn slos(rows: &[Capacity]) -> Vec<(String, Option<f64>)> {
    let mut out: Vec<(String, Option<f64>)> = Vec::new();
    for r in rows {
        if !out.iter().any(|(s, a)| *s == r.slo && *a == r.attainment) {
            out.push((r.slo.clone(), r.attainment));
        }
    }
    out
}

/// File name of a chart for the `i`th of `n` SLOs.
fn base(dir: &Path, stem: &str, i: usize, n: usize) -> PathBuf {
    if n > 1 {
        dir.join(format!("{stem}-slo{}", i + 1))
    } else {
        dir.join(stem)
    }
}

/// Steps grouped by rate (repeats of one rate merged): rate, mean of `y`, its min and max
/// when repeated, and whether any of them saturated.
fn by_rate(steps: &[CapacityStep], y: &dyn Fn(&CapacityStep) -> Option<f64>) -> Vec<Pt> {
    let mut sorted: Vec<&CapacityStep> = steps.iter().collect();
    sorted.sort_by(|a, b| a.rate_rps.total_cmp(&b.rate_rps));
    let mut out: Vec<Pt> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let rate = sorted[i].rate_rps;
        let same: Vec<&CapacityStep> = sorted[i..]
            .iter()
            .take_while(|s| (s.rate_rps - rate).abs() <= 1e-9 * rate.abs().max(1.0))
            .copied()
            .collect();
        i += same.len();
        let ys: Vec<f64> = same.iter().filter_map(|s| y(s)).filter(|v| v.is_finite()).collect();
        if ys.is_empty() || !rate.is_finite() {
            continue;
        }
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let (lo, hi) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        out.push(Pt {
            x: rate,
            y: mean,
            lo: (ys.len() > 1).then_some(lo),
            hi: (ys.len() > 1).then_some(hi),
            flagged: same.iter().any(|s| s.saturated),
        });
    }
    out
}

/// The legend text of the ring drawn around saturated steps.
pub const SATURATED_RING: &str = "saturated: stopped early, its queue kept growing";

/// One figure per SLO: the share of requests meeting every limit, and each limited
/// percentile, against the offered rate, one line per label through the steps it tried;
/// every label's capacity drawn as a vertical line in its colour, every limit (and the
/// attainment target) as a dashed red line.
pub fn attainment_vs_load(rows: &[Capacity], dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = Vec::new();
    let all = slos(rows);
    for (i, (slo, attainment)) in all.iter().enumerate() {
        let sub: Vec<&Capacity> = rows
            .iter()
            .filter(|r| r.slo == *slo && r.attainment == *attainment)
            .collect();
        let lims = limits(slo);
        // (label, colour, marker, dashed, steps)
        let mut labels = Vec::new();
        for r in &sub {
            let steps = r
                .steps()
                .map_err(|e| ChartError::NoData(format!("capacity row {}: steps_json unreadable ({e})", r.label)))?;
            let (color, marker, dashed) = style_of(r.engine.as_deref(), &r.label, r.quant.as_deref());
            labels.push((who(rows, r), color, marker, dashed, steps, r.capacity_rps));
        }
        let mut keys: Vec<String> = labels
            .iter()
            .flat_map(|l| l.4.iter().flat_map(|s| s.percentiles.keys().cloned()))
            .filter(|k| key_parts(k, *attainment).is_some())
            .collect();
        keys.sort();
        keys.dedup();
        let rates: Vec<f64> = {
            let mut v: Vec<f64> = labels.iter().flat_map(|l| l.4.iter().map(|s| s.rate_rps)).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * a.abs().max(1.0));
            v
        };
        if rates.is_empty() {
            continue;
        }
        let knees: Vec<RefLine> = labels
            .iter()
            .filter_map(|l| {
                l.5.map(|c| RefLine {
                    at: c,
                    vertical: true,
                    color: l.1,
                    label: fmt_tick(c),
                })
            })
            .collect();
        let panel = |title: String, ylab: &str, y: &dyn Fn(&CapacityStep) -> Option<f64>| -> LinePlot {
            let mut p = LinePlot::new(title, "offered rate (req/s)", ylab);
            p.x_axis = XAxis::Measured(rates.clone());
            p.series = labels
                .iter()
                .map(|l| Series {
                    name: l.0.clone(),
                    color: l.1,
                    marker: l.2,
                    dashed: l.3,
                    points: by_rate(&l.4, y),
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            p.refs = knees.clone();
            p.ring_label = Some(SATURATED_RING.into());
            p
        };
        let mut plots = Vec::new();
        let mut att = panel(
            "Requests meeting every limit (higher is better)".into(),
            "% of requests",
            &|s| s.attained_pct,
        );
        att.y_range = Some((0.0, 105.0));
        if let Some(a) = attainment {
            att.refs.push(RefLine {
                at: 100.0 * a,
                vertical: false,
                color: SLO_COLOR,
                label: format!("target {}%", fmt_tick(100.0 * a)),
            });
        }
        if !att.series.is_empty() {
            plots.push(att);
        }
        let mut clipped = false;
        for k in &keys {
            let Some((metric, pct)) = key_parts(k, *attainment) else {
                continue;
            };
            // the limit on this metric: at this percentile, else (attainment form) on every request
            let limit = lims
                .iter()
                .find(|l| l.metric == metric && l.pct.is_some_and(|p| (p - pct).abs() < 1e-6))
                .or_else(|| lims.iter().find(|l| l.metric == metric && l.pct.is_none()));
            let cap = limit.map(|l| CLIP * l.ms);
            let get = |s: &CapacityStep| -> Option<f64> {
                match (s.percentiles.get(k.as_str()), cap) {
                    (Some(v), Some(c)) if v.is_finite() => Some(v.min(c)),
                    (Some(v), None) if v.is_finite() => Some(*v),
                    // left out of the map: infinite (requests failed); drawn at the top
                    (None, Some(c)) if s.n_sent > 0 && s.attained_pct.is_some() => Some(c),
                    _ => None,
                }
            };
            clipped |= cap.is_some_and(|c| {
                labels
                    .iter()
                    .flat_map(|l| l.4.iter())
                    .any(|s| s.percentiles.get(k.as_str()).is_none_or(|v| *v > c))
            });
            let words = format!("p{} {}", fmt_pct(pct), metric.to_uppercase());
            let mut p = panel(format!("{words} (lower is better)"), &format!("{words} (ms)"), &get);
            if let Some(l) = limit {
                p.refs.push(RefLine {
                    at: l.ms,
                    vertical: false,
                    color: SLO_COLOR,
                    label: format!("limit {} ms", fmt_tick(l.ms)),
                });
            }
            if !p.series.is_empty() {
                plots.push(p);
            }
        }
        if plots.is_empty() {
            continue;
        }
        let caps: Vec<String> = labels
            .iter()
            .map(|l| match l.5 {
                Some(c) => format!("{} {} req/s", l.0, fmt_tick(c)),
                None => format!("{} none", l.0),
            })
            .collect();
        let mut notes = vec![
            format!("vertical lines: each label's capacity, the knee ({})", caps.join(", ")),
            "dashed red: the SLO".into(),
        ];
        if clipped {
            notes.push(format!(
                "percentiles over {}× their limit (or infinite: failed requests) drawn at {}×",
                fmt_tick(CLIP),
                fmt_tick(CLIP)
            ));
        }
        let subtitle = if context.is_empty() {
            notes.join(" · ")
        } else {
            format!("{context} · {}", notes.join(" · "))
        };
        let cols = plots.len().min(2);
        let nrows = plots.len().div_ceil(cols) as u32;
        let fig = Panels {
            title: format!(
                "SLO attainment vs offered rate, capacity at {}",
                slo_words(slo, *attainment)
            ),
            subtitle,
            plots,
            cols,
            size: (1200, 150 + 420 * nrows),
            mark: None,
        };
        out.extend(save(&fig, &base(dir, "capacity-attainment", i, all.len()))?);
    }
    Ok(out)
}

/// Capacity per label (engine and quantization) as bars with their 95% intervals, one chart
/// per SLO, in req/s and in output tokens/s at capacity.
pub fn capacity_bars(rows: &[Capacity], dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    type Get = fn(&Capacity) -> (Option<f64>, Option<f64>, Option<f64>);
    let kinds: [(&str, &str, &str, Get); 2] = [
        ("capacity-rps", "Capacity", "req/s at capacity, 95% CI", |r| {
            (r.capacity_rps, r.capacity_rps_ci_lo, r.capacity_rps_ci_hi)
        }),
        (
            "capacity-output-tok-s",
            "Output throughput at capacity",
            "output tokens/s at capacity, 95% CI",
            |r| {
                (
                    r.capacity_output_tok_s,
                    r.capacity_output_tok_s_ci_lo,
                    r.capacity_output_tok_s_ci_hi,
                )
            },
        ),
    ];
    let mut out = Vec::new();
    let all = slos(rows);
    for (i, (slo, attainment)) in all.iter().enumerate() {
        let sub: Vec<&Capacity> = rows
            .iter()
            .filter(|r| r.slo == *slo && r.attainment == *attainment)
            .collect();
        for (stem, what, ylab, get) in kinds {
            if sub.iter().all(|r| get(r).0.is_none()) {
                continue;
            }
            let none: Vec<String> = sub
                .iter()
                .filter(|r| get(r).0.is_none())
                .map(|r| who(rows, r))
                .collect();
            let mut notes = vec!["whiskers: 95% interval".to_string()];
            if !none.is_empty() {
                notes.push(format!(
                    "no capacity (failed at the lowest rate tried): {}",
                    none.join(", ")
                ));
            }
            let mut b = Bars::new(
                format!("{what} at {} (higher is better)", slo_words(slo, *attainment)),
                if context.is_empty() {
                    notes.join(" · ")
                } else {
                    format!("{context} · {}", notes.join(" · "))
                },
                ylab,
            );
            b.categories = sub.iter().map(|r| who(rows, r)).collect();
            b.series = vec![(
                what.to_string(),
                RGBColor(90, 90, 90),
                sub.iter().map(|r| get(r).0).collect(),
            )];
            let styles: Vec<_> = sub
                .iter()
                .map(|r| style_of(r.engine.as_deref(), &r.label, r.quant.as_deref()))
                .collect();
            b.cat_colors = styles.iter().map(|s| s.0).collect();
            b.cat_light = styles.iter().map(|s| s.2).collect();
            b.cat_ci = sub
                .iter()
                .map(|r| {
                    let (_, lo, hi) = get(r);
                    lo.zip(hi)
                })
                .collect();
            out.extend(save(&b, &base(dir, stem, i, all.len()))?);
        }
    }
    Ok(out)
}

/// Both capacity charts.
pub fn charts(rows: &[Capacity], dir: &Path, context: &str) -> Result<Vec<PathBuf>, ChartError> {
    let mut out = capacity_bars(rows, dir, context)?;
    out.extend(attainment_vs_load(rows, dir, context)?);
    Ok(out)
}

/// Whether a file is a capacity file (its provenance names the capacity contract).
pub fn is_capacity_file(path: &str) -> bool {
    crate::io::open(path).is_ok_and(|i| {
        i.meta
            .get(crate::schema::META_SCHEMA)
            .is_some_and(|s| s.starts_with(&format!("{}/", crate::schema::CAPACITY.name)))
    })
}

/// Capacity files among `inputs`: files of the capacity contract, and those under
/// directories (sweep's `DIR/capacity.parquet`).
pub fn files_among(inputs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in inputs {
        if Path::new(a).is_dir() {
            out.extend(
                crate::io::expand_inputs_of(std::slice::from_ref(a), Some(crate::schema::CAPACITY.name))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| is_capacity_file(p)),
            );
        } else if is_capacity_file(a) {
            out.push(a.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The rows of capacity files, and whether any of them is synthetic.
pub fn read(paths: &[String]) -> Result<(Vec<Capacity>, bool), crate::io::DataError> {
    let mut rows = Vec::new();
    let mut synthetic = false;
    for path in paths {
        let (r, meta) = crate::io::cols::read_rows::<Capacity>(
            path,
            &[crate::schema::capacity::col::CAPACITY_RPS],
            "the columns sweep writes (is this sweep's capacity.parquet?)",
        )?;
        synthetic |= meta.is_synthetic();
        rows.extend(r);
    }
    Ok((rows, synthetic))
}
