//! The Prometheus text exposition format (version 0.0.4), as inference engines serve it on
//! `/metrics`, parsed into samples.
//!
//! Written here rather than taken from a crate: `prometheus-parse` 0.2.5 matches metric names
//! with `\w+`, so every colon-prefixed name (`vllm:…`, `sglang:…`, `llamacpp:…`) is dropped,
//! it splits labels at the first `}` (label values may contain one) and pulls in regex;
//! `openmetrics-parser` is LGPL-3.0 and built on pest. The format is small.
//!
//! What is accepted (facts from the format's documentation, prometheus/docs
//! `exposition_formats.md`, and from what the engines' exporters write):
//! - `# HELP name text` (escapes `\\` and `\n`), `# TYPE name type`; other `#` lines are
//!   comments; OpenMetrics' `# UNIT` and `# EOF` are accepted and ignored.
//! - `name{label="value",...} value [timestamp]`: names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label values
//!   with escapes `\\`, `\"`, `\n`, a trailing comma, blanks around tokens; the quoted-name form
//!   of Prometheus 3 (`{"name", label="v"} 1`).
//! - values: Go float syntax plus `NaN`, `+Inf`, `-Inf`, `Inf`, and Rust's `inf` (written by
//!   `metrics-exporter-prometheus`); C++ stream output such as `1.23457e+06` (llama.cpp).
//! - timestamps: integer milliseconds (float seconds in OpenMetrics are converted).
//! - an OpenMetrics exemplar (`# {trace_id="x"} 1.0`) after the value is ignored.
//!
//! A malformed line never fails the whole scrape: it is skipped and reported in
//! [`Exposition::errors`] with its line number.

use std::collections::HashMap;

/// The declared type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
    /// OpenMetrics types (info, stateset, gaugehistogram) and anything unknown.
    Other,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" | "unknown" => Kind::Untyped,
            _ => Kind::Other,
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name as exposed (with `_bucket`, `_sum`, `_count`, `_total`...).
    pub name: String,
    /// Labels in exposition order, unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// Labels as `k="v"` pairs, comma separated, escaped as in the exposition; None when
    /// there are none.
    pub fn labels_text(&self) -> Option<String> {
        if self.labels.is_empty() {
            return None;
        }
        let mut s = String::new();
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(k);
            s.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '"' => s.push_str("\\\""),
                    '\n' => s.push_str("\\n"),
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        Some(s)
    }
}

/// A family's declaration (`# TYPE`, `# HELP`).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub kind: Kind,
    pub help: Option<String>,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Declared families by name.
    pub families: HashMap<String, Family>,
    /// Skipped lines: (1-based line number, what was wrong).
    pub errors: Vec<(usize, String)>,
}

const SUFFIXES: &[&str] = &[
    "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gsum", "_gcount",
];

impl Exposition {
    /// The declared family a series belongs to (`x_bucket` belongs to histogram `x`), and its
    /// name. A series with no declaration is its own untyped family.
    pub fn family_of<'a>(&'a self, series: &'a str) -> (&'a str, Kind) {
        if let Some(f) = self.families.get(series) {
            return (series, f.kind);
        }
        for suf in SUFFIXES {
            if let Some(base) = series.strip_suffix(suf)
                && let Some(f) = self.families.get(base)
            {
                return (base, f.kind);
            }
        }
        (series, Kind::Untyped)
    }

    /// True for the `_created` series prometheus_client writes beside counters, histograms
    /// and summaries (creation time of the series, not a measurement).
    pub fn is_created_series(&self, series: &str) -> bool {
        let Some(base) = series.strip_suffix("_created") else {
            return false;
        };
        [base.to_string(), format!("{base}_total")].iter().any(|b| {
            self.families
                .get(b.as_str())
                .is_some_and(|f| matches!(f.kind, Kind::Counter | Kind::Histogram | Kind::Summary))
        })
    }

    /// Samples of one series name.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of `label` on the first sample of series `name` that carries it (an info
    /// metric's `version`, say).
    pub fn label_value<'a>(&'a self, name: &str, label: &str) -> Option<&'a str> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .find_map(|s| s.label(label))
    }

    /// Sum of every sample of one series name (over label sets), None when absent.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut any = false;
        let mut t = 0.0;
        for s in self.series(name) {
            any = true;
            t += s.value;
        }
        any.then_some(t)
    }
}

