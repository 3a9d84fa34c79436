//! Builds an example once per test binary and finds its executable
//! (examples get no `CARGO_BIN_EXE_*` variable).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// The proxy variables curl reads (and this crate, by default).
pub const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "HTTP_PROXY",
];

/// `command` without the proxy variables, so a developer's environment
/// cannot send a test's example through a proxy.
pub fn without_proxy_env(command: &mut Command) -> &mut Command {
    for var in PROXY_VARIABLES {
        command.env_remove(var);
    }
    command
}

/// The `wsclient` under test: the `cli` feature's binary when cargo built
/// it for this test binary (`--features cli`, as `.ci/run` tests the
/// installable artifact), else the example built from the same source, so
/// plain `cargo test` covers it too.
pub fn wsclient() -> PathBuf {
    // Cargo names the binary in CARGO_BIN_EXE_wsclient even when its
    // required feature is off and it was not built (a stale one may be
    // there): only trust it with the feature.
    match option_env!("CARGO_BIN_EXE_wsclient") {
        Some(path) if cfg!(feature = "cli") => PathBuf::from(path),
        _ => path("wsclient"),
    }
}

/// The path of `examples/<name>.rs`, built (debug) on first use.
pub fn path(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    built
        .entry(name.to_owned())
        .or_insert_with(|| build(name))
        .clone()
}

fn build(name: &str) -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cargo = Command::new(env!("CARGO"));
    // Cargo gives this test the variables it gives a crate being built
    // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR, …). Build scripts
    // such as ring's rerun when those change, so passing them on would
    // rebuild ring and its dependants on every run; drop them.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        if is_crate_build_variable(&var) {
            cargo.env_remove(&*var);
        }
    }
    cargo.args(["build", "--example", name, "--message-format=json"]);
    // The example is built with the features this test was built with.
    if cfg!(not(feature = "tls")) {
        cargo.arg("--no-default-features");
    }
    let output = cargo
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .current_dir(manifest_dir)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run cargo");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Where it should be: $CARGO_TARGET_DIR or <manifest>/target.
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.join("target"),
    };
    let expected = target_dir
        .join("debug")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    // Where cargo says it is (covers target dirs set in a config file).
    let reported = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from));
    let bin = reported.unwrap_or(expected);
    assert!(bin.is_file(), "no {name} binary at {}", bin.display());
    bin
}

/// The variables cargo sets for the crate it compiles or runs, as opposed
/// to configuration (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, …).
fn is_crate_build_variable(name: &str) -> bool {
    const PREFIXES: [&str; 3] = ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_CFG_"];
    const NAMES: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}
