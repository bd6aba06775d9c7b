//! Inputs and outputs shared by every tool.
//!
//! Reading: a path or `-` (stdin); Parquet, Arrow IPC stream and Arrow IPC file are detected
//! from the first bytes. Parquet on stdin is buffered fully (its footer comes last); an IPC
//! stream flows batch by batch.
//!
//! Writing: `-o PATH` is written to a temporary name beside it and renamed when complete, so a
//! half-written file never carries the final name. Without `-o`, data goes to stdout: Parquet
//! when stdout is a regular file, Arrow IPC stream when it is a pipe, and never binary to a
//! terminal. `--format` overrides (parquet, arrow, csv, json, md).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Cursor, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, cast::AsArray, types::*};
use arrow_schema::{ArrowError, DataType, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::meta::Meta;

/// Errors reading or writing data files. Each message names the file and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: no such file; check the path (or pass - to read stdin)")]
    NotFound { path: String },
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: io::Error },
    #[error(
        "{path}: not a Parquet or Arrow IPC file ({what}); servebench reads files written by its tools, pyarrow or DuckDB{hint}"
    )]
    NotData { path: String, what: String, hint: String },
    #[error("{path}: invalid Parquet: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: invalid Arrow data: {source}")]
    Arrow { path: String, source: ArrowError },
    #[error("{path}: column `{column}` is missing; a {contract} file needs the columns {required}")]
    MissingColumn {
        path: String,
        column: String,
        contract: String,
        required: String,
    },
    #[error("{path}: column `{column}` has type {found}, expected {expected}")]
    BadType {
        path: String,
        column: String,
        found: String,
        expected: String,
    },
    #[error("{path}: row {row}: column `{column}`: {msg}")]
    BadValue {
        path: String,
        row: u64,
        column: String,
        msg: String,
    },
    #[error(
        "refusing to write binary {format} data to a terminal: use -o FILE, pipe into another tool, or --format csv|json|md"
    )]
    Terminal { format: &'static str },
    #[error("{path}: cannot write: {source}")]
    Write { path: String, source: io::Error },
    #[error("{path}: cannot write Parquet: {source}")]
    WriteParquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: cannot write Arrow: {source}")]
    WriteArrow { path: String, source: ArrowError },
}

impl DataError {
    /// True when the error is a closed pipe downstream (not an error for a CLI tool).
    pub fn is_broken_pipe(&self) -> bool {
        let s = self.to_string();
        match self {
            DataError::Write { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
            _ => s.contains("Broken pipe") || s.contains("os error 32"),
        }
    }
}

/// Detected input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Parquet,
    ArrowStream,
    ArrowFile,
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// An opened data file: its schema, its metadata and its batches.
pub struct Input {
    pub name: String,
    pub kind: InputKind,
    pub schema: SchemaRef,
    pub meta: Meta,
    /// Row count, when the format knows it up front (Parquet).
    pub num_rows: Option<u64>,
    batches: BatchIter,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Iterator for Input {
    type Item = Result<RecordBatch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.batches.next().map(|r| {
            r.map_err(|e| DataError::Arrow {
                path: self.name.clone(),
                source: e,
            })
        })
    }
}

const BATCH_ROWS: usize = 8192;

fn kind_of(head: &[u8]) -> Option<InputKind> {
    if head.starts_with(b"PAR1") {
        Some(InputKind::Parquet)
    } else if head.starts_with(b"ARROW1") {
        Some(InputKind::ArrowFile)
    } else if head.len() >= 4 && head[..4] == [0xff, 0xff, 0xff, 0xff] {
        Some(InputKind::ArrowStream)
    } else {
        None
    }
}

fn describe_head(head: &[u8]) -> (String, String) {
    if head.is_empty() {
        return ("it is empty".into(), "".into());
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(16)]).to_string();
    let printable = head
        .iter()
        .take(16)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let what = if printable {
        format!("it starts with {:?}", text.trim_end())
    } else {
        format!("it starts with bytes {:02x?}", &head[..head.len().min(8)])
    };
    let hint = if printable {
        "; to turn CSV/JSON traces into one, use `tracegen azure|burstgpt|mooncake|sharegpt|splitwise|csv FILE`"
            .to_string()
    } else {
        String::new()
    };
    (what, hint)
}

