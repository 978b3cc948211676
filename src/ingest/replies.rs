//! Inbound reply logs → opt-out and opt-in events, confirmations, the
//! review queue and rejects (SPEC §3.1–§3.3, §7).

use crate::config::Config;
use crate::error::Result;
use crate::event::Action;
use crate::ingest::classify::{classify_batch, Classified, Ctx, Indexes};
use crate::ingest::outbox::{batches, outbox, Kind, Review};
use crate::ingest::Rejects;
use crate::io::input::{Batch, Dataset};
use crate::matcher::Words;
use crate::summary::{OutboxByKind, RepliesSummary};
use crate::util::ordered;

pub use super::classify::{Outcome, ReplyColumns};

/// Batches in flight: enough to keep every core busy.
fn window_len() -> usize {
    rayon::current_num_threads() * 2
}

/// Read a reply log: events and outbox candidates come back; review and
/// reject rows go to their writers. Batches are classified in parallel and
/// merged in input order.
pub fn read(
    config: &Config,
    mut data: Dataset,
    cols: &ReplyColumns,
    review: &mut Review,
    rejects: &mut Rejects,
) -> Result<Outcome> {
    let ctx = Ctx::new(config);
    let found = data.columns(&[
        (&cols.id, "--id-column"),
        (&cols.time, "--time-column"),
        (&cols.from, "--from-column"),
        (&cols.to, "--to-column"),
        (&cols.body, "--body-column"),
    ])?;
    let idx = Indexes {
        id: found[0],
        time: found[1],
        from: found[2],
        to: found[3],
        body: found[4],
        channel: data.schema.index_of(&cols.channel).ok(),
    };
    let mut out = Outcome::default();
    // (capped: a huge log grows these as it goes)
    let expected = data.total_rows.map_or(0, |n| n.min(1 << 24) as usize);
    out.events.reserve(expected);
    out.replies.reserve(expected);
    let bar = crate::util::progress::rows("replies", data.total_rows);
    // batches are classified in parallel while the next ones are decoded
    // and the classified ones merged in input order (review and rejects
    // written), a few batches per thread in flight
    let mut rows_before = 0u64;
    let source = || {
        let b = data.next()?;
        Some(b.map(|b| {
            let start = rows_before;
            rows_before += b.batch.num_rows() as u64;
            (b, start)
        }))
    };
    let classify = |(b, start): (Batch, u64)| {
        let part = classify_batch(&ctx, cols, &idx, &b, start, &mut Words::default())?;
        Ok((b, part))
    };
    let merge = |(b, part): (Batch, Classified)| {
        rejects.add(&b.batch, &part.bad)?;
        for r in part.review {
            review.push(r);
        }
        review.flush()?;
        out.merge(part.out);
        if let Some(bar) = &bar {
            bar.inc(b.batch.num_rows() as u64);
        }
        Ok(())
    };
    ordered::run(window_len(), source, classify, Ok, Ok, merge)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(out)
}

/// Where `ingest replies` writes its outputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplyOutputs<'p> {
    /// Confirmations and help replies.
    pub outbox: Option<&'p std::path::Path>,
    /// Near misses.
    pub review: Option<&'p std::path::Path>,
    /// Unusable rows.
    pub rejects: Option<&'p std::path::Path>,
}

impl ReplyOutputs<'_> {
    /// Each output's name must say its format.
    fn check(&self) -> Result<()> {
        for p in [self.outbox, self.review, self.rejects].into_iter().flatten() {
            crate::io::output::Format::for_path(p)?;
        }
        Ok(())
    }
}

/// Ingest reply logs into a store (the caller holds the lock). The
/// replies it decides to send are committed with its events and stay
/// pending in the store; with `outputs.outbox`, every pending reply (this
/// ingest's and any left by earlier ones) is then handed over to that file.
/// Review and rejects are complete under temporary names before the
/// commit, and renamed after. Prints the summary on stderr and returns its
/// figures.
pub fn ingest(
    store: &mut crate::store::Store,
    files: &[String],
    cols: &ReplyColumns,
    outputs: &ReplyOutputs<'_>,
) -> Result<RepliesSummary> {
    outputs.check()?;
    let data = Dataset::open_shaped(files, cols.csv)?;
    ingest_dataset(store, data, cols, outputs)
}

/// [`ingest`] of a dataset already opened (batches handed over from
/// Python, say).
pub fn ingest_dataset(
    store: &mut crate::store::Store,
    data: Dataset,
    cols: &ReplyColumns,
    outputs: &ReplyOutputs<'_>,
) -> Result<RepliesSummary> {
    outputs.check()?;
    let mut rejects = Rejects::new(outputs.rejects, &data.schema)?;
    let mut review = Review::new(outputs.review)?;
    let mut outcome = read(&store.config, data, cols, &mut review, &mut rejects)?;
    let events = std::mem::take(&mut outcome.events);
    let mut prepared = store.prepare_ingest(events, &outcome.other_ids)?;
    let rows = outbox(
        &outcome.replies,
        &outcome.other_ids,
        &prepared.committed.new_events,
        &prepared.committed.fresh,
        &prepared.other_new,
    );
    let kind = |k| rows.iter().filter(|r| r.reply.kind == k).count();
    let by_kind = [
        kind(Kind::OptOutConfirmation),
        kind(Kind::OptInConfirmation),
        kind(Kind::Help),
    ];
    let outbox_rows = rows.len();
    let kept = batches(&rows)?;
    drop(rows);
    crate::store::Store::keep_replies(&mut prepared, kept)?;
    let (done, _) = store.commit_ingest(prepared)?;
    review.finish()?;
    let count = |action| done.new_events.iter().filter(|e| e.action == action).count();
    let (opt_outs, opt_ins) = (count(Action::OptOut), count(Action::OptIn));
    eprintln!(
        "replies: {} messages; {opt_outs} new opt-outs, {opt_ins} new opt-ins, {} already in the store; {} to review; {outbox_rows} new replies to send",
        outcome.messages, done.already_known, outcome.reviewed,
    );
    if let Some(line) = rejects.summary(outputs.rejects.is_some()) {
        eprintln!("replies: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    let handed_over = match outputs.outbox {
        Some(p) => Some(store.deliver(p)?),
        None => {
            store.say_pending();
            None
        }
    };
    Ok(RepliesSummary {
        already_known: done.already_known as u64,
        command: None,
        handed_over,
        messages: outcome.messages as u64,
        new_by_source_and_scope: crate::event::breakdown(&done.new_events),
        new_opt_ins: opt_ins as u64,
        new_opt_outs: opt_outs as u64,
        outbox: outbox_rows as u64,
        outbox_by_kind: OutboxByKind {
            help: by_kind[2] as u64,
            opt_in_confirmation: by_kind[1] as u64,
            opt_out_confirmation: by_kind[0] as u64,
        },
        pending_replies: store.pending_replies(),
        rejected,
        review: outcome.reviewed as u64,
    })
}
