//! Output files: Parquet (zstd) or CSV by extension, written under a
//! temporary name and moved into place only by [`Output::finish`].

use parquet::errors::{ParquetError, Result as PResult};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::atomic::{PendingFile, Sealed, Syncer};
use crate::io::direct::DirectWriter;
use crate::io::parquet::dict_chunk::DictChunk;
use crate::io::parquet::Encodings;

/// File formats an output can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Apache Parquet, zstd-compressed.
    Parquet,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// The format a path's extension asks for.
    pub(crate) fn for_path(path: &Path) -> Result<Format> {
        match path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .as_deref()
        {
            Some("parquet") => Ok(Format::Parquet),
            Some("csv") => Ok(Format::Csv),
            _ => Err(Error::Usage(format!(
                "{}: unknown output type; expected a name ending in .parquet or .csv",
                path.display()
            ))),
        }
    }
}

enum Writer {
    Parquet(Box<ParquetSink>),
    Csv(Box<DirectWriter>),
}

/// A Parquet file being written row group by row group: each row group is
/// a [`Part`] encoded by a [`PartEncoder`] (on any thread) and appended in
/// order. Rows written one batch at a time fill an open part that is
/// appended when it reaches the row-group size, as `ArrowWriter` does.
struct ParquetSink {
    file: SerializedFileWriter<DirectWriter>,
    parts: Parts,
    max_rows: usize,
    open: Option<PartEncoder>,
}

/// Makes [`PartEncoder`]s for one output; shared by every thread.
#[derive(Clone)]
pub(crate) struct Parts {
    kind: PartsKind,
    /// The output's name, for its errors.
    path: Arc<Path>,
}

#[derive(Clone)]
enum PartsKind {
    Parquet(Arc<ParquetParts>),
    Csv(SchemaRef),
}

/// What every row group of a Parquet output is made with.
struct ParquetParts {
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    props: WriterProperties,
    /// Per top-level column: its leaf, when it is text written by a
    /// [`DictChunk`] (a column read as a dictionary).
    dict: Vec<Option<ColumnDescPtr>>,
}

/// Encodes rows, in order, into one [`Part`] of an output: a row group of
/// a Parquet file, or lines of a CSV file. Many encoders can run at once,
/// on different threads; the parts are then appended in order.
pub(crate) struct PartEncoder {
    inner: EncoderKind,
    rows: usize,
    path: Arc<Path>,
}

enum EncoderKind {
    Parquet(Vec<Slot>, SchemaRef),
    Csv(Vec<u8>, SchemaRef),
}

/// The writer of one leaf column of a row group.
enum Slot {
    Arrow(Box<ArrowColumnWriter>),
    Dict(Box<DictChunk>),
}

/// A batch's share of one leaf column, for its [`Slot`].
enum Leaf {
    Arrow(ArrowLeafColumn),
    Dict(ArrayRef),
}

/// One encoded leaf column of a row group.
enum Chunk {
    Arrow(Box<ArrowColumnChunk>),
    Dict(bytes::Bytes, Box<ColumnCloseResult>),
}

/// Rows encoded by a [`PartEncoder`], ready to be appended.
pub(crate) struct Part {
    inner: PartKind,
    rows: usize,
}

enum PartKind {
    Parquet(Vec<Chunk>),
    Csv(Vec<u8>),
}

impl Parts {
    /// A new, empty part.
    pub(crate) fn encoder(&self) -> Result<PartEncoder> {
        self.try_encoder().map_err(|e| Error::output(&self.path, e))
    }

    fn try_encoder(&self) -> PResult<PartEncoder> {
        let inner = match &self.kind {
            PartsKind::Parquet(p) => {
                // the row-group index only matters to encryption, which is
                // not built; parts are numbered when appended
                let writers = p.factory.create_column_writers(0)?;
                let slots = writers
                    .into_iter()
                    .enumerate()
                    .map(|(i, w)| match p.dict.get(i) {
                        Some(Some(descr)) => {
                            Ok(Slot::Dict(Box::new(DictChunk::new(descr.clone(), &p.props)?)))
                        }
                        _ => Ok(Slot::Arrow(Box::new(w))),
                    })
                    .collect::<PResult<_>>()?;
                EncoderKind::Parquet(slots, p.schema.clone())
            }
            PartsKind::Csv(schema) => EncoderKind::Csv(Vec::new(), schema.clone()),
        };
        Ok(PartEncoder {
            inner,
            rows: 0,
            path: self.path.clone(),
        })
    }
}

