//! Samples of a user's recipient file for `plan --input`, written as the
//! user wrote it.
//!
//! A Parquet sample is made of whole row groups of the original, their
//! column chunks copied byte for byte (the writer's encodings, codec, page
//! sizes, statistics, page index and Arrow schema kept): a scrub of the
//! sample reads the shape the nightly job will read. A CSV sample is the
//! file's first records, copied as they are. A folder's sample is a folder:
//! whole parts, then the last one cut. A sample larger than the input
//! starts over from its first row group (record, part): the rows repeat,
//! the shape stays the writer's.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::reader::Length;
use parquet::file::writer::SerializedFileWriter;

use crate::error::{Error, Result};
use crate::io::input::CsvShape;
use crate::io::parquet::source::ByteSource;

/// One part of the input.
enum SampleOf {
    Parquet {
        path: PathBuf,
        source: ByteSource,
        meta: Arc<ParquetMetaData>,
    },
    Csv {
        path: PathBuf,
        shape: CsvShape,
    },
}

impl SampleOf {
    fn path(&self) -> &Path {
        match self {
            SampleOf::Parquet { path, .. } | SampleOf::Csv { path, .. } => path,
        }
    }

    /// Rows, where the part says (a CSV part does not).
    fn rows(&self) -> Option<u64> {
        match self {
            SampleOf::Parquet { meta, .. } => Some(meta.file_metadata().num_rows().max(0) as u64),
            SampleOf::Csv { .. } => None,
        }
    }
}

/// A sample written: where, its rows, and whether they repeat the input's.
pub(super) struct Sample {
    /// The file, or the folder of parts.
    pub path: PathBuf,
    /// Its rows.
    pub rows: u64,
    /// True when the input had fewer rows and was copied again.
    pub repeated: bool,
}

/// The parts of a recipient input, opened for sampling.
pub(super) struct Sampler {
    parts: Vec<SampleOf>,
    folder: bool,
}

fn name_of(path: &Path) -> String {
    path.display().to_string()
}

fn open_parquet(path: &Path) -> Result<SampleOf> {
    let name = name_of(path);
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let source = ByteSource::file(file).map_err(|e| Error::io("cannot read", path, e))?;
    crate::io::parquet::guard::check_footer(&name, &source)?;
    let meta = crate::io::parquet::reader::guarded(&name, || {
        ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&source)
            .map_err(|e| Error::Input(format!("{name}: not a readable Parquet file ({e})")))
    })?;
    crate::io::parquet::guard::check_chunks(&name, &meta, source.len())?;
    Ok(SampleOf::Parquet {
        path: path.to_path_buf(),
        source,
        meta: Arc::new(meta),
    })
}

impl Sampler {
    /// Open a file or a folder of parts (as `scrub --input` reads them).
    pub(super) fn open(input: &Path, shape: CsvShape) -> Result<Sampler> {
        let folder = input.is_dir();
        let paths = crate::io::input::expand(&[input.to_string_lossy().into_owned()])?;
        let mut parts = Vec::with_capacity(paths.len());
        for p in &paths {
            let path = PathBuf::from(p);
            if p == "-" {
                return Err(Error::Usage(
                    "plan --input needs a file or a folder: standard input cannot be sampled".into(),
                ));
            }
            let parquet = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
                || (!path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
                    && has_parquet_magic(&path));
            parts.push(if parquet {
                open_parquet(&path)?
            } else {
                SampleOf::Csv { path, shape }
            });
        }
        let kinds = parts
            .iter()
            .filter(|p| matches!(p, SampleOf::Parquet { .. }))
            .count();
        if kinds != 0 && kinds != parts.len() {
            return Err(Error::Input(format!(
                "{}: its parts mix Parquet and CSV; plan samples one kind",
                input.display()
            )));
        }
        let mut schemas = parts.iter().filter_map(|p| match p {
            SampleOf::Parquet { meta, .. } => Some(meta.file_metadata().schema_descr().root_schema()),
            SampleOf::Csv { .. } => None,
        });
        if let Some(first) = schemas.next() {
            if let Some(k) = schemas.position(|s| s != first) {
                return Err(Error::Input(format!(
                    "{}: its schema differs from the first part's",
                    parts[k + 1].path().display()
                )));
            }
        }
        Ok(Sampler { parts, folder })
    }

