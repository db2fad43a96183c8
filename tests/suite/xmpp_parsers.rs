//! Every wire type through xmpp-parsers' `Iq` and `Message`, in both directions, with the
//! XEP-0363 and p1 spec examples of `tests/fixtures/` as inputs.
//!
//! Each test reads a spec example with `Iq::try_from` (or `Message::try_from`), takes the
//! payload out with the type's `TryFrom<Element>`, checks it field by field, then builds the
//! stanza again with `Iq::from_get`/`from_set`/`from_result` (or `Message::with_payload`),
//! serialises it, parses it back and compares the payload with the first one.
//!
//! The dev-dependency `tokio-xmpp` turns on xmpp-parsers' `component` feature for the whole
//! build, which makes `jabber:component:accept` its stanza namespace; the fixtures are read in
//! `xmpp_parsers::ns::DEFAULT_NS`, whichever it is, so these tests hold either way.

use std::path::Path;

use minidom::Element;
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::iq::{Iq, IqGetPayload, IqResultPayload, IqSetPayload};
use xmpp_parsers::message::{Lang, Message, MessagePayload};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};
use xmpp_parsers::FromElementError;
use xmpp_upload::stanza::disco::ServiceInfo;
use xmpp_upload::stanza::error::{
    file_too_large, quota_exceeded, ErrorPayload, UploadErrorPayload,
};
use xmpp_upload::stanza::file_transfer::{
    decode_md5, DownloadRequest, DownloadResult, FileMessage, Namespace, UploadRequest,
    UploadResult,
};
use xmpp_upload::stanza::upload::{HeaderName, Purpose, Slot, SlotRequest};
use xmpp_upload::stanza::{Dialect, ParseError};

