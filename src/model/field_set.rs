//! A set of the 13 metadata fields as bits. A plan holds two per change
//! (the fields sent and those no longer tracked): as vectors they took 48
//! bytes and an allocation a change, 60 MB across 1,000,000 creates.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::FieldKind;

/// Iterated, printed and serialized in the fields' order (`FieldKind`'s),
/// which is the order of a `Metadata`'s values.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    #[must_use]
    pub fn of(kind: FieldKind) -> FieldSet {
        FieldSet(bit(kind))
    }

    pub fn insert(&mut self, kind: FieldKind) {
        self.0 |= bit(kind);
    }

    #[must_use]
    pub fn contains(self, kind: FieldKind) -> bool {
        self.0 & bit(kind) != 0
    }

    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[must_use]
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    #[must_use]
    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    #[must_use]
    pub fn intersects(self, other: FieldSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn iter(self) -> impl Iterator<Item = FieldKind> {
        FieldKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// For serde's `skip_serializing_if`, which hands over a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
pub(crate) fn is_empty(set: &FieldSet) -> bool {
    set.is_empty()
}

fn bit(kind: FieldKind) -> u16 {
    1 << kind as u16
}

impl FromIterator<FieldKind> for FieldSet {
    fn from_iter<I: IntoIterator<Item = FieldKind>>(kinds: I) -> FieldSet {
        let mut set = FieldSet::default();
        for kind in kinds {
            set.insert(kind);
        }
        set
    }
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for FieldSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A list of field names, each at most once: a set read back must say
/// what was written, so a name given twice is refused, not merged.
impl<'de> Deserialize<'de> for FieldSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut set = FieldSet::default();
        for kind in Vec::<FieldKind>::deserialize(d)? {
            if set.contains(kind) {
                return Err(serde::de::Error::custom(format!("`{kind}` is named twice")));
            }
            set.insert(kind);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_keeps_the_fields_order_and_reads_back_what_it_wrote() {
        let set: FieldSet = [FieldKind::UploadSource, FieldKind::AllowDownloadStatus]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 2);
        assert!(set.contains(FieldKind::UploadSource) && !set.contains(FieldKind::AltText));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["allow_download_status","upload_source"]"#);
        assert_eq!(serde_json::from_str::<FieldSet>(&json).unwrap(), set);
        let twice = serde_json::from_str::<FieldSet>(r#"["alt_text","alt_text"]"#);
        assert!(twice
            .unwrap_err()
            .to_string()
            .contains("`alt_text` is named twice"));
    }
}
