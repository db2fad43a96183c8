//! S3 presigning tests. The first group follows AWS's example in "Authenticating Requests:
//! Using Query Parameters (AWS Signature Version 4)" (S3 API reference), one test per step.

use time::{Duration, OffsetDateTime};
use url::Url;

use super::canonical::canonical_query;
use super::sign::{root_key, signing_key, Timestamp};
use super::*;
use crate::checked::{ContentType, FileName};
use crate::crypto::hex;
use crate::storage::CheckedUpload;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// 2013-05-24T00:00:00Z.
const T0: i64 = 1_369_353_600;

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn config(endpoint: &str, bucket: &str, path_style: bool) -> S3Config {
    S3Config {
        endpoint: Url::parse(endpoint).unwrap(),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
        path_style,
    }
}

fn aws_store() -> S3Store {
    S3Store::new(config("https://s3.amazonaws.com", "examplebucket", false))
}

fn aws_example() -> Presigned {
    aws_store()
        .presign(
            "GET",
            "test.txt",
            at(T0),
            Duration::seconds(86_400),
            SignedHeaders::default(),
            &[],
        )
        .unwrap()
}

// ---- AWS documented example, step by step ----------------------------------------------------

#[test]
fn aws_example_canonical_request() {
    assert_eq!(
        aws_example().canonical_request,
        "GET\n\
         /test.txt\n\
         X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n\
         host:examplebucket.s3.amazonaws.com\n\
         \n\
         host\n\
         UNSIGNED-PAYLOAD"
    );
}

#[test]
fn aws_example_string_to_sign() {
    assert_eq!(
        aws_example().string_to_sign,
        "AWS4-HMAC-SHA256\n\
         20130524T000000Z\n\
         20130524/us-east-1/s3/aws4_request\n\
         3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
    );
}

#[test]
fn aws_example_signing_key() {
    // AWS gives only the formula for this step; the value was computed independently with
    // `openssl dgst -sha256 -mac HMAC` chained four times, and it yields AWS's signature.
    let key = signing_key(&root_key(SECRET), "20130524", "us-east-1");
    assert_eq!(
        hex(&key.sign(&[b"AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"])),
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    // kSigning itself, as bytes: HMAC(kSigning, "") pins it without exposing a getter.
    let expected = crate::crypto::SecretKey::new(
        crate::crypto::unhex::<32>(
            "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378",
        )
        .unwrap()
        .to_vec(),
    );
    assert_eq!(key.sign(&[b""]), expected.sign(&[b""]));
}

#[test]
fn aws_example_signature() {
    assert_eq!(
        aws_example().signature,
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
}

#[test]
fn aws_example_url() {
    assert_eq!(
        aws_store().presign_get("test.txt", at(T0), Duration::days(1)).unwrap().as_str(),
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
}

// ---- timestamps, keys, URL shapes -------------------------------------------------------------

#[test]
fn timestamp_is_utc_and_truncated() {
    let t = at(T0 + 3600 * 23 + 59 * 60 + 59) + Duration::milliseconds(999);
    let t = t.to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
    let ts = Timestamp::new(t).unwrap();
    assert_eq!(ts.date(), "20130524");
    assert_eq!(ts.amz_date(), "20130524T235959Z");
    assert!(Timestamp::new(at(-62_200_000_000)).is_err()); // year < 0
                                                           // Every field zero-padded to its width (python: calendar.timegm of these dates).
    let ts = Timestamp::new(at(-30_636_384_833)).unwrap();
    assert_eq!(ts.amz_date(), "09990304T050607Z");
    let ts = Timestamp::new(at(253_402_300_799)).unwrap();
    assert_eq!(ts.amz_date(), "99991231T235959Z");
}

#[test]
fn signing_key_cached_per_day() {
    let store = aws_store();
    assert_eq!(store.keys.cached_day(), None);
    let a = store
        .presign_get("test.txt", at(T0), Duration::days(1))
        .unwrap();
    assert_eq!(store.keys.cached_day(), Some(at(T0).date()));
    // Same day from the cache: same result as a fresh store.
    let b = store
        .presign_get("x", at(T0 + 3600), Duration::days(1))
        .unwrap();
    assert_eq!(
        b,
        aws_store()
            .presign_get("x", at(T0 + 3600), Duration::days(1))
            .unwrap()
    );
    // Next day: a new key, and the URL matches a fresh store's.
    let c = store
        .presign_get("test.txt", at(T0 + 86_400), Duration::days(1))
        .unwrap();
    assert_eq!(store.keys.cached_day(), Some(at(T0 + 86_400).date()));
    assert_eq!(
        c,
        aws_store()
            .presign_get("test.txt", at(T0 + 86_400), Duration::days(1))
            .unwrap()
    );
    assert_ne!(a, c);
}

#[test]
fn unicode_and_reserved_keys_are_encoded_per_segment() {
    let store = aws_store();
    let key = "ab12cd/Фото отпуск (1)+&=?#%.jpg";
    let p = store
        .presign(
            "GET",
            key,
            at(T0),
            Duration::days(1),
            SignedHeaders::default(),
            &[],
        )
        .unwrap();
    let path = "/ab12cd/%D0%A4%D0%BE%D1%82%D0%BE%20%D0%BE%D1%82%D0%BF%D1%83%D1%81%D0%BA%20%281%29%2B%26%3D%3F%23%25.jpg";
    assert_eq!(p.url.path(), path);
    assert!(p.canonical_request.starts_with(&format!("GET\n{path}\n")));
    // The path decodes back to the key.
    let decoded = percent_encoding::percent_decode_str(p.url.path())
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, format!("/{key}"));
    // Emoji, `~`, and an empty segment.
    let u = store
        .presign_get("a//b~c/😀", at(T0), Duration::days(1))
        .unwrap();
    assert_eq!(u.path(), "/a//b~c/%F0%9F%98%80");
}

#[test]
fn bad_keys_are_refused() {
    let store = aws_store();
    let d = Duration::days(1);
    for key in ["", ".", "..", "a/./b", "a/../b", "a/.."] {
        assert!(
            matches!(
                store.presign_get(key, at(T0), d),
                Err(StorageError::InvalidKey(_))
            ),
            "{key:?}"
        );
    }
    assert!(matches!(
        store.presign_get(&"k".repeat(1025), at(T0), d),
        Err(StorageError::InvalidKey(_))
    ));
    assert!(store.presign_get(&"k".repeat(1024), at(T0), d).is_ok());
    assert!(store.presign_get("...", at(T0), d).is_ok());
}

#[test]
fn path_style_with_port_and_prefix() {
    let store = S3Store::new(config("http://127.0.0.1:9000/s3/", "my-bucket", true));
    let p = store
        .presign(
            "GET",
            "k y",
            at(T0),
            Duration::hours(1),
            SignedHeaders::default(),
            &[],
        )
        .unwrap();
    assert_eq!(
        p.url.as_str().split('?').next(),
        Some("http://127.0.0.1:9000/s3/my-bucket/k%20y")
    );
    assert!(p.canonical_request.contains("\nhost:127.0.0.1:9000\n"));
    // Default port is not part of the host header.
    let store = S3Store::new(config("https://minio.example:443", "bkt", true));
    let p = store
        .presign(
            "GET",
            "k",
            at(T0),
            Duration::hours(1),
            SignedHeaders::default(),
            &[],
        )
        .unwrap();
    assert_eq!(
        p.url.as_str().split('?').next(),
        Some("https://minio.example/bkt/k")
    );
    assert!(p.canonical_request.contains("\nhost:minio.example\n"));
}

#[test]
fn virtual_hosted_style() {
    let store = S3Store::new(config(
        "https://s3.eu-west-1.amazonaws.com:8443/base",
        "my.bucket-1",
        false,
    ));
    let p = store
        .presign(
            "GET",
            "a/b",
            at(T0),
            Duration::hours(1),
            SignedHeaders::default(),
            &[],
        )
        .unwrap();
    assert_eq!(
        p.url.as_str().split('?').next(),
        Some("https://my.bucket-1.s3.eu-west-1.amazonaws.com:8443/base/a/b")
    );
    assert!(p
        .canonical_request
        .contains("\nhost:my.bucket-1.s3.eu-west-1.amazonaws.com:8443\n"));
    // Not a valid bucket name, or an IP endpoint: refused, each naming the problem.
    for (endpoint, bucket, problem) in [
        ("https://s3.example", "My_Bucket", "bucket: only lowercase"),
        (
            "https://s3.example",
            "Chat_Uploads",
            "bucket: only lowercase",
        ),
        ("https://s3.example", "ab", "bucket: 3 to 63"),
        ("https://s3.example", "-abc", "bucket: must start and end"),
        (
            "https://s3.example",
            "a..bc",
            "bucket: no two adjacent dots",
        ),
        (
            "https://s3.example",
            "192.168.5.4",
            "bucket: must not look like an IPv4",
        ),
        (
            "https://127.0.0.1:9000",
            "bucket",
            "endpoint: virtual-hosted",
        ),
        ("https://[::1]:9000", "bucket", "endpoint: virtual-hosted"),
    ] {
        let store = S3Store::new(config(endpoint, bucket, false));
        let err = store.validate().unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidS3Config(p) if p.starts_with(problem)),
            "{endpoint} {bucket}: {err}"
        );
        assert_eq!(store.presign_get("k", at(T0), Duration::hours(1)), Err(err));
    }
    // Path style does not relax the naming rules (S3-compatible stores apply them too).
    assert!(matches!(
        S3Store::new(config("https://s3.example", "Chat_Uploads", true)).validate(),
        Err(StorageError::InvalidS3Config(_))
    ));
}

