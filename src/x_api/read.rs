//! Reading alt text back from X: `GET /2/media?media_keys=…&media.fields=alt_text,…`,
//! at most 100 keys a request, paced and retried like the posts. X has no
//! documented read-back for the other metadata fields. The same requests
//! ask for the media's URL (a video's preview image), which a review
//! shows beside its alt text: at no extra cost.

use std::collections::HashMap;

use reqwest::header::AUTHORIZATION;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::{exchange, problem, ApiError, Attempt, Client, Reading};

pub const READ_PATH: &str = "/2/media";
/// X's most keys per lookup.
pub const KEYS_PER_READ: usize = 100;

/// What X says of one media key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// The media exists: its alt text, if it has one, and the URL of its
    /// image (a photo's own, a video's preview) as X gave it, unchecked.
    Found {
        alt_text: Option<String>,
        preview: Option<String>,
    },
    /// X does not know the key (the media was deleted, or the key is wrong).
    NotFound,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Vec<Item>,
    #[serde(default)]
    errors: Vec<Missing>,
}

#[derive(Deserialize)]
struct Item {
    media_key: String,
    #[serde(default)]
    alt_text: Option<String>,
    /// `photo`, `video` or `animated_gif`, when X says.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    preview_image_url: Option<String>,
}

/// What each read asks X for.
const MEDIA_FIELDS: &str = "alt_text,type,url,preview_image_url";

/// X's longest alt text, in characters: a longer "live" text is no text
/// X holds, and must not become a record.
const MAX_ALT_TEXT_CHARS: usize = 1000;

/// The media type a key names by its prefix (`3_` photo, ...).
fn type_of_key(key: &str) -> Option<&'static str> {
    match key.split_once('_')?.0 {
        "3" => Some("photo"),
        "16" => Some("animated_gif"),
        "7" | "13" => Some("video"),
        _ => None,
    }
}

/// Why an item of a read answer cannot be believed, if it cannot: it
/// names a key not asked for, or one already answered (the last would
/// silently win), a type its key does not name, or an alt text X could
/// not hold. The whole answer is then refused: nothing from it is recorded.
fn distrust(item: &Item, keys: &[String], live: &HashMap<String, Live>) -> Option<String> {
    let key = crate::untrusted::neutralise(&item.media_key, 40);
    if !keys.contains(&item.media_key) {
        return Some(format!(
            "the answer names media key `{key}`, which was not asked for"
        ));
    }
    if live.contains_key(&item.media_key) {
        return Some(format!("the answer names media key `{key}` twice"));
    }
    if let (Some(kind), Some(wanted)) = (&item.kind, type_of_key(&item.media_key)) {
        if kind != wanted {
            return Some(format!(
                "the answer says media key `{key}` is a {}, not a {wanted}",
                crate::untrusted::neutralise(kind, 20)
            ));
        }
    }
    let chars = item.alt_text.as_deref().map_or(0, |t| t.chars().count());
    if chars > MAX_ALT_TEXT_CHARS {
        return Some(format!(
            "the answer gives media key `{key}` an alt text of {chars} characters, over X's limit of {MAX_ALT_TEXT_CHARS}"
        ));
    }
    None
}

#[derive(Deserialize)]
struct Missing {
    #[serde(default)]
    resource_id: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl Client {
    /// The live alt text of each key (at most `KEYS_PER_READ`).
    pub async fn read_alt_texts(&self, keys: &[String]) -> Result<HashMap<String, Live>, ApiError> {
        let mut url = self
            .endpoint
            .join(READ_PATH)
            .map_err(|e| ApiError::Request(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("media_keys", &keys.join(","))
            .append_pair("media.fields", MEDIA_FIELDS);
        let params = [
            ("media.fields".to_string(), MEDIA_FIELDS.to_string()),
            ("media_keys".to_string(), keys.join(",")),
        ];
        self.with_retries("read", || self.get_once(&url, &params, keys))
            .await
    }

    async fn get_once(
        &self,
        url: &Url,
        params: &[(String, String)],
        keys: &[String],
    ) -> (Option<Reading>, Result<HashMap<String, Live>, Attempt>) {
        let auth = match self.authorization("GET", url, params) {
            Ok(v) => v,
            Err(e) => return (None, Err(Attempt::Fatal(e))),
        };
        let request = self.http.get(url.clone()).header(AUTHORIZATION, auth);
        match exchange(request, super::MAX_RESPONSE_BYTES).await {
            Ok((status, reading, bytes)) => {
                (Some(reading), classify_read(status, reading, &bytes, keys))
            }
            Err((reading, attempt)) => (reading, Err(attempt)),
        }
    }
}

/// What a read answered with anything but a 2xx means: wait for the
/// window (429), retry (5xx), or stop (the rest; a redirect is never
/// followed).
pub(super) fn unsuccessful(status: StatusCode, reading: Reading, body: &[u8]) -> Attempt {
    let code = status.as_u16();
    let message = if status.is_redirection() {
        "redirects are not followed; check --api-url".into()
    } else {
        problem::describe(body)
    };
    let error = ApiError::Status {
        status: code,
        message,
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS => Attempt::RateLimited { reading, error },
        s if s.is_server_error() => Attempt::Retryable {
            error,
            retry_after: reading.retry_after,
            unconnected: false,
        },
        _ => Attempt::Fatal(error),
    }
}

fn classify_read(
    status: StatusCode,
    reading: Reading,
    body: &[u8],
    keys: &[String],
) -> Result<HashMap<String, Live>, Attempt> {
    let code = status.as_u16();
    if !status.is_success() {
        return Err(unsuccessful(status, reading, body));
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        Attempt::retryable(ApiError::Transport(format!(
            "HTTP {code} with an unreadable body: {e}"
        )))
    })?;
    let mut live = HashMap::new();
    for item in answer.data {
        if let Some(why) = distrust(&item, keys, &live) {
            return Err(Attempt::Fatal(ApiError::NotConfirmed {
                status: code,
                message: why,
            }));
        }
        live.insert(
            item.media_key,
            Live::Found {
                alt_text: item.alt_text,
                preview: item.url.or(item.preview_image_url),
            },
        );
    }
    for missing in answer.errors {
        let not_found = missing
            .kind
            .as_deref()
            .is_some_and(|k| k.ends_with("resource-not-found"))
            || missing.title.as_deref() == Some("Not Found Error");
        let key = missing.resource_id.or(missing.value);
        if let (true, Some(key)) = (not_found, key) {
            if keys.contains(&key) {
                live.entry(key).or_insert(Live::NotFound);
            }
        }
    }
    // Every key must be answered one way or the other.
    if let Some(silent) = keys.iter().find(|k| !live.contains_key(*k)) {
        return Err(Attempt::Fatal(ApiError::NotConfirmed {
            status: code,
            message: format!("the answer does not mention media key `{silent}`"),
        }));
    }
    Ok(live)
}
