//! Writing the store: a new store, a new config, and the commit of a
//! generation (its files written under fresh names, then the manifest
//! switched, then what no manifest names removed).

use std::fs;
use std::path::Path;

use super::blocks::{write_blocks, write_file_blocked, BLOCK};
use super::files::{rows_to_parquet, write_file};
use super::ids::IdRun;
use super::keys::{Entry, KeyRun, ScopeName};
use super::layout::Kind;
use super::manifest::{FileRef, Manifest};
use super::probe::ProbeFile;
use super::rows::NewRows;
use super::snapshot::Snapshot;
use super::{ids, key_merge, key_write, keys, layout, lock, manifest, outbox, perms, probe, runs, Store};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::io::atomic::sync_dir;

/// A commit's new ledger file, encoded: the events it was made from need
/// not be held while the rest of the generation is written.
pub(super) struct NewLedger {
    bytes: Vec<u8>,
    rows: u64,
    /// CRC-32 of `bytes` (worked out beside the key work, not in the commit)
    crc32: u32,
}

impl NewLedger {
    /// Encode new rows as a ledger file (none for no rows).
    pub(super) fn encode(rows: &impl NewRows) -> Result<Option<NewLedger>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let bytes = rows_to_parquet(rows)?;
        Ok(Some(NewLedger {
            crc32: crc32fast::hash(&bytes),
            bytes,
            rows: rows.len() as u64,
        }))
    }
}

/// What a commit adds besides the ledger file.
pub(super) struct Change {
    /// Changed keys, sorted, each once.
    pub(super) keys: Vec<Entry>,
    /// Names of the scopes they use.
    pub(super) scopes: Vec<ScopeName>,
    /// New id hashes, sorted and distinct.
    pub(super) ids: Vec<u64>,
    /// The snapshot after the change (its digest is set at commit).
    pub(super) snapshot: Snapshot,
    /// Replace every run (rebuild) rather than add to them.
    pub(super) replace: bool,
    /// Replies to keep until they are handed over (outbox rows).
    pub(super) outbox: Vec<arrow::array::RecordBatch>,
}

