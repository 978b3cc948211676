//! `optscrub export --store DIR --output F [--account ID] [--format roaring]`

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::{Error, Result};
use crate::io::atomic::sync_dir;
use crate::io::output::{Format, Output, Part};
use crate::io::parquet::Encodings;
use crate::phone::{e164_array, e164_bytes};
use crate::store::keys::ScopeName;
use crate::store::snapshot::{MappedSnapshot, ScopeBlob};
use crate::store::{Evidence, OptOut, Share, Store};

/// Output formats of `export`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExportFormat {
    /// Parquet (the default for a .parquet name).
    Parquet,
    /// CSV (the default for a .csv name).
    Csv,
    /// One portable 64-bit Roaring file per scope, in the folder --output.
    Roaring,
}

/// Arguments of `export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Output file (.parquet or .csv), or a folder with --format roaring.
    #[arg(long, value_name = "F")]
    output: PathBuf,
    /// Only this account.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Output format; by default taken from the output's extension.
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
}

/// Write the suppression list.
pub(super) fn run(a: Args) -> Result<()> {
    let store = Store::open(&a.store.store)?;
    if let Some(acc) = &a.account {
        if store.config.account(acc).is_none() && !has_events(&store, acc)? {
            return Err(Error::Usage(format!(
                "--account '{acc}' is not an account of this store"
            )));
        }
    }
    let (rows, files) = if a.format == Some(ExportFormat::Roaring) {
        export_roaring(&store, a.account.as_deref(), &a.output)?
    } else {
        if let Some(f) = a.format {
            let want = if f == ExportFormat::Csv { "csv" } else { "parquet" };
            if a.output.extension().and_then(|e| e.to_str()) != Some(want) {
                return Err(Error::Usage(format!(
                    "--format {want} needs an --output name ending in .{want}"
                )));
            }
        }
        (export_table(&store, a.account.as_deref(), &a.output)?, 1)
    };
    eprintln!(
        "export: {rows} opt-outs written to {} ({files} files)",
        a.output.display()
    );
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "export", "opt_outs": rows, "files": files}),
    )
}

fn has_events(store: &Store, account: &str) -> Result<bool> {
    let snap = store.snapshot_mapped()?;
    Ok(snapshot_scopes(store, &snap)?
        .iter()
        .any(|s| s.account == account))
}

/// The snapshot's scopes, a damaged snapshot an error naming the fix.
pub(crate) fn snapshot_scopes<'a>(store: &Store, snap: &'a MappedSnapshot) -> Result<Vec<ScopeBlob<'a>>> {
    snap.scopes().map_err(|why| {
        Error::Corrupt(format!(
            "the snapshot of store {} is damaged ({why}); {}",
            store.dir.display(),
            crate::store::damage::Fix::Rebuild.say(Some(&store.dir))
        ))
    })
}

/// Rows of one row group of the export, and how many are encoded at once.
const GROUP_ROWS: usize = 1 << 20;

/// Rows of a CSV export encoded at once: a CSV has no row groups, so the
/// share is kept small (its text is held until it is written).
const CSV_ROWS: usize = 1 << 18;

fn export_table(store: &Store, account: Option<&str>, output: &Path) -> Result<u64> {
    let list = store.suppression_list(account)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("phone", DataType::Utf8, false),
        Field::new(
            "opted_out_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(crate::event::UTC.into())),
            false,
        ),
        Field::new("source", DataType::Utf8, false),
        Field::new("keyword", DataType::Utf8, true),
    ]));
    // the text columns other than the phone take few values: each is a
    // dictionary over the scopes or the evidence, written from its keys
    let encodings = Encodings {
        plain: vec!["phone".into()],
        dict: ["account_id", "scope", "source", "keyword"]
            .map(String::from)
            .to_vec(),
    };
    let texts = Texts::new(&list.scopes, &list.evidence);
    let mut out = Output::create_with(output, schema.clone(), &encodings)?;
    // the batches' own schema: those columns as dictionaries
    let schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if encodings.dict.iter().any(|d| d == f.name()) {
                    let d = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                    f.with_data_type(d)
                } else {
                    f
                }
            })
            .collect::<Vec<_>>(),
    ));
    let parts = out.parts();
    // a CSV's lines are written straight from the rows, each text cell
    // from its value encoded once (the same bytes arrow's CSV writer makes)
    let csv = match Format::for_path(output)? {
        Format::Csv => Some(CsvTexts::new(&list.scopes, &list.evidence)?),
        Format::Parquet => None,
    };
    let group_rows = if csv.is_some() { CSV_ROWS } else { GROUP_ROWS };
    // the list cut into shares of a row group each, gathered and encoded
    // side by side, and appended in order
    let encode = |share: &Share| -> Result<Part> {
        let g = list.share(share)?;
        if let Some(csv) = &csv {
            return Ok(Part::csv(csv.lines(&g)?, g.len()));
        }
        let batch = texts.batch(&schema, &g)?;
        let mut part = parts.encoder()?;
        part.write(&batch)?;
        part.finish()
    };
    let mut shares = list.shares(group_rows).into_iter();
    crate::util::ordered::run(
        rayon::current_num_threads() * 2,
        || shares.next().map(Ok),
        |share| encode(&share),
        Ok,
        Ok,
        |part| out.append(part),
    )?;
    let rows = out.rows;
    out.finish()?;
    Ok(rows)
}

