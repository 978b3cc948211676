//! The blocks of a packed key run (`OPTIDX02`, see `store::keys`): 256
//! records to a block, each column stored as its offset from the block's
//! smallest value in as few bits as the block's largest offset needs.
//!
//! ```text
//! header: per column (scope hash, contact, time, ledger, row, opt-out)
//!         its base (u64) and width in bits (u8); then the time's step
//!         (u64) and the block's number in its run (u32)
//! data:   the records, each the columns' offsets side by side in that
//!         order, bit-packed little-endian with no padding between them
//! ```
//!
//! Times are divided by the greatest common divisor of their offsets (the
//! step) first: events stamped to the second or the minute need no bits
//! for the microseconds. A column whose values are all the same takes no
//! bits at all (one scope, one ledger file, all opt-outs). Every record
//! can be read in place, without the ones before it: a search of a run
//! reads one block header and two columns per step.

use super::bits::{mask, u64_at, window};
use super::damage::Fault;
use super::keys::Entry;

/// Records per block (the last block of a run may hold fewer).
pub(super) const PER_BLOCK: usize = 256;
/// Columns: scope hash, contact, time, ledger, row, opt-out.
const COLUMNS: usize = 6;
const TIME: usize = 2;
/// Bytes of a block header.
pub(super) const HEAD: usize = COLUMNS * 9 + 8 + 4;
/// The widest a column's offsets may be.
const MAX_WIDTH: [u8; COLUMNS] = [64, 64, 64, 32, 32, 1];
/// Bytes of the largest block.
pub(super) const MAX_BLOCK: usize = HEAD + (PER_BLOCK * (64 * 3 + 32 * 2 + 1)).div_ceil(8);

/// A block's header, decoded.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    base: [u64; COLUMNS],
    width: [u8; COLUMNS],
    step: u64,
    /// The block's number in its run.
    pub number: u32,
    /// Where each column starts in a record, in bits.
    shift: [u32; COLUMNS],
    /// Bits per record.
    bits: u32,
}

impl Layout {
    /// Decode a block header (`head` holds at least [`HEAD`] bytes),
    /// checked.
    pub(super) fn parse(head: &[u8]) -> Result<Layout, Fault> {
        let head = head.get(..HEAD).ok_or("a block header cut short")?;
        if (0..COLUMNS).any(|c| head[c * 9 + 8] > MAX_WIDTH[c]) {
            return Err("a block column wider than its values".into());
        }
        Ok(Layout::read(head))
    }

    /// Decode a block header that [`Layout::parse`] accepted before (a
    /// run's blocks are checked when it is opened); `head` holds at least
    /// [`HEAD`] bytes.
    #[inline]
    pub(super) fn read(head: &[u8]) -> Layout {
        let mut base = [0u64; COLUMNS];
        let mut width = [0u8; COLUMNS];
        let mut shift = [0u32; COLUMNS];
        let mut bits = 0u32;
        for c in 0..COLUMNS {
            base[c] = u64_at(head, c * 9);
            width[c] = head[c * 9 + 8].min(MAX_WIDTH[c]);
            shift[c] = bits;
            bits += u32::from(width[c]);
        }
        Layout {
            base,
            width,
            step: u64_at(head, COLUMNS * 9),
            number: u32::from_le_bytes([head[HEAD - 4], head[HEAD - 3], head[HEAD - 2], head[HEAD - 1]]),
            shift,
            bits,
        }
    }

    /// Bytes of the data of a block of `count` records.
    pub(super) fn data_len(&self, count: usize) -> usize {
        (count * self.bits as usize).div_ceil(8)
    }

    /// Column `c`'s offset in record `i` of `data` (the block's data, and
    /// whatever follows it).
    #[inline]
    fn raw(&self, data: &[u8], i: usize, c: usize) -> u64 {
        let width = self.width[c];
        if width == 0 {
            return 0;
        }
        let bit = i * self.bits as usize + self.shift[c] as usize;
        let (byte, off) = (bit / 8, bit % 8);
        let word = u128::from_le_bytes(window(data, byte));
        (word >> off) as u64 & mask(u32::from(width))
    }

    #[inline]
    fn value(&self, data: &[u8], i: usize, c: usize) -> u64 {
        let raw = self.raw(data, i, c);
        let raw = if c == TIME {
            raw.wrapping_mul(self.step)
        } else {
            raw
        };
        self.base[c].wrapping_add(raw)
    }

    /// The key of record `i`.
    #[inline]
    pub(super) fn key(&self, data: &[u8], i: usize) -> (u64, u64) {
        (self.value(data, i, 0), self.value(data, i, 1))
    }

    /// Record `i`.
    pub(super) fn entry(&self, data: &[u8], i: usize) -> Entry {
        Entry {
            scope: self.value(data, i, 0),
            contact: self.value(data, i, 1),
            at: self.value(data, i, TIME) as i64,
            ledger: self.value(data, i, 3) as u32,
            row: self.value(data, i, 4) as u32,
            opt_out: self.value(data, i, 5) != 0,
        }
    }
}