impl Store {
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
            probe_layers: Vec::new(),
            outbox: Vec::new(),
            handover: None,
            reverted: Vec::new(),
            erasure_key: Some(super::erasure::new_key()?),
            erased: Vec::new(),
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
    pub(super) fn commit(&mut self, new_ledger: Option<NewLedger>, change: Change) -> Result<()> {
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

    fn write_generation(&mut self, new_ledger: Option<NewLedger>, change: Change) -> Result<()> {
        let generation = self.manifest.generation + 1;
        let mut m = self.manifest.clone();
        m.generation = generation;
        // a store made before outboxes and probes were kept lacks their folders
        for kind in [Kind::Outbox, Kind::Probe] {
            let d = self.dir.join(kind.folder());
            if !d.is_dir() {
                perms::create_dir(&d)?;
            }
        }
        let Change {
            keys,
            scopes,
            ids,
            snapshot: mut snap,
            replace,
            outbox,
        } = change;
        // the new ledger file's checksum is known before it is written, so
        // the snapshot and the probe that record the ledger's digest are
        // written beside it
        let ledger_rel = Kind::Ledger.file(generation);
        if let Some(l) = &new_ledger {
            m.ledger.push(FileRef {
                file: ledger_rel.clone(),
                bytes: l.bytes.len() as u64,
                crc32: l.crc32,
                rows: l.rows,
                blocks: None,
            });
        }
        snap.ledger_digest = m.ledger_digest();
        // each file of the generation on a thread of its own: the probe's
        // merge and the runs' merges each run on one core, and each waits
        // for the disk as it syncs. The changed keys are let go as soon as
        // the probe has made its changes of them and the key run is
        // written (the probe's merge, the longest, runs on without them)
        let this = &*self;
        let keys = std::sync::Arc::new(keys);
        let probe_keys = std::sync::Arc::clone(&keys);
        let snap = &snap;
        let (ledger, probe, key_refs, id_refs, rest) = std::thread::scope(|s| {
            let ledger = s.spawn(|| {
                let written = new_ledger
                    .map(|l| write_file_blocked(&this.dir, &ledger_rel, &l.bytes, l.rows, l.crc32))
                    .transpose();
                crate::util::trace::mark("commit: ledger written");
                written
            });
            let probe = s.spawn(move || {
                let written = this.write_probe(&Kind::Probe.file(generation), snap, probe_keys, replace);
                crate::util::trace::mark("commit: probe written");
                written
            });
            let runs = &m.keys;
            let scopes = &scopes;
            let key_refs = s.spawn(move || this.write_key_run(runs, generation, &keys, scopes, replace));
            let id_refs = s.spawn(|| this.write_id_run(&m.ids, generation, &ids, replace));
            let rest = this.write_outbox_and_snapshot(generation, &outbox, snap);
            let stopped = |what: &str| Error::Internal(format!("the {what} writer stopped"));
            (
                ledger.join().map_err(|_| stopped("ledger")),
                probe.join().map_err(|_| stopped("probe")),
                key_refs.join().map_err(|_| stopped("key run")),
                id_refs.join().map_err(|_| stopped("id run")),
                rest,
            )
        });
        let (outbox_ref, snapshot_ref) = rest?;
        if let Some(written) = ledger?? {
            if let Some(last) = m.ledger.last_mut() {
                *last = written;
            }
        }
        if let Some(refs) = key_refs?? {
            m.keys = refs;
        }
        if let Some(refs) = id_refs?? {
            m.ids = refs;
        }
        m.outbox.extend(outbox_ref);
        m.snapshot = snapshot_ref;
        let mut probe = probe??.into_iter();
        m.probe = probe.next();
        m.probe_layers = probe.collect();
        if !m.probe_layers.is_empty() {
            m.raise_format(manifest::FORMAT_LAYERED);
        }
        if m.probe.is_some() {
            // the file this commit wrote has this build's words
            m.raise_format(manifest::FORMAT_NARROW);
        }
        for kind in Kind::ALL {
            sync_dir(&self.dir.join(kind.folder()))?;
        }
        m.write(&self.dir)?;
        crate::util::trace::mark("commit: manifest written");
        self.gc(&m);
        self.manifest = m;
        Ok(())
    }

    /// The key runs after a generation's key run is added to `current` and
    /// merged size-tiered (as `runs::merge_from` says); none when there is
    /// no key run to write.
    fn write_key_run(
        &self,
        current: &[FileRef],
        generation: u64,
        keys: &[Entry],
        scopes: &[ScopeName],
        replace: bool,
    ) -> Result<Option<Vec<FileRef>>> {
        if keys.is_empty() && !replace {
            return Ok(None);
        }
        let (mut key_refs, from) = runs_to_extend(current, replace, keys.len());
        let rel = Kind::KeyRun.file(generation);
        let run = if from < key_refs.len() {
            // the new keys merged as a stream over the runs, newest first:
            // memory is a block of each run, not the runs
            let runs = key_refs[from..]
                .iter()
                .rev()
                .map(|r| self.open_run(r, KeyRun::open))
                .collect::<Result<Vec<_>>>()?;
            let mut scopes: Vec<ScopeName> = scopes
                .iter()
                .chain(runs.iter().flat_map(|r| r.scopes.iter()))
                .cloned()
                .collect();
            scopes.sort();
            scopes.dedup();
            self.write_streamed(&rel, false, |f| {
                key_write::write_keys(f, &scopes, key_merge::merged_over(keys, &runs), BLOCK)
            })?
        } else {
            self.write_streamed(&rel, false, |f| {
                key_write::write_keys(f, scopes, keys.iter().copied(), BLOCK)
            })?
        };
        let sidecar = write_blocks(&self.dir, &rel, &run.blocks)?;
        key_refs.truncate(from);
        key_refs.push(FileRef {
            file: rel,
            bytes: run.bytes,
            crc32: run.crc32,
            rows: run.rows,
            blocks: Some(sidecar),
        });
        crate::util::trace::mark("commit: key run written");
        Ok(Some(key_refs))
    }

    /// The id runs after a generation's new ids are added, the way
    /// [`Store::write_key_run`] adds keys.
    fn write_id_run(
        &self,
        current: &[FileRef],
        generation: u64,
        id_hashes: &[u64],
        replace: bool,
    ) -> Result<Option<Vec<FileRef>>> {
        if id_hashes.is_empty() && !replace {
            return Ok(None);
        }
        let (mut id_refs, from) = runs_to_extend(current, replace, id_hashes.len());
        let rel = Kind::IdRun.file(generation);
        let runs = id_refs[from..]
            .iter()
            .map(|r| self.open_run(r, IdRun::open))
            .collect::<Result<Vec<_>>>()?;
        let runs: Vec<&IdRun> = runs.iter().collect();
        // merged as a stream with the new ids (no run when none)
        let (bytes, crc32, rows) = self.write_streamed(&rel, false, |f| {
            ids::write_ids(f, ids::merged_ids(&runs, id_hashes))
        })?;
        id_refs.truncate(from);
        id_refs.push(FileRef {
            file: rel,
            bytes,
            crc32,
            rows,
            blocks: None,
        });
        crate::util::trace::mark("commit: id run written");
        Ok(Some(id_refs))
    }

    /// Write a generation's outbox file (when it keeps replies) and its
    /// snapshot.
    fn write_outbox_and_snapshot(
        &self,
        generation: u64,
        outbox: &[arrow::array::RecordBatch],
        snap: &Snapshot,
    ) -> Result<(Option<FileRef>, FileRef)> {
        let rows: u64 = outbox.iter().map(|b| b.num_rows() as u64).sum();
        let outbox_ref = match rows {
            0 => None,
            _ => Some(write_file(
                &self.dir,
                &Kind::Outbox.file(generation),
                &outbox::encode(outbox)?,
                rows,
            )?),
        };
        let snapshot_ref = write_file(
            &self.dir,
            &Kind::Snapshot.file(generation),
            &snap.encode(),
            snap.opt_outs(),
        )?;
        crate::util::trace::mark("commit: snapshot written");
        Ok((outbox_ref, snapshot_ref))
    }

    /// Write the probe of the new snapshot; returns its files, oldest
    /// first. A small change over a large probe becomes a layer of the
    /// contacts it changed; layers are merged size-tiered, as runs are
    /// (`runs::merge_from`), and there are at most [`PROBE_FILES`]. On a
    /// rebuild, in a store that has no probe yet, or when a file of the
    /// previous one is damaged (said on stderr), the probe is compiled
    /// whole from the snapshot.
    fn write_probe(
        &self,
        rel: &str,
        snap: &Snapshot,
        keys: std::sync::Arc<Vec<Entry>>,
        replace: bool,
    ) -> Result<Vec<FileRef>> {
        let names: Vec<(String, String)> = snap
            .scopes
            .iter()
            .map(|s| (s.account.clone(), s.scope.clone()))
            .collect();
        let refs: Vec<&FileRef> = self.manifest.probe_files().collect();
        let file_ref = |written: probe::Written| FileRef {
            file: rel.to_string(),
            bytes: written.bytes,
            crc32: written.crc32,
            rows: written.contacts,
            blocks: None,
        };
        if !replace && !refs.is_empty() {
            let opened = refs
                .iter()
                .enumerate()
                .map(|(i, r)| self.probe_file(r, i + 1 == refs.len()))
                .collect::<Result<Vec<ProbeFile>>>();
            let over = opened.and_then(|files| self.write_probe_over(rel, &names, snap, keys, &files));
            match over {
                Ok((written, kept)) => {
                    let mut out: Vec<FileRef> = refs[..kept].iter().map(|r| (*r).clone()).collect();
                    out.push(file_ref(written));
                    return Ok(out);
                }
                // the new file could not be written: not a damaged store
                Err(e @ Error::Io { .. }) => return Err(e),
                Err(e) => eprintln!("optscrub: {e}; it is recompiled from the snapshot"),
            }
        }
        let all = snap
            .scopes
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.bitmap.iter().map(move |c| probe::change(c, i as u32, true)))
            .collect();
        let changes = probe::sorted_changes(all);
        let target = probe::Target {
            scopes: names,
            ledger_digest: snap.ledger_digest,
            totals: None,
            below: &[],
        };
        let written = self.write_streamed(rel, true, |f| probe::write(f, &[], &changes, target))?;
        Ok(vec![file_ref(written)])
    }

