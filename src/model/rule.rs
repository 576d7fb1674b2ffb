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
    UnusedExemption,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Rule::Missing,
        Rule::Placeholder,
        Rule::Filename,
        Rule::TooShort,
        Rule::RedundantPrefix,
        Rule::Duplicate,
        Rule::UrlOnly,
        Rule::NoWords,
        Rule::Whitespace,
        Rule::UnusedExemption,
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
            Rule::UnusedExemption => "alt-text/unused-exemption",
        }
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// The rule `id` names, or an error that says which rule was meant:
    /// the one message for an unknown rule ID, wherever one is written
    /// (`lint.ignore` in a manifest, `xmeta.yaml`, `lint --explain`).
    pub fn parse(id: &str) -> Result<Rule, UnknownRule> {
        Rule::from_id(id).ok_or_else(|| UnknownRule {
            name: crate::untrusted::neutralise(id, 60),
            meant: crate::manifest::schema::suggest(id, Rule::ALL.iter().map(|r| r.id()))
                // `too-short` for `alt-text/too-short`.
                .or_else(|| {
                    Rule::ALL
                        .iter()
                        .map(|r| r.id())
                        .find(|r| r.strip_prefix("alt-text/") == Some(id))
                }),
        })
    }
}

/// A rule ID that names no rule, and the rule probably meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownRule {
    /// As written, neutralised.
    pub name: String,
    pub meant: Option<&'static str>,
}

impl UnknownRule {
    /// `did you mean `alt-text/too-short`?`, or where the rules are listed.
    pub fn help(&self) -> String {
        match self.meant {
            Some(rule) => format!("did you mean `{rule}`?"),
            None => "`xmeta lint --list-rules` lists the rules".to_string(),
        }
    }
}

impl std::fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown rule `{}`", self.name)
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
    /// A boxed slice: 16 bytes, where a vector took 24 in every media a
    /// watch keeps.
    pub found: Box<[(Rule, String)]>,
}
