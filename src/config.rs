//! The account config (SPEC §5): TOML on disk, checked for ambiguity, then
//! resolved into indexes that scrubbing and ingestion look up per row.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::keywords::{keyword_key, Pack, DEFAULT_HELP, DEFAULT_OPT_IN, DEFAULT_OPT_OUT};
use crate::phone::parse_config_sender;

/// How a message body is matched against keywords (SPEC §3.1 step 4).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// The whole normalized body is the keyword.
    Exact,
    /// The body begins with the keyword as a whole word.
    #[default]
    Leading,
    /// The keyword appears anywhere as a whole word.
    Contains,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    shared_numbers: Vec<RawShared>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    signals: Vec<RawSignal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    provider: String,
    code: toml::Value,
    meaning: SignalMeaning,
}

/// What a provider's send-time code means (`[[signals]]`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignalMeaning {
    /// The contact opted out of the sender.
    OptOut,
    /// Not an opt-out (switches a built-in code off).
    Ignore,
}

/// One `[[signals]]` entry: a provider's code and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalCode {
    /// The provider, as send logs name it.
    pub provider: String,
    /// The code, as text.
    pub code: String,
    /// What it means.
    pub meaning: SignalMeaning,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShared {
    number: toml::Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: String,
    free_keyword: Option<String>,
    #[serde(default, rename = "match")]
    match_mode: MatchMode,
    opt_in_keywords: Option<Vec<String>>,
    help_keywords: Option<Vec<String>>,
    help_reply: Option<String>,
    reply: Option<String>,
    default_country: Option<String>,
    #[serde(default)]
    senders: Vec<RawSender>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    id: toml::Spanned<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    packs: Vec<Pack>,
    #[serde(default)]
    account_level: bool,
    reply: Option<String>,
    resubscribe_reply: Option<String>,
}

/// One sender of an account, resolved.
#[derive(Clone, Debug)]
pub struct Sender {
    /// Normalized sender id (`+digits`, `wa:…`, `name:…`).
    pub id: String,
    /// Every opt-out keyword it answers, as written: defaults, custom, packs.
    pub opt_out_keywords: Vec<String>,
    /// "Enforce account level opt-outs".
    pub account_level: bool,
    /// Opt-out confirmation text.
    pub reply: Option<String>,
    /// Opt-in confirmation text.
    pub resubscribe_reply: Option<String>,
}

/// One account, resolved.
#[derive(Clone, Debug)]
pub struct Account {
    /// The account id.
    pub id: String,
    /// The account's free opt-out keyword, if any.
    pub free_keyword: Option<String>,
    /// Match mode for its replies.
    pub match_mode: MatchMode,
    /// Opt-in keywords.
    pub opt_in_keywords: Vec<String>,
    /// Help keywords.
    pub help_keywords: Vec<String>,
    /// Help auto-reply.
    pub help_reply: Option<String>,
    /// Free-keyword confirmation, sent from the shared number.
    pub reply: Option<String>,
    /// How national numbers of this account's rows are read when no
    /// `--default-country` is given.
    pub default_country: Option<crate::phone::DefaultCountry>,
    /// Senders, in config order.
    pub senders: Vec<Sender>,
    sender_index: HashMap<String, usize>,
}

impl Account {
    /// The sender with this normalized id.
    pub fn sender(&self, id: &str) -> Option<&Sender> {
        self.sender_index.get(id).map(|&i| &self.senders[i])
    }

    /// Where the sender with this normalized id is in [`Account::senders`].
    pub fn sender_position(&self, id: &str) -> Option<usize> {
        self.sender_index.get(id).copied()
    }
}

/// A checked config with its lookup indexes.
#[derive(Clone, Debug)]
pub struct Config {
    /// Accounts, in config order.
    pub accounts: Vec<Account>,
    /// Shared numbers, normalized.
    pub shared_numbers: Vec<String>,
    /// Provider codes added to (or taken from) the built-in table.
    pub signals: Vec<SignalCode>,
    account_index: HashMap<String, usize>,
}

