//! The file-ID flow through `SlotService::handle`: upload by MD5, resolve the ID to fresh
//! download URLs, key rotation, stable GET links, and forgery resistance.

use base64::Engine as _;
use minidom::Element;
use time::Duration;
use xmpp_upload::stanza::file_transfer::{encode_md5, Query};
use xmpp_upload::storage::signed::{SignedUrlStore, VerifyError};
use xmpp_upload::{SlotError, SlotService};

use super::common::*;

const MD5_ABC: &str = "kAFQmDzST7DWlj99KOF/cg=="; // MD5("abc"), RFC 1321 test suite

fn upload(svc: &SlotService<SignedUrlStore>, from: &str, attrs: &str) -> Element {
    let xml = format!("<iq xmlns='jabber:client' type='set' id='u1' from='{from}' to='montague.tld'><query xmlns='p1:http-file-transfer' {attrs}/></iq>");
    svc.handle(&parse(&xml), now()).expect("a reply")
}

fn download(
    svc: &SlotService<SignedUrlStore>,
    from: &str,
    fileid: &str,
    at: time::OffsetDateTime,
) -> Element {
    let mut q = Element::bare("query", "p1:http-file-transfer");
    q.set_attr(
        minidom::rxml::Namespace::NONE,
        minidom::rxml::NcName::try_from("fileid").unwrap(),
        fileid.to_owned(),
    );
    let mut iq = Element::bare("iq", "jabber:client");
    for (k, v) in [
        ("type", "get"),
        ("id", "d1"),
        ("from", from),
        ("to", "montague.tld"),
    ] {
        iq.set_attr(
            minidom::rxml::Namespace::NONE,
            minidom::rxml::NcName::try_from(k).unwrap(),
            v.to_owned(),
        );
    }
    iq.append_child(q);
    svc.handle(&iq, at).expect("a reply")
}

fn upload_result(reply: &Element) -> xmpp_upload::stanza::file_transfer::UploadResult {
    assert_eq!(
        reply.attr("type"),
        Some("result"),
        "{}",
        String::from(reply)
    );
    match Query::parse(reply.children().next().unwrap()).unwrap() {
        Query::UploadResult(r) => r,
        other => panic!("{other:?}"),
    }
}

fn download_url(reply: &Element) -> url::Url {
    assert_eq!(
        reply.attr("type"),
        Some("result"),
        "{}",
        String::from(reply)
    );
    match Query::parse(reply.children().next().unwrap()).unwrap() {
        Query::DownloadResult(r) => r.download,
        other => panic!("{other:?}"),
    }
}

#[test]
fn upload_by_md5_binds_the_file_and_ids_resolve_to_fresh_short_urls() {
    let svc = service();
    let r = upload_result(&upload(
        &svc,
        "romeo@montague.tld/garden",
        &format!("md5='{MD5_ABC}' filename='a.txt' size='3' content-type='text/plain'"),
    ));
    let fileid = r.fileid.clone().unwrap();
    assert!(r
        .headers
        .iter()
        .any(|h| h.name == "Content-MD5" && h.value == MD5_ABC));
    // The PUT URL accepts only that file: right MD5 header and body digest.
    let v = svc
        .storage()
        .verify_put(&r.upload, 3, Some("text/plain"), now())
        .unwrap();
    v.check_content_md5(Some(MD5_ABC)).unwrap();
    assert_eq!(
        v.check_content_md5(Some(&encode_md5(&[0; 16]))),
        Err(VerifyError::DigestMismatch)
    );
    assert_eq!(v.check_content_md5(None), Err(VerifyError::DigestMismatch));
    let mut body = v.body_check();
    body.update(b"abc").unwrap();
    body.finish().unwrap();
    let mut body = v.body_check();
    body.update(b"abd").unwrap();
    assert_eq!(body.finish(), Err(VerifyError::DigestMismatch));

    // Juliet (same server) resolves the ID: a URL valid for 300 s, fresh each time.
    let later = now() + Duration::days(3);
    let url1 = download_url(&download(
        &svc,
        "juliet@montague.tld/balcony",
        &fileid,
        later,
    ));
    let got = svc.storage().verify_get(&url1, later).unwrap();
    assert_eq!(got.filename, "a.txt");
    assert_eq!(got.expires, Some(later + Duration::seconds(300)));
    assert_eq!(
        svc.storage()
            .verify_get(&url1, later + Duration::seconds(300)),
        Err(VerifyError::Expired)
    );
    assert_eq!(VerifyError::Expired.status(), 410);
    let url2 = download_url(&download(
        &svc,
        "juliet@montague.tld/balcony",
        &fileid,
        later + Duration::seconds(301),
    ));
    assert_ne!(url1, url2);
    assert!(svc
        .storage()
        .verify_get(&url2, later + Duration::seconds(301))
        .is_ok());

    // Another server's user is refused by the default access policy.
    let reply = download(&svc, "tybalt@capulet.tld/r", &fileid, later);
    assert_eq!(
        error_of(&reply),
        ("auth".to_owned(), "forbidden".to_owned())
    );
}

#[test]
fn md5_only_upload_is_capped_at_the_size_limit() {
    let svc = SlotService::new(config().max_file_size(1000), store());
    let r = upload_result(&upload(
        &svc,
        "romeo@montague.tld/garden",
        &format!("md5='{MD5_ABC}'"),
    ));
    assert!(svc
        .storage()
        .verify_put(&r.upload, 1000, None, now())
        .is_ok());
    assert!(matches!(
        svc.storage().verify_put(&r.upload, 1001, None, now()),
        Err(VerifyError::SizeMismatch { .. })
    ));
}

