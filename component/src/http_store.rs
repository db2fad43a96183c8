//! A small HTTP file store for the URLs a [`SignedUrlStore`] issues, on hyper 1 and tokio.
//!
//! Shared by the examples through `#[path = "support/http_store.rs"] mod http_store;`. It needs
//! the crate's `http` feature: requests are verified from their `http::request::Parts` with
//! [`SignedUrlStore::verify_put_parts`] / [`SignedUrlStore::verify_get_parts`].
//!
//! * `PUT`: signature, expiry, `Content-Length` — or none, for a chunked body (the xmpp-rs
//!   `xmpp` crate streams its PUT), where the size bound into the URL applies —, `Content-Type`
//!   (a PUT without one stores the slot's bound type) and `Content-MD5` where an MD5 is bound.
//!   The body streams into a temporary file through [`VerifiedPut::body_check`] (413 as soon
//!   as it goes over the size, 400 when it ends short, digests checked at the end) and is
//!   linked into `{store dir}/{slot id}/{file name}` only if everything matched, never over an
//!   existing file. One PUT per object at a time: a second one gets 409 at once. A PUT must
//!   finish by its URL's expiry plus a short grace (408 after).
//!   Answers: 201 stored, 403 bad signature, 410 expired, 413 too large, 400 short body, bad
//!   digest or bad header, 415 type, 409 exists or in progress, 411 length needed (MD5-only
//!   slots), 408 too slow, 507 disk full.
//! * `GET`/`HEAD`: [`SignedUrlStore::verify_get`], then the file with its bound content type
//!   (the sidecar `{store dir}/{slot id}.meta`, written atomically before the file is linked),
//!   `Accept-Ranges: bytes` and single byte ranges (206; 416 with `Content-Range: bytes */len`
//!   when unsatisfiable; `If-Range`), a strong `ETag` and `Last-Modified` with
//!   `If-None-Match`/`If-Modified-Since` (304), `X-Content-Type-Options: nosniff`, a
//!   [`CSP`] that lets media play but nothing run or frame it, and a `Content-Disposition`
//!   that is `inline` only for the types of the configured [`InlinePolicy`]
//!   ([`StoreOptions::inline`]; HTML, SVG and XML never), else `attachment` with an RFC 8187
//!   `filename*`; 404 if absent. Files and sidecars are opened without following symlinks.
//! * `GET`/`HEAD` below the stable-link base (optional): [`SlotService::resolve_stable_get`], 302.
//! * `OPTIONS` and CORS headers on every answer, for web clients.
//! * Under abuse ([`Limits`]): at most so many connections per IP and in all, with headroom
//!   for new addresses when nearly full; idle and trickling connections are closed (request
//!   head, keep-alive idle, body pauses, a total deadline per request).
//! * [`purge`] / [`spawn_purge`]: removes uploads older than a retention time.
//!
//! One log line per request: method, status, the first 8 hex digits of the slot ID, size, time.
//! Never a query string, a signature or a key.
#![allow(dead_code)] // each example uses a different part of this module

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::net::TcpListener;
use url::Url;
use xmpp_upload::checked::{ContentType, Disposition, InlinePolicy};
use xmpp_upload::storage::signed::{BodyCheck, SignedUrlStore, VerifiedPut, VerifyError};
use xmpp_upload::{SlotError, SlotService};

/// The body type of every answer.
pub type Body = BoxBody<Bytes, io::Error>;

/// The service whose storage this server verifies and serves.
pub type Service = SlotService<SignedUrlStore>;

/// The policy sent with every answer: nothing loads but the file itself as media or image
/// (so audio and video opened directly in a browser play), no scripts or plugins
/// (`sandbox` without `allow-scripts`; `allow-same-origin` only so that `'self'` means this
/// origin), and no page may frame the file.
pub const CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; \
                       frame-ancestors 'none'; sandbox allow-same-origin";
const CORS_METHODS: &str = "PUT, GET, HEAD, OPTIONS";
const CORS_HEADERS: &str = "Content-Type, Content-MD5, Authorization, Range";
const CORS_EXPOSE: &str = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified";
const FALLBACK_TYPE: &str = "application/octet-stream";

/// A refused PUT's body is read and discarded up to this size, so that the client reads our
/// answer instead of a connection reset; larger bodies get the answer and `Connection: close`.
const DRAIN_LIMIT: u64 = 1024 * 1024;
/// Temporary files of PUTs that never finished are removed after this time.
const STALE_TEMP: Duration = Duration::from_secs(3600);
const TEMP_DIR: &str = ".tmp";
/// The connection watchdog gives the handler this long past a PUT's deadline to answer 408.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

/// Where and how the server stores and serves files.
#[derive(Debug, Clone)]
pub struct HttpStoreConfig {
    /// The directory holding `{slot id}/{file name}`, `{slot id}.meta` and `.tmp/`.
    pub store_dir: PathBuf,
    /// The base URL the [`SignedUrlStore`] issues URLs under (the store's own, which request
    /// targets are resolved against: the server may sit behind a TLS proxy); its path marks
    /// the slot ID in log lines.
    pub base_url: Url,
    /// The stable-link base given to `ServiceConfig::stable_get_base`, when used.
    pub stable_base: Option<Url>,
    /// Log one line per request on stderr.
    pub log: bool,
}

