//! The scrub pipeline, in units of about one Parquet row group: rayon
//! tasks decode and decide units in parallel, duplicates are marked in
//! input order, then tasks encode each unit's kept and suppressed rows into
//! row groups of the outputs, appended in input order. Memory holds a few
//! units in flight (about one per thread), whatever the number of rows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::io::input::{Batch, Dataset, ReadDict, Unit};
use crate::io::output::{Format, Output, Part, PartEncoder, Parts};
use crate::phone::DefaultCountry;
use crate::scrub::{split, suppressed_schema, Columns, Deduper, Reason, RowDecision, Scrubber};
use crate::store::Store;
use crate::util::ordered;

/// A validated scrub job.
#[derive(Clone, Debug)]
pub struct ScrubJob {
    /// Input paths (files, folders, `-`).
    pub inputs: Vec<String>,
    /// Kept rows go here.
    pub output: PathBuf,
    /// Suppressed rows go here, if given.
    pub suppressed: Option<PathBuf>,
    /// `--account`.
    pub account: Option<String>,
    /// `--sender`.
    pub sender: Option<String>,
    /// `--default-country`.
    pub country: Option<DefaultCountry>,
    /// `--keep-duplicates`.
    pub keep_duplicates: bool,
    /// Phone column name.
    pub phone_column: String,
    /// Account column name.
    pub account_column: String,
    /// Sender column name.
    pub sender_column: String,
    /// Was the sender column named by a flag (then it must exist)?
    pub sender_column_given: bool,
    /// A column with each row's country (ISO 3166 alpha-2), if given.
    pub country_column: Option<String>,
    /// How CSV inputs are read.
    pub csv: crate::io::input::CsvShape,
    /// Rows per batch read ([`crate::io::input::BATCH_ROWS`] by default).
    pub batch_rows: usize,
    /// Rows per unit of work at most ([`UNIT_ROWS`] by default).
    pub unit_rows: u64,
}

impl ScrubJob {
    /// The default name of the phone column.
    pub const PHONE_COLUMN: &'static str = "phone";
    /// The default name of the account column.
    pub const ACCOUNT_COLUMN: &'static str = "account_id";
    /// The default name of the (optional) sender column.
    pub const SENDER_COLUMN: &'static str = "sender";

    /// A job with SPEC's defaults: the default column names, no
    /// `--suppressed`, duplicates removed, whole-size batches.
    pub fn new(inputs: Vec<String>, output: PathBuf) -> ScrubJob {
        ScrubJob {
            inputs,
            output,
            suppressed: None,
            account: None,
            sender: None,
            country: None,
            keep_duplicates: false,
            phone_column: Self::PHONE_COLUMN.into(),
            account_column: Self::ACCOUNT_COLUMN.into(),
            sender_column: Self::SENDER_COLUMN.into(),
            sender_column_given: false,
            country_column: None,
            csv: Default::default(),
            batch_rows: crate::io::input::BATCH_ROWS,
            unit_rows: UNIT_ROWS,
        }
    }
}

/// What a scrub did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Rows read.
    pub rows_in: u64,
    /// Rows kept.
    pub kept: u64,
    /// Suppressed rows per reason.
    pub reasons: BTreeMap<Reason, u64>,
}

impl Stats {
    /// Rows suppressed.
    pub fn suppressed(&self) -> u64 {
        self.reasons.values().sum()
    }

    /// Suppressed rows per reason, every reason named, for summaries.
    pub fn reasons(&self) -> crate::summary::Reasons {
        Reason::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), self.reasons.get(r).copied().unwrap_or(0)))
            .collect()
    }
}

/// Check a scrub job against a store without running it: output names,
/// `--account` and `--sender` values, the inputs' columns. `nightly` checks
/// every campaign this way before it commits anything.
pub fn check(store: &Store, plan: &ScrubJob) -> Result<()> {
    open_checked(store, plan).map(|_| ())
}

