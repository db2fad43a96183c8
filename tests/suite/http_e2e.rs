//! The file-ID flow end to end over real HTTP: the service issues slots, the examples' HTTP
//! store (`examples/support/http_store.rs`, hyper on 127.0.0.1) verifies them, and a real HTTP
//! client (ureq) uploads and downloads.

use std::io::Read;

use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest, Md5};
use time::{Duration, OffsetDateTime};
use url::Url;
use xmpp_upload::stanza::file_transfer::{DownloadRequest, Query, UploadRequest, UploadResult};
use xmpp_upload::stanza::iq::{request, IqType};
use xmpp_upload::stanza::upload::{Slot, SlotRequest};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::SlotService;

use super::common::config;
use super::http_store::{serve, serve_with, HttpStoreConfig, Service, StoreOptions};

fn ask(
    service: &Service,
    from: &str,
    type_: IqType,
    payload: minidom::Element,
) -> minidom::Element {
    let mut iq = request(type_, "e2e", "montague.tld", payload);
    iq.set_attr(
        minidom::rxml::Namespace::NONE,
        minidom::rxml::NcName::try_from("from").unwrap(),
        from.to_owned(),
    );
    let reply = service
        .handle(&iq, OffsetDateTime::now_utc())
        .expect("a reply");
    assert_eq!(
        reply.attr("type"),
        Some("result"),
        "{}",
        String::from(&reply)
    );
    reply
}

fn upload(service: &Service, md5: [u8; 16], name: &str, size: u64) -> UploadResult {
    let q = UploadRequest::new(md5)
        .with_file(name, size, Some("image/jpeg"))
        .to_element();
    match Query::parse(
        ask(service, "romeo@montague.tld/garden", IqType::Set, q)
            .children()
            .next()
            .unwrap(),
    )
    .unwrap()
    {
        Query::UploadResult(r) => r,
        other => panic!("{other:?}"),
    }
}

fn resolve(service: &Service, fileid: &str) -> Url {
    let q = DownloadRequest::new(fileid).to_element();
    match Query::parse(
        ask(service, "juliet@montague.tld/balcony", IqType::Get, q)
            .children()
            .next()
            .unwrap(),
    )
    .unwrap()
    {
        Query::DownloadResult(r) => r.download,
        other => panic!("{other:?}"),
    }
}

fn put(r: &UploadResult, body: &[u8], md5_header: Option<&str>) -> u16 {
    let mut req = ureq::put(r.upload.as_str());
    for h in &r.headers {
        if h.name.eq_ignore_ascii_case("Content-MD5") {
            if let Some(v) = md5_header {
                req = req.set(&h.name, v);
            }
        } else {
            req = req.set(&h.name, &h.value);
        }
    }
    status(req.send_bytes(body))
}

pub(super) fn status(r: Result<ureq::Response, ureq::Error>) -> u16 {
    match r {
        Ok(resp) => resp.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("transport error: {e}"),
    }
}

fn get(url: &Url) -> (u16, Vec<u8>) {
    match ureq::get(url.as_str()).call() {
        Ok(resp) => {
            let code = resp.status();
            let mut out = Vec::new();
            resp.into_reader().read_to_end(&mut out).unwrap();
            (code, out)
        }
        Err(ureq::Error::Status(code, _)) => (code, Vec::new()),
        Err(e) => panic!("transport error: {e}"),
    }
}

