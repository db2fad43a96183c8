//! Cross-check of `storage::s3` against AWS's own signer, the `aws-sigv4` crate, as an oracle.
//!
//! 400 pseudo-random cases (fixed-seed xorshift, so every run is the same) over endpoints
//! (path-style and virtual-hosted, ports, path prefixes), buckets, regions, credentials with
//! and without session token, keys with Unicode and reserved characters, times, lifetimes,
//! PUT header sets and GET response overrides (`response-content-type`,
//! `response-content-disposition`, signed query parameters). For each case the URL's `X-Amz-Signature` must equal the oracle's signature
//! over the same request, and the query must carry exactly the oracle's parameters. The path is
//! checked separately against an independent strict encoding of prefix, bucket and key, since
//! the oracle (as the AWS SDK's S3 client uses it) signs the path as given.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::time::{Duration as StdDuration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use time::{Duration, OffsetDateTime};
use url::Url;
use xmpp_upload::checked::{ContentType, InlinePolicy};
use xmpp_upload::storage::s3::{GetOverrides, PutBinding, S3Config, S3Store};

const CASES: usize = 400;

/// xorshift64*: small, deterministic, good enough to spread cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn string(&mut self, alphabet: &[char], len: usize) -> String {
        (0..len).map(|_| *self.pick(alphabet)).collect()
    }
}

const KEY_CHARS: &[char] = &[
    'a', 'b', 'z', 'A', 'Z', '0', '9', '-', '_', '.', '~', ' ', '!', '"', '#', '$', '%', '&', '\'',
    '(', ')', '*', '+', ',', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '^', '`', '{', '|',
    '}', 'é', 'ß', 'Ж', 'ф', '中', '文', '🙂', '📎', '\u{7f}', '\u{1}', '\t', 'ı', 'İ', '\u{301}',
];
const ALNUM: &[char] = &[
    'A', 'B', 'C', 'K', 'Q', 'X', 'Z', 'a', 'k', 'x', '0', '1', '7', '9',
];
const SECRET_CHARS: &[char] = &['a', 'Z', '0', '9', '/', '+', '=', 'k', 'Q'];
const BUCKET_CHARS: &[char] = &['a', 'b', 'q', 'z', '0', '7', '-'];

/// S3's `UriEncode` written independently of the crate: all but A-Z a-z 0-9 - _ . ~ encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn strict(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

