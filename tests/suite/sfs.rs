//! The client side after a slot: XEP-0447 shares, XEP-0446 metadata, XEP-0448 sources, the
//! sharing builders and `classify`, from the fixtures in `tests/fixtures/sfs/` (sources in
//! `tests/fixtures/SOURCES.md`), plus hostile inputs and the file hasher's vectors.

use std::path::Path;

use minidom::Element;
use xmpp_parsers::hashes::{Algo, Hash};
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_upload::share::hash::{
    verify, verify_hashes, FileHasher, HashAlgo, Verifier, VerifyError,
};
use xmpp_upload::share::{self, AttachTarget, Incoming};
use xmpp_upload::stanza::esfs::{Cipher, EncryptedSource};
use xmpp_upload::stanza::file_metadata::{FileMetadata, Thumbnail, MAX_DESCS, MAX_HASHES};
use xmpp_upload::stanza::sfs::{Disposition, FileSharing, Source, Sources, MAX_SOURCES};
use xmpp_upload::stanza::url_data::UrlData;
use xmpp_upload::url::Url;

const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";
const NS: &str = xmpp_parsers::ns::DEFAULT_NS;

/// A fixture of `tests/fixtures/sfs/`, its source comment dropped; a `<message>` root gets
/// xmpp-parsers' default namespace.
fn fixture(name: &str) -> Element {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sfs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut xml = text.trim_start();
    while let Some(rest) = xml.strip_prefix("<!--") {
        xml = rest
            .split_once("-->")
            .expect("a closed comment")
            .1
            .trim_start();
    }
    let xml = match xml.strip_prefix("<message ") {
        Some(rest) => format!("<message xmlns='{NS}' {rest}"),
        None => xml.to_owned(),
    };
    xml.parse()
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

fn message(name: &str) -> Message {
    Message::try_from(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn shares(name: &str) -> Vec<FileSharing> {
    match share::classify(&message(name)) {
        Incoming::Sfs(s) => s,
        other => panic!("{name}: {other:?}"),
    }
}

fn one_share(name: &str) -> FileSharing {
    let mut s = shares(name);
    assert_eq!(s.len(), 1, "{name}");
    s.remove(0)
}

fn fox_sha256() -> Hash {
    Hash::from_base64(
        Algo::Sha_256,
        "16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI=",
    )
    .unwrap()
}

/// Whitespace-only text dropped: layout is not meaning.
fn normalize(e: &Element) -> Element {
    let mut out = Element::bare(e.name(), e.ns());
    for ((ns, name), value) in e.attrs().iter() {
        out.set_attr(ns.clone(), name.clone(), value.clone());
    }
    for n in e.nodes() {
        match n {
            minidom::Node::Element(c) => {
                out.append_child(normalize(c));
            }
            minidom::Node::Text(t) if !t.trim().is_empty() => out.append_text(t.trim().to_owned()),
            minidom::Node::Text(_) => {}
        }
    }
    out
}

#[test]
fn xep0447_basic_share() {
    let s = one_share("s01-xep0447-basic-share.xml");
    assert_eq!(s.disposition, Some(Disposition::Inline));
    assert_eq!(s.id, None);
    assert_eq!(s.file.name.as_deref(), Some("balcony-at-dusk.png"));
    assert_eq!(s.file.media_type.as_deref(), Some("image/png"));
    assert_eq!(
        (s.file.size, s.file.width, s.file.height),
        (Some(43), Some(1920), Some(1080))
    );
    assert_eq!(
        s.file.descs.get("").map(String::as_str),
        Some("The balcony, seen from the orchard")
    );
    assert_eq!(s.file.hashes.len(), 2);
    assert_eq!(s.file.hashes[0], fox_sha256());
    // A 20-byte `id-blake2b256` digest, as in the XEP's examples: kept, not rejected.
    assert_eq!(s.file.hashes[1].algo, Algo::Unknown("id-blake2b256".into()));
    assert_eq!(s.file.hashes[1].hash.len(), 20);
    let sources = s.sources.as_ref().unwrap();
    assert_eq!(sources.items.len(), 2);
    assert!(matches!(&sources.items[1], Source::Other(e) if e.name() == "jinglepub"));
    assert_eq!(
        s.urls(),
        ["https://download.montague.example/b6c9/balcony-at-dusk.png"]
    );
    // The unknown source is written back unchanged.
    let again = FileSharing::try_from(&Element::from(&s)).unwrap();
    assert_eq!(again, s);
}

#[test]
fn xep0447_fallback_oob_rebuilds_exactly() {
    let m = message("s02-xep0447-fallback-oob.xml");
    assert!(share::is_sfs_fallback(&m));
    let original = m
        .payloads
        .iter()
        .find(|p| p.name() == "file-sharing")
        .unwrap();
    let s = one_share("s02-xep0447-fallback-oob.xml");
    assert_eq!(normalize(&Element::from(&s)), normalize(original));
    // And the same message comes out of the one-message builder.
    let get = Url::parse("https://download.montague.example/b6c9/fox.txt").unwrap();
    let meta = FileMetadata::new()
        .with_media_type("text/plain")
        .with_name("fox.txt")
        .with_size(43)
        .with_hash(fox_sha256());
    let mut base = Message::chat(Some("juliet@capulet.example".parse().unwrap()));
    base.from = Some("romeo@montague.example/orchard".parse().unwrap());
    base.id = Some(Id("sfs-fallback-1".into()));
    let built = Element::from(share::inline(base, &get, meta));
    let mut want = fixture("s02-xep0447-fallback-oob.xml");
    // xmpp-parsers writes the body before the payloads, and the payloads in insertion order:
    // file-sharing, OOB, fallback.
    let body = want.get_child("body", NS).unwrap().clone();
    let fs = want
        .get_child("file-sharing", "urn:xmpp:sfs:0")
        .unwrap()
        .clone();
    let fb = want
        .get_child("fallback", "urn:xmpp:fallback:0")
        .unwrap()
        .clone();
    let oob = want.get_child("x", "jabber:x:oob").unwrap().clone();
    want = {
        let mut w = Element::bare("message", NS);
        for ((ns, name), value) in fixture("s02-xep0447-fallback-oob.xml").attrs().iter() {
            w.set_attr(ns.clone(), name.clone(), value.clone());
        }
        w.append_child(body);
        w.append_child(fs);
        w.append_child(oob);
        w.append_child(fb);
        w
    };
    assert_eq!(
        normalize(&built),
        normalize(&want),
        "{}",
        String::from(&built)
    );
}

#[test]
fn xep0447_announce_then_attach() {
    let s = one_share("s03-xep0447-announce-store.xml");
    assert_eq!(s.id.as_deref(), Some("share-0a1b"));
    assert!(s.sources.is_none());
    assert!(s.urls().is_empty());
    let m = message("s03-xep0447-announce-store.xml");
    assert!(m.bodies.is_empty());
    assert!(m.payloads.iter().any(|p| p.is("store", "urn:xmpp:hints")));

    let m = message("s04-xep0447-attach.xml");
    let Incoming::Attachment { attach_to, sources } = share::classify(&m) else {
        panic!("not an attachment")
    };
    assert_eq!(attach_to, "sfs-announce-1");
    assert_eq!(sources.id.as_deref(), Some("share-0a1b"));
    assert_eq!(
        sources.urls(),
        ["https://download.montague.example/b6c9/fox.txt"]
    );
    assert!(share::is_sfs_fallback(&m));
    // Sources round trip exactly.
    let original = m.payloads.iter().find(|p| p.name() == "sources").unwrap();
    assert_eq!(normalize(&Element::from(&sources)), normalize(original));
}

#[test]
fn xep0447_multiple_files() {
    let s = shares("s05-xep0447-multiple-files.xml");
    let ids: Vec<_> = s.iter().map(|s| s.id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["verse-1", "verse-2", "verse-3"]);
    assert_eq!(s[1].file.size, Some(4));
    assert_eq!(verify(&s[0].file.hashes, FOX), Ok(()));
    assert_eq!(verify(&s[1].file.hashes, b"test"), Ok(()));
    assert_eq!(verify(&s[2].file.hashes, FOX), Ok(()));
    assert_eq!(
        verify(&s[2].file.hashes, b"fox"),
        Err(VerifyError::Mismatch("sha3-256"))
    );
}

#[test]
fn xep0446_all_fields_and_round_trip() {
    let el = fixture("s06-xep0446-file.xml");
    let m = FileMetadata::try_from(&el).unwrap();
    assert_eq!(m.media_type.as_deref(), Some("video/webm"));
    assert_eq!(m.name.as_deref(), Some("rehearsal.webm"));
    assert_eq!(m.size, Some(6144));
    assert_eq!(
        (m.width, m.height, m.length),
        (Some(640), Some(360), Some(63000))
    );
    assert_eq!(
        m.parsed_date(),
        Some(time::macros::datetime!(2015-07-26 20:46 UTC))
    );
    assert_eq!(m.descs.len(), 2);
    assert_eq!(m.descs["fr"], "Répétition de l'acte deux");
    assert_eq!(
        m.thumbnails,
        [Thumbnail {
            uri: "cid:sha1+0b1c2d3e4f@bob.xmpp.org".into(),
            media_type: Some("image/jpeg".into()),
            width: Some(128),
            height: Some(72),
        }]
    );
    assert_eq!(verify(&m.hashes, FOX), Ok(()));
    // Written strictly: the date in UTC, the rest as it came (canonical order).
    let out = Element::from(&m);
    assert_eq!(
        out.get_child("date", "urn:xmpp:file:metadata:0")
            .unwrap()
            .text(),
        "2015-07-26T20:46:00Z"
    );
    let back = FileMetadata::try_from(&out).unwrap();
    assert_eq!(back.parsed_date(), m.parsed_date());
    assert_eq!(
        FileMetadata { date: None, ..back },
        FileMetadata { date: None, ..m }
    );
}

#[test]
fn xep0448_encrypted_source_and_dimension() {
    let s = one_share("s07-xep0448-esfs.xml");
    assert_eq!((s.file.width, s.file.height), (Some(4096), Some(2160)));
    assert!(s.urls().is_empty(), "encrypted sources are not plain URLs");
    let Some(Source::Encrypted(e)) = s.sources.as_ref().unwrap().items.first() else {
        panic!("no encrypted source")
    };
    assert_eq!(e.cipher, Cipher::Aes256GcmNoPadding);
    assert_eq!(e.key.as_bytes(), (0u8..32).collect::<Vec<_>>());
    assert_eq!(e.iv, b"defghijklmno");
    assert_eq!(e.hashes.len(), 1);
    assert!(matches!(&e.sources[..], [Source::Url(u)] if u.target.ends_with("/6a1c9d.bin")));
    // The blake2b spelling of the XEP examples verifies.
    let blake: Vec<Hash> = s
        .file
        .hashes
        .iter()
        .filter(|h| h.algo != Algo::Sha_256)
        .cloned()
        .collect();
    assert_eq!(verify(&blake, FOX), Ok(()));
    // Debug never shows the key.
    let dbg = format!("{e:?}");
    assert!(
        dbg.contains("Key(<32 bytes>)") && !dbg.contains("0, 1, 2"),
        "{dbg}"
    );
    let again = EncryptedSource::try_from(&Element::from(e)).unwrap();
    assert_eq!(&again, e);
    for (c, urn) in [
        (
            Cipher::Aes128GcmNoPadding,
            "urn:xmpp:ciphers:aes-128-gcm-nopadding:0",
        ),
        (
            Cipher::Aes256GcmNoPadding,
            "urn:xmpp:ciphers:aes-256-gcm-nopadding:0",
        ),
        (
            Cipher::Aes256CbcPkcs7,
            "urn:xmpp:ciphers:aes-256-cbc-pkcs7:0",
        ),
        (
            Cipher::Other("urn:example:rot13".into()),
            "urn:example:rot13",
        ),
    ] {
        assert_eq!(Cipher::from_urn(urn), c);
        assert_eq!(c.urn(), urn);
    }
}

#[test]
fn dino_announce_and_attach() {
    let s = one_share("s08-dino-announce.xml");
    assert_eq!(
        s.id.as_deref(),
        Some("2f1d3c55-7e0b-4c8e-9a51-0d6c1b7e9f10")
    );
    assert_eq!(s.file.media_type.as_deref(), Some("image/png"));
    assert_eq!(
        s.file
            .hashes
            .iter()
            .map(|h| h.algo.clone())
            .collect::<Vec<_>>(),
        [Algo::Sha_256, Algo::Sha_512]
    );
    assert_eq!(verify(&s.file.hashes, FOX), Ok(()));
    assert!(s.file.thumbnails[0]
        .uri
        .starts_with("data:image/png;base64,"));
    assert_eq!(
        s.file.parsed_date(),
        Some(time::macros::datetime!(2024-03-01 18:30 UTC))
    );
    // Written with `<media-type>` only.
    let out = String::from(&Element::from(&s));
    assert!(
        out.contains("<media-type>image/png</media-type>") && !out.contains("media_type"),
        "{out}"
    );

    let m = message("s09-dino-attach.xml");
    assert!(!share::is_sfs_fallback(&m), "Dino adds no fallback");
    let Incoming::Attachment { attach_to, sources } = share::classify(&m) else {
        panic!("not an attachment")
    };
    assert_eq!(attach_to, "4b6e0a58-dino-1");
    assert_eq!(sources.id, s.id);
}

#[test]
fn slixmpp_get_sfs_offsetless_date() {
    let s = one_share("s10-slixmpp-1.17-get-sfs.xml");
    assert_eq!(s.disposition, Some(Disposition::Attachment));
    assert_eq!(s.file.date.as_deref(), Some("2023-11-14T22:13:20"));
    assert_eq!(
        s.file.parsed_date(),
        Some(time::macros::datetime!(2023-11-14 22:13:20 UTC))
    );
    assert_eq!(s.file.descs[""], "a sonnet");
    assert_eq!(
        s.urls(),
        ["https://download.montague.example/9f3e21/sonnet.txt"]
    );
    assert_eq!(verify(&s.file.hashes, FOX), Ok(()));
}

#[test]
fn slidge_sims_sfs_oob_body() {
    let m = message("s11-slidge-sims-sfs-oob.xml");
    let s = one_share("s11-slidge-sims-sfs-oob.xml");
    assert_eq!(s.urls(), ["https://gateway.example/files/3d1c/test.txt"]);
    assert_eq!(
        s.file.thumbnails[0].media_type.as_deref(),
        Some("image/blurhash")
    );
    assert_eq!(verify(&s.file.hashes, b"test"), Ok(()));
    // Without the SFS payload, the body + OOB still make it a file message.
    let mut legacy = m.clone();
    legacy.payloads.retain(|p| p.name() != "file-sharing");
    assert_eq!(
        share::classify(&legacy),
        Incoming::Url(Url::parse("https://gateway.example/files/3d1c/test.txt").unwrap())
    );
}

#[test]
fn bad_items_are_dropped_the_rest_kept() {
    let s = one_share("s12-bad-items.xml");
    assert_eq!(s.disposition, None);
    assert_eq!(s.file.name.as_deref(), Some("fox.txt"));
    assert_eq!(s.file.size, None);
    assert_eq!(s.file.width, None);
    assert_eq!(s.file.hashes, [fox_sha256()]);
    assert_eq!(s.file.thumbnails.len(), 1);
    assert_eq!(
        (s.file.thumbnails[0].width, s.file.thumbnails[0].height),
        (Some(0), Some(0))
    );
    assert_eq!(s.sources.as_ref().unwrap().items.len(), 1);
    assert_eq!(s.urls(), ["https://download.montague.example/b6c9/fox.txt"]);
}

#[test]
fn payload_traits() {
    let mut m = message("s02-xep0447-fallback-oob.xml");
    let s = m.extract_payload::<FileSharing>().unwrap().unwrap();
    assert_eq!(s.file.size, Some(43));
    let mut m = message("s04-xep0447-attach.xml");
    let src = m.extract_payload::<Sources>().unwrap().unwrap();
    assert_eq!(src.id.as_deref(), Some("share-0a1b"));
    // Another element is a mismatch, not an error.
    let el: Element = "<sources xmlns='urn:example'/>".parse().unwrap();
    assert!(matches!(
        Sources::try_from(el),
        Err(xmpp_parsers::FromElementError::Mismatch(_))
    ));
    // A share without <file/> is invalid.
    let el: Element = "<file-sharing xmlns='urn:xmpp:sfs:0'/>".parse().unwrap();
    assert!(matches!(
        FileSharing::try_from(el),
        Err(xmpp_parsers::FromElementError::Invalid(_))
    ));
}

fn get() -> Url {
    Url::parse("https://download.montague.example/b6c9/très cool.jpg").unwrap()
}

const GET: &str = "https://download.montague.example/b6c9/tr%C3%A8s%20cool.jpg";

#[test]
fn builders_write_exact_xml() {
    let to = || Some("juliet@capulet.example".parse().unwrap());
    let legacy = String::from(&Element::from(share::legacy(Message::chat(to()), &get())));
    assert_eq!(
        legacy,
        format!(
            "<message xmlns='{NS}' to='juliet@capulet.example' type='chat'><body>{GET}</body>\
             <x xmlns='jabber:x:oob'><url>{GET}</url></x></message>"
        )
    );

    let mut first = Message::chat(to());
    first.id = Some(Id("m1".into()));
    let meta = FileMetadata::new()
        .with_name("très cool.jpg")
        .with_size(23456);
    let announce = share::announce(first.clone(), "s1", meta);
    assert_eq!(
        String::from(&Element::from(announce)),
        format!(
            "<message xmlns='{NS}' id='m1' to='juliet@capulet.example' type='chat'>\
             <file-sharing xmlns='urn:xmpp:sfs:0' id='s1'><file xmlns='urn:xmpp:file:metadata:0'>\
             <name>très cool.jpg</name><size>23456</size></file></file-sharing>\
             <store xmlns='urn:xmpp:hints'/></message>"
        )
    );

    let target = AttachTarget::chat(&first).unwrap();
    let attach = share::attach(Message::chat(to()), &target, "s1", &get());
    assert_eq!(
        String::from(&Element::from(attach)),
        format!(
            "<message xmlns='{NS}' to='juliet@capulet.example' type='chat'><body>{GET}</body>\
             <attach-to xmlns='urn:xmpp:message-attaching:1' id='m1'/>\
             <sources xmlns='urn:xmpp:sfs:0' id='s1'><url-data xmlns='http://jabber.org/protocol/url-data' target='{GET}'/></sources>\
             <x xmlns='jabber:x:oob'><url>{GET}</url></x>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:sfs:0'><body/></fallback></message>"
        )
    );
}

#[test]
fn builders_read_back() {
    let meta = FileMetadata::new()
        .with_name("a.jpg")
        .with_hashes(FileHasher::new().finish());
    let m = share::inline(Message::chat(None), &get(), meta.clone());
    let wire =
        Message::try_from(String::from(&Element::from(m)).parse::<Element>().unwrap()).unwrap();
    let Incoming::Sfs(s) = share::classify(&wire) else {
        panic!()
    };
    assert_eq!(s[0].file, meta);
    assert_eq!(s[0].urls(), [GET]);

    let m = share::legacy(Message::chat(None), &get());
    assert_eq!(share::classify(&m), Incoming::Url(get()));
    assert!(!share::is_sfs_fallback(&m));
}

fn with_payload(mut m: Message, xml: &str) -> Message {
    m.payloads.push(xml.parse().unwrap());
    m
}

#[test]
fn attach_targets_follow_xep0367() {
    let mut chat = Message::chat(None);
    assert_eq!(AttachTarget::chat(&chat), None);
    chat.id = Some(Id("msg-1".into()));
    assert_eq!(AttachTarget::chat(&chat).unwrap().id(), "msg-1");
    let chat = with_payload(chat, "<origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/>");
    assert_eq!(
        AttachTarget::chat(&chat),
        Some(AttachTarget::Chat {
            id: "origin-1".into()
        })
    );

    let mut reflection =
        Message::groupchat(Some("romeo@montague.example/orchard".parse().unwrap()));
    reflection.from = Some("verona@rooms.example/romeo".parse().unwrap());
    reflection.id = Some(Id("msg-2".into()));
    assert_eq!(
        AttachTarget::chat(&reflection),
        None,
        "never the message id in a room"
    );
    assert_eq!(
        AttachTarget::groupchat(&reflection),
        None,
        "no stanza-id from the room"
    );
    let reflection = with_payload(
        reflection,
        "<stanza-id xmlns='urn:xmpp:sid:0' by='romeo@montague.example' id='forged'/>",
    );
    assert_eq!(
        AttachTarget::groupchat(&reflection),
        None,
        "a stanza-id by someone else"
    );
    let reflection = with_payload(
        reflection,
        "<stanza-id xmlns='urn:xmpp:sid:0' by='verona@rooms.example' id='room-77'/>",
    );
    assert_eq!(
        AttachTarget::groupchat(&reflection),
        Some(AttachTarget::Groupchat {
            room_stanza_id: "room-77".into()
        })
    );
    assert_eq!(reflection.type_, MessageType::Groupchat);
}

fn body(text: &str) -> Message {
    Message::chat(None).with_body(Lang::new(), text.to_owned())
}

#[test]
fn classify_bodies() {
    let key88 =
        "8c3d050e9386ec173861778f68e9af38a97aaf82faa4063b4d0878a61261534410c8a84331eaac851759f587";
    let key96 = "8c3d050e9386ec173861778f0001020368e9af38a97aaf82faa4063b4d0878a61261534410c8a84331eaac851759f587";
    let link = format!("aesgcm://download.montague.example/b6c9/fox.txt#{key88}");
    assert_eq!(
        share::classify(&body(&link)),
        Incoming::AesGcm(share::AesGcmLink(link.clone()))
    );
    let link16 = format!(
        "aesgcm://download.montague.example/b6c9/fox.txt#{}",
        key96.to_uppercase()
    );
    assert!(matches!(
        share::classify(&body(&link16)),
        Incoming::AesGcm(_)
    ));
    let dbg = format!("{:?}", share::AesGcmLink(link.clone()));
    assert!(!dbg.contains(key88), "{dbg}");
    for not_a_link in [
        format!(
            "aesgcm://download.montague.example/b6c9/fox.txt#{}",
            &key88[1..]
        ),
        format!("{link}\ndata:image/jpeg,xyz"),
        format!("look: {link}"),
        format!("aesgcm://#{key88}"),
        format!(
            "aesgcm://download.montague.example/fox.txt#{}",
            "g".repeat(88)
        ),
    ] {
        assert_eq!(
            share::classify(&body(&not_a_link)),
            Incoming::None,
            "{not_a_link}"
        );
    }
    assert_eq!(share::classify(&body(GET)), Incoming::Url(get()));
    assert_eq!(
        share::classify(&body("see https://a.example/x")),
        Incoming::None
    );
    assert_eq!(
        share::classify(&body("http://a.example/x.png")),
        Incoming::None
    );
    let oob = with_payload(
        body("http://a.example/x.png"),
        "<x xmlns='jabber:x:oob'><url>http://a.example/x.png</url></x>",
    );
    assert_eq!(
        share::classify(&oob),
        Incoming::Url(Url::parse("http://a.example/x.png").unwrap())
    );
    assert_eq!(share::classify(&Message::chat(None)), Incoming::None);
    assert_eq!(share::classify(&body("")), Incoming::None);
}

/// `depth` nested elements. (Far deeper trees overflow the test thread's stack in minidom
/// itself, building or dropping the tree; an XMPP stream parser bounds depth before that.
/// This crate's readers only walk them iteratively and bounded.)
fn deep(depth: usize) -> String {
    format!(
        "{}{}",
        "<a xmlns='urn:example:deep'>".repeat(depth),
        "</a>".repeat(depth)
    )
}

#[test]
fn hostile_inputs_are_bounded() {
    let hash = "<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI=</hash>";
    let desc = |i: usize| format!("<desc xml:lang='l{i}'>d</desc>");
    let thumb = "<thumbnail xmlns='urn:xmpp:thumbs:1' uri='data:,x'/>";
    let url =
        "<url-data xmlns='http://jabber.org/protocol/url-data' target='https://a.example/x'/>";
    let xml = format!(
        "<file-sharing xmlns='urn:xmpp:sfs:0'><file xmlns='urn:xmpp:file:metadata:0'>{}{}{}</file>\
         <sources>{}{}</sources></file-sharing>",
        hash.repeat(5000),
        (0..1000).map(desc).collect::<String>(),
        thumb.repeat(1000),
        deep(300),
        url.repeat(5000),
    );
    let el: Element = xml.parse().unwrap();
    let s = FileSharing::try_from(&el).unwrap();
    assert_eq!(s.file.hashes.len(), MAX_HASHES);
    assert_eq!(s.file.descs.len(), MAX_DESCS);
    assert!(s.file.thumbnails.len() <= xmpp_upload::stanza::file_metadata::MAX_THUMBNAILS);
    let items = &s.sources.as_ref().unwrap().items;
    assert_eq!(items.len(), MAX_SOURCES);
    assert!(
        items.iter().all(|i| matches!(i, Source::Url(_))),
        "the deep source was dropped"
    );

    // Encrypted inside encrypted inside encrypted…: parsed one level, the rest kept small or dropped.
    let enc_open = "<encrypted xmlns='urn:xmpp:esfs:0' cipher='x'><key>AA==</key><iv>AA==</iv><sources xmlns='urn:xmpp:sfs:0'>";
    let enc_close = "</sources></encrypted>";
    for depth in [2, 3, 100] {
        let xml = format!(
            "<sources xmlns='urn:xmpp:sfs:0'>{}{}</sources>",
            enc_open.repeat(depth),
            enc_close.repeat(depth)
        );
        let s = Sources::try_from(&xml.parse::<Element>().unwrap()).unwrap();
        let Some(Source::Encrypted(e)) = s.items.first() else {
            panic!("depth {depth}")
        };
        match (depth, e.sources.as_slice()) {
            (2, [Source::Other(inner)]) => assert_eq!(inner.name(), "encrypted"),
            (100, []) => {}
            (3, [Source::Other(_)]) => {}
            (d, other) => panic!("depth {d}: {other:?}"),
        }
    }

    // A message full of shares and junk classifies without panicking.
    let share = "<file-sharing xmlns='urn:xmpp:sfs:0'><file xmlns='urn:xmpp:file:metadata:0'/></file-sharing>";
    let xml = format!(
        "<message xmlns='{NS}'>{}{}</message>",
        share.repeat(100),
        deep(300)
    );
    let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
    let Incoming::Sfs(s) = share::classify(&m) else {
        panic!()
    };
    assert_eq!(s.len(), share::MAX_SHARES);
}

#[test]
fn url_data_headers() {
    let xml = "<url-data xmlns='http://jabber.org/protocol/url-data' \
        xmlns:http='http://jabber.org/protocol/url-data/scheme/http' target='https://a.example/f'>\
        <http:header name='Cookie' value='session=1'/><http:header name='broken'/></url-data>";
    let u = UrlData::try_from(&xml.parse::<Element>().unwrap()).unwrap();
    assert_eq!(
        u.http_headers,
        [("Cookie".to_owned(), "session=1".to_owned())]
    );
    assert_eq!(UrlData::try_from(&Element::from(&u)).unwrap(), u);
}

// ---- the hasher -------------------------------------------------------------------------

fn b64(algo: HashAlgo, data: &[u8]) -> String {
    let mut h = FileHasher::new().with(algo);
    h.update(data);
    let hashes = h.finish();
    hashes
        .iter()
        .find(|x| HashAlgo::from_algo(&x.algo) == Some(algo))
        .unwrap()
        .to_base64()
}

#[test]
fn hasher_vectors() {
    assert_eq!(
        b64(HashAlgo::Sha256, FOX),
        "16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI="
    );
    assert_eq!(
        b64(HashAlgo::Sha512, FOX),
        "B+VH2VhvanP3P7rAQ17XaVEhj7fQyNeIownXhUNru2Quk6JSqVTyORJUfR6KO17W4b/XCXghIz+gU489uFT+5g=="
    );
    assert_eq!(
        b64(HashAlgo::Sha3_256, FOX),
        "aQcN2gGXXIwSDDqtobKCOU5/Ay+pzzL0yyJZoIl9/AQ="
    );
    assert_eq!(
        b64(HashAlgo::Blake2b256, FOX),
        "AXGM7DXNPXlt0AAg4L/stHOtI0V9Bjt17/KcD/ouWKk="
    );
    // Python hashlib values for the other four.
    assert_eq!(b64(HashAlgo::Sha1, FOX), "L9ThxnotKPzthJ7hu3bnORuT6xI=");
    assert_eq!(
        b64(HashAlgo::Sha384, FOX),
        "ynN/EBSkj0wLbdQ8sXewr9nlFpNnVExJQBHjMX2/mlCcseXcHoWpQbvuPX8q+8mx"
    );
    assert_eq!(
        b64(HashAlgo::Blake2b512, FOX),
        "qK3Uvd39k+SHfSdG5igXsRY2Sh+nvBSNlQkLxzM7NnP4JAHPeqLkyx7NkCluPxTLVBP47Xe+cwRbE5FM3NapGA=="
    );
    assert_eq!(
        b64(HashAlgo::Sha3_512, FOX),
        "Ad7dXeTvFGQkRbpfW5fBXke5rZMTJuSwcnzZTO/ET/8j8Hv1QxOZObSRKMr0Ntwb3uVPyyQCOgjZQD+bS/DUUA=="
    );
}

#[test]
fn hasher_streams_like_one_shot() {
    let data: Vec<u8> = (0..100_003u32).map(|i| (i % 251) as u8).collect();
    let all = || {
        HashAlgo::ALL
            .into_iter()
            .fold(FileHasher::new(), FileHasher::with)
    };
    let mut one = all();
    one.update(&data);
    let expected = one.finish();
    assert_eq!(expected.len(), 8);
    assert_eq!(expected[0].algo, Algo::Sha_256);
    // A small LCG for reproducible random splits, including empty and 1-byte chunks.
    let mut seed = 0x2545_f491_u64;
    for _ in 0..20 {
        let mut h = all();
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let n = ((seed >> 33) as usize % 300).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            h.update(chunk);
            rest = tail;
        }
        assert_eq!(h.finish(), expected);
    }
}

#[test]
fn verifier_knows_the_spellings() {
    let blake = "AXGM7DXNPXlt0AAg4L/stHOtI0V9Bjt17/KcD/ouWKk=";
    for name in ["blake2b-256", "id-blake2b256", "BLAKE2b256"] {
        let h = Hash::from_base64(name.parse().unwrap(), blake).unwrap();
        assert_eq!(verify(std::slice::from_ref(&h), FOX), Ok(()), "{name}");
        assert_eq!(
            verify(&[h], b"dog"),
            Err(VerifyError::Mismatch("blake2b-256")),
            "{name}"
        );
    }
    let sha384 = Hash::from_base64(
        Algo::Unknown("sha-384".into()),
        "ynN/EBSkj0wLbdQ8sXewr9nlFpNnVExJQBHjMX2/mlCcseXcHoWpQbvuPX8q+8mx",
    )
    .unwrap();
    let mut v = Verifier::new(&[sha384]).unwrap();
    v.update(&FOX[..10]);
    v.update(&FOX[10..]);
    assert_eq!(v.finish(), Ok(()));

    let md5 = Hash::new(Algo::Unknown("md5".into()), vec![0; 16]);
    assert_eq!(
        Verifier::new(std::slice::from_ref(&md5)).unwrap_err(),
        VerifyError::NoSupportedHash
    );
    assert_eq!(verify(&[], FOX), Err(VerifyError::NoSupportedHash));
    // One good, one bad: a mismatch is a mismatch.
    let bad = Hash::new(Algo::Sha_512, vec![0; 64]);
    assert_eq!(
        verify(&[md5, fox_sha256(), bad], FOX),
        Err(VerifyError::Mismatch("sha-512"))
    );
    // Computed without the announced algorithm: nothing compared.
    assert_eq!(
        verify_hashes(
            &[Hash::new(Algo::Sha3_512, vec![1; 64])],
            &FileHasher::new().finish()
        ),
        Err(VerifyError::NoSupportedHash)
    );
}
