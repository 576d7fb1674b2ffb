//! Integration tests: the real `xmeta` binary against a loopback X API
//! emulator, a real sled state in a temp dir (and, for the state tests, a
//! real PostgreSQL), and real files.

mod support;

mod apply_failures;
mod bad_input;
mod cli_trust;
mod client;
mod crash;
mod drift;
mod history;
mod hostile;
mod integrity;
mod limits;
mod lint;
mod locking;
mod pr_comment;
mod round_trip;
mod shared_state;
mod snapshots;
mod watch;
mod workflow;
