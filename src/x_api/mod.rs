//! The X API client for `POST /2/media/metadata`: authentication, pacing
//! under the shared rate-limit budget, retries with capped exponential
//! backoff and full jitter, and reading X's answers.

mod oauth1;
mod problem;
mod rate_limit;
mod read;
mod secret;
mod timeline;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use tokio_util::sync::CancellationToken;

pub use oauth1::OAuth1;
pub use rate_limit::{unix_now, RateBudget, Reading};
pub use read::{Live, KEYS_PER_READ};
pub use secret::Secret;
pub use timeline::{Account, PageQuery, Post, POSTS_PER_PAGE};
#[cfg(test)]
pub use timeline::{MediaKind, PostedMedia};

use crate::model::Request;

pub const METADATA_PATH: &str = "/2/media/metadata";
/// Retries after 429s are counted apart from `--max-retries`, since waiting
/// for a window is normal; this bound only stops a server that never lets up.
const MAX_RATE_LIMITED: u32 = 20;
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// No rate-limit wait is longer than this: X's longest window is a day,
/// and a reset years ahead (or `u64::MAX`) is a hostile or broken answer.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);
/// This many connection failures in a row (refused, DNS) mean the API
/// cannot be reached: the run stops instead of retrying every media.
const UNREACHABLE_AFTER: u32 = 5;
/// X's answers are a few hundred bytes; a larger body is not read further.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Clone, Debug)]
pub enum Auth {
    /// OAuth 2.0 user access token.
    Bearer(Secret),
    /// OAuth 1.0a user context.
    OAuth1(OAuth1),
}

impl Auth {
    /// What X refusing this credential means, and what to do.
    fn refused(&self, status: u16) -> String {
        match self {
            Auth::Bearer(_) => format!("X refused the OAuth 2.0 user token (HTTP {status}): it is wrong, lacks the media.write scope, or expired — these tokens expire two hours after issue unless refreshed; OAuth 1.0a tokens (XMETA_CONSUMER_KEY, XMETA_CONSUMER_SECRET, XMETA_ACCESS_TOKEN, XMETA_ACCESS_TOKEN_SECRET) do not expire"),
            Auth::OAuth1(_) => format!("X refused the OAuth 1.0a credentials (HTTP {status}): check XMETA_CONSUMER_KEY, XMETA_CONSUMER_SECRET, XMETA_ACCESS_TOKEN and XMETA_ACCESS_TOKEN_SECRET, and the app's write permission"),
        }
    }

    /// Every secret value in use, to scrub from anything a server says.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::Bearer(token) => vec![token.expose()],
            Auth::OAuth1(c) => vec![
                c.consumer_key.expose(),
                c.consumer_secret.expose(),
                c.token.expose(),
                c.token_secret.expose(),
            ],
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub api_url: Url,
    pub auth: Auth,
    pub max_retries: u32,
    pub timeout: Duration,
    pub concurrency: usize,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("HTTP {status} with errors: {message}")]
    Rejected { status: u16, message: String },
    #[error("HTTP {status} is no confirmation: {message}")]
    NotConfirmed { status: u16, message: String },
    /// The network or HTTP layer failed; the request may be retried.
    #[error("{0}")]
    Transport(String),
    /// The request could not be built (never sent, never retried).
    #[error("the request could not be built: {0}")]
    Request(String),
    #[error("gave up after {attempts} attempt{}; last: {last}", if *attempts == 1 { "" } else { "s" })]
    Exhausted { attempts: u32, last: Box<ApiError> },
    /// 401/403: the credential is wrong for every request, not just this one.
    #[error("{0}")]
    Credentials(String),
    /// Several connections in a row were refused or the host not found.
    #[error("{0}")]
    Unreachable(String),
    /// Not sent: the wait for a rate-limit window would pass the run's
    /// deadline (`--max-duration`).
    #[error("{0}")]
    OverBudget(String),
    /// Not sent: the server asks for a wait longer than any X window.
    #[error("{0}")]
    WaitTooLong(String),
    /// Not sent: the run was stopped (a signal) before this attempt, a
    /// retry or the end of a rate-limit wait included.
    #[error("not sent: the run was stopped")]
    Stopped,
}

