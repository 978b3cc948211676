//! The integration tests, one crate (one build and link) with a module per
//! area; `common` is the helpers they share: a work folder per test and the
//! real binary run in it.
#![allow(clippy::unwrap_used)]

mod common;

mod bundle;
mod cli_edges;
mod countries;
mod crash;
mod damage;
mod diskfull;
mod erase;
mod fuzz_regressions;
mod hostile;
mod invalid;
mod lazy_reads;
mod lint;
mod memory;
mod nightly_cli;
mod outbox_cli;
mod props;
mod props_replies;
mod replies_cli;
mod revert;
mod scrub_cli;
mod security;
mod signals;
mod store_cli;
