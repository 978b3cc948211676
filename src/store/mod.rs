//! The store (SPEC §4): a folder holding the config, the append-only event
//! ledger, the state, and the compiled snapshot, tied together by one
//! manifest that is replaced atomically.
//!
//! ```text
//! DIR/MANIFEST                 current generation: every file, size, CRC-32
//! DIR/LOCK                     the writer lock (an OS file lock)
//! DIR/config/<gen>.toml        every config ever given (old ones kept)
//! DIR/ledger/<gen>.parquet     one file per ingest, never rewritten
//! DIR/index/<gen>.idx         key runs: where each key's last event lies
//! DIR/ids/<gen>.bin            id runs: sorted hashes of every event id
//! DIR/snapshot/<gen>.snap      roaring bitmaps per (account, scope)
//! DIR/probe/<gen>.probe        the opt-outs laid out for lookups in place
//! DIR/outbox/<gen>.parquet     replies not yet handed over
//! ```
//!
//! A commit writes the new generation's files under fresh names, fsyncs
//! them, then replaces the manifest: a crash at any moment leaves the old
//! manifest (and the old files) or the new one. Files no manifest names are
//! leftovers of a crash and are removed by the next writer.
//!
//! An ingest writes its ledger file, one small key run and one small id
//! run, and updates the snapshot from the keys it changed; runs are merged
//! size-tiered ([`index`]), so its cost follows the batch, not the store.

mod blocks;
mod export;
pub(crate) mod files;
mod ids;
mod ingest;
pub(crate) mod keys;
mod layout;
mod lock;
mod manifest;
pub(crate) mod outbox;
mod perms;
pub(crate) mod probe;
pub mod snapshot;
mod state;

pub use export::{Evidence, OptOut, SuppressionList};
pub use files::Fault;
pub use ingest::{Committed, Prepared};
pub use lock::{lock, WriteLock};

use std::fs;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::{self, Event};
use crate::io::atomic::sync_dir;
use blocks::{write_blocks, write_file_blocked, BLOCK};
use files::{
    check_file, corrupt, damaged, events_to_parquet, read_events, read_verified, write_file, FIX_REBUILD,
    FIX_RESTORE,
};
use ids::IdRun;
use keys::{Entry, KeyRun, ScopeName};
use layout::Kind;
use manifest::{FileRef, Manifest};
use probe::ProbeFile;
use snapshot::Snapshot;
use state::State;

use crate::scrub::OptOuts;

/// How often a reader re-reads the manifest when writers keep replacing
/// the generation under it.
const READER_RETRIES: u32 = 3;
/// An opened store: its manifest and config, read at one moment.
pub struct Store {
    /// The store folder.
    pub dir: PathBuf,
    /// The generation that was current when it was opened.
    pub manifest: Manifest,
    /// The config in force.
    pub config: Config,
    /// Set when other users may read the store (a warning, not an error).
    pub exposed: Option<String>,
}

/// A key run opened for lookups.
enum RunLookup {
    /// Verified whole (a run written before blocks files).
    Whole(KeyRun),
    /// Verified by the blocks each lookup reads.
    Blocks(keys::KeyLookup),
}

impl RunLookup {
    fn scopes(&self) -> &[ScopeName] {
        match self {
            RunLookup::Whole(r) => &r.scopes,
            RunLookup::Blocks(r) => &r.scopes,
        }
    }

    fn get(&self, scope: u64, contact: u64) -> std::result::Result<Option<Entry>, Fault> {
        match self {
            RunLookup::Whole(r) => Ok(r.get(scope, contact)),
            RunLookup::Blocks(r) => r.get(scope, contact),
        }
    }
}

/// What a commit adds besides the ledger file.
struct Change {
    /// Changed keys, sorted, each once.
    keys: Vec<Entry>,
    /// Names of the scopes they use.
    scopes: Vec<ScopeName>,
    /// New id hashes, sorted and distinct.
    ids: Vec<u64>,
    /// The snapshot after the change (its digest is set at commit).
    snapshot: Snapshot,
    /// Replace every run (rebuild) rather than add to them.
    replace: bool,
    /// Replies to keep until they are handed over (outbox rows).
    outbox: Vec<arrow::array::RecordBatch>,
}

