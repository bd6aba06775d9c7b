//! Replay under its own load (issue 14): the load a run delivered is measured (in flight,
//! achieved rate, due→sent) and a run whose client could not deliver what was asked is flagged
//! client-bound in replay's closing line, agg's summary, the report and the charts. Not timed:
//! the starved run is held back on purpose by `--max-in-flight`, whatever the machine's load.

use servebench::schema::requests::col as rc;
use servebench::schema::summary::col;

use crate::common::*;

/// An open loop at 400 req/s with at most one request in flight (each takes ~100 ms): the
/// client can send ~10 req/s, a small share of the schedule. Replay exits 0 but says so, agg's
/// summary flags the group, the report warns next to the numbers, and chart marks the point.
#[test]
fn a_starved_open_loop_is_flagged_client_bound_everywhere() {
    let m = Mock::start(&["--ttft-ms", "20", "--itl-ms", "5"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "poisson",
            "--rate",
            "400",
            "--count",
            "30",
            "--input-len",
            "32",
            "--output-len",
            "16",
        ],
    );
    let out = d.path().join("r.parquet");
    let o = ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &m.url,
            "--max-in-flight",
            "1",
            "--label",
            "starved",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("CLIENT-BOUND"))
        .unwrap_or_else(|| panic!("no client-bound line even with --quiet: {err}"));
    assert!(line.contains("--max-in-flight 1"), "names the likely cause: {line}");
    assert_eq!(err.lines().filter(|l| l.contains("CLIENT-BOUND")).count(), 1, "{err}");
    // the file's own health record carries the verdict
    let meta = servebench::io::open(&out.to_string_lossy()).unwrap().meta.clone();
    let health: serde_json::Value = serde_json::from_str(meta.get("servebench.client").unwrap()).unwrap();
    assert_eq!(health["load"]["client_bound"], true, "{health}");

    let s = d.path().join("s.parquet");
    let o = ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "-o"]).arg(&s));
    assert!(stderr(&o).contains("client-bound"), "agg warns: {}", stderr(&o));
    assert_eq!(column_text(&s, col::CLIENT_BOUND), ["true"]);
    let load = column_f64(&s, col::LOAD_PCT)[0].unwrap();
    assert!(load < 50.0, "delivered {load}% of 400 req/s with one request at a time");
    let (a, tr) = (
        column_f64(&s, col::ACHIEVED_RATE_RPS)[0].unwrap(),
        column_f64(&s, col::TARGET_RATE_RPS)[0].unwrap(),
    );
    assert!(a < tr / 2.0 && tr > 100.0, "achieved {a} of {tr} req/s");
    assert!(column_f64(&s, col::IN_FLIGHT_MEAN)[0].unwrap() <= 1.0 + 1e-9);
    // held-back requests waited on the client: due→sent, the schedule lag, says how long
    assert!(column_f64(&s, col::SCHED_LAG_P50_MS)[0].unwrap() > 100.0);

    let md = String::from_utf8_lossy(&ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "--format", "md"])).stdout)
        .to_string();
    assert!(md.contains("client-bound"), "{md}");

    let rep = d.path().join("report");
    ok(cmd("report").arg(&out).args(["--bootstrap", "0", "-o"]).arg(&rep));
    let text = std::fs::read_to_string(rep.join("report.md")).unwrap();
    let results = &text[text.find("## Results").unwrap()..text.find("## Winners").unwrap()];
    assert!(
        results.contains("Client-bound"),
        "the warning sits next to the numbers: {results}"
    );
    assert!(results.contains("starved at"), "{results}");

    let charts = d.path().join("charts");
    ok(cmd("chart").arg(&s).arg("-o").arg(&charts));
    let svg = std::fs::read_to_string(charts.join("throughput-vs-rate.svg")).unwrap();
    assert!(
        svg.contains("client-bound"),
        "the chart's legend names the marked point"
    );
}

/// A closed loop the client keeps up with: 4 users on requests of ~200 ms. Nothing is flagged,
/// about 4 are in flight, and each user's next request is due when its previous one ended.
#[test]
fn a_normal_closed_loop_is_clear_and_due_when_the_user_is_free() {
    let m = Mock::start(&["--ttft-ms", "50", "--itl-ms", "10"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["batch", "--count", "24", "--input-len", "32", "--output-len", "16"],
    );
    let out = d.path().join("r.parquet");
    let o = ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--concurrency", "4", "--label", "fine", "-o"])
        .arg(&out));
    let err = stderr(&o);
    assert!(!err.contains("CLIENT-BOUND"), "{err}");
    assert!(
        err.contains("of 4 users in flight"),
        "the closing line shows the achieved load: {err}"
    );

    let s = d.path().join("s.parquet");
    let o = ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "-o"]).arg(&s));
    assert!(!stderr(&o).contains("client-bound"), "{}", stderr(&o));
    assert_eq!(column_text(&s, col::CLIENT_BOUND), ["false"]);
    let load = column_f64(&s, col::LOAD_PCT)[0].unwrap();
    assert!(load >= 95.0, "delivered {load}%");
    let inflight = column_f64(&s, col::IN_FLIGHT_MEAN)[0].unwrap();
    assert!((3.0..=4.0 + 1e-9).contains(&inflight), "{inflight} in flight of 4");
    let pct = column_f64(&s, col::CONCURRENCY_PCT)[0].unwrap();
    assert!((100.0 * inflight / 4.0 - pct).abs() < 1e-6);
    assert_eq!(
        column_f64(&s, col::ACHIEVED_RATE_RPS)[0],
        None,
        "a closed loop has no rate to meet"
    );

    // Every request is due (scheduled_at) when some user's previous request ended, or at the
    // run start for the users' first: with 4 users, each scheduled_at after the first four is
    // a done_at of an earlier request (to the client's hand-off, well under 50 ms).
    let sched: Vec<f64> = column_f64(&out, rc::SCHEDULED_AT)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    let sent: Vec<f64> = column_f64(&out, rc::SENT_AT).into_iter().map(|v| v.unwrap()).collect();
    let done: Vec<f64> = column_f64(&out, rc::DONE_AT).into_iter().map(|v| v.unwrap()).collect();
    let start = sched.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut firsts = 0;
    for (i, &at) in sched.iter().enumerate() {
        assert!(at <= sent[i], "due before sent");
        if at - start < 1.0 {
            firsts += 1;
            continue;
        }
        let nearest = done
            .iter()
            .filter(|&&d| d <= at + 1.0)
            .map(|d| at - d)
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest < 50_000.0,
            "request {i} due {nearest} µs after any request ended"
        );
    }
    assert_eq!(firsts, 4, "the 4 users' first requests are due at the run start");
}
