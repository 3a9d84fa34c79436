//! `cargo run --example resume` works: the broker restarts, replays what
//! the resuming client missed, and the example says nothing was lost.

mod example_bin;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_resume_example_loses_nothing_across_a_broker_restart() {
    let mut child = example_bin::without_proxy_env(&mut Command::new(example_bin::path("resume")))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the resume example");
    // Bounded: the example takes about 1.5 s.
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the resume example did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("\"resumed\":true"), "{stdout}");
    assert!(stdout.contains("nothing was lost"), "{stdout}");
}