impl ApiError {
    /// The same error with every text in it passed through `f`.
    fn map_text(self, f: &impl Fn(&str) -> String) -> ApiError {
        match self {
            ApiError::Status { status, message } => ApiError::Status {
                status,
                message: f(&message),
            },
            ApiError::Rejected { status, message } => ApiError::Rejected {
                status,
                message: f(&message),
            },
            ApiError::NotConfirmed { status, message } => ApiError::NotConfirmed {
                status,
                message: f(&message),
            },
            ApiError::Transport(message) => ApiError::Transport(f(&message)),
            ApiError::Request(message) => ApiError::Request(f(&message)),
            ApiError::Exhausted { attempts, last } => ApiError::Exhausted {
                attempts,
                last: Box::new(last.map_text(f)),
            },
            other => other,
        }
    }
}

enum Attempt {
    RateLimited {
        reading: Reading,
        error: ApiError,
    },
    Retryable {
        error: ApiError,
        retry_after: Option<Duration>,
        /// No connection was made (refused, DNS).
        unconnected: bool,
    },
    Fatal(ApiError),
}

impl Attempt {
    fn retryable(error: ApiError) -> Attempt {
        Attempt::Retryable {
            error,
            retry_after: None,
            unconnected: false,
        }
    }

    fn map_error(self, f: impl FnOnce(ApiError) -> ApiError) -> Attempt {
        match self {
            Attempt::RateLimited { reading, error } => Attempt::RateLimited {
                reading,
                error: f(error),
            },
            Attempt::Retryable {
                error,
                retry_after,
                unconnected,
            } => Attempt::Retryable {
                error: f(error),
                retry_after,
                unconnected,
            },
            Attempt::Fatal(e) => Attempt::Fatal(f(e)),
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    auth: Auth,
    max_retries: u32,
    budget: RateBudget,
    /// Workers now waiting for a rate-limit window, for progress display.
    waiting: AtomicUsize,
    /// Connection failures in a row, across all workers.
    unconnected: AtomicU32,
    /// No wait may end after this (`--max-duration`), set per run.
    deadline: std::sync::Mutex<Option<Instant>>,
    /// Requests sent, retries included: what X bills.
    sent: AtomicUsize,
    /// Once cancelled (a signal), nothing more is sent and every wait for
    /// a retry or a rate-limit window ends at once; set per run.
    stop: std::sync::Mutex<CancellationToken>,
}

impl Client {
    pub fn new(settings: ClientSettings) -> anyhow::Result<Client> {
        forbid_core_dumps();
        let endpoint = settings.api_url.join(METADATA_PATH)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("xmeta/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            // A redirect is never a confirmation: 301-303 would turn the
            // POST into a GET sent to no one, 307/308 would re-post the
            // metadata to another host.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        Ok(Client {
            http,
            endpoint,
            auth: settings.auth,
            max_retries: settings.max_retries,
            budget: RateBudget::default(),
            waiting: AtomicUsize::new(0),
            unconnected: AtomicU32::new(0),
            deadline: std::sync::Mutex::new(None),
            sent: AtomicUsize::new(0),
            stop: std::sync::Mutex::new(CancellationToken::new()),
        })
    }

    /// Requests sent so far, retries included.
    pub fn requests_sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// After `stop` is cancelled no attempt starts: a media waiting for a
    /// retry or a window is not sent (the contract: no new requests after
    /// a signal), and its wait ends at once.
    pub fn set_stop(&self, stop: CancellationToken) {
        if let Ok(mut s) = self.stop.lock() {
            *s = stop;
        }
    }

    fn stop(&self) -> CancellationToken {
        self.stop
            .lock()
            .map_or_else(|_| CancellationToken::new(), |s| s.clone())
    }

    /// Waits for a rate-limit window that would end after `deadline` are
    /// refused (`ApiError::OverBudget`) instead of slept through.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = deadline;
        }
    }

    /// Whether the API was found unreachable (no request should start).
    pub fn unreachable(&self) -> bool {
        self.unconnected.load(Ordering::SeqCst) >= UNREACHABLE_AFTER
    }

    /// Refuses a wait that ends past the deadline or the 24 h cap.
    fn check_wait(&self, wait: Duration) -> Result<(), ApiError> {
        if wait > MAX_WAIT {
            return Err(ApiError::WaitTooLong(format!(
                "X asks to wait {} for the next rate-limit window, more than the 24 h any window lasts; stopping instead",
                crate::time::human(wait)
            )));
        }
        let deadline = self.deadline.lock().ok().and_then(|d| *d);
        if deadline.is_some_and(|d| Instant::now() + wait > d) {
            return Err(ApiError::OverBudget(format!(
                "the next rate-limit window opens in {}, after --max-duration",
                crate::time::human(wait)
            )));
        }
        Ok(())
    }

    pub fn waiting_for_rate_limit(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Posts one request until X confirms it, a non-retryable answer comes,
    /// or the retries run out. Whatever the server said in an error is
    /// scrubbed of the credentials and neutralised before it is returned.
    ///
    /// Retrying is safe: setting metadata replaces whole fields, so sending
    /// the same body twice has the same effect as once.
    pub async fn post_metadata(&self, request: &Request) -> Result<(), ApiError> {
        let body = serde_json::to_vec(request).map_err(|e| ApiError::Request(e.to_string()))?;
        let id = request.id.to_string();
        self.with_retries(&id, || self.send_once(&body, &id)).await
    }

    /// One request, attempted until it succeeds, fails for good, or the
    /// retries run out: the pacing, retry, fail-fast and scrubbing rules of
    /// every call to X (posts and reads alike).
    async fn with_retries<T, F, Fut>(&self, label: &str, attempt: F) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = (Option<Reading>, Result<T, Attempt>)>,
    {
        let (mut failures, mut limited) = (0u32, 0u32);
        loop {
            if self.unreachable() {
                return Err(self.unreachable_error());
            }
            self.pace().await?;
            if self.stop().is_cancelled() {
                return Err(ApiError::Stopped);
            }
            self.sent.fetch_add(1, Ordering::SeqCst);
            let (reading, outcome) = attempt().await;
            // Scrubbed here, before anything (a log line included) shows it.
            let outcome = outcome.map_err(|a| a.map_error(|e| self.scrub(e)));
            self.budget.release(reading);
            if reading.is_some() {
                self.unconnected.store(0, Ordering::SeqCst);
            }
            let (error, retry_after) = match outcome {
                Ok(value) => return Ok(value),
                Err(Attempt::Fatal(ApiError::Status { status, message }))
                    if status == 401 || status == 403 =>
                {
                    return Err(ApiError::Credentials(format!(
                        "{} ({message})",
                        self.auth.refused(status)
                    )));
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::RateLimited { reading, error }) => {
                    limited += 1;
                    if limited > MAX_RATE_LIMITED {
                        return Err(error);
                    }
                    self.wait_after_429(reading, limited).await?;
                    continue;
                }
                Err(Attempt::Retryable {
                    error,
                    retry_after,
                    unconnected,
                }) => {
                    if unconnected
                        && self.unconnected.fetch_add(1, Ordering::SeqCst) + 1 >= UNREACHABLE_AFTER
                    {
                        return Err(self.unreachable_error());
                    }
                    (error, retry_after)
                }
            };
            failures += 1;
            if failures > self.max_retries {
                return Err(ApiError::Exhausted {
                    attempts: failures,
                    last: Box::new(error),
                });
            }
            // `Retry-After` is a floor; the backoff spreads the workers.
            let wait = backoff(failures).max(retry_after.unwrap_or_default());
            self.check_wait(wait)?;
            tracing::debug!(request = %label, "attempt {failures} failed ({error}); retrying in {wait:.1?}");
            self.wait(wait).await;
        }
    }

    /// After a 429: `Retry-After` when given; else the window's reset when
    /// it is ahead; else (no reset, or one in the past) an exponential
    /// backoff of at least a second, so a broken server never gets a burst.
    async fn wait_after_429(&self, reading: Reading, limited: u32) -> Result<(), ApiError> {
        let now = unix_now();
        let wait = match (reading.retry_after, reading.reset) {
            (Some(after), _) => after,
            (None, Some(reset)) if reset as f64 > now => {
                let wait = Duration::from_secs_f64((reset as f64 - now).min(1e9));
                self.check_wait(wait)?;
                self.budget.exhaust(reset);
                return Ok(());
            }
            _ => Duration::from_secs(1 << limited.min(6)),
        };
        self.check_wait(wait)?;
        tracing::debug!("rate limited (429); retrying in {wait:.1?}");
        self.wait(wait).await;
        Ok(())
    }

    fn unreachable_error(&self) -> ApiError {
        ApiError::Unreachable(format!(
            "the X API at `{}` cannot be reached ({UNREACHABLE_AFTER} connections in a row failed); check --api-url and the network",
            self.endpoint.host_str().unwrap_or("?")
        ))
    }

    /// Waits until the shared budget allows one more request, unless the
    /// wait would pass the deadline or the cap.
    async fn pace(&self) -> Result<(), ApiError> {
        while let Err(wait) = self.budget.try_claim() {
            self.check_wait(wait)?;
            // Shown once, in the progress line ("N waiting for the rate
            // limit"), not once per worker.
            tracing::debug!(
                "rate limit budget spent; waiting {:.1}s for the window to reset",
                wait.as_secs_f64()
            );
            self.wait(wait).await;
        }
        Ok(())
    }

    fn scrub(&self, error: ApiError) -> ApiError {
        let secrets = self.auth.secrets();
        error.map_text(&|text| crate::untrusted::scrub(text, &secrets))
    }

    async fn wait(&self, wait: Duration) {
        let stop = self.stop();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {}
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// The `Authorization` header for a request (OAuth 1.0a signs the
    /// method, the URL without its query, and the query's parameters).
    fn authorization(
        &self,
        method: &str,
        url: &Url,
        params: &[(String, String)],
    ) -> Result<HeaderValue, ApiError> {
        let text = match &self.auth {
            Auth::Bearer(token) => format!("Bearer {}", token.expose()),
            Auth::OAuth1(creds) => {
                let nonce: String = rand::thread_rng()
                    .sample_iter(&Alphanumeric)
                    .take(32)
                    .map(char::from)
                    .collect();
                let mut base = url.clone();
                base.set_query(None);
                let extra: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                creds.header(method, base.as_str(), &extra, &nonce, unix_now() as u64)
            }
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            ApiError::Request("the credential contains characters not allowed in a header".into())
        })?;
        // Keeps the value out of any debug or trace output of reqwest/hyper.
        value.set_sensitive(true);
        Ok(value)
    }

    async fn send_once(&self, body: &[u8], id: &str) -> (Option<Reading>, Result<(), Attempt>) {
        let auth = match self.authorization("POST", &self.endpoint, &[]) {
            Ok(v) => v,
            Err(e) => return (None, Err(Attempt::Fatal(e))),
        };
        let request = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth)
            .body(body.to_vec());
        match exchange(request, MAX_RESPONSE_BYTES).await {
            Ok((status, reading, bytes)) => (Some(reading), classify(status, reading, &bytes, id)),
            Err((reading, attempt)) => (reading, Err(attempt)),
        }
    }
}

