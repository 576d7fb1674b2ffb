//! `xmeta import --out DIR`: read an account's posts page by page (through
//! the one client: pacing, retries, budgets, bounded and checked answers),
//! and write manifests for the media it posted, one new file per month.
//! Media already declared under the directory's repository are reported,
//! not written again; an interrupted import leaves a note in DIR
//! (`.xmeta-import.json`) and the next run reads only older posts. With
//! `--adopt`, the written files are recorded as applied, as `adopt` does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};

use crate::commands::{apply::ask, Exit};
use crate::config::{Config, ImportConfig, UserRef};
use crate::import::{self, Imported, Progress, Source, PROGRESS_FILE};
use crate::output::Output;
use crate::plan::cost::{self, thousands};
use crate::time::Timestamp;
use crate::x_api::{Account, ApiError, Client, PageQuery, POSTS_PER_PAGE};

/// X serves only an account's most recent posts.
const POSTS_HORIZON: usize = 3_200;
/// The largest progress note read: one small JSON object.
const MAX_PROGRESS_BYTES: u64 = 64 * 1024;
/// Already-declared media named one by one, before a count of the rest.
const NAMED_DECLARED: usize = 5;

/// How the reading ended.
enum Ending {
    /// X has no more posts in range.
    Complete,
    /// `--max-requests` or `--max-duration` was reached.
    Budget,
    /// Ctrl-C or SIGTERM: the page in flight finished, no other started.
    Interrupted,
    /// X offered more pages than its horizon holds (it serves 3,200
    /// posts; a server that pages on forever would grow this run without
    /// bound): stopped, so the printed maximum holds.
    PageCap,
    Failed(ApiError),
}

/// What the pages held.
#[derive(Default)]
struct Harvest {
    posts: usize,
    pages: usize,
    own: BTreeMap<crate::model::MediaId, Imported>,
    /// Keys seen only in other accounts' posts (retweets).
    others: BTreeSet<String>,
    /// The oldest post read (the next run reads older ones).
    oldest: Option<u64>,
}

