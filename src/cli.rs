//! Command-line flags, as clap parses them. Nothing below `commands/` sees
//! these types; `config.rs` turns them into a `Config`.
// These doc comments are the `--help` text users read, not rustdoc: names
// like NO_COLOR stay as the terminal shows them.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "xmeta",
    version,
    about = "GitOps for X media metadata: declare alt text, warnings and restrictions in YAML; plan, then apply only what changed."
)]
pub struct Cli {
    /// More log detail on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// State: a directory (sled), or a PostgreSQL URL or bucket shared by
    /// a team [env: XMETA_STATE, XMETA_STATE_DIR] [default: ./state]. Put a
    /// password in XMETA_STATE or PGPASSWORD, not on the command line; a
    /// bucket's credentials come from the cloud's environment (AWS_*, …).
    /// Example: --state /var/lib/xmeta, --state postgres://xmeta@db/xmeta?sslmode=verify-full, --state s3://team-state/xmeta
    #[arg(long, global = true, value_name = "DIR|URL")]
    pub state: Option<PathBuf>,

    /// Which state in a PostgreSQL database or bucket [env: XMETA_WORKSPACE]
    /// [default: default]. Example: --workspace production
    #[arg(long, global = true, value_name = "NAME")]
    pub workspace: Option<String>,

    /// Let a writer (apply, adopt, watch --apply, state import, state
    /// migrate's target) create the PostgreSQL or bucket workspace if it does not
    /// exist yet, e.g. in a pipeline's first run; a plan reads it as empty.
    /// Without it, an unknown workspace is an error.
    /// Example: --workspace staging --create-workspace
    #[arg(long, global = true)]
    pub create_workspace: bool,

    /// The source revision the history records for this run's changes
    /// [default: GITHUB_SHA, or `git rev-parse HEAD` of the manifests].
    /// Example: --source-revision 3f2a9c1
    #[arg(long, global = true, value_name = "REV")]
    pub source_revision: Option<String>,

    /// Who the history records as making this run's changes [default:
    /// GITHUB_ACTOR, or the OS user]. Example: --actor alice
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,

    /// Write no history entries for this run's changes (e.g. a first adopt
    /// of a whole legacy library). Example: --no-history
    #[arg(long, global = true)]
    pub no_history: bool,

    /// Accept PATHs that declare no media at all (otherwise an error, since
    /// a wrong path with --prune would forget everything). Example: --allow-empty
    #[arg(long, global = true)]
    pub allow_empty: bool,

