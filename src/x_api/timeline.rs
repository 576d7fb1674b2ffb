//! Reading an account and its posted media, for `xmeta import`: `GET
//! /2/users/me`, `GET /2/users/by/username/{name}` and `GET
//! /2/users/{id}/tweets` with the media expansion, one page a call, paced
//! and retried like every other call. An answer is checked before it is
//! used: a page with more posts than asked, a post with more than X's 4
//! media, a media key that is not `<type>_<id>` or disagrees with its
//! type, or a post whose media the answer does not describe is refused
//! whole, as a drift read is.

use std::collections::HashMap;

use reqwest::header::AUTHORIZATION;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::{exchange, problem, ApiError, Attempt, Client, Reading};
use crate::model::MediaId;
use crate::time::Timestamp;

/// X's most posts a page.
pub const POSTS_PER_PAGE: usize = 100;
/// X attaches at most 4 media to a post.
const MEDIA_PER_POST: usize = 4;
/// A full page: 100 posts and 400 media, each alt text up to 1,000
/// characters that JSON may escape to 6 bytes each, is about 2.5 MB.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// The account whose posts are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub username: String,
}

/// Which page to read.
#[derive(Clone, Debug, Default)]
pub struct PageQuery {
    pub user_id: String,
    /// Posts at or after (`start_time`).
    pub since: Option<Timestamp>,
    /// Posts before (`end_time`).
    pub until: Option<Timestamp>,
    /// Posts older than this one (`until_id`): where an interrupted import
    /// continues.
    pub until_id: Option<u64>,
    pub token: Option<String>,
}

/// X's media types, by their media-key prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Photo,
    Video,
    AnimatedGif,
}

/// One media as the page describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedMedia {
    pub id: MediaId,
    /// `3_<id>`, `7_<id>`, `13_<id>` or `16_<id>`, as X gave it.
    pub key: String,
    pub kind: MediaKind,
    pub alt_text: Option<String>,
}

/// One post with its media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub id: u64,
    pub created_at: Timestamp,
    /// Posted by the account itself, not a retweet of another's post
    /// (whose media are the other account's).
    pub own: bool,
    pub media: Vec<PostedMedia>,
}

/// One page of posts, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub posts: Vec<Post>,
    pub next_token: Option<String>,
}

#[derive(Deserialize)]
struct UserAnswer {
    data: Option<UserData>,
    #[serde(default)]
    errors: Vec<problem::Problem>,
}

#[derive(Deserialize)]
struct UserData {
    id: String,
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct PageAnswer {
    #[serde(default)]
    data: Vec<PostData>,
    #[serde(default)]
    includes: Includes,
    #[serde(default)]
    meta: Meta,
    #[serde(default)]
    errors: Vec<problem::Problem>,
}

#[derive(Deserialize)]
struct PostData {
    id: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    author_id: Option<String>,
    #[serde(default)]
    referenced_tweets: Vec<Reference>,
    #[serde(default)]
    attachments: Attachments,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Default, Deserialize)]
struct Attachments {
    #[serde(default)]
    media_keys: Vec<String>,
}

#[derive(Default, Deserialize)]
struct Includes {
    #[serde(default)]
    media: Vec<MediaData>,
}

#[derive(Deserialize)]
struct MediaData {
    media_key: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    alt_text: Option<String>,
}

#[derive(Default, Deserialize)]
struct Meta {
    #[serde(default)]
    next_token: Option<String>,
}

impl Client {
    /// The account of the credentials (`GET /2/users/me`).
    pub async fn read_me(&self) -> Result<Account, ApiError> {
        let url = self.url("/2/users/me")?;
        self.get_json("users/me", &url, &[], super::MAX_RESPONSE_BYTES, read_user)
            .await
    }

    /// The account named `@username` (`GET /2/users/by/username/{name}`).
    pub async fn read_user_by_name(&self, username: &str) -> Result<Account, ApiError> {
        let mut url = self.url("/2/users/by/username")?;
        url.path_segments_mut()
            .map_err(|()| ApiError::Request("the API URL cannot take a path".into()))?
            .push(username);
        self.get_json(
            "users/by/username",
            &url,
            &[],
            super::MAX_RESPONSE_BYTES,
            read_user,
        )
        .await
    }