    /// Write a sample of about `target` rows (at least one row group;
    /// the input again from its start when it has fewer) into `dir`: a
    /// file `sample.<ext>` for a file, a folder `parts` for a folder.
    pub(super) fn write(&self, target: u64, dir: &Path) -> Result<Sample> {
        if !self.folder {
            let part = &self.parts[0];
            let path = dir.join(format!("sample.{}", extension(part)));
            let (rows, repeated) = write_part(part, target, &path)?;
            return Ok(Sample { path, rows, repeated });
        }
        let out = dir.join("parts");
        std::fs::create_dir_all(&out).map_err(|e| Error::io("cannot create", &out, e))?;
        let (mut written, mut repeated) = (0u64, false);
        for (k, part) in self.parts.iter().cycle().enumerate() {
            if written >= target || (k >= self.parts.len() && written == 0) {
                break;
            }
            repeated |= k >= self.parts.len();
            let file = out.join(format!("part-{k:05}.{}", extension(part)));
            let left = target - written;
            written += match part.rows() {
                Some(rows) if rows <= left => {
                    std::fs::copy(part.path(), &file)
                        .map_err(|e| Error::io("cannot copy", part.path(), e))?;
                    rows
                }
                _ => {
                    let (rows, again) = write_part(part, left, &file)?;
                    repeated |= again;
                    rows
                }
            };
        }
        Ok(Sample {
            path: out,
            rows: written,
            repeated,
        })
    }

    /// The shape of the input, for the plan's notes: who wrote it, how
    /// its rows are grouped and compressed.
    pub(super) fn describe(&self) -> String {
        let prefix = if self.folder {
            format!("{} parts, ", self.parts.len())
        } else {
            String::new()
        };
        let shape = match &self.parts[0] {
            SampleOf::Csv { .. } => "CSV".to_string(),
            SampleOf::Parquet { meta, .. } => {
                let fm = meta.file_metadata();
                let groups: Vec<u64> = self
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        SampleOf::Parquet { meta, .. } => Some(meta),
                        SampleOf::Csv { .. } => None,
                    })
                    .flat_map(|m| m.row_groups().iter().map(|g| g.num_rows().max(0) as u64))
                    .collect();
                let rows: u64 = groups.iter().sum();
                let codec = meta
                    .row_groups()
                    .first()
                    .and_then(|g| g.columns().first())
                    .map_or("no".to_string(), |c| c.compression().to_string());
                format!(
                    "Parquet by {}, {rows} rows in {} row groups of about {} rows, {codec} compression",
                    fm.created_by().unwrap_or("an unnamed writer"),
                    groups.len(),
                    rows / (groups.len() as u64).max(1)
                )
            }
        };
        format!("{prefix}{shape}")
    }
}

fn extension(part: &SampleOf) -> &'static str {
    match part {
        SampleOf::Parquet { .. } => "parquet",
        SampleOf::Csv { .. } => "csv",
    }
}

fn has_parquet_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"PAR1")
}

/// Write about `target` rows of one part to `file`; the rows written, and
/// whether they repeat the part's.
fn write_part(part: &SampleOf, target: u64, file: &Path) -> Result<(u64, bool)> {
    match part {
        SampleOf::Parquet { path, source, meta } => copy_row_groups(path, source, meta, target, file),
        SampleOf::Csv { path, shape } => copy_records(path, *shape, target, file),
    }
}

