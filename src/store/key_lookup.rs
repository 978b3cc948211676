//! A key run opened for a few lookups (`check`): the run's format is in
//! `store::keys`; here only the header and the blocks a lookup reads are
//! verified, not the whole run.

use super::damage::Fault;
use super::keys::{
    block_count, count_at, packed_directory, Entry, Format, Header, ScopeName, MAGIC, PACKED, RECORD,
};
use super::packed::{Layout, HEAD, PER_BLOCK};

/// The packed block a key would be in: its number, and its bytes when the
/// read that found it held them.
type Found = (usize, Option<Vec<u8>>);

/// A key run opened for a few lookups (`check`): its header and the
/// blocks a lookup reads are verified, not the whole run.
pub(crate) struct KeyLookup {
    run: super::blocks::Checked,
    len: usize,
    format: Format,
    /// The scopes its records name.
    pub scopes: Vec<ScopeName>,
}

impl KeyLookup {
    /// From a key run mapped with its blocks.
    pub(crate) fn new(run: super::blocks::Checked) -> Result<KeyLookup, Fault> {
        let head = run.head()?;
        let packed = head.get(..8) == Some(&PACKED[..]);
        if head.len() < 12 || !(packed || &head[..8] == MAGIC) {
            return Err("not a key run".into());
        }
        let header: Header = serde_json::from_slice(&head[12..]).map_err(|_| "unreadable header")?;
        let end = run.len().checked_sub(4).ok_or("records cut short")?;
        let (format, len) = if packed {
            // the record count, and from it where the block offsets are
            let at = count_at(run.len(), head.len())?;
            let (dir, records) = packed_directory(&run.range(at..end)?, at, head.len())?;
            (Format::Packed { dir }, records)
        } else {
            let records = end.checked_sub(head.len()).ok_or("records cut short")?;
            if !records.is_multiple_of(RECORD) || !run.blocks.size.is_multiple_of(RECORD) {
                return Err("records cut short".into());
            }
            (Format::Fixed, records / RECORD)
        };
        Ok(KeyLookup {
            len,
            format,
            scopes: header.scopes,
            run,
        })
    }

    /// Block `b` of a packed run, read and checked: its header, its bytes
    /// and its number of records.
    fn packed_block(&self, dir: usize, b: usize) -> Result<(Layout, Vec<u8>, usize), Fault> {
        let blocks = self.len.div_ceil(PER_BLOCK);
        let offsets = self.run.range(dir + 8 * b..dir + 8 * (b + 2).min(blocks + 1))?;
        let word = |i: usize| -> Result<usize, Fault> {
            let w = offsets.get(8 * i..8 * i + 8).ok_or("a block out of place")?;
            usize::try_from(u64::from_le_bytes(
                w.try_into().map_err(|_| "a block out of place")?,
            ))
            .map_err(|_| "a block out of place".into())
        };
        let from = word(0)?;
        let to = if b + 1 < blocks { word(1)? } else { dir };
        if from.saturating_add(HEAD) > to || to > dir {
            return Err("a block out of place".into());
        }
        let mut bytes = self.run.range(from..to)?.into_owned();
        let layout = Layout::parse(&bytes)?;
        let count = block_count(self.len, b);
        let end = HEAD + layout.data_len(count);
        if layout.number as usize != b || end > bytes.len() {
            return Err("a block of the wrong size".into());
        }
        bytes.truncate(end);
        Ok((layout, bytes, count))
    }

    /// The packed block a key would be in (the last whose first key is
    /// not above it), by a binary search of the blocks.
    fn block_by_directory(&self, dir: usize, key: (u64, u64)) -> Result<Option<usize>, Fault> {
        let (mut lo, mut hi) = (0usize, self.len.div_ceil(PER_BLOCK));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (layout, bytes, _) = self.packed_block(dir, mid)?;
            if layout.key(&bytes[HEAD..], 0) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// [`KeyLookup::block_by_directory`] through the blocks file's first
    /// keys: the blocks-file block the key falls in starts with a packed
    /// block, and the packed blocks after it in that block are read from
    /// it, one read. The packed block found comes with its bytes, taken
    /// from that read (no packed block straddles two blocks-file blocks),
    /// so the run's directory need not be read.
    fn block_by_fence(&self, dir: usize, key: (u64, u64)) -> Result<Option<Found>, Fault> {
        let blocks = &self.run.blocks;
        let Some(k) = blocks.fences.partition_point(|f| *f <= key).checked_sub(1) else {
            return Ok(None);
        };
        if blocks.fences[k] == (u64::MAX, u64::MAX) {
            // past the last packed block's start (or the largest key)
            return Ok(self.block_by_directory(dir, key)?.map(|b| (b, None)));
        }
        let from = blocks.start + k * blocks.size;
        let to = (from + blocks.size).min(dir);
        if from.saturating_add(HEAD) > to {
            return Err("a block out of place".into());
        }
        let bytes = self.run.range(from..to)?;
        let count = self.len.div_ceil(PER_BLOCK);
        let (mut at, mut b, mut found) = (0usize, Layout::parse(&bytes)?.number as usize, None);
        while b < count && at + HEAD <= bytes.len() {
            let layout = Layout::parse(&bytes[at..])?;
            if layout.number as usize != b || layout.key(&bytes[at + HEAD..], 0) > key {
                break;
            }
            let end = at + HEAD + layout.data_len(block_count(self.len, b));
            found = Some((b, at, end));
            at = end;
            b += 1;
        }
        let Some((b, from, to)) = found else {
            return Err("the blocks file disagrees with the run".into());
        };
        Ok(Some((b, bytes.get(from..to).map(<[u8]>::to_vec))))
    }

    /// The record of a key, if this run has it.
    pub(crate) fn get(&self, scope: u64, contact: u64) -> Result<Option<Entry>, Fault> {
        let key = (scope, contact);
        if let Format::Packed { dir } = self.format {
            let found = if self.run.blocks.fences.is_empty() {
                self.block_by_directory(dir, key)?.map(|b| (b, None))
            } else {
                self.block_by_fence(dir, key)?
            };
            let Some((b, held)) = found else {
                return Ok(None);
            };
            let (layout, bytes, count) = match held {
                Some(bytes) => (Layout::parse(&bytes)?, bytes, block_count(self.len, b)),
                None => self.packed_block(dir, b)?,
            };
            let data = &bytes[HEAD..];
            let (mut lo, mut hi) = (0usize, count);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if layout.key(data, mid) < key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return Ok((lo < count && layout.key(data, lo) == key).then(|| layout.entry(data, lo)));
        }
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
