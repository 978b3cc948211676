//! Contact → the scopes it is opted out in, built from the snapshot's
//! bitmaps each time a scrubber is made, so built fast: one sort, no
//! hashing table to fill at random. Contacts are keyed by `c × K` (K odd: a
//! bijection on u64, so equal keys are equal contacts) and laid out in key
//! order in a table twice their number, each at the slot its key's top bits
//! name or just after the keys before it: a probe reads one entry (a cache
//! line) in the usual case, which also holds the scope when there is one.
//! A filter of about 16 bits per contact answers most rows (not opted out)
//! from a table that stays in cache.

use rayon::slice::ParallelSliceMut;

/// The multiplier of the key (odd, from the golden ratio).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// A slot of the table: no key when `count` is 0.
#[derive(Clone, Copy, Default)]
struct Entry {
    key: u64,
    /// The scope itself when `count` is 1, else where the scopes start in
    /// [`Probe::scopes`].
    at: u32,
    count: u32,
}

/// See the module documentation.
pub struct Probe {
    /// Keys in key order, each at or after the slot `key >> slot_shift`.
    table: Vec<Entry>,
    slot_shift: u32,
    /// Scope ids of contacts in more than one scope, sorted per contact.
    scopes: Vec<u32>,
    /// A word per value of a key's top bits, with three bits set for
    /// every key (a blocked Bloom filter).
    filter: Vec<u64>,
    shift: u32,
}

fn key(contact: u64) -> u64 {
    contact.wrapping_mul(K)
}

/// A key's three bits in its word of the filter (from bits of the key
/// below those that choose the word): one word read per probe, about one
/// in a hundred misses let through.
fn mask(k: u64) -> u64 {
    1 << ((k >> 20) & 63) | 1 << ((k >> 26) & 63) | 1 << ((k >> 32) & 63)
}

/// Bits enough to number `n` slots (at least `min`).
fn bits_for(n: usize, min: u32) -> u32 {
    (n.max(1).next_power_of_two().trailing_zeros()).max(min)
}

impl Probe {
    /// From (contact, scope id) pairs, in any order, repeats allowed.
    pub fn new(pairs: Vec<(u64, u32)>) -> Probe {
        let mut pairs: Vec<(u64, u32)> = pairs.into_iter().map(|(c, s)| (key(c), s)).collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        let distinct = pairs
            .iter()
            .enumerate()
            .filter(|(i, p)| *i == 0 || pairs[i - 1].0 != p.0)
            .count();
        // twice the slots of the keys: runs stay short
        let slot_bits = bits_for(distinct * 2, 1);
        let slot_shift = 64 - slot_bits;
        let mut table: Vec<Entry> = Vec::with_capacity((1 << slot_bits) + 64);
        let mut scopes: Vec<u32> = Vec::new();
        let word_bits = bits_for(distinct / 4, 6);
        let shift = 64 - word_bits;
        let mut filter = vec![0u64; 1 << word_bits];
        let mut i = 0;
        while i < pairs.len() {
            let k = pairs[i].0;
            let run = pairs[i..].iter().take_while(|p| p.0 == k).count();
            let entry = if run == 1 {
                Entry {
                    key: k,
                    at: pairs[i].1,
                    count: 1,
                }
            } else {
                let at = scopes.len() as u32;
                scopes.extend(pairs[i..i + run].iter().map(|p| p.1));
                Entry {
                    key: k,
                    at,
                    count: run as u32,
                }
            };
            // at its own slot, or just after the key before it
            let home = (k >> slot_shift) as usize;
            if table.len() < home {
                table.resize(home, Entry::default());
            }
            table.push(entry);
            filter[(k >> shift) as usize] |= mask(k);
            i += run;
        }
        Probe {
            table,
            slot_shift,
            scopes,
            filter,
            shift,
        }
    }

    /// False when the contact is surely not opted out anywhere.
    pub fn may_hit(&self, contact: u64) -> bool {
        let k = key(contact);
        let m = mask(k);
        self.filter[(k >> self.shift) as usize] & m == m
    }

    /// The scopes the contact is opted out in, sorted.
    pub fn hits(&self, contact: u64) -> &[u32] {
        let k = key(contact);
        // the keys from a key's own slot to its place fill every slot
        // between: an empty slot or a larger key says it is not there
        let from = (k >> self.slot_shift) as usize;
        for e in self.table.get(from..).unwrap_or_default() {
            if e.count == 0 || e.key > k {
                break;
            }
            if e.key == k {
                return match e.count {
                    1 => std::slice::from_ref(&e.at),
                    n => &self.scopes[e.at as usize..(e.at + n) as usize],
                };
            }
        }
        &[]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn finds_what_a_map_finds() {
        for n in [0usize, 1, 2, 3, 1000, 50_000] {
            // contacts spread and clustered, some in several scopes, repeats
            let mut x = 0x1234_5678_9abc_def0u64 ^ n as u64;
            let mut pairs = Vec::new();
            for i in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let c = if i % 3 == 0 {
                    447_700_900_000 + (i as u64 % 5000)
                } else {
                    x
                };
                pairs.push((c, (x % 7) as u32));
            }
            pairs.extend([(0, 1), (u64::MAX, 2), (0, 1)]);
            let mut want: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
            for &(c, s) in &pairs {
                want.entry(c).or_default().push(s);
            }
            for v in want.values_mut() {
                v.sort_unstable();
                v.dedup();
            }
            let p = Probe::new(pairs);
            for (c, scopes) in &want {
                assert!(p.may_hit(*c), "{c}");
                assert_eq!(p.hits(*c), scopes.as_slice(), "{c}");
            }
            let mut misses = 0;
            for c in (1..20_000u64).map(|i| i.wrapping_mul(0x2545_F491_4F6C_DD1D)) {
                if !want.contains_key(&c) {
                    assert!(p.hits(c).is_empty(), "{c}");
                    misses += usize::from(p.may_hit(c));
                }
            }
            // about one in a hundred passes the filter
            assert!(misses < 20_000 / 40, "{n}: {misses} false positives");
        }
    }
}
