//! A small HTTP file store for the URLs a [`SignedUrlStore`] issues, on hyper 1 and tokio.
//!
//! Shared by the examples through `#[path = "support/http_store.rs"] mod http_store;`.
//!
//! * `PUT`: the URL is rebuilt from the base URL's origin and the request's path and query, then
//!   [`SignedUrlStore::verify_put`] checks the signature, expiry, `Content-Length` (required) and
//!   `Content-Type`; [`VerifiedPut::check_content_md5`] checks `Content-MD5` where an MD5 is
//!   bound. The body streams into a temporary file through [`VerifiedPut::body_check`] (the
//!   declared size is a hard limit, digests are checked at the end) and is linked into
//!   `{store dir}/{slot id}/{file name}` only if everything matched, never over an existing file.
//!   Answers: 201 stored, 403 bad signature, 410 expired, 413 size, 415 type, 400 digest, 409
//!   exists, 411 no `Content-Length`.
//! * `GET`/`HEAD`: [`SignedUrlStore::verify_get`], then the file with `Content-Length`, its bound
//!   content type (kept in `{store dir}/{slot id}.meta`), `X-Content-Type-Options: nosniff`, a
//!   sandboxing `Content-Security-Policy` and a `Content-Disposition` that is `inline` only for
//!   images (not SVG), audio, video and `text/plain`, with an RFC 5987 `filename*`; 404 if absent.
//! * `GET`/`HEAD` below the stable-link base (optional): [`SlotService::resolve_stable_get`], 302.
//! * `OPTIONS` and CORS headers on every answer, for web clients.
//! * [`purge`] / [`spawn_purge`]: removes uploads older than a retention time.
//!
//! One log line per request: method, status, the first 8 hex digits of the slot ID, size, time.
//! Never a query string, a signature or a key.
#![allow(dead_code)] // each example uses a different part of this module

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::net::TcpListener;
use url::Url;
use xmpp_upload::storage::signed::{BodyCheck, SignedUrlStore, VerifiedPut, VerifyError};
use xmpp_upload::{SlotError, SlotService};

/// The body type of every answer.
pub type Body = BoxBody<Bytes, io::Error>;

/// The service whose storage this server verifies and serves.
pub type Service = SlotService<SignedUrlStore>;

/// The strict policy sent with every answer: no scripts, no plugins, no same-origin access.
pub const CSP: &str = "default-src 'none'; sandbox";
const CORS_METHODS: &str = "PUT, GET, HEAD, OPTIONS";
const CORS_HEADERS: &str = "Content-Type, Content-MD5, Authorization";
const FALLBACK_TYPE: &str = "application/octet-stream";

/// At most this many connections at once; more are refused.
const MAX_CONNECTIONS: usize = 512;
/// A request's header must arrive within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A PUT body may pause at most this long between two chunks.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A refused PUT's body is read and discarded up to this size, so that the client reads our
/// answer instead of a connection reset; larger bodies get the answer and `Connection: close`.
const DRAIN_LIMIT: u64 = 1024 * 1024;
/// Temporary files of PUTs that never finished are removed after this time.
const STALE_TEMP: Duration = Duration::from_secs(3600);
const TEMP_DIR: &str = ".tmp";

/// Where and how the server stores and serves files.
#[derive(Debug, Clone)]
pub struct HttpStoreConfig {
    /// The directory holding `{slot id}/{file name}`, `{slot id}.meta` and `.tmp/`.
    pub store_dir: PathBuf,
    /// The base URL the [`SignedUrlStore`] issues URLs under; its scheme and authority are
    /// used to rebuild request URLs (the server may sit behind a TLS proxy).
    pub base_url: Url,
    /// The stable-link base given to `ServiceConfig::stable_get_base`, when used.
    pub stable_base: Option<Url>,
    /// Log one line per request on stderr.
    pub log: bool,
}

