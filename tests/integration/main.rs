//! Integration tests: the real `xmeta` binary against a loopback X API
//! emulator, a real sled state in a temp dir (and, for the state tests, a
//! real PostgreSQL), and real files.
// The lints src/lib.rs allows, for the reasons it gives there.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
#![allow(clippy::too_many_lines, clippy::format_push_string)]
#![allow(clippy::needless_pass_by_value)]

mod support;

mod action;
mod adopt;
mod all_errors;
mod apply_failures;
mod apply_summary;
mod bad_input;
mod bucket_state;
mod cli_trust;
mod client;
mod crash;
mod digest_file;
mod drift;
mod edges;
mod editor;
mod held_write;
mod history;
mod hostile;
mod import;
mod import_trail;
mod intake;
mod integrity;
mod limits;
mod lint;
mod lint_review;
mod locking;
mod man_pages;
mod migrate;
mod one_planner;
mod pr_comment;
mod readme_workflows;
mod round_trip;
mod safe_writes;
mod shared_state;
mod snapshots;
mod stalled_state;
mod state_identity;
mod stop;
mod terminal;
mod text_sink;
mod watch;
mod workflow;
