//! Editor support: yaml-language-server, driven over stdio with
//! `xmeta schema manifest`, marks the lines `xmeta validate` reports on the
//! README's bad-manifest example and shows the field descriptions on hover;
//! the committed schema and the catalog entry match what the binary prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const README: &str = include_str!("../../README.md");

/// The yaml block after the README's `bad-manifest` marker, and the
/// output block after it.
fn readme_example() -> (String, String) {
    let rest = &README[README
        .find("<!-- bad-manifest")
        .expect("the README's bad-manifest marker")..];
    let mut blocks = rest.split("```").skip(1).step_by(2);
    let yaml = blocks.next().unwrap().strip_prefix("yaml\n").unwrap();
    let output = blocks.next().unwrap().strip_prefix('\n').unwrap();
    (yaml.to_string(), output.to_string())
}

/// yaml-language-server from the CI tools (`.ci/run` installs it, pinned),
/// or `XMETA_YAML_LANGUAGE_SERVER`. Missing, the test fails: never skips.
fn language_server() -> PathBuf {
    if let Some(path) = std::env::var_os("XMETA_YAML_LANGUAGE_SERVER") {
        return path.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"),
        PathBuf::from,
    );
    let path = cache.join("xmeta-ci/npm/node_modules/.bin/yaml-language-server");
    assert!(
        path.exists(),
        "yaml-language-server is missing at {}: run .ci/run (it installs it with npm), or set XMETA_YAML_LANGUAGE_SERVER",
        path.display()
    );
    path
}

/// A language server over stdio: requests out, messages in through a
/// reader thread, each awaited with a limit (a stuck server fails the test).
struct Lsp {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::Receiver<Value>,
}

impl Lsp {
    fn start() -> Lsp {
        let mut child = Command::new(language_server())
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start yaml-language-server");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("Content-Length: ") {
                    length = n.parse::<usize>().ok();
                }
            }
            let mut body = vec![0; length.expect("a Content-Length header")];
            if stdout.read_exact(&mut body).is_err() {
                return;
            }
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        });
        Lsp {
            child,
            stdin,
            messages,
        }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message; answers the server's own requests on the way
    /// (settings: validation and hover on, the schema store off: no network).
    fn next(&mut self) -> Value {
        loop {
            let message = self
                .messages
                .recv_timeout(Duration::from_mins(2))
                .expect("yaml-language-server answered within 2 minutes");
            let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) else {
                return message;
            };
            let result = match method {
                "workspace/configuration" => Value::Array(
                    message["params"]["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|item| match item["section"].as_str() {
                            Some("yaml") => settings(),
                            _ => Value::Null,
                        })
                        .collect(),
                ),
                _ => Value::Null,
            };
            let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
            self.send(&reply);
        }
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings() -> Value {
    json!({"validate": true, "hover": true, "completion": true, "schemaStore": {"enable": false}})
}

/// The 1-based lines of a diagnostics list.
fn lines(diagnostics: &[Value]) -> Vec<u64> {
    let mut lines: Vec<u64> = diagnostics
        .iter()
        .map(|d| d["range"]["start"]["line"].as_u64().unwrap() + 1)
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines
}

#[test]
fn the_editor_marks_the_lines_validate_reports_and_hovers_descriptions() {
    let env = TestEnv::new();
    let (manifest, readme_output) = readme_example();
    let schema = env.exits_with(&["schema", "manifest"], 0).stdout;
    env.write("xmeta.schema.json", &schema);
    let file = env.write("media/bad.yaml", &manifest);

    // What validate says, and that the README shows exactly that.
    let validate = env.exits_with(&["validate", "media/bad.yaml"], 1);
    assert_eq!(
        validate.stderr, readme_output,
        "the README's example output"
    );
    let mut wanted: Vec<u64> = validate
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("media/bad.yaml:"))
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    wanted.dedup();
    assert_eq!(wanted.len(), 6, "{}", validate.stderr);

    let uri = format!("file://{}", file.display());
    let root = format!("file://{}", env.path("").display());
    let mut lsp = Lsp::start();
    lsp.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": std::process::id(),
        "rootUri": root,
        "capabilities": {
            "workspace": {"configuration": true},
            "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}, "publishDiagnostics": {}},
        },
    }}));
    while lsp.next().get("id") != Some(&json!(1)) {}
    lsp.send(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    lsp.send(
        &json!({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
        "params": {"settings": {"yaml": settings()}}}),
    );
    lsp.send(
        &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": manifest},
        }}),
    );
    let (line, column) = manifest
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("alt_text").map(|c| (i, c + 2)))
        .unwrap();
    lsp.send(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": column},
        }}),
    );

    // The diagnostics of the schema's validation (the server publishes
    // them once the schema is loaded), and the hover's answer.
    let (mut diagnostics, mut hover) = (None, None);
    while diagnostics.is_none() || hover.is_none() {
        let message = lsp.next();
        if message["method"] == "textDocument/publishDiagnostics"
            && message["params"]["uri"] == uri.as_str()
            && message["params"]["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        {
            diagnostics = Some(message["params"]["diagnostics"].as_array().unwrap().clone());
        } else if message["id"] == 2 {
            hover = Some(message["result"]["contents"]["value"].to_string());
        }
    }
    let diagnostics = diagnostics.unwrap();
    let shown = Value::Array(diagnostics.clone());
    assert_eq!(
        lines(&diagnostics),
        wanted,
        "yaml-language-server's diagnostics: {shown:#}"
    );

    // The hover shows alt_text's description (markdown-escaped by the server).
    let schema: Value = serde_json::from_str(&schema).unwrap();
    let description = schema["properties"]["media"]["items"]["properties"]["metadata"]
        ["properties"]["alt_text"]["description"]
        .as_str()
        .unwrap();
    let hover = hover.unwrap().replace('\\', "");
    assert_has(&hover, description);
}

#[test]
fn the_committed_schema_and_catalog_entry_match_the_binary() {
    let env = TestEnv::new();
    let schema = env.exits_with(&["schema", "manifest"], 0).stdout;
    assert!(
        include_str!("../../docs/xmeta.schema.json") == schema,
        "docs/xmeta.schema.json is stale: run `xmeta schema manifest > docs/xmeta.schema.json`"
    );
    let catalog: Value =
        serde_json::from_str(include_str!("../../docs/schemastore-catalog.json")).unwrap();
    assert_eq!(
        catalog["url"],
        "https://raw.githubusercontent.com/xmeta-dev/xmeta/main/docs/xmeta.schema.json"
    );
    assert!(!catalog["fileMatch"].as_array().unwrap().is_empty());
}
