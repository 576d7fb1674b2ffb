//! Drift: what a refresh found X holding, against what the state says it
//! last confirmed (read by `refresh.rs`, shown by the renderers).

use crate::model::{MediaId, Metadata};

/// A media whose live alt text differs from the recorded one.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Drift {
    pub id: MediaId,
    /// The recorded and the live `alt_text` (absent: no alt text).
    pub recorded: Metadata,
    pub live: Metadata,
}

/// What a refresh found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Refresh {
    pub drifted: Vec<Drift>,
    /// Refreshed and as recorded.
    pub in_line: usize,
    /// Recorded and declared, but with no key or type to read them by.
    pub unrefreshable: usize,
    /// Keys X does not know (deleted media, or a wrong key).
    pub not_found: Vec<(MediaId, String)>,
    /// GET requests made.
    pub reads: usize,
    /// Each read media's image on X's media hosts, for a review to show.
    #[serde(skip)]
    pub previews: std::collections::BTreeMap<MediaId, String>,
    /// Image URLs X gave that were not on the media hosts: dropped.
    #[serde(skip)]
    pub previews_dropped: usize,
    /// The hosts images were accepted from (for the warning to name).
    #[serde(skip)]
    pub media_hosts: Vec<String>,
}

impl Refresh {
    /// `Refresh: 3 drifted, 247 as recorded, 2 not refreshable, 1 not found; 3 reads.`
    pub fn line(&self) -> String {
        format!(
            "Refresh: {} drifted, {} as recorded, {} not refreshable, {} not found; {} read{}.",
            self.drifted.len(),
            self.in_line,
            self.unrefreshable,
            self.not_found.len(),
            self.reads,
            if self.reads == 1 { "" } else { "s" }
        )
    }
}