    /// Write the new probe file over the previous probe's `files` (oldest
    /// first): the files it merges are verified whole first (they are read
    /// whole); those below it are checked block by block as the changed
    /// contacts are looked up in them, so a small commit over a large
    /// probe reads a small part of it. Returns what it wrote and how many
    /// of `files` stay below it; a damaged file is an error (the caller
    /// writes the probe whole instead).
    fn write_probe_over(
        &self,
        rel: &str,
        names: &[(String, String)],
        snap: &Snapshot,
        keys: std::sync::Arc<Vec<Entry>>,
        files: &[ProbeFile],
    ) -> Result<(probe::Written, usize)> {
        let at: crate::util::fasthash::FastMap<u64, u32> = names
            .iter()
            .enumerate()
            .map(|(i, (a, s))| (keys::scope_hash(a, s), i as u32))
            .collect();
        let remaps: Vec<Vec<Option<u32>>> = files
            .iter()
            .map(|p| p.remap(|a, s| at.get(&keys::scope_hash(a, s)).copied()))
            .collect();
        // an opt-in of a scope that is gone has nothing to take out
        let mut changes = Vec::with_capacity(keys.len());
        changes.extend(
            keys.iter()
                .filter_map(|k| at.get(&k.scope).map(|&i| probe::change(k.contact, i, k.opt_out))),
        );
        drop(keys);
        let changes = probe::sorted_changes(changes);
        // a scope that is gone is gone from every file (its opt-ins made
        // no change to write, and a layer would leave its opt-outs below,
        // to come back with the scope): the probe is written whole
        let gone = remaps.iter().flatten().any(Option::is_none);
        let from = match gone {
            true => 0,
            false => probe_merge_from(
                &files.iter().map(ProbeFile::weight).collect::<Vec<_>>(),
                changes.len(),
            ),
        };
        let bad = |f: &ProbeFile, why: &str| Error::Corrupt(format!("{} is damaged ({why})", f.origin));
        for f in &files[from..] {
            f.verify_all().map_err(|why| bad(f, &why.to_string()))?;
            crate::util::trace::mark("probe: a merged file verified");
        }
        let sources: Vec<probe::Source> = files
            .iter()
            .zip(&remaps)
            .map(|(file, remap)| probe::Source { file, remap })
            .collect();
        // merged: the files from `from` on; below: those before
        let merged: Vec<probe::Source> = sources[from..].iter().rev().copied().collect();
        let below: Vec<probe::Source> = sources[..from].iter().rev().copied().collect();
        let totals = (from > 0).then(|| snap.scopes.iter().map(|s| s.bitmap.len()).collect());
        let target = probe::Target {
            scopes: names.to_vec(),
            ledger_digest: snap.ledger_digest,
            totals,
            below: &below,
        };
        let written = self.write_streamed(rel, true, |f| probe::write(f, &merged, &changes, target))?;
        if let Some((f, why)) = files[..from].iter().find_map(|f| f.damage().map(|why| (f, why))) {
            return Err(bad(f, why));
        }
        Ok((written, from))
    }

