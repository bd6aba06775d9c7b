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
    // the header names the columns, and the group's row holds its counts under them
    let cells = |l: &str| {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let mut lines = md.lines();
    let header = cells(lines.next().expect("a header"));
    assert!(header.iter().any(|h| h == "TTFT p50 ms"), "{md}");
    let row = cells(md.lines().find(|l| l.starts_with("| x |")).expect("the group's row"));
    let at = |h: &str| {
        &row[header
            .iter()
            .position(|x| x == h)
            .unwrap_or_else(|| panic!("{h}: {md}"))]
    };
    assert_eq!(at("n"), "30", "{md}");
    assert_eq!(at("ok"), "30", "{md}");
    assert_eq!(at("users"), "5", "{md}");
}

/// agg's percentiles are numpy's (`numpy.percentile`, default linear method) on the same
/// values: TTFT, TPOT, E2E and ITL (gaps between chunks) of a run with varied latencies.
#[test]
fn agg_percentiles_equal_numpys() {
    let m = Mock::start(&["--sim", "--sim-max-batch", "8"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "poisson",
            "--rate",
            "40",
            "--count",
            "60",
            "--input-len",
            "uniform:300:0.9",
            "--output-len",
            "uniform:20:0.9",
            "--seed",
            "3",
        ],
    );
    let out = d.path().join("r.parquet");
    ok(cmd("replay").arg(&t).args(["--url", &m.url, "--quiet", "-o"]).arg(&out));
    let o = ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "--format", "json"]));
    let line = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = serde_json::from_str(line.lines().next().expect("a summary row")).unwrap();
    let script = format!(
        r#"
import duckdb, json, numpy as np
rows = duckdb.sql("SELECT ttft_ms, tpot_ms, e2e_ms, chunk_times_ms FROM '{}' WHERE status = 'ok' AND NOT warmup").fetchall()
col = lambda k: np.array([r[k] for r in rows if r[k] is not None], dtype=float)
gaps = np.concatenate([np.diff(np.array(r[3], dtype=float)) for r in rows if r[3] and len(r[3]) > 1])
qs = [50, 90, 95, 99]
out = {{}}
for name, v in (("ttft", col(0)), ("tpot", col(1)), ("e2e", col(2)), ("itl", gaps)):
    for q, x in zip(qs, np.percentile(v, qs)):
        out[f"{{name}}_p{{q}}_ms"] = float(x)
    out[f"{{name}}_n"] = int(len(v))
print(json.dumps(out))
"#,
        out.display()
    );
    let py = std::process::Command::new(python())
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(py.status.success(), "numpy: {}", String::from_utf8_lossy(&py.stderr));
    let want: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert!(want["ttft_n"].as_u64().unwrap() >= 50, "{want}");
    assert!(want["itl_n"].as_u64().unwrap() >= 200, "{want}");
    let mut checked = 0;
    for m in ["ttft", "tpot", "e2e", "itl"] {
        for q in [50, 90, 95, 99] {
            let k = format!("{m}_p{q}_ms");
            let (Some(a), Some(b)) = (summary[&k].as_f64(), want[&k].as_f64()) else {
                panic!("{k}: agg {} numpy {}", summary[&k], want[&k]);
            };
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{k}: agg {a}, numpy {b}");
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
    // the values vary, so the percentiles differ (a constant column would prove little)
    assert!(want["ttft_p99_ms"].as_f64() > want["ttft_p50_ms"].as_f64(), "{want}");
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
    let o = run(cmd("replay")
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
    assert_eq!(o.status.code(), Some(1), "nothing succeeded: {}", stderr(&o));
    let o = run(cmd("agg")
        .arg(&out)
        .args(["--max-error-rate", "0.1", "--format", "json"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // the summary's one row, cell by cell (a search of the whole text would also find the
    // column n_connect_error's name, and could not fail)
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "one group: {text}");
    let row = &rows[0];
    assert_eq!(row["n_requests"], 4, "{text}");
    assert_eq!(row["n_connect_error"], 4, "{text}");
    assert_eq!(row["n_ok"], 0, "{text}");
    assert_eq!(row["error_rate"].as_f64(), Some(1.0), "{text}");
}

/// Reading in parallel (files and row groups split across threads, then merged) gives the
/// same summary as reading in one thread, exact or past the memory budget (histograms).
#[test]
fn parallel_reading_matches_one_thread() {
    use servebench::analysis::{Groups, Options, finish, to_batch};
    use servebench::schema::{Record, Rows, RunLabels, Status};
    use servebench::trace::TraceRow;
    let d = tmp();
    let f = d.path().join("r.parquet");
    let labels = |l: &str| RunLabels {
        label: l.into(),
        run_id: "r".into(),
        api: "chat".into(),
        concurrency: Some(4),
        ..Default::default()
    };
    let meta = servebench::meta::Meta::for_output(&servebench::schema::REQUESTS, false);
    let mut sink = servebench::io::Sink::create(Some(&f), None, servebench::schema::REQUESTS.schema(), &meta).unwrap();
    for part in 0..6u64 {
        let recs: Vec<Record> = (0..500u64)
            .map(|i| {
                let id = part * 500 + i;
                let mut r = Record::not_sent(&TraceRow::new(id, 0.0, 10, 4), Some(0), "");
                r.status = if id % 50 == 0 { Status::Timeout } else { Status::Ok };
                r.sent_at_us = Some(1_700_000_000_000_000 + id as i64 * 1000);
                r.done_at_us = r.sent_at_us.map(|t| t + 90_000);
                let t = 20.0 + (id * 7919 % 1000) as f64 / 10.0;
                r.ttft_ms = Some(t);
                r.e2e_ms = Some(t + 30.0);
                r.tpot_ms = Some(10.0);
                r.sched_lag_ms = Some(0.1);
                r.chunk_times_ms = vec![t, t + 10.0, t + 20.0, t + 30.0 + (id % 7) as f64];
                r.output_tokens = 4;
                r
            })
            .collect();
        sink.write(&Record::encode(&recs, &labels(if part % 2 == 0 { "a" } else { "b" })))
            .unwrap();
        sink.flush().unwrap(); // one row group per part
    }
    sink.finish().unwrap();
    assert_eq!(servebench::io::parquet_row_groups(&f.to_string_lossy()), Some(6));
    let paths = vec![f.to_string_lossy().to_string()];
    for budget in [usize::MAX, 100] {
        let o = Options {
            exact_budget: budget,
            bootstrap: 200,
            ..Options::default()
        };
        let mut one = Groups::read(&paths, &o, 1).unwrap();
        let mut many = Groups::read(&paths, &o, 3).unwrap();
        assert_eq!(one.exact(), budget == usize::MAX);
        assert_eq!(one.exact(), many.exact());
        let (a, b) = (to_batch(&finish(&mut one, &o)), to_batch(&finish(&mut many, &o)));
        assert_eq!(a.num_rows(), 2);
        for (i, field) in a.schema().fields().iter().enumerate() {
            for r in 0..a.num_rows() {
                let (x, y) = (
                    servebench::io::cell_text(a.column(i).as_ref(), r),
                    servebench::io::cell_text(b.column(i).as_ref(), r),
                );
                match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => assert!(
                        (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                        "{} (budget {budget}): {x} vs {y}",
                        field.name()
                    ),
                    _ => assert_eq!(x, y, "{} (budget {budget})", field.name()),
                }
            }
        }
        assert_eq!(one.files, many.files);
    }
}
