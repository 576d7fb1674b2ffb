//! In-process benchmarks of the core steps, with divan:
//!
//!     cargo bench --bench core
//!
//! One manifest file of 1,000 media: the `serde_yaml` floor (parse into
//! `serde_yaml::Value`), xmeta's fast path and its positioned path (used for
//! files with problems); then the diff of 100,000 media against a full and
//! an empty state, and rendering 1,000 changes as text. `benches/perf.rs`
//! measures the real binary end to end.
// The lints src/lib.rs allows, for the reasons it gives there.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
#![allow(clippy::too_many_lines, clippy::format_push_string)]
#![allow(clippy::needless_pass_by_value)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use divan::Bencher;
use xmeta::internals::Timestamp;
use xmeta::internals::{assemble, parse_text, Desired};
use xmeta::internals::{diff, render_text, Targets};
// Each target uses part of the one generator.
#[allow(dead_code)]
#[path = "../src/testdata.rs"]
mod testdata;

use testdata::manifest;

fn main() {
    divan::main();
}

/// 1,000 media from the shared generator, as YAML.
fn file_text(first: u64, variant: &str) -> String {
    manifest(first..first + 1000, variant)
}

fn desired(files: u64, variant: &str) -> Desired {
    let parsed = (0..files)
        .map(|f| {
            parse_text(
                Arc::new(PathBuf::from(format!("{f}.yaml"))),
                &file_text(f * 1000, variant),
                Timestamp::now(),
            )
        })
        .collect();
    assemble(parsed).expect("valid manifests")
}

#[divan::bench]
fn floor_serde_yaml_value(b: Bencher) {
    let text = file_text(0, "v1");
    b.bench(|| serde_yaml::from_str::<serde_yaml::Value>(divan::black_box(&text)).expect("parse"));
}

#[divan::bench]
fn parse_fast_path(b: Bencher) {
    let text = file_text(0, "v1");
    let file = Arc::new(PathBuf::from("m.yaml"));
    b.bench(|| parse_text(Arc::clone(&file), divan::black_box(&text), Timestamp::now()));
}

#[divan::bench]
fn parse_positioned_path(b: Bencher) {
    // One unknown key sends the file down the positioned path.
    let text = file_text(0, "v1").replacen("alt_text:", "alt_txt:", 1);
    let file = Arc::new(PathBuf::from("m.yaml"));
    b.bench(|| parse_text(Arc::clone(&file), divan::black_box(&text), Timestamp::now()));
}

#[divan::bench(sample_count = 20)]
fn diff_100k_no_op(b: Bencher) {
    let applied: BTreeMap<_, _> = desired(100, "v1")
        .media
        .into_iter()
        .map(|e| (e.id, (**e.metadata).clone()))
        .collect();
    b.with_inputs(|| desired(100, "v1"))
        .bench_local_values(|d| diff(d, &applied, &Targets::default(), false));
}

#[divan::bench(sample_count = 20)]
fn diff_100k_creates(b: Bencher) {
    let applied = BTreeMap::new();
    b.with_inputs(|| desired(100, "v1"))
        .bench_local_values(|d| diff(d, &applied, &Targets::default(), false));
}

#[divan::bench]
fn render_1000_changes(b: Bencher) {
    let plan = diff(
        desired(1, "v1"),
        &BTreeMap::new(),
        &Targets::default(),
        false,
    );
    b.bench(|| render_text(divan::black_box(&plan), false));
}
