//! A Parquet column chunk of text written from dictionary keys.
//!
//! The parquet crate's Arrow writer hashes every value it writes to find
//! its dictionary entry, even when the column arrives as a dictionary array
//! whose keys already say which rows share a value: in a 10M-row scrub that
//! was a fifth of the CPU. Here each distinct value of an input dictionary
//! is looked up once per dictionary, and each row costs one table read.
//! The chunk is what the crate writes for the same column and properties:
//! a PLAIN dictionary page, then v1 data pages of RLE_DICTIONARY keys (with
//! RLE definition levels when the column is nullable), each compressed with
//! the file's codec; past the dictionary page size limit it falls back to
//! PLAIN pages, as the crate does. Pages are located by an offset index.

use parquet::errors::ParquetError;
use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, StringArray};
use arrow::datatypes::{DataType, Int32Type};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::compression::{create_codec, Codec, CodecOptions};
use parquet::encodings::rle::RleEncoder;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Not yet looked up in this chunk's dictionary.
const UNSEEN: u32 = u32::MAX;

/// One text column of one row group, being encoded.
pub(crate) struct DictChunk {
    descr: ColumnDescPtr,
    compression: Compression,
    codec: Option<Box<dyn Codec>>,
    nullable: bool,
    page_rows: usize,
    page_bytes: usize,
    dict_limit: usize,
    /// The chunk's dictionary: value → key, and the values PLAIN-encoded.
    index: HashMap<Box<[u8]>, u32>,
    dict: Vec<u8>,
    dict_len: u32,
    /// Past the dictionary size limit: the rest is written PLAIN.
    plain: bool,
    /// The input dictionary last seen, and its keys' keys in ours.
    last_values: Option<ArrayRef>,
    remap: Vec<u32>,
    /// The page being filled: keys (or PLAIN values) and levels.
    keys: Vec<u64>,
    values: Vec<u8>,
    levels: Vec<u64>,
    page_len: usize,
    /// Finished data pages, compressed: the page, its size before
    /// compression, and its first row.
    pages: Vec<(Page, usize, u64)>,
    rows: u64,
    /// A page that could not be compressed.
    failed: Option<ParquetError>,
}

impl DictChunk {
    /// A chunk of the column `descr`, with the file's properties.
    pub(crate) fn new(descr: ColumnDescPtr, props: &WriterProperties) -> Result<DictChunk, ParquetError> {
        let path = descr.path();
        let compression = props.compression(path);
        Ok(DictChunk {
            nullable: descr.max_def_level() > 0,
            compression,
            codec: create_codec(compression, &CodecOptions::default())?,
            page_rows: props.data_page_row_count_limit().max(1),
            page_bytes: props.data_page_size_limit().max(1),
            dict_limit: props.dictionary_page_size_limit().max(1),
            descr,
            index: HashMap::new(),
            dict: Vec::new(),
            dict_len: 0,
            plain: false,
            last_values: None,
            remap: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
            levels: Vec::new(),
            page_len: 0,
            pages: Vec::new(),
            rows: 0,
            failed: None,
        })
    }

