//! Reading X's error bodies: RFC 7807 problems, `{code, message}` errors,
//! and the `errors` array that a 200 can carry.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    /// X's problem type URI, e.g. `https://api.x.com/2/problems/invalid-request`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Problem {
    pub fn text(&self) -> String {
        let parts: Vec<String> = [&self.title, &self.detail, &self.message]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        let text = if parts.is_empty() {
            match &self.code {
                Some(code) => format!("error code {code}"),
                None => "no details given".into(),
            }
        } else {
            parts.join(": ")
        };
        match self.kind.as_deref() {
            Some(kind) if !kind.is_empty() && kind != "about:blank" => format!("{text} ({kind})"),
            _ => text,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Body {
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub errors: Vec<Problem>,
    #[serde(flatten)]
    pub problem: Problem,
}

/// What an error body says, in one line.
pub fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => join(&b.errors),
        Ok(b) => b.problem.text(),
        Err(_) => {
            // Cut later, by the caller's scrubbing: a cut here could
            // leave half of an echoed secret that no longer matches.
            let text = String::from_utf8_lossy(body);
            if text.trim().is_empty() {
                "empty response body".into()
            } else {
                text.into_owned()
            }
        }
    }
}

pub fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::text)
        .collect::<Vec<_>>()
        .join("; ")
}
