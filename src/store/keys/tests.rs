//! Key runs: a seeker, both formats and damaged runs, against a search of
//! the records themselves.

use super::super::key_lookup::KeyLookup;
use super::super::key_write::{encode_fixed, encode_keys, write_keys};
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

/// Records over a few scopes, contacts spread, times to the second.
fn sample(n: u64) -> Vec<Entry> {
    let mut v: Vec<Entry> = (0..n)
        .map(|i| Entry {
            scope: [3u64, 1 << 40, u64::MAX - 5][(i % 3) as usize],
            contact: 447_000_000_000 + i * 7919 % 1_000_003,
            at: 1_790_000_000_000_000 + (i as i64 % 86_400) * 1_000_000,
            ledger: (i % 4) as u32,
            row: (i * 31 % 100_000) as u32,
            opt_out: i % 5 != 0,
        })
        .collect();
    v.sort_by_key(Entry::key);
    v.dedup_by_key(|x| x.key());
    v
}

#[test]
fn both_formats_answer_every_lookup_alike() {
    let dir = tempfile::tempdir().unwrap();
    for n in [0u64, 1, 255, 256, 257, 5000, 20_000] {
        let v = sample(n);
        let keys: Vec<(u64, u64)> = v
            .iter()
            .step_by(3)
            .flat_map(|e| [e.key(), (e.scope, e.contact + 1), (e.scope, e.contact - 1)])
            .chain([(0, 0), (u64::MAX, u64::MAX)])
            .collect();
        // a packed run's own blocks file (fenced) and one of small blocks
        // (not fenced: searched through the offsets)
        let mut own = Vec::new();
        let written = write_keys(&mut own, &[], v.iter().copied(), 1 << 14).unwrap();
        for (name, bytes, table) in [
            ("packed", own, Some(written.blocks)),
            ("packed, small blocks", encode_keys(&[], &v), None),
            ("fixed", encode_fixed(&[], &v), None),
        ] {
            let run = KeyRun::from_bytes(bytes.clone()).unwrap();
            assert_eq!(run.len(), v.len());
            assert_eq!(run.iter().collect::<Vec<_>>(), v, "{name} {n}");
            let mut reader = run.reader();
            assert!((0..v.len()).all(|i| reader.entry(i) == v[i]));
            // a lookup through its blocks file, verified where it reads
            let path = dir.path().join(format!("{name}-{n}"));
            std::fs::write(&path, &bytes).unwrap();
            let start = 12 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
            let fence_of: super::super::blocks::Fence<'_> = &fence;
            let fixed = name == "fixed";
            let table = table.unwrap_or_else(|| {
                super::super::blocks::encode(&bytes, start, 4096, fixed.then_some(fence_of))
            });
            let blocks = super::super::blocks::Blocks::decode(&table, bytes.len()).unwrap();
            let checked =
                super::super::blocks::Checked::open_as(&path, bytes.len() as u64, blocks, false).unwrap();
            let lookup = KeyLookup::new(checked).unwrap();
            for &(s, c) in &keys {
                let want = v.binary_search_by_key(&(s, c), Entry::key).ok().map(|i| v[i]);
                assert_eq!(run.get(s, c), want, "{name} {n}");
                assert_eq!(lookup.get(s, c).unwrap(), want, "{name} {n}");
            }
        }
    }
}

#[test]
fn a_packed_run_out_of_shape_is_refused_not_read() {
    let v = sample(2000);
    let good = encode_keys(&[], &v);
    let recrc = |mut b: Vec<u8>| {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let n = good.len();
    let blocks = v.len().div_ceil(PER_BLOCK);
    let dir = n - 12 - 8 * blocks;
    // every byte of the offsets and the count, changed under a good CRC;
    // and the records of one block swapped
    for at in dir..n - 4 {
        for bit in [0u8, 3, 7] {
            let mut b = good.clone();
            b[at] ^= 1 << bit;
            assert!(KeyRun::from_bytes(recrc(b)).is_err(), "byte {at} bit {bit}");
        }
    }
    let mut swapped = v.clone();
    swapped.swap(300, 301);
    assert_eq!(
        KeyRun::from_bytes(encode_keys(&[], &swapped))
            .err()
            .map(|e| e.to_string()),
        Some("records out of order".to_string())
    );
    let mut across = v.clone();
    across.swap(255, 256);
    assert!(KeyRun::from_bytes(encode_keys(&[], &across)).is_err());
}
