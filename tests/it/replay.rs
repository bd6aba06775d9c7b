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
            let l = servebench::io::cols::list_at(a.as_ref(), i).unwrap();
            let v: Vec<f64> = (0..l.len())
                .map(|j| servebench::io::cols::f64_at(l.as_ref(), j).unwrap())
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
    // Two server threads: 64 users in lockstep send 64 requests at the same instant every
    // round, and one thread would queue them (real server queueing, not client error).
    let m = Mock::start(&["--ttft-ms", "50", "--itl-ms", "10", "--threads", "2"]);
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
    nothing_succeeds(
        cmd("replay")
            .arg(&t)
            .args([
                "--url",
                &format!("http://127.0.0.1:{port}"),
                "--api",
                "chat",
                "--quiet",
                "-o",
            ])
            .arg(&out),
    );
    assert_eq!(rows(&out), 50);
    assert!(column_text(&out, "status").iter().all(|s| s == "connect_error"));
    let mut ids: Vec<String> = column_text(&out, "request_id");
    ids.sort_by_key(|s| s.parse::<u64>().unwrap());
    assert_eq!(ids, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    // closed loop too
    nothing_succeeds(
        cmd("replay")
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
            .arg(&out),
    );
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
    let o = run(cmd("replay").arg(&t).args(["--url", "ftp://x", "--format", "csv"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("must start with http:// or https://"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn every_protocol_against_the_mock() {
    let m = Mock::start(&["--ttft-ms", "3", "--itl-ms", "1", "--tokens-per-chunk", "3"]);
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "6", "--output-len", "12"]);
    for api in ["chat", "completions", "tgi", "sglang", "llamacpp", "ollama", "auto"] {
        let out = d.path().join(format!("{api}.parquet"));
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--api", api, "--concurrency", "3", "--quiet", "-o"])
            .arg(&out));
        assert_eq!(rows(&out), 6, "{api}");
        for (s, e) in column_text(&out, "status").iter().zip(column_text(&out, "error")) {
            assert_eq!(s, "ok", "{api}: {e}");
        }
        assert!(column_text(&out, "output_tokens").iter().all(|v| v == "12"), "{api}");
        assert!(
            column_text(&out, "output_tokens_source").iter().all(|v| v == "usage"),
            "{api}"
        );
        let chunks: Vec<usize> = column_text(&out, "chunk_times_ms")
            .iter()
            .map(|c| serde_json::from_str::<Vec<f64>>(c).unwrap().len())
            .collect();
        // TGI, llama.cpp and Ollama send one event per token; the others carry 3 tokens per chunk
        let want = if matches!(api, "tgi" | "llamacpp" | "ollama") {
            12
        } else {
            4
        };
        assert!(chunks.iter().all(|&c| c == want), "{api}: {chunks:?}");
        if matches!(api, "chat" | "completions" | "auto" | "sglang") {
            assert!(
                column_text(&out, "chunk_tokens").iter().all(|c| c == "[3,3,3,3]"),
                "{api}: {:?}",
                column_text(&out, "chunk_tokens")
            );
        }
        assert_eq!(column_text(&out, "api")[0], if api == "auto" { "chat" } else { api });
    }
    // auto also found the model and the engine's version
    let meta = servebench::io::open(&d.path().join("auto.parquet").to_string_lossy())
        .unwrap()
        .meta;
    assert_eq!(meta.get("servebench.model"), Some("mock-llm"));
    assert!(meta.get("servebench.engine_version").unwrap().starts_with("mock-"));
    assert!(meta.get("servebench.trace.sha256").is_some_and(|h| h.len() == 64));
    assert!(
        meta.get("servebench.client")
            .is_some_and(|c| c.contains("peak_in_flight"))
    );
}

#[test]
fn open_loop_schedule_is_exact_and_scaled() {
    let m = Mock::start(&["--ttft-ms", "2", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "50", "--count", "40", "--output-len", "4"],
    );
    for (scale, gap_us) in [("1", 20_000i64), ("0.5", 10_000)] {
        let out = d.path().join(format!("r{scale}.parquet"));
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--time-scale", scale, "--quiet", "-o"])
            .arg(&out));
        let mut sched: Vec<(u64, i64)> = Vec::new();
        for b in read(&out) {
            let ids = b.column(b.schema().index_of("request_id").unwrap());
            let s = b.column(b.schema().index_of("scheduled_at").unwrap());
            for i in 0..b.num_rows() {
                sched.push((
                    servebench::io::cols::int_at(ids.as_ref(), i).unwrap().unwrap() as u64,
                    servebench::io::cols::ts_us(s.as_ref(), i).unwrap(),
                ));
            }
        }
        sched.sort();
        for w in sched.windows(2) {
            assert!(
                (w[1].1 - w[0].1 - gap_us).abs() <= 1,
                "scheduled gap {} at scale {scale}",
                w[1].1 - w[0].1
            );
        }
        let lag = column_f64(&out, "sched_lag_ms");
        assert!(lag.iter().all(|l| l.unwrap() < 50.0), "{lag:?}");
        let rate = column_f64(&out, "rate_rps")[0].unwrap();
        assert!((rate - 50.0 / scale.parse::<f64>().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn max_in_flight_holds_requests_back_and_records_the_lag() {
    let m = Mock::start(&["--ttft-ms", "150", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "6", "--output-len", "2"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--max-in-flight", "2", "--quiet", "-o"])
        .arg(&out));
    assert_eq!(rows(&out), 6);
    assert!(column_text(&out, "status").iter().all(|s| s == "ok"));
    let mut lag: Vec<f64> = column_f64(&out, "sched_lag_ms")
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    lag.sort_by(|a, b| a.total_cmp(b));
    assert!(lag[5] > 250.0, "the last pair waited for two rounds: {lag:?}");
    let ttft_s: Vec<f64> = column_f64(&out, "ttft_sched_ms")
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    assert!(
        ttft_s.iter().cloned().fold(0.0, f64::max) > 400.0,
        "latency from the schedule shows the queueing: {ttft_s:?}"
    );
}

#[test]
fn duration_and_max_requests_record_the_rest_as_not_sent() {
    let m = Mock::start(&["--ttft-ms", "2", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "20", "--count", "60", "--output-len", "2"],
    );
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--duration", "1s", "--quiet", "-o"])
        .arg(&out));
    let st = column_text(&out, "status");
    assert_eq!(st.len(), 60);
    let sent = st.iter().filter(|s| *s == "ok").count();
    assert!((18..=21).contains(&sent), "{sent} sent in 1 s at 20/s");
    assert_eq!(st.iter().filter(|s| *s == "not_sent").count(), 60 - sent);
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &m.url,
            "--max-requests",
            "5",
            "--concurrency",
            "2",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    let st = column_text(&out, "status");
    assert_eq!(st.len(), 60);
    assert_eq!(st.iter().filter(|s| *s == "ok").count(), 5);
}

#[test]
fn timeouts_are_rows_with_status_timeout() {
    let m = Mock::start(&["--ttft-ms", "3000", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "3", "--output-len", "2"]);
    let out = d.path().join("r.parquet");
    nothing_succeeds(
        cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--ttft-timeout", "200ms", "--quiet", "-o"])
            .arg(&out),
    );
    assert!(column_text(&out, "status").iter().all(|s| s == "timeout"));
    assert!(column_text(&out, "error")[0].contains("ttft-timeout"));
    nothing_succeeds(
        cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--timeout", "300ms", "--quiet", "-o"])
            .arg(&out),
    );
    assert!(column_text(&out, "status").iter().all(|s| s == "timeout"));
}

fn write_trace(path: &std::path::Path, rows: Vec<servebench::trace::TraceRow>) {
    let b = servebench::schema::Rows::encode(&rows, &());
    servebench::io::write_all(Some(path), None, b.schema(), &servebench::meta::Meta::default(), &[b]).unwrap();
}

#[test]
fn sessions_send_turns_after_replies_with_history() {
    use servebench::trace::TraceRow;
    let m = Mock::start(&["--ttft-ms", "30", "--itl-ms", "2"]);
    let d = tmp();
    let mut rows = Vec::new();
    for s in 0..3u64 {
        for turn in 0..3u32 {
            // turns 0.5 s apart in the trace: that gap is the think time after each reply
            let mut r = TraceRow::new(s * 10 + turn as u64, s as f64 * 0.05 + turn as f64 * 0.5, 20, 10);
            r.session_id = Some(s);
            r.turn = Some(turn);
            rows.push(r);
        }
    }
    let t = d.path().join("t.parquet");
    write_trace(&t, rows);
    for extra in [&[][..], &["--concurrency", "2"][..]] {
        let out = d.path().join("r.parquet");
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--quiet", "-o"])
            .arg(&out)
            .args(extra));
        assert_eq!(rows_of(&out).len(), 9);
        let rs = rows_of(&out);
        for s in 0..3u64 {
            let mut turns: Vec<&Row> = rs.iter().filter(|r| r.session == s).collect();
            turns.sort_by_key(|r| r.turn);
            assert!(turns.iter().all(|r| r.status == "ok"));
            for w in turns.windows(2) {
                // the next turn waits for the reply plus its think time
                assert!(
                    w[1].sched_us >= w[0].done_us + 490_000,
                    "{extra:?}: turn sent {} us after the previous reply",
                    w[1].sched_us - w[0].done_us
                );
                // and carries the conversation so far: previous prompt + reply + its own prompt
                assert!(
                    w[1].prompt_tokens >= w[0].prompt_tokens + 10 + 20,
                    "{extra:?}: {} then {}",
                    w[0].prompt_tokens,
                    w[1].prompt_tokens
                );
            }
        }
    }
}

struct Row {
    session: u64,
    turn: u32,
    status: String,
    sched_us: i64,
    done_us: i64,
    prompt_tokens: u32,
}

fn rows_of(path: &std::path::Path) -> Vec<Row> {
    let mut out = Vec::new();
    for b in read(path) {
        let c = |n: &str| b.column(b.schema().index_of(n).unwrap()).clone();
        let (s, t, st, sc, dn, pt) = (
            c("session_id"),
            c("turn"),
            c("status"),
            c("scheduled_at"),
            c("done_at"),
            c("server_input_tokens"),
        );
        for i in 0..b.num_rows() {
            out.push(Row {
                session: servebench::io::cols::int_at(s.as_ref(), i).unwrap().unwrap() as u64,
                turn: servebench::io::cols::int_at(t.as_ref(), i).unwrap().unwrap() as u32,
                status: servebench::io::cols::str_at(st.as_ref(), i).unwrap().to_string(),
                sched_us: servebench::io::cols::ts_us(sc.as_ref(), i).unwrap(),
                done_us: servebench::io::cols::ts_us(dn.as_ref(), i).unwrap(),
                prompt_tokens: servebench::io::cols::int_at(pt.as_ref(), i).unwrap().unwrap() as u32,
            });
        }
    }
    out
}

#[test]
fn sigint_finishes_in_flight_and_writes_every_row() {
    let m = Mock::start(&["--ttft-ms", "20", "--itl-ms", "10"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "20", "--count", "200", "--output-len", "50"],
    );
    let out = d.path().join("r.parquet");
    let child = cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--grace", "300ms", "--quiet", "-o"])
        .arg(&out)
        .spawn()
        .unwrap();
    // 30 sent: about 20 have finished by the end of the grace (each takes ~0.5 s)
    m.wait_started(30);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let st = column_text(&out, "status");
    assert_eq!(st.len(), 200, "every trace row has a row");
    let n = |s: &str| st.iter().filter(|x| *x == s).count();
    assert!(n("ok") >= 20, "ok {}", n("ok"));
    assert!(n("not_sent") >= 150, "not_sent {}", n("not_sent"));
    assert_eq!(n("ok") + n("not_sent") + n("cancelled"), 200);
    assert!(!d.path().join("_r.parquet.partial").exists());
}

#[test]
fn sigkill_loses_at_most_the_last_flush_and_recovers() {
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "100", "--count", "2000", "--output-len", "5"],
    );
    let out = d.path().join("r.parquet");
    let mut child = cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--quiet", "-o"])
        .arg(&out)
        .spawn()
        .unwrap();
    let journal = d.path().join("_r.parquet.partial");
    wait_for("150 rows in the journal", std::time::Duration::from_secs(30), || {
        journal_rows(&journal) >= 150
    });
    let flushed = journal_rows(&journal);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "no file under the final name after SIGKILL");
    assert!(journal.exists());
    let o = ok(cmd("replay").arg("--recover").arg(&journal));
    let n = rows(&out);
    // every row flushed before the kill is recovered (at 100 req/s, a second of rows or so
    // was not flushed yet: the file is far from whole)
    assert!(
        n >= flushed && n < 2000,
        "recovered {n} rows of {flushed} flushed: {}",
        stderr(&o)
    );
    assert!(!journal.exists());
}

#[test]
fn secrets_never_reach_outputs() {
    let m = Mock::start(&["--ttft-ms", "2", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "2", "--output-len", "2"]);
    let out = d.path().join("r.parquet");
    let secret = "sk-very-secret-0123456789";
    let o = ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &m.url,
            "--api-key-env",
            "SB_TEST_KEY",
            "-H",
            &format!("X-Api-Key: {secret}x"),
            "-o",
        ])
        .arg(&out)
        .env("SB_TEST_KEY", secret));
    let bytes = std::fs::read(&out).unwrap();
    let hay = String::from_utf8_lossy(&bytes);
    assert!(!hay.contains(secret), "key in the requests file");
    assert!(!stderr(&o).contains(secret));
    assert!(column_text(&out, "status").iter().all(|s| s == "ok"));
}

