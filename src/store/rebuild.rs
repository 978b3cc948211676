//! Recompiling the key runs, id runs and snapshot from the ledger:
//! `rebuild`, and the rebuild that `revert` and `erase` end with.

use crate::error::Result;
use crate::event::{Action, Event};
use crate::util::fasthash::FastMap;

use super::commit::Change;
use super::damage::{corrupt, Fix};
use super::files::read_events;
use super::ingest::apply_to_snapshot;
use super::keys::{self, Entry, ScopeName};
use super::snapshot::Snapshot;
use super::Store;

impl Store {
    /// Recompile keys, ids and snapshot from the ledger (the caller holds
    /// the lock). A damaged ledger file stops it with that file named.
    pub fn rebuild(&mut self) -> Result<()> {
        self.rebuild_dropping(&[])
    }

    /// [`Store::rebuild`], leaving out of the id runs these id hashes
    /// (ids an erase replaced), unless an event that counts has one.
    pub(super) fn rebuild_dropping(&mut self, drop_ids: &[u64]) -> Result<()> {
        // pending replies cannot be recompiled: a damaged one is named
        for r in self.manifest.outbox_files() {
            super::files::read_verified(&self.dir, r, Fix::Restore)?;
        }
        // Ids of messages that made no event (help requests) live only in
        // the id runs: keep them when they are still sound.
        let mut ids: Vec<u64> = match self.id_runs() {
            Ok(runs) => super::ids::merge_ids(&runs.iter().collect::<Vec<_>>(), &[]),
            Err(_) => Vec::new(),
        };
        // every event's place (40 bytes each, not the event): the last of
        // each key is found by one sort
        let mut all: Vec<Entry> =
            Vec::with_capacity(self.manifest.ledger.iter().map(|r| r.rows as usize).sum());
        // id hashes of reverted events, and of the events that count
        let mut dropped: Vec<u64> = drop_ids.to_vec();
        let mut last_ids: Vec<u64> = Vec::new();
        let any_reverted = !self.manifest.reverted.is_empty() || !drop_ids.is_empty();
        let mut scopes: FastMap<u64, ScopeName> = FastMap::default();
        let mut ledger = self.manifest.ledger.clone();
        for r in &mut ledger {
            let generation = super::files::ledger_generation(r)
                .ok_or_else(|| corrupt(&self.dir, &r.file, "not a ledger file name", Fix::Restore))?;
            let bytes = super::files::read_verified(&self.dir, r, Fix::Restore)?;
            // its blocks file is derived from it: made again when missing
            // (a store written before them) or damaged
            let sound = r
                .blocks
                .as_deref()
                .is_some_and(|b| super::files::check_file(&self.dir, b, Fix::Rebuild).is_ok());
            if !sound {
                let table = super::blocks::encode(&bytes, 0, super::blocks::BLOCK, None);
                r.blocks = Some(super::blocks::write_blocks(&self.dir, &r.file, &table)?);
            }
            let events = super::files::decode_events(&self.dir, r, bytes, Fix::Restore)?;
            // a reverted file counts for nothing: not its events, nor its
            // ids (the same rows ingested again are new events)
            if self.manifest.is_reverted(generation) {
                dropped.extend(events.iter().map(Event::id_hash));
                continue;
            }
            for (row, e) in events.into_iter().enumerate() {
                ids.push(e.id_hash());
                if any_reverted {
                    last_ids.push(e.id_hash());
                }
                let sh = keys::scope_hash(&e.account, &e.scope);
                scopes.entry(sh).or_insert_with(|| ScopeName {
                    hash: sh,
                    account: e.account.to_string(),
                    scope: e.scope.to_string(),
                });
                let entry = Entry {
                    scope: sh,
                    contact: e.contact,
                    at: e.at,
                    ledger: generation,
                    row: row as u32,
                    opt_out: e.action == Action::OptOut,
                };
                all.push(entry);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        if !dropped.is_empty() {
            // the reverted events' ids, unless an event that counts has one
            // (the same rows ingested again after the revert)
            let counted: std::collections::HashSet<u64> = last_ids.into_iter().collect();
            dropped.retain(|h| !counted.contains(h));
            let dropped: std::collections::HashSet<u64> = dropped.into_iter().collect();
            ids.retain(|h| !dropped.contains(h));
        }
        let keys = self.last_of_each_key(all)?;
        let mut scopes: Vec<ScopeName> = scopes.into_values().collect();
        scopes.sort();
        let mut snapshot = Snapshot::default();
        apply_to_snapshot(&mut snapshot, &scopes, &keys);
        self.manifest.ledger = ledger;
        self.commit(
            None,
            Change {
                keys,
                scopes,
                ids,
                snapshot,
                replace: true,
                outbox: Vec::new(),
            },
        )
    }

    /// The last event of each key among every event's place, in key
    /// order: the latest time, and at the same microsecond the greater
    /// event id (read from the ledger for those ties alone).
    fn last_of_each_key(&self, mut all: Vec<Entry>) -> Result<Vec<Entry>> {
        use rayon::prelude::*;
        all.par_sort_unstable_by_key(|e| (e.scope, e.contact, e.at, e.ledger, e.row));
        let mut keys: Vec<Entry> = Vec::with_capacity(all.len());
        // (position in keys, the events tied at the key's last time)
        let mut ties: Vec<(usize, Vec<Entry>)> = Vec::new();
        for group in all.chunk_by(|a, b| a.key() == b.key()) {
            let Some(last) = group.last() else { continue };
            let tied = group.iter().rev().take_while(|e| e.at == last.at).count();
            if tied > 1 {
                ties.push((keys.len(), group[group.len() - tied..].to_vec()));
            }
            keys.push(*last);
        }
        drop(all);
        if ties.is_empty() {
            return Ok(keys);
        }
        // the ids of the tied events, file by file
        let mut wanted: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for (_, tied) in &ties {
            for e in tied {
                wanted.entry(e.ledger).or_default().push(e.row);
            }
        }
        let mut id_of: FastMap<(u32, u32), crate::event::EventId> = FastMap::default();
        for (ledger, rows) in wanted {
            let r = self.ledger_file(ledger)?;
            let events = read_events(&self.dir, r, Fix::Restore)?;
            for row in rows {
                let e = events.get(row as usize).ok_or_else(|| {
                    corrupt(
                        &self.dir,
                        &r.file,
                        "it has fewer rows than were read",
                        Fix::Restore,
                    )
                })?;
                id_of.insert((ledger, row), e.event_id.clone());
            }
        }
        for (at, tied) in ties {
            // the greatest id wins; of equal ids, the first in the ledger
            let id = |e: &Entry| id_of.get(&(e.ledger, e.row));
            let mut best = tied[0];
            for e in &tied[1..] {
                if id(e) > id(&best) {
                    best = *e;
                }
            }
            keys[at] = best;
        }
        Ok(keys)
    }
}
