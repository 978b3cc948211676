//! `check` of one contact reads only what that contact needs: the blocks
//! of the ledger file that hold its event are verified and read, the rest
//! of the file is not (a byte flipped elsewhere does not change its answer,
//! while `stats`, which verifies everything, names the damage).

use crate::common;

use std::fs;
use std::path::PathBuf;

use arrow::array::{Array, UInt64Array};
use common::Work;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::PageIndexPolicy;

fn newest_ledger(w: &Work, store: &str) -> PathBuf {
    let _ = w;
    fs::read_dir(PathBuf::from(store).join("ledger"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .max()
        .unwrap()
}

#[test]
fn check_reads_only_the_pages_of_its_contact() {
    let w = Work::new();
    let store = w.example_store();
    let mut csv = String::from("phone\n");
    for i in 0..100_000u64 {
        csv.push_str(&format!("+4477009{i:05}\n"));
    }
    let imports = w.write("many.csv", &csv);
    w.ok(&[
        "ingest",
        "import",
        "--store",
        &store,
        &imports,
        "--account",
        "acme",
        "--account-wide",
    ]);
    let ledger = newest_ledger(&w, &store);
    // where each column's pages lie, and which rows they hold
    let file = fs::File::open(&ledger).unwrap();
    let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let meta = ArrowReaderMetadata::load(&file, opts).unwrap();
    let md = meta.metadata();
    assert_eq!(md.num_row_groups(), 1);
    let rg = md.row_group(0);
    let index = md.page_index_for_row_group(0);
    let block = |at: u64| at / (1 << 16);
    // what the first row's answer reads: each column chunk up to the end of
    // its first page (dictionary included), and the indexes and footer
    let mut first_reads = std::collections::BTreeSet::new();
    let mut chunks_end = 0;
    for c in 0..rg.num_columns() {
        let (start, len) = rg.column(c).byte_range();
        chunks_end = chunks_end.max(start + len);
        let p0 = &index.offset_index(c).unwrap().page_locations()[0];
        let end = p0.offset as u64 + p0.compressed_page_size as u64;
        first_reads.extend(block(start)..=block(end - 1));
    }
    let len = fs::metadata(&ledger).unwrap().len();
    first_reads.extend(block(chunks_end)..=block(len - 1));
    // a page that the first row's answer does not come near
    let (col, page) = (0..rg.num_columns())
        .flat_map(|c| {
            let pages = index.offset_index(c).unwrap().page_locations().clone();
            (1..pages.len()).map(move |i| (c, pages[i].clone()))
        })
        .find(|(_, p)| {
            let mid = p.offset as u64 + p.compressed_page_size as u64 / 2;
            !first_reads.contains(&block(mid))
        })
        .expect("a page away from the first row's reads");
    let _ = col;
    let contacts: Vec<u64> = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&ledger).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .flat_map(|b| {
            let b = b.unwrap();
            let c = b
                .column_by_name("contact")
                .unwrap()
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .clone();
            (0..c.len()).map(move |i| c.value(i)).collect::<Vec<_>>()
        })
        .collect();
    let first = contacts[0];
    let in_damaged_page = contacts[page.first_row_index as usize + 1];
    let mut bytes = fs::read(&ledger).unwrap();
    let at = page.offset as usize + page.compressed_page_size as usize / 2;
    bytes[at] ^= 0x10;
    fs::write(&ledger, &bytes).unwrap();
    // the first contact's answer does not depend on that page: given whole
    let out = w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--json",
        &format!("+{first}"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sendable"], false, "{v}");
    assert_eq!(v["reason"], "account_opt_out", "{v}");
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1), "{v}");
    // a contact whose event lies in the damaged page is refused, named
    let name = format!("ledger/{}", ledger.file_name().unwrap().to_string_lossy());
    let e = w.fails(
        &[
            "check",
            "--store",
            &store,
            "--account",
            "acme",
            &format!("+{in_damaged_page}"),
        ],
        2,
    );
    assert!(e.contains(&name) && e.contains("restore it from a backup"), "{e}");
    // and the store's own check finds it
    let e = w.fails(&["stats", "--store", &store], 2);
    assert!(e.contains(&name), "{e}");
}
