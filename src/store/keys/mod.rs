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
//!   Layout: `OPTIDX02`, u32 header length, a JSON header (the scopes by
//!   hash), then the records sorted by (scope hash, contact) in blocks of
//!   256 bit-packed records (`store::packed`), then each block's offset in
//!   the file (u64), the number of records (u64), and a CRC-32 of all that
//!   precedes. Runs written before packing (`OPTIDX01`: 32-byte records
//!   where the blocks are) are still read, and rewritten packed when they
//!   are next merged.
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
use super::packed::{Layout, HEAD, MAX_BLOCK, PER_BLOCK};
use super::runs::{gallop, map_verified, BlockSeeker, Bytes};

/// A run of fixed 32-byte records (read, no longer written).
pub(super) const MAGIC: &[u8; 8] = b"OPTIDX01";
/// A run of packed blocks.
pub(super) const PACKED: &[u8; 8] = b"OPTIDX02";
/// Bytes of a record of a fixed run.
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

    #[cfg(test)]
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.scope.to_le_bytes());
        out.extend_from_slice(&self.contact.to_le_bytes());
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.ledger.to_le_bytes());
        let row = self.row | if self.opt_out { OPT_OUT_BIT } else { 0 };
        out.extend_from_slice(&row.to_le_bytes());
    }

    pub(super) fn decode(b: &[u8]) -> Entry {
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
pub(super) struct Header {
    pub(super) scopes: Vec<ScopeName>,
}

/// One key run, mapped and verified.
pub(crate) struct KeyRun {
    data: Bytes,
    start: usize,
    len: usize,
    format: Format,
    /// The scopes its records name.
    pub scopes: Vec<ScopeName>,
}

/// How a run lays its records out.
#[derive(Clone, Copy)]
pub(super) enum Format {
    /// 32-byte records from `start`.
    Fixed,
    /// Packed blocks from `start`; their offsets (u64 each) from `dir`.
    Packed { dir: usize },
}

/// The header of a run: its scopes, and where its records start.
fn header(body: &[u8]) -> Result<(Header, usize), Fault> {
    let hlen = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
    let header = body.get(12..12 + hlen).ok_or("header cut short")?;
    let header: Header = serde_json::from_slice(header).map_err(|_| "unreadable header")?;
    Ok((header, 12 + hlen))
}

/// Where the record count of a packed run of `len` bytes is (after its
/// offsets, before its CRC), when the run is long enough to hold one
/// after its records' `start`.
pub(super) fn count_at(len: usize, start: usize) -> Result<usize, Fault> {
    len.checked_sub(12)
        .filter(|t| *t >= start)
        .ok_or_else(|| "records cut short".into())
}

/// Where the block offsets of a packed run start, from its record count
/// (`count`, the 8 bytes at `at`) and where its records start; and the
/// count.
pub(super) fn packed_directory(count: &[u8], at: usize, start: usize) -> Result<(usize, usize), Fault> {
    let records = usize::try_from(u64::from_le_bytes(
        count.try_into().map_err(|_| "records cut short")?,
    ))
    .map_err(|_| "too many records")?;
    let dir = records
        .div_ceil(PER_BLOCK)
        .checked_mul(8)
        .and_then(|d| at.checked_sub(d))
        .filter(|d| *d >= start)
        .ok_or("records cut short")?;
    Ok((dir, records))
}

/// Records in block `b` of a packed run of `len` records.
pub(super) fn block_count(len: usize, b: usize) -> usize {
    (len - b * PER_BLOCK).min(PER_BLOCK)
}

impl KeyRun {
    /// Open a key run, checking it against the manifest's size and CRC.
    pub(crate) fn open(path: &Path, bytes: u64, crc: u32) -> Result<KeyRun, Fault> {
        // the manifest's CRC covers the whole file, its own CRC included
        KeyRun::parse(map_verified(path, bytes, crc)?, true)
    }

    /// Decode a key run held in memory (checked with its own CRC only).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<KeyRun, Fault> {
        KeyRun::parse(Bytes::Owned(bytes), false)
    }

    /// A run's records; its own CRC checked unless the bytes were
    /// `verified` whole already.
    fn parse(data: Bytes, verified: bool) -> Result<KeyRun, Fault> {
        let packed = data.get(..8) == Some(&PACKED[..]);
        if data.len() < 16 || !(packed || &data[..8] == MAGIC) {
            return Err("not a key run".into());
        }
        let (body, tail) = data.split_at(data.len() - 4);
        if !verified && crc32fast::hash(body) != u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) {
            return Err("checksum mismatch".into());
        }
        let (header, start) = header(body)?;
        let (format, len) = if packed {
            let at = count_at(data.len(), start)?;
            let (dir, len) = packed_directory(&body[at..], at, start)?;
            (Format::Packed { dir }, len)
        } else {
            let records = body.len() - start;
            if !records.is_multiple_of(RECORD) {
                return Err("records cut short".into());
            }
            (Format::Fixed, records / RECORD)
        };
        let run = KeyRun {
            start,
            len,
            format,
            scopes: header.scopes,
            data,
        };
        if len == 0 && matches!(format, Format::Packed { dir } if dir != start) {
            return Err("records cut short".into());
        }
        let ordered = match format {
            Format::Fixed => (1..run.len)
                .into_par_iter()
                .with_min_len(ORDER_CHECK_PIECE)
                .all(|i| run.key(i - 1) < run.key(i)),
            Format::Packed { dir } => {
                let blocks = run.len.div_ceil(PER_BLOCK);
                (0..blocks)
                    .into_par_iter()
                    .with_min_len(ORDER_CHECK_PIECE / PER_BLOCK)
                    .map(|b| run.check_block(dir, b))
                    .collect::<Result<Vec<bool>, Fault>>()?
                    .into_iter()
                    .all(|ordered| ordered)
            }
        };
        if !ordered {
            return Err("records out of order".into());
        }
        Ok(run)
    }

    /// Block `b` of a packed run: where it starts and ends.
    fn block_span(&self, dir: usize, b: usize) -> (usize, usize) {
        let off = |b: usize| {
            u64::from_le_bytes(
                self.data[dir + 8 * b..dir + 8 * b + 8]
                    .try_into()
                    .unwrap_or_default(),
            )
        };
        let end = if (b + 1) * PER_BLOCK < self.len {
            off(b + 1)
        } else {
            dir as u64
        };
        (off(b) as usize, end as usize)
    }

    /// Check block `b` of a packed run: that it lies where its offsets
    /// say and fills the space, and whether its keys ascend (up to the
    /// next block's first key).
    fn check_block(&self, dir: usize, b: usize) -> Result<bool, Fault> {
        let (from, to) = self.block_span(dir, b);
        let first = if b == 0 { self.start } else { from };
        if from != first || from < self.start || to > dir || from.saturating_add(HEAD) > to {
            return Err("a block out of place".into());
        }
        let layout = Layout::parse(&self.data[from..to])?;
        let end = from + HEAD + layout.data_len(block_count(self.len, b));
        // a block moved to the start of a blocks-file block leaves fewer
        // bytes than the largest block before it; the offsets follow the
        // last block at once
        let last = (b + 1) * PER_BLOCK >= self.len;
        if layout.number as usize != b || end > to || to - end >= MAX_BLOCK || (last && end != to) {
            return Err("a block of the wrong size".into());
        }
        let data = &self.data[from + HEAD..];
        let count = block_count(self.len, b);
        let ascending = (1..count).all(|i| layout.key(data, i - 1) < layout.key(data, i));
        if (b + 1) * PER_BLOCK >= self.len {
            return Ok(ascending);
        }
        // the next block's first key, its header checked by its own turn
        let (next, _) = self.block_span(dir, b + 1);
        if next != to || next.saturating_add(HEAD) > dir {
            return Err("a block out of place".into());
        }
        let after = Layout::parse(&self.data[next..])?.key(&self.data[next + HEAD..], 0);
        Ok(ascending && layout.key(data, count - 1) < after)
    }

    /// Block `b` of a packed run, decoded: its header, and its data with
    /// what follows.
    #[inline]
    fn block(&self, dir: usize, b: usize) -> (Layout, &[u8]) {
        let (from, _) = self.block_span(dir, b);
        (Layout::read(&self.data[from..]), &self.data[from + HEAD..])
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key of record `i` (read without the rest of the record).
    #[inline]
    fn key(&self, i: usize) -> (u64, u64) {
        match self.format {
            Format::Fixed => {
                let at = self.start + i * RECORD;
                let u64_at = |o: usize| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&self.data[at + o..at + o + 8]);
                    u64::from_le_bytes(a)
                };
                (u64_at(0), u64_at(8))
            }
            Format::Packed { dir } => {
                let (layout, data) = self.block(dir, i / PER_BLOCK);
                layout.key(data, i % PER_BLOCK)
            }
        }
    }

    /// Record `i`.
    pub(crate) fn entry(&self, i: usize) -> Entry {
        match self.format {
            Format::Fixed => {
                let at = self.start + i * RECORD;
                Entry::decode(&self.data[at..at + RECORD])
            }
            Format::Packed { dir } => {
                let (layout, data) = self.block(dir, i / PER_BLOCK);
                layout.entry(data, i % PER_BLOCK)
            }
        }
    }

    /// A reader of this run's records in order (a block decoded at once).
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader {
            run: self,
            block: usize::MAX,
            decoded: Vec::new(),
        }
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

