//! The single source of truth for every column servebench writes or reads.
//!
//! Each data contract (trace, requests, gpu, gpu_processes, engine_metrics, summary,
//! comparison, capacity) is declared once, with [`contract!`](crate::contract), as typed rows: the Rust
//! row struct, and per column its name constant, type, unit, doc and getter. From that one
//! declaration come the [`Contract`] (Arrow schema, `--print-schema`, README's tables, checked
//! by a test), the encoder ([`Rows::encode`]), the name constants (`schema::summary::col::*`)
//! and, where declared, a typed reader. This module imports nothing of the project.

pub mod capacity;
pub mod comparison;
mod declare;
pub mod engine_metrics;
pub mod gpu;
pub mod quality;
pub mod requests;
pub mod summary;
pub mod trace;
mod value;

pub use capacity::{CAPACITY, Capacity, CapacityStep};
pub use comparison::{COMPARISON, Cmp};
pub use engine_metrics::{ENGINE_METRICS, EngineRow};
pub use gpu::{GPU, GPU_PROCESSES, GpuRow, ProcRow, Reading};
pub use quality::{QUALITY, QualityRow};
pub use requests::{Connection, REQUESTS, Record, RunLabels, Status, tpot};
pub use summary::{LatencyStats, Metric, SUMMARY, Stat, StatusCounts, Summary};
pub use trace::{TRACE, TraceRow};
pub use value::{Cell, CellError, NullAppend, Ts, Value};

/// Rows of one contract: what an encoder (and the one journalled recorder) needs.
pub trait Rows: Sized {
    /// What every row of a batch shares and the rows do not hold (a run's labels), or `()`.
    type Ctx;
    fn contract() -> &'static Contract;
    /// The rows as one record batch of the contract.
    fn encode(rows: &[Self], ctx: &Self::Ctx) -> arrow_array::RecordBatch;
}

/// A contract whose rows can be read back (declared with `decode`): the one entry point of
/// the generic reader (`io::cols::read_rows`).
pub trait Decode: Rows {
    /// A row from its cells (`cell(name)` is that column's value, `Cell::Null` when absent).
    fn decode_row(cell: &mut dyn FnMut(&'static str) -> Cell) -> Result<Self, CellError>;
}

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Logical column types used by the contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    U16,
    U32,
    U64,
    F64,
    Bool,
    Utf8,
    /// `TIMESTAMP(us, UTC)`
    Ts,
    ListF64,
    ListU32,
    ListU64,
}

impl Ty {
    pub fn data_type(self) -> DataType {
        match self {
            Ty::U16 => DataType::UInt16,
            Ty::U32 => DataType::UInt32,
            Ty::U64 => DataType::UInt64,
            Ty::F64 => DataType::Float64,
            Ty::Bool => DataType::Boolean,
            Ty::Utf8 => DataType::Utf8,
            Ty::Ts => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Ty::ListF64 => DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            Ty::ListU32 => DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            Ty::ListU64 => DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
        }
    }

    /// The type as DuckDB shows it when it reads the Parquet file.
    pub fn duckdb(self) -> &'static str {
        match self {
            Ty::U16 => "USMALLINT",
            Ty::U32 => "UINTEGER",
            Ty::U64 => "UBIGINT",
            Ty::F64 => "DOUBLE",
            Ty::Bool => "BOOLEAN",
            Ty::Utf8 => "VARCHAR",
            Ty::Ts => "TIMESTAMP WITH TIME ZONE",
            Ty::ListF64 => "DOUBLE[]",
            Ty::ListU32 => "UINTEGER[]",
            Ty::ListU64 => "UBIGINT[]",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Ty::U16 => "u16",
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::F64 => "f64",
            Ty::Bool => "bool",
            Ty::Utf8 => "utf8",
            Ty::Ts => "timestamp(us, UTC)",
            Ty::ListF64 => "list<f64>",
            Ty::ListU32 => "list<u32>",
            Ty::ListU64 => "list<u64>",
        }
    }
}

/// One column of a contract.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: Ty,
    pub nullable: bool,
    /// Unit, or "" when the column has none (ids, text, flags).
    pub unit: &'static str,
    pub doc: &'static str,
    /// Required on input: a reader refuses a file without it. Optional columns are
    /// filled with nulls (or their documented default) when absent.
    pub required: bool,
}

/// A named, versioned data contract.
#[derive(Debug, Clone, Copy)]
pub struct Contract {
    pub name: &'static str,
    pub version: u32,
    pub doc: &'static str,
    pub columns: &'static [Column],
}

impl Contract {
    /// `name/version`, the value of the `servebench.schema` metadata key.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(self.schema_plain())
    }

    pub fn schema_plain(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.data_type(), c.nullable))
                .collect::<Vec<_>>(),
        )
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn index_of(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("column {name} is not in contract {}", self.name))
    }

    /// The Markdown table README.md carries for this contract (checked by a test).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| column | type | unit | description |\n|---|---|---|---|\n");
        for c in self.columns {
            let ty = if c.nullable {
                format!("{} (nullable)", c.ty.short())
            } else {
                c.ty.short().to_string()
            };
            let unit = if c.unit.is_empty() { "" } else { c.unit };
            s.push_str(&format!("| `{}` | {} | {} | {} |\n", c.name, ty, unit, c.doc));
        }
        s
    }

    /// Human-readable listing for `--print-schema`.
    pub fn print(&self) -> String {
        let mut s = format!("# contract {} ({})\n# {}\n", self.id(), self.name, self.doc);
        let w = self.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in self.columns {
            let null = if c.nullable { "null" } else { "    " };
            let unit = if c.unit.is_empty() {
                "-".into()
            } else {
                c.unit.to_string()
            };
            s.push_str(&format!(
                "{:w$}  {:18}  {}  {:8}  {}\n",
                c.name,
                c.ty.short(),
                null,
                unit,
                c.doc,
                w = w
            ));
        }
        s
    }
}