/// The checks of [`check`]; the inputs opened, their columns resolved.
fn open_checked(store: &Store, plan: &ScrubJob) -> Result<(Dataset, Columns)> {
    Format::for_path(&plan.output)?;
    if let Some(s) = &plan.suppressed {
        Format::for_path(s)?;
        if *s == plan.output {
            return Err(Error::Usage(
                "--output and --suppressed name the same file".into(),
            ));
        }
    }
    check_defaults(&store.config, plan)?;
    refuse_overwriting_inputs(plan)?;
    let dict_columns = [plan.account_column.as_str(), plan.sender_column.as_str()];
    let phone = [plan.phone_column.as_str()];
    let read = ReadDict {
        named: &dict_columns,
        auto_except: Some(&phone),
    };
    let data = Dataset::open_dict(&plan.inputs, plan.batch_rows, read, plan.csv)?;
    let cols = plan.columns(&store.config, &data)?;
    if plan.suppressed.is_some() {
        for name in ["reason", "scope"] {
            if data.schema.index_of(name).is_ok() {
                return Err(Error::Input(format!(
                    "{}: has a column '{name}', which --suppressed adds; rename it first",
                    data.first_name
                )));
            }
        }
    }
    Ok((data, cols))
}

impl ScrubJob {
    /// Where a dataset's rows hold the decision's inputs, with the job's
    /// `--account`, `--sender` and country settings checked against the
    /// config: the checks of [`check`] that do not concern files. A scrub
    /// of batches in memory (from Python) makes its columns this way.
    pub fn columns(&self, config: &crate::config::Config, data: &Dataset) -> Result<Columns> {
        check_defaults(config, self)?;
        resolve_columns(data, self)
    }
}

/// `--account` must be an account of the config, and `--sender` one of
/// its senders.
fn check_defaults(config: &crate::config::Config, plan: &ScrubJob) -> Result<()> {
    if let Some(a) = &plan.account {
        if config.account(a).is_none() {
            return Err(Error::Usage(format!(
                "--account '{a}' is not an account in the store's config"
            )));
        }
    }
    if let Some(s) = &plan.sender {
        check_sender(config, plan.account.as_deref(), s)?;
    }
    Ok(())
}

/// `--sender` must name a sender of `--account` (or of some account when
/// the rows name theirs): an unknown one would suppress every row.
fn check_sender(config: &crate::config::Config, account: Option<&str>, raw: &str) -> Result<()> {
    let id = crate::phone::normalize_sender(raw).unwrap_or_else(|| raw.to_string());
    let known = match account.and_then(|a| config.account(a)) {
        Some(acc) => acc.sender(&id).is_some(),
        None => config.accounts.iter().any(|acc| acc.sender(&id).is_some()),
    };
    if known {
        return Ok(());
    }
    Err(Error::Usage(match account {
        Some(a) => format!("--sender '{raw}' is not a sender of account '{a}' in the store's config"),
        None => format!("--sender '{raw}' is not a sender of any account in the store's config"),
    }))
}

/// An output may not be one of the inputs: it would be replaced by the
/// kept rows.
fn refuse_overwriting_inputs(plan: &ScrubJob) -> Result<()> {
    let outputs = std::iter::once((&plan.output, "--output"))
        .chain(plan.suppressed.iter().map(|s| (s, "--suppressed")));
    for (out, flag) in outputs {
        let Ok(out_real) = std::fs::canonicalize(out) else {
            continue; // a new file: not an input
        };
        for input in crate::io::input::expand(&plan.inputs)? {
            if std::fs::canonicalize(&input).is_ok_and(|i| i == out_real) {
                return Err(Error::Usage(format!(
                    "{flag} {} is also an input; it would be overwritten: name another file",
                    out.display()
                )));
            }
        }
    }
    Ok(())
}

/// Run a scrub job against a store, with the scrubber made from its
/// config and snapshot (made once, however many jobs use it).
pub fn run(store: &Store, scrubber: &Scrubber, plan: &ScrubJob) -> Result<Stats> {
    let (data, cols) = open_checked(store, plan)?;
    let sup_schema = suppressed_schema(&data.schema);
    // outputs are encoded as the input is, and phones without a dictionary
    let mut encodings = data.encodings.clone();
    encodings.plain.push(plan.phone_column.clone());
    let mut kept_out = Output::create_with(&plan.output, data.schema.clone(), &encodings)?;
    let mut sup_out = plan
        .suppressed
        .as_ref()
        .map(|p| Output::create_with(p, sup_schema.clone(), &encodings))
        .transpose()?;
    let unit = unit_rows(plan.unit_rows, data.total_rows);
    let stats = produce(
        data,
        scrubber,
        &cols,
        (plan.keep_duplicates, unit),
        (&mut kept_out, sup_out.as_mut()),
    )?;
    // only now, with every row decided and written, and every byte of the
    // opt-outs it read found sound, do the outputs appear
    scrubber.verified()?;
    kept_out.finish()?;
    sup_out.map(Output::finish).transpose()?;
    Ok(stats)
}

