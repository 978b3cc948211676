//! The outbox kept in the store: the replies (confirmations and help
//! answers) an ingest decides to send are committed with its events, as
//! `outbox/<gen>.parquet`, and stay pending until they are handed over to
//! an output file. A hand-over happens exactly once, whatever is killed:
//!
//! 1. every pending reply is written to the output under a temporary name
//!    and fsynced;
//! 2. the manifest records the hand-over (temporary name, final name, the
//!    outbox files it holds) and no longer lists them as pending;
//! 3. the temporary file is renamed into place;
//! 4. the manifest drops the hand-over, and its outbox files go.
//!
//! Killed before 2, the replies are still pending and no output appeared.
//! Killed after 2, the next writer finds the record and finishes it: the
//! rename if the temporary file is there, nothing if the output is there
//! with the recorded size, else the replies become pending again.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::damage::{corrupt, Fix};
use super::files::read_verified;
use super::manifest::{FileRef, Handover};
use super::Store;
use crate::error::{Error, Result};
use crate::io::output::{Format, Output};

/// Columns of an outbox (SPEC §7): where a reply goes, where from, its
/// text, its kind and the message it answers.
pub(crate) const COLUMNS: [&str; 5] = ["to", "from", "body", "kind", "in_reply_to"];

/// The outbox schema: [`COLUMNS`], all text.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ))
}

/// Encode outbox rows as a store file.
pub(super) fn encode(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    // no min/max statistics: they would put phone numbers in the footer
    // (the file may be copied out as an outbox, see `write_pending`)
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    crate::io::output::parquet_bytes(schema(), props, batches, super::files::GROUP_ROWS)
        .map_err(|e| Error::Internal(format!("cannot encode outbox rows: {e}")))
}

/// Read one outbox file of the store, verified.
fn read(dir: &Path, r: &FileRef) -> Result<Vec<RecordBatch>> {
    let bytes = read_verified(dir, r, Fix::Restore)?;
    let bad = |why: String| corrupt(dir, &r.file, &why, Fix::Restore);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if batches.iter().any(|b| b.schema().fields() != schema().fields()) {
        return Err(bad("not an outbox file".into()));
    }
    Ok(batches)
}

/// How many replies in these outbox files go to one of `contacts`.
pub(super) fn replies_to<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a FileRef>,
    contacts: &[u64],
) -> Result<u64> {
    let wanted: std::collections::HashSet<String> =
        contacts.iter().map(|&c| crate::phone::format_e164(c)).collect();
    let mut n = 0;
    for r in files {
        for b in read(dir, r)? {
            let to = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .ok_or_else(|| corrupt(dir, &r.file, "not an outbox file", Fix::Restore))?;
            n += to.iter().flatten().filter(|t| wanted.contains(*t)).count() as u64;
        }
    }
    Ok(n)
}

/// What a file at an outbox path already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// No file, an empty one, or a header alone.
    Nothing,
    /// Replies, which may not have been sent yet.
    Rows(u64),
    /// A file this tool cannot read as an outbox.
    Unreadable,
}

impl Held {
    /// What the file at `path` holds.
    pub(crate) fn at(path: &Path) -> Held {
        let Ok(meta) = fs::metadata(path) else {
            return Held::Nothing;
        };
        if meta.len() == 0 {
            return Held::Nothing;
        }
        let parquet = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        let rows = if parquet {
            fs::File::open(path)
                .ok()
                .and_then(|f| parquet::file::reader::SerializedFileReader::new(f).ok())
                .map(|r| {
                    use parquet::file::reader::FileReader;
                    r.metadata().file_metadata().num_rows().max(0) as u64
                })
        } else {
            fs::read(path).ok().map(|b| {
                let lines = b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count() as u64;
                lines.saturating_sub(1)
            })
        };
        match rows {
            None => Held::Unreadable,
            Some(0) => Held::Nothing,
            Some(n) => Held::Rows(n),
        }
    }

    /// Must the file be kept (never overwritten)?
    pub(crate) fn must_keep(self) -> bool {
        self != Held::Nothing
    }
}

/// What an interrupted hand-over came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The output is in place with its replies.
    Completed {
        /// The output file.
        output: PathBuf,
        /// Replies it holds.
        rows: u64,
    },
    /// The output never appeared: its replies are pending again.
    Returned {
        /// The output file that was meant.
        output: PathBuf,
        /// Replies pending again.
        rows: u64,
    },
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recovered::Completed { output, rows } => write!(
                f,
                "an interrupted hand-over of {rows} replies was completed: they are in {}",
                output.display()
            ),
            Recovered::Returned { output, rows } => write!(
                f,
                "an interrupted hand-over of {rows} replies to {} did not finish: they are pending again",
                output.display()
            ),
        }
    }
}

impl Store {
    /// Replies waiting to be handed over.
    pub fn pending_replies(&self) -> u64 {
        self.manifest.pending_replies()
    }

