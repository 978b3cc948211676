//! Input datasets (SPEC §6): CSV with a header row or Parquet, chosen by
//! extension; `-` reads CSV from standard input; a folder is every
//! `.parquet`/`.csv` file in it, in name order, as one dataset.
//!
//! CSV columns are read as text, exactly as written, so that kept rows pass
//! through unchanged.

use std::fs::File;
use std::io::{BufRead, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};

use crate::io::parquet::source::ByteSource;

mod csv;
use self::csv::{check_utf8, csv_error, open_csv};
pub use self::csv::{delimiter_of, CsvShape};
pub use crate::io::parquet::reader::ReadDict;
use crate::io::parquet::reader::{Groups, ParquetFile};

use crate::error::{Error, Result};
use crate::io::parquet::Encodings;

/// Rows per batch read from a file (arrow's usual batch size is 8k; larger
/// batches amortise per-batch work in the scrub loop).
pub const BATCH_ROWS: usize = 65_536;

/// One batch with where it came from.
pub struct Batch {
    /// The file it was read from (`-` for standard input).
    pub file: Arc<str>,
    /// 1-based row number of its first row within that file.
    pub first_row: u64,
    /// The rows.
    pub batch: RecordBatch,
}

enum Reader {
    Csv(Box<arrow::csv::reader::BufReader<Box<dyn BufRead + Send>>>),
    Parquet(Box<ParquetFile>),
    /// Batches a caller already holds (a data frame handed over from
    /// Python, say).
    Memory(std::vec::IntoIter<RecordBatch>),
}

/// Consecutive rows of one file, to be read (decoded) on any thread: a
/// run of whole Parquet row groups, or batches already read (CSV, or a
/// row group too large to be one unit).
pub struct Unit {
    file: Arc<str>,
    first_row: u64,
    /// Rows in the unit.
    pub rows: u64,
    source: UnitSource,
}

enum UnitSource {
    Batches(Vec<RecordBatch>),
    Groups(Groups),
}

