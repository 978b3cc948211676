//! Keyword matching of inbound replies (SPEC §3.1).
//!
//! A body is normalized (NFKC, accents removed, lower case; ASCII bodies
//! take a fast path with no Unicode tables) and cut into words: runs of
//! letters and digits. Everything else separates words, so leading and
//! trailing punctuation, symbols and emoji fall away. A keyword may span
//! several words when only spaces and hyphens lie between them, so `OPT
//! OUT`, `opt-out` and `OPTOUT` are one keyword. Match modes then decide
//! where a keyword may stand: the whole body (`exact`), the first words
//! (`leading`), or anywhere (`contains`).

use std::sync::Arc;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::config::{Config, MatchMode};
use crate::keywords::{keyword_key, Pack, DEFAULT_OPT_OUT};
use crate::util::fasthash::FastMap;

/// The class of a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Opt-out (wins over the others).
    OptOut,
    /// Opt-in.
    OptIn,
    /// Help.
    Help,
}

/// One keyword a sender answers.
#[derive(Clone, Debug)]
pub struct Keyword {
    /// Its class.
    pub class: Class,
    /// As written in the config (or the default list).
    pub text: Arc<str>,
    /// For an account's free keyword: that account (its index in the
    /// config).
    pub free: Option<usize>,
}

/// Keywords by normal form, for one sender (or one shared number).
#[derive(Clone, Debug, Default)]
pub struct Table {
    map: FastMap<String, Keyword>,
    longest: usize,
}

impl Table {
    fn add(&mut self, text: &str, class: Class, free: Option<usize>) {
        let key = keyword_key(text);
        self.longest = self.longest.max(key.len());
        // config validation rules out one key in two classes; keep the first
        self.map.entry(key).or_insert(Keyword {
            class,
            text: text.into(),
            free,
        });
    }

    /// The keyword with this normal form.
    pub fn get(&self, key: &str) -> Option<&Keyword> {
        self.map.get(key)
    }
}

/// A normalized body cut into words; reused between messages so that the
/// hot path does not allocate.
#[derive(Default, Debug)]
pub struct Words {
    text: String,
    /// (start, end, may join the next word) per word, in `text`.
    words: Vec<(u32, u32, bool)>,
    key: String,
}

impl Words {
    /// Normalize and cut `body`.
    pub fn cut(&mut self, body: &str) {
        self.text.clear();
        self.words.clear();
        if body.is_ascii() {
            self.text.push_str(body);
            self.text.make_ascii_lowercase();
        } else {
            for c in body
                .nfkc()
                .collect::<String>()
                .nfd()
                .filter(|c| !is_combining_mark(*c))
            {
                self.text.extend(c.to_lowercase());
            }
        }
        let mut start: Option<usize> = None;
        let mut joinable = true;
        for (i, c) in self.text.char_indices() {
            if c.is_alphanumeric() {
                if start.is_none() {
                    if let Some(last) = self.words.last_mut() {
                        last.2 = joinable;
                    }
                    start = Some(i);
                }
            } else {
                if let Some(s) = start.take() {
                    self.words.push((s as u32, i as u32, false));
                    joinable = true;
                }
                if !(c.is_whitespace()
                    || matches!(c, '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}'))
                {
                    joinable = false;
                }
            }
        }
        if let Some(s) = start {
            self.words.push((s as u32, self.text.len() as u32, false));
        }
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when the body has no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Every keyword of `table` found under `mode`, with the class filter,
    /// calling `found` for each (word position, keyword).
    fn scan<'t>(&mut self, table: &'t Table, mode: MatchMode, mut found: impl FnMut(usize, &'t Keyword)) {
        let n = self.words.len();
        let starts = match mode {
            MatchMode::Exact | MatchMode::Leading => n.min(1),
            MatchMode::Contains => n,
        };
        for i in 0..starts {
            self.key.clear();
            for j in i..n {
                let (s, e, join) = self.words[j];
                self.key.push_str(&self.text[s as usize..e as usize]);
                if self.key.len() > table.longest {
                    break;
                }
                let whole = i == 0 && j == n - 1;
                if mode != MatchMode::Exact || whole {
                    if let Some(k) = table.get(&self.key) {
                        found(i, k);
                    }
                }
                if !join {
                    break;
                }
            }
        }
    }

    /// The winning keyword of `table` under `mode`: opt-out over opt-in
    /// over help; the earliest in the body within a class.
    pub fn best<'t>(&mut self, table: &'t Table, mode: MatchMode) -> Option<&'t Keyword> {
        let mut best: Option<&Keyword> = None;
        self.scan(table, mode, |_, k| {
            if best.is_none_or(|b| k.class < b.class) {
                best = Some(k);
            }
        });
        best
    }

    /// An opt-out keyword anywhere in the body as a whole word (for the
    /// review of near misses).
    pub fn any_opt_out<'t>(&mut self, table: &'t Table) -> Option<&'t Keyword> {
        let mut hit = None;
        self.scan(table, MatchMode::Contains, |_, k| {
            if hit.is_none() && k.class == Class::OptOut {
                hit = Some(k);
            }
        });
        hit
    }
}