/// Every contract, in the order README documents them.
pub fn all() -> [&'static Contract; 9] {
    [
        &TRACE,
        &REQUESTS,
        &GPU,
        &GPU_PROCESSES,
        &ENGINE_METRICS,
        &SUMMARY,
        &COMPARISON,
        &CAPACITY,
        &QUALITY,
    ]
}

pub fn by_name(name: &str) -> Option<&'static Contract> {
    all().into_iter().find(|c| c.name == name)
}

// ---------------------------------------------------------------------------------------
// Provenance metadata keys (Parquet key-value metadata; Arrow IPC schema metadata).

pub const META_SCHEMA: &str = "servebench.schema";
pub const META_VERSION: &str = "servebench.version";
pub const META_GIT_SHA: &str = "servebench.git_sha";
pub const META_ARGV: &str = "servebench.argv";
pub const META_RUN_ID: &str = "servebench.run_id";
pub const META_STARTED_AT: &str = "servebench.started_at";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_units_in_names() {
        for c in all() {
            let mut names: Vec<_> = c.columns.iter().map(|c| c.name).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "duplicate column in {}", c.name);
            for col in c.columns {
                let suffix_ok = match col.unit {
                    "ms" => col.name.ends_with("_ms"),
                    "s" => col.name.ends_with("_s"),
                    "W" => col.name.ends_with("_w"),
                    "J" => col.name.ends_with("_j"),
                    "MiB" => col.name.ends_with("_mib"),
                    "%" => col.name.ends_with("_pct"),
                    _ => true,
                };
                assert!(
                    suffix_ok,
                    "{}.{} has unit {} but not in its name",
                    c.name, col.name, col.unit
                );
            }
        }
    }

    #[test]
    fn summary_is_complete() {
        // keys, counts and throughputs, the 4 x 11 latency statistics, GPU and engine figures
        assert!(SUMMARY.columns.len() >= 9 + 20 + 44 + 15);
        assert!(SUMMARY.column(summary::col::ITL_P99_CI_HI_MS).is_some());
        assert!(SUMMARY.column(summary::col::KV_USAGE_PEAK_PCT).is_some());
        assert_eq!(SUMMARY.columns[0].name, summary::col::LABEL);
        for m in Metric::ALL {
            for s in Stat::ALL {
                assert!(SUMMARY.column(m.column(s)).is_some(), "{m:?} {s:?}");
            }
        }
    }

    #[test]
    fn a_summary_round_trips_through_its_batch() {
        let mut s = Summary {
            label: "x".into(),
            concurrency: Some(4),
            n_requests: 10,
            error_rate: 0.1,
            ..Default::default()
        };
        s.n.add(Status::Ok, 9);
        s.n.add(Status::Timeout, 1);
        s.tpot.p99 = Some(12.5);
        let b = Summary::encode(std::slice::from_ref(&s), &());
        assert_eq!(b.num_columns(), SUMMARY.columns.len());
        let mut cells = |name: &'static str| {
            let a = b.column_by_name(name).expect("column");
            use arrow_array::Array;
            if a.is_null(0) {
                return Cell::Null;
            }
            use arrow_array::cast::AsArray;
            use arrow_array::types::*;
            match a.data_type() {
                arrow_schema::DataType::Utf8 => Cell::Str(a.as_string::<i32>().value(0).to_string()),
                arrow_schema::DataType::UInt32 => Cell::Int(a.as_primitive::<UInt32Type>().value(0).into()),
                arrow_schema::DataType::UInt64 => Cell::Int(a.as_primitive::<UInt64Type>().value(0).into()),
                arrow_schema::DataType::Float64 => Cell::Float(a.as_primitive::<Float64Type>().value(0)),
                t => panic!("{t}"),
            }
        };
        assert_eq!(Summary::decode(&mut cells).unwrap(), s);
    }

    #[test]
    fn encoders_follow_the_declaration() {
        let rows = vec![TraceRow::new(1, 0.5, 10, 20), TraceRow::new(2, 1.0, 11, 21)];
        let b = TraceRow::encode(&rows, &());
        assert_eq!(b.schema(), TRACE.schema());
        let labels = RunLabels {
            label: "x".into(),
            run_id: "r".into(),
            api: "chat".into(),
            ..Default::default()
        };
        let rec = Record {
            request_id: 7,
            scheduled_at_us: Some(5),
            sent_at_us: None,
            first_token_at_us: None,
            done_at_us: None,
            sched_lag_ms: None,
            connection: None,
            connect_ms: None,
            tls_ms: None,
            cancel_after_ms: None,
            ttfr_ms: None,
            ttfa_ms: None,
            reasoning_tokens: None,
            ttft_ms: Some(1.0),
            e2e_ms: None,
            tpot_ms: None,
            ttft_sched_ms: None,
            e2e_sched_ms: None,
            warmup: false,
            chunk_times_ms: vec![1.0, 2.0],
            chunk_tokens: None,
            input_tokens: 1,
            server_input_tokens: None,
            cached_tokens: None,
            requested_output_tokens: 2,
            output_tokens: 2,
            output_tokens_source: "chunks",
            status: Status::Timeout,
            http_status: None,
            error: None,
            finish_reason: None,
            category: None,
            session_id: None,
            turn: None,
        };
        let b = Record::encode(&[rec], &labels);
        assert_eq!(b.schema(), REQUESTS.schema());
        use arrow_array::cast::AsArray;
        let st = b.column_by_name(requests::col::STATUS).unwrap().as_string::<i32>();
        assert_eq!(st.value(0), Status::Timeout.as_str());
    }
}
