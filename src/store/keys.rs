//! Key runs and the merge of runs: the state (see `store::state`) on disk,
//! as sorted runs of fixed-width records, one run per ingest, merged
//! size-tiered so that there are few of them (SPEC §8: "ingestion is
//! incremental and never recompiles the whole history").
//!
//! - A **key run** (`index/<gen>.idx`: the folder keeps the name the first
//!   stores gave it, so that they still open) holds, for each (account, scope,
//!   contact) key whose last event an ingest changed, where that event lies
//!   in the ledger, its time and its action. For a key, the newest run that
//!   has it is right: a run only holds events that beat the key's last.
//!   Layout: `OPTIDX01`, u32 header length, a JSON header (the scopes by
//!   hash), then 32-byte records sorted by (scope hash, contact), then a
//!   CRC-32 of all that precedes.
//! - An **id run** (`ids/<gen>.bin`, see `store::ids`) is a sorted list
//!   of event-id hashes.
//!
//! Both are read through memmap2 and searched in place: an ingest of ten
//! thousand events into a store of ten million touches a few pages per
//! event, not the whole history.

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::damage::Fault;

const MAGIC: &[u8; 8] = b"OPTIDX01";
const RECORD: usize = 32;
const OPT_OUT_BIT: u32 = 1 << 31;
/// Records per thread's piece when a run's order is checked.
const ORDER_CHECK_PIECE: usize = 1 << 16;

/// A stable 64-bit name of an (account, scope) pair.
pub(crate) fn scope_hash(account: &str, scope: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(account.as_bytes());
    h.update(&[0]);
    h.update(scope.as_bytes());
    h.digest()
}

/// One key's last event: where it is and what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// [`scope_hash`] of its (account, scope).
    pub scope: u64,
    /// E.164 digits of the contact.
    pub contact: u64,
    /// Event time (µs, UTC).
    pub at: i64,
    /// Generation number of the ledger file that holds the event.
    pub ledger: u32,
    /// Row of the event in that file.
    pub row: u32,
    /// Opt-out (true) or opt-in.
    pub opt_out: bool,
}

impl Entry {
    /// The sort key.
    pub(crate) fn key(&self) -> (u64, u64) {
        (self.scope, self.contact)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.scope.to_le_bytes());
        out.extend_from_slice(&self.contact.to_le_bytes());
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.ledger.to_le_bytes());
        let row = self.row | if self.opt_out { OPT_OUT_BIT } else { 0 };
        out.extend_from_slice(&row.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Entry {
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let u32_at = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(a)
        };
        let row = u32_at(28);
        Entry {
            scope: u64_at(0),
            contact: u64_at(8),
            at: u64_at(16) as i64,
            ledger: u32_at(24),
            row: row & !OPT_OUT_BIT,
            opt_out: row & OPT_OUT_BIT != 0,
        }
    }
}

/// The (account, scope) behind a scope hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopeName {
    /// [`scope_hash`] of the pair.
    pub hash: u64,
    /// The account.
    pub account: String,
    /// `account` or a sender id.
    pub scope: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    scopes: Vec<ScopeName>,
}

/// Bytes of a store file, mapped or owned.
pub(super) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Map a store file and check its size and CRC-32 against the manifest's.
pub(super) fn map_verified(path: &Path, bytes: u64, crc: u32) -> Result<Bytes, Fault> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len != bytes {
        return Err("wrong size".into());
    }
    let data = if len == 0 {
        Bytes::Owned(Vec::new())
    } else {
        let map = super::files::map_file(&file, false)?;
        Bytes::Mapped(map)
    };
    if super::files::crc32(&data) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(data)
}

/// One key run, mapped and verified.
pub(crate) struct KeyRun {
    data: Bytes,
    start: usize,
    len: usize,
    /// The scopes its records name.
    pub scopes: Vec<ScopeName>,
}

impl KeyRun {
    /// Open a key run, checking it against the manifest's size and CRC.
    pub(crate) fn open(path: &Path, bytes: u64, crc: u32) -> Result<KeyRun, Fault> {
        // the manifest's CRC covers the whole file, its own CRC included
        KeyRun::parse(map_verified(path, bytes, crc)?, true)
    }

