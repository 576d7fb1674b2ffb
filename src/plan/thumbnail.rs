//! Which image URLs a review may show. X's read answers name each media's
//! image, but an answer is untrusted: only `https` on X's own media hosts,
//! with a plain path, becomes an `<img>`; anything else is dropped (and
//! counted), so an answer cannot make a comment load another site or
//! inject markup.

use std::collections::BTreeMap;

use crate::model::MediaId;

/// The images a review shows beside its rows: each URL passed `checked`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Previews {
    pub urls: BTreeMap<MediaId, String>,
    /// URLs the state held that `checked` refused (a host since removed
    /// from `review.media_hosts`, or a forged state): not shown.
    pub dropped: usize,
    /// The hosts they were checked against (for the warning to name).
    pub hosts: Vec<String>,
}

impl Previews {
    /// The URLs of `recorded` that a review may show against `hosts`.
    pub fn checked(recorded: BTreeMap<MediaId, String>, hosts: Vec<String>) -> Previews {
        let mut previews = Previews {
            hosts,
            ..Previews::default()
        };
        for (id, url) in recorded {
            match checked(&url, &previews.hosts) {
                Some(url) => {
                    previews.urls.insert(id, url);
                }
                None => previews.dropped += 1,
            }
        }
        previews
    }
}

/// X's media hosts: photos and video previews are served from these.
pub const MEDIA_HOSTS: [&str; 2] = ["pbs.twimg.com", "video.twimg.com"];

/// `url` if a review may show it (`hosts`: X's media hosts, or those of
/// `review.media_hosts`), as a URL with only safe characters.
pub fn checked(url: &str, hosts: &[String]) -> Option<String> {
    if url.len() > 512 {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let plain_path = parsed
        .path()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    let ok = parsed.scheme() == "https"
        && hosts.iter().any(|h| h == host)
        && parsed.port().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && plain_path
        && !parsed.path().contains("..");
    ok.then(|| format!("https://{host}{}", parsed.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_https_urls_on_x_media_hosts_pass() {
        let x: Vec<String> = MEDIA_HOSTS.iter().map(ToString::to_string).collect();
        let checked = |url: &str| checked(url, &x);
        assert_eq!(
            checked("https://pbs.twimg.com/media/Fx1_a-b.jpg").as_deref(),
            Some("https://pbs.twimg.com/media/Fx1_a-b.jpg")
        );
        for bad in [
            "http://pbs.twimg.com/media/a.jpg",
            "https://evil.example/a.jpg",
            "https://pbs.twimg.com.evil.example/a.jpg",
            "https://user@pbs.twimg.com/a.jpg",
            "https://pbs.twimg.com:8443/a.jpg",
            "https://pbs.twimg.com/a.jpg?x=\"><script>",
            "https://pbs.twimg.com/a%22onerror.jpg",
            "https://pbs.twimg.com/a.jpg#x",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
        ] {
            assert_eq!(checked(bad), None, "{bad}");
        }
    }
}
