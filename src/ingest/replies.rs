//! Inbound reply logs → opt-out and opt-in events, confirmations, the
//! review queue and rejects (SPEC §3.1–§3.3, §7).

use std::sync::Arc;

use arrow::array::Array;

use crate::columns::cell;
use crate::config::{Config, MatchMode};
use crate::error::Result;
use crate::event::{Action, Event, Source, ACCOUNT_SCOPE};
use crate::fasthash::FastMap;
use crate::ingest::outbox::{outbox, write_outbox, Kind, Reply, Review};
use crate::ingest::{BadTime, Rejects, TimeColumn};
use crate::io::input::{Batch, Dataset};
use crate::matcher::{Class, Keyword, Matcher, Words};
use crate::phone::{format_e164, normalize, normalize_sender};

/// Column names of a reply log.
#[derive(Clone, Debug)]
pub struct ReplyColumns {
    /// Message id.
    pub id: String,
    /// Receive time.
    pub time: String,
    /// The contact.
    pub from: String,
    /// The sender or shared number written to.
    pub to: String,
    /// The text.
    pub body: String,
    /// Optional `sms` / `whatsapp`.
    pub channel: String,
}

impl Default for ReplyColumns {
    fn default() -> Self {
        ReplyColumns {
            id: "message_id".into(),
            time: "received_at".into(),
            from: "from".into(),
            to: "to".into(),
            body: "body".into(),
            channel: "channel".into(),
        }
    }
}

/// What a reply log gave.
#[derive(Default, Debug)]
pub struct Outcome {
    /// Opt-out and opt-in events, in input order.
    pub events: Vec<Event>,
    /// Ids of help requests (not events), in input order.
    pub other_ids: Vec<String>,
    /// Candidate outbox rows, in input order.
    pub replies: Vec<Reply>,
    /// Messages read.
    pub messages: u64,
    /// Rows written to review.
    pub reviewed: u64,
}

enum Dest {
    Sender(usize, usize),
    Shared(Arc<str>),
}

/// An account's names and texts, shared by every event and outbox row.
struct AccountTexts {
    id: Arc<str>,
    /// Confirms its free keyword.
    reply: Option<Arc<str>>,
    help_reply: Option<Arc<str>>,
    senders: Vec<SenderTexts>,
}

struct SenderTexts {
    id: Arc<str>,
    reply: Option<Arc<str>>,
    resubscribe_reply: Option<Arc<str>>,
}

struct Ctx<'a> {
    config: &'a Config,
    matcher: Matcher,
    dests: FastMap<String, Dest>,
    texts: Vec<AccountTexts>,
    account_scope: Arc<str>,
}

fn shared_text(t: &Option<String>) -> Option<Arc<str>> {
    t.as_deref().map(Arc::from)
}

fn mode_name(m: MatchMode) -> &'static str {
    match m {
        MatchMode::Exact => "exact",
        MatchMode::Leading => "leading",
        MatchMode::Contains => "contains",
    }
}

impl<'a> Ctx<'a> {
    fn new(config: &'a Config) -> Ctx<'a> {
        let mut dests = FastMap::default();
        for (ai, a) in config.accounts.iter().enumerate() {
            for (si, s) in a.senders.iter().enumerate() {
                dests.insert(s.id.clone(), Dest::Sender(ai, si));
            }
        }
        for n in &config.shared_numbers {
            dests.insert(n.clone(), Dest::Shared(n.as_str().into()));
        }
        let texts = config
            .accounts
            .iter()
            .map(|a| AccountTexts {
                id: a.id.as_str().into(),
                reply: shared_text(&a.reply),
                help_reply: shared_text(&a.help_reply),
                senders: a
                    .senders
                    .iter()
                    .map(|s| SenderTexts {
                        id: s.id.as_str().into(),
                        reply: shared_text(&s.reply),
                        resubscribe_reply: shared_text(&s.resubscribe_reply),
                    })
                    .collect(),
            })
            .collect();
        Ctx {
            config,
            matcher: Matcher::new(config),
            dests,
            texts,
            account_scope: ACCOUNT_SCOPE.into(),
        }
    }

    /// What a `to` cell names.
    fn to(&self, raw: &str) -> To<'_> {
        match normalize_sender(raw) {
            Some(id) => self.dests.get(&id).map_or(To::Unknown, To::Known),
            // a WhatsApp reply may name its profile without the prefix
            None => To::NotId(self.dests.get(&format!("wa:{}", raw.trim()))),
        }
    }
}

