//! Step timings on stderr when `OPTSCRUB_TRACE` is set (to any value): a
//! line per step, its time since the process's first mark and since the
//! mark before, and (on Linux) the process's heap and mapped-file memory
//! then. For finding where a long job's time and memory go; nothing is
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
        "optscrub: trace {:>8.3} s (+{:.3} s){} {step}",
        (now - start).as_secs_f64(),
        (now - before).as_secs_f64(),
        memory()
    );
    *last = Some((start, now));
}

/// The process's resident heap and file pages now, and its processor
/// time so far, as ` [heap N MiB, files N MiB, cpu N s]` (empty where
/// /proc says nothing).
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return String::new();
    };
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line[field.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    // user and system clock ticks: the 14th and 15th fields of stat, the
    // 12th and 13th after the command's closing parenthesis
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    match (kib("RssAnon:"), kib("RssFile:"), ticks) {
        (Some(heap), Some(files), Some(t)) => format!(
            " [heap {} MiB, files {} MiB, cpu {:.2} s]",
            heap >> 10,
            files >> 10,
            t as f64 / 100.0
        ),
        _ => String::new(),
    }
}
