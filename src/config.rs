//! Flags and environment into a `Config`: the only place that reads
//! environment variables or knows about clap's types.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::Url;

use crate::apply::Budget;
use crate::cli::{self, Cli, Command, StateCommand, WorkspaceCommand};
use crate::model::MediaId;
use crate::plan::Targets;
use crate::state::Location;
use crate::time::Timestamp;
use crate::x_api::{Auth, ClientSettings, OAuth1, Secret};

pub const DEFAULT_API_URL: &str = "https://api.x.com";
pub const DEFAULT_STATE_DIR: &str = "./state";
use crate::plan::cost::PRICE_PER_REQUEST_USD;

#[derive(Debug)]
pub struct Config {
    /// Where the state is: a directory or a PostgreSQL database.
    pub state: Location,
    /// What the history records about this run (see `provenance.rs`).
    pub sources: crate::provenance::Sources,
    /// PATHs that declare no media are accepted (`--allow-empty`).
    pub allow_empty: bool,
    /// Colour on stdout (see `colour`).
    pub color: bool,
    /// Colour of `warning:` and `error:` labels on stderr.
    pub stderr_color: bool,
    pub stdin_is_terminal: bool,
    /// A terminal that can draw a progress bar (not `TERM=dumb`).
    pub stderr_is_terminal: bool,
    /// `-v` count and `RUST_LOG`, for the log filter.
    pub verbose: u8,
    pub rust_log: Option<String>,
    /// The command line, for the state lock's "who holds it".
    pub command_line: String,
    pub task: Task,
}

#[derive(Debug)]
pub enum Task {
    Validate {
        paths: Vec<PathBuf>,
        /// `--format github`: annotations on stdout.
        github: bool,
    },
    Plan(PlanConfig),
    Apply(ApplyConfig),
    Watch(WatchConfig),
    Adopt {
        paths: Vec<PathBuf>,
        targets: Targets,
    },
    State(StateAction),
    Refresh {
        paths: Vec<PathBuf>,
        client: ClientSettings,
    },
    Import(ImportConfig),
    Lint {
        paths: Vec<PathBuf>,
        format: crate::lint::LintFormat,
        config: Option<PathBuf>,
        /// `--sarif FILE`: SARIF written there too.
        sarif: Option<PathBuf>,
    },
    /// `lint --list-rules`, as text or JSON.
    ListRules {
        json: bool,
    },
    /// `lint --explain RULE`.
    ExplainRule(crate::model::Rule),
    Schema(SchemaKind),
    /// A completion script for this shell.
    Completions(clap_complete::Shell),
    /// The man page.
    Man(Option<PathBuf>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    Manifest,
    Plan,
    Config,
}

#[derive(Debug)]
pub struct WatchConfig {
    pub paths: Vec<PathBuf>,
    /// Apply each plan with this client; `None` only plans.
    pub apply: Option<ClientSettings>,
    /// Per cycle.
    pub budget: Budget,
    /// Re-read X this often (with `apply`).
    pub refresh_every: Option<Duration>,
    pub debounce: Duration,
    pub prune: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Github,
}

#[derive(Debug)]
pub struct PlanConfig {
    pub paths: Vec<PathBuf>,
    pub format: Format,
    /// How `--format markdown` lays out the comment.
    pub comment: Comment,
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    pub targets: Targets,
    pub prune: bool,
    pub price_per_request: f64,
    /// Read X first (`--refresh`, `--refresh-only`), with this client.
    pub refresh: Option<Refresh>,
}

/// The markdown comment's budget and banner, and where its parts go.
#[derive(Debug, Default)]
pub struct Comment {
    pub layout: crate::plan::comment::Layout,
    /// `--split DIR`: parts written there, not to stdout.
    pub split: Option<PathBuf>,
}

/// Whose posts `import` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    /// The account of the credentials.
    Me,
    Id(String),
    /// `@handle`, without the `@`.
    Handle(String),
}

#[derive(Debug)]
pub struct ImportConfig {
    pub out: PathBuf,
    pub user: UserRef,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub adopt: bool,
    pub auto_approve: bool,
    pub price_per_request: f64,
    pub client: ClientSettings,
    pub budget: Budget,
}

