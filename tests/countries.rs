//! Numbers from several countries in one list: each account reads national
//! numbers with its own `default_country` (or a row's country column), so a
//! French `06…` is never read as a UK number; a `+` number must have an
//! international length (`+447000` is local-only: invalid).

use crate::common;

use common::Work;

const CONFIG: &str = r#"
[[accounts]]
id = "fr"
default_country = "FR"
  [[accounts.senders]]
  id = "+33612345678"

[[accounts]]
id = "uk"
default_country = "gb"
  [[accounts.senders]]
  id = "+447860009123"

[[accounts]]
id = "plain"
  [[accounts.senders]]
  id = "+447860009124"
"#;

fn store(w: &Work) -> String {
    let config = w.write("c.toml", CONFIG);
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &config]);
    // national numbers in a webform are read with each account's country
    let wf = w.write(
        "wf.csv",
        "account_id,phone,submitted_at\n\
         fr,06 12 00 00 01,2026-11-20T08:00:00Z\n\
         uk,07700 900001,2026-11-20T08:00:00Z\n\
         plain,07700 900002,2026-11-20T08:00:00Z\n\
         uk,+447000,2026-11-20T08:00:00Z\n",
    );
    let e = w.ok_stderr(&[
        "ingest",
        "webform",
        "--store",
        &store,
        &wf,
        "--rejects",
        &w.p("rej.csv"),
    ]);
    assert!(e.contains("2 opt-outs read"), "{e}");
    let rejects: Vec<String> = w
        .read_csv("rej.csv")
        .into_iter()
        .map(|r| r[..2].join(","))
        .collect();
    assert_eq!(
        rejects,
        [
            "row,error",
            "3,phone is not a possible number",
            "4,phone is not a possible number"
        ]
    );
    store
}

#[test]
fn each_account_reads_national_numbers_in_its_own_country() {
    let w = Work::new();
    let store = store(&w);
    let list = w.write(
        "list.csv",
        "phone,account_id,sender,country\n\
         0612000001,fr,,\n\
         +33 6 12 00 00 01,uk,,\n\
         07700900001,uk,,\n\
         07700900003,uk,,\n\
         07700900004,plain,,\n\
         07700900004,plain,,GB\n\
         +447000,uk,,\n\
         +44 (0)7700 900005,uk,,\n",
    );
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &list,
        "--output",
        &w.p("k.csv"),
        "--suppressed",
        &w.p("s.csv"),
        "--country-column",
        "country",
    ]);
    let kept: Vec<String> = w
        .read_csv("k.csv")
        .into_iter()
        .map(|r| r[..2].join(","))
        .collect();
    assert_eq!(
        kept,
        [
            "phone,account_id",
            "+33 6 12 00 00 01,uk",
            "07700900003,uk",
            "07700900004,plain",
            "+44 (0)7700 900005,uk"
        ]
    );
    let sup: Vec<String> = w
        .read_csv("s.csv")
        .into_iter()
        .map(|r| format!("{},{}", r[0], r[4]))
        .collect();
    assert_eq!(
        sup,
        [
            "phone,reason",
            "0612000001,account_opt_out",
            "07700900001,account_opt_out",
            // 'plain' has no country: national only with the row's own
            "07700900004,invalid_phone",
            "+447000,invalid_phone",
        ]
    );
    // --default-country stands before the account's
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &list,
        "--output",
        &w.p("k2.csv"),
        "--default-country",
        "GB",
    ]);
    let kept: Vec<String> = w.read_csv("k2.csv").into_iter().map(|r| r[0].clone()).collect();
    assert!(
        kept.contains(&"0612000001".to_string()),
        "read as +44612000001: {kept:?}"
    );
}

#[test]
fn a_country_is_checked_in_the_config() {
    let w = Work::new();
    let config = w.write("c.toml", "[[accounts]]\nid = \"a\"\ndefault_country = \"XX\"\n");
    let e = w.fails(&["init", "--store", &w.p("s"), "--config", &config], 1);
    assert!(
        e.contains("account 'a': default_country 'XX' is not an ISO 3166 alpha-2 country code"),
        "{e}"
    );
}
