//! Changes to the compiled keys: an ingest works out what a batch of
//! events changes (new ids, the winning event per key, the snapshot after
//! it) and commits it; a rebuild recompiles everything from the ledger.

use crate::error::{Error, Result};
use crate::event::Event;
use crate::util::fasthash::FastMap;

use super::commit::{Change, NewLedger};
use super::damage::{corrupt, Fix};
use super::files::read_events;
use super::ids::IdSeeker;
use super::keys::{self, Entry, ScopeName};
use super::rows::NewRows;
use super::snapshot::{ScopeBitmap, Snapshot};
use super::Store;

/// Keys (or id hashes) a thread looks up in the runs as one forward walk.
const VERDICT_PIECE: usize = 1 << 14;

/// How a batch's last event of a key compares with the store's.
#[derive(Clone, Copy)]
enum Verdict {
    /// Later, or the key is new: it becomes the key's last event.
    Wins,
    /// Earlier: the store's stays.
    Loses,
    /// The same microsecond as the store's event: the event ids decide
    /// (rare; the store's event is looked up again then, so that a verdict
    /// is a byte).
    Tie,
}

/// An ingest worked out but not yet written.
pub struct Prepared {
    /// What it will change.
    pub committed: Committed,
    /// Per other id: new to the store?
    pub other_new: Vec<bool>,
    change: Option<Change>,
    /// The ledger file of the new events, when encoded already (the
    /// events were let go).
    ledger: Option<NewLedger>,
    /// New events (kept in `committed` unless the caller only counts).
    new: usize,
    /// The store's generation it was prepared against.
    against: u64,
}

/// What an ingest changed.
#[derive(Debug, Default)]
pub struct Committed {
    /// Events that were not in the store before, in input order.
    pub new_events: Vec<Event>,
    /// Events skipped because the store already had their id.
    pub already_known: usize,
    /// Per input event, in input order: its index in `new_events` when it
    /// is new to the store and now the last event of its key (what a
    /// confirmation may be sent for).
    pub fresh: Vec<Option<u32>>,
}

impl Store {
    /// Add events (the caller holds the lock): skip ids already present,
    /// append the rest as one ledger file, update state and snapshot.
    pub fn ingest(&mut self, events: Vec<Event>) -> Result<Committed> {
        self.ingest_with(events, &[]).map(|(c, _)| c)
    }

    /// [`Store::ingest`], also recording `other_ids` (messages that made no
    /// event, such as help requests) so that they are not answered twice.
    /// Returns, per other id, whether it was new.
    pub fn ingest_with(
        &mut self,
        events: Vec<Event>,
        other_ids: &[String],
    ) -> Result<(Committed, Vec<bool>)> {
        let prepared = self.prepare(events, other_ids, true)?;
        self.commit_ingest(prepared)
    }

    /// Work out what an ingest would change, without writing anything:
    /// outputs that depend on it (the outbox) can then be written before
    /// the store commits.
    pub fn prepare_ingest(&self, events: Vec<Event>, other_ids: &[String]) -> Result<Prepared> {
        self.prepare(events, other_ids, true)
    }