/// Rows a unit of work holds at most (decoded and decided by one task):
/// one Parquet row group of the usual 1M rows, so that a file's row groups
/// decode in parallel, each into a row group of the output.
pub const UNIT_ROWS: u64 = 1 << 20;

/// Once a scrub has read this many rows, the probe file's blocks are
/// checked ahead of its lookups.
const CHECK_AHEAD_ROWS: u64 = 1 << 17;

/// Rows a unit holds: at most `most`, and few enough that a file of
/// `total` rows makes a unit for every thread (a file of one large row
/// group is read by all of them), but not so few that units are tiny.
fn unit_rows(most: u64, total: Option<u64>) -> u64 {
    const FEWEST: u64 = 1 << 17;
    let threads = rayon::current_num_threads().max(1) as u64;
    let share = total.map_or(most, |t| t.div_ceil(threads).max(FEWEST));
    most.min(share).max(1)
}

/// Units in flight, about one per thread; memory is bounded by these
/// whatever the number of rows.
fn window_len() -> usize {
    rayon::current_num_threads().max(1)
}

/// A unit's rows decided (duplicates not yet marked), batch by batch.
type Decided = Vec<(Batch, Vec<RowDecision>)>;

/// The scrub, as a stream of units in input order with a few in flight
/// (see `util::ordered`). With duplicates kept, each unit is one task from
/// decoding to encoding. Else each unit is decoded and decided by one
/// task, its duplicates are marked in input order, and then its rows are
/// encoded by another task. Either way a unit's kept and suppressed rows
/// become a part (a Parquet row group) of each output, appended in input
/// order while the next units are worked on.
fn produce(
    mut data: Dataset,
    scrubber: &Scrubber,
    cols: &Columns,
    (keep_duplicates, unit_rows): (bool, u64),
    (kept_out, mut sup_out): (&mut Output, Option<&mut Output>),
) -> Result<Stats> {
    let mut stats = Stats::default();
    let bar = crate::util::progress::rows("scrub", data.total_rows);
    let parts = UnitOutputs {
        kept: kept_out.parts(),
        suppressed: sup_out.as_ref().map(|o| o.parts()),
        scrubber,
    };
    let parts = &parts;
    // many rows read most of the probe: its blocks are checked ahead of
    // them once the rows read say so (an input of unknown size, such as
    // a CSV file of one row, does not start it at once)
    let mut read = 0;
    let mut source = || {
        let unit = data.next_unit(unit_rows);
        if let Some(Ok(u)) = &unit {
            read += u.rows;
            if read >= CHECK_AHEAD_ROWS {
                scrubber.check_ahead();
            }
        }
        unit
    };
    let mut append = |d: UnitDone| -> Result<()> {
        if let Some(bar) = &bar {
            bar.inc(d.stats.rows_in);
        }
        stats.rows_in += d.stats.rows_in;
        stats.kept += d.stats.kept;
        for (r, n) in d.stats.reasons {
            *stats.reasons.entry(r).or_default() += n;
        }
        kept_out.append(d.kept)?;
        if let (Some(o), Some(p)) = (sup_out.as_deref_mut(), d.suppressed) {
            o.append(p)?;
        }
        Ok(())
    };
    // units read and not yet appended bound memory whatever the rows
    let done = if keep_duplicates {
        // whole-unit tasks hold little (encoded rows): one more keeps the
        // threads busy while a part is appended
        ordered::run(
            window_len() + 1,
            &mut source,
            |unit| encode_unit(parts, unit, scrubber, cols),
            Ok,
            Ok,
            &mut append,
        )
    } else {
        let mut dedupe = Deduper::default();
        ordered::run(
            window_len(),
            &mut source,
            |unit| decide_unit(unit, scrubber, cols),
            |mut unit: Decided| {
                let mut rows: Vec<&mut [RowDecision]> =
                    unit.iter_mut().map(|(_, rows)| rows.as_mut_slice()).collect();
                dedupe.mark_window(&mut rows);
                Ok(unit)
            },
            |unit| encode_decided(parts, unit),
            &mut append,
        )
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    done.map(|()| stats)
}

/// Decode, decide and encode one unit (duplicates kept).
fn encode_unit(parts: &UnitOutputs, unit: Unit, scrubber: &Scrubber, cols: &Columns) -> Result<UnitDone> {
    let mut out = parts.encoder()?;
    unit.for_each(|b| out.add(&b, &decide(scrubber, &b, cols)?))?;
    out.finish()
}

/// Decode and decide one unit.
fn decide_unit(unit: Unit, scrubber: &Scrubber, cols: &Columns) -> Result<Decided> {
    let mut out = Vec::new();
    unit.for_each(|b| {
        let rows = decide(scrubber, &b, cols)?;
        out.push((b, rows));
        Ok(())
    })?;
    Ok(out)
}

/// Encode one unit's decided rows (duplicates marked).
fn encode_decided(parts: &UnitOutputs, unit: Decided) -> Result<UnitDone> {
    let mut out = parts.encoder()?;
    for (b, rows) in unit {
        out.add(&b, &rows)?;
    }
    out.finish()
}

/// Decide one batch (duplicates not yet marked).
fn decide(scrubber: &Scrubber, b: &Batch, cols: &Columns) -> Result<Vec<RowDecision>> {
    scrubber
        .decide(&b.batch, cols)
        .map_err(|e| Error::Input(format!("{}: {e}", b.file)))
}

/// What every unit's encoding needs; shared by the tasks.
struct UnitOutputs<'a> {
    kept: Parts,
    suppressed: Option<Parts>,
    scrubber: &'a Scrubber,
}

