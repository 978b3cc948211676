//! Writing a probe file: the previous generation's records merged with
//! the changed keys in one pass, or every opt-out of a rebuild.

use std::io::{self, Write};

use super::{
    filter_word_of, filter_words_for, home, key, mask, word_width, Header, ProbeFile, ProbeScope, BLOCK,
    EMPTY, FOOTER, MAGIC, MAGIC_V1, MULTI, RECORD, SLOTS_PER_KEY,
};

/// A change to one contact's scopes: (key of the contact, scope index in
/// the new list, opted out?). See [`change`].
pub(crate) type Change = (u64, u32, bool);

/// The [`Change`] of a contact.
pub(crate) fn change(contact: u64, scope: u32, opt_out: bool) -> Change {
    (key(contact), scope, opt_out)
}

/// A probe file as a source of a write: its scope indices moved to the
/// new list by `remap` (`None` for a scope that is gone).
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub file: &'a ProbeFile,
    pub remap: &'a [Option<u32>],
}

impl Source<'_> {
    /// The scopes of a record's value, in the new list.
    fn scopes_into(&self, value: u32, raw: &mut Vec<u32>, set: &mut Vec<u32>) {
        self.file.scopes_of(value, raw);
        set.extend(
            raw.iter()
                .filter_map(|&s| self.remap.get(s as usize).copied().flatten()),
        );
    }
}

/// What a write makes: the whole probe, or a layer over older ones.
pub(crate) struct Target<'a> {
    /// The new scope list (sorted by account and scope).
    pub scopes: Vec<(String, String)>,
    pub ledger_digest: u32,
    /// Contacts per scope in the whole store, when the file is a layer
    /// (its own records count only the contacts it holds).
    pub totals: Option<Vec<u64>>,
    /// The layers the new one lies over, newest first (none: the file is
    /// the whole probe). A changed contact that `merged` does not hold
    /// starts from the scopes the first of them that holds it gives.
    pub below: &'a [Source<'a>],
}

/// Write a probe file: the records of `merged` (layers, newest first: for
/// a contact in several, the newest holds its scopes) with `changes`
/// applied. `changes` must be sorted; with nothing merged and nothing
/// below, they are every opt-out. A contact opted out nowhere is left out
/// of a whole probe, and kept with no scopes in a layer (it hides what the
/// layers below say of it). Returns what it wrote.
pub(crate) fn write<W: Write>(
    out: W,
    merged: &[Source],
    changes: &[Change],
    target: Target,
) -> io::Result<Written> {
    write_as(out, merged, changes, target, false)
}

