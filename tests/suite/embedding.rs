//! The embedders' API: the two-phase path for hosts that own their quota store, outcomes,
//! validated configuration, the minimum charge, and hostile payload depth.

use std::collections::HashMap;
use std::sync::Arc;

use jid::BareJid;
use minidom::Element;
use time::Duration;
use xmpp_upload::service::{
    Begin, ChargeError, ConfigError, MemoryLedger, Outcome, Protocol, QuotaExceeded, QuotaLedger,
    QuotaLimits, QuotaScope, MAX_PAYLOAD_DEPTH,
};
use xmpp_upload::stanza::Dialect;
use xmpp_upload::storage::external::{ExternalStore, Scheme};
use xmpp_upload::storage::s3::{S3Config, S3Store};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::storage::{StorageBackend, StorageError};
use xmpp_upload::{ServiceConfig, SlotError, SlotService};

use super::common::*;

/// An S3 store with AWS's documentation credentials.
fn s3_store(bucket: &str, endpoint: &str, path_style: bool) -> S3Store {
    S3Store::new(S3Config {
        endpoint: endpoint.parse().unwrap(),
        bucket: bucket.into(),
        region: "eu-west-1".into(),
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
        path_style,
    })
}

fn request(id: &str, from: &str, size: u64) -> Element {
    parse(&format!(
        "<iq type='get' id='{id}' from='{from}' to='upload.montague.tld'>\
         <request xmlns='urn:xmpp:http:upload:0' filename='f{id}.bin' size='{size}' \
         content-type='application/octet-stream'/></iq>"
    ))
}