impl Config {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = Config::read_text(path)?;
        Config::parse(&text).map_err(|msg| Error::Config(format!("config {}: {msg}", path.display())))
    }

    /// Read a config file as text: UTF-8, or an error with where it is not.
    pub fn read_text(path: &Path) -> Result<String> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Config(format!("cannot read config {}: {e}", path.display())))?;
        String::from_utf8(bytes).map_err(|e| {
            let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            Error::Config(format!(
                "config {}: line {line}: bytes that are not UTF-8; expected UTF-8 TOML text",
                path.display()
            ))
        })
    }

    /// Parse and check config text; the error is a one-line reason.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}: {msg}")
                }
                None => msg,
            }
        })?;
        resolve(raw, text)
    }

    /// The account with this id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.account_index.get(id).map(|&i| &self.accounts[i])
    }
}

/// "line N: " for a span of the config text.
fn at_line(text: &str, span: std::ops::Range<usize>) -> String {
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    format!("line {line}: ")
}

fn resolve(raw: RawConfig, text: &str) -> std::result::Result<Config, String> {
    if raw.accounts.is_empty() {
        return Err(
            "no accounts; expected at least one [[accounts]] table with an id and its senders".into(),
        );
    }
    let mut shared_numbers = Vec::new();
    for s in &raw.shared_numbers {
        let n = parse_config_sender(s.number.get_ref())
            .and_then(|n| {
                if n.starts_with('+') {
                    Ok(n)
                } else {
                    Err(format!("'{}' is not a phone number", s.number.get_ref()))
                }
            })
            .map_err(|why| format!("{}shared number {why}", at_line(text, s.number.span())))?;
        if shared_numbers.contains(&n) {
            return Err(format!("shared number {n} is listed twice"));
        }
        shared_numbers.push(n);
    }
    let mut accounts = Vec::new();
    let mut account_index = HashMap::new();
    let mut sender_owner: HashMap<String, String> = HashMap::new();
    let mut free_owner: HashMap<String, String> = HashMap::new();
    for a in raw.accounts {
        let account = resolve_account(a, text, &shared_numbers, &mut sender_owner, &mut free_owner)?;
        if account_index.insert(account.id.clone(), accounts.len()).is_some() {
            return Err(format!("account '{}' is defined twice", account.id));
        }
        accounts.push(account);
    }
    let mut signals = Vec::new();
    for s in raw.signals {
        let code = match &s.code {
            toml::Value::String(c) => c.trim().to_string(),
            toml::Value::Integer(c) => c.to_string(),
            other => {
                return Err(format!(
                    "[[signals]] code {other} is neither text nor a whole number"
                ))
            }
        };
        let provider = s.provider.trim().to_string();
        if provider.is_empty() || code.is_empty() {
            return Err("a [[signals]] entry has an empty provider or code".into());
        }
        signals.push(SignalCode {
            provider,
            code,
            meaning: s.meaning,
        });
    }
    Ok(Config {
        accounts,
        shared_numbers,
        signals,
        account_index,
    })
}

fn check_keywords(account: &str, what: &str, list: &[String]) -> std::result::Result<(), String> {
    for k in list {
        if keyword_key(k).is_empty() {
            return Err(format!(
                "account '{account}': {what} keyword '{k}' has no letters or digits"
            ));
        }
    }
    Ok(())
}

