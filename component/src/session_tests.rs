//! The session against an in-process fake XEP-0114 server on 127.0.0.1: hostile and invalid
//! stanzas never end it, answers run concurrently and fairly, shutdown drains.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use xmpp_upload::service::{Charge, ChargeError};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};

use super::*;

const JID: &str = "upload.localhost";
const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='upload.localhost' id='fake-1'>";

/// A quota charge that takes `0` (a slow database).
#[derive(Debug)]
struct SlowCharger(Duration);

impl retention::AsyncCharge for SlowCharger {
    fn charge<'a>(
        &'a self,
        _charge: &'a Charge,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChargeError>> + Send + 'a>> {
        let d = self.0;
        Box::pin(async move {
            tokio::time::sleep(d).await;
            Ok(())
        })
    }
}

fn service() -> SlotService<SignedUrlStore> {
    let jid: jid::Jid = JID.parse().unwrap();
    let cfg =
        ServiceConfig::new(jid, b"0123456789abcdef0123456789abcdef".to_vec()).daily_quota(1 << 40);
    let store = SignedUrlStore::new(
        "http://127.0.0.1:1/files/".parse().unwrap(),
        b"store-key-0123456789abcdef012345".to_vec(),
    );
    SlotService::try_new(cfg, store).unwrap()
}

struct Opts {
    max_in_flight: usize,
    per_user: usize,
    delay: Option<Duration>,
    answer_timeout: Duration,
    grace: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            per_user: 16,
            delay: None,
            answer_timeout: Duration::from_secs(5),
            grace: Duration::from_secs(5),
        }
    }
}

fn settings(port: u16, o: &Opts) -> Settings {
    Settings {
        connector: GuardedConnector {
            dns: DnsConfig::addr(&format!("127.0.0.1:{port}")),
            limits: stanza_guard::Limits {
                max_depth: 64,
                max_bytes: 256 * 1024,
            },
            dropped: Arc::new(AtomicU64::new(0)),
        },
        jid: JID.parse().unwrap(),
        secret: "component-secret".into(),
        server: format!("127.0.0.1:{port}"),
        max_in_flight: o.max_in_flight,
        max_in_flight_per_user: o.per_user,
        grace: o.grace,
        keepalive: Duration::from_secs(3600),
        timeouts: Timeouts::default(),
    }
}

fn session_ctx<'a>(
    service: &'a SlotService<SignedUrlStore>,
    metrics: &'a Metrics,
    o: &Opts,
) -> Session<'a, SignedUrlStore> {
    Session {
        service,
        charger: o
            .delay
            .map(|d| Arc::new(SlowCharger(d)) as Arc<dyn retention::AsyncCharge>),
        retention: None,
        metrics,
        me: JID.into(),
        ping_to: "localhost".into(),
        put_window: Duration::from_secs(330),
        answer_timeout: o.answer_timeout,
    }
}

/// The fake server's side of one connection.
struct Fake {
    sock: TcpStream,
    buf: String,
}

