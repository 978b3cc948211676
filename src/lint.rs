//! `optscrub lint`: what a config, and the message templates sent under
//! it, get wrong about opt-outs.
//!
//! The rules: a US sender answers the seven words that the FCC's 2024
//! order (FCC 24-24) makes a revocation of consent whatever else the
//! message says; a Canadian sender answers ARRET (and its account AIDE);
//! opt-outs and help words get an answer; a template that tells people to
//! reply a word names one its sender answers (not another account's free
//! keyword); and, under `leading`, an opt-out word that also starts
//! ordinary sentences is pointed out, with how many replies of a log it
//! would catch.

use serde::Serialize;

use crate::config::{Account, Config, MatchMode, Sender};
use crate::error::Result;
use crate::io::input::Dataset;
use crate::keywords::keyword_key;
use crate::phone::normalize_sender;
use crate::util::columns::cell;

/// The seven words FCC 24-24 treats as a revocation of consent.
pub const FCC_REVOCATION: [&str; 7] = [
    "STOP",
    "QUIT",
    "END",
    "REVOKE",
    "OPT OUT",
    "CANCEL",
    "UNSUBSCRIBE",
];

/// Opt-out words that also begin ordinary replies ("End of the day
/// works", "Cancel my 3pm, move it to 4").
pub const COMMON_FIRST_WORDS: &[&str] = &[
    "END", "CANCEL", "QUIT", "DONE", "NO", "OFF", "OUT", "LEAVE", "REMOVE", "FINISH", "CLOSE", "WAIT",
    "ENOUGH", "BYE", "PARAR", "SALIR", "SAIR",
];

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A rule is broken: opt-outs are missed or misdirected.
    Error,
    /// Legal, but usually an oversight.
    Warning,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub level: Level,
    /// The rule's name.
    pub rule: &'static str,
    /// The account.
    pub account: Option<String>,
    /// The sender.
    pub sender: Option<String>,
    /// The template, for template findings.
    pub template: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
    /// Replies of the log the finding concerns, when a log was given.
    pub replies: Option<u64>,
}

impl Finding {
    /// Where it is: "template 't', account 'a', sender s".
    pub fn place(&self) -> String {
        let mut at = Vec::new();
        if let Some(t) = &self.template {
            at.push(format!("template '{t}'"));
        }
        if let Some(a) = &self.account {
            at.push(format!("account '{a}'"));
        }
        if let Some(s) = &self.sender {
            at.push(format!("sender {s}"));
        }
        at.join(", ")
    }

    /// One line: where, then what.
    pub fn line(&self) -> String {
        format!("{}: {}", self.place(), self.message)
    }
}

/// Where a sender's messages go, by its number (or the account's country
/// for names and short codes).
#[derive(Clone, Copy, Default)]
struct Countries {
    us: bool,
    ca: bool,
}

/// NANP toll-free area codes: numbers used to text both the US and Canada.
const TOLL_FREE: [&str; 7] = ["800", "833", "844", "855", "866", "877", "888"];

fn countries(account: &Account, sender: &Sender) -> Countries {
    if let Some(digits) = sender.id.strip_prefix("+1") {
        if TOLL_FREE.iter().any(|t| digits.starts_with(t)) {
            return Countries { us: true, ca: true };
        }
    }
    if sender.id.starts_with('+') {
        let region = phonenumber::parse(None, &sender.id)
            .ok()
            .and_then(|n| n.country().id())
            .map(|id| id.as_ref().to_string());
        // the US and its territories, which the FCC's rules cover
        return match region.as_deref() {
            Some("US" | "PR" | "VI" | "GU" | "AS" | "MP") => Countries { us: true, ca: false },
            Some("CA") => Countries { us: false, ca: true },
            _ => Countries::default(),
        };
    }
    // a name or short code texts where its account does
    let code = account
        .default_country
        .map(|c| c.code().to_string())
        .unwrap_or_default();
    Countries {
        us: code == "US",
        ca: code == "CA",
    }
}

fn has(words: &[String], word: &str) -> bool {
    let key = keyword_key(word);
    words.iter().any(|w| keyword_key(w) == key)
}

