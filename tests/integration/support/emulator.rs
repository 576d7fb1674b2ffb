//! A loopback X API emulator for `POST /2/media/metadata`: a real HTTP
//! server on 127.0.0.1 that checks auth, validates bodies against the
//! request schema, stores metadata per media (replacing top-level fields),
//! answers like X, records every request, and injects faults on demand:
//! latency, a fixed-window rate limit, 503s, dropped connections and
//! 200-with-errors, all from a seeded RNG so runs are reproducible. It
//! also serves an account's posts and their media for `xmeta import`
//! (`emulator_posts.rs`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Map, Value};

// A path of its own, so the example that runs the emulator by hand
// (`examples/x_emulator.rs`) finds the same file.
#[path = "emulator_posts.rs"]
pub mod posts;

/// OAuth 1.0a secrets the emulator verifies signatures with.
#[derive(Clone, Debug)]
pub struct OAuth1Secrets {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub token: String,
    pub token_secret: String,
}

#[derive(Clone, Debug)]
pub struct Faults {
    pub latency: Duration,
    /// `(limit, window)`: a fixed-window rate limit with the three headers
    /// (X's per-user limit: 500 per 15 minutes).
    pub rate_limit: Option<(u64, Duration)>,
    /// `(limit, window)`: a second fixed window shared by the app (X's
    /// per-app limit: 50,000 per 24 hours); a 429 when spent.
    pub app_limit: Option<(u64, Duration)>,
    pub rate_503: f64,
    pub rate_drop: f64,
    pub rate_200_errors: f64,
    /// Media IDs that always get this status.
    pub status_for: BTreeMap<String, u16>,
    pub seed: u64,
}

