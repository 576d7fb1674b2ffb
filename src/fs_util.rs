//! Small file helpers shared by the plan and state writers: the one place
//! that writes a file a user names (`--out`).

use std::io::Write;
use std::path::Path;

/// Writes a file with mode 0600 (plans and exports may reveal what is
/// about to change), replacing it atomically. The temporary file gets a
/// random name, is created exclusively and never through a symlink, so
/// another user of a shared directory cannot pre-create or redirect it.
///
/// Only a new file or a regular one is written: the rename would replace
/// whatever the name holds, and `--out /dev/null` as root turned the
/// device into a file. A symlink is refused rather than followed, so
/// whoever made the link cannot choose what is overwritten (and a link
/// made on purpose is not silently replaced by a file).
pub fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_private_with(file, |w| w.write_all(bytes))
}

/// `write_private` of what `write` streams out (through a buffer): a
/// file too big to build in memory first (a saved plan, `state export`).
/// Nothing replaces `file` unless `write` succeeds.
pub fn write_private_with(
    file: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_private_patched(file, |w| write(w).map(|()| None))
}

/// Bytes to write over, at their offset in the file, once the rest is
/// written: a checksum line at the head of the bytes it covers.
pub type Patch = (u64, Vec<u8>);

/// `write_private_with`, where `write` may end with a `Patch`, written
/// over what it streamed before the file is flushed to disk and put in
/// place: a file that names its own checksum first is written once.
pub fn write_private_patched(
    file: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<Option<Patch>>,
) -> std::io::Result<()> {
    refuse_special(file)?;
    let tmp = written_beside(file, write, 0o600)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// What `write` streams, in a new temporary file in `file`'s directory,
/// with `mode`, its `Patch` written over it, flushed to disk: what a
/// writer renames or links into place.
fn written_beside(
    file: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<Option<Patch>>,
    mode: u32,
) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates with O_CREAT|O_EXCL and mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".xmeta-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
    let patch = write(&mut out)?;
    out.flush()?;
    drop(out);
    if let Some((at, bytes)) = patch {
        use std::os::unix::fs::FileExt;
        tmp.as_file().write_all_at(&bytes, at)?;
    }
    if mode != 0o600 {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Makes what was renamed, created or removed in `dir` durable: its
/// entries, flushed (the directory is opened, never read).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes a new file, never replacing one: the bytes go to a temporary
/// file first and are linked to `file` only if no file (or link) has that
/// name, so a reader never sees half a file and a file a user made or
/// edited meanwhile is never overwritten (`AlreadyExists` then). Mode 0644:
/// these are files to review and commit (`import`'s manifests).
pub fn write_new(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = written_beside(file, |w| w.write_all(bytes).map(|()| None), 0o644)?;
    tmp.persist_noclobber(file).map_err(|e| e.error)?;
    Ok(())
}

/// An error unless `file` is absent or a regular file (not followed):
/// checked again by `write_private_patched`, and first by commands before they do
/// any work, so a plan is not printed only to fail at its `--out`.
pub fn refuse_special(file: &Path) -> std::io::Result<()> {
    let kind = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta.file_type(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match crate::intake::kind_name(kind) {
        None => Ok(()),
        // Callers name the file; this says what is wrong with it.
        Some(what) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file; name a new file or a regular one"),
        )),
    }
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

    #[test]
    fn a_patch_writes_over_what_was_streamed_before_the_file_is_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plan.json");
        // A body still in the writer's buffer when the patch comes, and
        // one larger than the buffer.
        for body in [4, 1 << 17] {
            write_private_patched(&file, |w| {
                w.write_all(b"sum:????\n")?;
                w.write_all(&vec![b'x'; body])?;
                Ok(Some((4, b"abcd".to_vec())))
            })
            .unwrap();
            // The file this test just wrote in its own temp dir; the
            // commands' reads of user files go through `intake`.
            let written = std::fs::read(&file).unwrap();
            assert_eq!(&written[..9], b"sum:abcd\n");
            assert_eq!(written.len(), 9 + body);
            assert!(written[9..].iter().all(|b| *b == b'x'));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_new_file_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("media-2026-11.yaml");
        write_new(&file, b"first").unwrap();
        let e = write_new(&file, b"second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "first");
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(dir.path().join("absent"), &link).unwrap();
        assert!(write_new(&link, b"x").is_err());
        assert!(!dir.path().join("absent").exists());
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        for (target, what) in [(dir.path(), "a directory"), (link.as_path(), "a symlink")] {
            let e = write_private(target, b"plan").unwrap_err().to_string();
            assert!(
                e.contains(&format!("it is {what}, not a regular file")),
                "{e}"
            );
        }
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        write_private(&victim, b"plan").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "plan");
    }
}
