//! The XMPP side: the XEP-0114 session, its keep-alive, and the answers to its stanzas.
//!
//! The login is done here on tokio-xmpp's public xmlstream API, and stanzas are read as plain
//! elements: tokio-xmpp's own `Component` stream ends the session on any stanza xmpp-parsers
//! rejects (a `<priority>` of 128, a `<show>` it does not know, two `<thread/>`s, …), which any
//! user can send. Here a stanza that is well-formed but invalid is counted and dropped (an IQ
//! get or set is answered `bad-request`); only an I/O error, the server's stream error or its
//! stream end ends a session. What is not well-formed for rxml never arrives: the byte-level
//! [`stanza_guard`] cuts it out first.
//!
//! Requests are answered concurrently: up to `[xmpp] max_in_flight` at once (then the session
//! stops reading and the server holds the rest), at most `max_in_flight_per_user` of one bare
//! JID (more are answered `wait`/`resource-constraint` at once), each within
//! `[database] statement_timeout_ms` (else `wait`/`internal-server-error`). Replies go out as
//! they are ready, in any order (IQ replies are matched by id). On SIGTERM the session stops
//! reading, finishes what is in flight (within `[http] shutdown_grace_secs`) and closes the
//! stream.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use minidom::Element;
use time::OffsetDateTime;
use tokio::io::BufStream;
use tokio_xmpp::connect::{DnsConfig, ServerConnector as _};
use tokio_xmpp::parsers::component::Handshake;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::{ReadError, Timeouts, XmlStream};
use xmpp_upload::service::{Begin, Outcome};
use xmpp_upload::stanza::iq::{Iq, IqType};
use xmpp_upload::{SlotService, StorageBackend};

use crate::app::Common;
use crate::metrics::Metrics;
use crate::pg_state;
use crate::retention::{self, PendingUpload, Retention};
use crate::stanza_guard::{self, Guarded, GuardedConnector};

/// The component's XML stream, read as plain elements.
type Xml = XmlStream<BufStream<Guarded>, Element>;

const STREAM_NS: &str = "http://etherx.jabber.org/streams";

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
    let settings = Settings {
        connector: GuardedConnector {
            dns: DnsConfig::addr(&cfg.xmpp.server),
            limits: stanza_guard::Limits {
                max_depth: cfg.xmpp.max_stanza_depth,
                max_bytes: cfg.xmpp.max_stanza_bytes,
            },
            dropped: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        },
        jid: jid.clone(),
        secret,
        server: cfg.xmpp.server.clone(),
        max_in_flight: cfg.xmpp.max_in_flight.max(1),
        max_in_flight_per_user: cfg.xmpp.max_in_flight_per_user.max(1),
        grace: Duration::from_secs(cfg.http.shutdown_grace_secs),
        keepalive: KEEPALIVE,
        timeouts: timeouts(),
    };
    let ctx = Session {
        service,
        charger: retention.and_then(|r| r.records.async_charge()),
        retention,
        metrics: &common.metrics,
        me: jid.to_string(),
        ping_to,
        // An S3 PUT started before its URL expired may still be running: checked 30 s later.
        put_window: Duration::from_secs(cfg.service.put_ttl_secs.saturating_add(30)),
        answer_timeout: cfg.database.statement_timeout(),
    };
    run(&settings, &ctx, &common.online, shutdown_signal()).await
}

/// How to reach the server and how much to take on.
pub(crate) struct Settings {
    pub(crate) connector: GuardedConnector,
    pub(crate) jid: jid::Jid,
    pub(crate) secret: String,
    /// For the logs.
    pub(crate) server: String,
    pub(crate) max_in_flight: usize,
    pub(crate) max_in_flight_per_user: usize,
    /// How long requests in flight may take to finish at shutdown.
    pub(crate) grace: Duration,
    pub(crate) keepalive: Duration,
    pub(crate) timeouts: Timeouts,
}

/// What answering needs.
pub(crate) struct Session<'a, S> {
    pub(crate) service: &'a SlotService<S>,
    pub(crate) charger: Option<Arc<dyn retention::AsyncCharge>>,
    pub(crate) retention: Option<&'a Retention>,
    pub(crate) metrics: &'a Metrics,
    /// The component's JID.
    pub(crate) me: String,
    pub(crate) ping_to: String,
    pub(crate) put_window: Duration,
    /// The longest one answer may take (`[database] statement_timeout_ms`).
    pub(crate) answer_timeout: Duration,
}