impl Faults {
    /// X's two limits, with time scaled by `scale` (0.01: a 15-minute
    /// window lasts 9 s) so tests run in seconds.
    pub fn x_limits(scale: f64) -> Faults {
        Faults {
            rate_limit: Some((500, Duration::from_secs_f64(900.0 * scale))),
            app_limit: Some((50_000, Duration::from_secs_f64(86_400.0 * scale))),
            ..Faults::default()
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            rate_limit: None,
            app_limit: None,
            rate_503: 0.0,
            rate_drop: 0.0,
            rate_200_errors: 0.0,
            status_for: BTreeMap::new(),
            seed: 7,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    /// `POST /2/media/metadata`, or `GET /2/media?…` (a read).
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    pub authorization: String,
    pub user_agent: String,
    pub content_type: String,
    /// The status answered; 0 when the connection was dropped.
    pub status: u16,
    /// Whether the answer carried `errors` (a 200 that is not a success).
    pub with_errors: bool,
    /// Unix seconds when it arrived.
    pub at: f64,
    /// The rate-limit window it arrived in, if a limit is set.
    pub window: Option<u64>,
}

struct Inner {
    token: String,
    oauth1: Option<OAuth1Secrets>,
    faults: Faults,
    rng: StdRng,
    stored: BTreeMap<String, Map<String, Value>>,
    requests: Vec<Recorded>,
    window_start: f64,
    window_counts: BTreeMap<u64, u64>,
    app_counts: BTreeMap<u64, u64>,
    timeline: posts::Timeline,
    /// Media URLs X answers instead of its own (hostile answers).
    urls: BTreeMap<String, String>,
}

pub struct Emulator {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Emulator {
    /// Starts on an ephemeral port; accepts `Authorization: Bearer {token}`.
    pub fn start(token: &str, faults: Faults) -> Emulator {
        Self::start_with(token, None, faults, 0)
    }

    pub fn start_oauth1(secrets: OAuth1Secrets, faults: Faults) -> Emulator {
        Self::start_with("", Some(secrets), faults, 0)
    }

    pub fn start_with(
        token: &str,
        oauth1: Option<OAuth1Secrets>,
        faults: Faults,
        port: u16,
    ) -> Emulator {
        Self::try_start_with(token, oauth1, faults, port).expect("bind loopback")
    }

    /// Like `start_with`, but a port that is taken is an error, not a panic.
    pub fn try_start_with(
        token: &str,
        oauth1: Option<OAuth1Secrets>,
        faults: Faults,
        port: u16,
    ) -> std::io::Result<Emulator> {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_string(),
            oauth1,
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
            stored: BTreeMap::new(),
            requests: Vec::new(),
            // Windows start on whole seconds, so `x-rate-limit-reset`
            // (whole Unix seconds) is exactly the window's end.
            window_start: now().floor(),
            window_counts: BTreeMap::new(),
            app_counts: BTreeMap::new(),
            timeline: posts::Timeline::default(),
            urls: BTreeMap::new(),
        }));
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&inner);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve(std_listener, state, rx));
        });
        Ok(Emulator {
            addr,
            inner,
            _shutdown: tx,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.requests().into_iter().map(|r| r.body).collect()
    }

    pub fn count_status(&self, status: u16) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    pub fn stored(&self) -> BTreeMap<String, Map<String, Value>> {
        self.inner.lock().unwrap().stored.clone()
    }

    pub fn clear_requests(&self) {
        self.inner.lock().unwrap().requests.clear();
    }

    /// Changes a media's alt text "outside xmeta" (as X's apps would);
    /// `None` removes it.
    pub fn set_alt_text_outside(&self, id: &str, text: Option<&str>) {
        let mut inner = self.inner.lock().unwrap();
        let stored = inner.stored.entry(id.to_string()).or_default();
        match text {
            Some(t) => {
                stored.insert("alt_text".into(), json!({"text": t}));
            }
            None => {
                stored.remove("alt_text");
            }
        }
    }

    /// Answers `url` as the media's URL (or its video's preview image).
    pub fn set_media_url(&self, id: &str, url: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.urls.insert(id.to_string(), url.to_string());
    }

    /// Forgets a media, as if it were deleted on X.
    pub fn delete_media(&self, id: &str) {
        self.inner.lock().unwrap().stored.remove(id);
    }

    /// How many reads (`GET /2/media`) arrived.
    pub fn read_count(&self) -> usize {
        self.requests().iter().filter(|r| r.method == "GET").count()
    }

    /// How many posts (`POST /2/media/metadata`) arrived.
    pub fn post_count(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    }

    /// Gives the account `posts` posts holding `media` media in all (see
    /// `posts::Timeline::seeded`); returns what they hold.
    pub fn seed_posts(&self, posts: usize, media: usize) -> posts::Census {
        let timeline = posts::Timeline::seeded(posts, media);
        let census = timeline.census();
        self.inner.lock().unwrap().timeline = timeline;
        census
    }

    /// Sets the alt text X holds for a seeded media key (`None` removes it).
    pub fn set_post_media_alt_text(&self, key: &str, text: Option<&str>) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(media) = inner.timeline.media.get_mut(key) {
            media.alt_text = text.map(str::to_string);
        }
    }

    /// The seeded posts and media, to change them or compare with them.
    pub fn with_timeline<T>(&self, f: impl FnOnce(&mut posts::Timeline) -> T) -> T {
        f(&mut self.inner.lock().unwrap().timeline)
    }

    /// How many reads of the account's posts (`GET /2/users/{id}/tweets`)
    /// arrived.
    pub fn page_count(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/tweets"))
            .count()
    }

    pub fn set_faults(&self, faults: Faults) {
        let mut inner = self.inner.lock().unwrap();
        inner.rng = StdRng::seed_from_u64(faults.seed);
        inner.faults = faults;
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<Inner>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(_) => continue,
            },
            _ = &mut shutdown => return,
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the emulator")
    }
}
impl std::error::Error for Dropped {}

