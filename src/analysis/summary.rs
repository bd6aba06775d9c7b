//! Summary rows: each group's counts, throughputs, goodput and latency statistics, as the
//! summary contract's typed rows ([`Summary`]).

use super::ingest::{Groups, Key};
use super::options::{BY_COLUMNS, ID_KEYS, Options};
use crate::io::DataError;
use crate::schema::{LatencyStats, Status, Summary, summary::col};
use crate::stats::{Samples, Stats, rate_ci};

fn nan_none(v: f64) -> Option<f64> {
    if v.is_nan() { None } else { Some(v) }
}

/// One metric's statistics block (None everywhere when it had no samples).
fn latency_stats(s: Option<Stats>) -> LatencyStats {
    let Some(s) = s else {
        return LatencyStats::default();
    };
    LatencyStats {
        mean: nan_none(s.mean),
        p50: nan_none(s.p50),
        p90: nan_none(s.p90),
        p95: nan_none(s.p95),
        p99: nan_none(s.p99),
        p999: nan_none(s.p999),
        max: nan_none(s.max),
        p50_ci_lo: nan_none(s.p50_ci.0),
        p50_ci_hi: nan_none(s.p50_ci.1),
        p99_ci_lo: nan_none(s.p99_ci.0),
        p99_ci_hi: nan_none(s.p99_ci.1),
    }
}

/// Statistics without confidence intervals; None without samples.
fn summ_plain(v: &mut Samples) -> Option<Stats> {
    v.finish();
    v.summarize(0, 0)
}