impl Unit {
    /// Decode the unit's rows, in order.
    pub fn read(self) -> Result<Vec<Batch>> {
        let mut out = Vec::new();
        self.for_each(|b| {
            out.push(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// Decode the unit's rows and hand them over one batch at a time, so
    /// that only one decoded batch need be held.
    pub fn for_each(self, mut f: impl FnMut(Batch) -> Result<()>) -> Result<()> {
        let mut first_row = self.first_row;
        let file = self.file;
        let give = |batch: RecordBatch| {
            let rows = batch.num_rows() as u64;
            f(Batch {
                file: file.clone(),
                first_row,
                batch,
            })?;
            first_row += rows;
            Ok::<(), Error>(())
        };
        match self.source {
            UnitSource::Batches(batches) => batches.into_iter().try_for_each(give),
            UnitSource::Groups(groups) => groups.for_each(&file, give),
        }
    }
}

/// A Parquet file as one opened file of a dataset, with its schema.
fn open_parquet(
    name: &str,
    file: ByteSource,
    batch_rows: usize,
    dict: ReadDict,
) -> Result<(InputFile, SchemaRef)> {
    let opened = crate::io::parquet::reader::open(name, file, batch_rows, dict)?;
    let part = InputFile {
        name: name.into(),
        reader: Reader::Parquet(Box::new(opened.file)),
        rows: 0,
        total: opened.total,
        encodings: opened.encodings,
    };
    Ok((part, opened.schema))
}

/// One opened file of a dataset.
struct InputFile {
    name: Arc<str>,
    reader: Reader,
    rows: u64,
    total: Option<u64>,
    /// How its columns are encoded (Parquet), for outputs to follow.
    encodings: Encodings,
}

impl InputFile {
    /// The next batch of this part, in order (its rows not yet counted).
    fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        match &mut self.reader {
            Reader::Csv(r) => r.next().map(|b| {
                let b = b.map_err(|e| csv_error(&self.name, e))?;
                check_utf8(&self.name, self.rows, &b)?;
                Ok(b)
            }),
            Reader::Parquet(p) => p.next_batch(&self.name),
            Reader::Memory(b) => b.next().map(Ok),
        }
    }
}

/// An opened dataset: every part checked to have one schema.
pub struct Dataset {
    /// The schema every part has.
    pub schema: SchemaRef,
    /// The name of the first part, for messages.
    pub first_name: String,
    /// Rows in all parts, when every part says (Parquet does, CSV not).
    pub total_rows: Option<u64>,
    /// How the first part's columns are encoded, and which text columns
    /// are read as dictionaries: outputs of the same rows follow it.
    pub encodings: Encodings,
    parts: std::vec::IntoIter<InputFile>,
    current: Option<InputFile>,
}

/// The files behind the given paths: folders expanded, in name order.
pub fn expand(paths: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in paths {
        let path = Path::new(p);
        if p != "-" && path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::Input(format!("cannot read folder {p}: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| matches!(ext(f).as_deref(), Some("csv" | "parquet")))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::Input(format!("folder {p} has no .csv or .parquet files")));
            }
            out.extend(files.into_iter().map(|f| f.to_string_lossy().into_owned()));
        } else {
            out.push(p.clone());
        }
    }
    if out.iter().filter(|p| *p == "-").count() > 1 {
        return Err(Error::Usage("standard input (-) can be read only once".into()));
    }
    Ok(out)
}

fn ext(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

impl Dataset {
    /// Open every part and check that they share one schema.
    pub fn open(paths: &[String]) -> Result<Dataset> {
        Dataset::open_with(paths, BATCH_ROWS)
    }

    /// [`Dataset::open`] with batches of `batch_rows` rows.
    pub fn open_with(paths: &[String], batch_rows: usize) -> Result<Dataset> {
        Dataset::open_dict(paths, batch_rows, ReadDict::default(), CsvShape::default())
    }

    /// [`Dataset::open`] with CSV parts read in this shape.
    pub fn open_shaped(paths: &[String], shape: CsvShape) -> Result<Dataset> {
        Dataset::open_dict(paths, BATCH_ROWS, ReadDict::default(), shape)
    }

    /// [`Dataset::open_with`], reading the named text columns of Parquet
    /// parts as dictionary arrays (their pages usually are), so that a
    /// caller can work once per distinct value; and with them any text
    /// column whose pages are all dictionary-encoded (in the part's first
    /// row group). [`Dataset::schema`] still gives the file's own types;
    /// `util::columns::conform` turns a batch back to them.
    pub fn open_dict(
        paths: &[String],
        batch_rows: usize,
        dict_columns: ReadDict,
        shape: CsvShape,
    ) -> Result<Dataset> {
        let files = expand(paths)?;
        let mut parts = Vec::with_capacity(files.len());
        let mut schema: Option<SchemaRef> = None;
        let batch_rows = batch_rows.max(1);
        for f in &files {
            let (part, s) = open_part(f, batch_rows, dict_columns, shape)?;
            match &schema {
                None => schema = Some(s),
                Some(first) => check_same(first, &s, &files[0], f)?,
            }
            parts.push(part);
        }
        let schema = schema.ok_or_else(|| Error::Usage("no input given".into()))?;
        let total_rows = parts.iter().map(|p| p.total).sum();
        let encodings = parts.first().map(|p| p.encodings.clone()).unwrap_or_default();
        Ok(Dataset {
            schema,
            first_name: files[0].clone(),
            total_rows,
            encodings,
            parts: parts.into_iter(),
            current: None,
        })
    }

    /// A dataset of one CSV or Parquet file held in memory (`name` is used
    /// in messages only).
    pub fn from_bytes(name: &str, bytes: Vec<u8>, parquet: bool, batch_rows: usize) -> Result<Dataset> {
        let batch_rows = batch_rows.max(1);
        let (part, schema) = if parquet {
            open_parquet(
                name,
                ByteSource::Bytes(bytes::Bytes::from(bytes)),
                batch_rows,
                ReadDict::default(),
            )?
        } else {
            open_csv(
                name,
                Box::new(Cursor::new(bytes)),
                batch_rows,
                CsvShape::default(),
            )?
        };
        Ok(Dataset {
            schema,
            first_name: name.to_string(),
            total_rows: part.total,
            encodings: part.encodings.clone(),
            parts: vec![part].into_iter(),
            current: None,
        })
    }

    /// A dataset of batches already in memory, all of `schema` (`name`
    /// stands for the file in messages).
    pub fn from_batches(name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Dataset> {
        if let Some(b) = batches.iter().find(|b| b.schema().fields() != schema.fields()) {
            return Err(Error::Input(format!(
                "{name}: a batch has columns ({}) unlike the data's schema ({})",
                b.schema(),
                schema
            )));
        }
        let total: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let part = InputFile {
            name: name.into(),
            reader: Reader::Memory(batches.into_iter()),
            rows: 0,
            total: Some(total),
            encodings: Encodings::default(),
        };
        Ok(Dataset {
            schema,
            first_name: name.to_string(),
            total_rows: Some(total),
            encodings: Encodings::default(),
            parts: vec![part].into_iter(),
            current: None,
        })
    }

    /// The next [`Unit`] of about `target_rows` rows (at least one batch),
    /// in input order; `None` at the end. Parquet row groups are left to
    /// decode wherever the unit is read: whole ones that fit, several
    /// together, or a larger one a range of its rows at a time. CSV is read
    /// here in batches up to `target_rows`.
    pub fn next_unit(&mut self, target_rows: u64) -> Option<Result<Unit>> {
        loop {
            if self.current.is_none() {
                self.current = Some(self.parts.next()?);
            }
            let part = self.current.as_mut()?;
            if let Reader::Parquet(p) = &mut part.reader {
                if let Some(groups) = p.next_groups(target_rows) {
                    let rows = groups.count;
                    let unit = Unit {
                        file: part.name.clone(),
                        first_row: part.rows + 1,
                        rows,
                        source: UnitSource::Groups(groups),
                    };
                    part.rows += rows;
                    return Some(Ok(unit));
                }
            }
            let (file, first_row) = (part.name.clone(), part.rows + 1);
            let mut batches = Vec::new();
            let mut rows = 0;
            while rows < target_rows {
                let next = match &mut part.reader {
                    Reader::Parquet(p) => p.next_read(&part.name),
                    Reader::Csv(_) | Reader::Memory(_) => part.next_batch(),
                };
                match next {
                    None => break,
                    Some(Err(e)) => {
                        self.current = None;
                        self.parts = Vec::new().into_iter();
                        return Some(Err(e));
                    }
                    Some(Ok(b)) => {
                        rows += b.num_rows() as u64;
                        part.rows += b.num_rows() as u64;
                        batches.push(b);
                    }
                }
            }
            if batches.is_empty() {
                // this part (or its large row group) is done
                if !matches!(&part.reader, Reader::Parquet(p) if p.has_groups_left()) {
                    self.current = None;
                }
                continue;
            }
            return Some(Ok(Unit {
                file,
                first_row,
                rows,
                source: UnitSource::Batches(batches),
            }));
        }
    }

    /// Index of a column, or an error that lists the columns there are.
    pub fn column(&self, name: &str, flag: &str) -> Result<usize> {
        self.columns(&[(name, flag)]).map(|v| v[0])
    }

    /// An optional column: by its exact name, or ignoring case when exactly
    /// one column matches so.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.schema.index_of(name).ok().or_else(|| {
            let mut same = self
                .schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
            match (same.next(), same.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        })
    }

    /// Find several required columns; every missing one is named in one
    /// error. A name matches exactly, or ignoring case when exactly one
    /// column does (`Phone` for `phone`).
    pub fn columns(&self, wanted: &[(&str, &str)]) -> Result<Vec<usize>> {
        let fields = self.schema.fields();
        let found: Vec<Option<usize>> = wanted.iter().map(|(n, _)| self.find(n)).collect();
        let missing: Vec<&(&str, &str)> = wanted
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(w, _)| w)
            .collect();
        if missing.is_empty() {
            return Ok(found.into_iter().flatten().collect());
        }
        let names: Vec<String> = missing.iter().map(|(n, _)| format!("'{n}'")).collect();
        let flags: Vec<&str> = missing.iter().map(|(_, f)| *f).collect();
        let what = if names.len() == 1 {
            format!("no column {}", names[0])
        } else {
            format!("no columns {}", names.join(", "))
        };
        let have: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        if have.iter().any(|c| csv::looks_like_phone(c)) {
            return Err(Error::Input(format!(
                "{}: {what}, and the file seems to have no header row (its first row holds a value like a phone number); add a header row naming the columns",
                self.first_name
            )));
        }
        Err(Error::Input(format!(
            "{}: {what} (columns: {}); name {} with {}",
            self.first_name,
            have.join(", "),
            if names.len() == 1 { "it" } else { "them" },
            flags.join(", ")
        )))
    }
}

impl Batch {
    /// Column `i` as text, with the file and column named in the error.
    pub(crate) fn text(&self, i: usize) -> Result<crate::util::columns::Text<'_>> {
        crate::util::columns::as_text(self.batch.column(i)).map_err(|e| self.column_error(i, &e))
    }

    /// `util::columns::per_row` over column `i`, with the file and
    /// column named in the error.
    pub fn per_row<T: Copy>(&self, i: usize, fallback: T, resolve: impl Fn(&str) -> T) -> Result<Vec<T>> {
        crate::util::columns::per_row(self.batch.column(i), fallback, resolve)
            .map_err(|e| self.column_error(i, &e))
    }

    fn column_error(&self, i: usize, e: &str) -> Error {
        Error::Input(format!(
            "{}: column '{}': {e}",
            self.file,
            self.batch.schema().field(i).name()
        ))
    }
}

impl Iterator for Dataset {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        loop {
            if self.current.is_none() {
                self.current = Some(self.parts.next()?);
            }
            let part = self.current.as_mut()?;
            let next = part.next_batch();
            match next {
                None => self.current = None,
                Some(Err(e)) => {
                    self.current = None;
                    self.parts = Vec::new().into_iter();
                    return Some(Err(e));
                }
                Some(Ok(batch)) => {
                    let first_row = part.rows + 1;
                    part.rows += batch.num_rows() as u64;
                    return Some(Ok(Batch {
                        file: part.name.clone(),
                        first_row,
                        batch,
                    }));
                }
            }
        }
    }
}