enum Verdict {
    Drop,
    Answer(StatusCode, Value, Vec<(&'static str, String)>),
}

/// Returning an error makes hyper close the connection without a response:
/// the client sees a dropped connection.
async fn handle(
    state: Arc<Mutex<Inner>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let authorization = header("authorization");
    let user_agent = header("user-agent");
    let content_type = header("content-type");
    let host = header("host");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some(id) = path.strip_prefix(LIVE_PATH) {
        return Ok(set_live(&state, &method, id, &body));
    }
    let latency = state.lock().unwrap().faults.latency;
    if !latency.is_zero() {
        // Simulates X's latency (a fault the test asked for); tests wait
        // on the requests' events: not a synchronisation.
        tokio::time::sleep(latency).await;
    }
    let verdict = {
        let mut inner = state.lock().unwrap();
        let arrived = now();
        let verdict = decide(
            &mut inner,
            &method,
            &path,
            &query,
            &host,
            &authorization,
            &content_type,
            &body,
            arrived,
        );
        let window = inner
            .faults
            .rate_limit
            .map(|(_, w)| ((arrived - inner.window_start) / w.as_secs_f64()) as u64);
        let (status, with_errors) = match &verdict {
            Verdict::Drop => (0, false),
            Verdict::Answer(s, json, _) => (s.as_u16(), json.get("errors").is_some()),
        };
        inner.requests.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            body: body.clone(),
            authorization,
            user_agent,
            content_type,
            status,
            with_errors,
            at: arrived,
            window,
        });
        verdict
    };
    match verdict {
        Verdict::Drop => Err(Dropped),
        Verdict::Answer(status, json, headers) => {
            let mut response = Response::builder().status(status).header(
                "content-type",
                if status.is_success() {
                    "application/json"
                } else {
                    "application/problem+json"
                },
            );
            for (name, value) in headers {
                response = response.header(name, value);
            }
            Ok(response
                .body(Full::new(Bytes::from(json.to_string())))
                .expect("response"))
        }
    }
}

/// The emulator's own endpoint, not X's: `PUT /_emulator/live/ID` with
/// `{"alt_text": "…"}` changes a media's alt text "outside xmeta" (as X's
/// apps would; `null` removes it), so drift can be tried by hand. Not a
/// request to X: not logged, limited or delayed.
pub const LIVE_PATH: &str = "/_emulator/live/";

fn set_live(
    state: &Arc<Mutex<Inner>>,
    method: &hyper::Method,
    id: &str,
    body: &Value,
) -> Response<Full<Bytes>> {
    let text = body.get("alt_text").map(|t| (t.is_null(), t.as_str()));
    let reply = |status: StatusCode, json: Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json.to_string())))
            .expect("response")
    };
    let valid_id = !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit());
    match (method == hyper::Method::PUT && valid_id, text) {
        (true, Some((true, _))) => {
            if let Some(stored) = state.lock().unwrap().stored.get_mut(id) {
                stored.remove("alt_text");
            }
            reply(StatusCode::OK, json!({"id": id, "alt_text": null}))
        }
        (true, Some((false, Some(text)))) => {
            let mut inner = state.lock().unwrap();
            let stored = inner.stored.entry(id.to_string()).or_default();
            stored.insert("alt_text".into(), json!({"text": text}));
            reply(StatusCode::OK, json!({"id": id, "alt_text": text}))
        }
        _ => reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "use PUT /_emulator/live/ID (digits) with {\"alt_text\": \"…\"} or {\"alt_text\": null}"}),
        ),
    }
}

