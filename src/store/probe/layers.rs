//! The probe as a scrub reads it: one file, or a few layers of them.
//!
//! A commit that changes a small part of a large store writes a layer, not
//! a new whole probe: the contacts it changed, each with all the scopes it
//! is now opted out in (none, for one opted out nowhere now). A lookup
//! takes the contact's scopes from the newest layer that holds it. Layers
//! are merged size-tiered, as the key runs are (the store's commit says
//! when), so a store has a few of them and each opt-out is rewritten a few
//! times, where a whole probe per commit rewrote all of them every time.
//!
//! Every layer lists its scopes as they were when it was written; the
//! newest lists the store's, with their counts over the whole store, and
//! an older layer's scopes are moved to that list when the probe opens.

use super::{ProbeFile, ProbeScope};
use crate::store::damage::Fault;

/// An opened probe: its layers, newest first.
pub struct Probe {
    layers: Vec<ProbeFile>,
    /// For each layer after the first, its scope indices in the first's
    /// list (`None` for a scope the first has not: none has, since a
    /// commit that drops a scope writes the probe whole).
    remaps: Vec<Vec<Option<u32>>>,
}

impl Probe {
    /// A probe of one file.
    pub fn single(file: ProbeFile) -> Probe {
        Probe {
            layers: vec![file],
            remaps: Vec::new(),
        }
    }