#[test]
fn two_phase_issues_after_the_host_charges() {
    let svc = SlotService::new(config().daily_quota(1000).min_charge(1), store());
    let Begin::Charge(pending) = svc.begin(&request("a", "romeo@montague.tld/orchard", 700), now())
    else {
        panic!("a slot under a quota needs a charge");
    };
    let c = pending.charge().clone();
    assert_eq!(c.user, "romeo@montague.tld".parse::<BareJid>().unwrap());
    assert_eq!((c.bytes, c.now), (700, now()));
    assert_eq!(c.limits.per_user, Some(1000));
    assert_eq!(c.limits.window, Duration::DAY);
    // The Debug output of a pending slot never shows its URLs.
    assert!(!format!("{pending:?}").contains("https://"), "{pending:?}");
    let answer = pending.complete(Ok(()));
    let reply = answer.reply.unwrap();
    assert_eq!(reply.attr("type"), Some("result"));
    assert_eq!(reply.attr("id"), Some("a"));
    assert!(reply.get_child("slot", "urn:xmpp:http:upload:0").is_some());
    let Outcome::Issued(info) = answer.outcome else {
        panic!()
    };
    assert_eq!(info.requester.to_string(), "romeo@montague.tld/orchard");
    assert_eq!(info.size, Some(700));
    assert_eq!(info.charged, 700);
    assert_eq!(
        info.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(info.protocol, Protocol::Upload(Dialect::V0));
    assert!(info.object_key.ends_with("/fa.bin"), "{}", info.object_key);
    // The configured ledger was never used by the two-phase path.
    assert_eq!(
        svc.handle(&request("b", "romeo@montague.tld/orchard", 1000), now())
            .unwrap()
            .attr("type"),
        Some("result")
    );
}

#[test]
fn a_host_refusal_and_a_host_failure() {
    let svc = SlotService::new(config().daily_quota(1000), store());
    let begin = || match svc.begin(&parse(&legacy_req()), now()) {
        Begin::Charge(p) => p,
        Begin::Done(a) => panic!("{a:?}"),
    };
    // Refused by the host with a retry time: XEP-0363 <retry/> in the request's dialect.
    let retry = now() + Duration::hours(3);
    let answer = begin().complete(Err(QuotaExceeded::new(QuotaScope::User, Some(retry)).into()));
    let reply = answer.reply.unwrap();
    assert_eq!(
        error_of(&reply),
        ("wait".to_owned(), "resource-constraint".to_owned())
    );
    let r = error_payload(&reply).unwrap();
    assert!(r.is("retry", "urn:xmpp:http:upload"), "{r:?}");
    assert_eq!(r.attr("stamp"), Some("2017-12-04T02:42:05Z"));
    // The request is echoed in the error.
    assert!(reply.get_child("request", "urn:xmpp:http:upload").is_some());
    assert!(matches!(
        answer.outcome,
        Outcome::Refused {
            error: SlotError::QuotaExceeded(QuotaExceeded {
                scope: QuotaScope::User,
                ..
            }),
            ..
        }
    ));

    // The host's database is down: internal-server-error, the cause only in the outcome.
    let cause = std::io::Error::other("db at 10.0.0.7:5432: password authentication failed");
    let answer = begin().complete(Err(ChargeError::unavailable(cause)));
    let reply = answer.reply.unwrap();
    assert_eq!(
        error_of(&reply),
        ("wait".to_owned(), "internal-server-error".to_owned())
    );
    let xml = String::from(&reply);
    assert!(
        !xml.contains("10.0.0.7") && !xml.contains("password"),
        "{xml}"
    );
    let Outcome::Refused { error, .. } = &answer.outcome else {
        panic!()
    };
    let source = std::error::Error::source(error).expect("the ledger's cause");
    assert!(source.to_string().contains("10.0.0.7"));
    // The outcome's log line walks the chain.
    assert!(answer
        .outcome
        .to_string()
        .contains("password authentication failed"));
}

fn legacy_req() -> String {
    "<iq type='get' id='l1' from='juliet@montague.tld/balcony' to='upload.montague.tld'>\
     <request xmlns='urn:xmpp:http:upload'><filename>a.txt</filename><size>10</size></request></iq>"
        .to_owned()
}

#[test]
fn outcomes_for_every_kind_of_stanza() {
    let svc = service();
    let disco = parse(
        "<iq type='get' id='d' from='romeo@montague.tld/a' to='upload.montague.tld'>\
         <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert_eq!(svc.process(&disco, now()).outcome, Outcome::Discovery);
    let msg = parse(
        "<message from='romeo@montague.tld/a' to='upload.montague.tld'><body>hi</body></message>",
    );
    let a = svc.process(&msg, now());
    assert_eq!((a.reply, a.outcome), (None, Outcome::NotForThisService));
    let ping = parse(
        "<iq type='get' id='p' from='romeo@montague.tld/a' to='upload.montague.tld'>\
         <ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(
        svc.process(&ping, now()).outcome,
        Outcome::NotForThisService
    );
    let too_big = parse(&format!(
        "<iq type='get' id='t' from='romeo@montague.tld/a' to='upload.montague.tld'>\
         <request xmlns='eu:siacs:conversations:http:upload'><filename>a</filename>\
         <size>{}</size></request></iq>",
        u64::MAX
    ));
    let a = svc.process(&too_big, now());
    assert_eq!(
        a.outcome,
        Outcome::Refused {
            requester: Some("romeo@montague.tld/a".parse().unwrap()),
            protocol: Some(Protocol::Upload(Dialect::Siacs)),
            error: SlotError::TooLarge {
                max: xmpp_upload::service::DEFAULT_MAX_FILE_SIZE
            },
        }
    );
    // p1: upload by MD5, then a download by file ID from another user.
    let up = parse(
        "<iq type='set' id='u1' from='romeo@montague.tld/a' to='upload.montague.tld'>\
         <query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog==' size='5' name='x.txt'/></iq>",
    );
    let a = svc.process(&up, now());
    let Outcome::Issued(info) = &a.outcome else {
        panic!("{a:?}")
    };
    assert_eq!(info.protocol, Protocol::FileTransferUpload);
    let fileid = a
        .reply
        .as_ref()
        .unwrap()
        .children()
        .next()
        .unwrap()
        .attr("fileid")
        .unwrap()
        .to_owned();
    let down = parse(&format!(
        "<iq type='get' id='d1' from='juliet@montague.tld/b' to='upload.montague.tld'>\
         <query xmlns='p1:http-file-transfer' fileid='{fileid}'/></iq>"
    ));
    match svc.process(&down, now()).outcome {
        Outcome::Resolved {
            requester,
            object_key,
            protocol,
        } => {
            assert_eq!(requester.to_string(), "juliet@montague.tld/b");
            assert_eq!(object_key, info.object_key);
            assert_eq!(protocol, Protocol::FileTransferDownload);
        }
        other => panic!("{other:?}"),
    }
}

/// One row per refusal: each names its problem, and `new` would have taken it silently.
#[test]
fn refused_configurations() {
    let jid = || "upload.montague.tld".parse().unwrap();
    let good = *b"service secret: 32 random bytes!";
    let signed = |base: &str, key: &[u8]| SignedUrlStore::new(base.parse().unwrap(), key.to_vec());
    let ok_store = || {
        signed(
            "https://files.montague.tld/",
            b"store key: 32 bytes of entropy!!",
        )
    };
    let s3 = |bucket: &str, endpoint: &str| s3_store(bucket, endpoint, true);
    fn check<S: StorageBackend>(
        row: &str,
        config: ServiceConfig,
        store: S,
        expected: impl Fn(&ConfigError) -> bool,
    ) {
        match SlotService::try_new(config, store) {
            Err(e) => {
                assert!(expected(&e), "{row}: {e:?}");
                // Every message names the problem and no secret.
                let text = e.to_string();
                assert!(
                    !text.contains("secret: 32") && !text.contains("hunter2"),
                    "{text}"
                );
            }
            Ok(_) => panic!("{row}: accepted"),
        }
    }
    use ConfigError as C;
    use StorageError as E;
    check(
        "short secret",
        ServiceConfig::new(jid(), "hunter2"),
        ok_store(),
        |e| *e == C::SecretTooShort { len: 7, min: 16 },
    );
    check(
        "empty secret",
        ServiceConfig::new(jid(), ""),
        ok_store(),
        |e| *e == C::SecretTooShort { len: 0, min: 16 },
    );
    check(
        "short previous secret",
        ServiceConfig::new(jid(), good).previous_secret("old"),
        ok_store(),
        |e| *e == C::PreviousSecretTooShort { len: 3, min: 16 },
    );
    check(
        "zero put ttl",
        ServiceConfig::new(jid(), good).put_ttl(Duration::ZERO),
        ok_store(),
        |e| *e == C::NonPositiveTtl("put_ttl"),
    );
    check(
        "negative get ttl",
        ServiceConfig::new(jid(), good).get_ttl(Duration::seconds(-5)),
        ok_store(),
        |e| *e == C::NonPositiveTtl("get_ttl"),
    );
    check(
        "nothing served",
        ServiceConfig::new(jid(), good)
            .dialects([])
            .file_transfer(false),
        ok_store(),
        |e| *e == C::NothingServed,
    );
    check(
        "stable base with credentials",
        ServiceConfig::new(jid(), good)
            .stable_get_base("https://u:p@h.example/s/".parse().unwrap()),
        ok_store(),
        |e| *e == C::StableGetBase(E::BaseUrlCredentials),
    );
    check(
        "empty store key",
        ServiceConfig::new(jid(), good),
        signed("https://files.montague.tld/", b""),
        |e| *e == C::Storage(E::KeyTooShort { len: 0, min: 16 }),
    );
    check(
        "store base with credentials",
        ServiceConfig::new(jid(), good),
        signed("https://user:pw@files.montague.tld/", &good),
        |e| *e == C::Storage(E::BaseUrlCredentials),
    );
    check(
        "store base with a query",
        ServiceConfig::new(jid(), good),
        signed("https://files.montague.tld/?a=b", &good),
        |e| *e == C::Storage(E::BaseUrlQueryOrFragment),
    );
    check(
        "store base over http",
        ServiceConfig::new(jid(), good),
        signed("http://files.montague.tld/", &good),
        |e| *e == C::Storage(E::InsecureBaseUrl),
    );
    check(
        "store base that cannot be a base",
        ServiceConfig::new(jid(), good),
        signed("mailto:files@montague.tld", &good),
        |e| *e == C::Storage(E::InvalidBaseUrl),
    );
    check(
        "short external secret",
        ServiceConfig::new(jid(), good),
        ExternalStore::new(
            "https://up.montague.tld/".parse().unwrap(),
            "mysecret",
            Scheme::V2,
        ),
        |e| *e == C::Storage(E::KeyTooShort { len: 8, min: 16 }),
    );
    check(
        "S3 bucket S3 refuses",
        ServiceConfig::new(jid(), good),
        s3("Chat_Uploads", "https://s3.eu-west-1.amazonaws.com"),
        |e| matches!(e, C::Storage(E::InvalidS3Config(p)) if p.starts_with("bucket")),
    );
    check(
        "S3 endpoint with a fragment",
        ServiceConfig::new(jid(), good),
        s3("chat-uploads", "https://s3.example/#x"),
        |e| *e == C::Storage(E::BaseUrlQueryOrFragment),
    );
    // And the good configuration passes.
    assert!(SlotService::try_new(ServiceConfig::new(jid(), good), ok_store()).is_ok());
    assert!(SlotService::try_new(
        ServiceConfig::new(jid(), good),
        s3("chat-uploads", "https://s3.eu-west-1.amazonaws.com")
    )
    .is_ok());
}

#[test]
fn zero_byte_slots_are_bounded_by_the_minimum_charge() {
    let svc = SlotService::new(config().daily_quota(100_000), store());
    let granted = (0..10_000)
        .filter(|i| {
            let iq = request(&format!("z{i}"), "romeo@montague.tld/a", 0);
            svc.handle(&iq, now()).unwrap().attr("type") == Some("result")
        })
        .count();
    // 4 KiB each: 24 fit under 100 kB.
    assert_eq!(granted, 100_000 / 4096);
    // Configurable.
    let svc = SlotService::new(config().daily_quota(100_000).min_charge(50_000), store());
    let granted = (0..10)
        .filter(|i| {
            let iq = request(&format!("y{i}"), "romeo@montague.tld/a", 0);
            svc.handle(&iq, now()).unwrap().attr("type") == Some("result")
        })
        .count();
    assert_eq!(granted, 2);
}

/// An asynchronous quota store, as a host backed by a database has: check and record under
/// one lock, with awaits (round trips) inside.
#[derive(Default)]
struct AsyncStore {
    state: tokio::sync::Mutex<(HashMap<BareJid, u64>, u64)>,
}

impl AsyncStore {
    async fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        limits: &QuotaLimits,
    ) -> Result<(), ChargeError> {
        let mut guard = self.state.lock().await;
        tokio::task::yield_now().await; // SELECT … FOR UPDATE
        let (users, total) = &mut *guard;
        let used = users.get(user).copied().unwrap_or(0);
        if limits.global.is_some_and(|g| *total + bytes > g) {
            return Err(QuotaExceeded::new(QuotaScope::Global, None).into());
        }
        if limits.per_user.is_some_and(|l| used + bytes > l) {
            return Err(QuotaExceeded::new(QuotaScope::User, None).into());
        }
        tokio::task::yield_now().await; // UPDATE …
        users.insert(user.clone(), used + bytes);
        *total += bytes;
        Ok(())
    }
}

#[test]
fn eight_tasks_race_the_async_path_and_never_exceed_the_limits() {
    const PER_USER: u64 = 50_000;
    const GLOBAL: u64 = 120_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let svc = Arc::new(SlotService::new(
        config()
            .daily_quota(PER_USER)
            .global_daily_quota(GLOBAL)
            .min_charge(1),
        store(),
    ));
    let db = Arc::new(AsyncStore::default());
    let admitted: Vec<(String, u64)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let (svc, db) = (svc.clone(), db.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..60u64 {
                    // Three users shared by all tasks; sizes vary.
                    let user = format!("u{}@montague.tld/t{t}", (t + i) % 3);
                    let size = 500 + (t * 7919 + i * 104_729) % 3000;
                    let iq = request(&format!("{t}-{i}"), &user, size);
                    let answer = match svc.begin(&iq, now()) {
                        Begin::Done(a) => a,
                        Begin::Charge(p) => {
                            let c = p.charge().clone();
                            let r = db.charge(&c.user, c.bytes, &c.limits).await;
                            p.complete(r)
                        }
                    };
                    if let Outcome::Issued(info) = answer.outcome {
                        assert_eq!(answer.reply.unwrap().attr("type"), Some("result"));
                        mine.push((info.requester.to_bare().to_string(), info.charged));
                    }
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let total: u64 = admitted.iter().map(|(_, b)| b).sum();
    assert!(total <= GLOBAL, "{total}");
    for u in 0..3 {
        let user = format!("u{u}@montague.tld");
        let used: u64 = admitted
            .iter()
            .filter(|(j, _)| *j == user)
            .map(|(_, b)| b)
            .sum();
        assert!(used <= PER_USER, "{user}: {used}");
    }
    // The limits were reached, not merely respected by refusing everything.
    assert!(total > GLOBAL - 3500, "{total}");
}

#[test]
fn memory_ledger_is_usable_directly_and_refuses_in_its_scope() {
    let l = MemoryLedger::new();
    let u: BareJid = "a@b.c".parse().unwrap();
    let limits = QuotaLimits::daily(Some(10), Some(15));
    l.charge(&u, 10, now(), &limits).unwrap();
    let Err(ChargeError::Exceeded(e)) = l.charge(&u, 1, now(), &limits) else {
        panic!()
    };
    assert_eq!(e.scope, QuotaScope::User);
    assert_eq!(e.retry_at, Some(now() + Duration::DAY));
    let v: BareJid = "v@b.c".parse().unwrap();
    l.charge(&v, 5, now(), &limits).unwrap();
    let Err(ChargeError::Exceeded(e)) = l.charge(&v, 1, now(), &limits) else {
        panic!()
    };
    assert_eq!(e.scope, QuotaScope::Global);
}

/// A payload nested `depth` levels inside the `<request/>`, built and dropped on a thread
/// with a large stack (minidom's own `Drop` recurses); `handle` runs on a 2 MiB stack, the
/// size of a tokio worker's.
fn handle_deep(depth: usize) -> Element {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || {
            let mut inner = Element::bare("x", "urn:example:deep");
            for _ in 0..depth {
                let mut outer = Element::bare("x", "urn:example:deep");
                outer.append_child(inner);
                inner = outer;
            }
            let mut request = Element::bare("request", "urn:xmpp:http:upload:0");
            request.set_attr(
                minidom::rxml::Namespace::NONE,
                minidom::rxml::NcName::try_from("filename").unwrap(),
                "a.txt",
            );
            request.append_child(inner);
            let mut iq = parse(
                "<iq type='get' id='deep' from='romeo@montague.tld/a' to='upload.montague.tld'/>",
            );
            iq.append_child(request);
            let svc = service();
            std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn_scoped(s, || svc.handle(&iq, now()).unwrap())
                    .unwrap()
                    .join()
                    .unwrap()
            })
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_payloads_are_refused_on_a_small_stack_without_echo() {
    for depth in [MAX_PAYLOAD_DEPTH, 100_000] {
        let reply = handle_deep(depth);
        assert_eq!(
            error_of(&reply),
            ("modify".to_owned(), "bad-request".to_owned()),
            "{depth}"
        );
        assert!(reply
            .get_child("request", "urn:xmpp:http:upload:0")
            .is_none());
    }
}

#[test]
fn error_echo_is_shallow_and_keeps_legacy_children() {
    let svc = service();
    let iq = parse(
        "<iq type='get' id='e' from='romeo@montague.tld/a' to='upload.montague.tld'>\
         <request xmlns='urn:xmpp:http:upload'><filename>../x</filename><size>5</size>\
         <content-type>text/plain</content-type></request></iq>",
    );
    let reply = svc.handle(&iq, now()).unwrap();
    let echo = reply.get_child("request", "urn:xmpp:http:upload").unwrap();
    assert_eq!(
        echo.get_child("filename", "urn:xmpp:http:upload")
            .unwrap()
            .text(),
        "../x"
    );
    assert_eq!(echo.children().count(), 3);
}

#[test]
fn s3_bucket_error_names_the_bucket_rule() {
    let store = s3_store("Chat_Uploads", "https://s3.eu-west-1.amazonaws.com", false);
    // `new` takes it; the request is refused and the host learns why.
    let svc = SlotService::new(config(), store);
    let answer = svc.process(&request("s", "romeo@montague.tld/a", 5), now());
    let reply = answer.reply.unwrap();
    assert_eq!(
        error_of(&reply),
        ("wait".to_owned(), "internal-server-error".to_owned())
    );
    let line = answer.outcome.to_string();
    assert!(line.contains("bucket: only lowercase letters"), "{line}");
}

#[test]
fn s3_needs_a_declared_size_and_says_so_as_bad_request() {
    let store = s3_store("chat-uploads", "https://s3.eu-west-1.amazonaws.com", false);
    let svc = SlotService::new(config(), store);
    // ProcessOne's upload by MD5 alone: a presigned PUT cannot cap its size.
    let up = parse(
        "<iq type='set' id='u1' from='romeo@montague.tld/orchard' to='upload.montague.tld'>\
         <query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog=='/></iq>",
    );
    let answer = svc.process(&up, now());
    assert_eq!(
        error_of(answer.reply.as_ref().unwrap()),
        ("modify".to_owned(), "bad-request".to_owned())
    );
    assert!(matches!(
        answer.outcome,
        Outcome::Refused {
            error: SlotError::Storage(StorageError::SizeRequired),
            ..
        }
    ));
}

#[test]
fn debug_output_never_shows_a_signed_query_or_path_capability() {
    let svc = service();
    let req =
        xmpp_upload::stanza::upload::SlotRequest::new("a.jpg", 10).with_content_type("image/jpeg");
    let issued = svc
        .request_slot(&"romeo@montague.tld/a".parse().unwrap(), &req, "i1", now())
        .unwrap();
    let query = issued
        .slot
        .put
        .query()
        .expect("a signed PUT URL")
        .to_owned();
    // The GET link carries its capability in the path: {slot id}/{signature}/{name}. (The
    // slot ID alone grants nothing: it is also the object key's prefix.)
    let get_path: Vec<String> = issued
        .slot
        .get
        .path_segments()
        .expect("a GET path")
        .map(str::to_owned)
        .collect();
    assert!(get_path.len() >= 3, "{get_path:?}");
    for shown in [
        format!("{issued:?}"),
        format!("{:?}", issued.slot),
        format!("{:?}", issued.target),
    ] {
        assert!(!shown.contains(&query), "{shown}");
        assert!(shown.contains("a.jpg"), "{shown}");
        let signature = &get_path[get_path.len() - 2];
        assert!(!shown.contains(signature.as_str()), "{shown}");
    }
    // p1 results too.
    let up = parse(
        "<iq type='set' id='u1' from='romeo@montague.tld/orchard' to='upload.montague.tld'>\
         <query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog==' size='5' name='x.txt'/></iq>",
    );
    let reply = svc.handle(&up, now()).unwrap();
    let result =
        xmpp_upload::stanza::file_transfer::UploadResult::parse(reply.children().next().unwrap())
            .unwrap();
    let q = result.upload.query().unwrap().to_owned();
    assert!(!format!("{result:?}").contains(&q));
}
