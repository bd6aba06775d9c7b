//! Writing: formats, the sink (temporary name, then rename), journals.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::meta::Meta;

use super::DataError;
use super::read::open;
use super::render::{cell_json, cell_text, markdown_table};

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