/// How long things may take and how many connections may be open.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one client: one IPv4 address, or one IPv6 prefix of
    /// [`Limits::ipv6_prefix`] bits.
    pub max_connections_per_ip: usize,
    /// Once this many connections are open, an address already holding one gets no more:
    /// the rest is kept for addresses not yet connected.
    pub reserve_from: usize,
    /// A new connection must send its first request head within this time.
    pub header_timeout: Duration,
    /// A PUT body may pause at most this long between two chunks.
    pub body_idle_timeout: Duration,
    /// A PUT must be complete by its URL's expiry plus this grace.
    pub put_grace: Duration,
    /// A GET or HEAD answer must be sent within this time.
    pub get_deadline: Duration,
    /// A keep-alive connection may idle this long between requests.
    pub idle_timeout: Duration,
    /// IPv6 clients are counted per prefix of this many bits (64: one /64, what one host or
    /// one home network usually gets; 48 or 56 for stricter caps), 0 to 128.
    pub ipv6_prefix: u8,
    /// Under pressure (more than half of [`Limits::max_connections`] open), the header,
    /// keep-alive and body-pause deadlines shrink linearly towards this floor, which they
    /// reach at nine tenths full.
    pub timeout_floor: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 2048,
            max_connections_per_ip: 32,
            reserve_from: 1536,
            header_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            put_grace: Duration::from_secs(30),
            get_deadline: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(30),
            ipv6_prefix: 64,
            timeout_floor: Duration::from_secs(2),
        }
    }
}

/// File descriptors kept out of the connection budget of [`Limits::fit_to_open_files`]:
/// standard streams, the runtime, listeners, the XMPP and database connections, logs.
pub const FD_RESERVE: u64 = 64;

impl Limits {
    /// These limits with `max_connections` cut (and `reserve_from`, `max_connections_per_ip`
    /// with it) so that the connections, each with a file it may be serving or receiving,
    /// fit in `open_files` descriptors less [`FD_RESERVE`] and `reserved` (other listeners'
    /// caps). Returns whether anything was cut.
    pub fn fit_to_open_files(&mut self, open_files: u64, reserved: u64) -> bool {
        let budget = open_files
            .saturating_sub(FD_RESERVE)
            .saturating_sub(reserved)
            / 2;
        let budget = usize::try_from(budget).unwrap_or(usize::MAX).max(1);
        if self.max_connections <= budget {
            return false;
        }
        let old = self.max_connections;
        self.max_connections = budget;
        // Keep the headroom proportion (default: the last quarter for new addresses).
        self.reserve_from = ((self.reserve_from as u128 * budget as u128) / old.max(1) as u128)
            .try_into()
            .unwrap_or(budget);
        self.max_connections_per_ip = self.max_connections_per_ip.min(budget);
        true
    }

    /// `full` scaled down under pressure: unchanged up to half full, then linearly down to
    /// [`Limits::timeout_floor`], reached at nine tenths full (so that the few places a cut
    /// frees, refilled by a flood, do not give the other holders their time back).
    pub fn under_pressure(&self, full: Duration, open: usize) -> Duration {
        let max = self.max_connections.max(1);
        let half = max / 2;
        let high = (max - max / 10).max(half + 1);
        if open <= half || full <= self.timeout_floor {
            return full;
        }
        let over = (open.min(high) - half) as u128;
        let span = (high - half) as u128;
        let floor = self.timeout_floor.as_millis();
        let cut = (full.as_millis() - floor) * over / span;
        Duration::from_millis(u64::try_from(full.as_millis() - cut).unwrap_or(u64::MAX))
    }
}

/// What [`serve_with`] takes beyond [`HttpStoreConfig`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Connection caps and deadlines.
    pub limits: Limits,
    /// Which content types are served `inline`; every other type is an attachment, with its
    /// file name. HTML, SVG and XML are never inline, whatever the policy says.
    pub inline: InlinePolicy,
}

struct State {
    service: Arc<Service>,
    cfg: HttpStoreConfig,
    opts: StoreOptions,
    base_path: String,
    stable_path: Option<String>,
    /// Object keys with a PUT in progress.
    in_flight: Mutex<HashSet<String>>,
    /// Open connections per client, and in all.
    gate: Arc<Gate>,
}

