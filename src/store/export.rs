//! The suppression list as `export` writes it: every key whose last event
//! is an opt-out, in (account, scope, contact) order, with its time, source
//! and keyword, streamed.
//!
//! The key runs already say where each key's last event lies and when it
//! happened; the ledger is needed only for its source and keyword. Those
//! take few values, so each ledger file's rows are first read into one
//! small code per row (a byte an event while there are fewer than 256
//! (source, keyword) pairs; the file verified by blocks as it is read), and then the
//! runs are merged one scope at a time, in name order, each record taking
//! its evidence from its row's code. Nothing else is held: memory is the
//! codes, whatever the number of opt-outs.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::damage::{corrupt, Fix};
use super::files::read_verified;
use super::keys::{KeyRun, ScopeName};
use super::manifest::FileRef;
use super::Store;
use crate::error::Result;
use crate::event::Source;
use crate::util::fasthash::FastMap;

/// One opted-out key of the suppression list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptOut {
    /// Index of its (account, scope) in [`SuppressionList::scopes`].
    pub scope: u32,
    /// E.164 digits of the contact.
    pub contact: u64,
    /// When it was opted out (µs, UTC).
    pub at: i64,
    /// Index of its source and keyword in [`SuppressionList::evidence`].
    pub evidence: u32,
}

/// Records of a scope whose evidence is looked up together.
const EVIDENCE_CHUNK: usize = 4096;

/// Where an opt-out came from: its source, and the keyword for replies.
pub type Evidence = (Source, Option<Arc<str>>);

/// The suppression list of one account or all, ready to be streamed with
/// [`SuppressionList::opt_outs`].
pub struct SuppressionList<'s> {
    store: &'s Store,
    /// (account, scope) names, sorted.
    pub scopes: Vec<ScopeName>,
    /// Every (source, keyword) pair an opt-out may have.
    pub evidence: Vec<Evidence>,
    runs: Vec<KeyRun>,
    /// Per ledger generation, the evidence of each of its rows.
    codes: FastMap<u32, Codes>,
}

/// The evidence codes of one ledger file's rows: one byte each while a
/// store has fewer than 256 (source, keyword) pairs, else two, else four.
enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    fn get(&self, row: u32) -> Option<u32> {
        let i = row as usize;
        match self {
            Codes::U8(v) => v.get(i).map(|&c| u32::from(c)),
            Codes::U16(v) => v.get(i).map(|&c| u32::from(c)),
            Codes::U32(v) => v.get(i).copied(),
        }
    }

    /// Codes below `pairs`, in the narrowest width that holds them.
    fn new(codes: impl Iterator<Item = u32>, pairs: usize) -> Codes {
        if pairs <= 1 << 8 {
            Codes::U8(codes.map(|c| c as u8).collect())
        } else if pairs <= 1 << 16 {
            Codes::U16(codes.map(|c| c as u16).collect())
        } else {
            Codes::U32(codes.collect())
        }
    }

    /// Add a code, widening them all when it needs more bytes.
    fn push(&mut self, c: u32) {
        loop {
            match self {
                Codes::U8(v) if c < 1 << 8 => return v.push(c as u8),
                Codes::U16(v) if c < 1 << 16 => return v.push(c as u16),
                Codes::U32(v) => return v.push(c),
                Codes::U8(v) => *self = Codes::U16(v.iter().map(|&c| u16::from(c)).collect()),
                Codes::U16(v) => *self = Codes::U32(v.iter().map(|&c| u32::from(c)).collect()),
            }
        }
    }

    /// Each code `c` replaced by `to[c]`, as narrow as `pairs` allows
    /// (`to` has every code: it is made from the same file's pairs).
    fn mapped(&self, to: &[u32], pairs: usize) -> Codes {
        let to = |c: usize| to.get(c).copied().unwrap_or(u32::MAX);
        match self {
            Codes::U8(v) => Codes::new(v.iter().map(|&c| to(c.into())), pairs),
            Codes::U16(v) => Codes::new(v.iter().map(|&c| to(c.into())), pairs),
            Codes::U32(v) => Codes::new(v.iter().map(|&c| to(c as usize)), pairs),
        }
    }
}

