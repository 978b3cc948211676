//! The store holds personal data: its folders are 0700 and its files 0600
//! whatever the umask; a store others may write is refused (exit 2), one
//! others may read is used with a warning; a store of another user is for
//! reading only. Outputs keep the user's umask.

#![cfg(unix)]

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Work;

/// Run optscrub under a umask; returns (exit status, stderr).
fn under_umask(umask: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_optscrub"))
        .args(args)
        .current_dir(common::repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn everything(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            everything(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

fn assert_private(store: &str) {
    let mut all = Vec::new();
    everything(Path::new(store), &mut all);
    assert!(all.len() > 8, "{all:?}");
    for p in all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{} has mode {:o}", p.display(), mode(&p));
    }
}

#[test]
fn store_files_are_private_whatever_the_umask() {
    let w = Work::new();
    let config = w.copy_example("config.toml");
    let replies = w.copy_example("replies.csv");
    let store = w.p("store");
    let (code, e) = under_umask("000", &["init", "--store", &store, "--config", &config]);
    assert_eq!(code, 0, "{e}");
    assert_private(&store);
    let outbox = w.p("outbox.csv");
    let (code, e) = under_umask("000", &["ingest", "replies", "--store", &store, &replies]);
    assert_eq!(code, 0, "{e}");
    assert_private(&store);
    assert!(!e.contains("warning"), "{e}");
    // outputs keep the user's umask (pipelines read them under other accounts)
    let (code, e) = under_umask("022", &["outbox", "--store", &store, "--output", &outbox]);
    assert_eq!(code, 0, "{e}");
    assert_eq!(mode(Path::new(&outbox)), 0o644);
    assert_private(&store);
}

#[test]
fn a_store_others_may_write_is_refused() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let ledger = Path::new(&store).join("ledger");
    fs::set_permissions(&ledger, fs::Permissions::from_mode(0o770)).unwrap();
    for args in [
        vec!["stats", "--store", &store],
        vec![
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k.csv"),
        ],
        vec!["ingest", "webform", "--store", &store, &input],
    ] {
        let e = w.fails(&args, 2);
        assert!(
            e.contains(&format!(
                "store {store}: {}/ledger is writable by its group (mode 0770)",
                store
            )),
            "{e}"
        );
        assert!(e.contains(&format!("run `chmod -R go-w {store}`")), "{e}");
    }
    assert!(!w.path("k.csv").exists());
    fs::set_permissions(&ledger, fs::Permissions::from_mode(0o700)).unwrap();
    let manifest = Path::new(&store).join("MANIFEST");
    fs::set_permissions(&manifest, fs::Permissions::from_mode(0o666)).unwrap();
    let e = w.fails(
        &["check", "--store", &store, "--account", "acme", "+447700900001"],
        2,
    );
    assert!(
        e.contains("MANIFEST is writable by its group and other users (mode 0666)"),
        "{e}"
    );
    fs::set_permissions(&manifest, fs::Permissions::from_mode(0o602)).unwrap();
    let e = w.fails(&["stats", "--store", &store], 2);
    assert!(
        e.contains("MANIFEST is writable by other users (mode 0602)"),
        "{e}"
    );
    fs::set_permissions(&manifest, fs::Permissions::from_mode(0o600)).unwrap();
    w.ok(&["stats", "--store", &store]);
}

#[test]
fn a_store_others_may_read_is_used_with_a_warning() {
    let w = Work::new();
    let store = w.loaded_store();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).unwrap();
    let r = w.run(&["stats", "--store", &store]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warning = format!("optscrub: warning: store {store} is readable by other users");
    assert_eq!(r.stderr.matches(&warning).count(), 1, "{}", r.stderr);
    assert!(r.stdout.contains("permissions: store"), "{}", r.stdout);
    assert!(r.stdout.contains("run `chmod -R go-rwx"), "{}", r.stdout);
}

#[test]
fn a_store_of_another_user_is_for_reading_only() {
    if effective_uid() != 0 {
        eprintln!("skipped: needs root to give the store to another user");
        return;
    }
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let wf = w.copy_example("webform.csv");
    let st = Command::new("chown")
        .args(["-R", "65534", &store])
        .status()
        .unwrap();
    assert!(st.success());
    w.ok(&["stats", "--store", &store]);
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("k.csv"),
    ]);
    let e = w.fails(&["ingest", "webform", "--store", &store, &wf], 2);
    assert!(e.contains("belongs to another user (uid 65534)"), "{e}");
    assert!(e.contains("only reading commands"), "{e}");
}

/// The effective user id, read from /proc (no unsafe code in tests).
fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}