/// Reads a run's records by index, decoding a packed run a block at a
/// time: for a reader that goes through the records in order.
pub(crate) struct Reader<'a> {
    run: &'a KeyRun,
    block: usize,
    decoded: Vec<Entry>,
}

impl Reader<'_> {
    /// Record `i` (below the run's length).
    #[inline]
    pub(crate) fn entry(&mut self, i: usize) -> Entry {
        let run = self.run;
        let Format::Packed { dir } = run.format else {
            return run.entry(i);
        };
        let b = i / PER_BLOCK;
        if b != self.block {
            let (layout, data) = run.block(dir, b);
            self.decoded.clear();
            self.decoded
                .extend((0..block_count(run.len, b)).map(|j| layout.entry(data, j)));
            self.block = b;
        }
        self.decoded[i % PER_BLOCK]
    }

    /// The run read.
    pub(crate) fn run(&self) -> &KeyRun {
        self.run
    }
}

/// Looks up keys asked in ascending order in one run: each search starts
/// where the last one ended and gallops forward, so a sorted batch reads
/// the run front to back instead of binary-searching it from the top for
/// every key (a page fault per step once the run outgrows the cache).
///
/// In a packed run the keys of the block a search ends in are decoded
/// once and kept: the next searches that end in that block (most of them,
/// when a batch is large next to the run) read them, not the block's
/// bits and header a step at a time.
pub(crate) struct Seeker<'a> {
    run: &'a KeyRun,
    /// In a packed run, with the keys of the block it is in (see
    /// [`BlockSeeker`]).
    place: BlockSeeker<(u64, u64)>,
}

