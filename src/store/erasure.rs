//! Erased contacts (`optscrub erase`): the holder of a number asked to be
//! forgotten, and the number must still be suppressed when a list brings
//! it back. Its events keep their effect under a keyed one-way hash of the
//! number instead of the number:
//!
//! - the contact becomes `ERASED | SipHash-1-3(key, number) >> 1`, a value
//!   no E.164 number takes (they are below 10^15), so key runs, snapshot
//!   and probe hold it as they hold any contact;
//! - an event id optscrub made by hashing the row (`import#…`,
//!   `webform#…`, `signal#…`: the number went into that hash, and a search
//!   over all numbers would find it) becomes a keyed hash of that id;
//!   ids from the user's own logs (message and submission ids) stay;
//! - the store keeps the sorted list of erased hashes and the key (both in
//!   the manifest), so that a scrub, a check or an ingest reads a number
//!   it is given as its hash when that hash is erased.
//!
//! The ledger files that held the number are written anew under new names
//! and the old ones removed at once, with every derived file of the
//! generation before.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;

use super::damage::Fix;
use super::files::{ledger_generation, read_events, rows_to_parquet, write_file};
use super::layout::Kind;
use super::manifest::FileRef;
use super::Store;
use crate::error::{Error, Result};
use crate::event::{Action, Event};

/// The bit that marks a contact as the keyed hash of an erased number.
pub const ERASED: u64 = 1 << 63;

/// Is this contact an erased number's hash?
pub fn is_erased(contact: u64) -> bool {
    contact & ERASED != 0
}

/// Domains of the keyed hash: a number, or an event id.
const CONTACT_DOMAIN: u8 = 1;
const ID_DOMAIN: u8 = 2;

/// The store's erased numbers, as their hashes, and the key that makes
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasures {
    key: Option<[u64; 2]>,
    /// Sorted, distinct, each with [`ERASED`] set.
    erased: Vec<u64>,
}

impl Erasures {
    /// From the manifest's key (32 hex digits) and list; `Err` says what
    /// is wrong with them.
    pub(crate) fn new(key: Option<&str>, erased: &[u64]) -> std::result::Result<Erasures, String> {
        let key = key.map(parse_key).transpose()?;
        if !erased.is_empty() && key.is_none() {
            return Err("it lists erased contacts but holds no erasure key".into());
        }
        if erased.windows(2).any(|w| w[0] >= w[1]) || !erased.iter().all(|&c| is_erased(c)) {
            return Err("its list of erased contacts is not a sorted list of hashes".into());
        }
        Ok(Erasures {
            key,
            erased: erased.to_vec(),
        })
    }

    /// How many numbers were erased.
    pub fn len(&self) -> usize {
        self.erased.len()
    }

    /// Were none?
    pub fn is_empty(&self) -> bool {
        self.erased.is_empty()
    }

    /// The contact as the store keeps it: its hash when the number was
    /// erased, else itself.
    pub fn key_of(&self, contact: u64) -> u64 {
        match self.key {
            Some(k) if !self.erased.is_empty() => {
                let h = hashed(k, contact);
                if self.erased.binary_search(&h).is_ok() {
                    h
                } else {
                    contact
                }
            }
            _ => contact,
        }
    }

    /// Put an event of an erased number under its hash (the contact, and
    /// an id made from the row); other events stay as they are.
    pub(crate) fn apply(&self, e: &mut Event) {
        let k = self.key_of(e.contact);
        if k == e.contact {
            return;
        }
        e.contact = k;
        if let Some(id) = self.id_of_erased(&e.event_id) {
            e.event_id = id.into();
        }
    }

    /// The id an event of an erased number is kept under, when optscrub
    /// made its id from the row (else it keeps its id).
    pub(crate) fn id_of_erased(&self, id: &str) -> Option<String> {
        self.key.and_then(|key| rewritten_id(key, id))
    }

