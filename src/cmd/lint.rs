//! `optscrub lint (--config FILE | --store DIR) [--templates F…] [--replies F…] [--json] [--strict]`

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lint::{self, Finding, Level};

/// Arguments of `lint`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["config", "store"])))]
pub struct Args {
    /// The config file to check.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the config of this store.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Outbound message templates (CSV or Parquet: template_id, sender,
    /// body): the words they tell people to reply must be ones the sender
    /// answers.
    #[arg(long, value_name = "F", num_args = 1..)]
    templates: Vec<String>,
    /// A reply log (to, body): counts the replies that each common-word
    /// finding concerns.
    #[arg(long, value_name = "F", num_args = 1..)]
    replies: Vec<String>,
    /// Name of the templates' id column.
    #[arg(long, default_value = "template_id")]
    template_id_column: String,
    /// Name of the templates' sender column.
    #[arg(long, default_value = "sender")]
    template_sender_column: String,
    /// Name of the templates' text column.
    #[arg(long, default_value = "body")]
    template_body_column: String,
    /// Name of the reply log's destination column.
    #[arg(long, default_value = "to")]
    to_column: String,
    /// Name of the reply log's text column.
    #[arg(long, default_value = "body")]
    body_column: String,
    /// Print the findings as JSON (a list) instead of a table.
    #[arg(long)]
    json: bool,
    /// Exit 1 when there is any finding, warnings included.
    #[arg(long)]
    strict: bool,
}

/// Lint a config; 1 under `--strict` when anything was found.
pub(super) fn run(a: Args) -> Result<i32> {
    let config = match (&a.config, &a.store) {
        (Some(path), _) => Config::load(path)?,
        (None, Some(dir)) => crate::store::Store::open(dir)?.config,
        (None, None) => return Err(Error::Usage("give --config FILE or --store DIR".into())),
    };
    let cols = lint::LintColumns {
        template_id: a.template_id_column,
        template_sender: a.template_sender_column,
        template_body: a.template_body_column,
        reply_to: a.to_column,
        reply_body: a.body_column,
    };
    let mut findings = lint::config_findings(&config);
    if !a.templates.is_empty() {
        findings.extend(lint::template_findings(&config, &a.templates, &cols)?);
    }
    if !a.replies.is_empty() {
        lint::count_replies(&config, &mut findings, &a.replies, &cols)?;
    }
    if a.json {
        let text =
            serde_json::to_string_pretty(&findings).map_err(|e| Error::Internal(format!("lint: {e}")))?;
        println!("{text}");
    } else {
        print_table(&findings);
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    eprintln!("lint: {errors} errors, {} warnings", findings.len() - errors);
    Ok(i32::from(a.strict && !findings.is_empty()))
}

fn print_table(findings: &[Finding]) {
    if findings.is_empty() {
        println!("no findings");
        return;
    }
    for f in findings {
        let level = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        println!("{level:<7}  {:<27}  {}", f.rule, f.line());
    }
}
