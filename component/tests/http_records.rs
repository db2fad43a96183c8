//! The HTTP store's hooks wired to the records, as `app.rs` wires them: an upload is recorded
//! under the owner bound into its PUT URL even when this process never saw the slot, and a
//! PUT of a slot issued before its owner's account was removed is refused (403) and stores
//! nothing. One test per binary: the hooks are set once per process.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test binary: pedantic lints and API reachability are for the library"
)]

use std::sync::Arc;

use xmpp_upload::jid::BareJid;
use xmpp_upload::minidom::Element;
use xmpp_upload::service::{Inventory, Outcome, RetentionPolicy};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::time::{Duration, OffsetDateTime};
use xmpp_upload::{ServiceConfig, SlotService};
use xmpp_upload_component::http_store::{self, HttpStoreConfig};
use xmpp_upload_component::metrics::Metrics;
use xmpp_upload_component::retention::{Objects, Records, Retention};

fn slot(svc: &http_store::Service, user: &str, name: &str, now: OffsetDateTime) -> String {
    let iq: Element = format!(
        "<iq xmlns='jabber:client' type='get' id='q' from='{user}/r' to='upload.localhost'>\
         <request xmlns='urn:xmpp:http:upload:0' filename='{name}' size='5' \
         content-type='text/plain'/></iq>"
    )
    .parse()
    .unwrap();
    let a = svc.process(&iq, now);
    assert!(matches!(a.outcome, Outcome::Issued(_)), "{:?}", a.outcome);
    let reply = a.reply.unwrap();
    let s = reply.children().find(|c| c.name() == "slot").unwrap();
    let put = s.children().find(|c| c.name() == "put").unwrap();
    put.attr("url").unwrap().to_owned()
}

fn put(url: &str) -> u16 {
    let body = url.to_owned();
    std::thread::spawn(move || {
        match ureq::put(&body)
            .set("Content-Type", "text/plain")
            .send_bytes(b"hello")
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("PUT: {e}"),
        }
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_carry_the_urls_owner_and_removed_accounts_cannot_upload() {
    let dir = std::env::temp_dir().join(format!("xu-http-records-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base: xmpp_upload::url::Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let store = SignedUrlStore::new(base.clone(), *b"test storage key, 32 bytes long.")
        .allow_insecure_http(true);
    let svc = Arc::new(
        SlotService::try_new(
            ServiceConfig::new(
                "upload.localhost".parse().unwrap(),
                *b"test service secret of 32 bytes!",
            )
            .put_ttl(Duration::seconds(300)),
            store,
        )
        .unwrap(),
    );
    let records = Records::memory();
    let r = Arc::new(Retention {
        pending: records.pending(),
        records: records.clone(),
        objects: Objects::Local(dir.clone()),
        policy: RetentionPolicy::new(),
        metrics: Arc::new(Metrics::default()),
        fallback_owner: "upload.localhost".parse().unwrap(),
        put_ttl: Duration::seconds(300),
        orphan_grace: Duration::hours(24),
        started: OffsetDateTime::now_utc(),
    });
    // The hooks as app.rs sets them.
    let (r1, r2) = (r.clone(), r.clone());
    http_store::set_hooks(http_store::Hooks {
        stored: Arc::new(move |key, bytes, ty, owner| r1.stored_local(key, bytes, ty, owner)),
        answered: Arc::new(|_| {}),
        log: |_| {},
        may_store: Some(Arc::new(move |owner, expires| {
            let r = r2.clone();
            Box::pin(async move { r.may_store(owner.as_ref(), expires).await })
        })),
    });
    tokio::spawn(http_store::serve(
        listener,
        svc.clone(),
        HttpStoreConfig {
            store_dir: dir.clone(),
            base_url: base,
            stable_base: None,
            log: false,
        },
    ));
    let Records::Memory(m) = &records else {
        unreachable!()
    };
    let romeo: BareJid = "romeo@localhost".parse().unwrap();
    let juliet: BareJid = "juliet@localhost".parse().unwrap();
    let now = OffsetDateTime::now_utc();
    // No slot in this process's table (issued elsewhere): recorded under Romeo all the same.
    let url = slot(&svc, "romeo@localhost", "a.txt", now);
    assert_eq!(put(&url), 201);
    assert_eq!(m.files_of(&romeo).unwrap().len(), 1);
    assert!(m
        .files_of(&"upload.localhost".parse().unwrap())
        .unwrap()
        .is_empty());
    // Juliet's slot, then her account is removed: the PUT is refused, nothing stored.
    let url = slot(
        &svc,
        "juliet@localhost",
        "b.txt",
        now - Duration::seconds(5),
    );
    r.remove_account(&juliet).await.unwrap();
    assert_eq!(put(&url), 403);
    assert!(m.files_of(&juliet).unwrap().is_empty());
    let key_dir = url.split('/').nth(3).unwrap().to_owned();
    assert!(!dir.join(&key_dir).exists());
    // A slot issued after the removal works.
    let later = OffsetDateTime::now_utc() + Duration::seconds(2);
    let url = slot(&svc, "juliet@localhost", "c.txt", later);
    assert_eq!(put(&url), 201);
    assert_eq!(m.files_of(&juliet).unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
