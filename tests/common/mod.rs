//! A work folder per test and helpers to run the real binary in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

/// The repository root (tests run with it as the working directory).
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder for one test.
pub(crate) struct Work {
    pub dir: tempfile::TempDir,
}

/// What a finished command printed.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Work {
    pub(crate) fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn p(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }

    pub(crate) fn write(&self, rel: &str, content: &str) -> String {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, content).expect("write");
        p.to_string_lossy().into_owned()
    }

    /// Copy `datasets/demo/<name>` into the work folder (by file name).
    pub(crate) fn copy_example(&self, name: &str) -> String {
        let src = repo().join("datasets/demo").join(name);
        let dst = self
            .dir
            .path()
            .join(Path::new(name).file_name().expect("file name"));
        fs::copy(&src, &dst).expect("copy fixture");
        dst.to_string_lossy().into_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_optscrub"));
        c.args(args).current_dir(repo()).env("OPTSCRUB_LOCK_WAIT", "0");
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    pub(crate) fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut c = self.command(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn optscrub");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut s = child.stdin.take().expect("stdin");
            s.write_all(text.as_bytes()).expect("write stdin");
        }
        let out: Output = child.wait_with_output().expect("wait");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run and expect success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "optscrub {args:?} failed: {}", r.stderr);
        r.stdout
    }

    /// Run and expect success; returns stderr.
    #[allow(dead_code)]
    pub(crate) fn ok_stderr(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "optscrub {args:?} failed: {}", r.stderr);
        r.stderr
    }

    /// Run and expect this exit status; returns stderr.
    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "optscrub {args:?}: stdout {} stderr {}",
            r.stdout, r.stderr
        );
        r.stderr
    }

    /// A store initialised with the example config.
    pub(crate) fn example_store(&self) -> String {
        let config = self.copy_example("config.toml");
        let store = self.p("store");
        self.ok(&["init", "--store", &store, "--config", &config]);
        store
    }

    /// The example store with the example webform and import ingested.
    pub(crate) fn loaded_store(&self) -> String {
        let store = self.example_store();
        let wf = self.copy_example("webform.csv");
        let imp = self.copy_example("import.csv");
        self.ok(&["ingest", "webform", "--store", &store, &wf]);
        self.ok(&[
            "ingest",
            "import",
            "--store",
            &store,
            &imp,
            "--account",
            "acme",
            "--senders",
            "+447860009123",
        ]);
        store
    }

    pub(crate) fn read_csv(&self, rel: &str) -> Vec<Vec<String>> {
        read_csv(&self.path(rel))
    }

    pub(crate) fn read_parquet(&self, rel: &str) -> RecordBatch {
        read_parquet(&self.path(rel))
    }
}

pub(crate) fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .expect("open csv");
    r.records()
        .map(|rec| rec.expect("csv row").iter().map(String::from).collect())
        .collect()
}

pub(crate) fn read_parquet(path: &Path) -> RecordBatch {
    let f = fs::File::open(path).expect("open parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let schema = batches.first().map(|b| b.schema()).expect("at least one batch");
    arrow::compute::concat_batches(&schema, &batches).expect("concat")
}

/// Column `name` of a batch as strings.
pub(crate) fn strings(b: &RecordBatch, name: &str) -> Vec<String> {
    let c = b.column_by_name(name).expect("column");
    let c = arrow::compute::cast(c, &DataType::Utf8).expect("cast");
    let s = c.as_any().downcast_ref::<StringArray>().expect("strings");
    (0..s.len()).map(|i| s.value(i).to_string()).collect()
}

/// Copy a folder and everything in it (a store, to damage or fill a copy).
#[allow(dead_code)]
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Write a CSV's rows as a Parquet file with text columns, except those in
/// `int_columns`, written as int64.
pub(crate) fn csv_to_parquet(csv_path: &Path, out: &Path, int_columns: &[&str]) {
    csv_to_parquet_grouped(csv_path, out, int_columns, None);
}

/// [`csv_to_parquet`] with row groups of at most `group_rows` rows.
#[allow(dead_code)]
pub(crate) fn csv_to_parquet_grouped(
    csv_path: &Path,
    out: &Path,
    int_columns: &[&str],
    group_rows: Option<usize>,
) {
    let rows = read_csv(csv_path);
    let header = &rows[0];
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let values = rows[1..].iter().map(|r| r[i].clone());
        if int_columns.contains(&name.as_str()) {
            fields.push(Field::new(name, DataType::Int64, true));
            cols.push(Arc::new(
                values
                    .map(|v| v.trim_start_matches('+').parse::<i64>().ok())
                    .collect::<Int64Array>(),
            ));
        } else {
            fields.push(Field::new(name, DataType::Utf8, true));
            cols.push(Arc::new(StringArray::from_iter_values(values)));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
    let f = fs::File::create(out).expect("create");
    let props = group_rows.map(|n| {
        parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(n))
            .build()
    });
    let mut w = ArrowWriter::try_new(f, schema, props).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}