/// What a `to` cell names, worked out once per distinct value.
#[derive(Clone, Copy)]
enum To<'c> {
    /// A sender or shared number of the config.
    Known(&'c Dest),
    /// A sender id that is not in the config.
    Unknown,
    /// Not a sender id; as a WhatsApp profile it would be this.
    NotId(Option<&'c Dest>),
}

/// A `channel` cell.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Unset,
    Sms,
    WhatsApp,
    Bad,
}

impl Channel {
    fn parse(raw: &str) -> Channel {
        match raw.trim().to_ascii_lowercase().as_str() {
            "sms" => Channel::Sms,
            "whatsapp" => Channel::WhatsApp,
            _ => Channel::Bad,
        }
    }
}

/// What one message asks for.
struct Msg<'m> {
    id: &'m str,
    at: i64,
    contact: u64,
    to: &'m str,
    body: &'m str,
}

fn event(
    m: &Msg<'_>,
    account: &Arc<str>,
    scope: Arc<str>,
    action: Action,
    k: &Keyword,
    via: &Arc<str>,
) -> Event {
    Event {
        event_id: format!("reply:{}", m.id),
        account: account.clone(),
        scope,
        contact: m.contact,
        at: m.at,
        action,
        source: if k.free.is_some() {
            Source::FreeKeyword
        } else {
            Source::Keyword
        },
        keyword: Some(k.text.clone()),
        via: Some(via.clone()),
    }
}

impl Outcome {
    fn reply(&mut self, m: &Msg<'_>, from: &Arc<str>, text: Option<&Arc<str>>, kind: Kind, source: usize) {
        if let Some(body) = text {
            self.replies.push(Reply {
                to: m.contact,
                from: from.clone(),
                body: body.clone(),
                kind,
                source,
            });
        }
    }
}

fn review_row(m: &Msg<'_>, why: String) -> [String; 5] {
    [
        m.id.to_string(),
        format_e164(m.contact),
        m.to.to_string(),
        m.body.to_string(),
        why,
    ]
}

fn at_sender(
    ctx: &Ctx<'_>,
    m: &Msg<'_>,
    ai: usize,
    si: usize,
    words: &mut Words,
    out: &mut Outcome,
    review: &mut Review,
) {
    let account = &ctx.config.accounts[ai];
    let sender = &account.senders[si];
    let table = &ctx.matcher.senders[ai][si];
    let texts = &ctx.texts[ai];
    let sender_texts = &texts.senders[si];
    let sender_id = &sender_texts.id;
    let scope = if sender.account_level {
        ctx.account_scope.clone()
    } else {
        sender_id.clone()
    };
    let best = words.best(table, account.match_mode);
    match best {
        Some(k) if k.class != Class::Help => {
            let (action, text, kind) = if k.class == Class::OptOut {
                (
                    Action::OptOut,
                    sender_texts.reply.as_ref(),
                    Kind::OptOutConfirmation,
                )
            } else {
                (
                    Action::OptIn,
                    sender_texts.resubscribe_reply.as_ref(),
                    Kind::OptInConfirmation,
                )
            };
            out.events.push(event(m, &texts.id, scope, action, k, sender_id));
            out.reply(m, sender_id, text, kind, out.events.len() - 1);
        }
        Some(_) => {
            out.other_ids.push(format!("reply:{}", m.id));
            out.reply(
                m,
                sender_id,
                texts.help_reply.as_ref(),
                Kind::Help,
                out.other_ids.len() - 1,
            );
        }
        None => {}
    }
    if best.is_none_or(|k| k.class != Class::OptOut) {
        if let Some(k) = words.any_opt_out(table) {
            let why = match best {
                Some(b) => format!(
                    "{} keyword '{}' matched, but the body also has opt-out keyword '{}' (match = {})",
                    if b.class == Class::OptIn { "opt-in" } else { "help" },
                    b.text,
                    k.text,
                    mode_name(account.match_mode)
                ),
                None => format!(
                    "opt-out keyword '{}' in the body did not trigger under match = {}",
                    k.text,
                    mode_name(account.match_mode)
                ),
            };
            review.push(review_row(m, why));
            out.reviewed += 1;
        }
    }
}

