//! A complete XEP-0363 upload service: an XEP-0114 component that answers every stanza with
//! `SlotService::handle`, plus the HTTP store for the signed URLs it issues.
//!
//! ```text
//! cargo run --example upload_component -- \
//!     --xmpp-addr 127.0.0.1:5347 --jid upload.example.org --component-secret S \
//!     --http-addr 127.0.0.1:8080 --base-url https://upload.example.org/files/ \
//!     --store-dir /var/lib/xmpp-upload --max-file-size 104857600 --allow-domain example.org
//! ```
//!
//! Options (`--help`): `--store-key` / `--service-secret` (else random at start-up: URLs and file
//! IDs then die with the process), `--retention-days` (default 30; decimals allowed),
//! `--stable-links` (GET URLs become `{base}stable/{file id}/{name}` links resolved by 302),
//! `--insecure-http` (allow an `http://` base URL, for loopback tests), `--ping-to DOMAIN`
//! (keep-alive target, default the parent domain of the JID).
//!
//! Logs one line per slot request and per HTTP request (never a secret, a signature or a full
//! signed URL) and `xmpp: online as JID` once connected. Reconnects with back-off when the
//! server goes away; stops cleanly on SIGINT or SIGTERM.

#[path = "support/http_store.rs"]
mod http_store;

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use minidom::Element;
use time::OffsetDateTime;
use tokio_xmpp::connect::{DnsConfig, TcpServerConnector};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Component, Stanza};
use url::Url;
use xmpp_upload::stanza::iq::{Iq, IqType};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};

use http_store::{log, HttpStoreConfig, Service};