/// Finish the groups into summary rows, sorted by key. Sorts the accumulated samples.
pub fn finish(groups: &mut Groups, o: &Options) -> Vec<Summary> {
    sort_all(groups);
    let mut keys: Vec<Key> = groups.groups.keys().cloned().collect();
    keys.sort_by(|a, b| {
        (
            &a.label,
            &a.engine,
            &a.model,
            &a.quant,
            a.concurrency,
            a.rate().map(|r| (r * 1e6) as i64),
            &a.category,
            a.turn,
        )
            .cmp(&(
                &b.label,
                &b.engine,
                &b.model,
                &b.quant,
                b.concurrency,
                b.rate().map(|r| (r * 1e6) as i64),
                &b.category,
                b.turn,
            ))
    });
    let mut group_by: Vec<&str> = ID_KEYS.to_vec();
    for b in &o.by {
        if BY_COLUMNS.contains(&b.as_str()) {
            group_by.push(b);
        }
    }
    let group_by = group_by.join(",");
    let mut rows = Vec::new();
    for (gi, k) in keys.into_iter().enumerate() {
        let acc = groups.groups.get_mut(&k).expect("key from map");
        let st = |s: Status| acc.by_status.get(s.as_str()).copied().unwrap_or(0);
        let ok = st(Status::Ok);
        let mut r = Summary {
            label: k.label.clone(),
            engine: k.engine.clone(),
            model: k.model.clone(),
            quant: k.quant.clone(),
            concurrency: k.concurrency,
            rate_rps: k.rate(),
            category: k.category.clone(),
            turn: k.turn,
            group_by: group_by.clone(),
            n_requests: acc.n,
            ..Summary::default()
        };
        for s in Status::ALL {
            r.n.add(s, st(s));
        }
        // users who gave up (replay --cancel) are neither successes nor errors
        let judged = acc.n - st(Status::NotSent) - acc.gave_up;
        r.n_gave_up = acc.gave_up;
        r.error_rate = if judged > 0 {
            (judged - ok) as f64 / judged as f64
        } else {
            0.0
        };
        let own = match (acc.first_sent_us, acc.last_done_us) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e6),
            _ => None,
        };
        // Rows imported from one run of another tool: under that tool's definitions (or
        // when the rows have no instants) the duration is the tool's own, so its throughputs
        // are reproduced.
        let dur = match acc.tool_runs {
            super::imported::ToolRuns::One(t) if t.defs == o.defs || own.is_none() => Some(t.duration_s),
            _ => own,
        };
        r.duration_s = dur;
        let per_s = |x: f64| dur.map(|d| x / d);
        r.req_per_s = per_s(ok as f64);
        r.output_tok_per_s = per_s(acc.out_tokens_ok as f64);
        (r.output_tok_per_s_ci_lo, r.output_tok_per_s_ci_hi) = match (acc.first_sent_us, acc.last_done_us) {
            (Some(a), Some(b)) => rate_ci(&acc.token_bins, a, b).map(|(_, lo, hi)| (lo, hi)).unzip(),
            _ => (None, None),
        };
        r.total_tok_per_s = per_s((acc.in_tokens_ok + acc.out_tokens_ok) as f64);
        let pct = |x: u64| {
            if ok > 0 {
                Some(100.0 * x as f64 / ok as f64)
            } else {
                None
            }
        };
        if o.slo.any() {
            r.goodput_req_per_s = per_s(acc.slo_all_ok as f64);
            r.slo_ttft_pct = o.slo.ttft_ms.and(pct(acc.slo_ttft_ok));
            r.slo_tpot_pct = o.slo.tpot_ms.and(pct(acc.slo_tpot_ok));
            r.slo_e2e_pct = o.slo.e2e_ms.and(pct(acc.slo_e2e_ok));
        }
        r.mean_output_tokens = if ok > 0 {
            Some(acc.out_tokens_ok as f64 / ok as f64)
        } else {
            None
        };
        let seed = o.seed.wrapping_add(gi as u64 * 1_000_003);
        let summ = |v: &mut Samples, salt: u64| {
            v.finish();
            v.summarize(o.bootstrap, seed ^ salt)
        };
        let s_tpot = summ(&mut acc.tpot, 2);
        r.ttft = latency_stats(summ(&mut acc.ttft, 1));
        r.tpot = latency_stats(s_tpot);
        r.itl = latency_stats(summ(&mut acc.itl, 3));
        r.e2e = latency_stats(summ(&mut acc.e2e, 4));
        // engine steps as the client saw them (no bootstrap: descriptive figures)
        if let Some(t) = summ_plain(&mut acc.tokens_per_event) {
            (r.tokens_per_event_mean, r.tokens_per_event_p50) = (Some(t.mean), Some(t.p50));
            (r.tokens_per_event_p90, r.tokens_per_event_max) = (Some(t.p90), Some(t.max));
            r.multi_token_event_pct = (acc.events > 0).then(|| 100.0 * acc.events_multi as f64 / acc.events as f64);
        }
        if let Some(t) = summ_plain(&mut acc.itl_token) {
            (r.itl_token_mean_ms, r.itl_token_p50_ms) = (nan_none(t.mean), nan_none(t.p50));
            (r.itl_token_p90_ms, r.itl_token_p99_ms) = (nan_none(t.p90), nan_none(t.p99));
        }
        if let Some(t) = summ_plain(&mut acc.itl_event) {
            (r.itl_event_mean_ms, r.itl_event_p50_ms) = (nan_none(t.mean), nan_none(t.p50));
            r.itl_event_p99_ms = nan_none(t.p99);
        }
        r.interactivity_tok_s = s_tpot.filter(|s| s.p50 > 0.0).map(|s| 1000.0 / s.p50);
        acc.sched_lag.finish();
        acc.ttft_sched.finish();
        r.sched_lag_p50_ms = acc.sched_lag.percentile(0.5);
        r.sched_lag_p99_ms = acc.sched_lag.percentile(0.99);
        let load = acc.load.finish(k.concurrency, k.rate());
        r.in_flight_mean = load.in_flight_mean;
        r.concurrency_pct = load.concurrency_pct;
        r.achieved_rate_rps = load.achieved_rate;
        r.target_rate_rps = load.target_rate;
        r.rate_pct = load.rate_pct;
        r.load_pct = load.load_pct;
        r.client_bound = load.load_pct.map(|_| load.client_bound);
        if acc.conn_known > 0 {
            let n = acc.conn_known as f64;
            r.conn_fresh_pct = Some(100.0 * acc.conn_fresh as f64 / n);
            r.conn_setup_mean_ms = Some(acc.conn_setup_ms / n);
        }
        r.ttft_sched_p99_ms = acc.ttft_sched.percentile(0.99);
        acc.ttfa.finish();
        r.ttfa_mean_ms = acc.ttfa.mean();
        r.ttfa_p50_ms = acc.ttfa.percentile(0.5);
        r.ttfa_p90_ms = acc.ttfa.percentile(0.9);
        r.ttfa_p99_ms = acc.ttfa.percentile(0.99);
        r.n_reasoning = acc.n_reasoning;
        r.n_unanswered = acc.n_unanswered;
        if acc.n_reasoning_counted > 0 {
            r.reasoning_tokens_mean = Some(acc.reasoning_tokens as f64 / acc.n_reasoning_counted as f64);
            r.reasoning_token_pct =
                (acc.out_tokens_ok > 0).then(|| 100.0 * acc.reasoning_tokens as f64 / acc.out_tokens_ok as f64);
        }
        if acc.cached_of_prompt > 0 {
            r.usage_cache_hit_pct = Some(100.0 * acc.cached_tokens as f64 / acc.cached_of_prompt as f64);
        }
        rows.push(r);
    }
    rows
}

