//! Provider signals: a send log's opt-out codes and carrier deactivations
//! become opt-outs; everything else is passed over or rejected with a
//! reason, and ingesting twice is ingesting once.

use serde_json::Value;

use crate::common::Work;

/// A send log in the shape the providers' exports flatten to, with one
/// row per case (documented codes: Twilio 21610, Telnyx 40300, Plivo 200,
/// Vonage DLR err-code 9, AWS messageStatus OPTED_OUT).
const SEND_LOG: &str = "\
message_id,provider,error_code,from,to,sent_at,account_id
SM1,twilio,21610,+14155550100,+14155551001,2026-11-01T10:00:00Z,
SM2,twilio,30003,+14155550100,+14155551002,2026-11-01T10:00:01Z,
SM3,twilio,,+14155550100,+14155551003,2026-11-01T10:00:02Z,
SM4,Telnyx,40300,name:ACME,+447700900111,2026-11-01T10:00:03Z,
SM5,plivo,200,+19999999999,+14155551005,2026-11-01T10:00:04Z,
SM6,sinch,123,+447860009123,+447700900116,2026-11-01T10:00:05Z,
SM7,aws,opted_out,+447860009000,+447700900117,2026-11-01T10:00:06Z,
SM8,aws,OPTED_OUT,+447860009000,+447700900118,2026-11-01T10:00:07Z,acme
SM9,vonage,9,+447860009123,+447700900119,2026-11-01T10:00:08Z,
SM10,plivo,200,+447860009123,+447700900120,2026-11-01T10:00:09Z,globex
SM11,twilio,21610,+14155550100,not a number,2026-11-01T10:00:10Z,
";

fn check(w: &Work, store: &str, account: &str, sender: Option<&str>, phone: &str) -> Value {
    let mut args = vec!["check", "--store", store, "--account", account];
    if let Some(s) = sender {
        args.extend(["--sender", s]);
    }
    args.extend([phone, "--json"]);
    serde_json::from_str(&w.ok(&args)).unwrap()
}

#[test]
fn a_send_log_turns_opt_out_codes_into_opt_outs() {
    let w = Work::new();
    let store = w.example_store();
    let log = w.write("sends.csv", SEND_LOG);
    let summary = w.p("summary.json");
    let rejects = w.p("rejects.csv");
    let err = w.ok_stderr(&[
        "ingest",
        "signals",
        "--store",
        &store,
        &log,
        "--rejects",
        &rejects,
        "--summary",
        &summary,
    ]);
    assert!(err.contains("4 opt-outs read, 4 new"), "{err}");
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["new_events"], 4, "{s}");
    assert_eq!(s["not_signals"], 2, "{s}");
    assert_eq!(s["rejected"], 5, "{s}");
    assert_eq!(
        s["new_by_source_and_scope"]["opt_out"]["provider"]["sender"], 2,
        "{s}"
    );
    assert_eq!(
        s["new_by_source_and_scope"]["opt_out"]["provider"]["account"], 2,
        "{s}"
    );

    // every reject names its row's problem, and no phone number
    let rj = w.read_csv("rejects.csv");
    let reasons: Vec<&str> = rj[1..].iter().map(|r| r[1].as_str()).collect();
    let want = [
        "the sender is not in the config",
        "no opt-out codes are known for provider 'sinch'",
        "shared number, which names no account",
        "the sender belongs to account 'acme'",
        "to is not a possible number",
    ];
    assert_eq!(reasons.len(), want.len(), "{rj:?}");
    for (got, want) in reasons.iter().zip(want) {
        assert!(got.contains(want), "{got} / {want}");
    }

    // a sender's code opts out of that sender only
    let v = check(&w, &store, "globex", Some("+14155550100"), "+14155551001");
    assert_eq!(v["sendable"], false, "{v}");
    assert_eq!(v["events"][0]["source"], "provider", "{v}");
    assert_eq!(v["events"][0]["keyword"], "twilio:21610", "{v}");
    // an account_level sender's code, and a shared number's, opt out of the account
    for phone in ["+447700900111", "+447700900118"] {
        let v = check(&w, &store, "acme", Some("+447860009123"), phone);
        assert_eq!(v["sendable"], false, "{phone}: {v}");
        assert_eq!(v["reason"], "account_opt_out", "{phone}: {v}");
    }
    let v = check(&w, &store, "acme", Some("+447860009123"), "+447700900119");
    assert_eq!(v["reason"], "sender_opt_out", "{v}");
    assert_eq!(v["events"][0]["keyword"], "vonage:9", "{v}");
    let v = check(&w, &store, "acme", Some("wa:acme"), "+447700900119");
    assert_eq!(v["sendable"], true, "{v}");
    // a code that is not an opt-out changes nothing
    let v = check(&w, &store, "globex", Some("+14155550100"), "+14155551002");
    assert_eq!(v["sendable"], true, "{v}");

    // the same log again adds nothing
    let err = w.ok_stderr(&["ingest", "signals", "--store", &store, &log]);
    assert!(err.contains("0 new, 4 already in the store"), "{err}");
}