impl Fake {
    async fn accept(listener: &TcpListener) -> Fake {
        let (sock, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("the component connects")
            .unwrap();
        let mut f = Fake {
            sock,
            buf: String::new(),
        };
        f.wait(|b| {
            b.find("<stream:stream")
                .is_some_and(|i| b[i..].contains('>'))
        })
        .await;
        f.buf.clear();
        f.write(HEADER).await;
        f.wait(|b| b.contains("</handshake>")).await;
        f.buf.clear();
        f.write("<handshake/>").await;
        f
    }

    async fn write(&mut self, s: &str) {
        self.sock.write_all(s.as_bytes()).await.unwrap();
    }

    /// Reads until `done` holds for what was read (10 s at most).
    async fn wait(&mut self, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut chunk = vec![0u8; 64 * 1024];
        while !done(&self.buf) {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, self.sock.read(&mut chunk)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => panic!("read: {e}; got {}", tail(&self.buf)),
                Err(_) => panic!("timed out; got {}", tail(&self.buf)),
            };
            assert!(
                n > 0,
                "the component closed the connection; got {}",
                tail(&self.buf)
            );
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The `<iq/>` with this id the component sent (waiting for it).
    async fn reply(&mut self, id: &str) -> String {
        self.wait(|b| find_iq(b, id).is_some()).await;
        find_iq(&self.buf, id).unwrap()
    }
}

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(600);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn find_iq(buf: &str, id: &str) -> Option<String> {
    let at = [format!("id='{id}'"), format!("id=\"{id}\"")]
        .iter()
        .find_map(|p| buf.find(p.as_str()))?;
    let start = buf[..at].rfind("<iq")?;
    let end = at + buf[at..].find("</iq>")? + 5;
    Some(buf[start..end].to_owned())
}

fn is_result(iq: &str) -> bool {
    iq.contains("type='result'") || iq.contains("type=\"result\"")
}

fn slot_request(id: &str, user: &str) -> String {
    format!(
        "<iq type='get' id='{id}' from='{user}@localhost/r' to='{JID}'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='10' content-type='text/plain'/></iq>"
    )
}

/// Runs the session against `script` (given the listener); then shuts it down and checks it
/// ended cleanly.
async fn with_session<F, Fut>(o: Opts, metrics: &Metrics, script: F)
where
    F: FnOnce(TcpListener, tokio::sync::oneshot::Sender<()>) -> Fut,
    Fut: Future<Output = ()>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let service = service();
    let set = settings(port, &o);
    let ctx = session_ctx(&service, metrics, &o);
    let online = AtomicBool::new(false);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async {
        let _ = rx.await;
    };
    let (res, ()) = tokio::join!(run(&set, &ctx, &online, stop), script(listener, tx));
    res.unwrap();
}

/// Every shape of issue 20, each followed by a valid request the session must answer.
#[tokio::test]
async fn hostile_stanzas_do_not_end_the_session() {
    let metrics = Metrics::default();
    with_session(Opts::default(), &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        let from = "from='mallory@localhost/r' to='upload.localhost'";
        let long = "a".repeat(9000);
        let shapes: Vec<(String, Option<&str>)> = vec![
            (format!("<message {from} id='m1' x='{long}'><body>hi</body></message>"), None),
            (format!("<iq type='get' id='h-long' {from} x='{long}'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>"), Some("policy-violation")),
            (format!("<iq type='get' id='h-long2' {from}><request xmlns='urn:xmpp:http:upload:0' filename='{long}' size='1'/></iq>"), Some("policy-violation")),
            (format!("<presence {from}><priority>128</priority></presence>"), None),
            (format!("<presence {from}><priority>x</priority></presence>"), None),
            (format!("<presence {from}><show>bogus</show></presence>"), None),
            (format!("<message type='bogus' {from}><body>hi</body></message>"), None),
            (format!("<message type='chat' {from}><thread>a</thread><thread>b</thread><body>hi</body></message>"), None),
            (format!("<presence type='bogus' {from}/>"), None),
            (format!("<iq type='bogus' id='h-type' {from}><ping xmlns='urn:xmpp:ping'/></iq>"), Some("bad-request")),
            (format!("<iq type='get' id='h-two' {from}><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>"), Some("bad-request")),
            (format!("<iq type='set' id='h-none' {from}/>"), Some("bad-request")),
            (format!("<iq type='result' id='h-res' {from}><a/><b/></iq>"), None),
            (format!("<iq type='get' id='h-deep' {from}>{}{}</iq>", "<a>".repeat(100), "</a>".repeat(100)), Some("policy-violation")),
            ("<foo xmlns='urn:example'/>".to_owned(), None),
            (format!("<message xmlns='jabber:client' {from}/>"), None),
            // A user-made marker (item 12): an ordinary payload, answered service-unavailable.
            (format!("<iq type='get' id='h-forged' {from}><dropped xmlns='urn:xmpp-upload:component:0' reason='&#10;2026-01-01 FORGED' token='00'/></iq>"), Some("service-unavailable")),
        ];
        for (i, (shape, answer)) in shapes.iter().enumerate() {
            f.write(shape).await;
            if let Some(condition) = answer {
                let id = shape.split("id='").nth(1).unwrap().split('\'').next().unwrap();
                let reply = f.reply(id).await;
                assert!(reply.contains(condition) && reply.contains("type=\"error\"") || reply.contains("type='error'"), "{shape:.80}: {reply}");
                assert!(reply.contains(condition), "{shape:.80}: {reply}");
                assert!(reply.contains("to=\"mallory@localhost/r\"") || reply.contains("to='mallory@localhost/r'"), "{reply}");
            }
            let id = format!("ok-{i}");
            f.write(&slot_request(&id, "alice")).await;
            let reply = f.reply(&id).await;
            assert!(is_result(&reply) && reply.contains("slot"), "after {shape:.80}: {reply}");
        }
        stop.send(()).unwrap();
        f.wait(|b| b.contains("</stream:stream>")).await;
    })
    .await;
    assert_eq!(
        metrics.xmpp_connects.load(Ordering::Relaxed),
        1,
        "never reconnected"
    );
    assert!(metrics.stanzas_invalid.load(Ordering::Relaxed) >= 10);
    assert_eq!(metrics.stanzas_dropped.load(Ordering::Relaxed), 4);
}

