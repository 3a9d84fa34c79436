//! HTTP CONNECT (RFC 9110 §9.3.6): `CONNECT host:port HTTP/1.1` with a
//! `Host` of the same authority (RFC 9112 §3.2.3) and, when the proxy URL
//! has user info, `Proxy-Authorization: Basic` (RFC 9110 §11.7.2,
//! RFC 7617). Any 2xx answer opens the tunnel right after its head (a 2xx
//! answer to CONNECT has no content); anything else is the proxy's refusal.
//!
//! The head is read one byte at a time, so no byte of the tunnel (the
//! broker's, after the head) is ever taken: there is no buffer to hand
//! on. It is a few hundred bytes once per attempt.

use data_encoding::BASE64;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::error::ConnectError;
use super::{Proxy, authority};

/// The longest answer head accepted.
const MAX_HEAD: usize = 8 << 10;

/// Opens the tunnel to `host:port` through `proxy` (named `name` in errors).
pub(super) async fn connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    name: &str,
    host: &str,
    port: u16,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |source| ConnectError::ProxyIo {
        proxy: name.to_owned(),
        source,
    };
    let protocol = |detail: String| ConnectError::ProxyProtocol {
        proxy: name.to_owned(),
        detail,
    };
    let request = request(proxy, host, port);
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    drop(request);

    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !(head.ends_with(b"\n\r\n") || head.ends_with(b"\n\n")) {
        if head.len() >= MAX_HEAD {
            return Err(protocol(format!(
                "its answer's head exceeds {MAX_HEAD} bytes"
            )));
        }
        if stream.read(&mut byte).await.map_err(io)? == 0 {
            return Err(protocol(if head.is_empty() {
                "it closed the connection without answering CONNECT".into()
            } else {
                "it closed the connection in the middle of its answer".into()
            }));
        }
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(protocol("its answer to CONNECT is not HTTP".into()));
        }
    }
    let status = response.code.unwrap_or(0);
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(ConnectError::ProxyRefused {
        proxy: name.to_owned(),
        status,
        reason: response.reason.unwrap_or("").to_owned(),
    })
}

/// The CONNECT request's bytes.
fn request(proxy: &Proxy, host: &str, port: u16) -> String {
    let target = authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = &proxy.credentials {
        let token = BASE64.encode(format!("{}:{}", c.user, c.password).as_bytes());
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    request
}

#[cfg(test)]
mod tests {
    use super::super::url::parse;
    use super::*;

    #[test]
    fn connect_requests() {
        let plain = parse("http://proxy:3128").unwrap();
        assert_eq!(
            request(&plain, "broker.example", 443),
            "CONNECT broker.example:443 HTTP/1.1\r\nHost: broker.example:443\r\n\r\n"
        );
        assert_eq!(
            request(&plain, "::1", 8080),
            "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"
        );
        let with = parse("http://Aladdin:open%20sesame@proxy:3128").unwrap();
        assert_eq!(
            request(&with, "10.0.0.1", 80),
            "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }
}