#[test]
fn endpoint_rules() {
    let cases: [(&str, Result<(), StorageError>); 7] = [
        ("https://s3.example", Ok(())),
        ("http://localhost:9000", Ok(())),
        ("http://[::1]:9000", Ok(())),
        ("http://s3.example", Err(StorageError::InsecureBaseUrl)),
        ("ftp://s3.example", Err(StorageError::InsecureBaseUrl)),
        (
            "https://user:pw@s3.example",
            Err(StorageError::BaseUrlCredentials),
        ),
        (
            "https://s3.example/?x=1",
            Err(StorageError::BaseUrlQueryOrFragment),
        ),
    ];
    for (endpoint, expected) in cases {
        assert_eq!(
            S3Store::new(config(endpoint, "bucket", true)).validate(),
            expected,
            "{endpoint}"
        );
    }
    let store =
        S3Store::new(config("http://s3.internal:9000", "bucket", true)).allow_insecure_http(true);
    assert_eq!(store.validate(), Ok(()));
    assert!(store
        .presign_get("k", at(T0), Duration::hours(1))
        .unwrap()
        .as_str()
        .starts_with("http://s3.internal:9000/bucket/k?"));
    let store = store.allow_insecure_http(false);
    assert_eq!(store.validate(), Err(StorageError::InsecureBaseUrl));

    let mut c = config("https://s3.example", "bucket", true);
    c.region = "us east".into();
    assert!(matches!(
        S3Store::new(c).validate(),
        Err(StorageError::InvalidS3Config(p)) if p.starts_with("region")
    ));
    let mut c = config("https://s3.example", "bucket", true);
    c.access_key_id = "a/b".into();
    assert!(matches!(
        S3Store::new(c).validate(),
        Err(StorageError::InvalidS3Config(p)) if p.starts_with("access key ID")
    ));
}

#[test]
fn session_token_is_signed_in_the_query() {
    let mut c = config("https://s3.amazonaws.com", "examplebucket", false);
    c.session_token = Some("FQoGZXIvYXdzE+/token==".into());
    let store = S3Store::new(c);
    let p = store
        .presign(
            "GET",
            "test.txt",
            at(T0),
            Duration::days(1),
            SignedHeaders::default(),
            &[],
        )
        .unwrap();
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-Security-Token=FQoGZXIvYXdzE%2B%2Ftoken%3D%3D&X-Amz-SignedHeaders=host";
    assert_eq!(p.canonical_request.lines().nth(2), Some(query));
    assert_eq!(
        p.url.query(),
        Some(format!("{query}&X-Amz-Signature={}", p.signature).as_str())
    );
    assert_ne!(p.signature, aws_example().signature);
    assert!(!format!("{store:?}").contains("token"));
}

