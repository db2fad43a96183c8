//! End-to-end check of `storage::s3` against a real S3 server that verifies SigV4 (s3s-fs).
//!
//! Run by `ci/s3_e2e.sh`, which starts s3s-fs on loopback and sets:
//! `S3_E2E_ENDPOINT` (`http://127.0.0.1:PORT`), `S3_E2E_BUCKET`, `S3_E2E_ACCESS_KEY`,
//! `S3_E2E_SECRET_KEY` (and optionally `S3_E2E_REGION`, default `us-east-1`).
//!
//! What it shows, each against the server's real answer:
//! 1. a presigned URL with one signature character flipped gets 403;
//! 2. a body of another length than the signed `Content-Length` is refused;
//! 3. another `Content-MD5` than the bound one is refused (and, under its own key, so is
//!    another body of the same length under the bound MD5: 400 BadDigest);
//! 4. another `Content-Type` than the bound one is refused;
//! 5. an expired URL (signed with `now` in the past) is refused;
//! 6. none of the refused PUTs stored anything (presigned GET: 404);
//! 7. the declared bytes with the required headers get 200, and a presigned GET returns them;
//! 8. a SHA-256-bound PUT (`x-amz-checksum-sha256`) with the right body gets 200, with another
//!    checksum header 403.
//! 10. a slot requested without a type signs `Content-Type: application/octet-stream`: a PUT
//!     without that header, or with `text/html`, is refused; with it, 200;
//! 11. a p1 upload by MD5 alone is refused by the service (a presigned PUT cannot bound an
//!     undeclared size);
//! 12. GET URLs carry signed `response-content-type` / `response-content-disposition`: the
//!     server accepts them (7. and 10. GET through them), and where it applies the overrides
//!     the answer has the signed `Content-Disposition` (`attachment` for a download by file ID).
//!
//! 13. housekeeping (issue 13): slots issued by a store with a key prefix are uploaded under it;
//!     a presigned ListObjectsV2 by that prefix finds exactly them (page by page with a
//!     continuation token when `max-keys` is small), with their sizes; a presigned DELETE
//!     removes one (then GET 404, and the next listing no longer has it); a DELETE with a
//!     flipped signature character, or expired, gets 403 and leaves the object; a tampered
//!     LIST gets 403; and with a public GET base the slot's GET URL is `{base}/{key}`.
//!
//! It exits non-zero if any check failed.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::process::ExitCode;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};
use url::Url;
use xmpp_upload::stanza::file_transfer::{DownloadRequest, Query, UploadRequest};
use xmpp_upload::stanza::iq::{request, IqType};
use xmpp_upload::stanza::upload::{Slot, SlotRequest};
use xmpp_upload::storage::s3::{ListPage, PutBinding, S3Config, S3Store};
use xmpp_upload::{ServiceConfig, SlotService};

/// A server answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
    /// `Content-Type` and `Content-Disposition`, when sent.
    content_type: Option<String>,
    content_disposition: Option<String>,
}

fn send(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Answer, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build();
    let mut request = agent.request_url(method, url);
    for (name, value) in headers {
        // ureq computes Content-Length from the body it sends: the real length always goes out.
        if !name.eq_ignore_ascii_case("content-length") {
            request = request.set(name, value);
        }
    }
    let response = match if method == "GET" || method == "DELETE" {
        request.call()
    } else {
        request.send_bytes(body)
    } {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} failed: {e}")),
    };
    let status = response.status();
    let content_type = response.header("content-type").map(str::to_owned);
    let content_disposition = response.header("content-disposition").map(str::to_owned);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body)
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body,
        content_type,
        content_disposition,
    })
}

/// The first 200 bytes of a body, for messages (s3s-fs answers XML errors).
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).replace('\n', " ")
}

/// The URL with one character of `X-Amz-Signature` changed.
fn tamper(url: &Url) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(n, v)| {
            let mut v = v.into_owned();
            if n == "X-Amz-Signature" {
                let flipped = if v.starts_with('0') { "1" } else { "0" };
                v.replace_range(0..1, flipped);
            }
            (n.into_owned(), v)
        })
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

