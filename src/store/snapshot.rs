//! The compiled snapshot: one 64-bit roaring bitmap of opted-out contacts
//! per (account, scope), in the portable Roaring format, with a checksum.
//!
//! Layout: `OPTSNAP1`, a little-endian u32 header length, a JSON header
//! (the ledger digest it was compiled from and, per scope, where its bitmap
//! lies), the bitmaps one after another, and a CRC-32 of all that precedes.
//! Each bitmap is exactly what `RoaringTreemap::serialize_into` writes, so
//! CRoaring, Java and pyroaring read them as they are.

use std::fs::File;
use std::path::Path;

use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};

use super::damage::{damaged, Fault, Fix};
use super::manifest::FileRef;
use crate::error::Result;

const MAGIC: &[u8; 8] = b"OPTSNAP1";

/// One scope's opted-out contacts.
#[derive(Clone, Debug)]
pub struct ScopeBitmap {
    /// The account.
    pub account: String,
    /// `account` or a sender id.
    pub scope: String,
    /// E.164 digits of the opted-out contacts.
    pub bitmap: RoaringTreemap,
}

/// All bitmaps of a store generation.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Digest of the ledger it was compiled from.
    pub ledger_digest: u32,
    /// Scopes sorted by (account, scope); empty bitmaps are left out.
    pub scopes: Vec<ScopeBitmap>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    ledger_digest: u32,
    scopes: Vec<HeaderScope>,
}

#[derive(Serialize, Deserialize)]
struct HeaderScope {
    account: String,
    scope: String,
    offset: u64,
    len: u64,
    count: u64,
}

impl Snapshot {
    /// Serialize to the file format.
    pub fn encode(&self) -> Vec<u8> {
        // the bitmaps' sizes are known first, so the file is made in one
        // buffer of its final size, each bitmap serialized in place
        let mut offset = 0;
        let scopes = self
            .scopes
            .iter()
            .map(|s| {
                let len = s.bitmap.serialized_size() as u64;
                offset += len;
                HeaderScope {
                    account: s.account.clone(),
                    scope: s.scope.clone(),
                    offset: offset - len,
                    len,
                    count: s.bitmap.len(),
                }
            })
            .collect();
        let header = Header {
            ledger_digest: self.ledger_digest,
            scopes,
        };
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(16 + header.len() + offset as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for s in &self.scopes {
            // Writing into a Vec cannot fail.
            let _ = s.bitmap.serialize_into(&mut out);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Read a snapshot file, verified against the manifest's size and
    /// CRC-32, into bitmaps that an ingest can change.
    pub(crate) fn open(dir: &Path, r: &FileRef) -> Result<Snapshot> {
        let map = map_sized(dir, r)?;
        Snapshot::decode(&map, r.crc32).map_err(|why| damaged(dir, &r.file, why, Fix::Rebuild))
    }

    /// Decode from bytes, checking the checksum against the file's own and
    /// the manifest's.
    pub fn decode(bytes: &[u8], want_crc: u32) -> Result<Snapshot, Fault> {
        let (header, blobs) = verified_parts(bytes, want_crc)?;
        let mut scopes = Vec::with_capacity(header.scopes.len());
        for s in &header.scopes {
            let bitmap =
                RoaringTreemap::deserialize_from(blob(blobs, s)?).map_err(|_| "unreadable bitmap")?;
            if bitmap.len() != s.count {
                return Err("bitmap count mismatch".into());
            }
            scopes.push(ScopeBitmap {
                account: s.account.clone(),
                scope: s.scope.clone(),
                bitmap,
            });
        }
        Ok(Snapshot {
            ledger_digest: header.ledger_digest,
            scopes,
        })
    }

    /// Total opted-out (account, scope, contact) keys.
    pub fn opt_outs(&self) -> u64 {
        self.scopes.iter().map(|s| s.bitmap.len()).sum()
    }
}

/// A snapshot file mapped and verified, its bitmaps left in place as
/// portable Roaring bytes: what `export --format roaring` copies out,
/// without decoding them.
pub struct MappedSnapshot {
    map: memmap2::Mmap,
    header: Header,
    blobs: usize,
}

/// One scope's bitmap in a [`MappedSnapshot`].
pub struct ScopeBlob<'a> {
    /// The account.
    pub account: &'a str,
    /// `account` or a sender id.
    pub scope: &'a str,
    /// Contacts in the bitmap.
    pub count: u64,
    /// The bitmap, serialized in the portable Roaring format.
    pub bytes: &'a [u8],
}

impl MappedSnapshot {
    /// Map a snapshot file and verify it against the manifest's size and
    /// CRC-32; its bitmaps stay in place.
    pub(crate) fn open(dir: &Path, r: &FileRef) -> Result<MappedSnapshot> {
        let map = map_sized(dir, r)?;
        let (header, blobs) =
            verified_parts(&map, r.crc32).map_err(|why| damaged(dir, &r.file, why, Fix::Rebuild))?;
        let blobs = map.len() - 4 - blobs.len();
        Ok(MappedSnapshot { map, header, blobs })
    }

    /// Digest of the ledger it was compiled from.
    pub fn ledger_digest(&self) -> u32 {
        self.header.ledger_digest
    }

    /// Its scopes, sorted by (account, scope), each with its bitmap's bytes.
    pub fn scopes(&self) -> Result<Vec<ScopeBlob<'_>>, Fault> {
        let blobs = &self.map[self.blobs..self.map.len() - 4];
        self.header
            .scopes
            .iter()
            .map(|s| {
                Ok(ScopeBlob {
                    account: &s.account,
                    scope: &s.scope,
                    count: s.count,
                    bytes: blob(blobs, s)?,
                })
            })
            .collect()
    }
}

/// The header and the bitmaps' bytes of a snapshot file, its checksums
/// (its own and the manifest's) checked.
fn verified_parts(bytes: &[u8], want_crc: u32) -> Result<(Header, &[u8]), Fault> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err("not a snapshot file".into());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let actual = super::files::crc32(body);
    if actual != stored || super::files::crc32(bytes) != want_crc {
        return Err("checksum mismatch".into());
    }
    let hlen = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
    let header = body.get(12..12 + hlen).ok_or("header cut short")?;
    let header: Header = serde_json::from_slice(header).map_err(|_| "unreadable header")?;
    Ok((header, &body[12 + hlen..]))
}