struct Case {
    config: S3Config,
    key: String,
    now: OffsetDateTime,
    expires: i64,
    put: Option<PutBinding<'static>>,
    /// For GETs: the response overrides, as given to `presign_get_with`.
    get: Option<(Option<&'static str>, Option<String>)>,
}

/// Content types a download may be served with, hostile ones included.
const SERVED_TYPES: &[&str] = &[
    "image/jpeg",
    "text/plain; charset=utf-8",
    "text/html; charset=utf-8",
    "image/svg+xml",
    "application/octet-stream",
    "video/mp4",
];
/// File names for `Content-Disposition`, encoded by the crate's own rule.
const FILE_NAMES: &[&str] = &[
    "a.txt",
    "Фото 1.jpg",
    "x'y\"z;.html",
    "100%.svg",
    "🙂",
    "a+b=c&d",
];

fn random_case(rng: &mut Rng) -> Case {
    let path_style = rng.chance(50);
    let host = if path_style {
        *rng.pick(&[
            "127.0.0.1",
            "localhost",
            "s3.example.org",
            "[::1]",
            "minio.internal",
        ])
    } else {
        *rng.pick(&[
            "s3.amazonaws.com",
            "s3.eu-central-1.amazonaws.com",
            "r2.example.net",
            "localhost",
        ])
    };
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    let scheme = if loopback && rng.chance(50) {
        "http"
    } else {
        "https"
    };
    let port = match rng.below(4) {
        0 => String::new(),
        1 => ":443".to_owned(),
        2 => ":80".to_owned(),
        _ => format!(":{}", rng.range(1, 65_535)),
    };
    let prefix = *rng.pick(&["", "/", "/s3", "/s3/", "/a/b c/", "/ü/"]);
    let bucket_len = rng.range(3, 20) as usize;
    let bucket = format!("b{}0", rng.string(BUCKET_CHARS, bucket_len - 2));
    let region = (*rng.pick(&[
        "us-east-1",
        "eu-central-1",
        "auto",
        "garage",
        "ap-southeast-2",
        "local_1",
    ]))
    .to_owned();
    let akid_len = rng.range(4, 24) as usize;
    let secret_len = rng.range(1, 48) as usize;
    let session_token = rng.chance(30).then(|| {
        let n = rng.range(8, 120) as usize;
        rng.string(SECRET_CHARS, n)
    });
    let config = S3Config {
        endpoint: Url::parse(&format!("{scheme}://{host}{port}{prefix}")).expect("endpoint"),
        bucket,
        region,
        access_key_id: rng.string(ALNUM, akid_len),
        secret_access_key: rng.string(SECRET_CHARS, secret_len),
        session_token,
        path_style,
    };

    let segments = rng.range(1, 4);
    let mut key = String::new();
    for i in 0..segments {
        if i > 0 {
            key.push('/');
        }
        let len = rng.range(1, 12) as usize;
        let mut seg = rng.string(KEY_CHARS, len);
        if seg == "." || seg == ".." {
            seg.push('x');
        }
        key.push_str(&seg);
    }

    // 1970 .. 2106, with sub-second parts.
    let now = OffsetDateTime::from_unix_timestamp(rng.below(1 << 32) as i64).expect("time")
        + Duration::nanoseconds(rng.below(1_000_000_000) as i64);
    let expires = rng.range(1, 604_800) as i64;

    let put = rng.chance(60).then(|| {
        let len = rng.chance(70).then(|| rng.below(1 << 40));
        let ct = rng.chance(50).then(|| {
            *rng.pick(&[
                "image/jpeg",
                "text/plain; charset=utf-8",
                "application/octet-stream",
                "video/mp4;  codecs=\"avc1\" ",
            ])
        });
        let md5 = rng
            .chance(40)
            .then(|| rng.next().to_be_bytes().repeat(2).try_into().expect("16"));
        let sha = rng
            .chance(40)
            .then(|| rng.next().to_be_bytes().repeat(4).try_into().expect("32"));
        PutBinding {
            content_length: len,
            content_type: ct,
            content_md5: md5,
            sha256: sha,
        }
    });
    let get = (put.is_none() && rng.chance(60)).then(|| {
        let ty = rng.chance(80).then(|| *rng.pick(SERVED_TYPES));
        let disposition = rng.chance(80).then(|| {
            let name = *rng.pick(FILE_NAMES);
            let policy = if rng.chance(50) {
                InlinePolicy::default()
            } else {
                InlinePolicy::never()
            };
            let known = ty.map(|t| ContentType::new(t).expect("served type"));
            policy.content_disposition(known.as_ref(), name)
        });
        (ty, disposition)
    });
    Case {
        config,
        key,
        now,
        expires,
        put,
        get,
    }
}

/// The oracle's signature and query parameters for the request our URL describes.
fn oracle(
    case: &Case,
    method: &str,
    url: &Url,
    headers: &[(String, String)],
) -> (String, Vec<(String, String)>) {
    let identity = Credentials::new(
        &case.config.access_key_id,
        &case.config.secret_access_key,
        case.config.session_token.clone(),
        None,
        "oracle",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(StdDuration::from_secs(case.expires as u64));
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let unix = case.now.unix_timestamp_nanos();
    let time = UNIX_EPOCH + StdDuration::from_nanos(u64::try_from(unix).expect("after 1970"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&case.config.region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    // The oracle adds the X-Amz-* parameters; any other one (the response overrides) is part
    // of the request it signs.
    let mut bare = url.clone();
    let own: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(n, _)| !n.starts_with("X-Amz-"))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if own.is_empty() {
        bare.set_query(None);
    } else {
        let query: Vec<String> = own
            .iter()
            .map(|(n, v)| format!("{}={}", strict(n), strict(v)))
            .collect();
        bare.set_query(Some(&query.join("&")));
    }
    let request = SignableRequest::new(
        method,
        bare.as_str(),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::UnsignedPayload,
    )
    .expect("signable");
    let (instructions, signature) = sign(request, &params).expect("sign").into_parts();
    let (_, params) = instructions.into_parts();
    let params = params
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.into_owned()))
        .collect();
    (signature, params)
}

fn sorted_query(url: &Url) -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = url
        .query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    q.sort();
    q
}