#[test]
fn expiry_limits() {
    let store = aws_store();
    let get = |d: Duration| store.presign_get("k", at(T0), d);
    assert!(get(Duration::seconds(1)).is_ok());
    assert!(get(Duration::seconds(604_800)).is_ok());
    assert!(
        get(Duration::seconds(604_800) + Duration::milliseconds(999))
            .unwrap()
            .as_str()
            .contains("X-Amz-Expires=604800&")
    );
    assert_eq!(
        get(Duration::seconds(604_801)),
        Err(StorageError::ExpiryTooLong {
            max_seconds: 604_800
        })
    );
    assert_eq!(
        get(Duration::MAX),
        Err(StorageError::ExpiryTooLong {
            max_seconds: 604_800
        })
    );
    assert_eq!(
        get(Duration::milliseconds(999)),
        Err(StorageError::InvalidExpiry)
    );
    assert_eq!(get(Duration::ZERO), Err(StorageError::InvalidExpiry));
    assert_eq!(get(Duration::seconds(-5)), Err(StorageError::InvalidExpiry));
    assert_eq!(get(Duration::MIN), Err(StorageError::InvalidExpiry));
    assert_eq!(MAX_EXPIRES.whole_seconds(), MAX_EXPIRES_SECONDS as i64);
    // Extreme times: no panic; a negative year or an expiry past year 9999 is refused.
    let last = OffsetDateTime::new_utc(time::Date::MAX, time::Time::from_hms(23, 59, 0).unwrap());
    assert!(store.presign_get("k", last, Duration::seconds(59)).is_ok());
    assert_eq!(
        store.presign_get("k", last, Duration::seconds(61)),
        Err(StorageError::InvalidExpiry)
    );
    let first = OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
    assert_eq!(
        store.presign_get("k", first, Duration::seconds(60)),
        Err(StorageError::InvalidExpiry)
    );
    let odd_offset = last
        .checked_to_offset(time::UtcOffset::from_hms(-12, 0, 0).unwrap())
        .unwrap();
    assert!(store
        .presign_get("k", odd_offset, Duration::seconds(1))
        .is_ok());
}

