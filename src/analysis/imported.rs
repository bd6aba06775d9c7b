//! The provenance of rows `import` read from another tool's file (`servebench.import.*`):
//! written by `cmd::import`, read by agg (the tool's own run duration) and report (labels by
//! source tool, warnings on mixed definitions).

use std::collections::BTreeMap;

use super::options::Defs;
use crate::meta::Meta;

/// The source tool's name (every input of one import is of one tool).
pub const TOOL: &str = "servebench.import.tool";
/// The definitions its numbers follow (an `agg --defs` name).
pub const DEFS: &str = "servebench.import.defs";
/// The definitions in words, metric by metric (JSON list of [`super::Definition`]).
pub const DEFINITIONS: &str = "servebench.import.definitions";
/// What the importer was written for (tool, version, command).
pub const WRITTEN_FOR: &str = "servebench.import.written_for";
/// One [`Source`] per input file (JSON list).
pub const SOURCES: &str = "servebench.import.sources";

/// One imported file, as the output's provenance records it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub path: String,
    /// The label its rows were given.
    pub label: String,
    /// The tool's version as the file records it (None: the file does not say).
    pub version: Option<String>,
    /// The tool's own run duration, s (its throughputs divide by it).
    pub duration_s: Option<f64>,
    /// absolute, relative or none (see `peers::Instants`).
    pub instants: String,
    /// How relative instants were placed, in words.
    pub anchor: Option<String>,
    /// The tool's own summary numbers, by its own key.
    #[serde(default)]
    pub reported: BTreeMap<String, f64>,
    #[serde(default)]
    pub notes: BTreeMap<String, String>,
    pub requests: usize,
}

/// What a file's provenance says of an import: the tool, its definitions and its sources;
/// None for servebench's own files.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportMeta {
    pub tool: String,
    pub defs: Option<Defs>,
    pub sources: Vec<Source>,
}

impl ImportMeta {
    pub fn of(meta: &Meta) -> Option<ImportMeta> {
        let tool = meta.get(TOOL)?.to_string();
        let defs = meta
            .get(DEFS)
            .and_then(|d| <Defs as clap::ValueEnum>::from_str(d, false).ok());
        let sources = meta
            .get(SOURCES)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Some(ImportMeta { tool, defs, sources })
    }
}

/// One imported run's clock as agg uses it: the tool's definitions and its run duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolRun {
    pub defs: Defs,
    pub duration_s: f64,
}

/// What a group knows of imported runs' durations: none, one, or several that disagree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ToolRuns {
    #[default]
    None,
    One(ToolRun),
    Mixed,
}

impl ToolRuns {
    pub fn merge(self, o: ToolRuns) -> ToolRuns {
        match (self, o) {
            (ToolRuns::None, x) | (x, ToolRuns::None) => x,
            (ToolRuns::One(a), ToolRuns::One(b)) if a == b => ToolRuns::One(a),
            _ => ToolRuns::Mixed,
        }
    }
}
