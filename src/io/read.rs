//! Reading: paths or stdin; Parquet, Arrow IPC stream and file, detected from the first bytes.

use std::fs::File;
use std::io::{self, BufReader, Cursor, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::meta::Meta;

use super::DataError;

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