/// Open a data file (path or `-`), reading all columns.
pub fn open(path: &str) -> Result<Input, DataError> {
    open_projected(path, None)
}

/// Number of row groups of a Parquet file (None for other formats, stdin or errors).
pub fn parquet_row_groups(path: &str) -> Option<usize> {
    if path == "-" {
        return None;
    }
    let f = File::open(path).ok()?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
    Some(b.metadata().num_row_groups())
}

/// Open a data file like [`open_projected`], reading only the given Parquet row groups
/// (None: all).
pub fn open_row_groups(
    path: &str,
    columns: Option<&[&str]>,
    row_groups: Option<Vec<usize>>,
) -> Result<Input, DataError> {
    match row_groups {
        None => open_projected(path, columns),
        Some(rgs) => {
            let f = File::open(path).map_err(|e| DataError::Read {
                path: path.to_string(),
                source: e,
            })?;
            open_parquet_with(path, f, columns, Some(rgs))
        }
    }
}

/// Open a data file, reading only the named top-level columns that exist in it (all when
/// `columns` is None). Missing names are ignored here; callers check what they need.
pub fn open_projected(path: &str, columns: Option<&[&str]>) -> Result<Input, DataError> {
    if path == "-" {
        return open_stdin(columns);
    }
    let p = Path::new(path);
    let mut f = File::open(p).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => DataError::NotFound { path: path.to_string() },
        _ => DataError::Read {
            path: path.to_string(),
            source: e,
        },
    })?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(DataError::Read {
            path: path.to_string(),
            source: io::Error::other("is a directory; pass the files inside it"),
        });
    }
    let mut head = [0u8; 8];
    let n = read_up_to(&mut f, &mut head).map_err(|e| DataError::Read {
        path: path.into(),
        source: e,
    })?;
    let head = &head[..n];
    let kind = kind_of(head).ok_or_else(|| {
        let (what, hint) = describe_head(head);
        DataError::NotData {
            path: path.to_string(),
            what,
            hint,
        }
    })?;
    f.seek(SeekFrom::Start(0)).map_err(|e| DataError::Read {
        path: path.into(),
        source: e,
    })?;
    match kind {
        InputKind::Parquet => open_parquet(path, f, columns),
        InputKind::ArrowFile => {
            let r = arrow_ipc::reader::FileReader::try_new(BufReader::new(f), None).map_err(|e| DataError::Arrow {
                path: path.into(),
                source: e,
            })?;
            let full = r.schema();
            let meta = Meta(full.metadata().clone().into_iter().collect());
            let proj = projection(&full, columns);
            let r = arrow_ipc::reader::FileReader::try_new(
                BufReader::new(File::open(p).map_err(|e| DataError::Read {
                    path: path.into(),
                    source: e,
                })?),
                proj,
            )
            .map_err(|e| DataError::Arrow {
                path: path.into(),
                source: e,
            })?;
            Ok(Input {
                name: path.into(),
                kind,
                schema: r.schema(),
                meta,
                num_rows: None,
                batches: Box::new(r),
            })
        }
        InputKind::ArrowStream => open_stream(path, Box::new(BufReader::new(f)), columns),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn projection(schema: &SchemaRef, columns: Option<&[&str]>) -> Option<Vec<usize>> {
    columns.map(|cols| {
        schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| cols.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect()
    })
}

fn open_parquet<T: parquet::file::reader::ChunkReader + 'static>(
    path: &str,
    src: T,
    columns: Option<&[&str]>,
) -> Result<Input, DataError> {
    open_parquet_with(path, src, columns, None)
}

