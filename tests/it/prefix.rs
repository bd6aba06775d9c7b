//! Prefix caching end to end: tracegen's shared-prefix workload, the mock's simulated prefix
//! cache (TTFT falls when prompts share a prefix), replay's cached_tokens in every protocol,
//! agg's hit rates (usage and engine counters) and the report's column.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

fn trace_rows(p: &Path) -> Vec<servebench::trace::TraceRow> {
    servebench::trace::TraceReader::open(&p.to_string_lossy())
        .unwrap()
        .read_all()
        .unwrap()
}

fn opt_u64(p: &Path, col: &str) -> Vec<Option<u64>> {
    column_f64(p, col).into_iter().map(|v| v.map(|x| x as u64)).collect()
}

#[test]
fn tracegen_shared_prefix_groups_popularity_and_order() {
    let d = tmp();
    let args = |order: &'static str| {
        vec![
            "poisson",
            "--rate",
            "10",
            "--count",
            "400",
            "--prefix-groups",
            "4",
            "--prefix-len",
            "1024",
            "--prefix-popularity",
            "zipf:1",
            "--prefix-order",
            order,
            "--input-len",
            "uniform:100:0.5",
            "--seed",
            "3",
        ]
    };
    let a = trace(d.path(), "a.parquet", &args("random"));
    let again = trace(d.path(), "again.parquet", &args("random"));
    let rows = trace_rows(&a);
    assert!(rows == trace_rows(&again), "not reproducible");
    assert_eq!(rows.len(), 400);
    // a group is named by its first block; every row: 2 shared blocks, then its own
    let mut groups: HashMap<u64, Vec<&servebench::trace::TraceRow>> = HashMap::new();
    for r in &rows {
        let b = r.prefix_blocks.as_ref().expect("prefix_blocks");
        let suffix = r.input_tokens - 1024;
        assert!((50..=150).contains(&suffix), "{}", r.input_tokens);
        assert_eq!(b.len(), 2 + 1, "{b:?}");
        groups.entry(b[0]).or_default().push(r);
    }
    assert_eq!(groups.len(), 4);
    let mut own = std::collections::HashSet::new();
    for v in groups.values() {
        let shared = &v[0].prefix_blocks.as_ref().unwrap()[..2];
        for r in v {
            let b = r.prefix_blocks.as_ref().unwrap();
            assert_eq!(&b[..2], shared);
            assert!(own.insert(b[2]), "a suffix block is shared");
        }
    }
    // Zipf(1) over 4 groups: shares 48%, 24%, 16%, 12%
    let mut sizes: Vec<usize> = groups.values().map(Vec::len).collect();
    sizes.sort_unstable();
    assert!(sizes[3] > 150 && sizes[0] < 75, "{sizes:?}");
    let group_seq = |p: &Path| -> Vec<u64> {
        trace_rows(p)
            .iter()
            .map(|r| r.prefix_blocks.as_ref().unwrap()[0])
            .collect()
    };
    let seq = group_seq(&a);
    let changes = |s: &[u64]| s.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(changes(&seq) > 100, "random order interleaves");
    // the same groups in the other orders: back to back, or one of each in turn
    let g = group_seq(&trace(d.path(), "g.parquet", &args("grouped")));
    assert_eq!(changes(&g), 3);
    let rr = group_seq(&trace(d.path(), "rr.parquet", &args("round-robin")));
    let first4: std::collections::HashSet<u64> = rr[..4].iter().copied().collect();
    assert_eq!(first4.len(), 4);
    for s in [&g, &rr] {
        let mut x = s.to_vec();
        let mut y = seq.clone();
        x.sort_unstable();
        y.sort_unstable();
        assert_eq!(x, y, "the orders keep every group's count");
    }
    // wrong options say what to do
    for (bad, want) in [
        (
            vec!["batch", "--count", "5", "--prefix-groups", "2", "--prefix-len", "1000"],
            "whole number of 512-token",
        ),
        (
            vec![
                "poisson",
                "--rate",
                "1",
                "--duration",
                "10s",
                "--prefix-groups",
                "2",
                "--prefix-order",
                "grouped",
            ],
            "--count",
        ),
        (
            vec!["batch", "--count", "5", "--prefix-groups", "2", "--prompts"],
            "--prompts",
        ),
    ] {
        let o = run(cmd("tracegen").args(&bad).args(["--format", "csv"]));
        assert!(!o.status.success(), "{bad:?}");
        assert!(stderr(&o).contains(want), "{bad:?}: {}", stderr(&o));
    }
}