/// Copy whole row groups, from the first (and again from the first when
/// the file ends), until `target` rows are reached: at least one group.
fn copy_row_groups(
    path: &Path,
    source: &ByteSource,
    meta: &ParquetMetaData,
    target: u64,
    file: &Path,
) -> Result<(u64, bool)> {
    let fm = meta.file_metadata();
    let version = if fm.version() >= 2 {
        WriterVersion::PARQUET_2_0
    } else {
        WriterVersion::PARQUET_1_0
    };
    let has_offset_index = meta.page_index().is_some();
    let mut props = WriterProperties::builder()
        .set_writer_version(version)
        .set_key_value_metadata(fm.key_value_metadata().cloned())
        .set_offset_index_disabled(!has_offset_index);
    if let Some(by) = fm.created_by() {
        props = props.set_created_by(by.to_string());
    }
    let failed = |e: parquet::errors::ParquetError| {
        Error::Input(format!(
            "plan: cannot copy the row groups of {} ({e})",
            path.display()
        ))
    };
    let out = File::create(file).map_err(|e| Error::io("cannot create", file, e))?;
    let mut writer =
        SerializedFileWriter::new(out, fm.schema_descr().root_schema_ptr(), Arc::new(props.build()))
            .map_err(failed)?;
    let mut rows = 0u64;
    let groups = meta.row_groups();
    // a file without rows is copied once, not looped on
    let has_rows = groups.iter().any(|g| g.num_rows() > 0);
    let passes = if has_rows { usize::MAX } else { groups.len() };
    let mut copied = 0usize;
    for (g, rg) in groups.iter().enumerate().cycle().take(passes) {
        if rows >= target.max(1) {
            break;
        }
        copied += 1;
        let index = meta.page_index_for_row_group(g);
        let mut group = writer.next_row_group().map_err(failed)?;
        for (c, col) in rg.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: col.compressed_size().max(0) as u64,
                rows_written: rg.num_rows().max(0) as u64,
                metadata: col.clone(),
                bloom_filter: None,
                column_index: index.column_index(c).cloned(),
                offset_index: index.offset_index(c).cloned(),
            };
            group.append_column(source, close).map_err(failed)?;
        }
        group.close().map_err(failed)?;
        rows += rg.num_rows().max(0) as u64;
    }
    writer.close().map_err(failed)?;
    Ok((rows, copied > groups.len()))
}

/// What was wrong with a CSV record, in words that hold no field's text
/// (a phone number stays out of messages).
fn csv_problem(e: &csv::Error) -> &'static str {
    match e.kind() {
        csv::ErrorKind::Io(_) => "it could not be read",
        csv::ErrorKind::Utf8 { .. } => "it is not UTF-8 text",
        csv::ErrorKind::UnequalLengths { .. } => "its fields do not match the header",
        _ => "it is not valid CSV",
    }
}

