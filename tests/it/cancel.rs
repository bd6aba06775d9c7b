//! Users who give up (`replay --cancel`): rows cancelled by the client keep their partial
//! timings, agg counts them apart, and mock-engine sees every disconnect.

use crate::common::*;

fn chunk_counts(path: &std::path::Path) -> Vec<usize> {
    let mut out = Vec::new();
    for b in read(path) {
        let a = b.column(b.schema().index_of("chunk_times_ms").unwrap());
        for i in 0..b.num_rows() {
            out.push(servebench::io::cols::list_at(a.as_ref(), i).map_or(0, |l| l.len()));
        }
    }
    out
}

#[test]
fn users_who_give_up_are_cancelled_counted_apart_and_seen_by_the_server() {
    // 60-token streams of ~640 ms; half the users give up 100 ms after their first token
    let m = Mock::start(&["--ttft-ms", "50", "--itl-ms", "10"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["batch", "--count", "40", "--input-len", "16", "--output-len", "60"],
    );
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &m.url,
            "--concurrency",
            "20",
            "--cancel",
            "0.5:ttft+100ms",
            "--seed",
            "3",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    let status = column_text(&out, "status");
    let after = column_f64(&out, "cancel_after_ms");
    let ttft = column_f64(&out, "ttft_ms");
    let tokens = column_text(&out, "output_tokens");
    let chunks = chunk_counts(&out);
    let cancelled: Vec<usize> = (0..status.len()).filter(|&i| status[i] == "cancelled").collect();
    assert!(
        (10..=30).contains(&cancelled.len()),
        "{} of 40 cancelled at a share of 0.5",
        cancelled.len()
    );
    for i in 0..status.len() {
        match status[i].as_str() {
            "cancelled" => {
                // the plan: TTFT + 100 ms; partial timings kept, the stream cut short
                let (a, f) = (after[i].unwrap(), ttft[i].unwrap());
                assert!((a - f - 100.0).abs() < 1e-6, "row {i}: gave up at {a} ms, TTFT {f} ms");
                assert!(chunks[i] >= 1 && chunks[i] < 60, "row {i}: {} chunks", chunks[i]);
            }
            "ok" => assert_eq!(tokens[i], "60", "row {i}"),
            s => panic!("row {i}: status {s}"),
        }
    }
    // users who were not drawn have no plan at all
    let drawn = after.iter().filter(|a| a.is_some()).count();
    assert!(drawn >= cancelled.len());
    // the server saw each of them go
    wait_for(
        "the mock's disconnect count",
        std::time::Duration::from_secs(10),
        || metric(&m.url, "servebench_mock_client_disconnects_total", None) as usize == cancelled.len(),
    );
    // agg: counted apart, neither errors nor latencies
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&out).arg("-o").arg(&s));
    let n = |c: &str| column_f64(&s, c)[0].unwrap();
    assert_eq!(n("n_cancelled") as usize, cancelled.len());
    assert_eq!(n("n_gave_up") as usize, cancelled.len());
    assert_eq!(n("n_ok") as usize, 40 - cancelled.len());
    assert_eq!(n("error_rate"), 0.0);
    // latencies from the ok rows only: the mean E2E is theirs
    let e2e = column_f64(&out, "e2e_ms");
    let ok_e2e: Vec<f64> = (0..status.len())
        .filter(|&i| status[i] == "ok")
        .map(|i| e2e[i].unwrap())
        .collect();
    let mean = ok_e2e.iter().sum::<f64>() / ok_e2e.len() as f64;
    assert!(
        (n("e2e_mean_ms") - mean).abs() < 1e-6,
        "E2E mean {} vs the ok rows' {mean}",
        n("e2e_mean_ms")
    );

    // giving up before the first token: nothing but the plan and the error
    let out2 = d.path().join("r2.parquet");
    let o = run(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &m.url,
            "--concurrency",
            "4",
            "--max-requests",
            "4",
            "--cancel",
            "1:20ms",
            "--quiet",
            "-o",
        ])
        .arg(&out2));
    // no request succeeded: exit 1, every row recorded
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let st = column_text(&out2, "status");
    assert!(
        st.iter().filter(|s| *s != "not_sent").all(|s| s == "cancelled"),
        "{st:?}"
    );
    assert!(column_f64(&out2, "ttft_ms").iter().all(Option::is_none));
    assert!(
        column_text(&out2, "error")
            .iter()
            .any(|e| e.contains("gave up (--cancel) 20 ms after sending"))
    );
    // a bad setting is one line, exit 2
    let e = run(cmd("replay").arg(&t).args(["--url", &m.url, "--cancel", "0.5:soon"]));
    assert_eq!(e.status.code(), Some(2));
    assert!(stderr(&e).contains("invalid --cancel"), "{}", stderr(&e));
}