#[test]
fn file_id_flow_over_real_http() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base: Url = format!("http://{}/up/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "xmpp-upload-http-e2e-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let service: Arc<Service> = Arc::new(SlotService::new(
        config().download_ttl(Duration::seconds(1)),
        SignedUrlStore::new(base.clone(), *b"http e2e store key, 32 bytes...."),
    ));
    rt.spawn(serve(
        listener,
        service.clone(),
        HttpStoreConfig {
            store_dir: dir.clone(),
            base_url: base,
            stable_base: None,
            log: false,
        },
    ));

    let body = b"Juliet's balcony, 4096 bytes of it, or so.".repeat(97);
    let md5: [u8; 16] = Md5::digest(&body).into();
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(md5);
    let r = upload(&service, md5, "balcony.jpg", body.len() as u64);
    let fileid = r.fileid.clone().expect("a file ID");

    // Other bytes of the same length, announced with the right MD5: refused, nothing stored.
    let mut other = body.clone();
    other[0] ^= 1;
    assert_eq!(put(&r, &other, Some(&md5_b64)), 400);
    // The right bytes without Content-MD5: refused.
    assert_eq!(put(&r, &body, None), 400);
    // The right bytes with their MD5: stored.
    assert_eq!(put(&r, &body, Some(&md5_b64)), 201);
    assert_eq!(put(&r, &body, Some(&md5_b64)), 409);

    // The receiver resolves the ID: the same bytes.
    let url = resolve(&service, &fileid);
    assert_eq!(get(&url), (200, body.clone()));
    // After its lifetime the URL is refused (410: ask again) …
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(get(&url).0, 410);
    // … and resolving again gives a new URL that works.
    let again = resolve(&service, &fileid);
    assert_ne!(again, url);
    assert_eq!(get(&again), (200, body));
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// PUTs and GETs as real clients send them (issue 11 items 1-3), against the example store.

/// A running example store on 127.0.0.1 with its own directory, removed when dropped.
pub(super) struct Server {
    /// Runs the server; dropped with it.
    _rt: tokio::runtime::Runtime,
    pub addr: std::net::SocketAddr,
    pub dir: std::path::PathBuf,
    pub service: Arc<Service>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "xmpp-upload-{what}-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the store with `config` and `opts`, storing under `dir` (a fresh one if `None`).
pub(super) fn start(
    config: xmpp_upload::ServiceConfig,
    opts: StoreOptions,
    dir: Option<std::path::PathBuf>,
) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let base: Url = format!("http://{addr}/up/").parse().unwrap();
    let dir = dir.unwrap_or_else(|| temp_dir("http-store"));
    let service: Arc<Service> = Arc::new(SlotService::new(
        config,
        SignedUrlStore::new(base.clone(), *b"http e2e store key, 32 bytes...."),
    ));
    let cfg = HttpStoreConfig {
        store_dir: dir.clone(),
        base_url: base,
        stable_base: None,
        log: false,
    };
    rt.spawn(serve_with(listener, service.clone(), cfg, opts));
    Server {
        _rt: rt,
        addr,
        dir,
        service,
    }
}

/// A slot for Romeo.
pub(super) fn slot(service: &Service, name: &str, size: u64, ty: Option<&str>) -> Slot {
    let mut req = SlotRequest::new(name, size);
    if let Some(t) = ty {
        req = req.with_content_type(t);
    }
    service
        .request_slot(
            &"romeo@montague.tld/garden".parse().unwrap(),
            &req,
            "e2e",
            OffsetDateTime::now_utc(),
        )
        .unwrap()
        .slot
}

/// An HTTP answer read off a raw connection.
#[derive(Debug)]
pub(super) struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request target of a URL (path and query).
pub(super) fn target(url: &Url) -> &str {
    &url[url::Position::BeforePath..]
}

/// Reads one answer (head, then the body up to `Content-Length` or the end).
pub(super) fn read_answer(s: &mut std::net::TcpStream) -> Option<Raw> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut r = Raw {
        status,
        headers,
        body: Vec::new(),
    };
    // 100, 304 and answers to HEAD have no body.
    if status == 100 || status == 304 {
        return Some(r);
    }
    match r
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        Some(n) => {
            r.body.resize(n, 0);
            s.read_exact(&mut r.body).ok()?;
        }
        None => {
            let _ = s.read_to_end(&mut r.body);
        }
    }
    Some(r)
}

/// Sends raw bytes and reads the answer (the request should say `Connection: close`).
pub(super) fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Option<Raw> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    use std::io::Write as _;
    s.write_all(request).ok()?;
    read_answer(&mut s)
}

