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
}

impl From<&str> for Stop {
    fn from(_: &str) -> Stop {
        Stop::Lost
    }
}

/// Check the Thrift-encoded `FileMetaData` of a Parquet file; `Err` says
/// what cannot be true.
pub fn check(footer: &[u8]) -> Result<(), String> {
    match walk(footer) {
        Err(Stop::Lie(why)) => Err(why),
        Ok(()) | Err(Stop::Lost) => Ok(()),
    }
}

fn walk(footer: &[u8]) -> Result<(), Stop> {
    let mut w = Walker { buf: footer, pos: 0 };
    let mut schema_len: Option<usize> = None;
    w.fields(0, &mut |w, id, ty| {
        if id == FILE_SCHEMA && ty == LIST {
            let (n, elem) = w.list_header()?;
            if n > 0 && elem != STRUCT {
                return Err(Stop::Lost);
            }
            schema_len = Some(n);
            for _ in 0..n {
                w.fields(1, &mut |w, id, ty| {
                    if id == SCHEMA_NUM_CHILDREN && ty == I32 {
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
pub enum PageHeader {
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
}

/// Read the Thrift-encoded page header at the start of `buf` (which may go
/// on past it); `Err` says what cannot be true. The crate's own header
/// reader loops over a claimed list even when its items take no bytes
/// (fuzzing found a header that kept it busy for minutes).
pub fn page_header(buf: &[u8]) -> Result<PageHeader, String> {
    let mut w = Walker { buf, pos: 0 };
    let (mut compressed, mut uncompressed, mut dict_values) = (None, None, None);
    let walked = w.fields(0, &mut |w, id, ty| match (id, ty) {
        (2, I32) => {
            uncompressed = Some(w.i32()?);
            Ok(true)
        }
        (3, I32) => {
            compressed = Some(w.i32()?);
            Ok(true)
        }
        (7, STRUCT) => {
            w.fields(1, &mut |w, id, ty| {
                if (id, ty) == (1, I32) {
                    dict_values = Some(w.i32()?);
                    return Ok(true);
                }
                Ok(false)
            })?;
            Ok(true)
        }
        _ => Ok(false),
    });
    match (walked, compressed, uncompressed) {
        (Err(Stop::Lie(why)), _, _) => Err(why),
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
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self.buf.get(self.pos).ok_or("it ends early")?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: u64) -> Result<(), Stop> {
        if n > self.remaining() as u64 {
            return Err(Stop::Lie(format!(
                "a value claims {n} bytes where {} are left",
                self.remaining()
            )));
        }
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

    /// A count of items that each take at least one byte.
    fn count(&mut self, n: u64) -> Result<usize, Stop> {
        if n > self.remaining() as u64 {
            return Err(Stop::Lie(format!(
                "a list claims {n} items where {} bytes are left",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    fn list_header(&mut self) -> Result<(usize, u8), Stop> {
        let b = self.byte()?;
        let n = match b >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        Ok((self.count(n)?, b & 0x0f))
    }

    /// The fields of a struct up to its stop byte; `visit` may read a
    /// field itself (and return `true`), else it is skipped.
    fn fields(
        &mut self,
        depth: usize,
        visit: &mut dyn FnMut(&mut Self, i16, u8) -> Result<bool, Stop>,
    ) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Lie("it nests too deeply".into()));
        }
        let mut last: i16 = 0;
        loop {
            let h = self.byte()?;
            if h == 0 {
                return Ok(());
            }
            let ty = h & 0x0f;
            let id = match h >> 4 {
                0 => i16::try_from(self.zigzag()?).map_err(|_| "a field id is out of range")?,
                d => last.wrapping_add(i16::from(d)),
            };
            last = id;
            if !visit(self, id, ty)? {
                self.value(ty, depth + 1, false)?;
            }
        }
    }

    /// Skip one value of type `ty` (`in_list`: a boolean takes a byte).
    fn value(&mut self, ty: u8, depth: usize, in_list: bool) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Lie("it nests too deeply".into()));
        }
        match ty {
            BOOL_TRUE | BOOL_FALSE if in_list => self.skip(1),
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
                    self.value(elem, depth + 1, true)?;
                }
                Ok(())
            }
            MAP => {
                let n = self.varint()?;
                let n = self.count(n)?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.value(kv >> 4, depth + 1, true)?;
                        self.value(kv & 0x0f, depth + 1, true)?;
                    }
                }
                Ok(())
            }
            STRUCT => self.fields(depth + 1, &mut |_, _, _| Ok(false)),
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
        let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.into_inner().unwrap()
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
            page_header(&dict),
            Ok(PageHeader::Page {
                header_len: 13,
                compressed: 8,
                uncompressed: 8,
                dict_values: Some(2),
            })
        );
        // the same with statistics (field 5) holding a list of two billion
        // booleans in a few bytes
        let lie = [
            0x15, 0x04, 0x15, 0x10, 0x15, 0x10, 0x29, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00,
        ];
        assert!(page_header(&lie).unwrap_err().contains("claims"));
        assert_eq!(page_header(&dict[..5]), Ok(PageHeader::Lost));
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