impl<'a> Seeker<'a> {
    /// For keys from `first` on.
    pub(crate) fn new(run: &'a KeyRun, first: (u64, u64)) -> Seeker<'a> {
        Seeker {
            run,
            place: BlockSeeker::new(run.lower_bound(first), PER_BLOCK),
        }
    }

    /// The record of `key`, if the run has it; `key` must not be below
    /// the key asked before.
    pub(crate) fn seek(&mut self, key: (u64, u64)) -> Option<Entry> {
        let run = self.run;
        let Format::Packed { dir } = run.format else {
            self.place.at = gallop(self.place.at, run.len, |i| run.key(i) < key);
            return run.found(self.place.at, key);
        };
        let decode = |b: usize, keys: &mut Vec<(u64, u64)>| {
            let (layout, data) = run.block(dir, b);
            keys.extend((0..block_count(run.len, b)).map(|j| layout.key(data, j)));
        };
        self.place
            .seek(key, run.len, PER_BLOCK, |i| run.key(i), decode)
            .map(|i| run.entry(i))
    }
}

/// The first key of a block of a fixed run's records (a block holding
/// only the run's trailing CRC sorts after every key): the fences of the
/// blocks files of runs written before packing.
#[cfg(test)]
pub(crate) fn fence(block: &[u8]) -> (u64, u64) {
    match block.get(..RECORD) {
        Some(r) => Entry::decode(r).key(),
        None => (u64::MAX, u64::MAX),
    }
}

#[cfg(test)]
mod tests;
