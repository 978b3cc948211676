//! What reply ingestion writes besides events: outbox rows (confirmations
//! and help replies, chosen after the store decided what is new) and the
//! review queue.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::fasthash::FastSet;
use crate::ingest::replies::Outcome;
use crate::io::output::Output;
use crate::phone::e164_array;

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

/// An outbox row that may be sent once the ingest has committed. Its
/// texts are shared with the config; the message it answers is named by
/// its event (or help request) id.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Contact, E.164 digits.
    pub to: u64,
    /// Sender id or shared number it goes from.
    pub from: Arc<str>,
    /// Text.
    pub body: Arc<str>,
    /// What it answers.
    pub kind: Kind,
    /// Index of its event in [`Outcome::events`], or of its id in
    /// [`Outcome::other_ids`] for help.
    pub source: usize,
}

/// An outbox row to send: the reply and the inbound message id.
#[derive(Clone, Copy, Debug)]
pub struct Row<'o> {
    /// The reply.
    pub reply: &'o Reply,
    /// The inbound message id it answers.
    pub in_reply_to: &'o str,
}

/// The message id in a reply event id (`reply:<message_id>`).
fn message_id(event_id: &str) -> &str {
    event_id.strip_prefix("reply:").unwrap_or(event_id)
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
/// `fresh` is per input event its index in `new_events` when it qualifies.
pub fn outbox<'o>(
    out: &'o Outcome,
    new_events: &'o [Event],
    fresh: &[Option<u32>],
    new_other: &[bool],
) -> Vec<Row<'o>> {
    let mut seen: FastSet<(u64, &str, Kind)> = FastSet::default();
    out.replies
        .iter()
        .filter_map(|r| {
            let id = match r.kind {
                Kind::Help => {
                    if !new_other.get(r.source).copied().unwrap_or(false) {
                        return None;
                    }
                    out.other_ids.get(r.source)?
                }
                _ => {
                    let i = fresh.get(r.source).copied().flatten()?;
                    &new_events.get(i as usize)?.event_id
                }
            };
            seen.insert((r.to, &*r.from, r.kind)).then(|| Row {
                reply: r,
                in_reply_to: message_id(id),
            })
        })
        .collect()
}

/// Write outbox rows under a temporary name; `finish` moves them in place.
pub fn write_outbox(path: &std::path::Path, rows: &[Row<'_>]) -> Result<Output> {
    let schema = Arc::new(Schema::new(
        ["to", "from", "body", "kind", "in_reply_to"]
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let mut o = Output::create(path, schema.clone())?;
    for chunk in rows.chunks(1 << 16) {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(e164_array(chunk.iter().map(|r| r.reply.to))),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| &*r.reply.from),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| &*r.reply.body),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.reply.kind.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.in_reply_to))),
        ];
        let b = RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Input(e.to_string()))?;
        o.write(&b)?;
    }
    Ok(o)
}