/// One ledger file's rows as (source, keyword) texts, by dictionary key:
/// the file's distinct values, its distinct pairs of them, and per row
/// the index of its pair.
struct FileEvidence {
    generation: u32,
    sources: Vec<String>,
    keywords: Vec<String>,
    /// A source's index, and a keyword's index + 1 (0: none).
    pairs: Vec<(u32, u32)>,
    /// Per row, its pair's index.
    rows: Codes,
}

impl Store {
    /// The suppression list, of one account or all.
    pub fn suppression_list(&self, account: Option<&str>) -> Result<SuppressionList<'_>> {
        let runs = self.key_runs()?;
        let mut scopes: Vec<ScopeName> = runs.iter().flat_map(|r| r.scopes.iter().cloned()).collect();
        scopes.retain(|s| account.is_none_or(|a| s.account == a));
        scopes.sort_by(|a, b| (&a.account, &a.scope).cmp(&(&b.account, &b.scope)));
        scopes.dedup_by(|a, b| a.hash == b.hash);
        // one code per distinct (source, keyword) over the whole ledger;
        // each file's codes as narrow as the codes given so far allow
        let mut evidence: Vec<Evidence> = Vec::new();
        let mut code_of: FastMap<Evidence, u32> = FastMap::default();
        let mut codes = FastMap::default();
        // the files read side by side, their codes given in ledger order
        let files: Vec<Result<FileEvidence>> = {
            use rayon::prelude::*;
            self.manifest
                .ledger
                .par_iter()
                .map(|r| self.file_evidence(r))
                .collect()
        };
        for (r, f) in self.manifest.ledger.iter().zip(files) {
            let f = f?;
            let bad = || corrupt(&self.dir, &r.file, "bad source value", Fix::Restore);
            let sources: Vec<Source> = f
                .sources
                .iter()
                .map(|s| Source::parse(s).ok_or_else(bad))
                .collect::<Result<_>>()?;
            // the file's own pairs, each given its code once
            let local: Vec<u32> = f
                .pairs
                .iter()
                .map(|&(s, k)| {
                    let pair = (
                        sources[s as usize],
                        k.checked_sub(1)
                            .map(|k| Arc::from(f.keywords[k as usize].as_str())),
                    );
                    *code_of.entry(pair.clone()).or_insert_with(|| {
                        evidence.push(pair);
                        evidence.len() as u32 - 1
                    })
                })
                .collect();
            codes.insert(f.generation, f.rows.mapped(&local, evidence.len()));
        }
        Ok(SuppressionList {
            store: self,
            scopes,
            evidence,
            runs,
            codes,
        })
    }

    /// The source and keyword of every row of a ledger file, as dictionary
    /// keys. Read through its blocks file when it has one (mapped, each
    /// block verified as it is read), else read whole and verified.
    fn file_evidence(&self, r: &FileRef) -> Result<FileEvidence> {
        let generation = super::files::ledger_generation(r)
            .ok_or_else(|| corrupt(&self.dir, &r.file, "not a ledger file name", Fix::Restore))?;
        let bad = |why: String| corrupt(&self.dir, &r.file, &why, Fix::Restore);
        match self.checked(r, Fix::Restore, true)? {
            Some(checked) => read_evidence(super::blocks::CheckedSource::new(checked), generation),
            None => read_evidence(read_verified(&self.dir, r, Fix::Restore)?, generation),
        }
        .map_err(bad)
    }
}

