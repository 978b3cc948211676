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

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::damage::Fault;
use super::runs::{gallop, map_verified, Bytes};

const MAGIC: &[u8; 8] = b"OPTIDX01";
pub(super) const RECORD: usize = 32;
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
        self.found(self.lower_bound((scope, contact)), (scope, contact))
    }

    /// Record `at` when it has this key.
    fn found(&self, at: usize, key: (u64, u64)) -> Option<Entry> {
        (at < self.len && self.key(at) == key).then(|| self.entry(at))
    }

    /// The index of the first record whose key is not below `key`.
    pub(crate) fn lower_bound(&self, key: (u64, u64)) -> usize {
        let (mut lo, mut hi) = (0usize, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Every record, in key order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
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
        self.at = gallop(self.at, run.len, |i| run.key(i) < key);
        run.found(self.at, key)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