pub fn run(config: &Config, args: &ImportConfig, out: Output) -> anyhow::Result<Exit> {
    let dir = &args.out;
    prepare(dir)?;
    // Read first: a problem here costs no request.
    let (declared, invalid) = existing(dir)?;
    let progress_file = dir.join(PROGRESS_FILE);
    let saved = read_progress(&progress_file)?;
    let lookups = usize::from(!matches!(args.user, UserRef::Id(_)));
    let pages = POSTS_HORIZON.div_ceil(POSTS_PER_PAGE);
    let most = (lookups + pages).min(args.budget.max_requests.unwrap_or(usize::MAX));
    out.line(&format!(
        "Import reads at most {} request{} ({}{} page{} of {POSTS_PER_PAGE} posts; X serves an account's most recent {}).",
        thousands(most as u64),
        if most == 1 { "" } else { "s" },
        if lookups == 1 { "1 account lookup, " } else { "" },
        most - lookups.min(most),
        if most - lookups.min(most) == 1 { "" } else { "s" },
        thousands(POSTS_HORIZON as u64)
    ));
    out.line(&cost::estimate(0, most, args.price_per_request).line());
    if !args.auto_approve {
        if !config.stdin_is_terminal {
            bail!("refusing to read without confirmation: stdin is not a terminal; pass `--auto-approve`");
        }
        if !ask(&format!("Read up to {most} requests from X?"))? {
            out.line("Import cancelled; nothing was read.");
            return Ok(Exit::Error);
        }
    }
    let started = Instant::now();
    // The first Ctrl-C lets the page in flight finish, then what was read
    // is written as at the budget; the second quits at once.
    let shutdown = crate::shutdown::Shutdown::install()?;
    let runtime = &shutdown.runtime;
    let client = Client::new(args.client.clone())?;
    client.set_stop(shutdown.cancel.clone());
    client.set_deadline(args.budget.max_duration.map(|d| started + d));
    let account = runtime
        .block_on(account(&client, &args.user))
        .map_err(|e| anyhow!("reading the account failed: {e}"))?;
    let mut query = PageQuery {
        user_id: account.id.clone(),
        since: args.since,
        until: args.until,
        ..PageQuery::default()
    };
    if let Some(p) = saved
        .as_ref()
        .filter(|p| p.user_id == account.id && p.since == args.since && p.until == args.until)
    {
        query.until_id = Some(p.until_id);
        out.line(&format!(
            "Continuing an interrupted import: posts older than {} (from `{}`).",
            p.until_id,
            progress_file.display()
        ));
    }
    let mut harvest = Harvest::default();
    let mut used = lookups;
    let ending = loop {
        let over_requests = args.budget.max_requests.is_some_and(|n| used >= n);
        let over_time = args
            .budget
            .max_duration
            .is_some_and(|d| started.elapsed() >= d);
        if shutdown.is_cancelled() {
            break Ending::Interrupted;
        }
        if over_requests || over_time {
            break Ending::Budget;
        }
        used += 1;
        // On Ctrl-C a read waiting to retry or for a rate-limit window is
        // not sent (the client stops it), but a page in flight is awaited
        // and kept: X billed it, and dropping it would read it again.
        let page = match runtime.block_on(client.read_posts(&query)) {
            Ok(page) => page,
            Err(crate::x_api::ApiError::Stopped) => break Ending::Interrupted,
            Err(e) => break Ending::Failed(e),
        };
        harvest.add(page.posts);
        match page.next_token {
            Some(_) if harvest.pages >= pages => break Ending::PageCap,
            Some(token) => query.token = Some(token),
            None => break Ending::Complete,
        }
    };
    let (fresh, known): (Vec<Imported>, Vec<Imported>) = harvest
        .own
        .values()
        .cloned()
        .partition(|m| !declared.contains_key(&m.id));
    let source = Source {
        user_id: account.id.clone(),
        username: import::safe_handle(&account.username),
        at: Timestamp::now(),
    };
    let written = write_months(dir, &source, fresh)?;
    // The note is updated after the files: a run stopped in between reads
    // some posts again, and finds their media already declared.
    let remaining = match (&ending, harvest.oldest) {
        (Ending::Complete, _) => None,
        (_, Some(oldest)) => Some(Progress {
            user_id: account.id.clone(),
            since: args.since,
            until: args.until,
            until_id: oldest,
        }),
        (_, None) => saved.clone(),
    };
    save_progress(&progress_file, remaining.as_ref())?;
    let placeholders = written
        .iter()
        .flat_map(|(_, media)| media.iter())
        .filter(|m| !import::has_writable_alt_text(m))
        .count();
    let media: usize = written.iter().map(|(_, m)| m.len()).sum();
    let shown = source
        .username
        .as_ref()
        .map_or_else(|| format!("user {}", account.id), |u| format!("@{u}"));
    out.line(&format!(
        "Read {} request{}: {} page{} with {} posts of {shown}.",
        thousands(used as u64),
        if used == 1 { "" } else { "s" },
        harvest.pages,
        if harvest.pages == 1 { "" } else { "s" },
        thousands(harvest.posts as u64),
    ));
    for (file, list) in &written {
        out.line(&format!(
            "  wrote {} ({} media)",
            file.display(),
            thousands(list.len() as u64)
        ));
    }
    out.line(&format!(
        "Wrote {} media to {} file{} in {} ({} without alt text: a placeholder for `xmeta lint` to flag).",
        thousands(media as u64),
        written.len(),
        if written.len() == 1 { "" } else { "s" },
        dir.display(),
        thousands(placeholders as u64)
    ));
    out.line(&format!(
        "Skipped {} media of other accounts (in retweets) and {} already declared.",
        thousands(harvest.others.len() as u64),
        thousands(known.len() as u64)
    ));
    for m in known.iter().take(NAMED_DECLARED) {
        if let Some(at) = declared.get(&m.id) {
            // A file name in the repository may hold anything.
            let at = crate::untrusted::neutralise(&at.to_string(), 4096);
            let at = at.strip_prefix("./").unwrap_or(&at);
            out.line(&format!("  media {} is already declared at {at}", m.id));
        }
    }
    if known.len() > NAMED_DECLARED {
        out.line(&format!(
            "  … and {} more already declared",
            thousands((known.len() - NAMED_DECLARED) as u64)
        ));
    }
    if invalid > 0 {
        crate::logging::line(
            "warning",
            &format!("{invalid} file(s) under the repository do not validate as manifests; the media IDs they name were still taken as declared (`xmeta validate` shows why)"),
        );
    }
    if args.adopt && !written.is_empty() {
        let paths: Vec<PathBuf> = written.iter().map(|(f, _)| f.clone()).collect();
        let (adopted, unchanged) = super::adopt::record(
            config,
            &paths,
            &crate::plan::Targets::default(),
            crate::state::history::Event::Import,
        )?;
        out.line(&format!(
            "Adopted {adopted} media ({unchanged} already matched); nothing was sent."
        ));
    }
    match ending {
        Ending::Complete => {
            out.line("Import complete.");
            Ok(Exit::Success)
        }
        Ending::Budget => {
            out.line(&format!(
                "Import stopped at the budget; run it again to continue with older posts (noted in `{}`).",
                progress_file.display()
            ));
            Ok(Exit::Success)
        }
        Ending::Interrupted => {
            out.line(&format!(
                "Import interrupted; what was read is written: run it again to continue with older posts (noted in `{}`).",
                progress_file.display()
            ));
            Ok(Exit::Error)
        }
        Ending::PageCap => {
            out.line(&format!(
                "Import stopped after {pages} pages, as many as X's {} most recent posts fill; X offers more: run it again to continue.",
                thousands(POSTS_HORIZON as u64)
            ));
            Ok(Exit::Success)
        }
        Ending::Failed(e) => Err(anyhow!(
            "reading the posts failed: {e}; what was read before is written, and a rerun continues from there"
        )),
    }
}