    /// [`Store::prepare_ingest`]; without `keep_events`, the new rows are
    /// only counted, and their ledger file is encoded here, beside the
    /// work on the keys (the rows are let go after it, never made into
    /// events).
    fn prepare<R: NewRows>(&self, mut rows: R, other_ids: &[String], keep_events: bool) -> Result<Prepared> {
        use rayon::prelude::*;
        let ids = self.id_runs()?;
        // an erased number's new events are kept under its hash too
        let erasures = self.erasures()?;
        if !erasures.is_empty() {
            rows.erase(&erasures);
        }
        let inputs = rows.len();
        // An id is new when no earlier input and nothing in the store has
        // its hash. Sorting (hash, position) puts the first of each hash
        // first; event ids and other ids share one space.
        let mut by_hash: Vec<(u64, u32)> = (0..inputs)
            .into_par_iter()
            .map(|i| rows.id_hash(i))
            .chain(
                other_ids
                    .par_iter()
                    .map(|id| xxhash_rust::xxh3::xxh3_64(id.as_bytes())),
            )
            .enumerate()
            .map(|(i, h)| (h, i as u32))
            .collect();
        by_hash.par_sort_unstable();
        let mut firsts = by_hash;
        firsts.dedup_by_key(|x| x.0);
        // in hash order: each thread's share walks the id runs forward
        let fresh_hashes: Vec<bool> = firsts
            .par_chunks(VERDICT_PIECE)
            .flat_map_iter(|piece| {
                let mut seekers: Vec<IdSeeker<'_>> =
                    ids.iter().map(|r| IdSeeker::new(r, piece[0].0)).collect();
                piece
                    .iter()
                    .map(move |&(h, _)| !seekers.iter_mut().any(|s| s.contains(h)))
            })
            .collect();
        let mut new = vec![false; inputs + other_ids.len()];
        let mut hashes = Vec::with_capacity(firsts.len());
        for (&(h, i), _) in firsts.iter().zip(&fresh_hashes).filter(|(_, &f)| f) {
            new[i as usize] = true;
            hashes.push(h);
        }
        drop((firsts, fresh_hashes, ids));
        crate::util::trace::mark("ingest: ids hashed and looked up");
        let other_new = new[inputs..inputs + other_ids.len()].to_vec();
        // each new event's place in the input (what `fresh` is told)
        let new_at: Vec<u32> = match keep_events {
            true => (0..inputs as u32).filter(|&i| new[i as usize]).collect(),
            false => Vec::new(),
        };
        rows.retain(&new[..inputs]);
        drop(new);
        let mut out = Committed {
            already_known: inputs - rows.len(),
            // a caller that lets the events go asks nothing of them
            fresh: if keep_events {
                vec![None; inputs]
            } else {
                Vec::new()
            },
            new_events: Vec::new(),
        };
        if hashes.is_empty() {
            if keep_events {
                out.new_events = rows.into_events();
            }
            return Ok(Prepared {
                new: out.new_events.len(),
                against: self.manifest.generation,
                committed: out,
                other_new,
                change: None,
                ledger: None,
            });
        }
        let new = rows.len();
        // the new events' ledger file is encoded beside the work below (a
        // thread of its own, its columns on the pool): that work has long
        // stretches on one core
        let (made, ledger) = std::thread::scope(|s| {
            let encoding = (!keep_events).then(|| s.spawn(|| NewLedger::encode(&rows)));
            let made = self.changed_keys(&rows).and_then(|(keys, scopes)| {
                let mut snapshot = self.snapshot()?;
                crate::util::trace::mark("ingest: snapshot loaded");
                apply_to_snapshot(&mut snapshot, &scopes, &keys);
                crate::util::trace::mark("ingest: snapshot updated");
                Ok((keys, scopes, snapshot))
            });
            let ledger = match encoding {
                Some(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(Error::Internal("the ledger encoder stopped".into()))),
                None => Ok(None),
            };
            (made, ledger)
        });
        let (keys, scopes, snapshot) = made?;
        let ledger = ledger?;
        crate::util::trace::mark("ingest: ledger encoded");
        if keep_events {
            for k in &keys {
                out.fresh[new_at[k.row as usize] as usize] = Some(k.row);
            }
            out.new_events = rows.into_events();
        }
        Ok(Prepared {
            committed: out,
            other_new,
            ledger,
            new,
            against: self.manifest.generation,
            change: Some(Change {
                keys,
                scopes,
                ids: hashes,
                snapshot,
                replace: false,
                outbox: Vec::new(),
            }),
        })
    }