/// A trace written by another tool (pyarrow, DuckDB) declares no rate: replay records the
/// rate the trace shows, (rows - 1) / span of arrival_s, divided by --time-scale.
#[test]
fn a_trace_without_a_declared_rate_records_its_observed_rate() {
    let m = Mock::start(&["--ttft-ms", "1", "--itl-ms", "1"]);
    let d = tmp();
    let t = d.path().join("plain.parquet");
    let rows_in: Vec<servebench::trace::TraceRow> = (0..11)
        .map(|i| servebench::trace::TraceRow::new(i, i as f64 * 0.05, 8, 2))
        .collect();
    servebench::io::write_all(
        Some(&t),
        None,
        servebench::trace::schema(),
        &servebench::meta::Meta::default(),
        &[servebench::schema::Rows::encode(&rows_in, &())],
    )
    .unwrap();
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--time-scale", "0.5", "--quiet", "-o"])
        .arg(&out));
    let rate = column_f64(&out, "rate_rps");
    assert_eq!(rate.len(), 11);
    // 10 gaps of 50 ms: 20 req/s, played twice as fast
    assert!(rate.iter().all(|r| (r.unwrap() - 40.0).abs() < 1e-9), "{rate:?}");
    // closed loop: no rate
    let out = d.path().join("c.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--concurrency", "2", "--quiet", "-o"])
        .arg(&out));
    assert!(column_f64(&out, "rate_rps").iter().all(Option::is_none));
}

