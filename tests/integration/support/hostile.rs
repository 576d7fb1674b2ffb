//! A hostile X API for tests: a real HTTP server on 127.0.0.1 that answers
//! every request with whatever the test's function says (redirects, echoed
//! headers, wrong IDs, huge or endless bodies, non-JSON), and records what
//! it received.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// 0 for the first request the server received, and so on.
    pub ordinal: usize,
    /// When it arrived.
    pub at: std::time::Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `count` chunks of `chunk` bytes, streamed without a length.
    Chunked {
        status: u16,
        chunk: usize,
        count: usize,
    },
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

type Answer = dyn Fn(&Seen) -> Reply + Send + Sync;

pub struct Hostile {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Hostile {
    pub fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        let answer: Arc<Answer> = Arc::new(answer);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let (stream, _) = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok(s) => s,
                            Err(_) => continue,
                        },
                        _ = &mut rx => return,
                    };
                    let (answer, log) = (Arc::clone(&answer), Arc::clone(&log));
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            handle(Arc::clone(&answer), Arc::clone(&log), req)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Hostile {
            addr,
            seen,
            _shutdown: tx,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    answer: Arc<Answer>,
    log: Arc<Mutex<Vec<Seen>>>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let mut log_guard = log.lock().unwrap();
    let seen = Seen {
        ordinal: log_guard.len(),
        at: std::time::Instant::now(),
        method,
        path,
        headers,
        body,
    };
    let reply = answer(&seen);
    log_guard.push(seen);
    drop(log_guard);
    Ok(match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut response = Response::builder().status(status);
            for (n, v) in headers {
                response = response.header(n, v);
            }
            response
                .body(Full::new(Bytes::from(body)).boxed())
                .expect("response")
        }
        Reply::Chunked {
            status,
            chunk,
            count,
        } => {
            let data = Bytes::from(vec![b'x'; chunk]);
            let frames = futures::stream::iter(
                (0..count).map(move |_| Ok::<_, Infallible>(Frame::data(data.clone()))),
            );
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(StreamBody::new(frames).boxed())
                .expect("response")
        }
    })
}