struct State {
    service: Arc<Service>,
    cfg: HttpStoreConfig,
    base_path: String,
    stable_path: Option<String>,
}

fn dir_path(u: &Url) -> String {
    let p = u.path();
    if p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// Callbacks for a host that records uploads and counts requests (the upload component).
#[derive(Clone)]
pub struct Hooks {
    /// A verified PUT was stored: object key, bytes, bound content type.
    pub stored: Arc<dyn Fn(&str, u64, Option<&str>) + Send + Sync>,
    /// A request was answered, with this status.
    pub answered: Arc<dyn Fn(u16) + Send + Sync>,
    /// Where log lines go instead of stderr.
    pub log: fn(std::fmt::Arguments<'_>),
}

static HOOKS: std::sync::OnceLock<Hooks> = std::sync::OnceLock::new();
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Installs the hooks (once per process).
pub fn set_hooks(hooks: Hooks) {
    let _ = HOOKS.set(hooks);
}

/// Requests being handled right now (a graceful shutdown waits for them).
pub fn requests_in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Relaxed)
}

struct InFlightRequest;

impl InFlightRequest {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Prints a log line with a UTC timestamp on stderr.
pub fn log(line: std::fmt::Arguments<'_>) {
    if let Some(h) = HOOKS.get() {
        (h.log)(line);
        return;
    }
    let now = OffsetDateTime::now_utc();
    eprintln!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {line}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    );
}