#[test]
fn the_config_adds_codes_and_switches_built_in_ones_off() {
    let w = Work::new();
    let config = w.copy_example("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[signals]]\nprovider = \"sinch\"\ncode = 123\nmeaning = \"opt_out\"\n\n\
         [[signals]]\nprovider = \"twilio\"\ncode = \"21610\"\nmeaning = \"ignore\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &config]);
    let log = w.write("sends.csv", SEND_LOG);
    w.ok_stderr(&["ingest", "signals", "--store", &store, &log]);
    let v = check(&w, &store, "acme", Some("+447860009123"), "+447700900116");
    assert_eq!(v["sendable"], false, "{v}");
    assert_eq!(v["events"][0]["keyword"], "sinch:123", "{v}");
    let v = check(&w, &store, "globex", Some("+14155550100"), "+14155551001");
    assert_eq!(v["sendable"], true, "{v}");

    let bad = w.write(
        "bad.toml",
        &format!(
            "{}\n[[signals]]\nprovider = \"x\"\ncode = \"1\"\nmeaning = \"maybe\"\n",
            std::fs::read_to_string(w.copy_example("config.toml")).unwrap()
        ),
    );
    let e = w.fails(&["init", "--store", &w.p("store2"), "--config", &bad], 1);
    assert!(e.contains("maybe") && e.contains("line"), "{e}");
}

#[test]
fn a_send_log_without_providers_needs_the_flag() {
    let w = Work::new();
    let store = w.example_store();
    let log = w.write(
        "sends.csv",
        "MessageSid,ErrorCode,From,To,DateSent\nSM1,21610,+14155550100,+14155551001,2026-11-01T10:00:00Z\n",
    );
    let flags = [
        "--id-column",
        "MessageSid",
        "--code-column",
        "ErrorCode",
        "--from-column",
        "From",
        "--to-column",
        "To",
        "--time-column",
        "DateSent",
    ];
    let mut args = vec!["ingest", "signals", "--store", &store, &log];
    args.extend(flags);
    let e = w.fails(&args, 1);
    assert!(e.contains("--provider") && e.contains("twilio"), "{e}");
    args.extend(["--provider", "twilio"]);
    w.ok_stderr(&args);
    let v = check(&w, &store, "globex", Some("+14155550100"), "+14155551001");
    assert_eq!(v["sendable"], false, "{v}");
}

#[test]
fn a_deactivated_number_is_opted_out_of_every_account_until_its_new_owner_opts_in() {
    let w = Work::new();
    let store = w.example_store();
    let file = w.write(
        "deactivated.csv",
        "phone,deactivated_at\n+447700900301,2026-11-01T00:00:00Z\n+14155550301,2026-11-01T00:00:00Z\nnope,2026-11-01T00:00:00Z\n",
    );
    let err = w.ok_stderr(&[
        "ingest",
        "signals",
        "--kind",
        "deactivations",
        "--store",
        &store,
        &file,
    ]);
    // two numbers, two accounts each; one row rejected
    assert!(err.contains("4 opt-outs read, 4 new"), "{err}");
    assert!(err.contains("1 row"), "{err}");
    for account in ["acme", "globex"] {
        let v = check(&w, &store, account, None, "+447700900301");
        assert_eq!(v["sendable"], false, "{account}: {v}");
        assert_eq!(v["reason"], "account_opt_out", "{account}: {v}");
        assert_eq!(v["events"][0]["source"], "deactivated", "{v}");
    }
    // the number's new owner opts in to acme afterwards (at its
    // account-level sender: an account-wide opt-out needs an account-wide
    // opt-in)
    let replies = w.write(
        "replies.csv",
        "message_id,received_at,from,to,body\nR1,2026-11-02T09:00:00Z,+447700900301,name:ACME,START\n",
    );
    w.ok_stderr(&["ingest", "replies", "--store", &store, &replies]);
    let v = check(&w, &store, "acme", Some("+447860009123"), "+447700900301");
    assert_eq!(v["sendable"], true, "{v}");
    let v = check(&w, &store, "globex", None, "+447700900301");
    assert_eq!(v["sendable"], false, "{v}");

    // a file naming its account opts out of that account only
    let one = w.write(
        "one.csv",
        "phone,deactivated_at,account_id\n+14155550302,2026-11-01T00:00:00Z,globex\n",
    );
    w.ok_stderr(&[
        "ingest",
        "signals",
        "--kind",
        "deactivations",
        "--store",
        &store,
        &one,
    ]);
    assert_eq!(
        check(&w, &store, "globex", None, "+14155550302")["sendable"],
        false
    );
    assert_eq!(check(&w, &store, "acme", None, "+14155550302")["sendable"], true);
    // and export shows where they came from
    w.ok(&["export", "--store", &store, "--output", &w.p("all.csv")]);
    let all = w.read_csv("all.csv");
    let header = &all[0];
    let source = header.iter().position(|c| c == "source").unwrap();
    assert_eq!(
        all[1..].iter().filter(|r| r[source] == "deactivated").count(),
        4,
        "{all:?}"
    );
}

/// A `user_preferences` webhook body in the shape Meta documents
/// (entry[].changes[].value.user_preferences[]).
fn webhook(display: &str, wa_id: &str, value: &str, ts: u64) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": display, "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": wa_id}],
                    "user_preferences": [{
                        "wa_id": wa_id,
                        "detail": "User requested to stop marketing messages",
                        "category": "marketing_messages",
                        "value": value,
                        "timestamp": ts
                    }]
                },
                "field": "user_preferences"
            }]
        }]
    })
    .to_string()
}