fn check_same(first: &Schema, other: &Schema, first_name: &str, other_name: &str) -> Result<()> {
    let names = |s: &Schema| -> Vec<(String, DataType)> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    if names(first) != names(other) {
        return Err(Error::Input(format!(
            "{other_name}: its columns differ from {first_name}'s; every part of a dataset must have the same columns and types"
        )));
    }
    Ok(())
}

fn open_part(
    name: &str,
    batch_rows: usize,
    dict_columns: ReadDict,
    shape: CsvShape,
) -> Result<(InputFile, SchemaRef)> {
    if name == "-" {
        let stdin: Box<dyn Read + Send> = Box::new(std::io::stdin());
        return open_csv("-", stdin, batch_rows, shape);
    }
    let path = Path::new(name);
    let file = File::open(path).map_err(|e| Error::Input(format!("cannot open {name}: {e}")))?;
    match ext(path).as_deref() {
        Some("csv") => open_csv(name, Box::new(file), batch_rows, shape),
        Some("parquet") => {
            let source =
                ByteSource::file(file).map_err(|e| Error::Input(format!("cannot read {name}: {e}")))?;
            open_parquet(name, source, batch_rows, dict_columns)
        }
        _ => Err(Error::Input(format!(
            "{name}: unknown file type; expected a .csv or .parquet file, or - for CSV on standard input"
        ))),
    }
}
