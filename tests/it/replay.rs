use std::process::Stdio;

use crate::common::*;

fn stats(path: &std::path::Path, col: &str) -> Vec<f64> {
    let mut v: Vec<f64> = column_f64(path, col).into_iter().flatten().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn p50(v: &[f64]) -> f64 {
    servebench::stats::percentile_sorted(v, 0.5).unwrap()
}

fn itl(path: &std::path::Path) -> Vec<f64> {
    let mut gaps = Vec::new();
    for b in read(path) {
        let a = b.column(b.schema().index_of("chunk_times_ms").unwrap());
        for i in 0..b.num_rows() {
            let l = servebench::cols::list_at(a.as_ref(), i).unwrap();
            let v: Vec<f64> = (0..l.len())
                .map(|j| servebench::cols::f64_at(l.as_ref(), j).unwrap())
                .collect();
            gaps.extend(v.windows(2).map(|w| w[1] - w[0]));
        }
    }
    gaps.sort_by(|a, b| a.total_cmp(b));
    gaps
}

/// TTFT and ITL against an exactly known server (issue: within 2 ms / 1 ms at 1 and 64).
#[test]
fn timing_exact_mock_at_1_and_64_streams() {
    let m = Mock::start(&["--ttft-ms", "50", "--itl-ms", "10"]);
    let d = tmp();
    for (c, n) in [(1u32, 12u32), (64, 192)] {
        let t = trace(
            d.path(),
            &format!("t{c}.parquet"),
            &[
                "batch",
                "--count",
                &n.to_string(),
                "--input-len",
                "64",
                "--output-len",
                "128",
            ],
        );
        let out = d.path().join(format!("r{c}.parquet"));
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--concurrency", &c.to_string(), "--quiet", "-o"])
            .arg(&out));
        assert_eq!(rows(&out), n as usize);
        assert!(column_text(&out, "status").iter().all(|s| s == "ok"));
        assert!(column_text(&out, "output_tokens").iter().all(|s| s == "128"));
        let ttft = p50(&stats(&out, "ttft_ms"));
        let gap = p50(&itl(&out));
        assert!((ttft - 50.0).abs() < 2.0, "TTFT p50 at {c} streams: {ttft}");
        assert!((gap - 10.0).abs() < 1.0, "ITL p50 at {c} streams: {gap}");
    }
}

#[test]
fn every_row_recorded_when_the_server_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["poisson", "--rate", "200", "--count", "50"]);
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
    assert_eq!(rows(&out), 50);
    assert!(column_text(&out, "status").iter().all(|s| s == "connect_error"));
    let mut ids: Vec<String> = column_text(&out, "request_id");
    ids.sort_by_key(|s| s.parse::<u64>().unwrap());
    assert_eq!(ids, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    // closed loop too
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--api",
            "chat",
            "--concurrency",
            "4",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    assert_eq!(rows(&out), 50);
}

#[test]
fn tracegen_pipes_into_replay() {
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    let out = d.path().join("r.parquet");
    let mut tg = cmd("tracegen")
        .args(["poisson", "--rate", "100", "--count", "40", "--output-len", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = run(cmd("replay")
        .args(["--url", &m.url, "--label", "piped", "-o"])
        .arg(&out)
        .stdin(tg.stdout.take().unwrap()));
    assert!(tg.wait().unwrap().success());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows(&out), 40);
    assert!(column_text(&out, "label").iter().all(|s| s == "piped"));
    assert!(column_text(&out, "rate_rps").iter().all(|s| s == "100.0"));
    // and replay's own output flows over a pipe as Arrow IPC
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "5", "--output-len", "4"]);
    let mut rp = cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--concurrency", "2", "--quiet"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ag = run(cmd("agg")
        .args(["-", "--format", "csv"])
        .stdin(rp.stdout.take().unwrap()));
    assert!(rp.wait().unwrap().success());
    assert!(ag.status.success(), "{}", stderr(&ag));
    let csv = String::from_utf8_lossy(&ag.stdout);
    assert!(csv.lines().count() == 2, "{csv}");
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    let d = tmp();
    let junk = d.path().join("junk.parquet");
    std::fs::write(&junk, "TIMESTAMP,ContextTokens\n1,2\n").unwrap();
    let missing_col = d.path().join("m.csv");
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "3"]);
    // a trace without output_tokens: rewrite via the library
    let batches = read(&t);
    let b = &batches[0];
    let keep: Vec<usize> = (0..b.num_columns())
        .filter(|&i| b.schema().field(i).name() != "output_tokens")
        .collect();
    let nb = b.project(&keep).unwrap();
    let mc = d.path().join("nocol.parquet");
    servebench::io::write_all(Some(&mc), None, nb.schema(), &servebench::meta::Meta::default(), &[nb]).unwrap();
    let _ = missing_col;
    for (path, want) in [
        (d.path().join("nope.parquet"), "no such file"),
        (junk.clone(), "not a Parquet or Arrow IPC file"),
        (mc.clone(), "output_tokens"),
    ] {
        let o = run(cmd("replay")
            .arg(&path)
            .args(["--url", "http://127.0.0.1:9", "--format", "csv"]));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(want), "{want}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        assert!(!e.contains("panicked"));
        let o = run(cmd("agg").arg(&path).args(["--format", "csv"]));
        assert_eq!(o.status.code(), Some(2), "agg {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    let o = run(cmd("replay").arg(&t).args(["--url", "https://x", "--format", "csv"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("https"), "{}", stderr(&o));
}
