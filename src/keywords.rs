//! Keywords: the default classes, the optional packs, and the normal form
//! used to compare a keyword with another (SPEC §3.1).
//!
//! The normal form of a keyword is its NFKC form, accents removed, case
//! folded, with everything but letters and digits dropped: `OPT OUT`,
//! `opt-out` and `OPTOUT` are one keyword, and so are `ARRÊT` and `arret`.

use serde::Deserialize;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Opt-out keywords every sender answers; they cannot be removed.
pub const DEFAULT_OPT_OUT: &[&str] = &["STOP", "UNSUBSCRIBE"];
/// Opt-in keywords when an account names none.
pub const DEFAULT_OPT_IN: &[&str] = &["START", "UNSTOP"];
/// Help keywords when an account names none.
pub const DEFAULT_HELP: &[&str] = &["HELP", "INFO"];

/// An optional keyword pack a sender can switch on (SPEC §3.1).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Pack {
    /// The US FCC revocation words.
    #[serde(rename = "us-fcc")]
    UsFcc,
    /// Canada: adds ARRET.
    #[serde(rename = "ca")]
    Ca,
    /// Spanish.
    #[serde(rename = "es")]
    Es,
    /// Portuguese.
    #[serde(rename = "pt")]
    Pt,
}

impl Pack {
    /// The opt-out keywords this pack adds.
    pub fn keywords(self) -> &'static [&'static str] {
        match self {
            Pack::UsFcc => &[
                "STOP",
                "QUIT",
                "END",
                "REVOKE",
                "OPT OUT",
                "CANCEL",
                "UNSUBSCRIBE",
            ],
            Pack::Ca => &["ARRET"],
            Pack::Es => &["BAJA", "DETENER", "SALIR", "CANCELAR"],
            Pack::Pt => &["PARAR", "CANCELAR", "SAIR"],
        }
    }
}

/// The normal form of a keyword: NFKC, accents removed, lower case, letters
/// and digits only.
pub fn keyword_key(keyword: &str) -> String {
    // ASCII is its own NFKC and NFD form, with no marks: the same result
    // without the Unicode tables (a config of a hundred senders resolves
    // thousands of keywords, and every command reads the config)
    if keyword.is_ascii() {
        return keyword
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    unicode_key(keyword)
}

/// [`keyword_key`] through the Unicode tables, for any text.
fn unicode_key(keyword: &str) -> String {
    keyword
        .nfkc()
        .collect::<String>()
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_forms_are_one() {
        assert_eq!(keyword_key("OPT OUT"), "optout");
        assert_eq!(keyword_key("opt-out"), "optout");
        assert_eq!(keyword_key("ARRÊT"), "arret");
        assert_eq!(keyword_key("ＳＴＯＰ"), "stop");
        assert_eq!(keyword_key("szWbhSTOP"), "szwbhstop");
    }

    #[test]
    fn the_ascii_path_is_the_unicode_path() {
        let all: String = (0u8..128).map(char::from).collect();
        for k in [all.as_str(), "OPT OUT", "Stop-2_x", " \t\nEND!", ""] {
            assert_eq!(keyword_key(k), unicode_key(k), "{k:?}");
        }
    }
}
