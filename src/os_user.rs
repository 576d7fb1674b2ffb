//! The name of the user running xmeta, for the history's actor when
//! neither `USER` nor `LOGNAME` is set (containers, cron, systemd units):
//! the real uid's entry in `/etc/passwd`. No NSS lookup (that needs libc's
//! `getpwuid`, and this crate forbids unsafe code): users from a
//! directory service have `USER` set by their login, and a uid with no
//! name anywhere stays unnamed.

/// The user name of this process's real uid, if the passwd file has one.
pub fn name() -> Option<String> {
    let uid = rustix::process::getuid().as_raw();
    // Through the intake like every file read: bounded, never a FIFO.
    let bytes = crate::intake::read(std::path::Path::new("/etc/passwd"), None, 16 << 20).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    name_of(&text, uid)
}

/// `name:password:uid:gid:…` lines; the first with `uid` wins, as in libc.
fn name_of(passwd: &str, uid: u32) -> Option<String> {
    passwd
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let found = fields.nth(1)?.parse::<u32>().ok()? == uid;
            (found && !name.is_empty()).then(|| name.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_of_the_uid_is_its_name() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\n\
                      ci:x:1001:1001::/home/ci:/bin/sh\nalias:x:1001:1001::/:/bin/sh\n:x:7:7::/:\n";
        assert_eq!(name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of(passwd, 1001).as_deref(), Some("ci"));
        assert_eq!(name_of(passwd, 7), None);
        assert_eq!(name_of(passwd, 4242), None);
    }
}
