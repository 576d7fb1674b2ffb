//! A source read on a thread of its own, a few chunks (or batches of
//! items) ahead of its consumer: what reading it costs (copying it aside,
//! hashing it, parsing it) runs beside what the consumer does with it
//! (parsing, writing a database), on another core.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};

/// The bytes of one read of the source.
const CHUNK: usize = 1 << 16;
/// Chunks read ahead of the consumer, at most: what this holds besides.
const AHEAD: usize = 4;

/// Runs `consume` on a reader of `source`, which a scoped thread reads
/// ahead. Returns what `consume` returned, and `source`: read to its end,
/// unless `consume` stopped before the end (the thread then stops too).
pub fn read_ahead<S: Read + Send, T>(source: S, consume: impl FnOnce(&mut Ahead) -> T) -> (T, S) {
    std::thread::scope(|s| {
        let (chunks, received) = sync_channel(AHEAD);
        let reader = s.spawn(move || {
            let mut source = source;
            loop {
                let mut chunk = vec![0; CHUNK];
                let read = match source.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        chunk.truncate(n);
                        Ok(chunk)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = read.is_err();
                // A consumer that stopped dropped its end: so does this.
                if chunks.send(read).is_err() || failed {
                    break;
                }
            }
            source
        });
        let mut ahead = Ahead {
            chunks: received,
            chunk: Vec::new(),
            at: 0,
            failed: None,
        };
        let consumed = consume(&mut ahead);
        drop(ahead);
        let source = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (consumed, source)
    })
}

/// The consumer's end: the chunks in the order they were read, then the
/// end, or the source's error (and an error at every read after it: a
/// failed source never looks like one that ended).
pub struct Ahead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    failed: Option<io::ErrorKind>,
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "the source failed before"));
        }
        if self.at == self.chunk.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.failed = Some(e.kind());
                    return Err(e);
                }
                // The source ended (its thread sent everything it read).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Runs `produce` on a scoped thread, which hands its items over (`give`)