/// replay runs in process under a stop the caller holds: stopping it records the rest of
/// the trace as not_sent and ends with a valid file.
#[test]
fn replay_in_process_stops_on_request() {
    use clap::Parser;
    use servebench::stop::{Stop, StopReason};
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    let t = trace(
        d.path(),
        "t.parquet",
        &["constant", "--rate", "50", "--count", "500", "--output-len", "4"],
    );
    let out = d.path().join("r.parquet");
    let args = servebench::cmd::replay::Args::parse_from([
        "replay",
        &t.to_string_lossy(),
        "--url",
        &m.url,
        "--grace",
        "5s",
        "--quiet",
        "-o",
        &out.to_string_lossy(),
    ]);
    let stop = Stop::with_grace(std::time::Duration::from_secs(5));
    let s2 = stop.clone();
    let h = std::thread::spawn(move || servebench::cmd::replay::run_with(args, s2));
    m.wait_started(10);
    assert!(stop.request(StopReason::Requested));
    let code = h.join().unwrap().unwrap();
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::SUCCESS));
    let st = column_text(&out, "status");
    assert_eq!(st.len(), 500, "every trace row has a row");
    let n = |s: &str| st.iter().filter(|x| *x == s).count();
    assert!(
        n("ok") >= 10 && n("not_sent") >= 300,
        "{} ok, {} not sent",
        n("ok"),
        n("not_sent")
    );
    assert!(!d.path().join("_r.parquet.partial").exists());
}

