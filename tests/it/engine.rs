use crate::common::*;

#[test]
fn engine_up_and_down_mock_leave_nothing_behind() {
    let d = tmp();
    let sd = d.path().join("state");
    let up = ok(cmd("engine-up").args(["mock", "--port", "0", "--state-dir"]).arg(&sd));
    let url = String::from_utf8_lossy(&up.stdout).trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(sd.join("mock.json")).unwrap()).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        st["version"].as_str().unwrap(),
        format!("mock-{}", env!("CARGO_PKG_VERSION"))
    );
    // replay picks the engine's state up
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "3", "--output-len", "4"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--engine", "mock", "--state-dir"])
        .arg(&sd)
        .args(["--quiet", "-o"])
        .arg(&out));
    assert!(column_text(&out, "engine").iter().all(|e| e == "mock"));
    assert!(column_text(&out, "status").iter().all(|e| e == "ok"));
    // a second engine-up of the same name is refused
    let o = run(cmd("engine-up").args(["mock", "--port", "0", "--state-dir"]).arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already running"));
    ok(cmd("engine-down").args(["mock", "--state-dir"]).arg(&sd));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || processes_with(&format!("--port {}", st["port"])).is_empty()
    );
    assert!(!sd.join("mock.json").exists());
    // idempotent
    ok(cmd("engine-down").args(["mock", "--state-dir"]).arg(&sd));
}

#[test]
fn engine_up_refuses_remote_bind_and_reports_failures() {
    let d = tmp();
    let sd = d.path().join("state");
    let o = run(cmd("engine-up")
        .args(["mock", "--host", "0.0.0.0", "--port", "0", "--state-dir"])
        .arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--allow-remote"), "{}", stderr(&o));
    let o = run(cmd("engine-up").args(["nosuch", "--state-dir"]).arg(&sd));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown engine"), "{}", stderr(&o));
}