/// A fixture under `tests/fixtures/`, its source comment dropped and the stream's default
/// namespace (which spec examples leave out) set to xmpp-parsers' `DEFAULT_NS`.
fn fixture(path: &str) -> Element {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut xml = text.trim_start();
    while let Some(rest) = xml.strip_prefix("<!--") {
        let end = rest.find("-->").expect("a closed comment");
        xml = rest[end + 3..].trim_start();
    }
    let name_end = xml
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .expect("a root element");
    let xml = format!(
        "{} xmlns='{}'{}",
        &xml[..name_end],
        xmpp_parsers::ns::DEFAULT_NS,
        &xml[name_end..]
    );
    xml.parse()
        .unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

fn iq(path: &str) -> Iq {
    Iq::try_from(fixture(path)).unwrap_or_else(|e| panic!("{path}: not an xmpp-parsers Iq: {e}"))
}

/// Serialises an IQ and parses it back, as a peer would receive it.
fn over_the_wire(iq: Iq) -> Iq {
    let el = Element::from(iq);
    assert_eq!(el.name(), "iq");
    assert_eq!(el.ns(), xmpp_parsers::ns::DEFAULT_NS);
    let text = String::from(&el);
    Iq::try_from(text.parse::<Element>().unwrap()).unwrap()
}

fn get_payload(iq: Iq) -> Element {
    match iq {
        Iq::Get { payload, .. } => payload,
        other => panic!("not a get: {other:?}"),
    }
}

fn set_payload(iq: Iq) -> Element {
    match iq {
        Iq::Set { payload, .. } => payload,
        other => panic!("not a set: {other:?}"),
    }
}

fn result_payload(iq: Iq) -> Element {
    match iq {
        Iq::Result {
            payload: Some(payload),
            ..
        } => payload,
        other => panic!("not a result with a payload: {other:?}"),
    }
}

/// The payload types plug into xmpp-parsers' builders (checked when this compiles).
#[test]
fn marker_traits() {
    fn get<T: IqGetPayload>() {}
    fn set<T: IqSetPayload>() {}
    fn result<T: IqResultPayload>() {}
    fn message<T: MessagePayload>() {}
    get::<SlotRequest>();
    get::<DownloadRequest>();
    set::<UploadRequest>();
    result::<Slot>();
    result::<UploadResult>();
    result::<DownloadResult>();
    result::<ServiceInfo>();
    message::<FileMessage>();
    // The fixed name: a slot request IQ in one line.
    let iq = Iq::from_get("step_03", SlotRequest::new("très cool.jpg", 23456));
    assert_eq!(iq.id(), "step_03");
    assert!(matches!(iq, Iq::Get { .. }));
}

#[test]
fn slot_requests_xep0363_examples() {
    let cases = [
        (
            "xep0363/xep0363-1.2.0-ex05-slot-request.xml",
            SlotRequest::new("très cool.jpg", 23456).with_content_type("image/jpeg"),
        ),
        (
            "xep0363/xep0363-0.2.5-ex05-slot-request.xml",
            SlotRequest::new("my_juliet.png", 23456)
                .with_content_type("image/jpeg")
                .with_dialect(Dialect::Legacy),
        ),
        (
            "xep0363/xep0363-1.2.0-purpose-message-request.xml",
            SlotRequest::new("très cool.jpg", 23456)
                .with_content_type("image/jpeg")
                .with_purpose(Purpose::Message),
        ),
        (
            "xep0363/xep0363-1.2.0-purpose-profile-request.xml",
            SlotRequest::new("avatar.png", 23456)
                .with_content_type("image/png")
                .with_purpose(Purpose::Profile),
        ),
        (
            "xep0363/xep0363-1.2.0-purpose-ephemeral-noattr-request.xml",
            SlotRequest::new("story.mp4", 23456)
                .with_content_type("video/mp4")
                .with_purpose(Purpose::Ephemeral {
                    expire_before: None,
                }),
        ),
        (
            "xep0363/xep0363-1.2.0-purpose-ephemeral-request.xml",
            SlotRequest::new("story.mp4", 23456)
                .with_content_type("video/mp4")
                .with_purpose(Purpose::Ephemeral {
                    expire_before: Some(time::macros::datetime!(2025-07-01 00:00 UTC)),
                }),
        ),
        (
            "xep0363/xep0363-1.2.0-purpose-permanent-request.xml",
            SlotRequest::new("blog-header.jpg", 23456)
                .with_content_type("image/jpeg")
                .with_purpose(Purpose::Permanent),
        ),
    ];
    for (path, expected) in cases {
        let iq = iq(path);
        assert_eq!(iq.id(), "step_03", "{path}");
        let request = SlotRequest::try_from(get_payload(iq)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request, expected, "{path}");

        let built = Iq::from_get("step_03", request.clone())
            .with_to("upload.montague.tld".parse().unwrap());
        let back = over_the_wire(built);
        assert_eq!(
            back.to().map(|j| j.to_string()).as_deref(),
            Some("upload.montague.tld")
        );
        let payload = get_payload(back);
        assert_eq!(payload.ns(), request.dialect.namespace(), "{path}");
        assert_eq!(SlotRequest::try_from(payload).unwrap(), request, "{path}");
    }
}

#[test]
fn slots_xep0363_examples() {
    // 1.2.0 example 6: the current dialect, with two headers.
    let slot = Slot::try_from(result_payload(iq(
        "xep0363/xep0363-1.2.0-ex06-slot-result.xml",
    )))
    .unwrap();
    assert_eq!(slot.dialect, Dialect::V0);
    assert_eq!(
        slot.put.as_str(),
        "https://upload.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg"
    );
    assert_eq!(
        slot.get.as_str(),
        "https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg"
    );
    let headers: Vec<(HeaderName, &str)> = slot
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.value.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            (HeaderName::Authorization, "Basic Base64String=="),
            (HeaderName::Cookie, "foo=bar; user=romeo"),
        ]
    );
    let back = Slot::try_from(result_payload(over_the_wire(Iq::from_result(
        "step_03",
        Some(slot.clone()),
    ))))
    .unwrap();
    assert_eq!(back, slot);

    // 0.2.5 example 6: the legacy dialect, answered in it again.
    let legacy = Slot::try_from(result_payload(iq(
        "xep0363/xep0363-0.2.5-ex06-slot-result.xml",
    )))
    .unwrap();
    assert_eq!(legacy.dialect, Dialect::Legacy);
    assert!(legacy.put.as_str().ends_with("/my_juliet.png"));
    let el = result_payload(over_the_wire(Iq::from_result(
        "step_03",
        Some(legacy.clone()),
    )));
    assert_eq!(el.ns(), "urn:xmpp:http:upload");
    assert!(el
        .get_child("put", "urn:xmpp:http:upload")
        .is_some_and(|p| p.attr("url").is_none()));
    assert_eq!(Slot::try_from(el).unwrap(), legacy);

    // 0.4.0 example 6: a header XEP-0363 1.0 forbids (Host) is skipped, the slot kept.
    let host = Slot::try_from(result_payload(iq(
        "xep0363/xep0363-0.4.0-ex06-slot-result-host-header.xml",
    )))
    .unwrap();
    assert!(host.headers.iter().all(|h| matches!(
        h.name,
        HeaderName::Authorization | HeaderName::Cookie | HeaderName::Expires
    )));
}