/// [`Store::file_evidence`] of a file's bytes.
fn read_evidence<R: parquet::file::reader::ChunkReader + 'static>(
    src: R,
    generation: u32,
) -> std::result::Result<FileEvidence, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(src).map_err(|e| e.to_string())?;
    let schema = builder.parquet_schema();
    let leaf = |name: &str| {
        (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == name)
            .ok_or_else(|| format!("no column '{name}'"))
    };
    let mask = ProjectionMask::leaves(schema, [leaf("source")?, leaf("keyword")?]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(1 << 16)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = FileEvidence {
        generation,
        sources: Vec::new(),
        keywords: Vec::new(),
        pairs: Vec::new(),
        rows: Codes::U8(Vec::new()),
    };
    // rows come in long runs of one pair: a row like the one before it
    // costs a comparison, a new pair a lookup
    let mut pair_of: FastMap<(String, Option<String>), u32> = FastMap::default();
    let mut last: Option<(String, Option<String>, u32)> = None;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| format!("{name} is not text"))
        };
        let (source, keyword) = (column("source")?, column("keyword")?);
        for i in 0..batch.num_rows() {
            if source.is_null(i) {
                return Err("a row without a source".into());
            }
            let (s, k) = (source.value(i), (!keyword.is_null(i)).then(|| keyword.value(i)));
            let same = last
                .as_ref()
                .filter(|(ls, lk, _)| ls == s && lk.as_deref() == k)
                .map(|l| l.2);
            let pair = match same {
                Some(p) => p,
                None => {
                    let key = (s.to_string(), k.map(String::from));
                    let p = match pair_of.get(&key) {
                        Some(&p) => p,
                        None => {
                            let index = |values: &mut Vec<String>, v: &str| match values
                                .iter()
                                .position(|x| x == v)
                            {
                                Some(i) => i as u32,
                                None => {
                                    values.push(v.to_string());
                                    values.len() as u32 - 1
                                }
                            };
                            let si = index(&mut out.sources, s);
                            let ki = k.map_or(0, |k| index(&mut out.keywords, k) + 1);
                            out.pairs.push((si, ki));
                            let p = out.pairs.len() as u32 - 1;
                            pair_of.insert(key.clone(), p);
                            p
                        }
                    };
                    last = Some((key.0, key.1, p));
                    p
                }
            };
            out.rows.push(pair);
        }
    }
    Ok(out)
}

/// A stretch of the suppression list for one thread to gather: pieces of
/// scopes (each a range of contacts), in list order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// (scope index, first contact, last contact).
    pieces: Vec<(u32, u64, u64)>,
    /// Records the key runs hold in it: an estimate of its opt-outs from
    /// above (keys whose last event is not an opt-out, and keys newer runs
    /// hold again, are counted too).
    records: usize,
}

