//! The alt-text rules: each a stable ID, a default level, and a check on
//! one media's alt text. Pure functions of the text; lengths are counted
//! in Unicode code points, as X counts them.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Off,
    Warning,
    Error,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "off" => Some(Level::Off),
            "warning" => Some(Level::Warning),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Off => "off",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

pub use crate::model::Rule;

/// What the linter makes of each rule (its identity is the model's; its
/// words are the rule table's, `lint/catalog.rs`).
impl Rule {
    pub fn default_level(self) -> Level {
        self.doc().level
    }

    /// One line: what is wrong, in general (SARIF's short description).
    pub fn summary(self) -> &'static str {
        self.doc().summary
    }
}

/// Options of the rules that have them.
#[derive(Clone, Debug)]
pub struct Options {
    pub min_chars: usize,
    pub placeholder_words: Vec<String>,
    pub prefixes: Vec<String>,
}

impl Options {
    /// A hash of these options: per-text checks made under them are kept
    /// with the entry and used again only under the same options.
    pub fn key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.min_chars, &self.placeholder_words, &self.prefixes).hash(&mut h);
        h.finish()
    }
}

/// Words that only name the kind of thing, in the languages listed in the
/// README; compared after lower-casing and trimming punctuation.
pub const PLACEHOLDER_WORDS: &[&str] = &[
    "image",
    "img",
    "photo",
    "picture",
    "pic",
    "graphic",
    "screenshot",
    "untitled",
    "alt",
    "alt text",
    "alttext",
    "description",
    "todo",
    "tbd",
    "placeholder",
    "media",
    "video",
    "gif",
    // French, Spanish, Portuguese, Italian, German, Dutch
    "photo",
    "image",
    "imagen",
    "foto",
    "imagem",
    "figura",
    "immagine",
    "bild",
    "grafik",
    "afbeelding",
    "sans titre",
    "sin título",
    "sem título",
    "senza titolo",
    "unbenannt",
];

/// Openings a screen reader makes redundant: it already says "image".
pub const PREFIXES: &[&str] = &[
    "image of",
    "an image of",
    "picture of",
    "a picture of",
    "photo of",
    "a photo of",
    "graphic of",
    "screenshot of",
    "image showing",
    "photo showing",
    "image de",
    "photo de",
    "imagen de",
    "foto de",
    "imagem de",
    "immagine di",
    "bild von",
    "foto von",
];

impl Default for Options {
    fn default() -> Options {
        Options {
            min_chars: 10,
            placeholder_words: Vec::new(),
            prefixes: Vec::new(),
        }
    }
}

/// Every rule that `text` breaks (but `Missing` and `Duplicate`, which
/// need more than one text), each with the message to show.
pub fn check(text: &str, options: &Options) -> Vec<(Rule, String)> {
    let mut found = Vec::new();
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    // Placeholders are a word or two: longer texts skip the normalising
    // (this runs for every media on every plan and watch cycle). An ASCII
    // text (most alt text) with more letters and digits than any
    // placeholder cannot normalise to one; lower-casing ASCII keeps them.
    let short_text = if trimmed.is_ascii() {
        trimmed.bytes().filter(u8::is_ascii_alphanumeric).count() <= placeholder_alnums(options)
    } else {
        chars <= 40
            || options
                .placeholder_words
                .iter()
                .any(|w| w.chars().count() >= chars)
    };
    let words = if short_text {
        normalise(trimmed)
    } else {
        String::new()
    };
    if short_text
        && (PLACEHOLDER_WORDS.contains(&words.as_str())
            || options
                .placeholder_words
                .iter()
                .any(|w| normalise(w) == words))
    {
        found.push((
            Rule::Placeholder,
            format!(
                "\"{}\" is a placeholder; describe what the media shows",
                short(trimmed)
            ),
        ));
    } else if is_filename(trimmed) {
        found.push((
            Rule::Filename,
            format!(
                "\"{}\" is a file name; describe what the media shows",
                short(trimmed)
            ),
        ));
    } else if is_url(trimmed) {
        found.push((
            Rule::UrlOnly,
            "the alt text is only a URL; describe what the media shows".to_string(),
        ));
    } else if !trimmed.is_empty() && !trimmed.chars().any(char::is_alphanumeric) {
        found.push((
            Rule::NoWords,
            "the alt text has no words (only emoji, symbols or punctuation); describe the media in words".to_string(),
        ));
    } else if chars < options.min_chars {
        found.push((
            Rule::TooShort,
            format!(
                "the alt text is {chars} characters long; write at least {} that describe the media",
                options.min_chars
            ),
        ));
    }
    // Only the opening matters: its first few dozen characters, compared
    // without a lower-cased copy when they are ASCII.
    let end = trimmed
        .char_indices()
        .nth(48)
        .map_or(trimmed.len(), |(i, _)| i);
    let opening = &trimmed[..end];
    let lowered = (!opening.is_ascii()).then(|| opening.to_lowercase());
    let opens_with = |p: &str| match &lowered {
        None => opening
            .as_bytes()
            .get(..p.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(p.as_bytes())),
        Some(lowered) => lowered.starts_with(p),
    };
    if let Some(prefix) = PREFIXES
        .iter()
        .copied()
        .chain(options.prefixes.iter().map(String::as_str))
        .find(|p| opens_with(p) && chars > p.chars().count())
    {
        found.push((
            Rule::RedundantPrefix,
            format!("drop \"{prefix}\": screen readers already announce an image"),
        ));
    }
    if text != trimmed || text.contains("  ") || text.contains(['\t', '\n', '\r']) {
        found.push((
            Rule::Whitespace,
            "remove leading, trailing or doubled spaces, tabs and line breaks from the alt text"
                .to_string(),
        ));
    }
    found
}

