//! The example HTTP store under abuse (issue 11, finding d): each test failed against the
//! store as it was before (checked by running it against that version).
//!
//! * 512 idle or trickling connections do not make it unreachable; at the cap, the
//!   longest-idle connection makes room for a new one; idle holders are cut sooner as the
//!   listener fills (issue 20);
//! * a PUT started before its URL expired does not complete long after;
//! * a second concurrent PUT to one URL gets 409 at once, not after streaming a file;
//! * stored files and sidecars are never read through symlinks;
//! * a full disk leaves no sidecar (or anything else) behind.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::common::config;
use super::http_e2e::{read_answer, slot, start, status, stored_files, target, temp_dir};
use super::http_store::{Limits, StoreOptions};

/// Opens a connection from `from` (any 127.0.0.0/8 address) and sends a partial request head.
fn trickler(from: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let sock = socket2_free_connect(from, to)?;
    let mut s = sock;
    let _ = s.write_all(b"PUT /up/");
    Some(s)
}

/// Connects from a chosen loopback source address (Linux routes all of 127.0.0.0/8 to lo).
fn socket2_free_connect(from: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().ok()?;
        sock.bind(SocketAddr::from((from, 0))).ok()?;
        let s = sock.connect(to).await.ok()?;
        s.into_std().ok()
    })
    .and_then(|s| s.set_nonblocking(false).ok().map(|()| s))
}