#[test]
fn errors_xep0363_examples() {
    let cases = [
        (
            "xep0363/xep0363-1.2.0-err-file-too-large.xml",
            Dialect::V0,
            ErrorType::Modify,
            DefinedCondition::NotAcceptable,
            Some(ErrorPayload::FileTooLarge {
                max_file_size: 20000,
            }),
        ),
        (
            "xep0363/xep0363-0.2.5-ex07-err-file-too-large.xml",
            Dialect::Legacy,
            ErrorType::Modify,
            DefinedCondition::NotAcceptable,
            Some(ErrorPayload::FileTooLarge {
                max_file_size: 20000,
            }),
        ),
        (
            "xep0363/xep0363-1.2.0-err-quota-retry.xml",
            Dialect::V0,
            ErrorType::Wait,
            DefinedCondition::ResourceConstraint,
            Some(ErrorPayload::Retry {
                stamp: time::macros::datetime!(2017-12-03 23:42:05 UTC),
            }),
        ),
        (
            "xep0363/xep0363-1.2.0-err-forbidden.xml",
            Dialect::V0,
            ErrorType::Auth,
            DefinedCondition::Forbidden,
            None,
        ),
    ];
    for (path, dialect, type_, condition, payload) in cases {
        let Iq::Error {
            error,
            payload: echo,
            ..
        } = iq(path)
        else {
            panic!("{path}: not an error");
        };
        assert_eq!(
            (&error.type_, &error.defined_condition),
            (&type_, &condition),
            "{path}"
        );
        let found = UploadErrorPayload::from_stanza_error(&error);
        assert_eq!(
            found,
            payload.map(|p| UploadErrorPayload::new(dialect, p)),
            "{path}"
        );
        // The echoed request is a slot request of the same dialect.
        let echo = SlotRequest::try_from(echo.expect("the request is echoed")).unwrap();
        assert_eq!(echo.dialect, dialect, "{path}");

        // Built with this crate's StanzaError constructors, read back the same.
        let Some(p) = found else { continue };
        let built = match p.payload {
            ErrorPayload::FileTooLarge { max_file_size } => file_too_large(dialect, max_file_size),
            ErrorPayload::Retry { stamp } => quota_exceeded(dialect, Some(stamp)),
            other => panic!("{other:?}"),
        };
        let Iq::Error { error, .. } = over_the_wire(Iq::from_error("step_03", built)) else {
            panic!("{path}: not an error");
        };
        assert_eq!(
            (&error.type_, &error.defined_condition),
            (&type_, &condition),
            "{path}"
        );
        let other = error.other.clone().expect("the upload payload");
        assert_eq!(UploadErrorPayload::try_from(other).unwrap(), p, "{path}");
    }
}