struct Checks {
    failures: usize,
}

impl Checks {
    fn expect(
        &mut self,
        what: &str,
        answer: Result<Answer, String>,
        ok: impl Fn(u16) -> bool,
        want: &str,
    ) {
        match answer {
            Ok(a) if ok(a.status) => println!("ok   {what}: {}", a.status),
            Ok(a) => {
                self.failures += 1;
                println!(
                    "FAIL {what}: got {}, want {want} ({})",
                    a.status,
                    snippet(&a.body)
                );
            }
            Err(e) => {
                self.failures += 1;
                println!("FAIL {what}: {e}");
            }
        }
    }
}

fn refused(status: u16) -> bool {
    (400..500).contains(&status)
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() -> ExitCode {
    match run() {
        Ok(0) => {
            println!("s3_e2e: all checks passed");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("s3_e2e: {n} check(s) failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("s3_e2e: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<usize, String> {
    let endpoint =
        Url::parse(&env("S3_E2E_ENDPOINT", "http://127.0.0.1:8014")).map_err(|e| e.to_string())?;
    let store = S3Store::new(S3Config {
        endpoint,
        bucket: env("S3_E2E_BUCKET", "xmpp-upload-e2e"),
        region: env("S3_E2E_REGION", "us-east-1"),
        access_key_id: env("S3_E2E_ACCESS_KEY", "AK"),
        secret_access_key: env("S3_E2E_SECRET_KEY", "SK"),
        session_token: None,
        path_style: true,
    });
    store.validate().map_err(|e| e.to_string())?;
    println!("s3_e2e: {store:?}");

    // Slots come from the slot service, as a component would issue them: a
    // p1:http-file-transfer upload by MD5 (with name, size and type), then a download IQ
    // resolving the file ID to a presigned GET.
    let service = SlotService::new(
        ServiceConfig::new(
            "upload.localhost".parse().map_err(|e| format!("{e}"))?,
            *b"s3 e2e service secret, 32 bytes.",
        )
        .allow_domains(["localhost"]),
        store,
    );
    let store = service.storage();
    let now = OffsetDateTime::now_utc();
    let body = "Привет from xmpp-upload's S3 end-to-end test 😀\n"
        .repeat(20)
        .into_bytes();
    let md5: [u8; 16] = Md5::digest(&body).into();
    let len = u64::try_from(body.len()).map_err(|e| e.to_string())?;
    let name = "Фото отпуск (1)+&=.txt";
    let (put, headers, fileid) = p1_upload(&service, md5, name, len, now)?;
    let get = p1_download(&service, &fileid, now)?;
    let key = put.path().trim_start_matches('/').to_owned();
    let put_ttl = Duration::minutes(5);
    let binding = PutBinding {
        content_length: Some(len),
        content_type: Some("text/plain; charset=utf-8"),
        content_md5: Some(md5),
        sha256: None,
    };
    println!("s3_e2e: PUT {} with {headers:?}", put.path());

    let base64 = |b: &[u8]| -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let mut same_length = body.clone();
    if let Some(first) = same_length.first_mut() {
        *first ^= 0x20;
    }
    let with = |name: &str, value: String| -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| {
                if n == name {
                    (n.clone(), value.clone())
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect()
    };
    let mut checks = Checks { failures: 0 };

    // 1. Tampered signature.
    checks.expect(
        "PUT, one signature character flipped",
        send("PUT", &tamper(&put), &headers, &body),
        |s| s == 403,
        "403",
    );
    // 2. Another length (ureq sends the true Content-Length of the longer body).
    let mut longer = body.clone();
    longer.push(b'!');
    checks.expect(
        "PUT, body one byte longer than signed",
        send("PUT", &put, &headers, &longer),
        refused,
        "4xx",
    );
    checks.expect(
        "PUT, body one byte shorter",
        send("PUT", &put, &headers, &body[1..]),
        refused,
        "4xx",
    );
    // 3. Another MD5 in the header: signature mismatch. (Another body under the bound MD5 is
    //    checked under its own key in 9.: s3s-fs answers 400 but keeps that body.)
    let other_md5: [u8; 16] = Md5::digest(b"another file").into();
    checks.expect(
        "PUT, other Content-MD5 header",
        send("PUT", &put, &with("Content-MD5", base64(&other_md5)), &body),
        refused,
        "4xx",
    );
    // 4. Another content type.
    checks.expect(
        "PUT, other Content-Type",
        send(
            "PUT",
            &put,
            &with("Content-Type", "text/html".into()),
            &body,
        ),
        refused,
        "4xx",
    );
    // 5. Expired: issued by the service an hour ago (PUT URLs live five minutes).
    let (old_put, _, _) = p1_upload(&service, md5, name, len, now - Duration::hours(1))?;
    checks.expect(
        "PUT, URL expired 55 minutes ago",
        send("PUT", &old_put, &headers, &body),
        refused,
        "4xx",
    );
    // 6. Nothing was stored.
    checks.expect(
        "GET before any accepted PUT",
        send("GET", &get, &[], &[]),
        |s| s == 404,
        "404",
    );
    checks.expect(
        "GET, one signature character flipped",
        send("GET", &tamper(&get), &[], &[]),
        |s| s == 403,
        "403",
    );

    // 7. The declared bytes with the required headers, then a presigned GET.
    checks.expect(
        "PUT, declared body and required headers",
        send("PUT", &put, &headers, &body),
        |s| s == 200,
        "200",
    );
    match send("GET", &get, &[], &[]) {
        Ok(a) if a.status == 200 && a.body == body => {
            println!("ok   GET returns the same {} bytes", body.len());
            // 12. A download by file ID does not know the type: an attachment.
            let want = "attachment; filename*=UTF-8''";
            match a.content_disposition.as_deref() {
                Some(d) if d.starts_with(want) => {
                    println!("ok   GET by file ID served with Content-Disposition: {d}")
                }
                Some(d) => {
                    checks.failures += 1;
                    println!("FAIL GET by file ID: Content-Disposition {d:?}, want {want}…");
                }
                None => println!(
                    "info GET by file ID: the server ignores response-content-disposition \
                     (Content-Type {:?})",
                    a.content_type
                ),
            }
        }
        Ok(a) => {
            checks.failures += 1;
            println!(
                "FAIL GET after PUT: {} with {} bytes ({})",
                a.status,
                a.body.len(),
                snippet(&a.body)
            );
        }
        Err(e) => {
            checks.failures += 1;
            println!("FAIL GET after PUT: {e}");
        }
    }
    let expired_get = p1_download(&service, &fileid, now - Duration::hours(2))?;
    checks.expect(
        "GET, download URL resolved two hours ago (lives 300 s)",
        send("GET", &expired_get, &[], &[]),
        refused,
        "4xx",
    );

    // 8. SHA-256 binding (XEP-0300 hash): the right body is accepted.
    let sha: [u8; 32] = Sha256::digest(&body).into();
    let key2 = format!("{key}.sha256");
    let binding2 = PutBinding {
        content_length: Some(len),
        content_type: None,
        content_md5: None,
        sha256: Some(sha),
    };
    let (put2, headers2) = store
        .presign_put(&key2, now, put_ttl, &binding2)
        .map_err(|e| e.to_string())?;
    let wrong_sha = headers2
        .iter()
        .map(|(n, v)| {
            if n == "x-amz-checksum-sha256" {
                (n.clone(), base64(&[0u8; 32]))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect::<Vec<_>>();
    checks.expect(
        "PUT, other x-amz-checksum-sha256 header",
        send("PUT", &put2, &wrong_sha, &body),
        refused,
        "4xx",
    );
    checks.expect(
        "PUT, declared body with its SHA-256",
        send("PUT", &put2, &headers2, &body),
        |s| s == 200,
        "200",
    );
    // Informational: whether the server checks the checksum against the body itself.
    if let Ok(a) = send("PUT", &put2, &headers2, &same_length) {
        println!(
            "info PUT, other body under the bound SHA-256: {} (S3 answers 400 BadDigest)",
            a.status
        );
    }

    // 9. Another body of the same length under the bound MD5: the server must refuse it.
    let key3 = format!("{key}.md5");
    let (put3, headers3) = store
        .presign_put(&key3, now, put_ttl, &binding)
        .map_err(|e| e.to_string())?;
    checks.expect(
        "PUT, other body (same length) under the bound MD5",
        send("PUT", &put3, &headers3, &same_length),
        refused,
        "4xx",
    );
    let get3 = store
        .presign_get(&key3, now, Duration::hours(1))
        .map_err(|e| e.to_string())?;
    if let Ok(a) = send("GET", &get3, &[], &[]) {
        println!(
            "info GET after that refused PUT: {} (S3 stores nothing; s3s-fs 0.14.1 keeps the body)",
            a.status
        );
    }

    // 10. A slot requested without a type: `application/octet-stream` is signed.
    let notype = v0_slot(&service, "notes.bin", len, None, now)?;
    let octets = vec![
        ("Content-Length".to_owned(), len.to_string()),
        (
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
    ];
    checks.expect(
        "PUT (slot without a type) without Content-Type",
        send("PUT", &notype.0, &octets[..1], &body),
        refused,
        "4xx",
    );
    checks.expect(
        "PUT (slot without a type) with Content-Type: text/html",
        send(
            "PUT",
            &notype.0,
            &[("Content-Type".to_owned(), "text/html".to_owned())],
            &body,
        ),
        refused,
        "4xx",
    );
    checks.expect(
        "PUT (slot without a type) with Content-Type: application/octet-stream",
        send("PUT", &notype.0, &octets, &body),
        |s| s == 200,
        "200",
    );
    match send("GET", &notype.1, &[], &[]) {
        Ok(a) if a.status == 200 && a.body == body => println!(
            "ok   GET (slot without a type): 200, Content-Type {:?}, Content-Disposition {:?}",
            a.content_type, a.content_disposition
        ),
        Ok(a) => {
            checks.failures += 1;
            println!(
                "FAIL GET (slot without a type): {} ({})",
                a.status,
                snippet(&a.body)
            );
        }
        Err(e) => {
            checks.failures += 1;
            println!("FAIL GET (slot without a type): {e}");
        }
    }

    // 11. A p1 upload by MD5 alone: no size to sign, refused by the service.
    match ask(
        &service,
        IqType::Set,
        UploadRequest::new(md5).to_element(),
        now,
    ) {
        Err(e) if e.starts_with("error reply") => {
            println!("ok   p1 upload by MD5 alone refused")
        }
        Err(e) => {
            checks.failures += 1;
            println!("FAIL p1 upload by MD5 alone: {e}");
        }
        Ok(r) => {
            checks.failures += 1;
            println!(
                "FAIL p1 upload by MD5 alone got a slot: {}",
                String::from(&r)
            );
        }
    }

    housekeeping(&mut checks, &service, now, &body)?;

    Ok(checks.failures)
}

/// 13. Housekeeping: uploads under a key prefix, listed, deleted (issue 13, item 4).
fn housekeeping(
    checks: &mut Checks,
    plain: &SlotService<S3Store>,
    now: OffsetDateTime,
    body: &[u8],
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let prefix = "housekeeping/";
    let base = plain.storage();
    // The same bucket and credentials, issuing keys under the prefix.
    let store = S3Store::new(S3Config {
        endpoint: Url::parse(&env("S3_E2E_ENDPOINT", "http://127.0.0.1:8014"))
            .map_err(|e| e.to_string())?,
        bucket: env("S3_E2E_BUCKET", "xmpp-upload-e2e"),
        region: env("S3_E2E_REGION", "us-east-1"),
        access_key_id: env("S3_E2E_ACCESS_KEY", "AK"),
        secret_access_key: env("S3_E2E_SECRET_KEY", "SK"),
        session_token: None,
        path_style: true,
    })
    .key_prefix(prefix);
    store.validate().map_err(|e| e.to_string())?;
    let bucket_path = format!("/{}/", env("S3_E2E_BUCKET", "xmpp-upload-e2e"));
    let service = SlotService::new(
        ServiceConfig::new(
            "upload.localhost".parse().map_err(|e| format!("{e}"))?,
            *b"s3 e2e service secret, 32 bytes.",
        )
        .allow_domains(["localhost"]),
        store,
    );
    let store = service.storage();
    let len = u64::try_from(body.len()).map_err(|e| e.to_string())?;

    // Five uploads through the service, under the prefix.
    let mut uploaded = Vec::new();
    for n in 0..5 {
        let name = format!("keep {n} Фото.txt");
        let (put, get) = v0_slot(&service, &name, len, Some("text/plain"), now)?;
        let key = percent_encoding::percent_decode_str(
            put.path().strip_prefix(&bucket_path).unwrap_or(put.path()),
        )
        .decode_utf8()
        .map_err(|e| e.to_string())?
        .into_owned();
        if !key.starts_with(prefix) {
            checks.failures += 1;
            println!("FAIL slot key {key:?} is not under {prefix:?}");
        }
        let headers = [
            ("Content-Length".to_owned(), len.to_string()),
            ("Content-Type".to_owned(), "text/plain".to_owned()),
        ];
        checks.expect(
            &format!("PUT under the prefix: {key}"),
            send("PUT", &put, &headers, body),
            |s| s == 200,
            "200",
        );
        uploaded.push((key, get));
    }
    let mut expected: Vec<String> = uploaded.iter().map(|(k, _)| k.clone()).collect();
    expected.sort();

    // A listing of the prefix, two keys a page: three pages, exactly the five uploads.
    let list_all = |max_keys: Option<u32>| -> Result<(Vec<(String, u64)>, usize), String> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let url = store
                .presign_list(
                    prefix,
                    token.as_deref(),
                    max_keys,
                    now,
                    Duration::minutes(1),
                )
                .map_err(|e| e.to_string())?;
            let answer = send("GET", &url, &[], &[])?;
            if answer.status != 200 {
                return Err(format!(
                    "LIST: {} ({})",
                    answer.status,
                    snippet(&answer.body)
                ));
            }
            let text = String::from_utf8(answer.body).map_err(|e| e.to_string())?;
            let page = ListPage::parse(&text).map_err(|e| format!("LIST body: {e}"))?;
            pages += 1;
            for o in &page.objects {
                let age = now - o.last_modified;
                if age.abs() > Duration::hours(1) {
                    return Err(format!("{}: last modified {}", o.key, o.last_modified));
                }
            }
            found.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
            match (page.is_truncated, page.next_continuation_token) {
                (true, Some(next)) if pages < 100 => token = Some(next),
                (true, _) => return Err("LIST: truncated without progress".into()),
                (false, _) => break,
            }
        }
        Ok((found, pages))
    };
    let want: Vec<(String, u64)> = expected.iter().map(|k| (k.clone(), len)).collect();
    match list_all(Some(2)) {
        Ok((found, pages)) if found == want && pages == 3 => println!(
            "ok   LIST prefix {prefix:?}, max-keys 2: {} keys with their sizes in {pages} pages (continuation tokens)",
            found.len()
        ),
        Ok((found, pages)) => {
            checks.failures += 1;
            println!("FAIL LIST prefix {prefix:?}, max-keys 2: {found:?} in {pages} pages, want {want:?} in 3");
        }
        Err(e) => {
            checks.failures += 1;
            println!("FAIL LIST prefix {prefix:?}, max-keys 2: {e}");
        }
    }
    match list_all(None) {
        Ok((found, 1)) if found == want => {
            println!(
                "ok   LIST prefix {prefix:?}, one page: the same {} keys",
                found.len()
            )
        }
        other => {
            checks.failures += 1;
            println!("FAIL LIST prefix {prefix:?}, one page: {other:?}");
        }
    }
    // A listing with a flipped signature character.
    let list = store
        .presign_list(prefix, None, None, now, Duration::minutes(1))
        .map_err(|e| e.to_string())?;
    checks.expect(
        "LIST, one signature character flipped",
        send("GET", &tamper(&list), &[], &[]),
        |s| s == 403,
        "403",
    );

    // A presigned DELETE removes one; then GET 404 and the listing drops it.
    let (gone, gone_get) = uploaded.first().cloned().ok_or("no upload")?;
    let delete = store
        .presign_delete(&gone, now, Duration::minutes(1))
        .map_err(|e| e.to_string())?;
    checks.expect(
        "DELETE (presigned) of one upload",
        send("DELETE", &delete, &[], &[]),
        |s| s == 204 || s == 200,
        "204",
    );
    checks.expect(
        "GET after the DELETE",
        send("GET", &gone_get, &[], &[]),
        |s| s == 404,
        "404",
    );
    let remaining: Vec<(String, u64)> = want.iter().filter(|(k, _)| *k != gone).cloned().collect();
    match list_all(Some(2)) {
        Ok((found, _)) if found.len() == 4 && found == remaining => {
            println!(
                "ok   LIST after the DELETE: {} keys, the deleted one gone",
                found.len()
            )
        }
        other => {
            checks.failures += 1;
            println!("FAIL LIST after the DELETE: {other:?}");
        }
    }

    // A tampered DELETE and an expired one: 403, the object stays.
    let (kept, kept_get) = uploaded.get(1).cloned().ok_or("no upload")?;
    let delete = store
        .presign_delete(&kept, now, Duration::minutes(1))
        .map_err(|e| e.to_string())?;
    checks.expect(
        "DELETE, one signature character flipped",
        send("DELETE", &tamper(&delete), &[], &[]),
        |s| s == 403,
        "403",
    );
    let expired = store
        .presign_delete(&kept, now - Duration::hours(1), Duration::minutes(5))
        .map_err(|e| e.to_string())?;
    checks.expect(
        "DELETE, URL expired 55 minutes ago",
        send("DELETE", &expired, &[], &[]),
        |s| s == 403,
        "403",
    );
    match send("GET", &kept_get, &[], &[]) {
        Ok(a) if a.status == 200 && a.body == body => {
            println!("ok   GET after the refused DELETEs: the object is still there")
        }
        Ok(a) => {
            checks.failures += 1;
            println!(
                "FAIL GET after the refused DELETEs: {} ({})",
                a.status,
                snippet(&a.body)
            );
        }
        Err(e) => {
            checks.failures += 1;
            println!("FAIL GET after the refused DELETEs: {e}");
        }
    }
    // Nothing outside the prefix was listed: the earlier uploads are still at the root.
    let root = base
        .presign_list("", None, None, now, Duration::minutes(1))
        .map_err(|e| e.to_string())?;
    match send("GET", &root, &[], &[])
        .and_then(|a| ListPage::parse(&String::from_utf8_lossy(&a.body)).map_err(|e| e.to_string()))
    {
        Ok(page) => {
            let outside = page
                .objects
                .iter()
                .filter(|o| !o.key.starts_with(prefix))
                .count();
            println!(
                "ok   LIST of the whole bucket: {} keys, {outside} outside the prefix",
                page.objects.len()
            );
        }
        Err(e) => {
            checks.failures += 1;
            println!("FAIL LIST of the whole bucket: {e}");
        }
    }

    // A public GET base: the slot's GET URL is `{base}/{key}`, unsigned.
    let public = SlotService::new(
        ServiceConfig::new(
            "upload.localhost".parse().map_err(|e| format!("{e}"))?,
            *b"s3 e2e service secret, 32 bytes.",
        )
        .allow_domains(["localhost"]),
        S3Store::new(S3Config {
            endpoint: Url::parse(&env("S3_E2E_ENDPOINT", "http://127.0.0.1:8014"))
                .map_err(|e| e.to_string())?,
            bucket: env("S3_E2E_BUCKET", "xmpp-upload-e2e"),
            region: env("S3_E2E_REGION", "us-east-1"),
            access_key_id: env("S3_E2E_ACCESS_KEY", "AK"),
            secret_access_key: env("S3_E2E_SECRET_KEY", "SK"),
            session_token: None,
            path_style: true,
        })
        .key_prefix(prefix)
        .public_get_base(Url::parse("https://media.localhost/").map_err(|e| e.to_string())?),
    );
    let (put, get) = v0_slot(&public, "public.txt", len, Some("text/plain"), now)?;
    let key = put.path().strip_prefix(&bucket_path).unwrap_or_default();
    if get.as_str() == format!("https://media.localhost/{key}") && get.query().is_none() {
        println!("ok   public GET base: slot GET URL {get}");
    } else {
        checks.failures += 1;
        println!("FAIL public GET base: {get} for PUT {put}");
    }
    println!(
        "info housekeeping checks took {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Asks the service for an XEP-0363 slot: (PUT URL, GET URL).
fn v0_slot(
    service: &SlotService<S3Store>,
    name: &str,
    len: u64,
    content_type: Option<&str>,
    at: OffsetDateTime,
) -> Result<(Url, Url), String> {
    let mut request = SlotRequest::new(name, len);
    if let Some(t) = content_type {
        request = request.with_content_type(t);
    }
    let reply = ask(service, IqType::Get, request.to_element(), at)?;
    let slot =
        Slot::try_from(reply.children().next().ok_or("empty reply")?).map_err(|e| e.to_string())?;
    Ok((slot.put, slot.get))
}

/// PUT URL, the headers it needs, and the file ID.
type Issued = (Url, Vec<(String, String)>, String);

/// Sends a p1:http-file-transfer upload IQ through the service: (PUT URL, headers, file ID).
fn p1_upload(
    service: &SlotService<S3Store>,
    md5: [u8; 16],
    name: &str,
    len: u64,
    at: OffsetDateTime,
) -> Result<Issued, String> {
    let query = UploadRequest::new(md5).with_file(name, len, Some("text/plain; charset=utf-8"));
    let reply = ask(service, IqType::Set, query.to_element(), at)?;
    match Query::parse(reply.children().next().ok_or("empty reply")?).map_err(|e| e.to_string())? {
        Query::UploadResult(r) => Ok((
            r.upload,
            r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            r.fileid.ok_or("no file ID")?,
        )),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// Resolves a file ID through the service to a fresh presigned GET URL.
fn p1_download(
    service: &SlotService<S3Store>,
    fileid: &str,
    at: OffsetDateTime,
) -> Result<Url, String> {
    let query = DownloadRequest::new(fileid);
    let reply = ask(service, IqType::Get, query.to_element(), at)?;
    match Query::parse(reply.children().next().ok_or("empty reply")?).map_err(|e| e.to_string())? {
        Query::DownloadResult(r) => Ok(r.download),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

fn ask(
    service: &SlotService<S3Store>,
    type_: IqType,
    payload: minidom::Element,
    at: OffsetDateTime,
) -> Result<minidom::Element, String> {
    let mut iq = request(type_, "e2e", "upload.localhost", payload);
    let from = minidom::rxml::NcName::try_from("from").map_err(|e| e.to_string())?;
    iq.set_attr(
        minidom::rxml::Namespace::NONE,
        from,
        "romeo@localhost/e2e".to_owned(),
    );
    let reply = service.handle(&iq, at).ok_or("no reply")?;
    if reply.attr("type") != Some("result") {
        return Err(format!("error reply: {}", String::from(&reply)));
    }
    Ok(reply)
}