/// A chunked PUT without Content-Length or Content-Type, as the xmpp-rs `xmpp` crate sends.
fn chunked_put(addr: std::net::SocketAddr, url: &Url, chunks: &[&[u8]]) -> Option<Raw> {
    let mut req = format!(
        "PUT {} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        target(url)
    )
    .into_bytes();
    for c in chunks {
        req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    raw(addr, &req)
}

fn get_with(url: &Url, headers: &[(&str, &str)]) -> Raw {
    let mut req = ureq::get(url.as_str());
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or_default().to_owned();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    Raw {
        status,
        headers,
        body,
    }
}

pub(super) fn stored_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn put_without_content_type_stores_the_bound_type() {
    // Libervia 0.9 PUTs without Content-Type: both reference servers store it; so do we.
    let srv = start(config(), StoreOptions::default(), None);
    let body = b"\x89PNG not really".to_vec();
    let s = slot(
        &srv.service,
        "cat.png",
        body.len() as u64,
        Some("image/png"),
    );
    let put = ureq::put(s.put.as_str()).send_bytes(&body);
    assert_eq!(status(put), 201);
    let got = get_with(&s.get, &[]);
    assert_eq!((got.status, &got.body), (200, &body));
    assert_eq!(got.header("content-type"), Some("image/png"));
    // A different type is still refused (compared by normalised essence).
    let s = slot(&srv.service, "b.png", 3, Some("image/png"));
    let put = ureq::put(s.put.as_str())
        .set("Content-Type", "text/html")
        .send_bytes(b"abc");
    assert_eq!(status(put), 415);
    let put = ureq::put(s.put.as_str())
        .set("Content-Type", "IMAGE/PNG; x=y")
        .send_bytes(b"abc");
    assert_eq!(status(put), 201);
}

#[test]
fn chunked_put_without_length_or_type_is_stored() {
    // What the xmpp-rs `xmpp` crate sends: chunked, no Content-Length, no Content-Type.
    let srv = start(config(), StoreOptions::default(), None);
    let s = slot(&srv.service, "notes.txt", 11, Some("text/plain"));
    let r = chunked_put(srv.addr, &s.put, &[b"hello", b" ", b"world"]).unwrap();
    assert_eq!(r.status, 201, "{r:?}");
    let got = get_with(&s.get, &[]);
    assert_eq!(
        (got.status, got.body.as_slice()),
        (200, &b"hello world"[..])
    );
    assert_eq!(got.header("content-type"), Some("text/plain"));

    // Over the bound size: 413 as soon as it goes over; short: 400; nothing stored either way.
    let long = slot(&srv.service, "long.txt", 4, Some("text/plain"));
    let r = chunked_put(srv.addr, &long.put, &[b"abc", b"de"]).unwrap();
    assert_eq!(r.status, 413, "{r:?}");
    let short = slot(&srv.service, "short.txt", 4, Some("text/plain"));
    let r = chunked_put(srv.addr, &short.put, &[b"abc"]).unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    for u in [&long.get, &short.get] {
        assert_eq!(get_with(u, &[]).status, 404);
    }
    // And the slot is still usable with the right body.
    assert_eq!(
        chunked_put(srv.addr, &short.put, &[b"abcd"])
            .unwrap()
            .status,
        201
    );
}

#[test]
fn http10_and_expect_continue_puts_still_work() {
    let srv = start(config(), StoreOptions::default(), None);
    let s = slot(&srv.service, "a.txt", 3, Some("text/plain"));
    let req = format!(
        "PUT {} HTTP/1.0\r\nHost: {}\r\nContent-Length: 3\r\n\r\nabc",
        target(&s.put),
        srv.addr
    );
    assert_eq!(raw(srv.addr, req.as_bytes()).unwrap().status, 201);
    // Expect: 100-continue: the client waits for 100, then sends.
    let s = slot(&srv.service, "b.txt", 3, Some("text/plain"));
    let mut c = std::net::TcpStream::connect(srv.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    use std::io::Write as _;
    write!(
        c,
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 3\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        target(&s.put),
        srv.addr
    )
    .unwrap();
    assert_eq!(read_answer(&mut c).unwrap().status, 100);
    c.write_all(b"abc").unwrap();
    assert_eq!(read_answer(&mut c).unwrap().status, 201);
}

#[test]
fn get_links_end_with_the_file_name_and_serve_ranges_and_validators() {
    let srv = start(config(), StoreOptions::default(), None);
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let s = slot(
        &srv.service,
        "Ромео и Джульетта.mp4",
        1000,
        Some("video/mp4"),
    );
    // The link has no query and ends with the percent-encoded name (and its extension).
    assert_eq!(s.get.query(), None);
    assert!(
        s.get
            .as_str()
            .ends_with("%20%D0%94%D0%B6%D1%83%D0%BB%D1%8C%D0%B5%D1%82%D1%82%D0%B0.mp4"),
        "{}",
        s.get
    );
    let put = ureq::put(s.put.as_str())
        .set("Content-Type", "video/mp4")
        .send_bytes(&body);
    assert_eq!(status(put), 201);

    let whole = get_with(&s.get, &[]);
    assert_eq!((whole.status, &whole.body), (200, &body));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let csp = whole.header("content-security-policy").unwrap();
    assert!(
        csp.contains("media-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(whole
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));
    let etag = whole.header("etag").unwrap().to_owned();
    let modified = whole.header("last-modified").unwrap().to_owned();

    // Conversations resumes with `Range: bytes=N-`.
    let tail = get_with(&s.get, &[("Range", "bytes=600-")]);
    assert_eq!((tail.status, &tail.body[..]), (206, &body[600..]));
    assert_eq!(tail.header("content-range"), Some("bytes 600-999/1000"));
    let mid = get_with(&s.get, &[("Range", "bytes=10-19")]);
    assert_eq!((mid.status, &mid.body[..]), (206, &body[10..20]));
    let suffix = get_with(&s.get, &[("Range", "bytes=-5")]);
    assert_eq!((suffix.status, &suffix.body[..]), (206, &body[995..]));
    let past = get_with(&s.get, &[("Range", "bytes=1000-")]);
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */1000"));
    // Several ranges: the whole file. An If-Range for another version: the whole file.
    assert_eq!(get_with(&s.get, &[("Range", "bytes=0-1,5-6")]).status, 200);
    let stale = get_with(
        &s.get,
        &[("Range", "bytes=600-"), ("If-Range", "\"other\"")],
    );
    assert_eq!((stale.status, stale.body.len()), (200, 1000));
    let fresh = get_with(
        &s.get,
        &[("Range", "bytes=600-"), ("If-Range", etag.as_str())],
    );
    assert_eq!(fresh.status, 206);

    // Validators: 304.
    let inm = get_with(&s.get, &[("If-None-Match", etag.as_str())]);
    assert_eq!((inm.status, inm.body.len()), (304, 0));
    assert_eq!(inm.header("etag"), Some(etag.as_str()));
    let ims = get_with(&s.get, &[("If-Modified-Since", modified.as_str())]);
    assert_eq!(ims.status, 304);
    let old = get_with(
        &s.get,
        &[("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")],
    );
    assert_eq!(old.status, 200);
    assert_eq!(get_with(&s.get, &[("If-None-Match", "\"x\"")]).status, 200);

    // HEAD: the headers of a GET, no body.
    let mut c = std::net::TcpStream::connect(srv.addr).unwrap();
    use std::io::Write as _;
    write!(
        c,
        "HEAD {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target(&s.get),
        srv.addr
    )
    .unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8(answer).unwrap();
    let (head_text, rest) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(rest, "", "no body after HEAD");
    let head = Raw {
        status: head_text.split(' ').nth(1).unwrap().parse().unwrap(),
        headers: head_text
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        body: Vec::new(),
    };
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1000"));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
}

#[test]
fn inline_types_are_configurable_and_never_html_svg_or_xml() {
    let opts = StoreOptions {
        inline: xmpp_upload::checked::InlinePolicy::new(["image/*", "text/*", "application/xml"]),
        ..StoreOptions::default()
    };
    let srv = start(config(), opts, None);
    for (name, ty, inline) in [
        ("a.png", "image/png", true),
        ("a.txt", "text/plain", true),
        ("a.svg", "image/svg+xml", false),
        ("a.html", "text/html", false),
        ("a.xml", "application/xml", false),
        ("b.xml", "text/xml", false),
        ("a.xhtml", "application/xhtml+xml", false),
        ("a.mp4", "video/mp4", false),
    ] {
        let s = slot(&srv.service, name, 1, Some(ty));
        assert_eq!(
            status(ureq::put(s.put.as_str()).send_bytes(b"x")),
            201,
            "{ty}"
        );
        let got = get_with(&s.get, &[]);
        let d = got.header("content-disposition").unwrap();
        assert_eq!(d.starts_with("inline"), inline, "{ty}: {d}");
        assert_eq!(d.starts_with("attachment"), !inline, "{ty}: {d}");
        if !inline {
            assert!(d.ends_with(&format!("filename*=UTF-8''{name}")), "{d}");
        }
    }
}
