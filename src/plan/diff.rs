//! The diff: desired media against recorded media, per top-level field.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::manifest::{Declared, Desired};
use crate::model::{FieldSet, FieldValue, MediaId, Metadata};
use crate::plan::{Action, Change, Plan, PlanWarning};

/// `--target`: only these media, or all when empty.
#[derive(Clone, Debug, Default)]
pub struct Targets(pub BTreeSet<MediaId>);

impl Targets {
    #[must_use]
    pub fn includes(&self, id: &MediaId) -> bool {
        self.0.is_empty() || self.0.contains(id)
    }
}

/// Media to compare from which the diff gives memory back (see `diff`).
const GIVE_BACK_FROM: usize = 4096;

/// Compares the manifests with the state. Both maps are ordered by ID, so
/// this is one merge pass.
pub fn diff(
    desired: Desired,
    applied: &BTreeMap<MediaId, Metadata>,
    targets: &Targets,
    prune: bool,
) -> Plan {
    let mut plan = Plan {
        prune,
        price_per_request: super::cost::PRICE_PER_REQUEST_USD,
        warnings: desired
            .warnings
            .into_iter()
            .map(PlanWarning::Manifest)
            .collect(),
        ..Plan::default()
    };
    if !desired.held.is_empty() {
        plan.warnings.push(PlanWarning::Held {
            media: desired.held.len(),
        });
    }
    let incomplete = desired.incomplete;
    let held = desired.held;
    // At most one change a declared media (forgets come after): made at
    // that size at once, so the list is never copied as it grows (the
    // copy held both at the plan's peak); pages never written to (a plan
    // with few changes) are never resident.
    plan.changes.reserve_exact(desired.media.len());
    let forget = |id: &MediaId, record: &Metadata| Change {
        id: *id,
        action: Action::Forget,
        fields: FieldSet::default(),
        untracked: FieldSet::default(),
        before: record.clone(),
        after: Metadata::default(),
        location: None,
    };
    // Both sides are ordered by ID: one merge pass, no lookups.
    let mut forgotten = Vec::new();
    let mut state = applied.iter().peekable();
    // The changes fill pages as the declared media they are made from are
    // freed, into the pages of the parse's and lint's exited threads, which
    // nothing reuses until a thread collects them: so they are given back
    // as the diff starts and each eighth of the way (8 collects of about
    // 0.5 ms), when there are `GIVE_BACK_FROM` media or more to compare
    // (those of a full state that match their records are not: a watch
    // cycle compares a few). A plan of 100,000 creates peaked there, above
    // the parse: GNU time, alternated, 6 runs each, 49,340–51,092 →
    // 48,116–48,968 KiB with the rendering's parts
    // (`parallel::each_part_in_order`).
    let step = desired.media.len() / 8 + 1;
    let give_back = desired.media.len() >= GIVE_BACK_FROM;
    for (i, entry) in desired.media.into_iter().enumerate() {
        if give_back && i % step == 0 {
            crate::give_back();
        }
        let id = entry.id;
        while let Some((sid, record)) = state.next_if(|(sid, _)| **sid < id) {
            if targets.includes(sid) && !held.contains(sid) {
                forgotten.push(forget(sid, record));
            }
        }
        let record = state.next_if(|(sid, _)| **sid == id).map(|(_, r)| r);
        if !targets.includes(&id) {
            continue;
        }
        let location = entry.location;
        let change = match record {
            // Moved, not copied: a plan of 100,000 creates holds one copy.
            None => Some(create(
                id,
                Arc::try_unwrap(entry.metadata)
                    .map_or_else(|shared| (**shared).clone(), Declared::into_metadata),
            )),
            Some(record) => diff_media(&id, &entry.metadata, Some(record)),
        };
        match change {
            Some(change) => plan.changes.push(Change {
                location: Some(location),
                ..change
            }),
            None => plan.unchanged += 1,
        }
    }
    for (sid, record) in state {
        if targets.includes(sid) && !held.contains(sid) {
            forgotten.push(forget(sid, record));
        }
    }
    if incomplete {
        if !forgotten.is_empty() {
            plan.warnings.push(PlanWarning::NotForgottenWhileInvalid {
                media: forgotten.len(),
            });
        }
        plan.changes.sort_unstable_by_key(|a| a.id);
        return plan;
    }
    if !forgotten.is_empty() && !prune {
        plan.warnings.push(PlanWarning::Unmanaged {
            media: forgotten.len(),
        });
    }
    plan.changes.extend(forgotten);
    // Each ID once, so an unstable sort orders them the same, in place: a
    // stable sort's buffer was half the changes' size, at the plan's peak.
    plan.changes.sort_unstable_by_key(|a| a.id);
    plan
}

/// A media not in the state. With no field declared there is nothing to
/// tell X: it is only recorded as managed, and no billed call is made.
fn create(id: MediaId, wanted: Metadata) -> Change {
    Change {
        id,
        action: Action::Create,
        fields: wanted.kinds().collect(),
        untracked: FieldSet::default(),
        before: Metadata::default(),
        after: wanted,
        location: None,
    }
}

