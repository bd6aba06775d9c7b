use std::time::Duration;

use crate::common::*;

fn signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn meta(path: &std::path::Path) -> servebench::meta::Meta {
    servebench::io::open(&path.to_string_lossy()).unwrap().meta
}

#[test]
fn without_a_driver_gpumon_says_so_in_one_line() {
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return; // a GPU machine: covered by the sampling tests
    }
    let o = run(cmd("gpumon").args(["--format", "csv"]));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("NVIDIA") || e.contains("NVML"), "{e}");
}

#[test]
fn fake_devices_for_a_duration_with_processes() {
    let d = tmp();
    let out = d.path().join("gpu.parquet");
    let o = ok(cmd("gpumon")
        .args([
            "--fake",
            "3",
            "--gpus",
            "0,2",
            "--interval",
            "20ms",
            "--duration",
            "2500ms",
            "--processes",
            "-o",
        ])
        .arg(&out));
    let e = stderr(&o);
    assert!(e.contains("sampling cost"), "{e}");
    let gpus = column_text(&out, "gpu");
    let n = gpus.len();
    // ~125 ticks of 2 GPUs, plus the final sample
    assert!((150..=260).contains(&n), "{n} rows: {e}");
    assert_eq!(gpus.iter().filter(|g| *g == "0").count(), n / 2);
    assert!(gpus.iter().all(|g| g == "0" || g == "2"));
    // every GPU of a tick shares its timestamp
    let t = column_text(&out, "t");
    assert_eq!(t[0], t[1]);
    assert!(column_text(&out, "uuid")[1].ends_with("000000000002"));
    // the fake engine starts after 2 s: memory goes from 600 MiB to 70,600 MiB
    let mem = column_f64(&out, "mem_used_mib");
    assert_eq!(mem[0], Some(600.0));
    assert_eq!(mem[n - 1], Some(70600.0));
    let m = meta(&out);
    assert_eq!(m.get("servebench.schema"), Some("gpu/1"));
    let summary: serde_json::Value = serde_json::from_str(m.get("servebench.gpumon").unwrap()).unwrap();
    assert_eq!(summary["rows"].as_u64(), Some(n as u64));
    assert!(summary["sampler_cpu_us_per_tick"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["stopped_by"], "--duration reached");
    // processes beside it, once the fake engine holds memory
    let procs = d.path().join("gpu.processes.parquet");
    let pids = column_text(&procs, "pid");
    assert!(!pids.is_empty());
    assert!(pids.iter().all(|p| p == &pids[0]));
    assert_eq!(column_f64(&procs, "mem_used_mib")[0], Some(70000.0));
    assert_eq!(meta(&procs).get("servebench.schema"), Some("gpu_processes/1"));
    assert!(!d.path().join("_gpu.parquet.partial").exists());
    // DuckDB reads it: the energy counter's delta agrees with the power integral
    let q = duckdb(&format!(
        "SELECT gpu, round(max(energy_j) - min(energy_j)) AS de, count(*) FROM '{}' GROUP BY gpu ORDER BY gpu",
        out.display()
    ));
    assert!(q.starts_with("(0, "), "{q}");
    let samples = servebench::gpu::window::load_gpu(&[out.to_string_lossy().to_string()]).unwrap();
    assert_eq!(samples.len(), n);
    let w = servebench::gpu::window::gpu_window(&samples, samples[0].t_us, samples[n - 1].t_us);
    assert_eq!(w.gpus, 2);
    assert_eq!(w.mem_idle_mib, Some(1200.0));
    assert_eq!(w.mem_peak_mib, Some(141200.0));
    assert_eq!(w.energy_source, Some(servebench::gpu::window::EnergySource::Counter));
}

#[test]
fn wrapping_a_command_exits_with_its_status_and_writes_a_valid_file() {
    let d = tmp();
    let out = d.path().join("x.parquet");
    let o = run(cmd("gpumon")
        .args(["--fake", "1", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "exit 3"]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // at least the first tick and the final sample
    assert!(rows(&out) >= 1);
    let summary = meta(&out).get("servebench.gpumon").unwrap().to_string();
    assert!(summary.contains("exit 3"), "{summary}");
    // a command that runs a while is sampled all along
    let out2 = d.path().join("y.parquet");
    let o = run(cmd("gpumon")
        .args(["--fake", "1", "--interval", "10ms", "-o"])
        .arg(&out2)
        .args(["--", "sleep", "0.5"]));
    assert_eq!(o.status.code(), Some(0));
    let n = rows(&out2);
    assert!((30..=70).contains(&n), "{n}");
    // a command that cannot start: exit 2, one line, no file left behind
    let out3 = d.path().join("z.parquet");
    let o = run(cmd("gpumon")
        .args(["--fake", "1", "-o"])
        .arg(&out3)
        .args(["--", "/nonexistent/cmd"]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(!out3.exists());
    assert!(!d.path().join("_z.parquet.partial").exists());
}

#[test]
fn sigterm_ends_a_long_run_with_a_valid_file() {
    let d = tmp();
    let out = d.path().join("gpu.parquet");
    let child = cmd("gpumon")
        .args(["--fake", "2", "--interval", "10ms", "-o"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let journal = d.path().join("_gpu.parquet.partial");
    wait_for("100 rows in the journal", Duration::from_secs(30), || {
        journal_rows(&journal) >= 100
    });
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let n = rows(&out);
    assert!(n >= 100, "{n} rows");
    assert!(!d.path().join("_gpu.parquet.partial").exists());
    assert!(meta(&out).get("servebench.gpumon").unwrap().contains("SIGTERM"));
}

#[test]
fn sigterm_is_forwarded_to_the_wrapped_command() {
    let d = tmp();
    let out = d.path().join("gpu.parquet");
    let child = cmd("gpumon")
        .args(["--fake", "1", "--interval", "10ms", "-o"])
        .arg(&out)
        .args(["--", "sleep", "30"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // rows in the journal: the command has started and sampling runs
    let journal = d.path().join("_gpu.parquet.partial");
    wait_for("20 rows in the journal", Duration::from_secs(30), || {
        journal_rows(&journal) >= 20
    });
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let o = child.wait_with_output().unwrap();
    // sleep was killed by SIGTERM: 128 + 15, as a shell reports it
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert!(stderr(&o).contains("forwarding SIGTERM"), "{}", stderr(&o));
    assert!(rows(&out) >= 20);
}

#[test]
fn sigkill_leaves_a_journal_that_recover_turns_into_the_file() {
    let d = tmp();
    let out = d.path().join("gpu.parquet");
    let mut child = cmd("gpumon")
        .args(["--fake", "1", "--interval", "10ms", "--processes", "-o"])
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = d.path().join("_gpu.parquet.partial");
    let pj = d.path().join("_gpu.processes.parquet.partial");
    // two flushes at least: what was flushed before the kill must all come back
    wait_for("150 rows in the journals", Duration::from_secs(30), || {
        journal_rows(&journal) >= 150 && journal_rows(&pj) > 0
    });
    let flushed = journal_rows(&journal);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "no file under the final name after SIGKILL");
    assert!(journal.exists());
    let o = ok(cmd("gpumon").arg("--recover").arg(&journal));
    assert!(stderr(&o).contains("recovered"), "{}", stderr(&o));
    let n = rows(&out);
    // every row flushed before the kill is recovered (the journal only grows)
    assert!(n >= flushed, "recovered {n} rows of {flushed} flushed");
    assert!(!journal.exists());
    assert_eq!(meta(&out).get("servebench.schema"), Some("gpu/1"));
    // the processes journal recovers the same way, to a chosen name
    let pout = d.path().join("procs.parquet");
    ok(cmd("gpumon").arg("--recover").arg(&pj).arg("-o").arg(&pout));
    assert!(rows(&pout) > 0);
    assert_eq!(meta(&pout).get("servebench.schema"), Some("gpu_processes/1"));
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for args in [
        vec!["--fake", "1", "--interval", "5ms", "--format", "csv"],
        vec!["--fake", "1", "--gpus", "x", "--format", "csv"],
        vec!["--fake", "2", "--gpus", "0,5", "--format", "csv"],
        vec!["--fake", "1", "--processes", "--format", "csv"],
        vec!["--fake", "1", "--duration", "1s", "--format", "csv", "--", "true"],
        vec!["--recover", "/_nonexistent.parquet.partial"],
    ] {
        let o = run(cmd("gpumon").args(&args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
    let o = ok(cmd("gpumon").args(["--print-schema", "--processes"]));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("missed_ticks") && s.contains("gpu_processes"), "{s}");
    let o = ok(cmd("gpumon").arg("--help"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--fake"));
}

#[test]
fn csv_to_stdout() {
    let o = ok(cmd("gpumon").args(["--fake", "1", "--duration", "250ms", "--format", "csv", "--quiet"]));
    let s = String::from_utf8_lossy(&o.stdout);
    let mut lines = s.lines();
    assert!(lines.next().unwrap().starts_with("t,gpu,uuid,name,util_pct"));
    assert!(lines.count() >= 3, "{s}");
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

/// gpumon runs in process under a stop the caller holds (no signals, no sleeps).
#[test]
fn gpumon_in_process_stops_on_request() {
    use clap::Parser;
    use servebench::stop::{Stop, StopReason};
    let d = tmp();
    let out = d.path().join("gpu.parquet");
    let args = servebench::cmd::gpumon::Args::parse_from([
        "gpumon",
        "--fake",
        "2",
        "--interval",
        "10ms",
        "--quiet",
        "-o",
        &out.to_string_lossy(),
    ]);
    let stop = Stop::new();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || servebench::cmd::gpumon::run_with(args, s2));
    let journal = d.path().join("_gpu.parquet.partial");
    wait_for("rows in the journal", Duration::from_secs(30), || {
        journal_rows(&journal) >= 20
    });
    let flushed = journal_rows(&journal);
    stop.request(StopReason::Requested);
    let code = h.join().unwrap().unwrap();
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::SUCCESS));
    assert!(rows(&out) > flushed, "the final sample is there too");
    assert!(!journal.exists());
    let summary = meta(&out).get("servebench.gpumon").unwrap().to_string();
    assert!(summary.contains("stop requested"), "{summary}");
}
