//! Criterion benchmarks, each measured in the same run as its peer or floor:
//!
//! * `slot/handle_v0_signed` vs `slot/floor_xmpp_parsers`: request bytes → reply bytes through
//!   `SlotService::handle` (signed store), against parsing with xmpp-parsers and building a
//!   `SlotResult` with fixed URLs (the bare XML floor);
//! * `s3/presign_put_{xmpp_upload,rusty_s3,aws_sigv4}`: the same presigned PUT (same key, time,
//!   signed headers) by this crate, rusty-s3 and aws-sigv4;
//! * `verify/verify_put` vs `verify/floor_hmac_sha256`: checking a signed PUT URL against one
//!   bare HMAC-SHA256 (keyed state prepared once) over the same signed bytes;
//! * `quota/ledger_1k_users` vs `quota/ledger_1m_users`: one charge in the in-memory ledger
//!   with 10^3 and 10^6 distinct users.
//!
//! Run: `cargo bench --bench slots`.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::hint::black_box;
use std::time::{Duration as StdDuration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, KeyInit, Mac};
use jid::BareJid;
use minidom::Element;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};
use url::Url;
use xmpp_parsers::http_upload::{Get, Put, SlotRequest as XpRequest, SlotResult};
use xmpp_upload::service::{MemoryLedger, QuotaLedger, QuotaLimits};
use xmpp_upload::storage::s3::{PutBinding, S3Config, S3Store};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};

const REQUEST: &str = "<iq xmlns='jabber:client' from='romeo@montague.tld/garden' id='step_03' to='upload.montague.tld' type='get'><request xmlns='urn:xmpp:http:upload:0' filename='my-juliet.jpg' size='23456' content-type='image/jpeg'/></iq>";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn slot(c: &mut Criterion) {
    let service = SlotService::new(
        ServiceConfig::new(
            "upload.montague.tld".parse().unwrap(),
            *b"bench service secret of 32 bytes",
        ),
        SignedUrlStore::new(
            "https://files.montague.tld/up/".parse().unwrap(),
            *b"bench store key, 32 random bytes",
        ),
    );
    let mut g = c.benchmark_group("slot");
    g.bench_function("handle_v0_signed", |b| {
        b.iter(|| {
            let el: Element = black_box(REQUEST).parse().unwrap();
            let reply = service.handle(&el, now()).unwrap();
            String::from(&reply)
        })
    });
    g.bench_function("floor_xmpp_parsers", |b| {
        b.iter(|| {
            let el: Element = black_box(REQUEST).parse().unwrap();
            let req = XpRequest::try_from(el.children().next().unwrap().clone()).unwrap();
            let url = format!(
                "https://files.montague.tld/up/4a771ac1f0b24a4a9700f2a26fa2bb67/{}",
                req.filename
            );
            let result = SlotResult {
                put: Put {
                    url: url.clone(),
                    headers: Vec::new(),
                },
                get: Get { url },
            };
            let reply = Element::builder("iq", "jabber:client")
                .attr(minidom::rxml::NcName::try_from("type").unwrap(), "result")
                .attr(
                    minidom::rxml::NcName::try_from("id").unwrap(),
                    el.attr("id").unwrap(),
                )
                .attr(
                    minidom::rxml::NcName::try_from("from").unwrap(),
                    el.attr("to").unwrap(),
                )
                .attr(
                    minidom::rxml::NcName::try_from("to").unwrap(),
                    el.attr("from").unwrap(),
                )
                .append(Element::from(result))
                .build();
            String::from(&reply)
        })
    });
    g.finish();
}

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const KEY: &str = "4a771ac1f0b24a4a9700f2a26fa2bb67/my-juliet.jpg";