/// in batches of `batch`, at most one batch ahead of `consume`, which
/// gets them in order on this thread. The first error wins: a failed
/// `consume` stops the producer (its next `give` fails), a failed
/// `produce` ends the batches, the ones it gave before consumed first.
/// Where no thread can be started, both run here, one after the other.
pub fn batches_ahead<T: Send>(
    batch: usize,
    produce: impl FnOnce(&mut dyn FnMut(T) -> anyhow::Result<()>) -> anyhow::Result<()> + Send,
    mut consume: impl FnMut(Vec<T>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // Taken by the thread, or by this one if none can be started (a
    // container at its limit of processes).
    let produce = std::sync::Mutex::new(Some(produce));
    let take = || produce.lock().ok().and_then(|mut p| p.take());
    std::thread::scope(|s| {
        let (batches, received) = sync_channel::<Vec<T>>(1);
        let started = std::thread::Builder::new()
            .name("xmeta-read-ahead".into())
            .spawn_scoped(s, move || {
                let stopped = || anyhow::anyhow!("the consumer stopped");
                match take() {
                    Some(produce) => in_batches(batch, produce, |full| {
                        batches.send(full).map_err(|_| stopped())
                    }),
                    None => Ok(()),
                }
            });
        let Ok(producer) = started else {
            drop(received);
            return match take() {
                Some(produce) => in_batches(batch, produce, &mut consume),
                None => Ok(()),
            };
        };
        let consumed = received.iter().try_for_each(&mut consume);
        // The producer, blocked on a full queue, sees it gone and stops.
        drop(received);
        let production = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        consumed.and(production)
    })
}

/// `produce`'s items handed to `full` in batches of `batch`, the last
/// one as it is.
fn in_batches<T>(
    batch: usize,
    produce: impl FnOnce(&mut dyn FnMut(T) -> anyhow::Result<()>) -> anyhow::Result<()>,
    mut full: impl FnMut(Vec<T>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut items = Vec::with_capacity(batch);
    produce(&mut |item| {
        items.push(item);
        if items.len() == batch {
            full(std::mem::replace(&mut items, Vec::with_capacity(batch)))?;
        }
        Ok(())
    })?;
    if items.is_empty() {
        Ok(())
    } else {
        full(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of `n` bytes that counts how much of it was read.
    struct Counted {
        left: usize,
        read: usize,
    }

    impl Read for Counted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.left);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.read + i) % 251) as u8;
            }
            self.left -= n;
            self.read += n;
            Ok(n)
        }
    }

    #[test]
    fn the_consumer_reads_every_byte_in_order() {
        let n = 10 * CHUNK + 123;
        let (bytes, source) = read_ahead(Counted { left: n, read: 0 }, |r| {
            let mut all = Vec::new();
            r.read_to_end(&mut all).map(|_| all)
        });
        let bytes = bytes.unwrap();
        assert_eq!(bytes.len(), n);
        assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        assert_eq!(source.read, n);
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_reading() {
        let n = 1000 * CHUNK;
        let ((), source) = read_ahead(Counted { left: n, read: 0 }, |r| {
            let mut first = [0; 10];
            r.read_exact(&mut first).unwrap();
        });
        // The chunk taken, those queued, and the one the thread was
        // sending when the consumer let go: far from the whole source.
        assert!(source.read <= (AHEAD + 2) * CHUNK, "{}", source.read);
    }

    #[test]
    fn a_consumer_that_panics_ends_the_reading_and_the_panic_goes_on() {
        let source = Counted {
            left: 1000 * CHUNK,
            read: 0,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_ahead(source, |r| {
                r.read_exact(&mut [0; 10]).unwrap();
                panic!("the consumer failed");
            })
        }));
        assert!(outcome.is_err());
    }

    #[test]
    fn an_interrupted_read_is_read_again() {
        struct Interrupted {
            first: bool,
        }
        impl Read for Interrupted {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.first {
                    self.first = false;
                    return Err(io::ErrorKind::Interrupted.into());
                }
                buf[..3].copy_from_slice(b"abc");
                Ok(3)
            }
        }
        let (read, _) = read_ahead(Interrupted { first: true }, |r| {
            let mut three = [0; 3];
            r.read_exact(&mut three).map(|()| three)
        });
        assert_eq!(&read.unwrap(), b"abc");
    }

    #[test]
    fn the_sources_error_reaches_the_consumer() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let (reads, _) = read_ahead(Failing, |r| [r.read(&mut [0; 8]), r.read(&mut [0; 8])]);
        let [first, again] = reads;
        assert_eq!(first.unwrap_err().to_string(), "disk gone");
        // Never an end of file after it: the input is not whole.
        assert_eq!(again.unwrap_err().to_string(), "the source failed before");
    }

    #[test]
    fn batches_come_in_order_and_whole() {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        batches_ahead(
            4,
            |give| (0..10).try_for_each(give),
            |batch: Vec<u32>| {
                sizes.push(batch.len());
                seen.extend(batch);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(sizes, [4, 4, 2]);
    }

    /// A consumer's error is the one returned, and the producer stops
    /// within the batches queued (one) and the one it was filling.
    #[test]
    fn a_failed_consumer_stops_the_producer() {
        let given = std::sync::atomic::AtomicUsize::new(0);
        let failed = batches_ahead(
            10,
            |give| {
                (0..1_000_000).try_for_each(|i| {
                    given.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    give(i)
                })
            },
            |_: Vec<u32>| Err(anyhow::anyhow!("the database is full")),
        );
        assert_eq!(failed.unwrap_err().to_string(), "the database is full");
        // The batch consumed, the one queued and the one being filled.
        assert!(given.into_inner() <= 30);
    }

    /// A producer's error comes after the batches it gave were consumed.
    #[test]
    fn a_failed_producer_ends_the_batches_with_its_error() {
        let mut seen = Vec::new();
        let failed = batches_ahead(
            2,
            |give| {
                (0..5).try_for_each(&mut *give)?;
                Err(anyhow::anyhow!("line 7: not JSON"))
            },
            |batch: Vec<u32>| {
                seen.extend(batch);
                Ok(())
            },
        );
        assert_eq!(failed.unwrap_err().to_string(), "line 7: not JSON");
        // The last, partial batch is never given: the producer failed.
        assert_eq!(seen, [0, 1, 2, 3]);
    }
}