/// Accepts connections on `listener` forever and answers them; call it inside
/// `tokio::spawn`. The store behind `service` verifies the URLs.
pub async fn serve(listener: TcpListener, service: Arc<Service>, cfg: HttpStoreConfig) {
    let state = Arc::new(State {
        base_path: dir_path(&cfg.base_url),
        stable_path: cfg.stable_base.as_ref().map(dir_path),
        service,
        cfg,
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log(format_args!("http: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// What a request came to, for the log line.
struct Outcome {
    resp: Response<Body>,
    /// The first 8 hex digits of the slot ID, or `-`.
    slot: String,
    /// Bytes stored or served.
    bytes: u64,
    /// Why a request was refused (never a URL, key or signature).
    why: String,
}

impl Outcome {
    fn new(resp: Response<Body>, slot: String) -> Self {
        Self {
            resp,
            slot,
            bytes: 0,
            why: String::new(),
        }
    }

    fn refuse(status: StatusCode, slot: String, why: impl Into<String>) -> Self {
        let why = why.into();
        let mut text = format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        if !why.is_empty() {
            let _ = writeln!(text, "{why}");
        }
        let mut resp = Response::new(full(text));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Self {
            resp,
            slot,
            bytes: 0,
            why,
        }
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

async fn handle(req: Request<Incoming>, st: &State) -> Response<Body> {
    let _in_flight = InFlightRequest::new();
    let started = Instant::now();
    let method = req.method().clone();
    let mut out = route(req, st).await;
    let h = out.resp.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static(CORS_METHODS),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(CORS_HEADERS),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Some(h) = HOOKS.get() {
        (h.answered)(out.resp.status().as_u16());
    }
    if st.cfg.log {
        let why = if out.why.is_empty() {
            String::new()
        } else {
            format!(" ({})", out.why)
        };
        log(format_args!(
            "http: {method} {} slot={} {}B {}ms{why}",
            out.resp.status().as_u16(),
            out.slot,
            out.bytes,
            started.elapsed().as_millis()
        ));
    }
    out.resp
}

/// The slot-ID prefix for the log, taken from the path before anything is verified: only
/// a 32-hex-digit segment right below the base counts.
fn slot_label(path: &str, base_path: &str) -> String {
    path.strip_prefix(base_path)
        .and_then(|rest| rest.split('/').next())
        .filter(|id| is_slot_id(id))
        .map_or_else(|| "-".to_owned(), |id| id.chars().take(8).collect())
}

fn is_slot_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The URL the client used, as the store issued it: the base's scheme and authority with the
/// request's path and query. `Url::set_path` keeps percent-escapes and resolves dot segments.
fn request_url(base: &Url, uri: &hyper::Uri) -> Url {
    let mut u = base.clone();
    u.set_fragment(None);
    u.set_path(uri.path());
    u.set_query(uri.query());
    u
}

async fn route(req: Request<Incoming>, st: &State) -> Outcome {
    let path = req.uri().path().to_owned();
    let label = slot_label(&path, &st.base_path);
    let method = req.method().clone();
    if method == Method::OPTIONS {
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp.headers_mut()
            .insert("access-control-max-age", HeaderValue::from_static("86400"));
        return Outcome::new(resp, label);
    }
    if let Some(stable) = &st.stable_path {
        if path.starts_with(stable.as_str()) && (method == Method::GET || method == Method::HEAD) {
            let base = st.cfg.stable_base.as_ref().unwrap_or(&st.cfg.base_url);
            return stable_get(st, request_url(base, req.uri()));
        }
    }
    let url = request_url(&st.cfg.base_url, req.uri());
    match method {
        Method::PUT => put(req, st, url, label).await,
        Method::GET => get(st, url, label, false).await,
        Method::HEAD => get(st, url, label, true).await,
        _ => {
            let mut out = Outcome::refuse(StatusCode::METHOD_NOT_ALLOWED, label, "method");
            out.resp
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(CORS_METHODS));
            out
        }
    }
}

fn status_of(e: &VerifyError) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN)
}

/// The paths of an object: its directory, file and content-type sidecar. The key comes from a
/// verified URL (`{32 hex}/{valid file name}`); it is still checked to be exactly one slot
/// directory and one plain file name, so nothing can point outside the store.
fn object_paths(store_dir: &Path, key: &str) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let (id, name) = key.split_once('/')?;
    if !is_slot_id(id)
        || name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
    {
        return None;
    }
    let mut parts = Path::new(name).components();
    if !matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    ) {
        return None;
    }
    let dir = store_dir.join(id);
    let file = dir.join(name);
    Some((dir, file, store_dir.join(format!("{id}.meta"))))
}

fn parse_content_length(h: &HeaderMap) -> Option<u64> {
    let v = h.get(header::CONTENT_LENGTH)?.to_str().ok()?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Reads and discards a refused request's body (up to [`DRAIN_LIMIT`]), so that the client
/// gets to read the answer. Returns whether the connection can be kept.
async fn drain(body: Incoming, declared: u64, expects_continue: bool) -> bool {
    if expects_continue {
        // The client waits for "100 Continue", which a final answer replaces: nothing to read.
        return false;
    }
    if declared > DRAIN_LIMIT {
        return false;
    }
    let mut body = body;
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return false;
            }
        }
        true
    })
    .await
    .unwrap_or(false)
}

