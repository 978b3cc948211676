//! The JSON summaries that commands write (`--summary FILE`, and the
//! nightly job's `summary.json`), as types. The commands that write them
//! and everything that reads them back (the report, the demo's table,
//! `plan`) share these types, so a renamed field is a compile error and
//! not a silent zero.
//!
//! Fields are declared in alphabetical order, the order the summaries have
//! always been written in, so that the files keep their shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// New events counted by action, source and scope kind (`account` or
/// `sender`), counts of zero left out:
/// `{"opt_out": {"keyword": {"sender": 6}}}`.
pub type Breakdown = BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>;

/// Suppressed rows by reason; every reason is named, with 0 when none.
pub type Reasons = BTreeMap<String, u64>;

/// An account or sender id written in another case than the config's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseHint {
    /// The id the config has.
    pub configured: String,
    /// The id the input has.
    pub written: String,
}

/// Replies to send, by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxByKind {
    /// Answers to HELP.
    pub help: u64,
    /// Confirmations of opt-ins.
    pub opt_in_confirmation: u64,
    /// Confirmations of opt-outs.
    pub opt_out_confirmation: u64,
}

/// What `ingest replies` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepliesSummary {
    /// Events whose id the store had already.
    pub already_known: u64,
    /// `ingest replies` on its own; absent inside the nightly summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Replies written to `--outbox`; `null` without it.
    pub handed_over: Option<u64>,
    /// Messages read.
    pub messages: u64,
    /// New events, counted.
    pub new_by_source_and_scope: Breakdown,
    /// New opt-ins.
    pub new_opt_ins: u64,
    /// New opt-outs.
    pub new_opt_outs: u64,
    /// New replies to send.
    pub outbox: u64,
    /// The same, by kind.
    pub outbox_by_kind: OutboxByKind,
    /// Replies the store holds that are not handed over yet.
    pub pending_replies: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Messages sent to review.
    pub review: u64,
}

/// What `ingest webform` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WebformSummary {
    /// Events whose id the store had already.
    pub already_known: u64,
    /// `ingest webform` on its own; absent inside the nightly summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Submissions read into events.
    pub events_read: u64,
    /// New events, counted.
    pub new_by_source_and_scope: Breakdown,
    /// New events.
    pub new_events: u64,
    /// Rows rejected.
    pub rejected: u64,
}

/// What `ingest signals` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalsSummary {
    /// Events whose id the store had already.
    pub already_known: u64,
    /// `ingest signals` on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Opt-outs read (a deactivation for every account counts once per account).
    pub events_read: u64,
    /// New events, counted.
    pub new_by_source_and_scope: Breakdown,
    /// New events.
    pub new_events: u64,
    /// Send log rows without an error code, or with one that is not an opt-out.
    pub not_signals: u64,
    /// Rows rejected.
    pub rejected: u64,
}

/// What `ingest import` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// The account imported into.
    pub account: String,
    /// Events whose id the store had already.
    pub already_known: u64,
    /// `ingest import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Rows read into events.
    pub events_read: u64,
    /// New events.
    pub new_events: u64,
    /// Rows rejected.
    pub rejected: u64,
}

/// One campaign of the nightly job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// Rows kept.
    pub kept: u64,
    /// The campaign's name (its file's stem).
    pub name: String,
    /// Suppressed rows by reason.
    pub reasons: Reasons,
    /// Rows read.
    pub rows_in: u64,
    /// Time taken.
    pub seconds: f64,
    /// Rows suppressed.
    pub suppressed: u64,
}

impl CampaignSummary {
    /// Rows suppressed for reason `r` (0 when none).
    pub fn reason(&self, r: &str) -> u64 {
        self.reasons.get(r).copied().unwrap_or(0)
    }
}

/// Time taken by the nightly job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Seconds {
    /// Ingesting replies and webform submissions.
    pub ingest: f64,
    /// The whole job.
    pub total: f64,
}

/// What the nightly job did (`out/summary.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NightlySummary {
    /// Each campaign, in name order.
    pub campaigns: Vec<CampaignSummary>,
    /// Ids in the campaigns written in another case than the config's.
    pub case_hints: Vec<CaseHint>,
    /// `nightly`.
    pub command: String,
    /// Opt-outs in the store after the ingests.
    pub opt_outs_in_store: u64,
    /// The outbox file the pending replies went to.
    pub outbox_file: Option<String>,
    /// Replies handed over to it.
    pub outbox_handed_over: u64,
    /// The replies' ingest; `null` when there were no reply files.
    pub replies: Option<RepliesSummary>,
    /// Time taken.
    pub seconds: Seconds,
    /// The store's generation after the job.
    pub store_generation: u64,
    /// The webform ingest; `null` when there were no webform files.
    pub webform: Option<WebformSummary>,
    /// The send logs' ingest (`--signals`); absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<SignalsSummary>,
    /// The deactivation lists' ingest; absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivations: Option<SignalsSummary>,
}

impl NightlySummary {
    /// Rows rejected by both ingests.
    pub fn rejected(&self) -> u64 {
        self.replies.as_ref().map_or(0, |r| r.rejected)
            + self.webform.as_ref().map_or(0, |w| w.rejected)
            + self.signals.as_ref().map_or(0, |w| w.rejected)
            + self.deactivations.as_ref().map_or(0, |w| w.rejected)
    }
}

/// What `scrub` did (`--summary FILE`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScrubSummary {
    /// Ids written in another case than the config's.
    pub case_hints: Vec<CaseHint>,
    /// `scrub`.
    pub command: String,
    /// Rows kept.
    pub kept: u64,
    /// The kept rows' file.
    pub output: std::path::PathBuf,
    /// This process's peak resident memory, when the system says.
    pub peak_rss_bytes: Option<u64>,
    /// Suppressed rows by reason.
    pub reasons: Reasons,
    /// Rows read.
    pub rows_in: u64,
    /// Time taken.
    pub seconds: f64,
    /// Rows suppressed.
    pub suppressed: u64,
    /// The suppressed rows' file, when asked for.
    pub suppressed_output: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's summary.json: read into the types and written again, it
    /// is the same document (a field renamed or dropped would differ).
    const NIGHTLY: &str = include_str!("../tests/data/nightly-summary.json");

    #[test]
    fn a_nightly_summary_round_trips() {
        let value: serde_json::Value = serde_json::from_str(NIGHTLY).unwrap();
        let typed: NightlySummary = serde_json::from_str(NIGHTLY).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), value);
        assert_eq!(typed.rejected(), 7);
        assert_eq!(typed.campaigns.len(), 2);
        // written in the field order the summaries have always had
        let text = serde_json::to_string(&typed).unwrap();
        let keys: Vec<&str> = text.split('"').skip(1).step_by(2).take(3).collect();
        assert_eq!(keys, ["campaigns", "kept", "name"]);
    }

    #[test]
    fn a_summary_of_one_ingest_names_its_command() {
        let r = RepliesSummary {
            command: Some("ingest replies".into()),
            ..RepliesSummary::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["command"], "ingest replies");
        assert_eq!(v["handed_over"], serde_json::Value::Null);
        let inside = serde_json::to_value(RepliesSummary::default()).unwrap();
        assert!(inside.get("command").is_none());
    }
}