impl<'a> UnitOutputs<'a> {
    fn encoder(&self) -> Result<UnitOut<'a, '_>> {
        Ok(UnitOut {
            kept: self.kept.encoder()?,
            suppressed: self.suppressed.as_ref().map(Parts::encoder).transpose()?,
            outputs: self,
            stats: Stats::default(),
        })
    }
}

/// One unit's rows being split and encoded.
struct UnitOut<'a, 'o> {
    kept: PartEncoder,
    suppressed: Option<PartEncoder>,
    outputs: &'o UnitOutputs<'a>,
    stats: Stats,
}

/// One unit's outputs, ready to append.
struct UnitDone {
    kept: Part,
    suppressed: Option<Part>,
    stats: Stats,
}

impl UnitOut<'_, '_> {
    /// Split a decided batch and encode its kept and suppressed rows.
    fn add(&mut self, b: &Batch, rows: &[RowDecision]) -> Result<()> {
        let (kept, gone) = split(&b.batch, rows, self.outputs.scrubber)
            .map_err(|e| Error::Input(format!("{}: {e}", b.file)))?;
        self.kept.write(&kept)?;
        if let Some(s) = &mut self.suppressed {
            s.write(&gone)?;
        }
        self.stats.rows_in += b.batch.num_rows() as u64;
        self.stats.kept += kept.num_rows() as u64;
        for r in rows.iter().filter_map(|d| d.reason) {
            *self.stats.reasons.entry(r).or_default() += 1;
        }
        Ok(())
    }

    fn finish(self) -> Result<UnitDone> {
        Ok(UnitDone {
            kept: self.kept.finish()?,
            suppressed: self.suppressed.map(PartEncoder::finish).transpose()?,
            stats: self.stats,
        })
    }
}

fn resolve_columns(data: &Dataset, plan: &ScrubJob) -> Result<Columns> {
    let phone = data.column(&plan.phone_column, "--phone-column")?;
    let account = match data.find(&plan.account_column) {
        Some(i) => Some(i),
        None if plan.account.is_some() => None,
        None => {
            data.column(
                &plan.account_column,
                "--account-column (or give --account for every row)",
            )?;
            None
        }
    };
    let sender = match data.find(&plan.sender_column) {
        Some(i) => Some(i),
        None if plan.sender_column_given => Some(data.column(&plan.sender_column, "--sender-column")?),
        None => None,
    };
    Ok(Columns {
        phone,
        account,
        sender,
        default_account: plan.account.clone(),
        default_sender: plan.sender.clone(),
        country: plan.country,
        country_column: plan
            .country_column
            .as_ref()
            .map(|c| data.column(c, "--country-column"))
            .transpose()?,
    })
}

/// Say on stderr which unknown account or sender ids match a configured
/// one ignoring case (those rows were suppressed: ids are exact); returns
/// them for the summary.
pub fn say_case_hints(what: &str, scrubber: &Scrubber) -> Vec<crate::summary::CaseHint> {
    let hints = scrubber.case_hints();
    for (written, configured) in &hints {
        eprintln!(
            "{what}: note: '{written}' is not a configured account or sender, but '{configured}' is; ids are matched exactly, so its rows were suppressed as unknown"
        );
    }
    hints
        .iter()
        .map(|(w, c)| crate::summary::CaseHint {
            configured: c.to_string(),
            written: w.to_string(),
        })
        .collect()
}
