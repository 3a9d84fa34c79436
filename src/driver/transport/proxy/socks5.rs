//! SOCKS5 (RFC 1928) with the username/password method (RFC 1929).
//!
//! 1. Method selection (RFC 1928 §3): offer `X'00'` (no authentication)
//!    and, with credentials, `X'02'` (username/password). `X'FF'` means
//!    none was acceptable.
//! 2. With `X'02'`, the sub-negotiation (RFC 1929 §2): `VER=1, ULEN,
//!    UNAME, PLEN, PASSWD`; a status other than 0 is a refusal.
//! 3. The request (RFC 1928 §4, §5): `CONNECT` to an IPv4 (`ATYP=1`), IPv6
//!    (`ATYP=4`) address or a domain name (`ATYP=3`, `socks5h://`).
//! 4. The reply (RFC 1928 §6): `REP=0` is success; the bound address that
//!    follows is read to its end (its length depends on its type), so the
//!    next byte is the broker's.
//!
//! Every read takes exactly the bytes of the answer, never more.

use std::net::IpAddr;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::error::ConnectError;
use super::Proxy;

/// Where the tunnel goes.
pub(super) enum Target<'a> {
    /// An address (`socks5://`, or an IP literal URL).
    Ip(IpAddr),
    /// A name for the proxy to resolve (`socks5h://`).
    Name(&'a str),
}

/// Opens the tunnel to `target:port` through `proxy` (named `name` in
/// errors).
pub(super) async fn connect<S>(
    stream: &mut S,
    proxy: &Proxy,
    name: &str,
    target: Target<'_>,
    port: u16,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::UnexpectedEof => ConnectError::ProxyProtocol {
            proxy: name.to_owned(),
            detail: "it closed the connection in the middle of the SOCKS5 handshake".into(),
        },
        _ => ConnectError::ProxyIo {
            proxy: name.to_owned(),
            source,
        },
    };
    let protocol = |detail: String| ConnectError::ProxyProtocol {
        proxy: name.to_owned(),
        detail,
    };

    // §3: method selection.
    let offered: &[u8] = if proxy.credentials.is_some() {
        &[5, 2, 0x00, 0x02]
    } else {
        &[5, 1, 0x00]
    };
    stream.write_all(offered).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut chosen = [0u8; 2];
    stream.read_exact(&mut chosen).await.map_err(io)?;
    if chosen[0] != 5 {
        return Err(protocol(format!(
            "its answer is not SOCKS5 (version byte {})",
            chosen[0]
        )));
    }
    match (chosen[1], &proxy.credentials) {
        (0x00, _) => {}
        (0x02, Some(c)) => {
            // RFC 1929 §2.
            let mut auth = Vec::with_capacity(3 + c.user.len() + c.password.len());
            auth.push(1);
            auth.push(c.user.len() as u8);
            auth.extend_from_slice(c.user.as_bytes());
            auth.push(c.password.len() as u8);
            auth.extend_from_slice(c.password.as_bytes());
            let written = stream.write_all(&auth).await;
            auth.fill(0);
            written.map_err(io)?;
            stream.flush().await.map_err(io)?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await.map_err(io)?;
            if status[1] != 0 {
                return Err(ConnectError::SocksAuth {
                    proxy: name.to_owned(),
                    status: status[1],
                });
            }
        }
        (0xFF, _) => {
            return Err(ConnectError::SocksNoMethod {
                proxy: name.to_owned(),
                offered_credentials: proxy.credentials.is_some(),
            });
        }
        (other, _) => {
            return Err(protocol(format!(
                "it chose authentication method {other}, which was not offered"
            )));
        }
    }

    // §4: the request.
    stream
        .write_all(&request(&target, port).map_err(protocol)?)
        .await
        .map_err(io)?;
    stream.flush().await.map_err(io)?;

    // §6: the reply, then the bound address to its end.
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 5 {
        return Err(protocol(format!(
            "its reply is not SOCKS5 (version byte {})",
            reply[0]
        )));
    }
    if reply[1] != 0 {
        return Err(ConnectError::SocksReply {
            proxy: name.to_owned(),
            reply: reply[1],
        });
    }
    let bound = match reply[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0])
        }
        other => return Err(protocol(format!("its reply has address type {other}"))),
    };
    let mut rest = [0u8; 255 + 2];
    stream
        .read_exact(&mut rest[..bound + 2])
        .await
        .map_err(io)?;
    Ok(())
}

/// The CONNECT request's bytes (RFC 1928 §4, §5).
fn request(target: &Target<'_>, port: u16) -> Result<Vec<u8>, String> {
    let mut request = vec![5, 1, 0];
    match target {
        Target::Ip(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Target::Ip(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        Target::Name(name) => {
            let len = u8::try_from(name.len())
                .map_err(|_| "the broker's host name is longer than 255 bytes".to_owned())?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_an_address_or_the_name() {
        let v4 = Target::Ip([127, 0, 0, 1].into());
        assert_eq!(
            request(&v4, 8080).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]
        );
        let v6 = Target::Ip(std::net::Ipv6Addr::LOCALHOST.into());
        let mut want = vec![5, 1, 0, 4];
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(&[1, 0, 80]);
        assert_eq!(request(&v6, 80).unwrap(), want);
        assert_eq!(
            request(&Target::Name("localhost"), 443).unwrap(),
            [&[5, 1, 0, 3, 9][..], b"localhost", &[1, 0xbb]].concat()
        );
        assert!(request(&Target::Name(&"a".repeat(256)), 1).is_err());
    }
}
