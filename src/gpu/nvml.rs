//! NVML devices (nvml-wrapper, `libnvidia-ml.so.1` loaded at run time).
//!
//! Calls per device and tick (CRATES.md "NVML"): `utilization_rates`, `memory_info`,
//! `power_usage` (mW), `total_energy_consumption` (mJ since driver load, Volta+),
//! `temperature(Gpu)`, `clock_info(SM | Memory)`, `current_throttle_reasons`, and the PCIe byte
//! counters through field values (`NVML_FI_DEV_PCIE_COUNT_TX_BYTES` / `_RX_BYTES`), turned into
//! KiB/s between consecutive samples. `nvmlDeviceGetPcieThroughput` is not used: it blocks for
//! 20 ms per call (it measures over that window), which would wreck a 100 ms schedule; on
//! drivers without the counters the PCIe columns are null.
//!
//! A field the device does not support (`NotSupported`, `FunctionNotFound`, `NoPermission`)
//! is asked once and then left null; other errors make that field null for one sample; a lost
//! GPU fails the device's sample.

use nvml_wrapper::Device;
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::{NVML_FI_DEV_PCIE_COUNT_RX_BYTES, NVML_FI_DEV_PCIE_COUNT_TX_BYTES};

use super::{DeviceInfo, GpuError, GpuSource, ProcMem, Reading};

const MIB: f64 = 1024.0 * 1024.0;

/// NVML could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum NvmlInitError {
    #[error(
        "no NVIDIA driver: NVML could not be loaded ({0}); gpumon needs an NVIDIA GPU and its driver (or try it with --fake N)"
    )]
    NoDriver(String),
    #[error("NVML: {0}")]
    Other(String),
    #[error("--gpus {index}: this machine has {count} GPU(s) (indices 0 to {last})")]
    NoSuchGpu { index: u32, count: u32, last: i64 },
}

#[derive(Clone, Copy)]
enum Field {
    Util,
    Mem,
    Power,
    Energy,
    Temp,
    SmClock,
    MemClock,
    Throttle,
    Pcie,
    Procs,
}

struct Dev {
    device: Device<'static>,
    unsupported: u32,
    /// Previous PCIe counters: (NVML timestamp in µs, tx bytes, rx bytes).
    pcie_prev: Option<(i64, u64, u64)>,
}

pub struct NvmlSource {
    nvml: &'static Nvml,
    devices: Vec<DeviceInfo>,
    devs: Vec<Dev>,
}

fn unsupported(e: &NvmlError) -> bool {
    matches!(
        e,
        NvmlError::NotSupported
            | NvmlError::FunctionNotFound
            | NvmlError::NoPermission
            | NvmlError::FailedToLoadSymbol(_)
    )
}

impl NvmlSource {
    /// Load NVML and open the devices (all, or the indices in `only`).
    pub fn open(only: Option<&[u32]>) -> Result<NvmlSource, NvmlInitError> {
        let nvml = match Nvml::init() {
            Ok(n) => n,
            Err(
                e @ (NvmlError::LibloadingError(_)
                | NvmlError::DriverNotLoaded
                | NvmlError::LibraryNotFound
                | NvmlError::NoPermission
                | NvmlError::FailedToLoadSymbol(_)),
            ) => return Err(NvmlInitError::NoDriver(e.to_string())),
            Err(e) => return Err(NvmlInitError::Other(e.to_string())),
        };
        // gpumon is one process sampling until it exits: NVML stays loaded for its lifetime.
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        let count = nvml.device_count().map_err(|e| NvmlInitError::Other(e.to_string()))?;
        let indices: Vec<u32> = match only {
            None => (0..count).collect(),
            Some(v) => {
                if let Some(bad) = v.iter().find(|i| **i >= count) {
                    return Err(NvmlInitError::NoSuchGpu {
                        index: *bad,
                        count,
                        last: count as i64 - 1,
                    });
                }
                v.to_vec()
            }
        };
        if indices.is_empty() {
            return Err(NvmlInitError::Other(
                "the driver is loaded but lists no GPU; check nvidia-smi".into(),
            ));
        }
        let mut devices = Vec::new();
        let mut devs = Vec::new();
        for i in indices {
            let d = nvml
                .device_by_index(i)
                .map_err(|e| NvmlInitError::Other(format!("GPU {i}: {e}")))?;
            devices.push(DeviceInfo {
                index: i,
                uuid: d.uuid().unwrap_or_else(|_| format!("GPU-index-{i}")),
                name: d.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
            });
            devs.push(Dev {
                device: d,
                unsupported: 0,
                pcie_prev: None,
            });
        }
        Ok(NvmlSource { nvml, devices, devs })
    }
}

