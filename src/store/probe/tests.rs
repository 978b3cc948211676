//! The probe file: lookups against a map, merges against a build from
//! scratch, damage.

use std::collections::BTreeMap;

use super::*;

fn names(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| ("a".to_string(), format!("s{i}"))).collect()
}

fn pairs(n: usize, seed: u64) -> Vec<(u64, u32)> {
    let mut x = 0x1234_5678_9abc_def0u64 ^ seed;
    let mut out = Vec::new();
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = if i % 3 == 0 {
            447_700_900_000 + (i as u64 % 5000)
        } else {
            x % 1_000_000_000_000_000
        };
        out.push((c, (x % 7) as u32));
    }
    out.extend([(0, 1), (u64::MAX, 2), (0, 1)]);
    out
}

fn model(pairs: &[(u64, u32)]) -> BTreeMap<u64, Vec<u32>> {
    let mut want: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for &(c, s) in pairs {
        want.entry(c).or_default().push(s);
    }
    for v in want.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    want
}

fn assert_answers(p: &ProbeFile, want: &BTreeMap<u64, Vec<u32>>) {
    for (c, scopes) in want {
        assert!(p.may_hit(*c), "{c}");
        assert_eq!(&p.hits(*c), scopes, "{c}");
    }
    let mut misses = 0;
    for c in (1..20_000u64).map(|i| i.wrapping_mul(0x2545_F491_4F6C_DD1D)) {
        if !want.contains_key(&c) {
            assert!(p.hits(c).is_empty(), "{c}");
            misses += usize::from(p.may_hit(c));
        }
    }
    assert!(misses < 20_000 / 40, "{misses} false positives");
    assert_eq!(p.contacts(), want.len() as u64);
    for (i, s) in p.scopes.iter().enumerate() {
        let n = want.values().filter(|v| v.contains(&(i as u32))).count() as u64;
        assert_eq!(s.count, n, "scope {i}");
    }
}

#[test]
fn finds_what_a_map_finds() {
    for n in [0usize, 1, 2, 3, 1000, 50_000] {
        let pairs = pairs(n, n as u64);
        let want = model(&pairs);
        let bytes = build(pairs.into_iter(), names(7), 9).expect("build");
        let p = ProbeFile::from_bytes(bytes).expect("open");
        assert_eq!(p.ledger_digest, 9);
        p.verify_all().expect("sound");
        assert_answers(&p, &want);
    }
}

#[test]
fn a_merge_equals_a_build_from_scratch() {
    let first = pairs(30_000, 1);
    let old = ProbeFile::from_bytes(build(first.iter().copied(), names(7), 1).expect("build")).expect("open");
    // scope 3 disappears, a new scope comes first: old i → i + 1
    let remap: Vec<Option<u32>> = (0..7).map(|i| (i != 3).then_some(i + 1)).collect();
    let mut model_pairs: Vec<(u64, u32)> = first
        .iter()
        .filter(|p| p.1 != 3)
        .map(|&(c, s)| (c, s + 1))
        .collect();
    let mut changes = Vec::new();
    let more = pairs(5_000, 2);
    for (i, &(c, s)) in more.iter().enumerate() {
        let s = s + 1;
        if i % 4 == 0 {
            // an opt-in, of a contact that may or may not be there
            changes.push(change(c, s, false));
            model_pairs.retain(|p| *p != (c, s));
        } else if s != 4 {
            changes.push(change(c, s, true));
            model_pairs.push((c, s));
        }
    }
    // the new scope 0
    changes.push(change(447_700_900_001, 0, true));
    model_pairs.push((447_700_900_001, 0));
    let changes = sorted_changes(changes);
    let mut bytes = Vec::new();
    let mut names8 = names(8);
    names8[0].1 = "new".into();
    let target = Target {
        scopes: names8.clone(),
        ledger_digest: 2,
        totals: None,
        below: &[],
    };
    let old = [Source {
        file: &old,
        remap: &remap,
    }];
    write(&mut bytes, &old, &changes, target).expect("write");
    let merged = ProbeFile::from_bytes(bytes.clone()).expect("open");
    merged.verify_all().expect("sound");
    assert_answers(&merged, &model(&model_pairs));
    let scratch = build(model_pairs.iter().copied(), names8, 2).expect("build");
    let scratch = ProbeFile::from_bytes(scratch).expect("open");
    let all: Vec<_> = merged.records().collect();
    assert_eq!(all.len() as u64, scratch.contacts());
    for (k, _) in all {
        let c = k.wrapping_mul(INVERSE);
        assert_eq!(merged.hits(c), scratch.hits(c));
    }
}

/// K⁻¹ mod 2^64: turns a key back into its contact (tests only).
const INVERSE: u64 = {
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(inv)));
        i += 1;
    }
    inv
};

#[test]
fn the_inverse_is_one() {
    assert_eq!(K.wrapping_mul(INVERSE), 1);
}

