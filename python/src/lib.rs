//! `optscrub._native`: the engine behind the `optscrub` Python package.
//!
//! Data comes in through Arrow's PyCapsule stream interface (anything with
//! `__arrow_c_stream__`: a pyarrow Table or RecordBatchReader, a Polars
//! DataFrame, a DuckDB relation) without a copy, and goes back as pyarrow
//! Tables. The work runs with the GIL released, on rayon's threads, through
//! the same library calls as the command line: the decisions are the CLI's.
//! The Python side (`optscrub/__init__.py`) turns answers into dataclasses
//! and documents the API.

// the methods take Python's keyword arguments, one parameter each
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::pyarrow::{PyArrowType, Table};
use arrow::record_batch::RecordBatch;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use optscrub::error::Error;
use optscrub::ingest::{import, replies, signals, webform};
use optscrub::io::input::Dataset;
use optscrub::scrub::run::ScrubJob;
use optscrub::scrub::{check, memory};
use optscrub::store::Store;

pyo3::create_exception!(
    optscrub,
    OptscrubError,
    PyException,
    "Base of every optscrub error."
);
pyo3::create_exception!(
    optscrub,
    UsageError,
    OptscrubError,
    "Arguments that cannot work together, or name what the store does not have."
);
pyo3::create_exception!(
    optscrub,
    InputError,
    OptscrubError,
    "Data that cannot be read as asked (a missing column, a wrong type)."
);
pyo3::create_exception!(
    optscrub,
    ConfigError,
    OptscrubError,
    "A config that is not valid."
);
pyo3::create_exception!(
    optscrub,
    StoreLockedError,
    OptscrubError,
    "Another writer holds the store's lock."
);
pyo3::create_exception!(
    optscrub,
    StoreDamagedError,
    OptscrubError,
    "A store file is damaged or missing; the message says how to mend it."
);
pyo3::create_exception!(
    optscrub,
    UnsafeStoreError,
    OptscrubError,
    "The store's folder or files are open to other users in a way that is refused."
);
pyo3::create_exception!(
    optscrub,
    StoreIoError,
    OptscrubError,
    "The system refused to read or write a store file (permissions, disk)."
);
pyo3::create_exception!(
    optscrub,
    OutputError,
    OptscrubError,
    "An output file cannot be written."
);

/// The Python exception of an optscrub error, with the CLI's message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Usage(_) => UsageError::new_err(msg),
        Error::Input(_) => InputError::new_err(msg),
        Error::Config(_) => ConfigError::new_err(msg),
        Error::Locked(_) => StoreLockedError::new_err(msg),
        Error::Corrupt(_) => StoreDamagedError::new_err(msg),
        Error::Unsafe(_) => UnsafeStoreError::new_err(msg),
        Error::StoreIo { .. } => StoreIoError::new_err(msg),
        Error::Output { .. } | Error::Io { .. } => OutputError::new_err(msg),
        Error::Internal(_) => OptscrubError::new_err(msg),
    }
}

use memory::current;

/// What a scrub or a decision reads from each row, as the Python keyword
/// arguments give it.
#[derive(Clone, Default)]
struct Settings {
    account: Option<String>,
    sender: Option<String>,
    country: Option<String>,
    keep_duplicates: bool,
    phone_column: Option<String>,
    account_column: Option<String>,
    sender_column: Option<String>,
    country_column: Option<String>,
}

impl Settings {
    /// The scrub job these settings make (its files unused).
    fn job(&self) -> optscrub::Result<ScrubJob> {
        let mut job = ScrubJob::new(Vec::new(), PathBuf::new());
        job.account = self.account.clone();
        job.sender = self.sender.clone();
        job.country = optscrub::phone::parse_country(self.country.as_deref())?;
        job.keep_duplicates = self.keep_duplicates;
        if let Some(c) = &self.phone_column {
            job.phone_column = c.clone();
        }
        if let Some(c) = &self.account_column {
            job.account_column = c.clone();
        }
        if let Some(c) = &self.sender_column {
            job.sender_column = c.clone();
            job.sender_column_given = true;
        }
        job.country_column = self.country_column.clone();
        Ok(job)
    }
}