#[test]
fn put_binds_headers() {
    let store = aws_store();
    let binding = PutBinding {
        content_length: Some(23_026),
        content_type: Some("image/jpeg;  charset=binary "),
        content_md5: Some([
            0xa8, 0xde, 0x3c, 0x20, 0xd2, 0xac, 0x99, 0x0c, 0x8f, 0x31, 0x99, 0x07, 0xb3, 0x40,
            0xd6, 0xa2,
        ]),
        sha256: Some([0u8; 32]),
    };
    let bound = put_headers(&binding).unwrap();
    let mut headers = SignedHeaders::default();
    for (signed, _, value) in &bound {
        headers.insert(signed, value);
    }
    let required: Vec<(String, String)> = bound
        .iter()
        .map(|(_, name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    assert_eq!(
        headers.names(),
        "content-length;content-md5;content-type;x-amz-checksum-sha256"
    );
    assert_eq!(
        required,
        [
            ("Content-Length".to_owned(), "23026".to_owned()),
            (
                "Content-Type".to_owned(),
                "image/jpeg; charset=binary".to_owned()
            ),
            (
                "Content-MD5".to_owned(),
                "qN48INKsmQyPMZkHs0DWog==".to_owned()
            ),
            (
                "x-amz-checksum-sha256".to_owned(),
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()
            ),
        ]
    );
    let p = store
        .presign("PUT", "f.jpg", at(T0), Duration::minutes(5), headers, &[])
        .unwrap();
    assert!(p.canonical_request.starts_with("PUT\n/f.jpg\n"));
    assert!(p.canonical_request.ends_with(
        "\ncontent-length:23026\ncontent-md5:qN48INKsmQyPMZkHs0DWog==\ncontent-type:image/jpeg; charset=binary\nhost:examplebucket.s3.amazonaws.com\nx-amz-checksum-sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\ncontent-length;content-md5;content-type;host;x-amz-checksum-sha256\nUNSIGNED-PAYLOAD"
    ));
    assert!(p.url.as_str().contains("X-Amz-SignedHeaders=content-length%3Bcontent-md5%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256&"));

    for bad in ["", "  ", "text/plain\r\nX-Evil: 1", "text/plä"] {
        let b = PutBinding {
            content_type: Some(bad),
            ..PutBinding::default()
        };
        assert!(
            matches!(
                store.presign_put("k", at(T0), Duration::minutes(5), &b),
                Err(StorageError::Unsupported(_))
            ),
            "{bad:?}"
        );
    }
}

// ---- StorageBackend ---------------------------------------------------------------------------

fn grant(
    size: Option<u64>,
    md5: Option<[u8; 16]>,
    get_expires: Option<OffsetDateTime>,
) -> UploadGrant {
    UploadGrant::new(CheckedUpload {
        size,
        content_type: Some(ContentType::new("image/jpeg").unwrap()),
        md5,
        get_expires,
        ..checked("Фото.jpg", 0)
    })
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn issue_upload_presigns_put_and_get() {
    let store = S3Store::new(config("https://s3.example", "uploads", true));
    let target = store.issue_upload(&grant(Some(5), None, None)).unwrap();
    let key = format!("{}/Фото.jpg", "11".repeat(16));
    assert_eq!(target.object_key, key);
    assert_eq!(
        target.put_url.path(),
        format!("/uploads/{}/%D0%A4%D0%BE%D1%82%D0%BE.jpg", "11".repeat(16))
    );
    assert_eq!(target.get_url.path(), target.put_url.path());
    assert_eq!(
        query_param(&target.put_url, "X-Amz-Expires").as_deref(),
        Some("300")
    );
    assert_eq!(
        query_param(&target.put_url, "X-Amz-SignedHeaders").as_deref(),
        Some("content-length;content-type;host")
    );
    assert_eq!(
        query_param(&target.get_url, "X-Amz-Expires").as_deref(),
        Some("604800")
    );
    assert_eq!(
        query_param(&target.get_url, "X-Amz-SignedHeaders").as_deref(),
        Some("host")
    );
    assert!(target.slot_headers.is_empty());
    let required: Vec<_> = target
        .required_headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        required,
        [("Content-Length", "5"), ("Content-Type", "image/jpeg")]
    );
    // The PUT equals presign_put with the same binding.
    let binding = PutBinding {
        content_length: Some(5),
        content_type: Some("image/jpeg"),
        ..PutBinding::default()
    };
    assert_eq!(
        store
            .presign_put(&key, at(T0), Duration::seconds(300), &binding)
            .unwrap()
            .0,
        target.put_url
    );

    // GET lifetime: as the grant says, capped at 7 days.
    let t = store
        .issue_upload(&grant(Some(5), None, Some(at(T0 + 3600))))
        .unwrap();
    assert_eq!(
        query_param(&t.get_url, "X-Amz-Expires").as_deref(),
        Some("3600")
    );
    let t = store
        .issue_upload(&grant(Some(5), None, Some(at(T0 + 30 * 86_400))))
        .unwrap();
    assert_eq!(
        query_param(&t.get_url, "X-Amz-Expires").as_deref(),
        Some("604800")
    );
    assert_eq!(
        store.issue_upload(&grant(Some(5), None, Some(at(T0)))),
        Err(StorageError::InvalidExpiry)
    );
}

/// Issue 11, finding c: a p1 upload by MD5 alone signed no `content-length`, so the PUT took a
/// body of any size. AWS "Authenticating Requests: Using Query Parameters": a presigned URL
/// signs header values, and S3's length range (`content-length-range`) exists only in POST
/// policies; without a declared size the upload is refused.
#[test]
fn issue_upload_needs_declared_size() {
    let store = S3Store::new(config("https://s3.example", "uploads", true));
    assert_eq!(
        store.issue_upload(&grant(None, None, None)),
        Err(StorageError::SizeRequired)
    );
    assert_eq!(
        store.issue_upload(&grant(None, Some([0xab; 16]), None)),
        Err(StorageError::SizeRequired)
    );
    // With the size declared too, the MD5 is bound next to it.
    let t = store
        .issue_upload(&grant(Some(5), Some([0xab; 16]), None))
        .unwrap();
    assert_eq!(
        query_param(&t.put_url, "X-Amz-SignedHeaders").as_deref(),
        Some("content-length;content-md5;content-type;host")
    );
    assert!(t
        .required_headers
        .iter()
        .any(|h| h.name == "Content-MD5" && h.value == "q6urq6urq6urq6urq6urqw=="));
}

fn typed_grant(ty: Option<&str>, name: &str) -> UploadGrant {
    UploadGrant::new(CheckedUpload {
        slot_id: [0x22; 16],
        content_type: ty.map(|t| ContentType::new(t).unwrap()),
        ..checked(name, 7)
    })
}

/// A checked upload of `size` bytes named `name`, with no type or digest.
fn checked(name: &str, size: u64) -> CheckedUpload {
    CheckedUpload {
        slot_id: [0x11; 16],
        filename: FileName::new(name).unwrap(),
        size: Some(size),
        max_size: 10_000_000,
        content_type: None,
        sha256: None,
        md5: None,
        requester: "alice@example.org".parse().unwrap(),
        now: at(T0),
        put_expires: at(T0 + 300),
        get_expires: None,
    }
}

fn required(t: &UploadTarget) -> Vec<(&str, &str)> {
    t.required_headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
}

/// Issue 11, finding c: a request without a type signed no `content-type`, so the uploader
/// chose the stored type past the allow-list. The service checks a missing type as
/// `application/octet-stream` (XEP-0363 §5 lets it assume that type): that is what is signed.
#[test]
fn put_always_signs_content_type() {
    let store = S3Store::new(config("https://s3.example", "uploads", true));
    let t = store.issue_upload(&typed_grant(None, "notes")).unwrap();
    assert_eq!(
        query_param(&t.put_url, "X-Amz-SignedHeaders").as_deref(),
        Some("content-length;content-type;host")
    );
    assert_eq!(
        required(&t),
        [
            ("Content-Length", "7"),
            ("Content-Type", "application/octet-stream")
        ]
    );
    // A declared type is signed as the client gave it: its PUT carries that very string, and
    // S3 compares the signed value (RFC 9110 §8.3: the case of type and subtype is not
    // significant, but SigV4's canonical headers keep it).
    let t = store
        .issue_upload(&typed_grant(Some("Text/Plain; Charset=UTF-8"), "a.txt"))
        .unwrap();
    assert_eq!(
        required(&t),
        [
            ("Content-Length", "7"),
            ("Content-Type", "Text/Plain; Charset=UTF-8")
        ]
    );
}

/// Issue 11, finding c: GET URLs carried no `response-content-disposition`, so HTML and SVG
/// were served inline from the bucket. The S3 API reference (GetObject) lets a signed request
/// override the served headers with `response-content-type` and `response-content-disposition`.
#[test]
fn slot_get_signs_response_overrides() {
    let store = S3Store::new(config("https://s3.example", "uploads", true));
    let cases = [
        (
            Some("image/jpeg"),
            "Фото.jpg",
            "image/jpeg",
            "inline".to_owned(),
        ),
        (
            Some("IMAGE/PNG; x=1"),
            "a.png",
            "image/png",
            "inline".to_owned(),
        ),
        (
            Some("text/plain; charset=UTF-8"),
            "a.txt",
            "text/plain; charset=utf-8",
            "inline".to_owned(),
        ),
        (
            Some("text/html;charset=utf-8"),
            "x.html",
            "text/html; charset=utf-8",
            "attachment; filename*=UTF-8''x.html".to_owned(),
        ),
        (
            Some("image/svg+xml"),
            "Фото.svg",
            "image/svg+xml",
            "attachment; filename*=UTF-8''%D0%A4%D0%BE%D1%82%D0%BE.svg".to_owned(),
        ),
        (
            Some("application/xml"),
            "a b.xml",
            "application/xml",
            "attachment; filename*=UTF-8''a%20b.xml".to_owned(),
        ),
        (
            None,
            "notes",
            "application/octet-stream",
            "attachment; filename*=UTF-8''notes".to_owned(),
        ),
    ];
    for (ty, name, served, disposition) in cases {
        let t = store.issue_upload(&typed_grant(ty, name)).unwrap();
        let get = &t.get_url;
        assert_eq!(
            query_param(get, "response-content-type").as_deref(),
            Some(served),
            "{ty:?}"
        );
        assert_eq!(
            query_param(get, "response-content-disposition").as_deref(),
            Some(disposition.as_str()),
            "{ty:?}"
        );
        assert_eq!(
            query_param(get, "X-Amz-SignedHeaders").as_deref(),
            Some("host")
        );
        // The same URL as the public call with the same values.
        let again = store
            .presign_get_with(
                t.object_key.as_str(),
                at(T0),
                Duration::days(7),
                &GetOverrides {
                    content_type: Some(served),
                    content_disposition: Some(&disposition),
                },
            )
            .unwrap();
        assert_eq!(&again, get, "{ty:?}");
        // The PUT URL never carries overrides.
        assert_eq!(query_param(&t.put_url, "response-content-type"), None);
    }
    // The inline rule is the store's to configure; never inline still means attachment.
    let never = S3Store::new(config("https://s3.example", "uploads", true))
        .inline_policy(crate::checked::InlinePolicy::never());
    let t = never
        .issue_upload(&typed_grant(Some("image/jpeg"), "a.jpg"))
        .unwrap();
    assert_eq!(
        query_param(&t.get_url, "response-content-disposition").as_deref(),
        Some("attachment; filename*=UTF-8''a.jpg")
    );
}

/// The overrides are signed query parameters: AWS's example GET with them, step 1 (canonical
/// query string sorted by encoded name, values `UriEncode`d: `;`, `*`, `'`, `=` and space
/// encoded).
#[test]
fn response_overrides_in_the_canonical_request() {
    let p = aws_store()
        .presign(
            "GET",
            "test.txt",
            at(T0),
            Duration::seconds(86_400),
            SignedHeaders::default(),
            &[
                ("response-content-type", "text/plain; charset=utf-8"),
                (
                    "response-content-disposition",
                    "attachment; filename*=UTF-8''a%20b.txt",
                ),
            ],
        )
        .unwrap();
    assert_eq!(
        p.canonical_request,
        "GET\n\
         /test.txt\n\
         X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&response-content-disposition=attachment%3B%20filename%2A%3DUTF-8%27%27a%2520b.txt&response-content-type=text%2Fplain%3B%20charset%3Dutf-8\n\
         host:examplebucket.s3.amazonaws.com\n\
         \n\
         host\n\
         UNSIGNED-PAYLOAD"
    );
    assert!(p.url.as_str().ends_with(&format!(
        "&response-content-type=text%2Fplain%3B%20charset%3Dutf-8&X-Amz-Signature={}",
        p.signature
    )));
    assert_eq!(
        query_param(&p.url, "response-content-disposition").as_deref(),
        Some("attachment; filename*=UTF-8''a%20b.txt")
    );

    let store = aws_store();
    for bad in ["", " ", "a\r\nb", "é"] {
        for o in [
            GetOverrides {
                content_type: Some(bad),
                ..GetOverrides::default()
            },
            GetOverrides {
                content_disposition: Some(bad),
                ..GetOverrides::default()
            },
        ] {
            assert!(
                matches!(
                    store.presign_get_with("k", at(T0), Duration::hours(1), &o),
                    Err(StorageError::Unsupported(_))
                ),
                "{bad:?}"
            );
        }
    }
    // No override: exactly presign_get (AWS's vector).
    assert_eq!(
        store
            .presign_get_with(
                "test.txt",
                at(T0),
                Duration::days(1),
                &GetOverrides::default()
            )
            .unwrap(),
        store
            .presign_get("test.txt", at(T0), Duration::days(1))
            .unwrap()
    );
}

#[test]
fn issue_download_presigns_get() {
    let store = aws_store();
    let url = store
        .issue_download(&DownloadGrant::new(
            "test.txt".into(),
            at(T0),
            at(T0 + 86_400),
        ))
        .unwrap();
    // A download by file ID does not know the type: an attachment named after the key's last
    // segment (issue 11, finding c), otherwise AWS's example request.
    assert_eq!(
        url,
        aws_store()
            .presign_get_with(
                "test.txt",
                at(T0),
                Duration::days(1),
                &GetOverrides {
                    content_type: Some("application/octet-stream"),
                    content_disposition: Some("attachment; filename*=UTF-8''test.txt"),
                }
            )
            .unwrap()
    );
    let url = store
        .issue_download(&DownloadGrant::new(
            format!("{}/Фото 1.html", "11".repeat(16)),
            at(T0),
            at(T0 + 3600),
        ))
        .unwrap();
    assert_eq!(
        query_param(&url, "response-content-disposition").as_deref(),
        Some("attachment; filename*=UTF-8''%D0%A4%D0%BE%D1%82%D0%BE%201.html")
    );
    assert_eq!(
        query_param(&url, "response-content-type").as_deref(),
        Some("application/octet-stream")
    );
    let url = store
        .issue_download(&DownloadGrant::new(
            "k".into(),
            at(T0),
            at(T0 + 90 * 86_400),
        ))
        .unwrap();
    assert_eq!(
        query_param(&url, "X-Amz-Expires").as_deref(),
        Some("604800")
    );
    assert_eq!(
        store.issue_download(&DownloadGrant::new("k".into(), at(T0), at(T0 - 1))),
        Err(StorageError::InvalidExpiry)
    );
}

// ---- secrets ----------------------------------------------------------------------------------

#[test]
fn debug_redacts_secrets() {
    let mut c = config("https://user:hunter2@s3.example/", "bucket", true);
    c.session_token = Some("SESSIONTOKEN".into());
    let config_debug = format!("{c:?}");
    let store = S3Store::new(c);
    for text in [config_debug, format!("{store:?}")] {
        assert!(
            text.contains("s3.example")
                && text.contains("bucket")
                && text.contains("us-east-1")
                && text.contains(AKID),
            "{text}"
        );
        for secret in [SECRET, "SESSIONTOKEN", "hunter2", "AWS4"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    let url = aws_store()
        .presign_get("test.txt", at(T0), Duration::days(1))
        .unwrap();
    assert!(!url.as_str().contains(SECRET) && !url.as_str().contains("wJalrXUtnFEMI"));
    // Errors carry no configuration at all.
    let err = format!(
        "{:?} {}",
        StorageError::InvalidBaseUrl,
        StorageError::InvalidBaseUrl
    );
    assert!(!err.contains(SECRET));
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<S3Store>();
    let store = std::sync::Arc::new(aws_store());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                s.presign_get("test.txt", at(T0 + i * 86_400), Duration::days(1))
                    .unwrap()
            })
        })
        .collect();
    for (i, h) in (0..).zip(handles) {
        assert_eq!(
            h.join().unwrap(),
            aws_store()
                .presign_get("test.txt", at(T0 + i * 86_400), Duration::days(1))
                .unwrap()
        );
    }
}