#[test]
fn presigned_urls_match_aws_sigv4() {
    let mut rng = Rng(0x5EED_0F53_3300_0001);
    let (mut gets, mut puts, mut tokens, mut vhost, mut overrides) = (0, 0, 0, 0, 0);
    for i in 0..CASES {
        let case = random_case(&mut rng);
        let store = S3Store::new(case.config.clone());
        let expires_in = Duration::seconds(case.expires);
        let (method, url, required) = match case.put {
            None => {
                let url = match &case.get {
                    None => store.presign_get(&case.key, case.now, expires_in),
                    Some((ty, disposition)) => store.presign_get_with(
                        &case.key,
                        case.now,
                        expires_in,
                        &GetOverrides {
                            content_type: *ty,
                            content_disposition: disposition.as_deref(),
                        },
                    ),
                };
                ("GET", url, Vec::new())
            }
            Some(binding) => {
                let PutBinding {
                    content_length: len,
                    content_type: ct,
                    content_md5: md5,
                    sha256: sha,
                } = binding;
                match store.presign_put(&case.key, case.now, expires_in, &binding) {
                    Ok((url, headers)) => {
                        // The required headers, computed independently.
                        let mut expected = Vec::new();
                        if let Some(len) = len {
                            expected.push(("Content-Length".to_owned(), len.to_string()));
                        }
                        if let Some(ct) = ct {
                            expected.push((
                                "Content-Type".to_owned(),
                                ct.split_whitespace().collect::<Vec<_>>().join(" "),
                            ));
                        }
                        if let Some(md5) = md5 {
                            expected.push(("Content-MD5".to_owned(), BASE64.encode(md5)));
                        }
                        if let Some(sha) = sha {
                            expected.push(("x-amz-checksum-sha256".to_owned(), BASE64.encode(sha)));
                        }
                        assert_eq!(headers, expected, "case {i}");
                        ("PUT", Ok(url), headers)
                    }
                    Err(e) => ("PUT", Err(e), Vec::new()),
                }
            }
        };
        let url = url
            .unwrap_or_else(|e| panic!("case {i}: {e} for {:?} key {:?}", case.config, case.key));

        // Path: prefix, bucket (path style) and key, each segment strictly encoded.
        let mut expected_path = String::new();
        let prefix = case.config.endpoint.path().trim_matches('/');
        if !prefix.is_empty() {
            for seg in prefix.split('/') {
                let raw = percent_encoding::percent_decode_str(seg)
                    .decode_utf8()
                    .expect("utf8");
                expected_path.push('/');
                expected_path.push_str(&strict(&raw));
            }
        }
        if case.config.path_style {
            expected_path.push('/');
            expected_path.push_str(&strict(&case.config.bucket));
        } else {
            let host = format!(
                "{}.{}",
                case.config.bucket,
                case.config.endpoint.host_str().expect("host")
            );
            assert_eq!(url.host_str(), Some(host.as_str()), "case {i}");
            vhost += 1;
        }
        for seg in case.key.split('/') {
            expected_path.push('/');
            expected_path.push_str(&strict(seg));
        }
        assert_eq!(url.path(), expected_path, "case {i}");
        assert_eq!(url.port(), case.config.endpoint.port(), "case {i}");

        // Signature and parameters: identical to the oracle's.
        let (signature, params) = oracle(&case, method, &url, &required);
        let ours = sorted_query(&url);
        let our_signature = ours
            .iter()
            .find(|(n, _)| n == "X-Amz-Signature")
            .map(|(_, v)| v.clone());
        assert_eq!(
            our_signature.as_deref(),
            Some(signature.as_str()),
            "case {i}: {url}"
        );
        // The oracle's parameters include its X-Amz-Signature; the overrides are ours, with
        // exactly the values asked for.
        let mut theirs = params;
        if let Some((ty, disposition)) = &case.get {
            for (name, value) in [
                ("response-content-type", ty.map(str::to_owned)),
                ("response-content-disposition", disposition.clone()),
            ] {
                if let Some(value) = value {
                    theirs.push((name.to_owned(), value));
                    overrides += 1;
                }
            }
        }
        theirs.sort();
        assert_eq!(ours, theirs, "case {i}");

        // The whole URL, rebuilt from the oracle's parameters in canonical order (signature last).
        let mut canonical: Vec<(String, String)> = theirs
            .iter()
            .filter(|(n, _)| n != "X-Amz-Signature")
            .map(|(n, v)| (strict(n), strict(v)))
            .collect();
        canonical.sort();
        let mut query: Vec<String> = canonical.iter().map(|(n, v)| format!("{n}={v}")).collect();
        query.push(format!(
            "X-Amz-Signature={}",
            our_signature.unwrap_or_default()
        ));
        assert_eq!(url.query(), Some(query.join("&").as_str()), "case {i}");

        gets += usize::from(method == "GET");
        puts += usize::from(method == "PUT");
        tokens += usize::from(case.config.session_token.is_some());
    }
    // The generator covers every dimension.
    assert!(
        gets > 100 && puts > 100 && tokens > 50 && vhost > 100 && overrides > 100,
        "{gets} {puts} {tokens} {vhost} {overrides}"
    );
}

