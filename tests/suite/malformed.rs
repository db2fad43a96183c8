//! A table of malformed payloads, each matched to its `ParseError` variant (never a panic).

use minidom::Element;
use xmpp_upload::stanza::disco::ServiceInfo;
use xmpp_upload::stanza::error::ErrorPayload;
use xmpp_upload::stanza::file_transfer::{FileMessage, Query};
use xmpp_upload::stanza::upload::{Slot, SlotRequest};
use xmpp_upload::stanza::{ParseError as E, SizeError as S};

fn el(xml: &str) -> Element {
    xml.parse().unwrap_or_else(|e| panic!("{e}: {xml}"))
}

macro_rules! table {
    ($($name:ident: $parser:expr, $xml:expr => $pat:pat,)*) => {
        #[test]
        fn malformed_inputs_get_typed_errors() {
            let mut n = 0;
            $(
                let result = $parser(&el($xml));
                assert!(matches!(result, Err($pat)), "{}: {:?}", stringify!($name), result);
                n += 1;
            )*
            assert!(n >= 25, "{n} rows");
        }
    };
}

fn req(e: &Element) -> Result<SlotRequest, E> {
    SlotRequest::parse(e)
}
fn slot(e: &Element) -> Result<Slot, E> {
    Slot::parse(e)
}
fn payload(e: &Element) -> Result<(xmpp_upload::stanza::Dialect, ErrorPayload), E> {
    ErrorPayload::parse(e)
}
fn p1(e: &Element) -> Result<Query, E> {
    Query::parse(e)
}
fn msg(e: &Element) -> Result<FileMessage, E> {
    FileMessage::parse(e)
}
fn disco(e: &Element) -> Result<Option<ServiceInfo>, E> {
    ServiceInfo::parse(e)
}

const V0: &str = "urn:xmpp:http:upload:0";