fn open_parquet_with<T: parquet::file::reader::ChunkReader + 'static>(
    path: &str,
    src: T,
    columns: Option<&[&str]>,
    row_groups: Option<Vec<usize>>,
) -> Result<Input, DataError> {
    let b = ParquetRecordBatchReaderBuilder::try_new(src).map_err(|e| DataError::Parquet {
        path: path.into(),
        source: e,
    })?;
    let mut meta = Meta::default();
    if let Some(kv) = b.metadata().file_metadata().key_value_metadata() {
        for e in kv {
            if e.key == "ARROW:schema" {
                continue;
            }
            if let Some(v) = &e.value {
                meta.0.insert(e.key.clone(), v.clone());
            }
        }
    }
    let num_rows = Some(b.metadata().file_metadata().num_rows().max(0) as u64);
    let b = match projection(b.schema(), columns) {
        Some(idx) => {
            let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), idx);
            b.with_projection(mask)
        }
        None => b,
    };
    let b = match row_groups {
        Some(rg) => b.with_row_groups(rg),
        None => b,
    };
    let r = b.with_batch_size(BATCH_ROWS).build().map_err(|e| DataError::Parquet {
        path: path.into(),
        source: e,
    })?;
    use arrow_array::RecordBatchReader;
    let schema = r.schema();
    Ok(Input {
        name: path.into(),
        kind: InputKind::Parquet,
        schema,
        meta,
        num_rows,
        batches: Box::new(r),
    })
}

fn open_stream(path: &str, r: Box<dyn Read + Send>, columns: Option<&[&str]>) -> Result<Input, DataError> {
    // The projection needs the schema, which is the stream's first message: read it, then
    // re-create the reader with the projection over the same bytes.
    let sr = arrow_ipc::reader::StreamReader::try_new(r, None).map_err(|e| DataError::Arrow {
        path: path.into(),
        source: e,
    })?;
    let full = sr.schema();
    let meta = Meta(full.metadata().clone().into_iter().collect());
    let idx = projection(&full, columns);
    let batches: BatchIter = match idx {
        None => Box::new(sr),
        Some(idx) => Box::new(sr.map(move |b| b.and_then(|b| b.project(&idx)))),
    };
    let schema = match projection(&full, columns) {
        None => full,
        Some(idx) => Arc::new(full.project(&idx).map_err(|e| DataError::Arrow {
            path: path.into(),
            source: e,
        })?),
    };
    Ok(Input {
        name: path.into(),
        kind: InputKind::ArrowStream,
        schema,
        meta,
        num_rows: None,
        batches,
    })
}

fn open_stdin(columns: Option<&[&str]>) -> Result<Input, DataError> {
    let path = "-";
    let mut stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(DataError::Read {
            path: "stdin".into(),
            source: io::Error::other(
                "stdin is a terminal; pipe data in (tracegen ... | replay ...) or pass a file path",
            ),
        });
    }
    let mut head = [0u8; 8];
    let n = read_up_to(&mut stdin, &mut head).map_err(|e| DataError::Read {
        path: "stdin".into(),
        source: e,
    })?;
    let head = head[..n].to_vec();
    let kind = kind_of(&head).ok_or_else(|| {
        let (what, hint) = describe_head(&head);
        DataError::NotData {
            path: "stdin".into(),
            what,
            hint,
        }
    })?;
    match kind {
        InputKind::Parquet | InputKind::ArrowFile => {
            let mut all = head;
            stdin.read_to_end(&mut all).map_err(|e| DataError::Read {
                path: "stdin".into(),
                source: e,
            })?;
            if kind == InputKind::Parquet {
                open_parquet(path, Bytes::from(all), columns)
            } else {
                let r = arrow_ipc::reader::FileReader::try_new(Cursor::new(all), projection_none()).map_err(|e| {
                    DataError::Arrow {
                        path: path.into(),
                        source: e,
                    }
                })?;
                let meta = Meta(r.schema().metadata().clone().into_iter().collect());
                let schema = r.schema();
                Ok(Input {
                    name: path.into(),
                    kind,
                    schema,
                    meta,
                    num_rows: None,
                    batches: Box::new(r),
                })
            }
        }
        InputKind::ArrowStream => {
            let r = Cursor::new(head).chain(stdin);
            open_stream(path, Box::new(BufReader::with_capacity(1 << 16, r)), columns)
        }
    }
}

fn projection_none() -> Option<Vec<usize>> {
    None
}

/// Expand tool arguments into input paths: `-` stays, directories give every `.parquet` /
/// `.arrow` file under them (recursively, sorted; hive partitions included), globs are
/// expanded, other paths are kept as they are (and fail later with a clear message if wrong).
pub fn expand_inputs(args: &[String]) -> Result<Vec<String>, DataError> {
    expand_inputs_of(args, None)
}

