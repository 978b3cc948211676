//! Phone numbers: SPEC §3.5 normalization to E.164, and sender ids (SPEC §2).
//!
//! A contact is held as the integer value of its E.164 digits (country codes
//! never start with 0, so the digits read as a `u64` without loss). That is
//! the value stored in the roaring bitmaps.
//!
//! Whether a number is *possible* comes from libphonenumber's metadata (the
//! `phonenumber` crate): the possible national lengths of the main region of
//! each calling code, tested exactly as libphonenumber's `isPossibleNumber`
//! does. Input already in E.164 takes a fast path over its bytes that never
//! allocates; only national formats (with `--default-country`) go through
//! the crate's full parser, which costs ~12 µs a number.

use phonenumber::country;

/// Most digits an E.164 number may have.
const E164_MAX_DIGITS: usize = 15;

/// Possible national-number lengths per calling code, as a bit mask.
/// libphonenumber also has lengths possible only for local dialling (a
/// UK number without its area code); an E.164 number is dialled
/// internationally, so those never make one possible (SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CallingCode {
    possible: u32,
}

/// libphonenumber's possible lengths, generated from the `phonenumber`
/// crate's metadata by the test `lengths_match_the_metadata` (loading that
/// metadata costs ~50 ms a process; this table costs nothing).
mod lengths {
    include!("lengths.rs");
}

/// The table of calling codes, indexed by code (1..=999).
static CODES: [Option<CallingCode>; 1000] = {
    let mut t = [None; 1000];
    let mut i = 0;
    while i < lengths::CODES.len() {
        let (code, possible, _local_only) = lengths::CODES[i];
        t[code as usize] = Some(CallingCode { possible });
        i += 1;
    }
    t
};