/// How to read the live alt text back from X.
#[derive(Debug)]
pub struct Refresh {
    pub client: ClientSettings,
    pub budget: Budget,
    /// Report drift only; plan nothing.
    pub only: bool,
}

#[derive(Debug)]
pub enum ApplySource {
    Manifests(Vec<PathBuf>),
    SavedPlan(PathBuf),
}

#[derive(Debug)]
pub struct ApplyConfig {
    pub source: ApplySource,
    pub auto_approve: bool,
    pub detailed_exitcode: bool,
    pub targets: Targets,
    pub prune: bool,
    pub client: ClientSettings,
    pub budget: Budget,
    pub price_per_request: f64,
    /// Read X first and put back what drifted.
    pub refresh: bool,
    /// How the result is written.
    pub format: ApplyFormat,
}

/// `apply --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug)]
pub enum StateAction {
    List,
    Show(MediaId),
    Rm(Vec<MediaId>),
    Export(Option<PathBuf>),
    Import {
        file: PathBuf,
        force: bool,
    },
    Migrate {
        to: Location,
        /// `--keep-source`: do not mark the old state as moved.
        keep_source: bool,
    },
    Workspace(WorkspaceAction),
    History {
        filter: crate::state::Filter,
        json: bool,
    },
    PruneHistory {
        /// RFC 3339.
        before: Timestamp,
    },
    Unlock,
}

#[derive(Debug)]
pub enum WorkspaceAction {
    List,
    New(String),
    Delete { name: String, force: bool },
}

