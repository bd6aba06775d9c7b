use crate::common::*;

#[test]
fn same_arguments_give_identical_bytes() {
    let d = tmp();
    let args = [
        "gamma",
        "--rate",
        "8",
        "--burstiness",
        "0.5",
        "--count",
        "5000",
        "--prompts",
        "--category",
        "short,code",
        "--seed",
        "42",
    ];
    let a = trace(d.path(), "t.parquet", &args);
    let ab = std::fs::read(&a).unwrap();
    std::fs::remove_file(&a).unwrap();
    let b = trace(d.path(), "t.parquet", &args);
    assert_eq!(ab, std::fs::read(&b).unwrap(), "tracegen is not reproducible");
    // a different seed changes the data
    let c = trace(
        d.path(),
        "c.parquet",
        &[
            "gamma",
            "--rate",
            "8",
            "--burstiness",
            "0.5",
            "--count",
            "5000",
            "--prompts",
            "--category",
            "short,code",
            "--seed",
            "43",
        ],
    );
    assert_ne!(column_text(&b, "arrival_s"), column_text(&c, "arrival_s"));
}

#[test]
fn count_duration_and_rates() {
    let d = tmp();
    let t = trace(
        d.path(),
        "p.parquet",
        &["poisson", "--rate", "50", "--duration", "60s", "--seed", "1"],
    );
    let arr: Vec<f64> = column_f64(&t, "arrival_s").into_iter().map(|v| v.unwrap()).collect();
    assert!(arr.windows(2).all(|w| w[1] >= w[0]), "arrivals sorted");
    assert!(*arr.last().unwrap() < 60.0);
    let n = arr.len() as f64;
    assert!((n - 3000.0).abs() < 4.0 * 3000f64.sqrt(), "about 50/s over 60 s: {n}");
    let t = trace(d.path(), "c.parquet", &["constant", "--rate", "4", "--count", "9"]);
    let arr: Vec<f64> = column_f64(&t, "arrival_s").into_iter().map(|v| v.unwrap()).collect();
    assert_eq!(arr, (0..9).map(|i| i as f64 / 4.0).collect::<Vec<_>>());
    let t = trace(
        d.path(),
        "b.parquet",
        &[
            "batch",
            "--count",
            "7",
            "--input-len",
            "uniform:100:0.5",
            "--output-len",
            "normal:64:8",
        ],
    );
    assert_eq!(rows(&t), 7);
    assert!(column_f64(&t, "arrival_s").iter().all(|v| *v == Some(0.0)));
    for v in column_f64(&t, "input_tokens") {
        let v = v.unwrap();
        assert!((50.0..=150.0).contains(&v), "{v}");
    }
}

#[test]
fn prompts_carry_their_category_and_length() {
    let d = tmp();
    let t = trace(
        d.path(),
        "p.parquet",
        &[
            "poisson",
            "--rate",
            "5",
            "--count",
            "200",
            "--prompts",
            "--category",
            "long",
        ],
    );
    for c in column_text(&t, "category") {
        assert_eq!(c, "long");
    }
    for v in column_f64(&t, "input_tokens") {
        assert!(v.unwrap() > 200.0);
    }
    let prompts = column_text(&t, "prompt");
    assert!(prompts.iter().all(|p| !p.is_empty()));
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    for args in [
        vec!["poisson", "--rate", "-1", "--count", "3"],
        vec!["poisson", "--rate", "5"],
        vec!["batch", "--duration", "3s"],
        vec!["poisson", "--rate", "5", "--count", "3", "--input-len", "uniform:10:3"],
        vec![
            "poisson",
            "--rate",
            "5",
            "--count",
            "3",
            "--prompts",
            "/nonexistent.jsonl",
        ],
    ] {
        let o = run(cmd("tracegen").args(&args).args(["--format", "csv"]));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(!e.contains("panicked"), "{e}");
        assert!(e.trim().lines().count() <= 3, "one line expected, got {e}");
    }
}

#[test]
fn print_schema_for_every_tool() {
    for (tool, contract) in [
        ("tracegen", "trace/1"),
        ("replay", "requests/1"),
        ("agg", "summary/1"),
        ("gpumon", "gpu/1"),
    ] {
        let o = ok(cmd(tool).arg("--print-schema"));
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(contract), "{tool}: {s}");
    }
}

/// `--ramp`: a constant process at a mean rate of 1 goes through the ramp's change of time,
/// so every arrival is known exactly: 0:10:10s has Λ(t) = t²/2 for t ≤ 10 s (50 requests),
/// then 10 per second.
#[test]
fn a_ramp_retimes_arrivals_exactly() {
    let d = tmp();
    let p = trace(
        d.path(),
        "r.parquet",
        &["constant", "--ramp", "0:10:10s", "--duration", "20s"],
    );
    let t: Vec<f64> = column_f64(&p, "arrival_s").into_iter().map(Option::unwrap).collect();
    assert_eq!(t.len(), 150, "Λ(20 s) = 50 + 100 requests");
    for (u, got) in t.iter().enumerate() {
        let u = u as f64;
        let want = if u <= 50.0 {
            (2.0 * u).sqrt()
        } else {
            10.0 + (u - 50.0) / 10.0
        };
        assert!((got - want).abs() < 1e-9, "request {u}: at {got} s, expected {want} s");
    }
    // a trace re-timed with steps: 2 req/s for 10 s, then 8; the burst shape stays (the same
    // number of requests, in the same order)
    let src = trace(
        d.path(),
        "g.parquet",
        &[
            "gamma",
            "--rate",
            "3",
            "--burstiness",
            "0.5",
            "--count",
            "400",
            "--seed",
            "5",
        ],
    );
    let out = d.path().join("s.parquet");
    ok(cmd("tracegen").args([
        "transform",
        src.to_str().unwrap(),
        "--ramp",
        "steps:2@10s,8",
        "-o",
        out.to_str().unwrap(),
    ]));
    let s: Vec<f64> = column_f64(&out, "arrival_s").into_iter().map(Option::unwrap).collect();
    assert_eq!(s.len(), 400);
    assert!(s.windows(2).all(|w| w[1] >= w[0]));
    // the source is first rescaled to a mean rate of 1 ((n-1)/span): the last request is at
    // u = 399, 20 of them in the first 10 s, the rest at 8 req/s: 10 + 379/8 s
    let last = *s.last().unwrap();
    assert!((last - 57.375).abs() < 1e-6, "last arrival at {last} s");
    // every arrival exactly: u = t × observed rate, then 2 req/s for u < 20, else 8 req/s
    let g: Vec<f64> = column_f64(&src, "arrival_s").into_iter().map(Option::unwrap).collect();
    let observed = 399.0 / (g[399] - g[0]);
    for (a, b) in g.iter().zip(&s) {
        let u = a * observed;
        let want = if u < 20.0 { u / 2.0 } else { 10.0 + (u - 20.0) / 8.0 };
        assert!((b - want).abs() < 1e-6, "source {a} s went to {b} s, expected {want} s");
    }
    // one way to set the rate at a time
    let e = run(cmd("tracegen").args(["poisson", "--rate", "2", "--ramp", "0:2:10s", "--count", "5"]));
    assert_eq!(e.status.code(), Some(2), "{}", stderr(&e));
    let e = run(cmd("tracegen").args(["poisson", "--ramp", "0:2:10", "--count", "5"]));
    assert!(stderr(&e).contains("has no unit"), "{}", stderr(&e));
}