/// Like [`expand_inputs`], but files found inside directories whose `servebench.schema`
/// metadata names another contract (a summary or gpu file beside the requests files) are
/// left out. Explicitly named files are always kept.
pub fn expand_inputs_of(args: &[String], contract: Option<&str>) -> Result<Vec<String>, DataError> {
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.push(a.clone());
            continue;
        }
        let p = Path::new(a);
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).map_err(|e| DataError::Read {
                path: a.clone(),
                source: e,
            })?;
            found.sort();
            if let Some(c) = contract {
                found.retain(|p| match open(&p.to_string_lossy()) {
                    Ok(i) => i
                        .meta
                        .get(crate::schema::META_SCHEMA)
                        .is_none_or(|s| s.starts_with(&format!("{c}/"))),
                    Err(_) => true,
                });
            }
            if found.is_empty() {
                return Err(DataError::Read {
                    path: a.clone(),
                    source: io::Error::other(match contract {
                        Some(c) => format!("directory holds no {c} files (.parquet or .arrow)"),
                        None => "directory holds no .parquet or .arrow files".into(),
                    }),
                });
            }
            out.extend(found.into_iter().map(|p| p.to_string_lossy().to_string()));
        } else if a.contains(['*', '?', '[']) && !p.exists() {
            let mut found: Vec<String> = glob::glob(a)
                .map_err(|e| DataError::Read {
                    path: a.clone(),
                    source: io::Error::other(e.to_string()),
                })?
                .filter_map(|r| r.ok())
                .map(|p| p.to_string_lossy().to_string())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(DataError::NotFound { path: a.clone() });
            }
            out.extend(found);
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if name.ends_with(".parquet") || name.ends_with(".arrow") || name.ends_with(".arrows") {
            out.push(p);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Writing

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Parquet (files at rest; DuckDB reads it directly)
    Parquet,
    /// Arrow IPC stream (pipes between tools)
    Arrow,
    /// CSV with a header row
    Csv,
    /// JSON Lines: one object per row
    Json,
    /// Markdown table
    Md,
}

impl Format {
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Arrow)
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "Parquet",
            Format::Arrow => "Arrow IPC",
            Format::Csv => "CSV",
            Format::Json => "JSON",
            Format::Md => "Markdown",
        }
    }
    fn from_extension(p: &Path) -> Option<Format> {
        match p.extension()?.to_str()? {
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" | "arrows" | "ipc" => Some(Format::Arrow),
            "csv" => Some(Format::Csv),
            "json" | "jsonl" | "ndjson" => Some(Format::Json),
            "md" => Some(Format::Md),
            _ => None,
        }
    }
}

/// Is stdout a regular file (so Parquet, which needs no seeking, is the right choice)?
pub fn stdout_is_regular_file() -> bool {
    use std::os::fd::AsFd;
    nix::sys::stat::fstat(io::stdout().as_fd())
        .map(|st| (st.st_mode & libc::S_IFMT) == libc::S_IFREG)
        .unwrap_or(false)
}

/// Decide the output format: `--format` wins, then the file extension, then what stdout is.
pub fn resolve_format(path: Option<&Path>, format: Option<Format>) -> Result<Format, DataError> {
    if let Some(f) = format {
        if path.is_none() && f.is_binary() && io::stdout().is_terminal() {
            return Err(DataError::Terminal { format: f.name() });
        }
        return Ok(f);
    }
    match path {
        Some(p) => Ok(Format::from_extension(p).unwrap_or(Format::Parquet)),
        None => {
            if io::stdout().is_terminal() {
                Err(DataError::Terminal {
                    format: "Parquet/Arrow",
                })
            } else if stdout_is_regular_file() {
                Ok(Format::Parquet)
            } else {
                Ok(Format::Arrow)
            }
        }
    }
}

enum Inner {
    Parquet(ArrowWriter<Box<dyn Write + Send>>),
    Arrow(arrow_ipc::writer::StreamWriter<Box<dyn Write + Send>>),
    Csv(csv::Writer<Box<dyn Write + Send>>),
    Json(Box<dyn Write + Send>),
    Md(Vec<RecordBatch>, Box<dyn Write + Send>),
    Done,
}

