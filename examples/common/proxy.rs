//! A TCP proxy that can blackhole traffic: both sockets stay open but no
//! byte is forwarded in either direction — a half-dead link, as a NAT that
//! silently dropped the flow would make.
#![allow(dead_code)]

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::Task;

/// A running proxy; dropping it closes everything.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    blackhole: Arc<AtomicBool>,
    _task: Task<()>,
}

impl Proxy {
    /// Forwards `127.0.0.1:<free port>` to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
        let addr = listener.get_ref().local_addr()?;
        let blackhole = Arc::new(AtomicBool::new(false));
        let flag = blackhole.clone();
        let task = smol::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                conns.push(smol::spawn(async move {
                    let Ok(server) = Async::<TcpStream>::connect(upstream).await else {
                        return;
                    };
                    let (c, s) = (Arc::new(client), Arc::new(server));
                    let up = pump(c.clone(), s.clone(), flag.clone());
                    let down = pump(s, c, flag);
                    // When either side ends, end both (dropping the sockets),
                    // as a real connection would.
                    futures_lite::future::or(up, down).await;
                }));
            }
        });
        Ok(Proxy {
            addr,
            blackhole,
            _task: task,
        })
    }

    /// Stops (true) or resumes (false) forwarding, keeping both sockets open.
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }

    /// `ws://addr/ws`
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

async fn pump(from: Arc<Async<TcpStream>>, to: Arc<Async<TcpStream>>, blackhole: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match (&*from).read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // While blackholed, bytes are swallowed: nothing reaches the other
        // side, and nothing is closed.
        if blackhole.load(Ordering::SeqCst) {
            continue;
        }
        if (&*to).write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
