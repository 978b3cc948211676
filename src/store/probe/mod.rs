//! The probe file (`probe/<gen>.probe`): contact → the scopes it is opted
//! out in, laid out to be searched where it lies. A scrub or a check maps
//! it with memmap2 and reads a few cache lines per row, so opening a store
//! costs the same whatever the number of opt-outs; a commit writes the new
//! generation's file by merging the changed keys into the previous one in
//! one pass (nothing is sorted but the change).
//!
//! Contacts are keyed by `c × K` (K odd: a bijection on u64, so equal keys
//! are equal contacts, and keys spread evenly whatever the numbers). A
//! lookup reads the filter's word, then the table from the key's home slot
//! to the first key not below it: one random read, of two or three slots
//! on average, where a sorted list with a directory would take two (each
//! a TLB miss in a large mapped file).
//!
//! ```text
//! table     slots of 12 bytes: key (u64), value (u32); keys ascending, each
//!           at its home slot (its place in proportion: k × m / 2^64 of m
//!           home slots, m ≈ n / 0.75) or just after the key before it;
//!           empty slots between have key 0 and value 2^32 − 1
//! multi     words: for a contact in several scopes, its count then its
//!           scopes; a word is 1, 2 or 4 bytes (little-endian), the fewest
//!           that number every scope of the header (4 in a file of the
//!           first version, OPTPRB01)
//! filter    u64s: a blocked Bloom filter, three bits per key in the word
//!           its top 32 bits name in proportion; 12 bits per key, so about
//!           one in a hundred misses pass (in the first version, 2^f words
//!           chosen by the key's top f bits, 16 to 32 bits per key)
//! blocks    a CRC-32 per 64 KiB of everything above
//! header    JSON: sizes, the ledger digest, the scopes (account, scope, count)
//! footer    header length (u32), CRC-32 of blocks and header (u32), OPTPRB02
//! ```
//!
//! A value below 2^31 is the contact's one scope, an index into the
//! header's scopes (sorted by account and scope, as the snapshot's);
//! otherwise its low bits say where its scopes start in `multi`.
//!
//! Opening reads the footer and header only. The body is verified by
//! blocks of 64 KiB, each the first time a read touches it: a check of one
//! contact verifies a few blocks, a scrub of millions of rows most of
//! them, and neither waits for the rest. A damaged block is recorded
//! ([`ProbeFile::damage`]); whoever answers from the probe asks before
//! answering (a scrub before it publishes its outputs). A damaged file
//! never panics a lookup: every read is bounds-checked.

mod layers;
mod write;

pub(crate) use layers::Probe;
pub(crate) use write::{build, change, sorted_changes, write, Source, Target, Written};

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::blocks::Verifier;
use super::damage::Fault;

// a probe's bytes: mapped from its file, or built in memory (for a store
// written before probe files were kept)
use super::runs::Bytes as Backing;

const MAGIC: &[u8; 8] = b"OPTPRB02";
/// The first version: words of `multi` are always 4 bytes (still read).
const MAGIC_V1: &[u8; 8] = b"OPTPRB01";
/// The multiplier of the key (odd, from the golden ratio).
const K: u64 = 0x9E37_79B9_7F4A_7C15;
const RECORD: usize = 12;
const BLOCK: usize = 1 << 16;
const FOOTER: usize = 16;
/// Set in a value that points into `multi`.
const MULTI: u32 = 1 << 31;
/// The value of an empty slot (never a scope, never a place in `multi`).
const EMPTY: u32 = u32::MAX;
/// Home slots per key, inverse of the load factor (4/3).
const SLOTS_PER_KEY: (u64, u64) = (4, 3);

/// The home slot of a key among `m`.
fn home(k: u64, m: usize) -> usize {
    ((u128::from(k) * m as u128) >> 64) as usize
}

/// The key of a contact.
fn key(contact: u64) -> u64 {
    contact.wrapping_mul(K)
}

/// A key's three bits in its word of the filter (from bits of the key
/// below those that choose the word).
fn mask(k: u64) -> u64 {
    1 << ((k >> 20) & 63) | 1 << ((k >> 26) & 63) | 1 << ((k >> 32) & 63)
}

/// Bytes of a word of `multi` in a file of `scopes` scopes: the fewest
/// that hold every scope index and every count (at most `scopes`).
fn word_width(scopes: usize) -> usize {
    match scopes {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        _ => 4,
    }
}

/// The filter's word of a key among `words`: in proportion to the key's
/// top 32 bits (for a power of two, those of them that number the words,
/// as the first version chose them).
#[inline]
fn filter_word_of(k: u64, words: u64) -> usize {
    (((k >> 32) * words) >> 32) as usize
}

