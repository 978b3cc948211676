//! One ordered parallel pipeline: items are read one at a time, worked on
//! in parallel, and handed on in the order they were read, with a bounded
//! number in flight. The scrub (units of a recipient file) and the reply
//! ingest (batches of a reply log) both run through it.
//!
//! ```text
//! source ─▶ first (parallel) ─▶ between (in order) ─▶ second (parallel) ─▶ sink (in order)
//! ```
//!
//! `first` and `second` run as tasks of the rayon pool; `source`,
//! `between` and `sink` run on the calling thread, in input order. At most
//! `window` items are between `source` and `sink`: memory is bounded by
//! them whatever the input's size. The first error stops the reading; the
//! items still in flight finish and are dropped (none reaches the sink
//! after it), and that error is returned. A
//! task that panics becomes an internal error, not a crash.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender};

use crate::error::{Error, Result};

/// A task's report to the calling thread.
enum Done<M, U> {
    First(usize, Result<M>),
    Second(usize, Result<U>),
}

/// Run the pipeline; see the module's documentation. Returns the first
/// error of any stage, or `Ok` when the source ran dry and every item
/// reached the sink.
pub(crate) fn run<T, M, N, U>(
    window: usize,
    mut source: impl FnMut() -> Option<Result<T>>,
    first: impl Fn(T) -> Result<M> + Sync,
    mut between: impl FnMut(M) -> Result<N>,
    second: impl Fn(N) -> Result<U> + Sync,
    mut sink: impl FnMut(U) -> Result<()>,
) -> Result<()>
where
    T: Send,
    M: Send,
    N: Send,
    U: Send,
{
    let window = window.max(1);
    let (first, second) = (&first, &second);
    let (tx, rx) = std::sync::mpsc::channel::<Done<M, U>>();
    let mut failed: Option<Error> = None;
    rayon::in_place_scope(|scope| {
        let (mut read, mut between_next, mut sink_next, mut in_flight) = (0usize, 0usize, 0usize, 0usize);
        let mut firsts: BTreeMap<usize, Result<M>> = BTreeMap::new();
        let mut seconds: BTreeMap<usize, Result<U>> = BTreeMap::new();
        let mut reading = true;
        loop {
            while reading && failed.is_none() && in_flight < window {
                let item = match source() {
                    None => {
                        reading = false;
                        break;
                    }
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Some(Ok(item)) => item,
                };
                let (i, tx) = (read, tx.clone());
                scope.spawn(move |_| report(&tx, |r| Done::First(i, r), || first(item)));
                read += 1;
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            match next_report(&rx) {
                Some(Done::First(i, r)) => drop(firsts.insert(i, r)),
                Some(Done::Second(i, r)) => drop(seconds.insert(i, r)),
                // cannot happen while `tx` lives; stop rather than spin
                None => break,
            }
            while let Some(r) = firsts.remove(&between_next) {
                let i = between_next;
                between_next += 1;
                match r.and_then(|m| {
                    if failed.is_none() {
                        between(m).map(Some)
                    } else {
                        Ok(None)
                    }
                }) {
                    Ok(Some(n)) => {
                        let tx = tx.clone();
                        scope.spawn(move |_| report(&tx, |r| Done::Second(i, r), || second(n)));
                    }
                    Ok(None) => in_flight -= 1,
                    Err(e) => {
                        failed.get_or_insert(e);
                        in_flight -= 1;
                    }
                }
            }
            while let Some(r) = seconds.remove(&sink_next) {
                sink_next += 1;
                in_flight -= 1;
                if failed.is_none() {
                    if let Err(e) = r.and_then(&mut sink) {
                        failed = Some(e);
                    }
                }
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Run a task and send what it gave; a panic is sent as an internal error.
fn report<R, D>(tx: &Sender<D>, wrap: impl FnOnce(Result<R>) -> D, task: impl FnOnce() -> Result<R>) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task))
        .unwrap_or_else(|_| Err(Error::Internal("a worker thread panicked".into())));
    // the receiver outlives every task of the scope
    drop(tx.send(wrap(r)));
}

/// The next task's report. A thread of a rayon pool (a pipeline run inside
/// `install`) works on the pool's tasks while it waits, lest it wait for
/// tasks queued behind itself.
fn next_report<D>(rx: &Receiver<D>) -> Option<D> {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    if rayon::current_thread_index().is_none() {
        return rx.recv().ok();
    }
    loop {
        match rx.try_recv() {
            Ok(done) => return Some(done),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            match rx.recv_timeout(std::time::Duration::from_millis(1)) {
                Ok(done) => return Some(done),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn numbers(n: usize) -> impl FnMut() -> Option<Result<usize>> {
        let mut i = 0;
        move || {
            i += 1;
            (i <= n).then_some(Ok(i - 1))
        }
    }

    #[test]
    fn results_come_in_input_order_with_a_bounded_window() {
        let live = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let mut seen = Vec::new();
        let mut order = Vec::new();
        run(
            3,
            numbers(200),
            |i| {
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // later items finish first
                std::thread::sleep(std::time::Duration::from_micros(((200 - i) % 7) as u64 * 50));
                Ok(i * 2)
            },
            |m| {
                order.push(m / 2);
                Ok(m + 1)
            },
            |n| Ok(n * 10),
            |u| {
                live.fetch_sub(1, Ordering::SeqCst);
                seen.push(u);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(order, (0..200).collect::<Vec<_>>());
        assert_eq!(seen, (0..200).map(|i| (i * 2 + 1) * 10).collect::<Vec<_>>());
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "{}",
            most.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn the_first_error_stops_the_reading_and_is_returned() {
        let read = AtomicUsize::new(0);
        let mut sunk = Vec::new();
        let e = run(
            2,
            || {
                let i = read.fetch_add(1, Ordering::SeqCst);
                Some(Ok(i))
            },
            |i| {
                if i == 5 {
                    Err(Error::Input(format!("item {i}")))
                } else {
                    Ok(i)
                }
            },
            Ok,
            Ok,
            |u| {
                sunk.push(u);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "item 5");
        // what reached the sink came in order and from before the error
        // (items still in flight when it came are dropped)
        assert_eq!(sunk, (0..sunk.len()).collect::<Vec<_>>());
        assert!(sunk.len() <= 5);
        // an endless source: reading stopped soon after the error
        assert!(read.load(Ordering::SeqCst) < 10);
        let e = run(2, numbers(10), Ok, Ok, Ok, |u| {
            if u == 3 {
                Err(Error::Input("sink".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "sink");
        let e = run(
            2,
            || Some(Err(Error::Input("source".into()))),
            Ok::<usize, Error>,
            Ok,
            Ok,
            |_| Ok(()),
        );
        assert_eq!(e.unwrap_err().to_string(), "source");
    }

    #[test]
    fn a_panicking_task_is_an_internal_error_not_a_crash() {
        let e = crate::error::quiet_panics(|| {
            run(
                2,
                numbers(6),
                |i| if i == 2 { panic!("boom") } else { Ok(i) },
                Ok,
                Ok,
                |_| Ok(()),
            )
        })
        .unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
    }
}
