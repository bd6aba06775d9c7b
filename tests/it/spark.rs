//! docs/queries.md's Spark SQL, run by Spark (pyspark in local mode, Debian's JRE) on a real
//! 4-shard dataset that holds a killed shard's journal, and checked against agg: the same
//! counts and the same exact percentiles.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// What a killed or running shard leaves in the dataset: its journal, named so that
/// Hadoop-style readers (Spark) skip it, as they skip every name starting with `_` or `.`.
const JOURNAL: &str = "_part-killed.parquet.partial";

/// Runs every statement in one Spark session (local[2], small memory, loopback only) and
/// prints, per statement, its columns and rows as one JSON line; then the view's types.
const SPARK_PY: &str = r#"
import json, sys
from pyspark.sql import SparkSession
stmts = json.load(open(sys.argv[1]))
spark = (SparkSession.builder.master("local[2]").appName("servebench-queries")
         .config("spark.driver.memory", "512m")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for sql in stmts:
    df = spark.sql(sql)
    rows = [[None if v is None else (v if isinstance(v, (bool, int, float, str)) else str(v)) for v in r] for r in df.collect()]
    print(json.dumps({"cols": df.columns, "rows": rows}))
print(json.dumps({"types": spark.table("requests").dtypes}))
spark.stop()
"#;

/// The statements of docs/queries.md's `sql spark` block, `$DATASET` filled in.
fn documented_spark_sql(dataset: &Path) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/queries.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```sql spark\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 1, "docs/queries.md: one ```sql spark block expected");
    blocks[0]
        .replace("$DATASET", &dataset.to_string_lossy())
        .split(';')
        .map(str::trim)
        .filter(|s| s.lines().any(|l| !l.trim().is_empty() && !l.trim().starts_with("--")))
        .map(str::to_string)
        .collect()
}

/// One statement's result: its column names and rows.
type Table = (Vec<String>, Vec<Vec<Value>>);

/// Run the statements with pyspark; returns each statement's result and the view's column
/// types.
fn spark(stmts: &[String], dir: &Path) -> (Vec<Table>, BTreeMap<String, String>) {
    let f = dir.join("stmts.json");
    std::fs::write(&f, serde_json::to_vec(stmts).unwrap()).unwrap();
    let mut child = Command::new(python())
        .args(["-c", SPARK_PY])
        .arg(&f)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    // startup is 10-30 s; a hung JVM must not hang the suite
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("Spark did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "Spark failed. It needs pyspark in the test venv and a Java 17+ runtime: `make venv spark-deps` \
         (or `make test`) installs both.\n{err}"
    );
    let mut results = Vec::new();
    let mut types = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(t) = v.get("types") {
            for p in t.as_array().unwrap() {
                types.insert(p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string());
            }
            continue;
        }
        let cols = v["cols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let rows = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect();
        results.push((cols, rows));
    }
    assert_eq!(results.len(), stmts.len(), "one result per statement:\n{err}");
    (results, types)
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        // decimals come as text
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        "{what}: Spark {a} vs agg {b}"
    );
}