    /// The keys new rows change, in key order, with the names of their
    /// scopes: each key's last row in the batch, where it is later than
    /// the key's last event in the store (ties settled by the event ids).
    /// Each key's `row` is the row's position in `rows`.
    fn changed_keys<R: NewRows>(&self, rows: &R) -> Result<(Vec<Entry>, Vec<ScopeName>)> {
        use rayon::prelude::*;
        // (scope hash, contact, event) sorted: each key's events
        // together, keys in the order of the key runs
        let mut order = rows.keyed();
        order.par_sort_unstable();
        // the winner within this batch, per key, and the scopes named; the
        // winners take the place of the sorted list, not a second one
        let mut scopes: Vec<ScopeName> = Vec::new();
        let mut kept = 0;
        let mut from = 0;
        while from < order.len() {
            let (sh, contact, first) = order[from];
            let mut best = first as usize;
            let mut to = from + 1;
            while to < order.len() && order[to].0 == sh && order[to].1 == contact {
                let b = order[to].2 as usize;
                if rows.order(b, best).is_gt() {
                    best = b;
                }
                to += 1;
            }
            if scopes.last().is_none_or(|s| s.hash != sh) {
                let (account, scope) = rows.names(best);
                scopes.push(ScopeName {
                    hash: sh,
                    account: account.to_string(),
                    scope: scope.to_string(),
                });
            }
            order[kept] = (sh, contact, best as u32);
            kept += 1;
            from = to;
        }
        order.truncate(kept);
        order.shrink_to_fit();
        let winners = order;
        // the winners' times, gathered in one pass: the rows are read out
        // of order, and a loop of nothing but these reads keeps many of
        // them in flight (read inside the lookups below, each waited for
        // its cache miss alone)
        let ats: Vec<i64> = winners.par_iter().map(|&(_, _, i)| rows.at(i as usize)).collect();
        crate::util::trace::mark("ingest: batch sorted, winners chosen");
        // does it beat the key's last event in the store?
        let runs = self.key_runs()?;
        // the winners are in key order: each thread's share walks the runs
        // forward instead of searching them from the top for every key
        let verdicts: Vec<Verdict> = winners
            .par_chunks(VERDICT_PIECE)
            .zip(ats.par_chunks(VERDICT_PIECE))
            .flat_map_iter(|(piece, ats)| {
                let first = (piece[0].0, piece[0].1);
                let mut seekers: Vec<keys::Seeker<'_>> =
                    runs.iter().map(|r| keys::Seeker::new(r, first)).collect();
                piece.iter().zip(ats).map(move |(&(sh, contact, _), &at)| {
                    match seekers.iter_mut().find_map(|s| s.seek((sh, contact))) {
                        None => Verdict::Wins,
                        Some(cur) if cur.at != at => {
                            if at > cur.at {
                                Verdict::Wins
                            } else {
                                Verdict::Loses
                            }
                        }
                        Some(_) => Verdict::Tie,
                    }
                })
            })
            .collect();
        crate::util::trace::mark("ingest: key runs opened, winners looked up");
        let generation = u32::try_from(self.manifest.generation + 1)
            .map_err(|_| Error::Corrupt("store generation out of range".into()))?;
        // a tie (the same microsecond as the store's event) is settled by
        // the event ids (rare: the ledger file is read)
        let mut verdicts = verdicts;
        let mut tie_files: FastMap<u32, Vec<Event>> = FastMap::default();
        for (&(sh, contact, i), verdict) in winners.iter().zip(verdicts.iter_mut()) {
            if !matches!(verdict, Verdict::Tie) {
                continue;
            }
            let key = (sh, contact);
            let (ledger, row) = runs
                .iter()
                .find_map(|r| keys::Seeker::new(r, key).seek(key))
                .map(|cur| (cur.ledger, cur.row))
                .ok_or_else(|| Error::Internal("a tied key is no longer in the key runs".into()))?;
            if let std::collections::hash_map::Entry::Vacant(v) = tie_files.entry(ledger) {
                let r = self.ledger_file(ledger)?;
                v.insert(read_events(&self.dir, r, Fix::Restore)?);
            }
            let cur_id = tie_files
                .get(&ledger)
                .and_then(|f| f.get(row as usize))
                .map(|c| c.event_id.as_str())
                .ok_or_else(|| corrupt(&self.dir, "index", "it disagrees with the ledger", Fix::Rebuild))?;
            *verdict = if rows.event_id(i as usize).as_str() > cur_id {
                Verdict::Wins
            } else {
                Verdict::Loses
            };
        }
        drop((tie_files, runs));
        // the winning keys, in key order, made a piece per thread into
        // its place in one list
        let wins_per_piece: Vec<usize> = verdicts
            .par_chunks(VERDICT_PIECE)
            .map(|p| p.iter().filter(|v| matches!(v, Verdict::Wins)).count())
            .collect();
        let blank = Entry {
            scope: 0,
            contact: 0,
            at: 0,
            ledger: 0,
            row: 0,
            opt_out: false,
        };
        let mut keys = vec![blank; wins_per_piece.iter().sum()];
        let mut places = Vec::with_capacity(wins_per_piece.len());
        let mut rest = &mut keys[..];
        for &n in &wins_per_piece {
            let (place, after) = rest.split_at_mut(n);
            places.push(place);
            rest = after;
        }
        winners
            .par_chunks(VERDICT_PIECE)
            .zip(ats.par_chunks(VERDICT_PIECE))
            .zip(verdicts.par_chunks(VERDICT_PIECE))
            .zip(places)
            .for_each(|(((piece, ats), verdicts), place)| {
                let won = piece
                    .iter()
                    .zip(ats)
                    .zip(verdicts)
                    .filter(|(_, v)| matches!(v, Verdict::Wins));
                for (slot, ((&(sh, contact, i), &at), _)) in place.iter_mut().zip(won) {
                    *slot = Entry {
                        scope: sh,
                        contact,
                        at,
                        ledger: generation,
                        row: i,
                        opt_out: rows.opt_out(i as usize),
                    };
                }
            });
        drop((winners, ats, verdicts));
        crate::util::trace::mark("ingest: the winners' keys made");
        Ok((keys, scopes))
    }