const USAGE: &str = "\
usage: upload_component --jid JID --component-secret SECRET --base-url URL --store-dir DIR [options]

  --xmpp-addr HOST:PORT      XMPP server's component port (default 127.0.0.1:5347)
  --jid JID                  the component's JID, e.g. upload.example.org
  --component-secret S       the XEP-0114 shared secret
  --http-addr HOST:PORT      where the HTTP store listens (default 127.0.0.1:8080)
  --base-url URL             public URL of the HTTP store (https unless --insecure-http)
  --store-dir DIR            where files are kept
  --max-file-size BYTES      largest upload (default 104857600)
  --allow-domain DOMAIN      users of DOMAIN may upload (repeatable; default: the JID's
                             domain and its parent)
  --retention-days DAYS      delete files after this many days (default 30, decimals allowed)
  --store-key S              key signing the URLs (default: random at start-up)
  --service-secret S         secret deriving slot and file IDs (default: random at start-up)
  --stable-links             GET URLs are stable links below {base-url}stable/, answered with 302
  --insecure-http            allow an http:// base URL (loopback tests only)
  --ping-to DOMAIN           keep-alive ping target (default: the JID's parent domain)
  -h, --help                 this text";

struct Args {
    xmpp_addr: String,
    jid: String,
    component_secret: String,
    http_addr: SocketAddr,
    base_url: Url,
    store_dir: PathBuf,
    max_file_size: u64,
    allow_domains: Vec<String>,
    retention: Duration,
    store_key: Option<String>,
    service_secret: Option<String>,
    stable_links: bool,
    insecure_http: bool,
    ping_to: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut xmpp_addr = "127.0.0.1:5347".to_owned();
    let mut jid = None;
    let mut component_secret = None;
    let mut http_addr = "127.0.0.1:8080".to_owned();
    let mut base_url = None;
    let mut store_dir = None;
    let mut max_file_size = xmpp_upload::service::DEFAULT_MAX_FILE_SIZE;
    let mut allow_domains = Vec::new();
    let mut retention_days = 30.0_f64;
    let mut store_key = None;
    let mut service_secret = None;
    let mut stable_links = false;
    let mut insecure_http = false;
    let mut ping_to = None;
    while let Some(flag) = it.next() {
        // Both `--flag value` and `--flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (flag.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--xmpp-addr" => xmpp_addr = value()?,
            "--jid" => jid = Some(value()?),
            "--component-secret" => component_secret = Some(value()?),
            "--http-addr" => http_addr = value()?,
            "--base-url" => base_url = Some(value()?),
            "--store-dir" => store_dir = Some(PathBuf::from(value()?)),
            "--max-file-size" => {
                max_file_size = xmpp_upload::stanza::parse_size(&value()?)
                    .map_err(|e| format!("--max-file-size: {e}"))?;
            }
            "--allow-domain" => allow_domains.push(value()?),
            "--retention-days" => {
                retention_days = value()?
                    .parse()
                    .map_err(|_| "--retention-days: not a number".to_owned())?;
                if !(retention_days > 0.0 && retention_days < 100_000.0) {
                    return Err("--retention-days must be positive".into());
                }
            }
            "--store-key" => store_key = Some(value()?),
            "--service-secret" => service_secret = Some(value()?),
            "--stable-links" => stable_links = true,
            "--insecure-http" => insecure_http = true,
            "--ping-to" => ping_to = Some(value()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let base_url: Url = base_url
        .ok_or("--base-url is required")?
        .parse()
        .map_err(|e| format!("--base-url: {e}"))?;
    match base_url.scheme() {
        "https" => {}
        "http" if insecure_http => {}
        "http" => return Err("--base-url is http://: files would travel in clear text; pass --insecure-http for a loopback test".into()),
        s => return Err(format!("--base-url: unsupported scheme {s}")),
    }
    if base_url.query().is_some() || base_url.cannot_be_a_base() {
        return Err("--base-url must be a plain http(s) URL without a query".into());
    }
    for (name, s) in [
        ("--store-key", &store_key),
        ("--service-secret", &service_secret),
    ] {
        if s.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(format!(
                "{name} must have at least 16 characters (32 random bytes are best)"
            ));
        }
    }
    Ok(Args {
        xmpp_addr,
        jid: jid.ok_or("--jid is required")?,
        component_secret: component_secret.ok_or("--component-secret is required")?,
        http_addr: http_addr.parse().map_err(|e| format!("--http-addr: {e}"))?,
        base_url,
        store_dir: store_dir.ok_or("--store-dir is required")?,
        max_file_size,
        allow_domains,
        retention: Duration::from_secs_f64(retention_days * 86_400.0),
        store_key,
        service_secret,
        stable_links,
        insecure_http,
        ping_to,
    })
}

fn secret_or_random(given: Option<String>, what: &str) -> Result<Vec<u8>, String> {
    if let Some(s) = given {
        return Ok(s.into_bytes());
    }
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    log(format_args!(
        "config: random {what} (URLs and file IDs issued now stop working at restart)"
    ));
    Ok(key)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("upload_component: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("upload_component: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(format_args!("upload_component: {e}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let jid: jid::Jid = args.jid.parse().map_err(|e| format!("--jid: {e}"))?;
    std::fs::create_dir_all(&args.store_dir).map_err(|e| format!("--store-dir: {e}"))?;
    let store_key = secret_or_random(args.store_key.clone(), "store key")?;
    let service_secret = secret_or_random(args.service_secret.clone(), "service secret")?;

    let store = SignedUrlStore::new(args.base_url.clone(), store_key)
        .allow_insecure_http(args.insecure_http);
    let mut config =
        ServiceConfig::new(jid.clone(), service_secret).max_file_size(args.max_file_size);
    if !args.allow_domains.is_empty() {
        config = config.allow_domains(args.allow_domains.iter());
    }
    let stable_base = if args.stable_links {
        let b = args
            .base_url
            .join("stable/")
            .map_err(|e| format!("--base-url: {e}"))?;
        config = config.stable_get_base(b.clone());
        Some(b)
    } else {
        None
    };
    let service = Arc::new(SlotService::new(config, store));

    // HTTP first: fail before connecting if the port is taken.
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|e| format!("--http-addr {}: {e}", args.http_addr))?;
    log(format_args!(
        "http: listening on {} for {}",
        listener.local_addr().map_err(|e| e.to_string())?,
        args.base_url
    ));
    let http_cfg = HttpStoreConfig {
        store_dir: args.store_dir.clone(),
        base_url: args.base_url.clone(),
        stable_base,
        log: true,
    };
    tokio::spawn(http_store::serve(listener, service.clone(), http_cfg));
    http_store::spawn_purge(args.store_dir.clone(), args.retention);

    let ping_to = args.ping_to.clone().unwrap_or_else(|| {
        let domain = jid.domain().as_str();
        domain
            .split_once('.')
            .map_or(domain, |(_, parent)| parent)
            .to_owned()
    });
    let mut shutdown = Box::pin(shutdown_signal());
    let mut backoff = Duration::from_secs(1);
    loop {
        let connect = Component::new_plaintext(
            &args.jid,
            &args.component_secret,
            DnsConfig::addr(&args.xmpp_addr),
            timeouts(),
        );
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(20), connect) => c,
            () = &mut shutdown => return Ok(()),
        };
        match connected {
            Ok(Ok(component)) => {
                log(format_args!(
                    "xmpp: online as {} via {}",
                    component.jid, args.xmpp_addr
                ));
                backoff = Duration::from_secs(1);
                let since = std::time::Instant::now();
                match session(component, &service, &ping_to, &mut shutdown).await {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost => log(format_args!("xmpp: connection lost; reconnecting")),
                }
                // tokio-xmpp 6 also ends the stream on a stanza it cannot parse (any user can
                // send one, e.g. a message of an unknown type): reconnect at once, so that the
                // gap stays short, with a pause only when sessions die as soon as they start.
                if since.elapsed() < Duration::from_secs(1) {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                }
                continue;
            }
            Ok(Err(e)) => log(format_args!(
                "xmpp: cannot connect to {}: {e}; retrying in {}s",
                args.xmpp_addr,
                backoff.as_secs()
            )),
            Err(_) => log(format_args!(
                "xmpp: connecting to {} timed out; retrying in {}s",
                args.xmpp_addr,
                backoff.as_secs()
            )),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// The read timeout is longer than the keep-alive period, so a live link never trips it.
fn timeouts() -> Timeouts {
    Timeouts {
        read_timeout: Duration::from_secs(90),
        response_timeout: Duration::from_secs(30),
    }
}

const KEEPALIVE: Duration = Duration::from_secs(45);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    log(format_args!("upload_component: stopping"));
}

enum SessionEnd {
    Shutdown,
    Lost,
}

async fn session(
    mut component: Component<TcpServerConnector>,
    service: &Service,
    ping_to: &str,
    shutdown: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
) -> SessionEnd {
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let me = component.jid.to_string();
    let mut pings = 0u64;
    loop {
        tokio::select! {
            stanza = component.next() => {
                // tokio-xmpp ends the stream on I/O errors and on stanzas it cannot parse; the
                // connection is then dropped and made anew.
                let Some(stanza) = stanza else { return SessionEnd::Lost };
                let request = Element::from(stanza);
                let Some(reply) = service
                    .handle(&request, OffsetDateTime::now_utc())
                    .or_else(|| other_iq(&request, &me))
                else {
                    continue;
                };
                log(format_args!("xmpp: {}", describe(&request, &reply)));
                match Stanza::try_from(reply) {
                    Ok(reply) => {
                        if let Err(e) = component.send_stanza(reply).await {
                            log(format_args!("xmpp: send failed: {e}"));
                            return SessionEnd::Lost;
                        }
                    }
                    Err(e) => log(format_args!("xmpp: reply not sendable: {e}")),
                }
            }
            _ = keepalive.tick() => {
                pings += 1;
                let ping = format!(
                    "<iq xmlns='{}' type='get' id='keepalive-{pings}' from='{me}' to='{ping_to}'><ping xmlns='urn:xmpp:ping'/></iq>",
                    xmpp_upload::ns::COMPONENT_ACCEPT
                );
                let stanza = ping.parse::<Element>().ok().and_then(|e| Stanza::try_from(e).ok());
                if let Some(stanza) = stanza {
                    if component.send_stanza(stanza).await.is_err() {
                        return SessionEnd::Lost;
                    }
                }
            }
            () = &mut *shutdown => {
                let _ = tokio::time::timeout(Duration::from_secs(2), component.send_end()).await;
                return SessionEnd::Shutdown;
            }
        }
    }
}

/// The answer to an IQ request the service does not handle: a pong for an XEP-0199 ping,
/// `service-unavailable` for anything else (RFC 6120 §8.2.3: a get or set is always answered).
/// Messages, presences, results and errors get nothing.
fn other_iq(request: &Element, me: &str) -> Option<Element> {
    let iq = Iq::parse(request)?.ok()?;
    if !matches!(iq.type_, IqType::Get | IqType::Set) {
        return None;
    }
    if iq.type_ == IqType::Get && iq.payload.is_some_and(|p| p.is("ping", "urn:xmpp:ping")) {
        return Some(iq.result(Some(me), None));
    }
    xmpp_upload::stanza::iq::service_unavailable(request)
}

/// One log line for a handled stanza: requester (bare JID), what was asked, the answer and
/// the slot-ID prefix. Never a URL, signature or file ID.
fn describe(request: &Element, reply: &Element) -> String {
    let from = request
        .attr("from")
        .map_or("-", |f| f.split('/').next().unwrap_or(f));
    let payload = request.children().next();
    let what = match payload {
        Some(p) if p.name() == "request" => {
            let size = p
                .attr("size")
                .map(str::to_owned)
                .or_else(|| p.children().find(|c| c.name() == "size").map(|c| c.text()));
            let size = size.as_deref().map(str::trim).unwrap_or("-");
            let size = if size.len() <= 20 && size.bytes().all(|b| b.is_ascii_digit()) {
                size
            } else {
                "invalid"
            };
            format!("slot request ({}) size={size}", clean(&p.ns()))
        }
        Some(p) if p.ns() == xmpp_upload::ns::FILE_TRANSFER => {
            if p.attr("md5").is_some() {
                "p1 upload request".to_owned()
            } else {
                "p1 download request".to_owned()
            }
        }
        Some(p) => format!("{} {}", clean(p.name()), clean(&p.ns())),
        None => "empty iq".to_owned(),
    };
    let outcome = match reply.attr("type") {
        Some("result") => match slot_prefix(reply) {
            Some(id) => format!("result slot={id}"),
            None => "result".to_owned(),
        },
        Some("error") => {
            let condition = reply
                .children()
                .find(|c| c.name() == "error")
                .and_then(|e| {
                    e.children()
                        .find(|c| c.ns() == xmpp_upload::ns::XMPP_STANZAS && c.name() != "text")
                })
                .map_or("-", Element::name);
            format!("error {condition}")
        }
        other => other.unwrap_or("-").to_owned(),
    };
    format!("{}: {what} -> {outcome}", clean(from))
}

/// A value from a stanza, made safe for a log line: no control characters, at most 80 chars.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

/// The first 8 hex digits of the slot ID in a reply's PUT or download URL.
fn slot_prefix(reply: &Element) -> Option<String> {
    let payload = reply.children().next()?;
    let url = payload
        .attr("upload")
        .or_else(|| payload.attr("download"))
        .map(str::to_owned)
        .or_else(|| {
            let put = payload.children().find(|c| c.name() == "put")?;
            Some(put.attr("url").map_or_else(|| put.text(), str::to_owned))
        })?;
    let url = Url::parse(url.trim()).ok()?;
    let mut segs: Vec<&str> = url.path_segments()?.collect();
    segs.pop();
    let id = segs.pop()?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| id.chars().take(8).collect())
}