#[test]
fn conversations_namespace_is_answered_in_kind() {
    let svc = service();
    let xml = format!("<iq xmlns='jabber:client' type='set' id='s3' from='romeo@montague.tld/g' to='montague.tld'><query xmlns='p1:s3filetransfer' md5='{MD5_ABC}'/></iq>");
    let reply = svc.handle(&parse(&xml), now()).unwrap();
    let q = reply.children().next().unwrap();
    assert!(
        q.is("query", "p1:s3filetransfer"),
        "{}",
        String::from(&reply)
    );
    assert!(q.children().all(|c| c.has_ns("p1:s3filetransfer")));
}

#[test]
fn rotated_secret_still_resolves_old_ids() {
    let old = SlotService::new(config(), store());
    let fileid = upload_result(&upload(
        &old,
        "romeo@montague.tld/g",
        &format!("md5='{MD5_ABC}'"),
    ))
    .fileid
    .unwrap();
    let rotated = SlotService::new(
        xmpp_upload::ServiceConfig::new(
            "upload.montague.tld".parse().unwrap(),
            "a brand new secret of 32 bytes!!",
        )
        .previous_secret(*b"service secret: 32 random bytes!"),
        store(),
    );
    assert!(rotated
        .download_url(&"juliet@montague.tld".parse().unwrap(), &fileid, now())
        .is_ok());
    let fresh = SlotService::new(
        xmpp_upload::ServiceConfig::new(
            "upload.montague.tld".parse().unwrap(),
            "a brand new secret of 32 bytes!!",
        ),
        store(),
    );
    assert_eq!(
        fresh.download_url(&"juliet@montague.tld".parse().unwrap(), &fileid, now()),
        Err(SlotError::UnknownFileId)
    );
}

#[test]
fn file_ids_expire_when_configured() {
    let svc = SlotService::new(config().file_id_ttl(Duration::days(30)), store());
    let fileid = upload_result(&upload(
        &svc,
        "romeo@montague.tld/g",
        &format!("md5='{MD5_ABC}'"),
    ))
    .fileid
    .unwrap();
    let j = "juliet@montague.tld".parse().unwrap();
    assert!(svc
        .download_url(&j, &fileid, now() + Duration::days(29))
        .is_ok());
    assert_eq!(
        svc.download_url(&j, &fileid, now() + Duration::days(30)),
        Err(SlotError::ExpiredFileId)
    );
}

#[test]
fn stable_get_links_resolve_to_fresh_storage_urls() {
    let svc = SlotService::new(
        config().stable_get_base("https://montague.tld/files/".parse().unwrap()),
        store(),
    );
    let xml = "<iq xmlns='jabber:client' type='get' id='g' from='romeo@montague.tld/g' to='upload.montague.tld'><request xmlns='urn:xmpp:http:upload:0' filename='r.jpg' size='9'/></iq>";
    let reply = svc.handle(&parse(xml), now()).unwrap();
    let slot =
        xmpp_upload::stanza::upload::Slot::try_from(reply.children().next().unwrap()).unwrap();
    assert!(slot.get.as_str().starts_with("https://montague.tld/files/"));
    assert!(slot.get.path().ends_with("/r.jpg"));
    let in_a_year = now() + Duration::days(365);
    let target = svc.resolve_stable_get(&slot.get, in_a_year).unwrap();
    let v = svc.storage().verify_get(&target, in_a_year).unwrap();
    assert_eq!(v.filename, "r.jpg");
    assert_eq!(v.expires, Some(in_a_year + Duration::seconds(300)));
    let mut forged = slot.get.clone();
    forged
        .path_segments_mut()
        .unwrap()
        .pop()
        .pop()
        .push("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .push("r.jpg");
    assert_eq!(
        svc.resolve_stable_get(&forged, in_a_year),
        Err(SlotError::UnknownFileId)
    );
}

/// A tiny deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn ten_thousand_mutated_file_ids_never_resolve() {
    let svc = service();
    let juliet = "juliet@montague.tld".parse().unwrap();
    let ids: Vec<String> = (0..8)
        .map(|i| {
            upload_result(&upload(
                &svc,
                "romeo@montague.tld/g",
                &format!("md5='{MD5_ABC}' filename='f{i}.bin'"),
            ))
            .fileid
            .unwrap()
        })
        .collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.%";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tried = 0;
    while tried < 10_000 {
        let id = &ids[rng.below(ids.len())];
        let mutated = match rng.below(6) {
            // Flip one bit of the decoded ID.
            0 => {
                let mut raw = b64.decode(id).unwrap();
                let i = rng.below(raw.len() * 8);
                raw[i / 8] ^= 1 << (i % 8);
                b64.encode(raw)
            }
            // Replace one character.
            1 => {
                let mut c: Vec<u8> = id.bytes().collect();
                let i = rng.below(c.len());
                c[i] = alphabet[rng.below(alphabet.len())];
                String::from_utf8(c).unwrap()
            }
            // Truncate or extend.
            2 => id[..rng.below(id.len())].to_owned(),
            3 => format!("{id}{}", alphabet[rng.below(alphabet.len())] as char),
            // Splice two IDs together.
            4 => {
                let other = &ids[rng.below(ids.len())];
                let cut = rng.below(id.len().min(other.len()));
                format!("{}{}", &id[..cut], &other[cut..])
            }
            // Random bytes of a plausible length.
            _ => b64.encode(
                (0..rng.below(80))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<u8>>(),
            ),
        };
        if ids.contains(&mutated) {
            continue;
        }
        let r = svc.download_url(&juliet, &mutated, now());
        assert_eq!(r, Err(SlotError::UnknownFileId), "{mutated}");
        tried += 1;
    }
}
