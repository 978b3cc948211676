//! The state: the last event per (account, scope, contact), per SPEC §3.3,
//! and the set of every event id already in the ledger.
//!
//! Applying events in any order gives the same state, because each key
//! keeps the greatest event by (event time, event id).

use crate::fasthash::FastMap;

use roaring::RoaringTreemap;

use crate::event::{Action, Event};
use crate::store::snapshot::{ScopeBitmap, Snapshot};

/// Last event per key.
#[derive(Default, Debug)]
pub struct State {
    /// account → scope → scope id; looked up with `&str`, no allocation.
    scope_ids: FastMap<String, FastMap<String, u32>>,
    scopes: Vec<(String, String)>,
    last: FastMap<(u32, u64), Event>,
}

impl State {
    fn find_scope(&self, account: &str, scope: &str) -> Option<u32> {
        self.scope_ids.get(account)?.get(scope).copied()
    }

    fn scope_id(&mut self, account: &str, scope: &str) -> u32 {
        if let Some(id) = self.find_scope(account, scope) {
            return id;
        }
        let id = self.scopes.len() as u32;
        self.scopes.push((account.to_string(), scope.to_string()));
        self.scope_ids
            .entry(account.to_string())
            .or_default()
            .insert(scope.to_string(), id);
        id
    }

    /// Apply one event; true when it is now the last event of its key.
    pub fn apply(&mut self, e: Event) -> bool {
        let key = (self.scope_id(&e.account, &e.scope), e.contact);
        match self.last.get(&key) {
            Some(cur) if e.order(cur).is_le() => false,
            _ => {
                self.last.insert(key, e);
                true
            }
        }
    }

    /// The last event of a key.
    pub fn get(&self, account: &str, scope: &str, contact: u64) -> Option<&Event> {
        let id = self.find_scope(account, scope)?;
        self.last.get(&(id, contact))
    }

    /// The last events of a contact in an account: the account scope and
    /// the given sender scope, or every sender scope when `sender` is `None`.
    pub fn deciding(&self, account: &str, sender: Option<&str>, contact: u64) -> Vec<&Event> {
        let mut out: Vec<&Event> = self
            .scopes
            .iter()
            .enumerate()
            .filter(|(_, (a, s))| {
                a == account && (s == crate::event::ACCOUNT_SCOPE || sender.is_none_or(|x| x == s))
            })
            .filter_map(|(i, _)| self.last.get(&(i as u32, contact)))
            .collect();
        out.sort_by(|a, b| a.order(b));
        out
    }

    /// Every key's last event, sorted by (account, scope, contact).
    pub fn events_sorted(&self) -> Vec<&Event> {
        let mut v: Vec<&Event> = self.last.values().collect();
        v.sort_unstable_by(|a, b| (&a.account, &a.scope, a.contact).cmp(&(&b.account, &b.scope, b.contact)));
        v
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// True when no key has an event.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Compile the bitmaps of every opted-out key.
    pub fn snapshot(&self, ledger_digest: u32) -> Snapshot {
        let mut per_scope: Vec<Vec<u64>> = vec![Vec::new(); self.scopes.len()];
        for (&(scope, contact), e) in &self.last {
            if e.action == Action::OptOut {
                per_scope[scope as usize].push(contact);
            }
        }
        let mut scopes: Vec<ScopeBitmap> = per_scope
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, mut v)| {
                v.sort_unstable();
                let (account, scope) = self.scopes[i].clone();
                let bitmap = RoaringTreemap::from_sorted_iter(v).unwrap_or_default();
                ScopeBitmap {
                    account,
                    scope,
                    bitmap,
                }
            })
            .collect();
        scopes.sort_by(|a, b| (&a.account, &a.scope).cmp(&(&b.account, &b.scope)));
        Snapshot {
            ledger_digest,
            scopes,
        }
    }
}

/// The sorted set of event-id hashes.
#[derive(Default, Debug, Clone)]
pub struct IdSet {
    sorted: Vec<u64>,
}

impl IdSet {
    /// From the file bytes (little-endian u64s); `None` if malformed.
    pub fn decode(bytes: &[u8]) -> Option<IdSet> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        let sorted: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        sorted.windows(2).all(|w| w[0] < w[1]).then_some(IdSet { sorted })
    }

    /// To the file bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.sorted.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Is this hash present?
    pub fn contains(&self, h: u64) -> bool {
        self.sorted.binary_search(&h).is_ok()
    }

    /// Add hashes (any order, duplicates ignored).
    pub fn extend(&mut self, mut more: Vec<u64>) {
        more.sort_unstable();
        more.dedup();
        let mut merged = Vec::with_capacity(self.sorted.len() + more.len());
        let (mut i, mut j) = (0, 0);
        while i < self.sorted.len() && j < more.len() {
            let (a, b) = (self.sorted[i], more[j]);
            if a < b {
                merged.push(a);
                i += 1;
            } else {
                if a == b {
                    i += 1;
                }
                merged.push(b);
                j += 1;
            }
        }
        merged.extend_from_slice(&self.sorted[i..]);
        merged.extend_from_slice(&more[j..]);
        self.sorted = merged;
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}
