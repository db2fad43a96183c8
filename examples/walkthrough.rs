//! A tour of the crate with no outside service: `cargo run --example walkthrough`.
//!
//! It starts the example HTTP store (`component/src/http_store.rs`) on 127.0.0.1, builds a
//! `SlotService` over a `SignedUrlStore`, and then, printing every stanza:
//! 1. asks for the service's disco#info;
//! 2. requests a slot in each XEP-0363 dialect (`urn:xmpp:http:upload:0`, `urn:xmpp:http:upload`,
//!    `eu:siacs:conversations:http:upload`, the Smack 4.2.0 hybrid), uploads a file to the PUT URL
//!    with a real HTTP client, downloads the GET URL and compares the bytes, resumes the
//!    download with `Range` (206) and revalidates it with `If-None-Match` (304);
//! 3. shows the refusals: a file above the limit (`file-too-large`), a PUT of the wrong size
//!    (413), an altered signature (403), a second PUT to the same slot (409);
//! 4. runs the `p1:http-file-transfer` file-ID flow: upload IQ with the MD5, PUT with
//!    `Content-MD5`, download IQ with the file ID (from another user), GET, same bytes;
//! 5. follows a stable link (302 to a fresh signed URL) and purges the store.
//!
//! Exits with status 1 if any check fails.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

#[path = "../component/src/http_store.rs"]
mod http_store;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest as _, Md5};
use minidom::Element;
use time::OffsetDateTime;
use url::Url;
use xmpp_upload::stanza::file_transfer::{encode_md5, Query};
use xmpp_upload::stanza::upload::Slot;
use xmpp_upload::stanza::Dialect;
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};

use http_store::{HttpStoreConfig, Service};

const SERVICE: &str = "upload.montague.tld";
const ROMEO: &str = "romeo@montague.tld/garden";
const BENVOLIO: &str = "benvolio@montague.tld/square";
const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Counts checks and remembers the failed ones.
#[derive(Default)]
struct Tour {
    step: usize,
    checks: usize,
    failed: Vec<String>,
}

impl Tour {
    fn section(&mut self, title: &str) {
        self.step += 1;
        println!("\n=== {}. {title}", self.step);
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        self.checks += 1;
        println!("  [{}] {what}", if ok { " ok " } else { "FAIL" });
        if !ok {
            self.failed.push(what);
        }
        ok
    }
}

fn show(label: &str, e: &Element) {
    println!("  {label}: {}", String::from(e));
}

