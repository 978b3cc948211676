//! Where a store keeps each kind of file. Every file of a generation is
//! named here, and only here, so that the writer, the cleaner after a
//! failed commit and the readers agree on the names:
//!
//! ```text
//! MANIFEST                        the files of the current generation
//! config/<gen>.toml               the config, from the generation that set it
//! ledger/<gen>.parquet[.blocks]   the events an ingest added
//! index/<gen>.idx[.blocks]        a key run: each key's last event
//! ids/<gen>.bin                   an id run: the event ids seen
//! snapshot/<gen>.snap             the opted-out contacts per scope
//! probe/<gen>.probe               the snapshot as a scrub probes it
//! outbox/<gen>.parquet            replies waiting to be handed over
//! ```
//!
//! `<gen>` is the generation number, ten digits with leading zeros.

/// A kind of store file, each in its own folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `config/`: config files (never removed: old generations' configs
    /// explain their events).
    Config,
    /// `ledger/`: the events, one file per ingest.
    Ledger,
    /// `index/`: key runs (`store::keys`; the folder keeps the name the
    /// first stores gave it).
    KeyRun,
    /// `ids/`: id runs.
    IdRun,
    /// `snapshot/`: the snapshot.
    Snapshot,
    /// `probe/`: the probe file.
    Probe,
    /// `outbox/`: pending replies.
    Outbox,
}

impl Kind {
    /// Every kind, in the order their folders are made.
    pub(super) const ALL: [Kind; 7] = [
        Kind::Config,
        Kind::Ledger,
        Kind::KeyRun,
        Kind::IdRun,
        Kind::Snapshot,
        Kind::Probe,
        Kind::Outbox,
    ];

    /// The folder that holds files of this kind.
    pub(super) fn folder(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Ledger => "ledger",
            Kind::KeyRun => "index",
            Kind::IdRun => "ids",
            Kind::Snapshot => "snapshot",
            Kind::Probe => "probe",
            Kind::Outbox => "outbox",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Config => "toml",
            Kind::Ledger | Kind::Outbox => "parquet",
            Kind::KeyRun => "idx",
            Kind::IdRun => "bin",
            Kind::Snapshot => "snap",
            Kind::Probe => "probe",
        }
    }

    /// The file of this kind that `generation` writes, relative to the store.
    pub(super) fn file(self, generation: u64) -> String {
        format!("{}/{generation:010}.{}", self.folder(), self.extension())
    }

    /// A ledger file of generation `ledger` written anew by the commit of
    /// `generation` (an erase): `ledger/<ledger>-<generation>.parquet`. It
    /// keeps its generation, which key runs and reverts name it by.
    pub(super) fn rewritten(self, ledger: u32, generation: u64) -> String {
        format!(
            "{}/{ledger:010}-{generation:010}.{}",
            self.folder(),
            self.extension()
        )
    }

    /// The generation whose file of this kind `rel` is, if it is one (a
    /// file written anew keeps the generation of the one it replaced).
    pub(super) fn generation_of(self, rel: &str) -> Option<u32> {
        let ten = |d: &str| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit());
        let name = rel.strip_prefix(self.folder())?.strip_prefix('/')?;
        let stem = name.strip_suffix(self.extension())?.strip_suffix('.')?;
        let digits = match stem.split_once('-') {
            Some((first, by)) if self == Kind::Ledger && ten(by) => first,
            Some(_) => return None,
            None => stem,
        };
        ten(digits).then(|| digits.parse().ok()).flatten()
    }

    /// The kinds a commit writes and clean-up removes when no manifest
    /// names them: every kind but configs, which are kept for good.
    pub(super) fn per_generation() -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(|&k| k != Kind::Config)
    }

    /// Do files of this kind have a blocks file beside them?
    pub(super) fn has_blocks(self) -> bool {
        matches!(self, Kind::Ledger | Kind::KeyRun)
    }
}

/// The blocks file kept beside store file `rel` (see `blocks`).
pub(super) fn blocks_file(rel: &str) -> String {
    format!("{rel}.blocks")
}

/// Every file a commit of `generation` may write: what a failed commit
/// takes back.
pub(super) fn files_of(generation: u64) -> impl Iterator<Item = String> {
    Kind::per_generation().flat_map(move |k| {
        let f = k.file(generation);
        let blocks = k.has_blocks().then(|| blocks_file(&f));
        std::iter::once(f).chain(blocks)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_generations() {
        assert_eq!(Kind::Ledger.file(12), "ledger/0000000012.parquet");
        assert_eq!(Kind::KeyRun.file(3), "index/0000000003.idx");
        assert_eq!(Kind::Config.file(0), "config/0000000000.toml");
        for k in Kind::ALL {
            assert_eq!(k.generation_of(&k.file(4_000_000_000)), Some(4_000_000_000));
        }
        assert_eq!(Kind::Ledger.generation_of("ledger/12.parquet"), None);
        assert_eq!(Kind::Ledger.generation_of("outbox/0000000012.parquet"), None);
        assert_eq!(
            Kind::Ledger.generation_of("ledger/0000000012.parquet.blocks"),
            None
        );
        assert_eq!(Kind::Ledger.generation_of("ledger/99999999999.parquet"), None);
        let anew = Kind::Ledger.rewritten(12, 40);
        assert_eq!(anew, "ledger/0000000012-0000000040.parquet");
        assert_eq!(Kind::Ledger.generation_of(&anew), Some(12));
        assert_eq!(
            Kind::KeyRun.generation_of("index/0000000012-0000000040.idx"),
            None
        );
        assert_eq!(Kind::Ledger.generation_of("ledger/0000000012-40.parquet"), None);
        let all: Vec<String> = files_of(7).collect();
        assert_eq!(
            all,
            [
                "ledger/0000000007.parquet",
                "ledger/0000000007.parquet.blocks",
                "index/0000000007.idx",
                "index/0000000007.idx.blocks",
                "ids/0000000007.bin",
                "snapshot/0000000007.snap",
                "probe/0000000007.probe",
                "outbox/0000000007.parquet",
            ]
        );
    }
}