    /// Append a column of text: a dictionary array of Int32 keys (the fast
    /// path) or a plain string array.
    pub(crate) fn write(&mut self, col: &dyn Array) -> Result<(), ParquetError> {
        if let Some(d) = col.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
            if d.values().data_type() != &DataType::Utf8 {
                return Err(ParquetError::General(format!(
                    "a dictionary of {} where text was expected",
                    d.values().data_type()
                )));
            }
            self.write_dict(d)
        } else if let Some(s) = col.as_string_opt::<i32>() {
            for i in 0..s.len() {
                if s.is_valid(i) {
                    self.push_value(s.value(i).as_bytes());
                } else {
                    self.push_null()?;
                }
            }
            Ok(())
        } else {
            Err(ParquetError::General(format!(
                "{} where text was expected",
                col.data_type()
            )))
        }
    }

    fn write_dict(&mut self, d: &DictionaryArray<Int32Type>) -> Result<(), ParquetError> {
        let values: &StringArray = d.values().as_string::<i32>();
        let same = self
            .last_values
            .as_ref()
            .is_some_and(|v| std::sync::Arc::ptr_eq(v, d.values()));
        if !same {
            self.last_values = Some(d.values().clone());
            self.remap.clear();
            self.remap.resize(values.len(), UNSEEN);
        }
        let keys = d.keys();
        for i in 0..d.len() {
            if keys.is_null(i) {
                self.push_null()?;
                continue;
            }
            // keys of a valid dictionary array are within its values
            let k = keys.value(i) as usize;
            if values.is_null(k) {
                self.push_null()?;
                continue;
            }
            match self.remap.get(k).copied() {
                Some(key) if key != UNSEEN && !self.plain => self.push_key(key),
                _ => {
                    let key = self.push_value(values.value(k).as_bytes());
                    if let (Some(key), Some(slot)) = (key, self.remap.get_mut(k)) {
                        *slot = key;
                    }
                }
            }
        }
        Ok(())
    }

    fn push_null(&mut self) -> Result<(), ParquetError> {
        if !self.nullable {
            return Err(ParquetError::General(format!(
                "column '{}' is not nullable but holds a null",
                self.descr.path().string()
            )));
        }
        self.levels.push(0);
        self.row_done();
        Ok(())
    }

    fn push_key(&mut self, key: u32) {
        self.keys.push(u64::from(key));
        if self.nullable {
            self.levels.push(1);
        }
        self.row_done();
    }

    /// Append a value, through the dictionary while it has room; the key
    /// it got, if any.
    fn push_value(&mut self, v: &[u8]) -> Option<u32> {
        if !self.plain {
            if let Some(&key) = self.index.get(v) {
                self.push_key(key);
                return Some(key);
            }
            if self.dict.len() + 4 + v.len() <= self.dict_limit || self.dict_len == 0 {
                let key = self.dict_len;
                self.index.insert(v.into(), key);
                self.dict.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.dict.extend_from_slice(v);
                self.dict_len += 1;
                self.push_key(key);
                return Some(key);
            }
            // the dictionary is full: what follows is written PLAIN
            self.flush_page();
            self.plain = true;
        }
        self.values.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.values.extend_from_slice(v);
        if self.nullable {
            self.levels.push(1);
        }
        self.row_done();
        None
    }

    fn row_done(&mut self) {
        self.page_len += 1;
        self.rows += 1;
        if self.page_len >= self.page_rows || self.values.len() >= self.page_bytes {
            self.flush_page();
        }
    }

    fn compress(&mut self, body: &[u8]) -> Result<Vec<u8>, ParquetError> {
        match &mut self.codec {
            Some(c) => {
                let mut out = Vec::with_capacity(body.len() / 2 + 64);
                c.compress(body, &mut out)?;
                Ok(out)
            }
            None => Ok(body.to_vec()),
        }
    }

    fn flush_page(&mut self) {
        // kept for `close`: the callers that fill pages cannot fail
        if let Err(e) = self.try_flush_page() {
            self.failed.get_or_insert(e);
        }
    }

    fn try_flush_page(&mut self) -> Result<(), ParquetError> {
        if self.page_len == 0 {
            return Ok(());
        }
        let mut body = Vec::new();
        if self.nullable {
            let mut levels = RleEncoder::new_from_buf(1, vec![0; 4]);
            levels.put_batch(&self.levels);
            body = levels.consume();
            let len = (body.len() - 4) as u32;
            body[..4].copy_from_slice(&len.to_le_bytes());
        }
        let encoding = if self.plain {
            body.extend_from_slice(&self.values);
            Encoding::PLAIN
        } else {
            let bits = parquet_bits(self.dict_len);
            body.push(bits);
            let mut keys = RleEncoder::new_from_buf(bits, body);
            keys.put_batch(&self.keys);
            body = keys.consume();
            Encoding::RLE_DICTIONARY
        };
        let buf = self.compress(&body)?;
        let first_row = self.rows - self.page_len as u64;
        self.pages.push((
            Page::DataPage {
                buf: Bytes::from(buf),
                num_values: self.page_len as u32,
                encoding,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            body.len(),
            first_row,
        ));
        self.keys.clear();
        self.values.clear();
        self.levels.clear();
        self.page_len = 0;
        Ok(())
    }

    /// The encoded chunk and what the file writer needs to place it.
    pub(crate) fn close(mut self) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        self.try_flush_page()?;
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut sink = TrackedWrite::new(Vec::new());
        let mut writer = SerializedPageWriter::new(&mut sink);
        let (mut compressed, mut uncompressed) = (0i64, 0i64);
        let mut stats: Vec<PageEncodingStats> = Vec::new();
        let mut count = |page_type, encoding| match stats
            .iter_mut()
            .find(|s| s.page_type == page_type && s.encoding == encoding)
        {
            Some(s) => s.count += 1,
            None => stats.push(PageEncodingStats {
                page_type,
                encoding,
                count: 1,
            }),
        };
        // the dictionary page, unless every page is PLAIN
        let dict_offset = if self.dict_len > 0 || !self.plain {
            let dict = std::mem::take(&mut self.dict);
            let page = Page::DictionaryPage {
                buf: Bytes::from(self.compress(&dict)?),
                num_values: self.dict_len,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            };
            let spec = writer.write_page(CompressedPage::new(page, dict.len()))?;
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            count(PageType::DICTIONARY_PAGE, Encoding::PLAIN);
            Some(spec.offset as i64)
        } else {
            None
        };
        let mut locations = Vec::with_capacity(self.pages.len());
        let mut encodings = vec![Encoding::RLE];
        for (page, size, first_row) in std::mem::take(&mut self.pages) {
            let encoding = page.encoding();
            if !encodings.contains(&encoding) {
                encodings.push(encoding);
            }
            count(PageType::DATA_PAGE, encoding);
            let spec = writer.write_page(CompressedPage::new(page, size))?;
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            locations.push(PageLocation {
                offset: spec.offset as i64,
                compressed_page_size: i32::try_from(spec.bytes_written)?,
                first_row_index: first_row as i64,
            });
        }
        if dict_offset.is_some() && !encodings.contains(&Encoding::PLAIN) {
            encodings.push(Encoding::PLAIN);
        }
        writer.close()?;
        let data_offset = locations.first().map(|l| l.offset).unwrap_or(compressed);
        let rows = i64::try_from(self.rows)?;
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(self.compression)
            .set_encodings(encodings)
            .set_page_encoding_stats(stats)
            .set_num_values(rows)
            .set_total_compressed_size(compressed)
            .set_total_uncompressed_size(uncompressed)
            .set_data_page_offset(data_offset)
            .set_dictionary_page_offset(dict_offset)
            .build()?;
        let bytes = sink.into_inner()?;
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: self.rows,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: locations,
                unencoded_byte_array_data_bytes: None,
            }),
        };
        Ok((Bytes::from(bytes), close))
    }
}

