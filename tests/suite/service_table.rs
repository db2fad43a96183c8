//! A table of stanzas through `SlotService::handle`: spec examples, real clients' requests in
//! every dialect, and hostile input. Each row asserts the reply's type, condition and payload;
//! every slot's PUT URL is then checked against `verify_put`.

use time::Duration;
use xmpp_upload::stanza::upload::Slot as WireSlot;
use xmpp_upload::stanza::Dialect;
use xmpp_upload::storage::signed::VerifyError;
use xmpp_upload::{ServiceConfig, SlotService};

use super::common::*;

const V0: &str = "urn:xmpp:http:upload:0";
const LEGACY: &str = "urn:xmpp:http:upload";
const SIACS: &str = "eu:siacs:conversations:http:upload";
const MAX: u64 = 1_000_000;

#[derive(Debug)]
enum Expect {
    /// Not for this service.
    Ignored,
    /// A slot in this namespace, for this size and type.
    Slot {
        ns: &'static str,
        size: u64,
        ty: Option<&'static str>,
    },
    /// An error of this type and condition, with this payload element (name, ns) if any.
    Error {
        ty: &'static str,
        cond: &'static str,
        payload: Option<(&'static str, &'static str)>,
    },
    /// Some other result whose first child is (name, ns).
    Result {
        child: Option<(&'static str, &'static str)>,
    },
}
use Expect::*;

fn table_service() -> SlotService<xmpp_upload::storage::signed::SignedUrlStore> {
    SlotService::new(
        config()
            .max_file_size(MAX)
            .allowed_content_types([
                "image/*",
                "video/*",
                "audio/*",
                "text/plain",
                "application/pdf",
                "application/octet-stream",
            ])
            .daily_quota(600_000),
        store(),
    )
}

fn iq(ns: &str, ty: &str, payload: &str) -> String {
    format!("<iq xmlns='{ns}' from='romeo@montague.tld/garden' id='step_03' to='upload.montague.tld' type='{ty}'>{payload}</iq>")
}
fn get(payload: &str) -> String {
    iq("jabber:client", "get", payload)
}
fn v0(attrs: &str) -> String {
    get(&format!("<request xmlns='{V0}' {attrs}/>"))
}
fn legacy(ns: &str, children: &str) -> String {
    get(&format!("<request xmlns='{ns}'>{children}</request>"))
}
const BAD: Expect = Error {
    ty: "modify",
    cond: "bad-request",
    payload: None,
};

