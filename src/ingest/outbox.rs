//! What reply ingestion writes besides events: outbox rows (confirmations
//! and help replies, chosen after the store decided what is new) and the
//! review queue.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::io::output::Output;
use crate::phone::e164_array;
use crate::util::fasthash::FastMap;

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
    /// When the message it answers was received (µs since the epoch).
    pub at: i64,
    /// Sender id or shared number it goes from.
    pub from: Arc<str>,
    /// Text.
    pub body: Arc<str>,
    /// What it answers.
    pub kind: Kind,
    /// Index of its event in the events classified, or of its id in the
    /// ids of help requests for help (see `classify::Outcome`).
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
/// nothing), help requests not seen before; one per (contact, sender, kind,
/// account), the newest (at a shared number two accounts' free keywords are
/// two opt-outs, each confirmed; at a sender the account is the sender's).
/// `fresh` is per input event its index in `new_events` when it qualifies.
/// Rows come in input order.
pub fn outbox<'o>(
    replies: &'o [Reply],
    other_ids: &'o [String],
    new_events: &'o [Event],
    fresh: &[Option<u32>],
    new_other: &[bool],
) -> Vec<Row<'o>> {
    let candidates = replies.iter().enumerate().filter_map(|(i, r)| {
        let (id, account) = match r.kind {
            Kind::Help => {
                if !new_other.get(r.source).copied().unwrap_or(false) {
                    return None;
                }
                (other_ids.get(r.source)?.as_str(), "")
            }
            _ => {
                let e = new_events.get(fresh.get(r.source).copied().flatten()? as usize)?;
                (e.event_id.as_str(), &*e.account)
            }
        };
        Some((i, r, id, account))
    });
    // (contact, from, kind, account) -> (position, reply, answered id)
    type Key<'k> = (u64, &'k str, Kind, &'k str);
    let mut best: FastMap<Key<'_>, (usize, &Reply, &str)> = FastMap::default();
    for (i, r, id, account) in candidates {
        best.entry((r.to, &*r.from, r.kind, account))
            .and_modify(|b| {
                // the newest wins; at equal times the later in the log
                if r.at >= b.1.at {
                    *b = (i, r, id);
                }
            })
            .or_insert((i, r, id));
    }
    let mut chosen: Vec<(usize, &Reply, &str)> = best.into_values().collect();
    chosen.sort_unstable_by_key(|c| c.0);
    chosen
        .into_iter()
        .map(|(_, reply, id)| Row {
            reply,
            in_reply_to: message_id(id),
        })
        .collect()
}

/// Outbox rows as record batches of the outbox schema, to keep in the store.
pub fn batches(rows: &[Row<'_>]) -> Result<Vec<RecordBatch>> {
    let schema = crate::store::outbox::schema();
    rows.chunks(1 << 16)
        .map(|chunk| {
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
            RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Internal(e.to_string()))
        })
        .collect()
}