// ---- Through the slot service (issue 11, findings a and c) ------------------------------------
//
// Each check below failed on the code before the fix: the comma type got a slot, the PUT of a
// request without a type signed no `content-type`, a p1 upload by MD5 alone got a PUT URL with
// no size bound, and GET URLs carried no `response-content-disposition`.

const SERVICE_NOW: &str = "2024-05-01T12:00:00Z";

fn service_case() -> Case {
    Case {
        config: S3Config {
            endpoint: Url::parse("https://s3.example").expect("endpoint"),
            bucket: "uploads".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "service/secret/key".into(),
            session_token: None,
            path_style: true,
        },
        key: String::new(),
        now: OffsetDateTime::parse(SERVICE_NOW, &time::format_description::well_known::Rfc3339)
            .expect("time"),
        expires: 0,
        put: None,
        get: None,
    }
}

fn service_ask(payload: &str, iq_type: &str) -> minidom::Element {
    let case = service_case();
    let service = xmpp_upload::SlotService::new(
        xmpp_upload::ServiceConfig::new(
            "upload.example.org".parse().expect("jid"),
            *b"32 bytes of host secret.........",
        )
        .allowed_content_types(["image/*", "text/*", "application/octet-stream"]),
        S3Store::new(case.config),
    );
    let iq: minidom::Element = format!(
        "<iq xmlns='jabber:client' from='romeo@example.org/x' id='a1' \
         to='upload.example.org' type='{iq_type}'>{payload}</iq>"
    )
    .parse()
    .expect("iq");
    service.handle(&iq, case.now).expect("a reply")
}

