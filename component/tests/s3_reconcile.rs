//! The S3 reconciliation against a real S3 server (s3s-fs 0.14.1, which checks SigV4): a PUT
//! that ends after the single check at the end of its slot's window is recorded under the
//! slot's owner by the next ListObjectsV2 walk, and an object no slot explains is deleted
//! after the grace.
//!
//! Needs the s3s-fs binary: `cargo install s3s-fs@0.14.1 --locked --features binary`, then
//! `XMPP_UPLOAD_TEST_S3S_FS=/path/to/s3s-fs cargo test -p xmpp-upload-component --test
//! s3_reconcile -- --include-ignored`.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test binary: pedantic lints and API reachability are for the library"
)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use xmpp_upload::jid::BareJid;
use xmpp_upload::minidom::Element;
use xmpp_upload::service::{Inventory, Outcome, RetentionPolicy};
use xmpp_upload::storage::s3::{S3Config, S3Store};
use xmpp_upload::time::{Duration, OffsetDateTime};
use xmpp_upload::{ServiceConfig, SlotService};
use xmpp_upload_component::metrics::Metrics;
use xmpp_upload_component::retention::{
    s3_object_size, Objects, PendingUpload, Records, Retention, S3Lister,
};

struct Server(std::process::Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start_s3s() -> (Server, u16) {
    let bin = match std::env::var("XMPP_UPLOAD_TEST_S3S_FS") {
        Ok(b) if !b.is_empty() => b,
        _ => panic!("XMPP_UPLOAD_TEST_S3S_FS is not set: this test needs s3s-fs"),
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let data = std::env::temp_dir().join(format!("xu-s3s-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(data.join("uploads")).unwrap();
    let child = std::process::Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "AKTEST", "--secret-key", "test-secret-key"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("s3s-fs starts");
    let server = Server(child, data);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < StdDuration::from_secs(20),
            "s3s-fs did not listen"
        );
        std::thread::sleep(StdDuration::from_millis(50));
    }
    (server, port)
}

fn put(url: &str, headers: &[(String, String)], body: &[u8]) -> u16 {
    let mut req = ureq::put(url)
        .set("Content-Type", "application/octet-stream")
        .set("Content-Length", &body.len().to_string());
    for (n, v) in headers {
        req = req.set(n, v);
    }
    match req.send_bytes(body) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("PUT: {e}"),
    }
}

/// The PUT URL and headers of a slot reply.
fn put_of(reply: &Element) -> (String, Vec<(String, String)>) {
    let slot = reply.children().find(|c| c.name() == "slot").unwrap();
    let put = slot.children().find(|c| c.name() == "put").unwrap();
    let headers = put
        .children()
        .map(|h| (h.attr("name").unwrap().to_owned(), h.text()))
        .collect();
    (put.attr("url").unwrap().to_owned(), headers)
}

#[ignore = "needs s3s-fs: set XMPP_UPLOAD_TEST_S3S_FS"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_ends_after_the_check_is_recorded_by_the_bucket_walk() {
    let (_server, port) = start_s3s();
    let store = S3Store::new(S3Config {
        endpoint: format!("http://127.0.0.1:{port}").parse().unwrap(),
        bucket: "uploads".into(),
        region: "us-east-1".into(),
        access_key_id: "AKTEST".into(),
        secret_access_key: "test-secret-key".into(),
        session_token: None,
        path_style: true,
    })
    .allow_insecure_http(true)
    .key_prefix("xmpp/");
    let store = Arc::new(store);
    let records = Records::memory();
    let r = Retention {
        pending: records.pending(),
        records: records.clone(),
        objects: Objects::S3(store.clone()),
        policy: RetentionPolicy::new(),
        metrics: Arc::new(Metrics::default()),
        fallback_owner: "upload.localhost".parse().unwrap(),
        put_ttl: Duration::seconds(300),
        orphan_grace: Duration::hours(24),
        started: OffsetDateTime::now_utc() - Duration::days(1),
    };
    let svc = SlotService::try_new(
        ServiceConfig::new(
            "upload.localhost".parse().unwrap(),
            *b"test service secret of 32 bytes!",
        ),
        store.clone(),
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let iq: Element = "<iq xmlns='jabber:client' type='get' id='q1' from='romeo@localhost/r' \
         to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='late.bin' \
         size='11' content-type='application/octet-stream'/></iq>"
        .parse()
        .unwrap();
    let answer = svc.process(&iq, now);
    let Outcome::Issued(info) = &answer.outcome else {
        panic!("{:?}", answer.outcome)
    };
    let key = info.object_key.clone();
    // The slot, as the session keeps it; its window is taken as over (the check runs now).
    r.pending.insert(
        key.clone(),
        PendingUpload {
            owner: info.requester.to_bare(),
            size: info.size,
            content_type: info.content_type.clone(),
            issued: now,
            until: Instant::now(),
        },
    );
    r.confirm_s3_uploads().await;
    let romeo: BareJid = "romeo@localhost".parse().unwrap();
    let Records::Memory(m) = &records else {
        unreachable!()
    };
    assert!(
        m.files_of(&romeo).unwrap().is_empty(),
        "nothing uploaded yet"
    );
    // The PUT (started before its URL expired) ends only now.
    let (url, headers) = put_of(answer.reply.as_ref().unwrap());
    assert_eq!(put(&url, &headers, b"late upload"), 200);
    // An object no slot explains: a slot this process never kept (another service).
    let iq2: Element = "<iq xmlns='jabber:client' type='get' id='q2' from='mallory@localhost/r' \
         to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='stray.bin' \
         size='5' content-type='application/octet-stream'/></iq>"
        .parse()
        .unwrap();
    let a2 = svc.process(&iq2, now);
    let Outcome::Issued(i2) = &a2.outcome else {
        panic!("{:?}", a2.outcome)
    };
    let stray = i2.object_key.clone();
    let (url2, headers2) = put_of(a2.reply.as_ref().unwrap());
    assert_eq!(put(&url2, &headers2, b"stray"), 200);

    let lister = S3Lister(store.clone());
    let report = r
        .reconcile(&lister, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        (report.listed, report.recorded, report.waiting),
        (2, 1, 1),
        "{report:?}"
    );
    let files = m.files_of(&romeo).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].key.as_str(), files[0].size), (key.as_str(), 11));
    // Past the grace, the object no slot explains is deleted; Romeo's stays.
    let report = r
        .reconcile(&lister, OffsetDateTime::now_utc() + Duration::hours(25))
        .await
        .unwrap();
    assert_eq!((report.known, report.orphans_deleted), (1, 1), "{report:?}");
    assert_eq!(s3_object_size(store.clone(), stray).await.unwrap(), None);
    assert_eq!(s3_object_size(store.clone(), key).await.unwrap(), Some(11));
}