/// One HTTP exchange's result.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn http(
    agent: &ureq::Agent,
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, String> {
    let mut req = agent.request_url(method, url);
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} failed: {}", e.kind())),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_owned())))
        .collect();
    let mut body = Vec::new();
    if method != "HEAD" {
        resp.into_reader()
            .take(64 * 1024 * 1024)
            .read_to_end(&mut body)
            .map_err(|e| format!("{method} body: {e}"))?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn random_bytes() -> Result<[u8; 32], std::io::Error> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn iq(type_: &str, id: &str, from: &str, payload: &str) -> Element {
    format!("<iq xmlns='jabber:client' type='{type_}' id='{id}' from='{from}' to='{SERVICE}'>{payload}</iq>")
        .parse()
        .unwrap_or_else(|e| panic!("a well-formed stanza: {e}"))
}

/// Starts an HTTP store for `service` on 127.0.0.1 and returns its address.
fn start_store(
    rt: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    dir: PathBuf,
    stable: Option<Url>,
) {
    let cfg = HttpStoreConfig {
        store_dir: dir,
        base_url: service.storage().base_url().clone(),
        stable_base: stable,
        log: true,
    };
    rt.spawn(http_store::serve(listener, service, cfg));
}

fn main() -> ExitCode {
    match run() {
        Ok(tour) if tour.failed.is_empty() => {
            println!("\nAll {} checks passed.", tour.checks);
            ExitCode::SUCCESS
        }
        Ok(tour) => {
            println!("\n{} of {} checks FAILED:", tour.failed.len(), tour.checks);
            for f in &tour.failed {
                println!("  - {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("walkthrough: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<Tour, Box<dyn std::error::Error>> {
    let mut t = Tour::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store_dir =
        std::env::temp_dir().join(format!("xmpp-upload-walkthrough-{}", std::process::id()));
    std::fs::create_dir_all(&store_dir)?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let base: Url = format!("http://{addr}/upload/").parse()?;

    // The storage key is shared by whoever issues URLs and the HTTP server that verifies them;
    // the service secret derives slot IDs and file IDs. Both stay on the server.
    let store_key = random_bytes()?;
    let service_secret = random_bytes()?;
    let store = SignedUrlStore::new(base.clone(), store_key);
    let config = ServiceConfig::new(SERVICE.parse()?, service_secret)
        .max_file_size(MAX_FILE_SIZE)
        .allow_domains(["montague.tld"]);
    let service = Arc::new(SlotService::new(config, store));
    start_store(&rt, listener, service.clone(), store_dir.clone(), None);
    println!(
        "HTTP store on http://{addr}/upload/ (files in {})",
        store_dir.display()
    );

    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(15))
        .redirects(0)
        .build();

    t.section("Service discovery");
    let req = iq(
        "get",
        "disco1",
        ROMEO,
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    show("request", &req);
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no disco#info reply")?;
    show("reply  ", &reply);
    let text = String::from(&reply);
    t.check(
        text.contains("urn:xmpp:http:upload:0") && text.contains(&MAX_FILE_SIZE.to_string()),
        "disco#info names the service and its max-file-size",
    );

    // --- 2. one upload per dialect ---
    let dialects: [(&str, String, &str); 4] = [
        (
            "XEP-0363 current (urn:xmpp:http:upload:0)",
            "<request xmlns='urn:xmpp:http:upload:0' filename='my juliet.jpg' size='{size}' content-type='image/jpeg'/>".into(),
            "image/jpeg",
        ),
        (
            "XEP-0363 0.2 legacy (urn:xmpp:http:upload)",
            "<request xmlns='urn:xmpp:http:upload'><filename>Отчёт 2024.txt</filename><size>{size}</size><content-type>text/plain</content-type></request>".into(),
            "text/plain",
        ),
        (
            "Conversations 2015 (eu:siacs:conversations:http:upload)",
            "<request xmlns='eu:siacs:conversations:http:upload'><filename>notes.pdf</filename><size>{size}</size><content-type>application/pdf</content-type></request>".into(),
            "application/pdf",
        ),
        (
            "Smack 4.2.0 hybrid (:0 namespace, legacy children)",
            "<request xmlns='urn:xmpp:http:upload:0'><filename>voice.ogg</filename><size>{size}</size><content-type>audio/ogg</content-type></request>".into(),
            "audio/ogg",
        ),
    ];
    let mut first_slot = None;
    for (i, (title, payload, ty)) in dialects.iter().enumerate() {
        t.section(&format!("Upload, {title}"));
        let data = sample(20_000 + i * 777, i as u8);
        let req = iq(
            "get",
            &format!("slot{i}"),
            ROMEO,
            &payload.replace("{size}", &data.len().to_string()),
        );
        show("request", &req);
        let reply = service
            .handle(&req, OffsetDateTime::now_utc())
            .ok_or("no slot reply")?;
        show("reply  ", &reply);
        if !t.check(
            reply.attr("type") == Some("result"),
            "the service answers with a slot",
        ) {
            continue;
        }
        let slot = Slot::parse(reply.children().next().ok_or("an empty result")?)?;
        let asked = req
            .children()
            .next()
            .and_then(|r| Dialect::from_namespace(&r.ns()));
        t.check(
            Some(slot.dialect) == asked,
            format!(
                "the slot is in the request's namespace ({:?})",
                slot.dialect
            ),
        );
        let mut headers: Vec<(&str, &str)> = slot
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        headers.push(("Content-Type", ty));
        let put = http(&agent, "PUT", &slot.put, &headers, Some(&data))?;
        t.check(
            put.status == 201,
            format!("PUT {} bytes: {} (expected 201)", data.len(), put.status),
        );
        let got = http(&agent, "GET", &slot.get, &[], None)?;
        t.check(
            got.status == 200 && got.body == data,
            format!(
                "GET: {}, {} bytes, same bytes: {}",
                got.status,
                got.body.len(),
                got.body == data
            ),
        );
        t.check(
            got.header("content-type") == Some(ty),
            format!("Content-Type: {:?}", got.header("content-type")),
        );
        t.check(
            got.header("x-content-type-options") == Some("nosniff"),
            "X-Content-Type-Options: nosniff",
        );
        t.check(
            got.header("content-security-policy") == Some(http_store::CSP),
            format!("Content-Security-Policy: {}", http_store::CSP),
        );
        let disposition = got.header("content-disposition").unwrap_or_default();
        let inline = http_store::is_inline(ty);
        t.check(
            if inline {
                disposition == "inline"
            } else {
                disposition.starts_with("attachment") && disposition.contains("filename*=UTF-8''")
            },
            format!("Content-Disposition: {disposition}"),
        );
        let head = http(&agent, "HEAD", &slot.get, &[], None)?;
        t.check(
            head.status == 200
                && head.header("content-length") == Some(data.len().to_string().as_str()),
            format!(
                "HEAD: {}, Content-Length {:?}",
                head.status,
                head.header("content-length")
            ),
        );
        // A resumed download (Conversations sends `Range: bytes=N-`) and a cache revalidation.
        let from = data.len() / 2;
        let resumed = http(
            &agent,
            "GET",
            &slot.get,
            &[("Range", &format!("bytes={from}-"))],
            None,
        )?;
        t.check(
            resumed.status == 206 && resumed.body == data[from..],
            format!(
                "GET with Range: bytes={from}-: {}, {:?}",
                resumed.status,
                resumed.header("content-range")
            ),
        );
        let etag = got.header("etag").unwrap_or_default();
        let revalidated = http(&agent, "GET", &slot.get, &[("If-None-Match", etag)], None)?;
        t.check(
            revalidated.status == 304 && revalidated.body.is_empty(),
            format!("GET with If-None-Match: {}", revalidated.status),
        );
        if first_slot.is_none() {
            let owned: Vec<(String, String)> = headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            first_slot = Some((slot.clone(), data, owned));
        }
    }

    // --- 3. refusals ---
    t.section("Refusals");
    let too_big = MAX_FILE_SIZE + 1;
    let req = iq("get", "big", ROMEO, &format!("<request xmlns='urn:xmpp:http:upload:0' filename='movie.mkv' size='{too_big}' content-type='video/x-matroska'/>"));
    show("request", &req);
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no reply")?;
    show("reply  ", &reply);
    let text = String::from(&reply);
    t.check(
        reply.attr("type") == Some("error")
            && text.contains("file-too-large")
            && text.contains(&format!("<max-file-size>{MAX_FILE_SIZE}</max-file-size>")),
        "oversize request: error with <file-too-large><max-file-size>",
    );
    let req = iq(
        "get",
        "stranger",
        "tybalt@capulet.lit/street",
        "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='3'/>",
    );
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no reply")?;
    show("reply  ", &reply);
    t.check(
        String::from(&reply).contains("forbidden"),
        "a user of another domain: forbidden",
    );

    let req = iq(
        "get",
        "short",
        ROMEO,
        "<request xmlns='urn:xmpp:http:upload:0' filename='short.bin' size='1000'/>",
    );
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no reply")?;
    let slot = Slot::parse(reply.children().next().ok_or("an empty result")?)?;
    let put = http(&agent, "PUT", &slot.put, &[], Some(&sample(999, 9)))?;
    t.check(
        put.status == 413,
        format!(
            "PUT of 999 bytes to a 1000-byte slot: {} (expected 413)",
            put.status
        ),
    );
    let mut forged = slot.put.clone();
    let q = forged.query().unwrap_or_default().replace("sig=", "sig=A");
    forged.set_query(Some(&q));
    let put = http(&agent, "PUT", &forged, &[], Some(&sample(1000, 9)))?;
    t.check(
        put.status == 403,
        format!(
            "PUT with an altered signature: {} (expected 403)",
            put.status
        ),
    );
    if let Some((slot, data, headers)) = &first_slot {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let put = http(&agent, "PUT", &slot.put, &headers, Some(data))?;
        t.check(
            put.status == 409,
            format!("a second PUT to a used slot: {} (expected 409)", put.status),
        );
        let put = http(
            &agent,
            "PUT",
            &slot.put,
            &[("Content-Type", "text/html")],
            Some(data),
        )?;
        t.check(
            put.status == 415,
            format!(
                "PUT with another Content-Type: {} (expected 415)",
                put.status
            ),
        );
        let mut gone = slot.get.clone();
        gone.set_path(&gone.path().replace("my%20juliet", "other"));
        let got = http(&agent, "GET", &gone, &[], None)?;
        t.check(
            got.status == 403,
            format!(
                "GET of another name with the same signature: {} (expected 403)",
                got.status
            ),
        );
    }

    // --- 4. file IDs ---
    t.section("File-ID flow (p1:http-file-transfer)");
    let data = sample(54_321, 42);
    let md5 = encode_md5(&Md5::digest(&data).into());
    let req = iq(
        "set",
        "p1up",
        ROMEO,
        &format!("<query xmlns='p1:http-file-transfer' md5='{md5}'/>"),
    );
    show("request", &req);
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no p1 reply")?;
    show("reply  ", &reply);
    let Some(Ok(Query::UploadResult(up))) = reply.children().next().map(Query::parse) else {
        t.check(false, "p1 upload result");
        return Ok(finish(t, &store_dir));
    };
    let fileid = up.fileid.clone().unwrap_or_default();
    t.check(
        !fileid.is_empty()
            && up
                .headers
                .iter()
                .any(|h| h.name == "Content-MD5" && h.value == md5),
        "upload result with a file ID and the Content-MD5 header",
    );
    let headers: Vec<(&str, &str)> = up
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    let wrong = sample(54_321, 43);
    let put = http(&agent, "PUT", &up.upload, &headers, Some(&wrong))?;
    t.check(
        put.status == 400,
        format!(
            "PUT of other bytes with that Content-MD5: {} (expected 400)",
            put.status
        ),
    );
    let put = http(&agent, "PUT", &up.upload, &[], Some(&data))?;
    t.check(
        put.status == 400,
        format!("PUT without Content-MD5: {} (expected 400)", put.status),
    );
    let put = http(&agent, "PUT", &up.upload, &headers, Some(&data))?;
    t.check(
        put.status == 201,
        format!("PUT with Content-MD5: {} (expected 201)", put.status),
    );
    show("message", &file_message(&fileid));
    let req = iq(
        "get",
        "p1down",
        BENVOLIO,
        &format!("<query xmlns='p1:http-file-transfer' fileid='{fileid}'/>"),
    );
    show("request", &req);
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no p1 download reply")?;
    show("reply  ", &reply);
    match reply.children().next().map(Query::parse) {
        Some(Ok(Query::DownloadResult(down))) => {
            let got = http(&agent, "GET", &down.download, &[], None)?;
            t.check(
                got.status == 200 && got.body == data,
                format!(
                    "GET of the download URL: {}, same bytes: {}",
                    got.status,
                    got.body == data
                ),
            );
        }
        _ => {
            t.check(false, "p1 download result");
        }
    }
    let mut forged = fileid.clone();
    forged.insert(0, 'x');
    let req = iq(
        "get",
        "p1bad",
        BENVOLIO,
        &format!("<query xmlns='p1:http-file-transfer' fileid='{forged}'/>"),
    );
    let reply = service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no reply")?;
    t.check(
        reply.attr("type") == Some("error"),
        "an altered file ID is refused",
    );

    // --- 5. stable links and purge ---
    t.section("Stable links and retention");
    let stable_listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let stable_addr = stable_listener.local_addr()?;
    let stable_base: Url = format!("http://{stable_addr}/stable/").parse()?;
    let stable_service = Arc::new(SlotService::new(
        ServiceConfig::new(SERVICE.parse()?, service_secret)
            .max_file_size(MAX_FILE_SIZE)
            .allow_domains(["montague.tld"])
            .stable_get_base(stable_base.clone()),
        SignedUrlStore::new(base.clone(), store_key),
    ));
    start_store(
        &rt,
        stable_listener,
        stable_service.clone(),
        store_dir.clone(),
        Some(stable_base),
    );
    let data = sample(4096, 7);
    let req = iq("get", "stable", ROMEO, &format!("<request xmlns='urn:xmpp:http:upload:0' filename='photo.png' size='{}' content-type='image/png'/>", data.len()));
    let reply = stable_service
        .handle(&req, OffsetDateTime::now_utc())
        .ok_or("no reply")?;
    show("reply  ", &reply);
    let slot = Slot::parse(reply.children().next().ok_or("an empty result")?)?;
    let put = http(
        &agent,
        "PUT",
        &slot.put,
        &[("Content-Type", "image/png")],
        Some(&data),
    )?;
    t.check(put.status == 201, format!("PUT: {}", put.status));
    let hop = http(&agent, "GET", &slot.get, &[], None)?;
    let location = hop.header("location").unwrap_or_default().to_owned();
    t.check(
        hop.status == 302 && location.starts_with(base.as_str()),
        format!(
            "GET of the stable link: {} to a fresh signed URL",
            hop.status
        ),
    );
    let got = http(&agent, "GET", &Url::parse(&location)?, &[], None)?;
    t.check(
        got.status == 200 && got.body == data,
        format!(
            "GET of the target: {}, same bytes: {}",
            got.status,
            got.body == data
        ),
    );
    t.check(
        got.header("content-disposition")
            .is_some_and(|d| d.starts_with("inline")),
        "an image is shown inline",
    );

    let stats = http_store::purge(
        &store_dir,
        Duration::ZERO,
        std::time::SystemTime::now() + Duration::from_secs(1),
    )?;
    println!("  purge with retention 0: {stats:?}");
    let got = http(&agent, "GET", &Url::parse(&location)?, &[], None)?;
    t.check(
        stats.files >= 6 && got.status == 404,
        format!(
            "after the purge the file is gone: {} (expected 404)",
            got.status
        ),
    );

    Ok(finish(t, &store_dir))
}

fn file_message(fileid: &str) -> Element {
    let mut m: Element = "<message xmlns='jabber:client' to='juliet@capulet.lit' type='chat'/>"
        .parse()
        .unwrap_or_else(|e| panic!("a well-formed stanza: {e}"));
    m.append_child(SlotService::<SignedUrlStore>::file_message(
        "data.bin", fileid,
    ));
    m
}

fn finish(t: Tour, store_dir: &std::path::Path) -> Tour {
    let _ = std::fs::remove_dir_all(store_dir);
    t
}