    /// Colour: auto (a terminal, unless NO_COLOR is set or TERM=dumb;
    /// CLICOLOR_FORCE forces it), always or never. Example: --color never
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests; send nothing. Example: xmeta validate manifests/
    Validate(ValidateArgs),
    /// Show what apply would change. Example: xmeta plan manifests/ --detailed-exitcode
    Plan(PlanArgs),
    /// Send the changes to X. Example: xmeta apply manifests/ --auto-approve
    Apply(ApplyArgs),
    /// Keep a directory reconciled: plan (and with --apply, apply) at start
    /// and after every settled change. Example: xmeta watch manifests/ --apply
    Watch(WatchArgs),
    /// Record the manifests as applied without sending anything.
    /// Example: xmeta adopt manifests/ --target 1146654567674912769
    Adopt(AdoptArgs),
    /// Record the live alt text of media with a `key` or `type` as X holds
    /// it, sending nothing. Example: xmeta refresh manifests/
    Refresh(RefreshArgs),
    /// Write manifests for the media an account posted on X (read from its
    /// posts; one file per month; never overwrites a file), sending no
    /// metadata. Example: xmeta import --out manifests/imported --adopt
    Import(ImportArgs),
    /// Check alt text against accessibility rules; send nothing, read no
    /// state. Exit 1 when a finding is an error.
    /// Example: xmeta lint manifests/ --format sarif > lint.sarif
    Lint(LintArgs),
    /// Print the JSON Schema of a file format. Example: xmeta schema manifest > xmeta.schema.json
    Schema {
        #[arg(value_enum)]
        what: SchemaKind,
    },
    /// Print a shell completion script.
    /// Example: xmeta completions bash > ~/.local/share/bash-completion/completions/xmeta
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with --dir write xmeta.1 and one page
    /// per subcommand. Example: xmeta man --dir ~/.local/share/man/man1
    Man {
        /// Write xmeta.1 and xmeta-SUBCOMMAND.1 pages into this directory
        /// (it must exist) instead of printing xmeta.1. Example: --dir man/
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Inspect or edit the state. Example: xmeta state list
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub paths: Paths,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The directory to write `media-YYYY-MM.yaml` files to (created if
    /// missing; existing files are never overwritten).
    /// Example: --out manifests/imported
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Whose posts: `me` (the credentials' account), a user ID, or
    /// @handle. Example: --user @nasa
    #[arg(long, value_name = "ID|@HANDLE|me", default_value = "me")]
    pub user: String,

    /// Only posts at or after this date (UTC). Example: --since 2026-01-01
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only posts before this date (UTC). Example: --until 2026-07-01
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,

    /// Record the imported values as applied (as `xmeta adopt` does, with
    /// history entries saying `import`), so the first plan shows no
    /// changes. Example: --adopt
    #[arg(long)]
    pub adopt: bool,

    /// Do not ask before reading (needed without a terminal).
    /// Example: --auto-approve
    #[arg(long)]
    pub auto_approve: bool,

    /// Price of one request in US dollars, for the cost line.
    /// Example: --price-per-request 0.01
    #[arg(long, value_name = "USD", value_parser = price)]
    pub price_per_request: Option<f64>,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A manifest file (each YAML document in it).
    Manifest,
    /// A JSON plan (`plan --format json`, `plan --out`).
    Plan,
    /// `xmeta.yaml`, the lint configuration.
    Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    Github,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Manifest files or directories (searched recursively for *.yaml, *.yml).
    #[arg(
        value_name = "PATH",
        required_unless_present_any = ["list_rules", "explain"]
    )]
    pub paths: Vec<PathBuf>,

    /// List the rules: ID, default level and summary (text or --format json).
    #[arg(long, conflicts_with_all = ["paths", "explain", "config"])]
    pub list_rules: bool,

    /// Explain a rule: what it catches, why, examples and options.
    /// Example: --explain alt-text/too-short
    #[arg(long, value_name = "RULE", conflicts_with_all = ["paths", "config"])]
    pub explain: Option<String>,

    /// Output format: text, json, sarif (GitHub code scanning) or github
    /// (workflow annotations). Example: --format github
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,

    /// The lint configuration [default: xmeta.yaml in the first PATH].
    /// Example: --config ci/xmeta.yaml
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Also write the findings as SARIF to FILE, from the same run (for
    /// code scanning beside --format github). Example: --sarif xmeta.sarif
    #[arg(long, value_name = "FILE", conflicts_with_all = ["list_rules", "explain"])]
    pub sarif: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Paths {
    /// Manifest files or directories (searched recursively for *.yaml, *.yml).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
    // GitHub Actions annotations: problems inline in the PR's diff.
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    // GitHub Actions annotations: problems inline in the PR's diff.
    Github,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub paths: Paths,

    /// Output format; problems also go to stderr as text. Example: --format github
    #[arg(long, value_enum, default_value = "text")]
    pub format: ValidateFormat,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub paths: Paths,

    /// Output format. Example: --format markdown (for a pull-request
    /// comment; also written when the manifests do not validate), --format
    /// github (annotations in the PR's diff).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Save the plan for `apply --plan FILE`. Example: --out plan.json
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// With --format markdown: the most bytes of one comment, every byte
    /// counted (banner, heading, footer) [default: 65536, GitHub's limit].
    /// Example: --max-bytes 64000
    #[arg(long, value_name = "N", value_parser = max_bytes)]
    pub max_bytes: Option<usize>,

    /// With --format markdown: a line shown first in every part, as text
    /// (markdown in it is escaped). Example: --banner "Planned without the shared state"
    #[arg(long, value_name = "TEXT")]
    pub banner: Option<String>,

    /// With --format markdown: write the comment in parts, `DIR/plan-1.md`,
    /// `plan-2.md`, …, each within --max-bytes, and remove older parts
    /// there; nothing goes to stdout. Example: --split comment/
    #[arg(long, value_name = "DIR")]
    pub split: Option<PathBuf>,

    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    /// Example: xmeta plan media/ --detailed-exitcode || [ $? -eq 2 ]
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Price of one request in US dollars, for the plan's cost line
    /// [default: 0.005, X's price]. Example: --price-per-request 0.01
    #[arg(long, value_name = "USD", value_parser = price)]
    pub price_per_request: Option<f64>,

    /// Read the live alt text of media with a `key` or `type` from X first,
    /// show drift and plan the updates that put it back (needs
    /// credentials; not with --out: apply with --refresh instead).
    /// Example: --refresh
    #[arg(long, conflicts_with = "out")]
    pub refresh: bool,

    /// Like --refresh, but only report drift; plan nothing. Example: --refresh-only
    #[arg(long, conflicts_with_all = ["refresh", "out"])]
    pub refresh_only: bool,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub targets: Targets,

    /// Remove media that no manifest declares from the state (nothing is sent).
    /// Example: --prune
    #[arg(long)]
    pub prune: bool,
}

fn max_bytes(text: &str) -> Result<usize, String> {
    let least = crate::plan::comment::MIN_MAX_BYTES;
    match text.parse::<usize>() {
        Ok(n) if n >= least => Ok(n),
        _ => Err(format!(
            "`{text}` is not a number of bytes of at least {least}, such as 65536"
        )),
    }
}

fn price(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is not a price per request in US dollars from 0 to 1000, such as 0.005"
        )),
    }
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the budget must be longer than zero".into()),
        Err(e) => Err(format!("{e}; write a duration such as 50m or 5h30m")),
    }
}