    /// Keep these replies (outbox rows) in the store with the ingest's
    /// events, in the same commit. Replies answer new events or new help
    /// requests, so an ingest that has replies always has a change.
    pub fn keep_replies(p: &mut Prepared, batches: Vec<arrow::array::RecordBatch>) -> Result<()> {
        match &mut p.change {
            Some(c) => {
                c.outbox = batches;
                Ok(())
            }
            None if batches.iter().all(|b| b.num_rows() == 0) => Ok(()),
            None => Err(Error::Internal(
                "replies to keep for an ingest that changes nothing".into(),
            )),
        }
    }

    /// Commit a prepared ingest (the caller holds the lock).
    pub fn commit_ingest(&mut self, p: Prepared) -> Result<(Committed, Vec<bool>)> {
        if let Some(change) = p.change {
            // its keys and snapshot are the store's as it was then
            if p.against != self.manifest.generation {
                return Err(Error::Internal(
                    "the store changed between preparing an ingest and committing it".into(),
                ));
            }
            let ledger = match p.ledger {
                Some(encoded) => Some(encoded),
                None => NewLedger::encode(&p.committed.new_events)?,
            };
            self.commit(ledger, change)?;
        }
        Ok((p.committed, p.other_new))
    }

    /// [`Store::ingest`] for a caller that needs only the counts: the
    /// events are let go once the ledger file is encoded (see
    /// [`Store::prepare`]). Returns (new events, events already in the
    /// store).
    pub(crate) fn ingest_counting(&mut self, rows: impl NewRows) -> Result<(usize, usize)> {
        let p = self.prepare(rows, &[], false)?;
        let counts = (p.new, p.committed.already_known);
        self.commit_ingest(p)?;
        Ok(counts)
    }
}

/// Apply changed keys to a snapshot: an opt-out adds the contact to its
/// scope's bitmap, an opt-in takes it out; empty bitmaps are dropped.
pub(super) fn apply_to_snapshot(snap: &mut Snapshot, scopes: &[ScopeName], keys: &[Entry]) {
    let mut at: FastMap<u64, usize> = snap
        .scopes
        .iter()
        .enumerate()
        .map(|(i, s)| (keys::scope_hash(&s.account, &s.scope), i))
        .collect();
    let names: FastMap<u64, &ScopeName> = scopes.iter().map(|s| (s.hash, s)).collect();
    // a scope's keys are together and each key is there once: its opt-outs
    // are one union and its opt-ins one difference, not an insert or a
    // remove per contact
    for group in keys.chunk_by(|a, b| a.scope == b.scope) {
        let sh = group[0].scope;
        let any_out = group.iter().any(|k| k.opt_out);
        let slot = match at.get(&sh) {
            Some(&i) => Some(i),
            None if any_out => names.get(&sh).map(|n| {
                snap.scopes.push(ScopeBitmap {
                    account: n.account.clone(),
                    scope: n.scope.clone(),
                    bitmap: roaring::RoaringTreemap::new(),
                });
                at.insert(sh, snap.scopes.len() - 1);
                snap.scopes.len() - 1
            }),
            None => None,
        };
        if let Some(i) = slot {
            let b = &mut snap.scopes[i].bitmap;
            *b |= contacts_of(group, true);
            *b -= contacts_of(group, false);
        }
    }
    snap.scopes.retain(|s| !s.bitmap.is_empty());
    snap.scopes
        .sort_by(|a, b| (&a.account, &a.scope).cmp(&(&b.account, &b.scope)));
}

