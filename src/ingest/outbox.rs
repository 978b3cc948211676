//! What reply ingestion writes besides events: outbox rows (confirmations
//! and help replies, chosen after the store decided what is new) and the
//! review queue.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::ingest::replies::Outcome;
use crate::io::output::Output;
use crate::phone::format_e164;

/// Kinds of outbox rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Confirms an opt-out.
    OptOutConfirmation,
    /// Confirms an opt-in.
    OptInConfirmation,
    /// Answers HELP.
    Help,
}

impl Kind {
    /// Its name in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OptOutConfirmation => "opt_out_confirmation",
            Kind::OptInConfirmation => "opt_in_confirmation",
            Kind::Help => "help",
        }
    }
}

/// An outbox row that may be sent once the ingest has committed.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Contact, E.164 digits.
    pub to: u64,
    /// Sender id or shared number it goes from.
    pub from: String,
    /// Text.
    pub body: String,
    /// What it answers.
    pub kind: Kind,
    /// The inbound message id.
    pub in_reply_to: String,
    /// Index of its event in [`Outcome::events`], or of its id in
    /// [`Outcome::other_ids`] for help.
    pub source: usize,
}

/// The review output.
pub struct Review {
    out: Option<Output>,
    schema: SchemaRef,
    pub(crate) rows: Vec<[String; 5]>,
}

impl Review {
    /// A buffer of review rows that writes nowhere (one per batch).
    pub(crate) fn buffer() -> Review {
        Review {
            out: None,
            schema: Arc::new(Schema::empty()),
            rows: Vec::new(),
        }
    }

    /// Review rows go to `path`, if given.
    pub fn new(path: Option<&std::path::Path>) -> Result<Review> {
        let schema = Arc::new(Schema::new(
            ["message_id", "from", "to", "body", "why"]
                .iter()
                .map(|n| Field::new(*n, DataType::Utf8, false))
                .collect::<Vec<_>>(),
        ));
        let out = path.map(|p| Output::create(p, schema.clone())).transpose()?;
        Ok(Review {
            out,
            schema,
            rows: Vec::new(),
        })
    }

    pub(crate) fn push(&mut self, row: [String; 5]) {
        self.rows.push(row);
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        let Some(out) = &mut self.out else {
            self.rows.clear();
            return Ok(());
        };
        if self.rows.is_empty() {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = (0..5)
            .map(|c| {
                Arc::new(StringArray::from_iter_values(
                    self.rows.iter().map(|r| r[c].as_str()),
                )) as ArrayRef
            })
            .collect();
        self.rows.clear();
        let batch =
            RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| Error::Input(e.to_string()))?;
        out.write(&batch)
    }

    /// Finish the review file.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.out.map(Output::finish).transpose().map(|_| ())
    }
}

/// The outbox rows to send after the commit: only for events that were new
/// and are now the last of their key (a late STOP older than a START sends
/// nothing), help requests not seen before, one per (contact, sender, kind).
pub fn outbox<'o>(out: &'o Outcome, fresh: &[bool], new_other: &[bool]) -> Vec<&'o Reply> {
    let mut seen = HashSet::new();
    out.replies
        .iter()
        .filter(|r| match r.kind {
            Kind::Help => new_other.get(r.source).copied().unwrap_or(false),
            _ => fresh.get(r.source).copied().unwrap_or(false),
        })
        .filter(|r| seen.insert((r.to, r.from.clone(), r.kind)))
        .collect()
}

/// Write outbox rows under a temporary name; `finish` moves them in place.
pub fn write_outbox(path: &std::path::Path, rows: &[&Reply]) -> Result<Output> {
    let schema = Arc::new(Schema::new(
        ["to", "from", "body", "kind", "in_reply_to"]
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let mut o = Output::create(path, schema.clone())?;
    for chunk in rows.chunks(1 << 16) {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| format_e164(r.to)),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.from.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.body.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.kind.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.in_reply_to.as_str()),
            )),
        ];
        let b = RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Input(e.to_string()))?;
        o.write(&b)?;
    }
    Ok(o)
}