/// [`write`], in the file's first version when `first_version` (what
/// builds before 2026-12-07 wrote: kept to test that they are read).
fn write_as<W: Write>(
    out: W,
    merged: &[Source],
    changes: &[Change],
    target: Target,
    first_version: bool,
) -> io::Result<Written> {
    let layered = !target.below.is_empty();
    // the table and the filter are sized for the contacts the file will
    // hold: counted first when files are merged (a contact in several of
    // them, or changed, is one), since a sum of their records sized them
    // for up to twice as many
    let expected = distinct_keys(merged, changes, layered);
    crate::util::trace::mark("probe: contacts counted");
    let mut w = ProbeWriter::new(out, expected, target.scopes.len(), first_version);
    // a changed contact's scopes take at most one word more per change,
    // and one for its count: reserved once, not doubled on the way
    let multi = merged.iter().map(|p| p.file.multi_len).sum::<usize>() + 2 * changes.len();
    w.multi.reserve_exact(multi * w.width);
    // the files below are searched for changed contacts in key order: their
    // pages are asked for ahead, together (the files merged were read
    // ahead whole when they were verified)
    for p in target.below {
        p.file.prefetch(changes.iter().map(|c| c.0));
    }
    let mut heads: Vec<_> = merged.iter().map(|p| p.file.records().peekable()).collect();
    let mut ci = 0;
    let mut set: Vec<u32> = Vec::new();
    let mut raw: Vec<u32> = Vec::new();
    loop {
        let next_change = changes.get(ci).map(|c| c.0);
        let Some(k) = heads
            .iter_mut()
            .filter_map(|h| h.peek().map(|r| r.0))
            .chain(next_change)
            .min()
        else {
            break;
        };
        set.clear();
        // the newest layer that holds the key gives its scopes; the
        // others' records of it are passed over
        let mut known = false;
        for (h, p) in heads.iter_mut().zip(merged) {
            if let Some((_, v)) = h.next_if(|r| r.0 == k) {
                if !known {
                    p.scopes_into(v, &mut raw, &mut set);
                    known = true;
                }
            }
        }
        if !known {
            if let Some((p, v)) = target
                .below
                .iter()
                .find_map(|p| p.file.find_value(k).map(|v| (p, v)))
            {
                p.scopes_into(v, &mut raw, &mut set);
                known = true;
            }
        }
        while let Some(&(_, scope, opt_out)) = changes.get(ci).filter(|c| c.0 == k) {
            set.retain(|&s| s != scope);
            if opt_out {
                set.push(scope);
            }
            ci += 1;
        }
        if !set.is_empty() || (layered && known) {
            set.sort_unstable();
            set.dedup();
            w.push(k, &set)?;
        }
    }
    crate::util::trace::mark("probe: records merged");
    let below = target.below.iter().map(|p| p.file.fingerprint).collect();
    w.finish(target.scopes, target.ledger_digest, target.totals, below)
}

/// Contacts a [`write`] of `changes` over `merged` holds, at most: every
/// contact a merged file holds, and every changed one (in a whole probe,
/// only one the changes opt out somewhere), each once. A merge-count of the
/// keys alone, in key order.
fn distinct_keys(merged: &[Source], changes: &[Change], layered: bool) -> u64 {
    let mut changed = changes
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|g| layered || g.iter().any(|c| c.2))
        .map(|g| g[0].0)
        .peekable();
    if merged.is_empty() {
        return changed.count() as u64;
    }
    let mut heads: Vec<_> = merged
        .iter()
        .map(|p| p.file.records().map(|r| r.0).peekable())
        .collect();
    let mut n = 0;
    loop {
        let Some(k) = heads
            .iter_mut()
            .filter_map(|h| h.peek().copied())
            .chain(changed.peek().copied())
            .min()
        else {
            return n;
        };
        n += 1;
        for h in &mut heads {
            h.next_if_eq(&k);
        }
        changed.next_if_eq(&k);
    }
}

/// Bytes of slots staged before they are written.
const STAGED: usize = 1 << 16;

/// What [`write`] wrote.
pub(crate) struct Written {
    /// Bytes of the file.
    pub bytes: u64,
    /// Their CRC-32.
    pub crc32: u32,
    /// Contacts with at least one opt-out.
    pub contacts: u64,
}

/// Writes the body as records come, a block's CRC at a time.
struct ProbeWriter<W: Write> {
    out: io::BufWriter<W>,
    file_crc: crc32fast::Hasher,
    block_crc: crc32fast::Hasher,
    in_block: usize,
    blocks: Vec<u32>,
    written: u64,
    home_slots: usize,
    /// The next free slot.
    next_slot: usize,
    filter: Vec<u64>,
    records: u64,
    /// Words of `multi`, `width` bytes each, as they are written.
    multi: Vec<u8>,
    width: usize,
    first_version: bool,
    counts: Vec<u64>,
    /// Slots not yet written (checksummed a buffer at a time, not 12
    /// bytes at a time).
    staged: Vec<u8>,
}