/// Parse exposition text. Never fails: bad lines are reported in `errors`.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            parse_comment(rest, &mut out);
            continue;
        }
        match parse_sample(line) {
            Ok(s) => out.samples.push(s),
            Err(e) => out.errors.push((i + 1, e)),
        }
    }
    out
}

fn parse_comment(rest: &str, out: &mut Exposition) {
    let rest = rest.trim_start_matches([' ', '\t']);
    let (word, tail) = split_word(rest);
    match word {
        "HELP" => {
            let (name, text) = split_word(tail);
            if name.is_empty() {
                return;
            }
            let help = unescape_help(text);
            out.families
                .entry(name.to_string())
                .and_modify(|f| f.help = Some(help.clone()))
                .or_insert(Family {
                    kind: Kind::Untyped,
                    help: Some(help),
                });
        }
        "TYPE" => {
            let (name, ty) = split_word(tail);
            if name.is_empty() {
                return;
            }
            let kind = Kind::parse(ty.trim());
            out.families
                .entry(name.to_string())
                .and_modify(|f| f.kind = kind)
                .or_insert(Family { kind, help: None });
        }
        _ => {} // comments, # UNIT, # EOF
    }
}

/// The first blank-separated word and the rest (leading blanks of the rest removed).
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl<'a> Cursor<'a> {
    fn blanks(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] == b' ' || self.s[self.i] == b'\t') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.i;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self.peek().is_some_and(is_name_char) {
            self.i += 1;
        }
        Some(&self.text[start..self.i])
    }

    /// A quoted string starting at `"`, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'"') {
            return Err("expected a quoted string".into());
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated label value".into()),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'n') => out.push(b'\n'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'"') => out.push(b'"'),
                        Some(o) => {
                            out.push(b'\\');
                            out.push(o);
                        }
                        None => return Err("unterminated label value".into()),
                    }
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "label value is not UTF-8".to_string())
    }

    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| c != b' ' && c != b'\t') {
            self.i += 1;
        }
        &self.text[start..self.i]
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let mut c = Cursor {
        s: line.as_bytes(),
        i: 0,
        text: line,
    };
    let mut name = match c.name() {
        Some(n) => Some(n.to_string()),
        None if c.peek() == Some(b'{') => None,
        None => return Err(format!("not a metric name at {:?}", short(line))),
    };
    c.blanks();
    let mut labels = Vec::new();
    if c.peek() == Some(b'{') {
        c.i += 1;
        loop {
            c.blanks();
            match c.peek() {
                Some(b'}') => {
                    c.i += 1;
                    break;
                }
                None => return Err("unterminated label set".into()),
                Some(b'"') => {
                    // Prometheus 3: a quoted metric name (first) or quoted label name.
                    let q = c.quoted()?;
                    c.blanks();
                    if c.peek() == Some(b'=') {
                        c.i += 1;
                        c.blanks();
                        let v = c.quoted()?;
                        labels.push((q, v));
                    } else if name.is_none() {
                        name = Some(q);
                    } else {
                        return Err("a quoted name without a value".into());
                    }
                }
                Some(_) => {
                    let k = c.name().ok_or_else(|| format!("bad label name in {:?}", short(line)))?;
                    c.blanks();
                    if c.peek() != Some(b'=') {
                        return Err(format!("label {k} has no '='"));
                    }
                    c.i += 1;
                    c.blanks();
                    let v = c.quoted()?;
                    labels.push((k.to_string(), v));
                }
            }
            c.blanks();
            match c.peek() {
                Some(b',') => c.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' in the labels of {:?}", short(line))),
            }
        }
    }
    let name = name.ok_or_else(|| "a sample without a metric name".to_string())?;
    c.blanks();
    let v = c.token();
    if v.is_empty() {
        return Err(format!("{name}: no value"));
    }
    let value = parse_value(v).ok_or_else(|| format!("{name}: bad value {v:?}"))?;
    c.blanks();
    let mut timestamp_ms = None;
    if c.peek().is_some() && c.peek() != Some(b'#') {
        let ts = c.token();
        timestamp_ms = Some(parse_timestamp(ts).ok_or_else(|| format!("{name}: bad timestamp {ts:?}"))?);
        c.blanks();
    }
    // Anything left must be an OpenMetrics exemplar (`# {...} v`), which is ignored.
    if c.peek().is_some() && c.peek() != Some(b'#') {
        return Err(format!("{name}: unexpected text after the value"));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// A sample value: Go/C/Rust float text, NaN and infinities in any case and sign.
pub fn parse_value(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let v: f64 = s.parse().ok()?;
    Some(v)
}

fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    // OpenMetrics: seconds with a fraction.
    let secs: f64 = s.parse().ok()?;
    secs.is_finite().then(|| (secs * 1000.0).round() as i64)
}