    /// One page of the account's posts with their media, newest first.
    pub async fn read_posts(&self, query: &PageQuery) -> Result<Page, ApiError> {
        let mut url = self.url("/2/users")?;
        url.path_segments_mut()
            .map_err(|()| ApiError::Request("the API URL cannot take a path".into()))?
            .push(&query.user_id)
            .push("tweets");
        let mut params = vec![
            ("max_results", POSTS_PER_PAGE.to_string()),
            ("expansions", "attachments.media_keys".to_string()),
            (
                "media.fields",
                "alt_text,type,url,preview_image_url".to_string(),
            ),
            (
                "tweet.fields",
                "created_at,author_id,referenced_tweets".to_string(),
            ),
        ];
        if let Some(since) = query.since {
            params.push(("start_time", since.to_string()));
        }
        if let Some(until) = query.until {
            params.push(("end_time", until.to_string()));
        }
        if let Some(id) = query.until_id {
            params.push(("until_id", id.to_string()));
        }
        if let Some(token) = &query.token {
            params.push(("pagination_token", token.clone()));
        }
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let mut signed: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        signed.sort();
        let user = query.user_id.clone();
        self.get_json("tweets", &url, &signed, MAX_PAGE_BYTES, move |body| {
            read_page(body, &user)
        })
        .await
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.endpoint
            .join(path)
            .map_err(|e| ApiError::Request(e.to_string()))
    }

    /// A GET whose 2xx body `parse` turns into a value (or refuses), with
    /// the pacing, retries and scrubbing of every call.
    async fn get_json<T>(
        &self,
        label: &str,
        url: &Url,
        params: &[(String, String)],
        limit: usize,
        parse: impl Fn(&[u8]) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let parse = &parse;
        self.with_retries(label, || async move {
            let auth = match self.authorization("GET", url, params) {
                Ok(v) => v,
                Err(e) => return (None, Err(Attempt::Fatal(e))),
            };
            let request = self.http.get(url.clone()).header(AUTHORIZATION, auth);
            match exchange(request, limit).await {
                Ok((status, reading, bytes)) => {
                    (Some(reading), classify(status, reading, &bytes, parse))
                }
                Err((reading, attempt)) => (reading, Err(attempt)),
            }
        })
        .await
    }
}

