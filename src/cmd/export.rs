//! `optscrub export --store DIR --output F [--account ID] [--format roaring]`

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use rayon::prelude::*;
use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::{Error, Result};
use crate::io::atomic::sync_dir;
use crate::io::output::{Encodings, Output, Part};
use crate::phone::e164_array;
use crate::store::snapshot::{MappedSnapshot, ScopeBlob};
use crate::store::{OptOut, Store};

/// Output formats of `export`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
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
pub fn run(a: Args) -> Result<()> {
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

fn snapshot_scopes<'a>(store: &Store, snap: &'a MappedSnapshot) -> Result<Vec<ScopeBlob<'a>>> {
    snap.scopes().map_err(|why| {
        Error::Corrupt(format!(
            "the snapshot of store {} is damaged ({why}); run `optscrub rebuild --store {}` to recompile it from the ledger",
            store.dir.display(),
            store.dir.display()
        ))
    })
}

/// Rows of one row group of the export, and how many are encoded at once.
const GROUP_ROWS: usize = 1 << 20;

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
    let texts = Texts {
        accounts: Arc::new(StringArray::from_iter_values(
            list.scopes.iter().map(|s| s.account.as_str()),
        )),
        scopes: Arc::new(StringArray::from_iter_values(
            list.scopes.iter().map(|s| s.scope.as_str()),
        )),
        sources: Arc::new(StringArray::from_iter_values(
            list.evidence.iter().map(|e| e.0.as_str()),
        )),
        keywords: Arc::new(StringArray::from_iter_values(
            list.evidence.iter().map(|e| e.1.as_deref().unwrap_or_default()),
        )),
        has_keyword: list.evidence.iter().map(|e| e.1.is_some()).collect(),
    };
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
    // row groups gathered in order, a window at a time; a window is
    // encoded in parallel while the next one is merged
    let window = rayon::current_num_threads().max(1) * 2;
    let encode = |groups: Vec<Vec<OptOut>>| -> Vec<Result<Part>> {
        groups
            .into_par_iter()
            .map(|g| {
                let batch = texts.batch(&schema, &g)?;
                let mut part = parts.encoder().map_err(|e| out_error(output, e))?;
                part.write(&batch).map_err(|e| out_error(output, e))?;
                part.finish().map_err(|e| out_error(output, e))
            })
            .collect()
    };
    let mut opt_outs = list.opt_outs();
    let mut gather = || -> Result<Vec<Vec<OptOut>>> {
        let mut groups = Vec::with_capacity(window);
        while groups.len() < window {
            let group: Vec<OptOut> = opt_outs.by_ref().take(GROUP_ROWS).collect::<Result<_>>()?;
            if group.is_empty() {
                break;
            }
            groups.push(group);
        }
        Ok(groups)
    };
    let mut groups = gather()?;
    while !groups.is_empty() {
        let (encoded, next) = rayon::join(|| encode(groups), &mut gather);
        for part in encoded {
            out.append(part?)?;
        }
        groups = next?;
    }
    let rows = out.rows;
    out.finish()?;
    Ok(rows)
}

fn out_error(output: &Path, e: String) -> Error {
    Error::Input(format!("cannot write {}: {e}", output.display()))
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

/// A name safe in a file name: letters, digits, `.`, `_`, `+`, `-` kept,
/// every other byte as `%XX`.
pub fn file_safe(s: &str) -> String {
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
