//! URLs in what the crate reports: redaction strips the whole user info, so
//! credentials never reach a log or an error.

use ws_lifecycle::Client;

/// The redacted URL is what every transition logs and what
/// `BuildError::Url` carries: a password holding a raw `@` must not leak
/// its tail, and an `@` in the path must not replace the host.
#[test]
fn redact_strips_the_whole_user_info() {
    use ws_lifecycle::redact;
    let url = "ws://user:p@ss-w0rd@broker.example/ws?token=t";
    let built = Client::builder(url).no_proxy().build().map(|_| ());
    eprintln!("build({url:?}) -> {built:?}");
    assert_eq!(redact(url), "ws://broker.example/ws");
    assert_eq!(redact("ws://broker.example/a@b"), "ws://broker.example/a@b");
}
