//! The one way xmeta spreads work over the cores: the input cut into one
//! chunk per core (`map_chunks`, `map_ranges`), handed out an item at a time
//! (`map_each`), or a part at a time to a sink (`each_part_in_order`), in
//! scoped threads, results in input order.
//! A panic in any chunk is raised again in the caller: a chunk is never
//! silently missing (with `--prune`, missing manifests would forget media).

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Items of a streamed output (a plan's changes, as text or JSON) in one
/// part, rendered on one core and written at once (`each_part_in_order`):
/// output starts at once, and memory holds a few parts (a part of the
/// bench's changes is 110 KB of JSON, 42 KB of text).
pub const BATCH: usize = 128;

/// Asked once: on Linux each answer reads the cgroup's CPU quota from
/// `/proc` and `/sys`, and an apply asked twice per group of
/// confirmations it recorded (`perf record` of an apply of 1,000 changes:
/// 5.7% of its CPU samples were in `available_parallelism`). A watch
/// keeps the count it started with.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// `f` over `items` in chunks, one result per chunk, in order.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    map_ranges(items.len(), |range| f(&items[range]))
}

/// `f` over `0..len` cut into one run per core, one result per run, in
/// order: `map_chunks` for work that also looks past its own chunk (where
/// the next one starts).
pub fn map_ranges<R: Send>(len: usize, f: impl Fn(Range<usize>) -> R + Sync) -> Vec<R> {
    let threads = cores();
    if len < 2 || threads < 2 {
        return vec![f(0..len)];
    }
    let chunk = len.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..len)
            .step_by(chunk)
            // `start + chunk` can pass `usize::MAX` (a `len` of every
            // 32-bit hash top half, on a 32-bit target).
            .map(|start| s.spawn(move || f(start..start + chunk.min(len - start))))
            .collect();
        handles.into_iter().map(join).collect()
    })
}

/// `f` over each item on every core, results in order. Items are handed
/// out one at a time to whichever thread is free, so uneven items (files
/// of any size) even out.
pub fn map_each<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // One file (watch's re-read of an edit) needs no thread.
    if items.len() < 2 || cores() < 2 {
        return items.iter().map(f).collect();
    }
    map_each_beside(items, f, || ()).0
}

/// `map_each`, with `beside` run first on one of the threads, which then
/// joins the others. A plan reads the state beside the manifests this way:
/// the state's read is done early, not at the end of the parse, so its
/// transient memory (sled's pages) is gone before the parsed manifests
/// peak, and no core idles once it is done.
pub fn map_each_beside<T: Sync, R: Send, B: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    beside: impl FnOnce() -> B + Send,
) -> (Vec<R>, B) {
    let next = AtomicUsize::new(0);
    // Each thread keeps its results with the indices it took.
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            done.push((i, f(item)));
        }
        done
    };
    std::thread::scope(|s| {
        let helper = s.spawn(|| {
            let beside = beside();
            (beside, work())
        });
        // No more threads than items (the helper is one, for `beside`).
        let threads = cores().min(items.len());
        let others: Vec<_> = (2..threads).map(|_| s.spawn(work)).collect();
        let mut parts = vec![work()];
        parts.extend(others.into_iter().map(join));
        let (beside, theirs) = join(helper);
        parts.push(theirs);
        let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
        all.sort_unstable_by_key(|(i, _)| *i);
        debug_assert_eq!(all.len(), items.len());
        (all.into_iter().map(|(_, r)| r).collect(), beside)
    })
}

/// `f` over `items` a part of `part` items at a time on every core, each
/// result given to `sink` in order; the first error of `sink` stops the
/// run and is returned. The threads live for the whole call (a plan in
/// memory is one call; a saved plan's batches of 4,096 changes one each),
/// and each holds at most one finished part for the sink: memory stays a
/// few parts, however many items. A JSON plan of 100,000 changes (87.7
/// MB), GNU time, alternated, 6 runs each: with the cores' threads made
/// again for every 4,096 changes it peaked at 49,868–51,764 KiB; a part
/// at a time, 128 changes each, at 47,844–48,640 KiB.
pub fn each_part_in_order<T: Sync, R: Send, E>(
    items: &[T],
    part: usize,
    f: impl Fn(&[T]) -> R + Sync,
    sink: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    each_part_in_order_on(cores(), items, part, f, sink)
}

