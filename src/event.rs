//! Events: one opt-out or opt-in of one contact in one scope (SPEC §2), and
//! their columnar form, the ledger's schema.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Time zone of every timestamp written (an offset, which arrow-csv can
/// print without the chrono-tz tables).
pub const UTC: &str = "+00:00";

/// The scope value for account-wide opt-outs.
pub const ACCOUNT_SCOPE: &str = "account";

/// What an event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The contact may no longer be messaged in this scope.
    OptOut,
    /// The contact asked to be messaged again in this scope.
    OptIn,
}

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// An opt-out or opt-in keyword sent to a sender.
    Keyword,
    /// An account's free keyword.
    FreeKeyword,
    /// A webform submission.
    Webform,
    /// A manual import.
    Import,
    /// A provider's send-time error that says the contact opted out.
    Provider,
    /// A carrier's notice that the number was disconnected or reassigned.
    Deactivated,
    /// A WhatsApp user's stop or resume of a business number's messages.
    Whatsapp,
}

impl Action {
    /// Its name in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OptOut => "opt_out",
            Action::OptIn => "opt_in",
        }
    }
    fn parse(s: &str) -> Option<Action> {
        match s {
            "opt_out" => Some(Action::OptOut),
            "opt_in" => Some(Action::OptIn),
            _ => None,
        }
    }
}

impl Source {
    /// Its name in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Keyword => "keyword",
            Source::FreeKeyword => "free_keyword",
            Source::Webform => "webform",
            Source::Import => "import",
            Source::Provider => "provider",
            Source::Deactivated => "deactivated",
            Source::Whatsapp => "whatsapp",
        }
    }
    /// Read its name in files.
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "keyword" => Some(Source::Keyword),
            "free_keyword" => Some(Source::FreeKeyword),
            "webform" => Some(Source::Webform),
            "import" => Some(Source::Import),
            "provider" => Some(Source::Provider),
            "deactivated" => Some(Source::Deactivated),
            "whatsapp" => Some(Source::Whatsapp),
            _ => None,
        }
    }
}

/// An event id: a string kept in place when short.
pub type EventId = compact_str::CompactString;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Stable id: the message id, the submission id, or a hash of the row
    /// (kept in place up to 24 bytes: an import's ids take no allocation).
    pub event_id: EventId,
    /// The account.
    pub account: Arc<str>,
    /// `account` or a normalized sender id.
    pub scope: Arc<str>,
    /// E.164 digits of the contact.
    pub contact: u64,
    /// Event time, microseconds since the Unix epoch, UTC.
    pub at: i64,
    /// Opt-out or opt-in.
    pub action: Action,
    /// How it arrived.
    pub source: Source,
    /// The keyword matched, for keyword events.
    pub keyword: Option<Arc<str>>,
    /// Where it arrived (the reply's destination or the input file name).
    pub via: Option<Arc<str>>,
}

impl Event {
    /// SPEC §3.3 order: event time, then event id.
    pub fn order(&self, other: &Event) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.event_id.cmp(&other.event_id))
    }

    /// 64-bit hash of the event id, for the store's id set.
    pub fn id_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.event_id.as_bytes())
    }
}

/// Schema of the ledger's files.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("contact", DataType::UInt64, false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(crate::event::UTC.into())),
            false,
        ),
        Field::new("action", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("keyword", DataType::Utf8, true),
        Field::new("via", DataType::Utf8, true),
    ]))
}

/// Events as one record batch.
pub fn to_batch(events: &[Event]) -> RecordBatch {
    let str_col = |f: &dyn Fn(&Event) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(events.len(), events.len() * 8);
        for e in events {
            b.append_option(f(e));
        }
        Arc::new(b.finish())
    };
    let columns: Vec<ArrayRef> = vec![
        str_col(&|e| Some(&e.event_id)),
        str_col(&|e| Some(&e.account)),
        str_col(&|e| Some(&e.scope)),
        Arc::new(UInt64Array::from_iter_values(events.iter().map(|e| e.contact))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(events.iter().map(|e| e.at))
                .with_timezone(crate::event::UTC),
        ),
        str_col(&|e| Some(e.action.as_str())),
        str_col(&|e| Some(e.source.as_str())),
        str_col(&|e| e.keyword.as_deref()),
        str_col(&|e| e.via.as_deref()),
    ];
    // The columns are built to the schema above, so this cannot fail.
    RecordBatch::try_new(schema(), columns).unwrap_or_else(|_| RecordBatch::new_empty(schema()))
}