#[test]
fn disco_info_xep0363_example() {
    let payload = result_payload(iq("xep0363/xep0363-1.2.0-ex04-disco-info-result.xml"));
    let info = ServiceInfo::try_from(payload.clone()).unwrap();
    assert_eq!(info.name.as_deref(), Some("HTTP File Upload"));
    assert_eq!(info.dialects, [Dialect::V0]);
    assert_eq!(info.max_file_size, Some(5_242_880));
    assert!(!info.file_transfer);

    // The same through xmpp-parsers' DiscoInfoResult, both ways.
    let disco = DiscoInfoResult::try_from(payload).unwrap();
    assert_eq!(ServiceInfo::try_from(&disco).unwrap(), info);
    let rebuilt = DiscoInfoResult::from(&info);
    assert_eq!(rebuilt.identities, disco.identities);
    assert_eq!(rebuilt.features, disco.features);
    assert_eq!(rebuilt.extensions, disco.extensions);

    let back = result_payload(over_the_wire(Iq::from_result(
        "step_02",
        Some(info.clone()),
    )));
    assert_eq!(ServiceInfo::try_from(back).unwrap(), info);
}

#[test]
fn disco_info_p1_example() {
    // The p1 spec's example keeps "..." text in the query: read leniently.
    let root = fixture("p1/p1-v2-ex02-disco-info-result.xml");
    let query = root.children().next().unwrap();
    let info = ServiceInfo::try_from(query).unwrap();
    assert!(info.file_transfer);
    assert!(info.dialects.is_empty());
    let back = result_payload(over_the_wire(Iq::from_result("disco1", Some(info.clone()))));
    assert!(back
        .children()
        .any(|f| f.name() == "feature" && f.attr("var") == Some("p1:http-file-transfer")));
    assert_eq!(ServiceInfo::try_from(back).unwrap(), info);
}