fn s3(c: &mut Criterion) {
    let store = S3Store::new(S3Config {
        endpoint: "https://s3.amazonaws.com".parse().unwrap(),
        bucket: "examplebucket".into(),
        region: "us-east-1".into(),
        access_key_id: AK.into(),
        secret_access_key: SK.into(),
        session_token: None,
        path_style: true,
    });
    let binding = PutBinding {
        content_length: Some(23456),
        content_type: Some("image/jpeg"),
        ..PutBinding::default()
    };
    let ours = store
        .presign_put(KEY, now(), Duration::seconds(300), &binding)
        .unwrap()
        .0;

    let bucket = rusty_s3::Bucket::new(
        "https://s3.amazonaws.com".parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        "examplebucket",
        "us-east-1",
    )
    .unwrap();
    let creds = rusty_s3::Credentials::new(AK, SK);
    let ts = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let rusty = || {
        use rusty_s3::S3Action;
        let mut action = bucket.put_object(Some(&creds), KEY);
        action.headers_mut().insert("content-length", "23456");
        action.headers_mut().insert("content-type", "image/jpeg");
        action.sign_with_time(StdDuration::from_secs(300), &ts)
    };
    let sig = |u: &Url| {
        u.query_pairs()
            .find(|(k, _)| k == "X-Amz-Signature")
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        sig(&ours),
        sig(&rusty()),
        "the peers must sign the same request"
    );

    let identity = aws_credential_types::Credentials::new(AK, SK, None, None, "bench").into();
    let aws = || {
        use aws_sigv4::http_request::{
            sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        };
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(StdDuration::from_secs(300));
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(UNIX_EPOCH + StdDuration::from_secs(1_700_000_000))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            "PUT",
            "https://s3.amazonaws.com/examplebucket/4a771ac1f0b24a4a9700f2a26fa2bb67/my-juliet.jpg",
            [("content-length", "23456"), ("content-type", "image/jpeg")].into_iter(),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let (instructions, signature) = sign(request, &params).unwrap().into_parts();
        let mut url = Url::parse(
            "https://s3.amazonaws.com/examplebucket/4a771ac1f0b24a4a9700f2a26fa2bb67/my-juliet.jpg",
        )
        .unwrap();
        {
            let (_, query) = instructions.into_parts();
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, &v);
            }
        }
        (url, signature)
    };
    assert_eq!(
        sig(&ours),
        Some(aws().1),
        "aws-sigv4 must sign the same request"
    );

    // The floor: exactly the SHA-256/HMAC work of a presign whose signing key is cached (one
    // SHA-256 of the canonical request, one HMAC of the string to sign), over the very bytes
    // SigV4 defines for this request; checked by producing the same signature.
    let hmac = |key: &[u8], data: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let signing_key = [b"20231114".as_slice(), b"us-east-1", b"s3", b"aws4_request"]
        .iter()
        .fold(format!("AWS4{SK}").into_bytes(), |k, part| hmac(&k, part));
    let canonical = format!(
        "PUT\n/examplebucket/{KEY}\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F20231114%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20231114T221320Z&X-Amz-Expires=300&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost\n\
         content-length:23456\ncontent-type:image/jpeg\nhost:s3.amazonaws.com\n\n\
         content-length;content-type;host\nUNSIGNED-PAYLOAD"
    );
    let sts_head = "AWS4-HMAC-SHA256\n20231114T221320Z\n20231114/us-east-1/s3/aws4_request\n";
    let floor = || {
        use sha2::Digest as _;
        let hash = Sha256::digest(canonical.as_bytes());
        let mut m = Hmac::<Sha256>::new_from_slice(&signing_key).unwrap();
        m.update(sts_head.as_bytes());
        m.update(hex::encode(hash).as_bytes());
        m.finalize().into_bytes()
    };
    assert_eq!(
        sig(&ours),
        Some(hex::encode(floor())),
        "the floor must do exactly the presign's hashing"
    );

    // The least any presign returning a `url::Url` does: the floor's hashing, then parsing
    // the finished URL text (which `Url` offers as its only constructor).
    let text = ours.as_str().to_owned();
    let floor_url = || {
        let sig = floor();
        (Url::parse(black_box(&text)).unwrap(), sig)
    };

    let mut g = c.benchmark_group("s3");
    g.bench_function("floor_sigv4", |b| b.iter(|| black_box(floor())));
    g.bench_function("floor_sigv4_url", |b| b.iter(|| black_box(floor_url())));
    g.bench_function("presign_put_xmpp_upload", |b| {
        b.iter(|| {
            store
                .presign_put(black_box(KEY), now(), Duration::seconds(300), &binding)
                .unwrap()
        })
    });
    g.bench_function("presign_put_rusty_s3", |b| b.iter(|| black_box(rusty())));
    g.bench_function("presign_put_aws_sigv4", |b| b.iter(|| black_box(aws())));
    g.finish();
}

