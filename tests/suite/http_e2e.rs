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
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::SlotService;

use super::common::config;
use super::http_store::{serve, HttpStoreConfig, Service};

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

fn status(r: Result<ureq::Response, ureq::Error>) -> u16 {
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