impl<W: Write> ProbeWriter<W> {
    /// For about `expected` records (more or fewer only cost speed).
    fn new(out: W, expected: u64, scopes: usize, first_version: bool) -> ProbeWriter<W> {
        let home_slots = (expected * SLOTS_PER_KEY.0).div_ceil(SLOTS_PER_KEY.1).max(1) as usize;
        let filter_words = match first_version {
            true => (expected / 4).max(64).next_power_of_two(),
            false => filter_words_for(expected),
        };
        ProbeWriter {
            out: io::BufWriter::with_capacity(crate::store::files::STREAM_BUFFER, out),
            file_crc: crc32fast::Hasher::new(),
            block_crc: crc32fast::Hasher::new(),
            in_block: 0,
            blocks: Vec::new(),
            written: 0,
            home_slots,
            next_slot: 0,
            filter: vec![0; filter_words as usize],
            records: 0,
            multi: Vec::new(),
            width: if first_version { 4 } else { word_width(scopes) },
            first_version,
            counts: vec![0; scopes],
            staged: Vec::with_capacity(STAGED + RECORD),
        }
    }

    fn body(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.file_crc.update(bytes);
        self.written += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (BLOCK - self.in_block).min(bytes.len());
            self.block_crc.update(&bytes[..take]);
            self.in_block += take;
            bytes = &bytes[take..];
            if self.in_block == BLOCK {
                let done = std::mem::replace(&mut self.block_crc, crc32fast::Hasher::new());
                self.blocks.push(done.finalize());
                self.in_block = 0;
            }
        }
        Ok(())
    }

    /// Add a contact (keys ascending) with its scopes (sorted, distinct;
    /// none in a layer, for a contact opted out nowhere now).
    fn push(&mut self, k: u64, scopes: &[u32]) -> io::Result<()> {
        let too_many = || io::Error::other("more opt-outs than a probe file holds");
        let at = home(k, self.home_slots).max(self.next_slot);
        while self.next_slot < at {
            self.empty_slot()?;
        }
        self.next_slot += 1;
        let words = self.filter.len() as u64;
        self.filter[filter_word_of(k, words)] |= mask(k);
        let value = match scopes {
            [one] => *one,
            many => {
                let at = u32::try_from(self.multi.len() / self.width)
                    .ok()
                    .filter(|&a| a < MULTI)
                    .ok_or_else(too_many)?;
                self.multi_list(many)?;
                at | MULTI
            }
        };
        for &s in scopes {
            if let Some(c) = self.counts.get_mut(s as usize) {
                *c += 1;
            }
        }
        self.staged.extend_from_slice(&k.to_le_bytes());
        self.staged.extend_from_slice(&value.to_le_bytes());
        self.records += 1;
        self.flush_staged(false)
    }

    /// Add a list of scopes to `multi`: its count, then its scopes (a
    /// number too large for the file's words is an error, never cut short).
    fn multi_list(&mut self, scopes: &[u32]) -> io::Result<()> {
        let count = scopes.len() as u32;
        let largest = scopes.iter().fold(count, |a, &s| a.max(s));
        if self.width < 4 && largest >> (8 * self.width) != 0 {
            return Err(io::Error::other("a scope index too large for the probe's words"));
        }
        let words = std::iter::once(count).chain(scopes.iter().copied());
        match self.width {
            1 => self.multi.extend(words.map(|x| x as u8)),
            2 => self.multi.extend(words.flat_map(|x| (x as u16).to_le_bytes())),
            _ => self.multi.extend(words.flat_map(u32::to_le_bytes)),
        }
        Ok(())
    }

    /// Write the staged slots when there are enough of them (or `all`).
    fn flush_staged(&mut self, all: bool) -> io::Result<()> {
        if all || self.staged.len() >= STAGED {
            let staged = std::mem::take(&mut self.staged);
            self.body(&staged)?;
            self.staged = staged;
            self.staged.clear();
        }
        Ok(())
    }

    fn empty_slot(&mut self) -> io::Result<()> {
        self.staged.extend_from_slice(&[0; 8]);
        self.staged.extend_from_slice(&EMPTY.to_le_bytes());
        self.next_slot += 1;
        self.flush_staged(false)
    }

    fn finish(
        mut self,
        names: Vec<(String, String)>,
        ledger_digest: u32,
        totals: Option<Vec<u64>>,
        below: Vec<u32>,
    ) -> io::Result<Written> {
        while self.next_slot < self.home_slots {
            self.empty_slot()?;
        }
        self.flush_staged(true)?;
        let multi = std::mem::take(&mut self.multi);
        let filter = std::mem::take(&mut self.filter);
        let mut buf = Vec::with_capacity(1 << 16);
        for chunk in multi.chunks(1 << 16) {
            self.body(chunk)?;
        }
        for chunk in filter.chunks(1 << 13) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
            self.body(&buf)?;
        }
        if self.in_block > 0 {
            let done = std::mem::replace(&mut self.block_crc, crc32fast::Hasher::new());
            self.blocks.push(done.finalize());
        }
        // the first version had neither the width nor the count of words
        // (its words were 4 bytes, and a power of two of them)
        let (multi_width, filter_bits, filter_words, magic) = match self.first_version {
            true => (0, filter.len().trailing_zeros(), 0, MAGIC_V1),
            false => (self.width as u32, 0, filter.len() as u64, MAGIC),
        };
        let header = Header {
            ledger_digest,
            records: self.records,
            home_slots: self.home_slots as u64,
            slots: self.next_slot as u64,
            multi: (multi.len() / self.width) as u64,
            multi_width,
            filter_bits,
            filter_words,
            below,
            scopes: names
                .into_iter()
                .zip(totals.as_ref().unwrap_or(&self.counts))
                .map(|((account, scope), &count)| ProbeScope {
                    account,
                    scope,
                    count,
                })
                .collect(),
        };
        let header = serde_json::to_vec(&header).map_err(io::Error::other)?;
        let mut tail: Vec<u8> = self.blocks.iter().flat_map(|c| c.to_le_bytes()).collect();
        tail.extend_from_slice(&header);
        let mut footer = Vec::with_capacity(FOOTER);
        footer.extend_from_slice(&(header.len() as u32).to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&tail).to_le_bytes());
        footer.extend_from_slice(magic);
        self.out.write_all(&tail)?;
        self.out.write_all(&footer)?;
        self.file_crc.update(&tail);
        self.file_crc.update(&footer);
        self.out.flush()?;
        Ok(Written {
            bytes: self.written + (tail.len() + footer.len()) as u64,
            crc32: self.file_crc.finalize(),
            contacts: self.records,
        })
    }
}