fn rows() -> Vec<(&'static str, String, Expect)> {
    let long = "a".repeat(300);
    vec![
        // XEP-0363 1.x example 4, verbatim.
        ("xep0363_ex4_request", "<iq from='romeo@montague.tld/garden' id='step_03' to='upload.montague.tld' type='get'><request xmlns='urn:xmpp:http:upload:0' filename='my-juliet.jpg' size='23456' content-type='image/jpeg' /></iq>".to_owned(), Slot { ns: V0, size: 23456, ty: Some("image/jpeg") }),
        // XEP-0363 0.2.5 example 4 (legacy children).
        ("xep0363_0_2_request", legacy(LEGACY, "<filename>my_juliet.png</filename><size>23456</size><content-type>image/jpeg</content-type>"), Slot { ns: LEGACY, size: 23456, ty: Some("image/jpeg") }),
        // Conversations 2015 (eu:siacs).
        ("conversations_siacs", legacy(SIACS, "<filename>IMG_20151108_1.jpg</filename><size>113290</size>"), Slot { ns: SIACS, size: 113290, ty: None }),
        // Smack 4.2.0: the :0 namespace with legacy children; answered as :0.
        ("smack_4_2_0_hybrid", legacy(V0, "<filename>photo.jpg</filename><size>4096</size><content-type>image/jpeg</content-type>"), Slot { ns: V0, size: 4096, ty: Some("image/jpeg") }),
        ("component_namespace", iq("jabber:component:accept", "get", &format!("<request xmlns='{V0}' filename='a.png' size='10' content-type='image/png'/>")), Slot { ns: V0, size: 10, ty: Some("image/png") }),
        ("no_content_type", v0("filename='notes' size='5'"), Slot { ns: V0, size: 5, ty: None }),
        ("empty_content_type_is_absent", v0("filename='notes' size='5' content-type=''"), Slot { ns: V0, size: 5, ty: None }),
        ("snikket_hash", get(&format!("<request xmlns='{V0}' filename='a.jpg' size='3' content-type='image/jpeg'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=</hash></request>")), Slot { ns: V0, size: 3, ty: Some("image/jpeg") }),
        ("slixmpp_purpose_profile", get(&format!("<request xmlns='{V0}' filename='test.jpg' size='5' content-type='image/jpeg'><profile xmlns='urn:xmpp:http:upload:purpose:0'/></request>")), Slot { ns: V0, size: 5, ty: Some("image/jpeg") }),
        ("purpose_ephemeral", get(&format!("<request xmlns='{V0}' filename='e.txt' size='5' content-type='text/plain'><ephemeral xmlns='urn:xmpp:http:upload:purpose:0' expire-before='2017-12-04T23:42:05Z'/></request>")), Slot { ns: V0, size: 5, ty: Some("text/plain") }),
        ("cyrillic_filename", v0("filename='Отчёт за май.pdf' size='100' content-type='application/pdf'"), Slot { ns: V0, size: 100, ty: Some("application/pdf") }),
        ("size_zero", v0("filename='empty.txt' size='0' content-type='text/plain'"), Slot { ns: V0, size: 0, ty: Some("text/plain") }),
        ("size_max_but_over_daily_quota", v0(&format!("filename='max.bin' size='{MAX}'")), Error { ty: "wait", cond: "resource-constraint", payload: None }),
        ("legacy_padded_size", legacy(LEGACY, "<filename> a.jpg </filename><size>\n  23456\n</size>"), Slot { ns: LEGACY, size: 23456, ty: None }),
        // Size limit and quota.
        ("too_large", v0(&format!("filename='big.mkv' size='{}' content-type='video/x-matroska'", MAX + 1)), Error { ty: "modify", cond: "not-acceptable", payload: Some(("file-too-large", V0)) }),
        ("too_large_legacy_ns", legacy(LEGACY, &format!("<filename>big.mkv</filename><size>{}</size>", MAX + 1)), Error { ty: "modify", cond: "not-acceptable", payload: Some(("file-too-large", LEGACY)) }),
        ("too_large_siacs_ns", legacy(SIACS, "<filename>big.mkv</filename><size>10000000000000000000</size>"), Error { ty: "modify", cond: "not-acceptable", payload: Some(("file-too-large", SIACS)) }),
        ("too_large_hybrid_answered_in_v0", legacy(V0, "<filename>big.mkv</filename><size>2000000</size>"), Error { ty: "modify", cond: "not-acceptable", payload: Some(("file-too-large", V0)) }),
        // Sizes that are not plain decimal u64s.
        ("size_overflow", v0("filename='a' size='18446744073709551616'"), BAD),
        ("size_negative", v0("filename='a' size='-1'"), BAD),
        ("size_plus", v0("filename='a' size='+5'"), BAD),
        ("size_exponent", v0("filename='a' size='1e3'"), BAD),
        ("size_hex", v0("filename='a' size='0x10'"), BAD),
        ("size_empty", v0("filename='a' size=''"), BAD),
        ("size_missing", v0("filename='a'"), BAD),
        ("size_space_in_attribute", v0("filename='a' size=' 5'"), BAD),
        // File names.
        ("path_traversal", v0("filename='../x' size='1'"), BAD),
        ("slash", v0("filename='a/b' size='1'"), BAD),
        ("backslash", v0("filename='..\\windows\\x' size='1'"), BAD),
        ("dotdot", v0("filename='..' size='1'"), BAD),
        ("dot", v0("filename='.' size='1'"), BAD),
        ("tab_control_char", v0("filename='a&#9;b' size='1'"), BAD),
        ("c1_control_char", v0("filename='a\u{85}b' size='1'"), BAD),
        ("name_300_bytes", v0(&format!("filename='{long}' size='1'")), BAD),
        ("filename_empty", v0("filename='' size='1'"), BAD),
        ("filename_missing", v0("size='1'"), BAD),
        ("legacy_filename_twice", legacy(LEGACY, "<filename>a</filename><filename>b</filename><size>1</size>"), BAD),
        // Content types.
        ("header_injection_in_type", v0("filename='a.html' size='1' content-type='text/html&#13;&#10;X: y'"), BAD),
        ("type_not_a_mime_type", v0("filename='a' size='1' content-type='image'"), BAD),
        ("type_not_allowed", v0("filename='a.exe' size='1' content-type='application/x-msdownload'"), Error { ty: "modify", cond: "not-acceptable", payload: None }),
        ("type_wildcard_allowed", v0("filename='a.webp' size='1' content-type='image/webp'"), Slot { ns: V0, size: 1, ty: Some("image/webp") }),
        // Envelope.
        ("wrong_iq_type_set", iq("jabber:client", "set", &format!("<request xmlns='{V0}' filename='a' size='1'/>")), BAD),
        ("missing_id", format!("<iq xmlns='jabber:client' from='romeo@montague.tld/garden' type='get'><request xmlns='{V0}' filename='a' size='1'/></iq>"), BAD),
        ("unknown_iq_type", iq("jabber:client", "fetch", &format!("<request xmlns='{V0}' filename='a' size='1'/>")), BAD),
        ("missing_from", format!("<iq xmlns='jabber:client' id='x' type='get'><request xmlns='{V0}' filename='a' size='1'/></iq>"), BAD),
        ("foreign_domain", format!("<iq xmlns='jabber:client' from='tybalt@capulet.tld/r' id='x' type='get'><request xmlns='{V0}' filename='a' size='1'/></iq>"), Error { ty: "auth", cond: "forbidden", payload: None }),
        ("empty_get", get(""), BAD),
        // Not ours.
        ("message", "<message xmlns='jabber:client' from='romeo@montague.tld/garden' to='upload.montague.tld'><body>hi</body></message>".to_owned(), Ignored),
        ("presence", "<presence xmlns='jabber:client' from='romeo@montague.tld/garden'/>".to_owned(), Ignored),
        ("iq_result", iq("jabber:client", "result", ""), Ignored),
        ("iq_error", iq("jabber:client", "error", "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"), Ignored),
        ("ping", get("<ping xmlns='urn:xmpp:ping'/>"), Ignored),
        ("not_a_stanza_namespace", format!("<iq xmlns='urn:example' type='get' id='1'><request xmlns='{V0}' filename='a' size='1'/></iq>"), Ignored),
        // Service discovery.
        ("xep0363_ex3_disco_info", "<iq from='romeo@montague.tld/garden' id='step_02' to='upload.montague.tld' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>".to_owned(), Result { child: Some(("query", "http://jabber.org/protocol/disco#info")) }),
        ("disco_info_unknown_node", get("<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>"), Error { ty: "cancel", cond: "item-not-found", payload: None }),
        ("disco_items", get("<query xmlns='http://jabber.org/protocol/disco#items'/>"), Result { child: Some(("query", "http://jabber.org/protocol/disco#items")) }),
        // p1:http-file-transfer.
        ("p1_upload", iq("jabber:client", "set", "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog==' filename='a.txt' size='5' content-type='text/plain'/>"), Result { child: Some(("query", "p1:http-file-transfer")) }),
        // Under a quota, an upload by MD5 alone (no size) cannot be charged: bad-request.
        ("p1_upload_md5_only_under_quota", iq("jabber:client", "set", "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog=='/>"), BAD),
        ("p1_upload_bad_md5", iq("jabber:client", "set", "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQ=='/>"), BAD),
        ("p1_upload_as_get", get("<query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog=='/>"), BAD),
        ("p1_forged_fileid", get("<query xmlns='p1:http-file-transfer' fileid='6e84ff49-0000-4000-8000-000000000000'/>"), Error { ty: "cancel", cond: "item-not-found", payload: None }),
    ]
}