fn finding(
    level: Level,
    rule: &'static str,
    account: &Account,
    sender: Option<&Sender>,
    message: String,
) -> Finding {
    Finding {
        level,
        rule,
        account: Some(account.id.clone()),
        sender: sender.map(|s| s.id.clone()),
        template: None,
        message,
        replies: None,
    }
}

/// The config's findings (no templates, no replies).
pub fn config_findings(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in &config.accounts {
        for s in &a.senders {
            let c = countries(a, s);
            if c.us {
                let missing: Vec<&str> = FCC_REVOCATION
                    .iter()
                    .copied()
                    .filter(|w| !has(&s.opt_out_keywords, w))
                    .collect();
                if !missing.is_empty() {
                    out.push(finding(
                        Level::Error,
                        "us-revocation-words",
                        a,
                        Some(s),
                        format!(
                            "texts the US but does not take {} as an opt-out (FCC 24-24 makes all seven of STOP, QUIT, END, REVOKE, OPT OUT, CANCEL and UNSUBSCRIBE a revocation); add packs = [\"us-fcc\"]",
                            missing.join(", ")
                        ),
                    ));
                }
            }
            if c.ca && !has(&s.opt_out_keywords, "ARRET") {
                out.push(finding(
                    Level::Error,
                    "canada-arret",
                    a,
                    Some(s),
                    "texts Canada but does not take ARRET as an opt-out; add packs = [\"ca\"]".into(),
                ));
            }
            if s.reply.is_none() {
                out.push(finding(
                    Level::Warning,
                    "no-confirmation",
                    a,
                    Some(s),
                    format!(
                        "no reply text, so its opt-outs ({}) are not confirmed",
                        s.opt_out_keywords.join(", ")
                    ),
                ));
            }
        }
        let canadian = a.senders.iter().any(|s| countries(a, s).ca);
        if canadian && !has(&a.help_keywords, "AIDE") {
            out.push(finding(
                Level::Error,
                "canada-aide",
                a,
                None,
                "has Canadian senders but AIDE is not a help keyword; add it to help_keywords".into(),
            ));
        }
        if a.help_reply.is_none() && !a.help_keywords.is_empty() {
            out.push(finding(
                Level::Warning,
                "no-help-reply",
                a,
                None,
                format!(
                    "no help_reply, so its help keywords ({}) get no answer",
                    a.help_keywords.join(", ")
                ),
            ));
        }
        if a.free_keyword.is_some() && a.reply.is_none() {
            out.push(finding(
                Level::Warning,
                "no-confirmation",
                a,
                None,
                "no reply text, so its free keyword is not confirmed".into(),
            ));
        }
        if a.match_mode == MatchMode::Leading {
            for s in &a.senders {
                let words = common_words(s);
                if words.is_empty() {
                    continue;
                }
                let (list, are) = (
                    words.join(", "),
                    if words.len() == 1 {
                        "is an opt-out word"
                    } else {
                        "are opt-out words"
                    },
                );
                out.push(finding(
                    Level::Warning,
                    "leading-common-word",
                    a,
                    Some(s),
                    format!(
                        "{list} {are} under match = \"leading\" and also common first words: a reply that merely begins with one opts the contact out (as \"End of the day works\" would for END); match = \"exact\" sends such replies to review"
                    ),
                ));
            }
        }
    }
    out
}

/// A sender's opt-out words that are also common first words.
fn common_words(s: &Sender) -> Vec<&str> {
    s.opt_out_keywords
        .iter()
        .filter(|w| {
            COMMON_FIRST_WORDS
                .iter()
                .any(|c| keyword_key(c) == keyword_key(w))
        })
        .map(String::as_str)
        .collect()
}

/// Words after a "reply"/"text" instruction that say it is the way out.
const OPT_OUT_CUES: &[&str] = &[
    "opt",
    "unsub",
    "stop",
    "cancel",
    "end",
    "quit",
    "revoke",
    "baja",
    "arret",
    "desabonn",
    "desinscri",
    "parar",
    "salir",
    "sair",
    "detener",
    "remove",
];