async fn refuse_put(
    body: Incoming,
    parts: &hyper::http::request::Parts,
    declared: u64,
    status: StatusCode,
    label: String,
    why: String,
) -> Outcome {
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let keep = drain(body, declared, expects_continue).await;
    let mut out = Outcome::refuse(status, label, why);
    if !keep {
        out.resp
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

async fn put(req: Request<Incoming>, st: &State, url: Url, label: String) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let (parts, body) = req.into_parts();
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        return refuse_put(
            body,
            &parts,
            u64::MAX,
            StatusCode::LENGTH_REQUIRED,
            label,
            "chunked body".into(),
        )
        .await;
    }
    let Some(len) = parse_content_length(&parts.headers) else {
        return refuse_put(
            body,
            &parts,
            u64::MAX,
            StatusCode::LENGTH_REQUIRED,
            label,
            "no Content-Length".into(),
        )
        .await;
    };
    let content_type = match parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(HeaderValue::to_str)
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            return refuse_put(
                body,
                &parts,
                len,
                StatusCode::BAD_REQUEST,
                label,
                "Content-Type".into(),
            )
            .await;
        }
    };
    let verified = match st
        .service
        .storage()
        .verify_put(&url, len, content_type, now)
    {
        Ok(v) => v,
        Err(e) => return refuse_put(body, &parts, len, status_of(&e), label, e.to_string()).await,
    };
    let label: String = verified.key.chars().take(8).collect();
    let md5 = parts
        .headers
        .get("content-md5")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = verified.check_content_md5(md5) {
        return refuse_put(
            body,
            &parts,
            len,
            status_of(&e),
            label,
            "Content-MD5".into(),
        )
        .await;
    }
    let Some((dir, file, meta)) = object_paths(&st.cfg.store_dir, &verified.key) else {
        return refuse_put(
            body,
            &parts,
            len,
            StatusCode::FORBIDDEN,
            label,
            "key".into(),
        )
        .await;
    };
    if tokio::fs::symlink_metadata(&file).await.is_ok() {
        return refuse_put(
            body,
            &parts,
            len,
            StatusCode::CONFLICT,
            label,
            "exists".into(),
        )
        .await;
    }
    match store(body, &st.cfg.store_dir, &verified, &dir, &file, &meta).await {
        Ok(bytes) => {
            if let Some(h) = HOOKS.get() {
                (h.stored)(&verified.key, bytes, verified.content_type.as_deref());
            }
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::CREATED;
            let mut out = Outcome::new(resp, label);
            out.bytes = bytes;
            out
        }
        Err((status, why)) => {
            let mut out = Outcome::refuse(status, label, why);
            out.resp
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            out
        }
    }
}

type Refusal = (StatusCode, String);

fn io_refusal(what: &str, e: &io::Error) -> Refusal {
    let status = match e.raw_os_error() {
        Some(28) /* ENOSPC */ | Some(122) /* EDQUOT */ => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{what}: {}", e.kind()))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Streams the body into a temporary file, checks it, and links it into place.
async fn store(
    body: Incoming,
    store_dir: &Path,
    v: &VerifiedPut,
    dir: &Path,
    file: &Path,
    meta: &Path,
) -> Result<u64, Refusal> {
    let tmp_dir = store_dir.join(TEMP_DIR);
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(|e| io_refusal("temp dir", &e))?;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = tmp_dir.join(format!("{}-{nanos:x}-{n}", std::process::id()));
    let result = receive(body, &tmp, v.body_check()).await;
    let outcome = match result {
        Ok(bytes) => place(&tmp, dir, file, meta, v.content_type.as_deref())
            .await
            .map(|()| bytes),
        Err(e) => Err(e),
    };
    // Linked or refused: the temporary name goes either way.
    let _ = tokio::fs::remove_file(&tmp).await;
    outcome
}

async fn receive(mut body: Incoming, tmp: &Path, mut check: BodyCheck) -> Result<u64, Refusal> {
    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .await
        .map_err(|e| io_refusal("temp file", &e))?;
    let mut out = BufWriter::with_capacity(256 * 1024, f);
    let mut bytes = 0u64;
    loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => return Err((StatusCode::REQUEST_TIMEOUT, "body stalled".into())),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err((StatusCode::BAD_REQUEST, "body ended early".into())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            check
                .update(&data)
                .map_err(|e| (status_of(&e), e.to_string()))?;
            out.write_all(&data)
                .await
                .map_err(|e| io_refusal("write", &e))?;
            bytes += data.len() as u64;
        }
    }
    check.finish().map_err(|e| (status_of(&e), e.to_string()))?;
    out.flush().await.map_err(|e| io_refusal("write", &e))?;
    out.get_ref()
        .sync_all()
        .await
        .map_err(|e| io_refusal("sync", &e))?;
    Ok(bytes)
}

/// Links the checked temporary file to its final name (never replacing a file) and records
/// the bound content type.
async fn place(
    tmp: &Path,
    dir: &Path,
    file: &Path,
    meta: &Path,
    content_type: Option<&str>,
) -> Result<(), Refusal> {
    match tokio::fs::create_dir(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_refusal("slot dir", &e)),
    }
    // Only a real directory: never a symlink planted in the store.
    match tokio::fs::symlink_metadata(dir).await {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "slot dir is not a directory".into(),
            ))
        }
    }
    // The type first, so that a GET never finds the file without it.
    let meta_tmp = tmp.with_extension("meta");
    let ty = content_type.unwrap_or(FALLBACK_TYPE);
    tokio::fs::write(&meta_tmp, ty.as_bytes())
        .await
        .map_err(|e| io_refusal("meta", &e))?;
    tokio::fs::rename(&meta_tmp, meta)
        .await
        .map_err(|e| io_refusal("meta", &e))?;
    match tokio::fs::hard_link(tmp, file).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err((StatusCode::CONFLICT, "exists".into()))
        }
        Err(e) => Err(io_refusal("link", &e)),
    }
}

