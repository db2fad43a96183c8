//! S3 stable links: `GET`/`HEAD` below `service.stable_links`' base answered with a 302 to a
//! fresh presigned URL (the file ID in the link resolves the object), on the `[http]` listener
//! with the same caps and deadlines as the local store.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use url::Url;
use xmpp_upload::{SlotError, SlotService, StorageBackend};

use crate::http_store::{Gate, Limits};
use crate::metrics::Metrics;
use crate::ops::{boxed, log_warn, text};

/// For S3 with stable links: answers `GET`/`HEAD` below `stable_base` with a 302 to a fresh
/// presigned URL, everything else with 404, within `limits` (the `[http]` caps and
/// deadlines, like the local store's). Logs method, status and route, never the link (its
/// file ID resolves the file).
pub async fn serve<S: StorageBackend + 'static>(
    listener: TcpListener,
    service: Arc<SlotService<S>>,
    stable_base: Url,
    metrics: Arc<Metrics>,
    limits: Limits,
) {
    let stable_path = stable_base.path().to_owned();
    let gate = Gate::new("http", limits, log_warn);
    loop {
        let (stream, conn) = gate.accept(&listener).await;
        let (service, base, path, metrics) = (
            service.clone(),
            stable_base.clone(),
            stable_path.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            let header_timeout = conn.limits().header_timeout;
            let svc = {
                let conn = conn.clone();
                hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (service, base, path, metrics, conn) = (
                        service.clone(),
                        base.clone(),
                        path.clone(),
                        metrics.clone(),
                        conn.clone(),
                    );
                    async move {
                        conn.busy_until(std::time::Instant::now() + header_timeout);
                        let resp = stable(&req, &service, &base, &path);
                        let status = resp.status().as_u16();
                        metrics.http(status);
                        tracing::info!("http: {} stable link {status}", req.method());
                        Ok::<_, Infallible>(conn.watched(boxed(resp)))
                    }
                })
            };
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            conn.watch(http).await;
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