#[derive(Debug, Args)]
pub struct Targets {
    /// Only this media ID; repeat for more. Example: --target 1146654567674912769
    #[arg(long = "target", value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files or directories (not with --plan).
    #[arg(
        value_name = "PATH",
        required_unless_present = "plan",
        conflicts_with = "plan"
    )]
    pub paths: Vec<PathBuf>,

    /// Apply exactly this saved plan (from `plan --out`), without a prompt.
    /// Example: xmeta apply --plan plan.json
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Do not ask for confirmation (needed without a terminal).
    /// Example: xmeta apply media/ --auto-approve
    #[arg(long)]
    pub auto_approve: bool,

    /// Exit 2 when the budget stopped the run with changes remaining
    /// (0 when all is applied, 1 on error). Example: --detailed-exitcode
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Price of one request in US dollars, for the plan's cost line.
    /// Example: --price-per-request 0.01
    #[arg(long, value_name = "USD", value_parser = price)]
    pub price_per_request: Option<f64>,

    /// Read the live alt text from X first and put back what drifted
    /// (not with --plan). Example: --refresh
    #[arg(long, conflicts_with = "plan")]
    pub refresh: bool,

    /// The result's format: text, json, or markdown (a comment for the
    /// merged pull request); the plan then goes to stderr. Example: --format markdown
    #[arg(long, value_enum, default_value = "text")]
    pub format: ApplyFormat,

    /// Only this media ID; repeat for more (not with --plan, which applies
    /// exactly what was planned). Example: --target 1146654567674912769
    #[arg(long = "target", value_name = "ID", conflicts_with = "plan")]
    pub targets: Vec<String>,

    /// Remove media that no manifest declares from the state (nothing is
    /// sent; not with --plan, which says whether it prunes). Example: --prune
    #[arg(long, conflicts_with = "plan")]
    pub prune: bool,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Requests in flight at most. Example: --concurrency 8
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// X API base URL [env: XMETA_API_URL] [default: https://api.x.com].
    /// http:// only for loopback hosts. Example: --api-url http://127.0.0.1:8787
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Read the OAuth 2.0 user token from this file (mode 0600 or stricter)
    /// instead of XMETA_BEARER_TOKEN. Example: --token-file ~/.config/xmeta/token
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Retries of a request after a 5xx, timeout or connection error.
    /// Example: --max-retries 2
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,

    /// Give up on one request attempt after this many seconds.
    /// Example: --timeout-secs 10
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: u64,

    /// Start at most this many requests (per cycle with watch); the rest
    /// plan again next time. Example: --max-requests 10000
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests: Option<u64>,

    /// Start no request after this long (per cycle with watch), and never
    /// wait for a rate-limit window past it. Example: --max-duration 5h30m
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub max_duration: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub paths: Paths,

    /// Apply each plan (implies --auto-approve); needs credentials.
    /// Example: xmeta watch media/ --apply
    #[arg(long)]
    pub apply: bool,

    /// Wait this long after the last change before re-planning.
    /// Example: --debounce-ms 500
    #[arg(long, default_value_t = 300)]
    pub debounce_ms: u64,

    /// Also re-read the live alt text from X this often and put back what
    /// drifted (with --apply). Example: --refresh-every 1h
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "apply")]
    pub refresh_every: Option<std::time::Duration>,

    /// Remove media that no manifest declares from the state (nothing is sent).
    /// Example: --prune
    #[arg(long)]
    pub prune: bool,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    #[command(flatten)]
    pub paths: Paths,
    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Every recorded media with when it was applied. Example: xmeta state list
    List,
    /// The last-applied metadata of one media, as YAML.
    /// Example: xmeta state show 1146654567674912769
    Show { id: String },
    /// Forget media (nothing is sent). Example: xmeta state rm 1146654567674912769
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Write the whole state as JSON (stdout, or --out FILE).
    /// Example: xmeta state export --out state.json
    Export {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace the state with an export. Example: xmeta state import state.json
    Import {
        file: PathBuf,
        /// Replace the records of a state that holds records or history
        /// (its history is kept; one `import` entry per changed media is
        /// added). Example: --force
        #[arg(long)]
        force: bool,
    },
    /// Who changed what, when, and from which commit: newest first.
    /// Example: xmeta state history 1146654567674912769;
    /// xmeta state history --since 2026-01-01 --field alt_text
    History {
        /// One media's history (all media without it).
        id: Option<String>,
        /// Only entries at or after this date or time (UTC).
        /// Example: --since 2026-11-01, --since 2026-11-01T12:00:00Z
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Only entries that changed this field. Example: --field alt_text
        #[arg(long, value_name = "FIELD", value_parser = FieldName)]
        field: Option<String>,
        /// Output format. Example: --format json
        #[arg(long, value_enum, default_value = "text")]
        format: HistoryFormat,
        /// Delete the entries made before this date (the records stay);
        /// takes the state lock. Example: --prune-before 2025-01-01
        #[arg(
            long,
            value_name = "DATE",
            conflicts_with_all = ["id", "since", "field", "format"]
        )]
        prune_before: Option<String>,
    },
    /// Copy the state (lineage, serial, every record) to another backend
    /// or place; the target must hold no records. The old state is then
    /// marked as moved: it keeps its data, read-only, and every command on
    /// it names the new place (`state export` still reads it).
    /// Example: xmeta state migrate --to postgres://xmeta@db/xmeta
    Migrate {
        /// The new state: a directory or a PostgreSQL URL.
        #[arg(long, value_name = "DIR|URL")]
        to: PathBuf,
        /// The workspace at a PostgreSQL target [default: this state's].
        /// Example: --to-workspace staging
        #[arg(long, value_name = "NAME")]
        to_workspace: Option<String>,
        /// Leave the old state live instead of marking it as moved (two
        /// live copies: a run on the old one plans, and would send again,
        /// what the new one already applied). Example: --keep-source
        #[arg(long)]
        keep_source: bool,
    },
    /// The workspaces of a PostgreSQL state: list, new NAME, delete NAME.
    /// `default` always exists; a state directory has only `default`.
    /// Example: xmeta state workspace new staging
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Remove a lock file left by a holder on another host (one this host's
    /// kernel sees alive is refused). Example: xmeta state unlock --force
    Unlock {
        /// Required: confirms that no writer is running. Example: --force
        #[arg(long, required = true)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Every workspace, one per line. Example: xmeta state workspace list
    List,
    /// Create a workspace, for writers to use with --workspace NAME.
    /// Example: xmeta state workspace new staging
    New { name: String },
    /// Delete a workspace with its records and history (never `default`,
    /// never one whose lock is held). Example: xmeta state workspace delete staging
    Delete {
        name: String,
        /// Delete it even though it holds media. Example: --force
        #[arg(long)]
        force: bool,
    },
}

/// `--field`: any string parses (`config.rs` refuses an unknown one with
/// the list of fields, exit 1); the 13 field names are what completions
/// and `--help` offer.
#[derive(Clone)]
struct FieldName;

impl clap::builder::TypedValueParser for FieldName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::model::FieldKind::ALL
                .iter()
                .map(|k| clap::builder::PossibleValue::new(k.name())),
        ))
    }
}