/// Connects, logs in and serves, reconnecting with a backoff, until `shutdown` completes.
pub(crate) async fn run<S: StorageBackend>(
    set: &Settings,
    ctx: &Session<'_, S>,
    online: &AtomicBool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let shutdown = shutdown.fuse();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_secs(1);
    loop {
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(20), login(set)) => c,
            () = &mut shutdown => return Ok(()),
        };
        match connected {
            Ok(Ok(xml)) => {
                tracing::info!("xmpp: online as {} via {}", set.jid, set.server);
                ctx.metrics.xmpp_connects.fetch_add(1, Ordering::Relaxed);
                online.store(true, Ordering::Relaxed);
                backoff = Duration::from_secs(1);
                let since = Instant::now();
                let end = session(xml, set, ctx, shutdown.as_mut()).await;
                online.store(false, Ordering::Relaxed);
                match end {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost => tracing::warn!("xmpp: connection lost; reconnecting"),
                }
                // Reconnect at once, with a pause only when sessions die at once.
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
                set.server,
                backoff.as_secs()
            ),
            Err(_) => tracing::warn!(
                "xmpp: connecting to {} timed out; retrying in {}s",
                set.server,
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

/// XEP-0114: the stream header, the handshake (SHA-1 of stream id and secret), the server's
/// empty `<handshake/>`. Errors never hold the secret.
async fn login(set: &Settings) -> Result<Xml, String> {
    let (mut pending, _) = set
        .connector
        .connect(&set.jid, tokio_xmpp::parsers::ns::COMPONENT, set.timeouts)
        .await
        .map_err(|e| e.to_string())?;
    let header = pending.take_header();
    let id = header
        .id
        .ok_or("the server sent no stream id")?
        .into_owned();
    let mut xml: Xml = pending.skip_features::<Element>();
    let handshake = Handshake::from_stream_id_and_password(id, &set.secret);
    xml.send(&handshake).await.map_err(|e| e.to_string())?;
    loop {
        match xml.next().await {
            Some(Ok(e)) if e.is("handshake", tokio_xmpp::parsers::ns::COMPONENT) => return Ok(xml),
            Some(Ok(e)) if e.is("error", STREAM_NS) => {
                let condition = e.children().next().map_or("-", |c| c.name());
                return Err(format!(
                    "the server refused the login ({})",
                    clean(condition)
                ));
            }
            Some(Ok(e)) => {
                return Err(format!(
                    "unexpected <{}/> before the handshake was accepted",
                    clean(e.name())
                ))
            }
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::ParseError(e))) => {
                return Err(format!("parse error: {}", clean(&e.to_string())))
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the server closed the stream".into()),
        }
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

/// A reply is written within this, or the connection is taken as lost.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

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

/// An answer done: whose it was and what to send.
struct Finished {
    user: String,
    reply: Option<Element>,
}

type InFlight<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = Finished> + Send + 'a>>>;

/// What to do with one element read.
enum Incoming {
    Nothing,
    Reply(Element),
    Answer { request: Element, user: String },
    End,
}

async fn send(xml: &mut Xml, e: &Element) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, xml.send(e)).await,
        Ok(Ok(()))
    )
}