impl Config {
    /// The passwords of the states this command uses.
    pub fn state_secrets(&self) -> Vec<String> {
        let mut secrets = self.state.secrets();
        if let Task::State(StateAction::Migrate { to, .. }) = &self.task {
            secrets.extend(to.secrets());
        }
        secrets
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn from_cli(cli: Cli) -> anyhow::Result<Config> {
    let state = cli
        .state
        .clone()
        .or_else(|| env("XMETA_STATE").map(PathBuf::from))
        .or_else(|| env("XMETA_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    // XMETA_WORKSPACE may be set for a whole CI job; it means nothing to a
    // directory state. `--workspace` with a directory is refused.
    let workspace = cli.workspace.clone().or_else(|| {
        Location::names_workspaces(state.to_str().unwrap_or_default())
            .then(|| env("XMETA_WORKSPACE"))
            .flatten()
    });
    let sources = crate::provenance::Sources {
        revision: cli.source_revision.clone(),
        actor: cli.actor.clone(),
        off: cli.no_history,
        github: env("GITHUB_SHA").map(|sha| crate::provenance::GitHub {
            sha,
            actor: env("GITHUB_ACTOR"),
            run_url: match (
                env("GITHUB_SERVER_URL"),
                env("GITHUB_REPOSITORY"),
                env("GITHUB_RUN_ID"),
            ) {
                (Some(server), Some(repo), Some(run)) => {
                    Some(format!("{server}/{repo}/actions/runs/{run}"))
                }
                _ => None,
            },
        }),
        // Containers and cron often set neither: the uid's name then.
        user: env("USER")
            .or_else(|| env("LOGNAME"))
            .or_else(crate::os_user::name),
    };
    let create_workspace = cli.create_workspace;
    let state = Location::parse(state, workspace.as_deref(), env("PGPASSWORD"))?
        .creating_workspace(create_workspace);
    let (allow_empty, color, verbose) = (cli.allow_empty, cli.color, cli.verbose);
    let command_line = command_line(&cli.command);
    let task = match cli.command {
        Command::Validate(v) => Task::Validate {
            paths: v.paths.paths,
            github: v.format == cli::ValidateFormat::Github,
        },
        Command::Plan(a) => Task::Plan(PlanConfig {
            comment: comment(&a)?,
            paths: a.paths.paths,
            format: match a.format {
                cli::Format::Text => Format::Text,
                cli::Format::Json => Format::Json,
                cli::Format::Markdown => Format::Markdown,
                cli::Format::Github => Format::Github,
            },
            out: a.out,
            detailed_exitcode: a.detailed_exitcode,
            targets: targets(&a.targets.ids)?,
            prune: a.prune,
            price_per_request: a.price_per_request.unwrap_or(PRICE_PER_REQUEST_USD),
            // Credentials only when X is to be read.
            refresh: if a.refresh || a.refresh_only {
                Some(Refresh {
                    client: client_settings(&a.client)?,
                    budget: budget(&a.client),
                    only: a.refresh_only,
                })
            } else {
                None
            },
        }),
        Command::Apply(a) => Task::Apply(ApplyConfig {
            source: match a.plan {
                Some(file) => ApplySource::SavedPlan(file),
                None => ApplySource::Manifests(a.paths),
            },
            auto_approve: a.auto_approve,
            detailed_exitcode: a.detailed_exitcode,
            targets: targets(&a.targets)?,
            prune: a.prune,
            client: client_settings(&a.client)?,
            budget: budget(&a.client),
            price_per_request: a.price_per_request.unwrap_or(PRICE_PER_REQUEST_USD),
            refresh: a.refresh,
            format: match a.format {
                cli::ApplyFormat::Text => ApplyFormat::Text,
                cli::ApplyFormat::Json => ApplyFormat::Json,
                cli::ApplyFormat::Markdown => ApplyFormat::Markdown,
            },
        }),
        Command::Watch(a) => Task::Watch(WatchConfig {
            paths: a.paths.paths,
            apply: if a.apply {
                Some(client_settings(&a.client)?)
            } else {
                None
            },
            budget: budget(&a.client),
            refresh_every: a.refresh_every,
            debounce: Duration::from_millis(a.debounce_ms),
            prune: a.prune,
        }),
        Command::Adopt(a) => Task::Adopt {
            paths: a.paths.paths,
            targets: targets(&a.targets.ids)?,
        },
        Command::Lint(a) => {
            let format = match a.format {
                cli::LintFormat::Text => crate::lint::LintFormat::Text,
                cli::LintFormat::Json => crate::lint::LintFormat::Json,
                cli::LintFormat::Sarif => crate::lint::LintFormat::Sarif,
                cli::LintFormat::Github => crate::lint::LintFormat::Github,
            };
            if let Some(name) = &a.explain {
                let rule = crate::model::Rule::parse(name)
                    .map_err(|unknown| anyhow::anyhow!("{unknown}; {}", unknown.help()))?;
                if format != crate::lint::LintFormat::Text {
                    bail!("--explain prints text; drop --format");
                }
                Task::ExplainRule(rule)
            } else if a.list_rules {
                let json = match format {
                    crate::lint::LintFormat::Text => false,
                    crate::lint::LintFormat::Json => true,
                    _ => bail!("--list-rules prints text or json (--format json)"),
                };
                Task::ListRules { json }
            } else {
                Task::Lint {
                    paths: a.paths,
                    format,
                    config: a.config,
                    sarif: a.sarif,
                }
            }
        }
        Command::Refresh(a) => Task::Refresh {
            paths: a.paths.paths,
            client: client_settings(&a.client)?,
        },
        Command::Import(a) => {
            let since = a
                .since
                .as_deref()
                .map(|d| moment(d, "--since"))
                .transpose()?;
            let until = a
                .until
                .as_deref()
                .map(|d| moment(d, "--until"))
                .transpose()?;
            if let (Some(s), Some(u)) = (since, until) {
                if s >= u {
                    bail!("--since {s} is not before --until {u}: no post can match");
                }
            }
            Task::Import(ImportConfig {
                out: a.out,
                user: user_ref(&a.user)?,
                since,
                until,
                adopt: a.adopt,
                auto_approve: a.auto_approve,
                price_per_request: a.price_per_request.unwrap_or(PRICE_PER_REQUEST_USD),
                client: client_settings(&a.client)?,
                budget: budget(&a.client),
            })
        }
        Command::Schema { what } => Task::Schema(match what {
            cli::SchemaKind::Manifest => SchemaKind::Manifest,
            cli::SchemaKind::Plan => SchemaKind::Plan,
            cli::SchemaKind::Config => SchemaKind::Config,
        }),
        Command::Completions { shell } => Task::Completions(shell),
        Command::Man { dir } => Task::Man(dir),
        Command::State(s) => Task::State(match s {
            StateCommand::List => StateAction::List,
            StateCommand::Show { id } => StateAction::Show(media_id(&id)?),
            StateCommand::Rm { ids } => {
                StateAction::Rm(ids.iter().map(|i| media_id(i)).collect::<Result<_, _>>()?)
            }
            StateCommand::Export { out } => StateAction::Export(out),
            StateCommand::Import { file, force } => StateAction::Import { file, force },
            StateCommand::History {
                id,
                since,
                field,
                format,
                prune_before,
            } => match prune_before {
                Some(date) => {
                    let before = moment(&date, "--prune-before")?;
                    let now = Timestamp::now();
                    if before > now {
                        anyhow::bail!("--prune-before {before} is in the future: it would delete the whole history, including today's; give a past date");
                    }
                    StateAction::PruneHistory { before }
                }
                None => StateAction::History {
                    filter: crate::state::Filter {
                        media: id.as_deref().map(media_id).transpose()?,
                        since: since.as_deref().map(|d| moment(d, "--since")).transpose()?,
                        field: field.as_deref().map(field_kind).transpose()?,
                    },
                    json: format == cli::HistoryFormat::Json,
                },
            },
            StateCommand::Migrate {
                to,
                to_workspace,
                keep_source,
            } => {
                // A database target takes --to-workspace, else this state's
                // workspace, else XMETA_WORKSPACE.
                let to_url = Location::names_workspaces(to.to_str().unwrap_or_default());
                let to_workspace = match state.workspace() {
                    _ if to_workspace.is_some() || !to_url => to_workspace,
                    Some(workspace) => Some(workspace.to_string()),
                    None => env("XMETA_WORKSPACE"),
                };
                let to = Location::parse(to, to_workspace.as_deref(), env("PGPASSWORD"))?
                    .creating_workspace(create_workspace);
                StateAction::Migrate { to, keep_source }
            }
            StateCommand::Workspace(w) => StateAction::Workspace(match w {
                WorkspaceCommand::List => WorkspaceAction::List,
                WorkspaceCommand::New { name } => WorkspaceAction::New(name),
                WorkspaceCommand::Delete { name, force } => WorkspaceAction::Delete { name, force },
            }),
            StateCommand::Unlock { .. } => StateAction::Unlock,
        }),
    };
    let dumb = env("TERM").is_some_and(|t| t == "dumb");
    Ok(Config {
        state,
        sources,
        allow_empty,
        color: colour(color, std::io::stdout().is_terminal()),
        stderr_color: colour(color, std::io::stderr().is_terminal()),
        stdin_is_terminal: std::io::stdin().is_terminal(),
        stderr_is_terminal: std::io::stderr().is_terminal() && !dumb,
        verbose,
        rust_log: env("RUST_LOG"),
        command_line,
        task,
    })
}

/// Whether to colour a stream: `--color always|never` decide; with `auto`,
/// `NO_COLOR` turns it off, `CLICOLOR_FORCE` on, `TERM=dumb` off, and
/// otherwise only a terminal gets colour.
fn colour(choice: cli::ColorChoice, terminal: bool) -> bool {
    match choice {
        cli::ColorChoice::Always => true,
        cli::ColorChoice::Never => false,
        cli::ColorChoice::Auto => {
            if env("NO_COLOR").is_some() {
                false
            } else if env("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
                true
            } else if env("TERM").is_some_and(|t| t == "dumb") {
                false
            } else {
                terminal
            }
        }
    }
}

/// `xmeta` and its subcommand, for the lock's "who holds it"; flags and
/// paths are left out since they could hold anything.
fn command_line(command: &Command) -> String {
    let words = match command {
        Command::Validate(_) => "validate",
        Command::Plan(_) => "plan",
        Command::Apply(_) => "apply",
        Command::Watch(_) => "watch",
        Command::Adopt(_) => "adopt",
        Command::Lint(_) => "lint",
        Command::Refresh(_) => "refresh",
        Command::Import(_) => "import",
        Command::Schema { .. } => "schema",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
        Command::State(StateCommand::List) => "state list",
        Command::State(StateCommand::Show { .. }) => "state show",
        Command::State(StateCommand::Rm { .. }) => "state rm",
        Command::State(StateCommand::Export { .. }) => "state export",
        Command::State(StateCommand::Import { .. }) => "state import",
        Command::State(StateCommand::Migrate { .. }) => "state migrate",
        Command::State(StateCommand::History { .. }) => "state history",
        Command::State(StateCommand::Unlock { .. }) => "state unlock",
        Command::State(StateCommand::Workspace(WorkspaceCommand::List)) => "state workspace list",
        Command::State(StateCommand::Workspace(WorkspaceCommand::New { .. })) => {
            "state workspace new"
        }
        Command::State(StateCommand::Workspace(WorkspaceCommand::Delete { .. })) => {
            "state workspace delete"
        }
    };
    format!("xmeta {words}")
}

/// `2026-11-27` (midnight UTC) or an RFC 3339 time, as RFC 3339 UTC with
/// seconds: the form history entries use, so they compare as text.
fn moment(text: &str, flag: &str) -> anyhow::Result<Timestamp> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    let at = humantime::parse_rfc3339_weak(&full).map_err(|_| {
        anyhow::anyhow!(
            "{flag} `{}` is not a date: use 2026-11-27 or 2026-11-27T12:00:00Z",
            crate::untrusted::neutralise(text, 40)
        )
    })?;
    Ok(Timestamp::from(at))
}

/// `me`, a user ID, or `@handle` (X's handles: 1 to 15 letters, digits
/// or underscores).
fn user_ref(text: &str) -> anyhow::Result<UserRef> {
    if text == "me" {
        return Ok(UserRef::Me);
    }
    if (1..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(UserRef::Id(text.to_string()));
    }
    match text.strip_prefix('@') {
        Some(handle)
            if (1..=15).contains(&handle.len())
                && handle
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Ok(UserRef::Handle(handle.to_string()))
        }
        _ => bail!(
            "--user `{}` is not `me`, a user ID or an @handle (such as @nasa)",
            crate::untrusted::neutralise(text, 40)
        ),
    }
}

fn field_kind(name: &str) -> anyhow::Result<crate::model::FieldKind> {
    crate::model::FieldKind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = crate::model::FieldKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        anyhow::anyhow!(
            "`{}` is not a metadata field; use one of {}",
            crate::untrusted::neutralise(name, 40),
            names.join(", ")
        )
    })
}

