//! import: other benchmark tools' result files into the requests contract.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::OutArgs;
use crate::io::Sink;
use crate::meta::{Meta, RunClock};
use crate::peers::{self, Imported, Tool, meta_keys};
use crate::schema::{REQUESTS, Rows};

const EXAMPLES: &str = "\
Examples:
  import vllm-c8.json -o runs/vllm-c8.parquet          # vllm bench serve --save-result --save-detailed
  import --tool sglang sglang.jsonl -o runs/sglang.parquet
  import runs-vllm/*.json --label vllm-bench -o runs/vllm-bench.parquet
  agg runs/vllm-c8.parquet --defs vllm                 # the numbers as vLLM defines them

Each file's tool is recognised from its shape unless --tool names it; the files of one
import are of one tool. Every timing the file has is kept: chunk gaps become chunk_times_ms,
absolute instants are kept where the file has them and null where not. The source tool, its
version, its definitions and its own summary numbers go into the output's provenance
(servebench.import.*) and the source_tool column. A missing required field is an error naming
the field, the file and the tool version the importer was written for; unknown fields are
ignored. Label: --label, else the file's name without its extension.";

/// import's command line.
#[derive(clap::Parser, Debug)]
#[command(
    name = "import",
    version,
    about = "Read other benchmark tools' per-request results into a requests file",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Result files of one tool
    #[arg(required_unless_present = "print_schema")]
    pub files: Vec<PathBuf>,
    /// The tool that wrote them [default: recognised from each file's shape]
    #[arg(long, value_enum)]
    pub tool: Option<Tool>,
    /// Label of the rows [default: each file's name without its extension]
    #[arg(long)]
    pub label: Option<String>,
    #[command(flatten)]
    pub out: OutArgs,
}

/// Run import.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.print_schema {
        print!("{}", REQUESTS.print());
        return Ok(ExitCode::SUCCESS);
    }
    let mut files: Vec<(PathBuf, Imported)> = Vec::new();
    for p in &args.files {
        let imp = peers::import_file(p, args.tool)?;
        if let Some((q, first)) = files.first()
            && first.tool != imp.tool
        {
            anyhow::bail!(
                "{} is a {} file but {} is a {} file: import one tool's files at a time (to separate outputs)",
                p.display(),
                imp.tool.name(),
                q.display(),
                first.tool.name()
            );
        }
        files.push((p.clone(), imp));
    }
    let tool = files.first().map(|(_, i)| i.tool).expect("clap requires a file");
    let run_id = RunClock::global().run_id.clone();
    let mut meta = Meta::for_output(&REQUESTS, false);
    meta.set(meta_keys::TOOL, tool.name());
    meta.set(meta_keys::DEFS, tool.defs().name());
    meta.set(meta_keys::WRITTEN_FOR, tool.spec().written_for);
    meta.set(
        meta_keys::DEFINITIONS,
        serde_json::to_string(&tool.defs().definitions())?,
    );
    let mut sources = Vec::new();
    let mut batches = Vec::new();
    for (p, imp) in &mut files {
        let mut labels = imp.labels.clone();
        labels.label = args.label.clone().unwrap_or_else(|| {
            p.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| tool.name().into())
        });
        labels.run_id = run_id.clone();
        labels.source_tool = Some(tool.name().into());
        sources.push(meta_keys::Source {
            path: p.display().to_string(),
            label: labels.label.clone(),
            version: imp.version.clone(),
            duration_s: imp.duration_s,
            instants: imp.instants.as_str().into(),
            anchor: imp.anchor.clone(),
            reported: imp.reported.clone(),
            notes: imp.notes.clone(),
            requests: imp.records.len(),
        });
        batches.push(crate::schema::Record::encode(&imp.records, &labels));
        let failed = imp
            .records
            .iter()
            .filter(|r| r.status != crate::schema::Status::Ok)
            .count();
        crate::say!(
            "import",
            "{}: {} file, {} requests ({} failed), instants {}",
            p.display(),
            tool.name(),
            imp.records.len(),
            failed,
            imp.instants.as_str()
        );
    }
    meta.set(meta_keys::SOURCES, serde_json::to_string(&sources)?);
    // the keys replay writes, where every file agrees (report's provenance table reads them)
    let one = |f: fn(&meta_keys::Source, &Imported) -> Option<String>| {
        let v: std::collections::BTreeSet<Option<String>> =
            sources.iter().zip(&files).map(|(s, (_, i))| f(s, i)).collect();
        (v.len() == 1).then(|| v.into_iter().next().flatten()).flatten()
    };
    if let Some(l) = one(|s, _| Some(s.label.clone())) {
        meta.set("servebench.label", l);
    }
    if let Some(m) = one(|_, i| i.labels.model.clone()) {
        meta.set("servebench.model", m);
    }
    if let Some(a) = one(|_, i| Some(i.labels.api.clone())) {
        meta.set("servebench.api", a);
    }
    let mut sink = Sink::create(args.out.output.as_deref(), args.out.format, REQUESTS.schema(), &meta)?;
    for b in &batches {
        sink.write(b)?;
    }
    sink.finish()?;
    Ok(ExitCode::SUCCESS)
}
