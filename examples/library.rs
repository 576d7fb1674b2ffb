//! Writes a generated library of manifests (the one the benchmarks and
//! tests use), to try xmeta at scale by hand:
//!
//!     cargo run --release --example library -- /tmp/lib 100000
//!     cargo run --release -- plan /tmp/lib

// Each target uses part of the one generator.
#[allow(dead_code)]
#[path = "../src/testdata.rs"]
mod testdata;

use std::path::PathBuf;
use std::process::ExitCode;

/// Media per file, as in the benchmark's tree.
const PER_FILE: usize = 1_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(Ok(total))) = (args.first(), args.get(1).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: library DIR MEDIA");
        return ExitCode::FAILURE;
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let alt = "v1 of the spring campaign: a product on a wooden table in soft morning light";
    for (f, first) in (0..total).step_by(PER_FILE).enumerate() {
        let text = testdata::manifest(first..(first + PER_FILE as u64).min(total), alt);
        if let Err(e) = std::fs::write(dir.join(format!("media-{f:04}.yaml")), text) {
            eprintln!("cannot write: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