fn at_shared(
    ctx: &Ctx<'_>,
    m: &Msg<'_>,
    number: &Arc<str>,
    words: &mut Words,
    out: &mut Outcome,
    review: &mut Review,
) {
    // a free keyword counts under its own account's mode
    let mut hit: Option<(&Keyword, usize)> = None;
    let mut miss: Option<(&Keyword, usize)> = None;
    for mode in [MatchMode::Exact, MatchMode::Leading, MatchMode::Contains] {
        if let Some(k) = words.best(&ctx.matcher.shared, mode) {
            let Some(ai) = k.free else {
                continue;
            };
            let own = ctx.config.accounts[ai].match_mode;
            let allowed = match own {
                MatchMode::Exact => mode == MatchMode::Exact,
                MatchMode::Leading => mode != MatchMode::Contains,
                MatchMode::Contains => true,
            };
            if allowed {
                hit = Some((k, ai));
                break;
            }
            miss = miss.or(Some((k, ai)));
        }
    }
    if let Some((k, ai)) = hit {
        let texts = &ctx.texts[ai];
        out.events.push(event(
            m,
            &texts.id,
            ctx.account_scope.clone(),
            Action::OptOut,
            k,
            number,
        ));
        out.reply(
            m,
            number,
            texts.reply.as_ref(),
            Kind::OptOutConfirmation,
            out.events.len() - 1,
        );
        return;
    }
    let why = if let Some((k, ai)) = miss {
        let a = &ctx.config.accounts[ai];
        Some(format!(
            "free keyword '{}' of account '{}' did not trigger under match = {}",
            k.text,
            a.id,
            mode_name(a.match_mode)
        ))
    } else {
        words.any_opt_out(&ctx.matcher.plain).map(|k| {
            format!(
                "opt-out keyword '{}' at a shared number names no account (expected a free keyword)",
                k.text
            )
        })
    };
    if let Some(why) = why {
        review.push(review_row(m, why));
        out.reviewed += 1;
    }
}

/// What one batch gave, before it is merged in input order.
#[derive(Default)]
struct Part {
    out: Outcome,
    review: Vec<[String; 5]>,
    bad: Vec<(u32, u64, String)>,
}

impl Outcome {
    fn merge(&mut self, part: Outcome) {
        let (events, others) = (self.events.len(), self.other_ids.len());
        self.replies.extend(part.replies.into_iter().map(|mut r| {
            r.source += if r.kind == Kind::Help { others } else { events };
            r
        }));
        self.events.extend(part.events);
        self.other_ids.extend(part.other_ids);
        self.messages += part.messages;
        self.reviewed += part.reviewed;
    }
}

/// Batches classified together: enough to keep every core busy.
fn window_len() -> usize {
    rayon::current_num_threads() * 2
}

