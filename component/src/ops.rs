//! The component's operations endpoint, on its own listener (keep it on loopback or an
//! internal network, never behind the public TLS proxy):
//!
//! * `GET /healthz`: 200 `ok` while the XMPP session is up, 503 `xmpp offline` otherwise.
//! * `GET /metrics`: the counters in the Prometheus text format.
//! * `DELETE /admin/users/{bare JID}/files` with `Authorization: Bearer {admin token}`:
//!   deletes every file of that user (account removal), answering `deleted N of M`. Without
//!   an admin token configured, 404.
//!
//! And, for S3 with stable links, a tiny public server answering `GET`/`HEAD` below the
//! stable-link base with a 302 to a fresh presigned URL ([`serve_stable_links`]).
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use jid::BareJid;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use url::Url;
use xmpp_upload::{SlotError, SlotService, StorageBackend};

use super::config::Secret;
use super::metrics::Metrics;
use super::retention::Retention;

pub struct Ops {
    pub metrics: Arc<Metrics>,
    pub retention: Option<Arc<Retention>>,
    pub admin_token: Option<Secret>,
    pub xmpp_online: Arc<AtomicBool>,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Constant-time comparison of the presented token with the configured one.
fn token_ok(req: &Request<Incoming>, token: &Secret) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    let want = token.bytes();
    if given.len() != want.len() {
        return false;
    }
    given
        .iter()
        .zip(want)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
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
            let mut gauges = Vec::new();
            if let Some(r) = &ops.retention {
                if let Some(Ok(files)) = r.records.inventory().map(|i| i.oldest(usize::MAX)) {
                    let bytes = files.iter().map(|f| f.size).fold(0u64, u64::saturating_add);
                    gauges.push((
                        "xmpp_upload_stored_files",
                        "Files in the inventory.",
                        files.len() as u64,
                    ));
                    gauges.push(("xmpp_upload_stored_bytes", "Bytes in the inventory.", bytes));
                }
                gauges.push((
                    "xmpp_upload_pending_uploads",
                    "Slots issued whose upload has not been seen yet.",
                    r.pending.len() as u64,
                ));
            }
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

/// Serves the operations endpoint until the task is aborted.
pub async fn serve_ops(listener: TcpListener, ops: Arc<Ops>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let ops = ops.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let ops = ops.clone();
                async move { Ok::<_, Infallible>(answer(req, &ops).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// For S3 with stable links: answers `GET`/`HEAD` below `stable_base` with a 302 to a fresh
/// presigned URL, everything else with 404. Logs method, status and route, never the link
/// (its file ID resolves the file).
pub async fn serve_stable_links<S: StorageBackend + 'static>(
    listener: TcpListener,
    service: Arc<SlotService<S>>,
    stable_base: Url,
    metrics: Arc<Metrics>,
) {
    let stable_path = stable_base.path().to_owned();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (service, base, path, metrics) = (
            service.clone(),
            stable_base.clone(),
            stable_path.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (service, base, path, metrics) =
                    (service.clone(), base.clone(), path.clone(), metrics.clone());
                async move {
                    let resp = stable(&req, &service, &base, &path);
                    let status = resp.status().as_u16();
                    metrics.http(status);
                    tracing::info!("http: {} stable link {status}", req.method());
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn stable<S: StorageBackend>(
    req: &Request<Incoming>,
    service: &SlotService<S>,
    base: &Url,
    stable_path: &str,
) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        || !req.uri().path().starts_with(stable_path)
    {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let mut url = base.clone();
    url.set_path(req.uri().path());
    match service.resolve_stable_get(&url, OffsetDateTime::now_utc()) {
        Ok(target) => match HeaderValue::from_str(target.as_str()) {
            Ok(v) => {
                let mut r = text(StatusCode::FOUND, "");
                r.headers_mut().insert(header::LOCATION, v);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "location\n"),
        },
        Err(SlotError::ExpiredFileId) => text(StatusCode::GONE, "gone\n"),
        Err(SlotError::Forbidden) => text(StatusCode::FORBIDDEN, "forbidden\n"),
        Err(SlotError::UnknownFileId | SlotError::Disabled) => {
            text(StatusCode::NOT_FOUND, "not found\n")
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "error\n"),
    }
}
