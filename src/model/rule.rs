//! The alt-text rules by identity: their IDs, as manifests name them in
//! `lint.ignore` and the linter reports them. What each rule checks and
//! its level are the linter's (`lint/rules.rs`).

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Missing,
    Placeholder,
    Filename,
    TooShort,
    RedundantPrefix,
    Duplicate,
    UrlOnly,
    NoWords,
    Whitespace,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::Missing,
        Rule::Placeholder,
        Rule::Filename,
        Rule::TooShort,
        Rule::RedundantPrefix,
        Rule::Duplicate,
        Rule::UrlOnly,
        Rule::NoWords,
        Rule::Whitespace,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::Missing => "alt-text/missing",
            Rule::Placeholder => "alt-text/placeholder",
            Rule::Filename => "alt-text/filename",
            Rule::TooShort => "alt-text/too-short",
            Rule::RedundantPrefix => "alt-text/redundant-prefix",
            Rule::Duplicate => "alt-text/duplicate",
            Rule::UrlOnly => "alt-text/url-only",
            Rule::NoWords => "alt-text/no-words",
            Rule::Whitespace => "alt-text/whitespace",
        }
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// What the linter found in one alt text under one set of rule options
/// (`options`, a hash of them): its folded hash, for the duplicate rule,
/// and the per-text findings. Kept with the declared metadata (see
/// `manifest::Declared::text_check`) so that a watch cycle does not check
/// again the texts of files that did not change.
#[derive(Clone, Debug)]
pub struct TextCheck {
    pub options: u64,
    pub hash: u64,
    pub found: Vec<(Rule, String)>,
}