/// One scope's bitmap bytes among the blobs.
fn blob<'a>(blobs: &'a [u8], s: &HeaderScope) -> Result<&'a [u8], Fault> {
    let end = s.offset.checked_add(s.len).ok_or("bad offset")?;
    blobs
        .get(s.offset as usize..end as usize)
        .ok_or_else(|| "bitmap out of bounds".into())
}

/// Map a snapshot file whose size is the manifest's.
fn map_sized(dir: &Path, r: &FileRef) -> Result<memmap2::Mmap> {
    let bad = |why: Fault| damaged(dir, &r.file, why, Fix::Rebuild);
    let file = File::open(dir.join(&r.file)).map_err(|e| bad(e.into()))?;
    let len = file.metadata().map_err(|e| bad(e.into()))?.len();
    if len != r.bytes {
        return Err(bad("wrong size".into()));
    }
    super::files::map_file(&file, false).map_err(|e| bad(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut bm = RoaringTreemap::new();
        bm.insert(447860009123);
        bm.insert(14155550134);
        let s = Snapshot {
            ledger_digest: 7,
            scopes: vec![ScopeBitmap {
                account: "a".into(),
                scope: "account".into(),
                bitmap: bm,
            }],
        };
        let bytes = s.encode();
        let crc = crc32fast::hash(&bytes);
        let back = Snapshot::decode(&bytes, crc).expect("decode");
        assert_eq!(back.opt_outs(), 2);
        assert_eq!(back.ledger_digest, 7);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(Snapshot::decode(&bad, crc).is_err(), "flip at {i}");
        }
        assert!(Snapshot::decode(&bytes[..bytes.len() - 1], crc).is_err());
        // mapped, the bitmaps are the bytes `serialize_into` writes
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("s.snap"), &bytes).expect("write");
        let at = |bytes: u64, crc32: u32| FileRef {
            file: "s.snap".into(),
            bytes,
            crc32,
            rows: 0,
            blocks: None,
        };
        let (len, d) = (bytes.len() as u64, dir.path());
        let mapped = MappedSnapshot::open(d, &at(len, crc)).expect("open");
        assert_eq!(mapped.ledger_digest(), 7);
        let blobs = mapped.scopes().expect("scopes");
        let mut want = Vec::new();
        s.scopes[0].bitmap.serialize_into(&mut want).expect("serialize");
        assert_eq!(
            (blobs[0].account, blobs[0].scope, blobs[0].count),
            ("a", "account", 2)
        );
        assert_eq!(blobs[0].bytes, &want[..]);
        assert!(MappedSnapshot::open(d, &at(len, crc ^ 1)).is_err());
        assert!(MappedSnapshot::open(d, &at(len + 1, crc)).is_err());
        assert!(Snapshot::open(d, &at(len - 1, crc)).is_err());
        assert_eq!(Snapshot::open(d, &at(len, crc)).expect("open").opt_outs(), 2);
    }
}