// ---- housekeeping: DELETE and ListObjectsV2 (issue 13, item 4) --------------------------------
//
// Canonical requests written out by hand from AWS's "Authenticating Requests: Using Query
// Parameters (AWS Signature Version 4)" (S3 API reference): the documented GET example with
// the method changed to DELETE, and a ListObjectsV2 request on the same bucket with the query
// of AWS's "GET Bucket (List Objects)" example in "Examples: Signature Calculations"
// (`max-keys=2&prefix=J`) plus `list-type=2`. The signatures are pinned here and checked
// against `aws-sigv4` in tests/s3_oracle.rs (`housekeeping_urls_match_aws_sigv4`).

/// `X-Amz-*` parameters of AWS's example (20130524, us-east-1, 86400 s), canonical form.
const AWS_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host";

/// The signature of AWS's example request with the method DELETE.
const AWS_DELETE_SIGNATURE: &str =
    "fb580faa6736a3af12ad5f9c3f1eea783af940a06f6a3de9dadb5679ca25cbfe";
/// The signature of the ListObjectsV2 request `max-keys=2&prefix=J` on AWS's example bucket.
const AWS_LIST_SIGNATURE: &str = "704cff0812a53cc8f7d3684c737ac9a7436412ba574817e5a4d405b1c7177e85";