async fn read_content_type(meta: &Path) -> HeaderValue {
    let fallback = HeaderValue::from_static(FALLBACK_TYPE);
    let Ok(raw) = tokio::fs::read(meta).await else {
        return fallback;
    };
    if raw.len() > 255 {
        return fallback;
    }
    let ty = String::from_utf8_lossy(&raw);
    let ty = ty.trim();
    if !ty.contains('/') || !ty.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return fallback;
    }
    HeaderValue::from_str(ty).unwrap_or(fallback)
}

/// `inline` only for types a browser shows without running anything: images (not SVG, which
/// may carry scripts), audio, video and plain text. Everything else is a download.
pub fn is_inline(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    (essence.starts_with("image/") && essence != "image/svg+xml")
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || essence == "text/plain"
}

/// `Content-Disposition` with an ASCII fallback `filename` and the exact name as an RFC 5987
/// `filename*=UTF-8''…`.
pub fn content_disposition(content_type: &str, filename: &str) -> String {
    let kind = if is_inline(content_type) {
        "inline"
    } else {
        "attachment"
    };
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut exact = String::with_capacity(filename.len() * 3);
    for b in filename.bytes() {
        // RFC 5987 attr-char
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            exact.push(char::from(b));
        } else {
            let _ = write!(exact, "%{b:02X}");
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

async fn get(st: &State, url: Url, label: String, head: bool) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let verified = match st.service.storage().verify_get(&url, now) {
        Ok(v) => v,
        Err(e) => return Outcome::refuse(status_of(&e), label, e.to_string()),
    };
    let label: String = verified.key.chars().take(8).collect();
    let Some((_dir, path, meta)) = object_paths(&st.cfg.store_dir, &verified.key) else {
        return Outcome::refuse(StatusCode::NOT_FOUND, label, "key");
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Outcome::refuse(StatusCode::NOT_FOUND, label, "absent")
        }
        Err(e) => {
            let (s, why) = io_refusal("open", &e);
            return Outcome::refuse(s, label, why);
        }
    };
    let len = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return Outcome::refuse(StatusCode::NOT_FOUND, label, "absent"),
    };
    let ty = read_content_type(&meta).await;
    let disposition = content_disposition(ty.to_str().unwrap_or(FALLBACK_TYPE), &verified.filename);
    let body = if head {
        empty()
    } else {
        FileBody::new(file, len).boxed()
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, ty);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Stored files never change: caches may keep them as long as the URL lives.
    let cache = match verified.expires {
        Some(t) => format!("private, max-age={}", (t - now).whole_seconds().max(0)),
        None => "private, max-age=31536000, immutable".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    let mut out = Outcome::new(resp, label);
    out.bytes = if head { 0 } else { len };
    out
}