/// Check, before any work, that `path` can be written: its directory exists or can be
/// created, a file can be made in it, and it is not itself a directory. Nothing is left behind.
pub fn check_output(path: &Path) -> Result<(), DataError> {
    let name = path.to_string_lossy().to_string();
    let err = |e: io::Error| DataError::Write {
        path: name.clone(),
        source: e,
    };
    if path.is_dir() {
        return Err(err(io::Error::other("is a directory; give a file name")));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let probe = dir.join(format!(".{file}.check-{}", std::process::id()));
    File::create(&probe).map_err(err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// A data sink: a file written under a temporary name and renamed on `finish`, or stdout.
pub struct Sink {
    inner: Inner,
    schema: SchemaRef,
    name: String,
    tmp: Option<(PathBuf, PathBuf)>,
    pub format: Format,
    rows: u64,
}

impl Sink {
    /// Create a sink for `schema` with `meta` as key-value metadata.
    pub fn create(
        path: Option<&Path>,
        format: Option<Format>,
        schema: SchemaRef,
        meta: &Meta,
    ) -> Result<Sink, DataError> {
        let format = resolve_format(path, format)?;
        let (w, name, tmp): (Box<dyn Write + Send>, String, Option<(PathBuf, PathBuf)>) = match path {
            None => (
                Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
                "stdout".to_string(),
                None,
            ),
            Some(p) => {
                let name = p.to_string_lossy().to_string();
                let tmp = temp_name(p);
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| DataError::Write {
                        path: name.clone(),
                        source: e,
                    })?;
                }
                let f = File::create(&tmp).map_err(|e| DataError::Write {
                    path: name.clone(),
                    source: e,
                })?;
                (
                    Box::new(BufWriter::with_capacity(1 << 16, f)),
                    name,
                    Some((tmp, p.to_path_buf())),
                )
            }
        };
        match Sink::to_writer(w, &name, format, schema, meta) {
            Ok(mut sink) => {
                sink.tmp = tmp;
                Ok(sink)
            }
            Err(e) => {
                // never leave a temporary file behind
                if let Some((t, _)) = tmp {
                    let _ = std::fs::remove_file(t);
                }
                Err(e)
            }
        }
    }

    /// A sink writing `format` to any writer (`name` is used in error messages).
    pub fn to_writer(
        w: Box<dyn Write + Send>,
        name: &str,
        format: Format,
        schema: SchemaRef,
        meta: &Meta,
    ) -> Result<Sink, DataError> {
        let name = name.to_string();
        let schema_meta: std::collections::HashMap<String, String> =
            meta.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let inner = match format {
            Format::Parquet => {
                let kv: Vec<KeyValue> = meta
                    .0
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                    .collect();
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
                    .set_key_value_metadata(Some(kv))
                    .set_created_by(format!("servebench {}", crate::meta::VERSION))
                    .build();
                Inner::Parquet(ArrowWriter::try_new(w, schema.clone(), Some(props)).map_err(|e| {
                    DataError::WriteParquet {
                        path: name.clone(),
                        source: e,
                    }
                })?)
            }
            Format::Arrow => {
                let s = schema.as_ref().clone().with_metadata(schema_meta);
                Inner::Arrow(
                    arrow_ipc::writer::StreamWriter::try_new(w, &s).map_err(|e| DataError::WriteArrow {
                        path: name.clone(),
                        source: e,
                    })?,
                )
            }
            Format::Csv => {
                let mut cw = csv::Writer::from_writer(w);
                cw.write_record(schema.fields().iter().map(|f| f.name().as_str()))
                    .map_err(|e| DataError::Write {
                        path: name.clone(),
                        source: io::Error::other(e),
                    })?;
                Inner::Csv(cw)
            }
            Format::Json => Inner::Json(w),
            Format::Md => Inner::Md(Vec::new(), w),
        };
        Ok(Sink {
            inner,
            schema,
            name,
            tmp: None,
            format,
            rows: 0,
        })
    }

    /// An Arrow IPC stream written in place (no temporary name): a journal that stays
    /// readable up to its last flushed batch if the process dies.
    pub fn create_journal(path: &Path, schema: SchemaRef, meta: &Meta) -> Result<Sink, DataError> {
        let name = path.to_string_lossy().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DataError::Write {
                path: name.clone(),
                source: e,
            })?;
        }
        let f = File::create(path).map_err(|e| DataError::Write {
            path: name.clone(),
            source: e,
        })?;
        let w: Box<dyn Write + Send> = Box::new(BufWriter::with_capacity(1 << 16, SyncOnFlush(f)));
        let schema_meta: std::collections::HashMap<String, String> =
            meta.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let s = schema.as_ref().clone().with_metadata(schema_meta);
        let inner =
            Inner::Arrow(
                arrow_ipc::writer::StreamWriter::try_new(w, &s).map_err(|e| DataError::WriteArrow {
                    path: name.clone(),
                    source: e,
                })?,
            );
        Ok(Sink {
            inner,
            schema,
            name,
            tmp: None,
            format: Format::Arrow,
            rows: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DataError> {
        let name = &self.name;
        let we = |e: io::Error| DataError::Write {
            path: name.clone(),
            source: e,
        };
        self.rows += batch.num_rows() as u64;
        match &mut self.inner {
            Inner::Parquet(w) => w.write(batch).map_err(|e| DataError::WriteParquet {
                path: name.clone(),
                source: e,
            }),
            Inner::Arrow(w) => w.write(batch).map_err(|e| DataError::WriteArrow {
                path: name.clone(),
                source: e,
            }),
            Inner::Csv(w) => {
                for r in 0..batch.num_rows() {
                    let rec: Vec<String> = batch.columns().iter().map(|c| cell_text(c.as_ref(), r)).collect();
                    w.write_record(&rec).map_err(|e| we(io::Error::other(e)))?;
                }
                Ok(())
            }
            Inner::Json(w) => {
                for r in 0..batch.num_rows() {
                    let mut obj = serde_json::Map::new();
                    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
                        obj.insert(f.name().clone(), cell_json(c.as_ref(), r));
                    }
                    serde_json::to_writer(&mut *w, &obj).map_err(|e| we(io::Error::other(e)))?;
                    w.write_all(b"\n").map_err(we)?;
                }
                Ok(())
            }
            Inner::Md(v, _) => {
                v.push(batch.clone());
                Ok(())
            }
            Inner::Done => Ok(()),
        }
    }

    /// Make what was written so far durable and visible downstream: ends a Parquet row
    /// group, flushes an Arrow stream to the pipe.
    pub fn flush(&mut self) -> Result<(), DataError> {
        let name = &self.name;
        match &mut self.inner {
            Inner::Parquet(w) => w.flush().map_err(|e| DataError::WriteParquet {
                path: name.clone(),
                source: e,
            }),
            Inner::Arrow(w) => w.flush().map_err(|e| DataError::WriteArrow {
                path: name.clone(),
                source: e,
            }),
            Inner::Csv(w) => w.flush().map_err(|e| DataError::Write {
                path: name.clone(),
                source: e,
            }),
            Inner::Json(w) => w.flush().map_err(|e| DataError::Write {
                path: name.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Add key-value metadata known only at the end (Parquet only; it lives in the footer).
    pub fn append_meta(&mut self, k: &str, v: &str) {
        if let Inner::Parquet(w) = &mut self.inner {
            w.append_key_value_metadata(KeyValue::new(k.to_string(), v.to_string()));
        }
    }

    /// Write the footer, flush, and move the file to its final name.
    pub fn finish(mut self) -> Result<u64, DataError> {
        let inner = std::mem::replace(&mut self.inner, Inner::Done);
        let name = self.name.clone();
        let we = |e: io::Error| DataError::Write {
            path: name.clone(),
            source: e,
        };
        match inner {
            Inner::Parquet(w) => {
                let mut out = w.into_inner().map_err(|e| DataError::WriteParquet {
                    path: name.clone(),
                    source: e,
                })?;
                out.flush().map_err(we)?;
            }
            Inner::Arrow(mut w) => {
                w.finish().map_err(|e| DataError::WriteArrow {
                    path: name.clone(),
                    source: e,
                })?;
                let mut out = w.into_inner().map_err(|e| DataError::WriteArrow {
                    path: name.clone(),
                    source: e,
                })?;
                out.flush().map_err(we)?;
            }
            Inner::Csv(w) => {
                let mut out = w.into_inner().map_err(|e| we(io::Error::other(e.to_string())))?;
                out.flush().map_err(we)?;
            }
            Inner::Json(mut w) => w.flush().map_err(we)?,
            Inner::Md(batches, mut w) => {
                let s = markdown_table(&self.schema, &batches);
                w.write_all(s.as_bytes()).map_err(we)?;
                w.flush().map_err(we)?;
            }
            Inner::Done => {}
        }
        if let Some((tmp, dest)) = self.tmp.take()
            && let Err(e) = std::fs::rename(&tmp, &dest)
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(we(e));
        }
        Ok(self.rows)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Not finished: never leave a partial file under the final name (or at all).
        if let Some((tmp, _)) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A file whose `flush` also asks the disk to keep what was written (fdatasync), so a
/// journal survives a machine crash up to its last flush, not only a killed process.
struct SyncOnFlush(File);

impl Write for SyncOnFlush {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

fn temp_name(p: &Path) -> PathBuf {
    let file = p
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    p.with_file_name(format!(".{file}.tmp-{}", std::process::id()))
}

/// Turn a journal (an Arrow IPC stream written by [`Sink::create_journal`]) into its final
/// file, atomically, adding `extra` metadata, and delete the journal. The contract comes from
/// the journal's `servebench.schema` metadata (else the journal's own schema is kept). A
/// journal cut short by a crash is read up to its last complete batch.
/// Returns (rows written, whether the journal was truncated).
pub fn finalize_journal(
    journal: &Path,
    out: &Path,
    format: Option<Format>,
    extra: &Meta,
) -> Result<(u64, bool), DataError> {
    let jname = journal.to_string_lossy().to_string();
    let input = open(&jname)?;
    let mut meta = input.meta.clone();
    for (k, v) in &extra.0 {
        meta.0.insert(k.clone(), v.clone());
    }
    let schema = meta
        .get(crate::schema::META_SCHEMA)
        .and_then(|id| crate::schema::by_name(id.split('/').next().unwrap_or("")))
        .map(|c| c.schema())
        .unwrap_or_else(|| {
            Arc::new(
                input
                    .schema
                    .as_ref()
                    .clone()
                    .with_metadata(std::collections::HashMap::new()),
            )
        });
    let mut sink = Sink::create(Some(out), format, schema.clone(), &meta)?;
    let mut truncated = false;
    for b in input {
        match b {
            Ok(b) => {
                let b = RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(|e| DataError::Arrow {
                    path: jname.clone(),
                    source: e,
                })?;
                sink.write(&b)?;
            }
            Err(_) => {
                truncated = true;
                break;
            }
        }
    }
    if truncated {
        sink.append_meta(
            "servebench.recovered",
            "journal truncated: rows after the last flushed batch are lost",
        );
    }
    let n = sink.finish()?;
    let _ = std::fs::remove_file(journal);
    Ok((n, truncated))
}

/// Write whole batches to a sink in one call (for small outputs).
pub fn write_all(
    path: Option<&Path>,
    format: Option<Format>,
    schema: SchemaRef,
    meta: &Meta,
    batches: &[RecordBatch],
) -> Result<u64, DataError> {
    let mut s = Sink::create(path, format, schema, meta)?;
    for b in batches {
        s.write(b)?;
    }
    s.finish()
}

// ---------------------------------------------------------------------------------------
// Cell rendering for CSV, JSON and Markdown

fn ts_to_us(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1000,
    }
}

/// A cell as JSON (timestamps as RFC 3339 strings, lists as arrays).
pub fn cell_json(a: &dyn Array, i: usize) -> serde_json::Value {
    use serde_json::Value;
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => serde_json::Number::from_f64(a.as_primitive::<Float32Type>().value(i) as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DataType::Float64 => serde_json::Number::from_f64(a.as_primitive::<Float64Type>().value(i))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            crate::cols::str_at(a, i)
                .map(|s| Value::String(s.to_string()))
                .unwrap_or(Value::Null)
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            Value::String(crate::meta::rfc3339_us(ts_to_us(*unit, v)))
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let v = l.value(i);
            Value::Array((0..v.len()).map(|j| cell_json(v.as_ref(), j)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let v = l.value(i);
            Value::Array((0..v.len()).map(|j| cell_json(v.as_ref(), j)).collect())
        }
        other => Value::String(format!("<{other}>")),
    }
}

/// A cell as text (CSV): numbers in full precision, lists as JSON arrays, nulls empty.
pub fn cell_text(a: &dyn Array, i: usize) -> String {
    match cell_json(a, i) {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        v => v.to_string(),
    }
}

/// A cell for a human table: floats rounded for reading.
pub fn cell_human(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    match a.data_type() {
        DataType::Float64 => fmt_num(a.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => fmt_num(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::List(_) | DataType::LargeList(_) => {
            let s = cell_text(a, i);
            if s.len() > 40 {
                format!(
                    "{}…]",
                    &s[..s.char_indices().nth(38).map(|(k, _)| k).unwrap_or(s.len())]
                )
            } else {
                s
            }
        }
        _ => cell_text(a, i).replace('|', "\\|"),
    }
}

/// Round a number for reading: 3 significant digits below 100, else whole or 1 decimal.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Render batches as a Markdown table.
pub fn markdown_table(schema: &SchemaRef, batches: &[RecordBatch]) -> String {
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| cell_human(c.as_ref(), r)).collect());
        }
    }
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count().max(3)).collect();
    for r in &rows {
        for (k, c) in r.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let line = |cells: &[String], numeric: bool| -> String {
        let mut s = String::from("|");
        for (k, c) in cells.iter().enumerate() {
            let pad = w[k] - c.chars().count();
            if numeric && c.parse::<f64>().is_ok() {
                s.push_str(&format!(" {}{} |", " ".repeat(pad), c));
            } else {
                s.push_str(&format!(" {}{} |", c, " ".repeat(pad)));
            }
        }
        s.push('\n');
        s
    };
    let mut s = line(&headers, false);
    s.push('|');
    for x in &w {
        s.push_str(&format!("{}|", "-".repeat(x + 2)));
    }
    s.push('\n');
    for r in &rows {
        s.push_str(&line(r, true));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    /// A writer that takes `room` bytes, then fails like a full disk.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let x: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|i| i as f64)));
        let s: ArrayRef = Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("row {i}"))));
        RecordBatch::try_new(schema, vec![x, s]).unwrap()
    }

    /// A full disk is an error naming the output, in every format and at every point where it
    /// can strike (opening, writing, flushing, finishing), never a panic.
    #[test]
    fn a_full_disk_is_an_error_never_a_panic() {
        let b = batch(10_000);
        for format in [Format::Parquet, Format::Arrow, Format::Csv, Format::Json, Format::Md] {
            for room in [0, 10, 1000, 100_000] {
                let res = (|| {
                    let mut s = Sink::to_writer(
                        Box::new(BufWriter::with_capacity(4096, Full { room })),
                        "out.x",
                        format,
                        b.schema(),
                        &Meta::default(),
                    )?;
                    for _ in 0..3 {
                        s.write(&b)?;
                        s.flush()?;
                    }
                    s.finish()
                })();
                let e = res.expect_err("a full disk fails the write");
                let msg = e.to_string();
                assert!(msg.contains("out.x"), "{format:?} {room}: {msg}");
                assert!(!e.is_broken_pipe(), "{msg}");
            }
        }
    }

    /// No half-written file ever sits under the final name: the final name appears only when
    /// the file is complete; a sink dropped unfinished, or one whose rename fails, leaves
    /// nothing behind.
    #[test]
    fn no_half_written_file_under_the_final_name() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("r.parquet");
        let b = batch(100);
        let mut s = Sink::create(Some(&out), None, b.schema(), &Meta::default()).unwrap();
        s.write(&b).unwrap();
        s.flush().unwrap();
        assert!(!out.exists(), "written under a temporary name");
        drop(s);
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            0,
            "temporary file removed"
        );
        // the final rename fails (a directory took the name): an error, and no file left
        let mut s = Sink::create(Some(&out), None, b.schema(), &Meta::default()).unwrap();
        s.write(&b).unwrap();
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("x"), "keeps the directory non-empty").unwrap();
        let e = s.finish().unwrap_err();
        assert!(e.to_string().contains("r.parquet"), "{e}");
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("r.parquet")], "only the directory");
        // and check_output sees such problems before any work
        assert!(check_output(&out).unwrap_err().to_string().contains("directory"));
        let file = d.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(check_output(&file.join("sub").join("r.parquet")).is_err());
        check_output(&d.path().join("new").join("r.parquet")).unwrap();
        assert_eq!(std::fs::read_dir(d.path().join("new")).unwrap().count(), 0);
    }
}