impl Part {
    /// Lines of a CSV output, already encoded (no header; each line ends
    /// in `\n`), holding `rows` rows.
    pub(crate) fn csv(lines: Vec<u8>, rows: usize) -> Part {
        Part {
            inner: PartKind::Csv(lines),
            rows,
        }
    }
}

impl PartEncoder {
    /// Encode rows after those already in the part.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.encode(batch).map_err(|e| Error::output(&self.path, e))
    }

    fn encode(&mut self, batch: &RecordBatch) -> PResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match &mut self.inner {
            EncoderKind::Parquet(slots, schema) => {
                // each leaf column's share of the batch, then each encoded
                let mut work: Vec<Leaf> = Vec::with_capacity(slots.len());
                for (field, col) in schema.fields().iter().zip(batch.columns()) {
                    if let Some(Slot::Dict(_)) = slots.get(work.len()) {
                        work.push(Leaf::Dict(col.clone()));
                        continue;
                    }
                    let col = conform_column(col, field.data_type())?;
                    let leaves = compute_leaves(field, &col)?;
                    work.extend(leaves.into_iter().map(Leaf::Arrow));
                }
                if work.len() != slots.len() {
                    return Err(ParquetError::General(
                        "the batch does not match the output's schema".into(),
                    ));
                }
                slots
                    .iter_mut()
                    .zip(work)
                    .try_for_each(|(slot, leaf)| match (slot, leaf) {
                        (Slot::Dict(d), Leaf::Dict(col)) => d.write(col.as_ref()),
                        (Slot::Arrow(a), Leaf::Arrow(leaf)) => a.write(&leaf),
                        _ => Err(ParquetError::General(
                            "the batch does not match the output's schema".into(),
                        )),
                    })?;
            }
            EncoderKind::Csv(buf, schema) => arrow::csv::WriterBuilder::new()
                .with_header(false)
                .build(&mut *buf)
                .write(&crate::util::columns::conform(batch.clone(), schema)?)?,
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows in the part so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Finish encoding (for Parquet: compress the last pages of every
    /// column).
    pub(crate) fn finish(self) -> Result<Part> {
        let path = self.path.clone();
        self.try_finish().map_err(|e| Error::output(&path, e))
    }

    fn try_finish(self) -> PResult<Part> {
        let inner = match self.inner {
            EncoderKind::Parquet(slots, _) => PartKind::Parquet(
                slots
                    .into_iter()
                    .map(|s| match s {
                        Slot::Arrow(a) => a.close().map(|c| Chunk::Arrow(Box::new(c))),
                        Slot::Dict(d) => d.close().map(|(b, c)| Chunk::Dict(b, Box::new(c))),
                    })
                    .collect::<PResult<_>>()?,
            ),
            EncoderKind::Csv(buf, _) => PartKind::Csv(buf),
        };
        Ok(Part {
            inner,
            rows: self.rows,
        })
    }
}

impl ParquetSink {
    fn append(&mut self, part: Part) -> PResult<()> {
        let PartKind::Parquet(chunks) = part.inner else {
            return Err(ParquetError::General(
                "a CSV part given to a Parquet output".into(),
            ));
        };
        if part.rows == 0 {
            return Ok(());
        }
        let mut rg = self.file.next_row_group()?;
        for chunk in chunks {
            match chunk {
                Chunk::Arrow(c) => c.append_to_row_group(&mut rg),
                Chunk::Dict(bytes, close) => rg.append_column(&bytes, *close),
            }?;
        }
        rg.close()?;
        Ok(())
    }

    /// Rows one batch at a time, cut into row groups of `max_rows`.
    fn write(&mut self, batch: &RecordBatch) -> PResult<()> {
        let mut at = 0;
        while at < batch.num_rows() {
            let open = match &mut self.open {
                Some(o) => o,
                None => self.open.insert(self.parts.try_encoder()?),
            };
            let n = (batch.num_rows() - at).min(self.max_rows - open.rows());
            open.encode(&batch.slice(at, n))?;
            at += n;
            if open.rows() >= self.max_rows {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> PResult<()> {
        match self.open.take() {
            Some(open) => self.append(open.try_finish()?),
            None => Ok(()),
        }
    }

    fn into_inner(mut self) -> PResult<File> {
        self.flush()?;
        Ok(self.file.into_inner()?.finish()?)
    }
}

/// Encode batches of one flat schema as a Parquet file in memory: whole
/// batches are gathered into row groups of about `group_rows` rows, and
/// each row group's columns are encoded in parallel.
pub(crate) fn parquet_bytes(
    schema: SchemaRef,
    props: WriterProperties,
    batches: &[RecordBatch],
    group_rows: usize,
) -> PResult<Vec<u8>> {
    let mut rest = batches;
    let groups = std::iter::from_fn(|| {
        let mut n = 0;
        let mut rows = 0;
        while n < rest.len() && (n == 0 || rows + rest[n].num_rows() <= group_rows) {
            rows += rest[n].num_rows();
            n += 1;
        }
        let (group, tail) = rest.split_at(n);
        rest = tail;
        (!group.is_empty()).then(|| Ok(std::borrow::Cow::Borrowed(group)))
    });
    parquet_bytes_by_group(schema, props, groups, 0)
}

/// [`parquet_bytes`] with its row groups made one at a time by the
/// caller: only the group being encoded is held, not every batch.
/// `reserve` bytes are set aside for the file at once: a large file then
/// never moves while it grows (each move held the old and the new copy),
/// and what it does not fill is never touched, so takes no memory.
pub(crate) fn parquet_bytes_by_group<'a>(
    schema: SchemaRef,
    props: WriterProperties,
    groups: impl Iterator<Item = PResult<std::borrow::Cow<'a, [RecordBatch]>>>,
    reserve: usize,
) -> PResult<Vec<u8>> {
    let mut out = Vec::new();
    // a hint: without it the file grows as it would have
    let _ = out.try_reserve_exact(reserve);
    let (mut file, factory) = ArrowWriter::try_new(out, schema.clone(), Some(props))
        .and_then(ArrowWriter::into_serialized_writer)?;
    for group in groups {
        let group = group?;
        let writers = factory.create_column_writers(0)?;
        if writers.len() != schema.fields().len() {
            return Err(ParquetError::General(
                "nested columns are not supported here".into(),
            ));
        }
        let chunks: Vec<ArrowColumnChunk> = writers
            .into_par_iter()
            .enumerate()
            .map(|(i, mut w)| {
                for b in group.iter() {
                    for leaf in compute_leaves(schema.field(i), b.column(i))? {
                        w.write(&leaf)?;
                    }
                }
                w.close()
            })
            .collect::<PResult<_>>()?;
        let mut rg = file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
    }
    file.into_inner()
}

/// A column cast to the output's type (a dictionary read from Parquet
/// back to text); unchanged when it has it.
fn conform_column(col: &ArrayRef, to: &arrow::datatypes::DataType) -> PResult<ArrayRef> {
    if col.data_type() == to {
        Ok(col.clone())
    } else {
        Ok(arrow::compute::cast(col, to)?)
    }
}

/// CSV bytes appended between two nudges of an output's [`Syncer`].
const CSV_SYNC_BYTES: usize = 16 << 20;

/// An output file being written.
pub(crate) struct Output {
    pending: PendingFile,
    /// Its final name, for its errors.
    name: Arc<Path>,
    writer: Writer,
    schema: SchemaRef,
    syncer: Syncer,
    /// CSV bytes appended since the last nudge of `syncer`.
    unsynced: usize,
    /// Rows written so far.
    pub rows: u64,
}

impl Output {
    /// Start writing `path` with this schema.
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Output> {
        Output::create_with(path, schema, &Encodings::default())
    }

    /// [`Output::create`], with the Parquet encodings of named columns
    /// chosen (see [`Encodings`]).
    ///
    /// Text columns get no min/max statistics: they would put phone numbers
    /// in plain text in the file's footer (outbox, rejects and recipient
    /// files all carry some), rows in input order seldom prune on text, and
    /// the parquet crate compares every value to compute them (~10% of a
    /// 10M-row scrub's wall time, measured A/B). Other types keep theirs.
    pub(crate) fn create_with(path: &Path, schema: SchemaRef, encodings: &Encodings) -> Result<Output> {
        let format = Format::for_path(path)?;
        let (pending, file) = PendingFile::create(path)?;
        let name: Arc<Path> = Arc::from(path);
        let syncer = Syncer::new(&file);
        let file = DirectWriter::new(file);
        let writer = match format {
            Format::Parquet => {
                let mut props =
                    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()));
                for f in schema
                    .fields()
                    .iter()
                    .filter(|f| f.data_type() == &arrow::datatypes::DataType::Utf8)
                {
                    props = props.set_column_statistics_enabled(
                        parquet::schema::types::ColumnPath::from(f.name().to_string()),
                        EnabledStatistics::None,
                    );
                }
                for c in encodings.plain.iter().filter(|c| schema.index_of(c).is_ok()) {
                    let col = parquet::schema::types::ColumnPath::from(c.to_string());
                    props = props
                        .set_column_dictionary_enabled(col.clone(), false)
                        .set_column_statistics_enabled(col, EnabledStatistics::None);
                }
                let props = props.build();
                let max_rows = props.max_row_group_row_count().unwrap_or(1 << 20).max(1);
                let (file, factory) = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .and_then(ArrowWriter::into_serialized_writer)
                    .map_err(|e| Error::output(path, e))?;
                // text columns that come as dictionaries keep their keys,
                // unless nested columns make leaves and fields differ
                let flat = file.schema_descr().num_columns() == schema.fields().len();
                let dict = schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        (flat
                            && f.data_type() == &arrow::datatypes::DataType::Utf8
                            && encodings.dict.iter().any(|d| d == f.name())
                            && !encodings.plain.iter().any(|p| p == f.name()))
                        .then(|| file.schema_descr().column(i))
                    })
                    .collect();
                let props = file.properties().as_ref().clone();
                Writer::Parquet(Box::new(ParquetSink {
                    file,
                    parts: Parts {
                        kind: PartsKind::Parquet(Arc::new(ParquetParts {
                            factory,
                            schema: schema.clone(),
                            props,
                            dict,
                        })),
                        path: name.clone(),
                    },
                    max_rows,
                    open: None,
                }))
            }
            Format::Csv => {
                // the header row goes out even when no row follows
                let mut file = file;
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut file)
                    .write(&RecordBatch::new_empty(schema.clone()))
                    .map_err(|e| Error::output(path, e))?;
                Writer::Csv(Box::new(file))
            }
        };
        Ok(Output {
            pending,
            name,
            writer,
            schema,
            syncer,
            unsynced: 0,
            rows: 0,
        })
    }

    fn err(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::output(&self.name, e)
    }

    /// Append rows.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let res = match &mut self.writer {
            Writer::Parquet(w) => w.write(batch),
            Writer::Csv(_) => {
                let mut part = self.parts().encoder()?;
                part.write(batch)?;
                let part = part.finish()?;
                return self.append(part);
            }
        };
        res.map_err(|e| self.err(e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The encoder maker of this output, for encoding parts of it on
    /// other threads.
    pub(crate) fn parts(&self) -> Parts {
        match &self.writer {
            Writer::Parquet(w) => w.parts.clone(),
            Writer::Csv(_) => Parts {
                kind: PartsKind::Csv(self.schema.clone()),
                path: self.name.clone(),
            },
        }
    }

    /// Append an encoded part (a Parquet row group of its own) after the
    /// rows written so far.
    pub(crate) fn append(&mut self, part: Part) -> Result<()> {
        let rows = part.rows as u64;
        // a row group, or every 16 MB of CSV, is sent to disk while more is
        // written
        let res: std::result::Result<bool, Box<dyn std::error::Error + Send + Sync>> = match &mut self.writer
        {
            Writer::Parquet(w) => w
                .flush()
                .and_then(|_| w.append(part))
                .map(|_| true)
                .map_err(Into::into),
            Writer::Csv(w) => match part.inner {
                PartKind::Csv(bytes) => w.write_all(&bytes).map_err(Into::into).map(|_| {
                    self.unsynced += bytes.len();
                    self.unsynced >= CSV_SYNC_BYTES
                }),
                PartKind::Parquet(_) => {
                    return Err(Error::Internal("a Parquet part given to a CSV output".into()))
                }
            },
        };
        // (a file written past the page cache has no dirty pages to sync)
        if res.map_err(|e| self.err(e))? && !self.is_direct() {
            self.unsynced = 0;
            self.syncer.nudge();
        }
        self.rows += rows;
        Ok(())
    }

    fn is_direct(&self) -> bool {
        match &self.writer {
            Writer::Parquet(w) => w.file.inner().is_direct(),
            Writer::Csv(w) => w.is_direct(),
        }
    }

    /// Finish the file but leave it under its temporary name, durable,
    /// for the caller to move into place (see [`Sealed`]).
    pub(crate) fn seal(self) -> Result<Sealed> {
        let file = match self.writer {
            Writer::Parquet(w) => w.into_inner().map_err(|e| Error::output(&self.name, e)),
            Writer::Csv(w) => w.finish().map_err(|e| Error::output(&self.name, e)),
        }?;
        self.pending.seal(file, Some(self.syncer))
    }

    /// Finish the file and move it under its final name.
    pub(crate) fn finish(self) -> Result<()> {
        self.seal()?.commit()
    }
}