fn short(s: &str) -> String {
    if s.len() > 60 {
        let end = s.char_indices().nth(60).map(|(i, _)| i).unwrap_or(s.len());
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_colons_labels_and_values() {
        let e = parse(
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
             # TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n\
             llamacpp:prompt_tokens_total 1.23457e+06\n",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.samples.len(), 2);
        let s = &e.samples[0];
        assert_eq!(s.name, "vllm:num_requests_running");
        assert_eq!(s.label("model_name"), Some("m"));
        assert_eq!(s.value, 3.0);
        assert_eq!(e.samples[1].value, 1_234_570.0);
        assert_eq!(e.family_of("vllm:num_requests_running").1, Kind::Gauge);
        assert_eq!(
            e.families["vllm:num_requests_running"].help.as_deref(),
            Some("Number of requests in model execution batches.")
        );
    }

    #[test]
    fn escapes_infinities_timestamps_and_odd_spacing() {
        let e = parse(
            "# HELP x A \\\\ backslash\\nand a newline\n\
             msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
             something_weird{problem=\"division by zero\"} +Inf -3982045\n\
             http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
             a{le=\"+Inf\",} NaN\n\
             b { k = \"}{,\" } -inf\n\
             c inf\n\
             d 1.5 # {trace_id=\"abc\"} 1.0 1520879607.789\n\
             e 2 1520879607.789\n",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.families["x"].help.as_deref(), Some("A \\ backslash\nand a newline"));
        let s = &e.samples[0];
        assert_eq!(s.label("path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(s.label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
        assert_eq!(
            s.labels_text().unwrap(),
            "path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\""
        );
        assert_eq!(e.samples[1].value, f64::INFINITY);
        assert_eq!(e.samples[1].timestamp_ms, Some(-3982045));
        assert_eq!(e.samples[2].timestamp_ms, Some(1395066363000));
        assert!(e.samples[3].value.is_nan());
        assert_eq!(e.samples[3].label("le"), Some("+Inf"));
        assert_eq!(e.samples[4].label("k"), Some("}{,"));
        assert_eq!(e.samples[4].value, f64::NEG_INFINITY);
        assert_eq!(e.samples[5].value, f64::INFINITY);
        assert_eq!(e.samples[6].value, 1.5);
        assert_eq!(e.samples[7].timestamp_ms, Some(1520879607789));
    }

    #[test]
    fn bad_lines_are_skipped_and_reported() {
        let e = parse("ok 1\n9bad 1\nnovalue\nx{a=\"1\" 2\ny{a=1} 2\nz 1 2 3\nw abc\nok2 2\n");
        assert_eq!(
            e.samples.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["ok", "ok2"]
        );
        assert_eq!(e.errors.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn families_and_suffixes() {
        let e = parse(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\n\
             # TYPE c_total counter\nc_total 3\n# TYPE c_created gauge\nc_created 1.7e9\n\
             # TYPE d counter\nd_total 1\n\
             # TYPE vllm:iteration_tokens_total histogram\nvllm:iteration_tokens_total_bucket{le=\"1.0\"} 3.0\n\
             {\"my.metric\", \"my.label\"=\"v\"} 4\n",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.family_of("h_bucket"), ("h", Kind::Histogram));
        assert_eq!(e.family_of("h_count"), ("h", Kind::Histogram));
        assert_eq!(e.family_of("d_total"), ("d", Kind::Counter));
        assert_eq!(
            e.family_of("vllm:iteration_tokens_total_bucket"),
            ("vllm:iteration_tokens_total", Kind::Histogram)
        );
        assert!(e.is_created_series("c_created"));
        assert!(!e.is_created_series("h_sum"));
        assert_eq!(e.samples.last().unwrap().name, "my.metric");
        assert_eq!(e.samples.last().unwrap().label("my.label"), Some("v"));
        assert_eq!(e.sum("h_sum"), Some(2.0));
        assert_eq!(e.sum("nope"), None);
    }

    #[test]
    fn quoted_label_values_keep_commas_braces_and_equals() {
        let e = parse(
            "info{a=\"x,version=\\\"no\\\"\",version=\"1.2.3\"} 1\n\
             info{version=\"a,b\"} 1\n\
             q{k=\"=,}{\\\\\",j=\"\"} 2\n\
             r{k=\"tab\there\",k2=\" lead and trail \"} 3\n",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        let s = &e.samples[0];
        assert_eq!(s.labels.len(), 2);
        assert_eq!(s.label("a"), Some("x,version=\"no\""));
        assert_eq!(s.label("version"), Some("1.2.3"));
        assert_eq!(e.label_value("info", "version"), Some("1.2.3"));
        assert_eq!(e.samples[1].label("version"), Some("a,b"));
        assert_eq!(e.samples[2].label("k"), Some("=,}{\\"));
        assert_eq!(e.samples[2].label("j"), Some(""));
        assert_eq!(e.samples[3].label("k"), Some("tab\there"));
        assert_eq!(e.samples[3].label("k2"), Some(" lead and trail "));
        // the text form escapes what it must and reads back to the same labels
        for s in &e.samples {
            let back = parse(&format!("{}{{{}}} 1\n", s.name, s.labels_text().unwrap()));
            assert_eq!(back.samples[0].labels, s.labels);
        }
    }

    #[test]
    fn escapes_at_the_edges_of_label_values() {
        // a value that ends in an escaped backslash, one that is only an escaped quote, an
        // unknown escape kept as written, and a newline escape
        let e = parse("m{a=\"\\\\\",b=\"\\\"\",c=\"\\t\",d=\"x\\ny\"} 1\n");
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        let s = &e.samples[0];
        assert_eq!(s.label("a"), Some("\\"));
        assert_eq!(s.label("b"), Some("\""));
        assert_eq!(s.label("c"), Some("\\t"));
        assert_eq!(s.label("d"), Some("x\ny"));
        // an escaped quote does not end the value: this line is unterminated
        let e = parse("m{a=\"x\\\"} 1\nok 1\n");
        assert_eq!(e.errors.len(), 1, "{:?}", e.errors);
        assert_eq!(e.errors[0].0, 1);
        assert_eq!(e.samples.len(), 1);
        // unquoted and single-quoted values are refused, not split on commas
        let e = parse("m{a=1,b=\"2\"} 1\nm{a='1'} 1\n");
        assert_eq!(e.errors.len(), 2, "{:?}", e.errors);
    }

    #[test]
    fn help_type_nan_infinities_and_timestamps_together() {
        let e = parse(
            "# HELP g A gauge, with \"quotes\" and a \\\\ backslash\n\
             # TYPE g gauge\n\
             g{le=\"+Inf\"} NaN 1700000000000\n\
             g{le=\"-Inf\"} -Inf\n\
             g +Inf 12\n\
             # a plain comment, with, commas\n\
             # TYPE h histogram\n\
             h_bucket{le=\"0.5\"} 1.0e+00 -5\n",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(
            e.families["g"].help.as_deref(),
            Some("A gauge, with \"quotes\" and a \\ backslash")
        );
        assert_eq!(e.family_of("g"), ("g", Kind::Gauge));
        assert!(e.samples[0].value.is_nan());
        assert_eq!(e.samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(e.samples[1].label("le"), Some("-Inf"));
        assert_eq!(e.samples[1].value, f64::NEG_INFINITY);
        assert_eq!(e.samples[2].value, f64::INFINITY);
        assert_eq!(e.samples[2].timestamp_ms, Some(12));
        assert_eq!(e.samples[3].value, 1.0);
        assert_eq!(e.samples[3].timestamp_ms, Some(-5));
        assert_eq!(e.family_of("h_bucket"), ("h", Kind::Histogram));
        assert_eq!(e.label_value("g", "le"), Some("+Inf"));
        assert_eq!(e.label_value("g", "nope"), None);
    }
}
