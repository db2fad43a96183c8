//! The load driver of `ci/load.sh`: N concurrent XMPP clients, each logged in over c2s with SASL
//! PLAIN on 127.0.0.1, each sending one IQ after another (a closed loop: the next request goes
//! out when the reply to the previous one is in) for a fixed time, and one line of figures at the
//! end: requests answered per second, p50/p99/max latency, errors.
//!
//! ```text
//! load_driver --server 127.0.0.1:5222 --domain localhost --user-prefix load --password pw \
//!     --clients 100 --seconds 10 --warmup 2 --to upload.localhost --kind slot --label a-memory
//! ```
//!
//! `--kind slot` asks for an XEP-0363 slot (`urn:xmpp:http:upload:0`, a new file name each
//! time); `--kind ping` sends an XEP-0199 ping (the floor of the hop: server and component,
//! nothing else). Users are `{prefix}{i}@{domain}` for i in 0..clients, all with one password.
//!
//! Everything is read and written as plain `minidom` elements with their namespaces spelled
//! out, through tokio-xmpp's XML stream: the driver works whatever xmpp-parsers' default stanza
//! namespace is in this build (the component's tokio-xmpp turns on `jabber:component:accept`).
//! Traffic goes to the given address only (loopback in CI); every loop is bounded in time.
#![allow(
    clippy::pedantic,
    missing_docs,
    reason = "a test tool: pedantic lints are for the library"
)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use minidom::rxml::xml_ncname;
use minidom::Element;
use sasl::client::mechanisms::Plain;
use sasl::client::Mechanism as _;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};

const CLIENT_NS: &str = "jabber:client";
const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND_NS: &str = "urn:ietf:params:xml:ns:xmpp-bind";

type Stream = XmlStream<BufStream<TcpStream>, Element>;

