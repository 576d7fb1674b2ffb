//! A PostgreSQL database of a test's own (workspaces listed, a schema
//! version planted, roles granted: only its own).

use crate::support::{sql, Backend, TestEnv};

/// A database of its own, dropped at the end: the workspaces a test
/// lists must be only its own.
pub struct OwnDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl OwnDatabase {
    pub fn new(test: &str, tag: &str) -> Option<OwnDatabase> {
        let Backend::Postgres(server) = Backend::postgres(test)? else {
            return None;
        };
        let name = format!("xmeta_{tag}_{}", std::process::id());
        sql(&server, &format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        sql(&server, &format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        Some(OwnDatabase {
            url: url.to_string(),
            server,
            name,
        })
    }

    pub fn env(&self) -> TestEnv {
        TestEnv::on(Backend::Sled).with_env("XMETA_STATE", &self.url)
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        let _ = sql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