fn media_id(id: &str) -> anyhow::Result<MediaId> {
    MediaId::parse(id)
        .filter(|_| !crate::manifest::schema::has_leading_zero(id))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "`{}` is not a media ID: use 1 to 19 digits without leading zeros, such as 1146654567674912769",
                crate::untrusted::neutralise(id, 40)
            )
        })
}

/// The comment flags, which only `--format markdown` takes.
fn comment(a: &cli::PlanArgs) -> anyhow::Result<Comment> {
    if a.format != cli::Format::Markdown {
        let given = [
            ("--max-bytes", a.max_bytes.is_some()),
            ("--banner", a.banner.is_some()),
            ("--split", a.split.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            bail!("`{flag}` lays out the pull-request comment: it needs `--format markdown`");
        }
    }
    let max_bytes = a
        .max_bytes
        .unwrap_or(crate::plan::comment::DEFAULT_MAX_BYTES);
    let banner = a
        .banner
        .as_deref()
        .map(|text| crate::untrusted::markdown(&crate::untrusted::neutralise(text, max_bytes)));
    if let Some(banner) = &banner {
        if banner.len() > max_bytes / 8 {
            bail!(
                "the banner takes {} bytes once escaped; at most {} fit with `--max-bytes {max_bytes}`: shorten it",
                banner.len(),
                max_bytes / 8
            );
        }
    }
    Ok(Comment {
        layout: crate::plan::comment::Layout {
            max_bytes,
            banner,
            split: a.split.is_some(),
        },
        split: a.split.clone(),
    })
}

fn targets(ids: &[String]) -> anyhow::Result<Targets> {
    Ok(Targets(
        ids.iter()
            .map(|i| media_id(i))
            .collect::<anyhow::Result<BTreeSet<_>>>()?,
    ))
}

fn budget(a: &cli::ClientArgs) -> Budget {
    Budget {
        max_requests: a
            .max_requests
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        max_duration: a.max_duration,
    }
}

fn client_settings(a: &cli::ClientArgs) -> anyhow::Result<ClientSettings> {
    let url = a
        .api_url
        .clone()
        .or_else(|| env("XMETA_API_URL"))
        .unwrap_or_else(|| DEFAULT_API_URL.to_string());
    Ok(ClientSettings {
        api_url: api_url(&url)?,
        auth: credentials(a.token_file.as_deref())?,
        max_retries: a.max_retries,
        timeout: Duration::from_secs(a.timeout_secs),
        concurrency: usize::from(a.concurrency),
    })
}

/// The endpoint: https anywhere, http only on a loopback host.
pub fn api_url(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| format!("`{text}` is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if !loopback {
                bail!("refusing plain http to `{}`: use https, or http only for a loopback host (localhost, 127.0.0.0/8, ::1)", url.host_str().unwrap_or(""));
            }
        }
        other => bail!("`{other}://` is not supported in the API URL; use https://"),
    }
    Ok(url)
}