#[test]
fn stanza_table_through_handle() {
    let rows = rows();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let mut slots = 0;
    for (name, xml, expect) in rows {
        let svc = table_service();
        let stanza = parse(&xml);
        let reply = svc.handle(&stanza, now());
        match (&expect, &reply) {
            (Ignored, None) => continue,
            (Ignored, Some(r)) => panic!("{name}: expected no reply, got {}", String::from(r)),
            (_, None) => panic!("{name}: expected a reply, got none"),
            _ => {}
        }
        let reply = reply.unwrap();
        assert_eq!(reply.name(), "iq", "{name}");
        assert_eq!(
            reply.ns(),
            stanza.ns(),
            "{name}: reply in the request's stanza namespace"
        );
        assert_eq!(reply.attr("id"), stanza.attr("id"), "{name}: id kept");
        assert_eq!(
            reply.attr("to"),
            stanza.attr("from"),
            "{name}: to = request's from"
        );
        assert_eq!(
            reply.attr("from"),
            Some(stanza.attr("to").unwrap_or("upload.montague.tld")),
            "{name}"
        );
        match expect {
            Ignored => unreachable!(),
            Slot { ns, size, ty } => {
                assert_eq!(
                    reply.attr("type"),
                    Some("result"),
                    "{name}: {}",
                    String::from(&reply)
                );
                let slot_el = reply.children().next().expect("a <slot/>");
                assert!(slot_el.is("slot", ns), "{name}: slot in {ns}");
                let slot = WireSlot::try_from(slot_el).unwrap();
                check_put_url(name, &svc, &slot.put, size, ty);
                assert!(
                    slot.put.as_str().is_ascii() && slot.get.as_str().is_ascii(),
                    "{name}"
                );
                assert_eq!(slot.put.scheme(), "https", "{name}");
                slots += 1;
            }
            Error { ty, cond, payload } => {
                assert_eq!(
                    reply.attr("type"),
                    Some("error"),
                    "{name}: {}",
                    String::from(&reply)
                );
                assert_eq!(
                    error_of(&reply),
                    (ty.to_owned(), cond.to_owned()),
                    "{name}: {}",
                    String::from(&reply)
                );
                let p = error_payload(&reply);
                match payload {
                    None => assert!(p.is_none(), "{name}: unexpected payload"),
                    Some((pname, pns)) => {
                        let p = p.expect("an error payload");
                        assert!(
                            p.is(pname, pns),
                            "{name}: payload <{}/> in {}",
                            p.name(),
                            p.ns()
                        );
                        if pname == "file-too-large" {
                            let max = p.get_child("max-file-size", pns).expect("<max-file-size/>");
                            assert_eq!(max.text(), MAX.to_string(), "{name}");
                        }
                    }
                }
            }
            Result { child } => {
                assert_eq!(
                    reply.attr("type"),
                    Some("result"),
                    "{name}: {}",
                    String::from(&reply)
                );
                let first = reply.children().next();
                match child {
                    None => assert!(first.is_none()),
                    Some((n, ns)) => assert!(first.is_some_and(|c| c.is(n, ns)), "{name}"),
                }
            }
        }
    }
    assert!(slots >= 10);
}