/// The dictionaries of an export's text columns.
struct Texts {
    accounts: ArrayRef,
    scopes: ArrayRef,
    sources: ArrayRef,
    keywords: ArrayRef,
    /// Per evidence code: whether it has a keyword (else the cell is null).
    has_keyword: Vec<bool>,
}

impl Texts {
    fn new(scopes: &[ScopeName], evidence: &[Evidence]) -> Texts {
        Texts {
            accounts: Arc::new(StringArray::from_iter_values(
                scopes.iter().map(|s| s.account.as_str()),
            )),
            scopes: Arc::new(StringArray::from_iter_values(
                scopes.iter().map(|s| s.scope.as_str()),
            )),
            sources: Arc::new(StringArray::from_iter_values(
                evidence.iter().map(|e| e.0.as_str()),
            )),
            keywords: Arc::new(StringArray::from_iter_values(
                evidence.iter().map(|e| e.1.as_deref().unwrap_or_default()),
            )),
            has_keyword: evidence.iter().map(|e| e.1.is_some()).collect(),
        }
    }

    /// One row group's rows as a batch.
    fn batch(&self, schema: &SchemaRef, rows: &[OptOut]) -> Result<RecordBatch> {
        let dict = |keys: Int32Array, values: &ArrayRef| -> Result<ArrayRef> {
            DictionaryArray::<Int32Type>::try_new(keys, values.clone())
                .map(|d| Arc::new(d) as ArrayRef)
                .map_err(|e| Error::Input(e.to_string()))
        };
        let scope_keys = || Int32Array::from_iter_values(rows.iter().map(|o| o.scope as i32));
        let cols: Vec<ArrayRef> = vec![
            dict(scope_keys(), &self.accounts)?,
            dict(scope_keys(), &self.scopes)?,
            Arc::new(e164_array(rows.iter().map(|o| o.contact))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|o| o.at))
                    .with_timezone(crate::event::UTC),
            ),
            dict(
                Int32Array::from_iter_values(rows.iter().map(|o| o.evidence as i32)),
                &self.sources,
            )?,
            dict(
                rows.iter()
                    .map(|o| {
                        let e = o.evidence as usize;
                        self.has_keyword
                            .get(e)
                            .copied()
                            .unwrap_or(false)
                            .then_some(e as i32)
                    })
                    .collect(),
                &self.keywords,
            )?,
        ];
        RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Input(e.to_string()))
    }
}

/// The text cells of a CSV export, each value encoded as a CSV field once
/// (quoted where it must be).
struct CsvTexts {
    accounts: Vec<Vec<u8>>,
    scopes: Vec<Vec<u8>>,
    sources: Vec<Vec<u8>>,
    /// Empty for a null keyword, as arrow's CSV writer leaves it.
    keywords: Vec<Vec<u8>>,
}

/// One value as a CSV field, as the csv crate writes it inside a record
/// of several fields (an empty one is nothing, not `""`).
fn csv_field(value: &str) -> Result<Vec<u8>> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let failed = |e: String| Error::Input(format!("cannot encode a CSV field: {e}"));
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record([value]).map_err(|e| failed(e.to_string()))?;
    let mut field = w.into_inner().map_err(|e| failed(e.to_string()))?;
    field.pop_if(|b| *b == b'\n');
    Ok(field)
}