#[test]
fn aws_example_delete() {
    let p = aws_store()
        .presign(
            "DELETE",
            "test.txt",
            at(T0),
            Duration::seconds(86_400),
            SignedHeaders::default(),
            &[],
        )
        .unwrap();
    assert_eq!(
        p.canonical_request,
        format!(
            "DELETE\n/test.txt\n{AWS_QUERY}\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"
        )
    );
    assert_eq!(
        p.string_to_sign,
        format!(
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{}",
            hex(&crate::crypto::sha256(p.canonical_request.as_bytes()))
        )
    );
    assert_eq!(p.signature, AWS_DELETE_SIGNATURE);
    let url = aws_store()
        .presign_delete("test.txt", at(T0), Duration::days(1))
        .unwrap();
    assert_eq!(
        url.as_str(),
        format!(
            "https://examplebucket.s3.amazonaws.com/test.txt?{AWS_QUERY}&X-Amz-Signature={AWS_DELETE_SIGNATURE}"
        )
    );
    // Only the method differs from the GET: the signature does too.
    assert_ne!(
        url.query(),
        aws_store()
            .presign_get("test.txt", at(T0), Duration::days(1))
            .unwrap()
            .query()
    );
}

#[test]
fn delete_follows_the_get_rules() {
    let store = aws_store();
    let d = Duration::hours(1);
    for key in ["", ".", "a/../b"] {
        assert!(
            matches!(
                store.presign_delete(key, at(T0), d),
                Err(StorageError::InvalidKey(_))
            ),
            "{key:?}"
        );
    }
    assert!(matches!(
        store.presign_delete(&"k".repeat(1025), at(T0), d),
        Err(StorageError::InvalidKey(_))
    ));
    assert_eq!(
        store.presign_delete("k", at(T0), Duration::seconds(604_801)),
        Err(StorageError::ExpiryTooLong {
            max_seconds: MAX_EXPIRES_SECONDS
        })
    );
    assert_eq!(
        store.presign_delete("k", at(T0), Duration::milliseconds(999)),
        Err(StorageError::InvalidExpiry)
    );
    let bad = S3Store::new(config("http://s3.example", "uploads", true));
    assert_eq!(
        bad.presign_delete("k", at(T0), d),
        Err(StorageError::InsecureBaseUrl)
    );
    // Path style, Unicode key: the object's path, as for GET and PUT.
    let store = S3Store::new(config("http://127.0.0.1:9000/s3/", "uploads", true));
    let url = store.presign_delete("ab/Фото 1.jpg", at(T0), d).unwrap();
    assert_eq!(
        url.path(),
        "/s3/uploads/ab/%D0%A4%D0%BE%D1%82%D0%BE%201.jpg"
    );
    assert_eq!(
        url.path(),
        store
            .presign_get("ab/Фото 1.jpg", at(T0), d)
            .unwrap()
            .path()
    );
}

