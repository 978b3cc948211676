//! Classifying one batch of a reply log: each message's destination, its
//! keyword, and what it makes (an event, an outbox candidate, a review
//! row or a reject), per SPEC §3.1–§3.2.

use std::sync::Arc;

use crate::config::{Config, MatchMode};
use crate::error::Result;
use crate::event::{Action, Event, Source, ACCOUNT_SCOPE};
use crate::ingest::outbox::{Kind, Reply, Review};
use crate::ingest::{BadTime, TimeColumn};
use crate::io::input::Batch;
use crate::matcher::{Class, Keyword, Matcher, Words};
use crate::phone::{format_e164, normalize, normalize_sender};
use crate::util::columns::cell;
use crate::util::fasthash::FastMap;

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
    /// The zone of times written without an offset (UTC when `None`).
    pub zone: crate::ingest::Zone,
    /// How CSV files are read.
    pub csv: crate::io::input::CsvShape,
}

impl ReplyColumns {
    /// The default name of the message id column.
    pub const ID: &'static str = "message_id";
    /// The default name of the time column.
    pub const TIME: &'static str = "received_at";
    /// The default name of the sender-of-the-reply column.
    pub const FROM: &'static str = "from";
    /// The default name of the destination column.
    pub const TO: &'static str = "to";
    /// The default name of the message text column.
    pub const BODY: &'static str = "body";
    /// The default name of the channel column.
    pub const CHANNEL: &'static str = "channel";
}

impl Default for ReplyColumns {
    fn default() -> Self {
        ReplyColumns {
            id: Self::ID.into(),
            time: Self::TIME.into(),
            from: Self::FROM.into(),
            to: Self::TO.into(),
            body: Self::BODY.into(),
            channel: Self::CHANNEL.into(),
            zone: None,
            csv: Default::default(),
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

impl Outcome {
    pub(super) fn merge(&mut self, part: Outcome) {
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

pub(super) struct Ctx<'a> {
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
    pub(super) fn new(config: &'a Config) -> Ctx<'a> {
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
        event_id: compact_str::format_compact!("reply:{}", m.id),
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
                at: m.at,
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
pub(super) struct Classified {
    pub(super) out: Outcome,
    pub(super) review: Vec<[String; 5]>,
    pub(super) bad: Vec<(u32, u64, String)>,
}

pub(super) struct Indexes {
    pub(super) id: usize,
    pub(super) time: usize,
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) body: usize,
    pub(super) channel: Option<usize>,
}

pub(super) fn classify_batch(
    ctx: &Ctx<'_>,
    cols: &ReplyColumns,
    idx: &Indexes,
    b: &Batch,
    rows_before: u64,
    words: &mut Words,
) -> Result<Classified> {
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
    let times = TimeColumn::new(file, &cols.time, b.batch.column(idx.time), cols.zone)?;
    let mut part = Classified::default();
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
        let body = bodies.get(i).unwrap_or("");
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
