use crate::common::*;

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