/// Sort every group's samples, spread over the machine's cores (largest first, each to the
/// least loaded thread).
fn sort_all(groups: &mut Groups) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let mut all: Vec<&mut Samples> = groups.groups.values_mut().flat_map(|a| a.samples_mut()).collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.held()));
    let mut bins: Vec<(usize, Vec<&mut Samples>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for s in all {
        let b = bins.iter_mut().min_by_key(|b| b.0).expect("at least one thread");
        b.0 += s.held();
        b.1.push(s);
    }
    std::thread::scope(|sc| {
        for (_, work) in bins {
            sc.spawn(move || {
                for s in work {
                    s.finish();
                }
            });
        }
    });
}

/// Window of a group: first sent_at .. last done_at (µs since the epoch).
pub fn window(groups: &Groups, k: &Key) -> Option<(i64, i64)> {
    let a = groups.groups.get(k)?;
    Some((a.first_sent_us?, a.last_done_us?))
}

/// Summary rows back from a summary file (for chart and report). Columns the file lacks are
/// null (or zero and empty where the contract has no null).
pub fn read_summary(path: &str) -> Result<Vec<Summary>, DataError> {
    let required = "the columns agg writes (is this a requests file? run agg on it first)";
    Ok(crate::io::cols::read_rows::<Summary>(path, &[col::LABEL, col::N_REQUESTS], required)?.0)
}

