//! Sharded replay: N processes, one dataset, every request exactly once; and the documented
//! DuckDB queries, run on that dataset.

use std::collections::BTreeMap;

use crate::common::*;

#[test]
fn four_shards_account_for_every_request_once_and_agree_with_one_run() {
    let m = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2"]);
    let d = tmp();
    // sessions too: whole sessions must stay in one shard
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "100", "--count", "200", "--output-len", "16"],
    );
    let ds = d.path().join("runs/big");
    replay_4_shards(&t, &m.url, &ds);
    let one = d.path().join("one.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--label", "sharded", "--quiet", "-o"])
        .arg(&one));

    // the dataset: 4 partitions, 200 distinct ids, each once
    let parts = servebench::io::expand_inputs(&[ds.to_string_lossy().to_string()]).unwrap();
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert!(parts.iter().all(|p| p.contains("shard=")));
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for p in &parts {
        for id in column_text(std::path::Path::new(p), "request_id") {
            *seen.entry(id.parse().unwrap()).or_default() += 1;
        }
        let meta = servebench::io::open(p).unwrap().meta;
        assert!(meta.get("servebench.shard").is_some_and(|s| s.ends_with("/4")));
        assert!(meta.get("servebench.start_at").is_some());
    }
    assert_eq!(seen.len(), 200);
    assert!(seen.values().all(|&n| n == 1), "a request appears twice");
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), (0..200).collect::<Vec<_>>());

    // statistics over all rows agree with the unsharded run
    let s_all = d.path().join("s_all.parquet");
    let s_one = d.path().join("s_one.parquet");
    ok(cmd("agg").arg(&ds).arg("-o").arg(&s_all));
    ok(cmd("agg").arg(&one).arg("-o").arg(&s_one));
    assert_eq!(rows(&s_all), 1, "one group across shards");
    let g = |f: &std::path::Path, c: &str| column_f64(f, c)[0].unwrap();
    assert_eq!(g(&s_all, "n_ok"), 200.0);
    assert_eq!(g(&s_one, "n_ok"), 200.0);
    assert!((g(&s_all, "ttft_p50_ms") - g(&s_one, "ttft_p50_ms")).abs() < 3.0);
    // the shards started together: the whole dataset spans about the trace's 2 s
    assert!(
        g(&s_all, "duration_s") < 3.0,
        "shards did not start together: {}",
        g(&s_all, "duration_s")
    );
    assert!((g(&s_all, "req_per_s") - g(&s_one, "req_per_s")).abs() / g(&s_one, "req_per_s") < 0.15);

    // the documented DuckDB queries run on the dataset
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/queries.md")).unwrap();
    let mut n = 0;
    for block in doc.split("```sql duckdb\n").skip(1) {
        let sql = block
            .split("```")
            .next()
            .unwrap()
            .replace("$DATASET", &ds.to_string_lossy());
        let out = duckdb(&sql);
        assert!(!out.trim().is_empty(), "no rows from:\n{sql}");
        n += 1;
        if sql.contains("count(DISTINCT request_id)") {
            let total: usize = out
                .lines()
                .map(|l| {
                    l.trim_matches(|c| c == '(' || c == ')')
                        .split(", ")
                        .nth(2)
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                })
                .sum();
            assert_eq!(total, 200, "{out}");
        }
    }
    assert!(n >= 5);
}

/// A killed shard leaves its journal inside the dataset, named so that Hadoop-style readers
/// (Spark, Hive: a leading `_`) and `*.parquet` globs (agg, DuckDB) skip it; `--recover`
/// still finds it and writes the part it stands for.
#[test]
fn a_killed_shards_journal_is_skipped_by_readers_and_recovers() {
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "100", "--count", "3000", "--output-len", "4"],
    );
    let ds = d.path().join("big");
    let done = trace(
        d.path(),
        "small.parquet",
        &["batch", "--count", "10", "--output-len", "2"],
    );
    ok(cmd("replay")
        .arg(&done)
        .args(["--url", &m.url, "--shard", "1/2", "--quiet", "--dataset"])
        .arg(&ds));
    let mut child = cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--shard", "0/2", "--quiet", "--dataset"])
        .arg(&ds)
        .spawn()
        .unwrap();
    let shard0 = ds.join("shard=0");
    let journal = || -> Option<std::path::PathBuf> {
        std::fs::read_dir(&shard0)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".partial"))
    };
    wait_for(
        "rows in the shard's journal",
        std::time::Duration::from_secs(30),
        || journal().is_some_and(|j| journal_rows(&j) > 0),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let j = journal().unwrap();
    let name = j.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("_part-") && name.ends_with(".parquet.partial"),
        "{name}"
    );
    // readers of the directory see the finished part only
    let parts = servebench::io::expand_inputs(&[ds.to_string_lossy().to_string()]).unwrap();
    assert_eq!(parts.len(), 1, "{parts:?}");
    ok(cmd("agg").arg(&ds).args(["--format", "csv"]));
    let n = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}/**/*.parquet', hive_partitioning = true)",
        ds.display()
    ));
    let expected = rows(std::path::Path::new(&parts[0]));
    assert_eq!(n.trim(), format!("({expected},)"));
    // --recover writes the part the journal stands for, beside it
    ok(cmd("replay").arg("--recover").arg(&j));
    assert!(!j.exists());
    let part = shard0.join(name.trim_start_matches('_').trim_end_matches(".partial"));
    assert!(rows(&part) > 0);
    let parts = servebench::io::expand_inputs(&[ds.to_string_lossy().to_string()]).unwrap();
    assert_eq!(parts.len(), 2, "{parts:?}");
}
