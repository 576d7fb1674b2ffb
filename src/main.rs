//! The `xmeta` binary: run, then exit with the command's status.

// The library forbids unsafe code; the binary has two calls, below, and
// its allocator (`fresh_zeroed.rs`, `pool_blocks.rs`).
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod fresh_zeroed;
#[allow(unsafe_code)]
mod pool_blocks;

/// mimalloc: the plan of 100,000 media is allocation-bound, and glibc's
/// allocator spent 40% of the time in malloc/free and kept pages per thread.
/// Large zeroed blocks are fresh mappings (see `fresh_zeroed.rs`).
#[global_allocator]
static GLOBAL: fresh_zeroed::FreshZeroed = fresh_zeroed::FreshZeroed;

fn main() -> std::process::ExitCode {
    return_freed_memory_sooner();
    pool_blocks::one_arena();
    xmeta::set_give_back(give_back);
    xmeta::run()
}

/// mimalloc's `purge_delay` (`mi_option_e` in its `mimalloc.h`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc keeps freed memory for 1 s before it gives it back to the OS.
/// Parsing churns: a plan of 100,000 media (25 MB) frees far more than it
/// keeps, within that second, and peaked at 90–100 MB resident for a heap
/// of 44 MB. After 10 ms it peaked near 62 MB; after 5 ms, 4 MB lower
/// again, in the same time (GNU time, 6 runs each, alternated: plan
/// 60.1 → 55.9 MB, 0.372 → 0.377 s; JSON plan 59.6 → 55.4 MB). At 0 every
/// free is a system call: 51 MB, but 0.07 s slower.
#[allow(unsafe_code)]
fn return_freed_memory_sooner() {
    // SAFETY: `mi_option_set` stores one option value; mimalloc allows it
    // at any time, from any thread, and reads the option at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 5) };
}

/// After each watch cycle: the cycle's threads have exited, and what they
/// allocated that the cycle freed sits in their abandoned pages until a
/// thread reclaims them; a forced collect on the main thread does (0.5 ms
/// at 100,000 media). `watch --apply` at 100,000 media, 400 one-file
/// edits: resident memory over the last 100 97.6 → 94.4 MB, peak 103.3 → 99.7 MB.
#[allow(unsafe_code)]
fn give_back() {
    // SAFETY: `mi_collect` only frees what mimalloc holds unused; it may
    // be called at any time, from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
