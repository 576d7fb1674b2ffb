//! Small file helpers shared by the plan and state writers.

use std::io::Write;
use std::path::Path;

/// Writes a file with mode 0600 (plans and exports may reveal what is
/// about to change), replacing it atomically. The temporary file gets a
/// random name, is created exclusively and never through a symlink, so
/// another user of a shared directory cannot pre-create or redirect it.
pub fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates with O_CREAT|O_EXCL and mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".xmeta-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn never_writes_through_a_planted_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        // The name the old writer used, planted as a symlink.
        let planted = dir
            .path()
            .join(format!(".plan.json.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let target = dir.path().join("plan.json");
        write_private(&target, b"plan").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "plan");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
