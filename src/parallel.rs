//! The one way xmeta spreads work over the cores: the input cut into one
//! chunk per core, each run in a scoped thread, results in input order.
//! A panic in any chunk is raised again in the caller: a chunk is never
//! silently missing (with `--prune`, missing manifests would forget media).

/// Items a streamed output (a plan's changes, as text or JSON) renders on
/// the cores between two writes: output starts at once, memory stays flat.
pub const BATCH: usize = 4096;

/// `f` over `items` in chunks, one result per chunk, in order.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if items.len() < 2 || threads < 2 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || f(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
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
