//! A walk over a Parquet footer's Thrift encoding before the parquet crate
//! decodes it.
//!
//! The crate (60.1) sizes some of its buffers from counts the footer claims
//! before it reads what they count: a schema element claiming 789 million
//! children made it reserve 6 GB, and the process aborts where the memory
//! is not there (found by fuzzing). This walk reads the footer once, the
//! way the compact protocol lays it out, and refuses a footer whose counts
//! cannot be true: a list, set, map or string longer than the bytes left,
//! a schema element with more children than the schema has elements, or
//! nesting deeper than any real file has. It allocates nothing and takes
//! time linear in the footer's size.
//!
//! A footer this walk cannot follow (it ends early, or a field's type is
//! not one Thrift has) is left to the crate, which reads known fields by
//! their expected types and so gets further on some damaged footers: its
//! own error is then the better one. A count found before such a point is
//! still checked, so this is a net, not a proof.

/// Deepest nesting of structs and containers accepted (real footers nest
/// about six deep).
const MAX_DEPTH: usize = 64;

/// Compact-protocol type ids.
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

/// `FileMetaData.schema` and `SchemaElement.num_children` field ids.
const FILE_SCHEMA: i16 = 2;
const SCHEMA_NUM_CHILDREN: i16 = 5;

/// Why a walk stopped.
#[derive(Debug, PartialEq)]
enum Stop {
    /// A count or size that cannot be true.
    Lie(String),
    /// Not an encoding this walk follows.
    Lost,
    /// The bytes given end before the file does: more are needed.
    Short,
}

/// Check the Thrift-encoded `FileMetaData` of a Parquet file; `Err` says
/// what cannot be true.
pub(crate) fn check(footer: &[u8]) -> Result<(), String> {
    match walk(footer) {
        Err(Stop::Lie(why)) => Err(why),
        Ok(()) | Err(Stop::Lost | Stop::Short) => Ok(()),
    }
}

fn walk(footer: &[u8]) -> Result<(), Stop> {
    let mut w = Walker {
        buf: footer,
        pos: 0,
        left: footer.len() as u64,
    };
    let mut schema_len: Option<usize> = None;
    // the crate reads known fields by their expected types, whatever
    // types the bytes claim: the schema as a list of structs, a child
    // count as an i32
    w.fields(0, true, &mut |w, id, _| {
        if id == FILE_SCHEMA {
            let (n, _) = w.list_header()?;
            schema_len = Some(n);
            for _ in 0..n {
                w.fields(1, true, &mut |w, id, _| {
                    if id == SCHEMA_NUM_CHILDREN {
                        let c = w.i32()?;
                        if c < 0 || c as u64 > n as u64 {
                            return Err(Stop::Lie(format!(
                                "a schema element claims {c} children in a schema of {n} elements"
                            )));
                        }
                        return Ok(true);
                    }
                    Ok(false)
                })?;
            }
            return Ok(true);
        }
        Ok(false)
    })?;
    match schema_len {
        Some(_) => Ok(()),
        None => Err(Stop::Lost),
    }
}

/// What a page header says, as far as the checks need it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PageHeader {
    /// A header this walk followed.
    Page {
        /// Bytes of the header itself.
        header_len: usize,
        /// Bytes of the page after the header.
        compressed: i64,
        /// Bytes of the page once decompressed.
        uncompressed: i64,
        /// For a dictionary page: the number of values it claims.
        dict_values: Option<i64>,
    },
    /// Not a header this walk can follow (left to the crate).
    Lost,
    /// The header goes on past the bytes given (and the file goes on):
    /// walk it again with more.
    Short,
}

