//! `--rtt-ms`: a TCP proxy that makes a database on loopback look like one on another host.
//!
//! On loopback a round trip costs tens of microseconds, less than the server's work for a
//! statement, so counting round trips there measures almost nothing; in production the database
//! is a network hop away (a fraction of a millisecond in one zone, more across zones). Every
//! chunk of bytes is forwarded half the round trip after it arrived, in order, in both
//! directions, for raw inserts and store writes alike. OS threads and `thread::sleep`, not
//! tokio timers, whose millisecond granularity would round small delays up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Starts a proxy on 127.0.0.1 in front of `upstream` (`host:port`) adding `rtt` to every round
/// trip; returns its address. It lives as long as the benchmark.
pub fn start(upstream: &str, rtt: Duration) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let upstream = upstream.to_owned();
    let one_way = rtt / 2;
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            for (from, to) in [(&client, &server), (&server, &client)] {
                if let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) {
                    pipe(from, to, one_way);
                }
            }
        }
    });
    Ok(addr)
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// `url` pointed at a proxy adding `rtt` in front of its `host:port`.
pub fn url_through(url: &str, rtt: Duration) -> Result<String> {
    let (scheme, rest) = url.split_once("://").context("URL without scheme")?;
    let (userinfo, rest) = match rest.split_once('@') {
        Some((user, rest)) => (format!("{user}@"), rest),
        None => (String::new(), rest),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = start(authority, rtt)?;
    Ok(format!("{scheme}://{userinfo}{addr}/{path}"))
}