    /// Decode a key run held in memory (checked with its own CRC only).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<KeyRun, Fault> {
        KeyRun::parse(Bytes::Owned(bytes), false)
    }

    /// A run's records; its own CRC checked unless the bytes were
    /// `verified` whole already.
    fn parse(data: Bytes, verified: bool) -> Result<KeyRun, Fault> {
        if data.len() < 16 || &data[..8] != MAGIC {
            return Err("not a key run".into());
        }
        let (body, tail) = data.split_at(data.len() - 4);
        if !verified && crc32fast::hash(body) != u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) {
            return Err("checksum mismatch".into());
        }
        let hlen = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
        let header = body.get(12..12 + hlen).ok_or("header cut short")?;
        let header: Header = serde_json::from_slice(header).map_err(|_| "unreadable header")?;
        let start = 12 + hlen;
        let records = body.len() - start;
        if !records.is_multiple_of(RECORD) {
            return Err("records cut short".into());
        }
        let run = KeyRun {
            start,
            len: records / RECORD,
            scopes: header.scopes,
            data,
        };
        let ordered = (1..run.len)
            .into_par_iter()
            .with_min_len(ORDER_CHECK_PIECE)
            .all(|i| run.key(i - 1) < run.key(i));
        if !ordered {
            return Err("records out of order".into());
        }
        Ok(run)
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key of record `i` (its first 16 bytes only).
    fn key(&self, i: usize) -> (u64, u64) {
        let at = self.start + i * RECORD;
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&self.data[at + o..at + o + 8]);
            u64::from_le_bytes(a)
        };
        (u64_at(0), u64_at(8))
    }

    /// Record `i`.
    pub(crate) fn entry(&self, i: usize) -> Entry {
        let at = self.start + i * RECORD;
        Entry::decode(&self.data[at..at + RECORD])
    }

    /// The record of a key, if this run has it.
    pub(crate) fn get(&self, scope: u64, contact: u64) -> Option<Entry> {
        let (mut lo, mut hi) = (0usize, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = self.entry(mid);
            match e.key().cmp(&(scope, contact)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(e),
            }
        }
        None
    }

    /// The index of the first record whose key is not below `key`.
    pub(crate) fn lower_bound(&self, key: (u64, u64)) -> usize {
        let (mut lo, mut hi) = (0usize, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).key() < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Every record, in key order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.len).map(|i| self.entry(i))
    }
}

/// Looks up keys asked in ascending order in one run: each search starts
/// where the last one ended and gallops forward, so a sorted batch reads
/// the run front to back instead of binary-searching it from the top for
/// every key (a page fault per step once the run outgrows the cache).
pub(crate) struct Seeker<'a> {
    run: &'a KeyRun,
    at: usize,
}