/// The PUT URL passes `verify_put` with the declared size and type, and fails with size ± 1,
/// another type, a flipped signature character, another path, and a time past the expiry.
fn check_put_url(
    name: &str,
    svc: &SlotService<xmpp_upload::storage::signed::SignedUrlStore>,
    put: &url::Url,
    size: u64,
    ty: Option<&str>,
) {
    let store = svc.storage();
    let ok = store
        .verify_put(put, size, ty, now())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(ok.size, size);
    assert!(
        matches!(
            store.verify_put(put, size + 1, ty, now()),
            Err(VerifyError::SizeMismatch { .. })
        ),
        "{name}"
    );
    if size > 0 {
        assert!(
            matches!(
                store.verify_put(put, size - 1, ty, now()),
                Err(VerifyError::SizeMismatch { .. })
            ),
            "{name}"
        );
    }
    if ty.is_some() {
        assert_eq!(
            store.verify_put(put, size, Some("application/x-other"), now()),
            Err(VerifyError::TypeMismatch),
            "{name}"
        );
    }
    // Flip one character of the signature.
    let mut flipped = put.clone();
    let q: Vec<(String, String)> = put
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    flipped.query_pairs_mut().clear();
    for (k, v) in &q {
        let v = if k == "sig" {
            let mut c: Vec<char> = v.chars().collect();
            c[3] = if c[3] == 'A' { 'B' } else { 'A' };
            c.into_iter().collect()
        } else {
            v.clone()
        };
        flipped.query_pairs_mut().append_pair(k, &v);
    }
    assert_eq!(
        store.verify_put(&flipped, size, ty, now()),
        Err(VerifyError::BadSignature),
        "{name}"
    );
    // Another path: another file name under the same slot.
    let mut other = put.clone();
    other.path_segments_mut().unwrap().pop().push("other.jpg");
    assert_eq!(
        store.verify_put(&other, size, ty, now()),
        Err(VerifyError::BadSignature),
        "{name}"
    );
    assert_eq!(
        store.verify_put(put, size, ty, now() + Duration::seconds(300)),
        Err(VerifyError::Expired),
        "{name}"
    );
}

