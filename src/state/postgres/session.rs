//! One PostgreSQL connection, used from synchronous code anywhere (inside
//! apply's runtime too): the connection lives on its own small runtime,
//! and each call is spawned there and waited for over a channel, so no
//! caller ever nests one runtime's `block_on` inside another.

use std::future::Future;
use std::sync::Arc;

use anyhow::anyhow;
use tokio::sync::RwLock;
use tokio_postgres::Client;

use super::target::Target;
use super::tls;

pub struct Session {
    runtime: Option<tokio::runtime::Runtime>,
    client: Arc<RwLock<Client>>,
    pub target: Target,
}

impl Session {
    pub fn connect(target: &Target) -> anyhow::Result<Session> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("xmeta-postgres")
            .enable_all()
            .build()?;
        let tls = tls::connector(&target.tls)?;
        let config = target.config.clone();
        let connected = wait(&runtime, async move {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("the PostgreSQL connection ended: {e}");
                }
            });
            Ok(client)
        });
        let client = match connected {
            Some(Ok(client)) => client,
            Some(Err(e)) => {
                return Err(anyhow!(
                    "cannot connect to the PostgreSQL state at {target}: {}",
                    target.scrub(&chain(&e))
                ))
            }
            None => {
                return Err(anyhow!(
                    "cannot connect to the PostgreSQL state at {target}"
                ))
            }
        };
        Ok(Session {
            runtime: Some(runtime),
            client: Arc::new(RwLock::new(client)),
            target: target.clone(),
        })
    }

    /// Runs `call` on the connection and waits for it; errors name the
    /// state, never its password.
    pub fn run<T, F, Fut>(&self, call: F) -> anyhow::Result<T>
    where
        F: FnOnce(Arc<RwLock<Client>>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| anyhow!("the PostgreSQL state at {} is closed", self.target))?;
        match wait(runtime, call(self.client.clone())) {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(anyhow!(
                "the PostgreSQL state at {}: {}",
                self.target,
                self.target.scrub(&chain(&e))
            )),
            None => Err(anyhow!(
                "the PostgreSQL state at {}: the connection's worker stopped",
                self.target
            )),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Callable from inside another runtime, unlike dropping one; the
        // connection closes with it, ending the database session.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    call: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(call.await);
    });
    rx.recv().ok()
}

/// The error with its causes: tokio-postgres says only "db error" at the
/// top and puts the server's message in the source.
pub fn chain(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