async fn session<S: StorageBackend>(
    mut xml: Xml,
    set: &Settings,
    ctx: &Session<'_, S>,
    mut shutdown: Pin<&mut futures_util::future::Fuse<impl Future<Output = ()>>>,
) -> SessionEnd {
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + set.keepalive, set.keepalive);
    let mut pings = 0u64;
    let mut dropped_seen = set.connector.dropped.load(Ordering::Relaxed);
    let mut in_flight: InFlight<'_> = FuturesUnordered::new();
    let mut users: HashMap<String, usize> = HashMap::new();
    // Set at shutdown: reading stops, the answers in flight finish until this deadline.
    let mut stopping: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let lost = |stopping: bool| {
        if stopping {
            SessionEnd::Shutdown
        } else {
            SessionEnd::Lost
        }
    };
    loop {
        if stopping.is_some() && in_flight.is_empty() {
            close(&mut xml).await;
            return SessionEnd::Shutdown;
        }
        let reading = stopping.is_none() && in_flight.len() < set.max_in_flight;
        tokio::select! {
            biased;
            () = &mut shutdown, if stopping.is_none() => {
                if !in_flight.is_empty() {
                    tracing::info!(
                        "xmpp: finishing {} requests in flight (at most {}s)",
                        in_flight.len(),
                        set.grace.as_secs()
                    );
                }
                stopping = Some(Box::pin(tokio::time::sleep(set.grace)));
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                ctx.metrics.requests_in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Some(n) = users.get_mut(&done.user) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        users.remove(&done.user);
                    }
                }
                if let Some(reply) = done.reply {
                    if !send(&mut xml, &reply).await {
                        tracing::warn!("xmpp: sending a reply failed");
                        abandon(ctx, &in_flight);
                        return lost(stopping.is_some());
                    }
                }
            }
            () = until(&mut stopping), if stopping.is_some() => {
                tracing::warn!(
                    "xmpp: {} requests still in flight after {}s; closing",
                    in_flight.len(),
                    set.grace.as_secs()
                );
                abandon(ctx, &in_flight);
                close(&mut xml).await;
                return SessionEnd::Shutdown;
            }
            read = xml.next(), if reading => {
                let now_dropped = set.connector.dropped.load(Ordering::Relaxed);
                if now_dropped != dropped_seen {
                    ctx.metrics
                        .stanzas_dropped
                        .fetch_add(now_dropped.wrapping_sub(dropped_seen), Ordering::Relaxed);
                    dropped_seen = now_dropped;
                }
                let element = match read {
                    Some(Ok(e)) => e,
                    Some(Err(ReadError::SoftTimeout)) => continue,
                    Some(Err(ReadError::ParseError(e))) => {
                        ctx.metrics.stanzas_invalid.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("xmpp: dropped a stanza: {}", clean(&e.to_string()));
                        continue;
                    }
                    Some(Err(ReadError::StreamFooterReceived)) | None => {
                        tracing::warn!("xmpp: the server closed the stream");
                        abandon(ctx, &in_flight);
                        return SessionEnd::Lost;
                    }
                    Some(Err(ReadError::HardError(e))) => {
                        tracing::warn!("xmpp: read failed: {e}");
                        abandon(ctx, &in_flight);
                        return SessionEnd::Lost;
                    }
                };
                match incoming(element, ctx, &mut users, set.max_in_flight_per_user) {
                    Incoming::Nothing => {}
                    Incoming::Reply(reply) => {
                        if !send(&mut xml, &reply).await {
                            tracing::warn!("xmpp: sending a reply failed");
                            abandon(ctx, &in_flight);
                            return SessionEnd::Lost;
                        }
                    }
                    Incoming::Answer { request, user } => {
                        ctx.metrics.requests_in_flight.fetch_add(1, Ordering::Relaxed);
                        in_flight.push(Box::pin(bounded_answer(request, user, ctx)));
                    }
                    Incoming::End => {
                        abandon(ctx, &in_flight);
                        return SessionEnd::Lost;
                    }
                }
            }
            _ = keepalive.tick(), if stopping.is_none() => {
                pings += 1;
                let ping = format!(
                    "<iq xmlns='{}' type='get' id='keepalive-{pings}' from='{}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
                    xmpp_upload::ns::COMPONENT_ACCEPT,
                    ctx.me,
                    ctx.ping_to
                );
                if let Ok(ping) = ping.parse::<Element>() {
                    if !send(&mut xml, &ping).await {
                        abandon(ctx, &in_flight);
                        return SessionEnd::Lost;
                    }
                }
            }
        }
    }
}

/// The deadline, or never.
async fn until(deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match deadline {
        Some(d) => d.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The answers in flight are dropped with the session (their requesters get no reply).
fn abandon<S>(ctx: &Session<'_, S>, in_flight: &InFlight<'_>) {
    let n = in_flight.len() as u64;
    ctx.metrics
        .requests_in_flight
        .fetch_sub(n, Ordering::Relaxed);
    if n > 0 {
        tracing::warn!("xmpp: {n} requests in flight dropped with the session");
    }
}

/// The stream footer, then the socket closed (bounded).
async fn close(xml: &mut Xml) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        <Xml as futures_util::SinkExt<&Element>>::close(xml),
    )
    .await;
}

