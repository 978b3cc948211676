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
//! leftovers of a crash and are removed by the next writer. Opening and
//! reading a generation is here; looking one contact up is `lookup`,
//! writing a generation `commit`, and what an ingest changes `ingest`.
//!
//! An ingest writes its ledger file, one small key run and one small id
//! run, and updates the snapshot from the keys it changed; runs are merged
//! size-tiered (`keys`), so its cost follows the batch, not the store.

mod bits;
mod blocks;
pub mod bundle;
mod commit;
pub(crate) mod damage;
pub mod erasure;
mod export;
pub(crate) mod files;
mod ids;
mod ingest;
mod key_lookup;
mod key_merge;
mod key_write;
pub(crate) mod keys;
mod layout;
mod lock;
mod lookup;
mod manifest;
pub(crate) mod outbox;
mod packed;
mod perms;
pub(crate) mod probe;
mod rebuild;
pub(crate) mod rows;
mod runs;
pub mod snapshot;
mod state;

pub use damage::Fault;
pub use erasure::{EraseSummary, Erasures};
pub use export::{Evidence, OptOut, Share, SuppressionList};
pub use ingest::{Committed, Prepared, RevertSummary};
pub use lock::{lock, WriteLock};
pub use lookup::KeyLookups;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use damage::{corrupt, damaged, Fix};
use files::{check_file, read_events, read_verified};
use ids::IdRun;
use keys::{Entry, KeyRun};
use layout::Kind;
use manifest::{FileRef, Manifest};
use probe::{Probe, ProbeFile};
use snapshot::Snapshot;
use state::State;

/// How often a reader re-reads the manifest when writers keep replacing
/// the generation under it.
const READER_RETRIES: u32 = 3;
/// The store's opt-outs, as a scrubber is made from them.
pub enum OptOuts {
    /// The store's probe files.
    Probe(Box<Probe>),
    /// The snapshot's bitmaps (a store written before probe files).
    Bitmaps(Snapshot),
}

impl OptOuts {
    /// Total opted-out (account, scope, contact) keys.
    pub fn opt_outs(&self) -> u64 {
        match self {
            OptOuts::Probe(p) => p.opt_outs(),
            OptOuts::Bitmaps(s) => s.opt_outs(),
        }
    }
}

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

impl Store {
    /// The generation this store was opened at.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// The generation now current in `dir` (its manifest read, nothing
    /// else): to tell whether a store opened earlier is still current.
    pub fn current_generation(dir: &Path) -> Result<u64> {
        Manifest::read(dir).map(|m| m.generation)
    }

    /// Open a store for reading (its modes checked: see `store::perms`).
    pub fn open(dir: &Path) -> Result<Store> {
        let exposed = perms::check(dir, perms::Use::Read)?;
        Store::read(dir, exposed)
    }

    /// Read the store's manifest and config (its modes already checked).
    fn read(dir: &Path, exposed: Option<String>) -> Result<Store> {
        let manifest = Manifest::read(dir)?;
        let config_bytes = read_verified(dir, &manifest.config, Fix::Restore)?;
        let text = std::str::from_utf8(&config_bytes)
            .map_err(|_| corrupt(dir, &manifest.config.file, "not UTF-8", Fix::Restore))?;
        let config =
            Config::parse(text).map_err(|why| corrupt(dir, &manifest.config.file, &why, Fix::Restore))?;
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
        if bundle::is_bundle(dir) {
            return Err(bundle::refuse(dir, "writing (ingest, rebuild, config, outbox)"));
        }
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

    /// The opt-outs as a scrub reads them: the probe files, mapped (their
    /// footers and headers checked; their blocks are checked as they are
    /// read), or the snapshot of a store that has none yet.
    pub fn opt_outs(&self) -> Result<OptOuts> {
        match self.probe()? {
            Some(p) => Ok(OptOuts::Probe(Box::new(p))),
            None => self.snapshot().map(OptOuts::Bitmaps),
        }
    }

    /// The probe's files, opened (none in a store written before probe
    /// files).
    fn probe(&self) -> Result<Option<Probe>> {
        let m = &self.manifest;
        if m.probe.is_none() {
            return Ok(None);
        }
        // newest first: the first was written for this ledger
        let layers = m
            .probe_files()
            .rev()
            .enumerate()
            .map(|(i, r)| self.probe_file(r, i == 0))
            .collect::<Result<Vec<_>>>()?;
        Probe::layered(layers).map(Some).map_err(|why| {
            let newest = m.probe_files().last().map_or("probe", |r| r.file.as_str());
            damaged(&self.dir, newest, why, Fix::Rebuild)
        })
    }

    /// Open a probe file; the newest must have been written for this
    /// ledger (an older layer was written for the ledger of its day).
    fn probe_file(&self, r: &FileRef, newest: bool) -> Result<ProbeFile> {
        let bad = |why: Fault| damaged(&self.dir, &r.file, why, Fix::Rebuild);
        let mut p = ProbeFile::open(&self.dir.join(&r.file)).map_err(bad)?;
        if p.file_bytes() != r.bytes {
            return Err(bad("wrong size".into()));
        }
        if newest && p.ledger_digest != self.manifest.ledger_digest() {
            return Err(bad("it does not match the ledger".into()));
        }
        p.origin = format!("store {}: {}", self.dir.display(), r.file);
        Ok(p)
    }

    /// A bundle holds what a scrub reads, nothing else: `what` is refused
    /// with that reason (not reported as damage).
    fn whole(&self, what: &str) -> Result<()> {
        if bundle::is_bundle(&self.dir) {
            return Err(bundle::refuse(&self.dir, what));
        }
        Ok(())
    }

    /// Open and verify the compiled snapshot.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.whole("reading the snapshot (stats, export, plan)")?;
        let r = &self.manifest.snapshot;
        let snap = Snapshot::open(&self.dir, r)?;
        self.snapshot_matches(snap.ledger_digest)?;
        Ok(snap)
    }