/// Read the Thrift-encoded page header at the start of `buf`, where the
/// file has `left` bytes from the start of `buf` on (`buf` may stop short
/// of them, or go on past the header); `Err` says what cannot be true.
/// The crate's own header reader reads on past the column chunk to the
/// end of the file, skips strings and doubles past the end of the file
/// without noticing, and loops over a claimed list even when its items
/// take no bytes: fuzzing found headers that kept it busy for minutes.
pub(crate) fn page_header(buf: &[u8], left: u64) -> Result<PageHeader, String> {
    let mut w = Walker {
        buf,
        pos: 0,
        left: left.max(buf.len() as u64),
    };
    let (mut compressed, mut uncompressed, mut dict_values) = (None, None, None);
    // `PageHeader` and its parts as the crate reads them (without page
    // statistics, which it skips): known fields by their expected types.
    let walked = w.fields(0, true, &mut |w, id, _| {
        match id {
            1 | 4 => drop(w.i32()?),
            2 => uncompressed = Some(w.i32()?),
            3 => compressed = Some(w.i32()?),
            5 => drop(w.layout(1, 4, None)?),
            6 => drop(w.layout(1, 0, None)?),
            7 => dict_values = w.layout(1, 2, Some(3))?,
            8 => drop(w.layout(1, 6, Some(7))?),
            _ => return Ok(false),
        }
        Ok(true)
    });
    match (walked, compressed, uncompressed) {
        (Err(Stop::Lie(why)), _, _) => Err(why),
        (Err(Stop::Short), _, _) => Ok(PageHeader::Short),
        (Ok(()), Some(c), Some(u)) => Ok(PageHeader::Page {
            header_len: w.pos,
            compressed: c,
            uncompressed: u,
            dict_values,
        }),
        _ => Ok(PageHeader::Lost),
    }
}

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Bytes of the file from the start of `buf` on (at least its length).
    left: u64,
}