    /// These erasures and `numbers`, under `key` (the store's).
    fn with(&self, key: [u64; 2], numbers: &[u64]) -> Erasures {
        let mut erased = self.erased.clone();
        erased.extend(numbers.iter().map(|&c| hashed(key, c)));
        erased.sort_unstable();
        erased.dedup();
        Erasures {
            key: Some(key),
            erased,
        }
    }
}

fn parse_key(text: &str) -> std::result::Result<[u64; 2], String> {
    let bad = || "its erasure key is not 32 hex digits".to_string();
    // checked as bytes first: a slice of other text could cut a character
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let k0 = u64::from_str_radix(&text[..16], 16).map_err(|_| bad())?;
    let k1 = u64::from_str_radix(&text[16..], 16).map_err(|_| bad())?;
    Ok([k0, k1])
}

/// A new random erasure key, as the manifest keeps it.
pub(crate) fn new_key() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Internal(format!("no random bytes for the erasure key: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn keyed(key: [u64; 2], domain: u8, bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(key[0], key[1]);
    h.write_u8(domain);
    h.write(bytes);
    h.finish()
}

/// The hash an erased number is kept under.
fn hashed(key: [u64; 2], contact: u64) -> u64 {
    ERASED | (keyed(key, CONTACT_DOMAIN, &contact.to_le_bytes()) >> 1)
}

/// An id optscrub made by hashing a row (`<word>#<16 hex digits>`), made
/// again from the key: the same row ingested again gets the same id, and
/// the id no longer gives the number away. Other ids are kept.
fn rewritten_id(key: [u64; 2], id: &str) -> Option<String> {
    let (word, hex) = id.split_once('#')?;
    let made = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_lowercase())
        && hex.len() == 16
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    made.then(|| format!("{word}#erased-{:016x}", keyed(key, ID_DOMAIN, id.as_bytes())))
}

/// What `optscrub erase` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseSummary {
    /// Distinct numbers asked to erase.
    pub numbers: u64,
    /// Of them, erased now.
    pub erased: u64,
    /// Of them, erased before.
    pub already_erased: u64,
    /// Of them, with no event in the store (nothing to erase; not listed).
    pub not_in_store: u64,
    /// Events now kept under a hash.
    pub events: u64,
    /// Ledger files written anew (the old ones removed).
    pub ledger_files: u64,
    /// Numbers the store has erased, in all.
    pub erased_in_store: u64,
    /// `erase`, for the summary file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// A key's last event as (time, id, action), by the ledger's order.
type Last = (i64, String, Action);

fn fold(slot: &mut Option<Last>, e: &Event) {
    let newer = slot
        .as_ref()
        .is_none_or(|(at, id, _)| (e.at, e.event_id.as_str()) > (*at, id.as_str()));
    if newer {
        *slot = Some((e.at, e.event_id.to_string(), e.action));
    }
}

impl Store {
    /// The store's erased numbers (from the manifest).
    pub fn erasures(&self) -> Result<Erasures> {
        Erasures::new(self.manifest.erasure_key.as_deref(), &self.manifest.erased)
            .map_err(|why| super::damage::corrupt(&self.dir, super::manifest::MANIFEST, &why, Fix::Restore))
    }

