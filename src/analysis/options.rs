//! Options of one aggregation: the metric definitions (`--defs`), the SLO grammar (`--slo`),
//! grouping and the memory budget.

use crate::schema::summary::col;

/// TPOT/ITL definitions of the tools people compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Defs {
    /// vLLM `bench serve`: TPOT = (E2E - TTFT)/(tokens - 1) per request; ITL = every gap
    /// between content chunks, pooled over requests.
    Vllm,
    /// NVIDIA AIPerf: inter-token latency is per request, (E2E - TTFT)/(tokens - 1); TPOT is
    /// reported as the same per-request value.
    Aiperf,
    /// GuideLLM: time per output token = E2E / tokens (TTFT included); inter-token latency =
    /// (E2E - TTFT)/(tokens - 1) per request.
    Guidellm,
}

impl Defs {
    /// TPOT of one request as these definitions report it, from the request's vLLM-style
    /// TPOT ((E2E - TTFT)/(tokens - 1)), its E2E and its output tokens. Goodput and the
    /// `--slo tpot=` check use this same value: the SLO is judged on what is reported.
    pub fn tpot(self, vllm_tpot: Option<f64>, e2e: Option<f64>, out_tokens: u64) -> Option<f64> {
        match self {
            Defs::Vllm | Defs::Aiperf => vllm_tpot,
            Defs::Guidellm => e2e.filter(|_| out_tokens > 0).map(|e| e / out_tokens as f64),
        }
    }
}

/// Service-level objectives for goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl std::str::FromStr for Slo {
    type Err = String;
    /// `ttft=500ms,tpot=50ms,e2e=10s`: each value in the one duration grammar ([`crate::units`])
    fn from_str(s: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--slo {part:?}: use metric=value, e.g. ttft=500ms"))?;
            let v = v.trim();
            let ms = crate::units::parse_ms(v).map_err(|e| format!("--slo {part:?}: {e}"))?;
            if !(ms.is_finite() && ms > 0.0) {
                return Err(format!("--slo {part:?}: must be positive"));
            }
            match k.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2e" => slo.e2e_ms = Some(ms),
                o => return Err(format!("--slo: unknown metric {o:?}; use ttft, tpot, e2e")),
            }
        }
        Ok(slo)
    }
}

impl Slo {
    pub fn any(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }
}

/// Options of one aggregation.
#[derive(Debug, Clone)]
pub struct Options {
    pub by: Vec<String>,
    pub slo: Slo,
    pub include_warmup: bool,
    pub defs: Defs,
    pub bootstrap: usize,
    pub seed: u64,
    /// Latency values kept exactly in memory, over all groups (8 bytes each). Beyond it,
    /// every metric moves to an HDR histogram (bounded memory, percentiles within 0.1%).
    pub exact_budget: usize,
}

/// Default exact-value budget: 256 M values (2 GiB).
pub const EXACT_BUDGET: usize = 256 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            by: Vec::new(),
            slo: Slo::default(),
            include_warmup: false,
            defs: Defs::Vllm,
            bootstrap: 1000,
            seed: 0,
            exact_budget: EXACT_BUDGET,
        }
    }
}

/// Columns `--by` may name besides the run-identity keys, which are always grouped on.
pub const BY_COLUMNS: &[&str] = &[col::CATEGORY, col::TURN];
pub(crate) const ID_KEYS: &[&str] = &[
    col::LABEL,
    col::ENGINE,
    col::MODEL,
    col::QUANT,
    col::CONCURRENCY,
    col::RATE_RPS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_parse() {
        let s: Slo = "ttft=500ms, tpot=50ms, e2e=2s".parse().unwrap();
        assert_eq!(
            s,
            Slo {
                ttft_ms: Some(500.0),
                tpot_ms: Some(50.0),
                e2e_ms: Some(2000.0)
            }
        );
        assert!("ttft".parse::<Slo>().is_err());
        assert!("x=1".parse::<Slo>().is_err());
        assert!("ttft=-1ms".parse::<Slo>().is_err());
        let e = "ttft=500".parse::<Slo>().unwrap_err();
        assert!(e.contains("no unit"), "{e}");
    }
}