/// The slot's PUT and GET URLs.
fn slot_urls(reply: &minidom::Element) -> (Url, Url) {
    const NS: &str = "urn:xmpp:http:upload:0";
    let slot = reply
        .get_child("slot", NS)
        .unwrap_or_else(|| panic!("no slot: {}", String::from(reply)));
    let url = |name: &str| {
        let u = slot.get_child(name, NS).and_then(|e| e.attr("url"));
        Url::parse(u.expect("url")).expect("valid url")
    };
    (url("put"), url("get"))
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Checks `url`'s signature with the oracle, signing `headers` (PUT) or none (GET).
fn oracle_agrees(method: &str, url: &Url, headers: &[(String, String)]) {
    let mut case = service_case();
    case.expires = param(url, "X-Amz-Expires")
        .and_then(|e| e.parse().ok())
        .expect("X-Amz-Expires");
    let (signature, _) = oracle(&case, method, url, headers);
    assert_eq!(
        param(url, "X-Amz-Signature").as_deref(),
        Some(signature.as_str()),
        "{url}"
    );
}

#[test]
fn service_issued_urls_bind_type_size_and_disposition() {
    // Finding a: a list of types is refused (RFC 9110 §8.3.1 has no `,` in a media type).
    let r = service_ask(
        "<request xmlns='urn:xmpp:http:upload:0' filename='a.png' size='5' \
         content-type='image/png; x=y, text/html'/>",
        "get",
    );
    assert_eq!(r.attr("type"), Some("error"), "{}", String::from(&r));

    // Finding c: no type requested, `application/octet-stream` signed (and checked by S3).
    let r = service_ask(
        "<request xmlns='urn:xmpp:http:upload:0' filename='a.bin' size='5'/>",
        "get",
    );
    let (put, get) = slot_urls(&r);
    assert_eq!(
        param(&put, "X-Amz-SignedHeaders").as_deref(),
        Some("content-length;content-type;host")
    );
    oracle_agrees(
        "PUT",
        &put,
        &[
            ("Content-Length".into(), "5".into()),
            ("Content-Type".into(), "application/octet-stream".into()),
        ],
    );
    assert_eq!(
        param(&get, "response-content-type").as_deref(),
        Some("application/octet-stream")
    );
    oracle_agrees("GET", &get, &[]);

    // Finding c: an MD5-only p1 upload has no size to sign: refused.
    let r = service_ask(
        "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog=='/>",
        "set",
    );
    assert_eq!(r.attr("type"), Some("error"), "{}", String::from(&r));

    // Finding c: HTML and SVG are attachments; a JPEG is inline; both signed.
    for (ty, name, served, disposition) in [
        (
            "text/html",
            "x.html",
            "text/html",
            "attachment; filename*=UTF-8''x.html",
        ),
        (
            "image/SVG+xml",
            "Фото.svg",
            "image/svg+xml",
            "attachment; filename*=UTF-8''%D0%A4%D0%BE%D1%82%D0%BE.svg",
        ),
        ("image/JPEG", "a.jpg", "image/jpeg", "inline"),
    ] {
        let r = service_ask(
            &format!(
                "<request xmlns='urn:xmpp:http:upload:0' filename='{name}' size='5' \
                 content-type='{ty}'/>"
            ),
            "get",
        );
        let (put, get) = slot_urls(&r);
        assert_eq!(
            param(&get, "response-content-type").as_deref(),
            Some(served)
        );
        assert_eq!(
            param(&get, "response-content-disposition").as_deref(),
            Some(disposition)
        );
        oracle_agrees("GET", &get, &[]);
        // The PUT signs the type as the client gave it: that is the header it sends.
        oracle_agrees(
            "PUT",
            &put,
            &[
                ("Content-Length".into(), "5".into()),
                ("Content-Type".into(), ty.into()),
            ],
        );
    }
}

// ---- Housekeeping: presigned DELETE and ListObjectsV2 (issue 13, item 4) ----------------------

/// The signatures `src/storage/s3/tests.rs` pins for AWS's example request as a DELETE and as a
/// ListObjectsV2 (`max-keys=2&prefix=J`): the oracle must compute the same.
const AWS_DELETE_SIGNATURE: &str =
    "fb580faa6736a3af12ad5f9c3f1eea783af940a06f6a3de9dadb5679ca25cbfe";
const AWS_LIST_SIGNATURE: &str = "704cff0812a53cc8f7d3684c737ac9a7436412ba574817e5a4d405b1c7177e85";

fn aws_example_case() -> Case {
    Case {
        config: S3Config {
            endpoint: Url::parse("https://s3.amazonaws.com").expect("endpoint"),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            path_style: false,
        },
        key: "test.txt".into(),
        now: OffsetDateTime::from_unix_timestamp(1_369_353_600).expect("time"),
        expires: 86_400,
        put: None,
        get: None,
    }
}

/// Checks `url` against the oracle: same signature, and the same parameters (the oracle's
/// `X-Amz-*` plus `own`, our request's own parameters).
fn agrees_with_oracle(case: &Case, method: &str, url: &Url, own: &[(&str, String)], what: &str) {
    let (signature, params) = oracle(case, method, url, &[]);
    assert_eq!(
        param(url, "X-Amz-Signature").as_deref(),
        Some(signature.as_str()),
        "{what}: {url}"
    );
    let mut theirs = params;
    theirs.extend(own.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
    theirs.sort();
    assert_eq!(sorted_query(url), theirs, "{what}");
}

#[test]
fn housekeeping_urls_match_aws_sigv4() {
    // AWS's example, as a DELETE and as a listing: the pinned signatures.
    let case = aws_example_case();
    let store = S3Store::new(case.config.clone());
    let day = Duration::days(1);
    let delete = store
        .presign_delete(&case.key, case.now, day)
        .expect("delete");
    agrees_with_oracle(&case, "DELETE", &delete, &[], "AWS example DELETE");
    assert_eq!(
        param(&delete, "X-Amz-Signature").as_deref(),
        Some(AWS_DELETE_SIGNATURE)
    );
    let list = store
        .presign_list("J", None, Some(2), case.now, day)
        .expect("list");
    agrees_with_oracle(
        &case,
        "GET",
        &list,
        &[
            ("list-type", "2".into()),
            ("max-keys", "2".into()),
            ("prefix", "J".into()),
        ],
        "AWS example ListObjectsV2",
    );
    assert_eq!(
        param(&list, "X-Amz-Signature").as_deref(),
        Some(AWS_LIST_SIGNATURE)
    );

    // Random stores, keys, prefixes, tokens and page sizes.
    let mut rng = Rng(0x5EED_0F53_3300_0013);
    let (mut tokens, mut prefixes, mut limits) = (0, 0, 0);
    for i in 0..CASES / 2 {
        let case = random_case(&mut rng);
        let store = S3Store::new(case.config.clone());
        let expires_in = Duration::seconds(case.expires);

        let delete = store
            .presign_delete(&case.key, case.now, expires_in)
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        agrees_with_oracle(&case, "DELETE", &delete, &[], &format!("DELETE case {i}"));

        let prefix = if rng.chance(70) {
            let cut = case
                .key
                .char_indices()
                .map(|(at, _)| at)
                .nth(rng.below(8) as usize)
                .unwrap_or(case.key.len());
            case.key[..cut].to_owned()
        } else {
            String::new()
        };
        let token = rng.chance(50).then(|| {
            let n = rng.range(1, 200) as usize;
            rng.string(SECRET_CHARS, n)
        });
        let max_keys = rng.chance(50).then(|| rng.range(1, 1000) as u32);
        let list = store
            .presign_list(&prefix, token.as_deref(), max_keys, case.now, expires_in)
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        let mut own = vec![("list-type", "2".to_owned())];
        if !prefix.is_empty() {
            own.push(("prefix", prefix.clone()));
            prefixes += 1;
        }
        if let Some(t) = &token {
            own.push(("continuation-token", t.clone()));
            tokens += 1;
        }
        if let Some(n) = max_keys {
            own.push(("max-keys", n.to_string()));
            limits += 1;
        }
        agrees_with_oracle(&case, "GET", &list, &own, &format!("LIST case {i}"));
        // The bucket's path: the endpoint's prefix, plus the bucket in path style.
        let mut path = String::new();
        for seg in case
            .config
            .endpoint
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
        {
            let raw = percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .expect("utf8");
            path.push('/');
            path.push_str(&strict(&raw));
        }
        if case.config.path_style {
            path.push('/');
            path.push_str(&strict(&case.config.bucket));
        }
        if path.is_empty() {
            path.push('/');
        }
        assert_eq!(list.path(), path, "LIST case {i}");
    }
    assert!(
        tokens > 50 && prefixes > 80 && limits > 50,
        "{tokens} {prefixes} {limits}"
    );
}

/// Through the slot service with a key prefix: the slot's PUT and GET sign the prefixed key,
/// and with a public base the GET is `{base}/{key}`, unsigned.
#[test]
fn service_slots_under_a_key_prefix() {
    let case = service_case();
    let ask = |store: S3Store| {
        let service = xmpp_upload::SlotService::new(
            xmpp_upload::ServiceConfig::new(
                "upload.example.org".parse().expect("jid"),
                *b"32 bytes of host secret.........",
            ),
            store,
        );
        let iq: minidom::Element = "<iq xmlns='jabber:client' from='romeo@example.org/x' id='a1' \
             to='upload.example.org' type='get'><request xmlns='urn:xmpp:http:upload:0' \
             filename='a.jpg' size='5' content-type='image/jpeg'/></iq>"
            .parse()
            .expect("iq");
        slot_urls(&service.handle(&iq, case.now).expect("a reply"))
    };
    let (put, get) = ask(S3Store::new(case.config.clone()).key_prefix("xmpp/uploads/"));
    assert!(put.path().starts_with("/uploads/xmpp/uploads/"), "{put}");
    assert!(put.path().ends_with("/a.jpg"), "{put}");
    assert_eq!(get.path(), put.path());
    oracle_agrees(
        "PUT",
        &put,
        &[
            ("Content-Length".into(), "5".into()),
            ("Content-Type".into(), "image/jpeg".into()),
        ],
    );
    oracle_agrees("GET", &get, &[]);

    let (put, get) = ask(S3Store::new(case.config.clone())
        .key_prefix("xmpp/")
        .public_get_base(Url::parse("https://media.example.org/").expect("base")));
    let key = put.path().trim_start_matches("/uploads/");
    assert_eq!(get.as_str(), format!("https://media.example.org/{key}"));
    assert!(key.starts_with("xmpp/"));
    oracle_agrees(
        "PUT",
        &put,
        &[
            ("Content-Length".into(), "5".into()),
            ("Content-Type".into(), "image/jpeg".into()),
        ],
    );
}