/// Sorts one element read from the stream. Synchronous and cheap: only a request the service
/// answers goes on to run concurrently.
fn incoming<S>(
    e: Element,
    ctx: &Session<'_, S>,
    users: &mut HashMap<String, usize>,
    per_user: usize,
) -> Incoming {
    let me = ctx.me.as_str();
    if e.is("error", STREAM_NS) {
        let condition = e
            .children()
            .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-streams")
            .map_or("-", |c| c.name());
        tracing::warn!("xmpp: stream error from the server: {}", clean(condition));
        return Incoming::End;
    }
    if let Some(d) = e.get_child("dropped", stanza_guard::DROPPED_NS) {
        // Only the guard knows the token: a user-made marker is an ordinary payload.
        if d.attr("token") == Some(stanza_guard::marker_token()) {
            let reason = d
                .attr("reason")
                .and_then(stanza_guard::Reason::from_marker)
                .map_or("?", stanza_guard::Reason::as_str);
            tracing::warn!(
                "xmpp: dropped a {} from {} ({reason} over the limit)",
                clean(e.name()),
                clean(e.attr("from").unwrap_or("-")),
            );
            return error_reply(
                &e,
                me,
                ErrorType::Modify,
                DefinedCondition::PolicyViolation,
                "The stanza is too large or too deep",
            )
            .map_or(Incoming::Nothing, Incoming::Reply);
        }
    }
    let kind = e.name();
    if e.ns() != xmpp_upload::ns::COMPONENT_ACCEPT || !matches!(kind, "iq" | "message" | "presence")
    {
        if !e.is("handshake", tokio_xmpp::parsers::ns::COMPONENT) {
            ctx.metrics.stanzas_invalid.fetch_add(1, Ordering::Relaxed);
            tracing::info!("xmpp: dropped an unknown element <{}/>", clean(kind));
        }
        return Incoming::Nothing;
    }
    // The checks tokio-xmpp's Component stream would have ended the session on.
    let valid = if kind == "iq" {
        tokio_xmpp::parsers::iq::Iq::try_from(e.clone())
            .map_err(|err| err.to_string())
            .map(drop)
    } else {
        tokio_xmpp::Stanza::try_from(e.clone())
            .map_err(|err| err.to_string())
            .map(drop)
    };
    let type_ = e.attr("type");
    // RFC 6120 §8.2.3: a get or set holds exactly one payload (xmpp-parsers takes the first).
    let valid = valid.and_then(|()| {
        if matches!(type_, Some("get" | "set")) && e.children().count() != 1 {
            Err("a get or set without exactly one payload".to_owned())
        } else {
            Ok(())
        }
    });
    if let Err(why) = valid {
        ctx.metrics.stanzas_invalid.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "xmpp: invalid {} from {}: {}",
            clean(kind),
            clean(e.attr("from").unwrap_or("-")),
            clean(&why)
        );
        if kind == "iq" && !matches!(type_, Some("result" | "error")) {
            return error_reply(
                &e,
                me,
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                "The request is not a valid IQ",
            )
            .map_or(Incoming::Nothing, Incoming::Reply);
        }
        return Incoming::Nothing;
    }
    if kind != "iq" || !matches!(type_, Some("get" | "set")) {
        // Messages, presences, IQ results (the keep-alive's pong) and errors: nothing to do.
        return Incoming::Nothing;
    }
    let user = bare(e.attr("from").unwrap_or("")).to_owned();
    let n = users.entry(user.clone()).or_insert(0);
    if *n >= per_user {
        ctx.metrics
            .requests_throttled
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "xmpp: {} has {per_user} requests in flight; answered wait",
            clean(&user)
        );
        return error_reply(
            &e,
            me,
            ErrorType::Wait,
            DefinedCondition::ResourceConstraint,
            "Too many requests at once; retry shortly",
        )
        .map_or(Incoming::Nothing, Incoming::Reply);
    }
    *n += 1;
    Incoming::Answer { request: e, user }
}

/// The bare part of a JID (the text before the resource).
fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// One request answered, within `answer_timeout`.
async fn bounded_answer<S: StorageBackend>(
    request: Element,
    user: String,
    ctx: &Session<'_, S>,
) -> Finished {
    let me = ctx.me.as_str();
    let reply = match tokio::time::timeout(ctx.answer_timeout, answer(&request, ctx, me)).await {
        Ok(reply) => reply,
        Err(_) => {
            ctx.metrics
                .requests_timed_out
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "xmpp: a request from {} was not answered within {} ms; answered wait",
                clean(&user),
                ctx.answer_timeout.as_millis()
            );
            error_reply(
                &request,
                me,
                ErrorType::Wait,
                DefinedCondition::InternalServerError,
                "The service is busy; retry shortly",
            )
        }
    };
    Finished { user, reply }
}

/// The reply to one stanza, with its log line and counters.
async fn answer<S: StorageBackend>(
    request: &Element,
    ctx: &Session<'_, S>,
    me: &str,
) -> Option<Element> {
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

/// An error reply to an IQ that is not a result or an error and has an id: from the component,
/// to the sender, in the stanza namespace the request came in. `None` for anything else.
fn error_reply(
    request: &Element,
    me: &str,
    type_: ErrorType,
    condition: DefinedCondition,
    text: &str,
) -> Option<Element> {
    if request.name() != "iq" || matches!(request.attr("type"), Some("result" | "error")) {
        return None;
    }
    let id = request.attr("id")?;
    let ns = [
        xmpp_upload::ns::COMPONENT_ACCEPT,
        xmpp_upload::ns::JABBER_CLIENT,
        xmpp_upload::ns::JABBER_SERVER,
    ]
    .into_iter()
    .find(|n| request.has_ns(*n))?;
    let iq = Iq {
        ns,
        id: Some(id),
        type_: IqType::Get,
        from: request.attr("from"),
        to: Some(me),
        payload: None,
    };
    Some(iq.error(
        Some(me),
        None,
        StanzaError::new(type_, condition, "en", text),
    ))
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

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