/// Keyword tables for every sender and shared number of a config.
#[derive(Debug)]
pub struct Matcher {
    /// Per account, per sender (config order).
    pub senders: Vec<Vec<Table>>,
    /// Free keywords of every account, for shared numbers (each names its
    /// account).
    pub shared: Table,
    /// The plain opt-out words (defaults and every pack), to spot an
    /// opt-out at a shared number that names no account.
    pub plain: Table,
}

impl Matcher {
    /// Build the tables.
    pub fn new(config: &Config) -> Matcher {
        let mut senders = Vec::new();
        let mut shared = Table::default();
        for (ai, a) in config.accounts.iter().enumerate() {
            let mut tables = Vec::new();
            for s in &a.senders {
                let mut t = Table::default();
                for k in &s.opt_out_keywords {
                    t.add(k, Class::OptOut, None);
                }
                if let Some(f) = &a.free_keyword {
                    t.add(f, Class::OptOut, Some(ai));
                }
                for k in &a.opt_in_keywords {
                    t.add(k, Class::OptIn, None);
                }
                for k in &a.help_keywords {
                    t.add(k, Class::Help, None);
                }
                tables.push(t);
            }
            senders.push(tables);
            if let Some(f) = &a.free_keyword {
                shared.add(f, Class::OptOut, Some(ai));
            }
        }
        let mut plain = Table::default();
        for k in DEFAULT_OPT_OUT {
            plain.add(k, Class::OptOut, None);
        }
        for p in [Pack::UsFcc, Pack::Ca, Pack::Es, Pack::Pt] {
            for k in p.keywords() {
                plain.add(k, Class::OptOut, None);
            }
        }
        Matcher {
            senders,
            shared,
            plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(mode: &str, packs: &str) -> Config {
        let text = format!(
            "[[accounts]]\nid = \"a\"\nfree_keyword = \"szWbhSTOP\"\nmatch = \"{mode}\"\n  [[accounts.senders]]\n  id = \"+447860009123\"\n  keywords = [\"END\", \"CANCEL\"]\n  packs = [{packs}]\n"
        );
        Config::parse(&text).expect("config")
    }

    fn decide(mode: &str, packs: &str, body: &str) -> String {
        let c = config(mode, packs);
        let m = Matcher::new(&c);
        let mode = c.accounts[0].match_mode;
        let table = &m.senders[0][0];
        let mut w = Words::default();
        w.cut(body);
        match w.best(table, mode) {
            Some(k) => format!("{:?}:{}", k.class, k.text),
            None => match w.any_opt_out(table) {
                Some(k) => format!("review:{}", k.text),
                None => "none".into(),
            },
        }
    }

    #[test]
    fn spec_examples() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // mode, packs, body, decision
            ("leading", "", "Stop!!", "OptOut:STOP"),
            ("leading", "", "\"stop\".", "OptOut:STOP"),
            ("leading", "", "STOP 🙏", "OptOut:STOP"),
            ("leading", "", "ＳＴＯＰ", "OptOut:STOP"),
            ("exact", "", "ＳＴＯＰ", "OptOut:STOP"),
            ("exact", "", "Stop!!", "OptOut:STOP"),
            ("exact", "\"ca\"", "ARRÊT", "OptOut:ARRET"),
            ("leading", "", "ARRÊT", "none"),
            ("leading", "\"us-fcc\"", "OPT-OUT", "OptOut:OPT OUT"),
            ("leading", "\"us-fcc\"", "opt out please", "OptOut:OPT OUT"),
            ("leading", "\"us-fcc\"", "OptOut", "OptOut:OPT OUT"),
            ("leading", "", "OPT-OUT", "none"),
            ("leading", "", "Stop. Thank you", "OptOut:STOP"),
            ("exact", "", "Stop. Thank you", "review:STOP"),
            ("leading", "", "Stopping by later", "none"),
            ("contains", "", "Stopping by later", "none"),
            ("leading", "", "please stop texting me", "review:STOP"),
            ("contains", "", "please stop texting me", "OptOut:STOP"),
            ("exact", "", "please stop texting me", "review:STOP"),
            ("leading", "", "unsubscribe", "OptOut:UNSUBSCRIBE"),
            ("leading", "", "End", "OptOut:END"),
            ("leading", "", "start", "OptIn:START"),
            ("leading", "", "UNSTOP", "OptIn:UNSTOP"),
            ("leading", "", "help me", "Help:HELP"),
            ("exact", "", "help me", "none"),
            ("contains", "", "start stop", "OptOut:STOP"),
            ("leading", "", "start stop", "OptIn:START"),
            ("leading", "", "szwbhstop", "OptOut:szWbhSTOP"),
            ("leading", "", "", "none"),
            ("leading", "", "🙏🙏", "none"),
            ("leading", "", "stop_it", "OptOut:STOP"),
            ("contains", "", "opt, out", "none"),
        ];
        for (mode, packs, body, want) in cases {
            assert_eq!(decide(mode, packs, body), *want, "{mode} {packs} {body:?}");
        }
    }
}
