//! Small file helpers shared by the plan and state writers.

use std::io::Write;
use std::path::Path;

/// Writes a file with mode 0600 (plans and exports may reveal what is
/// about to change), replacing it atomically.
pub fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("xmeta"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}
