//! A PostgreSQL state's address: the URL (its password a secret), the TLS
//! mode and the workspace.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

/// How the connection is protected, after the URL's `sslmode` (libpq's
/// names and meanings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// `disable`: never TLS.
    Disable,
    /// `prefer` (the default) and `require`: TLS (required or not) that
    /// keeps eavesdroppers out but, as in libpq, checks no certificate.
    Unverified { required: bool },
    /// `verify-ca` and `verify-full`: TLS with the server's certificate
    /// checked, host name included, against `sslrootcert` (a PEM file) or
    /// the public web roots.
    Verified { root: Option<PathBuf> },
}

#[derive(Clone)]
pub struct Target {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: TlsMode,
    pub(super) workspace: String,
    /// `--create-workspace`: a writer makes the workspace if it does not
    /// exist, and a reader reads it as empty.
    pub(super) create_workspace: bool,
    /// The URL without password or query, for messages.
    shown: String,
    secrets: Vec<String>,
}

impl Target {
    pub fn is_url(text: &str) -> bool {
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }

    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=…]`;
    /// `password` (from `PGPASSWORD`) is used when the URL has none.
    pub fn parse(text: &str, workspace: &str, password: Option<String>) -> anyhow::Result<Target> {
        // Never quote `text` in an error: it may hold the password.
        let mut url = url::Url::parse(text)
            .map_err(|e| anyhow!("the --state URL is not a valid PostgreSQL URL ({e})"))?;
        check_workspace_name(workspace)?;
        let mut secrets = Vec::new();
        if let Some(p) = url.password() {
            secrets.push(p.to_string());
            if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
                secrets.push(decoded.into_owned());
            }
        }
        let mut tls = TlsMode::Unverified { required: false };
        let mut root = None;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => {
                    tls = match value.as_ref() {
                        "disable" => TlsMode::Disable,
                        "allow" | "prefer" => TlsMode::Unverified { required: false },
                        "require" => TlsMode::Unverified { required: true },
                        "verify-ca" | "verify-full" => TlsMode::Verified { root: None },
                        other => bail!(
                            "sslmode `{}` is not one of disable, prefer, require, verify-ca, verify-full",
                            crate::untrusted::neutralise(other, 32)
                        ),
                    }
                }
                "sslrootcert" => root = Some(PathBuf::from(value.as_ref())),
                "password" => {
                    secrets.push(value.to_string());
                    kept.push((key.into_owned(), value.into_owned()));
                }
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if let TlsMode::Verified { root: r } = &mut tls {
            *r = root;
        }
        // Handed on percent-encoded (`%20`, never the form encoding's `+`,
        // which the driver keeps as a plus): it decodes each value back to
        // exactly what the URL said (`?password=p%20w` is `p w`).
        let encode = |text: &str| {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let query: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url.set_query((!query.is_empty()).then(|| query.join("&")).as_deref());
        let mut config: tokio_postgres::Config = url.as_str().parse().map_err(|e| {
            anyhow!(
                "the --state URL is not a valid PostgreSQL URL ({})",
                crate::untrusted::scrub(&format!("{e}"), &as_strs(&secrets))
            )
        })?;
        if config.get_password().is_none() {
            if let Some(p) = password.filter(|p| !p.is_empty()) {
                config.password(&p);
                secrets.push(p);
            }
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
            TlsMode::Unverified { required: false } => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        config.application_name("xmeta");
        let _ = url.set_password(None);
        url.set_query(None);
        Ok(Target {
            config,
            tls,
            workspace: workspace.to_string(),
            create_workspace: false,
            shown: url.to_string(),
            secrets,
        })
    }

    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// The same database, another workspace.
    #[must_use]
    pub fn in_workspace(&self, workspace: &str) -> Target {
        Target {
            workspace: workspace.to_string(),
            ..self.clone()
        }
    }

    /// Lets writers create the workspace (see `create_workspace`).
    pub fn set_create_workspace(&mut self, create: bool) {
        self.create_workspace = create;
    }

    /// The URL without its password or query: what `--state` takes, for
    /// messages.
    pub fn url_shown(&self) -> &str {
        &self.shown
    }

    pub fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    /// `text` with every secret of this target replaced by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        crate::untrusted::scrub(text, &as_strs(&self.secrets))
    }
}

fn as_strs(secrets: &[String]) -> Vec<&str> {
    secrets.iter().map(String::as_str).collect()
}

/// A workspace is a name, never SQL or a path.
pub fn check_workspace_name(name: &str) -> anyhow::Result<()> {
    let fine = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !fine {
        bail!(
            "`{}` is not a workspace name: use 1 to 64 letters, digits, dots, dashes or underscores",
            crate::untrusted::neutralise(name, 64)
        );
    }
    Ok(())
}

/// The URL without its password, and the workspace.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (workspace `{}`)", self.shown, self.workspace)
    }
}

/// As `Display`: the password must not reach a `{:?}` either.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let t = Target::parse(
            "postgres://ci:s%40cret@db.example:5433/xmeta?sslmode=require&password=two",
            "prod",
            None,
        )
        .unwrap();
        let shown = format!("{t} {t:?}");
        assert_eq!(
            t.to_string(),
            "postgres://ci@db.example:5433/xmeta (workspace `prod`)"
        );
        for secret in ["s%40cret", "s@cret", "two"] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(t.secrets().iter().any(|s| s == secret));
        }
        assert_eq!(t.tls, TlsMode::Unverified { required: true });
        assert_eq!(t.config.get_password(), Some(&b"two"[..]));
    }

    #[test]
    fn query_values_reach_the_driver_exactly_as_decoded() {
        let t = Target::parse(
            "postgres://ci@db/x?password=p%20w%2Bx&options=-c%20search_path%3Da%2Cb",
            "default",
            None,
        )
        .unwrap();
        assert_eq!(t.config.get_password(), Some(&b"p w+x"[..]));
        assert_eq!(t.config.get_options(), Some("-c search_path=a,b"));
    }

    #[test]
    fn pgpassword_fills_a_missing_password_and_sslmode_is_checked() {
        let t = Target::parse(
            "postgresql://ci@db/x?sslmode=verify-full&sslrootcert=/ca.pem",
            "default",
            Some("env".into()),
        )
        .unwrap();
        assert_eq!(t.config.get_password(), Some(&b"env"[..]));
        assert_eq!(
            t.tls,
            TlsMode::Verified {
                root: Some("/ca.pem".into())
            }
        );
        let err = Target::parse("postgres://u:pw@h/d?sslmode=bogus", "default", None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bogus") && !err.contains("pw@"), "{err}");
        assert!(Target::parse("postgres://h/d", "a b", None).is_err());
    }
}
