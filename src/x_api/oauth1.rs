//! OAuth 1.0a request signing (RFC 5849, HMAC-SHA1). A JSON body is not
//! form-encoded, so it is not part of the signature base string.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::x_api::Secret;

/// RFC 3986 unreserved characters stay; everything else is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn pct(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

#[derive(Clone, Debug)]
pub struct OAuth1 {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    pub token: Secret,
    pub token_secret: Secret,
}

/// `METHOD&url&params`, with every key and value percent-encoded and the
/// parameters sorted by encoded key, then value.
pub fn signature_base_string(method: &str, base_url: &str, params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params.iter().map(|(k, v)| (pct(k), pct(v))).collect();
    encoded.sort();
    let joined = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_uppercase(),
        pct(base_url),
        pct(&joined)
    )
}

pub fn sign(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", pct(consumer_secret), pct(token_secret));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(base_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl OAuth1 {
    /// The `Authorization` header for one request. `extra` holds query and
    /// form parameters (none for a JSON POST).
    pub fn header(
        &self,
        method: &str,
        base_url: &str,
        extra: &[(&str, &str)],
        nonce: &str,
        timestamp: u64,
    ) -> String {
        let timestamp = timestamp.to_string();
        let oauth = [
            ("oauth_consumer_key", self.consumer_key.expose()),
            ("oauth_nonce", nonce),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", timestamp.as_str()),
            ("oauth_token", self.token.expose()),
            ("oauth_version", "1.0"),
        ];
        let params: Vec<_> = oauth.iter().chain(extra).copied().collect();
        let base = signature_base_string(method, base_url, &params);
        let signature = sign(
            &base,
            self.consumer_secret.expose(),
            self.token_secret.expose(),
        );
        let mut parts: Vec<String> = oauth
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", pct(v)))
            .collect();
        parts.push(format!("oauth_signature=\"{}\"", pct(&signature)));
        parts.sort();
        format!("OAuth {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // X's documented worked example, "Creating a signature"
    // (developer.x.com › authentication › oauth-1-0a › creating-a-signature).
    const PARAMS: &[(&str, &str)] = &[
        (
            "status",
            "Hello Ladies + Gentlemen, a signed OAuth request!",
        ),
        ("include_entities", "true"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
        ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1318622958"),
        (
            "oauth_token",
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        ),
        ("oauth_version", "1.0"),
    ];
    const CONSUMER_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
    const TOKEN_SECRET: &str = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE";

    #[test]
    fn matches_the_documented_base_string_and_signature() {
        let base = signature_base_string(
            "post",
            "https://api.twitter.com/1.1/statuses/update.json",
            PARAMS,
        );
        assert_eq!(
            base,
            "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
        );
        assert_eq!(
            sign(&base, CONSUMER_SECRET, TOKEN_SECRET),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    #[test]
    fn header_carries_the_signature_of_its_own_parameters() {
        let creds = OAuth1 {
            consumer_key: Secret::new("xvz1evFS4wEEPTGEFPHBog"),
            consumer_secret: Secret::new(CONSUMER_SECRET),
            token: Secret::new("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
            token_secret: Secret::new(TOKEN_SECRET),
        };
        let header = creds.header(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &PARAMS[..2],
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            1_318_622_958,
        );
        assert!(header.starts_with("OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\""));
        assert!(
            header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""),
            "{header}"
        );
    }
}
