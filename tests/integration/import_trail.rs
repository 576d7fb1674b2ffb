//! `state import` and the audit trail: a state's history is append-only,
//! replacing a state that holds anything needs `--force`, and an export
//! whose history does not tell the story of its records is refused.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

fn history(env: &TestEnv) -> Vec<Value> {
    let run = env.exits_with(&["state", "history", "--format", "json"], 0);
    serde_json::from_str(&run.stdout).expect("a JSON array")
}

fn read_json(env: &TestEnv, rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(env.path(rel)).unwrap()).unwrap()
}

/// Sets a record's metadata and recomputes its digest, as a forger would.
fn set_record(export: &mut Value, id: &str, metadata: Value) {
    let json = serde_json::to_string(&metadata).unwrap();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(json.as_bytes())));
    export["media"][id]["metadata"] = metadata;
    export["media"][id]["digest"] = json!(digest);
}

/// An edit a forger makes to an export.
type Forge = Box<dyn Fn(&mut Value)>;

fn alt(text: &str) -> Value {
    json!({"alt_text": {"text": text}})
}

#[test]
fn import_keeps_the_audit_trail_append_only() {
    let env = TestEnv::new().with_env("USER", "tester");
    let (one, two) = (media_id(1), media_id(2));
    env.write("manifests/a.yaml", &manifest(1..3, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.write("manifests/a.yaml", &manifest(1..3, "v2"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.exits_with(&["state", "export", "--out", "export.json"], 0);
    let trail = history(&env);
    assert_eq!(trail.len(), 4);
    let export = read_json(&env, "export.json");
    let before = env.state_fingerprint();

    // The state's own export, over the state: replacing it needs --force,
    // and the refusal says what would be replaced.
    let run = env.exits_with(&["state", "import", "export.json"], 1);
    assert_has(
        &run.stderr,
        "holds 2 media and 4 history entries; pass --force to replace its records (its history is kept, with one `import` entry per changed media); nothing was imported",
    );
    assert_eq!(env.state_fingerprint(), before);

    // Forged exports of the same lineage are refused, --force or not, with
    // the first inconsistency named; the state is untouched.
    let forgeries: Vec<(&str, Forge, String)> = vec![
        (
            "a record X never confirmed",
            Box::new(|e: &mut Value| set_record(e, &media_id(1), alt("Photo 1: forged"))),
            format!("the record of media {one} does not match its history: its alt_text was last set at serial 2"),
        ),
        (
            "the update entries dropped",
            Box::new(|e: &mut Value| {
                let kept: Vec<Value> = e["history"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|h| h["serial"] != 2)
                    .cloned()
                    .collect();
                e["history"] = Value::Array(kept);
            }),
            format!("the record of media {one} does not match its history: its alt_text was last set at serial 1"),
        ),
        (
            "an entry for a media never applied",
            Box::new(|e: &mut Value| {
                let forged = json!({"serial": 2, "at": "2026-01-01T00:00:00Z", "media": media_id(9),
                    "action": "create", "fields": {"alt_text": {"before": null, "after": {"text": "x"}}},
                    "actor": "mallory", "run": "r"});
                e["history"].as_array_mut().unwrap().insert(0, forged);
            }),
            format!(
                "media {} has no record, but its history leaves it with a alt_text (serial 2)",
                media_id(9)
            ),
        ),
        (
            "an entry dated 9999",
            Box::new(|e: &mut Value| e["history"][0]["at"] = json!("9999-01-01T00:00:00Z")),
            "is dated 9999-01-01T00:00:00Z, in the future".to_string(),
        ),
        (
            "a duplicated entry",
            Box::new(|e: &mut Value| {
                let first = e["history"][0].clone();
                e["history"].as_array_mut().unwrap().insert(0, first);
            }),
            "appears twice".to_string(),
        ),
        (
            "entries out of order",
            Box::new(|e: &mut Value| e["history"].as_array_mut().unwrap().reverse()),
            "its history is not newest first (serial 2 after serial 1)".to_string(),
        ),
    ];
    for (what, forge, message) in forgeries {
        let mut forged = export.clone();
        forge(&mut forged);
        env.write("forged.json", &forged.to_string());
        let run = env.exits_with(&["state", "import", "forged.json", "--force"], 1);
        assert_has(&run.stderr, &message);
        assert_has(&run.stderr, "nothing was imported");
        assert_eq!(env.state_fingerprint(), before, "{what}: the state changed");
    }

    // A consistent rewrite (every actor renamed, media 1's record and last
    // entry changed together), forced: the records are replaced, but the
    // trail keeps what happened and gains one `import` entry for the one
    // media that changed, by whoever imported, naming the export's digest.
    let mut rewritten = export.clone();
    for entry in rewritten["history"].as_array_mut().unwrap() {
        entry["actor"] = json!("alice");
        if entry["media"] == json!(one) && entry["serial"] == 2 {
            entry["fields"]["alt_text"]["after"] = json!({"text": "Photo 1: v3"});
        }
    }
    set_record(&mut rewritten, &one, alt("Photo 1: v3"));
    let text = rewritten.to_string();
    env.write("rewritten.json", &text);
    let file_digest = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
    let run = env.exits_with(&["state", "import", "rewritten.json", "--force"], 0);
    assert_eq!(
        run.stdout.trim(),
        "Imported 2 media, replacing the 2 the state held (1 changed); its 4 history entries are kept, with 1 `import` entry added."
    );
    let after = history(&env);
    assert_eq!(&after[1..], &trail[..], "the old trail was rewritten");
    let import = &after[0];
    assert_eq!(import["action"], "import");
    assert_eq!(import["media"], json!(one));
    assert_eq!(import["actor"], "tester");
    assert_eq!(import["revision"], json!(file_digest));
    assert_eq!(
        import["fields"]["alt_text"],
        json!({"before": {"text": "Photo 1: v2"}, "after": {"text": "Photo 1: v3"}})
    );
    assert!(import["serial"].as_u64() > trail[0]["serial"].as_u64());
    assert!(!env
        .exits_with(&["state", "history"], 0)
        .stdout
        .contains("alice"));

    // An empty export of the same lineage empties nothing without --force;
    // with it, the records go and the trail says so, entry by entry.
    let empty = json!({"format_version": 2, "lineage": export["lineage"], "serial": 1, "media": {}, "history": []});
    env.write("empty.json", &empty.to_string());
    let run = env.exits_with(&["state", "import", "empty.json"], 1);
    assert_has(&run.stderr, "holds 2 media and 5 history entries");
    let run = env.exits_with(&["state", "import", "empty.json", "--force"], 0);
    assert_has(
        &run.stdout,
        "Imported 0 media, replacing the 2 the state held (2 changed); its 5 history entries are kept, with 2 `import` entries added.",
    );
    let after = history(&env);
    assert_eq!(after.len(), 7);
    for (entry, id) in after[..2].iter().zip([&one, &two]) {
        assert_eq!(entry["action"], "import");
        assert_eq!(entry["media"], json!(id));
        assert_eq!(entry["fields"]["alt_text"]["after"], Value::Null);
    }
    env.exits_with(&["state", "list"], 0);
    assert_eq!(env.exits_with(&["state", "list"], 0).stdout, "");
}

/// An export is read as a stream, its keys in any order: one rewritten by
/// a tool that sorts keys (its history before its records) imports as the
/// original does. One that names a media twice is refused: which of its
/// two records would be the state's?
#[test]
fn an_export_is_read_in_any_key_order_and_a_media_named_twice_is_refused() {
    let env = TestEnv::new().with_env("USER", "tester");
    env.write("manifests/a.yaml", &manifest(1..4, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.write("manifests/a.yaml", &manifest(1..4, "v2"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.exits_with(&["state", "export", "--out", "export.json"], 0);
    let text = std::fs::read_to_string(env.path("export.json")).unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();

    let sorted = serde_json::to_string(&export).unwrap();
    assert!(sorted.find("\"history\"") < sorted.find("\"media\""));
    let fresh = TestEnv::new();
    fresh.write("sorted.json", &sorted);
    let run = fresh.exits_with(&["state", "import", "sorted.json"], 0);
    assert_eq!(
        run.stdout.trim(),
        format!("Imported 3 media into `{}`.", fresh.state_dir().display())
    );
    fresh.exits_with(&["state", "export", "--out", "again.json"], 0);
    let again = read_json(&fresh, "again.json");
    assert_eq!(again["media"], export["media"]);
    assert_eq!(again["history"], export["history"]);
    assert_eq!(again["lineage"], export["lineage"]);

    // Media 1 twice: a record with a valid digest first, the real one
    // after it (a parser that kept the last would take the real one and
    // say nothing).
    let one = media_id(1);
    let mut forged = json!({"media": {}});
    set_record(&mut forged, &one, alt("Photo 1: forged"));
    forged["media"][&one]["applied_at"] = export["media"][&one]["applied_at"].clone();
    let doubled = text.replacen(
        "\"media\": {",
        &format!("\"media\": {{\n    \"{one}\": {},", forged["media"][&one]),
        1,
    );
    let other = TestEnv::new();
    other.write("doubled.json", &doubled);
    let run = other.exits_with(&["state", "import", "doubled.json"], 1);
    assert_has(
        &run.stderr,
        &format!("`doubled.json` is damaged: media {one} has two records; nothing was imported"),
    );
    assert!(!other.state_exists(), "a state was made");
}

/// An export whose records do not match their history (found by the
/// second pass, after the first found nothing) leaves no state behind
/// where there was none, `--force` or not: opening a state creates it.
#[test]
fn a_record_that_its_history_contradicts_leaves_no_state_behind() {
    let env = TestEnv::new().with_env("USER", "tester");
    env.write("manifests/a.yaml", &manifest(1..3, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.exits_with(&["state", "export", "--out", "export.json"], 0);
    let mut forged = read_json(&env, "export.json");
    set_record(&mut forged, &media_id(1), alt("Photo 1: forged"));
    for force in [false, true] {
        let fresh = TestEnv::new();
        fresh.write("forged.json", &forged.to_string());
        let mut args = vec!["state", "import", "forged.json"];
        if force {
            args.push("--force");
        }
        let run = fresh.exits_with(&args, 1);
        assert_has(
            &run.stderr,
            &format!(
                "the record of media {} does not match its history",
                media_id(1)
            ),
        );
        assert!(!fresh.state_exists(), "--force {force}: a state was made");
    }
}

/// `--force` compares the export with the state (by digest, reading the
/// state's record only where they differ) whether the export's records
/// are in ID order (as `state export` writes them) or not (a tool sorted
/// them as text, "10" before "8"), with the same `import` entries either
/// way.
#[test]
fn a_forced_import_finds_the_changes_whatever_the_order_of_the_records() {
    let record = |text: &str| {
        let mut export = json!({"media": {}});
        set_record(&mut export, "1", alt(text));
        export["media"]["1"]["applied_at"] = json!("2026-01-01T00:00:00Z");
        export["media"]["1"].to_string()
    };
    let export = |media: &[(&str, &str)]| {
        let media: Vec<String> = media
            .iter()
            .map(|(id, text)| format!("\"{id}\": {}", record(text)))
            .collect();
        format!(
            "{{\"format_version\": 2, \"lineage\": \"abc\", \"serial\": 3, \"media\": {{{}}}}}",
            media.join(", ")
        )
    };
    let held = export(&[("7", "seven"), ("9", "nine"), ("10", "ten")]);
    let wanted = [("8", "eight"), ("9", "nine"), ("10", "ten, again")];
    let mut as_text = wanted;
    as_text.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(as_text.map(|(id, _)| id), ["10", "8", "9"]);
    let mut entries = Vec::new();
    for order in [&wanted, &as_text] {
        let env = TestEnv::new().with_env("USER", "tester");
        env.write("held.json", &held);
        env.exits_with(&["state", "import", "held.json"], 0);
        env.write("wanted.json", &export(order));
        let run = env.exits_with(&["state", "import", "wanted.json", "--force"], 0);
        assert_has(
            &run.stdout,
            "Imported 3 media, replacing the 3 the state held (3 changed); its 3 history entries are kept, with 3 `import` entries added.",
        );
        // The forced import's own: the newest serial (the first import
        // made one entry per media too).
        let trail = history(&env);
        let newest = trail[0]["serial"].clone();
        let mut imports: Vec<(Value, Value)> = trail
            .into_iter()
            .filter(|e| e["action"] == "import" && e["serial"] == newest)
            .map(|e| (e["media"].clone(), e["fields"]["alt_text"].clone()))
            .collect();
        imports.sort_by_key(|(media, _)| media.to_string());
        entries.push(imports);
        let listed = env.exits_with(&["state", "list"], 0).stdout;
        let ids: Vec<&str> = listed
            .lines()
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert_eq!(ids, ["8", "9", "10"]);
    }
    assert_eq!(entries[0], entries[1]);
    assert_eq!(
        entries[0],
        [
            (
                json!("10"),
                json!({"before": {"text": "ten"}, "after": {"text": "ten, again"}})
            ),
            (
                json!("7"),
                json!({"before": {"text": "seven"}, "after": null})
            ),
            (
                json!("8"),
                json!({"before": null, "after": {"text": "eight"}})
            ),
        ]
    );
}

/// A history entry that sets a field this version does not know is
/// refused, its name shown without its terminal escapes: no record can
/// hold such a field, so its history cannot tell the record's story.
#[test]
fn an_entry_setting_an_unknown_field_is_refused_and_its_name_neutralised() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(1..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.exits_with(&["state", "export", "--out", "export.json"], 0);
    let mut export = read_json(&env, "export.json");
    export["history"][0]["fields"]["x\u{1b}[2Jy"] = json!({"before": null, "after": 1});
    let fresh = TestEnv::new();
    fresh.write("forged.json", &export.to_string());
    let run = fresh.exits_with(&["state", "import", "forged.json"], 1);
    assert_has(
        &run.stderr,
        &format!(
            "`forged.json` is damaged: the history entry of media {} at serial 1 sets `x",
            media_id(1)
        ),
    );
    assert_has(
        &run.stderr,
        "a field this version of xmeta does not know; nothing was imported",
    );
    assert!(!run.all().contains('\x1b'), "{}", run.stderr);
    assert!(!fresh.state_exists());
}