fn dir_path(u: &Url) -> String {
    let p = u.path();
    if p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// Called when a verified PUT was stored: object key, bytes, bound content type, and the
/// owner bound into the URL (`VerifiedPut::owner`; `None` for a URL that binds none).
pub type StoredHook = Arc<dyn Fn(&str, u64, Option<&str>, Option<&jid::BareJid>) + Send + Sync>;

/// Asked before a verified PUT is stored: the owner bound into the URL and the URL's expiry
/// (the slot was issued the service's PUT lifetime before it). `false` refuses with 403
/// (the owner's account was removed since the slot was issued).
pub type MayStoreHook = Arc<
    dyn Fn(
            Option<jid::BareJid>,
            OffsetDateTime,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
        + Send
        + Sync,
>;

/// Callbacks for a host that records uploads and counts requests (the upload component).
#[derive(Clone)]
pub struct Hooks {
    /// A verified PUT was stored.
    pub stored: StoredHook,
    /// A request was answered, with this status.
    pub answered: Arc<dyn Fn(u16) + Send + Sync>,
    /// Where log lines go instead of stderr.
    pub log: fn(std::fmt::Arguments<'_>),
    /// Asked before a verified PUT is stored (`None`: always allowed).
    pub may_store: Option<MayStoreHook>,
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

/// The client a connection counts against: the IPv4 address (also when mapped into IPv6),
/// or the IPv6 address cut to its first `prefix` bits.
pub fn client_key(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
        v4 => v4,
    }
}

/// Says something at most once a second, with a count of what was not said in between.
struct RateLog {
    name: &'static str,
    log: fn(std::fmt::Arguments<'_>),
    state: Mutex<RateState>,
}

#[derive(Default)]
struct RateState {
    last: Option<Instant>,
    full: u64,
    per_client: u64,
    headroom: u64,
    evicted: u64,
    accept_errors: u64,
    last_error: Option<io::ErrorKind>,
}

/// Why a connection was turned away (or made room for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turned {
    Full,
    PerClient,
    Headroom,
    Evicted,
    AcceptError(io::ErrorKind),
}

impl RateLog {
    fn note(&self, what: Turned) {
        let line = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match what {
                Turned::Full => s.full += 1,
                Turned::PerClient => s.per_client += 1,
                Turned::Headroom => s.headroom += 1,
                Turned::Evicted => s.evicted += 1,
                Turned::AcceptError(kind) => {
                    s.accept_errors += 1;
                    s.last_error = Some(kind);
                }
            }
            let now = Instant::now();
            if s.last
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
            {
                return;
            }
            let since = s.last.map_or(String::new(), |t| {
                format!(" in {}ms", now.duration_since(t).as_millis())
            });
            let mut line = String::new();
            let refused = s.full + s.per_client + s.headroom;
            if refused > 0 {
                let _ = write!(
                    line,
                    "refused {refused} connections (full {}, client over its cap {}, headroom kept for new clients {})",
                    s.full, s.per_client, s.headroom
                );
            }
            if s.evicted > 0 {
                let sep = if line.is_empty() { "" } else { "; " };
                let _ = write!(
                    line,
                    "{sep}closed {} idle connections to make room",
                    s.evicted
                );
            }
            if s.accept_errors > 0 {
                let sep = if line.is_empty() { "" } else { "; " };
                let kind = s.last_error.map_or(String::new(), |k| format!(": {k}"));
                let _ = write!(line, "{sep}accept failed {} times{kind}", s.accept_errors);
            }
            let name = self.name;
            *s = RateState {
                last: Some(now),
                ..RateState::default()
            };
            format!("{name}: {line}{since}")
        };
        (self.log)(format_args!("{line}"));
    }
}

/// The caps and deadlines of one listener, shared by its connections: at most so many open in
/// all and per client, the last part kept for clients not yet connected, and idle connections
/// (waiting for a request head) cut sooner as the listener fills. When it is full, a new
/// connection closes the longest-idle one instead of being refused, so a slowloris flood
/// cannot keep a fresh client out.
pub struct Gate {
    limits: Limits,
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<ConnCount>,
    refusals: RateLog,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("name", &self.refusals.name)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct ConnCount {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
    /// Connections waiting for a request head (new or keep-alive), by (idle since, id).
    /// Weak: a closed connection's `Drop` takes it out.
    idle: std::collections::BTreeMap<(u64, u64), std::sync::Weak<Conn>>,
    /// The most connections open over the last [`PRESSURE_HOLD`], and since when.
    peak: usize,
    peak_at: Option<Instant>,
}

/// How long a peak of open connections keeps the deadlines short: the places that cutting
/// idle holders frees must not give the remaining holders their time back at once.
const PRESSURE_HOLD: Duration = Duration::from_secs(5);

/// The `idle_since` of a connection that is handling a request.
const BUSY: u64 = u64::MAX;
/// How often an idle connection re-reads the pressure on its listener.
const RECHECK: Duration = Duration::from_millis(500);

impl Gate {
    /// A gate named `name` in log lines, which go to `log`.
    pub fn new(name: &'static str, limits: Limits, log: fn(std::fmt::Arguments<'_>)) -> Arc<Self> {
        Arc::new(Self {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(ConnCount::default()),
            refusals: RateLog {
                name,
                log,
                state: Mutex::new(RateState::default()),
            },
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// The pressure the deadlines follow: the most connections open over the last few
    /// seconds.
    fn pressure(&self) -> usize {
        let mut c = self.lock();
        let now = Instant::now();
        let stale = c
            .peak_at
            .is_none_or(|t| now.duration_since(t) >= PRESSURE_HOLD);
        if c.total >= c.peak || stale {
            c.peak = c.total;
            c.peak_at = Some(now);
        }
        c.peak
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnCount> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(BUSY - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Accepts the next connection the caps let in. Accept errors (out of file descriptors)
    /// back off briefly; refusals and accept errors are logged at most once a second.
    pub async fn accept(
        self: &Arc<Self>,
        listener: &TcpListener,
    ) -> (tokio::net::TcpStream, Arc<Conn>) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    self.refusals.note(Turned::AcceptError(e.kind()));
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.admit(peer.ip()) {
                Ok(conn) => {
                    let _ = stream.set_nodelay(true);
                    return (stream, conn);
                }
                Err(why) => {
                    drop(stream);
                    self.refusals.note(why);
                }
            }
        }
    }

    /// Counts a connection from `ip` in, or says why not; at the cap, the longest-idle
    /// connection is closed to make room.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Arc<Conn>, Turned> {
        let key = client_key(ip, self.limits.ipv6_prefix);
        let l = &self.limits;
        let mut evicted = None;
        let conn = {
            let mut c = self.lock();
            let mine = c.per_client.get(&key).copied().unwrap_or(0);
            if mine >= l.max_connections_per_ip {
                return Err(Turned::PerClient);
            }
            if c.total >= l.reserve_from && mine > 0 {
                return Err(Turned::Headroom);
            }
            if c.total >= l.max_connections {
                let Some((_, victim)) = c.idle.pop_first() else {
                    return Err(Turned::Full);
                };
                // One that is being dropped right now gives its place back itself.
                if let Some(victim) = victim.upgrade() {
                    if !victim.released.swap(true, Ordering::Relaxed) {
                        release(&mut c, victim.key);
                        evicted = Some(victim);
                    }
                }
            }
            let now = Instant::now();
            let conn = Arc::new(Conn {
                gate: self.clone(),
                key,
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                served: AtomicBool::new(false),
                idle_since: AtomicU64::new(self.ms(now)),
                deadline_ms: AtomicU64::new(0),
                released: AtomicBool::new(false),
                evicted: AtomicBool::new(false),
                moved: tokio::sync::Notify::new(),
            });
            c.total += 1;
            *c.per_client.entry(key).or_insert(0) += 1;
            c.idle
                .insert((self.ms(now), conn.id), Arc::downgrade(&conn));
            conn
        };
        if let Some(v) = evicted {
            v.evicted.store(true, Ordering::Relaxed);
            v.moved.notify_one();
            self.refusals.note(Turned::Evicted);
        }
        Ok(conn)
    }
}

fn release(c: &mut ConnCount, key: IpAddr) {
    c.total = c.total.saturating_sub(1);
    if let Some(n) = c.per_client.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            c.per_client.remove(&key);
        }
    }
}

/// A connection's place under its [`Gate`], and when it is closed unless something moves
/// the time: idle (waiting for a request head), it gets the header or keep-alive timeout,
/// shortened under pressure; busy, the deadline its handler set. Released when dropped.
pub struct Conn {
    gate: Arc<Gate>,
    key: IpAddr,
    id: u64,
    /// Whether a request was answered (the idle time is then the keep-alive one).
    served: AtomicBool,
    /// Milliseconds since the gate's epoch when it went idle, or [`BUSY`].
    idle_since: AtomicU64,
    /// While busy: the deadline, in milliseconds since the gate's epoch.
    deadline_ms: AtomicU64,
    /// Its place was given back (evicted, or dropped).
    released: AtomicBool,
    /// Closed to make room for a new connection.
    evicted: AtomicBool,
    /// Wakes the watcher when the deadline moves (it may move earlier).
    moved: tokio::sync::Notify,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// A request is being handled: the connection is closed at `at` unless moved again.
    pub fn busy_until(&self, at: Instant) {
        let g = &self.gate;
        let was = self.idle_since.swap(BUSY, Ordering::Relaxed);
        self.deadline_ms.store(g.ms(at), Ordering::Relaxed);
        if was != BUSY && !self.released.load(Ordering::Relaxed) {
            g.lock().idle.remove(&(was, self.id));
        }
        self.moved.notify_one();
    }

    /// The answer is sent: the connection waits for the next request head.
    pub fn idle(self: &Arc<Self>) {
        let g = &self.gate;
        self.served.store(true, Ordering::Relaxed);
        let now = g.ms(Instant::now());
        let was = self.idle_since.swap(now, Ordering::Relaxed);
        {
            let mut c = g.lock();
            if !self.released.load(Ordering::Relaxed) {
                if was != BUSY {
                    c.idle.remove(&(was, self.id));
                }
                c.idle.insert((now, self.id), Arc::downgrade(self));
            }
        }
        self.moved.notify_one();
    }

    /// When the connection is closed if nothing moves: for an idle one, from the pressure
    /// on its listener now.
    fn deadline(&self) -> Instant {
        let g = &self.gate;
        let since = self.idle_since.load(Ordering::Relaxed);
        if since == BUSY {
            return g.at(self.deadline_ms.load(Ordering::Relaxed));
        }
        let l = &g.limits;
        let full = if self.served.load(Ordering::Relaxed) {
            l.idle_timeout
        } else {
            l.header_timeout
        };
        g.at(since) + l.under_pressure(full, g.pressure())
    }

    /// The limits of its listener.
    pub fn limits(&self) -> &Limits {
        &self.gate.limits
    }

    /// A PUT body's pause limit now, shortened under pressure like the idle deadlines.
    pub fn body_idle_timeout(&self) -> Duration {
        let g = &self.gate;
        g.limits
            .under_pressure(g.limits.body_idle_timeout, g.pressure())
    }

    /// Drives `conn` (a hyper connection) until it ends, its deadline passes or it is
    /// evicted; dropping it closes it.
    pub async fn watch<F: std::future::Future>(&self, conn: F) {
        tokio::pin!(conn);
        loop {
            if self.evicted.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            let at = self.deadline();
            if at <= now {
                break;
            }
            // Idle: look at the pressure again now and then (it shortens the deadline).
            let wake = if self.idle_since.load(Ordering::Relaxed) == BUSY {
                at
            } else {
                at.min(now + RECHECK)
            };
            tokio::select! {
                _ = conn.as_mut() => break,
                () = self.moved.notified() => {}
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// `resp` with a body that, once sent (or dropped), makes the connection idle again.
    pub fn watched(self: &Arc<Self>, resp: Response<Body>) -> Response<Body> {
        resp.map(|inner| {
            Watched {
                inner,
                conn: self.clone(),
            }
            .boxed()
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.released.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut c = self.gate.lock();
        let since = self.idle_since.load(Ordering::Relaxed);
        if since != BUSY {
            c.idle.remove(&(since, self.id));
        }
        release(&mut c, self.key);
    }
}

/// A listener on `addr` with an accept queue of `backlog` connections (tokio's `bind` asks
/// for 1,024): a burst of reconnecting flooders must not fill it, or a fresh client's SYN is
/// dropped and it waits a second for the retransmission. The kernel caps it at
/// `net.core.somaxconn` (4,096 by default).
pub fn listen(addr: std::net::SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(backlog)
}

/// Accepts connections on `listener` forever and answers them, with the default
/// [`StoreOptions`]; call it inside `tokio::spawn`. The store behind `service` verifies the
/// URLs.
pub async fn serve(listener: TcpListener, service: Arc<Service>, cfg: HttpStoreConfig) {
    serve_with(listener, service, cfg, StoreOptions::default()).await;
}

/// [`serve`] with explicit options.
pub async fn serve_with(
    listener: TcpListener,
    service: Arc<Service>,
    cfg: HttpStoreConfig,
    opts: StoreOptions,
) {
    let gate = Gate::new("http", opts.limits.clone(), log);
    let state = Arc::new(State {
        base_path: dir_path(&cfg.base_url),
        stable_path: cfg.stable_base.as_ref().map(dir_path),
        service,
        cfg,
        opts,
        in_flight: Mutex::new(HashSet::new()),
        gate,
    });
    loop {
        let (stream, conn) = state.gate.accept(&listener).await;
        let state = state.clone();
        tokio::spawn(async move {
            let limits = &state.opts.limits;
            let service = {
                let (state, conn) = (state.clone(), conn.clone());
                hyper::service::service_fn(move |req| {
                    let (state, conn) = (state.clone(), conn.clone());
                    async move { Ok::<_, Infallible>(handle(req, &state, &conn).await) }
                })
            };
            // hyper's own header timer is a backstop: the watcher cuts sooner under pressure.
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout.max(limits.idle_timeout))
                .serve_connection(TokioIo::new(stream), service);
            conn.watch(http).await;
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

/// An answer's body that, once sent (or dropped), gives the connection the keep-alive idle
/// time again.
struct Watched {
    inner: Body,
    conn: Arc<Conn>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.conn.idle();
    }
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

async fn handle(req: Request<Incoming>, st: &State, dog: &Arc<Conn>) -> Response<Body> {
    let _in_flight = InFlightRequest::new();
    let started = Instant::now();
    let limits = &st.opts.limits;
    // Until the handler knows better: a short budget.
    dog.busy_until(started + limits.header_timeout);
    let method = req.method().clone();
    let mut out = route(req, st, dog).await;
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
        "access-control-expose-headers",
        HeaderValue::from_static(CORS_EXPOSE),
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
    dog.watched(out.resp)
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

async fn route(req: Request<Incoming>, st: &State, dog: &Conn) -> Outcome {
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
            return stable_get(st, xmpp_upload::http::request_url(base, req.uri()));
        }
    }
    match method {
        Method::PUT => put(req, st, label, dog).await,
        Method::GET | Method::HEAD => {
            dog.busy_until(Instant::now() + st.opts.limits.get_deadline);
            let (parts, _body) = req.into_parts();
            get(st, &parts, label).await
        }
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
    e.status_code()
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

/// Options that never follow a symlink in the last component.
fn no_follow() -> tokio::fs::OpenOptions {
    let mut o = tokio::fs::OpenOptions::new();
    #[cfg(unix)]
    o.custom_flags(libc::O_NOFOLLOW);
    o
}

/// Whether `dir` is a real directory (not a symlink to one).
async fn is_real_dir(dir: &Path) -> bool {
    tokio::fs::symlink_metadata(dir)
        .await
        .is_ok_and(|m| m.is_dir())
}

/// Reads and discards a refused request's body (up to [`DRAIN_LIMIT`]), so that the client
/// gets to read the answer. Returns whether the connection can be kept.
async fn drain(body: Incoming, declared: Option<u64>, expects_continue: bool) -> bool {
    if expects_continue {
        // The client waits for "100 Continue", which a final answer replaces: nothing to read.
        return false;
    }
    if declared.is_none_or(|d| d > DRAIN_LIMIT) {
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
    parts: &Parts,
    status: StatusCode,
    label: String,
    why: String,
) -> Outcome {
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = xmpp_upload::http::content_length(&parts.headers)
        .ok()
        .flatten();
    let keep = drain(body, declared, expects_continue).await;
    let mut out = Outcome::refuse(status, label, why);
    if !keep {
        out.resp
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

/// The mark that a PUT to one object is in progress; removed when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> InFlight<'a> {
    fn claim(set: &'a Mutex<HashSet<String>>, key: &str) -> Option<Self> {
        let mut s = set.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.insert(key.to_owned()) {
            return None;
        }
        Some(Self {
            set,
            key: key.to_owned(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

async fn put(req: Request<Incoming>, st: &State, label: String, dog: &Conn) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let (parts, body) = req.into_parts();
    let verified = match st.service.storage().verify_put_parts(&parts, now) {
        Ok(v) => v,
        Err(e) => return refuse_put(body, &parts, status_of(&e), label, e.to_string()).await,
    };
    let label: String = verified.key.chars().take(8).collect();
    let Some((dir, file, meta)) = object_paths(&st.cfg.store_dir, &verified.key) else {
        return refuse_put(body, &parts, StatusCode::FORBIDDEN, label, "key".into()).await;
    };
    // One PUT per object: a second one is refused before it streams anything.
    let Some(_in_flight) = InFlight::claim(&st.in_flight, &verified.key) else {
        return refuse_put(
            body,
            &parts,
            StatusCode::CONFLICT,
            label,
            "upload in progress".into(),
        )
        .await;
    };
    if tokio::fs::symlink_metadata(&file).await.is_ok() {
        return refuse_put(body, &parts, StatusCode::CONFLICT, label, "exists".into()).await;
    }
    // The host may refuse a slot issued before its owner's account was removed.
    if let Some(may_store) = HOOKS.get().and_then(|h| h.may_store.as_ref()) {
        if !may_store(verified.owner(), verified.expires).await {
            return refuse_put(body, &parts, StatusCode::FORBIDDEN, label, "revoked".into()).await;
        }
    }
    // The whole upload must be done by the URL's expiry plus a short grace.
    let left = (verified.expires - now)
        .try_into()
        .unwrap_or(Duration::ZERO);
    let deadline = Instant::now() + left + st.opts.limits.put_grace;
    dog.busy_until(deadline + ANSWER_SLACK);
    let stored = tokio::time::timeout_at(
        deadline.into(),
        store(body, &st.cfg.store_dir, &verified, &dir, &file, &meta, dog),
    )
    .await;
    match stored {
        Ok(Ok(bytes)) => {
            if let Some(h) = HOOKS.get() {
                (h.stored)(
                    &verified.key,
                    bytes,
                    verified.content_type.as_deref(),
                    verified.owner().as_ref(),
                );
            }
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::CREATED;
            let mut out = Outcome::new(resp, label);
            out.bytes = bytes;
            out
        }
        Ok(Err((status, why))) => {
            let mut out = Outcome::refuse(status, label, why);
            out.resp
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            out
        }
        Err(_) => {
            // The store future was dropped mid-way: its temporary file goes.
            let mut out = Outcome::refuse(StatusCode::REQUEST_TIMEOUT, label, "past the deadline");
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

/// A temporary file that is removed when dropped, unless it was renamed or linked away
/// (removing the temporary name then is harmless too).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_name(tmp_dir: &Path, suffix: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{}-{nanos:x}-{n}{suffix}", std::process::id()))
}

/// Streams the body into a temporary file, checks it, and links it into place.
async fn store(
    body: Incoming,
    store_dir: &Path,
    v: &VerifiedPut<'_>,
    dir: &Path,
    file: &Path,
    meta: &Path,
    dog: &Conn,
) -> Result<u64, Refusal> {
    let tmp_dir = store_dir.join(TEMP_DIR);
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(|e| io_refusal("temp dir", &e))?;
    if !is_real_dir(&tmp_dir).await {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "temp dir".into()));
    }
    let tmp = TempFile(temp_name(&tmp_dir, ""));
    let bytes = receive(body, &tmp.0, v.body_check(), dog).await?;
    place(&tmp.0, &tmp_dir, dir, file, meta, v.content_type.as_deref()).await?;
    Ok(bytes)
}

async fn receive(
    mut body: Incoming,
    tmp: &Path,
    mut check: BodyCheck,
    dog: &Conn,
) -> Result<u64, Refusal> {
    let f = no_follow()
        .write(true)
        .create_new(true)
        .open(tmp)
        .await
        .map_err(|e| io_refusal("temp file", &e))?;
    let mut out = BufWriter::with_capacity(256 * 1024, f);
    loop {
        // The pause limit shrinks as the listener fills.
        let frame = match tokio::time::timeout(dog.body_idle_timeout(), body.frame()).await {
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
        }
    }
    let bytes = check.seen();
    check.finish().map_err(|e| (status_of(&e), e.to_string()))?;
    out.flush().await.map_err(|e| io_refusal("write", &e))?;
    out.get_ref()
        .sync_all()
        .await
        .map_err(|e| io_refusal("sync", &e))?;
    Ok(bytes)
}

/// Writes the content-type sidecar atomically: a synced temporary file renamed into place,
/// so that a reader (or a full disk) never leaves a partial or empty one behind.
async fn write_sidecar(tmp_dir: &Path, meta: &Path, content_type: &str) -> Result<(), Refusal> {
    let tmp = TempFile(temp_name(tmp_dir, ".meta"));
    let mut f = no_follow()
        .write(true)
        .create_new(true)
        .open(&tmp.0)
        .await
        .map_err(|e| io_refusal("meta", &e))?;
    f.write_all(content_type.as_bytes())
        .await
        .map_err(|e| io_refusal("meta", &e))?;
    // tokio writes in the background: only `flush` reports that write's error (ENOSPC).
    f.flush().await.map_err(|e| io_refusal("meta", &e))?;
    f.sync_all().await.map_err(|e| io_refusal("meta", &e))?;
    drop(f);
    tokio::fs::rename(&tmp.0, meta)
        .await
        .map_err(|e| io_refusal("meta", &e))
}

/// Links the checked temporary file to its final name (never replacing a file), its
/// content-type sidecar first, so that a GET never finds the file without it.
async fn place(
    tmp: &Path,
    tmp_dir: &Path,
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
    if !is_real_dir(dir).await {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "slot dir is not a directory".into(),
        ));
    }
    if let Err(e) = write_sidecar(tmp_dir, meta, content_type.unwrap_or(FALLBACK_TYPE)).await {
        // Nothing of this upload stays: the slot directory goes too if it is empty.
        let _ = tokio::fs::remove_dir(dir).await;
        return Err(e);
    }
    match tokio::fs::hard_link(tmp, file).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err((StatusCode::CONFLICT, "exists".into()))
        }
        Err(e) => {
            // The file is not there: neither is its sidecar.
            let _ = tokio::fs::remove_file(meta).await;
            let _ = tokio::fs::remove_dir(dir).await;
            Err(io_refusal("link", &e))
        }
    }
}

/// Writes `contents` to `dest` (a sidecar such as `{slot id}.owner` in `store_dir`) the way
/// the store writes its own: a new temporary file in `{store_dir}/.tmp`, opened without
/// following symlinks, synced, then renamed over `dest` (a planted symlink there is replaced,
/// never written through). Blocking: for hooks and start-up code.
pub fn write_sidecar_blocking(store_dir: &Path, dest: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp_dir = store_dir.join(TEMP_DIR);
    std::fs::create_dir_all(&tmp_dir)?;
    if !std::fs::symlink_metadata(&tmp_dir).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::other(
            "the temporary directory is not a directory",
        ));
    }
    let tmp = TempFile(temp_name(&tmp_dir, ".side"));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.custom_flags(libc::O_NOFOLLOW);
    let mut f = o.open(&tmp.0)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp.0, dest)
}

async fn read_content_type(meta: &Path) -> HeaderValue {
    use tokio::io::AsyncReadExt as _;
    let fallback = HeaderValue::from_static(FALLBACK_TYPE);
    let Ok(f) = no_follow().read(true).open(meta).await else {
        return fallback;
    };
    let mut raw = Vec::new();
    if f.take(256).read_to_end(&mut raw).await.is_err() || raw.len() > 255 {
        return fallback;
    }
    let ty = String::from_utf8_lossy(&raw);
    let ty = ty.trim();
    if !ty.contains('/') || !ty.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return fallback;
    }
    HeaderValue::from_str(ty).unwrap_or(fallback)
}

/// Whether a file of this type is shown inline under `policy`: the library's rule
/// ([`InlinePolicy`]), under which HTML, SVG, XML and other active types never are.
pub fn is_inline_with(content_type: &str, policy: &InlinePolicy) -> bool {
    policy.disposition(ContentType::new(content_type).ok().as_ref()) == Disposition::Inline
}

/// [`is_inline_with`] the default policy ([`InlinePolicy::default`]): common raster images
/// (not SVG), audio, video and plain text.
pub fn is_inline(content_type: &str) -> bool {
    is_inline_with(content_type, &InlinePolicy::default())
}

const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// An IMF-fixdate (RFC 9110 §5.6.7), to the second.
pub fn http_date(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(HTTP_DATE)
        .unwrap_or_default()
}

/// Parses an IMF-fixdate; the obsolete formats are not accepted (the condition is then
/// ignored, as RFC 9110 allows).
fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s.trim(), HTTP_DATE)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// A strong validator for a stored file: its size and modification time (files never change
/// once stored; a purged and re-created one differs in time).
fn etag_of(m: &std::fs::Metadata) -> String {
    let nanos = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{nanos:x}\"", m.len())
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, RFC 9110 §13.1.2).
fn none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable single range (absent, malformed, several ranges): the whole file, 200.
    Whole,
    /// Bytes `start..=end`, 206.
    Part(u64, u64),
    /// A well-formed range outside the file: 416.
    Unsatisfiable,
}

/// Parses a single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against a length.
/// Several ranges are answered with the whole file, which RFC 9110 §14.2 allows.
pub fn parse_range(header: &str, len: u64) -> RangeAsk {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeAsk::Whole,
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if len == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part(len.saturating_sub(n), len - 1),
        },
        (first, last) => {
            let Some(first) = num(first) else {
                return RangeAsk::Whole;
            };
            let last = if last.is_empty() {
                None
            } else {
                match num(last) {
                    Some(l) if l >= first => Some(l),
                    _ => return RangeAsk::Whole,
                }
            };
            if first >= len {
                return RangeAsk::Unsatisfiable;
            }
            RangeAsk::Part(first, last.map_or(len - 1, |l| l.min(len - 1)))
        }
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn get(st: &State, parts: &Parts, label: String) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let head = parts.method == Method::HEAD;
    let verified = match st.service.storage().verify_get_parts(parts, now) {
        Ok(v) => v,
        Err(e) => return Outcome::refuse(status_of(&e), label, e.to_string()),
    };
    let label: String = verified.key.chars().take(8).collect();
    let Some((dir, path, meta)) = object_paths(&st.cfg.store_dir, &verified.key) else {
        return Outcome::refuse(StatusCode::NOT_FOUND, label, "key");
    };
    // Never through a symlink: not the slot directory, not the file.
    if !is_real_dir(&dir).await {
        return Outcome::refuse(StatusCode::NOT_FOUND, label, "absent");
    }
    let mut file = match no_follow().read(true).open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Outcome::refuse(StatusCode::NOT_FOUND, label, "absent")
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Outcome::refuse(StatusCode::NOT_FOUND, label, "symlink")
        }
        Err(e) => {
            let (s, why) = io_refusal("open", &e);
            return Outcome::refuse(s, label, why);
        }
    };
    let m = match file.metadata().await {
        Ok(m) if m.is_file() => m,
        _ => return Outcome::refuse(StatusCode::NOT_FOUND, label, "absent"),
    };
    let len = m.len();
    let etag = etag_of(&m);
    let modified = m.modified().ok().map(http_date);
    let ty = read_content_type(&meta).await;
    let disposition = st.opts.inline.content_disposition(
        ty.to_str()
            .ok()
            .and_then(|t| ContentType::new(t).ok())
            .as_ref(),
        &verified.filename,
    );
    // Stored files never change: caches may keep them as long as the URL lives.
    let cache = match verified.expires {
        Some(t) => format!("private, max-age={}", (t - now).whole_seconds().max(0)),
        None => "private, max-age=31536000, immutable".to_owned(),
    };
    let mut resp = Response::new(empty());
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = modified
        .as_deref()
        .and_then(|d| HeaderValue::from_str(d).ok())
    {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // Conditional requests (RFC 9110 §13.2.2): If-None-Match wins over If-Modified-Since.
    let not_modified = match header_str(&parts.headers, header::IF_NONE_MATCH) {
        Some(inm) => none_match(inm, &etag),
        None => header_str(&parts.headers, header::IF_MODIFIED_SINCE)
            .and_then(parse_http_date)
            .zip(m.modified().ok().map(OffsetDateTime::from))
            .is_some_and(|(since, mtime)| mtime.unix_timestamp() <= since.unix_timestamp()),
    };
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Outcome::new(resp, label);
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, ty);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // A range applies unless If-Range names another version.
    let range_applies = match header_str(&parts.headers, header::IF_RANGE) {
        None => true,
        Some(ir) if ir.trim_start().starts_with('"') => ir.trim() == etag,
        Some(ir) => parse_http_date(ir)
            .zip(modified.as_deref().and_then(parse_http_date))
            .is_some_and(|(a, b)| a == b),
    };
    let ask = match header_str(&parts.headers, header::RANGE) {
        Some(r) if range_applies => parse_range(r, len),
        _ => RangeAsk::Whole,
    };
    let (start, count) = match ask {
        RangeAsk::Whole => (0, len),
        RangeAsk::Part(a, b) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            (a, b - a + 1)
        }
        RangeAsk::Unsatisfiable => {
            let mut out = Outcome::refuse(StatusCode::RANGE_NOT_SATISFIABLE, label, "range");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                out.resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            out.resp
                .headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return out;
        }
    };
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if !head {
        if start > 0 {
            if let Err(e) = file.seek(io::SeekFrom::Start(start)).await {
                let (s, why) = io_refusal("seek", &e);
                return Outcome::refuse(s, label, why);
            }
        }
        *resp.body_mut() = FileBody::new(file, count).boxed();
    }
    let mut out = Outcome::new(resp, label);
    out.bytes = if head { 0 } else { count };
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

#[cfg(test)]
mod gate_tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_configured_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:3:bbbb::2".parse().unwrap();
        // Per /64 (the default), two /64s of one /48 are two clients …
        assert_ne!(client_key(a, 64), client_key(b, 64));
        assert_eq!(
            client_key(a, 64),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        // … per /48 they are one.
        assert_eq!(client_key(a, 48), client_key(b, 48));
        assert_eq!(client_key(a, 128), a);
        assert_eq!(client_key(a, 0), "::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            client_key(mapped, 48),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        let limits = Limits {
            ipv6_prefix: 48,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let gate = Gate::new("t", limits, |_| {});
        let _one = gate.admit(a).unwrap();
        let _two = gate.admit(b).unwrap();
        assert!(matches!(gate.admit(a), Err(Turned::PerClient)));
    }

    #[test]
    fn deadlines_shrink_towards_the_floor_as_the_listener_fills() {
        let l = Limits {
            max_connections: 100,
            timeout_floor: Duration::from_secs(2),
            ..Limits::default()
        };
        let t = Duration::from_secs(30);
        assert_eq!(l.under_pressure(t, 0), t);
        assert_eq!(l.under_pressure(t, 50), t);
        assert_eq!(l.under_pressure(t, 70), Duration::from_secs(16));
        assert_eq!(l.under_pressure(t, 90), Duration::from_secs(2));
        assert_eq!(l.under_pressure(t, 100), Duration::from_secs(2));
        assert_eq!(l.under_pressure(t, 1000), Duration::from_secs(2));
        // A timeout already below the floor stays.
        assert_eq!(
            l.under_pressure(Duration::from_secs(1), 100),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn connection_caps_fit_the_open_file_limit() {
        let mut l = Limits::default();
        assert!(!l.fit_to_open_files(1 << 20, 16));
        assert_eq!(l.max_connections, 2048);
        // 1,024 files: 64 reserved, 16 for the ops listener, two per connection.
        assert!(l.fit_to_open_files(1024, 16));
        assert_eq!(l.max_connections, 472);
        assert_eq!(l.reserve_from, 354);
        assert_eq!(l.max_connections_per_ip, 32);
        let mut tiny = Limits::default();
        tiny.fit_to_open_files(10, 16);
        assert_eq!(tiny.max_connections, 1);
        assert_eq!(tiny.max_connections_per_ip, 1);
    }

    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn capture(line: std::fmt::Arguments<'_>) {
        LINES.lock().unwrap().push(line.to_string());
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_second_with_a_count() {
        let limits = Limits {
            max_connections: 1,
            max_connections_per_ip: 1,
            reserve_from: 1,
            ..Limits::default()
        };
        let gate = Gate::new("t", limits, capture);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let _held = gate.admit(ip).unwrap();
        for _ in 0..500 {
            if let Err(why) = gate.admit(ip) {
                gate.refusals.note(why);
            }
        }
        gate.refusals
            .note(Turned::AcceptError(io::ErrorKind::Other));
        {
            let lines = LINES.lock().unwrap();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(lines[0].contains("refused 1 connections"), "{lines:?}");
        }
        std::thread::sleep(Duration::from_millis(1100));
        gate.refusals.note(Turned::Full);
        let lines = LINES.lock().unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        // The 499 suppressed refusals and the accept error are counted in the next line.
        assert!(lines[1].contains("refused 500 connections"), "{lines:?}");
        assert!(lines[1].contains("accept failed 1 times"), "{lines:?}");
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 3,
            reserve_from: 3,
            ..Limits::default()
        };
        let gate = Gate::new("t", limits, |_| {});
        let ip = |n: u8| IpAddr::from([127, 0, 0, n]);
        let a = gate.admit(ip(2)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = gate.admit(ip(3)).unwrap();
        let c = gate.admit(ip(4)).unwrap();
        // `b` is busy with a request: not evictable. `a` idles longest.
        b.busy_until(Instant::now() + Duration::from_secs(60));
        let d = gate.admit(ip(5)).unwrap();
        assert!(a.evicted.load(Ordering::Relaxed));
        assert_eq!(gate.open(), 3);
        let e = gate.admit(ip(6)).unwrap();
        assert!(c.evicted.load(Ordering::Relaxed));
        assert!(!b.evicted.load(Ordering::Relaxed));
        // Only busy ones left besides the newest idle ones: `d`, then `e`.
        d.busy_until(Instant::now() + Duration::from_secs(60));
        e.busy_until(Instant::now() + Duration::from_secs(60));
        assert!(matches!(gate.admit(ip(7)), Err(Turned::Full)));
        drop((a, c));
        assert_eq!(gate.open(), 3);
        drop((b, d, e));
        assert_eq!(gate.open(), 0);
    }
}
