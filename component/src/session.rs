//! The XMPP side: the XEP-0114 session, its keep-alive, and the answer to each stanza.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use minidom::Element;
use time::OffsetDateTime;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Component, Stanza};
use xmpp_upload::service::{Begin, Outcome};
use xmpp_upload::stanza::iq::{Iq, IqType};
use xmpp_upload::{SlotService, StorageBackend};

use crate::app::Common;
use crate::metrics::Metrics;
use crate::pg_state;
use crate::retention::{self, PendingUpload, Retention};
use crate::stanza_guard::{self, GuardedConnector};

pub(crate) async fn xmpp_loop<S: StorageBackend>(
    common: &Common,
    service: &SlotService<S>,
    retention: Option<&Retention>,
) -> Result<(), String> {
    let cfg = &common.cfg;
    let jid = &common.jid;
    let secret = common.component_secret.text()?;
    let ping_to = cfg.xmpp.ping_to.clone().unwrap_or_else(|| {
        let domain = jid.domain().as_str();
        domain
            .split_once('.')
            .map_or(domain, |(_, parent)| parent)
            .to_owned()
    });
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let connector = GuardedConnector {
        dns: DnsConfig::addr(&cfg.xmpp.server),
        limits: stanza_guard::Limits {
            max_depth: cfg.xmpp.max_stanza_depth,
            max_bytes: cfg.xmpp.max_stanza_bytes,
        },
        dropped: dropped.clone(),
    };
    // An S3 PUT started before its URL expired may still be running: checked 30 s later.
    let put_window = Duration::from_secs(cfg.service.put_ttl_secs.saturating_add(30));
    let mut shutdown = Box::pin(shutdown_signal());
    let mut backoff = Duration::from_secs(1);
    let jid_text = jid.to_string();
    loop {
        let connect =
            Component::new_with_connector(&jid_text, &secret, connector.clone(), timeouts());
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(20), connect) => c,
            () = &mut shutdown => return Ok(()),
        };
        match connected {
            Ok(Ok(component)) => {
                tracing::info!("xmpp: online as {} via {}", component.jid, cfg.xmpp.server);
                common.metrics.xmpp_connects.fetch_add(1, Ordering::Relaxed);
                common.online.store(true, Ordering::Relaxed);
                backoff = Duration::from_secs(1);
                let since = Instant::now();
                let ctx = Session {
                    service,
                    charger: retention.and_then(|r| r.records.async_charge()),
                    retention,
                    metrics: &common.metrics,
                    ping_to: &ping_to,
                    put_window,
                    dropped: &dropped,
                };
                let end = session(component, &ctx, &mut shutdown).await;
                common.online.store(false, Ordering::Relaxed);
                match end {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost => tracing::warn!("xmpp: connection lost; reconnecting"),
                }
                // tokio-xmpp 6 also ends the stream on a stanza it cannot parse (any user can
                // send one): reconnect at once, with a pause only when sessions die at once.
                if since.elapsed() < Duration::from_secs(1) {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                }
                continue;
            }
            Ok(Err(e)) => tracing::warn!(
                "xmpp: cannot connect to {}: {e}; retrying in {}s",
                cfg.xmpp.server,
                backoff.as_secs()
            ),
            Err(_) => tracing::warn!(
                "xmpp: connecting to {} timed out; retrying in {}s",
                cfg.xmpp.server,
                backoff.as_secs()
            ),
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
    tracing::info!("xmpp-upload-component: stopping");
}

enum SessionEnd {
    Shutdown,
    Lost,
}

struct Session<'a, S> {
    service: &'a SlotService<S>,
    charger: Option<Arc<dyn retention::AsyncCharge>>,
    retention: Option<&'a Retention>,
    metrics: &'a Metrics,
    ping_to: &'a str,
    put_window: Duration,
    dropped: &'a std::sync::atomic::AtomicU64,
}

