//! The analysis part: requests files in, one summary row per group out. agg, chart and report
//! all run the one pipeline here ([`analyse`]): read the requests once, fold each row into its
//! group, finish the groups into summary rows, join GPU and engine metrics by time window.
//!
//! - [`options`]: what to compute (definitions, SLOs, grouping, memory budget)
//! - [`ingest`]: the parallel reader with its memory budget, and per-row intake
//! - [`events`]: engine steps as the client saw them (bursts merged): tokens per event and
//!   per-token ITL
//! - [`summary`]: summary rows from the groups (statistics come from [`crate::stats`])
//! - [`joins`]: GPU samples and engine metrics matched by each group's window
//! - [`compare`]: `agg --compare A,B`
//! - [`imported`]: the provenance of rows `import` read from other tools' files
//! - [`render`]: the summary contract's batch and the Markdown table

pub mod compare;
pub mod events;
pub mod imported;
pub mod ingest;
pub mod joins;
pub mod options;
pub mod render;
pub mod summary;

pub use compare::{Cmp, compare, comparison_batch, comparison_markdown};
pub use ingest::{Acc, Groups, Key, READ_COLUMNS};
pub use joins::{Monitors, join_monitors};
pub use options::{
    BY_COLUMNS, Definition, Defs, EXACT_BUDGET, Itl, METRICS, Options, Slo, crosswalk_markdown, own_definitions,
};
pub use render::{client_bound_lines, markdown, to_batch};
pub use summary::{finish, read_summary, window};

use crate::io::DataError;
use crate::schema::Summary;

/// The result of the pipeline: the groups (samples sorted, for distributions and
/// comparisons) and their summary rows.
#[derive(Debug)]
pub struct Analysis {
    pub groups: Groups,
    pub rows: Vec<Summary>,
}

/// Reader threads: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// The one analysis pipeline: read the requests `inputs` once (files and row groups in
/// parallel, within the memory budget), finish every group into a summary row and join the
/// monitors' samples to it.
pub fn analyse(inputs: &[String], o: &Options, mons: &Monitors) -> Result<Analysis, DataError> {
    let groups = Groups::read(inputs, o, threads())?;
    Ok(Analysis::finish(groups, o, mons))
}

impl Analysis {
    /// Summary rows of read groups, with the monitors joined.
    pub fn finish(mut groups: Groups, o: &Options, mons: &Monitors) -> Analysis {
        let mut rows = finish(&mut groups, o);
        join_monitors(&mut rows, &groups, &mons.gpu, &mons.engine);
        Analysis { groups, rows }
    }

    /// The same requests grouped by `o.by` only (a subset of the grouping they were read
    /// with): groups that differ only in the dropped columns are merged, so a second grouping
    /// costs no second read of the inputs.
    pub fn regroup(&self, o: &Options, mons: &Monitors) -> Analysis {
        Analysis::finish(self.groups.regroup(&o.by), o, mons)
    }
}
