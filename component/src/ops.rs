//! The component's operations endpoint, on its own listener (keep it on loopback or an
//! internal network, never behind the public TLS proxy):
//!
//! * `GET /healthz`: 200 `ok` while the XMPP session is up, 503 `xmpp offline` otherwise.
//! * `GET /metrics`: the counters in the Prometheus text format.
//! * `DELETE /admin/users/{bare JID}/files` with `Authorization: Bearer {admin token}`:
//!   deletes every file of that user (account removal), answering `deleted N of M`. Without
//!   an admin token configured, 404.
//!
//! The S3 stable links have their own public listener: [`crate::stable_links`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use jid::BareJid;
use tokio::net::TcpListener;

use super::config::Secret;
use super::http_store::{Body, Gate, Limits};
use super::metrics::Metrics;
use super::retention::Retention;

pub struct Ops {
    pub metrics: Arc<Metrics>,
    pub retention: Option<Arc<Retention>>,
    pub admin_token: Option<Secret>,
    pub xmpp_online: Arc<AtomicBool>,
}

pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether the request presents the configured token.
fn token_ok(req: &Request<Incoming>, token: &Secret) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    tokens_match(given, token.bytes())
}

/// Compares the SHA-256 digests of both tokens in constant time: the time taken depends on
/// neither where they differ nor on the configured token's length (a length check first
/// would tell an attacker the length).
pub fn tokens_match(given: &[u8], want: &[u8]) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    let (a, b) = (sha2::Sha256::digest(given), sha2::Sha256::digest(want));
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The inventory gauges for `/metrics`: the inventory's running totals (never a copy of
/// the inventory), and the slots waiting for their upload.
fn retention_gauges(r: &Retention) -> Vec<(&'static str, &'static str, u64)> {
    let mut gauges = Vec::new();
    if let Some(Ok((files, bytes))) = r.records.inventory().map(|i| i.totals()) {
        gauges.push(("xmpp_upload_stored_files", "Files in the inventory.", files));
        gauges.push(("xmpp_upload_stored_bytes", "Bytes in the inventory.", bytes));
    }
    gauges.push((
        "xmpp_upload_pending_uploads",
        "Slots issued whose upload has not been seen yet.",
        r.pending.len() as u64,
    ));
    gauges
}