/// The columns of a record as unsigned values (the time's bits as they are).
fn columns(e: &Entry) -> [u64; COLUMNS] {
    [
        e.scope,
        e.contact,
        e.at as u64,
        u64::from(e.ledger),
        u64::from(e.row),
        u64::from(e.opt_out),
    ]
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Append block `number` of a run, of 1 to [`PER_BLOCK`] records, to `out`.
pub(super) fn encode_block(number: u32, records: &[Entry], out: &mut Vec<u8>) {
    let mut base = [u64::MAX; COLUMNS];
    let mut min_at = i64::MAX;
    for e in records {
        for (b, v) in base.iter_mut().zip(columns(e)) {
            *b = (*b).min(v);
        }
        min_at = min_at.min(e.at);
    }
    base[TIME] = min_at as u64;
    // offsets from the base; times divided by their common step
    let offset = |e: &Entry| -> [u64; COLUMNS] {
        let mut v = columns(e);
        for (x, b) in v.iter_mut().zip(base) {
            *x = x.wrapping_sub(b);
        }
        v
    };
    let step = records.iter().fold(0, |g, e| gcd(g, offset(e)[TIME])).max(1);
    let mut top = [0u64; COLUMNS];
    for e in records {
        let mut v = offset(e);
        v[TIME] /= step;
        for (t, x) in top.iter_mut().zip(v) {
            *t = (*t).max(x);
        }
    }
    let width: Vec<u8> = top.iter().map(|t| (64 - t.leading_zeros()) as u8).collect();
    for c in 0..COLUMNS {
        out.extend_from_slice(&base[c].to_le_bytes());
        out.push(width[c]);
    }
    out.extend_from_slice(&step.to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    // the records' bits, low bits first
    let (mut acc, mut held) = (0u128, 0u32);
    for e in records {
        let mut v = offset(e);
        v[TIME] /= step;
        for c in 0..COLUMNS {
            if width[c] == 0 {
                continue;
            }
            acc |= u128::from(v[c]) << held;
            held += u32::from(width[c]);
            while held >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                held -= 8;
            }
        }
    }
    if held > 0 {
        out.push(acc as u8);
    }
}

/// Decode the `count` records of a block (its header and data in `block`).
#[cfg(test)]
fn decode_block(block: &[u8], count: usize, out: &mut Vec<Entry>) -> Result<(), Fault> {
    let layout = Layout::parse(block)?;
    let data = &block[HEAD..];
    if data.len() < layout.data_len(count) {
        return Err("a block cut short".into());
    }
    out.extend((0..count).map(|i| layout.entry(data, i)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(records: &[Entry]) {
        let mut out = Vec::new();
        encode_block(9, records, &mut out);
        let layout = Layout::parse(&out).unwrap();
        assert_eq!(out.len(), HEAD + layout.data_len(records.len()));
        assert!(out.len() <= MAX_BLOCK);
        assert_eq!(layout.number, 9);
        let mut back = Vec::new();
        decode_block(&out, records.len(), &mut back).unwrap();
        assert_eq!(back, records);
        for (i, e) in records.iter().enumerate() {
            assert_eq!(layout.key(&out[HEAD..], i), e.key());
        }
    }

    #[test]
    fn blocks_give_back_what_they_were_given() {
        let e = |scope, contact, at, ledger, row, opt_out| Entry {
            scope,
            contact,
            at,
            ledger,
            row,
            opt_out,
        };
        // one record; all the same but the key; extremes of every column
        round_trip(&[e(1, 2, 3, 4, 5, true)]);
        round_trip(
            &(0..256)
                .map(|i| e(9, 100 + i, 60_000_000, 2, 7, false))
                .collect::<Vec<_>>(),
        );
        round_trip(&[
            e(0, 0, i64::MIN, 0, 0, false),
            e(u64::MAX, u64::MAX, i64::MAX, u32::MAX, u32::MAX, true),
            e(u64::MAX / 3, 447_000_000_123, -1, 1, u32::MAX - 1, false),
        ]);
        // times to the minute: the step takes the microseconds out
        let mut rng = 7u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rng >> 33
        };
        let minutes: Vec<Entry> = (0..256u64)
            .map(|i| {
                let at = 1_790_000_000_000_000 + (next() % 40_000) as i64 * 60_000_000;
                e(
                    5,
                    447_000_000_000 + i * 977,
                    at,
                    3,
                    (next() % 10_000_000) as u32,
                    i % 3 == 0,
                )
            })
            .collect();
        round_trip(&minutes);
        let mut out = Vec::new();
        encode_block(0, &minutes, &mut out);
        let layout = Layout::parse(&out).unwrap();
        assert!(layout.width[TIME] <= 16, "{layout:?}");
        assert!(out.len() < 256 * 9, "{} bytes", out.len());
    }

    #[test]
    fn a_header_claiming_too_wide_a_column_is_refused() {
        let mut out = Vec::new();
        let one = Entry {
            scope: 1,
            contact: 2,
            at: 3,
            ledger: 4,
            row: 5,
            opt_out: true,
        };
        encode_block(0, &[one], &mut out);
        out[5 * 9 + 8] = 2;
        assert!(Layout::parse(&out).is_err());
    }
}