impl<'a> Seeker<'a> {
    /// For keys from `first` on.
    pub(crate) fn new(run: &'a KeyRun, first: (u64, u64)) -> Seeker<'a> {
        Seeker {
            run,
            at: run.lower_bound(first),
        }
    }

    /// The record of `key`, if the run has it; `key` must not be below
    /// the key asked before.
    pub(crate) fn seek(&mut self, key: (u64, u64)) -> Option<Entry> {
        let run = self.run;
        let at = gallop(self.at, run.len, |i| run.key(i) < key);
        self.at = at;
        (at < run.len && run.key(at) == key).then(|| run.entry(at))
    }
}

/// The first index in `from..len` at which `below` is false (`len` when
/// there is none), for a `below` that is true up to some index and false
/// after it: it steps 1, 2, 4, … from `from`, then halves the last step,
/// so a search costs the log of how far it goes, not of `len`.
pub(crate) fn gallop(from: usize, len: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut step) = (from, 1usize);
    let mut hi = lo;
    while hi < len && below(hi) {
        lo = hi + 1;
        hi = lo + step - 1;
        step *= 2;
    }
    let mut hi = hi.min(len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Where a key run's records start (after its magic, header length and
/// header); its blocks file covers them from there.
pub(crate) fn records_start(run: &[u8]) -> usize {
    let hlen = run
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    (12 + hlen as usize).min(run.len())
}

/// The first key of a block of a key run's records (a block holding only
/// the run's trailing CRC sorts after every key).
pub(crate) fn fence(block: &[u8]) -> (u64, u64) {
    match block.get(..RECORD) {
        Some(r) => Entry::decode(r).key(),
        None => (u64::MAX, u64::MAX),
    }
}

/// A key run opened for a few lookups (`check`): its header and the
/// blocks a lookup reads are verified, not the whole run.
pub(crate) struct KeyLookup {
    run: super::blocks::Checked,
    len: usize,
    /// The scopes its records name.
    pub scopes: Vec<ScopeName>,
}

impl KeyLookup {
    /// From a key run mapped with its blocks.
    pub(crate) fn new(run: super::blocks::Checked) -> Result<KeyLookup, Fault> {
        let head = run.head()?;
        if head.len() < 12 || &head[..8] != MAGIC {
            return Err("not a key run".into());
        }
        let header: Header = serde_json::from_slice(&head[12..]).map_err(|_| "unreadable header")?;
        let records = run.len().checked_sub(head.len() + 4).ok_or("records cut short")?;
        if !records.is_multiple_of(RECORD) || !run.blocks.size.is_multiple_of(RECORD) {
            return Err("records cut short".into());
        }
        Ok(KeyLookup {
            len: records / RECORD,
            scopes: header.scopes,
            run,
        })
    }

    /// The record of a key, if this run has it.
    pub(crate) fn get(&self, scope: u64, contact: u64) -> Result<Option<Entry>, Fault> {
        let key = (scope, contact);
        let blocks = &self.run.blocks;
        let b = blocks.fences.partition_point(|f| *f <= key);
        let Some(b) = b.checked_sub(1) else {
            return Ok(None);
        };
        let end = blocks.start + self.len * RECORD;
        let from = blocks.start + b * blocks.size;
        if from >= end {
            return Ok(None);
        }
        let bytes = self.run.range(from..(from + blocks.size).min(end))?;
        let records: Vec<&[u8]> = bytes.chunks_exact(RECORD).collect();
        Ok(records
            .binary_search_by(|r| Entry::decode(r).key().cmp(&key))
            .ok()
            .map(|i| Entry::decode(records[i])))
    }
}

/// Encode a key run from records sorted by key, each key once.
pub(crate) fn encode_keys(scopes: &[ScopeName], entries: &[Entry]) -> Vec<u8> {
    let header = serde_json::to_vec(&Header {
        scopes: scopes.to_vec(),
    })
    .unwrap_or_default();
    let mut out = Vec::with_capacity(16 + header.len() + entries.len() * RECORD);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for e in entries {
        e.encode(&mut out);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The records of key runs (newest first) in key order, each key once:
/// for a key in several runs, the newest run's record. Streams: it holds
/// nothing but a place in each run.
pub(crate) fn merged_keys<'a>(newest_first: &'a [KeyRun]) -> impl Iterator<Item = Entry> + 'a {
    merged_range(newest_first, (0, 0)..=(u64::MAX, u64::MAX))
}

/// [`merged_keys`] of the keys in a range only (each run binary-searched
/// for its start): one scope's keys are `(hash, 0)..=(hash, u64::MAX)`.
pub(crate) fn merged_range<'a>(
    newest_first: &'a [KeyRun],
    keys: std::ops::RangeInclusive<(u64, u64)>,
) -> impl Iterator<Item = Entry> + 'a {
    let end = *keys.end();
    // each run's next record, decoded once; None when the run is done
    let head =
        move |run: &KeyRun, at: usize| (at < run.len()).then(|| run.entry(at)).filter(|e| e.key() <= end);
    let mut at: Vec<usize> = newest_first
        .iter()
        .map(|r| r.lower_bound(*keys.start()))
        .collect();
    let mut heads: Vec<Option<Entry>> = newest_first.iter().zip(&at).map(|(r, &i)| head(r, i)).collect();
    // the run whose records come next, up to (not including) the smallest
    // head of the others: within that stretch no other run is looked at
    let mut stretch: Option<(usize, (u64, u64))> = None;
    std::iter::from_fn(move || {
        if let Some((r, limit)) = stretch {
            if let Some(e) = heads[r].filter(|e| e.key() < limit) {
                at[r] += 1;
                heads[r] = head(&newest_first[r], at[r]);
                return Some(e);
            }
        }
        // the smallest head; on a tie the newer run (earlier) wins
        let (r, best) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|e| (i, e)))
            .fold(None, |b: Option<(usize, Entry)>, (i, e)| match b {
                Some(b) if b.1.key() <= e.key() => Some(b),
                _ => Some((i, e)),
            })?;
        let mut limit = (u64::MAX, u64::MAX);
        for ((run, i), h) in newest_first.iter().zip(&mut at).zip(&mut heads) {
            if h.is_some_and(|e| e.key() == best.key()) {
                *i += 1;
                *h = head(run, *i);
            }
        }
        for (i, h) in heads.iter().enumerate() {
            if let Some(e) = h.filter(|_| i != r) {
                limit = limit.min(e.key());
            }
        }
        stretch = Some((r, limit));
        Some(best)
    })
}