impl CsvTexts {
    fn new(scopes: &[ScopeName], evidence: &[Evidence]) -> Result<CsvTexts> {
        let all = |values: &mut dyn Iterator<Item = &str>| values.map(csv_field).collect::<Result<Vec<_>>>();
        Ok(CsvTexts {
            accounts: all(&mut scopes.iter().map(|s| s.account.as_str()))?,
            scopes: all(&mut scopes.iter().map(|s| s.scope.as_str()))?,
            sources: all(&mut evidence.iter().map(|e| e.0.as_str()))?,
            keywords: all(&mut evidence.iter().map(|e| e.1.as_deref().unwrap_or_default()))?,
        })
    }

    /// The CSV lines of these rows.
    fn lines(&self, rows: &[OptOut]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(rows.len() * 72);
        let mut phone = [0u8; crate::phone::E164_BUF];
        for o in rows {
            out.extend_from_slice(cell(&self.accounts, o.scope)?);
            out.push(b',');
            out.extend_from_slice(cell(&self.scopes, o.scope)?);
            out.push(b',');
            out.extend_from_slice(e164_bytes(o.contact, &mut phone));
            out.push(b',');
            push_rfc3339(o.at, &mut out);
            out.push(b',');
            out.extend_from_slice(cell(&self.sources, o.evidence)?);
            out.push(b',');
            out.extend_from_slice(cell(&self.keywords, o.evidence)?);
            out.push(b'\n');
        }
        Ok(out)
    }
}

/// Value `i` of a column's encoded values.
fn cell(cells: &[Vec<u8>], i: u32) -> Result<&[u8]> {
    cells.get(i as usize).map(Vec::as_slice).ok_or_else(|| {
        Error::Input(format!(
            "export: a row names value {i} of a list of {}",
            cells.len()
        ))
    })
}

/// A UTC time in µs as RFC 3339, as arrow's CSV writer shows a timestamp
/// with a time zone: `Z`, and as many groups of three fraction digits as
/// are not zero (chrono's `SecondsFormat::AutoSi`).
fn push_rfc3339(micros: i64, out: &mut Vec<u8>) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // days to a civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        // outside four-digit years chrono's own text, as arrow writes it
        let text = chrono::DateTime::from_timestamp_micros(micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        out.extend_from_slice(text.as_bytes());
        return;
    }
    // the text built in place, two digits at a time
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let pair = |b: &mut [u8; 27], at: usize, v: i64| {
        let v = v as usize * 2;
        b[at..at + 2].copy_from_slice(&DIGIT_PAIRS[v..v + 2]);
    };
    pair(&mut b, 0, year / 100);
    pair(&mut b, 2, year % 100);
    pair(&mut b, 5, month);
    pair(&mut b, 8, day);
    pair(&mut b, 11, of_day / 3600);
    pair(&mut b, 14, of_day / 60 % 60);
    pair(&mut b, 17, of_day % 60);
    let end = if frac == 0 {
        19
    } else if frac % 1000 == 0 {
        let ms = frac / 1000;
        b[20] = b'0' + (ms / 100) as u8;
        pair(&mut b, 21, ms % 100);
        23
    } else {
        pair(&mut b, 20, frac / 10_000);
        pair(&mut b, 22, frac / 100 % 100);
        pair(&mut b, 24, frac % 100);
        26
    };
    b[end] = b'Z';
    out.extend_from_slice(&b[..=end]);
}