/// Replay a trace against a mock (one user, so each request finds the cache as the previous
/// one left it); returns the requests file.
fn replay(dir: &Path, name: &str, trace: &Path, url: &str, api: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    ok(cmd("replay")
        .arg(trace)
        .args([
            "--url",
            url,
            "--api",
            api,
            "--model",
            "mock-llm",
            "--concurrency",
            "1",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Prompts of one group share their first P tokens of text exactly (the mock finds exactly P
/// cached tokens for every request after its group's first), the cached prefix skips prefill
/// (TTFT falls far below that of the same load without the cache), and agg's hit rate from
/// usage and from the engine's counters agree with what the trace implies.
#[test]
fn a_shared_prefix_hits_the_mock_cache_and_cuts_ttft() {
    let d = tmp();
    let (n, groups, p, s) = (20usize, 2usize, 4096u64, 64u64);
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "batch",
            "--count",
            "20",
            "--prefix-groups",
            "2",
            "--prefix-len",
            "4096",
            "--input-len",
            "64",
            "--output-len",
            "4",
            "--seed",
            "5",
        ],
    );
    let sim = ["--sim", "--sim-prefill-per-token-ms", "0.02"];
    let on = Mock::start(&[&sim[..], &["--sim-prefix-cache-tokens", "262144"]].concat());
    let off = Mock::start(&sim); // no cache by default
    let em = d.path().join("engine.parquet");
    let mut mon = cmd("enginemon")
        .args(["--url", &on.url, "--interval", "50ms", "--quiet", "-o"])
        .arg(&em)
        .spawn()
        .unwrap();
    wait_for("enginemon's journal", Duration::from_secs(30), || {
        journal_rows(&d.path().join("_engine.parquet.partial")) > 0
    });
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| replay(d.path(), "on.parquet", &t, &on.url, "chat"));
        let b = sc.spawn(|| replay(d.path(), "off.parquet", &t, &off.url, "chat"));
        (a.join().unwrap(), b.join().unwrap())
    });
    std::thread::sleep(Duration::from_millis(150)); // one more scrape after the last request
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(mon.wait().unwrap().success());

    // every request after its group's first finds exactly the shared P tokens
    let rows = trace_rows(&t);
    let ids = opt_u64(&a, "request_id");
    let cached = opt_u64(&a, "cached_tokens");
    let prompt = opt_u64(&a, "server_input_tokens");
    let mut seen = std::collections::HashSet::new();
    let (mut sum_c, mut sum_p) = (0u64, 0u64);
    let mut by_id: Vec<_> = ids.iter().zip(&cached).zip(&prompt).collect();
    by_id.sort_by_key(|x| *x.0.0); // one user: sent in the trace's order
    for ((id, c), pt) in by_id {
        let row = rows.iter().find(|r| Some(r.request_id) == *id).unwrap();
        assert_eq!(*pt, Some(p + s), "the mock counts the prompt replay built");
        let first = seen.insert(row.prefix_blocks.as_ref().unwrap()[0]);
        assert_eq!(*c, Some(if first { 0 } else { p }), "request {id:?}");
        sum_c += c.unwrap();
        sum_p += pt.unwrap();
    }
    assert_eq!(seen.len(), groups);
    assert_eq!(metric(&on.url, "vllm:prefix_cache_hits_total", None) as u64, sum_c);
    assert_eq!(metric(&on.url, "vllm:prefix_cache_queries_total", None) as u64, sum_p);
    // without the cache nothing is reported
    assert!(opt_u64(&b, "cached_tokens").iter().all(Option::is_none));

    // the cached prefix is not prefilled: about 7 ms against 90 ms (a wide margin)
    let ttft = |f: &Path| median(column_f64(f, "ttft_ms").into_iter().flatten().collect());
    let (t_on, t_off) = (ttft(&a), ttft(&b));
    assert!(
        t_on * 3.0 < t_off,
        "median TTFT {t_on} ms with the cache, {t_off} ms without"
    );
    eprintln!("median TTFT: {t_on:.1} ms with the prefix cache, {t_off:.1} ms without");

    // agg: the usage hit rate, beside the engine's
    let want = 100.0 * ((n - groups) as f64 * p as f64) / (n as f64 * (p + s) as f64);
    let sa = d.path().join("sa.parquet");
    ok(cmd("agg").arg(&a).arg("--engine-metrics").arg(&em).arg("-o").arg(&sa));
    let usage = column_f64(&sa, "usage_cache_hit_pct")[0].unwrap();
    assert!((usage - want).abs() < 1e-9, "{usage} vs {want}");
    let engine = column_f64(&sa, "prefix_cache_hit_pct")[0].expect("the engine's hit rate");
    assert!((engine - want).abs() < 5.0, "engine {engine} vs {want}");
    eprintln!("hit rate: {usage:.2}% from usage, {engine:.2}% from the engine's counters, {want:.2}% expected");
    let sb = d.path().join("sb.parquet");
    ok(cmd("agg").arg(&b).arg("-o").arg(&sb));
    assert_eq!(column_f64(&sb, "usage_cache_hit_pct")[0], None);
    // the table shows it where measured
    let md = String::from_utf8(ok(cmd("agg").arg(&a).args(["--format", "md"])).stdout).unwrap();
    let cell = format!("| {} |", servebench::io::fmt_num(usage));
    assert!(md.contains("cache hit % (usage)") && md.contains(&cell), "{cell}: {md}");
    let md = String::from_utf8(ok(cmd("agg").arg(&b).args(["--format", "md"])).stdout).unwrap();
    assert!(!md.contains("cache hit"), "{md}");
    // and so does the report
    let runs = d.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    std::fs::copy(&a, runs.join("on.parquet")).unwrap();
    let rep = d.path().join("report");
    ok(cmd("report")
        .arg(&runs)
        .arg("-o")
        .arg(&rep)
        .args(["--bootstrap", "100"]));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains("cache hit % (usage)"), "{md}");
}

