//! Replays, through every fuzz target's check, each input the fuzzers ever
//! crashed on (`tests/fuzz/regressions/<target>/`) and every file under
//! `datasets/` (the fuzzers' seed corpus).

use std::path::{Path, PathBuf};

use optscrub::dev::fuzzing::TARGETS;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn saved_crashes_no_longer_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, check) in TARGETS {
        for f in files(&root.join("tests/fuzz/regressions").join(name)) {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "fuzz target {name} panics on {}", f.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved inputs");
}

#[test]
fn seed_corpus_passes_every_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = files(&root.join("datasets"));
    assert!(seeds.len() > 10, "datasets/ went missing");
    for (name, check) in TARGETS {
        for f in &seeds {
            let data = std::fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "fuzz target {name} panics on {}", f.display());
            // and line by line, the unit the phone and keyword targets see
            for line in data.split(|&b| b == b'\n') {
                let r = std::panic::catch_unwind(|| check(line));
                assert!(
                    r.is_ok(),
                    "fuzz target {name} panics on a line of {}",
                    f.display()
                );
            }
        }
    }
}

/// The error reading a saved Parquet input gives (at open, or at its
/// first batch), named as `crafted.parquet`.
fn refusal(file: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(root.join("tests/fuzz/regressions/parquet").join(file)).unwrap();
    let err = match optscrub::io::input::Dataset::from_bytes("crafted.parquet", data, true, 1024) {
        Err(e) => e,
        Ok(mut ds) => match ds.next() {
            Some(Err(e)) => e,
            _ => panic!("{file} was read"),
        },
    };
    err.to_string()
}

/// Found by the parquet target: a dictionary page header that claims two
/// billion values made the parquet crate reserve 8 GB before reading them
/// (an abort where the machine cannot give it). It is now refused first.
#[test]
fn dictionary_page_claiming_billions_of_values_is_refused() {
    let err = refusal("dictionary-page-8gb.parquet");
    let want = "crafted.parquet: row group 0, column 'account_id': its dictionary page claims";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target: a footer whose schema element claims 789
/// million children made the parquet crate reserve 6 GB while decoding the
/// footer. The footer's encoding is walked first and the lie refused.
#[test]
fn footer_claiming_millions_of_children_is_refused() {
    let err = refusal("footer-children-6gb.parquet");
    let want = "crafted.parquet: not a readable Parquet file (its footer is damaged: a schema element claims 789405693 children";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target: a page header whose statistics claim a
/// list of booleans far longer than the header kept the parquet crate's
/// header reader looping for minutes. Page headers are walked first.
#[test]
fn page_header_claiming_an_endless_list_is_refused() {
    let err = refusal("page-header-endless-list.parquet");
    let want = "crafted.parquet: row group 0, column 'account_id': a page header is damaged (a list claims";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target: a mangled footer makes a column chunk end
/// inside a page header that claims a list of 205 million doubles. The
/// parquet crate reads the header on past the chunk, skips each double past
/// the end of the file without noticing, and took over a minute to fail.
/// The walk now reads a header as far as the file goes, as the crate does.
#[test]
fn page_header_running_past_its_chunk_is_refused() {
    let err = refusal("page-header-past-chunk.parquet");
    let want = "crafted.parquet: row group 0, column 'customer_id': a page header is damaged (a list claims 205110761 items";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target (a 30 s timeout): a page header over 16 KB
/// long (a map of nested structs) that ends in a list of 218 million
/// UUIDs, skipped one by one past the end of the file by the crate. The
/// walk read the first 16 KB of a header and left a longer one to the
/// crate; it now reads on (up to 64 MiB).
#[test]
fn page_header_longer_than_the_first_read_is_walked_to_its_end() {
    let err = refusal("page-header-past-16k.parquet");
    let want = "crafted.parquet: row group 0, column 'account_id': a page header is damaged (a list claims 218365287 items";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target with a 1 GB allocation limit: a Snappy
/// dictionary page of 10 bytes claiming 1.35 GB once decompressed; the
/// crate reserves the claimed size first. No codec expands that much.
#[test]
fn page_claiming_more_than_its_codec_can_expand_is_refused() {
    let err = refusal("snappy-page-1gb.parquet");
    let want = "crafted.parquet: row group 0, column 'account_id': a page claims 1352745605 bytes once decompressed from 10";
    assert!(err.contains(want), "{err}");
}

/// `batch` as a Parquet file written with `props`.
fn written(batch: &arrow::array::RecordBatch, props: parquet::file::properties::WriterProperties) -> Vec<u8> {
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.into_inner().unwrap()
}

/// The rows optscrub reads from a Parquet file, which must read whole.
fn rows_read(data: Vec<u8>) -> usize {
    let ds = optscrub::io::input::Dataset::from_bytes("sound.parquet", data, true, 1 << 20).unwrap();
    ds.map(|b| b.unwrap().batch.num_rows()).sum()
}

/// A sound file whose page headers are longer than the walk's first read
/// (page statistics holding a 40 KB value, untruncated) is read whole.
#[test]
fn a_sound_page_header_of_40_kb_is_read() {
    use arrow::array::{RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![Field::new("phone", DataType::Utf8, false)]));
    let long = "7".repeat(40_000);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["+447700900123", long.as_str()]))],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_write_page_header_statistics(true)
        .set_statistics_truncate_length(None)
        .set_dictionary_enabled(false)
        .build();
    let data = written(&batch, props);
    // the column chunk holds one page: its header, with the value as max
    // (in the old and the new field), and 40 KB of values
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(data.clone()))
        .unwrap();
    let chunk = meta.row_group(0).column(0).compressed_size();
    assert!(chunk > 40_000 + 16_384 * 2, "{chunk}");
    assert_eq!(rows_read(data), 2);
}

/// The most compressible sound pages (one value repeated, stored plain in
/// one large page) are within every codec's bound and read whole.
#[test]
fn sound_pages_that_compress_extremely_are_read() {
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::basic::{Compression, GzipLevel, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let n = 1_000_000;
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![0i64; n]))]).unwrap();
    for codec in [
        Compression::SNAPPY,
        Compression::LZ4_RAW,
        Compression::GZIP(GzipLevel::default()),
        Compression::ZSTD(ZstdLevel::default()),
    ] {
        let props = WriterProperties::builder()
            .set_compression(codec)
            .set_dictionary_enabled(false)
            .set_data_page_size_limit(64 << 20)
            .set_data_page_row_count_limit(usize::MAX)
            .set_write_batch_size(n)
            .build();
        assert_eq!(rows_read(written(&batch, props)), n, "{codec:?}");
    }
}
