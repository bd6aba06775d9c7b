//! HTTPS: mock-engine behind TLS with certificates made here (rcgen, nothing checked in);
//! replay, enginemon and engine-up's readiness over it; trust (`--cacert`, the platform's
//! roots, `--insecure`), and the connection columns.

use std::path::{Path, PathBuf};

use servebench::schema::requests::col as rc;
use servebench::schema::summary::col as sc;

use crate::common::*;

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files in
/// `dir`: (ca.pem, server.pem, server.key).
fn certs(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let srv = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = srv.signed_by(&key, &ca).unwrap();
    let p = |n: &str| dir.join(format!("{ca_name}-{n}"));
    std::fs::write(p("ca.pem"), ca.pem()).unwrap();
    std::fs::write(p("server.pem"), cert.pem()).unwrap();
    std::fs::write(p("server.key"), key.serialize_pem()).unwrap();
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

fn tls_mock(cert: &Path, key: &Path, extra: &[&str]) -> Mock {
    let mut args = vec!["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    Mock::start(&args)
}

fn meta(path: &Path) -> servebench::meta::Meta {
    servebench::io::open(&path.to_string_lossy()).unwrap().meta
}

#[test]
fn replay_over_https_trusts_the_given_ca_only_and_says_why_not() {
    let d = tmp();
    let (ca, cert, key) = certs(d.path(), "good");
    let (other_ca, _, _) = certs(d.path(), "other");
    let m = tls_mock(&cert, &key, &["--ttft-ms", "5", "--itl-ms", "1"]);
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "12", "--output-len", "8"]);
    let https = format!("https://127.0.0.1:{}", m.port);

    // verified against --cacert, by IP address and by host name (SNI)
    for url in [https.clone(), format!("https://localhost:{}", m.port)] {
        let out = d.path().join("ok.parquet");
        let o = ok(cmd("replay")
            .arg(&t)
            .args(["--url", &url, "--concurrency", "3", "--cacert"])
            .arg(&ca)
            .arg("-o")
            .arg(&out));
        assert!(
            column_text(&out, rc::STATUS).iter().all(|s| s == "ok"),
            "{}",
            stderr(&o)
        );
        let mt = meta(&out);
        let how = mt.get("servebench.tls").unwrap();
        assert!(how.contains("--cacert") && !how.contains("NOT"), "{how}");
        // TLS on every fresh connection; reused ones cost nothing
        let kinds = column_text(&out, rc::CONNECTION);
        let tls = column_f64(&out, rc::TLS_MS);
        let connect = column_f64(&out, rc::CONNECT_MS);
        for ((k, t), c) in kinds.iter().zip(&tls).zip(&connect) {
            match k.as_str() {
                "reused" => assert!(t.is_none() && c.is_none(), "{k} {t:?} {c:?}"),
                "warm" | "new" => assert!(t.is_some_and(|x| x > 0.0) && c.is_some(), "{k} {t:?} {c:?}"),
                other => panic!("unknown connection kind {other}"),
            }
        }
        assert!(kinds.iter().any(|k| k == "reused"), "keep-alive over TLS: {kinds:?}");
    }

    // a CA that did not sign the certificate: exit 2, one line naming the host and the reason,
    // nothing sent (no output file)
    for trust in [vec!["--cacert".to_string(), other_ca.display().to_string()], vec![]] {
        let out = d.path().join("bad.parquet");
        let o = run(cmd("replay")
            .arg(&t)
            .args(["--url", &https, "--concurrency", "2"])
            .args(&trust)
            .arg("-o")
            .arg(&out));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("TLS")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains(&format!("127.0.0.1:{}", m.port)) && lines[0].contains("UnknownIssuer"),
            "{err}"
        );
        assert!(lines[0].contains("--cacert"), "says what to do: {err}");
        assert!(!out.exists(), "nothing recorded when nothing was sent");
    }

    // --insecure: works without any CA, and is recorded as such
    let out = d.path().join("insecure.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &https, "--concurrency", "2", "--insecure", "-o"])
        .arg(&out));
    assert!(column_text(&out, rc::STATUS).iter().all(|s| s == "ok"));
    let how = meta(&out).get("servebench.tls").unwrap().to_string();
    assert!(how.contains("NOT verified") && how.contains("--insecure"), "{how}");
    // the help names it as dangerous
    let h = ok(cmd("replay").arg("--help"));
    let help = String::from_utf8_lossy(&h.stdout);
    assert!(help.contains("--insecure") && help.contains("DANGEROUS"), "{help}");

    // plain http to a TLS server says to use https
    // (and, nothing having succeeded, replay exits 1)
    let out = d.path().join("plain.parquet");
    let o = run(cmd("replay")
        .arg(&t)
        .args(["--url", &format!("http://127.0.0.1:{}", m.port), "--concurrency", "1"])
        .args(["--max-requests", "1", "-o"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let errs = column_text(&out, rc::ERROR);
    assert!(errs[0].contains("use https://"), "{errs:?}");
}

#[test]
fn an_https_url_without_a_port_goes_to_443() {
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "1", "--output-len", "4"]);
    let out = d.path().join("r.parquet");
    // Nothing listens on 127.0.0.2:443 here: the row names the port it tried.
    run(cmd("replay")
        .arg(&t)
        .args(["--url", "https://127.0.0.2", "--insecure", "--concurrency", "1"])
        .args(["--api", "chat", "--timeout", "5s", "-o"])
        .arg(&out));
    let errs = column_text(&out, rc::ERROR);
    assert!(errs.iter().all(|e| e.contains("127.0.0.2:443")), "{errs:?}");
}

