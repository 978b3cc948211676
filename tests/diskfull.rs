//! A full disk and read-only folders: a clear error, the store untouched,
//! nothing under an output's final name. Uses small tmpfs mounts, so it
//! needs root (CI runs as root); elsewhere it says so and checks nothing.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, Work};

/// A tmpfs of `size` mounted on a folder; unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, size: &str) -> Option<Mount> {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then(|| Mount(at.to_path_buf()))
    }

    fn read_only(&self) {
        let st = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(
                listing(&e.path())
                    .into_iter()
                    .map(|n| format!("{}/{n}", e.file_name().to_string_lossy())),
            );
        } else {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[test]
fn full_disk_and_read_only_folders() {
    let w = Work::new();
    let Some(disk) = Mount::new(&w.path("disk"), "3m") else {
        eprintln!("diskfull: cannot mount a tmpfs here (not root?); nothing checked");
        return;
    };
    // a store that fits, and a reply log that will not
    let data = w.p("data");
    w.ok(&[
        "gen",
        "--out",
        &data,
        "--seed",
        "3",
        "--recipients",
        "2000",
        "--replies",
        "60000",
    ]);
    let store_dir = w.path("disk/store");
    let store = store_dir.to_string_lossy().into_owned();
    w.ok(&[
        "init",
        "--store",
        &store,
        "--config",
        &format!("{data}/config.toml"),
    ]);
    w.ok(&["ingest", "webform", "--store", &store, &format!("{data}/webform")]);
    fs::write(w.path("disk/ballast"), vec![0u8; 2 << 20]).unwrap();
    let manifest = fs::read(store_dir.join("MANIFEST")).unwrap();
    let files = listing(&store_dir);
    let export = |name: &str| {
        w.ok(&["export", "--store", &store, "--output", &w.p(name)]);
        fs::read(w.path(name)).unwrap()
    };
    let list = export("before.csv");

    // 1. an ingest that fills the disk fails clearly and changes nothing
    let e = w.fails(
        &["ingest", "replies", "--store", &store, &format!("{data}/replies")],
        1,
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(fs::read(store_dir.join("MANIFEST")).unwrap(), manifest);
    assert_eq!(listing(&store_dir), files, "leftovers after a failed write");
    w.ok(&["stats", "--store", &store]);
    assert_eq!(export("after.csv"), list);

    // 2. a scrub whose output does not fit: an error, no output, no temp file
    {
        use std::io::Write;
        let mut filler = fs::File::create(w.path("disk/filler")).unwrap();
        while filler.write_all(&[0u8; 4096]).is_ok() {}
    }
    let campaign = fs::read_dir(format!("{data}/campaigns"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let out = w.path("disk/out.csv");
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &campaign.to_string_lossy(),
            "--output",
            &out.to_string_lossy(),
        ],
        1,
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert!(!out.exists());
    assert!(
        !listing(&w.path("disk")).iter().any(|f| f.contains(".tmp-")),
        "temp file left"
    );
    assert_eq!(listing(&store_dir), files, "the scrub touched the store");

    // with room again, the same commands succeed
    fs::remove_file(w.path("disk/ballast")).unwrap();
    fs::remove_file(w.path("disk/filler")).unwrap();
    w.ok(&["ingest", "replies", "--store", &store, &format!("{data}/replies")]);
    let grown = export("grown.csv");
    assert_ne!(grown, list);

    // 3. a read-only store: writers fail clearly, readers go on
    copy_dir(&store_dir, &w.path("store-copy"));
    drop(disk);
    let Some(ro) = Mount::new(&w.path("ro"), "64m") else {
        panic!("second mount failed");
    };
    copy_dir(&w.path("store-copy"), &w.path("ro/store"));
    ro.read_only();
    let ro_store = w.p("ro/store");
    let e = w.fails(
        &[
            "ingest",
            "webform",
            "--store",
            &ro_store,
            &format!("{data}/webform"),
        ],
        1,
    );
    assert!(e.contains("Read-only file system"), "{e}");
    let kept = w.p("kept.csv");
    w.ok(&[
        "scrub",
        "--store",
        &ro_store,
        "--input",
        &campaign.to_string_lossy(),
        "--output",
        &kept,
    ]);
    w.ok(&[
        "check",
        "--store",
        &ro_store,
        "--account",
        "acct00",
        "+447700900001",
    ]);
    w.ok(&["export", "--store", &ro_store, "--output", &w.p("ro-export.csv")]);
    assert_eq!(fs::read(w.path("ro-export.csv")).unwrap(), grown);
    // 4. an output into a read-only folder
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &ro_store,
            "--input",
            &campaign.to_string_lossy(),
            "--output",
            &w.p("ro/k.csv"),
        ],
        1,
    );
    assert!(e.contains("Read-only file system") && e.contains("k.csv"), "{e}");
}
