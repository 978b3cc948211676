//! A bundle: the smallest copy of a store that scrubs as the store does,
//! for executors that cannot reach the store (Spark, Ray, a container).
//!
//! It holds the store's manifest as it is (its checksum, the config's and
//! the probe files' sizes and CRCs, and the ledger digest the probe must
//! match), the config in force and the probe files, in a `.tar.gz`, plus a
//! `BUNDLE.json` that names the generation and a checksum of the manifest.
//! Unpacked, it opens as a store for reading: `scrub --store` and
//! `optscrub.Store` take it; what needs the ledger (`check`'s events,
//! `export`) or writes (`ingest`, `rebuild`) is refused with the reason.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::MANIFEST;
use super::Store;
use crate::error::{Error, Result};

/// The marker file of an unpacked bundle.
pub const BUNDLE: &str = "BUNDLE.json";

/// What a bundle says of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// Bundle format version.
    pub format: u32,
    /// The store generation it copies.
    pub generation: u64,
    /// `g<generation>-<xxh3 of the manifest, 16 hex digits>`: two bundles
    /// with one id scrub alike.
    pub id: String,
    /// The files it holds besides this one, relative to its folder.
    pub files: Vec<String>,
    /// Opted-out (account, scope, contact) keys.
    pub opt_outs: u64,
}

const FORMAT: u32 = 1;

/// Is the folder an unpacked bundle?
pub fn is_bundle(dir: &Path) -> bool {
    dir.join(BUNDLE).is_file()
}

/// The error for a use of a bundle that needs the whole store.
pub(crate) fn refuse(dir: &Path, what: &str) -> Error {
    Error::Usage(format!(
        "{} is a bundle (a copy for scrubbing only): {what} needs the store itself",
        dir.display()
    ))
}

/// The default file name of a bundle of `info`.
pub fn file_name(info: &BundleInfo) -> String {
    format!("optscrub-bundle-{}.tar.gz", info.id)
}

/// Write a bundle of the store's current generation to `output` (a
/// `.tar.gz` path, or a folder to write it into under [`file_name`]). The
/// file appears under its name only when complete. Returns where it went
/// and what it holds.
pub fn write(store: &Store, output: &Path) -> Result<(PathBuf, BundleInfo)> {
    let m = &store.manifest;
    if m.probe.is_none() {
        return Err(Error::Usage(format!(
            "store {} has no probe file (it was written by an older optscrub): run `optscrub rebuild --store {}` first",
            store.dir.display(),
            store.dir.display()
        )));
    };
    // the probe and the config read and checked as a scrub reads them
    let opt_outs = store.opt_outs()?.opt_outs();
    let manifest_bytes = std::fs::read(store.dir.join(MANIFEST))
        .map_err(|e| Error::io("cannot read", &store.dir.join(MANIFEST), e))?;
    if Store::current_generation(&store.dir)? != m.generation {
        return Err(Error::Usage(format!(
            "store {} changed while the bundle was made; run bundle again",
            store.dir.display()
        )));
    }
    let mut files = vec![m.config.file.clone()];
    for probe in m.probe_files() {
        files.push(probe.file.clone());
        files.extend(probe.blocks.as_deref().map(|b| b.file.clone()));
    }
    let info = BundleInfo {
        format: FORMAT,
        generation: m.generation,
        id: format!(
            "g{}-{:016x}",
            m.generation,
            xxhash_rust::xxh3::xxh3_64(&manifest_bytes)
        ),
        files: std::iter::once(MANIFEST.to_string())
            .chain(files.iter().cloned())
            .collect(),
        opt_outs,
    };
    let path = if output.is_dir() {
        output.join(file_name(&info))
    } else {
        output.to_path_buf()
    };
    let name = path.to_string_lossy();
    if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        return Err(Error::Usage(format!(
            "--output {}: a bundle is a .tar.gz file (or name a folder to write it into)",
            path.display()
        )));
    }
    let (pending, file) = crate::io::atomic::PendingFile::create(&path)?;
    let bad = |e: std::io::Error| Error::output(&path, e);
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let json = serde_json::to_vec_pretty(&info)
        .map_err(|e| Error::Internal(format!("cannot encode the bundle: {e}")))?;
    add(&mut tar, BUNDLE, &json).map_err(bad)?;
    add(&mut tar, MANIFEST, &manifest_bytes).map_err(bad)?;
    let mut dirs: Vec<&str> = files
        .iter()
        .filter_map(|f| f.rsplit_once('/').map(|d| d.0))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        let mut h = header(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o700);
        tar.append_data(&mut h, format!("{d}/"), std::io::empty())
            .map_err(bad)?;
    }
    for f in &files {
        let src = store.dir.join(f);
        let mut from = std::fs::File::open(&src).map_err(|e| Error::io("cannot read", &src, e))?;
        let len = from
            .metadata()
            .map_err(|e| Error::io("cannot read", &src, e))?
            .len();
        let mut header = header(len);
        tar.append_data(&mut header, f, &mut from).map_err(bad)?;
    }
    let gz = tar.into_inner().map_err(bad)?;
    let buf = gz.finish().map_err(bad)?;
    let mut file = buf.into_inner().map_err(|e| bad(e.into_error()))?;
    file.flush().map_err(bad)?;
    pending.commit(file, None)?;
    Ok((path, info))
}

/// A tar header for a file of the store: owner-only, as the store's are.
fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add<W: std::io::Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut h = header(bytes.len() as u64);
    tar.append_data(&mut h, name, bytes)
}

/// Read an unpacked bundle's `BUNDLE.json`.
pub fn info(dir: &Path) -> Result<BundleInfo> {
    let path = dir.join(BUNDLE);
    let text = std::fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::Corrupt(format!(
            "bundle {}: {BUNDLE} is unreadable ({e}); make the bundle again",
            dir.display()
        ))
    })
}