/// "00" to "99", each number's two digits.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// A name safe in a file name: letters, digits, `.`, `_`, `+`, `-` kept,
/// every other byte as `%XX`.
pub(super) fn file_safe(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-') || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn export_roaring(store: &Store, account: Option<&str>, dir: &Path) -> Result<(u64, usize)> {
    let snap = store.snapshot_mapped()?;
    let scopes = snapshot_scopes(store, &snap)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |what: &str, p: &Path, e: std::io::Error| Error::io(what, p, e);
    let _ = fs::remove_dir_all(&tmp);
    let result = (|| -> Result<(u64, usize)> {
        let mut index = Vec::new();
        let mut total = 0;
        // each bitmap is copied as the snapshot holds it (already the
        // portable format): nothing is decoded, memory is the mapped pages
        for s in scopes.iter().filter(|s| account.is_none_or(|a| s.account == a)) {
            let sub = tmp.join(file_safe(s.account));
            fs::create_dir_all(&sub).map_err(|e| io("cannot create", &sub, e))?;
            let rel = format!("{}/{}.roaring", file_safe(s.account), file_safe(s.scope));
            let path = tmp.join(&rel);
            fs::write(&path, s.bytes).map_err(|e| io("cannot write", &path, e))?;
            total += s.count;
            index.push(json!({"account_id": s.account, "scope": s.scope, "file": rel, "count": s.count}));
        }
        let idx = tmp.join("index.json");
        let text = serde_json::to_string_pretty(&json!({"format": "roaring-portable-64", "values": "E.164 digits as an unsigned 64-bit integer", "scopes": index}))
            .map_err(|e| Error::Input(e.to_string()))?;
        fs::write(&idx, text).map_err(|e| io("cannot write", &idx, e))?;
        Ok((total, index.len()))
    })();
    let counts = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &old).map_err(|e| io("cannot replace", dir, e))?;
    }
    fs::rename(&tmp, dir).map_err(|e| io("cannot move into place", dir, e))?;
    let _ = fs::remove_dir_all(&old);
    sync_dir(parent)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::Source;
    use proptest::prelude::*;

    /// What arrow's CSV writer makes of these rows (the export's format
    /// before its lines were written directly).
    fn arrow_lines(texts: &Texts, schema: &SchemaRef, rows: &[OptOut]) -> Vec<u8> {
        let batch = texts.batch(schema, rows).unwrap();
        let batch = crate::util::columns::conform(batch, &plain(schema)).unwrap();
        let mut out = Vec::new();
        arrow::csv::WriterBuilder::new()
            .with_header(false)
            .build(&mut out)
            .write(&batch)
            .unwrap();
        out
    }

    fn schema() -> SchemaRef {
        let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("account_id", dict(), false),
            Field::new("scope", dict(), false),
            Field::new("phone", DataType::Utf8, false),
            Field::new(
                "opted_out_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some(crate::event::UTC.into())),
                false,
            ),
            Field::new("source", dict(), false),
            Field::new("keyword", dict(), true),
        ]))
    }

    /// The schema as the CSV output has it: text, not dictionaries.
    fn plain(schema: &SchemaRef) -> SchemaRef {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Dictionary(_, _) => f.as_ref().clone().with_data_type(DataType::Utf8),
                _ => f.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn names() -> (Vec<ScopeName>, Vec<Evidence>) {
        let scope = |account: &str, scope: &str| ScopeName {
            hash: 0,
            account: account.into(),
            scope: scope.into(),
        };
        let scopes = vec![
            scope("acme", "acme"),
            scope("acme", "+447860009123"),
            scope("big, \"quoted\" co", "line\nbreak"),
            scope("", "wa:acme"),
        ];
        let evidence: Vec<Evidence> = vec![
            (Source::Keyword, Some("STOP".into())),
            (Source::Webform, None),
            (Source::Keyword, Some("arrêt, \"svp\"".into())),
            (Source::Import, Some(String::new().into())),
            (Source::FreeKeyword, Some("\r".into())),
        ];
        (scopes, evidence)
    }

    proptest! {
        #[test]
        fn csv_lines_are_what_arrow_writes(
            rows in proptest::collection::vec((0u32..4, 1u64..=999_999_999_999_999, -62_000_000_000_000_000i64..300_000_000_000_000_000, 0u32..5), 0..64),
            round in 0u32..3,
        ) {
            let (scopes, evidence) = names();
            let rows: Vec<OptOut> = rows
                .into_iter()
                .map(|(scope, contact, at, evidence)| OptOut {
                    scope,
                    contact,
                    // whole seconds and milliseconds are common
                    at: match round { 0 => at - at.rem_euclid(1_000_000), 1 => at - at.rem_euclid(1000), _ => at },
                    evidence,
                })
                .collect();
            let direct = CsvTexts::new(&scopes, &evidence).unwrap().lines(&rows).unwrap();
            let arrow = arrow_lines(&Texts::new(&scopes, &evidence), &schema(), &rows);
            prop_assert_eq!(String::from_utf8_lossy(&direct), String::from_utf8_lossy(&arrow));
        }
    }

    #[test]
    fn a_row_naming_no_value_is_an_error_not_a_panic() {
        let (scopes, evidence) = names();
        let bad = OptOut {
            scope: 9,
            contact: 1,
            at: 0,
            evidence: 0,
        };
        assert!(CsvTexts::new(&scopes, &evidence).unwrap().lines(&[bad]).is_err());
    }
}