/// Read a reply log: events and outbox candidates come back; review and
/// reject rows go to their writers. Batches are classified in parallel and
/// merged in input order.
pub fn read(
    config: &Config,
    data: Dataset,
    cols: &ReplyColumns,
    review: &mut Review,
    rejects: &mut Rejects,
) -> Result<Outcome> {
    use rayon::prelude::*;
    let ctx = Ctx::new(config);
    let idx = Indexes {
        id: data.column(&cols.id, "--id-column")?,
        time: data.column(&cols.time, "--time-column")?,
        from: data.column(&cols.from, "--from-column")?,
        to: data.column(&cols.to, "--to-column")?,
        body: data.column(&cols.body, "--body-column")?,
        channel: data.schema.index_of(&cols.channel).ok(),
    };
    let mut out = Outcome::default();
    // (capped: a huge log grows these as it goes)
    let expected = data.total_rows.map_or(0, |n| n.min(1 << 24) as usize);
    out.events.reserve(expected);
    out.replies.reserve(expected);
    let mut rows_before = 0u64;
    let bar = crate::progress::rows("replies", data.total_rows);
    let mut data = data.peekable();
    // Three stages overlap: window k is classified in parallel while the
    // parts of window k-1 are merged (review and rejects written) and
    // window k+1 is decoded.
    let mut window: Vec<Batch> = data.by_ref().take(window_len()).collect::<Result<_>>()?;
    let mut done: Option<(Vec<Batch>, Vec<Part>)> = None;
    loop {
        let mut starts = Vec::with_capacity(window.len());
        for b in &window {
            starts.push(rows_before);
            rows_before += b.batch.num_rows() as u64;
        }
        let classify = || -> Result<Vec<Part>> {
            window
                .par_iter()
                .zip(starts)
                .map_init(Words::default, |words, (b, start)| {
                    classify_batch(&ctx, cols, &idx, b, start, words)
                })
                .collect()
        };
        let merge_and_decode = || -> Result<Vec<Batch>> {
            if let Some((batches, parts)) = done.take() {
                for (b, part) in batches.iter().zip(parts) {
                    rejects.add(&b.batch, &part.bad)?;
                    for r in part.review {
                        review.push(r);
                    }
                    review.flush()?;
                    out.merge(part.out);
                    if let Some(bar) = &bar {
                        bar.inc(b.batch.num_rows() as u64);
                    }
                }
            }
            data.by_ref().take(window_len()).collect()
        };
        let (parts, next) = rayon::join(classify, merge_and_decode);
        let (parts, next) = (parts?, next?);
        if window.is_empty() {
            break;
        }
        done = Some((std::mem::replace(&mut window, next), parts));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(out)
}

struct Indexes {
    id: usize,
    time: usize,
    from: usize,
    to: usize,
    body: usize,
    channel: Option<usize>,
}

fn classify_batch(
    ctx: &Ctx<'_>,
    cols: &ReplyColumns,
    idx: &Indexes,
    b: &Batch,
    rows_before: u64,
    words: &mut Words,
) -> Result<Part> {
    let file = &*b.file;
    let (ids, froms, tos, bodies) = (
        b.text(idx.id)?,
        b.text(idx.from)?,
        b.text(idx.to)?,
        b.text(idx.body)?,
    );
    let dests = b.per_row(idx.to, To::Unknown, |raw| ctx.to(raw))?;
    let channels = idx
        .channel
        .map(|i| b.per_row(i, Channel::Unset, Channel::parse))
        .transpose()?;
    let times = TimeColumn::new(file, &cols.time, b.batch.column(idx.time))?;
    let mut part = Part::default();
    // most messages make an event and a reply: one allocation each per batch
    part.out.events.reserve(b.batch.num_rows());
    part.out.replies.reserve(b.batch.num_rows());
    let mut review = Review::buffer();
    for i in 0..b.batch.num_rows() {
        let row = rows_before + i as u64 + 1;
        part.out.messages += 1;
        let mut reject = |why: String| part.bad.push((i as u32, row, why));
        let Some(id) = cell(&ids, i).map(str::trim) else {
            reject(format!("missing {}", cols.id));
            continue;
        };
        let at = match times.get(i) {
            Ok(Some(t)) => t,
            Ok(None) => {
                reject(format!("missing {}", cols.time));
                continue;
            }
            Err(BadTime) => {
                reject(format!("{} is not an RFC 3339 time", cols.time));
                continue;
            }
        };
        let Some(contact) = cell(&froms, i).and_then(|p| normalize(p, None)) else {
            reject(format!("{} is not a possible phone number", cols.from));
            continue;
        };
        let channel = channels.as_ref().map_or(Channel::Unset, |c| c[i]);
        if channel == Channel::Bad {
            reject(format!("{} must be sms or whatsapp", cols.channel));
            continue;
        }
        let dest = match dests[i] {
            To::Known(d) => Some(d),
            To::NotId(wa) if channel == Channel::WhatsApp => wa,
            To::Unknown | To::NotId(_) => None,
        };
        let Some(dest) = dest else {
            reject("unknown destination".to_string());
            continue;
        };
        let to = cell(&tos, i).unwrap_or("");
        let body = if bodies.is_null(i) { "" } else { bodies.value(i) };
        let m = Msg {
            id,
            at,
            contact,
            to,
            body,
        };
        words.cut(body);
        match dest {
            Dest::Sender(ai, si) => at_sender(ctx, &m, *ai, *si, words, &mut part.out, &mut review),
            Dest::Shared(number) => at_shared(ctx, &m, number, words, &mut part.out, &mut review),
        }
    }
    part.review = review.rows;
    Ok(part)
}

/// Where `ingest replies` writes its outputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outputs<'p> {
    /// Confirmations and help replies.
    pub outbox: Option<&'p std::path::Path>,
    /// Near misses.
    pub review: Option<&'p std::path::Path>,
    /// Unusable rows.
    pub rejects: Option<&'p std::path::Path>,
}