/// N concurrent XMPP clients in a closed loop of IQ requests; one line of figures at the end.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "load_driver")]
struct Args {
    /// The XMPP server's c2s address (loopback).
    #[arg(long, value_name = "HOST:PORT")]
    server: String,
    /// The users' domain.
    #[arg(long)]
    domain: String,
    /// Users are {prefix}{i}@{domain}, i in 0..clients.
    #[arg(long, default_value = "load")]
    user_prefix: String,
    /// Their password (a throw-away test account's).
    #[arg(long)]
    password: String,
    /// How many clients run at once.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    clients: u16,
    /// How long the measured part lasts.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// How long the loops run before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Where the requests go (the upload service's JID).
    #[arg(long)]
    to: String,
    /// `slot` (an XEP-0363 slot request) or `ping` (XEP-0199).
    #[arg(long, value_enum, default_value_t = Kind::Slot)]
    kind: Kind,
    /// The size asked for in slot requests.
    #[arg(long, default_value_t = 1000)]
    size: u64,
    /// The name on the output line.
    #[arg(long, default_value = "load")]
    label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
enum Kind {
    Slot,
    Ping,
}

fn timeouts() -> Timeouts {
    Timeouts {
        read_timeout: Duration::from_secs(30),
        response_timeout: Duration::from_secs(30),
    }
}

/// The next element, past soft timeouts; an error for anything fatal.
async fn next(stream: &mut Stream) -> Result<Element, String> {
    loop {
        match stream.next().await {
            Some(Ok(e)) => return Ok(e),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("stream closed".into()),
        }
    }
}

async fn send(stream: &mut Stream, e: &Element) -> Result<(), String> {
    stream.send(e).await.map_err(|e| format!("send: {e}"))
}

/// c2s login: stream, SASL PLAIN, stream restart, resource binding.
async fn login(a: &Args, user: &str) -> Result<Stream, String> {
    let tcp = TcpStream::connect(&a.server)
        .await
        .map_err(|e| format!("connect {}: {e}", a.server))?;
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let header = || StreamHeader {
        to: Some(a.domain.clone().into()),
        from: None,
        id: None,
    };
    let pending = initiate_stream(BufStream::new(tcp), CLIENT_NS, header(), timeouts())
        .await
        .map_err(|e| format!("stream: {e}"))?;
    let (_, mut stream) = pending
        .recv_features::<Element>()
        .await
        .map_err(|e| format!("features: {e:?}"))?;
    let initial = Plain::new(user, a.password.as_str()).initial();
    let auth = Element::builder("auth", SASL_NS)
        .attr(xml_ncname!("mechanism").into(), "PLAIN")
        .append(base64::engine::general_purpose::STANDARD.encode(initial))
        .build();
    send(&mut stream, &auth).await?;
    let answer = next(&mut stream).await?;
    if !answer.is("success", SASL_NS) {
        return Err(format!("{user}: SASL answered <{}/>", answer.name()));
    }
    let (_, mut stream) = stream
        .initiate_reset()
        .send_header(header())
        .await
        .map_err(|e| format!("restart: {e}"))?
        .recv_features::<Element>()
        .await
        .map_err(|e| format!("features after SASL: {e:?}"))?;
    let bind = Element::builder("iq", CLIENT_NS)
        .attr(xml_ncname!("type").into(), "set")
        .attr(xml_ncname!("id").into(), "bind")
        .append(
            Element::builder("bind", BIND_NS)
                .append(Element::builder("resource", BIND_NS).append("load"))
                .build(),
        )
        .build();
    send(&mut stream, &bind).await?;
    loop {
        let e = next(&mut stream).await?;
        if e.is("iq", CLIENT_NS) && e.attr("id") == Some("bind") {
            if e.attr("type") != Some("result") {
                return Err(format!("{user}: bind refused"));
            }
            return Ok(stream);
        }
    }
}

fn request(a: &Args, n: u64) -> Element {
    let payload = match a.kind {
        Kind::Slot => Element::builder("request", "urn:xmpp:http:upload:0")
            .attr(xml_ncname!("filename").into(), format!("load-{n}.bin"))
            .attr(xml_ncname!("size").into(), a.size.to_string())
            .attr(
                xml_ncname!("content-type").into(),
                "application/octet-stream",
            )
            .build(),
        Kind::Ping => Element::builder("ping", "urn:xmpp:ping").build(),
    };
    Element::builder("iq", CLIENT_NS)
        .attr(xml_ncname!("type").into(), "get")
        .attr(xml_ncname!("to").into(), a.to.as_str())
        .attr(xml_ncname!("id").into(), format!("q{n}"))
        .append(payload)
        .build()
}

#[derive(Default)]
struct Tally {
    /// Latencies of answers that arrived after the warm-up, in microseconds.
    latencies: Vec<u32>,
    ok: u64,
    errors: u64,
    /// An error condition seen, for the report.
    first_error: Option<String>,
}

/// One client's closed loop until `end`; answers before `measure_from` are not counted.
async fn run_client(
    a: Arc<Args>,
    mut stream: Stream,
    start: Arc<tokio::sync::Barrier>,
    measure_from: Instant,
    end: Instant,
) -> Result<Tally, String> {
    start.wait().await;
    let mut t = Tally::default();
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let id = format!("q{n}");
        let sent = Instant::now();
        send(&mut stream, &request(&a, n)).await?;
        let reply = loop {
            let left = end.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
            let e = tokio::time::timeout(left, next(&mut stream))
                .await
                .map_err(|_| "no answer within 5 s of the end".to_owned())??;
            if e.attr("id") == Some(id.as_str()) {
                break e;
            }
        };
        let took = sent.elapsed();
        if sent < measure_from || Instant::now() > end {
            continue;
        }
        t.latencies
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        if reply.attr("type") == Some("result") {
            t.ok += 1;
        } else {
            t.errors += 1;
            if t.first_error.is_none() {
                t.first_error = reply
                    .children()
                    .find(|c| c.name() == "error")
                    .and_then(|e| e.children().next().map(|c| c.name().to_owned()));
            }
        }
    }
    Ok(t)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

async fn run(a: Args) -> Result<(), String> {
    let a = Arc::new(a);
    // Log in at most 20 at a time, then start all loops together.
    let mut streams = Vec::with_capacity(usize::from(a.clients));
    let gate = Arc::new(tokio::sync::Semaphore::new(20));
    let mut logins = Vec::new();
    for i in 0..a.clients {
        let (a, gate) = (a.clone(), gate.clone());
        logins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            let user = format!("{}{i}", a.user_prefix);
            tokio::time::timeout(Duration::from_secs(30), login(&a, &user))
                .await
                .map_err(|_| format!("{user}: login timed out"))?
        }));
    }
    for l in logins {
        streams.push(l.await.map_err(|e| e.to_string())??);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(a.clients)));
    let begin = Instant::now();
    let measure_from = begin + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::new();
    for s in streams {
        tasks.push(tokio::spawn(run_client(
            a.clone(),
            s,
            barrier.clone(),
            measure_from,
            end,
        )));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.map_err(|e| e.to_string())??;
        all.latencies.extend(t.latencies);
        all.ok += t.ok;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    all.latencies.sort_unstable();
    let answered = all.latencies.len() as f64;
    println!(
        "LOAD {} clients={} seconds={} answered={} ok={} errors={} rate={:.0}/s ok_rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.2}ms{}",
        a.label,
        a.clients,
        a.seconds,
        all.latencies.len(),
        all.ok,
        all.errors,
        answered / a.seconds,
        all.ok as f64 / a.seconds,
        percentile(&all.latencies, 0.50),
        percentile(&all.latencies, 0.99),
        percentile(&all.latencies, 1.0),
        all.first_error
            .map(|e| format!(" first_error={e}"))
            .unwrap_or_default(),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    if !(args.seconds > 0.0 && args.seconds <= 600.0 && (0.0..=60.0).contains(&args.warmup)) {
        eprintln!("load_driver: --seconds must be in (0, 600] and --warmup in [0, 60]");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load_driver: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load_driver: {e}");
            ExitCode::FAILURE
        }
    }
}
