//! The emulator's account and its posts, for `xmeta import`: `GET
//! /2/users/me`, `GET /2/users/by/username/{name}` and `GET
//! /2/users/{id}/tweets` in X's shapes (posts in `data`, their media in
//! `includes.media`, `meta.next_token`), with X's rules: `max_results`
//! 5..=100, only the fields asked for, `start_time` (inclusive) and
//! `end_time` (exclusive), `since_id`/`until_id`, and only the most
//! recent 3,200 posts reachable. Seeded deterministically: some media in
//! two posts, some without alt text, some from other accounts' posts
//! (retweets).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Only the most recent posts of an account are reachable.
pub const HORIZON: usize = 3_200;
/// The emulated account.
pub const USER_ID: &str = "2244994945";
pub const USERNAME: &str = "xmeta_demo";
/// The account the seeded retweets come from.
pub const OTHER_USER_ID: &str = "783214";
/// The newest seeded post: 2026-11-30T12:00:00Z; each older one 6 h before.
pub const NEWEST_POST_AT: u64 = 1_796_040_000;
const POST_SPACING_SECS: u64 = 6 * 60 * 60;
const POST_ID_BASE: u64 = 1_860_000_000_000_000_000;
const OWN_MEDIA_BASE: u64 = 1_850_000_000_000_000_000;
const OTHER_MEDIA_BASE: u64 = 1_840_000_000_000_000_000;

#[derive(Clone, Debug)]
pub struct Post {
    pub id: u64,
    pub author_id: String,
    /// Unix seconds.
    pub created_at: u64,
    pub media_keys: Vec<String>,
    /// A retweet: its media are the other account's.
    pub retweet_of: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Media {
    pub key: String,
    /// X's `type`: `photo`, `video` or `animated_gif`.
    pub kind: &'static str,
    pub alt_text: Option<String>,
}

/// What a seeded timeline holds, for tests to compare an import with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub posts: usize,
    /// Distinct media of the account's own posts.
    pub own_media: usize,
    /// Of those, in more than one post.
    pub shared: usize,
    /// Of those, without alt text.
    pub without_alt_text: usize,
    /// Distinct media only in other accounts' posts (retweets).
    pub others_media: usize,
}

#[derive(Debug, Default)]
pub struct Timeline {
    /// Newest first.
    pub posts: Vec<Post>,
    pub media: BTreeMap<String, Media>,
    /// Pages served in each 15-minute window, for the rate-limit headers
    /// (X's 900 reads per 15 minutes) when no rate-limit fault is set.
    pub windows: BTreeMap<u64, u64>,
}

impl Timeline {
    /// `posts` posts (newest first, 6 h apart) holding `media` distinct
    /// media in all: every 10th post a retweet with one media of another
    /// account, every 10th (offset 4) without media, the account's own
    /// media spread over the rest (1 to 4 a post), every 20th of them also
    /// in the next post, every 8th without alt text, some videos and GIFs.
    pub fn seeded(posts: usize, media: usize) -> Timeline {
        let mut t = Timeline::default();
        let mut owners = Vec::new();
        for i in 0..posts {
            let id = POST_ID_BASE + (posts - i) as u64;
            let created_at = NEWEST_POST_AT.saturating_sub(i as u64 * POST_SPACING_SECS);
            let mut post = Post {
                id,
                author_id: USER_ID.to_string(),
                created_at,
                media_keys: Vec::new(),
                retweet_of: None,
            };
            if i % 10 == 9 {
                let n = (i / 10) as u64;
                let key = format!("3_{}", OTHER_MEDIA_BASE + n);
                t.media.insert(
                    key.clone(),
                    Media {
                        key: key.clone(),
                        kind: "photo",
                        alt_text: Some(format!("A photo by another account, number {n}")),
                    },
                );
                post.media_keys.push(key);
                post.retweet_of = Some(POST_ID_BASE - 1_000_000 + n);
            } else if i % 10 != 4 {
                owners.push(i);
            }
            t.posts.push(post);
        }
        let others = t.media.len();
        let own = media.saturating_sub(others);
        assert!(
            own <= owners.len() * 3,
            "{media} media do not fit in {posts} posts"
        );
        for k in 0..own {
            if owners.is_empty() {
                break;
            }
            let (kind, prefix) = match k % 13 {
                5 => ("video", 7),
                6 => ("animated_gif", 16),
                _ => ("photo", 3),
            };
            let key = format!("{prefix}_{}", OWN_MEDIA_BASE + k as u64);
            let alt_text = match k % 50 {
                _ if k % 8 == 3 => None,
                7 => Some(format!(
                    "Quote \"this\": a #tag, 'apostrophe' and é — media {k}"
                )),
                _ => Some(format!("A described scene, media number {k}")),
            };
            t.media.insert(
                key.clone(),
                Media {
                    key: key.clone(),
                    kind,
                    alt_text,
                },
            );
            let slot = k % owners.len();
            t.posts[owners[slot]].media_keys.push(key.clone());
            if k % 20 == 0 {
                let next = owners[(slot + 1) % owners.len()];
                if t.posts[next].media_keys.len() < 4 {
                    t.posts[next].media_keys.push(key);
                }
            }
        }
        t
    }