    /// Map and verify the compiled snapshot, its bitmaps left in place.
    pub fn snapshot_mapped(&self) -> Result<snapshot::MappedSnapshot> {
        self.whole("reading the snapshot (stats, export, plan)")?;
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
                damage::Fix::Rebuild.say(Some(&self.dir))
            )));
        }
        Ok(())
    }

    /// The key runs, newest first.
    fn key_runs(&self) -> Result<Vec<KeyRun>> {
        self.whole("reading the ledger's keys")?;
        self.manifest
            .keys
            .iter()
            .rev()
            .map(|r| self.open_run(r, KeyRun::open))
            .collect()
    }

    /// The id runs.
    fn id_runs(&self) -> Result<Vec<IdRun>> {
        self.manifest
            .ids
            .iter()
            .map(|r| self.open_run(r, IdRun::open))
            .collect()
    }

    /// Open a key or id run the manifest names, checked against its size
    /// and CRC (a damaged one is rebuilt from the ledger).
    fn open_run<T>(
        &self,
        r: &FileRef,
        open: impl Fn(&Path, u64, u32) -> std::result::Result<T, damage::Fault>,
    ) -> Result<T> {
        open(&self.dir.join(&r.file), r.bytes, r.crc32)
            .map_err(|why| damaged(&self.dir, &r.file, why, Fix::Rebuild))
    }

    /// The ledger file of a generation.
    fn ledger_file(&self, generation: u32) -> Result<&FileRef> {
        let name = Kind::Ledger.file(generation.into());
        self.manifest
            .ledger
            .iter()
            .find(|r| files::ledger_generation(r) == Some(generation))
            .ok_or_else(|| {
                corrupt(
                    &self.dir,
                    "index",
                    &format!("it names {name}, which the manifest does not list"),
                    Fix::Rebuild,
                )
            })
    }

    /// Load the state (last event per key): the key runs merged, each
    /// key's event read from the ledger.
    pub fn state(&self) -> Result<State> {
        let runs = self.key_runs()?;
        let entries: Vec<Entry> = key_merge::merged_keys(&runs).collect();
        let mut by_file: std::collections::BTreeMap<u32, Vec<Entry>> = Default::default();
        for e in entries {
            by_file.entry(e.ledger).or_default().push(e);
        }
        let mut state = State::default();
        for (generation, wanted) in by_file {
            let r = self.ledger_file(generation)?;
            let events = read_events(&self.dir, r, Fix::Restore)?;
            for w in wanted {
                let e = events
                    .get(w.row as usize)
                    .filter(|e| e.contact == w.contact && e.at == w.at)
                    .ok_or_else(|| {
                        corrupt(&self.dir, "index", "it disagrees with the ledger", Fix::Rebuild)
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
        self.whole("verifying the ledger")?;
        let m = &self.manifest;
        let mut n = 0;
        for r in std::iter::once(&m.config)
            .chain(&m.ledger)
            .chain(m.outbox_files())
        {
            read_verified(&self.dir, r, Fix::Restore)?;
            n += 1;
        }
        for r in m
            .keys
            .iter()
            .chain(&m.ids)
            .chain([&m.snapshot])
            .chain(m.probe_files())
        {
            check_file(&self.dir, r, Fix::Rebuild)?;
            n += 1;
        }
        for r in m.ledger.iter().chain(&m.keys).filter_map(|r| r.blocks.as_deref()) {
            check_file(&self.dir, r, Fix::Rebuild)?;
            n += 1;
        }
        Ok(n)
    }
}