impl Harvest {
    fn add(&mut self, posts: Vec<crate::x_api::Post>) {
        self.pages += 1;
        self.posts += posts.len();
        for post in posts {
            self.oldest = Some(self.oldest.map_or(post.id, |o| o.min(post.id)));
            for media in post.media {
                if !post.own {
                    self.others.insert(media.key);
                    continue;
                }
                let entry = self.own.entry(media.id).or_insert_with(|| Imported {
                    id: media.id,
                    key: media.key.clone(),
                    alt_text: media.alt_text.clone(),
                    posted: post.created_at,
                });
                entry.posted = entry.posted.min(post.created_at);
            }
        }
        // A media of the account's own posts is its own, retweeted or not.
        let own = &self.own;
        self.others.retain(|key| {
            key.split_once('_')
                .and_then(|(_, id)| crate::model::MediaId::parse(id))
                .is_none_or(|id| !own.contains_key(&id))
        });
    }
}

async fn account(client: &Client, user: &UserRef) -> Result<Account, ApiError> {
    match user {
        UserRef::Me => client.read_me().await,
        UserRef::Handle(name) => client.read_user_by_name(name).await,
        UserRef::Id(id) => Ok(Account {
            id: id.clone(),
            username: String::new(),
        }),
    }
}

/// The output directory exists (created if missing) and is a directory.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() && dir.is_dir() => Ok(()),
        Ok(_) => bail!(
            "--out `{}` is not a directory; name a directory for the manifests",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display())),
        Err(e) => Err(anyhow!("cannot read `{}`: {e}", dir.display())),
    }
}

/// The media IDs declared under the repository that holds `dir` (the
/// nearest parent with `.git`; outside one, `dir` itself).
fn existing(
    dir: &Path,
) -> anyhow::Result<(
    BTreeMap<crate::model::MediaId, crate::error::Location>,
    usize,
)> {
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    let root = canonical
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map_or_else(|| canonical.clone(), Path::to_path_buf);
    // Named as the user would from here, where it is below.
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let shown = match cwd.as_ref().and_then(|c| root.strip_prefix(c).ok()) {
        Some(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Some(rel) => rel.to_path_buf(),
        None => root,
    };
    crate::planner::declared_ids(&[shown])
}

fn read_progress(file: &Path) -> anyhow::Result<Option<Progress>> {
    match crate::intake::read_own(file, MAX_PROGRESS_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            anyhow!(
                "`{}` is not an import's progress note ({e}); remove it to start over",
                file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read `{}`: {e}", file.display())),
    }
}

fn save_progress(file: &Path, progress: Option<&Progress>) -> anyhow::Result<()> {
    match progress {
        Some(p) => crate::fs_util::write_private(file, serde_json::to_string(p)?.as_bytes())
            .with_context(|| format!("cannot write `{}`", file.display())),
        None => match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow!("cannot remove `{}`: {e}", file.display()))
            }
            _ => Ok(()),
        },
    }
}

/// Writes each month's media to `media-YYYY-MM.yaml`, or, when that name
/// is taken (an earlier import, a user's file), `media-YYYY-MM-2.yaml`
/// and so on: never over an existing file.
fn write_months(
    dir: &Path,
    source: &Source,
    media: Vec<Imported>,
) -> anyhow::Result<Vec<(PathBuf, Vec<Imported>)>> {
    let mut written = Vec::new();
    for (month, list) in import::by_month(media) {
        let text = import::render(&month, source, &list);
        let mut n = 1;
        loop {
            let name = if n == 1 {
                format!("media-{month}.yaml")
            } else {
                format!("media-{month}-{n}.yaml")
            };
            let file = dir.join(name);
            match crate::fs_util::write_new(&file, text.as_bytes()) {
                Ok(()) => {
                    written.push((file, list));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(anyhow!("cannot write `{}`: {e}", file.display())),
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MediaId;
    use crate::x_api::{MediaKind, PostedMedia};

    fn post(id: u64, at: &str, own: bool, keys: &[u64]) -> crate::x_api::Post {
        crate::x_api::Post {
            id,
            created_at: Timestamp::parse(at).unwrap(),
            own,
            media: keys
                .iter()
                .map(|k| PostedMedia {
                    id: MediaId::parse(&k.to_string()).unwrap(),
                    key: format!("3_{k}"),
                    kind: MediaKind::Photo,
                    alt_text: None,
                })
                .collect(),
        }
    }

    #[test]
    fn shared_media_count_once_in_their_earliest_month_and_retweets_are_others() {
        let mut h = Harvest::default();
        h.add(vec![
            post(30, "2026-11-02T00:00:00Z", true, &[1, 2]),
            post(29, "2026-11-01T00:00:00Z", false, &[3, 4]),
        ]);
        h.add(vec![post(28, "2026-10-31T00:00:00Z", true, &[2, 4])]);
        assert_eq!(h.pages, 2);
        assert_eq!(h.posts, 3);
        assert_eq!(h.oldest, Some(28));
        assert_eq!(h.own.len(), 3, "1, 2 and 4 (retweeted, but also posted)");
        let two = &h.own[&MediaId::parse("2").unwrap()];
        assert_eq!(import::month(two.posted), "2026-10");
        assert_eq!(h.others.iter().collect::<Vec<_>>(), ["3_3"]);
    }
}
