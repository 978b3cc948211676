//! Step timings on stderr when `OPTSCRUB_TRACE` is set (to any value): a
//! line per step, its time since the process's first mark and since the
//! mark before. For finding where a long job's time goes; nothing is
//! printed otherwise, and no line carries data.

use std::sync::Mutex;
use std::time::Instant;

static LAST: Mutex<Option<(Instant, Instant)>> = Mutex::new(None);

/// Mark the end of a step.
pub(crate) fn mark(step: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ON.get_or_init(|| std::env::var_os("OPTSCRUB_TRACE").is_some()) {
        return;
    }
    let now = Instant::now();
    let Ok(mut last) = LAST.lock() else {
        return;
    };
    let (start, before) = last.unwrap_or((now, now));
    eprintln!(
        "optscrub: trace {:>8.3} s (+{:.3} s) {step}",
        (now - start).as_secs_f64(),
        (now - before).as_secs_f64()
    );
    *last = Some((start, now));
}