#[test]
fn aws_example_list() {
    let p = aws_store()
        .list_presigned("J", None, Some(2), at(T0), Duration::seconds(86_400))
        .unwrap();
    assert_eq!(
        p.canonical_request,
        format!(
            "GET\n/\n{AWS_QUERY}&list-type=2&max-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"
        )
    );
    assert_eq!(p.signature, AWS_LIST_SIGNATURE);
    assert_eq!(
        p.url.as_str(),
        format!(
            "https://examplebucket.s3.amazonaws.com/?{AWS_QUERY}&list-type=2&max-keys=2&prefix=J&X-Amz-Signature={AWS_LIST_SIGNATURE}"
        )
    );
    // With a continuation token (base64: `/`, `+`, `=` encoded), sorted by encoded name:
    // `continuation-token` < `list-type` < `max-keys` < `prefix`.
    let p = aws_store()
        .list_presigned(
            "uploads/Фото ",
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy+vbOwM="),
            None,
            at(T0),
            Duration::seconds(86_400),
        )
        .unwrap();
    assert_eq!(
        p.canonical_request,
        format!(
            "GET\n/\n{AWS_QUERY}&continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy%2BvbOwM%3D&list-type=2&prefix=uploads%2F%D0%A4%D0%BE%D1%82%D0%BE%20\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"
        )
    );
    assert_eq!(
        query_param(&p.url, "continuation-token").as_deref(),
        Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy+vbOwM=")
    );
    assert_eq!(
        query_param(&p.url, "prefix").as_deref(),
        Some("uploads/Фото ")
    );
    // No prefix: no `prefix` parameter at all.
    let url = aws_store()
        .presign_list("", None, None, at(T0), Duration::hours(1))
        .unwrap();
    assert_eq!(query_param(&url, "prefix"), None);
    assert_eq!(query_param(&url, "list-type").as_deref(), Some("2"));
}

#[test]
fn list_paths_and_limits() {
    let d = Duration::hours(1);
    // Path style: the bucket's path, below the endpoint's prefix.
    let store = S3Store::new(config("http://127.0.0.1:9000/s3/", "uploads", true));
    let url = store.presign_list("a/", None, Some(1), at(T0), d).unwrap();
    assert_eq!(url.path(), "/s3/uploads");
    assert_eq!(query_param(&url, "max-keys").as_deref(), Some("1"));
    let store = S3Store::new(config("http://localhost:9000", "uploads", true));
    assert_eq!(
        store
            .presign_list("", None, None, at(T0), d)
            .unwrap()
            .path(),
        "/uploads"
    );
    // Limits.
    let store = aws_store();
    for n in [0, 1001, u32::MAX] {
        assert!(
            matches!(
                store.presign_list("", None, Some(n), at(T0), d),
                Err(StorageError::Unsupported(_))
            ),
            "{n}"
        );
    }
    assert!(store.presign_list("", None, Some(1000), at(T0), d).is_ok());
    for token in [String::new(), "t".repeat(4097)] {
        assert!(matches!(
            store.presign_list("", Some(&token), None, at(T0), d),
            Err(StorageError::InvalidKey(_))
        ));
    }
    assert!(matches!(
        store.presign_list(&"p".repeat(1025), None, None, at(T0), d),
        Err(StorageError::InvalidKey(_))
    ));
    assert_eq!(
        store.presign_list("", None, None, at(T0), Duration::days(8)),
        Err(StorageError::ExpiryTooLong {
            max_seconds: MAX_EXPIRES_SECONDS
        })
    );
    assert_eq!(
        store.presign_list("", None, None, at(T0), Duration::ZERO),
        Err(StorageError::InvalidExpiry)
    );
}

// ---- key prefix and public GET base ------------------------------------------------------------

