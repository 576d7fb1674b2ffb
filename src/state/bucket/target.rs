//! A bucket state's address: `s3://BUCKET/PREFIX`, `gs://…`, `az://…` or
//! `azure://…`, and the workspace (a folder under the prefix). Credentials
//! never come from the URL, only from each cloud's standard environment.

use anyhow::bail;

use crate::state::location::DEFAULT_WORKSPACE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    S3,
    Gcs,
    Azure,
}

#[derive(Clone, Debug)]
pub struct Target {
    cloud: Cloud,
    /// `s3://BUCKET` as `object_store` takes it.
    bucket: String,
    /// The folder the workspaces live in (may be empty).
    prefix: String,
    /// The URL as given (it holds no secret), for messages.
    shown: String,
    workspace: String,
    create_workspace: bool,
}

/// The variables whose values are secrets, in every cloud's environment.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
];

impl Target {
    /// Whether `text` names a bucket.
    pub fn is_url(text: &str) -> bool {
        cloud_of(text).is_some()
    }

    pub fn parse(text: &str, workspace: &str) -> anyhow::Result<Target> {
        let Some((cloud, rest)) = cloud_of(text) else {
            bail!("the --state value is not an s3://, gs://, az:// or azure:// URL");
        };
        crate::state::postgres::check_workspace_name(workspace)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let fine_bucket = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !fine_bucket {
            // Not echoed: `user:secret@bucket` must not be shown.
            bail!("the bucket in --state must be a plain name (letters, digits, dots, dashes, underscores: no user, password, port or query); credentials come from the environment, never the URL");
        }
        let prefix = prefix.trim_end_matches('/');
        let fine_prefix = prefix.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        });
        if !prefix.is_empty() && !fine_prefix {
            // Not echoed: a query may hold a signature.
            bail!("the prefix in --state is not a plain folder path (letters, digits, dots, dashes, underscores, separated by `/`; no `..`, empty part, query or fragment)");
        }
        let scheme = &text[..text.find("://").unwrap_or(0)];
        Ok(Target {
            cloud,
            bucket: format!("{}://{bucket}", scheme.to_ascii_lowercase()),
            prefix: prefix.to_string(),
            shown: format!("{}://{bucket}/{prefix}", scheme.to_ascii_lowercase()),
            workspace: workspace.to_string(),
            create_workspace: false,
        })
    }

    pub fn cloud(&self) -> Cloud {
        self.cloud
    }

    pub fn bucket_url(&self) -> &str {
        &self.bucket
    }

    pub fn url_shown(&self) -> &str {
        &self.shown
    }

    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    pub fn create_workspace(&self) -> bool {
        self.create_workspace
    }

    pub fn set_create_workspace(&mut self, create: bool) {
        self.create_workspace = create;
    }

    /// The folder of workspace `name`.
    pub fn folder_of(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// This workspace's folder.
    pub fn folder(&self) -> String {
        self.folder_of(&self.workspace)
    }

    /// The folder that holds the workspaces.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// This target's workspace `name`.
    pub fn with_workspace(&self, name: &str) -> Target {
        Target {
            workspace: name.to_string(),
            ..self.clone()
        }
    }

    pub fn is_default_workspace(&self) -> bool {
        self.workspace == DEFAULT_WORKSPACE
    }

    /// The credentials the environment holds, to scrub from anything shown.
    pub fn env_secrets() -> Vec<String> {
        SECRET_VARIABLES
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .filter(|value| !value.is_empty())
            .collect()
    }
}

fn cloud_of(text: &str) -> Option<(Cloud, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let cloud = match scheme.to_ascii_lowercase().as_str() {
        "s3" => Cloud::S3,
        "gs" => Cloud::Gcs,
        "az" | "azure" => Cloud::Azure,
        _ => return None,
    };
    Some((cloud, rest))
}

/// The URL and workspace.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (workspace `{}`)", self.shown, self.workspace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_cloud_bucket_and_prefix() {
        let t = Target::parse("s3://team-state/xmeta/prod", "default").unwrap();
        assert_eq!(t.cloud(), Cloud::S3);
        assert_eq!(t.bucket_url(), "s3://team-state");
        assert_eq!(t.folder(), "xmeta/prod/default");
        let t = Target::parse("GS://b", "ci").unwrap();
        assert_eq!((t.cloud(), t.folder().as_str()), (Cloud::Gcs, "ci"));
        let t = Target::parse("azure://container/p/", "default").unwrap();
        assert_eq!(t.cloud(), Cloud::Azure);
        assert_eq!(t.folder(), "p/default");
        assert!(Target::parse("az://c/x", "default").is_ok());
    }

    #[test]
    fn credentials_in_the_url_and_odd_prefixes_are_refused_unechoed() {
        for text in [
            "s3://AKIA:hunter2@bucket/x",
            "s3://bucket:9000/x",
            "s3://bucket/x?sig=hunter2",
            "s3://bucket/../x",
            "s3://bucket/a//b",
            "s3:///x",
        ] {
            let err = Target::parse(text, "default").unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