fn verify(c: &mut Criterion) {
    let key = *b"bench store key, 32 random bytes";
    let store = SignedUrlStore::new("https://files.montague.tld/up/".parse().unwrap(), key);
    let service = SlotService::new(
        ServiceConfig::new(
            "upload.montague.tld".parse().unwrap(),
            *b"bench service secret of 32 bytes",
        ),
        store.clone(),
    );
    let reply = service.handle(&REQUEST.parse().unwrap(), now()).unwrap();
    let slot =
        xmpp_upload::stanza::upload::Slot::try_from(reply.children().next().unwrap()).unwrap();
    let put = slot.put;
    assert!(store
        .verify_put(&put, 23456, Some("image/jpeg"), now())
        .is_ok());
    // The bytes the signature covers: ten length-prefixed fields of the same sizes.
    let fields: Vec<Vec<u8>> = {
        let q: Vec<(String, String)> = put
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |n: &str| {
            q.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let path = put.path().trim_start_matches("/up/").to_owned();
        [
            b"PUT".to_vec(),
            b"1".to_vec(),
            path.into_bytes(),
            get("size").into_bytes(),
            Vec::new(),
            get("type").into_bytes(),
            Vec::new(),
            Vec::new(),
            get("exp").into_bytes(),
            get("by").into_bytes(),
        ]
        .to_vec()
    };
    let keyed = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let mut g = c.benchmark_group("verify");
    g.bench_function("verify_put", |b| {
        b.iter(|| {
            store
                .verify_put(black_box(&put), 23456, Some("image/jpeg"), now())
                .unwrap()
        })
    });
    g.bench_function("floor_hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            for f in &fields {
                mac.update(&(f.len() as u64).to_be_bytes());
                mac.update(f);
            }
            black_box(mac.finalize())
        })
    });
    g.finish();
}

fn quota(c: &mut Criterion) {
    let limits = QuotaLimits::daily(Some(u64::MAX / 2), Some(u64::MAX / 2));
    let mut g = c.benchmark_group("quota");
    for (name, users) in [
        ("ledger_1k_users", 1_000usize),
        ("ledger_1m_users", 1_000_000usize),
    ] {
        let ledger = MemoryLedger::new();
        let jids: Vec<BareJid> = (0..users)
            .map(|i| format!("user{i}@montague.tld").parse().unwrap())
            .collect();
        for j in &jids {
            ledger.charge(j, 1, now(), &limits).unwrap();
        }
        let mut i = 0usize;
        let mut t = now();
        g.bench_function(name, |b| {
            b.iter(|| {
                // Walk the users in a scattered order so the 10^6 case cannot stay in cache.
                i = (i + 7919) % users;
                t += Duration::milliseconds(1);
                ledger.charge(&jids[i], 1, t, &limits).unwrap();
            })
        });
    }
    // 10^6 charges from 1000 users spread over 23 hours of the window; then one more charge
    // that fits (admitted) or that the global cap refuses (the old ledger scanned its log
    // to find the retry time: 1.9 ms; buckets with running totals make it a binary search).
    for (name, global) in [
        ("admitted_1m_in_window", u64::MAX / 2),
        ("refused_1m_in_window", 1_000_000),
    ] {
        let limits = QuotaLimits::daily(Some(u64::MAX / 2), Some(global));
        let ledger = MemoryLedger::new();
        let jids: Vec<BareJid> = (0..1000)
            .map(|i| format!("user{i}@montague.tld").parse().unwrap())
            .collect();
        for k in 0..1_000_000i64 {
            let t = now() + Duration::milliseconds(k * 82_800);
            let j = &jids[(k as usize * 7919) % jids.len()];
            ledger.charge(j, 1, t, &limits).unwrap();
        }
        let at = now() + Duration::hours(23);
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 7919) % jids.len();
                black_box(ledger.charge(&jids[i], 1, at, &limits).is_ok())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, slot, s3, verify, quota);
criterion_main!(benches);
