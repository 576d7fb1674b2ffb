//! A loopback TCP proxy that delays every byte by a fixed time in each
//! direction, as a server a few milliseconds away would: what a client
//! sends back to back (a pipeline) stays back to back, each round trip
//! costs twice the delay.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub struct DelayProxy {
    pub port: u16,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
}

impl DelayProxy {
    /// Forwards each connection to `upstream` (`host:port`), `delay` late
    /// each way. Runs for the rest of the process.
    pub fn start(upstream: &str, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let upstream = upstream.to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                forward(client, server2, delay);
                forward(server, client2, delay);
            }
        });
        DelayProxy { port, accepted }
    }

    /// How many connections clients made through it so far.
    #[allow(dead_code)] // the tests count them; the benches do not
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads `from` and writes each chunk to `to` once `delay` has passed
/// since it was read; a reader and a writer thread, so reading never
/// waits for the delay.
fn forward(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                // Not a synchronisation: the delay is what this proxy
                // simulates (a database a few milliseconds away).
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
