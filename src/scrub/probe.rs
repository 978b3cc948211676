//! Contact → the scopes it is opted out in, built from the snapshot's
//! bitmaps each time a scrubber is made, so built fast: one sort, no hash
//! table. Contacts are keyed by `c × K` (K odd: a bijection on u64, so
//! equal keys are equal contacts), sorted; a directory of the keys' top
//! bits finds a key's place in one step. A filter of about 16 bits per
//! contact answers most rows (not opted out) from a table that stays in
//! cache.

use rayon::slice::ParallelSliceMut;

/// The multiplier of the key (odd, from the golden ratio).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// See the module documentation.
pub struct Probe {
    /// Distinct contacts as keys, sorted.
    keys: Vec<u64>,
    /// Where each key's scopes start in `scopes` (and one past the last).
    starts: Vec<u32>,
    /// Scope ids, sorted within each key.
    scopes: Vec<u32>,
    /// Where the keys with each value of their top bits start in `keys`
    /// (and one past the last).
    dir: Vec<u32>,
    dir_shift: u32,
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
        let mut keys: Vec<u64> = Vec::with_capacity(pairs.len());
        let mut starts: Vec<u32> = Vec::with_capacity(pairs.len() + 1);
        let mut scopes: Vec<u32> = Vec::with_capacity(pairs.len());
        for (i, &(k, s)) in pairs.iter().enumerate() {
            if i == 0 || pairs[i - 1].0 != k {
                keys.push(k);
                starts.push(scopes.len() as u32);
            }
            scopes.push(s);
        }
        starts.push(scopes.len() as u32);
        drop(pairs);
        // the directory: about one key per entry
        let dir_bits = bits_for(keys.len(), 1);
        let dir_shift = 64 - dir_bits;
        let mut dir: Vec<u32> = Vec::with_capacity((1 << dir_bits) + 1);
        let mut at = 0usize;
        for t in 0..=(1u64 << dir_bits) {
            while at < keys.len() && (keys[at] >> dir_shift) < t {
                at += 1;
            }
            dir.push(at as u32);
        }
        // the filter: about 16 bits per key, in words of 64, at least 64
        let word_bits = bits_for(keys.len() / 4, 6);
        let shift = 64 - word_bits;
        let mut filter = vec![0u64; 1 << word_bits];
        for &k in &keys {
            filter[(k >> shift) as usize] |= mask(k);
        }
        Probe {
            keys,
            starts,
            scopes,
            dir,
            dir_shift,
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
        let t = (k >> self.dir_shift) as usize;
        let (from, to) = (self.dir[t] as usize, self.dir[t + 1] as usize);
        for i in from..to {
            if self.keys[i] == k {
                return &self.scopes[self.starts[i] as usize..self.starts[i + 1] as usize];
            }
            if self.keys[i] > k {
                break;
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
