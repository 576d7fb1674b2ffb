//! Runs the test suite's loopback X API emulator by hand, to try `apply`
//! without touching X:
//!
//!     cargo run --example x_emulator -- --port 8787 --token demo
//!     XMETA_API_URL=http://127.0.0.1:8787 XMETA_BEARER_TOKEN=demo \
//!       cargo run -- apply examples/manifests --auto-approve
//!
//! Flags: --port N (default 8787), --token T (default `demo`),
//! --latency-ms N, --rate-limit N/SECS (e.g. 40/2), --fail-rate P (503s).

#[path = "../tests/integration/support/emulator.rs"]
mod emulator;

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let port: u16 = flag("--port").and_then(|p| p.parse().ok()).unwrap_or(8787);
    let token = flag("--token").unwrap_or_else(|| "demo".into());
    let mut faults = emulator::Faults::default();
    if let Some(ms) = flag("--latency-ms").and_then(|v| v.parse().ok()) {
        faults.latency = Duration::from_millis(ms);
    }
    if let Some((n, secs)) = flag("--rate-limit")
        .as_deref()
        .and_then(|v| v.split_once('/'))
    {
        if let (Ok(n), Ok(secs)) = (n.parse(), secs.parse()) {
            faults.rate_limit = Some((n, Duration::from_secs(secs)));
        }
    }
    if let Some(p) = flag("--fail-rate").and_then(|v| v.parse().ok()) {
        faults.rate_503 = p;
    }
    let emu = emulator::Emulator::start_with(&token, None, faults, port);
    eprintln!(
        "X API emulator on {} (token `{token}`); Ctrl-C to stop",
        emu.url()
    );
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let requests = emu.requests();
        for r in &requests[seen..] {
            eprintln!("POST /2/media/metadata -> {} {}", r.status, r.body);
        }
        seen = requests.len();
    }
}
