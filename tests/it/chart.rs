use crate::common::*;

#[test]
fn charts_from_a_summary() {
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    for c in ["1", "4"] {
        let t = trace(
            d.path(),
            &format!("t{c}.parquet"),
            &["batch", "--count", "8", "--output-len", "8"],
        );
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--concurrency", c, "--label", "m", "--quiet", "-o"])
            .arg(d.path().join(format!("r{c}.parquet"))));
    }
    let s = d.path().join("s.parquet");
    ok(cmd("agg")
        .arg(d.path().join("r1.parquet"))
        .arg(d.path().join("r4.parquet"))
        .arg("-o")
        .arg(&s));
    let cd = d.path().join("charts");
    ok(cmd("chart").arg(&s).arg("-o").arg(&cd));
    for f in [
        "throughput-vs-concurrency.png",
        "throughput-vs-concurrency.svg",
        "ttft-p50-vs-concurrency.png",
    ] {
        let p = cd.join(f);
        let bytes = std::fs::read(&p).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(bytes.len() > 5000, "{f} too small");
    }
    let png = std::fs::read(cd.join("throughput-vs-concurrency.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(cd.join("throughput-vs-concurrency.svg")).unwrap();
    assert!(svg.contains("Output throughput") && svg.contains("concurrent users"));
    // a requests file is not a summary
    let o = run(cmd("chart").arg(d.path().join("r1.parquet")).arg("-o").arg(&cd));
    assert_eq!(o.status.code(), Some(2));
}

/// An open-loop run whose trace declared no rate (pyarrow, DuckDB) has a summary with neither
/// concurrency nor rate_rps: chart draws what such a summary supports (percentiles per group,
/// and distributions from the requests) instead of refusing.
#[test]
fn charts_from_a_summary_without_a_load_level() {
    use servebench::schema::{Record, Rows, RunLabels, Status, tpot};
    use servebench::trace::TraceRow;
    let d = tmp();
    let t0 = 1_700_000_000_000_000i64;
    let recs: Vec<Record> = (0..40u64)
        .map(|i| {
            let mut r = Record::not_sent(&TraceRow::new(i, 0.0, 100, 4), Some(t0), "");
            let ttft = 20.0 + (i * 7 % 13) as f64;
            r.status = Status::Ok;
            r.error = None;
            r.sent_at_us = Some(t0 + i as i64 * 50_000);
            r.sched_lag_ms = Some(0.0);
            r.chunk_times_ms = (0..4).map(|k| ttft + 5.0 * k as f64).collect();
            r.ttft_ms = Some(ttft);
            r.e2e_ms = Some(ttft + 15.0);
            r.tpot_ms = tpot(ttft, ttft + 15.0, 4);
            r.done_at_us = r.sent_at_us.map(|s| s + ((ttft + 15.0) * 1000.0) as i64);
            r.output_tokens = 4;
            r
        })
        .collect();
    let labels = RunLabels {
        label: "open".into(),
        run_id: "r".into(),
        api: "chat".into(),
        ..Default::default()
    };
    let b = Record::encode(&recs, &labels);
    let r = d.path().join("r.parquet");
    let meta = servebench::meta::Meta::for_output(&servebench::schema::REQUESTS, false);
    servebench::io::write_all(Some(&r), None, b.schema(), &meta, &[b]).unwrap();
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&r).arg("-o").arg(&s));
    assert_eq!(column_f64(&s, "concurrency"), vec![None]);
    assert_eq!(column_f64(&s, "rate_rps"), vec![None]);
    let cd = d.path().join("charts");
    let o = run(cmd("chart").arg(&s).arg("-o").arg(&cd));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in ["percentiles-ttft.png", "percentiles-tpot.svg", "percentiles-e2e.png"] {
        let bytes = std::fs::read(cd.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(bytes.len() > 2000, "{f} too small");
    }
    let svg = std::fs::read_to_string(cd.join("percentiles-ttft.svg")).unwrap();
    assert!(
        svg.contains("Percentiles of time to first token") && svg.lines().any(|l| l.trim() == "open"),
        "{svg}"
    );
    // with the requests: box plots and CDFs of all requests
    ok(cmd("chart").arg(&s).arg("--requests").arg(&r).arg("-o").arg(&cd));
    for f in ["box-ttft-all.png", "cdf-ttft-all.png"] {
        assert!(cd.join(f).exists(), "{f} missing");
    }
}
