//! Progress on long work, shown only when stderr is a terminal (SPEC §7):
//! nothing of the kind in logs, pipes or CI.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting rows, or `None` when stderr is not a terminal.
pub(crate) fn rows(label: &str, total: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{prefix} {bar:30} {human_pos}/{human_len} rows, {eta} left")
                .ok()?,
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{prefix} {spinner} {human_pos} rows").ok()?),
    };
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