    /// Erase numbers (the caller holds the lock): every event of each is
    /// kept under the number's keyed hash, in ledger files written anew;
    /// the files that held the number, and the generation before, are
    /// removed. Decisions do not change. Refused while the outbox holds a
    /// reply to one of the numbers (it must be sent first).
    pub fn erase(&mut self, contacts: &[u64]) -> Result<EraseSummary> {
        self.whole("erasing")?;
        let mut wanted = contacts.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let before = self.erasures()?;
        let mut out = EraseSummary {
            numbers: wanted.len() as u64,
            erased_in_store: before.len() as u64,
            ..Default::default()
        };
        let (already, fresh): (Vec<u64>, Vec<u64>) = wanted.iter().partition(|&&c| before.key_of(c) != c);
        out.already_erased = already.len() as u64;
        if fresh.is_empty() {
            // an erase killed between its manifest and the removal of the
            // generation before: run again, it removes what is left
            if !already.is_empty() {
                self.remove_unnamed();
            }
            return Ok(out);
        }
        let pending = super::outbox::replies_to(&self.dir, self.manifest.outbox_files(), &fresh)?;
        if pending > 0 {
            return Err(Error::Usage(format!(
                "the store's outbox holds {pending} replies to a number to erase: hand them over first (`optscrub outbox --store {} --output FILE`), then erase",
                self.dir.display()
            )));
        }
        let key_text = match &self.manifest.erasure_key {
            Some(k) => k.clone(),
            None => new_key()?,
        };
        let key = parse_key(&key_text).map_err(|why| {
            super::damage::corrupt(&self.dir, super::manifest::MANIFEST, &why, Fix::Restore)
        })?;
        let next = before.with(key, &fresh);
        // the rewritten ledger files, taken back if anything fails
        let mut rewritten: Vec<(usize, FileRef)> = Vec::new();
        let done = self
            .rewrite_ledger(&next, &fresh, &mut rewritten)
            .and_then(|scan| {
                out.events = scan.events;
                out.not_in_store = (fresh.len() - scan.found.len()) as u64;
                out.erased = scan.found.len() as u64;
                out.ledger_files = rewritten.len() as u64;
                if scan.found.is_empty() {
                    return Ok(());
                }
                let saved = self.manifest.clone();
                for (i, r) in &rewritten {
                    self.manifest.ledger[*i] = r.clone();
                }
                self.manifest.erased = before.with(key, &scan.found).erased;
                self.manifest.erasure_key = Some(key_text);
                self.manifest.raise_format(super::manifest::FORMAT_ERASED);
                out.erased_in_store = self.manifest.erased.len() as u64;
                self.rebuild_dropping(&scan.dropped_ids).inspect_err(|_| {
                    self.manifest = saved;
                })
            });
        if done.is_err() || out.erased == 0 {
            // nothing changed: the files written for it go
            for (_, r) in &rewritten {
                let _ = std::fs::remove_file(self.dir.join(&r.file));
            }
            return done.map(|()| out);
        }
        // the generation before held the numbers: it goes now, not at the
        // next commit
        self.remove_unnamed();
        Ok(out)
    }

    /// Write anew (under the next generation's names) every ledger file
    /// that holds one of `numbers`, with their events under `next`'s
    /// hashes; `rewritten` gets each file's place in the ledger list and
    /// its new name as it is written. Refused when a decision would change.
    fn rewrite_ledger(
        &self,
        next: &Erasures,
        numbers: &[u64],
        rewritten: &mut Vec<(usize, FileRef)>,
    ) -> Result<Scan> {
        let numbers: HashSet<u64> = numbers.iter().copied().collect();
        let generation = self.manifest.generation + 1;
        let mut scan = Scan::default();
        let mut found: HashSet<u64> = HashSet::new();
        // per (account, scope, number): its last event before and after
        type Key = (Arc<str>, Arc<str>, u64);
        let mut decided: HashMap<Key, (Option<Last>, Option<Last>)> = HashMap::new();
        for (i, r) in self.manifest.ledger.iter().enumerate() {
            let mut events = read_events(&self.dir, r, Fix::Restore)?;
            if !events.iter().any(|e| numbers.contains(&e.contact)) {
                continue;
            }
            let ledger = ledger_generation(r).ok_or_else(|| {
                super::damage::corrupt(&self.dir, &r.file, "not a ledger file name", Fix::Restore)
            })?;
            let counts = !self.manifest.is_reverted(ledger);
            for e in events.iter_mut().filter(|e| numbers.contains(&e.contact)) {
                found.insert(e.contact);
                let slot = decided
                    .entry((e.account.clone(), e.scope.clone(), e.contact))
                    .or_default();
                if counts {
                    fold(&mut slot.0, e);
                }
                let old = e.id_hash();
                next.apply(e);
                if e.id_hash() != old {
                    scan.dropped_ids.push(old);
                }
                if counts {
                    fold(&mut slot.1, e);
                }
                scan.events += 1;
            }
            // written atomically: a failed write leaves nothing to take back
            let rel = Kind::Ledger.rewritten(ledger, generation);
            let bytes = rows_to_parquet(&events)?;
            rewritten.push((i, write_file(&self.dir, &rel, &bytes, events.len() as u64)?));
        }
        // An exact-time tie of two events of one key is settled by their
        // ids; a new id could settle it the other way. Then nothing is
        // changed, and the user is told.
        if decided
            .values()
            .any(|(b, a)| b.as_ref().map(|x| x.2) != a.as_ref().map(|x| x.2))
        {
            return Err(Error::Usage(
                "erasing would change a decision: one of the numbers has an opt-out and an opt-in of the same scope at the same microsecond, settled by ids that erasing replaces; nothing was changed"
                    .into(),
            ));
        }
        scan.found = found.into_iter().collect();
        Ok(scan)
    }
}