impl Walker<'_> {
    /// Bytes of the file left after `pos`.
    fn remaining(&self) -> u64 {
        self.left - self.pos as u64
    }

    /// Are `n` more bytes there? Not in the file: a lie, told by `lie`
    /// (given the bytes left); in the file but not in `buf`: `Short`.
    fn room(&self, n: u64, lie: impl FnOnce(u64) -> String) -> Result<(), Stop> {
        if n > self.remaining() {
            return Err(Stop::Lie(lie(self.remaining())));
        }
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(Stop::Short);
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self.buf.get(self.pos).ok_or(if self.remaining() > 0 {
            Stop::Short
        } else {
            Stop::Lost
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: u64) -> Result<(), Stop> {
        self.room(n, |left| {
            format!("a value claims {n} bytes where {left} are left")
        })?;
        self.pos += n as usize;
        Ok(())
    }

    /// A varint as the crate reads it: any length, bits past 64 wrapping
    /// round (so that this walk reads what the crate will).
    fn varint(&mut self) -> Result<u64, Stop> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).wrapping_shl(shift);
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift = shift.wrapping_add(7);
        }
    }

    fn zigzag(&mut self) -> Result<i64, Stop> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// An `i32` field, truncated as the crate truncates it.
    fn i32(&mut self) -> Result<i64, Stop> {
        Ok(i64::from(self.zigzag()? as i32))
    }

    /// A count of items that each take at least `each` bytes (by the
    /// protocol: a boolean in a list takes one, though the crate skips it
    /// as if it took none).
    fn count(&mut self, n: u64, each: u64) -> Result<usize, Stop> {
        self.room(n.saturating_mul(each), |left| {
            format!("a list claims {n} items where {left} bytes are left")
        })?;
        Ok(n as usize)
    }

    fn list_header(&mut self) -> Result<(usize, u8), Stop> {
        let b = self.byte()?;
        let n = match b >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        let elem = b & 0x0f;
        let each = match elem {
            DOUBLE => 8,
            UUID => 16,
            _ => 1,
        };
        Ok((self.count(n, each)?, elem))
    }

    /// The fields of a struct up to its stop byte; `visit` may read a
    /// field itself (and return `true`), else it is skipped.
    fn fields(
        &mut self,
        depth: usize,
        track_ids: bool,
        visit: &mut dyn FnMut(&mut Self, i16, u8) -> Result<bool, Stop>,
    ) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Lie("it nests too deeply".into()));
        }
        let mut last: i16 = 0;
        loop {
            // as the crate's `read_field_begin`: a type of 0 ends the
            // struct whatever the high bits say, a delta is added to the
            // last id (the crate's skip always passes 0) and may not
            // overflow, a full id is an i16 truncated
            let h = self.byte()?;
            let ty = h & 0x0f;
            if ty == 0 {
                return Ok(());
            }
            if ty > UUID {
                return Err(Stop::Lost);
            }
            let id = match h >> 4 {
                0 => self.zigzag()? as i16,
                d => last.checked_add(i16::from(d)).ok_or(Stop::Lost)?,
            };
            if track_ids {
                last = id;
            }
            if !visit(self, id, ty)? {
                self.value(ty, depth + 1)?;
            }
        }
    }

    /// A struct the crate reads by its layout: fields `1..=i32s` as i32s
    /// and field `flag` as a boolean, whatever types the bytes claim (a
    /// boolean field of another type is refused by the crate at once);
    /// other fields are skipped by their claimed types. Returns field 1.
    fn layout(&mut self, depth: usize, i32s: i16, flag: Option<i16>) -> Result<Option<i64>, Stop> {
        let mut first = None;
        self.fields(depth, true, &mut |w, id, ty| {
            if (1..=i32s).contains(&id) {
                let v = w.i32()?;
                if id == 1 {
                    first = Some(v);
                }
                Ok(true)
            } else if Some(id) == flag {
                match ty {
                    BOOL_TRUE | BOOL_FALSE => Ok(true),
                    _ => Err(Stop::Lost),
                }
            } else {
                Ok(false)
            }
        })?;
        Ok(first)
    }

    /// Skip one value of type `ty`, as the crate skips it. The Thrift
    /// compact protocol gives a boolean in a list or map a byte; the crate
    /// skips it as if it took none (as in a struct's field header), so the
    /// walk does too: it must end where the crate's reader ends. A count of
    /// items is still held to the protocol's sizes (`count`).
    fn value(&mut self, ty: u8, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Lie("it nests too deeply".into()));
        }
        match ty {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.skip(8),
            UUID => self.skip(16),
            BINARY => {
                let n = self.varint()?;
                self.skip(n)
            }
            LIST | SET => {
                let (n, elem) = self.list_header()?;
                for _ in 0..n {
                    self.value(elem, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let n = self.varint()?;
                let n = self.count(n, 1)?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.value(kv >> 4, depth + 1)?;
                        self.value(kv & 0x0f, depth + 1)?;
                    }
                }
                Ok(())
            }
            STRUCT => self.fields(depth + 1, false, &mut |_, _, _| Ok(false)),
            _ => Err(Stop::Lost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footer of a Parquet file written by the parquet crate.
    fn footer_of(file: &[u8]) -> &[u8] {
        let n = file.len();
        let len = u32::from_le_bytes(file[n - 8..n - 4].try_into().unwrap()) as usize;
        &file[n - 8 - len..n - 8]
    }

    fn sample() -> Vec<u8> {
        sample_with(None)
    }

    fn sample_with(props: Option<parquet::file::properties::WriterProperties>) -> Vec<u8> {
        use arrow::array::{Int64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("phone", DataType::Utf8, true),
        ]));
        let batch = arrow::array::RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("+447700900123"), None, Some("x")])),
            ],
        )
        .unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema, props).unwrap();
        w.write(&batch).unwrap();
        w.into_inner().unwrap()
    }

    /// Every page header of files the crate writes (dictionary pages, data
    /// pages of both versions, page statistics) is followed to its end,
    /// and the pages of a chunk end where the chunk does.
    #[test]
    fn real_page_headers_are_followed() {
        use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
        use parquet::file::reader::{FileReader, SerializedFileReader};
        for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
            let props = WriterProperties::builder()
                .set_writer_version(version)
                .set_statistics_enabled(EnabledStatistics::Page)
                .set_data_page_row_count_limit(1)
                .set_write_batch_size(1)
                .build();
            let file = sample_with(Some(props));
            let reader = SerializedFileReader::new(bytes::Bytes::from(file.clone())).unwrap();
            let mut pages = 0;
            for col in reader.metadata().row_group(0).columns() {
                let (start, len) = col.byte_range();
                let (mut at, end) = (start as usize, (start + len) as usize);
                while at < end {
                    match page_header(&file[at..], (file.len() - at) as u64) {
                        Ok(PageHeader::Page {
                            header_len,
                            compressed,
                            ..
                        }) => {
                            at += header_len + compressed as usize;
                            pages += 1;
                        }
                        other => panic!("{version:?}: header at {at}: {other:?}"),
                    }
                }
                assert_eq!(at, end, "{version:?}");
            }
            // a dictionary and a page per row for each column
            assert!(pages >= 6, "{version:?}: {pages} pages");
        }
    }

    #[test]
    fn a_real_footer_passes() {
        let file = sample();
        assert_eq!(check(footer_of(&file)), Ok(()));
    }

    #[test]
    fn every_truncation_is_followed_without_panic() {
        let file = sample();
        let footer = footer_of(&file);
        for n in 0..footer.len() {
            // a cut footer is the crate's to report, unless what is left
            // already claims more than there is
            match walk(&footer[..n]) {
                Err(Stop::Lost) => {}
                Err(Stop::Short) => panic!("cut at {n}: more asked for than the footer"),
                Err(Stop::Lie(why)) => assert!(why.contains("claims"), "cut at {n}: {why}"),
                Ok(()) => panic!("cut at {n} passed as whole"),
            }
        }
    }

    #[test]
    fn page_headers_are_read_and_lies_refused() {
        // type DICTIONARY_PAGE (2), uncompressed 8, compressed 8,
        // dictionary_page_header { num_values 2, encoding PLAIN }
        let dict = [
            0x15, 0x04, 0x15, 0x10, 0x15, 0x10, 0x4c, 0x15, 0x04, 0x15, 0x00, 0x00, 0x00, 0xff,
        ];
        assert_eq!(
            page_header(&dict, dict.len() as u64),
            Ok(PageHeader::Page {
                header_len: 13,
                compressed: 8,
                uncompressed: 8,
                dict_values: Some(2),
            })
        );
        // the same with a field unknown to the crate (9) holding a list of
        // two billion booleans in a few bytes
        let lie = [
            0x15, 0x04, 0x15, 0x10, 0x15, 0x10, 0x69, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00,
        ];
        assert!(page_header(&lie, lie.len() as u64)
            .unwrap_err()
            .contains("claims"));
        assert_eq!(page_header(&dict[..5], dict.len() as u64), Ok(PageHeader::Short));
        assert_eq!(page_header(&dict[..5], 5), Ok(PageHeader::Lost));
    }

    #[test]
    fn page_headers_are_judged_by_the_bytes_left_in_the_file() {
        // a data page (type 0, sizes 8) whose data page header (field 5:
        // 2 values, encodings 0) has statistics (field 5) whose max (field
        // 1) is a 300-byte string
        let mut long = vec![
            0x15, 0x00, 0x15, 0x10, 0x15, 0x10, 0x2c, 0x15, 0x04, 0x15, 0x00, 0x15, 0x00, 0x15, 0x00, 0x1c,
            0x18, 0xac, 0x02,
        ];
        long.extend([b'x'; 300]);
        long.extend([0x00, 0x00, 0x00]);
        let whole = page_header(&long, long.len() as u64);
        assert!(
            matches!(whole, Ok(PageHeader::Page { header_len: 322, .. })),
            "{whole:?}"
        );
        // read only in part: more to come in the file, so not a lie
        assert_eq!(
            page_header(&long[..100], long.len() as u64),
            Ok(PageHeader::Short)
        );
        // but the file ends before the string does: the crate would skip
        // past the end of the file without noticing
        let err = page_header(&long[..100], 100).unwrap_err();
        assert!(err.contains("300 bytes where 81 are left"), "{err}");
    }

    #[test]
    fn lies_are_refused() {
        // a list claiming more items than there are bytes
        assert!(check(&[0x19, 0xfc, 0xff, 0xff, 0xff, 0x0f])
            .unwrap_err()
            .contains("claims"));
        // schema (field 2, list of 1 struct) whose element claims 5 children
        let lie = [0x29, 0x1c, 0x55, 0x0a, 0x00, 0x00];
        assert!(check(&lie).unwrap_err().contains("5 children"));
        let truth = [0x29, 0x1c, 0x55, 0x00, 0x00, 0x00];
        assert_eq!(check(&truth), Ok(()));
        // structs nested past the limit
        let mut deep = vec![0x1c; 100];
        deep.extend(vec![0u8; 101]);
        assert!(check(&deep).unwrap_err().contains("deeply"));
    }
}
