//! TLS settings are checked at construction: extra roots that cannot be
//! used are a `BuildError`, and without the `tls` feature `wss://` is
//! refused (and `wsclient` refuses `wss://` and `--ca-file`).

use ws_lifecycle::{BuildError, Client};

/// The build error of `builder`, which must fail.
fn refused(builder: ws_lifecycle::ClientBuilder) -> BuildError {
    match builder.build() {
        Ok(_) => panic!("built"),
        Err(e) => e,
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn wss_is_refused_at_construction_without_the_tls_feature() {
    let e = refused(Client::builder("wss://broker.example/ws"));
    assert!(matches!(e, BuildError::TlsDisabled), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("without its `tls` feature"), "{text}");
    assert!(Client::builder("ws://broker.example/ws").build().is_ok());
}

#[cfg(not(feature = "tls"))]
#[test]
fn wsclient_without_tls_refuses_wss_and_ca_file() {
    use std::process::{Command, Stdio};
    #[path = "example_bin/mod.rs"]
    mod example_bin;
    let run = |args: &[&str]| {
        let mut command = Command::new(example_bin::path("wsclient"));
        let out = example_bin::without_proxy_env(&mut command)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["wss://localhost:1/ws"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("`tls` feature"), "{stderr}");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let (code, stderr) = run(&["--ca-file", manifest, "ws://localhost:1/ws"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("without TLS"), "{stderr}");
}

#[cfg(feature = "tls")]
#[test]
fn extra_roots_that_cannot_be_used_are_build_errors() {
    let url = "wss://broker.example/ws";
    let e = refused(Client::builder(url).add_root_pem(""));
    assert!(matches!(e, BuildError::NoCertificate { .. }), "{e:?}");
    let e = refused(Client::builder(url).add_root_pem("not a certificate"));
    assert!(matches!(e, BuildError::NoCertificate { .. }), "{e:?}");
    assert!(e.to_string().contains("add_root_pem call 1"), "{e}");
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let e = refused(Client::builder(url).add_root_pem(bad_base64));
    assert!(matches!(e, BuildError::BadPem { .. }), "{e:?}");
    let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let e = refused(Client::builder(url).add_root_pem(not_der));
    assert!(matches!(e, BuildError::BadRoot { index: 1, .. }), "{e:?}");
    let missing = concat!(env!("CARGO_TARGET_TMPDIR"), "/no-such-roots.pem");
    let e = refused(Client::builder(url).add_roots_from_file(missing));
    assert!(matches!(e, BuildError::ReadRoots { .. }), "{e:?}");
    assert!(e.to_string().contains(missing), "{e}");
    // Roots matter for wss:// only.
    let ws = Client::builder("ws://broker.example/ws").add_roots_from_file(missing);
    assert!(ws.build().is_ok());
}