async fn answer(req: Request<Incoming>, ops: &Ops) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET | &Method::HEAD, "/healthz") => {
            if ops.xmpp_online.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ok\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "xmpp offline\n")
            }
        }
        (&Method::GET, "/metrics") => {
            let gauges = ops
                .retention
                .as_deref()
                .map(retention_gauges)
                .unwrap_or_default();
            let mut r = text(StatusCode::OK, ops.metrics.render(&gauges));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (m, p) if p.starts_with("/admin/") => {
            let Some(token) = &ops.admin_token else {
                return text(StatusCode::NOT_FOUND, "not found\n");
            };
            if !token_ok(&req, token) {
                tracing::warn!("ops: admin request refused (bad or missing token)");
                return text(StatusCode::UNAUTHORIZED, "unauthorized\n");
            }
            let user = p
                .strip_prefix("/admin/users/")
                .and_then(|r| r.strip_suffix("/files"))
                .map(|u| {
                    percent_encoding::percent_decode_str(u)
                        .decode_utf8_lossy()
                        .into_owned()
                });
            match (m, user) {
                (&Method::DELETE, Some(u)) => {
                    let Ok(owner) = u.parse::<BareJid>() else {
                        return text(StatusCode::BAD_REQUEST, "not a bare JID\n");
                    };
                    let Some(r) = &ops.retention else {
                        return text(StatusCode::CONFLICT, "this storage keeps no record\n");
                    };
                    match r.remove_account(&owner).await {
                        Ok((done, of)) => {
                            tracing::info!(
                                "ops: account removal of {owner}: {done} of {of} files deleted"
                            );
                            let status = if done == of {
                                StatusCode::OK
                            } else {
                                StatusCode::INTERNAL_SERVER_ERROR
                            };
                            text(status, format!("deleted {done} of {of}\n"))
                        }
                        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
                    }
                }
                _ => text(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The limits of the operations listener: its own small cap (16 connections by default),
/// which floods of the public listener cannot take, with short deadlines; at the cap a new
/// connection closes the longest-idle one, so a probe always gets in.
pub fn ops_limits(max_connections: usize) -> Limits {
    // No per-client cap or headroom: its clients (a monitor, a scraper) share one address.
    Limits {
        max_connections: max_connections.max(1),
        max_connections_per_ip: usize::MAX,
        reserve_from: usize::MAX,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        timeout_floor: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// How long one ops request may take (account removal deletes files; the rest is instant).
const REQUEST_BUDGET: Duration = Duration::from_secs(600);

pub(crate) fn log_warn(line: std::fmt::Arguments<'_>) {
    tracing::warn!("{line}");
}

pub(crate) fn boxed(r: Response<Full<Bytes>>) -> Response<Body> {
    r.map(|b| b.map_err(|never| match never {}).boxed())
}

/// Serves the operations endpoint until the task is aborted, within `limits`
/// ([`ops_limits`]).
pub async fn serve_ops(listener: TcpListener, ops: Arc<Ops>, limits: Limits) {
    let gate = Gate::new("ops", limits, log_warn);
    loop {
        let (stream, conn) = gate.accept(&listener).await;
        let ops = ops.clone();
        tokio::spawn(async move {
            let svc = {
                let conn = conn.clone();
                hyper::service::service_fn(move |req| {
                    let (ops, conn) = (ops.clone(), conn.clone());
                    async move {
                        conn.busy_until(std::time::Instant::now() + REQUEST_BUDGET);
                        Ok::<_, Infallible>(conn.watched(boxed(answer(req, &ops).await)))
                    }
                })
            };
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), svc);
            conn.watch(http).await;
        });
    }
}

/// Raises the soft limit on open files to the hard one (the common soft limit, 1,024, is
/// far below what a busy listener needs) and returns the soft limit now in force, or `None`
/// where it cannot be read. Through the `rlimit` crate: a safe wrapper of
/// getrlimit/setrlimit, as this crate forbids unsafe code.
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft < hard {
        match rlimit::Resource::NOFILE.set(hard, hard) {
            Ok(()) => {
                tracing::info!("limits: open files raised from {soft} to {hard}");
                return Some(hard);
            }
            Err(e) => tracing::warn!("limits: cannot raise open files from {soft} to {hard}: {e}"),
        }
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use xmpp_upload::service::{Inventory as _, RetentionPolicy, StoredFile};

    use super::*;
    use crate::retention::{Objects, Records};

    /// The fastest of `n` runs of `f`.
    fn fastest(n: usize, mut f: impl FnMut()) -> Duration {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    #[test]
    fn token_comparison_time_does_not_reveal_the_length() {
        assert!(tokens_match(b"s3cret-token", b"s3cret-token"));
        assert!(!tokens_match(b"s3cret-token", b"s3cret-tokeN"));
        assert!(!tokens_match(b"s3cret-toke", b"s3cret-token"));
        assert!(!tokens_match(b"", b"s3cret-token"));
        // A long token, so that the work of comparing shows: guessing the right length must
        // not take measurably longer than a wrong one (a length check first returned at once
        // for the wrong length and compared every byte for the right one).
        let want = vec![b'a'; 256 * 1024];
        let right_len = vec![b'b'; want.len()];
        let wrong_len = vec![b'b'; want.len() - 1];
        let same = fastest(15, || assert!(!tokens_match(&right_len, &want)));
        let other = fastest(15, || assert!(!tokens_match(&wrong_len, &want)));
        let ratio = same.as_secs_f64() / other.as_secs_f64().max(1e-9);
        assert!(
            (0.5..2.0).contains(&ratio),
            "right length {same:?}, wrong length {other:?}"
        );
    }

    #[test]
    fn metrics_read_running_totals_not_a_copy_of_the_inventory() {
        let records = Records::memory();
        let inventory = records.inventory().unwrap();
        let owner: BareJid = "romeo@example.org".parse().unwrap();
        let t0 = time::OffsetDateTime::now_utc();
        let n = 100_000u64;
        for i in 0..n {
            let key = format!("{i:032x}/f");
            let file = StoredFile::new(owner.clone(), key, 10, t0);
            inventory.record(file).unwrap();
        }
        let r = Retention {
            pending: records.pending(),
            records,
            objects: Objects::External,
            policy: RetentionPolicy::new(),
            metrics: Arc::new(Metrics::default()),
            fallback_owner: owner.clone(),
            put_ttl: time::Duration::seconds(300),
            orphan_grace: time::Duration::days(1),
            started: t0,
        };
        let gauges = retention_gauges(&r);
        assert!(gauges.contains(&("xmpp_upload_stored_files", "Files in the inventory.", n)));
        assert!(gauges.contains(&(
            "xmpp_upload_stored_bytes",
            "Bytes in the inventory.",
            10 * n
        )));
        // Copying 100,000 records per scrape took tens of milliseconds; totals take none.
        let t = fastest(5, || {
            let _ = retention_gauges(&r);
        });
        assert!(t < Duration::from_millis(2), "a scrape took {t:?}");
    }
}
