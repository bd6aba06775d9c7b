use crate::common::*;

#[test]
fn agg_counts_and_percentiles_match_the_rows() {
    let m = Mock::start(&["--ttft-ms", "20", "--itl-ms", "2"]);
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "30", "--output-len", "16"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &m.url,
            "--concurrency",
            "5",
            "--label",
            "x",
            "--warmup",
            "3",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    assert_eq!(rows(&out), 33, "30 rows plus 3 warm-up rows");
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&out).args(["--slo", "ttft=1000ms", "-o"]).arg(&s));
    assert_eq!(rows(&s), 1);
    let get = |c: &str| column_f64(&s, c)[0];
    assert_eq!(get("n_requests"), Some(30.0));
    assert_eq!(get("n_ok"), Some(30.0));
    // the median by hand from the rows (warm-up rows excluded)
    let warm = column_text(&out, "warmup");
    let mut ttft: Vec<f64> = column_f64(&out, "ttft_ms")
        .into_iter()
        .zip(warm)
        .filter(|(_, w)| w == "false")
        .map(|(v, _)| v.unwrap())
        .collect();
    ttft.sort_by(|a, b| a.total_cmp(b));
    let want = servebench::stats::percentile_sorted(&ttft, 0.5).unwrap();
    assert!((get("ttft_p50_ms").unwrap() - want).abs() < 1e-9);
    assert_eq!(get("goodput_req_per_s"), get("req_per_s"));
    let lo = get("ttft_p50_ci_lo_ms").unwrap();
    let hi = get("ttft_p50_ci_hi_ms").unwrap();
    assert!(lo <= want && want <= hi, "{lo} {want} {hi}");
    // markdown for people
    let o = ok(cmd("agg").arg(&out).args(["--format", "md"]));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("| x |") && md.contains("TTFT p50 ms"), "{md}");
}

#[test]
fn error_rate_gate_exits_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "4"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--api",
            "chat",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    let o = run(cmd("agg")
        .arg(&out)
        .args(["--max-error-rate", "0.1", "--format", "csv"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.contains("connect_error") || csv.lines().count() == 2);
}