/// The mock reports the cached tokens in each engine's own shape, and replay reads them
/// from each: OpenAI completions usage, SGLang's meta_info, llama.cpp's timings.
#[test]
fn cached_tokens_in_every_protocol_of_the_mock() {
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "batch",
            "--count",
            "3",
            "--prefix-groups",
            "1",
            "--prefix-len",
            "512",
            "--input-len",
            "20",
            "--output-len",
            "3",
        ],
    );
    // the cache is the simulated mode's: the exact mode refuses it
    let o = run(cmd("mock-engine").args(["--port", "0", "--sim-prefix-cache-tokens", "1024"]));
    assert!(
        !o.status.success() && stderr(&o).contains("add --sim"),
        "{}",
        stderr(&o)
    );
    for api in ["completions", "sglang", "llamacpp"] {
        let m = Mock::start(&["--sim", "--sim-prefix-cache-tokens", "65536"]);
        let out = replay(d.path(), &format!("{api}.parquet"), &t, &m.url, api);
        let mut c: Vec<(Option<u64>, Option<u64>)> = opt_u64(&out, "request_id")
            .into_iter()
            .zip(opt_u64(&out, "cached_tokens"))
            .collect();
        c.sort();
        let c: Vec<Option<u64>> = c.into_iter().map(|x| x.1).collect();
        assert_eq!(c, [Some(0), Some(512), Some(512)], "{api}");
    }
}

/// The cache is least-recently-used and bounded: with room for less than two prompts, a
/// request finds its prefix only right after another request of its group, so the grouped
/// order hits where round-robin, on the same groups, never does.
#[test]
fn a_small_cache_evicts_the_least_recently_used_prefix() {
    let d = tmp();
    let mut hits = Vec::new();
    for order in ["grouped", "round-robin"] {
        let t = trace(
            d.path(),
            &format!("{order}.parquet"),
            &[
                "batch",
                "--count",
                "16",
                "--prefix-groups",
                "3",
                "--prefix-len",
                "1024",
                "--input-len",
                "64",
                "--output-len",
                "2",
                "--prefix-order",
                order,
                "--seed",
                "2",
            ],
        );
        // 2048 tokens: 128 blocks; a prompt of 1088 tokens is 68 of them
        let m = Mock::start(&["--sim", "--sim-prefix-cache-tokens", "2048"]);
        let out = replay(d.path(), &format!("{order}-r.parquet"), &t, &m.url, "completions");
        let groups: HashMap<u64, u64> = trace_rows(&t)
            .iter()
            .map(|r| (r.request_id, r.prefix_blocks.as_ref().unwrap()[0]))
            .collect();
        let mut got: Vec<(u64, u64)> = opt_u64(&out, "request_id")
            .into_iter()
            .zip(opt_u64(&out, "cached_tokens"))
            .map(|(i, c)| (i.unwrap(), c.unwrap()))
            .collect();
        got.sort();
        assert_eq!(got[0].1, 0, "{order}: the first request finds nothing");
        for w in got.windows(2) {
            let same = groups[&w[0].0] == groups[&w[1].0];
            assert_eq!(w[1].1, if same { 1024 } else { 0 }, "{order}: request {}", w[1].0);
        }
        hits.push(got.iter().map(|x| x.1).sum::<u64>());
    }
    assert!(
        hits[0] >= 10 * 1024 && hits[1] < hits[0],
        "grouped {} vs round-robin {}",
        hits[0],
        hits[1]
    );
}
