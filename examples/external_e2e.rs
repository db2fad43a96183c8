//! End-to-end check of `storage::external` against a real `mod_http_upload_external` server.
//!
//! Run by `ci/external_e2e.sh`, which starts `xmpp-http-upload` 0.6.0 on loopback:
//!
//! ```text
//! XHU_BASE=http://127.0.0.1:PORT/ XHU_SECRET=… cargo run --example external_e2e [v1] [v2]
//! ```
//!
//! For each scheme (both when none is named) it shows that the server
//! * refuses the signed URL with another size, another content type (V2) or a flipped MAC
//!   character (403),
//! * accepts the declared bytes (200; this server answers 200, not 201) and serves them back
//!   by GET,
//! * refuses a second PUT to the same URL (409),
//! * accepts a Unicode file name with `#`, `?`, `%` and spaces end to end.
//!
//! Exits non-zero on the first unexpected answer.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::error::Error;
use std::io::Read;

use time::OffsetDateTime;
use url::Url;
use xmpp_upload::stanza::upload::SlotRequest;
use xmpp_upload::storage::external::{ExternalStore, Scheme};
use xmpp_upload::{ServiceConfig, SlotService};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let base =
        Url::parse(&std::env::var("XHU_BASE").unwrap_or_else(|_| "http://127.0.0.1:5050/".into()))?;
    let secret =
        std::env::var("XHU_SECRET").map_err(|_| "set XHU_SECRET to the server's secret_string")?;
    let mut schemes: Vec<Scheme> = Vec::new();
    for arg in std::env::args().skip(1) {
        schemes.push(match arg.as_str() {
            "v1" => Scheme::V1,
            "v2" => Scheme::V2,
            other => return Err(format!("unknown scheme {other:?} (v1, v2)").into()),
        });
    }
    if schemes.is_empty() {
        schemes = vec![Scheme::V1, Scheme::V2];
    }
    let mut checks = 0;
    for scheme in schemes {
        let store = ExternalStore::new(base.clone(), secret.as_str(), scheme);
        // Slots come from the slot service, exactly as a component would issue them.
        let config = ServiceConfig::new(
            "upload.localhost".parse()?,
            *b"e2e service secret, 32 bytes....",
        )
        .allow_domains(["localhost"]);
        checks += run(&SlotService::new(config, store), scheme)?;
    }
    println!("external_e2e: all {checks} checks passed against {base}");
    Ok(())
}

fn run(service: &SlotService<ExternalStore>, scheme: Scheme) -> Result<u32> {
    let label = format!("{scheme:?}");
    let mut checks = 0;
    let mut check = |what: &str, ok: bool, detail: String| -> Result<()> {
        checks += 1;
        if ok {
            println!("[{label}] ok   {what}");
            Ok(())
        } else {
            Err(format!("[{label}] FAIL {what}: {detail}").into())
        }
    };

    // Content type as the client declared it; with V2 the raw header value is signed,
    // parameters included.
    let ct = "text/plain; charset=utf-8";
    let binds_type = scheme == Scheme::V2;
    let header = Some(ct);
    let requester = "romeo@localhost/e2e".parse()?;

    for (n, name) in [
        (1, "e2e payload.bin"),
        (2, "Отчёт über 日本 #1?%20 ünïcødé.txt"),
    ] {
        let body: Vec<u8> = (0..4099u32)
            .map(|i| (i.wrapping_mul(31) % 251) as u8)
            .collect();
        let request = SlotRequest::new(name, body.len() as u64).with_content_type(ct);
        let issued = service.request_slot(
            &requester,
            &request,
            &format!("e2e-{n}"),
            OffsetDateTime::now_utc(),
        )?;
        let (put, get) = (issued.slot.put, issued.slot.get);
        println!("[{label}] PUT {} (query withheld)", put.path());

        // Another size: one byte more under the same URL.
        let mut longer = body.clone();
        longer.push(0);
        let s = put_status(&put, header, &longer)?;
        check(
            &format!("{name}: another size refused"),
            s == 403,
            format!("status {s}"),
        )?;

        // Another content type (V2 binds it).
        if binds_type {
            let s = put_status(&put, Some("text/html"), &body)?;
            check(
                &format!("{name}: another content type refused"),
                s == 403,
                format!("status {s}"),
            )?;
        }

        // One MAC character flipped.
        let tampered = flip_mac_char(&put)?;
        let s = put_status(&tampered, header, &body)?;
        check(
            &format!("{name}: flipped MAC character refused"),
            s == 403,
            format!("status {s}"),
        )?;

        // Nothing was stored by the refused attempts.
        let s = get_status(&get)?;
        check(
            &format!("{name}: nothing stored after refusals"),
            s == 404,
            format!("status {s}"),
        )?;

        // The declared bytes.
        let s = put_status(&put, header, &body)?;
        check(
            &format!("{name}: declared bytes accepted"),
            s == 200,
            format!("status {s}"),
        )?;
        let got = get_bytes(&get)?;
        check(
            &format!("{name}: GET returns the same bytes"),
            got == body,
            format!("{} bytes back, {} sent", got.len(), body.len()),
        )?;

        // No overwrite.
        let s = put_status(&put, header, &body)?;
        check(
            &format!("{name}: repeated PUT refused"),
            s == 409,
            format!("status {s}"),
        )?;
    }
    Ok(checks)
}

fn put_status(url: &Url, content_type: Option<&str>, body: &[u8]) -> Result<u16> {
    let mut req = ureq::put(url.as_str());
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    status(req.send_bytes(body))
}

fn get_status(url: &Url) -> Result<u16> {
    status(ureq::get(url.as_str()).call())
}

fn status(r: std::result::Result<ureq::Response, ureq::Error>) -> Result<u16> {
    match r {
        Ok(resp) => Ok(resp.status()),
        Err(ureq::Error::Status(code, _)) => Ok(code),
        Err(e) => Err(e.into()),
    }
}

fn get_bytes(url: &Url) -> Result<Vec<u8>> {
    let resp = ureq::get(url.as_str()).call()?;
    let mut out = Vec::new();
    resp.into_reader().take(64 << 20).read_to_end(&mut out)?;
    Ok(out)
}

/// The same URL with the first hex digit of the MAC changed.
fn flip_mac_char(url: &Url) -> Result<Url> {
    let query = url.query().ok_or("no query")?;
    let (param, mac) = query.split_once('=').ok_or("no MAC")?;
    let mut chars = mac.chars();
    let first = chars.next().ok_or("empty MAC")?;
    let flipped = if first == '0' { '1' } else { '0' };
    let mut out = url.clone();
    out.set_query(Some(&format!("{param}={flipped}{}", chars.as_str())));
    Ok(out)
}
