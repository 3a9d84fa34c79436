//! URLs in what the crate reports: redaction strips the whole user info, so
//! credentials never reach a log or an error.

use ws_lifecycle::Client;

/// The redacted URL is what every transition logs, what `BuildError::Url`
/// carries and what the builder's `Debug` shows: a password holding a raw
/// `@` must not leak its tail, and an `@` in the path must not replace the
/// host.
#[test]
fn redact_strips_the_whole_user_info() {
    let url = "ws://user:p@ss-w0rd@broker.example/ws?token=t";
    let built = Client::builder(url).no_proxy().build().map(|_| ());
    eprintln!("build({url:?}) -> {built:?}");
    let shown = format!("{:?}", Client::builder(url));
    assert!(
        shown.contains(r#"url: "ws://broker.example/ws""#),
        "{shown}"
    );
    for secret in ["user", "p@ss", "w0rd", "token"] {
        assert!(!shown.contains(secret), "{secret:?} in {shown}");
    }
    let shown = format!("{:?}", Client::builder("ws://broker.example/a@b"));
    assert!(
        shown.contains(r#"url: "ws://broker.example/a@b""#),
        "{shown}"
    );
}