/// What rewriting the ledger for an erase found.
#[derive(Default)]
struct Scan {
    /// The numbers that had events.
    found: Vec<u64>,
    /// Their events.
    events: u64,
    /// Hashes of the ids the rewrite replaced.
    dropped_ids: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: [u64; 2], numbers: &[u64]) -> Erasures {
        Erasures::default().with(key, numbers)
    }

    #[test]
    fn an_erased_number_is_read_as_its_hash_and_no_other_is() {
        let e = with([1, 2], &[447700900001]);
        let h = e.key_of(447700900001);
        assert!(is_erased(h));
        assert_ne!(h & !ERASED, 447700900001);
        assert_eq!(e.key_of(447700900002), 447700900002);
        // another key, another hash
        assert_ne!(with([1, 3], &[447700900001]).key_of(447700900001), h);
        // none erased: nothing is hashed
        assert_eq!(Erasures::default().key_of(447700900001), 447700900001);
    }

    #[test]
    fn only_ids_made_from_the_row_are_rewritten() {
        let key = [7, 9];
        let made = rewritten_id(key, "import#00112233aabbccdd").unwrap();
        assert!(made.starts_with("import#erased-"));
        assert_eq!(made.len(), "import#erased-".len() + 16);
        assert_eq!(rewritten_id(key, "import#00112233aabbccdd").unwrap(), made);
        for kept in [
            "SM123",
            "webform:acme:77",
            "signal:twilio:SM1",
            "import#xyz",
            "a#b",
        ] {
            assert_eq!(rewritten_id(key, kept), None, "{kept}");
        }
    }

    #[test]
    fn the_manifest_list_is_checked() {
        let key = "000102030405060708090a0b0c0d0e0f";
        assert!(Erasures::new(Some(key), &[ERASED | 1, ERASED | 2]).is_ok());
        assert!(Erasures::new(Some(key), &[ERASED | 2, ERASED | 1]).is_err());
        assert!(Erasures::new(Some(key), &[5]).is_err());
        assert!(Erasures::new(None, &[ERASED | 1]).is_err());
        assert!(Erasures::new(Some("zz"), &[]).is_err());
        // 32 bytes, but not 32 hex digits (one cut would split a character)
        assert!(Erasures::new(Some("000102030405060é08090a0b0c0d0e0"), &[]).is_err());
        assert!(Erasures::new(Some("+00102030405060708090a0b0c0d0e0f"), &[]).is_err());
        assert_eq!(new_key().unwrap().len(), 32);
        assert_ne!(new_key().unwrap(), new_key().unwrap());
    }
}