/// What a variable configures, to list it on the pages it applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    State,
    Api,
    Output,
}

/// The environment xmeta reads: `--help`'s list and the man pages'
/// ENVIRONMENT sections.
pub const ENVIRONMENT: &[(&str, &str, EnvKind)] = &[
    (
        "XMETA_STATE",
        "state: a directory, postgres://USER@HOST/DB or s3://BUCKET/PREFIX (also gs://, az://; default ./state)",
        EnvKind::State,
    ),
    (
        "XMETA_STATE_DIR",
        "state directory (when XMETA_STATE is not set)",
        EnvKind::State,
    ),
    (
        "XMETA_WORKSPACE",
        "workspace in a PostgreSQL or bucket state (default `default`)",
        EnvKind::State,
    ),
    (
        "XMETA_STATE_LEASE",
        "a bucket state's lock lease, renewed while a writer runs (default 60s)",
        EnvKind::State,
    ),
    (
        "AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, …",
        "an S3 state's endpoint, region and credentials (the standard chain, web identity included)",
        EnvKind::State,
    ),
    (
        "PGPASSWORD",
        "PostgreSQL password, when the URL has none",
        EnvKind::State,
    ),
    (
        "XMETA_API_URL",
        "X API base URL (default https://api.x.com)",
        EnvKind::Api,
    ),
    (
        "XMETA_BEARER_TOKEN",
        "OAuth 2.0 user access token (scope media.write)",
        EnvKind::Api,
    ),
    (
        "XMETA_CONSUMER_KEY, XMETA_CONSUMER_SECRET, XMETA_ACCESS_TOKEN, XMETA_ACCESS_TOKEN_SECRET",
        "OAuth 1.0a user context",
        EnvKind::Api,
    ),
    ("NO_COLOR", "never colour output", EnvKind::Output),
    (
        "RUST_LOG",
        "log filter, e.g. RUST_LOG=xmeta=debug",
        EnvKind::Output,
    ),
];

