//! Making a scrubber: the config's accounts and senders given scope ids,
//! and the store's opt-outs (its probe file, or a probe built in memory
//! from an older store's snapshot) arranged to be looked up by them.

use std::collections::HashMap;
use std::sync::Arc;

use super::{AccountView, Lookup, Scrubber, NO_SCOPE};
use crate::config::Config;
use crate::event::ACCOUNT_SCOPE;
use crate::store::probe::{self, Probe, ProbeFile};
use crate::store::snapshot::Snapshot;
use crate::store::{Erasures, OptOuts};
use crate::util::fasthash::FastMap;

impl Scrubber {
    /// Arrange a config and the store's opt-outs for scrubbing millions of
    /// rows. A probe file is searched where it lies, and checked block by
    /// block as it is read (see [`Scrubber::verified`]); a store without
    /// one (written by an older build) gets one built in memory from its
    /// snapshot.
    /// `erasures` are the store's erased numbers: a row's number is looked
    /// up as its hash when it was erased.
    pub fn new(config: &Config, opt_outs: OptOuts, erasures: Erasures) -> crate::error::Result<Scrubber> {
        let (names, ids) = Scrubber::scope_ids(config, &opt_outs);
        let probe = match opt_outs {
            OptOuts::Probe(p) => *p,
            OptOuts::Bitmaps(snap) => in_memory_probe(&snap)?,
        };
        Ok(Scrubber::arrange(
            config,
            names,
            Lookup::Probe {
                probe: Arc::new(probe),
                ids,
            },
            erasures,
        ))
    }

    /// [`Scrubber::new`] for a few lookups (`check`): nothing is built from
    /// all the opt-outs (a store without a probe file is asked through
    /// its bitmaps).
    pub fn for_lookups(config: &Config, opt_outs: OptOuts, erasures: Erasures) -> Scrubber {
        let (names, ids) = Scrubber::scope_ids(config, &opt_outs);
        let lookup = match opt_outs {
            OptOuts::Probe(p) => Lookup::Probe {
                probe: Arc::new(*p),
                ids,
            },
            OptOuts::Bitmaps(snap) => Lookup::Bitmaps(
                snap.scopes
                    .into_iter()
                    .zip(ids)
                    .filter(|(_, id)| *id != NO_SCOPE)
                    .map(|(s, id)| (id, s.bitmap))
                    .collect(),
            ),
        };
        Scrubber::arrange(config, names, lookup, erasures)
    }

    /// The scrubber's scope names (account scope first, then its senders,
    /// account by account) and, per scope of the store (by index), its id
    /// among them (`NO_SCOPE` for an account the config does not have).
    fn scope_ids(config: &Config, opt_outs: &OptOuts) -> (Arranged, Vec<u32>) {
        let names: Vec<(&str, &str)> = match opt_outs {
            OptOuts::Probe(p) => p
                .scopes()
                .iter()
                .map(|s| (s.account.as_str(), s.scope.as_str()))
                .collect(),
            OptOuts::Bitmaps(snap) => snap
                .scopes
                .iter()
                .map(|s| (s.account.as_str(), s.scope.as_str()))
                .collect(),
        };
        // the store's scopes (by index) → this scrubber's scope ids
        let mut ids = vec![NO_SCOPE; names.len()];
        let mut by_account: HashMap<&str, Vec<(&str, Option<usize>)>> = HashMap::new();
        for (i, &(account, scope)) in names.iter().enumerate() {
            by_account.entry(account).or_default().push((scope, Some(i)));
        }
        let mut scope_names = Vec::new();
        let mut accounts = FastMap::default();
        for (pos, a) in config.accounts.iter().enumerate() {
            let mut scopes = by_account.remove(a.id.as_str()).unwrap_or_default();
            let wide = scopes
                .iter()
                .position(|s| s.0 == ACCOUNT_SCOPE)
                .map(|i| scopes.swap_remove(i));
            for s in &a.senders {
                if !scopes.iter().any(|x| x.0 == s.id) {
                    scopes.push((&s.id, None));
                }
            }
            scopes.sort_by(|x, y| x.0.cmp(y.0));
            let base = scope_names.len() as u32;
            scope_names.push(ACCOUNT_SCOPE.to_string());
            if let Some((_, Some(i))) = wide {
                ids[i] = base;
            }
            let mut senders = FastMap::default();
            for (scope, at) in scopes {
                let id = scope_names.len() as u32;
                if let Some(i) = at {
                    ids[i] = id;
                }
                senders.insert(scope.to_string(), id);
                scope_names.push(scope.to_string());
            }
            // only configured senders resolve; removed ones still count for
            // rows that name no sender
            senders.retain(|id, _| a.sender(id).is_some());
            let end = scope_names.len() as u32;
            accounts.insert(
                a.id.clone(),
                AccountView {
                    pos: pos as u32,
                    base,
                    end,
                    senders,
                    country: a.default_country,
                },
            );
        }
        (
            Arranged {
                accounts,
                scope_names,
            },
            ids,
        )
    }

    fn arrange(config: &Config, names: Arranged, lookup: Lookup, erasures: Erasures) -> Scrubber {
        Scrubber {
            erasures,
            accounts: names.accounts,
            scope_names: names.scope_names,
            lookup,
            case_hints: Default::default(),
            account_countries: config.accounts.iter().any(|a| a.default_country.is_some()),
            checking_ahead: Default::default(),
        }
    }
}

/// A scrubber's accounts and scope names.
struct Arranged {
    accounts: FastMap<String, AccountView>,
    scope_names: Vec<String>,
}

/// A probe of a snapshot's opt-outs, built in memory.
fn in_memory_probe(snap: &Snapshot) -> crate::error::Result<Probe> {
    let pairs = snap
        .scopes
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.bitmap.iter().map(move |c| (c, i as u32)));
    let names = snap
        .scopes
        .iter()
        .map(|s| (s.account.clone(), s.scope.clone()))
        .collect();
    probe::build(pairs, names, snap.ledger_digest)
        .map_err(|e| e.to_string().into())
        .and_then(ProbeFile::from_bytes)
        .map(Probe::single)
        .map_err(|why| {
            crate::error::Error::Internal(format!("cannot build the probe of the snapshot: {why}"))
        })
}