/// Sends a request and reads its answer (at most `limit` bytes): the
/// status, what the headers said, and the body; or why there is no usable
/// answer.
async fn exchange(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<(StatusCode, Reading, Vec<u8>), (Option<Reading>, Attempt)> {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_builder() => return Err((None, Attempt::Fatal(transport(&e)))),
        Err(e) => {
            return Err((
                None,
                Attempt::Retryable {
                    error: transport(&e),
                    retry_after: None,
                    unconnected: e.is_connect(),
                },
            ))
        }
    };
    let status = response.status();
    let reading = Reading::from_headers(response.headers());
    match read_capped(response, limit).await {
        Ok(bytes) => Ok((status, reading, bytes)),
        Err(e) => Err((Some(reading), e)),
    }
}

/// The body, read chunk by chunk (under the client's timeout) up to
/// `limit` bytes; a larger one is dropped unread.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Attempt> {
    let code = response.status().as_u16();
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > limit {
                    return Err(Attempt::Fatal(ApiError::NotConfirmed {
                        status: code,
                        message: format!(
                            "the response body is larger than {} MiB; it was not read",
                            limit >> 20
                        ),
                    }));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => return Err(Attempt::retryable(transport(&e))),
        }
    }
}

/// A confirmation is a 2xx whose `data.id` is the media sent and whose
/// `errors` is absent or empty; anything else is not.
fn classify(status: StatusCode, reading: Reading, body: &[u8], id: &str) -> Result<(), Attempt> {
    let code = status.as_u16();
    let status_error = || ApiError::Status {
        status: code,
        message: problem::describe(body),
    };
    if status.is_success() {
        let parsed: problem::Body = serde_json::from_slice(body).map_err(|e| {
            Attempt::retryable(ApiError::Transport(format!(
                "HTTP {code} with an unreadable body: {e}"
            )))
        })?;
        if !parsed.errors.is_empty() {
            return Err(Attempt::Fatal(ApiError::Rejected {
                status: code,
                message: problem::join(&parsed.errors),
            }));
        }
        let confirmed = parsed
            .data
            .as_ref()
            .and_then(|d| d.get("id"))
            .and_then(serde_json::Value::as_str);
        return match confirmed {
            Some(answered) if answered == id => Ok(()),
            Some(answered) => Err(Attempt::Fatal(ApiError::NotConfirmed {
                status: code,
                message: format!("the answer is about media `{answered}`, not `{id}`"),
            })),
            None => Err(Attempt::Fatal(ApiError::NotConfirmed {
                status: code,
                message: "the answer has no `data.id`".into(),
            })),
        };
    }
    if status.is_redirection() {
        return Err(Attempt::Fatal(ApiError::Status {
            status: code,
            message: "redirects are not followed; check --api-url".into(),
        }));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Attempt::RateLimited {
            reading,
            error: status_error(),
        });
    }
    if status.is_server_error() {
        return Err(Attempt::Retryable {
            error: status_error(),
            retry_after: reading.retry_after,
            unconnected: false,
        });
    }
    Err(Attempt::Fatal(status_error()))
}

