//! The `xmeta` binary: run, then exit with the command's status.

#![forbid(unsafe_code)]

/// mimalloc: the plan of 100,000 media is allocation-bound, and glibc's
/// allocator spent 40% of the time in malloc/free and kept pages per thread.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    xmeta::run()
}