/// Events back from a ledger or state batch; `Err` names what is wrong.
pub fn from_batch(batch: &RecordBatch, out: &mut Vec<Event>) -> Result<(), String> {
    fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
        b.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| format!("column {name} is missing or of the wrong type"))
    }
    let id = col::<StringArray>(batch, "event_id")?;
    let account = col::<StringArray>(batch, "account_id")?;
    let scope = col::<StringArray>(batch, "scope")?;
    let contact = col::<UInt64Array>(batch, "contact")?;
    let at = col::<TimestampMicrosecondArray>(batch, "at")?;
    let action = col::<StringArray>(batch, "action")?;
    let source = col::<StringArray>(batch, "source")?;
    let keyword = col::<StringArray>(batch, "keyword")?;
    let via = col::<StringArray>(batch, "via")?;
    // account, scope, keyword and via repeat: share one allocation each
    let mut interned: std::collections::HashMap<String, Arc<str>> = std::collections::HashMap::new();
    let mut intern = |v: &str| -> Arc<str> {
        if let Some(a) = interned.get(v) {
            return a.clone();
        }
        let a: Arc<str> = v.into();
        interned.insert(v.to_string(), a.clone());
        a
    };
    for i in 0..batch.num_rows() {
        out.push(Event {
            event_id: EventId::from(id.value(i)),
            account: intern(account.value(i)),
            scope: intern(scope.value(i)),
            contact: contact.value(i),
            at: at.value(i),
            action: Action::parse(action.value(i)).ok_or("bad action value")?,
            source: Source::parse(source.value(i)).ok_or("bad source value")?,
            keyword: (!keyword.is_null(i)).then(|| intern(keyword.value(i))),
            via: (!via.is_null(i)).then(|| intern(via.value(i))),
        });
    }
    Ok(())
}

/// New events counted by action, source and kind of scope (`account` or
/// `sender`), as `{"opt_out": {"keyword": {"sender": 3}}}`, for summaries.
pub fn breakdown(events: &[Event]) -> crate::summary::Breakdown {
    const ACTIONS: [Action; 2] = [Action::OptOut, Action::OptIn];
    const SOURCES: [Source; 7] = [
        Source::Keyword,
        Source::FreeKeyword,
        Source::Webform,
        Source::Import,
        Source::Provider,
        Source::Deactivated,
        Source::Whatsapp,
    ];
    // counted by index first: a map update per event was 3% of an ingest
    let mut n = [[[0u64; 2]; SOURCES.len()]; 2];
    for e in events {
        let action = ACTIONS.iter().position(|&a| a == e.action).unwrap_or(0);
        let source = SOURCES.iter().position(|&s| s == e.source).unwrap_or(0);
        let sender = usize::from(&*e.scope != ACCOUNT_SCOPE);
        n[action][source][sender] += 1;
    }
    let mut map = crate::summary::Breakdown::new();
    for (a, by_source) in ACTIONS.iter().zip(&n) {
        for (s, by_scope) in SOURCES.iter().zip(by_source) {
            for (kind, &count) in ["account", "sender"].iter().zip(by_scope) {
                if count > 0 {
                    map.entry(a.as_str().to_string())
                        .or_default()
                        .entry(s.as_str().to_string())
                        .or_default()
                        .insert(kind.to_string(), count);
                }
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: Action, source: Source, scope: &str) -> Event {
        Event {
            event_id: EventId::default(),
            account: "a".into(),
            scope: scope.into(),
            contact: 1,
            at: 0,
            action,
            source,
            keyword: None,
            via: None,
        }
    }

    #[test]
    fn breakdown_counts_by_action_source_and_scope() {
        let events = [
            ev(Action::OptOut, Source::Keyword, "+15550001"),
            ev(Action::OptOut, Source::Keyword, "+15550002"),
            ev(Action::OptOut, Source::Keyword, ACCOUNT_SCOPE),
            ev(Action::OptOut, Source::Import, ACCOUNT_SCOPE),
            ev(Action::OptIn, Source::FreeKeyword, ACCOUNT_SCOPE),
        ];
        assert_eq!(
            serde_json::to_value(breakdown(&events)).unwrap(),
            serde_json::json!({
                "opt_out": {"keyword": {"account": 1, "sender": 2}, "import": {"account": 1}},
                "opt_in": {"free_keyword": {"account": 1}}
            })
        );
        assert!(breakdown(&[]).is_empty());
    }
}