#[test]
fn damage_is_found_and_never_panics() {
    let bytes = build(pairs(3000, 5).into_iter(), names(7), 3).expect("build");
    let want = model(&pairs(3000, 5));
    let len = bytes.len();
    // flips through the body, the block table, the header and footer
    for at in (0..len).step_by(97).chain(len - 40..len) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x41;
        match ProbeFile::from_bytes(bad) {
            Err(_) => {}
            Ok(p) => {
                // lookups stay in bounds, and verification catches it
                for c in want.keys().take(50) {
                    let _ = p.hits(*c);
                    let _ = p.may_hit(*c);
                }
                assert!(p.verify_all().is_err(), "flip at {at} of {len}");
            }
        }
    }
    for cut in [0, 1, 15, 16, len / 2, len - 1] {
        assert!(
            ProbeFile::from_bytes(bytes[..cut].to_vec()).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_lookup_verifies_what_it_reads() {
    let pairs = pairs(40_000, 8);
    let want = model(&pairs);
    let bytes = build(pairs.into_iter(), names(7), 3).expect("build");
    let (&c, _) = want.iter().nth(1234).expect("a contact");
    let p = ProbeFile::from_bytes(bytes.clone()).expect("open");
    let i = p.find(key(c)).expect("found");
    let mut bad = bytes;
    bad[i * RECORD + 8] ^= 1;
    // a probe in memory is taken as sound; a mapped one is checked
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p");
    std::fs::write(&path, &bad).expect("write");
    let p = ProbeFile::open(&path).expect("header is sound");
    let (&other, _) = want
        .iter()
        .find(|(o, _)| {
            let (found, read) = p.scan(key(**o));
            let bad = i * RECORD / BLOCK;
            found.is_some() && read.start * RECORD / BLOCK > bad
        })
        .expect("a contact elsewhere");
    let _ = p.hits(other);
    assert_eq!(p.damage(), None, "a lookup elsewhere reads sound blocks");
    let _ = p.hits(c);
    assert!(p.damage().is_some_and(|d| d.contains("checksum mismatch")));
}

/// `pairs` over `n` scopes: the seven scopes of [`pairs`] spread over
/// them, and every third contact in one of the last five scopes too.
fn pairs_over(n: u32, count: usize, seed: u64) -> Vec<(u64, u32)> {
    let step = n / 7;
    let mut out: Vec<(u64, u32)> = pairs(count, seed)
        .into_iter()
        .map(|(c, s)| (c, s * step + (c % u64::from(step)) as u32))
        .collect();
    let more: Vec<(u64, u32)> = out.iter().step_by(3).map(|&(c, s)| (c, n - 1 - s % 5)).collect();
    out.extend(more);
    out
}

#[test]
fn words_are_as_narrow_as_the_scopes_allow() {
    for (scopes, width) in [
        (7u32, 1usize),
        (255, 1),
        (256, 2),
        (300, 2),
        (65_535, 2),
        (70_000, 4),
    ] {
        let pairs = pairs_over(scopes, 1500, u64::from(scopes));
        assert!(
            pairs.iter().any(|p| p.1 + 7 >= scopes),
            "the last scopes are used"
        );
        let want = model(&pairs);
        assert!(want.values().any(|v| v.len() > 1), "contacts in several scopes");
        let bytes = build(pairs.into_iter(), names(scopes as usize), 4).expect("build");
        let p = ProbeFile::from_bytes(bytes).expect("open");
        assert_eq!(p.multi_width, width, "{scopes} scopes");
        p.verify_all().expect("sound");
        assert_answers(&p, &want);
    }
}

#[test]
fn a_file_of_the_first_version_is_read() {
    for (scopes, count) in [(7u32, 20_000usize), (300, 3000)] {
        let pairs = pairs_over(scopes, count, 3);
        let want = model(&pairs);
        let old =
            write::build_first_version(pairs.iter().copied(), names(scopes as usize), 4).expect("build");
        let p = ProbeFile::from_bytes(old.clone()).expect("open");
        assert_eq!(p.multi_width, 4);
        assert!(p.filter_words.is_power_of_two());
        p.verify_all().expect("sound");
        assert_answers(&p, &want);
        // and a merge of it writes the second version, with the same answers
        let remap: Vec<Option<u32>> = (0..scopes).map(Some).collect();
        let mut bytes = Vec::new();
        let target = Target {
            scopes: names(scopes as usize),
            ledger_digest: 4,
            totals: None,
            below: &[],
        };
        let source = [Source {
            file: &p,
            remap: &remap,
        }];
        write(&mut bytes, &source, &[], target).expect("write");
        assert_eq!(&bytes[bytes.len() - 8..], MAGIC);
        let merged = ProbeFile::from_bytes(bytes).expect("open");
        assert_answers(&merged, &want);
        // narrow words under the old magic are refused, not misread
        let mut narrow = build(pairs.into_iter(), names(scopes as usize), 4).expect("build");
        let len = narrow.len();
        narrow[len - 8..].copy_from_slice(MAGIC_V1);
        assert!(ProbeFile::from_bytes(narrow).is_err());
        // and a first version's file under the new magic is refused too
        let mut relabelled = old;
        let len = relabelled.len();
        relabelled[len - 8..].copy_from_slice(MAGIC);
        assert!(ProbeFile::from_bytes(relabelled).is_err());
    }
}

#[test]
fn a_merge_sizes_its_table_for_the_contacts_it_holds() {
    // the changes opt most contacts out in one scope more: a merge holds
    // about as many contacts as the file it merges, not twice as many
    let first = pairs(30_000, 11);
    let old = ProbeFile::from_bytes(build(first.iter().copied(), names(7), 1).expect("build")).expect("open");
    let want = model(&first);
    let changes: Vec<write::Change> = want.keys().step_by(2).map(|&c| change(c, 6, true)).collect();
    let remap: Vec<Option<u32>> = (0..7).map(Some).collect();
    let source = [Source {
        file: &old,
        remap: &remap,
    }];
    for below in [false, true] {
        let mut bytes = Vec::new();
        let target = Target {
            scopes: names(7),
            ledger_digest: 1,
            totals: None,
            below: if below { &source } else { &[] },
        };
        let merged: &[Source] = if below { &[] } else { &source };
        write(&mut bytes, merged, &sorted_changes(changes.clone()), target).expect("write");
        let p = ProbeFile::from_bytes(bytes).expect("open");
        let held = if below { changes.len() } else { want.len() };
        assert_eq!(p.records, held);
        assert!(
            p.home_slots <= held * 4 / 3 + 1,
            "{} home slots for {held} contacts",
            p.home_slots
        );
    }
}