#[test]
fn not_an_upload_payload_is_given_back() {
    // A receiver can try the types in turn: a mismatch returns the element untouched.
    let payload = result_payload(iq("p1/p1-v2-ex10-download-result.xml"));
    let payload = match SlotRequest::try_from(payload) {
        Err(FromElementError::Mismatch(e)) => e,
        other => panic!("{other:?}"),
    };
    let payload = match UploadResult::try_from(payload) {
        Err(FromElementError::Mismatch(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(DownloadResult::try_from(payload).is_ok());
}

const MD5: &str = "qN48INKsmQyPMZkHs0DWog==";
const FILE_ID: &str = "6e84ff49-8156-4d59-8108-1069cd3e78ad";

#[test]
fn p1_upload_requests() {
    for path in [
        "p1/p1-v1-ex03-upload-request.xml",
        "p1/p1-v2-ex03-upload-request.xml",
    ] {
        let iq = iq(path);
        assert_eq!(iq.id(), "upload1");
        let request = UploadRequest::try_from(set_payload(iq)).unwrap();
        assert_eq!(
            request,
            UploadRequest::new(decode_md5(MD5).unwrap()),
            "{path}"
        );
        assert_eq!(request.namespace, Namespace::HttpFileTransfer);

        let back = set_payload(over_the_wire(Iq::from_set("upload1", request.clone())));
        assert_eq!(back.attr("md5"), Some(MD5));
        assert_eq!(UploadRequest::try_from(back).unwrap(), request, "{path}");
    }
    // In the production namespace, built there directly.
    let s3 = UploadRequest::new(decode_md5(MD5).unwrap())
        .with_file("a.jpg", 5, Some("image/jpeg"))
        .with_namespace(Namespace::S3FileTransfer);
    let back = set_payload(over_the_wire(Iq::from_set("upload2", s3.clone())));
    assert_eq!(back.ns(), "p1:s3filetransfer");
    assert_eq!(UploadRequest::try_from(back).unwrap(), s3);
}

#[test]
fn p1_upload_results() {
    let cases = [
        ("p1/p1-v1-ex04-upload-result-s3.xml", "https://bucket.s3.amazonaws.com/6e84ff49-8156-4d59-8108-1069cd3e78ad?AWSAccessKeyId=AKIAIJYQAA3X7VF2C6YQ&Expires=1422975296&Signature=x6zMZnWUxgNwOamwkpWID4X2gsc%3D", 0),
        ("p1/p1-v2-ex04-upload-result-fileid.xml", "https://files.example.com/upload/x6zMZnWUxgNwOamwkpWID4X2gsc", 0),
        ("p1/p1-v2-ex05-upload-result-headers-fixed.xml", "https://files.example.com/upload/x6zMZnWUxgNwOamwkpWID4X2gsc", 2),
    ];
    for (path, upload, headers) in cases {
        let result = UploadResult::try_from(result_payload(iq(path))).unwrap();
        assert_eq!(result.upload.as_str(), upload, "{path}");
        assert_eq!(result.fileid.as_deref(), Some(FILE_ID), "{path}");
        assert_eq!(result.download, None, "{path}");
        assert_eq!(result.headers.len(), headers, "{path}");

        let back = result_payload(over_the_wire(Iq::from_result(
            "upload1",
            Some(result.clone()),
        )));
        assert_eq!(UploadResult::try_from(back).unwrap(), result, "{path}");
    }
    let with_headers = UploadResult::try_from(result_payload(iq(
        "p1/p1-v2-ex05-upload-result-headers-fixed.xml",
    )))
    .unwrap();
    assert_eq!(
        (
            with_headers.headers[1].name.as_str(),
            with_headers.headers[1].value.as_str()
        ),
        ("Content-MD5", MD5)
    );
}

#[test]
fn p1_download_requests_and_results() {
    for path in [
        "p1/p1-v1-ex07-download-request.xml",
        "p1/p1-v2-ex09-download-request.xml",
    ] {
        let request = DownloadRequest::try_from(get_payload(iq(path))).unwrap();
        assert_eq!(request, DownloadRequest::new(FILE_ID), "{path}");
        let back = get_payload(over_the_wire(Iq::from_get("download1", request.clone())));
        assert_eq!(DownloadRequest::try_from(back).unwrap(), request, "{path}");
    }
    for (path, url) in [
        ("p1/p1-v1-ex08-download-result-s3.xml", "https://bucket.s3.amazonaws.com/6e84ff49-8156-4d59-8108-1069cd3e78ad?AWSAccessKeyId=AKIAIJYQAA3X7VF2C6YQ&Expires=1422975296&Signature=aynmxSLHof6sAPqPqPqvV8l5eNWyM%3D"),
        ("p1/p1-v2-ex10-download-result.xml", "http://files.example.com/download/58351C33-9F3A-4D84-913C-BD6A2D8CED12/FILENAME"),
    ] {
        let result = DownloadResult::try_from(result_payload(iq(path))).unwrap();
        assert_eq!(result.download.as_str(), url, "{path}");
        let back = result_payload(over_the_wire(Iq::from_result("download1", Some(result.clone()))));
        assert_eq!(DownloadResult::try_from(back).unwrap(), result, "{path}");
    }
    // A reply in the namespace of its request, without rewriting.
    let request = DownloadRequest::new(FILE_ID).with_namespace(Namespace::S3FileTransfer);
    let request =
        DownloadRequest::try_from(get_payload(over_the_wire(Iq::from_get("d2", request)))).unwrap();
    let reply = DownloadResult::new("https://s.example/d".parse().unwrap())
        .with_namespace(request.namespace);
    let back = result_payload(over_the_wire(Iq::from_result("d2", Some(reply))));
    assert_eq!(back.ns(), "p1:s3filetransfer");
}

#[test]
fn p1_file_messages() {
    let download =
        "http://files.example.com/download/58351C33-9F3A-4D84-913C-BD6A2D8CED12/FILENAME";
    for (path, with_download) in [
        ("p1/p1-v1-ex05-message-fileid.xml", false),
        ("p1/p1-v2-ex06-message-fileid.xml", false),
        ("p1/p1-v2-ex07-message-fileid-download.xml", true),
        ("p1/p1-v2-ex08-message-received.xml", true),
    ] {
        let mut message =
            Message::try_from(fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (_, body) = message.get_best_body_cloned(vec![]).expect("a body");
        assert!(
            body.contains(FILE_ID) || body.contains("FILENAME"),
            "{path}"
        );
        let x = message
            .extract_payload::<FileMessage>()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .expect("an <x/>");
        let mut expected = FileMessage::new("FILENAME", FILE_ID);
        if with_download {
            expected = expected.with_download(download.parse().unwrap());
        }
        assert_eq!(x, expected, "{path}");

        let built = Message::chat(Some("receiver@domain.com".parse().unwrap()))
            .with_body(Lang::new(), body)
            .with_payload(x.clone());
        let text = String::from(&Element::from(built));
        let mut back = Message::try_from(text.parse::<Element>().unwrap()).unwrap();
        assert_eq!(
            back.extract_payload::<FileMessage>().unwrap(),
            Some(x),
            "{path}"
        );
    }
    // A malformed <x/> is an error, typed underneath.
    let bad = Element::from(FileMessage::new("a", "b"));
    let mut bad_x = Element::bare("x", "p1:http-file-transfer");
    bad_x.append_child(Element::bare("y", "p1:http-file-transfer"));
    assert_ne!(bad, bad_x);
    let mut message = Message::chat(None).with_payloads(vec![bad_x]);
    let err = message.extract_payload::<FileMessage>().unwrap_err();
    assert_eq!(
        ParseError::from_xso(&err),
        Some(&ParseError::MissingAttribute("fileid"))
    );
}

#[test]
fn client_captures_in_older_dialects_and_the_s3_namespace() {
    // Conversations 2015 and Smack 4.2.0: the dialect survives the trip through Iq.
    for (path, dialect) in [
        (
            "clients/c01-conversations-2015-eu-siacs-request.xml",
            Dialect::Siacs,
        ),
        (
            "clients/c23-smack-4.2.0-hybrid-request-zom268.xml",
            Dialect::HybridV0,
        ),
    ] {
        let request = SlotRequest::try_from(get_payload(iq(path))).unwrap();
        assert_eq!(request.dialect, dialect, "{path}");
        let back = get_payload(over_the_wire(Iq::from_get("r", request.clone())));
        assert_eq!(SlotRequest::try_from(back).unwrap(), request, "{path}");
    }
    let slot = Slot::try_from(result_payload(iq(
        "clients/c02-prosody-2015-eu-siacs-slot-result.xml",
    )))
    .unwrap();
    assert_eq!(slot.dialect, Dialect::Siacs);
    let back = result_payload(over_the_wire(Iq::from_result("s", Some(slot.clone()))));
    assert_eq!(back.ns(), "eu:siacs:conversations:http:upload");
    assert_eq!(Slot::try_from(back).unwrap(), slot);
    let hybrid = Slot::try_from(fixture("clients/c27-smack-4.2.0-hybrid-slot-test.xml")).unwrap();
    assert_eq!(hybrid.dialect, Dialect::HybridV0);
    let back = result_payload(over_the_wire(Iq::from_result("s", Some(hybrid.clone()))));
    assert_eq!(Slot::try_from(back).unwrap(), hybrid);

    // Conversations' p1:s3filetransfer: each payload keeps its namespace.
    let up = UploadRequest::try_from(set_payload(iq(
        "clients/c10-conversations-p1-s3-upload-request.xml",
    )))
    .unwrap();
    assert_eq!(up.namespace, Namespace::S3FileTransfer);
    let back = set_payload(over_the_wire(Iq::from_set("u", up.clone())));
    assert_eq!(back.ns(), "p1:s3filetransfer");
    assert_eq!(UploadRequest::try_from(back).unwrap(), up);
    let down = DownloadRequest::try_from(get_payload(iq(
        "clients/c11-conversations-p1-s3-download-request.xml",
    )))
    .unwrap();
    assert_eq!(
        down,
        DownloadRequest::new(FILE_ID).with_namespace(Namespace::S3FileTransfer)
    );
    let mut message =
        Message::try_from(fixture("clients/c12-conversations-p1-s3-message.xml")).unwrap();
    let x = message.extract_payload::<FileMessage>().unwrap().unwrap();
    assert_eq!(
        x,
        FileMessage::new("photo.jpg", FILE_ID).with_namespace(Namespace::S3FileTransfer)
    );
}