fn classify<T>(
    status: StatusCode,
    reading: Reading,
    body: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, Attempt> {
    if !status.is_success() {
        return Err(super::read::unsuccessful(status, reading, body));
    }
    parse(body).map_err(|e| match e {
        // A body cut short by the network is worth another try.
        ApiError::Transport(_) => Attempt::retryable(e),
        e => Attempt::Fatal(e),
    })
}

fn unreadable(e: &serde_json::Error) -> ApiError {
    ApiError::Transport(format!("HTTP 200 with an unreadable body: {e}"))
}

fn refused(message: String) -> ApiError {
    ApiError::NotConfirmed {
        status: 200,
        message,
    }
}

fn read_user(body: &[u8]) -> Result<Account, ApiError> {
    let answer: UserAnswer = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
    match answer.data {
        Some(user) if is_digits(&user.id) => Ok(Account {
            id: user.id,
            username: user.username,
        }),
        Some(user) => Err(refused(format!(
            "the user ID `{}` is not a number",
            crate::untrusted::neutralise(&user.id, 40)
        ))),
        None if !answer.errors.is_empty() => Err(ApiError::Rejected {
            status: 200,
            message: problem::join(&answer.errors),
        }),
        None => Err(refused("the answer has no `data`".into())),
    }
}

fn is_digits(s: &str) -> bool {
    (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn read_page(body: &[u8], user_id: &str) -> Result<Page, ApiError> {
    let answer: PageAnswer = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
    if answer.data.is_empty() && !answer.errors.is_empty() {
        return Err(ApiError::Rejected {
            status: 200,
            message: problem::join(&answer.errors),
        });
    }
    if answer.data.len() > POSTS_PER_PAGE {
        return Err(refused(format!(
            "the page holds {} posts, more than the {POSTS_PER_PAGE} asked for",
            answer.data.len()
        )));
    }
    let mut described: HashMap<&str, PostedMedia> = HashMap::new();
    for media in &answer.includes.media {
        let checked = check_media(media)?;
        described.insert(media.media_key.as_str(), checked);
    }
    let mut posts = Vec::with_capacity(answer.data.len());
    for post in &answer.data {
        let shown = |s: &str| crate::untrusted::neutralise(s, 40);
        let id = post
            .id
            .parse::<u64>()
            .ok()
            .filter(|_| is_digits(&post.id))
            .ok_or_else(|| refused(format!("the post ID `{}` is not a number", shown(&post.id))))?;
        let created_at = post
            .created_at
            .as_deref()
            .and_then(Timestamp::parse)
            .ok_or_else(|| refused(format!("post {id} has no readable `created_at`")))?;
        if post.attachments.media_keys.len() > MEDIA_PER_POST {
            return Err(refused(format!(
                "post {id} lists {} media, more than X's {MEDIA_PER_POST}",
                post.attachments.media_keys.len()
            )));
        }
        let mut media = Vec::new();
        for key in &post.attachments.media_keys {
            let item = described.get(key.as_str()).ok_or_else(|| {
                refused(format!(
                    "post {id} lists media key `{}`, which the answer does not describe",
                    shown(key)
                ))
            })?;
            media.push(item.clone());
        }
        let retweet = post.referenced_tweets.iter().any(|r| r.kind == "retweeted");
        let author = post.author_id.as_deref().unwrap_or(user_id);
        posts.push(Post {
            id,
            created_at,
            own: !retweet && author == user_id,
            media,
        });
    }
    Ok(Page {
        posts,
        next_token: answer.meta.next_token.filter(|t| !t.is_empty()),
    })
}

/// A media key `<prefix>_<id>` whose prefix is its type's.
fn check_media(media: &MediaData) -> Result<PostedMedia, ApiError> {
    let key = &media.media_key;
    let wrong = || {
        refused(format!(
            "media key `{}` of type `{}` is not X's `<type>_<id>` (3_ photo, 7_ or 13_ video, 16_ animated_gif)",
            crate::untrusted::neutralise(key, 40),
            crate::untrusted::neutralise(&media.kind, 20)
        ))
    };
    let (prefix, digits) = key.split_once('_').ok_or_else(wrong)?;
    let kind = match (prefix, media.kind.as_str()) {
        ("3", "photo") => MediaKind::Photo,
        ("7" | "13", "video") => MediaKind::Video,
        ("16", "animated_gif") => MediaKind::AnimatedGif,
        _ => return Err(wrong()),
    };
    let id = MediaId::parse(digits)
        .filter(|_| !crate::manifest::schema::has_leading_zero(digits))
        .ok_or_else(wrong)?;
    Ok(PostedMedia {
        id,
        key: key.clone(),
        kind,
        alt_text: media.alt_text.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(json: &serde_json::Value) -> Result<Page, ApiError> {
        read_page(json.to_string().as_bytes(), "1")
    }

    #[test]
    fn reads_posts_media_and_retweets() {
        let p = page(&serde_json::json!({
            "data": [
                {"id": "20", "created_at": "2026-11-30T12:00:00.000Z", "author_id": "1", "attachments": {"media_keys": ["3_5", "16_6"]}},
                {"id": "19", "created_at": "2026-10-01T00:00:00.000Z", "author_id": "1", "referenced_tweets": [{"type": "retweeted", "id": "7"}], "attachments": {"media_keys": ["7_8"]}},
                {"id": "18", "created_at": "2026-10-01T00:00:00.000Z"}
            ],
            "includes": {"media": [
                {"media_key": "3_5", "type": "photo", "alt_text": "a\u{202e}b"},
                {"media_key": "16_6", "type": "animated_gif"},
                {"media_key": "7_8", "type": "video"}
            ]},
            "meta": {"next_token": "abc"}
        }))
        .unwrap();
        assert_eq!(p.posts.len(), 3);
        assert!(p.posts[0].own && !p.posts[1].own && p.posts[2].own);
        assert_eq!(p.posts[0].media[0].alt_text.as_deref(), Some("a\u{202e}b"));
        assert_eq!(p.posts[0].media[1].kind, MediaKind::AnimatedGif);
        assert_eq!(p.next_token.as_deref(), Some("abc"));
    }

    #[test]
    fn refuses_wrong_keys_and_undescribed_media() {
        for (key, kind) in [
            ("3_05", "photo"),
            ("7_5", "photo"),
            ("3-5", "photo"),
            ("3_x", "photo"),
        ] {
            let e = page(&serde_json::json!({
                "data": [{"id": "2", "created_at": "2026-11-30T12:00:00Z", "attachments": {"media_keys": [key]}}],
                "includes": {"media": [{"media_key": key, "type": kind}]}
            }))
            .unwrap_err()
            .to_string();
            assert!(e.contains("is not X's `<type>_<id>`"), "{key}: {e}");
        }
        let e = page(&serde_json::json!({
            "data": [{"id": "2", "created_at": "2026-11-30T12:00:00Z", "attachments": {"media_keys": ["3_9"]}}]
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not describe"), "{e}");
    }
}
