//! Reading a Parquet file: its metadata checked before the parquet crate
//! trusts it, row groups read in order or handed out to decode on other
//! threads, and which text columns are read as dictionaries (and how
//! outputs follow the input's encodings). `io::input` makes datasets of
//! these files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::file::reader::Length;

use super::source::ByteSource;
use super::Encodings;
use crate::error::{Error, Result};

/// A Parquet file read row group by row group: in order by one reader, or
/// handed out as [`Groups`] that decode on other threads.
pub(crate) struct ParquetFile {
    source: ByteSource,
    meta: ArrowReaderMetadata,
    batch_rows: usize,
    /// The first row group not yet handed to a reader.
    next_group: usize,
    /// Rows of `next_group` already handed out (as row ranges, when a row
    /// group is larger than a unit).
    group_offset: u64,
    /// The reader of the row groups being read in order.
    current: Option<ParquetRecordBatchReader>,
}

/// Some row groups of a file (or a range of the rows of one), to decode on
/// any thread.
pub(crate) struct Groups {
    source: ByteSource,
    meta: ArrowReaderMetadata,
    groups: Vec<usize>,
    batch_rows: usize,
    /// A range of the rows of its one row group, when that is larger than
    /// a unit.
    rows: Option<std::ops::Range<u64>>,
    /// Rows they hold.
    pub(crate) count: u64,
}

impl Groups {
    /// Decode the rows, in order, a batch at a time.
    pub(crate) fn for_each(self, name: &str, mut f: impl FnMut(RecordBatch) -> Result<()>) -> Result<()> {
        let mut reader = read_groups(
            name,
            &self.source,
            &self.meta,
            self.groups,
            self.batch_rows,
            self.rows,
        )?;
        while let Some(b) = guarded(name, || Ok(reader.next()))? {
            f(b.map_err(|e| data_error(name, e))?)?;
        }
        Ok(())
    }
}

fn data_error(name: &str, e: arrow::error::ArrowError) -> Error {
    Error::Input(format!("{name}: cannot read Parquet data: {e}"))
}

impl ParquetFile {
    fn groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    fn group_rows(&self, g: usize) -> u64 {
        u64::try_from(self.meta.metadata().row_group(g).num_rows()).unwrap_or(0)
    }

    /// Are row groups left to hand out?
    pub(crate) fn has_groups_left(&self) -> bool {
        self.next_group < self.groups()
    }

    /// The next row groups of about `target_rows` rows, unless an in-order
    /// read is under way: whole ones that fit, several together, or a
    /// larger one a range of its rows at a time.
    pub(crate) fn next_groups(&mut self, target_rows: u64) -> Option<Groups> {
        if self.current.is_some() || !self.has_groups_left() {
            return None;
        }
        let first = self.next_group;
        let group_rows = self.group_rows(first);
        let (groups, count, rows) = if group_rows > target_rows {
            // too large for one unit: a range of its rows, so that its
            // parts decode on several threads
            let from = self.group_offset;
            let to = (from + target_rows).min(group_rows);
            self.group_offset = to;
            if to == group_rows {
                self.next_group += 1;
                self.group_offset = 0;
            }
            (vec![first], to - from, Some(from..to))
        } else {
            let mut groups = vec![first];
            let mut count = group_rows;
            self.next_group += 1;
            while self.has_groups_left() && count + self.group_rows(self.next_group) <= target_rows {
                count += self.group_rows(self.next_group);
                groups.push(self.next_group);
                self.next_group += 1;
            }
            (groups, count, None)
        };
        Some(Groups {
            source: self.source.clone(),
            meta: self.meta.clone(),
            groups,
            batch_rows: self.batch_rows,
            rows,
            count,
        })
    }

    /// The next batch of the in-order read under way, if one is.
    pub(crate) fn next_read(&mut self, name: &str) -> Option<Result<RecordBatch>> {
        let r = self.current.as_mut()?;
        match guarded(name, || Ok(r.next())) {
            Err(e) => Some(Err(e)),
            Ok(None) => {
                self.current = None;
                None
            }
            Ok(Some(b)) => Some(b.map_err(|e| data_error(name, e))),
        }
    }

    /// The next batch, in file order.
    pub(crate) fn next_batch(&mut self, name: &str) -> Option<Result<RecordBatch>> {
        loop {
            if self.current.is_none() {
                if !self.has_groups_left() {
                    return None;
                }
                let groups = (self.next_group..self.groups()).collect();
                self.next_group = self.groups();
                match read_groups(name, &self.source, &self.meta, groups, self.batch_rows, None) {
                    Ok(r) => self.current = Some(r),
                    Err(e) => return Some(Err(e)),
                }
            }
            if let Some(b) = self.next_read(name) {
                return Some(b);
            }
        }
    }
}

/// A reader of some row groups of a Parquet file.
fn read_groups(
    name: &str,
    source: &ByteSource,
    meta: &ArrowReaderMetadata,
    groups: Vec<usize>,
    batch_rows: usize,
    rows: Option<std::ops::Range<u64>>,
) -> Result<ParquetRecordBatchReader> {
    use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
    guarded(name, || {
        super::guard::check_pages(name, source, meta, &groups)?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(source.clone(), meta.clone())
            .with_row_groups(groups)
            .with_batch_size(batch_rows);
        let builder = match rows {
            // whole pages before the range are skipped by their headers
            Some(r) => builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(r.start as usize),
                RowSelector::select((r.end - r.start) as usize),
            ])),
            None => builder,
        };
        builder
            .build()
            .map_err(|e| Error::Input(format!("{name}: not a readable Parquet file ({e})")))
    })
}

