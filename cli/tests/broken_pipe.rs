//! The built `switchyard` binary: a closed standard output (`switchyard … | head`) ends
//! it quietly, and an unknown `--stage` is refused before anything runs.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

fn catalog() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/catalog")
        .display()
        .to_string()
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    // `connectors test` prints a line per fixture; the reader closes before the first.
    let mut child = switchyard()
        .args(["connectors", "test", &catalog()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "nothing said about the pipe: {stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn an_unknown_stage_is_refused() {
    let out = switchyard()
        .args(["dlq", "list", "--stage", "foo"])
        .env("SWITCHYARD_NATS__URL", "nats://127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        stderr.contains("'foo'") && stderr.contains("normalizer") && stderr.contains("dispatcher"),
        "{stderr}"
    );
}
