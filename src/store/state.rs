//! The state: the last event per (account, scope, contact), per SPEC §3.3,
//! held in memory (for `check`, `export` and the report).
//!
//! Applying events in any order gives the same state, because each key
//! keeps the greatest event by (event time, event id).

use crate::event::Event;
use crate::util::fasthash::FastMap;

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
}