/// `each_part_in_order` on at most `cores` threads.
fn each_part_in_order_on<T: Sync, R: Send, E>(
    cores: usize,
    items: &[T],
    part: usize,
    f: impl Fn(&[T]) -> R + Sync,
    mut sink: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    let part = part.max(1);
    let threads = cores.min(items.len().div_ceil(part));
    if threads < 2 {
        return items.chunks(part).try_for_each(|p| sink(f(p)));
    }
    let f = &f;
    std::thread::scope(|s| {
        // Helper `h` renders parts h, h + threads, …; this thread the rest.
        let helpers: Vec<_> = (1..threads)
            .map(|h| {
                let (done, finished) = std::sync::mpsc::sync_channel::<R>(0);
                let handle = s.spawn(move || {
                    for p in items.chunks(part).skip(h).step_by(threads) {
                        if done.send(f(p)).is_err() {
                            break; // the sink stopped the run
                        }
                    }
                });
                (finished, handle)
            })
            .collect();
        let mut outcome = Ok(());
        for (i, p) in items.chunks(part).enumerate() {
            let result = match i % threads {
                0 => f(p),
                h => match helpers[h - 1].0.recv() {
                    Ok(result) => result,
                    // It panicked: raised by its join below.
                    Err(_) => break,
                },
            };
            if let Err(e) = sink(result) {
                outcome = Err(e);
                break;
            }
        }
        // Dropping the receivers stops any helper at its next part.
        for (finished, handle) in helpers {
            drop(finished);
            join(handle);
        }
        outcome
    })
}

/// A scoped thread's result; its panic raised again here.
fn join<R>(handle: std::thread::ScopedJoinHandle<'_, R>) -> R {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_covers_every_item() {
        let items: Vec<u32> = (0..1000).collect();
        let sums: Vec<Vec<u32>> = map_chunks(&items, <[u32]>::to_vec);
        assert_eq!(sums.concat(), items);
    }

    /// Lint cuts every 32-bit hash top half into runs, which on a 32-bit
    /// target is `usize::MAX` of them: the last run's end is `len`, never
    /// past it.
    #[test]
    fn runs_cover_a_length_up_to_the_largest() {
        for len in [0, 1, 7, usize::MAX] {
            let runs = map_ranges(len, |run| run);
            assert_eq!(runs.first().map(|r| r.start), Some(0));
            assert_eq!(runs.last().map(|r| r.end), Some(len));
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start), "{runs:?}");
        }
    }

    #[test]
    fn each_item_once_in_order_beside_other_work() {
        let items: Vec<u32> = (0..1000).collect();
        let (doubled, beside) = map_each_beside(&items, |i| i * 2, || "read");
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(beside, "read");
        assert!(map_each(&[] as &[u32], |i| *i).is_empty());
    }

    /// A watch cycle re-reads one file: on this thread, none spawned.
    #[test]
    fn one_item_runs_on_the_callers_thread() {
        let here = std::thread::current().id();
        assert_eq!(map_each(&[1], |_| std::thread::current().id()), [here]);
    }

    #[test]
    fn a_panic_in_an_item_or_beside_reaches_the_caller() {
        let items: Vec<u32> = (0..100).collect();
        let item = std::panic::catch_unwind(|| map_each(&items, |i| assert!(*i != 99, "boom")));
        assert!(item.is_err());
        let beside =
            std::panic::catch_unwind(|| map_each_beside(&items, |i| *i, || panic!("boom")));
        assert!(beside.is_err());
    }

    /// Every count of threads, parts that do not divide the items, more
    /// threads than parts, a part of 0 (taken as 1), no items.
    #[test]
    fn parts_reach_the_sink_in_order_until_it_stops() {
        for threads in 1..=5 {
            for (len, part) in [(1000, 7), (10, 3), (2, 10), (5, 0), (0, 4)] {
                let items: Vec<u32> = (0..len).collect();
                let mut seen = Vec::new();
                let all: Result<(), ()> =
                    each_part_in_order_on(threads, &items, part, <[u32]>::to_vec, |p| {
                        assert!(p.len() <= part.max(1), "a part of {part}: {p:?}");
                        seen.extend(p);
                        Ok(())
                    });
                assert_eq!(
                    (all, &seen),
                    (Ok(()), &items),
                    "{threads} threads, {len}/{part}"
                );
            }
            let items: Vec<u32> = (0..1000).collect();
            let mut parts = 0;
            let stopped = each_part_in_order_on(threads, &items, 10, <[u32]>::len, |_| {
                parts += 1;
                if parts == 3 {
                    Err("closed")
                } else {
                    Ok(())
                }
            });
            assert_eq!((stopped, parts), (Err("closed"), 3), "{threads} threads");
        }
    }

    /// The part's own panic, on this thread or a helper's, not the
    /// scope's "a scoped thread panicked".
    #[test]
    fn a_panic_in_a_part_reaches_the_caller() {
        let items: Vec<u32> = (0..1000).collect();
        for threads in 1..=3 {
            for boom in [0, 250, 500, 999] {
                let result = std::panic::catch_unwind(|| {
                    each_part_in_order_on(
                        threads,
                        &items,
                        250,
                        |p| assert!(!p.contains(&boom), "boom at {boom}"),
                        |()| Ok::<(), ()>(()),
                    )
                });
                let panic = result.expect_err("the panic");
                let said = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied());
                assert_eq!(said, Some(format!("boom at {boom}").as_str()));
            }
        }
    }

    #[test]
    fn a_panic_in_a_chunk_reaches_the_caller() {
        let items: Vec<u32> = (0..1000).collect();
        let result = std::panic::catch_unwind(|| {
            map_chunks(&items, |part| {
                assert!(!part.contains(&999), "boom");
                part.len()
            })
        });
        assert!(result.is_err());
    }
}