/// The error and its causes in one line ("connection closed before message
/// completed" sits in a source, not in reqwest's own message).
fn transport(e: &reqwest::Error) -> ApiError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::Transport(text)
}

/// A process holding credentials writes no core dump and cannot be read
/// through /proc by other processes of the same user (a dump held 11
/// copies of the token).
fn forbid_core_dumps() {
    use rustix::process::{set_dumpable_behavior, DumpableBehavior};
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        tracing::warn!("cannot turn off core dumps: {e}");
    }
}

/// Capped exponential backoff with full jitter: uniform in [0, min(cap, base·2ⁿ)].
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_turns_off_core_dumps() {
        let settings = ClientSettings {
            api_url: Url::parse("http://127.0.0.1:9").unwrap(),
            auth: Auth::Bearer(Secret::new("t")),
            max_retries: 0,
            timeout: Duration::from_secs(1),
            concurrency: 1,
        };
        let _client = Client::new(settings).unwrap();
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }

    #[test]
    fn backoff_is_capped() {
        for n in 0..40 {
            assert!(backoff(n) <= BACKOFF_CAP);
        }
    }

    #[test]
    fn a_200_with_errors_is_a_failure() {
        let body = br#"{"data":{"id":"1"},"errors":[{"title":"Invalid Request","detail":"bad"}]}"#;
        let r = classify(StatusCode::OK, Reading::default(), body, "1");
        assert!(matches!(r, Err(Attempt::Fatal(ApiError::Rejected { .. }))));
    }

    #[test]
    fn a_400_is_not_retried_and_a_503_is() {
        let none = Reading::default();
        let body = br#"{"title":"Invalid Request","detail":"bad id","status":400}"#;
        match classify(StatusCode::BAD_REQUEST, none, body, "1") {
            Err(Attempt::Fatal(e)) => {
                assert_eq!(e.to_string(), "HTTP 400: Invalid Request: bad id");
            }
            _ => panic!("400 must be fatal"),
        }
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, none, b"", "1"),
            Err(Attempt::Retryable { .. })
        ));
    }
}