    /// Hand every pending reply over to `path` and say so on stderr (the
    /// caller holds the lock). A file there that still holds replies is
    /// never overwritten: with nothing pending it is left as it is; with
    /// replies pending they stay in the store and this fails (an ingest has
    /// committed by then: an outbox never holds back an opt-out). A failure
    /// says that the replies are safe in the store.
    pub fn deliver(&mut self, path: &Path) -> Result<u64> {
        let pending = self.pending_replies();
        let held = Held::at(path);
        if pending == 0 && held.must_keep() {
            eprintln!(
                "outbox: nothing new to hand over; {} is left as it was",
                path.display()
            );
            return Ok(0);
        }
        let refused = match held {
            Held::Nothing => None,
            Held::Unreadable => Some("the file exists and is not an outbox this tool can read; it is not overwritten: move it away or name another file".to_string()),
            Held::Rows(n) => Some(format!("already holds {n} replies from an earlier hand-over, which may not have been sent; send them and move the file away, or name another file")),
        };
        let res = match refused {
            Some(why) => Err(Error::Usage(format!("the outbox {}: {why}", path.display()))),
            None => self.hand_over(path, true),
        };
        let n = res.map_err(|e| {
            Error::Input(format!(
                "{e}; the {pending} replies to send stay pending in the store: hand them over with `optscrub outbox --store {} --output FILE`",
                self.dir.display()
            ))
        })?;
        eprintln!("outbox: {n} replies handed over to {}", path.display());
        Ok(n)
    }

    /// Say on stderr how many replies wait in the store, and how to get
    /// them.
    pub fn say_pending(&self) {
        let n = self.pending_replies();
        if n > 0 {
            eprintln!(
                "outbox: {n} replies to send are kept in the store; hand them over with `optscrub outbox --store {} --output FILE` (or give --outbox FILE)",
                self.dir.display()
            );
        }
    }

    /// Write every pending reply to `path`, oldest first. With `take`,
    /// they are handed over: no longer pending once the file is in place
    /// (the caller holds the lock; [`Store::deliver`] also guards the
    /// path). Returns the rows written.
    pub fn hand_over(&mut self, path: &Path, take: bool) -> Result<u64> {
        let files = self.manifest.outbox.clone();
        let rows = files.iter().map(|f| f.rows).sum();
        let sealed = self.write_pending(path, &files)?;
        if !take || files.is_empty() {
            return sealed.commit().map(|()| rows);
        }
        let mut m = self.manifest.clone();
        m.generation += 1;
        m.outbox.clear();
        m.handover = Some(Handover {
            temp: absolute(sealed.temp()),
            output: absolute(sealed.path()),
            bytes: sealed.bytes(),
            files,
        });
        m.write(&self.dir)?;
        self.manifest = m;
        let moved = sealed.commit();
        self.end_handover(moved.is_ok())?;
        moved.map(|()| rows)
    }

    /// Write these outbox files to `path`, complete under its temporary
    /// name. One file into a Parquet output is copied as it is (a store
    /// outbox file is a Parquet outbox, without text statistics, as
    /// outputs are); otherwise the rows are read and written.
    fn write_pending(&self, path: &Path, files: &[FileRef]) -> Result<crate::io::atomic::Sealed> {
        if let ([one], Format::Parquet) = (files, Format::for_path(path)?) {
            let bytes = read_verified(&self.dir, one, Fix::Restore)?;
            let (pending, mut file) = crate::io::atomic::PendingFile::create(path)?;
            std::io::Write::write_all(&mut file, &bytes).map_err(|e| Error::io("cannot write", path, e))?;
            return pending.seal(file, None);
        }
        let mut out = Output::create(path, schema())?;
        for r in files {
            for b in read(&self.dir, r)? {
                out.write(&b)?;
            }
        }
        out.seal()
    }

    /// Drop the hand-over record: done, its outbox files go; not done, its
    /// replies are pending again (before any that came later).
    fn end_handover(&mut self, done: bool) -> Result<()> {
        let mut m = self.manifest.clone();
        let Some(h) = m.handover.take() else {
            return Ok(());
        };
        m.generation += 1;
        if !done {
            m.outbox.splice(0..0, h.files.iter().cloned());
        }
        m.write(&self.dir)?;
        self.manifest = m;
        if done {
            for r in &h.files {
                let _ = fs::remove_file(self.dir.join(&r.file));
            }
        }
        Ok(())
    }

    /// Finish a hand-over that a killed process left (the caller holds the
    /// lock); says what happened, if there was one.
    pub fn recover_handover(&mut self) -> Result<Option<Recovered>> {
        let Some(h) = self.manifest.handover.clone() else {
            return Ok(None);
        };
        let (temp, output) = (PathBuf::from(&h.temp), PathBuf::from(&h.output));
        let rows = h.files.iter().map(|f| f.rows).sum();
        let done = if temp.exists() {
            // the output name may have been taken since: then the replies
            // stay with the store rather than overwrite it
            !Held::at(&output).must_keep() && crate::io::atomic::commit(&temp, &output).is_ok()
        } else {
            fs::metadata(&output).is_ok_and(|m| m.len() == h.bytes)
        };
        let _ = fs::remove_file(&temp);
        self.end_handover(done)?;
        Ok(Some(if done {
            Recovered::Completed { output, rows }
        } else {
            Recovered::Returned { output, rows }
        }))
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}