    /// A probe of layers, newest first. Each must have been written over
    /// exactly the layers after it (their fingerprints say so).
    pub fn layered(layers: Vec<ProbeFile>) -> Result<Probe, Fault> {
        if layers.is_empty() {
            return Err("no probe layers".into());
        }
        for (i, l) in layers.iter().enumerate() {
            let under: Vec<u32> = layers[i + 1..].iter().map(|u| u.fingerprint).collect();
            if l.below != under {
                return Err(
                    format!("{} was not written over the layers the manifest names", l.origin).into(),
                );
            }
        }
        let at: std::collections::HashMap<(&str, &str), u32> = layers[0]
            .scopes
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.account.as_str(), s.scope.as_str()), i as u32))
            .collect();
        let remaps = layers[1..]
            .iter()
            .map(|l| l.remap(|a, s| at.get(&(a, s)).copied()))
            .collect();
        Ok(Probe { layers, remaps })
    }

    /// The store's scopes (sorted by account and scope), with the
    /// contacts opted out in each.
    pub fn scopes(&self) -> &[ProbeScope] {
        &self.layers[0].scopes
    }

    /// The files, newest first.
    pub fn layers(&self) -> &[ProbeFile] {
        &self.layers
    }

    /// False when the contact is surely opted out nowhere.
    #[cfg(test)]
    pub fn may_hit(&self, contact: u64) -> bool {
        self.layers.iter().any(|l| l.may_hit(contact))
    }

    /// Where the contact's scopes lie, if any layer holds it: what
    /// [`Probe::for_each_scope`] reads them from. Lookups of many rows ask
    /// this first, in a loop of its own, so that their reads overlap.
    #[inline]
    pub fn value(&self, contact: u64) -> Option<u64> {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.may_hit(contact))
            .find_map(|(i, l)| l.value(contact).map(|v| Probe::tag(i, v)))
    }

    /// [`Probe::value`] of many contacts (`None`: no contact), layer by
    /// layer: the filter's words of every row, then the slots of the rows
    /// that pass, each in a tight loop of independent reads whose misses
    /// overlap; a row found in a layer is not looked up in older ones.
    pub fn values(&self, keys: &[Option<u64>]) -> Vec<Option<u64>> {
        // the newest layer over every row (the whole probe, most often):
        // no list of the rows still to look up
        let first = &self.layers[0];
        let maybe: Vec<bool> = keys.iter().map(|k| k.is_some_and(|k| first.may_hit(k))).collect();
        let mut out: Vec<Option<u64>> = keys
            .iter()
            .zip(maybe)
            .map(|(k, maybe)| match (k, maybe) {
                (Some(k), true) => first.value(*k).map(u64::from),
                _ => None,
            })
            .collect();
        if self.layers.len() == 1 {
            return out;
        }
        let mut pending: Vec<(u32, u64)> = keys
            .iter()
            .zip(&out)
            .enumerate()
            .filter_map(|(i, (k, v))| match (k, v) {
                (Some(k), None) => Some((i as u32, *k)),
                _ => None,
            })
            .collect();
        for (at, layer) in self.layers.iter().enumerate().skip(1) {
            let maybe: Vec<bool> = pending.iter().map(|&(_, k)| layer.may_hit(k)).collect();
            let mut rest = Vec::with_capacity(pending.len());
            for (&(i, k), maybe) in pending.iter().zip(maybe) {
                match maybe.then(|| layer.value(k)).flatten() {
                    Some(v) => out[i as usize] = Some(Probe::tag(at, v)),
                    None => rest.push((i, k)),
                }
            }
            pending = rest;
        }
        out
    }

    /// A layer's value, with the layer it lies in ([`Probe::split`]).
    fn tag(layer: usize, v: u32) -> u64 {
        (layer as u64) << 32 | u64::from(v)
    }

    fn split(v: u64) -> (usize, u32) {
        ((v >> 32) as usize, v as u32)
    }

    /// Read the first word of a value's scopes (see
    /// [`ProbeFile::touch_scopes`]).
    #[inline]
    pub fn touch_scopes(&self, v: u64) -> u32 {
        let (layer, v) = Probe::split(v);
        self.layers.get(layer).map_or(0, |l| l.touch_scopes(v))
    }

    /// Call `f` with each scope (an index into [`Probe::scopes`]) of a
    /// value: ascending for the newest layer, in the layer's order for
    /// an older one.
    #[inline]
    pub fn for_each_scope(&self, v: u64, mut f: impl FnMut(u32)) {
        let (layer, v) = Probe::split(v);
        match layer {
            0 => self.layers[0].for_each_scope(v, f),
            _ => {
                let (Some(l), Some(remap)) = (self.layers.get(layer), self.remaps.get(layer - 1)) else {
                    return;
                };
                l.for_each_scope(v, |s| {
                    if let Some(s) = remap.get(s as usize).copied().flatten() {
                        f(s);
                    }
                });
            }
        }
    }

    /// The scopes a contact is opted out in, ascending.
    #[cfg(test)]
    pub fn hits(&self, contact: u64) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(v) = self.value(contact) {
            self.for_each_scope(v, |s| out.push(s));
        }
        out.sort_unstable();
        out
    }

    /// Check every block of every layer not checked yet (see
    /// [`ProbeFile::check_all`]).
    pub fn check_all(&self) {
        for l in &self.layers {
            l.check_all();
        }
    }

    /// The first damage a read found: the damaged file, and what was wrong.
    pub fn damage(&self) -> Option<(&str, &str)> {
        self.layers
            .iter()
            .find_map(|l| l.damage().map(|why| (l.origin.as_str(), why)))
    }

    /// Opted-out (account, scope, contact) keys in all.
    pub fn opt_outs(&self) -> u64 {
        self.scopes().iter().map(|s| s.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::{change, sorted_changes, write, ProbeFile, Source, Target};
    use super::*;

    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    fn open(files: &[ProbeFile]) -> Probe {
        let layers = files
            .iter()
            .rev()
            .map(|f| ProbeFile::from_bytes(f.bytes.to_vec()).expect("reopen"))
            .collect();
        Probe::layered(layers).expect("layers fit")
    }

    /// Commits of opt-outs and opt-ins, scopes that come and go, written
    /// as layers merged in every way the commit may choose: every contact
    /// gets the scopes a plain map of the same changes gives it.
    #[test]
    fn layers_answer_as_the_changes_say() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let pool: Vec<u64> = (0..4000u64).map(|i| 447_700_000_000 + i * 7919).collect();
        let mut model: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        let mut files: Vec<ProbeFile> = Vec::new();
        let (mut layered, mut most) = (0, 0);
        for round in 0..14u64 {
            // this round's scopes to change: a few old ones and one new
            let scope_pool: Vec<String> = (0..4).map(|i| format!("s{}", (round + i) % 9)).collect();
            let mut batch: BTreeMap<(u64, String), bool> = BTreeMap::new();
            let n = if round == 0 { 3000 } else { 50 + next(&mut x) % 700 };
            for _ in 0..n {
                let c = pool[(next(&mut x) % pool.len() as u64) as usize];
                let s = scope_pool[(next(&mut x) % 4) as usize].clone();
                // opt-ins are frequent, to empty scopes and contacts
                batch.insert((c, s), !next(&mut x).is_multiple_of(3));
            }
            if round == 6 {
                // a scope emptied whole: every contact in it opts in
                for (c, set) in &model {
                    if set.contains("s2") {
                        batch.insert((*c, "s2".into()), false);
                    }
                }
            }
            for ((c, s), out) in &batch {
                let set = model.entry(*c).or_default();
                if *out {
                    set.insert(s.clone());
                } else {
                    set.remove(s);
                }
            }
            model.retain(|_, s| !s.is_empty());
            let mut names: Vec<(String, String)> = model
                .values()
                .flatten()
                .map(|s| ("a".to_string(), s.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            names.sort();
            let at = |s: &str| names.iter().position(|n| n.1 == s).map(|i| i as u32);
            let changes = sorted_changes(
                batch
                    .iter()
                    .filter_map(|((c, s), out)| at(s).map(|i| change(*c, i, *out)))
                    .collect(),
            );
            let remaps: Vec<Vec<Option<u32>>> = files.iter().map(|f| f.remap(|_, s| at(s))).collect();
            let sources: Vec<Source> = files
                .iter()
                .zip(&remaps)
                .map(|(file, remap)| Source { file, remap })
                .collect();
            // every merge the policy could choose, three files at most
            let from = next(&mut x) as usize % (files.len().min(2) + 1);
            // as the commit does: a scope gone from the list is gone from
            // every file
            let gone = remaps.iter().flatten().any(Option::is_none);
            let from = if round == 0 || gone { 0 } else { from };
            let merged: Vec<Source> = sources[from..].iter().rev().copied().collect();
            let below: Vec<Source> = sources[..from].iter().rev().copied().collect();
            let totals = (from > 0).then(|| {
                names
                    .iter()
                    .map(|n| model.values().filter(|s| s.contains(&n.1)).count() as u64)
                    .collect()
            });
            let mut bytes = Vec::new();
            let target = Target {
                scopes: names.clone(),
                ledger_digest: round as u32,
                totals,
                below: &below,
            };
            write(&mut bytes, &merged, &changes, target).expect("write");
            let file = ProbeFile::from_bytes(bytes).expect("open");
            file.verify_all().expect("sound");
            drop(sources);
            files.truncate(from);
            files.push(file);
            let probe = open(&files);
            assert_eq!(probe.layers().len(), files.len());
            layered += usize::from(from > 0);
            most = most.max(files.len());
            for c in &pool {
                let want: Vec<u32> = model
                    .get(c)
                    .map(|s| s.iter().filter_map(|s| at(s)).collect())
                    .unwrap_or_default();
                assert_eq!(probe.hits(*c), want, "round {round}, contact {c}");
                if !want.is_empty() {
                    assert!(probe.may_hit(*c));
                }
            }
            for (i, s) in probe.scopes().iter().enumerate() {
                let n = model.values().filter(|set| set.contains(&s.scope)).count() as u64;
                assert_eq!(s.count, n, "round {round}, scope {i}");
            }
        }
        // the seed gives layers of every depth, and whole probes between
        assert!(
            layered >= 5 && most == 3,
            "{layered} layered, {most} files at most"
        );
    }

    #[test]
    fn layers_must_lie_over_the_files_named() {
        let names = vec![("a".to_string(), "account".to_string())];
        let base = |seed: u64| {
            let bytes = super::super::build((0..100u64).map(|c| (c * 31 + seed, 0)), names.clone(), 1);
            ProbeFile::from_bytes(bytes.expect("build")).expect("open")
        };
        let (one, other) = (base(1), base(2));
        let remap = [Some(0)];
        let below = [Source {
            file: &one,
            remap: &remap,
        }];
        let mut bytes = Vec::new();
        let target = Target {
            scopes: names.clone(),
            ledger_digest: 2,
            totals: Some(vec![100]),
            below: &below,
        };
        write(
            &mut bytes,
            &[],
            &sorted_changes(vec![change(32, 0, false)]),
            target,
        )
        .expect("write");
        let layer = || ProbeFile::from_bytes(bytes.clone()).expect("open");
        assert!(Probe::layered(vec![layer(), base(1)]).is_ok());
        assert!(Probe::layered(vec![layer(), other]).is_err());
        assert!(Probe::layered(vec![layer()]).is_err());
        let p = Probe::layered(vec![layer(), base(1)]).expect("fits");
        // the opt-in in the layer hides the base's opt-out
        assert!(p.hits(32).is_empty());
        assert_eq!(p.hits(63), vec![0]);
        assert_eq!(p.opt_outs(), 100);
    }
}
