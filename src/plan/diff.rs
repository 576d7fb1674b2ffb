//! The diff: desired media against recorded media, per top-level field.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::Desired;
use crate::model::{FieldKind, MediaId, Metadata, Request};
use crate::plan::{Action, Change, Plan};
use crate::state::Record;

/// `--target`: only these media, or all when empty.
#[derive(Clone, Debug, Default)]
pub struct Targets(pub BTreeSet<MediaId>);

impl Targets {
    pub fn includes(&self, id: &MediaId) -> bool {
        self.0.is_empty() || self.0.contains(id)
    }
}

/// Compares the manifests with the state. Both maps are ordered by ID, so
/// this is one merge pass.
pub fn diff(
    desired: &Desired,
    applied: &BTreeMap<MediaId, Record>,
    targets: &Targets,
    prune: bool,
) -> Plan {
    let mut plan = Plan {
        prune,
        warnings: desired.warnings.iter().map(|d| d.to_string()).collect(),
        ..Plan::default()
    };
    if !desired.held.is_empty() {
        plan.warnings.push(format!(
            "{} media are held back until their manifests are fixed (neither applied nor forgotten)",
            desired.held.len()
        ));
    }
    for (id, entry) in desired.media.iter().filter(|(id, _)| targets.includes(id)) {
        match diff_media(id, &entry.metadata, applied.get(id).map(|r| &r.metadata)) {
            Some(change) => plan.changes.push(change),
            None => plan.unchanged += 1,
        }
    }
    let forgotten: Vec<_> = applied
        .iter()
        .filter(|(id, _)| {
            targets.includes(id) && !desired.media.contains_key(id) && !desired.held.contains(id)
        })
        .map(|(id, record)| Change {
            id: id.clone(),
            action: Action::Forget,
            fields: Vec::new(),
            untracked: Vec::new(),
            before: record.metadata.clone(),
            after: Metadata::default(),
            request: None,
        })
        .collect();
    if desired.incomplete {
        if !forgotten.is_empty() {
            plan.warnings.push(format!(
                "{} media in the state are in no valid manifest; nothing is planned as forgotten while manifests have errors",
                forgotten.len()
            ));
        }
        plan.changes.sort_by(|a, b| a.id.cmp(&b.id));
        return plan;
    }
    if !forgotten.is_empty() && !prune {
        plan.warnings.push(format!(
            "{} media in the state are in no manifest; they stay in the state until you pass `--prune` (nothing is ever sent for them)",
            forgotten.len()
        ));
    }
    plan.changes.extend(forgotten);
    plan.changes.sort_by(|a, b| a.id.cmp(&b.id));
    plan
}

/// One media's change, or `None` when it matches.
pub fn diff_media(id: &MediaId, wanted: &Metadata, applied: Option<&Metadata>) -> Option<Change> {
    let Some(applied) = applied else {
        let fields: Vec<FieldKind> = wanted.kinds().collect();
        return Some(Change {
            id: id.clone(),
            action: Action::Create,
            // With no field declared there is nothing to tell X: the media
            // is only recorded as managed, and no billed call is made.
            request: (!wanted.is_empty()).then(|| Request {
                id: id.clone(),
                metadata: wanted.clone(),
            }),
            fields,
            untracked: Vec::new(),
            before: Metadata::default(),
            after: wanted.clone(),
        });
    };
    let fields: Vec<FieldKind> = wanted
        .0
        .iter()
        .filter(|(k, v)| applied.get(**k) != Some(*v))
        .map(|(k, _)| *k)
        .collect();
    let untracked: Vec<FieldKind> = applied
        .kinds()
        .filter(|k| wanted.get(*k).is_none())
        .collect();
    if fields.is_empty() && untracked.is_empty() {
        return None;
    }
    let touched: Vec<FieldKind> = fields.iter().chain(&untracked).copied().collect();
    let after = wanted.select(&fields);
    Some(Change {
        id: id.clone(),
        action: Action::Update,
        request: (!fields.is_empty()).then(|| Request {
            id: id.clone(),
            metadata: after.clone(),
        }),
        fields,
        untracked,
        before: applied.select(&touched),
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldValue, SharedInfo};

    fn meta(alt: &str, shared: Option<bool>) -> Metadata {
        let mut m = Metadata::default();
        m.0.insert(
            FieldKind::AltText,
            FieldValue::AltText(AltText { text: alt.into() }),
        );
        if let Some(s) = shared {
            m.0.insert(
                FieldKind::SharedInfo,
                FieldValue::SharedInfo(SharedInfo { shared: s }),
            );
        }
        m
    }

    #[test]
    fn update_sends_only_changed_fields() {
        let id = MediaId("1".into());
        let c = diff_media(
            &id,
            &meta("new", Some(true)),
            Some(&meta("old", Some(true))),
        )
        .unwrap();
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.fields, [FieldKind::AltText]);
        let req = c.request.unwrap();
        assert_eq!(
            req.metadata.kinds().collect::<Vec<_>>(),
            [FieldKind::AltText]
        );
    }

    #[test]
    fn undeclared_fields_are_not_sent() {
        let id = MediaId("1".into());
        let c = diff_media(&id, &meta("a", None), Some(&meta("a", Some(false)))).unwrap();
        assert_eq!(c.untracked, [FieldKind::SharedInfo]);
        assert!(c.request.is_none());
    }

    #[test]
    fn equal_metadata_is_unchanged() {
        let id = MediaId("1".into());
        assert!(diff_media(&id, &meta("a", Some(true)), Some(&meta("a", Some(true)))).is_none());
    }
}