impl Store {
    /// Open a store for reading (its modes checked: see [`perms`]).
    pub fn open(dir: &Path) -> Result<Store> {
        let exposed = perms::check(dir, perms::Use::Read)?;
        Store::read(dir, exposed)
    }

    /// Read the store's manifest and config (its modes already checked).
    fn read(dir: &Path, exposed: Option<String>) -> Result<Store> {
        let manifest = Manifest::read(dir)?;
        let config_bytes = read_verified(dir, &manifest.config, FIX_RESTORE)?;
        let text = std::str::from_utf8(&config_bytes)
            .map_err(|_| corrupt(dir, &manifest.config.file, "not UTF-8", FIX_RESTORE))?;
        let config =
            Config::parse(text).map_err(|why| corrupt(dir, &manifest.config.file, &why, FIX_RESTORE))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            manifest,
            config,
            exposed,
        })
    }

    /// Take the writer lock, then open the store (finishing a hand-over
    /// of replies that a killed process left, and saying so on stderr).
    pub fn open_for_write(dir: &Path) -> Result<(Store, WriteLock)> {
        if !dir.join(manifest::MANIFEST).exists() {
            // not a store: say so, rather than fail to create its lock
            Manifest::read(dir)?;
        }
        // checked before the lock: no LOCK file is made in a store that
        // is not the user's
        let exposed = perms::check(dir, perms::Use::Write)?;
        let lock = lock(dir)?;
        let mut store = Store::read(dir, exposed)?;
        if let Some(what) = store.recover_handover()? {
            eprintln!("optscrub: {what}");
        }
        Ok((store, lock))
    }

    /// Open a store and its snapshot for reading.
    pub fn open_with_snapshot(dir: &Path) -> Result<(Store, Snapshot)> {
        Store::open_reading(dir, Store::snapshot)
    }

    /// Open a store and its opt-outs for scrubbing or checking.
    pub fn open_with_opt_outs(dir: &Path) -> Result<(Store, OptOuts)> {
        Store::open_reading(dir, Store::opt_outs)
    }

    /// Open a store and read something of its generation with `read`.
    /// Readers take no lock: if a writer replaced the generation in
    /// between (and removed its files), the manifest is read again.
    fn open_reading<T>(dir: &Path, read: impl Fn(&Store) -> Result<T>) -> Result<(Store, T)> {
        let mut tries = READER_RETRIES;
        loop {
            let store = Store::open(dir)?;
            match read(&store) {
                Ok(x) => return Ok((store, x)),
                Err(e) => {
                    let moved = Manifest::read(dir).map(|m| m.generation != store.manifest.generation);
                    if tries == 0 || !matches!(moved, Ok(true)) {
                        return Err(e);
                    }
                    tries -= 1;
                }
            }
        }
    }

    /// The opt-outs as a scrub reads them: the probe file, mapped (its
    /// footer and header checked; its blocks are checked as it is read),
    /// or the snapshot of a store that has none yet.
    pub fn opt_outs(&self) -> Result<OptOuts> {
        match &self.manifest.probe {
            Some(r) => self.probe_file(r).map(|p| OptOuts::Probe(Box::new(p))),
            None => self.snapshot().map(OptOuts::Bitmaps),
        }
    }

    fn probe_file(&self, r: &FileRef) -> Result<ProbeFile> {
        let bad = |why: Fault| damaged(&self.dir, &r.file, why, FIX_REBUILD);
        let mut p = ProbeFile::open(&self.dir.join(&r.file)).map_err(bad)?;
        if p.file_bytes() != r.bytes {
            return Err(bad("wrong size".into()));
        }
        if p.ledger_digest != self.manifest.ledger_digest() {
            return Err(bad("it does not match the ledger".into()));
        }
        p.origin = format!("store {}: {}", self.dir.display(), r.file);
        Ok(p)
    }

    /// Open and verify the compiled snapshot.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let r = &self.manifest.snapshot;
        let snap = Snapshot::open(&self.dir, r)?;
        self.snapshot_matches(snap.ledger_digest)?;
        Ok(snap)
    }

    /// Map and verify the compiled snapshot, its bitmaps left in place.
    pub fn snapshot_mapped(&self) -> Result<snapshot::MappedSnapshot> {
        let r = &self.manifest.snapshot;
        let snap = snapshot::MappedSnapshot::open(&self.dir, r)?;
        self.snapshot_matches(snap.ledger_digest())?;
        Ok(snap)
    }

    fn snapshot_matches(&self, digest: u32) -> Result<()> {
        if digest != self.manifest.ledger_digest() {
            return Err(Error::Corrupt(format!(
                "store {}: the snapshot does not match the ledger; {}",
                self.dir.display(),
                files::Fix::Rebuild.say(Some(&self.dir))
            )));
        }
        Ok(())
    }

    /// The key runs, newest first.
    fn key_runs(&self) -> Result<Vec<KeyRun>> {
        self.manifest
            .keys
            .iter()
            .rev()
            .map(|r| {
                KeyRun::open(&self.dir.join(&r.file), r.bytes, r.crc32)
                    .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD))
            })
            .collect()
    }

    /// The id runs.
    fn id_runs(&self) -> Result<Vec<IdRun>> {
        self.manifest
            .ids
            .iter()
            .map(|r| {
                IdRun::open(&self.dir.join(&r.file), r.bytes, r.crc32)
                    .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD))
            })
            .collect()
    }

    /// The ledger file of a generation.
    fn ledger_file(&self, generation: u32) -> Result<&FileRef> {
        let name = Kind::Ledger.file(generation.into());
        self.manifest
            .ledger
            .iter()
            .find(|r| r.file == name)
            .ok_or_else(|| {
                corrupt(
                    &self.dir,
                    "index",
                    &format!("it names {name}, which the manifest does not list"),
                    FIX_REBUILD,
                )
            })
    }

    /// The last events of a contact in an account (SPEC §3.4's deciding
    /// events): the account scope and the given sender's, or every sender
    /// scope when `sender` is `None`; oldest first. Searches the key runs
    /// in place and reads only the ledger files that hold the answers.
    pub fn deciding(&self, account: &str, sender: Option<&str>, contact: u64) -> Result<Vec<Event>> {
        let runs = self.key_lookups()?;
        let mut scopes: Vec<&ScopeName> = runs
            .iter()
            .flat_map(|r| r.scopes().iter())
            .filter(|s| {
                s.account == account
                    && (s.scope == event::ACCOUNT_SCOPE || sender.is_none_or(|x| x == s.scope))
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        let mut found: Vec<Entry> = Vec::new();
        for s in scopes {
            // the newest run that has the key is right
            for (r, fr) in runs.iter().zip(self.manifest.keys.iter().rev()) {
                let got = r
                    .get(s.hash, contact)
                    .map_err(|why| damaged(&self.dir, &fr.file, why, FIX_REBUILD))?;
                if let Some(e) = got {
                    found.push(e);
                    break;
                }
            }
        }
        found.sort_by_key(|e| (e.ledger, e.row));
        let mut out = Vec::new();
        for same in found.chunk_by(|a, b| a.ledger == b.ledger) {
            let r = self.ledger_file(same[0].ledger)?;
            let rows: Vec<u32> = same.iter().map(|w| w.row).collect();
            let events = self.ledger_rows(r, &rows)?;
            for (w, e) in same.iter().zip(&events) {
                if e.contact != w.contact || e.at != w.at {
                    return Err(corrupt(
                        &self.dir,
                        "index",
                        "it disagrees with the ledger",
                        FIX_REBUILD,
                    ));
                }
            }
            out.extend(events);
        }
        out.sort_by(|a, b| a.order(b));
        Ok(out)
    }

    /// The key runs for a few lookups, newest first: those with a blocks
    /// file verified only where a lookup reads.
    fn key_lookups(&self) -> Result<Vec<RunLookup>> {
        self.manifest
            .keys
            .iter()
            .rev()
            .map(|r| match self.checked(r, FIX_REBUILD, false)? {
                Some(c) => keys::KeyLookup::new(c)
                    .map(RunLookup::Blocks)
                    .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD)),
                None => KeyRun::open(&self.dir.join(&r.file), r.bytes, r.crc32)
                    .map(RunLookup::Whole)
                    .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD)),
            })
            .collect()
    }

    /// A store file with its blocks, when it has a blocks file: `mapped`
    /// for a reader of much of it, else read by positioned reads (a few
    /// lookups).
    fn checked(&self, r: &FileRef, fix: files::Fix, mapped: bool) -> Result<Option<blocks::Checked>> {
        let Some(b) = r.blocks.as_deref() else {
            return Ok(None);
        };
        let table = read_verified(&self.dir, b, FIX_REBUILD)?;
        let table = blocks::Blocks::decode(&table, r.bytes as usize)
            .map_err(|why| damaged(&self.dir, &b.file, why, FIX_REBUILD))?;
        blocks::Checked::open_as(&self.dir.join(&r.file), r.bytes, table, mapped)
            .map(Some)
            .map_err(|why| damaged(&self.dir, &r.file, why, fix))
    }

    /// The events at these rows (sorted) of a ledger file. With a blocks
    /// file, only the pages that hold them are read (through the file's
    /// page index), and only the blocks those pages lie in are verified.
    fn ledger_rows(&self, r: &FileRef, rows: &[u32]) -> Result<Vec<Event>> {
        use parquet::arrow::arrow_reader::{
            ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
        };
        use parquet::file::metadata::PageIndexPolicy;
        let disagrees = || corrupt(&self.dir, "index", "it disagrees with the ledger", FIX_REBUILD);
        let Some(checked) = self.checked(r, FIX_RESTORE, false)? else {
            let all = read_events(&self.dir, r, FIX_RESTORE)?;
            return rows
                .iter()
                .map(|&i| all.get(i as usize).cloned().ok_or_else(disagrees))
                .collect();
        };
        let bad = |why: String| corrupt(&self.dir, &r.file, &why, FIX_RESTORE);
        let src = blocks::CheckedSource::new(checked);
        let opts = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required);
        let meta = ArrowReaderMetadata::load(&src, opts).map_err(|e| bad(e.to_string()))?;
        let mut out = Vec::with_capacity(rows.len());
        for &row in rows {
            let mut first = 0u64;
            let mut at = None;
            for (g, rg) in meta.metadata().row_groups().iter().enumerate() {
                let n = u64::try_from(rg.num_rows()).unwrap_or(0);
                if u64::from(row) < first + n {
                    at = Some((g, (u64::from(row) - first) as usize));
                    break;
                }
                first += n;
            }
            let (g, skip) = at.ok_or_else(disagrees)?;
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(src.clone(), meta.clone())
                .with_row_groups(vec![g])
                .with_row_selection(RowSelection::from(vec![
                    RowSelector::skip(skip),
                    RowSelector::select(1),
                ]))
                .build()
                .map_err(|e| bad(e.to_string()))?;
            let before = out.len();
            for batch in reader {
                let batch = batch.map_err(|e| bad(e.to_string()))?;
                event::from_batch(&batch, &mut out).map_err(bad)?;
            }
            if out.len() != before + 1 {
                return Err(disagrees());
            }
        }
        Ok(out)
    }

    /// Load the state (last event per key): the key runs merged, each
    /// key's event read from the ledger.
    pub fn state(&self) -> Result<State> {
        let runs = self.key_runs()?;
        let entries: Vec<Entry> = keys::merged_keys(&runs).collect();
        let mut by_file: std::collections::BTreeMap<u32, Vec<Entry>> = Default::default();
        for e in entries {
            by_file.entry(e.ledger).or_default().push(e);
        }
        let mut state = State::default();
        for (generation, wanted) in by_file {
            let r = self.ledger_file(generation)?;
            let events = read_events(&self.dir, r, FIX_RESTORE)?;
            for w in wanted {
                let e = events
                    .get(w.row as usize)
                    .filter(|e| e.contact == w.contact && e.at == w.at)
                    .ok_or_else(|| {
                        corrupt(&self.dir, "index", "it disagrees with the ledger", FIX_REBUILD)
                    })?;
                state.apply(e.clone());
            }
        }
        Ok(state)
    }

    /// Check the size and checksum of every file the manifest names;
    /// returns how many there are. The first damaged one stops it, named,
    /// with what to do.
    pub fn verify(&self) -> Result<usize> {
        let m = &self.manifest;
        let mut n = 0;
        for r in std::iter::once(&m.config)
            .chain(&m.ledger)
            .chain(m.outbox_files())
        {
            read_verified(&self.dir, r, FIX_RESTORE)?;
            n += 1;
        }
        for r in m.keys.iter().chain(&m.ids).chain([&m.snapshot]).chain(&m.probe) {
            check_file(&self.dir, r, FIX_REBUILD)?;
            n += 1;
        }
        for r in m.ledger.iter().chain(&m.keys).filter_map(|r| r.blocks.as_deref()) {
            check_file(&self.dir, r, FIX_REBUILD)?;
            n += 1;
        }
        Ok(n)
    }

    /// Create a new store at `dir` with this config file.
    pub fn init(dir: &Path, config_path: &Path) -> Result<Store> {
        let text = read_config_text(config_path)?;
        if dir.join(manifest::MANIFEST).exists() {
            return Err(Error::Usage(format!(
                "{} is already an optscrub store; use `optscrub config` to replace its config",
                dir.display()
            )));
        }
        let occupied = fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
        if occupied {
            return Err(Error::Usage(format!(
                "{} exists and is not empty; give a new or empty folder for the store",
                dir.display()
            )));
        }
        perms::create_dir(dir)?;
        let _lock = lock(dir)?;
        for kind in Kind::ALL {
            perms::create_dir(&dir.join(kind.folder()))?;
        }
        let config = write_file(dir, &Kind::Config.file(0), text.as_bytes(), 0)?;
        let empty = Manifest {
            format: manifest::FORMAT,
            generation: 0,
            config: config.clone(),
            ledger: Vec::new(),
            keys: Vec::new(),
            ids: Vec::new(),
            snapshot: FileRef {
                file: String::new(),
                bytes: 0,
                crc32: 0,
                rows: 0,
                blocks: None,
            },
            probe: None,
            outbox: Vec::new(),
            handover: None,
        };
        let mut store = Store {
            dir: dir.to_path_buf(),
            manifest: empty,
            config: Config::parse(&text).map_err(Error::Config)?,
            exposed: None,
        };
        store.commit(
            None,
            Change {
                keys: Vec::new(),
                scopes: Vec::new(),
                ids: Vec::new(),
                snapshot: Snapshot::default(),
                replace: true,
                outbox: Vec::new(),
            },
        )?;
        Ok(store)
    }

    /// Replace the config (the caller holds the lock); old ones are kept.
    pub fn replace_config(&mut self, config_path: &Path) -> Result<()> {
        let text = read_config_text(config_path)?;
        let config = Config::parse(&text).map_err(Error::Config)?;
        let generation = self.manifest.generation + 1;
        let file = Kind::Config.file(generation);
        let r = write_file(&self.dir, &file, text.as_bytes(), 0)?;
        let mut m = self.manifest.clone();
        m.generation = generation;
        m.config = r;
        m.write(&self.dir)?;
        self.gc(&m);
        self.manifest = m;
        self.config = config;
        Ok(())
    }

    /// Write a new generation and switch the manifest to it.
    fn commit(&mut self, new_ledger: Option<&[Event]>, change: Change) -> Result<()> {
        let before = self.manifest.clone();
        let res = self.write_generation(new_ledger, change);
        if res.is_err() {
            // a failed commit (a full disk, say) takes back the files it
            // wrote: the old manifest names none of them
            let keep: std::collections::HashSet<&str> = before.files().map(|f| f.file.as_str()).collect();
            let generation = before.generation + 1;
            for rel in layout::files_of(generation) {
                if !keep.contains(rel.as_str()) {
                    let _ = fs::remove_file(self.dir.join(rel));
                }
            }
        }
        res
    }

    fn write_generation(&mut self, new_ledger: Option<&[Event]>, change: Change) -> Result<()> {
        let generation = self.manifest.generation + 1;
        let mut m = self.manifest.clone();
        m.generation = generation;
        if let Some(events) = new_ledger {
            let bytes = events_to_parquet(events)?;
            let r = write_file_blocked(
                &self.dir,
                &Kind::Ledger.file(generation),
                &bytes,
                events.len() as u64,
                0,
                None,
            )?;
            m.ledger.push(r);
        }
        // key runs: add this one, then merge size-tiered
        let (mut key_refs, mut key_rows): (Vec<FileRef>, Vec<u64>) = if change.replace {
            (Vec::new(), Vec::new())
        } else {
            (m.keys.clone(), m.keys.iter().map(|r| r.rows).collect())
        };
        if !change.keys.is_empty() || change.replace {
            key_rows.push(change.keys.len() as u64);
            let from = keys::merge_from(&key_rows);
            let rel = Kind::KeyRun.file(generation);
            if from + 1 < key_rows.len() {
                // merged as a stream, newest first: memory is a block, not
                // the runs
                let mut runs = vec![
                    KeyRun::from_bytes(keys::encode_keys(&change.scopes, &change.keys))
                        .map_err(|e| Error::Internal(format!("cannot encode a key run: {e}")))?,
                ];
                for r in key_refs[from..].iter().rev() {
                    runs.push(
                        KeyRun::open(&self.dir.join(&r.file), r.bytes, r.crc32)
                            .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD))?,
                    );
                }
                let mut scopes: Vec<ScopeName> = runs.iter().flat_map(|r| r.scopes.iter().cloned()).collect();
                scopes.sort();
                scopes.dedup();
                let run = self.write_streamed(&rel, |f| {
                    keys::write_keys(f, &scopes, keys::merged_keys(&runs), BLOCK)
                })?;
                let sidecar = write_blocks(&self.dir, &rel, &run.blocks)?;
                key_refs.truncate(from);
                key_refs.push(FileRef {
                    file: rel,
                    bytes: run.bytes,
                    crc32: run.crc32,
                    rows: run.rows,
                    blocks: Some(sidecar),
                });
            } else {
                let bytes = keys::encode_keys(&change.scopes, &change.keys);
                key_refs.push(write_file_blocked(
                    &self.dir,
                    &rel,
                    &bytes,
                    change.keys.len() as u64,
                    keys::records_start(&bytes),
                    Some(&keys::fence),
                )?);
            }
        }
        m.keys = key_refs;
        // id runs, the same way
        let (mut id_refs, mut id_rows): (Vec<FileRef>, Vec<u64>) = if change.replace {
            (Vec::new(), Vec::new())
        } else {
            (m.ids.clone(), m.ids.iter().map(|r| r.rows).collect())
        };
        if !change.ids.is_empty() || change.replace {
            id_rows.push(change.ids.len() as u64);
            let from = keys::merge_from(&id_rows);
            let rel = Kind::IdRun.file(generation);
            let runs = id_refs[from..id_rows.len() - 1]
                .iter()
                .map(|r| {
                    IdRun::open(&self.dir.join(&r.file), r.bytes, r.crc32)
                        .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD))
                })
                .collect::<Result<Vec<_>>>()?;
            let runs: Vec<&IdRun> = runs.iter().collect();
            // merged as a stream with the new ids (no run when none)
            let (bytes, crc32, rows) =
                self.write_streamed(&rel, |f| ids::write_ids(f, ids::merged_ids(&runs, &change.ids)))?;
            id_refs.truncate(from);
            id_refs.push(FileRef {
                file: rel,
                bytes,
                crc32,
                rows,
                blocks: None,
            });
        }
        m.ids = id_refs;
        // a store made before outboxes and probes were kept lacks their folders
        for kind in [Kind::Outbox, Kind::Probe] {
            let d = self.dir.join(kind.folder());
            if !d.is_dir() {
                perms::create_dir(&d)?;
            }
        }
        let rows: u64 = change.outbox.iter().map(|b| b.num_rows() as u64).sum();
        if rows > 0 {
            let bytes = outbox::encode(&change.outbox)?;
            m.outbox.push(write_file(
                &self.dir,
                &Kind::Outbox.file(generation),
                &bytes,
                rows,
            )?);
        }
        let mut snap = change.snapshot;
        snap.ledger_digest = m.ledger_digest();
        let rows = snap.opt_outs();
        m.snapshot = write_file(&self.dir, &Kind::Snapshot.file(generation), &snap.encode(), rows)?;
        m.probe =
            Some(self.write_probe(&Kind::Probe.file(generation), &snap, &change.keys, change.replace)?);
        for kind in Kind::ALL {
            sync_dir(&self.dir.join(kind.folder()))?;
        }
        m.write(&self.dir)?;
        self.gc(&m);
        self.manifest = m;
        Ok(())
    }

    /// Write the probe file of the new snapshot: the previous generation's
    /// probe with the changed keys merged in, in one pass; from the
    /// snapshot itself on a rebuild, in a store that has no probe yet, or
    /// when the previous one is damaged (said on stderr).
    fn write_probe(&self, rel: &str, snap: &Snapshot, keys: &[Entry], replace: bool) -> Result<FileRef> {
        let names: Vec<(String, String)> = snap
            .scopes
            .iter()
            .map(|s| (s.account.clone(), s.scope.clone()))
            .collect();
        let old = match (&self.manifest.probe, replace) {
            (Some(r), false) => {
                let checked = self.probe_file(r).and_then(|p| {
                    p.verify_all()
                        .map(|()| p)
                        .map_err(|why| damaged(&self.dir, &r.file, why, FIX_REBUILD))
                });
                match checked {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("optscrub: {e}; it is recompiled from the snapshot");
                        None
                    }
                }
            }
            _ => None,
        };
        let (changes, remap) = match &old {
            Some(p) => {
                let at: crate::util::fasthash::FastMap<u64, u32> = names
                    .iter()
                    .enumerate()
                    .map(|(i, (a, s))| (keys::scope_hash(a, s), i as u32))
                    .collect();
                let remap: Vec<Option<u32>> = p
                    .scopes
                    .iter()
                    .map(|s| at.get(&keys::scope_hash(&s.account, &s.scope)).copied())
                    .collect();
                // an opt-in of a scope that is gone has nothing to take out
                let changes = keys
                    .iter()
                    .filter_map(|k| at.get(&k.scope).map(|&i| probe::change(k.contact, i, k.opt_out)))
                    .collect();
                (probe::sorted_changes(changes), remap)
            }
            None => {
                let all = snap
                    .scopes
                    .iter()
                    .enumerate()
                    .flat_map(|(i, s)| s.bitmap.iter().map(move |c| probe::change(c, i as u32, true)))
                    .collect();
                (probe::sorted_changes(all), Vec::new())
            }
        };
        let written = self.write_streamed(rel, |f| {
            probe::write(
                f,
                old.as_ref().map(|p| (p, &remap[..])),
                &changes,
                names,
                snap.ledger_digest,
            )
        })?;
        Ok(FileRef {
            file: rel.to_string(),
            bytes: written.bytes,
            crc32: written.crc32,
            rows: written.contacts,
            blocks: None,
        })
    }

    /// Write a store file as a stream: under a temporary name with the
    /// store's mode, fsynced, then renamed into place.
    fn write_streamed<T>(&self, rel: &str, write: impl FnOnce(&fs::File) -> std::io::Result<T>) -> Result<T> {
        let path = self.dir.join(rel);
        let tmp = crate::io::atomic::temp_path(&path);
        let written = crate::io::atomic::create(&tmp, Some(perms::FILE_MODE)).and_then(|f| {
            let w = write(&f)?;
            f.sync_all()?;
            Ok(w)
        });
        let written = written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("cannot write", &path, e)
        })?;
        crate::io::atomic::commit(&tmp, &path)?;
        Ok(written)
    }

    /// Remove files that neither the new nor the previous manifest names
    /// (old generations, and leftovers of a crash). Old configs are kept.
    fn gc(&self, new: &Manifest) {
        let keep: std::collections::HashSet<&str> = new
            .files()
            .chain(self.manifest.files())
            .map(|f| f.file.as_str())
            .collect();
        // a manifest half-written by a killed writer (we hold the lock, so
        // no other writer is writing one now)
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for entry in rd.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".MANIFEST.tmp-") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        for sub in Kind::per_generation().map(Kind::folder) {
            let Ok(rd) = fs::read_dir(self.dir.join(sub)) else {
                continue;
            };
            for entry in rd.flatten() {
                let rel = format!("{sub}/{}", entry.file_name().to_string_lossy());
                if !keep.contains(rel.as_str()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

fn read_config_text(path: &Path) -> Result<String> {
    let text = Config::read_text(path)?;
    Config::parse(&text).map_err(|msg| Error::Config(format!("config {}: {msg}", path.display())))?;
    Ok(text)
}