/// The words a template tells people to send: the capitalized or quoted
/// word(s) after "reply", "text", "txt", "send" or "respond" (an optional
/// "with" between), or a word `known` as a keyword however it is written
/// (free keywords are often mixed case), and whether the rest of its
/// sentence reads as an opt-out instruction.
pub fn instructions(body: &str, known: &dyn Fn(&str) -> bool) -> Vec<(String, bool)> {
    let tokens: Vec<&str> = body.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let verb = keyword_key(tokens[i]);
        i += 1;
        if !matches!(verb.as_str(), "reply" | "text" | "txt" | "send" | "respond") {
            continue;
        }
        if i < tokens.len() && keyword_key(tokens[i]) == "with" {
            i += 1;
        }
        let mut words = Vec::new();
        while i < tokens.len() {
            let t = tokens[i];
            let quoted = t.starts_with(['"', '\'', '“', '‘', '«']);
            let bare: String = t.chars().filter(|c| c.is_alphanumeric()).collect();
            let caps = bare.chars().any(char::is_alphabetic) && !bare.chars().any(char::is_lowercase);
            if bare.is_empty() || !(caps || (words.is_empty() && (quoted || known(&bare)))) {
                break;
            }
            words.push(bare);
            i += 1;
            // a closing quote or punctuation ends the word
            if t.ends_with(['"', '\'', '”', '’', '»', ',', '.', ';', ':', '!', '?']) {
                break;
            }
        }
        if words.is_empty() || (words.len() == 1 && words[0].chars().all(|c| c.is_ascii_digit())) {
            continue;
        }
        // the rest of its sentence, up to the first word that ends one
        let end = tokens[i..]
            .iter()
            .position(|t| t.ends_with(['.', '!', '?']))
            .map_or(tokens.len(), |p| i + p + 1);
        let cue = tokens[i..end]
            .iter()
            .map(|t| keyword_key(t))
            .any(|w| OPT_OUT_CUES.iter().any(|c| w.starts_with(c)));
        out.push((words.join(" "), cue));
    }
    out
}

/// Column names of a templates file and a reply log.
#[derive(Clone, Debug)]
pub struct LintColumns {
    /// The template id column.
    pub template_id: String,
    /// The template's sender column.
    pub template_sender: String,
    /// The template text column.
    pub template_body: String,
    /// The reply log's destination column.
    pub reply_to: String,
    /// The reply log's text column.
    pub reply_body: String,
}