    /// Write a store file as a stream: under a temporary name with the
    /// store's mode, fsynced, then renamed into place. `cached` for a file
    /// the next reader maps at once (the probe, which every scrub reads):
    /// others are written past the page cache (see `io::direct`).
    fn write_streamed<T>(
        &self,
        rel: &str,
        cached: bool,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<T>,
    ) -> Result<T> {
        crate::io::atomic::write_atomic_with(&self.dir.join(rel), Some(perms::FILE_MODE), cached, write)
    }

    /// Remove files that neither the new nor the previous manifest names
    /// (old generations, and leftovers of a crash). Old configs are kept.
    fn gc(&self, new: &Manifest) {
        remove_unnamed(&self.dir, new.files().chain(self.manifest.files()));
    }

    /// Remove every file the current manifest does not name, the previous
    /// generation's too (after an erase: they hold what was erased).
    /// Readers that hold them open keep reading them; a reader opening
    /// them now finds the new manifest.
    pub(super) fn remove_unnamed(&self) {
        remove_unnamed(&self.dir, self.manifest.files());
    }
}

/// Remove the store files in `dir` that none of `named` is (and a
/// manifest half-written by a killed writer). Old configs are kept.
fn remove_unnamed<'a>(dir: &Path, named: impl Iterator<Item = &'a FileRef>) {
    let keep: std::collections::HashSet<&str> = named.map(|f| f.file.as_str()).collect();
    // a manifest half-written by a killed writer (we hold the lock, so
    // no other writer is writing one now)
    if let Ok(rd) = fs::read_dir(dir) {
        for entry in rd.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".MANIFEST.tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    for sub in Kind::per_generation().map(Kind::folder) {
        let Ok(rd) = fs::read_dir(dir.join(sub)) else {
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

/// Files a probe has at most: a lookup reads each one's filter.
const PROBE_FILES: usize = 3;

/// Which probe files (a suffix of the list, oldest first, given their
/// weights: see [`ProbeFile::weight`]) a commit of `changes` changes
/// merges into its new file: as runs are merged, the changes counting as
/// a new run, and fewer when there would be more than [`PROBE_FILES`]. 0:
/// the new file is the whole probe.
fn probe_merge_from(weights: &[u64], changes: usize) -> usize {
    let sizes: Vec<u64> = weights.iter().copied().chain([changes as u64]).collect();
    runs::merge_from(&sizes).min(PROBE_FILES - 1)
}

/// The runs of one kind that a commit adds a run of `rows` records to
/// (none when it replaces them all), and the first of them the new run is
/// merged with (their count when it is merged with none).
fn runs_to_extend(current: &[FileRef], replace: bool, rows: usize) -> (Vec<FileRef>, usize) {
    let refs = if replace { Vec::new() } else { current.to_vec() };
    let sizes: Vec<u64> = refs.iter().map(|r| r.rows).chain([rows as u64]).collect();
    let from = runs::merge_from(&sizes);
    (refs, from)
}

fn read_config_text(path: &Path) -> Result<String> {
    let text = Config::read_text(path)?;
    Config::parse(&text).map_err(|msg| Error::Config(format!("config {}: {msg}", path.display())))?;
    Ok(text)
}
