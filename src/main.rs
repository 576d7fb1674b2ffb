//! The `xmeta` binary: run, then exit with the command's status.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(xmeta::run() as u8)
}