/// A deterministic stream of a few hundred well-formed but invalid stanzas, then a request.
#[tokio::test]
async fn fuzzed_invalid_stanzas_never_end_the_session() {
    let metrics = Metrics::default();
    with_session(Opts::default(), &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let words = [
            "", "x", "128", "-129", "bogus", "chat", "get", "set", "result", "error", "away",
            "1e3", "&amp;", "&#10;", "é",
        ];
        let mut batch = String::new();
        let mut expected_errors = Vec::new();
        for i in 0..400 {
            let w = words[next(words.len() as u64) as usize];
            let from = format!("from='u{}@localhost/r' to='{JID}'", next(50));
            let s = match next(10) {
                0 => format!(
                    "<presence {from}><priority>{w}{}</priority></presence>",
                    next(1000)
                ),
                1 => format!("<presence {from}><show>{w}z</show></presence>"),
                2 => format!("<message type='{w}q' {from}><body>{w}</body></message>"),
                3 => format!(
                    "<message {from}>{}</message>",
                    "<thread>t</thread>".repeat(2 + next(3) as usize)
                ),
                4 => format!("<presence type='{w}p' {from}/>"),
                5 => format!(
                    "<message {from} a='{}'/>",
                    "v".repeat(8193 + next(4000) as usize)
                ),
                6 => format!(
                    "<{}el{} xmlns='urn:fuzz'/>",
                    ["", "x", "iq2", "stream", "handshake", "presencex"][next(6) as usize],
                    next(9)
                ),
                7 => {
                    expected_errors.push(format!("fz-{i}"));
                    format!(
                        "<iq type='{}' id='fz-{i}' {from}>{}</iq>",
                        ["get", "set", "bogus"][next(3) as usize],
                        "<q xmlns='urn:fuzz'/>".repeat(2 + next(2) as usize)
                    )
                }
                8 => format!("<iq type='{w}r' {from}><q xmlns='urn:fuzz'/></iq>"),
                _ => format!("<message {from} type='error'><error type='{w}e'/></message>"),
            };
            batch.push_str(&s);
        }
        f.write(&batch).await;
        f.write(&slot_request("final", "alice")).await;
        let reply = f.reply("final").await;
        assert!(is_result(&reply), "{reply}");
        for id in &expected_errors {
            assert!(f.reply(id).await.contains("bad-request"), "{id}");
        }
        stop.send(()).unwrap();
        f.wait(|b| b.contains("</stream:stream>")).await;
    })
    .await;
    assert_eq!(metrics.xmpp_connects.load(Ordering::Relaxed), 1);
    assert!(metrics.stanzas_invalid.load(Ordering::Relaxed) > 200);
}

/// N requests from N users with a slow database finish in about one delay, not N.
#[tokio::test]
async fn answers_run_concurrently() {
    let metrics = Metrics::default();
    let delay = Duration::from_millis(400);
    let o = Opts {
        delay: Some(delay),
        ..Opts::default()
    };
    with_session(o, &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        let t = Instant::now();
        let n = 10;
        let batch: String = (0..n)
            .map(|i| slot_request(&format!("c{i}"), &format!("u{i}")))
            .collect();
        f.write(&batch).await;
        for i in (0..n).rev() {
            assert!(is_result(&f.reply(&format!("c{i}")).await));
        }
        let took = t.elapsed();
        assert!(took >= delay, "{took:?}");
        assert!(
            took < delay * 3,
            "{n} requests took {took:?}: not concurrent"
        );
        stop.send(()).unwrap();
    })
    .await;
    assert_eq!(metrics.requests_in_flight.load(Ordering::Relaxed), 0);
}

