//! Speculative decoding and multi-token events: mock-engine's `--spec-draft` steps, read back
//! through replay, agg's tokens per event and per-token ITL, and enginemon's acceptance.

use std::path::Path;

use servebench::enginemon::{engine_window, load_engine_metrics};

use crate::common::*;

const K: u32 = 3;
const P: f64 = 0.6;
/// Output tokens per request, requests per run.
const T: usize = 48;
const N: usize = 120;

/// Mean and variance of the number of events of a request of `t` tokens under the mock's law
/// (the first token alone, then steps of 1 + A tokens cut to what is left, A the accepted
/// drafts: P(A = a) = P^a (1 - P) for a < K, P^K for a = K), by dynamic programming over the
/// tokens left.
fn events_law(t: usize) -> (f64, f64) {
    let law: Vec<f64> = (0..=K)
        .map(|a| {
            if a < K {
                P.powi(a as i32) * (1.0 - P)
            } else {
                P.powi(K as i32)
            }
        })
        .collect();
    // m1[r], m2[r]: first and second moments of the steps needed for r tokens
    let (mut m1, mut m2) = (vec![0.0; t], vec![0.0; t]);
    for r in 1..t {
        let (mut e1, mut e2) = (0.0, 0.0);
        for (a, p) in law.iter().enumerate() {
            let rest = r.saturating_sub(a + 1);
            e1 += p * (1.0 + m1[rest]);
            e2 += p * (1.0 + 2.0 * m1[rest] + m2[rest]);
        }
        (m1[r], m2[r]) = (e1, e2);
    }
    let mean = 1.0 + m1[t - 1];
    (mean, m2[t - 1] - m1[t - 1] * m1[t - 1])
}

fn summary(d: &Path, name: &str, runs: &Path, engine: Option<&Path>) -> std::path::PathBuf {
    let s = d.join(name);
    let mut c = cmd("agg");
    c.arg(runs);
    if let Some(e) = engine {
        c.arg("--engine-metrics").arg(e);
    }
    ok(c.arg("-o").arg(&s));
    s
}

fn value(s: &Path, col: &str) -> Option<f64> {
    column_f64(s, col)[0]
}

/// Every request's chunk_tokens, as the server counted them (sorted, to compare runs).
fn chunk_tokens(runs: &Path) -> Vec<Vec<u32>> {
    let mut v: Vec<Vec<u32>> = column_text(runs, "chunk_tokens")
        .iter()
        .map(|c| serde_json::from_str(c).unwrap_or_else(|e| panic!("{c}: {e}")))
        .collect();
    v.sort();
    v
}

/// Whether the mean tokens per step of `chunks` (requests of `t` tokens) is within 4 standard
/// errors of the law's. The draws are seeded, so each run is one fixed sample; a correct mock
/// lands inside for all but about 1 seed in 15,000.
fn within_law(chunks: &[Vec<u32>], t: usize) -> (bool, f64, f64) {
    let (mean_events, var_events) = events_law(t);
    let se = (var_events / chunks.len() as f64).sqrt();
    let n: usize = chunks.iter().map(Vec::len).sum();
    let got = (t * chunks.len()) as f64 / n as f64;
    let (lo, hi) = (t as f64 / (mean_events + 4.0 * se), t as f64 / (mean_events - 4.0 * se));
    (lo < got && got < hi, got, t as f64 / mean_events)
}