/// The name data handed over from Python goes by in messages.
const DATA: &str = "the data";

/// The batches of a table, checked to have its schema, as a dataset.
fn dataset(schema: &SchemaRef, batches: Vec<RecordBatch>) -> optscrub::Result<Dataset> {
    Dataset::from_batches(DATA, schema.clone(), batches)
}

fn table(batches: Vec<RecordBatch>, schema: SchemaRef) -> PyResult<PyArrowType<Table>> {
    Table::try_new(batches, schema)
        .map(PyArrowType)
        .map_err(|e| OptscrubError::new_err(format!("internal error (a bug; please report it): {e}")))
}

/// An optscrub store (or bundle) folder, opened once per process and
/// generation.
#[pyclass(frozen, module = "optscrub._native")]
struct NativeStore {
    dir: PathBuf,
}

#[pymethods]
impl NativeStore {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<NativeStore> {
        let dir = path.clone();
        py.detach(|| current(&dir)).map_err(py_err)?;
        Ok(NativeStore { dir: path })
    }

    /// The store's current generation.
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| current(&self.dir).map(|o| o.store.generation()))
            .map_err(py_err)
    }

    /// Why other users may read the store, if they may.
    fn exposed(&self, py: Python<'_>) -> PyResult<Option<String>> {
        py.detach(|| current(&self.dir).map(|o| o.store.exposed.clone()))
            .map_err(py_err)
    }

    /// Opted-out (account, scope, contact) keys.
    fn opt_outs(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| current(&self.dir)?.store.opt_outs().map(|o| o.opt_outs()))
            .map_err(py_err)
    }

    /// Scrub: (kept, suppressed, stats as JSON).
    #[pyo3(signature = (data, account=None, sender=None, default_country=None, keep_duplicates=false,
                        phone_column=None, account_column=None, sender_column=None, country_column=None))]
    fn scrub(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
        account: Option<String>,
        sender: Option<String>,
        default_country: Option<String>,
        keep_duplicates: bool,
        phone_column: Option<String>,
        account_column: Option<String>,
        sender_column: Option<String>,
        country_column: Option<String>,
    ) -> PyResult<(PyArrowType<Table>, PyArrowType<Table>, String)> {
        let settings = Settings {
            account,
            sender,
            country: default_country,
            keep_duplicates,
            phone_column,
            account_column,
            sender_column,
            country_column,
        };
        let (batches, schema) = data.0.into_inner();
        let done = py
            .detach(|| {
                let opened = current(&self.dir)?;
                let job = settings.job()?;
                let cols = job.columns(&opened.store.config, &dataset(&schema, batches.clone())?)?;
                let out = memory::scrub(
                    &opened.scrubber,
                    &schema,
                    &batches,
                    &cols,
                    job.keep_duplicates,
                    DATA,
                )?;
                let stats = serde_json::json!({
                    "rows_in": out.stats.rows_in, "kept": out.stats.kept,
                    "suppressed": out.stats.suppressed(), "reasons": out.stats.reasons(),
                    "case_hints": opened.scrubber.case_hints(),
                    "store_generation": opened.store.generation(),
                });
                Ok::<_, Error>((out, stats.to_string()))
            })
            .map_err(py_err)?;
        let (out, stats) = done;
        Ok((
            table(out.kept, schema)?,
            table(out.suppressed, out.suppressed_schema)?,
            stats,
        ))
    }

    /// Decide every row: the data with reason, scope, contact and
    /// dedupe_key added.
    #[pyo3(signature = (data, account=None, sender=None, default_country=None,
                        phone_column=None, account_column=None, sender_column=None, country_column=None))]
    fn decide(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
        account: Option<String>,
        sender: Option<String>,
        default_country: Option<String>,
        phone_column: Option<String>,
        account_column: Option<String>,
        sender_column: Option<String>,
        country_column: Option<String>,
    ) -> PyResult<PyArrowType<Table>> {
        let settings = Settings {
            account,
            sender,
            country: default_country,
            keep_duplicates: true,
            phone_column,
            account_column,
            sender_column,
            country_column,
        };
        let (batches, schema) = data.0.into_inner();
        let out = py
            .detach(|| {
                let opened = current(&self.dir)?;
                let job = settings.job()?;
                let cols = job.columns(&opened.store.config, &dataset(&schema, batches.clone())?)?;
                memory::decide(&opened.scrubber, &batches, &cols, DATA)
            })
            .map_err(py_err)?;
        table(out, memory::decided_schema(&schema))
    }

    /// One contact's answer, as `optscrub check --json` prints it.
    #[pyo3(signature = (phone, account=None, sender=None, default_country=None))]
    fn check(
        &self,
        py: Python<'_>,
        phone: String,
        account: Option<String>,
        sender: Option<String>,
        default_country: Option<String>,
    ) -> PyResult<String> {
        py.detach(|| {
            let opened = current(&self.dir)?;
            let country = optscrub::phone::parse_country(default_country.as_deref())?;
            let answer = check::answer(
                &opened.store,
                &opened.scrubber,
                &phone,
                account.as_deref(),
                sender.as_deref(),
                country,
            )?;
            Ok(answer.json.to_string())
        })
        .map_err(py_err)
    }

    /// Ingest reply logs; the summary as JSON.
    #[pyo3(signature = (data, outbox=None, review=None, rejects=None, columns=None, timezone=None))]
    fn ingest_replies(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
        outbox: Option<PathBuf>,
        review: Option<PathBuf>,
        rejects: Option<PathBuf>,
        columns: Option<HashMap<String, String>>,
        timezone: Option<String>,
    ) -> PyResult<String> {
        let (batches, schema) = data.0.into_inner();
        py.detach(|| {
            let mut cols = replies::ReplyColumns {
                zone: optscrub::ingest::parse_zone(timezone.as_deref())?,
                ..Default::default()
            };
            for (k, v) in columns.unwrap_or_default() {
                let slot = match k.as_str() {
                    "id" => &mut cols.id,
                    "time" => &mut cols.time,
                    "from" => &mut cols.from,
                    "to" => &mut cols.to,
                    "body" => &mut cols.body,
                    "channel" => &mut cols.channel,
                    _ => return Err(unknown_column_key(&k, "id, time, from, to, body, channel")),
                };
                *slot = v;
            }
            let outputs = replies::ReplyOutputs {
                outbox: outbox.as_deref(),
                review: review.as_deref(),
                rejects: rejects.as_deref(),
            };
            let (mut store, _lock) = Store::open_for_write(&self.dir)?;
            let mut s = replies::ingest_dataset(&mut store, dataset(&schema, batches)?, &cols, &outputs)?;
            s.command = Some("ingest replies".into());
            json(&s)
        })
        .map_err(py_err)
    }

    /// Ingest webform opt-outs; the summary as JSON.
    #[pyo3(signature = (data, rejects=None, columns=None, default_country=None, timezone=None))]
    fn ingest_webform(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
        rejects: Option<PathBuf>,
        columns: Option<HashMap<String, String>>,
        default_country: Option<String>,
        timezone: Option<String>,
    ) -> PyResult<String> {
        let (batches, schema) = data.0.into_inner();
        py.detach(|| {
            let mut cols = webform::WebformColumns {
                country: optscrub::phone::parse_country(default_country.as_deref())?,
                zone: optscrub::ingest::parse_zone(timezone.as_deref())?,
                ..Default::default()
            };
            for (k, v) in columns.unwrap_or_default() {
                let slot = match k.as_str() {
                    "account" => &mut cols.account,
                    "phone" => &mut cols.phone,
                    "time" => &mut cols.time,
                    "id" => &mut cols.id,
                    _ => return Err(unknown_column_key(&k, "account, phone, time, id")),
                };
                *slot = v;
            }
            let (mut store, _lock) = Store::open_for_write(&self.dir)?;
            let mut s =
                webform::ingest_dataset(&mut store, dataset(&schema, batches)?, &cols, rejects.as_deref())?;
            s.command = Some("ingest webform".into());
            json(&s)
        })
        .map_err(py_err)
    }

    /// Ingest provider signals (send-log codes, deactivations, WhatsApp
    /// preferences); the summary as JSON.
    #[pyo3(signature = (data, kind="send-log", provider=None, profile=None, rejects=None, columns=None, default_country=None, timezone=None))]
    #[allow(clippy::too_many_arguments)]
    fn ingest_signals(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
        kind: &str,
        provider: Option<String>,
        profile: Option<String>,
        rejects: Option<PathBuf>,
        columns: Option<HashMap<String, String>>,
        default_country: Option<String>,
        timezone: Option<String>,
    ) -> PyResult<String> {
        let (batches, schema) = data.0.into_inner();
        let kind = kind.to_string();
        py.detach(|| {
            let kind = signals::SignalKind::parse(&kind).ok_or_else(|| {
                Error::Usage(format!(
                    "kind '{kind}' is not known; the kinds are send-log, deactivations, whatsapp"
                ))
            })?;
            let mut cols = signals::SignalColumns::new(kind);
            cols.provider = provider;
            cols.profile = profile;
            cols.country = optscrub::phone::parse_country(default_country.as_deref())?;
            cols.zone = optscrub::ingest::parse_zone(timezone.as_deref())?;
            for (k, v) in columns.unwrap_or_default() {
                let slot = match k.as_str() {
                    "id" => &mut cols.id,
                    "provider" => &mut cols.provider_column,
                    "code" => &mut cols.code,
                    "from" => &mut cols.from,
                    "to" | "phone" => &mut cols.contact,
                    "time" => &mut cols.time,
                    "account" => &mut cols.account,
                    _ => {
                        return Err(unknown_column_key(
                            &k,
                            "id, provider, code, from, to (or phone), time, account",
                        ))
                    }
                };
                *slot = v;
            }
            let (mut store, _lock) = Store::open_for_write(&self.dir)?;
            let mut s =
                signals::ingest_dataset(&mut store, dataset(&schema, batches)?, &cols, rejects.as_deref())?;
            s.command = Some("ingest signals".into());
            json(&s)
        })
        .map_err(py_err)
    }

    /// Import opt-outs for one account; the summary as JSON.
    #[pyo3(signature = (data, account, senders=None, rejects=None, columns=None, default_country=None, timezone=None))]
    fn ingest_import(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
        account: String,
        senders: Option<String>,
        rejects: Option<PathBuf>,
        columns: Option<HashMap<String, String>>,
        default_country: Option<String>,
        timezone: Option<String>,
    ) -> PyResult<String> {
        let (batches, schema) = data.0.into_inner();
        py.detach(|| {
            let mut cols = import::ImportColumns {
                country: optscrub::phone::parse_country(default_country.as_deref())?,
                zone: optscrub::ingest::parse_zone(timezone.as_deref())?,
                ..Default::default()
            };
            for (k, v) in columns.unwrap_or_default() {
                let slot = match k.as_str() {
                    "phone" => &mut cols.phone,
                    "sender" => &mut cols.sender,
                    "time" => &mut cols.time,
                    _ => return Err(unknown_column_key(&k, "phone, sender, time")),
                };
                *slot = v;
            }
            let (mut store, _lock) = Store::open_for_write(&self.dir)?;
            let mut s = import::ingest(
                &mut store,
                &account,
                senders.as_deref(),
                dataset(&schema, batches)?,
                &cols,
                rejects.as_deref(),
            )?;
            s.command = Some("ingest import".into());
            json(&s)
        })
        .map_err(py_err)
    }
}

fn unknown_column_key(key: &str, known: &str) -> Error {
    Error::Usage(format!(
        "columns: '{key}' is not a column this reads (it reads {known})"
    ))
}

fn json(s: &impl serde::Serialize) -> optscrub::Result<String> {
    serde_json::to_string(s).map_err(|e| Error::Internal(format!("cannot write the summary: {e}")))
}

/// The version of the engine.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<NativeStore>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("OptscrubError", py.get_type::<OptscrubError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("StoreLockedError", py.get_type::<StoreLockedError>())?;
    m.add("StoreDamagedError", py.get_type::<StoreDamagedError>())?;
    m.add("UnsafeStoreError", py.get_type::<UnsafeStoreError>())?;
    m.add("StoreIoError", py.get_type::<StoreIoError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    Ok(())
}