/// Bits per key for a dictionary of `len` entries, as the crate counts.
fn parquet_bits(len: u32) -> u8 {
    (32 - len.saturating_sub(1).leading_zeros()) as u8
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowSchemaConverter;
    use parquet::basic::ZstdLevel;
    use parquet::file::writer::SerializedFileWriter;

    use super::*;

    /// One column `t` written by a [`DictChunk`] as one row group, read
    /// back by the crate: its values, and its chunk's data page encodings.
    fn round_trip(
        nullable: bool,
        props: WriterProperties,
        batches: &[ArrayRef],
    ) -> Result<(Vec<Option<String>>, Vec<Encoding>), ParquetError> {
        let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, nullable)]));
        let descr = ArrowSchemaConverter::new().convert(&schema)?;
        let props = Arc::new(props);
        let mut chunk = DictChunk::new(descr.column(0), &props)?;
        for b in batches {
            chunk.write(b.as_ref())?;
        }
        let (bytes, close) = chunk.close()?;
        let mut file = SerializedFileWriter::new(Vec::new(), descr.root_schema_ptr(), props)?;
        let mut rg = file.next_row_group()?;
        rg.append_column(&bytes, close)?;
        rg.close()?;
        let buf = Bytes::from(file.into_inner()?);
        let reader = ParquetRecordBatchReaderBuilder::try_new(buf)?;
        let encodings = reader
            .metadata()
            .row_group(0)
            .column(0)
            .page_encoding_stats_mask()
            .map(|m| m.encodings().collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for b in reader.build()? {
            let b = b?;
            let s = b.column(0).as_string::<i32>();
            out.extend(s.iter().map(|v| v.map(str::to_string)));
        }
        Ok((out, encodings))
    }

    fn dict(keys: &[Option<i32>], values: &[Option<&str>]) -> ArrayRef {
        let keys = Int32Array::from(keys.to_vec());
        let values: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).unwrap())
    }

    fn zstd() -> parquet::file::properties::WriterPropertiesBuilder {
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()))
    }

    fn owned(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn dictionaries_of_each_batch_meet_in_one() {
        // two batches with their own dictionaries (in another order, one
        // value each of their own), null keys and a null value
        let a = dict(
            &[Some(0), Some(1), None, Some(1), Some(2)],
            &[Some("x"), Some("y"), None],
        );
        let b = dict(
            &[Some(1), Some(0), Some(2), Some(2)],
            &[Some("z"), Some("y"), Some("x")],
        );
        let plain: ArrayRef = Arc::new(StringArray::from(vec![Some("w"), None, Some("x")]));
        let (got, encodings) = round_trip(true, zstd().build(), &[a, b, plain]).unwrap();
        let want = [
            Some("x"),
            Some("y"),
            None,
            Some("y"),
            None,
            Some("y"),
            Some("z"),
            Some("x"),
            Some("x"),
            Some("w"),
            None,
            Some("x"),
        ];
        assert_eq!(got, owned(&want));
        assert_eq!(encodings, vec![Encoding::RLE_DICTIONARY]);
    }

    #[test]
    fn pages_split_by_rows_and_one_value_takes_no_bits() {
        // 50,001 rows of one value in pages of 1,000 rows
        let keys: Vec<Option<i32>> = vec![Some(0); 50_001];
        let a = dict(&keys, &[Some("only")]);
        let props = zstd().set_data_page_row_count_limit(1000).build();
        let (got, encodings) = round_trip(false, props, &[a]).unwrap();
        assert_eq!(got.len(), 50_001);
        assert!(got.iter().all(|v| v.as_deref() == Some("only")));
        assert_eq!(encodings, vec![Encoding::RLE_DICTIONARY]);
    }

    #[test]
    fn a_full_dictionary_falls_back_to_plain_pages() {
        // 5,000 distinct values of 8 bytes against a 4 KB dictionary limit
        let values: Vec<String> = (0..5000).map(|i| format!("v{i:07}")).collect();
        let refs: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
        let keys: Vec<Option<i32>> = (0..10_000).map(|i| Some(i % 5000)).collect();
        let a = dict(&keys, &refs);
        let props = zstd()
            .set_dictionary_page_size_limit(4096)
            .set_data_page_row_count_limit(700)
            .build();
        let (got, encodings) = round_trip(true, props, &[a]).unwrap();
        let want: Vec<Option<&str>> = keys.iter().map(|k| refs[k.unwrap() as usize]).collect();
        assert_eq!(got, owned(&want));
        assert!(encodings.contains(&Encoding::RLE_DICTIONARY) && encodings.contains(&Encoding::PLAIN));
    }

    #[test]
    fn every_codec_and_an_empty_chunk() {
        let a = dict(&[Some(1), Some(0)], &[Some("a"), Some("b")]);
        for c in [
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
            Compression::LZ4_RAW,
            Compression::GZIP(Default::default()),
            Compression::ZSTD(ZstdLevel::default()),
        ] {
            let props = WriterProperties::builder().set_compression(c).build();
            let (got, _) = round_trip(false, props, std::slice::from_ref(&a)).unwrap();
            assert_eq!(got, owned(&[Some("b"), Some("a")]), "{c:?}");
        }
        let (got, _) = round_trip(true, zstd().build(), &[]).unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn a_null_in_a_required_column_or_other_types_are_refused() {
        let a = dict(&[Some(0), None], &[Some("a")]);
        let e = round_trip(false, zstd().build(), &[a]).unwrap_err();
        assert!(
            e.to_string()
                .contains("column 't' is not nullable but holds a null"),
            "{e}"
        );
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        let e = round_trip(true, zstd().build(), &[ints]).unwrap_err();
        assert!(e.to_string().contains("Int32 where text was expected"), "{e}");
    }
}