#[test]
fn quota_refusal_carries_the_retry_stamp_in_the_request_dialect() {
    let svc = SlotService::new(config().daily_quota(100).min_charge(1), store());
    let first = svc
        .handle(&parse(&v0("filename='a' size='60'")), now())
        .unwrap();
    assert_eq!(first.attr("type"), Some("result"));
    let later = now() + Duration::hours(1);
    let second = svc
        .handle(
            &parse(&legacy(SIACS, "<filename>b</filename><size>60</size>")),
            later,
        )
        .unwrap();
    assert_eq!(
        error_of(&second),
        ("wait".to_owned(), "resource-constraint".to_owned())
    );
    let retry = error_payload(&second).expect("<retry/>");
    assert!(retry.is("retry", SIACS));
    assert_eq!(retry.attr("stamp"), Some("2017-12-04T23:42:05Z"));
    // After the window, the quota frees up.
    let next_day = now() + Duration::hours(24);
    let third = svc
        .handle(&parse(&v0("filename='c' size='60'")), next_day)
        .unwrap();
    assert_eq!(third.attr("type"), Some("result"));
}

#[test]
fn disabled_dialect_is_service_unavailable_and_not_advertised() {
    let svc = SlotService::new(config().dialects([Dialect::V0]), store());
    let reply = svc
        .handle(
            &parse(&legacy(SIACS, "<filename>a</filename><size>1</size>")),
            now(),
        )
        .unwrap();
    assert_eq!(
        error_of(&reply),
        ("cancel".to_owned(), "service-unavailable".to_owned())
    );
    let info = svc
        .handle(
            &parse(&get(
                "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            )),
            now(),
        )
        .unwrap();
    let info = xmpp_upload::stanza::disco::ServiceInfo::parse(info.children().next().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(info.dialects, vec![Dialect::V0]);
    assert_eq!(
        info.max_file_size,
        Some(xmpp_upload::service::DEFAULT_MAX_FILE_SIZE)
    );
}

#[test]
fn storage_failure_is_internal_server_error_without_details_and_charges_nothing() {
    // An http:// base on a public host is refused by the store: a storage failure.
    let insecure = xmpp_upload::storage::signed::SignedUrlStore::new(
        "http://files.montague.tld/".parse().unwrap(),
        "k".repeat(32),
    );
    let ledger = std::sync::Arc::new(xmpp_upload::service::MemoryLedger::new());
    let cfg = || {
        config()
            .daily_quota(100)
            .min_charge(1)
            .quota_ledger(ledger.clone())
    };
    let svc = SlotService::new(cfg(), insecure);
    let answer = svc.process(&parse(&v0("filename='a' size='100'")), now());
    let reply = answer.reply.unwrap();
    assert_eq!(
        error_of(&reply),
        ("wait".to_owned(), "internal-server-error".to_owned())
    );
    let xml = String::from(&reply);
    assert!(
        !xml.contains("http://files") && !xml.contains("https"),
        "{xml}"
    );
    // The host learns why; the stanza does not.
    match answer.outcome {
        xmpp_upload::service::Outcome::Refused {
            error: xmpp_upload::SlotError::Storage(e),
            ..
        } => assert_eq!(e, xmpp_upload::storage::StorageError::InsecureBaseUrl),
        other => panic!("{other:?}"),
    }
    // Nothing was charged to the shared ledger: the full quota is still there.
    let ok = SlotService::new(cfg(), store());
    assert_eq!(
        ok.handle(&parse(&v0("filename='a' size='100'")), now())
            .unwrap()
            .attr("type"),
        Some("result")
    );
    assert!(
        ok.handle(&parse(&v0("filename='b' size='1'")), now())
            .unwrap()
            .attr("type")
            == Some("error")
    );
}

#[test]
fn replies_never_leak_the_secrets() {
    let svc: SlotService<_> = SlotService::new(
        ServiceConfig::new("upload.montague.tld".parse().unwrap(), "SERVICE-SECRET-XYZ"),
        xmpp_upload::storage::signed::SignedUrlStore::new(
            "https://f.example/".parse().unwrap(),
            "STORE-KEY-XYZ",
        ),
    );
    for (_, xml, _) in rows() {
        if let Some(r) = svc.handle(&parse(&xml), now()) {
            let s = String::from(&r);
            assert!(!s.contains("SECRET-XYZ") && !s.contains("KEY-XYZ"));
        }
    }
    let dbg = format!("{svc:?}");
    assert!(
        !dbg.contains("SECRET-XYZ") && !dbg.contains("KEY-XYZ"),
        "{dbg}"
    );
}

#[test]
fn service_and_backends_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SlotService<xmpp_upload::storage::signed::SignedUrlStore>>();
    assert_send_sync::<SlotService<xmpp_upload::storage::external::ExternalStore>>();
    assert_send_sync::<SlotService<xmpp_upload::storage::s3::S3Store>>();
    assert_send_sync::<SlotService<Box<dyn xmpp_upload::StorageBackend>>>();
}

#[test]
fn ephemeral_purpose_caps_the_get_url() {
    let svc = service();
    let xml = format!("<iq xmlns='jabber:client' from='romeo@montague.tld/g' id='e' to='upload.montague.tld' type='get'><request xmlns='{V0}' filename='story.mp4' size='5' content-type='video/mp4'><ephemeral xmlns='urn:xmpp:http:upload:purpose:0' expire-before='2017-12-04T23:42:05Z'/></request></iq>");
    let reply = svc.handle(&parse(&xml), now()).unwrap();
    let slot = WireSlot::try_from(reply.children().next().unwrap()).unwrap();
    let store = svc.storage();
    assert!(store
        .verify_get(&slot.get, now() + Duration::hours(23))
        .is_ok());
    assert_eq!(
        store
            .verify_get(&slot.get, now() + Duration::hours(24))
            .map(|_| ()),
        Err(VerifyError::Expired)
    );
    // Without a purpose the GET URL does not expire.
    let plain = svc
        .handle(&parse(&v0("filename='a.jpg' size='5'")), now())
        .unwrap();
    let slot = WireSlot::try_from(plain.children().next().unwrap()).unwrap();
    assert!(store
        .verify_get(&slot.get, now() + Duration::days(3650))
        .is_ok());
}