/// Properties of agg on generated requests: counts are conserved whatever the statuses and
/// the grouping, and the percentiles are ordered, in exact and in histogram mode.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::analysis::options::{Defs, EXACT_BUDGET, Slo};
    use crate::schema::Metric;
    use crate::schema::{Record, Rows, RunLabels, Status, TraceRow, tpot};

    const ST: [Status; 7] = Status::ALL;

    /// Requests rows encoded by the contract itself (analysis never uses the client's code).
    fn to_batch(labels: &RunLabels, recs: &[Record]) -> arrow_array::RecordBatch {
        Record::encode(recs, labels)
    }

    /// A request row of 10 tokens in and out that was never sent.
    fn not_sent(id: u64, scheduled_at_us: Option<i64>) -> Record {
        Record::not_sent(&TraceRow::new(id, 0.0, 10, 10), scheduled_at_us, "x")
    }

    /// (status index, ttft, gaps between chunks, category, warm-up)
    type Gen = (usize, f64, Vec<f64>, u8, bool);

    fn latency() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => 0.0f64..5_000.0,
            1 => Just(0.0),
            1 => 1e-9f64..1e9,
        ]
    }

    fn rec_strategy() -> impl Strategy<Value = Gen> {
        (
            0usize..7,
            latency(),
            prop::collection::vec(0.0f64..200.0, 0..12),
            0u8..3,
            prop::bool::weighted(0.1),
        )
    }

    fn record(id: u64, g: &Gen) -> Record {
        let (si, ttft, gaps, cat, warm) = g;
        let mut r = not_sent(id, Some(1_000_000 + id as i64));
        r.status = ST[*si];
        r.warmup = *warm;
        r.category = Some(["short", "long", "code"][*cat as usize].to_string());
        if r.status != Status::NotSent {
            r.sent_at_us = Some(1_000_000 + id as i64 * 1000);
            r.done_at_us = Some(r.sent_at_us.unwrap() + 5000);
            r.sched_lag_ms = Some(0.5);
        }
        if r.status == Status::Ok {
            let mut t = *ttft;
            r.chunk_times_ms = vec![t];
            for g in gaps {
                t += g;
                r.chunk_times_ms.push(t);
            }
            r.output_tokens = r.chunk_times_ms.len() as u32;
            r.ttft_ms = Some(*ttft);
            r.e2e_ms = Some(t);
            r.tpot_ms = tpot(*ttft, t, r.output_tokens);
            r.error = None;
        }
        r
    }

    fn run(runs: &[Vec<Gen>], by: &[&str], budget: usize) -> (Vec<Summary>, Vec<Vec<Record>>) {
        let o = Options {
            by: by.iter().map(|s| s.to_string()).collect(),
            bootstrap: 20,
            exact_budget: budget,
            ..Options::default()
        };
        let mut g = Groups::default();
        let mut all = Vec::new();
        for (k, gens) in runs.iter().enumerate() {
            let labels = RunLabels {
                label: format!("run{k}"),
                run_id: "r".into(),
                api: "chat".into(),
                concurrency: Some(k as u32 + 1),
                ..Default::default()
            };
            let recs: Vec<Record> = gens.iter().enumerate().map(|(i, x)| record(i as u64, x)).collect();
            // in two batches, as a file read in pieces would come
            let cut = recs.len() / 2;
            g.add_batch(&to_batch(&labels, &recs[..cut]), &o);
            g.add_batch(&to_batch(&labels, &recs[cut..]), &o);
            all.push(recs);
        }
        (finish(&mut g, &o), all)
    }

    /// The TPOT SLO is judged on the TPOT the definitions in force report: under
    /// `--defs guidellm` (E2E / tokens, TTFT included) a slow first token fails `tpot=50ms`
    /// even though vLLM's TPOT ((E2E - TTFT)/(tokens - 1) = 10 ms) would pass it.
    #[test]
    fn tpot_slo_is_judged_on_the_reported_definitions() {
        let labels = RunLabels {
            label: "x".into(),
            run_id: "r".into(),
            api: "chat".into(),
            concurrency: Some(1),
            ..Default::default()
        };
        let recs: Vec<Record> = (0..4u64)
            .map(|i| {
                let mut r = record(i, &(0, 900.0, vec![10.0; 10], 0, false));
                r.warmup = false;
                r
            })
            .collect();
        assert_eq!(recs[0].tpot_ms, Some(10.0));
        let b = to_batch(&labels, &recs);
        let slo: Slo = "tpot=50ms".parse().unwrap();
        let row = |defs: Defs| {
            let o = Options {
                slo,
                defs,
                bootstrap: 0,
                ..Options::default()
            };
            let mut g = Groups::default();
            g.add_batch(&b, &o);
            finish(&mut g, &o).remove(0)
        };
        let v = row(Defs::Vllm);
        assert_eq!(v.tpot.p50, Some(10.0));
        assert_eq!(v.slo_tpot_pct, Some(100.0));
        let g = row(Defs::Guidellm);
        let tpot = g.tpot.p50.unwrap();
        assert!((tpot - 1000.0 / 11.0).abs() < 1e-9, "{tpot}");
        assert_eq!(g.slo_tpot_pct, Some(0.0), "judged on GuideLLM's TPOT, as reported");
        assert_eq!(g.goodput_req_per_s, Some(0.0));
        // aiperf reports vLLM's per-request TPOT, and is judged on it
        assert_eq!(row(Defs::Aiperf).slo_tpot_pct, Some(100.0));
    }

    /// ITL under each tool's definitions: chunk gaps (vLLM), one gap per token with 0 for a
    /// chunk's further tokens (inference-perf), E2E / tokens (LLMPerf), per-request decode
    /// time (AIPerf).
    #[test]
    fn itl_follows_each_tools_definition() {
        let labels = RunLabels {
            label: "x".into(),
            run_id: "r".into(),
            api: "chat".into(),
            ..Default::default()
        };
        // 11 chunks 10 ms apart after a 900 ms TTFT, 2 tokens each
        let recs: Vec<Record> = (0..3u64)
            .map(|i| {
                let mut r = record(i, &(0, 900.0, vec![10.0; 10], 0, false));
                r.output_tokens = 22;
                r.chunk_tokens = None;
                r.tpot_ms = crate::schema::tpot(900.0, 1000.0, 22);
                r
            })
            .collect();
        let b = to_batch(&labels, &recs);
        let itl = |defs: Defs| {
            let o = Options {
                defs,
                bootstrap: 0,
                ..Options::default()
            };
            let mut g = Groups::default();
            g.add_batch(&b, &o);
            let row = finish(&mut g, &o).remove(0);
            (row.itl.p50.unwrap(), row.itl.mean.unwrap())
        };
        assert_eq!(itl(Defs::Vllm), (10.0, 10.0));
        // per token: 10 gaps of 10 ms and 11 zeros per request
        let (p50, mean) = itl(Defs::InferencePerf);
        assert_eq!(p50, 0.0);
        assert!((mean - 100.0 / 21.0).abs() < 1e-9, "{mean}");
        assert!((itl(Defs::Llmperf).0 - 1000.0 / 22.0).abs() < 1e-9);
        assert!((itl(Defs::Aiperf).0 - 100.0 / 21.0).abs() < 1e-9);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn counts_are_conserved_by_status_and_grouping(
            runs in prop::collection::vec(prop::collection::vec(rec_strategy(), 1..60), 1..4),
            by_cat in any::<bool>(),
            hist in any::<bool>(),
        ) {
            let by: &[&str] = if by_cat { &["category"] } else { &[] };
            let (rows, recs) = run(&runs, by, if hist { 4 } else { EXACT_BUDGET });
            let measured: Vec<&Record> = recs.iter().flatten().filter(|r| !r.warmup).collect();
            // grouping conserves rows
            let total: u64 = rows.iter().map(|r| r.n_requests).sum();
            prop_assert_eq!(total as usize, measured.len());
            for r in &rows {
                let by_status: u64 = ST.iter().map(|s| r.n.get(*s)).sum();
                prop_assert_eq!(by_status, r.n_requests);
                let e = r.error_rate;
                prop_assert!((0.0..=1.0).contains(&e));
            }
            // and the status totals are the rows' statuses
            for s in ST {
                let want = measured.iter().filter(|r| r.status == s).count() as u64;
                let got: u64 = rows.iter().map(|r| r.n.get(s)).sum();
                prop_assert_eq!(got, want, "{}", s.as_str());
            }
        }

        #[test]
        fn percentiles_are_ordered(
            runs in prop::collection::vec(prop::collection::vec(rec_strategy(), 1..80), 1..3),
            hist in any::<bool>(),
        ) {
            let (rows, _) = run(&runs, &[], if hist { 4 } else { EXACT_BUDGET });
            for r in &rows {
                for m in Metric::ALL {
                    let l = r.latency(m);
                    let Some(max) = l.max else { continue };
                    let qs = [l.p50, l.p90, l.p95, l.p99, l.p999, Some(max)];
                    for w in qs.windows(2) {
                        let (a, b) = (w[0].unwrap(), w[1].unwrap());
                        prop_assert!(a <= b, "{:?} not ordered: {:?}", m, qs);
                    }
                    let mean = l.mean.unwrap();
                    prop_assert!(mean <= max * (1.0 + 1e-12) + 1e-9, "{:?} mean {} > max {}", m, mean, max);
                }
            }
        }
    }
}