#[test]
fn connection_set_up_is_recorded_and_counted_in_due_to_sent() {
    let d = tmp();
    let (ca, cert, key) = certs(d.path(), "c");
    let m = tls_mock(&cert, &key, &["--ttft-ms", "2", "--itl-ms", "1"]);
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "10", "--output-len", "4"]);
    let url = format!("https://127.0.0.1:{}", m.port);
    // a gateway that closes every connection, and no warm pool: every request opens its own,
    // and its set-up is inside its due→sent time, never its TTFT
    let out = d.path().join("new.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &url,
            "--concurrency",
            "2",
            "--no-keep-alive",
            "--warm-pool",
            "0",
            "--cacert",
        ])
        .arg(&ca)
        .arg("-o")
        .arg(&out));
    let kinds = column_text(&out, rc::CONNECTION);
    assert!(kinds.iter().all(|k| k == "new"), "{kinds:?}");
    let lag = column_f64(&out, rc::SCHED_LAG_MS);
    let connect = column_f64(&out, rc::CONNECT_MS);
    let tls = column_f64(&out, rc::TLS_MS);
    for i in 0..kinds.len() {
        let setup = connect[i].unwrap() + tls[i].unwrap();
        assert!(tls[i].unwrap() > 0.0);
        assert!(
            lag[i].unwrap() + 1e-3 >= setup,
            "row {i}: due→sent {:?} < set-up {setup}",
            lag[i]
        );
    }
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "-o"]).arg(&s));
    assert_eq!(column_f64(&s, sc::CONN_FRESH_PCT), vec![Some(100.0)]);
    let mean_setup = column_f64(&s, sc::CONN_SETUP_MEAN_MS)[0].unwrap();
    assert!(mean_setup > 0.0, "{mean_setup}");

    // the same gateway with the warm pool: connections still fresh every time, but opened
    // ahead, so the set-up no longer lands on the requests
    let out = d.path().join("warm.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &url,
            "--concurrency",
            "2",
            "--no-keep-alive",
            "--warm-pool",
            "4",
            "--cacert",
        ])
        .arg(&ca)
        .arg("-o")
        .arg(&out));
    let kinds = column_text(&out, rc::CONNECTION);
    assert!(kinds.iter().all(|k| k != "reused"), "{kinds:?}");
    assert!(kinds.iter().filter(|k| *k == "warm").count() >= 2, "{kinds:?}");
    let s = d.path().join("s2.parquet");
    ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "-o"]).arg(&s));
    assert_eq!(column_f64(&s, sc::CONN_FRESH_PCT), vec![Some(100.0)]);

    // keep-alive: fresh only for the first requests
    let out = d.path().join("ka.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &url, "--concurrency", "1", "--warm-pool", "1", "--cacert"])
        .arg(&ca)
        .arg("-o")
        .arg(&out));
    let s = d.path().join("s3.parquet");
    ok(cmd("agg").arg(&out).args(["--bootstrap", "0", "-o"]).arg(&s));
    let fresh = column_f64(&s, sc::CONN_FRESH_PCT)[0].unwrap();
    assert!(fresh <= 20.0, "{fresh}");
}

#[test]
fn enginemon_and_engine_up_readiness_over_https() {
    let d = tmp();
    let (ca, cert, key) = certs(d.path(), "e");
    // enginemon scraping a TLS /metrics
    let m = tls_mock(&cert, &key, &[]);
    let out = d.path().join("em.parquet");
    let o = ok(cmd("enginemon")
        .args(["--url", &format!("https://localhost:{}", m.port), "--interval", "100ms"])
        .args(["--duration", "1s", "--cacert"])
        .arg(&ca)
        .arg("-o")
        .arg(&out));
    assert!(rows(&out) > 0, "{}", stderr(&o));
    assert!(meta(&out).get("servebench.tls").is_some());
    // and refusing a server it does not trust, with the reason
    let out2 = d.path().join("em2.parquet");
    let o = run(cmd("enginemon")
        .args(["--url", &format!("https://127.0.0.1:{}", m.port), "--interval", "100ms"])
        .args(["--duration", "1s", "-o"])
        .arg(&out2));
    assert!(stderr(&o).contains("UnknownIssuer"), "{}", stderr(&o));
    drop(m);

    // engine-up: an engine that serves https (tls = true), readiness checked over TLS
    let cfg = d.path().join("engines.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[engines.mocktls]
command = ["{bin}", "--host", "{{host}}", "--port", "{{port}}", "--model-name", "{{served_model}}", "--tls-cert", "{cert}", "--tls-key", "{key}"]
port = 8100
tls = true
ready = {{ path = "/health" }}
version = {{ path = "/version", field = "version" }}
api = "chat"
metrics = "/metrics"
grace_s = 5
ready_timeout_s = 20
default_model = "mock-llm"
"#,
            bin = bin("mock-engine").display(),
            cert = cert.display(),
            key = key.display()
        ),
    )
    .unwrap();
    let sd = d.path().join("state");
    let up = ok(cmd("engine-up")
        .args(["mocktls", "--port", "0", "--config"])
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&sd)
        .arg("--cacert")
        .arg(&ca));
    let url = String::from_utf8_lossy(&up.stdout).trim().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sd.join("mocktls.json")).unwrap()).unwrap();
    assert!(st["version"].as_str().is_some_and(|v| v.starts_with("mock-")), "{st}");
    // replay --engine finds the https URL
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "3", "--output-len", "4"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--engine", "mocktls", "--concurrency", "1", "--state-dir"])
        .arg(&sd)
        .arg("--cacert")
        .arg(&ca)
        .arg("-o")
        .arg(&out));
    assert!(column_text(&out, rc::STATUS).iter().all(|s| s == "ok"));
    ok(cmd("engine-down").args(["mocktls", "--state-dir"]).arg(&sd));
}
