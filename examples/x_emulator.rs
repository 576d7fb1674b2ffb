//! Runs the test suite's loopback X API emulator by hand, to try `apply`
//! without touching X:
//!
//!     cargo run --example x_emulator -- --port 8787 --token demo
//!     XMETA_API_URL=http://127.0.0.1:8787 XMETA_BEARER_TOKEN=demo \
//!       cargo run -- apply examples/manifests --auto-approve
//!
//! With `--seed-posts N` the account behind the token has N posts with
//! media, to try `xmeta import` (see the README's "Start from an existing
//! account").
// The lints src/lib.rs allows, for the reasons it gives there.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
#![allow(clippy::too_many_lines, clippy::format_push_string)]
#![allow(clippy::needless_pass_by_value)]

#[path = "../tests/integration/support/emulator.rs"]
mod emulator;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// A loopback X API emulator for `POST /2/media/metadata`: checks the
/// bearer token and the request schema, stores what it is sent, and logs
/// every request. Faults on demand, for trying retries and pacing. Serves
/// an account's posts (`GET /2/users/me`, `GET /2/users/{id}/tweets`)
/// when seeded.
#[derive(Parser)]
#[command(name = "x_emulator")]
struct Args {
    /// Port on 127.0.0.1. Example: --port 8787
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// The bearer token it accepts. Example: --token demo
    #[arg(long, default_value = "demo")]
    token: String,
    /// Delay before each answer, in milliseconds. Example: --latency-ms 50
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,
    /// A fixed-window rate limit: N requests per SECS seconds. Example: --rate-limit 40/2
    #[arg(long, value_name = "N/SECS", value_parser = rate_limit)]
    rate_limit: Option<(u64, Duration)>,
    /// Share of requests answered 503, from 0 to 1. Example: --fail-rate 0.1
    #[arg(long, value_name = "P", value_parser = probability)]
    fail_rate: Option<f64>,
    /// Give the account this many posts (newest 2026-11-30, 6 h apart),
    /// some sharing media, some without alt text, every 10th a retweet of
    /// another account's media. Example: --seed-posts 1000
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed_posts: usize,
    /// Distinct media in the seeded posts [default: 1.4 per post].
    /// Example: --seed-media 1400
    #[arg(long, value_name = "M")]
    seed_media: Option<usize>,
}

fn rate_limit(text: &str) -> Result<(u64, Duration), String> {
    let (n, secs) = text
        .split_once('/')
        .ok_or("use N/SECS, such as 40/2 (40 requests per 2 seconds)")?;
    let n: u64 = n.parse().map_err(|_| format!("`{n}` is not a count"))?;
    let secs: u64 = secs
        .parse()
        .map_err(|_| format!("`{secs}` is not a number of seconds"))?;
    if n == 0 || secs == 0 {
        return Err("both N and SECS must be at least 1".into());
    }
    Ok((n, Duration::from_secs(secs)))
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability between 0 and 1")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut faults = emulator::Faults::default();
    if let Some(ms) = args.latency_ms {
        faults.latency = Duration::from_millis(ms);
    }
    faults.rate_limit = args.rate_limit;
    if let Some(p) = args.fail_rate {
        faults.rate_503 = p;
    }
    let emu = match emulator::Emulator::try_start_with(&args.token, None, faults, args.port) {
        Ok(emu) => emu,
        Err(e) => {
            eprintln!(
                "error: cannot listen on 127.0.0.1:{} ({e}); pick another --port",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    if args.seed_posts > 0 {
        let media = args.seed_media.unwrap_or(args.seed_posts * 14 / 10);
        // Every 10th post is a retweet and every 10th has no media; the
        // rest hold up to 3 of the account's own (4 with a shared one).
        if media > args.seed_posts * 2 {
            eprintln!(
                "error: --seed-media {media} does not fit in {} posts; give at most {}",
                args.seed_posts,
                args.seed_posts * 2
            );
            return ExitCode::FAILURE;
        }
        let census = emu.seed_posts(args.seed_posts, media);
        eprintln!(
            "account @{} (id {}): {} reachable posts, {} own media ({} in several posts, {} without alt text), {} media of other accounts",
            emulator::posts::USERNAME,
            emulator::posts::USER_ID,
            census.posts,
            census.own_media,
            census.shared,
            census.without_alt_text,
            census.others_media
        );
    }
    eprintln!(
        "X API emulator on {} (token `{}`); Ctrl-C to stop",
        emu.url(),
        args.token
    );
    let mut seen = 0;
    loop {
        // Polls its own request log to print it; nothing waits on this.
        std::thread::sleep(Duration::from_millis(250));
        let requests = emu.requests();
        for r in &requests[seen..] {
            if r.method == "POST" {
                eprintln!("POST /2/media/metadata -> {} {}", r.status, r.body);
            } else {
                eprintln!("{} {}?{} -> {}", r.method, r.path, r.query, r.status);
            }
        }
        seen = requests.len();
    }
}