async fn session<S: StorageBackend>(
    mut component: Component<GuardedConnector>,
    ctx: &Session<'_, S>,
    shutdown: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
) -> SessionEnd {
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let me = component.jid.to_string();
    let mut pings = 0u64;
    let mut dropped_seen = ctx.dropped.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            stanza = component.next() => {
                // tokio-xmpp ends the stream on I/O errors and on stanzas it cannot parse; the
                // connection is then dropped and made anew.
                let Some(stanza) = stanza else { return SessionEnd::Lost };
                let now_dropped = ctx.dropped.load(Ordering::Relaxed);
                if now_dropped != dropped_seen {
                    ctx.metrics
                        .stanzas_dropped
                        .fetch_add(now_dropped - dropped_seen, Ordering::Relaxed);
                    dropped_seen = now_dropped;
                }
                let request = Element::from(stanza);
                let Some(reply) = answer(&request, ctx, &me).await else { continue };
                match Stanza::try_from(reply) {
                    Ok(reply) => {
                        if let Err(e) = component.send_stanza(reply).await {
                            tracing::warn!("xmpp: send failed: {e}");
                            return SessionEnd::Lost;
                        }
                    }
                    Err(e) => tracing::warn!("xmpp: reply not sendable: {e}"),
                }
            }
            _ = keepalive.tick() => {
                pings += 1;
                let ping = format!(
                    "<iq xmlns='{}' type='get' id='keepalive-{pings}' from='{me}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
                    xmpp_upload::ns::COMPONENT_ACCEPT,
                    ctx.ping_to
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

/// The reply to one stanza, with its log line and counters.
async fn answer<S: StorageBackend>(
    request: &Element,
    ctx: &Session<'_, S>,
    me: &str,
) -> Option<Element> {
    if let Some(d) = request.get_child("dropped", stanza_guard::DROPPED_NS) {
        let from = request.attr("from").unwrap_or("-");
        tracing::warn!(
            "xmpp: dropped a {} from {} ({} over the limit)",
            request.name(),
            clean(from),
            d.attr("reason").unwrap_or("-")
        );
        return policy_violation(request);
    }
    let now = OffsetDateTime::now_utc();
    // [database] kind = "postgres": the charge and the file record in one statement of the
    // shared database, on the two-phase path (pg_state::answer).
    let pg = ctx.retention.and_then(|r| r.records.pg());
    let answer = match (pg, ctx.charger.as_deref()) {
        (Some(pg), _) => pg_state::answer(ctx.service, pg, request, now).await,
        // Quotas in the service (its MemoryLedger and inventory): the simple path.
        (None, None) => ctx.service.process(request, now),
        // Quotas in the host's own store: the two-phase path, awaited here.
        (None, Some(charger)) => match ctx.service.begin(request, now) {
            Begin::Done(answer) => answer,
            Begin::Charge(pending) => {
                let result = charger.charge(pending.charge()).await;
                pending.complete(result)
            }
        },
    };
    ctx.metrics.outcome(&answer.outcome);
    match &answer.outcome {
        Outcome::Issued(info) => {
            tracing::info!("xmpp: {}", answer.outcome);
            if let Some(r) = ctx.retention {
                r.pending.insert(
                    info.object_key.clone(),
                    PendingUpload {
                        owner: info.requester.to_bare(),
                        size: info.size,
                        content_type: info.content_type.clone(),
                        issued: OffsetDateTime::now_utc(),
                        until: Instant::now() + ctx.put_window,
                    },
                );
            }
        }
        Outcome::Resolved { .. } | Outcome::Refused { .. } => {
            tracing::info!("xmpp: {}", answer.outcome);
        }
        Outcome::NotForThisService => return other_iq(request, me),
        _ => tracing::debug!("xmpp: {}", answer.outcome),
    }
    answer.reply
}

/// `policy-violation` for an IQ get/set the guard cut out (RFC 6120 §8.3.3.12).
fn policy_violation(request: &Element) -> Option<Element> {
    let iq = Iq::parse(request)?.ok()?;
    if !matches!(iq.type_, IqType::Get | IqType::Set) {
        return None;
    }
    let mut reply = xmpp_upload::stanza::iq::service_unavailable(request)?;
    // Same shape as service-unavailable, with the condition replaced.
    for e in reply.children_mut() {
        if e.name() == "error" {
            let err = format!(
                "<error xmlns='{}' type='modify'><policy-violation xmlns='{}'/></error>",
                e.ns(),
                xmpp_upload::ns::XMPP_STANZAS
            );
            if let Ok(err) = err.parse::<Element>() {
                *e = err;
            }
        }
    }
    Some(reply)
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