/// `GET /2/media?media_keys=3_1,3_2&media.fields=alt_text`: X's shape,
/// `data` for the media it stores, a not-found problem for the others.
fn read_media(inner: &Inner, query: &str) -> Value {
    let keys: Vec<String> = url_decode_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "media_keys")
        .map(|(_, v)| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for key in keys {
        let id = key
            .split_once('_')
            .map(|(_, id)| id.to_string())
            .unwrap_or_default();
        match inner.stored.get(&id) {
            Some(fields) => {
                // The type its key names, as X answers it.
                let kind = match key.split_once('_').map_or("", |(t, _)| t) {
                    "16" => "animated_gif",
                    "7" | "13" => "video",
                    _ => "photo",
                };
                let mut item = json!({"media_key": key, "type": kind});
                if let Some(text) = fields.get("alt_text").and_then(|a| a.get("text")) {
                    item["alt_text"] = text.clone();
                }
                // X's media hosts: a photo's own URL, a video's preview.
                let url = inner.urls.get(&id).cloned();
                if kind == "photo" {
                    item["url"] = json!(
                        url.unwrap_or_else(|| format!("https://pbs.twimg.com/media/{id}.jpg"))
                    );
                } else {
                    item["preview_image_url"] = json!(url.unwrap_or_else(|| format!(
                        "https://pbs.twimg.com/ext_tw_video_thumb/{id}/pu/img/{id}.jpg"
                    )));
                }
                data.push(item);
            }
            None => errors.push(json!({
                "value": key,
                "detail": format!("Could not find media with media_keys: [{key}]."),
                "title": "Not Found Error",
                "resource_type": "media",
                "parameter": "media_keys",
                "resource_id": key,
                "type": "https://api.x.com/2/problems/resource-not-found",
            })),
        }
    }
    let mut answer = json!({"data": data});
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    answer
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn problem(status: u16, kind: &str, title: &str, detail: &str) -> Value {
    json!({
        "type": format!("https://api.x.com/2/problems/{kind}"),
        "title": title,
        "detail": detail,
        "status": status,
    })
}

#[allow(clippy::too_many_arguments)]
fn decide(
    inner: &mut Inner,
    method: &hyper::Method,
    path: &str,
    query: &str,
    host: &str,
    authorization: &str,
    content_type: &str,
    body: &Value,
    arrived: f64,
) -> Verdict {
    let mut headers = Vec::new();
    if let Some((limit, window)) = inner.faults.rate_limit {
        let secs = window.as_secs_f64();
        let index = ((arrived - inner.window_start) / secs) as u64;
        let reset = (inner.window_start + secs * (index + 1) as f64).ceil() as u64;
        let count = inner.window_counts.entry(index).or_insert(0);
        *count += 1;
        let remaining = limit.saturating_sub(*count);
        headers.push(("x-rate-limit-limit", limit.to_string()));
        headers.push(("x-rate-limit-remaining", remaining.to_string()));
        headers.push(("x-rate-limit-reset", reset.to_string()));
        if *count > limit {
            let json = json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429, "errors": [{"code": 88, "message": "Rate limit exceeded"}]});
            return Verdict::Answer(StatusCode::TOO_MANY_REQUESTS, json, headers);
        }
    }
    if let Some((limit, window)) = inner.faults.app_limit {
        let index = ((arrived - inner.window_start) / window.as_secs_f64()) as u64;
        let count = inner.app_counts.entry(index).or_insert(0);
        *count += 1;
        if *count > limit {
            let reset =
                (inner.window_start + window.as_secs_f64() * (index + 1) as f64).ceil() as u64;
            headers.push(("x-app-limit-24hour-reset", reset.to_string()));
            let json = json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429});
            return Verdict::Answer(StatusCode::TOO_MANY_REQUESTS, json, headers);
        }
    }
    let answer = |status: u16, json: Value, headers| {
        Verdict::Answer(StatusCode::from_u16(status).unwrap(), json, headers)
    };
    if method == hyper::Method::GET && path == "/2/media" {
        if !authorized(inner, host, authorization) {
            return answer(
                401,
                json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
                headers,
            );
        }
        return answer(200, read_media(inner, query), headers);
    }
    if method == hyper::Method::GET && posts::serves(path) {
        if !authorized(inner, host, authorization) {
            return answer(
                401,
                json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
                headers,
            );
        }
        if inner.faults.rate_limit.is_none() {
            // X's read limit (900 per 15 minutes), always announced.
            let window = (arrived / 900.0) as u64;
            let count = inner.timeline.windows.entry(window).or_insert(0);
            *count += 1;
            headers.push(("x-rate-limit-limit", "900".into()));
            headers.push((
                "x-rate-limit-remaining",
                900u64.saturating_sub(*count).to_string(),
            ));
            headers.push(("x-rate-limit-reset", ((window + 1) * 900).to_string()));
        }
        let (status, json) = posts::answer(&inner.timeline, path, query);
        return answer(status, json, headers);
    }
    if method != hyper::Method::POST || path != "/2/media/metadata" {
        return answer(
            404,
            problem(404, "resource-not-found", "Not Found", "no such endpoint"),
            headers,
        );
    }
    if !authorized(inner, host, authorization) {
        return answer(
            401,
            json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
            headers,
        );
    }
    if !content_type.starts_with("application/json") {
        return answer(
            400,
            problem(
                400,
                "invalid-request",
                "Invalid Request",
                "Content-Type must be application/json",
            ),
            headers,
        );
    }
    if let Err(detail) = check_request(body) {
        return answer(
            400,
            problem(400, "invalid-request", "Invalid Request", &detail),
            headers,
        );
    }
    let id = body["id"].as_str().unwrap_or_default().to_string();
    if let Some(status) = inner.faults.status_for.get(&id) {
        let status = *status;
        return answer(
            status,
            problem(
                status,
                "invalid-request",
                "Injected",
                &format!("injected {status} for media {id}"),
            ),
            headers,
        );
    }
    let roll: f64 = inner.rng.random();
    let f = &inner.faults;
    if roll < f.rate_503 {
        return answer(
            503,
            problem(
                503,
                "resource-unavailable",
                "Service Unavailable",
                "try again later",
            ),
            headers,
        );
    }
    if roll < f.rate_503 + f.rate_drop {
        return Verdict::Drop;
    }
    if roll < f.rate_503 + f.rate_drop + f.rate_200_errors {
        let json = json!({"data": {"id": id}, "errors": [problem(200, "internal-error", "Internal Error", "the metadata could not be saved")]});
        return answer(200, json, headers);
    }
    let stored = inner.stored.entry(id.clone()).or_default();
    if let Some(Value::Object(fields)) = body.get("metadata") {
        for (k, v) in fields {
            stored.insert(k.clone(), v.clone());
        }
    }
    let json = json!({"data": {"id": id, "associated_metadata": Value::Object(stored.clone())}});
    answer(200, json, headers)
}