    /// What the reachable posts hold (the horizon applied).
    pub fn census(&self) -> Census {
        let reachable = &self.posts[..self.posts.len().min(HORIZON)];
        let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
        let mut others = std::collections::BTreeSet::new();
        for post in reachable {
            for key in &post.media_keys {
                if post.retweet_of.is_some() || post.author_id != USER_ID {
                    others.insert(key.as_str());
                } else {
                    *uses.entry(key).or_default() += 1;
                }
            }
        }
        Census {
            posts: reachable.len(),
            own_media: uses.len(),
            shared: uses.values().filter(|n| **n > 1).count(),
            without_alt_text: uses
                .keys()
                .filter(|k| self.media.get(**k).is_some_and(|m| m.alt_text.is_none()))
                .count(),
            others_media: others.iter().filter(|k| !uses.contains_key(**k)).count(),
        }
    }
}

/// Whether the path is one of the account's endpoints.
pub fn serves(path: &str) -> bool {
    path == "/2/users/me" || path.starts_with("/2/users/")
}

fn params(query: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn invalid(detail: &str) -> (u16, Value) {
    (
        400,
        json!({
            "errors": [{"parameters": {}, "message": detail}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.x.com/2/problems/invalid-request",
        }),
    )
}

fn user() -> Value {
    json!({"data": {"id": USER_ID, "name": "xmeta demo", "username": USERNAME}})
}

/// The answer to a GET on one of the account's endpoints.
pub fn answer(timeline: &Timeline, path: &str, query: &str) -> (u16, Value) {
    if path == "/2/users/me" {
        return (200, user());
    }
    if let Some(name) = path.strip_prefix("/2/users/by/username/") {
        if name.eq_ignore_ascii_case(USERNAME) {
            return (200, user());
        }
        return (
            200,
            json!({"errors": [{
                "value": name,
                "detail": format!("Could not find user with username: [{name}]."),
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "username",
                "resource_id": name,
                "type": "https://api.x.com/2/problems/resource-not-found",
            }]}),
        );
    }
    let Some(id) = path
        .strip_prefix("/2/users/")
        .and_then(|rest| rest.strip_suffix("/tweets"))
    else {
        return (
            404,
            json!({"title": "Not Found", "status": 404, "detail": "no such endpoint", "type": "about:blank"}),
        );
    };
    if id != USER_ID {
        return (
            200,
            json!({"errors": [{
                "value": id,
                "detail": format!("Could not find user with id: [{id}]."),
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": id,
                "type": "https://api.x.com/2/problems/resource-not-found",
            }]}),
        );
    }
    page(timeline, &params(query))
}

fn rfc3339(text: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339(text).ok()?;
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn listed(p: &BTreeMap<String, String>, name: &str) -> Vec<String> {
    p.get(name)
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn page(timeline: &Timeline, p: &BTreeMap<String, String>) -> (u16, Value) {
    let max = match p.get("max_results").map(|v| v.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (5..=100).contains(&n) => n,
        Some(_) => {
            return invalid("The `max_results` query parameter value is not between 5 and 100")
        }
    };
    let mut bounds = [None, None];
    for (i, name) in ["start_time", "end_time"].iter().enumerate() {
        if let Some(v) = p.get(*name) {
            match rfc3339(v) {
                Some(t) => bounds[i] = Some(t),
                None => return invalid(&format!("Invalid {name}: `{v}`")),
            }
        }
    }
    let ids = [p.get("since_id"), p.get("until_id")].map(|v| v.and_then(|v| v.parse::<u64>().ok()));
    let offset = match p.get("pagination_token") {
        None => 0,
        Some(t) => match t
            .strip_prefix("pg")
            .and_then(|n| usize::from_str_radix(n, 16).ok())
        {
            Some(n) => n,
            None => return invalid("The `pagination_token` query parameter value is invalid"),
        },
    };
    let fields = listed(p, "tweet.fields");
    let expansions = listed(p, "expansions");
    let media_fields = listed(p, "media.fields");
    let reachable = &timeline.posts[..timeline.posts.len().min(HORIZON)];
    let matching: Vec<&Post> = reachable
        .iter()
        .filter(|post| bounds[0].is_none_or(|s| post.created_at >= s))
        .filter(|post| bounds[1].is_none_or(|e| post.created_at < e))
        .filter(|post| ids[0].is_none_or(|s| post.id > s))
        .filter(|post| ids[1].is_none_or(|u| post.id < u))
        .collect();
    let posts: Vec<&Post> = matching.iter().skip(offset).take(max).copied().collect();
    if posts.is_empty() {
        return (200, json!({"meta": {"result_count": 0}}));
    }
    let with_media = expansions.iter().any(|e| e == "attachments.media_keys");
    let mut data = Vec::new();
    let mut included: Vec<&str> = Vec::new();
    for post in &posts {
        let mut item = json!({
            "id": post.id.to_string(),
            "text": format!("Post {}", post.id),
            "edit_history_tweet_ids": [post.id.to_string()],
        });
        if fields.iter().any(|f| f == "created_at") {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(post.created_at);
            item["created_at"] = json!(humantime::format_rfc3339_millis(at).to_string());
        }
        if fields.iter().any(|f| f == "author_id") {
            item["author_id"] = json!(post.author_id);
        }
        if let (true, Some(original)) = (
            fields.iter().any(|f| f == "referenced_tweets"),
            post.retweet_of,
        ) {
            item["referenced_tweets"] = json!([{"type": "retweeted", "id": original.to_string()}]);
        }
        if !post.media_keys.is_empty() && (with_media || fields.iter().any(|f| f == "attachments"))
        {
            item["attachments"] = json!({"media_keys": post.media_keys});
        }
        if with_media {
            for key in &post.media_keys {
                if !included.contains(&key.as_str()) {
                    included.push(key);
                }
            }
        }
        data.push(item);
    }
    let mut answer = json!({
        "data": data,
        "meta": {
            "result_count": posts.len(),
            "newest_id": posts[0].id.to_string(),
            "oldest_id": posts[posts.len() - 1].id.to_string(),
        },
    });
    if offset + posts.len() < matching.len() {
        answer["meta"]["next_token"] = json!(format!("pg{:x}", offset + posts.len()));
    }
    if !included.is_empty() {
        let media: Vec<Value> = included
            .iter()
            .filter_map(|k| timeline.media.get(*k))
            .map(|m| media_item(m, &media_fields))
            .collect();
        answer["includes"] = json!({"media": media});
    }
    (200, answer)
}

fn media_item(m: &Media, fields: &[String]) -> Value {
    let asked = |f: &str| fields.iter().any(|x| x == f);
    let id = m.key.split_once('_').map_or("", |(_, id)| id);
    let mut item = json!({"media_key": m.key, "type": m.kind});
    if asked("alt_text") {
        if let Some(text) = &m.alt_text {
            item["alt_text"] = json!(text);
        }
    }
    if asked("url") && m.kind == "photo" {
        item["url"] = json!(format!("https://pbs.twimg.com/media/{id}.jpg"));
    }
    if asked("preview_image_url") && m.kind != "photo" {
        item["preview_image_url"] = json!(format!(
            "https://pbs.twimg.com/ext_tw_video_thumb/{id}/pu/img/{id}.jpg"
        ));
    }
    item
}