impl Dev {
    fn get<T>(
        &mut self,
        f: Field,
        call: impl FnOnce(&Device<'static>) -> Result<T, NvmlError>,
    ) -> Result<Option<T>, GpuError> {
        let bit = 1u32 << (f as u32);
        if self.unsupported & bit != 0 {
            return Ok(None);
        }
        match call(&self.device) {
            Ok(v) => Ok(Some(v)),
            Err(NvmlError::GpuLost) => Err(GpuError("the GPU has fallen off the bus (GpuLost)".into())),
            Err(e) if unsupported(&e) => {
                self.unsupported |= bit;
                Ok(None)
            }
            Err(_) => Ok(None),
        }
    }

    fn pcie(&mut self) -> Result<(Option<f64>, Option<f64>), GpuError> {
        let ids = [
            FieldId(NVML_FI_DEV_PCIE_COUNT_TX_BYTES),
            FieldId(NVML_FI_DEV_PCIE_COUNT_RX_BYTES),
        ];
        let Some(vals) = self.get(Field::Pcie, |d| d.field_values_for(&ids))? else {
            return Ok((None, None));
        };
        let as_u64 = |v: &SampleValue| match *v {
            SampleValue::U64(x) => Some(x),
            SampleValue::U32(x) => Some(x as u64),
            SampleValue::I64(x) => u64::try_from(x).ok(),
            SampleValue::F64(x) => (x >= 0.0).then_some(x as u64),
        };
        let mut tx = None;
        let mut rx = None;
        let mut ts = None;
        for (k, s) in vals.into_iter().enumerate() {
            let Ok(s) = s else { continue };
            match &s.value {
                Ok(v) => {
                    ts = Some(s.timestamp);
                    if k == 0 {
                        tx = as_u64(v);
                    } else {
                        rx = as_u64(v);
                    }
                }
                Err(e) if unsupported(e) => {
                    self.unsupported |= 1 << (Field::Pcie as u32);
                }
                Err(_) => {}
            }
        }
        let (Some(tx), Some(rx), Some(ts)) = (tx, rx, ts) else {
            return Ok((None, None));
        };
        let prev = self.pcie_prev.replace((ts, tx, rx));
        Ok(match prev {
            Some((t0, tx0, rx0)) if ts > t0 && tx >= tx0 && rx >= rx0 => {
                let dt = (ts - t0) as f64 * 1e-6;
                (
                    Some((tx - tx0) as f64 / 1024.0 / dt),
                    Some((rx - rx0) as f64 / 1024.0 / dt),
                )
            }
            _ => (None, None),
        })
    }
}

impl GpuSource for NvmlSource {
    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn sample(&mut self, i: usize) -> Result<Reading, GpuError> {
        let d = self.devs.get_mut(i).ok_or_else(|| GpuError(format!("no device {i}")))?;
        let util = d.get(Field::Util, |d| d.utilization_rates())?;
        let mem = d.get(Field::Mem, |d| d.memory_info())?;
        let power = d.get(Field::Power, |d| d.power_usage())?;
        let energy = d.get(Field::Energy, |d| d.total_energy_consumption())?;
        let temp = d.get(Field::Temp, |d| d.temperature(TemperatureSensor::Gpu))?;
        let sm = d.get(Field::SmClock, |d| d.clock_info(Clock::SM))?;
        let memclk = d.get(Field::MemClock, |d| d.clock_info(Clock::Memory))?;
        let thr = d.get(Field::Throttle, |d| d.current_throttle_reasons())?;
        let (tx, rx) = d.pcie()?;
        Ok(Reading {
            util_pct: util.as_ref().map(|u| u.gpu as f64),
            mem_util_pct: util.as_ref().map(|u| u.memory as f64),
            mem_used_mib: mem.as_ref().map(|m| m.used as f64 / MIB),
            mem_total_mib: mem.as_ref().map(|m| m.total as f64 / MIB),
            power_w: power.map(|mw| mw as f64 / 1000.0),
            energy_j: energy.map(|mj| mj as f64 / 1000.0),
            temp_c: temp.map(|t| t as f64),
            sm_clock_mhz: sm,
            mem_clock_mhz: memclk,
            pcie_tx_kib_s: tx,
            pcie_rx_kib_s: rx,
            throttle_reasons: thr.map(|t| t.bits()),
        })
    }

    fn processes(&mut self, i: usize) -> Result<Vec<ProcMem>, GpuError> {
        let d = self.devs.get_mut(i).ok_or_else(|| GpuError(format!("no device {i}")))?;
        let compute = d
            .get(Field::Procs, |d| d.running_compute_processes())?
            .unwrap_or_default();
        let graphics = d
            .get(Field::Procs, |d| d.running_graphics_processes())?
            .unwrap_or_default();
        let mut out: Vec<ProcMem> = Vec::new();
        for p in compute.into_iter().chain(graphics) {
            if out.iter().any(|q| q.pid == p.pid) {
                continue;
            }
            out.push(ProcMem {
                pid: p.pid,
                mem_used_mib: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b as f64 / MIB),
                    UsedGpuMemory::Unavailable => None,
                },
            });
        }
        Ok(out)
    }

    fn facts(&self) -> Vec<(String, String)> {
        let mut v = vec![("servebench.gpu.source".to_string(), "nvml".to_string())];
        if let Ok(s) = self.nvml.sys_driver_version() {
            v.push(("servebench.gpu.driver".into(), s));
        }
        if let Ok(s) = self.nvml.sys_nvml_version() {
            v.push(("servebench.gpu.nvml".into(), s));
        }
        if let Ok(c) = self.nvml.sys_cuda_driver_version() {
            v.push((
                "servebench.gpu.cuda_driver".into(),
                format!("{}.{}", c / 1000, (c % 1000) / 10),
            ));
        }
        let names: Vec<String> = self
            .devices
            .iter()
            .map(|d| format!("{}: {} ({})", d.index, d.name, d.uuid))
            .collect();
        v.push(("servebench.gpu.devices".into(), names.join("; ")));
        v
    }
}