/// Ingest reply logs into a store (the caller holds the lock): every
/// output is complete under its temporary name before the store commits,
/// and renamed after. Prints the summary on stderr and returns its figures.
pub fn ingest(
    store: &mut crate::store::Store,
    files: &[String],
    cols: &ReplyColumns,
    outputs: &Outputs<'_>,
) -> Result<serde_json::Value> {
    for p in [outputs.outbox, outputs.review, outputs.rejects]
        .into_iter()
        .flatten()
    {
        crate::io::output::Format::for_path(p)?;
    }
    let data = Dataset::open(files)?;
    let mut rejects = Rejects::new(outputs.rejects, &data.schema)?;
    let mut review = Review::new(outputs.review)?;
    let mut outcome = read(&store.config, data, cols, &mut review, &mut rejects)?;
    let events = std::mem::take(&mut outcome.events);
    let prepared = store.prepare_ingest(events, &outcome.other_ids)?;
    let rows = outbox(
        &outcome,
        &prepared.committed.new_events,
        &prepared.committed.fresh,
        &prepared.other_new,
    );
    let pending = outputs.outbox.map(|p| write_outbox(p, &rows)).transpose()?;
    let kind = |k| rows.iter().filter(|r| r.reply.kind == k).count();
    let by_kind = [
        kind(Kind::OptOutConfirmation),
        kind(Kind::OptInConfirmation),
        kind(Kind::Help),
    ];
    let outbox_rows = rows.len();
    drop(rows);
    let (done, _) = store.commit_ingest(prepared)?;
    if let Some(o) = pending {
        o.finish()?;
    }
    review.finish()?;
    let count = |action| done.new_events.iter().filter(|e| e.action == action).count();
    let (opt_outs, opt_ins) = (count(Action::OptOut), count(Action::OptIn));
    eprintln!(
        "replies: {} messages; {opt_outs} new opt-outs, {opt_ins} new opt-ins, {} already in the store; {} to review; outbox {} rows{}",
        outcome.messages,
        done.already_known,
        outcome.reviewed,
        outbox_rows,
        if outputs.outbox.is_none() && outbox_rows > 0 { " (not written: give --outbox F)" } else { "" }
    );
    if let Some(line) = rejects.summary(outputs.rejects.is_some()) {
        eprintln!("replies: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    let summary = serde_json::json!({"messages": outcome.messages, "new_opt_outs": opt_outs, "new_opt_ins": opt_ins,
        "new_by_source_and_scope": crate::event::breakdown(&done.new_events),
        "already_known": done.already_known, "review": outcome.reviewed, "rejected": rejected,
        "outbox": outbox_rows,
        "outbox_by_kind": {"opt_out_confirmation": by_kind[0],
                           "opt_in_confirmation": by_kind[1], "help": by_kind[2]}});
    Ok(summary)
}