/// Against the mock's known law (exact mode, chat with continuous usage): agg's tokens per
/// event matches the law's mean, per-token ITL is the step time over the step's tokens, and
/// enginemon's acceptance equals the mock's own counters.
#[test]
fn known_acceptance_through_replay_agg_and_enginemon() {
    let d = tmp();
    let (k, p) = (K.to_string(), P.to_string());
    let m = Mock::start(&[
        "--ttft-ms",
        "5",
        "--itl-ms",
        "10",
        "--spec-draft",
        &k,
        "--spec-accept",
        &p,
        "--spec-seed",
        "7",
    ]);
    let t = trace(
        d.path(),
        "t.parquet",
        &["batch", "--count", &N.to_string(), "--output-len", &T.to_string()],
    );
    let runs = d.path().join("r.parquet");
    let eng = d.path().join("engine.parquet");
    let o = run(cmd("enginemon")
        .args(["--url", &m.url, "--interval", "100ms", "-o"])
        .arg(&eng)
        .arg("--")
        .arg(bin("replay"))
        .arg(&t)
        .args(["--url", &m.url, "--api", "chat", "--concurrency", "20", "--quiet", "-o"])
        .arg(&runs));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(d.path(), "s.parquet", &runs, Some(&eng));
    assert_eq!(value(&s, "n_ok"), Some(N as f64));

    // The steps as the server counted them (on the chat route one chunk per step, whatever
    // the timing) follow the law: T tokens per request over its events.
    let chunks = chunk_tokens(&runs);
    assert_eq!(chunks.len(), N);
    assert!(chunks.iter().all(|c| c.iter().sum::<u32>() == T as u32 && c[0] == 1));
    assert!(chunks.iter().flatten().all(|k| (1..=K + 1).contains(k)));
    let (inside, per_chunk, law) = within_law(&chunks, T);
    assert!(inside, "tokens per step {per_chunk}, law {law}");
    // agg's events are those chunks, except where the client read two steps at once (a loaded
    // machine): never fewer tokens per event, and not many more
    let tpe = value(&s, "tokens_per_event_mean").unwrap();
    assert!(
        per_chunk - 1e-9 <= tpe && tpe < 1.25 * per_chunk,
        "{tpe} vs {per_chunk}"
    );
    let multi = value(&s, "multi_token_event_pct").unwrap();
    assert!((40.0..90.0).contains(&multi), "{multi}");

    // Per-token ITL: every step takes 10 ms, so a gap over its tokens is 10/1 .. 10/4 ms; the
    // median step has 2 tokens (P(k >= 2) = 0.6), so the median is 5 ms. Wide margins: timing.
    let itl = value(&s, "itl_p50_ms").unwrap();
    let itl_tok = value(&s, "itl_token_p50_ms").unwrap();
    assert!((7.0..20.0).contains(&itl), "per-event ITL {itl}");
    assert!((3.0..8.0).contains(&itl_tok), "per-token ITL {itl_tok}");
    assert!(value(&s, "itl_token_mean_ms").unwrap() < 0.8 * value(&s, "itl_mean_ms").unwrap());

    // The mock's counters, read once every request is done.
    let c = |n: &str| metric(&m.url, n, None);
    let (drafts, drafted, accepted) = (
        c("vllm:spec_decode_num_drafts_total"),
        c("vllm:spec_decode_num_draft_tokens_total"),
        c("vllm:spec_decode_num_accepted_tokens_total"),
    );
    assert_eq!(drafted, K as f64 * drafts);
    // enginemon's whole recording (the scrape before the first request to the one after the
    // last): exactly the mock's counters
    let rows = load_engine_metrics(&[eng.to_string_lossy().to_string()]).unwrap();
    let (t0, t1) = (rows.first().unwrap().t_us, rows.last().unwrap().t_us);
    let w = engine_window(&rows, t0, t1);
    assert!(
        (w.spec_accept_rate.unwrap() - accepted / drafted).abs() < 1e-12,
        "{w:?}"
    );
    assert!(
        (w.spec_accept_length.unwrap() - (1.0 + accepted / drafts)).abs() < 1e-12,
        "{w:?}"
    );
    // and the law: E[A]/K = 0.392, 4 standard errors of the accepted drafts per step
    let law = (1..=K).map(|i| P.powi(i as i32)).sum::<f64>() / K as f64;
    let rate = accepted / drafted;
    assert!(
        (rate - law).abs() < 4.0 * (1.4 / drafts).sqrt() / K as f64,
        "{rate} vs {law}"
    );
    // the summary's group window ends at the last response, before enginemon's last scrape:
    // close to the whole run's figure
    let pct = value(&s, "spec_accept_pct").unwrap();
    assert!((pct - 100.0 * rate).abs() < 5.0, "{pct} vs {}", 100.0 * rate);
    let len = value(&s, "spec_tokens_per_step").unwrap();
    assert!((len - (1.0 + accepted / drafts)).abs() < 0.15, "{len}");

    // the report shows the events' tokens, per-token ITL and the acceptance
    let rep = d.path().join("report");
    ok(cmd("report")
        .arg(&runs)
        .arg("--engine-metrics")
        .arg(&eng)
        .arg("-o")
        .arg(&rep));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    let sec = md
        .split("### Tokens per event")
        .nth(1)
        .expect("a tokens-per-event section");
    let row = sec
        .lines()
        .filter(|l| l.starts_with('|'))
        .nth(2)
        .unwrap_or_else(|| panic!("{sec}"));
    assert!(row.contains(&format!("{tpe:.2}")), "{row}");
    assert!(row.contains(&format!("{pct:.1}%")), "{row}");
}