/// One media's change, or `None` when it matches.
pub fn diff_media(id: &MediaId, wanted: &Metadata, applied: Option<&Metadata>) -> Option<Change> {
    let Some(applied) = applied else {
        return Some(create(*id, wanted.clone()));
    };
    let fields: FieldSet = wanted
        .values()
        .filter(|v| applied.get(v.kind()) != Some(*v))
        .map(FieldValue::kind)
        .collect();
    let untracked: FieldSet = applied
        .kinds()
        .filter(|k| wanted.get(*k).is_none())
        .collect();
    if fields.is_empty() && untracked.is_empty() {
        return None;
    }
    let after = wanted.select(fields);
    Some(Change {
        id: *id,
        action: Action::Update,
        fields,
        untracked,
        before: applied.select(fields.union(untracked)),
        after,
        location: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldKind, FieldValue, SharedInfo};

    fn meta(alt: &str, shared: Option<bool>) -> Metadata {
        let mut m = Metadata::default();
        m.insert(FieldValue::AltText(AltText { text: alt.into() }));
        if let Some(s) = shared {
            m.insert(FieldValue::SharedInfo(SharedInfo { shared: s }));
        }
        m
    }

    #[test]
    fn update_sends_only_changed_fields() {
        let id = MediaId::parse("1").unwrap();
        let c = diff_media(
            &id,
            &meta("new", Some(true)),
            Some(&meta("old", Some(true))),
        )
        .unwrap();
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.fields, FieldSet::of(FieldKind::AltText));
        let req = c.request().unwrap();
        assert_eq!(
            req.metadata.kinds().collect::<Vec<_>>(),
            [FieldKind::AltText]
        );
    }

    #[test]
    fn undeclared_fields_are_not_sent() {
        let id = MediaId::parse("1").unwrap();
        let c = diff_media(&id, &meta("a", None), Some(&meta("a", Some(false)))).unwrap();
        assert_eq!(c.untracked, FieldSet::of(FieldKind::SharedInfo));
        assert!(c.request().is_none());
    }

    #[test]
    fn equal_metadata_is_unchanged() {
        let id = MediaId::parse("1").unwrap();
        assert!(diff_media(&id, &meta("a", Some(true)), Some(&meta("a", Some(true)))).is_none());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::model::{FieldKind, FieldValue};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// JSON for one field, from a small value space so pairs often collide.
    fn field_json(kind: FieldKind) -> BoxedStrategy<Value> {
        let text = "[a-c]{0,3}";
        match kind {
            FieldKind::AltText => text.prop_map(|t| json!({"text": t})).boxed(),
            FieldKind::SharedInfo => any::<bool>().prop_map(|b| json!({"shared": b})).boxed(),
            FieldKind::ContentExpiration => (0u64..3, any::<bool>())
                .prop_map(|(n, float)| {
                    let v = if float { json!(n as f64) } else { json!(n) };
                    json!({"timestamp_sec": v})
                })
                .boxed(),
            FieldKind::SensitiveMediaWarning => {
                (any::<bool>(), proptest::option::of(any::<bool>()))
                    .prop_map(|(a, o)| match o {
                        Some(o) => json!({"adult_content": a, "other": o}),
                        None => json!({"adult_content": a}),
                    })
                    .boxed()
            }
            FieldKind::GeoRestrictions => proptest::collection::vec("(us|ca|gb)", 0..3)
                .prop_map(|c| json!({"whitelisted_country_codes": c}))
                .boxed(),
            _ => (0u64..2)
                .prop_map(
                    |n| json!({"stickers": [{"group_annotation_id": 123_456_789_012_345_678u64 + n}]}),
                )
                .boxed(),
        }
    }

    fn metadata() -> impl Strategy<Value = Metadata> {
        let kinds = [
            FieldKind::AltText,
            FieldKind::SharedInfo,
            FieldKind::ContentExpiration,
            FieldKind::SensitiveMediaWarning,
            FieldKind::GeoRestrictions,
            FieldKind::StickerInfo,
        ];
        let fields: Vec<_> = kinds
            .into_iter()
            .map(|k| proptest::option::of(field_json(k)).prop_map(move |v| (k, v)))
            .collect();
        fields.prop_map(|fields| {
            fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| FieldValue::from_json(k, v).unwrap()))
                .collect()
        })
    }

    /// The same JSON with every object's keys in reverse order and every
    /// integer-valued float written as an integer (and the reverse).
    fn respell(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .rev()
                    .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), respell(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            Value::Array(a) => format!("[{}]", a.iter().map(respell).collect::<Vec<_>>().join(",")),
            Value::Number(n) if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                format!("{}", n.as_f64().unwrap_or_default() as i64)
            }
            Value::Number(n) if n.as_i64().is_some_and(|i| i.abs() < 1 << 50) => {
                format!("{n}.0")
            }
            other => other.to_string(),
        }
    }

    proptest! {
        #[test]
        fn diff_of_a_value_with_itself_is_empty(a in metadata()) {
            prop_assert!(diff_media(&MediaId::parse("1").unwrap(), &a, Some(&a)).is_none());
        }

        #[test]
        fn applying_the_diff_yields_the_desired_fields(applied in metadata(), desired in metadata()) {
            let id = MediaId::parse("1").unwrap();
            let next = match diff_media(&id, &desired, Some(&applied)) {
                Some(change) => {
                    // Only changed fields are sent.
                    if let Some(req) = change.request() {
                        for k in req.metadata.kinds() {
                            prop_assert_ne!(applied.get(k), desired.get(k));
                        }
                    }
                    change.next_record(Some(&applied))
                }
                None => applied.clone(),
            };
            prop_assert_eq!(next, desired);
        }

        #[test]
        fn equality_ignores_key_order_and_number_spelling(a in metadata()) {
            let json = serde_json::to_value(&a).unwrap();
            let respelled: Metadata = serde_json::from_str(&respell(&json)).unwrap();
            prop_assert_eq!(&respelled, &a);
            prop_assert!(diff_media(&MediaId::parse("1").unwrap(), &respelled, Some(&a)).is_none());
        }
    }
}