fn invalid_config(store: &S3Store) -> &'static str {
    match store.validate() {
        Err(StorageError::InvalidS3Config(why)) => why,
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_prefix_is_validated() {
    let store = || S3Store::new(config("https://s3.example", "uploads", true));
    for good in ["", "uploads/", "uploads-", "a/b/", "Фото/", "x"] {
        assert_eq!(store().key_prefix(good).validate(), Ok(()), "{good:?}");
    }
    for bad in [
        "/uploads/",
        "a//b/",
        "//",
        "/",
        "a/./",
        "../x/",
        "a/..",
        "a\nb/",
        "a\u{7f}/",
    ] {
        let s = store().key_prefix(bad);
        assert!(invalid_config(&s).starts_with("key prefix:"), "{bad:?}");
        // Every call reports it, as for the other settings.
        assert!(matches!(
            s.presign_get("k", at(T0), Duration::hours(1)),
            Err(StorageError::InvalidS3Config(_))
        ));
        assert!(matches!(
            StorageBackend::validate(&s),
            Err(StorageError::InvalidS3Config(_))
        ));
    }
    assert_eq!(
        invalid_config(&store().key_prefix("p".repeat(513))),
        "key prefix: at most 512 bytes"
    );
    assert_eq!(store().key_prefix("p".repeat(512)).validate(), Ok(()));
}

#[test]
fn slot_keys_live_under_the_prefix() {
    let store = S3Store::new(config("https://s3.example", "uploads", true)).key_prefix("files/");
    assert_eq!(store.issued_key_prefix(), "files/");
    let target = store.issue_upload(&grant(Some(5), None, None)).unwrap();
    let key = format!("files/{}/Фото.jpg", "11".repeat(16));
    assert_eq!(target.object_key, key);
    assert_eq!(
        target.put_url.path(),
        format!(
            "/uploads/files/{}/%D0%A4%D0%BE%D1%82%D0%BE.jpg",
            "11".repeat(16)
        )
    );
    assert_eq!(target.get_url.path(), target.put_url.path());
    // The PUT is presign_put of the full key; a download by file ID uses the key as issued.
    let binding = PutBinding {
        content_length: Some(5),
        content_type: Some("image/jpeg"),
        ..PutBinding::default()
    };
    assert_eq!(
        store
            .presign_put(&key, at(T0), Duration::seconds(300), &binding)
            .unwrap()
            .0,
        target.put_url
    );
    let download = store
        .issue_download(&DownloadGrant::new(key.clone(), at(T0), at(T0 + 300)))
        .unwrap();
    assert_eq!(download.path(), target.put_url.path());
    assert_eq!(
        query_param(&download, "response-content-disposition").as_deref(),
        Some("attachment; filename*=UTF-8''%D0%A4%D0%BE%D1%82%D0%BE.jpg")
    );
    // A listing of the prefix is what finds them.
    let list = store
        .presign_list(
            store.issued_key_prefix(),
            None,
            None,
            at(T0),
            Duration::minutes(1),
        )
        .unwrap();
    assert_eq!(query_param(&list, "prefix").as_deref(), Some("files/"));
    // Without a prefix nothing changes (the keys of issue 11's tests).
    let plain = S3Store::new(config("https://s3.example", "uploads", true));
    assert_eq!(
        plain
            .issue_upload(&grant(Some(5), None, None))
            .unwrap()
            .object_key,
        format!("{}/Фото.jpg", "11".repeat(16))
    );
    // A prefix that makes the key too long is refused by the key rule.
    let long = S3Store::new(config("https://s3.example", "uploads", true))
        .key_prefix(format!("{}/", "p".repeat(511)));
    let name = "n".repeat(255);
    let g = UploadGrant::new(CheckedUpload {
        max_size: 10,
        ..checked(&name, 5)
    });
    assert!(long.issue_upload(&g).is_ok()); // 512 + 33 + 255 bytes
}

#[test]
fn public_get_base_gives_unsigned_slot_get_urls() {
    let store = S3Store::new(config("https://s3.example", "uploads", true))
        .key_prefix("files/")
        .public_get_base(Url::parse("https://cdn.example/media/").unwrap());
    assert_eq!(store.validate(), Ok(()));
    let t = store.issue_upload(&grant(Some(5), None, None)).unwrap();
    assert_eq!(
        t.get_url.as_str(),
        format!(
            "https://cdn.example/media/files/{}/%D0%A4%D0%BE%D1%82%D0%BE.jpg",
            "11".repeat(16)
        )
    );
    assert_eq!(t.get_url.query(), None);
    // The PUT stays presigned, the download by file ID too.
    assert!(query_param(&t.put_url, "X-Amz-Signature").is_some());
    assert_eq!(t.put_url.host_str(), Some("s3.example"));
    let d = store
        .issue_download(&DownloadGrant::new(
            t.object_key.clone(),
            at(T0),
            at(T0 + 300),
        ))
        .unwrap();
    assert_eq!(d.host_str(), Some("s3.example"));
    assert!(query_param(&d, "X-Amz-Signature").is_some());
    // Base at the root, with a port; reserved characters encoded per segment.
    let store = S3Store::new(config("https://s3.example", "uploads", true))
        .public_get_base(Url::parse("https://cdn.example:8443").unwrap());
    let t = store
        .issue_upload(&typed_grant(Some("text/plain"), "a b+c?.txt"))
        .unwrap();
    assert_eq!(
        t.get_url.as_str(),
        format!(
            "https://cdn.example:8443/{}/a%20b%2Bc%3F.txt",
            "22".repeat(16)
        )
    );
    // Loopback http is fine (as for the endpoint).
    let local = S3Store::new(config("https://s3.example", "uploads", true))
        .public_get_base(Url::parse("http://127.0.0.1:8080/pub").unwrap());
    assert_eq!(local.validate(), Ok(()));
}

#[test]
fn public_get_base_is_validated() {
    let with = |base: &str| {
        S3Store::new(config("https://s3.example", "uploads", true))
            .public_get_base(Url::parse(base).unwrap())
    };
    for (base, why) in [
        ("http://cdn.example/", "public GET base: must be https (plain http only on loopback or with allow_insecure_http)"),
        ("ftp://cdn.example/", "public GET base: must be https (plain http only on loopback or with allow_insecure_http)"),
        ("https://u:p@cdn.example/", "public GET base: must not carry user info"),
        ("https://cdn.example/?a=1", "public GET base: must not have a query or a fragment"),
        ("https://cdn.example/#f", "public GET base: must not have a query or a fragment"),
        ("mailto:cdn@example.org", "public GET base: must be a hierarchical http(s) URL"),
    ] {
        assert_eq!(invalid_config(&with(base)), why, "{base}");
    }
    // Plain http elsewhere only when allowed, either order of the builders.
    assert_eq!(
        with("http://cdn.example/")
            .allow_insecure_http(true)
            .validate(),
        Ok(())
    );
    assert_eq!(
        S3Store::new(config("https://s3.example", "uploads", true))
            .allow_insecure_http(true)
            .public_get_base(Url::parse("http://cdn.example/").unwrap())
            .validate(),
        Ok(())
    );
    // Debug shows the settings without user info.
    let text = format!(
        "{:?}",
        with("https://u:hunter2@cdn.example/").key_prefix("files/")
    );
    assert!(
        text.contains("files/") && text.contains("cdn.example"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn query_written_in_order_is_the_canonical_query() {
    // The signer writes the query in SigV4's order instead of sorting it; the general rule
    // (encode every pair, sort by encoded name) must give the same text for every request
    // this crate signs.
    let mut with_token = config("https://s3.example", "uploads", true);
    with_token.session_token = Some("FwoGZX+IvYXdz/EJ//token==".into());
    let tokened = S3Store::new(with_token);
    let store = aws_store();
    let overrides = GetOverrides {
        content_type: Some("text/plain; charset=utf-8"),
        content_disposition: Some("attachment; filename*=UTF-8''a%20b.txt"),
    };
    let binding = PutBinding {
        content_length: Some(5),
        content_type: Some("image/jpeg"),
        content_md5: Some([7; 16]),
        sha256: Some([9; 32]),
    };
    let urls = [
        store
            .presign_get("a/b c.txt", at(T0), Duration::hours(1))
            .unwrap(),
        store
            .presign_get_with("k", at(T0), Duration::hours(1), &overrides)
            .unwrap(),
        store
            .presign_put("k", at(T0), Duration::minutes(5), &binding)
            .unwrap()
            .0,
        store
            .presign_list(
                "uploads/",
                Some("tok=en/+"),
                Some(10),
                at(T0),
                Duration::minutes(1),
            )
            .unwrap(),
        tokened
            .presign_delete("k", at(T0), Duration::minutes(1))
            .unwrap(),
        tokened
            .presign_get_with("k", at(T0), Duration::hours(1), &overrides)
            .unwrap(),
    ];
    for url in &urls {
        let query = url.query().unwrap();
        let (signed, _) = query.rsplit_once("&X-Amz-Signature=").unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(n, _)| n != "X-Amz-Signature")
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(signed, canonical_query(&borrowed), "{url}");
    }
    assert!(urls[4].as_str().contains("X-Amz-Security-Token="));
}