/// The top-level examples of `--help` and `xmeta(1)`.
pub const EXAMPLES: &[&str] = &[
    "xmeta validate manifests/",
    "xmeta plan manifests/",
    "XMETA_BEARER_TOKEN=... xmeta apply manifests/ --auto-approve",
];

/// The flags every subcommand inherits (`global = true`, so they may be
/// given before or after it).
const GLOBAL: &[&str] = &[
    "verbose",
    "state",
    "workspace",
    "create_workspace",
    "source_revision",
    "actor",
    "no_history",
    "allow_empty",
    "color",
];

const STATE_FLAGS: &[&str] = &[
    "verbose",
    "color",
    "state",
    "workspace",
    "create_workspace",
    "source_revision",
    "actor",
    "no_history",
];

/// The global flags a subcommand (and its own subcommands) takes, where
/// not all: the others are hidden there, so `--help`, completions and man
/// pages offer a flag only where it does something.
const APPLIES: &[(&str, &[&str])] = &[
    ("validate", &["verbose", "color", "allow_empty"]),
    ("lint", &["verbose", "color", "allow_empty"]),
    ("schema", &[]),
    ("completions", &[]),
    ("man", &[]),
    ("state", STATE_FLAGS),
];

/// The command line's definition, as parsing, `--help`, completions and
/// man pages use it: the derive's, with the environment and examples
/// added and each global flag shown only where it applies.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut help = String::from("Examples:\n");
    for example in EXAMPLES {
        help += &format!("  {example}\n");
    }
    help += "\nEnvironment:";
    for (name, what, _) in ENVIRONMENT {
        if name.len() <= 18 {
            help += &format!("\n  {name:<18}  {what}");
        } else {
            help += &format!("\n  {name}\n{:22}{what}", "");
        }
    }
    let mut cmd = Cli::command().after_help(help);
    // A subcommand that holds its own (hidden) copy of a global flag gets
    // no visible one from clap's propagation, which skips an argument a
    // subcommand already has; it still parses, as before.
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| GLOBAL.contains(&a.get_id().as_str()))
        .cloned()
        .collect();
    for (name, keep) in APPLIES {
        let hidden = globals
            .iter()
            .filter(|a| !keep.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true));
        cmd = cmd.mut_subcommand(name, |sub| sub.args(hidden));
    }
    cmd
}

/// The command line as completion scripts see it: clap_complete offers
/// hidden flags too, so here a global flag is no longer global at the top
/// and each subcommand (with its own subcommands) gets only the global
/// flags that apply to it.
pub fn completion_command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| GLOBAL.contains(&a.get_id().as_str()))
        .cloned()
        .collect();
    cmd = cmd.mut_args(|a| {
        if GLOBAL.contains(&a.get_id().as_str()) {
            a.global(false)
        } else {
            a
        }
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let keep = APPLIES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(GLOBAL, |(_, flags)| flags);
        let own = globals
            .iter()
            .filter(|a| keep.contains(&a.get_id().as_str()))
            .cloned();
        cmd = cmd.mut_subcommand(&name, |sub| sub.args(own));
    }
    cmd
}