/// A key run written as a stream.
pub(crate) struct WrittenRun {
    /// Bytes of the run.
    pub bytes: u64,
    /// Their CRC-32.
    pub crc32: u32,
    /// Records.
    pub rows: u64,
    /// Its blocks file (a block is 2048 records).
    pub blocks: Vec<u8>,
}

/// Write a key run from records sorted by key, each key once, as
/// [`encode_keys`] lays it out, with its blocks file made on the way:
/// memory is one block, whatever the number of records.
pub(crate) fn write_keys<W: std::io::Write>(
    out: W,
    scopes: &[ScopeName],
    entries: impl Iterator<Item = Entry>,
    block: usize,
) -> std::io::Result<WrittenRun> {
    use std::io::Write;
    let header = serde_json::to_vec(&Header {
        scopes: scopes.to_vec(),
    })
    .map_err(std::io::Error::other)?;
    let mut head = Vec::with_capacity(12 + header.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&(header.len() as u32).to_le_bytes());
    head.extend_from_slice(&header);
    let mut out = std::io::BufWriter::with_capacity(super::files::STREAM_BUFFER, out);
    out.write_all(&head)?;
    let mut file_crc = crc32fast::Hasher::new();
    file_crc.update(&head);
    let mut table = super::blocks::Table::new(block, head.len(), crc32fast::hash(&head), true);
    let mut buf: Vec<u8> = Vec::with_capacity(block + 4);
    let mut rows = 0u64;
    let mut bytes = head.len() as u64;
    for e in entries {
        e.encode(&mut buf);
        rows += 1;
        if buf.len() >= block {
            out.write_all(&buf)?;
            file_crc.update(&buf);
            table.push(crc32fast::hash(&buf), Some(fence(&buf)));
            bytes += buf.len() as u64;
            buf.clear();
        }
    }
    // the last block: the records left and the run's CRC
    file_crc.update(&buf);
    let crc = file_crc.clone().finalize();
    buf.extend_from_slice(&crc.to_le_bytes());
    file_crc.update(&crc.to_le_bytes());
    out.write_all(&buf)?;
    table.push(crc32fast::hash(&buf), Some(fence(&buf)));
    bytes += buf.len() as u64;
    out.flush()?;
    Ok(WrittenRun {
        bytes,
        crc32: file_crc.finalize(),
        rows,
        blocks: table.finish(),
    })
}

/// Merge key runs, newest first: for a key in several, the newest wins
/// (in memory: the model the streamed [`merged_keys`] is tested against).
#[cfg(test)]
fn merge_keys(newest_first: &[&KeyRun]) -> (Vec<ScopeName>, Vec<Entry>) {
    let mut scopes: Vec<ScopeName> = newest_first
        .iter()
        .flat_map(|r| r.scopes.iter().cloned())
        .collect();
    scopes.sort();
    scopes.dedup();
    let mut all: Vec<(u64, u64, usize, Entry)> =
        Vec::with_capacity(newest_first.iter().map(|r| r.len()).sum());
    for (age, r) in newest_first.iter().enumerate() {
        all.extend(r.iter().map(|e| (e.scope, e.contact, age, e)));
    }
    all.sort_unstable_by_key(|x| (x.0, x.1, x.2));
    all.dedup_by_key(|x| (x.0, x.1));
    (scopes, all.into_iter().map(|x| x.3).collect())
}

/// A run is merged into the newer ones when it has at most this many
/// times their records: larger, fewer merges of big runs (less written per
/// ingest); smaller, fewer runs for a reader to search.
const MERGE_FACTOR: u64 = 4;