fn credentials(token_file: Option<&Path>) -> anyhow::Result<Auth> {
    if let Some(file) = token_file {
        return Ok(Auth::Bearer(read_token_file(file)?));
    }
    if let Some(token) = env("XMETA_BEARER_TOKEN") {
        return Ok(Auth::Bearer(Secret::new(token.trim_end())));
    }
    let names = [
        "XMETA_CONSUMER_KEY",
        "XMETA_CONSUMER_SECRET",
        "XMETA_ACCESS_TOKEN",
        "XMETA_ACCESS_TOKEN_SECRET",
    ];
    let values: Vec<Option<String>> = names.iter().map(|n| env(n)).collect();
    match values.as_slice() {
        [Some(ck), Some(cs), Some(t), Some(ts)] => Ok(Auth::OAuth1(OAuth1 {
            consumer_key: Secret::new(ck.as_str()),
            consumer_secret: Secret::new(cs.as_str()),
            token: Secret::new(t.as_str()),
            token_secret: Secret::new(ts.as_str()),
        })),
        v if v.iter().any(Option::is_some) => {
            let missing: Vec<_> = names
                .iter()
                .zip(v)
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            bail!("incomplete OAuth 1.0a credentials: also set {}", missing.join(", "))
        }
        _ => bail!("no credentials: set XMETA_BEARER_TOKEN (or pass --token-file FILE) for an OAuth 2.0 user token, or XMETA_CONSUMER_KEY, XMETA_CONSUMER_SECRET, XMETA_ACCESS_TOKEN and XMETA_ACCESS_TOKEN_SECRET for OAuth 1.0a"),
    }
}