/// The contacts of keys that opt out (or in), as a bitmap.
fn contacts_of(keys: &[Entry], opt_out: bool) -> roaring::RoaringTreemap {
    let contacts = || keys.iter().filter(|k| k.opt_out == opt_out).map(|k| k.contact);
    // in key order they are ascending, which builds the bitmap fastest
    roaring::RoaringTreemap::from_sorted_iter(contacts()).unwrap_or_else(|_| contacts().collect())
}

/// What `optscrub revert` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevertSummary {
    /// The ledger file's generation.
    pub ledger: u32,
    /// The events taken back.
    pub events: u64,
    /// It had been taken back before: nothing changed.
    pub already_reverted: bool,
    /// `revert`, for the summary file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Store {
    /// Take back the ledger file of `generation` (the caller holds the
    /// lock): a manual import or webform file mapped wrongly. Its events
    /// stay in the ledger and stop counting; every key is recompiled from
    /// the rest, so an event of another file (a later real opt-out, say)
    /// decides as if the file had never been ingested. Keyword replies and
    /// provider signals are refused: only the contact takes those back.
    pub fn revert(&mut self, generation: u32) -> Result<RevertSummary> {
        use crate::event::Source;
        let Some(r) = self
            .manifest
            .ledger
            .iter()
            .find(|r| super::files::ledger_generation(r) == Some(generation))
            .cloned()
        else {
            return Err(Error::Usage(format!(
                "the store has no ledger file g{generation}; `optscrub revert --store {} --list` shows them",
                self.dir.display()
            )));
        };
        let mut out = RevertSummary {
            ledger: generation,
            events: r.rows,
            ..Default::default()
        };
        if self.manifest.is_reverted(generation) {
            out.already_reverted = true;
            return Ok(out);
        }
        let events = read_events(&self.dir, &r, Fix::Restore)?;
        let others: Vec<&str> = {
            let mut v: Vec<&str> = events
                .iter()
                .filter(|e| !matches!(e.source, Source::Import | Source::Webform))
                .map(|e| e.source.as_str())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if !others.is_empty() {
            return Err(Error::Usage(format!(
                "ledger file g{generation} holds {} events: only imports and webform files can be reverted (a contact's own reply or a provider's signal is taken back only by the contact)",
                others.join(" and ")
            )));
        }
        out.events = events.len() as u64;
        let before = self.manifest.clone();
        self.manifest.reverted.push(super::manifest::Reverted {
            ledger: generation,
            at: crate::ingest::now_micros(),
            events: out.events,
        });
        if let Err(e) = self.rebuild() {
            self.manifest = before;
            return Err(e);
        }
        Ok(out)
    }

    /// The events of reverted ledger files for one contact, each with when
    /// its file was taken back; reads those files whole.
    pub fn retracted(&self, contact: u64) -> Result<Vec<(Event, i64)>> {
        let mut out = Vec::new();
        for rv in &self.manifest.reverted {
            let r = self.ledger_file(rv.ledger)?;
            for e in read_events(&self.dir, r, Fix::Restore)? {
                if e.contact == contact {
                    out.push((e, rv.at));
                }
            }
        }
        Ok(out)
    }

    /// The ledger files, oldest first: generation, events, their sources,
    /// the input files they came from, and whether taken back.
    pub fn ledger_listing(&self) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for r in &self.manifest.ledger {
            let generation = super::files::ledger_generation(r)
                .ok_or_else(|| corrupt(&self.dir, &r.file, "not a ledger file name", Fix::Restore))?;
            let events = read_events(&self.dir, r, Fix::Restore)?;
            let mut sources: Vec<&str> = events.iter().map(|e| e.source.as_str()).collect();
            sources.sort_unstable();
            sources.dedup();
            let mut files: Vec<&str> = events.iter().filter_map(|e| e.via.as_deref()).collect();
            files.sort_unstable();
            files.dedup();
            let (first, last) = (
                events.iter().map(|e| e.at).min(),
                events.iter().map(|e| e.at).max(),
            );
            out.push(serde_json::json!({
                "ledger": generation,
                "events": events.len(),
                "sources": sources,
                "via": files,
                "first_event_at": first.map(crate::scrub::check::time),
                "last_event_at": last.map(crate::scrub::check::time),
                "reverted": self.manifest.reverted.iter().find(|x| x.ledger == generation)
                    .map(|x| crate::scrub::check::time(x.at)),
            }));
        }
        Ok(out)
    }
}