/// A session's later turn waiting for a --max-in-flight permit is abandoned when the run
/// stops, like every other held-back request (one admission rule): it is never sent after
/// the stop.
#[test]
fn a_turn_held_back_by_max_in_flight_is_not_sent_after_stop() {
    use clap::Parser;
    use servebench::stop::{Stop, StopReason};
    use servebench::trace::TraceRow;
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "10"]);
    let d = tmp();
    let t = d.path().join("s.parquet");
    let turn = |id: u64, at: f64, k: u32| TraceRow {
        session_id: Some(7),
        turn: Some(k),
        ..TraceRow::new(id, at, 8, 1)
    };
    // session 7's first turn is quick; request 1 waits for its permit, then holds it for
    // ~1 s, and session 7's second turn (due at once) waits for it
    let rows_in = vec![turn(0, 0.0, 0), TraceRow::new(1, 0.0, 8, 100), turn(2, 0.0, 1)];
    servebench::io::write_all(
        Some(&t),
        None,
        servebench::trace::schema(),
        &servebench::meta::Meta::default(),
        &[servebench::schema::Rows::encode(&rows_in, &())],
    )
    .unwrap();
    let out = d.path().join("r.parquet");
    let args = servebench::cmd::replay::Args::parse_from([
        "replay",
        &t.to_string_lossy(),
        "--url",
        &m.url,
        "--max-in-flight",
        "1",
        "--grace",
        "30s",
        "--quiet",
        "-o",
        &out.to_string_lossy(),
    ]);
    let stop = Stop::with_grace(std::time::Duration::from_secs(30));
    let s2 = stop.clone();
    let h = std::thread::spawn(move || servebench::cmd::replay::run_with(args, s2));
    wait_for("request 1 at the server", std::time::Duration::from_secs(30), || {
        metric(&m.url, "servebench_mock_requests_started_total", None) >= 2.0
    });
    stop.request(StopReason::Requested);
    h.join().unwrap().unwrap();
    let ids = column_text(&out, "request_id");
    let st = column_text(&out, "status");
    let err = column_text(&out, "error");
    let i = ids.iter().position(|x| x == "2").unwrap();
    assert_eq!(st[i], "not_sent", "{st:?} {err:?}");
    // (held back, unless the stop came before the dispatcher reached the turn)
    assert!(
        err[i].contains("--max-in-flight") || err[i].contains("stopped"),
        "{}",
        err[i]
    );
    assert_eq!(metric_started(&m.url), 2.0, "nothing sent after the stop");
}