fn resolve_account(
    a: RawAccount,
    text: &str,
    shared: &[String],
    sender_owner: &mut HashMap<String, String>,
    free_owner: &mut HashMap<String, String>,
) -> std::result::Result<Account, String> {
    let id = a.id.trim().to_string();
    if id.is_empty() {
        return Err("an account has an empty id".into());
    }
    let opt_in: Vec<String> = a
        .opt_in_keywords
        .unwrap_or_else(|| DEFAULT_OPT_IN.iter().map(|s| s.to_string()).collect());
    let help: Vec<String> = a
        .help_keywords
        .unwrap_or_else(|| DEFAULT_HELP.iter().map(|s| s.to_string()).collect());
    check_keywords(&id, "opt-in", &opt_in)?;
    check_keywords(&id, "help", &help)?;
    for k in &opt_in {
        if help.iter().any(|h| keyword_key(h) == keyword_key(k)) {
            return Err(format!(
                "account '{id}': keyword '{k}' is both an opt-in and a help keyword"
            ));
        }
    }
    if let Some(free) = &a.free_keyword {
        let key = keyword_key(free);
        if key.is_empty() {
            return Err(format!(
                "account '{id}': free_keyword '{free}' has no letters or digits"
            ));
        }
        if let Some(other) = free_owner.insert(key, id.clone()) {
            return Err(format!(
                "accounts '{other}' and '{id}' have the same free_keyword '{free}' (free keywords must differ, ignoring case)"
            ));
        }
    }
    let mut senders = Vec::new();
    let mut sender_index = HashMap::new();
    for s in a.senders {
        let sid = parse_config_sender(s.id.get_ref())
            .map_err(|why| format!("{}account '{id}': sender id {why}", at_line(text, s.id.span())))?;
        if shared.contains(&sid) {
            return Err(format!("account '{id}': sender {sid} is also a shared number"));
        }
        if let Some(other) = sender_owner.insert(sid.clone(), id.clone()) {
            return Err(if other == id {
                format!("account '{id}': sender {sid} is listed twice")
            } else {
                format!("sender {sid} is in two accounts: '{other}' and '{id}'")
            });
        }
        check_keywords(&id, "opt-out", &s.keywords)?;
        let mut opt_out: Vec<String> = DEFAULT_OPT_OUT.iter().map(|s| s.to_string()).collect();
        opt_out.extend(s.keywords.iter().cloned());
        for p in &s.packs {
            opt_out.extend(p.keywords().iter().map(|s| s.to_string()));
        }
        let mut all_out = opt_out.clone();
        all_out.extend(a.free_keyword.iter().cloned());
        for k in &all_out {
            let key = keyword_key(k);
            let class = if opt_in.iter().any(|x| keyword_key(x) == key) {
                Some("opt-in")
            } else if help.iter().any(|x| keyword_key(x) == key) {
                Some("help")
            } else {
                None
            };
            if let Some(class) = class {
                return Err(format!(
                    "account '{id}', sender {sid}: keyword '{k}' is both an opt-out and an {class} keyword"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        opt_out.retain(|k| seen.insert(keyword_key(k)));
        sender_index.insert(sid.clone(), senders.len());
        senders.push(Sender {
            id: sid,
            opt_out_keywords: opt_out,
            account_level: s.account_level,
            reply: s.reply,
            resubscribe_reply: s.resubscribe_reply,
        });
    }
    let default_country = a
        .default_country
        .as_deref()
        .map(|c| {
            crate::phone::DefaultCountry::parse(c).ok_or_else(|| {
                format!("account '{id}': default_country '{c}' is not an ISO 3166 alpha-2 country code (like GB or US)")
            })
        })
        .transpose()?;
    Ok(Account {
        id,
        free_keyword: a.free_keyword,
        default_country,
        match_mode: a.match_mode,
        opt_in_keywords: opt_in,
        help_keywords: help,
        help_reply: a.help_reply,
        reply: a.reply,
        senders,
        sender_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[shared_numbers]]
number = "+447860009000"

[[accounts]]
id = "acme"
free_keyword = "szWbhSTOP"
match = "leading"

  [[accounts.senders]]
  id = "447860009123"
  keywords = ["END", "CANCEL"]
  packs = ["us-fcc"]

[[accounts]]
id = "beta"
free_keyword = "btSTOP"
  [[accounts.senders]]
  id = "wa:beta"
  account_level = true
"#;

    #[test]
    fn parses_and_normalizes() {
        let c = Config::parse(GOOD).expect("config");
        let acme = c.account("acme").expect("acme");
        assert!(acme.sender("+447860009123").is_some());
        assert_eq!(acme.match_mode, MatchMode::Leading);
        assert!(
            c.account("beta")
                .and_then(|b| b.sender("wa:beta"))
                .map(|s| s.account_level)
                == Some(true)
        );
    }

    #[test]
    fn rejects_ambiguity() {
        let two = GOOD.replace("wa:beta", "+44 7860 009123");
        let e = Config::parse(&two).err().unwrap_or_default();
        assert_eq!(e, "sender +447860009123 is in two accounts: 'acme' and 'beta'");
        let free = GOOD.replace("btSTOP", "SZWBHstop");
        let e = Config::parse(&free).err().unwrap_or_default();
        assert!(e.contains("same free_keyword"), "{e}");
        let class = GOOD.replace("\"END\", \"CANCEL\"", "\"START\"");
        let e = Config::parse(&class).err().unwrap_or_default();
        assert!(
            e.contains("keyword 'START' is both an opt-out and an opt-in keyword"),
            "{e}"
        );
        let mode = GOOD.replace("match = \"leading\"", "match = \"fuzzy\"");
        assert!(Config::parse(&mode).is_err());
        let pack = GOOD.replace("us-fcc", "fr");
        assert!(Config::parse(&pack).is_err());
    }
}
