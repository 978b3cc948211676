//! Output files: Parquet (zstd) or CSV by extension, written under a
//! temporary name and moved into place only by [`Output::finish`].

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::io::atomic::PendingFile;

/// File formats an output can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet, zstd-compressed.
    Parquet,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// The format a path's extension asks for.
    pub fn for_path(path: &Path) -> Result<Format> {
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
    Parquet(ArrowWriter<File>),
    Csv(arrow::csv::Writer<BufWriter<File>>),
}

/// An output file being written.
pub struct Output {
    pending: PendingFile,
    writer: Writer,
    /// Rows written so far.
    pub rows: u64,
}

impl Output {
    /// Start writing `path` with this schema.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Output> {
        Output::create_with(path, schema, &[])
    }

    /// [`Output::create`], writing the named columns without a dictionary
    /// in Parquet: for columns of (nearly) distinct values, such as phone
    /// numbers, a dictionary is work that the writer throws away.
    pub fn create_with(path: &Path, schema: SchemaRef, plain_columns: &[&str]) -> Result<Output> {
        let format = Format::for_path(path)?;
        let (pending, file) = PendingFile::create(path)?;
        let writer = match format {
            Format::Parquet => {
                let mut props =
                    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()));
                for c in plain_columns.iter().filter(|c| schema.index_of(c).is_ok()) {
                    props = props.set_column_dictionary_enabled(
                        parquet::schema::types::ColumnPath::from(c.to_string()),
                        false,
                    );
                }
                let props = props.build();
                let w = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| Error::Input(format!("cannot write {}: {e}", path.display())))?;
                Writer::Parquet(w)
            }
            Format::Csv => Writer::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(BufWriter::with_capacity(1 << 20, file)),
            ),
        };
        let mut out = Output {
            pending,
            writer,
            rows: 0,
        };
        if let Writer::Csv(w) = &mut out.writer {
            // The header row goes out even when no row follows.
            let empty = RecordBatch::new_empty(schema);
            w.write(&empty)
                .map_err(|e| Error::Input(format!("cannot write {}: {e}", path.display())))?;
        }
        Ok(out)
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Input(format!("cannot write {}: {e}", self.pending.path().display()))
    }

    /// Append rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let res = match &mut self.writer {
            Writer::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            Writer::Csv(w) => w.write(batch).map_err(|e| e.to_string()),
        };
        res.map_err(|e| self.err(e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finish the file and move it under its final name.
    pub fn finish(self) -> Result<()> {
        let file = match self.writer {
            Writer::Parquet(w) => w.into_inner().map_err(|e| e.to_string()),
            Writer::Csv(w) => w.into_inner().into_inner().map_err(|e| e.to_string()),
        };
        match file {
            Ok(f) => self.pending.commit(f),
            Err(e) => Err(Error::Input(format!(
                "cannot write {}: {e}",
                self.pending.path().display()
            ))),
        }
    }
}
