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