/// Findings for a templates file (`template_id`, `sender`, `body`).
pub fn template_findings(config: &Config, files: &[String], cols: &LintColumns) -> Result<Vec<Finding>> {
    let mut data = Dataset::open(files)?;
    let found = data.columns(&[
        (&cols.template_id, "--template-id-column"),
        (&cols.template_sender, "--template-sender-column"),
        (&cols.template_body, "--template-body-column"),
    ])?;
    let mut out = Vec::new();
    let free: Vec<(String, &Account)> = config
        .accounts
        .iter()
        .filter_map(|a| a.free_keyword.as_ref().map(|k| (keyword_key(k), a)))
        .collect();
    let mut keys = std::collections::HashSet::new();
    for a in &config.accounts {
        let words = a
            .opt_in_keywords
            .iter()
            .chain(&a.help_keywords)
            .chain(&a.free_keyword);
        keys.extend(words.map(|w| keyword_key(w)));
        for s in &a.senders {
            keys.extend(s.opt_out_keywords.iter().map(|w| keyword_key(w)));
        }
    }
    let known = |w: &str| keys.contains(&keyword_key(w));
    for batch in &mut data {
        let b = batch?;
        let (ids, senders, bodies) = (b.text(found[0])?, b.text(found[1])?, b.text(found[2])?);
        for i in 0..b.batch.num_rows() {
            let id = cell(&ids, i).unwrap_or("").trim().to_string();
            let Some(body) = cell(&bodies, i) else { continue };
            let raw_sender = cell(&senders, i).unwrap_or("");
            let sender_id = normalize_sender(raw_sender);
            let owner = sender_id
                .as_deref()
                .and_then(|sid| config.accounts.iter().find_map(|a| a.sender(sid).map(|s| (a, s))));
            let shared = sender_id
                .as_deref()
                .is_some_and(|sid| config.shared_numbers.iter().any(|n| n == sid));
            let mut push = |level, rule, account: Option<&Account>, message: String| {
                out.push(Finding {
                    level,
                    rule,
                    account: account.map(|a| a.id.clone()),
                    sender: sender_id.clone(),
                    template: Some(id.clone()),
                    message,
                    replies: None,
                })
            };
            let Some((account, sender)) = owner else {
                if !shared {
                    push(
                        Level::Error,
                        "template-unknown-sender",
                        None,
                        format!(
                            "is sent from '{}', which is not a sender of the config",
                            raw_sender.trim()
                        ),
                    );
                    continue;
                }
                // at a shared number only free keywords opt out
                for (word, _) in instructions(body, &known) {
                    if !free.iter().any(|(k, _)| *k == keyword_key(&word)) {
                        push(
                            Level::Error,
                            "template-keyword",
                            None,
                            format!("tells people to send {word} to a shared number, where only an account's free keyword opts out"),
                        );
                    }
                }
                continue;
            };
            for (word, cue) in instructions(body, &known) {
                let key = keyword_key(&word);
                let answered = sender.opt_out_keywords.iter().any(|k| keyword_key(k) == key)
                    || account.opt_in_keywords.iter().any(|k| keyword_key(k) == key)
                    || account.help_keywords.iter().any(|k| keyword_key(k) == key);
                if answered {
                    continue;
                }
                if let Some((_, other)) = free.iter().find(|(k, a)| *k == key && a.id != account.id) {
                    push(
                        Level::Error,
                        "template-other-free-keyword",
                        Some(account),
                        format!(
                            "tells people to send {word}, the free keyword of account '{}'",
                            other.id
                        ),
                    );
                } else if cue {
                    push(
                        Level::Error,
                        "template-keyword",
                        Some(account),
                        format!("tells people to reply {word} to opt out, but {word} is not an opt-out word of this sender; add it to its keywords"),
                    );
                } else {
                    push(
                        Level::Warning,
                        "template-keyword",
                        Some(account),
                        format!("tells people to send {word}, which this sender does not answer"),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Count, for every `leading-common-word` finding, the replies of a log
/// (`to`, `body`) to that sender that begin with the word and say more.
pub fn count_replies(
    config: &Config,
    findings: &mut [Finding],
    files: &[String],
    cols: &LintColumns,
) -> Result<()> {
    // (sender, the words' keys, finding)
    let mut wanted: Vec<(String, Vec<String>, usize)> = Vec::new();
    for (fi, f) in findings.iter().enumerate() {
        if f.rule != "leading-common-word" {
            continue;
        }
        let sender = f
            .account
            .as_deref()
            .and_then(|a| config.account(a))
            .zip(f.sender.as_deref());
        if let Some(s) = sender.and_then(|(a, s)| a.sender(s)) {
            let keys = common_words(s).into_iter().map(keyword_key).collect();
            wanted.push((s.id.clone(), keys, fi));
        }
    }
    let mut counts = vec![0u64; findings.len()];
    let mut data = Dataset::open(files)?;
    let found = data.columns(&[
        (&cols.reply_to, "--to-column"),
        (&cols.reply_body, "--body-column"),
    ])?;
    for batch in &mut data {
        let b = batch?;
        let (tos, bodies) = (b.text(found[0])?, b.text(found[1])?);
        for i in 0..b.batch.num_rows() {
            let (Some(to), Some(body)) = (cell(&tos, i), cell(&bodies, i)) else {
                continue;
            };
            let Some(to) = normalize_sender(to) else { continue };
            let mut words = body.split_whitespace();
            let first = words.next().map(keyword_key).unwrap_or_default();
            if words.next().is_none() {
                continue;
            }
            for (s, keys, fi) in &wanted {
                if *s == to && keys.contains(&first) {
                    counts[*fi] += 1;
                }
            }
        }
    }
    for (_, _, fi) in wanted {
        findings[fi].replies = Some(counts[fi]);
        findings[fi].message.push_str(&format!(
            "; {} replies of the log begin with one and say more",
            counts[fi]
        ));
    }
    Ok(())
}
