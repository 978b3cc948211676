//! CSV inputs: the header row read and checked by hand (names, BOM,
//! duplicates), the rows by arrow's CSV reader as text, each batch's text
//! checked to be UTF-8.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{InputFile, Reader};
use crate::error::{Error, Result};

/// The CSV reader validates UTF-8 per record, but not every byte it can
/// be handed (a lone `\r` ends a record mid-character): check the text
/// columns of each batch, so that no invalid text goes further.
pub(super) fn check_utf8(name: &str, rows_before: u64, batch: &RecordBatch) -> Result<()> {
    for (col, field) in batch.columns().iter().zip(batch.schema().fields()) {
        if let Some(s) = col.as_any().downcast_ref::<arrow::array::StringArray>() {
            let offsets = s.value_offsets();
            let values = s.values();
            // fast: the whole buffer is text and every value starts on a
            // character boundary
            if let Ok(all) = std::str::from_utf8(values) {
                if offsets.iter().all(|&o| all.is_char_boundary(o as usize)) {
                    continue;
                }
            }
            for i in 0..offsets.len() - 1 {
                let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                if std::str::from_utf8(&values[a..b]).is_err() {
                    return Err(Error::Input(format!(
                        "{name}: row {}, column '{}': bytes that are not UTF-8; expected UTF-8 CSV",
                        rows_before + i as u64 + 1,
                        field.name()
                    )));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn csv_error(name: &str, e: arrow::error::ArrowError) -> Error {
    let msg = e.to_string();
    let msg = msg.strip_prefix("Csv error: ").unwrap_or(&msg);
    let msg = msg.strip_prefix("Parser error: ").unwrap_or(msg);
    Error::Input(format!(
        "{name}: {msg}; expected UTF-8 CSV with as many fields as the header"
    ))
}

/// How CSV files are read: with a header row or not, and the separator
/// (judged from the first row when not given).
#[derive(Clone, Copy, Debug)]
pub struct CsvShape {
    /// The first row names the columns (else they are named `1`, `2`, …).
    pub header: bool,
    /// The field separator, if given.
    pub delimiter: Option<u8>,
}

impl Default for CsvShape {
    fn default() -> Self {
        CsvShape {
            header: true,
            delimiter: None,
        }
    }
}

pub(super) fn open_csv(
    name: &str,
    raw: Box<dyn Read + Send>,
    batch_rows: usize,
    shape: CsvShape,
) -> Result<(InputFile, SchemaRef)> {
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let mut header = Vec::new();
    reader
        .read_until(b'\n', &mut header)
        .map_err(|e| Error::Input(format!("cannot read {name}: {e}")))?;
    if header.starts_with(b"\xEF\xBB\xBF") {
        header.drain(..3);
    }
    let delimiter = shape.delimiter.unwrap_or_else(|| delimiter_of(&header));
    let columns = parse_header(name, &header, delimiter, shape.header)?;
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c, DataType::Utf8, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let chained: Box<dyn BufRead + Send> = Box::new(Cursor::new(header).chain(reader));
    let csv = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(shape.header)
        .with_delimiter(delimiter)
        .with_batch_size(batch_rows)
        .build_buffered(chained)
        .map_err(|e| Error::Input(format!("{name}: {e}")))?;
    Ok((
        InputFile {
            encodings: Default::default(),
            name: name.into(),
            reader: Reader::Csv(Box::new(csv)),
            rows: 0,
            total: None,
        },
        schema,
    ))
}

/// The field separator, judged from the header row: a comma when there is
/// one, else the most frequent of semicolon, tab and bar (lists exported
/// by spreadsheets in many locales use `;`), else a comma (one column).
pub fn delimiter_of(header: &[u8]) -> u8 {
    let count = |d: u8| header.iter().filter(|&&b| b == d).count();
    if count(b',') > 0 {
        return b',';
    }
    [b';', b'\t', b'|']
        .into_iter()
        .map(|d| (count(d), d))
        .filter(|&(n, _)| n > 0)
        .max_by_key(|&(n, _)| n)
        .map_or(b',', |(_, d)| d)
}

/// The column names from the first line: the header's, checked, or with
/// no header (`header` false: the line is data) 1, 2, 3… by position.
fn parse_header(name: &str, line: &[u8], delimiter: u8, header: bool) -> Result<Vec<String>> {
    let expected = if header {
        "a header row of column names"
    } else {
        "a first row of data"
    };
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Input(format!(
            "{name}: the file is empty; expected {expected}"
        )));
    }
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(line);
    let rec = rdr.records().next().and_then(|r| r.ok()).ok_or_else(|| {
        let row = if header { "row 0 (header)" } else { "row 1" };
        Error::Input(format!("{name}: {row}: not valid UTF-8 CSV; expected {expected}"))
    })?;
    if !header {
        return Ok((1..=rec.len()).map(|i| i.to_string()).collect());
    }
    let cols: Vec<String> = rec.iter().map(|c| c.to_string()).collect();
    for (i, c) in cols.iter().enumerate() {
        if c.is_empty() {
            return Err(Error::Input(format!(
                "{name}: header column {} has no name",
                i + 1
            )));
        }
        if cols[..i].contains(c) {
            let shown = if looks_like_phone(c) {
                "(a value like a phone number)"
            } else {
                c
            };
            return Err(Error::Input(format!(
                "{name}: header names column '{shown}' twice"
            )));
        }
    }
    Ok(cols)
}

/// Does a header cell look like a phone number (data, not a name)? Six or
/// more digits, and nothing but digits and the separators numbers carry.
pub(crate) fn looks_like_phone(cell: &str) -> bool {
    let digits = cell.bytes().filter(u8::is_ascii_digit).count();
    digits >= 6
        && cell
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-.()".contains(&b) || b == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(delimiter_of(b"phone,account_id\n"), b',');
        assert_eq!(delimiter_of(b"phone;account_id;sender\n"), b';');
        assert_eq!(delimiter_of(b"phone\taccount_id\n"), b'\t');
        assert_eq!(delimiter_of(b"phone|account_id\n"), b'|');
        assert_eq!(delimiter_of(b"phone\n"), b',');
    }

    #[test]
    fn phone_like_cells() {
        assert!(looks_like_phone("+447700900001"));
        assert!(looks_like_phone("(415) 555-0134"));
        assert!(!looks_like_phone("phone"));
        assert!(!looks_like_phone("col2024"));
    }
}