/// One law, every protocol's shape: the same seeded steps read back as the same events, as
/// one multi-token chunk (continuous usage, SGLang's completion_tokens) or as a burst of
/// one-token events (TGI, llama.cpp) that agg merges into one event. Ollama counts no tokens
/// per chunk: the columns are null, never guessed. The simulated mode draws the same law.
#[test]
fn every_protocol_shape_gives_the_same_events() {
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "40", "--output-len", "32"]);
    let mut means = Vec::new();
    for (api, sim) in [
        ("chat", false),
        ("completions", false),
        ("tgi", false),
        ("sglang", false),
        ("llamacpp", false),
        ("ollama", false),
        ("chat", true),
    ] {
        let (k, p) = (K.to_string(), P.to_string());
        let mut args = vec![
            "--ttft-ms",
            "5",
            "--itl-ms",
            "8",
            "--spec-draft",
            &k,
            "--spec-accept",
            &p,
        ];
        if sim {
            args.extend(["--sim", "--sim-decode-base-ms", "8"]);
        }
        let m = Mock::start(&args);
        let runs = d.path().join(format!("{api}-{sim}.parquet"));
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--api", api, "--concurrency", "10", "--quiet", "-o"])
            .arg(&runs));
        let s = summary(d.path(), &format!("s-{api}-{sim}.parquet"), &runs, None);
        let tpe = value(&s, "tokens_per_event_mean");
        if api == "ollama" {
            assert_eq!(tpe, None, "ollama: no token counts, no tokens per event");
            assert_eq!(value(&s, "itl_token_p50_ms"), None);
            // and the report has nothing to show
            let rep = d.path().join("report-ollama");
            ok(cmd("report").arg(&runs).arg("-o").arg(&rep));
            let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
            assert!(!md.contains("### Tokens per event"), "{md}");
            continue;
        }
        let tpe = tpe.unwrap_or_else(|| panic!("{api}: no tokens per event"));
        let itl_tok = value(&s, "itl_token_p50_ms").unwrap();
        // a burst read as separate events would put 0 ms gaps here
        assert!(itl_tok > 1.0, "{api} sim={sim}: per-token ITL {itl_tok}");
        if !sim {
            // every event is one 8 ms step, bursts or not (wide margins: timing)
            let ev = value(&s, "itl_event_p50_ms").unwrap();
            assert!((6.0..16.0).contains(&ev), "{api}: per-event ITL {ev}");
            if matches!(api, "tgi" | "llamacpp") {
                // the chunk gaps of itl_* count each burst's ~0 gaps: its mean is well below
                let chunk = value(&s, "itl_mean_ms").unwrap();
                assert!(chunk < 0.7 * value(&s, "itl_event_mean_ms").unwrap(), "{api}: {chunk}");
            }
        }
        let chunks = (!matches!(api, "tgi" | "llamacpp")).then(|| chunk_tokens(&runs));
        if let Some(c) = &chunks {
            let n: usize = c.iter().map(Vec::len).sum();
            assert!(
                tpe >= (32 * 40) as f64 / n as f64 - 1e-9,
                "{api}: events merged below chunks"
            );
        }
        means.push((api, sim, tpe, chunks));
    }
    // exact mode: the same requests (numbered 1..40 by each fresh mock) draw the same steps,
    // so every protocol that counts tokens per chunk has the same chunks, token for token
    let chat = means[0].3.clone().unwrap();
    for (api, sim, _, c) in &means {
        if let (Some(c), false) = (c, sim) {
            assert_eq!(c, &chat, "{api}");
        }
    }
    // TGI and llama.cpp: one-token events (every chunk 1 token) whose bursts agg merges into
    // those steps (without the merge their mean would be exactly 1; a client that read two
    // steps at once can only raise it)
    let per_step = (32 * 40) as f64 / chat.iter().map(Vec::len).sum::<usize>() as f64;
    for (api, _, tpe, _) in means.iter().filter(|m| matches!(m.0, "tgi" | "llamacpp")) {
        assert!(*tpe > 0.97 * per_step, "{api}: {tpe} vs {per_step}");
    }
    // simulated mode: the same law, its own draws
    let sim = means.iter().find(|m| m.1).unwrap().3.clone().unwrap();
    let (inside, got, law) = within_law(&sim, 32);
    assert!(inside, "sim: {got} vs {law}");
}

/// The law's moments by brute force over all outcomes of a short request.
#[test]
fn the_event_law_by_enumeration() {
    // 4 tokens: first alone, then 3 left. Steps of 1..=4 tokens with the truncated law.
    let q = [1.0 - P, P * (1.0 - P), P * P * (1.0 - P), P * P * P];
    let mut dist = std::collections::BTreeMap::<u32, f64>::new();
    fn walk(left: usize, steps: u32, pr: f64, q: &[f64; 4], dist: &mut std::collections::BTreeMap<u32, f64>) {
        if left == 0 {
            *dist.entry(steps).or_default() += pr;
            return;
        }
        for (a, p) in q.iter().enumerate() {
            walk(left.saturating_sub(a + 1), steps + 1, pr * p, q, dist);
        }
    }
    walk(3, 1, 1.0, &q, &mut dist);
    let mean: f64 = dist.iter().map(|(k, p)| *k as f64 * p).sum();
    let var: f64 = dist.iter().map(|(k, p)| (*k as f64 - mean).powi(2) * p).sum();
    let (m, v) = events_law(4);
    assert!(
        (m - mean).abs() < 1e-12 && (v - var).abs() < 1e-12,
        "{m} {v} vs {mean} {var}"
    );
}