/// A token is a few hundred bytes; anything much larger is not a token.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Reads a token file that only this user controls: a regular file (a
/// FIFO would hang), owned by this user, mode 0600 or stricter.
fn read_token_file(file: &Path) -> anyhow::Result<Secret> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let opened = crate::intake::open(file, None, MAX_TOKEN_FILE_BYTES)
        .map_err(|e| anyhow!("cannot read the token file `{}`: {e}", file.display()))?;
    let meta = &opened.meta;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "the token file `{}` is owned by another user (uid {}); it must be yours (uid {me})",
            file.display(),
            meta.uid()
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the token file `{}` can be read by others (mode {mode:04o}); run `chmod 600 {}`",
            file.display(),
            file.display()
        );
    }
    let text = opened
        .read()
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(String::from_utf8(bytes)?))
        .map_err(|e| anyhow!("cannot read the token file `{}`: {e}", file.display()))?;
    let token = text.trim_end_matches(['\n', '\r']).to_string();
    if token.trim().is_empty() {
        bail!("the token file `{}` is empty", file.display());
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback() {
        assert!(api_url("http://127.0.0.1:8080").is_ok());
        assert!(api_url("http://localhost").is_ok());
        assert!(api_url("http://[::1]:9").is_ok());
        assert!(api_url("https://api.x.com").is_ok());
        let err = api_url("http://api.x.com").unwrap_err().to_string();
        assert!(err.contains("refusing plain http"), "{err}");
        assert!(api_url("http://10.0.0.1").is_err());
    }
}
