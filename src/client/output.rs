//! How replay's records are recorded: the requests contract's [`Spec`] for the journalled
//! [`crate::recorder`] (4,096 rows a batch, labelled with the run), and the closing tally.

use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use crate::recorder::Spec;
use crate::schema::{Record, RunLabels, Status};

/// Rows per batch (a batch is also written when its oldest record is a second old).
pub const BATCH_ROWS: usize = 4096;

/// Counts by status, for the closing summary line.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub rows: u64,
    pub by_status: std::collections::BTreeMap<&'static str, u64>,
    pub warmup: u64,
}

impl Tally {
    fn count(&mut self, rec: &Record) {
        self.rows += 1;
        if rec.warmup {
            self.warmup += 1;
        }
        *self.by_status.entry(rec.status.as_str()).or_default() += 1;
    }
}

/// The recorder spec of a run's records: encoded with its labels; each record counted in
/// `tally` and on `progress` as it arrives.
pub fn spec(labels: RunLabels, progress: ProgressBar, tally: Arc<Mutex<Tally>>) -> Spec<Record> {
    Spec {
        batch_rows: BATCH_ROWS,
        observe: Some(Box::new(move |rec| {
            tally.lock().unwrap_or_else(|e| e.into_inner()).count(rec);
            progress.inc(1);
        })),
        ..Spec::with_ctx(labels)
    }
}

/// One line for stderr summarising a run.
pub fn summary_line(t: &Tally) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in Status::ALL {
        if let Some(n) = t.by_status.get(s.as_str()) {
            parts.push(format!("{} {}", n, s.as_str()));
        }
    }
    let warm = if t.warmup > 0 {
        format!(" (incl. {} warm-up)", t.warmup)
    } else {
        String::new()
    };
    format!("{} rows{}: {}", t.rows, warm, parts.join(", "))
}