table! {
    filename_missing: req, "<request xmlns='urn:xmpp:http:upload:0' size='1'/>" => E::MissingAttribute("filename"),
    filename_empty: req, "<request xmlns='urn:xmpp:http:upload:0' filename='' size='1'/>" => E::EmptyFilename,
    legacy_filename_empty: req, "<request xmlns='urn:xmpp:http:upload'><filename> </filename><size>1</size></request>" => E::EmptyFilename,
    legacy_filename_missing: req, "<request xmlns='urn:xmpp:http:upload'><size>1</size></request>" => E::MissingChild("filename"),
    siacs_size_missing: req, "<request xmlns='eu:siacs:conversations:http:upload'><filename>a</filename></request>" => E::MissingChild("size"),
    size_missing: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a'/>" => E::MissingAttribute("size"),
    size_negative: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='-1'/>" => E::InvalidSize(S::Sign),
    size_plus: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='+5'/>" => E::InvalidSize(S::Sign),
    size_exponent: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1e3'/>" => E::InvalidSize(S::NotDecimal),
    size_hex: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='0x10'/>" => E::InvalidSize(S::NotDecimal),
    size_overflow: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='18446744073709551616'/>" => E::InvalidSize(S::TooLarge),
    size_empty: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size=''/>" => E::InvalidSize(S::Empty),
    size_space_attr: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1 '/>" => E::InvalidSize(S::NotDecimal),
    size_decimal_point: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1.0'/>" => E::InvalidSize(S::NotDecimal),
    legacy_size_words: req, "<request xmlns='urn:xmpp:http:upload'><filename>a</filename><size>ten</size></request>" => E::InvalidSize(S::NotDecimal),
    legacy_size_twice: req, "<request xmlns='urn:xmpp:http:upload'><filename>a</filename><size>1</size><size>2</size></request>" => E::DuplicateChild("size"),
    wrong_namespace: req, "<request xmlns='urn:xmpp:http:upload:1' filename='a' size='1'/>" => E::UnexpectedElement { .. },
    wrong_name: req, "<slot xmlns='urn:xmpp:http:upload:0'/>" => E::UnexpectedElement { .. },
    bad_expire_before: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'><ephemeral xmlns='urn:xmpp:http:upload:purpose:0' expire-before='tomorrow'/></request>" => E::InvalidDateTime("expire-before"),
    two_purposes: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'><profile xmlns='urn:xmpp:http:upload:purpose:0'/><message xmlns='urn:xmpp:http:upload:purpose:0'/></request>" => E::DuplicateChild("purpose"),
    hash_not_base64: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>!!!</hash></request>" => E::InvalidHash(_),
    hash_wrong_length: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAA</hash></request>" => E::InvalidHash(_),
    hash_no_algo: req, "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'><hash xmlns='urn:xmpp:hashes:2'>AAAA</hash></request>" => E::InvalidHash(_),
    slot_missing_put: slot, "<slot xmlns='urn:xmpp:http:upload:0'><get url='https://a.example/x'/></slot>" => E::MissingChild("put"),
    slot_missing_get: slot, "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/x'/></slot>" => E::MissingChild("get"),
    slot_two_puts: slot, "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/x'/><put url='https://a.example/y'/><get url='https://a.example/x'/></slot>" => E::DuplicateChild("put"),
    slot_relative_url: slot, "<slot xmlns='urn:xmpp:http:upload:0'><put url='/x'/><get url='https://a.example/x'/></slot>" => E::InvalidUrl("put"),
    slot_empty_legacy_put: slot, "<slot xmlns='urn:xmpp:http:upload'><put/><get>https://a.example/x</get></slot>" => E::MissingAttribute("url"),
    retry_no_stamp: payload, "<retry xmlns='urn:xmpp:http:upload:0'/>" => E::MissingAttribute("stamp"),
    retry_bad_stamp: payload, "<retry xmlns='urn:xmpp:http:upload:0' stamp='2017-13-03T23:42:05Z'/>" => E::InvalidDateTime("stamp"),
    too_large_no_max: payload, "<file-too-large xmlns='urn:xmpp:http:upload:0'/>" => E::MissingChild("max-file-size"),
    too_large_bad_max: payload, "<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>5 MB</max-file-size></file-too-large>" => E::InvalidSize(S::NotDecimal),
    payload_wrong_ns: payload, "<file-too-large xmlns='urn:example'/>" => E::UnexpectedElement { .. },
    md5_not_base64: p1, "<query xmlns='p1:http-file-transfer' md5='not base64!'/>" => E::InvalidMd5,
    md5_too_short: p1, "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQ=='/>" => E::InvalidMd5,
    md5_too_long: p1, "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWogAA'/>" => E::InvalidMd5,
    p1_upload_result_without_id_or_download: p1, "<query xmlns='p1:http-file-transfer' upload='https://a.example/u'/>" => E::MissingAttribute("fileid"),
    p1_bad_upload_url: p1, "<query xmlns='p1:http-file-transfer' upload='not a url' fileid='x'/>" => E::InvalidUrl("upload"),
    p1_empty_query: p1, "<query xmlns='p1:http-file-transfer'/>" => E::MissingAttribute("md5"),
    p1_empty_fileid: p1, "<query xmlns='p1:http-file-transfer' fileid=''/>" => E::InvalidValue("fileid"),
    p1_wrong_ns: p1, "<query xmlns='urn:xmpp:http:upload:0'/>" => E::UnexpectedElement { .. },
    p1_message_without_id: msg, "<x xmlns='p1:http-file-transfer' name='a.jpg'/>" => E::MissingAttribute("fileid"),
    disco_bad_max: disco, "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:http:upload:0'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field><field var='max-file-size'><value>-5</value></field></x></query>" => E::InvalidSize(S::Sign),
    disco_not_disco: disco, "<query xmlns='http://jabber.org/protocol/disco#items'/>" => E::UnexpectedElement { .. },
}

#[test]
fn unknown_header_names_are_skipped_not_fatal() {
    let s = Slot::parse(&el(&format!(
        "<slot xmlns='{V0}'><put url='https://a.example/x'><header name='EvilHeader'>x</header><header name='authorization'>Bearer t</header></put><get url='https://a.example/x'/></slot>"
    )))
    .unwrap();
    assert_eq!(s.headers.len(), 1);
    assert_eq!(s.headers[0].name.as_str(), "Authorization");
}