/// Whether the server has closed the connection (EOF or reset) within `wait`.
fn closed_within(mut s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // an answer (408, 400): keep reading until the close
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

/// Makes sure this process may open `want` files: both ends of every connection live here
/// (about 1,100 for the next test), above the common soft limit of 1,024. Raises the soft
/// limit towards the hard one with `prlimit` (util-linux) when needed.
fn ensure_open_files(want: u64) {
    fn limits() -> Option<(u64, String)> {
        let text = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
        let soft = match *nums.first()? {
            "unlimited" => u64::MAX,
            n => n.parse().ok()?,
        };
        Some((soft, (*nums.get(1)?).to_owned()))
    }
    let Some((soft, hard)) = limits() else {
        return; // not Linux: nothing to read, nothing to raise
    };
    if soft >= want {
        return;
    }
    let _ = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    let now = limits().map_or(0, |(s, _)| s);
    assert!(
        now >= want,
        "this test needs {want} open files; the limit is {now} (raise it: ulimit -n {want})"
    );
}

#[test]
fn idle_and_trickling_connections_do_not_lock_clients_out() {
    ensure_open_files(2048);
    let srv = start(config(), StoreOptions::default(), None);
    // 512 connections that never finish their request head, from 16 addresses (32 each, the
    // per-address cap), and 64 more from one of them (refused at once by the per-address cap).
    let mut held = Vec::new();
    for i in 0..16u8 {
        for _ in 0..32 {
            held.push(trickler([127, 0, 0, 2 + i], srv.addr).expect("connect"));
        }
    }
    let extra: Vec<TcpStream> = (0..64)
        .filter_map(|_| trickler([127, 0, 0, 2], srv.addr))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Those over the per-address cap were closed at once.
    let refused = extra
        .iter()
        .filter(|s| closed_within(s, Duration::from_millis(200)))
        .count();
    assert_eq!(refused, 64);
    // A client from another address still gets through, quickly.
    let started = Instant::now();
    let s = slot(&srv.service, "ok.txt", 2, Some("text/plain"));
    assert_eq!(status(ureq::put(s.put.as_str()).send_bytes(b"ok")), 201);
    let got = ureq::get(s.get.as_str()).call().unwrap();
    assert_eq!(got.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);
}

#[test]
fn headroom_is_kept_for_new_addresses() {
    let opts = StoreOptions {
        limits: Limits {
            max_connections: 40,
            max_connections_per_ip: 32,
            reserve_from: 30,
            // Deadlines stay long here: what is tested is the room made at the cap.
            timeout_floor: Duration::from_secs(20),
            ..Limits::default()
        },
        ..StoreOptions::default()
    };
    let srv = start(config(), opts, None);
    let held: Vec<TcpStream> = (0..30)
        .map(|_| trickler([127, 0, 0, 2], srv.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(held
        .iter()
        .all(|s| !closed_within(s, Duration::from_millis(50))));
    // Past the reserve mark, an address that holds connections gets no more …
    let more = trickler([127, 0, 0, 2], srv.addr).unwrap();
    assert!(closed_within(&more, Duration::from_secs(2)));
    // … while new addresses still get in, up to the global cap.
    let fresh: Vec<TcpStream> = (3..13u8)
        .map(|i| trickler([127, 0, 0, i], srv.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(fresh
        .iter()
        .all(|s| !closed_within(s, Duration::from_millis(50))));
    // At the cap, a new address still gets in: the longest-idle connection is closed to
    // make room for it (issue 20: a slowloris flood must not keep a fresh client out).
    let over = trickler([127, 0, 0, 20], srv.addr).unwrap();
    assert!(closed_within(&held[0], Duration::from_secs(2)));
    assert!(!closed_within(&over, Duration::from_millis(50)));
}

#[test]
fn idle_holders_are_cut_sooner_as_the_listener_fills() {
    // Issue 20: holding a connection used to cost nothing for 30 s whatever the load.
    let opts = StoreOptions {
        limits: Limits {
            max_connections: 40,
            max_connections_per_ip: 40,
            reserve_from: 40,
            header_timeout: Duration::from_secs(30),
            timeout_floor: Duration::from_secs(1),
            ..Limits::default()
        },
        ..StoreOptions::default()
    };
    let srv = start(config(), opts, None);
    // A quarter full: idle connections keep their 30 s.
    let few: Vec<TcpStream> = (0..10)
        .map(|_| trickler([127, 0, 0, 2], srv.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(few
        .iter()
        .all(|s| !closed_within(s, Duration::from_millis(20))));
    drop(few);
    // Kept full, as a flood keeps it (each holder cut is replaced): holders are cut at about
    // the floor (1 s), not after 30 s. None of the first forty outlives 4 s.
    let mut first: Vec<Option<TcpStream>> = (0..40)
        .map(|_| trickler([127, 0, 0, 3], srv.addr))
        .collect();
    let mut refills: Vec<TcpStream> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) && first.iter().any(Option::is_some) {
        let mut cut = 0;
        for slot in &mut first {
            if slot
                .as_ref()
                .is_some_and(|s| closed_within(s, Duration::from_millis(1)))
            {
                *slot = None;
                cut += 1;
            }
        }
        refills.retain(|s| !closed_within(s, Duration::from_millis(1)));
        for _ in 0..cut {
            refills.extend(trickler([127, 0, 0, 4], srv.addr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = first.iter().filter(|s| s.is_some()).count();
    assert_eq!(left, 0, "{left} of 40 holders outlived 4 s");
    // And a fresh client is served.
    let s = slot(&srv.service, "ok.txt", 2, Some("text/plain"));
    assert_eq!(status(ureq::put(s.put.as_str()).send_bytes(b"ok")), 201);
}

#[test]
fn a_reader_that_stalls_is_cut_off_at_the_get_deadline() {
    let opts = StoreOptions {
        limits: Limits {
            get_deadline: Duration::from_secs(1),
            ..Limits::default()
        },
        ..StoreOptions::default()
    };
    let srv = start(config(), opts, None);
    let len = 8 * 1024 * 1024;
    let s = slot(&srv.service, "big.bin", len as u64, None);
    assert_eq!(
        status(ureq::put(s.put.as_str()).send_bytes(&vec![3u8; len])),
        201
    );
    let mut c = TcpStream::connect(srv.addr).unwrap();
    write!(
        c,
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        target(&s.get),
        srv.addr
    )
    .unwrap();
    // The client reads nothing; past the deadline the server gives up on it.
    std::thread::sleep(Duration::from_secs(3));
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(closed, "the connection stayed open");
    assert!(got < len, "all {got} bytes were sent");
}

#[test]
fn idle_connections_are_closed_after_the_header_timeout() {
    let opts = StoreOptions {
        limits: Limits {
            header_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        ..StoreOptions::default()
    };
    let srv = start(config(), opts, None);
    let idle = TcpStream::connect(srv.addr).unwrap();
    let mut trickle = TcpStream::connect(srv.addr).unwrap();
    trickle.write_all(b"GET /up/").unwrap();
    let started = Instant::now();
    assert!(closed_within(&idle, Duration::from_secs(5)));
    assert!(closed_within(&trickle, Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_put_must_finish_by_its_expiry_plus_grace() {
    let opts = StoreOptions {
        limits: Limits {
            put_grace: Duration::from_secs(1),
            ..Limits::default()
        },
        ..StoreOptions::default()
    };
    let srv = start(config().put_ttl(time::Duration::seconds(2)), opts, None);
    let s = slot(&srv.service, "slow.bin", 10, None);
    let issued = OffsetDateTime::now_utc();
    let mut c = TcpStream::connect(srv.addr).unwrap();
    write!(
        c,
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 10\r\nConnection: close\r\n\r\n01234",
        target(&s.put),
        srv.addr
    )
    .unwrap();
    // The rest arrives well past expiry + grace (each pause shorter than the idle timeout).
    std::thread::sleep(Duration::from_millis(4500));
    let _ = c.write_all(b"56789");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let answer = read_answer(&mut c);
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 408),
        "{answer:?}"
    );
    assert!(OffsetDateTime::now_utc() - issued < time::Duration::seconds(10));
    // Nothing stored.
    assert_eq!(
        ureq::get(s.get.as_str()).call().map(|r| r.status()).ok(),
        None
    );
    assert!(
        stored_files(&srv.dir).is_empty(),
        "{:?}",
        stored_files(&srv.dir)
    );
}

#[test]
fn a_second_concurrent_put_gets_409_at_once() {
    let srv = start(config(), StoreOptions::default(), None);
    let size = 1_000_000usize;
    let s = slot(&srv.service, "big.bin", size as u64, None);
    // The first PUT is under way: its head and part of its body are in.
    let mut first = TcpStream::connect(srv.addr).unwrap();
    write!(
        first,
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n",
        target(&s.put),
        srv.addr
    )
    .unwrap();
    first.write_all(&vec![7u8; 1000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The second gets 409 before it has sent its body (Expect: 100-continue), so it streams
    // nothing.
    let mut second = TcpStream::connect(srv.addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    write!(
        second,
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {size}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        target(&s.put),
        srv.addr
    )
    .unwrap();
    let answer = read_answer(&mut second).expect("an answer");
    assert_eq!(answer.status, 409, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Only the first PUT's temporary file exists.
    let temps: Vec<String> = stored_files(&srv.dir)
        .into_iter()
        .filter(|p| p.starts_with(".tmp"))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    // The first one completes.
    first.write_all(&vec![7u8; size - 1000]).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_answer(&mut first).unwrap().status, 201);
    // And a later PUT finds it stored.
    assert_eq!(
        status(ureq::put(s.put.as_str()).send_bytes(&vec![7u8; size])),
        409
    );
}

#[test]
fn stored_files_are_not_read_through_symlinks() {
    let srv = start(config(), StoreOptions::default(), None);
    let outside = temp_dir("outside");
    std::fs::write(outside.join("secret.txt"), b"TOP SECRET").unwrap();

    // A stored file replaced by a symlink to a file outside the store.
    let s = slot(&srv.service, "a.txt", 3, Some("text/plain"));
    assert_eq!(status(ureq::put(s.put.as_str()).send_bytes(b"abc")), 201);
    let id = s.get.path_segments().unwrap().nth(1).unwrap().to_owned();
    let file = srv.dir.join(&id).join("a.txt");
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), &file).unwrap();
    let got = ureq::get(s.get.as_str()).call();
    assert_eq!(
        got.map(|r| r.status()).map_err(|e| match e {
            ureq::Error::Status(c, _) => c,
            other => panic!("{other}"),
        }),
        Err(404)
    );

    // A slot directory that is a symlink to a directory outside.
    let s = slot(&srv.service, "secret.txt", 10, None);
    let id = s.get.path_segments().unwrap().nth(1).unwrap().to_owned();
    std::os::unix::fs::symlink(&outside, srv.dir.join(&id)).unwrap();
    let got = ureq::get(s.get.as_str()).call();
    assert!(matches!(got, Err(ureq::Error::Status(404, _))), "{got:?}");

    // A sidecar that is a symlink: its target is not read as the content type.
    std::fs::write(outside.join("type"), b"text/html").unwrap();
    let s = slot(&srv.service, "b.bin", 3, None);
    assert_eq!(status(ureq::put(s.put.as_str()).send_bytes(b"abc")), 201);
    let id = s.get.path_segments().unwrap().nth(1).unwrap().to_owned();
    let meta = srv.dir.join(format!("{id}.meta"));
    std::fs::remove_file(&meta).unwrap();
    std::os::unix::fs::symlink(outside.join("type"), &meta).unwrap();
    let got = ureq::get(s.get.as_str()).call().unwrap();
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    let _ = std::fs::remove_dir_all(&outside);
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_leaves_no_sidecar_behind() {
    // A 64 KiB tmpfs: the body fills it exactly, so the sidecar cannot be written.
    let dir = temp_dir("full-disk");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // Needs CAP_SYS_ADMIN (root in CI); say so loudly rather than pass quietly.
        eprintln!("SKIPPED a_full_disk_leaves_no_sidecar_behind: cannot mount a tmpfs here");
        let _ = std::fs::remove_dir(&dir);
        return;
    }
    let fs = Tmpfs(dir.clone());
    let srv = start(config(), StoreOptions::default(), Some(dir.clone()));
    let body = vec![1u8; 64 * 1024];
    let s = slot(
        &srv.service,
        "full.bin",
        body.len() as u64,
        Some("application/pdf"),
    );
    let code = status(ureq::put(s.put.as_str()).send_bytes(&body));
    assert_eq!(code, 507);
    // Nothing of the upload is left: no file, no sidecar (empty or not), no temporary file.
    assert_eq!(stored_files(&dir), Vec::<String>::new());
    assert!(matches!(
        ureq::get(s.get.as_str()).call(),
        Err(ureq::Error::Status(404, _))
    ));
    // With room again, the same slot works.
    let small = slot(&srv.service, "small.bin", 3, Some("application/pdf"));
    assert_eq!(
        status(ureq::put(small.put.as_str()).send_bytes(b"abc")),
        201
    );
    let got = ureq::get(small.get.as_str()).call().unwrap();
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    drop(srv);
    drop(fs);
}
