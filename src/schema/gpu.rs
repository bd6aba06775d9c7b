//! The gpu and gpu_processes contracts (gpumon -> agg, chart).

use std::sync::Arc;

use super::Ts;

/// One device's reading at one instant; None where the device does not report it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub util_pct: Option<f64>,
    pub mem_util_pct: Option<f64>,
    pub mem_used_mib: Option<f64>,
    pub mem_total_mib: Option<f64>,
    pub power_w: Option<f64>,
    pub energy_j: Option<f64>,
    pub temp_c: Option<f64>,
    pub sm_clock_mhz: Option<u32>,
    pub mem_clock_mhz: Option<u32>,
    pub pcie_tx_kib_s: Option<f64>,
    pub pcie_rx_kib_s: Option<f64>,
    pub throttle_reasons: Option<u64>,
}

/// One row of the gpu contract.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuRow {
    pub t_us: i64,
    pub gpu: u32,
    pub uuid: Arc<str>,
    pub name: Arc<str>,
    pub reading: Reading,
    pub missed_ticks: u32,
}

/// One row of the gpu_processes contract.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcRow {
    pub t_us: i64,
    pub gpu: u32,
    pub pid: u32,
    pub process_name: Option<String>,
    pub mem_used_mib: Option<f64>,
}

crate::contract! {
    /// one row per GPU per sample
    pub static GPU = ("gpu", 1, "one row per GPU per sample (gpumon -> agg, chart)");
    rows GpuRow, ctx ();
    /// Column names of the gpu contract.
    names col;
    T "t": Ts, opt, "", "sample time", get(|r, _| r.t_us);
    GPU_INDEX "gpu": u32, opt, "", "NVML device index", field(gpu);
    UUID "uuid": Arc<str>, opt, "", "device UUID", field(uuid);
    NAME "name": Arc<str>, opt, "", "device name", field(name);
    UTIL_PCT "util_pct": Option<f64>, opt, "%", "GPU utilisation over the driver's last sample period", field(reading.util_pct);
    MEM_UTIL_PCT "mem_util_pct": Option<f64>, opt, "%", "memory-controller utilisation", field(reading.mem_util_pct);
    MEM_USED_MIB "mem_used_mib": Option<f64>, opt, "MiB", "device memory in use", field(reading.mem_used_mib);
    MEM_TOTAL_MIB "mem_total_mib": Option<f64>, opt, "MiB", "device memory in total", field(reading.mem_total_mib);
    POWER_W "power_w": Option<f64>, opt, "W", "board power draw", field(reading.power_w);
    ENERGY_J "energy_j": Option<f64>, opt, "J", "the device's running energy counter (since driver load)", field(reading.energy_j);
    TEMP_C "temp_c": Option<f64>, opt, "degC", "GPU temperature", field(reading.temp_c);
    SM_CLOCK_MHZ "sm_clock_mhz": Option<u32>, opt, "MHz", "SM clock", field(reading.sm_clock_mhz);
    MEM_CLOCK_MHZ "mem_clock_mhz": Option<u32>, opt, "MHz", "memory clock", field(reading.mem_clock_mhz);
    PCIE_TX_KIB_S "pcie_tx_kib_s": Option<f64>, opt, "KiB/s", "PCIe transmit throughput", field(reading.pcie_tx_kib_s);
    PCIE_RX_KIB_S "pcie_rx_kib_s": Option<f64>, opt, "KiB/s", "PCIe receive throughput", field(reading.pcie_rx_kib_s);
    THROTTLE_REASONS "throttle_reasons": Option<u64>, opt, "", "NVML clocks-event (throttle) reason bitmask", field(reading.throttle_reasons);
    MISSED_TICKS "missed_ticks": u32, opt, "", "sampling ticks skipped before this sample because sampling ran late", field(missed_ticks);
}

crate::contract! {
    /// per-process GPU memory
    pub static GPU_PROCESSES = ("gpu_processes", 1, "per-process GPU memory (gpumon --processes, written beside the gpu file)");
    rows ProcRow, ctx ();
    /// Column names of the gpu_processes contract.
    names proc_col;
    T "t": Ts, opt, "", "sample time", get(|r, _| r.t_us);
    GPU_INDEX "gpu": u32, opt, "", "NVML device index", field(gpu);
    PID "pid": u32, opt, "", "process id", field(pid);
    PROCESS_NAME "process_name": Option<String>, opt, "", "process name from /proc", field(process_name);
    MEM_USED_MIB "mem_used_mib": Option<f64>, opt, "MiB", "device memory used by the process", field(mem_used_mib);
}