/// Copy the header and the first `target` records (at least one) of a CSV
/// file as they are; when the file has fewer, its records again, from the
/// first.
fn copy_records(path: &Path, shape: CsvShape, target: u64, file: &Path) -> Result<(u64, bool)> {
    use std::io::{BufRead, BufReader, Read, Seek, Write};
    let open = || File::open(path).map_err(|e| Error::io("cannot open", path, e));
    let delimiter = match shape.delimiter {
        Some(d) => d,
        None => {
            // judged from the first line, as the scrub judges it
            let mut first = Vec::new();
            BufReader::new(open()?)
                .read_until(b'\n', &mut first)
                .map_err(|e| Error::io("cannot read", path, e))?;
            crate::io::input::delimiter_of(first.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&first))
        }
    };
    let problem = |rows: u64, e: &csv::Error| {
        Error::Input(format!(
            "{}: record {} cannot be sampled: {}",
            path.display(),
            rows + 1,
            csv_problem(e)
        ))
    };
    // the byte after the header, and after `n` records (fewer at the end)
    let records = |n: u64| -> Result<(u64, u64, u64)> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::new(open()?));
        let mut record = csv::ByteRecord::new();
        if shape.header {
            reader.read_byte_record(&mut record).map_err(|e| problem(0, &e))?;
        }
        let body = reader.position().byte();
        let mut rows = 0u64;
        while rows < n {
            match reader.read_byte_record(&mut record) {
                Ok(true) => rows += 1,
                Ok(false) => break,
                Err(e) => return Err(problem(rows, &e)),
            }
        }
        Ok((body, reader.position().byte(), rows))
    };
    let target = target.max(1);
    let (body, end, per_copy) = records(target)?;
    let write_err = |e| Error::io("cannot write", file, e);
    let mut out =
        std::io::BufWriter::new(File::create(file).map_err(|e| Error::io("cannot create", file, e))?);
    std::io::copy(&mut open()?.take(end), &mut out).map_err(write_err)?;
    let mut rows = per_copy;
    if per_copy == 0 || rows == target {
        out.flush().map_err(write_err)?;
        return Ok((rows, false));
    }
    // fewer records than asked: the file was read to its end; its records
    // again, whole, then the first few
    let ends_line = {
        let mut last = [0u8; 1];
        let mut f = open()?;
        f.seek(std::io::SeekFrom::Start(end.saturating_sub(1)))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| Error::io("cannot read", path, e))?;
        last[0] == b'\n'
    };
    let copy = |out: &mut std::io::BufWriter<File>, to: u64| -> Result<()> {
        let mut f = open()?;
        f.seek(std::io::SeekFrom::Start(body))
            .map_err(|e| Error::io("cannot read", path, e))?;
        std::io::copy(&mut f.take(to - body), out).map_err(write_err)?;
        Ok(())
    };
    while rows < target {
        if !ends_line {
            out.write_all(b"\n").map_err(write_err)?;
        }
        let take = (target - rows).min(per_copy);
        let to = if take == per_copy { end } else { records(take)?.1 };
        copy(&mut out, to)?;
        rows += take;
    }
    out.flush().map_err(write_err)?;
    Ok((rows, true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn records(path: &Path) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new().delimiter(b';').from_path(path).unwrap();
        r.records()
            .map(|x| x.unwrap().iter().map(String::from).collect())
            .collect()
    }

    #[test]
    fn a_csv_smaller_than_the_sample_repeats_its_records_whole() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("list.csv");
        // semicolons, a quoted field with a line break, no final newline
        let mut text = String::from("\u{feff}id;phone;note\n");
        for i in 0..5 {
            text.push_str(&format!("{i};+4477009000{i:02};\"a;\n{i}\"\n"));
        }
        text.pop();
        std::fs::write(&input, text).unwrap();
        let sampler = Sampler::open(&input, CsvShape::default()).unwrap();
        assert_eq!(sampler.describe(), "CSV");
        let sample = sampler.write(12, dir.path()).unwrap();
        let (file, n) = (sample.path, sample.rows);
        assert_eq!(n, 12);
        assert!(sample.repeated);
        let got = records(&file);
        let once = records(&input);
        assert_eq!(once.len(), 5);
        let want: Vec<Vec<String>> = once.iter().cycle().take(12).cloned().collect();
        assert_eq!(got, want);
        // a sample no larger than the file is its first records
        let sample = sampler.write(3, dir.path()).unwrap();
        assert!(!sample.repeated);
        assert_eq!((sample.rows, records(&sample.path)), (3, once[..3].to_vec()));
    }

    #[test]
    fn a_parquet_sample_is_whole_row_groups_copied_as_written() {
        use arrow::array::{Array, AsArray, RecordBatch, StringArray};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::arrow::ArrowWriter;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("list.parquet");
        let phones = StringArray::from_iter_values((0..1000).map(|i| format!("+447700{i:06}")));
        let batch = RecordBatch::try_from_iter([("phone", std::sync::Arc::new(phones) as _)]).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(400))
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut w = ArrowWriter::try_new(File::create(&input).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let sampler = Sampler::open(&input, CsvShape::default()).unwrap();
        let read = |path: &Path| {
            let r = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
            let groups: Vec<i64> = r.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
            let codec = r.metadata().row_group(0).column(0).compression();
            let values: Vec<String> = r
                .build()
                .unwrap()
                .flat_map(|b| {
                    let b = b.unwrap();
                    let c = b.column(0).as_string::<i32>().clone();
                    (0..c.len())
                        .map(move |i| c.value(i).to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            (groups, codec, values)
        };
        let (_, _, all) = read(&input);
        // 500 rows: two whole groups of 400
        let sample = sampler.write(500, dir.path()).unwrap();
        assert!(!sample.repeated);
        let (file, n) = (sample.path, sample.rows);
        let (groups, codec, values) = read(&file);
        assert_eq!((n, groups), (800, vec![400, 400]));
        assert_eq!(codec, parquet::basic::Compression::SNAPPY);
        assert_eq!(values, all[..800]);
        // 2500 rows: the file, then its groups again
        let sample = sampler.write(2500, dir.path()).unwrap();
        assert!(sample.repeated);
        let (file, n) = (sample.path, sample.rows);
        let (groups, _, values) = read(&file);
        assert_eq!((n, groups), (2800, vec![400, 400, 200, 400, 400, 200, 400, 400]));
        let want: Vec<String> = all.iter().cycle().take(2800).cloned().collect();
        assert_eq!(values, want);
    }
}