fn authorized(inner: &Inner, host: &str, authorization: &str) -> bool {
    if let Some(token) = authorization.strip_prefix("Bearer ") {
        return !inner.token.is_empty() && token == inner.token;
    }
    let (Some(params), Some(secrets)) = (authorization.strip_prefix("OAuth "), &inner.oauth1)
    else {
        return false;
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for part in params.split(", ") {
        if let Some((k, v)) = part.split_once('=') {
            fields.insert(k.to_string(), decode(v.trim_matches('"')));
        }
    }
    let Some(signature) = fields.remove("oauth_signature") else {
        return false;
    };
    if fields.get("oauth_consumer_key") != Some(&secrets.consumer_key)
        || fields.get("oauth_token") != Some(&secrets.token)
    {
        return false;
    }
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    oauth1_signature(
        "POST",
        &format!("http://{host}/2/media/metadata"),
        &pairs,
        &secrets.consumer_secret,
        &secrets.token_secret,
    ) == signature
}

/// RFC 5849's HMAC-SHA1 signature, written here apart from xmeta's own
/// signer, so a wrong algorithm in xmeta cannot pass its own check
/// (`client::the_emulators_oauth1_check_matches_the_documented_example`
/// holds it to X's worked example).
pub fn oauth1_signature(
    method: &str,
    url: &str,
    params: &[(&str, &str)],
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    // RFC 5849 §3.6: everything but ALPHA, DIGIT, '-', '.', '_', '~'.
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let mut pairs: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.sort();
    let normalized: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let base = [
        method.to_ascii_uppercase(),
        encode(url),
        encode(&normalized.join("&")),
    ]
    .join("&");
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).expect("any key");
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// The request schema of POST /2/media/metadata (CreateMediaMetadataRequest),
// encoded here independently of xmeta's own validator.
/// `(field, [(property, kind)], [required properties])`.
type FieldRule = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

const FIELDS: &[FieldRule] = &[
    ("allow_download_status", &[("allow_download", "bool")], &[]),
    ("alt_text", &[("text", "text1000")], &["text"]),
    (
        "audience_policy",
        &[
            ("creator_subscriptions", "strings"),
            ("x_subscriptions", "strings"),
        ],
        &[],
    ),
    (
        "content_expiration",
        &[("timestamp_sec", "number")],
        &["timestamp_sec"],
    ),
    (
        "domain_restrictions",
        &[("whitelist", "strings")],
        &["whitelist"],
    ),
    (
        "found_media_origin",
        &[("id", "string"), ("provider", "string")],
        &["id", "provider"],
    ),
    (
        "geo_restrictions",
        &[
            ("blacklisted_country_codes", "countries"),
            ("whitelisted_country_codes", "countries"),
        ],
        &[],
    ),
    ("management_info", &[("managed", "bool")], &["managed"]),
    (
        "preview_image",
        &[("media_key", "media_key")],
        &["media_key"],
    ),
    (
        "sensitive_media_warning",
        &[
            ("adult_content", "bool"),
            ("graphic_violence", "bool"),
            ("other", "bool"),
        ],
        &[],
    ),
    ("shared_info", &[("shared", "bool")], &["shared"]),
    ("sticker_info", &[("stickers", "stickers")], &["stickers"]),
    (
        "upload_source",
        &[("upload_source", "string")],
        &["upload_source"],
    ),
];

const STICKER: &[(&str, &str)] = &[
    ("aspect_ratio", "number"),
    ("group_annotation_id", "integer"),
    ("id", "string"),
    ("sticker_set_annotation_id", "integer"),
    ("transform_a", "number"),
    ("transform_b", "number"),
    ("transform_c", "number"),
    ("transform_d", "number"),
    ("transform_tx", "number"),
    ("transform_ty", "number"),
];

/// Checks a request body against the schema; `Err` carries the reason.
pub fn check_request(body: &Value) -> Result<(), String> {
    let obj = body.as_object().ok_or("the body is not a JSON object")?;
    for key in obj.keys() {
        if key != "id" && key != "metadata" {
            return Err(format!("unknown property `{key}`"));
        }
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or("`id` is required and must be a string")?;
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`id` `{id}` does not match ^[0-9]{{1,19}}$"));
    }
    let Some(metadata) = obj.get("metadata") else {
        return Ok(());
    };
    let metadata = metadata.as_object().ok_or("`metadata` must be an object")?;
    for (name, value) in metadata {
        let (_, props, required) = FIELDS
            .iter()
            .find(|(n, _, _)| n == name)
            .ok_or(format!("unknown metadata field `{name}`"))?;
        check_object(value, props, required, name)?;
    }
    Ok(())
}

fn check_object(
    value: &Value,
    props: &[(&str, &str)],
    required: &[&str],
    path: &str,
) -> Result<(), String> {
    let obj = value
        .as_object()
        .ok_or(format!("`{path}` must be an object"))?;
    for r in required {
        if !obj.contains_key(*r) {
            return Err(format!("`{path}.{r}` is required"));
        }
    }
    for (k, v) in obj {
        let (_, kind) = props
            .iter()
            .find(|(n, _)| n == k)
            .ok_or(format!("unknown property `{path}.{k}`"))?;
        let p = format!("{path}.{k}");
        let ok = match *kind {
            "bool" => v.is_boolean(),
            "string" => v.is_string(),
            "text1000" => v.as_str().is_some_and(|s| s.chars().count() <= 1000),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "strings" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "countries" => v.as_array().is_some_and(|a| {
                a.iter().all(|c| {
                    c.as_str()
                        .is_some_and(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()))
                })
            }),
            "media_key" => {
                check_object(
                    v,
                    &[("media", "string"), ("media_category", "string")],
                    &[],
                    &p,
                )?;
                true
            }
            "stickers" => {
                let items = v.as_array().ok_or(format!("`{p}` must be an array"))?;
                for (i, s) in items.iter().enumerate() {
                    check_object(s, STICKER, &[], &format!("{p}[{i}]"))?;
                }
                true
            }
            _ => false,
        };
        if !ok {
            return Err(format!("`{p}` must be {kind}"));
        }
    }
    Ok(())
}