/// Run a replay into DIR as `-o DIR/out.parquet`, kill it once its journal holds rows, and
/// return the journal it left (whatever replay names it: the one file in DIR but out.parquet).
fn killed_journal(m: &Mock, t: &Path, dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = cmd("replay")
        .arg(t)
        .args(["--url", &m.url, "--quiet", "-o"])
        .arg(dir.join("out.parquet"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut first: Option<(std::path::PathBuf, u64)> = None;
    let journal = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "replay left no journal with rows"
        );
        let found = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().is_some_and(|n| n != "out.parquet"));
        if let Some(p) = found {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            match &first {
                // the journal starts with its schema; it grew: rows were flushed
                Some((_, l0)) if len > *l0 => break p,
                None => first = Some((p, len)),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    journal
}

#[test]
fn spark_runs_the_documented_queries_on_a_sharded_dataset_with_a_journal() {
    let m = Mock::start(&["--sim", "--fault", "http-500:0.1", "--fault-seed", "3"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "poisson",
            "--rate",
            "100",
            "--count",
            "160",
            "--input-len",
            "64",
            "--output-len",
            "12",
            "--seed",
            "5",
        ],
    );
    let ds = d.path().join("runs/sharded");
    replay_4_shards(&t, &m.url, &ds);
    // a shard killed mid-run: its journal (real rows) stays in the dataset
    let slow = trace(
        d.path(),
        "slow.parquet",
        &["constant", "--rate", "20", "--count", "400", "--output-len", "4"],
    );
    let j = killed_journal(&m, &slow, &d.path().join("killed"));
    std::fs::copy(&j, ds.join("shard=3").join(JOURNAL)).unwrap();

    // agg, over all rows (the journal skipped)
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&ds).arg("-o").arg(&s));
    assert_eq!(rows(&s), 1, "one group across shards");
    let a = |c: &str| column_f64(&s, c)[0].unwrap_or_else(|| panic!("agg's {c} is null"));
    let (n_ok, n_err) = (a("n_ok"), a("n_http_error"));
    assert_eq!(n_ok + n_err, 160.0);
    assert!(n_err > 0.0, "the run should hold some failures");

    let stmts = documented_spark_sql(&ds);
    assert!(
        stmts[0].starts_with("CREATE OR REPLACE TEMPORARY VIEW requests"),
        "{}",
        stmts[0]
    );
    assert_eq!(stmts.len(), 5, "{stmts:#?}");
    let (results, types) = spark(&stmts, d.path());
    // what docs/queries.md says of unsigned columns: UINT_64 as decimal(20,0), UINT_32 as bigint
    assert_eq!(
        types.get("request_id").map(String::as_str),
        Some("decimal(20,0)"),
        "{types:?}"
    );
    assert_eq!(
        types.get("input_tokens").map(String::as_str),
        Some("bigint"),
        "{types:?}"
    );
    assert_eq!(types.get("shard").map(String::as_str), Some("int"), "{types:?}");

    let mut checked = 0;
    for (cols, rows) in &results[1..] {
        assert!(!rows.is_empty(), "no rows for {cols:?}");
        let at = |r: &Vec<Value>, c: &str| -> f64 { num(&r[cols.iter().position(|x| x == c).unwrap()]) };
        if cols.contains(&"ttft_p50_ms".to_string()) {
            assert_eq!(rows.len(), 1, "{rows:?}");
            let r = &rows[0];
            assert_eq!(at(r, "n"), n_ok);
            for c in ["ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "e2e_p99_ms"] {
                close(at(r, c), a(c), c);
            }
            checked += 1;
        } else if cols.contains(&"output_tok_per_s".to_string()) {
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(at(&rows[0], "ok"), n_ok);
            close(at(&rows[0], "duration_s"), a("duration_s"), "duration_s");
            close(
                at(&rows[0], "output_tok_per_s"),
                a("output_tok_per_s"),
                "output_tok_per_s",
            );
            checked += 1;
        } else if cols.contains(&"ids".to_string()) {
            // every request once; shards and statuses in order (ORDER BY)
            let total: f64 = rows.iter().map(|r| at(r, "n")).sum();
            let ids: f64 = rows.iter().map(|r| at(r, "ids")).sum();
            assert_eq!((total, ids), (160.0, 160.0), "{rows:?}");
            let ok: f64 = rows.iter().filter(|r| r[1] == "ok").map(|r| at(r, "n")).sum();
            assert_eq!(ok, n_ok);
            let keys: Vec<(i64, String)> = rows
                .iter()
                .map(|r| (at(r, "shard") as i64, r[1].as_str().unwrap().to_string()))
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "ORDER BY shard, status");
            assert_eq!(keys.iter().map(|k| k.0).max(), Some(3));
            checked += 1;
        } else if cols.contains(&"itl_p50_ms".to_string()) {
            assert_eq!(rows.len(), 1, "{rows:?}");
            for c in ["itl_p50_ms", "itl_p99_ms"] {
                close(at(&rows[0], c), a(c), c);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "every documented Spark query checked: {results:?}");
}