impl SuppressionList<'_> {
    /// The opt-outs in (account, scope, contact) order.
    pub fn opt_outs(&self) -> impl Iterator<Item = Result<OptOut>> + '_ {
        self.shares(EVIDENCE_CHUNK).into_iter().flat_map(move |share| {
            let (ok, err) = match self.share(&share) {
                Ok(v) => (v, None),
                Err(e) => (Vec::new(), Some(Err(e))),
            };
            ok.into_iter().map(Ok).chain(err)
        })
    }

    /// The list cut into shares of about `records` key-run records each,
    /// in order, to be gathered side by side ([`SuppressionList::share`]).
    /// Small scopes share a share; a large one is cut at contacts its
    /// largest run holds, found by binary search (nothing is read whole).
    pub fn shares(&self, records: usize) -> Vec<Share> {
        let records = records.max(1);
        let mut shares = Vec::new();
        let mut open = Share::default();
        for (i, s) in self.scopes.iter().enumerate() {
            let i = i as u32;
            // each run's records of the scope
            let spans: Vec<(usize, usize)> = self
                .runs
                .iter()
                .map(|r| {
                    let end = s.hash.checked_add(1).map_or(r.len(), |h| r.lower_bound((h, 0)));
                    (r.lower_bound((s.hash, 0)), end)
                })
                .collect();
            let total: usize = spans.iter().map(|(a, b)| b - a).sum();
            let Some((big, &(from, to))) = spans.iter().enumerate().max_by_key(|(_, (a, b))| b - a) else {
                continue;
            };
            if total == 0 {
                continue;
            }
            // cut where the largest run reaches the share's room, scaled by
            // what the other runs add
            let (mut at, mut first) = (from, 0u64);
            loop {
                let room = records.saturating_sub(open.records).max(1);
                let left = (to - at) * total / (to - from);
                let cut = at + (room * (to - from) / total).max(1);
                // the contact to cut at; none when the rest fits, or the
                // run is out of order (damaged, which the merge reports)
                let contact = (left > room && cut < to)
                    .then(|| self.runs[big].entry(cut).contact)
                    .filter(|&c| c > first);
                let Some(contact) = contact else {
                    open.pieces.push((i, first, u64::MAX));
                    open.records += left;
                    break;
                };
                open.pieces.push((i, first, contact - 1));
                open.records += room;
                shares.push(std::mem::take(&mut open));
                (at, first) = (cut, contact);
            }
            if open.records >= records {
                shares.push(std::mem::take(&mut open));
            }
        }
        if !open.pieces.is_empty() {
            shares.push(open);
        }
        shares
    }

    /// The opt-outs of one share, in order. A record whose row the ledger
    /// does not have is an error (the key runs disagree with the ledger).
    pub fn share(&self, share: &Share) -> Result<Vec<OptOut>> {
        let mut out = Vec::with_capacity(share.records.min(1 << 22));
        let mut chunk = Vec::with_capacity(EVIDENCE_CHUNK);
        for &(i, first, last) in &share.pieces {
            let hash = self.scopes[i as usize].hash;
            let mut keys = super::key_merge::merged_range(&self.runs, (hash, first)..=(hash, last))
                .filter(|e| e.opt_out);
            // a chunk of records at a time: their ledger rows are out of
            // order (a cache miss each in a store of millions), and a loop
            // of nothing but those reads keeps many of them in flight
            loop {
                chunk.clear();
                chunk.extend(keys.by_ref().take(EVIDENCE_CHUNK));
                if chunk.is_empty() {
                    break;
                }
                for e in &chunk {
                    out.push(self.opt_out(i as usize, e)?);
                }
            }
        }
        Ok(out)
    }

    /// A key run's record as an opt-out of the `scope`th scope.
    fn opt_out(&self, scope: usize, e: &super::keys::Entry) -> Result<OptOut> {
        let evidence = self
            .codes
            .get(&e.ledger)
            .and_then(|c| c.get(e.row))
            .ok_or_else(|| {
                corrupt(
                    &self.store.dir,
                    "index",
                    "it disagrees with the ledger",
                    Fix::Rebuild,
                )
            })?;
        Ok(OptOut {
            scope: scope as u32,
            contact: e.contact,
            at: e.at,
            evidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Codes;

    #[test]
    fn codes_widen_as_they_grow_and_keep_every_value() {
        let values: Vec<u32> = (0..70_000u32)
            .map(|i| (i * 7919) % (i + 1))
            .chain([u32::MAX - 1])
            .collect();
        let mut codes = Codes::U8(Vec::new());
        for &v in &values {
            codes.push(v);
        }
        assert!(matches!(codes, Codes::U32(_)));
        for (i, &v) in values.iter().enumerate() {
            assert_eq!(codes.get(i as u32), Some(v), "row {i}");
        }
        assert_eq!(codes.get(values.len() as u32), None);
        // mapped through a table, as narrow as the table's range allows
        let to: Vec<u32> = (0..300).map(|c| c * 2).collect();
        let small = Codes::U16((0..300u16).collect());
        let m = small.mapped(&to, 600);
        assert!(matches!(m, Codes::U16(_)));
        assert_eq!(m.get(299), Some(598));
    }
}
