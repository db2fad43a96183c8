//! Every listener has a cap (issue 20): the ops endpoint keeps its own small reserve, and the
//! S3 stable-link listener is capped like the store (it took 1,124 connections from one
//! address). At the cap, the longest-idle connection makes room, so a probe still gets in.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};
use xmpp_upload_component::http_store::Limits;
use xmpp_upload_component::metrics::Metrics;
use xmpp_upload_component::ops::{self, Ops};
use xmpp_upload_component::stable_links;

fn closed_within(mut s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Connects from a chosen loopback address (Linux routes all of 127.0.0.0/8 to lo).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::from((from, 0))).unwrap();
        sock.connect(to).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s
}

/// The status of `GET path` from a fresh address, and how long it took from connecting.
fn get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let t = Instant::now();
    let mut s = connect_from([127, 0, 0, 9], addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    let code = std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap();
    (code, t.elapsed())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens `n` connections that never send a request; returns how many were closed soon.
fn hold(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let held: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let closed = held
        .iter()
        .filter(|s| closed_within(s, Duration::from_millis(100)))
        .count();
    (held, closed)
}

#[test]
fn the_ops_listener_has_its_own_cap_and_healthz_still_answers() {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let o = Arc::new(Ops {
        metrics: Arc::new(Metrics::default()),
        retention: None,
        admin_token: None,
        xmpp_online: Arc::new(AtomicBool::new(true)),
    });
    rt.spawn(ops::serve_ops(listener, o, ops::ops_limits(4)));
    let (_held, closed) = hold(addr, 40);
    // Only 4 stay open; each new one closed the longest-idle one.
    assert!(closed >= 36, "{closed} of 40 closed");
    let (code, took) = get(addr, "/healthz");
    assert_eq!(code, 200);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let (code, _) = get(addr, "/metrics");
    assert_eq!(code, 200);
}

#[test]
fn the_stable_link_listener_is_capped() {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let base: url::Url = format!("http://{addr}/files/").parse().unwrap();
    let stable = base.join("stable/").unwrap();
    let config = ServiceConfig::new(
        "upload.example.org".parse::<jid::Jid>().unwrap(),
        b"a service secret of 32 bytes....".to_vec(),
    )
    .stable_get_base(stable.clone());
    let service = Arc::new(SlotService::new(
        config,
        SignedUrlStore::new(base, *b"a store key of 32 bytes........."),
    ));
    let limits = Limits {
        max_connections: 8,
        max_connections_per_ip: 8,
        reserve_from: 8,
        ..Limits::default()
    };
    rt.spawn(stable_links::serve(
        listener,
        service,
        stable,
        Arc::new(Metrics::default()),
        limits,
    ));
    let (_held, closed) = hold(addr, 40);
    assert!(closed >= 32, "{closed} of 40 closed");
    // A fresh request is still answered (404: no such link).
    let (code, took) = get(addr, "/files/stable/nothing");
    assert_eq!(code, 404);
    assert!(took < Duration::from_secs(1), "{took:?}");
}