/// The most letters and digits a placeholder word has once lower-cased.
fn placeholder_alnums(options: &Options) -> usize {
    fn alnums(w: &str) -> usize {
        w.chars()
            .flat_map(char::to_lowercase)
            .filter(|c| c.is_alphanumeric())
            .count()
    }
    static BUILT_IN: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
        PLACEHOLDER_WORDS
            .iter()
            .map(|w| alnums(w))
            .max()
            .unwrap_or(0)
    });
    options
        .placeholder_words
        .iter()
        .map(|w| alnums(w))
        .fold(*BUILT_IN, usize::max)
}

/// Lower case, punctuation and symbols at either end removed, inner runs
/// of whitespace as one space.
fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let trimmed = lower.trim_matches(|c: char| !c.is_alphanumeric());
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn short(text: &str) -> String {
    crate::untrusted::neutralise(text, 40)
}

/// `IMG_2041.JPG`, `DSC0001.png`, `holiday photo.jpeg`: one token with a
/// media extension, or a camera's naming pattern.
fn is_filename(text: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "tif", "tiff", "bmp", "svg", "mp4",
        "mov", "avi", "webm",
    ];
    // A file name is one token, or a few words at most.
    if text.len() > 255 || text.split_whitespace().nth(4).is_some() {
        return false;
    }
    let lower = text.to_lowercase();
    if let Some((stem, ext)) = lower.rsplit_once('.') {
        if EXTENSIONS.contains(&ext) && !stem.is_empty() && !stem.contains(". ") {
            return true;
        }
    }
    let camera = [
        "img_",
        "img-",
        "dsc",
        "dscn",
        "dscf",
        "pxl_",
        "screenshot_",
        "gopr",
    ];
    !lower.contains(' ')
        && camera.iter().any(|p| {
            lower
                .strip_prefix(p)
                .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()))
        })
}

fn is_url(text: &str) -> bool {
    let starts = |p: &str| {
        text.as_bytes()
            .get(..p.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(p.as_bytes()))
    };
    (starts("http://") || starts("https://") || starts("www."))
        && !text.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<Rule> {
        check(text, &Options::default())
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// The ASCII fast paths (no lower-cased copies) find what the general
    /// path finds.
    #[test]
    fn ascii_texts_are_checked_as_any_other() {
        assert_eq!(
            rules("IMAGE OF a red bicycle by the door"),
            [Rule::RedundantPrefix]
        );
        assert_eq!(
            rules("ÌMAGE OF a red bicycle by the door"),
            Vec::<Rule>::new()
        );
        assert_eq!(
            rules("Image of a café terrace at night"),
            [Rule::RedundantPrefix]
        );
        assert_eq!(rules("  Picture!  "), [Rule::Placeholder, Rule::Whitespace]);
        assert!(rules("the picture frame hangs on a white wall").is_empty());
        let options = Options {
            placeholder_words: vec!["Product Shot Placeholder".into()],
            ..Options::default()
        };
        let found: Vec<Rule> = check("product shot placeholder", &options)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(found, [Rule::Placeholder]);
    }

    #[test]
    fn true_positives() {
        assert_eq!(rules("image"), [Rule::Placeholder]);
        assert_eq!(rules("Bild."), [Rule::Placeholder]);
        assert_eq!(rules("Imagen"), [Rule::Placeholder]);
        assert_eq!(rules("sans titre"), [Rule::Placeholder]);
        assert_eq!(rules("IMG_2041.JPG"), [Rule::Filename]);
        assert_eq!(rules("DSC0001"), [Rule::Filename]);
        assert_eq!(rules("holiday-beach.jpeg"), [Rule::Filename]);
        assert_eq!(rules("https://example.com/cat.html"), [Rule::UrlOnly]);
        assert_eq!(rules("🐱🐱🎉"), [Rule::NoWords]);
        assert_eq!(rules("A cat"), [Rule::TooShort]);
        assert_eq!(
            rules("Image of a cat asleep on a red sofa"),
            [Rule::RedundantPrefix]
        );
        assert_eq!(
            rules("Imagen de un gato dormido en un sofá"),
            [Rule::RedundantPrefix]
        );
        assert_eq!(rules(" A cat asleep on a red sofa"), [Rule::Whitespace]);
        assert_eq!(rules("A cat  asleep on a red sofa"), [Rule::Whitespace]);
    }

    #[test]
    fn false_positives_are_avoided() {
        for good in [
            "A black cat asleep on a red sofa",
            "Photographer's self-portrait at dusk, holding a camera",
            "Chart: sales grew 12.5% in 2024 (see www.example.com for data)",
            "日本語の代替テキスト、猫がソファで寝ている",
            "Ein Bild von Kindern, die im Park spielen",
            "Version 2.0 release banner with confetti",
            "Imagery from the Hubble telescope of a spiral galaxy",
        ] {
            assert!(rules(good).is_empty(), "{good}: {:?}", rules(good));
        }
        // Ten code points, whatever their bytes: not too short.
        assert!(rules("猫がソファで寝ている").is_empty());
    }
}