/// Run a step of the Parquet reader so that a panic inside it, on a file
/// crafted to provoke one, becomes an error naming the file.
pub(crate) fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::error::quiet_panics(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))).unwrap_or_else(
        |_| {
            Err(Error::Input(format!(
                "{name}: not a readable Parquet file (its metadata or pages are inconsistent)"
            )))
        },
    )
}

/// An opened Parquet file, with what its metadata says.
pub(crate) struct Opened {
    /// The file, to read.
    pub(crate) file: ParquetFile,
    /// Its schema as read (text columns as `Utf8`).
    pub(crate) schema: SchemaRef,
    /// How its columns are encoded, for outputs to follow.
    pub(crate) encodings: Encodings,
    /// Its rows, as its footer says.
    pub(crate) total: Option<u64>,
}

/// Open a Parquet file, its footer and metadata checked; `name` is for
/// messages.
pub(crate) fn open(
    name: &str,
    file: ByteSource,
    batch_rows: usize,
    dict_columns: ReadDict,
) -> Result<Opened> {
    let unreadable =
        |e: parquet::errors::ParquetError| Error::Input(format!("{name}: not a readable Parquet file ({e})"));
    super::guard::check_footer(name, &file)?;
    let meta = guarded(name, || {
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(unreadable)
    })?;
    super::guard::check_chunks(name, meta.metadata(), file.len())?;
    let schema = text_as_utf8(meta.schema());
    let encodings = encodings_of(&meta, &schema, dict_columns);
    let wants_dict = |f: &Field| encodings.dict.iter().any(|d| d == f.name());
    let retyped = schema.fields() != meta.schema().fields();
    let meta = if retyped || schema.fields().iter().any(|f| wants_dict(f)) {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if wants_dict(&f) {
                    let t = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                    f.with_data_type(t)
                } else {
                    f
                }
            })
            .collect();
        let hint = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        ArrowReaderMetadata::try_new(
            meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(hint),
        )
        .map_err(unreadable)?
    } else {
        meta
    };
    let total = u64::try_from(meta.metadata().file_metadata().num_rows()).ok();
    Ok(Opened {
        file: ParquetFile {
            source: file,
            meta,
            batch_rows,
            next_group: 0,
            group_offset: 0,
            current: None,
        },
        schema,
        encodings,
        total,
    })
}

/// The file's Arrow schema with its top-level text columns as `Utf8`:
/// Polars records `string_view` (Utf8View) in the files it writes, pandas
/// `large_string`; all are Parquet UTF8 byte arrays, and reading them as
/// one type lets every writer's files take the same path (dictionary
/// reading, writing from dictionary keys). Outputs then record `string`.
fn text_as_utf8(schema: &SchemaRef) -> SchemaRef {
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::LargeUtf8))
    {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Which text columns of Parquet parts are read as dictionary arrays.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadDict<'a> {
    /// These, when they are text.
    pub named: &'a [&'a str],
    /// Also every text column whose pages are all dictionary-encoded, but
    /// for these.
    pub auto_except: Option<&'a [&'a str]>,
}

/// How a Parquet file's top-level columns are encoded, as far as its first
/// row group tells: text columns named in `dict_columns`, or (when it asks
/// for those) whose data pages are dictionary-encoded, are read as
/// dictionaries; columns whose data pages are not (distinct values, or a
/// dictionary given up on) are written without one.
///
/// Page encoding statistics say exactly which encodings the data pages
/// use, but a writer is free to omit them (Polars does). Then the column
/// chunk's own encoding list and dictionary page, which every file has,
/// decide: a chunk with a dictionary page and a dictionary encoding is read
/// as a dictionary (a page that gave the dictionary up is read all the
/// same: the reader turns it into dictionary keys), one without a
/// dictionary page is written without one.
fn encodings_of(meta: &ArrowReaderMetadata, schema: &Schema, dict_columns: ReadDict) -> Encodings {
    use parquet::basic::Encoding;
    let mut out = Encodings::default();
    let file = meta.metadata();
    let flat = file.file_metadata().schema_descr().num_columns() == schema.fields().len();
    let first = file.row_groups().first().filter(|_| flat);
    let is_dict = |e: Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    for (i, f) in schema.fields().iter().enumerate() {
        let Some(c) = first.and_then(|rg| rg.columns().get(i)) else {
            continue;
        };
        let has_dict = c.dictionary_page_offset().is_some();
        // Some(all data pages use a dictionary), when the file says
        let all_dict = match c.page_encoding_stats_mask() {
            Some(m) => Some(
                has_dict && (m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY)),
            ),
            None if !has_dict => Some(false),
            None => c.encodings().any(is_dict).then_some(true),
        };
        let name = f.name().as_str();
        let auto = all_dict == Some(true) && dict_columns.auto_except.is_some_and(|not| !not.contains(&name));
        if f.data_type() == &DataType::Utf8 && (auto || dict_columns.named.contains(&name)) {
            out.dict.push(f.name().clone());
        } else if all_dict == Some(false) {
            out.plain.push(f.name().clone());
        }
    }
    out
}