fn stable_get(st: &State, url: Url) -> Outcome {
    let now = OffsetDateTime::now_utc();
    match st.service.resolve_stable_get(&url, now) {
        Ok(target) => {
            let label = slot_label(target.path(), &st.base_path);
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::FOUND;
            match HeaderValue::from_str(target.as_str()) {
                Ok(v) => {
                    resp.headers_mut().insert(header::LOCATION, v);
                    resp.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    Outcome::new(resp, label)
                }
                Err(_) => Outcome::refuse(StatusCode::INTERNAL_SERVER_ERROR, label, "location"),
            }
        }
        Err(e) => {
            let status = match e {
                SlotError::ExpiredFileId => StatusCode::GONE,
                SlotError::UnknownFileId | SlotError::Disabled => StatusCode::NOT_FOUND,
                SlotError::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Outcome::refuse(status, "stable".into(), e.to_string())
        }
    }
}

/// A file sent in chunks of up to 64 KiB, exactly `remaining` bytes long.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Box<[u8]>,
}

impl FileBody {
    fn new(file: tokio::fs::File, len: u64) -> Self {
        Self {
            file,
            remaining: len,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(this.buf.len());
        let Some(window) = this.buf.get_mut(..want) else {
            return Poll::Ready(None);
        };
        let mut rb = ReadBuf::new(window);
        match Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let got = rb.filled();
                if got.is_empty() {
                    // Truncated under us (purged while being served): end with an error.
                    return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())));
                }
                this.remaining -= got.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(got)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeStats {
    /// Stored files removed.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Abandoned temporary files removed.
    pub temp_files: u64,
}

fn older_than(m: &std::fs::Metadata, age: Duration, now: SystemTime) -> bool {
    m.modified()
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|a| a >= age)
}

/// Removes uploads whose file is at least `retention` old at `now` (and their directory and
/// content-type record), and temporary files of PUTs abandoned for an hour. Touches only the
/// names this server creates; never follows a symlink.
pub fn purge(store_dir: &Path, retention: Duration, now: SystemTime) -> io::Result<PurgeStats> {
    let mut stats = PurgeStats::default();
    for entry in std::fs::read_dir(store_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(meta) = entry.metadata() else { continue }; // DirEntry::metadata does not follow symlinks
        if name == TEMP_DIR && meta.is_dir() {
            for t in std::fs::read_dir(entry.path())?.flatten() {
                if t.metadata()
                    .is_ok_and(|m| m.is_file() && older_than(&m, STALE_TEMP, now))
                    && std::fs::remove_file(t.path()).is_ok()
                {
                    stats.temp_files += 1;
                }
            }
            continue;
        }
        if !is_slot_id(name) || !meta.is_dir() {
            continue;
        }
        let dir = entry.path();
        let mut left = 0;
        for f in std::fs::read_dir(&dir)?.flatten() {
            match f.metadata() {
                Ok(m) if m.is_file() && older_than(&m, retention, now) => {
                    if std::fs::remove_file(f.path()).is_ok() {
                        stats.files += 1;
                        stats.bytes += m.len();
                    } else {
                        left += 1;
                    }
                }
                _ => left += 1,
            }
        }
        if left == 0 && std::fs::remove_dir(&dir).is_ok() {
            let _ = std::fs::remove_file(store_dir.join(format!("{name}.meta")));
        }
    }
    Ok(stats)
}

/// Runs [`purge`] now and then every `retention / 10` (between 10 s and 1 h).
pub fn spawn_purge(store_dir: PathBuf, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = (retention / 10).clamp(Duration::from_secs(10), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let dir = store_dir.clone();
            match tokio::task::spawn_blocking(move || purge(&dir, retention, SystemTime::now()))
                .await
            {
                Ok(Ok(s)) if s.files > 0 || s.temp_files > 0 => log(format_args!(
                    "purge: removed {} files ({} bytes) and {} abandoned temp files",
                    s.files, s.bytes, s.temp_files
                )),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log(format_args!("purge: {e}")),
                Err(e) => log(format_args!("purge: task failed: {e}")),
            }
        }
    })
}