/// One user's flood over the per-user cap is answered resource-constraint at once, while
/// another user is still served.
#[tokio::test]
async fn one_users_flood_is_throttled_and_others_served() {
    let metrics = Metrics::default();
    let o = Opts {
        delay: Some(Duration::from_millis(500)),
        per_user: 2,
        ..Opts::default()
    };
    with_session(o, &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        let t = Instant::now();
        let flood: String = (0..6)
            .map(|i| slot_request(&format!("flood{i}"), "mallory"))
            .collect();
        f.write(&flood).await;
        f.write(&slot_request("bob1", "bob")).await;
        for i in 2..6 {
            let reply = f.reply(&format!("flood{i}")).await;
            assert!(
                reply.contains("resource-constraint") && reply.contains("wait"),
                "{reply}"
            );
        }
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "throttling waited: {:?}",
            t.elapsed()
        );
        assert!(is_result(&f.reply("bob1").await));
        assert!(is_result(&f.reply("flood0").await));
        assert!(is_result(&f.reply("flood1").await));
        // The cap is per request in flight: once answered, the user is served again.
        f.write(&slot_request("flood-again", "mallory")).await;
        assert!(is_result(&f.reply("flood-again").await));
        stop.send(()).unwrap();
    })
    .await;
    assert_eq!(metrics.requests_throttled.load(Ordering::Relaxed), 4);
}

/// With the window full the session stops reading: a disco query behind two slow requests is
/// read (and answered) only after one of them is done.
#[tokio::test]
async fn a_full_window_stops_reading() {
    let metrics = Metrics::default();
    let delay = Duration::from_millis(500);
    let o = Opts {
        delay: Some(delay),
        max_in_flight: 2,
        ..Opts::default()
    };
    with_session(o, &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        let disco = |id: &str| {
            format!("<iq type='get' id='{id}' from='carol@localhost/r' to='{JID}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        };
        // Not full: a disco query is answered at once.
        f.write(&disco("d0")).await;
        f.reply("d0").await;
        let t = Instant::now();
        f.write(&format!("{}{}{}", slot_request("w1", "a"), slot_request("w2", "b"), disco("d1"))).await;
        let reply = f.reply("d1").await;
        assert!(is_result(&reply));
        assert!(t.elapsed() >= delay - Duration::from_millis(50), "read past a full window: {:?}", t.elapsed());
        assert!(is_result(&f.reply("w1").await) && is_result(&f.reply("w2").await));
        stop.send(()).unwrap();
    })
    .await;
}

/// Shutdown stops reading, sends the answers still in flight, then closes the stream.
#[tokio::test]
async fn shutdown_finishes_the_answers_in_flight() {
    let metrics = Metrics::default();
    let o = Opts {
        delay: Some(Duration::from_millis(400)),
        ..Opts::default()
    };
    with_session(o, &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        f.write(&format!(
            "{}{}",
            slot_request("s1", "a"),
            slot_request("s2", "b")
        ))
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        f.wait(|b| b.contains("</stream:stream>")).await;
        let end = f.buf.find("</stream:stream>").unwrap();
        for id in ["s1", "s2"] {
            let reply = find_iq(&f.buf[..end], id)
                .unwrap_or_else(|| panic!("{id} not answered before the end: {}", f.buf));
            assert!(is_result(&reply), "{reply}");
        }
    })
    .await;
}

/// A database slower than statement_timeout_ms: the request is answered wait at the timeout.
#[tokio::test]
async fn a_slow_answer_times_out_with_wait() {
    let metrics = Metrics::default();
    let o = Opts {
        delay: Some(Duration::from_secs(30)),
        answer_timeout: Duration::from_millis(200),
        ..Opts::default()
    };
    with_session(o, &metrics, |listener, stop| async move {
        let mut f = Fake::accept(&listener).await;
        let t = Instant::now();
        f.write(&slot_request("slow", "a")).await;
        let reply = f.reply("slow").await;
        assert!(
            reply.contains("internal-server-error") && reply.contains("wait"),
            "{reply}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        stop.send(()).unwrap();
    })
    .await;
    assert_eq!(metrics.requests_timed_out.load(Ordering::Relaxed), 1);
}
