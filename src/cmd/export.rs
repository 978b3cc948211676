//! `optscrub export --store DIR --output F [--account ID] [--format roaring]`

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::{Error, Result};
use crate::io::atomic::sync_dir;
use crate::io::output::Output;
use crate::phone::e164_array;
use crate::store::Store;

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
    Ok(store.snapshot()?.scopes.iter().any(|s| s.account == account))
}

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
    let name = |o: &crate::store::OptOut| &list.scopes[o.scope as usize];
    let mut out = Output::create(output, schema.clone())?;
    for chunk in list.opt_outs.chunks(1 << 16) {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|o| name(o).account.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|o| name(o).scope.as_str()),
            )),
            Arc::new(e164_array(chunk.iter().map(|o| o.contact))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(chunk.iter().map(|o| o.at))
                    .with_timezone(crate::event::UTC),
            ),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|o| o.source.as_str()),
            )),
            Arc::new(
                chunk
                    .iter()
                    .map(|o| o.keyword.as_deref())
                    .collect::<StringArray>(),
            ),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Input(e.to_string()))?;
        out.write(&batch)?;
    }
    out.finish()?;
    Ok(list.opt_outs.len() as u64)
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
    let snap = store.snapshot()?;
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
        for s in snap
            .scopes
            .iter()
            .filter(|s| account.is_none_or(|a| s.account == a))
        {
            let sub = tmp.join(file_safe(&s.account));
            fs::create_dir_all(&sub).map_err(|e| io("cannot create", &sub, e))?;
            let rel = format!("{}/{}.roaring", file_safe(&s.account), file_safe(&s.scope));
            let mut bytes = Vec::with_capacity(s.bitmap.serialized_size());
            s.bitmap
                .serialize_into(&mut bytes)
                .map_err(|e| io("cannot encode", &tmp, e))?;
            let path = tmp.join(&rel);
            fs::write(&path, &bytes).map_err(|e| io("cannot write", &path, e))?;
            total += s.bitmap.len();
            index.push(
                json!({"account_id": s.account, "scope": s.scope, "file": rel, "count": s.bitmap.len()}),
            );
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