/// Which runs (a suffix of the list, oldest first) to merge after a new
/// one was added: size-tiered, so that each record is rewritten O(log n)
/// times and there are O(log n) runs.
pub(crate) fn merge_from(rows: &[u64]) -> usize {
    let mut from = rows.len().saturating_sub(1);
    let mut merged = rows.last().copied().unwrap_or(0);
    while from > 0 && rows[from - 1] <= MERGE_FACTOR * merged.max(1) {
        from -= 1;
        merged += rows[from];
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_and_merge_newest_wins() {
        let e = |scope, contact, at| Entry {
            scope,
            contact,
            at,
            ledger: 3,
            row: 7,
            opt_out: at % 2 == 0,
        };
        let old = KeyRun::from_bytes(encode_keys(&[], &[e(1, 5, 10), e(1, 6, 10), e(2, 5, 10)])).unwrap();
        let new = KeyRun::from_bytes(encode_keys(&[], &[e(1, 6, 11), e(3, 1, 12)])).unwrap();
        assert_eq!(old.get(1, 6), Some(e(1, 6, 10)));
        assert_eq!(old.get(1, 7), None);
        let (_, merged) = merge_keys(&[&new, &old]);
        assert_eq!(merged, [e(1, 5, 10), e(1, 6, 11), e(2, 5, 10), e(3, 1, 12)]);
        let mut bytes = encode_keys(&[], &merged);
        bytes[20] ^= 1;
        assert!(KeyRun::from_bytes(bytes).is_err());
    }

    #[test]
    fn a_streamed_merge_writes_what_a_merge_in_memory_writes() {
        let scope = |i: u64| ScopeName {
            hash: i,
            account: "a".into(),
            scope: format!("s{i}"),
        };
        let e = |i: u64, at: i64| Entry {
            scope: i % 3,
            contact: i * 7919 % 100_003,
            at,
            ledger: at as u32,
            row: i as u32,
            opt_out: i.is_multiple_of(2),
        };
        let sorted = |mut v: Vec<Entry>| {
            v.sort_by_key(Entry::key);
            v.dedup_by_key(|x| x.key());
            v
        };
        // runs of several blocks (block of 4 records here), keys shared
        for (a, b, c) in [(0, 0, 0), (1, 0, 0), (50, 3, 9), (4000, 700, 5000), (8, 8, 0)] {
            let runs: Vec<KeyRun> = [(a, 1), (b, 2), (c, 3)]
                .iter()
                .rev()
                .map(|&(n, at)| {
                    let v = sorted((0..n).map(|i| e(i * at as u64 + at as u64, at)).collect());
                    KeyRun::from_bytes(encode_keys(&[scope(at as u64)], &v)).unwrap()
                })
                .collect();
            let (scopes, want) = merge_keys(&runs.iter().collect::<Vec<_>>());
            let streamed: Vec<Entry> = merged_keys(&runs).collect();
            assert_eq!(streamed, want);
            for s in 0..4 {
                let one: Vec<Entry> = merged_range(&runs, (s, 0)..=(s, u64::MAX)).collect();
                let model: Vec<Entry> = want.iter().filter(|e| e.scope == s).copied().collect();
                assert_eq!(one, model, "scope {s}");
            }
            let mut out = Vec::new();
            let w = write_keys(&mut out, &scopes, streamed.into_iter(), 4 * RECORD).unwrap();
            let whole = encode_keys(&scopes, &want);
            assert_eq!(out, whole);
            assert_eq!(
                (w.bytes, w.crc32, w.rows),
                (whole.len() as u64, crc32fast::hash(&whole), want.len() as u64)
            );
            let fence_of: super::super::blocks::Fence<'_> = &fence;
            let table =
                super::super::blocks::encode(&whole, records_start(&whole), 4 * RECORD, Some(fence_of));
            assert_eq!(w.blocks, table);
        }
    }

    #[test]
    fn a_seeker_finds_what_get_finds() {
        let e = |contact: u64| Entry {
            scope: contact % 3,
            contact,
            at: contact as i64,
            ledger: 1,
            row: contact as u32,
            opt_out: true,
        };
        let mut v: Vec<Entry> = (0..5000u64).map(|i| e(i * i % 7919)).collect();
        v.sort_by_key(Entry::key);
        v.dedup_by_key(|x| x.key());
        let run = KeyRun::from_bytes(encode_keys(&[], &v)).unwrap();
        for stride in [1u64, 2, 5, 97, 4000] {
            let asked: Vec<(u64, u64)> = (0..3u64)
                .flat_map(|s| (0..8000u64).step_by(stride as usize).map(move |c| (s, c)))
                .collect();
            let mut seeker = Seeker::new(&run, asked[0]);
            for &k in &asked {
                assert_eq!(seeker.seek(k), run.get(k.0, k.1), "{k:?}, stride {stride}");
            }
        }
        let mut past = Seeker::new(&run, (9, 0));
        assert_eq!(past.seek((9, 1)), None);
    }

    #[test]
    fn size_tiered_merging() {
        assert_eq!(merge_from(&[]), 0);
        assert_eq!(merge_from(&[100]), 0);
        // a small run after a big one stays apart
        assert_eq!(merge_from(&[10_000_000, 10_000]), 1);
        // similar sizes merge, and the merge cascades
        assert_eq!(merge_from(&[1000, 300, 100]), 0);
        assert_eq!(merge_from(&[100_000, 300, 100]), 1);
    }
}