/// agg's tokens per event and per-token ITL on hand-made rows, by hand: one vLLM-style request
/// of multi-token chunks, one TGI-style request whose bursts share a time, one without token
/// counts (left out, never guessed).
#[test]
fn tokens_per_event_and_per_token_itl_by_hand() {
    use servebench::schema::{Record, Rows, RunLabels, Status};
    use servebench::trace::TraceRow;
    let d = tmp();
    let t0 = 1_700_000_000_000_000i64;
    let rec = |id: u64, times: &[f64], tokens: Option<Vec<u32>>| {
        let n: u32 = tokens.as_ref().map_or(times.len() as u32, |t| t.iter().sum());
        let mut r = Record::not_sent(&TraceRow::new(id, 0.0, 100, n), Some(t0), "");
        r.status = Status::Ok;
        r.error = None;
        r.sent_at_us = Some(t0);
        r.chunk_times_ms = times.to_vec();
        r.chunk_tokens = tokens;
        r.ttft_ms = Some(times[0]);
        r.e2e_ms = times.last().copied();
        r.done_at_us = Some(t0 + (times.last().unwrap() * 1000.0) as i64);
        r.output_tokens = n;
        r.output_tokens_source = "usage";
        r
    };
    let recs = vec![
        // events 1, 4, 2, 1 tokens; gaps 10, 10, 20 ms -> per token 2.5, 5, 20
        rec(0, &[50.0, 60.0, 70.0, 90.0], Some(vec![1, 4, 2, 1])),
        // bursts: events 1, 3, 1 tokens; gaps 12, 6 ms -> per token 4, 6
        rec(1, &[40.0, 52.0, 52.0, 52.0, 58.0], Some(vec![1; 5])),
        // no counts: no events
        rec(2, &[10.0, 20.0, 30.0], None),
    ];
    let labels = RunLabels {
        label: "x".into(),
        run_id: "r".into(),
        api: "chat".into(),
        concurrency: Some(1),
        ..Default::default()
    };
    let b = Record::encode(&recs, &labels);
    let f = d.path().join("r.parquet");
    let meta = servebench::meta::Meta::for_output(&servebench::schema::REQUESTS, false);
    servebench::io::write_all(Some(&f), None, b.schema(), &meta, &[b]).unwrap();
    let s = summary(d.path(), "s.parquet", &f, None);
    let v = |c: &str| value(&s, c).unwrap_or_else(|| panic!("{c} is null"));
    // events: 1 4 2 1 | 1 3 1 -> 13 tokens over 7 events
    assert!((v("tokens_per_event_mean") - 13.0 / 7.0).abs() < 1e-12);
    assert_eq!(v("tokens_per_event_p50"), 1.0);
    assert_eq!(v("tokens_per_event_max"), 4.0);
    assert!((v("multi_token_event_pct") - 300.0 / 7.0).abs() < 1e-9);
    // per-token gaps: 2.5 5 20 4 6 -> mean 7.5, median 5; per-event gaps: 10 10 20 12 6
    assert!((v("itl_token_mean_ms") - 7.5).abs() < 1e-12);
    assert_eq!(v("itl_token_p50_ms"), 5.0);
    assert!((v("itl_event_mean_ms") - 11.6).abs() < 1e-12);
    assert_eq!(v("itl_event_p50_ms"), 10.0);
    // the per-event ITL is unchanged: every chunk gap of all three requests (vLLM's definition)
    let itl = [10.0, 10.0, 20.0, 12.0, 0.0, 0.0, 6.0, 10.0, 10.0];
    assert!((v("itl_mean_ms") - itl.iter().sum::<f64>() / 9.0).abs() < 1e-9);
    // only the request without counts: every column null
    let g = d.path().join("g.parquet");
    let b = Record::encode(&recs[2..], &labels);
    servebench::io::write_all(Some(&g), None, b.schema(), &meta, &[b]).unwrap();
    let s = summary(d.path(), "s2.parquet", &g, None);
    for c in ["tokens_per_event_mean", "multi_token_event_pct", "itl_token_p50_ms"] {
        assert_eq!(value(&s, c), None, "{c}");
    }
}
