//! The comparison contract: `agg --compare A,B`.

/// One row of `agg --compare A,B`: a metric on one matched load, B against A.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    pub metric: &'static str,
    pub a: String,
    pub b: String,
    pub concurrency: Option<u32>,
    pub rate_rps: Option<f64>,
    pub category: Option<String>,
    pub value_a: Option<f64>,
    pub value_b: Option<f64>,
    pub ratio: Option<f64>,
    /// 95% bootstrap CI of the ratio.
    pub ci: Option<(f64, f64)>,
}

impl Cmp {
    /// The CI excludes 1: the difference is not noise.
    pub fn significant(&self) -> bool {
        self.ci.is_some_and(|(lo, hi)| lo > 1.0 || hi < 1.0)
    }

    /// "a", "b" or "not significant" (lower is better for latencies, higher for throughputs).
    pub fn better(&self) -> &'static str {
        if !self.significant() {
            return "not significant";
        }
        let higher_is_better = self.metric.ends_with("_per_s");
        let b_higher = self.ratio.unwrap_or(1.0) > 1.0;
        if b_higher == higher_is_better { "b" } else { "a" }
    }
}

crate::contract! {
    /// agg --compare A,B
    pub static COMPARISON = ("comparison", 1, "agg --compare A,B: one row per metric and matched group, the ratio B/A with its 95% CI");
    rows Cmp, ctx ();
    /// Column names of the comparison contract.
    names col;
    METRIC "metric": String, opt, "", "the metric compared (e.g. ttft_p99_ms, output_tok_per_s)", get(|r, _| r.metric);
    A "a": String, opt, "", "label A (the baseline)", field(a);
    B "b": String, opt, "", "label B", field(b);
    CONCURRENCY "concurrency": Option<u32>, opt, "users", "matched load (closed loop)", field(concurrency);
    RATE_RPS "rate_rps": Option<f64>, opt, "req/s", "matched load (open loop)", field(rate_rps);
    CATEGORY "category": Option<String>, opt, "", "matched category (with --by category)", field(category);
    VALUE_A "value_a": Option<f64>, opt, "", "the metric for A, in the metric's unit", field(value_a);
    VALUE_B "value_b": Option<f64>, opt, "", "the metric for B", field(value_b);
    RATIO "ratio": Option<f64>, opt, "", "value_b / value_a", field(ratio);
    RATIO_CI_LO "ratio_ci_lo": Option<f64>, opt, "", "95% bootstrap CI of the ratio, low", get(|r, _| r.ci.map(|c| c.0));
    RATIO_CI_HI "ratio_ci_hi": Option<f64>, opt, "", "95% bootstrap CI of the ratio, high", get(|r, _| r.ci.map(|c| c.1));
    SIGNIFICANT "significant": bool, opt, "", "the CI excludes 1: the difference is not noise", get(|r, _| r.significant());
    BETTER "better": String, opt, "", "a, b, or \"not significant\" (lower is better for latencies, higher for throughput)", get(|r, _| r.better());
}