/// Build a probe in memory from (contact, scope) pairs in any order.
pub(crate) fn build(
    pairs: impl Iterator<Item = (u64, u32)>,
    scopes: Vec<(String, String)>,
    ledger_digest: u32,
) -> io::Result<Vec<u8>> {
    build_as(pairs, scopes, ledger_digest, false)
}

/// [`build`], in the file's first version.
#[cfg(test)]
pub(crate) fn build_first_version(
    pairs: impl Iterator<Item = (u64, u32)>,
    scopes: Vec<(String, String)>,
    ledger_digest: u32,
) -> io::Result<Vec<u8>> {
    build_as(pairs, scopes, ledger_digest, true)
}

fn build_as(
    pairs: impl Iterator<Item = (u64, u32)>,
    scopes: Vec<(String, String)>,
    ledger_digest: u32,
    first_version: bool,
) -> io::Result<Vec<u8>> {
    let changes = sorted_changes(pairs.map(|(c, s)| change(c, s, true)).collect());
    let mut out = Vec::new();
    let target = Target {
        scopes,
        ledger_digest,
        totals: None,
        below: &[],
    };
    write_as(&mut out, &[], &changes, target, first_version)?;
    Ok(out)
}

/// Sort changes as [`write`] takes them (in parallel: there may be
/// millions).
pub(crate) fn sorted_changes(mut changes: Vec<Change>) -> Vec<Change> {
    use rayon::slice::ParallelSliceMut;
    changes.par_sort_unstable();
    changes
}
