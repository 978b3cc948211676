//! A fast, non-cryptographic hasher for in-process tables keyed by phone
//! numbers and short ids. Inputs come from our own files, and a table is
//! never exposed to a network peer, so HashDoS resistance (SipHash's cost)
//! buys nothing here.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-mix for integers, FNV-1a for bytes.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { FNV_OFFSET } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        self.0 = h;
    }

    fn write_u64(&mut self, x: u64) {
        let m = (self.0 ^ x).wrapping_mul(MIX);
        self.0 = m ^ (m >> 32);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap<K, V, FastBuild>`.
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;
/// A HashMap with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;
