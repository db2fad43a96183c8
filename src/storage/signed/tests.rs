use super::*;
use crate::checked::{ContentType, FileName};
use crate::storage::CheckedUpload;
use crate::storage::{StorageBackend, StorageError, UploadGrant};
use base64::Engine as _;
use std::borrow::Cow;
use time::Duration;
use time::OffsetDateTime;
use url::Url;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn grant(name: &str, size: u64, ty: Option<&str>) -> UploadGrant {
    UploadGrant::new(checked(name, size, ty))
}

fn checked(name: &str, size: u64, ty: Option<&str>) -> CheckedUpload {
    CheckedUpload {
        slot_id: [0xab; 16],
        filename: FileName::new(name).unwrap(),
        size: Some(size),
        max_size: size,
        content_type: ty.map(|t| ContentType::new(t).unwrap()),
        sha256: None,
        md5: None,
        requester: "romeo@montague.tld".parse().unwrap(),
        now: now(),
        put_expires: now() + Duration::seconds(300),
        get_expires: None,
    }
}

fn store() -> SignedUrlStore {
    SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "k".repeat(32))
}

#[test]
fn put_url_verifies_and_binds() {
    let s = store();
    let t = s
        .issue_upload(&grant("my juliet.jpg", 23456, Some("image/jpeg")))
        .unwrap();
    assert!(t
        .put_url
        .as_str()
        .starts_with("https://files.example/up/abababab"));
    assert!(t.put_url.path().ends_with("/my%20juliet.jpg"));
    let v = s
        .verify_put(&t.put_url, 23456, Some("image/jpeg"), now())
        .unwrap();
    assert_eq!(v.filename, "my juliet.jpg");
    assert_eq!(v.key, format!("{}/my juliet.jpg", "ab".repeat(16)));
    assert_eq!(v.expires, now() + Duration::seconds(300));
    assert!(matches!(
        s.verify_put(&t.put_url, 23457, Some("image/jpeg"), now()),
        Err(VerifyError::SizeMismatch { .. })
    ));
    assert_eq!(
        s.verify_put(&t.put_url, 23456, Some("image/png"), now()),
        Err(VerifyError::TypeMismatch)
    );
    // A PUT without Content-Type is accepted: the bound type is what gets stored.
    let untyped = s.verify_put(&t.put_url, 23456, None, now()).unwrap();
    assert_eq!(untyped.content_type.as_deref(), Some("image/jpeg"));
    // The essence is compared, normalised; a list of types is not a type.
    assert!(s
        .verify_put(&t.put_url, 23456, Some(" Image/JPEG ; q=1"), now())
        .is_ok());
    assert_eq!(
        s.verify_put(&t.put_url, 23456, Some("image/jpeg, text/html"), now()),
        Err(VerifyError::TypeMismatch)
    );
    assert_eq!(
        s.verify_put(
            &t.put_url,
            23456,
            Some("image/jpeg"),
            now() + Duration::seconds(300)
        ),
        Err(VerifyError::Expired)
    );
    let other = SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "x".repeat(32));
    assert_eq!(
        other.verify_put(&t.put_url, 23456, Some("image/jpeg"), now()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn verified_put_borrows_what_needs_no_decoding() {
    let s = store();
    let t = s
        .issue_upload(&grant("juliet.jpg", 5, Some("image/jpeg")))
        .unwrap();
    assert!(t.put_url.as_str().contains("&by=romeo@montague.tld&"));
    let v = s.verify_put(&t.put_url, 5, None, now()).unwrap();
    assert!(matches!(v.key, Cow::Borrowed(_)));
    assert!(matches!(v.filename, Cow::Borrowed(_)));
    assert!(matches!(v.content_type, Some(Cow::Borrowed("image/jpeg"))));
    assert_eq!(v.owner_str(), Some("romeo@montague.tld"));
    assert_eq!(v.owner(), Some("romeo@montague.tld".parse().unwrap()));
    // A name that had to be decoded is owned, and the key is built from it.
    let t = s.issue_upload(&grant("my juliet.jpg", 5, None)).unwrap();
    let v = s.verify_put(&t.put_url, 5, None, now()).unwrap();
    assert!(matches!(v.filename, Cow::Owned(_)));
    assert_eq!(v.key, format!("{}/my juliet.jpg", "ab".repeat(16)));
    // Detached from the URL, equal in value.
    let owned = {
        let url = t.put_url.clone();
        s.verify_put(&url, 5, None, now()).unwrap().into_owned()
    };
    assert_eq!(owned, v);
    // URLs of the earlier encoding (`@` as `%40`) verify with the same owner: the MAC covers
    // decoded values.
    let encoded: Url = t
        .put_url
        .as_str()
        .replace("by=romeo@", "by=romeo%40")
        .parse()
        .unwrap();
    assert_ne!(encoded, t.put_url);
    let v = s.verify_put(&encoded, 5, None, now()).unwrap();
    assert_eq!(v.owner_str(), Some("romeo@montague.tld"));
}

#[test]
fn get_url_verifies() {
    let s = store();
    let t = s.issue_upload(&grant("Отчёт.pdf", 1, None)).unwrap();
    let g = s
        .verify_get(&t.get_url, now() + Duration::days(3650))
        .unwrap();
    assert_eq!(g.filename, "Отчёт.pdf");
    assert_eq!(g.expires, None);
    assert!(t.get_url.as_str().is_ascii());
    // No query: the link ends with the percent-encoded name, the MAC is a path segment.
    assert_eq!(t.get_url.query(), None);
    assert!(t
        .get_url
        .as_str()
        .ends_with("/%D0%9E%D1%82%D1%87%D1%91%D1%82.pdf"));
    let segs: Vec<&str> = t.get_url.path_segments().unwrap().collect();
    assert_eq!(segs.len(), 4, "{segs:?}");
    assert_eq!(segs[1], "ab".repeat(16));
    assert_eq!(segs[2].len(), 43);
    // A PUT URL is not a GET URL and vice versa.
    assert!(s.verify_get(&t.put_url, now()).is_err());
    assert!(s.verify_put(&t.get_url, 1, None, now()).is_err());
}

#[test]
fn get_url_with_expiry_keeps_it_in_the_path() {
    let s = store();
    let key = format!("{}/clip.mp4", "ab".repeat(16));
    let exp = now() + Duration::hours(1);
    let u = s.sign_get(&key, Some(exp)).unwrap();
    assert_eq!(u.query(), None);
    assert!(u.path().ends_with("/clip.mp4"));
    let tag = u.path_segments().unwrap().nth(2).unwrap().to_owned();
    assert_eq!(
        tag.split_once('.').map(|(e, _)| e.to_owned()),
        Some(exp.unix_timestamp().to_string())
    );
    assert_eq!(s.verify_get(&u, now()).unwrap().expires, Some(exp));
    assert_eq!(s.verify_get(&u, exp), Err(VerifyError::Expired));
    // The expiry moved, dropped, or the tag of the undated link: refused.
    let later = tag.replacen(&exp.unix_timestamp().to_string(), "1900000000", 1);
    let undated = tag.split_once('.').unwrap().1.to_owned();
    for forged in [later, undated] {
        let mut f = u.clone();
        f.set_path(&u.path().replacen(&tag, &forged, 1));
        assert_eq!(
            s.verify_get(&f, now()),
            Err(VerifyError::BadSignature),
            "{forged}"
        );
    }
    // A query added to a path-signed link: refused.
    let mut q = u.clone();
    q.set_query(Some("exp=1"));
    assert!(matches!(
        s.verify_get(&q, now()),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn get_url_forgeries_in_the_path_are_refused() {
    let s = store();
    let key = format!("{}/a.jpg", "ab".repeat(16));
    let u = s.sign_get(&key, None).unwrap();
    let path = u.path().to_owned();
    let sig = u.path_segments().unwrap().nth(2).unwrap().to_owned();
    let other = s
        .sign_get(&format!("{}/a.jpg", "cd".repeat(16)), None)
        .unwrap();
    let other_sig = other.path_segments().unwrap().nth(2).unwrap().to_owned();
    let mut flipped = sig.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cases: Vec<(String, VerifyError)> = vec![
        // Another file name in the same slot.
        (
            path.replacen("/a.jpg", "/a.html", 1),
            VerifyError::BadSignature,
        ),
        // Another slot with this MAC.
        (
            path.replacen(&"ab".repeat(16), &"cd".repeat(16), 1),
            VerifyError::BadSignature,
        ),
        // Another slot's MAC, or one character changed.
        (
            path.replacen(&sig, &other_sig, 1),
            VerifyError::BadSignature,
        ),
        (path.replacen(&sig, &flipped, 1), VerifyError::BadSignature),
        // Truncated or extended MAC.
        (
            path.replacen(&sig, &sig[..42], 1),
            VerifyError::Malformed(""),
        ),
        (
            path.replacen(&sig, &format!("{sig}A"), 1),
            VerifyError::Malformed(""),
        ),
        // An empty or non-numeric expiry prefix.
        (
            path.replacen(&sig, &format!(".{sig}"), 1),
            VerifyError::Malformed(""),
        ),
        (
            path.replacen(&sig, &format!("x.{sig}"), 1),
            VerifyError::Malformed(""),
        ),
        // Encoded slash, dot segments, upper-case slot id, an extra segment.
        (
            path.replacen("/a.jpg", "%2Fa.jpg", 1),
            VerifyError::Malformed(""),
        ),
        (
            path.replacen("/a.jpg", "/..%2Fa.jpg", 1),
            VerifyError::Malformed(""),
        ),
        (
            path.replacen(&"ab".repeat(16), &"AB".repeat(16), 1),
            VerifyError::Malformed(""),
        ),
        (format!("{path}/x"), VerifyError::Malformed("")),
    ];
    for (forged, want) in cases {
        let mut f = u.clone();
        f.set_path(&forged);
        let got = s.verify_get(&f, now());
        match want {
            VerifyError::Malformed(_) => {
                assert!(
                    matches!(got, Err(VerifyError::Malformed(_))),
                    "{forged}: {got:?}"
                )
            }
            want => assert_eq!(got, Err(want), "{forged}"),
        }
    }
    // Another key: refused.
    let other_key =
        SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "x".repeat(32));
    assert_eq!(
        other_key.verify_get(&u, now()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn legacy_query_get_urls_still_verify() {
    let s = store();
    let key = format!("{}/a b.jpg", "ab".repeat(16));
    let sig = B64URL.encode(
        s.key
            .sign_fields(&[b"GET", VERSION.as_bytes(), key.as_bytes(), b""]),
    );
    let u: Url = format!(
        "https://files.example/up/{}/a%20b.jpg?sig={sig}",
        "ab".repeat(16)
    )
    .parse()
    .unwrap();
    assert_eq!(s.verify_get(&u, now()).unwrap().key, key);
    let mut f = u.clone();
    f.set_query(Some(&format!("exp=1999999999&sig={sig}")));
    assert_eq!(s.verify_get(&f, now()), Err(VerifyError::BadSignature));
}

#[test]
fn chunked_put_takes_the_bound_size() {
    let s = store();
    let t = s.issue_upload(&grant("a.bin", 4, None)).unwrap();
    let v = s.verify_put_request(&t.put_url, None, None, now()).unwrap();
    assert_eq!(v.size, 4);
    let mut c = v.body_check();
    c.update(b"abc").unwrap();
    assert_eq!(
        c.clone().finish(),
        Err(VerifyError::Incomplete {
            expected: 4,
            actual: 3
        })
    );
    assert_eq!(
        VerifyError::Incomplete {
            expected: 4,
            actual: 3
        }
        .status(),
        400
    );
    assert!(matches!(
        c.update(b"de"),
        Err(VerifyError::SizeMismatch { .. })
    ));
    // A slot bound only by a limit needs a declared length.
    let mut c = checked("b.bin", 4, None);
    c.size = None;
    c.md5 = Some([1; 16]);
    let t = s.issue_upload(&UploadGrant::new(c)).unwrap();
    assert_eq!(
        s.verify_put_request(&t.put_url, None, None, now()),
        Err(VerifyError::LengthRequired)
    );
    assert!(s
        .verify_put_request(&t.put_url, Some(3), None, now())
        .is_ok());
}

#[test]
fn debug_hides_credentials_and_signed_queries() {
    let s = SignedUrlStore::new(
        "https://user:hunter2@f.example/up/?token=abc#frag"
            .parse()
            .unwrap(),
        "k".repeat(32),
    );
    let d = format!("{s:?}");
    assert!(
        !d.contains("hunter2") && !d.contains("user") && !d.contains("abc"),
        "{d}"
    );
    assert!(d.contains("f.example/…/"), "{d}");
    let t = store()
        .issue_upload(&grant("a.jpg", 1, Some("image/jpeg")))
        .unwrap();
    let d = format!("{t:?}");
    let sig = t
        .put_url
        .query_pairs()
        .find(|(k, _)| k == "sig")
        .unwrap()
        .1
        .into_owned();
    assert!(!d.contains(&sig) && !d.contains("exp="), "{d}");
    assert!(d.contains("/a.jpg?…"), "{d}");
}

#[test]
fn insecure_base_is_refused_unless_loopback_or_allowed() {
    let g = grant("a", 1, None);
    let s = SignedUrlStore::new("http://files.example/".parse().unwrap(), "k".repeat(32));
    assert_eq!(s.issue_upload(&g), Err(StorageError::InsecureBaseUrl));
    assert!(s.allow_insecure_http(true).issue_upload(&g).is_ok());
    let s = SignedUrlStore::new("http://127.0.0.1:8080/".parse().unwrap(), "k".repeat(32));
    assert!(s.issue_upload(&g).is_ok());
}

#[test]
fn debug_redacts_the_key() {
    let s = SignedUrlStore::new(
        "https://f.example/".parse().unwrap(),
        "supersecretkey, 16+ bytes",
    );
    assert!(!format!("{s:?}").contains("supersecret"));
    assert!(format!("{s:?}").contains("https://f.example/"));
}

#[test]
fn body_check_enforces_length_and_digests() {
    let v = VerifiedPut {
        key: "".into(),
        filename: "".into(),
        size: 3,
        content_type: None,
        sha256: Some(crate::crypto::sha256(b"abc")),
        md5: None,
        expires: now(),
        by: None,
    };
    let mut c = v.body_check();
    c.update(b"ab").unwrap();
    c.update(b"c").unwrap();
    c.clone().finish().unwrap();
    assert!(c.update(b"d").is_err());
    let mut c = v.body_check();
    c.update(b"abd").unwrap();
    assert_eq!(c.finish(), Err(VerifyError::DigestMismatch));
}
