//! Real proxies for the tests: `tinyproxy` (HTTP CONNECT) and `microsocks`
//! (SOCKS5), Debian packages, started on a free 127.0.0.1 port with a
//! config the test writes, and killed (and reaped) when dropped.
//!
//! Missing binary: under `CI` the test fails; elsewhere it is skipped with
//! a one-line notice naming the test and the install hint, written where
//! plain `cargo test` shows it (see [`skip`]; `.ci/run` installs both).
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a proxy may take to accept connections once started.
const READY_WAIT: Duration = Duration::from_secs(5);

/// A running proxy process; dropping it kills and reaps it and removes
/// its files.
pub struct RealProxy {
    child: Child,
    /// Where it listens (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    log: PathBuf,
}

impl Drop for RealProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RealProxy {
    /// `scheme://[user:password@]127.0.0.1:port`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => {
                format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port)
            }
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// What the proxy wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The binary's path, or `None` (after [`skip`]'s notice) when it is not
/// installed and `CI` is unset. Panics under `CI`.
pub fn binary(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = dirs
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        skip(&format!(
            "{name} is not installed (apt-get install -y {name})"
        ));
    }
    found
}

/// The one way a test says it did not run because `reason` (something
/// this machine lacks) holds; the caller then returns early. Under `CI`
/// (set at all) it panics instead: CI must run every test. Elsewhere it
/// writes `SKIPPED <test>: <reason>; this test did not run` to the
/// process's stderr itself, not through `eprintln!`, which libtest
/// captures and shows only for a failing test: a plain `cargo test` would
/// print `ok` and nothing else. The test's name is its thread's, which
/// libtest sets.
pub fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason}; under CI no test may skip (.ci/run installs what the tests need)");
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // One write of one line, so parallel tests' notices do not interleave.
    let notice = format!("SKIPPED {test}: {reason}; this test did not run\n");
    let _ = std::io::stderr().lock().write_all(notice.as_bytes());
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A fresh directory for one proxy's files.
fn fresh_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ws-lifecycle-proxy-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// Starts `command(port, dir)` until one listens (a port taken between
/// our release and its bind is retried with another); bounded.
fn start(name: &str, command: impl Fn(u16, &Path) -> Command) -> RealProxy {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let dir = fresh_dir();
        let log = dir.join("log");
        let out = File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file");
        let child = command(port, &dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut proxy = RealProxy {
            child,
            port,
            dir,
            log,
        };
        let began = Instant::now();
        while began.elapsed() < READY_WAIT {
            if let Ok(Some(_)) = proxy.child.try_wait() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return proxy;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last = proxy.log();
    }
    panic!("{name} did not start listening; its last words:\n{last}");
}

/// tinyproxy on a free port: CONNECT to any port (no `ConnectPort` line:
/// the packaged config allows only 443 and 563), `BasicAuth` when
/// `credentials` are given. `None` when skipped (see [`binary`]).
pub fn tinyproxy(credentials: Option<(&str, &str)>) -> Option<RealProxy> {
    let bin = binary("tinyproxy")?;
    let auth = credentials
        .map(|(user, password)| format!("BasicAuth {user} {password}\n"))
        .unwrap_or_default();
    Some(start("tinyproxy", |port, dir| {
        let config = dir.join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nLogLevel Connect\n{auth}"
            ),
        )
        .expect("write the tinyproxy config");
        let mut command = Command::new(&bin);
        command.arg("-d").arg("-c").arg(config);
        command
    }))
}

/// microsocks on a free port, requiring `credentials` when given. `None`
/// when skipped (see [`binary`]).
pub fn microsocks(credentials: Option<(&str, &str)>) -> Option<RealProxy> {
    let bin = binary("microsocks")?;
    Some(start("microsocks", |port, _| {
        let mut command = Command::new(&bin);
        command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = credentials {
            command.args(["-u", user, "-P", password]);
        }
        command
    }))
}

/// Starts `start(addr)` on every address `localhost` resolves to, all on
/// one port, so a client (or a proxy) that resolves `localhost` to either
/// family finds it. `start` returns what it started and the port it bound;
/// this returns every one of those and the port. Bounded retries.
pub fn on_localhost<T>(
    mut start: impl FnMut(SocketAddr) -> std::io::Result<(T, u16)>,
) -> (Vec<T>, u16) {
    let mut addrs: Vec<SocketAddr> = ("localhost", 0)
        .to_socket_addrs()
        .expect("resolve localhost")
        .collect();
    addrs.dedup();
    'again: for _ in 0..20 {
        let Ok((first, port)) = start(addrs[0]) else {
            continue;
        };
        let mut started = vec![first];
        for addr in &addrs[1..] {
            match start(SocketAddr::new(addr.ip(), port)) {
                Ok((t, _)) => started.push(t),
                Err(_) => continue 'again,
            }
        }
        return (started, port);
    }
    panic!("cannot listen on one port for every address of localhost ({addrs:?})");
}