#[test]
fn whatsapp_stops_and_resumes_become_opt_outs_and_opt_ins_of_the_profile() {
    let w = Work::new();
    let store = w.example_store();
    // a message webhook in the same stream is not a preference: passed over
    let other = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","messages":[]},"field":"messages"}]}]}"#;
    let lines = [
        webhook("15550783881", "447700900501", "stop", 1_762_000_000),
        webhook("15550783881", "447700900502", "stop", 1_762_000_100),
        other.to_string(),
        webhook("15550783881", "447700900501", "resume", 1_762_000_200),
        webhook("15550783881", "not-a-number", "stop", 1_762_000_300),
    ];
    let file = w.write("prefs.jsonl", &(lines.join("\n") + "\n"));
    // the demo config names its profile wa:acme, not by number
    let e = w.fails(
        &[
            "ingest", "signals", "--kind", "whatsapp", "--store", &store, &file, "--strict",
        ],
        1,
    );
    assert!(e.contains("give --profile"), "{e}");
    let err = w.ok_stderr(&[
        "ingest",
        "signals",
        "--kind",
        "whatsapp",
        "--store",
        &store,
        &file,
        "--profile",
        "wa:acme",
    ]);
    assert!(err.contains("3 stops and resumes read, 3 new"), "{err}");
    let v = check(&w, &store, "acme", Some("wa:acme"), "+447700900502");
    assert_eq!(v["sendable"], false, "{v}");
    assert_eq!(v["events"][0]["source"], "whatsapp", "{v}");
    assert_eq!(v["events"][0]["keyword"], "marketing_messages", "{v}");
    assert_eq!(
        check(&w, &store, "acme", Some("+447860009123"), "+447700900502")["sendable"],
        true
    );
    // stopped, then resumed
    assert_eq!(
        check(&w, &store, "acme", Some("wa:acme"), "+447700900501")["sendable"],
        true
    );
    let err = w.ok_stderr(&[
        "ingest",
        "signals",
        "--kind",
        "whatsapp",
        "--store",
        &store,
        &file,
        "--profile",
        "wa:acme",
    ]);
    assert!(err.contains("0 new, 3 already"), "{err}");

    // flattened rows, the business number named in the config by its digits
    let config = w.copy_example("config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("id = \"wa:acme\"", "id = \"wa:15550783881\"");
    std::fs::write(&config, text).unwrap();
    let store2 = w.p("store2");
    w.ok(&["init", "--store", &store2, "--config", &config]);
    let rows = w.write(
        "prefs.csv",
        "wa_id,value,category,timestamp,display_phone_number\n\
         447700900601,stop,marketing_messages,1762000000,+1 555-078-3881\n\
         447700900602,maybe,marketing_messages,1762000000,+1 555-078-3881\n",
    );
    let err = w.ok_stderr(&[
        "ingest", "signals", "--kind", "whatsapp", "--store", &store2, &rows,
    ]);
    assert!(
        err.contains("1 stops and resumes read, 1 new") && err.contains("1 row"),
        "{err}"
    );
    assert_eq!(
        check(&w, &store2, "acme", Some("wa:15550783881"), "+447700900601")["sendable"],
        false
    );
    let one = w.write(
        "one.json",
        &webhook("15550783881", "447700900603", "stop", 1_762_000_000),
    );
    w.ok_stderr(&[
        "ingest", "signals", "--kind", "whatsapp", "--store", &store2, &one,
    ]);
    assert_eq!(
        check(&w, &store2, "acme", Some("wa:15550783881"), "+447700900603")["sendable"],
        false
    );
    // a line that is not JSON names its file and line
    let broken = w.write("broken.jsonl", &format!("{}\n{{not json\n", lines[0]));
    let e = w.fails(
        &[
            "ingest", "signals", "--kind", "whatsapp", "--store", &store2, &broken,
        ],
        1,
    );
    assert!(e.contains("broken.jsonl: line 2"), "{e}");
}