/// The table as libphonenumber's metadata gives it: per calling code, the
/// main region's possible lengths over every number type.
/// Per calling code: (code, possible lengths, local-only lengths).
#[cfg(test)]
fn codes_from_metadata() -> Vec<(u16, u32, u32)> {
    let db = &*phonenumber::metadata::DATABASE;
    let mut out = Vec::new();
    for code in 1..1000u16 {
        let Some(metas) = db.by_code(&code) else {
            continue;
        };
        let main = metas
            .iter()
            .find(|m| m.is_main_country_for_code())
            .or(metas.first());
        let Some(meta) = main else { continue };
        // libphonenumber's general description holds the union of the
        // number types' lengths; this crate leaves it empty, so rebuild it.
        let d = meta.descriptors();
        let types = [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        let mask = |lens: &[u16]| lens.iter().filter(|&&l| l < 32).fold(0u32, |m, &l| m | 1 << l);
        let mut possible = 0;
        let mut local_only = 0;
        for t in types.into_iter().flatten() {
            possible |= mask(t.possible_length());
            local_only |= mask(t.possible_local_length());
        }
        out.push((code, possible, local_only & !possible));
    }
    out
}

/// A validated `--default-country` (ISO 3166 alpha-2).
#[derive(Clone, Copy, Debug)]
pub struct DefaultCountry(country::Id);

/// Parse `--default-country` (`default_country=` in Python): an ISO 3166
/// alpha-2 code, or a usage error saying so.
pub fn parse_country(code: Option<&str>) -> crate::error::Result<Option<DefaultCountry>> {
    code.map(|c| {
        DefaultCountry::parse(c).ok_or_else(|| {
            crate::error::Error::Usage(format!(
                "--default-country '{c}' is not an ISO 3166 alpha-2 country code (like GB or US)"
            ))
        })
    })
    .transpose()
}

impl DefaultCountry {
    /// Its ISO 3166 alpha-2 code.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// Parse an ISO 3166 alpha-2 code that libphonenumber knows.
    pub fn parse(code: &str) -> Option<DefaultCountry> {
        let upper = code.trim().to_ascii_uppercase();
        let id: country::Id = upper.parse().ok()?;
        phonenumber::metadata::DATABASE.by_id(upper.as_str())?;
        Some(DefaultCountry(id))
    }
}

/// Number of decimal digits in `v` (v > 0).
fn digit_count(mut v: u64) -> u32 {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Is the E.164 number with these digits possible, per libphonenumber's
/// `isPossibleNumber` for international dialling (IS_POSSIBLE; a
/// local-only length is not enough)?
fn is_possible(e164: u64, total_digits: u32) -> bool {
    for cc_len in 1..=3u32 {
        if total_digits <= cc_len {
            return false;
        }
        let cc = (e164 / 10u64.pow(total_digits - cc_len)) as usize;
        if let Some(Some(code)) = CODES.get(cc) {
            let national = total_digits - cc_len;
            return possible_length(code, national);
        }
    }
    false
}

/// libphonenumber's `testNumberLength` for the general description,
/// local-only lengths excluded.
fn possible_length(code: &CallingCode, len: u32) -> bool {
    len < 32 && code.possible & (1u32 << len) != 0
}

/// Read ASCII digits into a number; `None` if empty, too long, or not digits.
fn digits_value(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > E164_MAX_DIGITS || digits[0] == b'0' {
        return None;
    }
    let mut v = 0u64;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// An international reading of these digits, if it is a possible number:
/// [`is_possible`] with the calling code read from the digits themselves
/// (no division per row).
fn international(digits: &[u8]) -> Option<u64> {
    let v = digits_value(digits)?;
    let mut cc = 0usize;
    for (len, &d) in digits.iter().take(3).enumerate() {
        cc = cc * 10 + usize::from(d - b'0');
        let national = digits.len() - len - 1;
        if national == 0 {
            return None;
        }
        if let Some(Some(code)) = CODES.get(cc) {
            return possible_length(code, national as u32).then_some(v);
        }
    }
    None
}

/// Normalize a contact phone number to its E.164 digits (SPEC §3.5).
///
/// Returns `None` when the value is not a possible number.
pub fn normalize(raw: &str, default: Option<DefaultCountry>) -> Option<u64> {
    let bytes = raw.as_bytes();
    // Fast path: "+" and digits only, the form well-kept lists use.
    if bytes.len() > 1 && bytes[0] == b'+' && bytes[1..].iter().all(u8::is_ascii_digit) {
        return international(&bytes[1..]);
    }
    normalize_slow(raw, default)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn normalize_slow(raw: &str, default: Option<DefaultCountry>) -> Option<u64> {
    let mut s = raw.trim();
    for prefix in ["tel:", "whatsapp:"] {
        if let Some(rest) = strip_prefix_ci(s, prefix) {
            s = rest.trim_start();
            break;
        }
    }
    // `+44 (0)7700 900202`: the national trunk 0 in brackets is not dialled
    // from abroad
    let without_trunk;
    if (s.starts_with('+') || s.starts_with("00")) && s.contains("(0)") {
        without_trunk = s.replacen("(0)", "", 1);
        s = &without_trunk;
    }
    let mut digits = [0u8; 24];
    let mut n = 0usize;
    let mut plus = false;
    for c in s.chars() {
        match c {
            '0'..='9' => {
                if n == digits.len() {
                    return None;
                }
                digits[n] = c as u8;
                n += 1;
            }
            '+' if n == 0 && !plus => plus = true,
            ' ' | '\t' | '\u{a0}' | '.' | '-' | '(' | ')' | '[' | ']' => {}
            _ => return None,
        }
    }
    let digits = &digits[..n];
    if plus {
        return international(digits);
    }
    if let Some(rest) = digits.strip_prefix(b"00") {
        return international(rest);
    }
    if let Some(country) = default {
        if let Some(v) = national(digits, country) {
            return Some(v);
        }
    }
    international(digits)
}

/// A national reading of `digits` in `country`, if that is a possible number.
fn national(digits: &[u8], country: DefaultCountry) -> Option<u64> {
    let text = std::str::from_utf8(digits).ok()?;
    let parsed = phonenumber::parse(Some(country.0), text).ok()?;
    let cc = u64::from(parsed.code().value());
    let nat = parsed.national();
    let zeros = u32::from(nat.zeros());
    let value = nat.value();
    let nat_len = zeros + if value == 0 { 0 } else { digit_count(value) };
    let cc_len = digit_count(cc);
    let total = cc_len + nat_len;
    if nat_len == 0 || total as usize > E164_MAX_DIGITS {
        return None;
    }
    let e164 = cc * 10u64.pow(nat_len) + value;
    is_possible(e164, total).then_some(e164)
}

/// Format E.164 digits as `+digits`.
pub fn format_e164(v: u64) -> String {
    let mut buf = [0u8; E164_BUF];
    String::from_utf8_lossy(e164_bytes(v, &mut buf)).into_owned()
}

/// The room [`e164_bytes`] needs.
pub const E164_BUF: usize = 24;

/// Contacts as a `+digits` text column, written straight into the array
/// (no `String` per row).
pub fn e164_array(contacts: impl Iterator<Item = u64>) -> arrow::array::StringArray {
    let (n, _) = contacts.size_hint();
    let mut b = arrow::array::StringBuilder::with_capacity(n, n * 13);
    let mut buf = [0u8; E164_BUF];
    for v in contacts {
        // only ASCII digits and '+' are written
        b.append_value(std::str::from_utf8(e164_bytes(v, &mut buf)).unwrap_or_default());
    }
    b.finish()
}

/// `+digits` of a contact, written into `buf` (`format!`
/// costs more than the rest of an export's row); an erased number's hash
/// as `erased:` and 16 hex digits.
pub fn e164_bytes(v: u64, buf: &mut [u8; E164_BUF]) -> &[u8] {
    if crate::store::erasure::is_erased(v) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let h = v & !crate::store::erasure::ERASED;
        buf[..7].copy_from_slice(b"erased:");
        for (i, b) in buf[7..23].iter_mut().enumerate() {
            *b = HEX[((h >> (60 - 4 * i)) & 0xf) as usize];
        }
        return &buf[..23];
    }
    // two digits at a time (itoa's table)
    let mut digits = itoa::Buffer::new();
    let d = digits.format(v).as_bytes();
    buf[0] = b'+';
    buf[1..=d.len()].copy_from_slice(d);
    &buf[..=d.len()]
}

/// The digits of a phone-like sender id, and whether it had a `+`
/// (separators removed); `None` when it has anything else.
fn sender_digits(s: &str) -> Option<(String, bool)> {
    let mut digits = String::with_capacity(s.len());
    let mut plus = false;
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some((digits, plus))
}

/// A prefixed sender id (`wa:`, `name:`, `short:`), prefix lower-cased;
/// `Some(None)` when the prefix is there but what follows is not valid.
fn prefixed_sender(s: &str) -> Option<Option<String>> {
    for prefix in ["wa:", "name:", "short:"] {
        if let Some(rest) = strip_prefix_ci(s, prefix) {
            let rest = rest.trim();
            let ok = !rest.is_empty() && (prefix != "short:" || rest.bytes().all(|b| b.is_ascii_digit()));
            return Some(ok.then(|| format!("{prefix}{rest}")));
        }
    }
    None
}

/// Normalize a sender id found in data (a reply's destination, a
/// recipient row's sender, a flag): `wa:<profile>`, `name:<text>` and
/// `short:<digits>` as written (prefix lower-cased); a possible number in
/// international form (`+`, `00`, or bare digits) becomes `+digits`; other
/// bare digits are a short code (`12345` is `short:12345`, never
/// `+12345`). Returns `None` for anything else, a national number
/// (leading 0) included.
pub fn normalize_sender(raw: &str) -> Option<String> {
    let s = raw.trim();
    if let Some(p) = prefixed_sender(s) {
        return p;
    }
    let (digits, plus) = sender_digits(s)?;
    let intl = |d: &str| international(d.as_bytes()).map(format_e164);
    if plus {
        return intl(&digits);
    }
    if let Some(rest) = digits.strip_prefix("00") {
        return intl(rest);
    }
    if digits.starts_with('0') {
        return None;
    }
    intl(&digits).or_else(|| (digits.len() <= SHORT_CODE_MAX_DIGITS).then(|| format!("short:{digits}")))
}

/// Most digits a short code has (they are 3 to 8 digits long worldwide).
const SHORT_CODE_MAX_DIGITS: usize = 8;

/// A sender id as a config writes it (SPEC §9): a possible number with `+`
/// (or as bare international digits), `wa:<profile>`, `name:<text>` or
/// `short:<digits>`. National forms and bare short codes are refused with
/// what to write instead, so that no id is silently misread.
pub fn parse_config_sender(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if let Some(p) = prefixed_sender(s) {
        return p
            .ok_or_else(|| format!("'{raw}' has nothing valid after its prefix (short: takes digits only)"));
    }
    let Some((digits, plus)) = sender_digits(s) else {
        return Err(format!(
            "'{raw}' is not an SMS number (+ and its country code), wa:<profile>, name:<text> or short:<digits>"
        ));
    };
    let intl = digits.strip_prefix("00").unwrap_or(&digits);
    if !plus && digits.starts_with('0') && !digits.starts_with("00") {
        return Err(format!(
            "'{raw}' looks like a national number; write it in international form, + and its country code (+33612345678, not 0612345678)"
        ));
    }
    match international(intl.as_bytes()) {
        Some(v) => Ok(format_e164(v)),
        None if plus || digits.starts_with("00") => Err(format!(
            "'{raw}' is not a possible phone number for international dialling; a short code is written short:<digits>"
        )),
        None => Err(format!(
            "'{raw}' is not a possible international number; write a short code as short:{digits}, and a phone number with + and its country code"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb() -> Option<DefaultCountry> {
        DefaultCountry::parse("GB")
    }

    /// Regenerate with `OPTSCRUB_REGENERATE=1 cargo test lengths_match`
    /// after upgrading the `phonenumber` crate.
    #[test]
    fn lengths_match_the_metadata() {
        let mut text = String::from(
            "// Generated by the test phone::tests::lengths_match_the_metadata from the\n\
             // `phonenumber` crate's metadata; do not edit.\n\
             /// (calling code, possible national lengths, local-only lengths) as bit masks.\n\
             pub(super) const CODES: &[(u16, u32, u32)] = &[\n",
        );
        for (code, possible, local_only) in codes_from_metadata() {
            text.push_str(&format!("    ({code}, {possible:#x}, {local_only:#x}),\n"));
        }
        text.push_str("];\n");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/phone/lengths.rs");
        if std::env::var_os("OPTSCRUB_REGENERATE").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        assert!(
            include_str!("lengths.rs") == text,
            "src/phone/lengths.rs is out of date: run OPTSCRUB_REGENERATE=1 cargo test lengths_match"
        );
    }

    #[test]
    fn international_agrees_with_is_possible() {
        let mut state = 11u64;
        let mut possible = 0;
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (state >> 60) as usize % 15;
            let digits: Vec<u8> = (0..len)
                .map(|i| b'0' + ((state >> (i * 4 % 56)) % 10) as u8)
                .collect();
            let want = digits_value(&digits).filter(|&v| is_possible(v, len as u32));
            assert_eq!(
                international(&digits),
                want,
                "{}",
                String::from_utf8_lossy(&digits)
            );
            possible += usize::from(want.is_some());
        }
        // the draw reaches both answers
        assert!(possible > 10_000, "{possible}");
    }

    #[test]
    fn e164_array_matches_format() {
        use arrow::array::Array;
        let v = [14155550123u64, 447700900123, 1];
        let a = e164_array(v.iter().copied());
        let got: Vec<&str> = (0..a.len()).map(|i| a.value(i)).collect();
        let want: Vec<String> = v.iter().map(|&x| format_e164(x)).collect();
        assert_eq!(got, want);
        assert_eq!(e164_array(std::iter::empty()).len(), 0);
    }

    #[test]
    fn accepted_forms() {
        let want = Some(447860009123);
        for raw in [
            "+447860009123",
            "447860009123",
            "+44 7860 009123",
            "0044 7860 009123",
            "+44 (7860) 009-123",
            "+44.7860.009.123",
            "tel:+447860009123",
            "whatsapp:+447860009123",
            "  +447860009123  ",
        ] {
            assert_eq!(normalize(raw, None), want, "{raw}");
        }
    }

    #[test]
    fn national_only_with_default_country() {
        assert_eq!(normalize("07860 009123", None), None);
        assert_eq!(normalize("07860 009123", gb()), Some(447860009123));
        assert_eq!(normalize("(415) 555-0134", None), None);
        let us = DefaultCountry::parse("us");
        assert_eq!(normalize("(415) 555-0134", us), Some(14155550134));
        // digits that are no possible national number read as international
        assert_eq!(normalize("447860009123", gb()), Some(447860009123));
    }

    #[test]
    fn rejected() {
        for raw in [
            "",
            "+",
            "abc",
            "+44 7860 0091234567",
            "+0447860009123",
            "12",
            "+999123456",
            "+44-7860-009123 ext 2",
        ] {
            assert_eq!(normalize(raw, None), None, "{raw}");
        }
    }

    #[test]
    fn senders() {
        assert_eq!(normalize_sender("447860009123").as_deref(), Some("+447860009123"));
        assert_eq!(
            normalize_sender("+44 7860 009123").as_deref(),
            Some("+447860009123")
        );
        assert_eq!(normalize_sender("wa:acme").as_deref(), Some("wa:acme"));
        assert_eq!(normalize_sender("NAME:Acme").as_deref(), Some("name:Acme"));
        assert_eq!(normalize_sender("acme"), None);
        assert_eq!(normalize_sender("wa:"), None);
        // a short code is never read as a calling code
        assert_eq!(normalize_sender("12345").as_deref(), Some("short:12345"));
        assert_eq!(normalize_sender("SHORT:12345").as_deref(), Some("short:12345"));
        assert_eq!(normalize_sender("short:12a"), None);
        assert_eq!(normalize_sender("+12345"), None);
        assert_eq!(normalize_sender("0612345678"), None);
        assert_eq!(normalize_sender("0033612345678").as_deref(), Some("+33612345678"));
    }

    #[test]
    fn config_senders_are_explicit() {
        assert_eq!(
            parse_config_sender("+33 6 12 34 56 78").as_deref(),
            Ok("+33612345678")
        );
        assert_eq!(
            parse_config_sender("447860009123").as_deref(),
            Ok("+447860009123")
        );
        assert_eq!(parse_config_sender("short:12345").as_deref(), Ok("short:12345"));
        assert_eq!(parse_config_sender("Name:ACME").as_deref(), Ok("name:ACME"));
        let e = parse_config_sender("0612345678").unwrap_err();
        assert!(e.contains("looks like a national number"), "{e}");
        let e = parse_config_sender("12345").unwrap_err();
        assert!(e.contains("write a short code as short:12345"), "{e}");
        let e = parse_config_sender("+447000").unwrap_err();
        assert!(e.contains("not a possible phone number"), "{e}");
        assert!(parse_config_sender("short:").is_err());
    }

    #[test]
    fn local_only_lengths_and_trunk_zero() {
        // +447000 is possible only for local dialling: not an E.164 number
        assert_eq!(normalize("+447000", None), None);
        assert_eq!(normalize("00447000", None), None);
        assert_eq!(normalize("+44 (0)7700 900202", None), Some(447700900202));
        assert_eq!(normalize("0044 (0)7700 900202", None), Some(447700900202));
    }

    #[test]
    fn default_country_codes() {
        assert!(DefaultCountry::parse("GB").is_some());
        assert!(DefaultCountry::parse("ZZ").is_none());
        assert!(DefaultCountry::parse("GBR").is_none());
    }
}
