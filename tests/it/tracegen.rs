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
