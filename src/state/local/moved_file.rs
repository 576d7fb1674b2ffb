//! `moved.json` beside the database: the mark `state migrate` leaves on a
//! directory it copied from (see `state/moved.rs`).

use std::path::Path;

use anyhow::Context;

use crate::state::moved::Moved;

pub const MOVED_FILE: &str = "moved.json";

/// The mark, if the state in `dir` moved.
pub fn read(dir: &Path) -> anyhow::Result<Option<Moved>> {
    match crate::intake::read_own(&dir.join(MOVED_FILE), 64 * 1024) {
        Ok(bytes) => Ok(Some(Moved::decode(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read `{MOVED_FILE}` in the state `{}`; check its permissions",
                dir.display()
            )
        }),
    }
}

/// Writes the mark, durable before it returns: the file and then the
/// directory entry that names it.
pub fn write(dir: &Path, moved: &Moved) -> anyhow::Result<()> {
    let failed = || format!("cannot mark the state in `{}` as moved", dir.display());
    crate::fs_util::write_private(&dir.join(MOVED_FILE), &moved.encode()).with_context(failed)?;
    crate::fs_util::sync_dir(dir).with_context(failed)
}
