//! What an ingest adds, as the store reads it: events one by one (replies,
//! webforms, signals), or an import's rows kept in columns (a large import
//! would otherwise hold a hundred-odd bytes of [`Event`] a row, with three
//! shared strings each).

use std::cmp::Ordering;
use std::ops::Range;

use arrow::array::RecordBatch;

use super::keys;
use super::Erasures;
use crate::event::{Event, EventId};
use crate::util::fasthash::FastMap;

/// New rows for the store: each one event, by its position.
pub(crate) trait NewRows: Send + Sync {
    /// How many.
    fn len(&self) -> usize;

    /// None?
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Put the rows of erased numbers under their hashes (the contact, and
    /// an id optscrub made from the row).
    fn erase(&mut self, erasures: &Erasures);

    /// 64-bit hash of a row's event id, for the store's id set.
    fn id_hash(&self, i: usize) -> u64;

    /// Keep the rows whose flag is set, in order.
    fn retain(&mut self, keep: &[bool]);

    /// (scope hash, contact, position) of every row, in row order.
    fn keyed(&self) -> Vec<(u64, u64, u32)>;

    /// A row's account and scope.
    fn names(&self, i: usize) -> (&str, &str);

    /// A row's event time.
    fn at(&self, i: usize) -> i64;

    /// Is a row an opt-out (else an opt-in)?
    fn opt_out(&self, i: usize) -> bool;

    /// A row's event id.
    fn event_id(&self, i: usize) -> EventId;

    /// The rows in this range in the ledger's schema.
    fn batch(&self, rows: Range<usize>) -> RecordBatch;

    /// The rows as events.
    fn into_events(self) -> Vec<Event>;

    /// SPEC §3.3 order of two rows: event time, then event id.
    fn order(&self, a: usize, b: usize) -> Ordering {
        self.at(a)
            .cmp(&self.at(b))
            .then_with(|| self.event_id(a).cmp(&self.event_id(b)))
    }
}

impl NewRows for Vec<Event> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn erase(&mut self, erasures: &Erasures) {
        use rayon::prelude::*;
        self.par_iter_mut().for_each(|e| erasures.apply(e));
    }

    fn id_hash(&self, i: usize) -> u64 {
        self[i].id_hash()
    }

    fn retain(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        Vec::retain(self, |_| flags.next().copied().unwrap_or(false));
    }

    fn keyed(&self) -> Vec<(u64, u64, u32)> {
        use rayon::prelude::*;
        // events share their account and scope strings: each thread
        // hashes a distinct pair once
        self.par_iter()
            .enumerate()
            .map_init(FastMap::<(usize, usize), u64>::default, |cache, (i, e)| {
                let addr = (e.account.as_ptr() as usize, e.scope.as_ptr() as usize);
                let sh = *cache
                    .entry(addr)
                    .or_insert_with(|| keys::scope_hash(&e.account, &e.scope));
                (sh, e.contact, i as u32)
            })
            .collect()
    }

    fn names(&self, i: usize) -> (&str, &str) {
        (&self[i].account, &self[i].scope)
    }

    fn at(&self, i: usize) -> i64 {
        self[i].at
    }

    fn opt_out(&self, i: usize) -> bool {
        self[i].action == crate::event::Action::OptOut
    }

    fn event_id(&self, i: usize) -> EventId {
        self[i].event_id.clone()
    }

    fn batch(&self, rows: Range<usize>) -> RecordBatch {
        crate::event::to_batch(&self[rows])
    }

    fn into_events(self) -> Vec<Event> {
        self
    }

    fn order(&self, a: usize, b: usize) -> Ordering {
        self[a].order(&self[b])
    }
}