/// Words of the filter for `contacts`: 12 bits a contact (three of them
/// set), so that about one miss in a hundred passes.
fn filter_words_for(contacts: u64) -> u64 {
    (contacts * 3).div_ceil(16).clamp(8, 1 << 32)
}

/// One scope of the probe: what the snapshot calls it, and its opt-outs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeScope {
    /// The account.
    pub account: String,
    /// `account` or a sender id.
    pub scope: String,
    /// Contacts opted out in it.
    pub count: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    ledger_digest: u32,
    /// Contacts (full slots).
    records: u64,
    /// Home slots.
    home_slots: u64,
    /// Slots in the table (home slots and the overflow past them).
    slots: u64,
    /// Words in `multi`.
    multi: u64,
    /// Bytes of a word of `multi` (absent in a file of the first version,
    /// whose words are 4 bytes).
    #[serde(default, skip_serializing_if = "is_zero")]
    multi_width: u32,
    /// The filter's words, a power of two, in a file of the first version
    /// (0 in the second).
    #[serde(default, skip_serializing_if = "is_zero")]
    filter_bits: u32,
    /// The filter's words (absent in a file of the first version).
    #[serde(default, skip_serializing_if = "is_zero")]
    filter_words: u64,
    /// In a layer: the fingerprints of the layers it lies over, newest
    /// first (see [`ProbeFile::fingerprint`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    below: Vec<u32>,
    scopes: Vec<ProbeScope>,
}

fn is_zero<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

impl Header {
    /// Bytes of each section of the body, in order.
    fn sections(&self) -> Option<[usize; 3]> {
        if self.home_slots == 0 || self.home_slots > self.slots || !(1..=1 << 32).contains(&self.filter_words)
        {
            return None;
        }
        let table = usize::try_from(self.slots).ok()?.checked_mul(RECORD)?;
        let multi = usize::try_from(self.multi)
            .ok()?
            .checked_mul(self.multi_width as usize)?;
        let filter = usize::try_from(self.filter_words).ok()?.checked_mul(8)?;
        Some([table, multi, filter])
    }
}

/// An opened probe. See the module documentation.
pub struct ProbeFile {
    bytes: Backing,
    /// What errors call it (the store and file name, when it has one).
    pub origin: String,
    /// Scopes by index (sorted by account and scope).
    pub scopes: Vec<ProbeScope>,
    /// Digest of the ledger it was compiled from.
    pub ledger_digest: u32,
    /// In a layer: the fingerprints of the layers below it, newest first.
    pub below: Vec<u32>,
    /// The footer's checksum (of the block table and the header): names
    /// this file's contents for the layers written over it.
    pub fingerprint: u32,
    records: usize,
    home_slots: usize,
    slots: usize,
    multi_at: usize,
    /// Words in `multi`.
    multi_len: usize,
    /// Bytes of a word of `multi`.
    multi_width: usize,
    filter_at: usize,
    filter_words: u64,
    body: usize,
    /// Checks the body's blocks against the block table (a probe built in
    /// memory is trusted).
    verifier: Verifier,
    /// The first damaged block a read met.
    damage: std::sync::OnceLock<String>,
}

impl ProbeFile {
    /// Map a probe file and check its footer and header (its body is
    /// checked a block at a time as it is read, or whole with
    /// [`ProbeFile::verify_all`]).
    pub fn open(path: &Path) -> Result<ProbeFile, Fault> {
        let file = File::open(path)?;
        // a file cut short by hand fails the size checks before any read
        let map = super::files::map_file(&file, true)?;
        ProbeFile::from_backing(Backing::Mapped(map))
    }

