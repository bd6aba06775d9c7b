use crate::common::*;

/// Every column of every contract reads in DuckDB with the documented type.
#[test]
fn duckdb_reads_our_files_with_the_documented_types() {
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "poisson",
            "--rate",
            "50",
            "--count",
            "20",
            "--output-len",
            "8",
            "--prompts",
        ],
    );
    let r = d.path().join("r.parquet");
    ok(cmd("replay").arg(&t).args(["--url", &m.url, "--quiet", "-o"]).arg(&r));
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&r).arg("-o").arg(&s));
    for (file, contract) in [
        (&t, &servebench::schema::TRACE),
        (&r, &servebench::schema::REQUESTS),
        (&s, &servebench::schema::SUMMARY),
    ] {
        let out = duckdb(&format!(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{}')",
            file.display()
        ));
        for c in contract.columns {
            let want = format!("('{}', '{}')", c.name, c.ty.duckdb());
            assert!(out.contains(&want), "{}: {want} not in\n{out}", contract.name);
        }
        assert_eq!(out.lines().count(), contract.columns.len());
    }
    // provenance is readable
    let kv = duckdb(&format!(
        "SELECT decode(key), decode(value) FROM parquet_kv_metadata('{}') WHERE decode(key) = 'servebench.schema'",
        r.display()
    ));
    assert!(kv.contains("requests/1"), "{kv}");
    // DuckDB and agg agree on percentiles (same method)
    let q = duckdb(&format!(
        "SELECT quantile_cont(ttft_ms, 0.9) FROM '{}' WHERE status = 'ok' AND NOT warmup",
        r.display()
    ));
    let dq: f64 = q
        .trim()
        .trim_matches(|c| c == '(' || c == ')' || c == ',')
        .parse()
        .unwrap();
    let ours = column_f64(&s, "ttft_p90_ms")[0].unwrap();
    assert!((dq - ours).abs() < 1e-9, "{dq} vs {ours}");
}

/// A trace written by DuckDB (signed integers, Snappy) is read as well as our own.
#[test]
fn duckdb_written_trace_replays() {
    let m = Mock::start(&["--ttft-ms", "2", "--itl-ms", "1"]);
    let d = tmp();
    let t = d.path().join("duck.parquet");
    duckdb(&format!(
        "COPY (SELECT i::BIGINT AS request_id, i * 0.01 AS arrival_s, 16::INTEGER AS input_tokens, 4::SMALLINT AS output_tokens, 'duck' AS source FROM range(20) t(i)) TO '{}' (FORMAT parquet, COMPRESSION snappy)",
        t.display()
    ));
    let r = d.path().join("r.parquet");
    ok(cmd("replay").arg(&t).args(["--url", &m.url, "--quiet", "-o"]).arg(&r));
    assert_eq!(rows(&r), 20);
    assert!(column_text(&r, "status").iter().all(|s| s == "ok"));
    // a negative id is reported with its row number
    let bad = d.path().join("bad.parquet");
    duckdb(&format!(
        "COPY (SELECT (i - 3)::BIGINT AS request_id, i * 0.01 AS arrival_s, 16 AS input_tokens, 4 AS output_tokens FROM range(5) t(i)) TO '{}' (FORMAT parquet)",
        bad.display()
    ));
    let o = run(cmd("replay")
        .arg(&bad)
        .args(["--url", &m.url, "--quiet", "--format", "csv"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("row 1") && stderr(&o).contains("request_id"),
        "{}",
        stderr(&o)
    );
}
