//! `optscrub lint`: the US and Canadian keyword rules, confirmations,
//! template instructions and common first words, as a table, as JSON,
//! and as an exit status under --strict.

use serde_json::Value;

use crate::common::Work;

const CONFIG: &str = r#"
[[shared_numbers]]
number = "+447860009000"

[[accounts]]
id = "us"
free_keyword = "usSTOP"
match = "exact"
help_reply = "Help: call us."
reply = "Unsubscribed."

  [[accounts.senders]]
  id = "+14155550100"        # San Francisco, no FCC pack
  reply = "Unsubscribed."

  [[accounts.senders]]
  id = "+14155550101"
  packs = ["us-fcc"]
  reply = "Unsubscribed."

[[accounts]]
id = "ca"
match = "leading"
help_keywords = ["HELP"]
help_reply = "Help."

  [[accounts.senders]]
  id = "+14165550100"        # Toronto
  keywords = ["END"]
  reply = "Unsubscribed."

  [[accounts.senders]]
  id = "+18005550100"        # toll-free: texts both countries
  packs = ["us-fcc", "ca"]
"#;

fn lint_json(w: &Work, extra: &[&str]) -> Vec<Value> {
    let config = w.p("config.toml");
    let mut args = vec!["lint", "--config", &config, "--json"];
    args.extend(extra);
    let v: Value = serde_json::from_str(&w.ok(&args)).unwrap();
    v.as_array().unwrap().clone()
}

fn rules(found: &[Value]) -> Vec<(String, String)> {
    found
        .iter()
        .map(|f| {
            let at = f["template"]
                .as_str()
                .or(f["sender"].as_str())
                .or(f["account"].as_str())
                .unwrap_or("");
            (f["rule"].as_str().unwrap().to_string(), at.to_string())
        })
        .collect()
}

#[test]
fn lint_finds_the_keyword_rules_a_config_breaks() {
    let w = Work::new();
    w.write("config.toml", CONFIG);
    let found = lint_json(&w, &[]);
    let got = rules(&found);
    let want = [
        ("us-revocation-words", "+14155550100"),
        ("canada-arret", "+14165550100"),
        ("no-confirmation", "+18005550100"),
        ("canada-aide", "ca"),
        ("leading-common-word", "+14165550100"),
        ("leading-common-word", "+18005550100"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (rule, at) in want {
        assert!(
            got.contains(&(rule.to_string(), at.to_string())),
            "{rule} {at}: {got:?}"
        );
    }
    let us = &found[0];
    assert_eq!(us["level"], "error");
    let m = us["message"].as_str().unwrap();
    for word in ["QUIT", "END", "REVOKE", "OPT OUT", "CANCEL"] {
        assert!(m.contains(word), "{m}");
    }
    assert!(m.contains("us-fcc"), "{m}");
    // the table says the same; --strict turns any finding into exit 1
    let config = w.p("config.toml");
    let table = w.ok(&["lint", "--config", &config]);
    assert!(
        table.contains("us-revocation-words") && table.contains("account 'us', sender +14155550100"),
        "{table}"
    );
    let e = w.fails(&["lint", "--config", &config, "--strict"], 1);
    assert!(e.contains("3 errors, 3 warnings"), "{e}");
    // a store is linted by its config
    let demo = w.example_store();
    w.ok(&["lint", "--store", &demo]);
}

#[test]
fn lint_reads_templates_and_counts_replies() {
    let w = Work::new();
    w.write("config.toml", CONFIG);
    let templates = w.write(
        "templates.csv",
        "template_id,sender,body\n\
         ok,+14155550101,\"Deals! Reply STOP to opt out, HELP for help.\"\n\
         baja,+14165550100,\"Oferta. Responde BAJA para cancelar.\"\n\
         reply-baja,+14165550100,\"Sale today. Reply BAJA to opt out.\"\n\
         other,+14165550100,\"Sale. Text usSTOP to +447860009000 to unsubscribe.\"\n\
         yes,+14165550100,Reply YES to confirm.\n\
         quoted,+14165550100,Reply 'end' to stop.\n\
         shared,+447860009000,Text QUIT to stop these.\n\
         nobody,+19995550000,Reply STOP to opt out.\n",
    );
    let replies = w.write(
        "replies.csv",
        "message_id,received_at,from,to,body\n\
         1,2026-11-01T10:00:00Z,+14165550900,+14165550100,End of the day works\n\
         2,2026-11-01T10:00:00Z,+14165550901,+14165550100,END\n\
         3,2026-11-01T10:00:00Z,+14165550902,+18005550100,end of story\n\
         4,2026-11-01T10:00:00Z,+14165550903,+14165550100,\"end, please\"\n",
    );
    let found = lint_json(&w, &["--templates", &templates, "--replies", &replies]);
    let got = rules(&found);
    for (rule, at) in [
        ("template-keyword", "reply-baja"),
        ("template-other-free-keyword", "other"),
        ("template-keyword", "yes"),
        ("template-keyword", "shared"),
        ("template-unknown-sender", "nobody"),
    ] {
        assert!(
            got.contains(&(rule.to_string(), at.to_string())),
            "{rule} {at}: {got:?}"
        );
    }
    for fine in ["ok", "quoted"] {
        assert!(!got.iter().any(|(_, at)| at == fine), "{fine}: {got:?}");
    }
    let level = |t: &str| {
        found
            .iter()
            .find(|f| f["template"] == t)
            .map(|f| f["level"].clone())
    };
    assert_eq!(level("reply-baja"), Some("error".into()));
    assert_eq!(level("yes"), Some("warning".into()));
    let common = found.iter().find(|f| f["rule"] == "leading-common-word").unwrap();
    // "End of the day works" and "end, please" to that sender
    assert_eq!(common["replies"], 2, "{common}");
}