    /// A probe held in memory (built by [`ProbeWriter`] into a `Vec`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ProbeFile, Fault> {
        ProbeFile::from_backing(Backing::Owned(bytes))
    }

    fn from_backing(bytes: Backing) -> Result<ProbeFile, Fault> {
        let len = bytes.len();
        if len < FOOTER {
            return Err("not a probe file".into());
        }
        let first_version = match &bytes[len - 8..] {
            m if m == MAGIC => false,
            m if m == MAGIC_V1 => true,
            _ => return Err("not a probe file".into()),
        };
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let header_len = word(len - FOOTER) as usize;
        let tail_crc = word(len - FOOTER + 4);
        let header_at = (len - FOOTER).checked_sub(header_len).ok_or("header cut short")?;
        let mut header: Header = serde_json::from_slice(&bytes[header_at..len - FOOTER])
            .map_err(|_| "unreadable header".to_string())?;
        if first_version {
            header.multi_width = 4;
            header.filter_words = match header.filter_bits {
                1..=32 => 1 << header.filter_bits,
                _ => return Err("sizes out of range".into()),
            };
        } else if ![1, 2, 4].contains(&header.multi_width) {
            return Err("sizes out of range".into());
        }
        let sections = header.sections().ok_or("sizes out of range")?;
        let body: usize = sections
            .iter()
            .try_fold(0usize, |a, &s| a.checked_add(s))
            .ok_or("sizes out of range")?;
        let blocks_len = body.div_ceil(BLOCK) * 4;
        if body.checked_add(blocks_len) != Some(header_at) {
            return Err("wrong size".into());
        }
        if crc32fast::hash(&bytes[body..len - 8 - 4 - 4]) != tail_crc {
            return Err("header checksum mismatch".into());
        }
        if header.scopes.len() >= MULTI as usize || header.records > header.slots {
            return Err("sizes out of range".into());
        }
        let [table, multi, _] = sections;
        let owned = matches!(bytes, Backing::Owned(_));
        let crcs = bytes[body..header_at]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(ProbeFile {
            verifier: Verifier::new(BLOCK, 0, body, crcs, owned),
            damage: Default::default(),
            origin: "the probe".into(),
            records: header.records as usize,
            home_slots: header.home_slots as usize,
            slots: header.slots as usize,
            multi_at: table,
            multi_len: header.multi as usize,
            multi_width: header.multi_width as usize,
            filter_at: table + multi,
            filter_words: header.filter_words,
            body,
            scopes: header.scopes,
            ledger_digest: header.ledger_digest,
            below: header.below,
            fingerprint: tail_crc,
            bytes,
        })
    }

    /// Bytes of the whole file.
    pub fn file_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Its size in records and words of scope lists: about its opt-outs,
    /// what a merge of it reads and writes.
    pub fn weight(&self) -> u64 {
        (self.records + self.multi_len) as u64
    }

    /// Contacts it holds (in a layer, some may be opted out nowhere).
    #[cfg(test)]
    pub fn contacts(&self) -> u64 {
        self.records as u64
    }

    /// Check the blocks of a read of `len` bytes at `at` the first time
    /// one is read; a damaged one is recorded (see [`ProbeFile::damage`]).
    #[inline]
    fn check(&self, at: usize, len: usize) {
        if at >= self.body || self.verifier.done(at / BLOCK, (at + len.max(1) - 1) / BLOCK) {
            return;
        }
        if let Err(why) = self.verifier.check(&self.bytes, at..(at + len).min(self.body)) {
            let _ = self.damage.set(why.to_string());
        }
    }

    /// Ask for the blocks of the table that lookups of these keys
    /// (ascending) will read, to be read from the disk ahead of them: a
    /// lookup reads its home slot's block whole, to check it.
    fn prefetch(&self, keys: impl Iterator<Item = u64>) {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for k in keys {
            // the home slot's block and the next (a search may run on)
            let block = home(k, self.home_slots) * RECORD / BLOCK;
            match ranges.last_mut() {
                Some((from, len)) if block * BLOCK <= *from + *len => *len = (block + 2) * BLOCK - *from,
                _ => ranges.push((block * BLOCK, 2 * BLOCK)),
            }
        }
        self.bytes.will_need(ranges.into_iter());
    }

    /// Check every block not checked yet (a scrub of many rows runs this
    /// on a thread of its own, so that its reads find their blocks
    /// checked).
    pub fn check_all(&self) {
        if let Err(why) = self.verifier.check_all(&self.bytes) {
            let _ = self.damage.set(why.to_string());
        }
    }

    /// The first damage a read found, if any: answers read since may be
    /// wrong, and whoever gives them must not (a scrub publishes nothing).
    pub fn damage(&self) -> Option<&str> {
        self.damage.get().map(String::as_str)
    }

    /// Word `j` of `multi` (0 past its end).
    #[inline]
    fn multi_word(&self, j: usize) -> u32 {
        let mut word = 0;
        self.multi_words(j, 1, |w| word = w);
        word
    }

    /// Call `f` with words `from..from + count` of `multi` (none when
    /// they do not lie in the file: `multi_range` keeps them within it).
    #[inline]
    fn multi_words(&self, from: usize, count: usize, mut f: impl FnMut(u32)) {
        let at = self.multi_at + from * self.multi_width;
        let Some(bytes) = self.bytes.get(at..at + count * self.multi_width) else {
            return;
        };
        match self.multi_width {
            1 => bytes.iter().for_each(|&b| f(u32::from(b))),
            2 => bytes
                .chunks_exact(2)
                .for_each(|b| f(u32::from(u16::from_le_bytes([b[0], b[1]])))),
            _ => bytes
                .chunks_exact(4)
                .for_each(|b| f(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        self.bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    fn u64_at(&self, at: usize) -> u64 {
        self.bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }

    fn filter_word(&self, k: u64) -> usize {
        self.filter_at + filter_word_of(k, self.filter_words) * 8
    }

    /// False when the contact is surely opted out nowhere.
    pub fn may_hit(&self, contact: u64) -> bool {
        let k = key(contact);
        let m = mask(k);
        let w = self.filter_word(k);
        self.check(w, 8);
        self.u64_at(w) & m == m
    }

    /// The slot of a key, if it has one (the slots read to know checked).
    fn find(&self, k: u64) -> Option<usize> {
        let (found, read) = self.scan(k);
        self.check(read.start * RECORD, read.len() * RECORD);
        found
    }

    /// [`ProbeFile::find`] unchecked, and the slots it read.
    fn scan(&self, k: u64) -> (Option<usize>, Range<usize>) {
        let from = home(k, self.home_slots);
        for i in from..self.slots {
            if self.u32_at(i * RECORD + 8) == EMPTY {
                return (None, from..i + 1);
            }
            let sk = self.u64_at(i * RECORD);
            if sk >= k {
                return ((sk == k).then_some(i), from..i + 1);
            }
        }
        (None, from..self.slots)
    }

    /// Where a record's scopes lie in `multi` (first scope, count), when
    /// it has several.
    fn multi_range(&self, value: u32) -> Option<(usize, usize)> {
        if value & MULTI == 0 {
            return None;
        }
        let off = (value & !MULTI) as usize;
        self.check(self.multi_at + off * self.multi_width, self.multi_width);
        let count = (self.multi_word(off) as usize).min(self.multi_len.saturating_sub(off + 1));
        Some((off + 1, count))
    }

    /// Call `f` with each scope (index into [`ProbeFile::scopes`]) the
    /// contact is opted out in, in ascending order.
    #[cfg(test)]
    pub fn for_each_hit(&self, contact: u64, f: impl FnMut(u32)) {
        if let Some(v) = self.value(contact) {
            self.for_each_scope(v, f);
        }
    }

    /// Its scope indices in another scope list: `index_of` gives a scope's
    /// index there, by account and scope (`None`: not in it).
    pub(crate) fn remap(&self, index_of: impl Fn(&str, &str) -> Option<u32>) -> Vec<Option<u32>> {
        self.scopes
            .iter()
            .map(|s| index_of(&s.account, &s.scope))
            .collect()
    }

    /// The value of a key's slot, if it has one.
    #[inline]
    fn find_value(&self, k: u64) -> Option<u32> {
        let i = self.find(k)?;
        Some(self.u32_at(i * RECORD + 8))
    }

    /// The value of a contact's slot, if it has one: what
    /// [`ProbeFile::for_each_scope`] reads its scopes from. Lookups of many
    /// rows ask this first, in a loop of its own, so that their reads of
    /// the table overlap.
    #[inline]
    pub fn value(&self, contact: u64) -> Option<u32> {
        self.find_value(key(contact))
    }

    /// Read the first word of a value's scopes when they lie in `multi`
    /// (so that a loop over many rows brings them in together); returns
    /// it, for the caller to keep the read from being optimized away.
    pub fn touch_scopes(&self, v: u32) -> u32 {
        match v & MULTI {
            0 => 0,
            _ => self.multi_word((v & !MULTI) as usize),
        }
    }

    /// Call `f` with each scope of a slot's value, in ascending order.
    pub fn for_each_scope(&self, v: u32, mut f: impl FnMut(u32)) {
        match self.multi_range(v) {
            None => f(v),
            Some((from, count)) => {
                self.check(self.multi_at + from * self.multi_width, count * self.multi_width);
                self.multi_words(from, count, f);
            }
        }
    }

    /// The scopes a contact is opted out in.
    #[cfg(test)]
    pub fn hits(&self, contact: u64) -> Vec<u32> {
        let mut out = Vec::new();
        self.for_each_hit(contact, |s| out.push(s));
        out
    }

    /// Check every block of the body, whether read before or not.
    pub fn verify_all(&self) -> Result<(), Fault> {
        // one pass over the whole body: asked of the disk ahead of it
        self.bytes.will_need(std::iter::once((0, self.body)));
        self.verifier.untrusted().check_all(&self.bytes)
    }

    /// Every record in key order: (key, value). Values that point into
    /// `multi` are read with [`ProbeFile::scopes_of`].
    fn records(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..self.slots)
            .map(|i| (self.u64_at(i * RECORD), self.u32_at(i * RECORD + 8)))
            .filter(|r| r.1 != EMPTY)
    }

    /// The scopes of a record's value.
    fn scopes_of(&self, value: u32, out: &mut Vec<u32>) {
        out.clear();
        match self.multi_range(value) {
            None => out.push(value),
            Some((from, count)) => self.multi_words(from, count, |x| out.push(x)),
        }
    }
}

#[cfg(test)]
mod tests;
