//! A bundle scrubs as its store does, checks itself, and refuses what
//! needs the whole store.

use std::path::Path;

use crate::common::Work;

pub(crate) fn unpack(archive: &Path, into: &Path) {
    let f = std::fs::File::open(archive).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(into)
        .unwrap();
}

#[test]
fn a_bundle_scrubs_as_its_store_and_refuses_the_rest() {
    let w = Work::new();
    let store = w.loaded_store();
    let replies = w.copy_example("replies.csv");
    w.ok(&["ingest", "replies", "--store", &store, &replies]);
    // one opt-out more lies in a layer over the probe: the bundle holds
    // every file of it
    std::fs::write(w.path("one.csv"), "phone\n+447700900555\n").unwrap();
    w.ok(&[
        "ingest",
        "import",
        "--store",
        &store,
        &w.p("one.csv"),
        "--account",
        "acme",
        "--account-wide",
    ]);
    let manifest = std::fs::read_to_string(Path::new(&store).join("MANIFEST")).unwrap();
    assert!(manifest.contains("\"probe_layers\""), "{manifest}");
    std::fs::create_dir(w.path("out")).unwrap();
    let err = w.ok_stderr(&["bundle", "--store", &store, "--output", &w.p("out")]);
    assert!(err.contains("optscrub-bundle-g"), "{err}");
    let archive = std::fs::read_dir(w.path("out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("optscrub-bundle-g") && name.ends_with(".tar.gz"),
        "{name}"
    );
    let b = w.path("b");
    unpack(&archive, &b);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("BUNDLE.json")).unwrap()).unwrap();
    assert!(name.contains(info["id"].as_str().unwrap()));
    // no ledger: the bundle holds the manifest, the config and the probe
    assert!(!b.join("ledger").exists());

    let campaign = w.copy_example("campaigns/spring-sale.csv");
    for (s, out) in [(store.as_str(), "s"), (b.to_str().unwrap(), "b")] {
        w.ok(&[
            "scrub",
            "--store",
            s,
            "--input",
            &campaign,
            "--output",
            &w.p(&format!("{out}-kept.csv")),
            "--suppressed",
            &w.p(&format!("{out}-gone.csv")),
        ]);
    }
    assert_eq!(w.read_csv("s-kept.csv"), w.read_csv("b-kept.csv"));
    assert_eq!(w.read_csv("s-gone.csv"), w.read_csv("b-gone.csv"));

    let bs = b.to_str().unwrap();
    let e = w.fails(&["check", "--store", bs, "+447700900001"], 1);
    assert!(e.contains("is a bundle") && e.contains("check"), "{e}");
    for cmd in ["stats", "export"] {
        let mut args = vec![cmd, "--store", bs];
        let out = w.p("export.csv");
        if cmd == "export" {
            args.extend(["--output", &out]);
        }
        let r = w.run(&args);
        assert!(r.stderr.contains("is a bundle"), "{cmd}: {}", r.stderr);
    }
    let wf = w.copy_example("webform.csv");
    let e = w.fails(&["ingest", "webform", "--store", bs, &wf], 1);
    assert!(e.contains("is a bundle"), "{e}");
    assert!(b.join("MANIFEST").exists(), "a refused writer removes nothing");

    // a damaged bundle is refused, not misread
    let probe = std::fs::read_dir(b.join("probe"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&probe).unwrap();
    std::fs::write(&probe, &bytes[..bytes.len() - 1]).unwrap();
    let e = w.fails(
        &[
            "scrub",
            "--store",
            bs,
            "--input",
            &campaign,
            "--output",
            &w.p("x.csv"),
        ],
        2,
    );
    assert!(e.contains("damaged"), "{e}");
    assert!(!w.path("x.csv").exists());

    // the output must be a .tar.gz
    let e = w.fails(&["bundle", "--store", &store, "--output", &w.p("b.zip")], 1);
    assert!(e.contains(".tar.gz"), "{e}");
}
