//! Watch mode below its command: the manifests as last read
//! (`workspace`), the state as last seen (`applied`), file-system events
//! (`events`) and the retry policy of failed cycles (`retry`).

mod applied;
mod events;
mod retry;
mod workspace;

pub use applied::AppliedCache;
pub use events::{next_changes, roots};
pub use retry::Retry;
pub use workspace::{settle_bound, Workspace};
