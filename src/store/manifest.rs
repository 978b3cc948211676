//! The manifest: the one small file that names every file of the current
//! store generation with its size and checksum. It is replaced atomically,
//! so a reader always sees one whole generation.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::damage::{corrupt, Fix};
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic_mode;

/// The manifest's file name inside the store.
pub(super) const MANIFEST: &str = "MANIFEST";
/// Format version written by this build.
pub(super) const FORMAT: u32 = 2;
/// The format of a store with erased numbers: a build that cannot read
/// numbers as their hashes must refuse it (it would let them through).
pub(super) const FORMAT_ERASED: u32 = 3;
/// The format of a store whose probe has layers: a build that reads only
/// the first probe file must refuse it (it would miss newer opt-outs).
/// This build reads erased numbers in it too.
pub(super) const FORMAT_LAYERED: u32 = 4;
/// The format of a store whose probe files may have words of 1 or 2 bytes
/// (OPTPRB02): a build that reads only 4-byte words must refuse it (it
/// would call the probe damaged). This build reads all of the above in it.
pub(super) const FORMAT_NARROW: u32 = 5;

/// One file of the store, with what it must be.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    /// Path relative to the store.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
    /// Rows (events, keys or ids) it holds.
    #[serde(default)]
    pub rows: u64,
    /// Its blocks file (see [`super::blocks`]), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Box<FileRef>>,
}

/// The current generation of the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Store format version.
    pub format: u32,
    /// Increases by one on every commit.
    pub generation: u64,
    /// The config in force.
    pub config: FileRef,
    /// Every ledger file, oldest first.
    pub ledger: Vec<FileRef>,
    /// Key runs (oldest first): where the last event per (account, scope,
    /// contact) lies in the ledger.
    pub keys: Vec<FileRef>,
    /// Id runs (oldest first): sorted hashes of every event id in the
    /// ledger, and of messages that made no event.
    pub ids: Vec<FileRef>,
    /// The compiled roaring bitmaps.
    pub snapshot: FileRef,
    /// The probe file: the opt-outs laid out for lookups in place (none
    /// in a store last written by a build before probe files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<FileRef>,
    /// Layers of the probe over `probe`, oldest first: a contact's
    /// scopes are those of the newest file that holds it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_layers: Vec<FileRef>,
    /// Replies (confirmations, help answers) committed by ingests and not
    /// yet handed over, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<FileRef>,
    /// A hand-over under way: its replies are out of `outbox` but still
    /// kept until the output file is in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    /// Ledger files taken back by `optscrub revert`, oldest revert first:
    /// their events stay in the ledger, for the record, and count for
    /// nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverted: Vec<Reverted>,
    /// The key of erased numbers' hashes (32 hex digits), made at `init`
    /// (or at the first `erase` of a store made before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_key: Option<String>,
    /// Erased numbers, as their keyed hashes, sorted (see
    /// [`super::erasure`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<u64>,
}

/// A ledger file taken back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reverted {
    /// The ledger file's generation.
    pub ledger: u32,
    /// When it was taken back (µs, UTC).
    pub at: i64,
    /// The events it held.
    pub events: u64,
}

/// Replies being handed over: the output file is complete under `temp`,
/// and becomes `output` by a rename. A writer that finds one (its process
/// was killed in between) finishes it or gives the replies back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Handover {
    /// The complete output under its temporary name (absolute).
    pub temp: String,
    /// Its final name (absolute).
    pub output: String,
    /// Its size: an output of this size under the final name is taken to
    /// be this hand-over's, renamed before the process was killed.
    pub bytes: u64,
    /// The outbox files it holds.
    pub files: Vec<FileRef>,
}

/// A file and its blocks file, if it has one.
fn with_blocks(r: &FileRef) -> impl Iterator<Item = &FileRef> {
    std::iter::once(r).chain(r.blocks.as_deref())
}

impl Manifest {
    /// Read and verify the manifest of the store at `dir`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Usage(format!(
                    "{} is not an optscrub store (no {MANIFEST}): create one with `optscrub init --store {} --config FILE`",
                    dir.display(),
                    dir.display()
                )))
            }
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        let damaged = |why: &str| corrupt(dir, MANIFEST, why, Fix::Restore);
        let text = std::str::from_utf8(&text).map_err(|_| damaged("not UTF-8"))?;
        let (body, tail) = text
            .strip_suffix('\n')
            .and_then(|t| t.rsplit_once('\n'))
            .ok_or_else(|| damaged("no checksum line"))?;
        // exactly as written: any changed byte, even one that would still
        // parse, is damage
        if tail != format!("crc32 {:08x}", crc32fast::hash(body.as_bytes())) {
            return Err(damaged("checksum mismatch"));
        }
        let m: Manifest = serde_json::from_str(body).map_err(|_| damaged("unreadable"))?;
        if ![FORMAT, FORMAT_ERASED, FORMAT_LAYERED, FORMAT_NARROW].contains(&m.format) {
            return Err(Error::Corrupt(format!(
                "store {}: format {} is not supported by this build (expected {FORMAT}, {FORMAT_ERASED} with erased numbers, {FORMAT_LAYERED} with a layered probe, or {FORMAT_NARROW} with narrow probe words)",
                dir.display(),
                m.format
            )));
        }
        Ok(m)
    }

    /// Replace the manifest of the store at `dir` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot encode manifest: {e}")))?;
        let text = format!("{body}\ncrc32 {:08x}\n", crc32fast::hash(body.as_bytes()));
        write_atomic_mode(
            &dir.join(MANIFEST),
            text.as_bytes(),
            Some(super::perms::FILE_MODE),
        )
    }

    /// Every file this manifest names (blocks files included).
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        [&self.config, &self.snapshot]
            .into_iter()
            .chain(self.ledger.iter())
            .chain(self.keys.iter())
            .chain(self.ids.iter())
            .chain(self.probe_files())
            .chain(self.outbox_files())
            .flat_map(with_blocks)
    }

    /// The probe's files, oldest first.
    pub fn probe_files(&self) -> impl DoubleEndedIterator<Item = &FileRef> {
        self.probe.iter().chain(&self.probe_layers)
    }

    /// Raise the format to `format` (never lower it: a store one build
    /// must refuse stays refused).
    pub(super) fn raise_format(&mut self, format: u32) {
        self.format = self.format.max(format);
    }

    /// Every outbox file: those pending and those of an unfinished
    /// hand-over. They cannot be recompiled from anything.
    pub fn outbox_files(&self) -> impl Iterator<Item = &FileRef> {
        self.outbox
            .iter()
            .chain(self.handover.iter().flat_map(|h| h.files.iter()))
    }

    /// Whether the ledger file of this generation was taken back.
    pub fn is_reverted(&self, generation: u32) -> bool {
        self.reverted.iter().any(|r| r.ledger == generation)
    }

    /// Replies waiting to be handed over (those of an unfinished hand-over
    /// included).
    pub fn pending_replies(&self) -> u64 {
        self.outbox_files().map(|f| f.rows).sum()
    }

    /// A digest of the ledger list; the snapshot records the one it was
    /// compiled from, so a snapshot that does not match the ledger is caught.
    pub fn ledger_digest(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for f in &self.ledger {
            h.update(f.file.as_bytes());
            h.update(&f.crc32.to_le_bytes());
        }
        // a revert changes what the ledger says (nothing when there is none)
        for r in &self.reverted {
            h.update(b"reverted");
            h.update(&r.ledger.to_le_bytes());
        }
        h.finalize()
    }
}