fn metric_started(url: &str) -> f64 {
    metric(url, "servebench_mock_requests_started_total", None)
}

#[test]
fn exit_status_says_whether_anything_was_measured() {
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "20", "--output-len", "4"]);
    // nothing listening: every row connect_error, the file written, exit 1
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = d.path().join("none.parquet");
    let o = run(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--api",
            "chat",
            "--concurrency",
            "2",
            "-o",
        ])
        .arg(&out));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("check failed: no request succeeded") && err.contains("20 connect_error"),
        "{err}"
    );
    assert_eq!(rows(&out), 20, "every row recorded");

    // a quarter failing: fine without a threshold, exit 1 above --max-error-rate, 0 below
    let m = Mock::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "1",
        "--fault",
        "http-500:0.25",
        "--fault-seed",
        "3",
    ]);
    let go = |extra: &[&str]| {
        let out = d.path().join("part.parquet");
        let o = run(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--concurrency", "2", "--quiet"])
            .args(extra)
            .arg("-o")
            .arg(&out));
        let failed = column_text(&out, servebench::schema::requests::col::STATUS)
            .iter()
            .filter(|s| *s != "ok")
            .count();
        (o, failed)
    };
    let (o, failed) = go(&[]);
    assert!(failed > 0 && failed < 20, "the fault draw failed {failed} of 20");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // (the mock draws its faults anew for every request, so each run is judged on its own count)
    let (o, failed) = go(&["--max-error-rate", "0"]);
    assert_eq!(o.status.code(), Some(if failed > 0 { 1 } else { 0 }), "{}", stderr(&o));
    if failed > 0 {
        assert!(stderr(&o).contains("above --max-error-rate 0"), "{}", stderr(&o));
    }
    let (o, failed) = go(&["--max-error-rate", "0.9"]);
    assert!(failed < 18);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(cmd("replay").arg(&t).args(["--url", &m.url, "--max-error-rate", "5"]));
    assert_eq!(o.status.code(), Some(2));
}
