//! `send_file`: a real XMPP client (on tokio-xmpp 6's XML stream) that shares files the way
//! chat clients do, with `xmpp-upload`'s client-side builders, and receives them back.
//!
//! ```text
//! send:    log in → disco#items of the domain → disco#info (store/file, urn:xmpp:http:upload:0,
//!          max-file-size) → slot request → PUT streamed from disk (encrypted on the fly for
//!          aesgcm) → the message, in the shape asked for:
//!            legacy        body = GET URL, OOB
//!            sfs           one message: XEP-0447 <file-sharing/> (sha-256), fallback body, OOB
//!            sfs-two-step  <file-sharing id/> announced before the upload, <sources/> attached after
//!            aesgcm        body = the aesgcm:// link only (no OOB: the link holds the key)
//! receive: wait for a message from a peer → share::classify → GET (for aesgcm the https URL,
//!          never the fragment) → verify the hashes (SFS) or the GCM tag (aesgcm) while writing
//!          a temporary file in the target folder → rename it only when the check passed.
//! ```
//!
//! Offline helpers for interop tests: `encrypt`, `decrypt`, `parse-sfs`, `sfs-message`.
//!
//! The password comes from an environment variable (`--password-env`, default
//! `XMPP_PASSWORD`) or a file (`--password-file`), never from the command line; neither it nor
//! an aesgcm key is ever printed. The aesgcm link a `send` produces goes only to the file
//! named by `--link-out` (mode 600).
//!
//! The XMPP connection is plain TCP: meant for loopback servers. The login uses SCRAM-SHA-256,
//! SCRAM-SHA-1 or PLAIN (the `sasl` crate), and stanzas are read and written as elements.
//! HTTPS uses ureq with rustls; `--ca-file` trusts a PEM CA (the loopback stores' test CA).
//!
//! Build it alone, so that xmpp-parsers keeps its client namespace:
//! `cargo build -p xmpp-upload-client-example --example send_file`.

use std::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt as _, StreamExt as _};
use sasl::client::mechanisms::{Plain, Scram};
use sasl::client::Mechanism;
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};
use xmpp_upload::aesgcm::{self, AesGcmUrl, ContentTypePolicy, Decryptor, Encryptor};
use xmpp_upload::jid::{BareJid, Jid};
use xmpp_upload::minidom::Element;
use xmpp_upload::share::hash::{FileHasher, Verifier};
use xmpp_upload::share::{self, AttachTarget, Incoming};
use xmpp_upload::stanza::disco::ServiceInfo;
use xmpp_upload::stanza::file_metadata::FileMetadata;
use xmpp_upload::stanza::sfs::FileSharing;
use xmpp_upload::stanza::upload::{Slot, SlotRequest};
use xmpp_upload::url::Url;
use xmpp_upload::xmpp_parsers::message::{Id, Lang, Message};
use xmpp_upload::xmpp_parsers::presence::Presence;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";
/// Read and write buffer of the streaming paths.
const CHUNK: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "send_file",
    version,
    about = "Share and receive files over XMPP with xmpp-upload"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload FILE through the server's XEP-0363 service and share it with --to.
    Send(SendArgs),
    /// Wait for a file shared by a peer; download, verify or decrypt, and save it.
    Receive(ReceiveArgs),
    /// Offline: encrypt IN for an XEP-0454 upload (ciphertext ‖ tag) into OUT; the aesgcm
    /// link of --url goes to --link-out (mode 600).
    Encrypt {
        /// The https GET URL the link is made of.
        #[arg(long)]
        url: Url,
        /// Where to write the aesgcm:// link (it holds the key).
        #[arg(long)]
        link_out: PathBuf,
        input: PathBuf,
        output: PathBuf,
    },
    /// Offline: decrypt IN (ciphertext ‖ tag) with the aesgcm link in --link-file into OUT,
    /// through a temporary file renamed only once the tag matched.
    Decrypt {
        /// A file holding the aesgcm:// link (first line).
        #[arg(long)]
        link_file: PathBuf,
        input: PathBuf,
        output: PathBuf,
    },
    /// Offline: read FILE, an XML `<file-sharing/>` (alone or inside a `<message/>`), and
    /// print what the crate reads from it, one `key: value` line each.
    ParseSfs { file: PathBuf },
    /// Offline: print the one-message SFS share (shape sfs) of FILE served at --url.
    SfsMessage {
        /// The GET URL to share.
        #[arg(long)]
        url: Url,
        /// The recipient.
        #[arg(long)]
        to: Jid,
        /// The media type to declare (default: guessed from the extension).
        #[arg(long)]
        media_type: Option<String>,
        file: PathBuf,
    },
}

#[derive(Args)]
struct Account {
    /// The account to log in with.
    #[arg(long)]
    jid: BareJid,
    /// host:port of the server's c2s port (plain TCP: loopback servers).
    #[arg(long)]
    server: String,
    /// Name of the environment variable holding the password.
    #[arg(long, default_value = "XMPP_PASSWORD")]
    password_env: String,
    /// File holding the password (its first line); preferred over --password-env.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for HTTPS instead of the built-in web roots.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Seconds to wait for the login and for each answer of the server.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shape {
    /// body = GET URL, plus XEP-0066 OOB.
    Legacy,
    /// One message: XEP-0447 SFS (sha-256) with the URL, fallback body, OOB.
    Sfs,
    /// SFS announced before the upload, its source attached after (XEP-0367).
    SfsTwoStep,
    /// XEP-0454: encrypted upload, body = the aesgcm:// link only, no OOB.
    Aesgcm,
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    account: Account,
    /// The recipient.
    #[arg(long)]
    to: Jid,
    /// How to share the file.
    #[arg(long, value_enum, default_value_t = Shape::Sfs)]
    shape: Shape,
    /// Media type of the file (default: guessed from the extension). Encrypted uploads are
    /// declared as application/octet-stream whatever it is.
    #[arg(long)]
    media_type: Option<String>,
    /// Use this upload service instead of discovering one.
    #[arg(long)]
    service: Option<Jid>,
    /// Where to write the aesgcm:// link of an aesgcm share (mode 600); never printed.
    #[arg(long)]
    link_out: Option<PathBuf>,
    file: PathBuf,
}

#[derive(Args)]
struct ReceiveArgs {
    #[command(flatten)]
    account: Account,
    /// Accept shares only from this peer (bare JID).
    #[arg(long)]
    from: Option<BareJid>,
    /// Folder to save the file in (the temporary file is created there too).
    #[arg(long)]
    out_dir: PathBuf,
    /// Save under this name instead of the shared one.
    #[arg(long)]
    name: Option<String>,
    /// Seconds to wait for a share.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Refuse downloads larger than this many bytes.
    #[arg(long, default_value_t = 4 << 30)]
    max_size: u64,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => runtime().and_then(|rt| rt.block_on(send(args))),
        Command::Receive(args) => runtime().and_then(|rt| rt.block_on(receive(args))),
        Command::Encrypt {
            url,
            link_out,
            input,
            output,
        } => encrypt_offline(&url, &link_out, &input, &output),
        Command::Decrypt {
            link_file,
            input,
            output,
        } => decrypt_offline(&link_file, &input, &output),
        Command::ParseSfs { file } => parse_sfs(&file),
        Command::SfsMessage {
            url,
            to,
            media_type,
            file,
        } => sfs_message(&url, to, media_type, &file),
    };
    if let Err(e) = result {
        eprintln!("send_file: error: {e}");
        std::process::exit(1);
    }
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

// --- XMPP --------------------------------------------------------------------------------------

fn password(account: &Account) -> Res<String> {
    if let Some(path) = &account.password_file {
        let text = fs::read_to_string(path)
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    std::env::var(&account.password_env).map_err(|_| {
        format!(
            "no password: set the environment variable {} or pass --password-file",
            account.password_env
        )
        .into()
    })
}

const NS_CLIENT: &str = "jabber:client";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A c2s session read and written at the element level, on tokio-xmpp's XML stream: every
/// write is flushed before the call returns, and what arrives while an IQ is awaited is kept
/// for later. (tokio-xmpp's `Client` left a fresh session silent now and then in the
/// interop runs; this path is the one the component and the load driver use.)
struct Session {
    stream: XmlStream<BufStream<TcpStream>, Element>,
    /// Stanzas that arrived while something else was awaited, oldest first.
    backlog: std::collections::VecDeque<Element>,
    next_id: u64,
    timeout: Duration,
}

fn el(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
    let mut e = Element::bare(name, ns);
    for (k, v) in attrs {
        if let Ok(k) = xmpp_upload::minidom::rxml::NcName::try_from(*k) {
            e.set_attr(
                xmpp_upload::minidom::rxml::Namespace::NONE,
                k,
                (*v).to_owned(),
            );
        }
    }
    e
}

impl Session {
    async fn next_element(&mut self) -> Res<Element> {
        loop {
            match self.stream.next().await {
                Some(Ok(e)) => return Ok(e),
                Some(Err(ReadError::SoftTimeout)) => {
                    // Silence for the read timeout: a ping to the server keeps the stream
                    // alive (its answer, an IQ result, is read and passed over).
                    self.next_id += 1;
                    let mut ping = el(
                        "iq",
                        NS_CLIENT,
                        &[
                            ("type", "get"),
                            ("id", &format!("keepalive{}", self.next_id)),
                        ],
                    );
                    ping.append_child(Element::bare("ping", "urn:xmpp:ping"));
                    self.send(&ping).await?;
                }
                Some(Err(ReadError::ParseError(_))) => {}
                Some(Err(e)) => return Err(format!("connection: {e}").into()),
                None => return Err("the server closed the stream".into()),
            }
        }
    }

    async fn send(&mut self, e: &Element) -> Res<()> {
        tokio::time::timeout(self.timeout, self.stream.send(e))
            .await
            .map_err(|_| "sending timed out")?
            .map_err(|e| format!("sending: {e}"))?;
        Ok(())
    }

    /// The next stanza: from the backlog, else from the stream, until `deadline`.
    async fn next_stanza(&mut self, deadline: tokio::time::Instant) -> Res<Option<Element>> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(Some(e));
        }
        match tokio::time::timeout_at(deadline, self.next_element()).await {
            Err(_) => Ok(None),
            Ok(r) => r.map(Some),
        }
    }

    /// Sends an IQ of `kind` with `payload` and returns the answer (result or error).
    async fn iq(
        &mut self,
        to: Option<&str>,
        kind: &str,
        payload: Element,
        secs: u64,
    ) -> Res<Element> {
        self.next_id += 1;
        let id = format!("sf{}", self.next_id);
        let mut iq = el("iq", NS_CLIENT, &[("type", kind), ("id", &id)]);
        if let Some(to) = to {
            iq = el("iq", NS_CLIENT, &[("type", kind), ("id", &id), ("to", to)]);
        }
        iq.append_child(payload);
        self.send(&iq).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let e = tokio::time::timeout_at(deadline, self.next_element())
                .await
                .map_err(|_| {
                    format!(
                        "no answer from {} within {secs} s",
                        to.unwrap_or("the server")
                    )
                })??;
            if e.name() == "iq" && e.attr("id") == Some(id.as_str()) {
                return Ok(e);
            }
            if e.name() == "message" || e.name() == "presence" {
                self.backlog.push_back(e);
            }
        }
    }

    async fn end(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
    }
}

/// SASL: SCRAM-SHA-256 or SCRAM-SHA-1 when offered, else PLAIN (the XMPP link is plain TCP:
/// loopback servers only, see the module docs).
fn mechanism(offered: &[String], user: &str, password: &str) -> Res<Box<dyn Mechanism + Send>> {
    let has = |m: &str| offered.iter().any(|o| o == m);
    let cb = ChannelBinding::None;
    Ok(if has("SCRAM-SHA-256") {
        Box::new(Scram::<Sha256>::new(user, password.to_owned(), cb).map_err(|e| format!("{e:?}"))?)
    } else if has("SCRAM-SHA-1") {
        Box::new(Scram::<Sha1>::new(user, password.to_owned(), cb).map_err(|e| format!("{e:?}"))?)
    } else if has("PLAIN") {
        Box::new(Plain::new(user, password))
    } else {
        return Err("the server offers no SASL mechanism this example speaks".into());
    })
}

/// Logs in (stream, SASL, restart, resource binding); returns the session once it is bound.
async fn connect(account: &Account) -> Res<Session> {
    let password = password(account)?;
    let wait = Duration::from_secs(account.timeout);
    tokio::time::timeout(wait, login(account, &password))
        .await
        .map_err(|_| format!("not online after {} s", account.timeout))?
}

async fn login(account: &Account, password: &str) -> Res<Session> {
    let tcp = TcpStream::connect(&account.server)
        .await
        .map_err(|e| format!("connecting to {}: {e}", account.server))?;
    let domain = account.jid.domain().to_string();
    let header = || StreamHeader {
        to: Some(domain.clone().into()),
        from: None,
        id: None,
    };
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(60),
        response_timeout: Duration::from_secs(30),
    };
    let (features, mut stream) =
        initiate_stream(BufStream::new(tcp), NS_CLIENT, header(), timeouts)
            .await
            .map_err(|e| format!("stream: {e}"))?
            .recv_features::<Element>()
            .await
            .map_err(|e| format!("stream features: {e:?}"))?;
    let offered: Vec<String> = features.sasl_mechanisms.iter().cloned().collect();
    let user = account
        .jid
        .node()
        .map(|n| n.to_string())
        .ok_or("--jid needs a user part")?;
    let mut mech = mechanism(&offered, &user, password)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut auth = el("auth", NS_SASL, &[("mechanism", mech.name())]);
    auth.append_text(b64.encode(mech.initial()));
    stream
        .send(&auth)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    loop {
        let Some(reply) = stream.next().await else {
            return Err("the server closed the stream during SASL".into());
        };
        let reply = match reply {
            Ok(r) => r,
            Err(ReadError::SoftTimeout) => continue,
            Err(e) => return Err(format!("SASL: {e}").into()),
        };
        let data = b64.decode(reply.text().trim()).unwrap_or_default();
        match reply.name() {
            "challenge" => {
                let answer = mech.response(&data).map_err(|e| format!("SASL: {e:?}"))?;
                let mut r = el("response", NS_SASL, &[]);
                r.append_text(b64.encode(answer));
                stream.send(&r).await.map_err(|e| format!("sending: {e}"))?;
            }
            "success" => {
                mech.success(&data)
                    .map_err(|e| format!("SASL: the server's proof: {e:?}"))?;
                break;
            }
            _ => return Err("login refused (SASL failure)".into()),
        }
    }
    let (_, stream) = stream
        .initiate_reset()
        .send_header(header())
        .await
        .map_err(|e| format!("stream restart: {e}"))?
        .recv_features::<Element>()
        .await
        .map_err(|e| format!("stream features: {e:?}"))?;
    let mut session = Session {
        stream,
        backlog: std::collections::VecDeque::new(),
        next_id: 0,
        timeout: wait_secs(account.timeout),
    };
    let mut bind = Element::bare("bind", NS_BIND);
    let mut resource = Element::bare("resource", NS_BIND);
    resource.append_text("send_file".to_owned());
    bind.append_child(resource);
    let bound = session.iq(None, "set", bind, account.timeout).await?;
    if bound.attr("type") != Some("result") {
        return Err("resource binding refused".into());
    }
    let jid = bound
        .get_child("bind", NS_BIND)
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(Element::text)
        .unwrap_or_default();
    eprintln!("send_file: online as {jid}");
    Ok(session)
}

fn wait_secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Sends an IQ get and returns the result's payload.
async fn iq_get(client: &mut Session, to: &Jid, payload: Element, secs: u64) -> Res<Element> {
    let to_s = to.to_string();
    let answer = client.iq(Some(&to_s), "get", payload, secs).await?;
    match answer.attr("type") {
        Some("result") => answer
            .children()
            .next()
            .cloned()
            .ok_or_else(|| format!("{to} answered with an empty result").into()),
        _ => {
            let cond = answer
                .get_child("error", NS_CLIENT)
                .and_then(|e| {
                    e.children()
                        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
                })
                .map_or("?", |c| c.name())
                .to_owned();
            Err(format!("{to} answered an error: {cond}").into())
        }
    }
}

/// The upload service: the first of the domain and its disco#items with identity
/// store/file and feature urn:xmpp:http:upload:0, and its max-file-size.
async fn discover(client: &mut Session, domain: &Jid, secs: u64) -> Res<(Jid, ServiceInfo)> {
    let items = iq_get(client, domain, Element::bare("query", NS_DISCO_ITEMS), secs).await?;
    let mut candidates = vec![domain.clone()];
    candidates.extend(
        items
            .children()
            .filter(|c| c.is("item", NS_DISCO_ITEMS))
            .filter_map(|c| c.attr("jid"))
            .filter_map(|j| Jid::new(j).ok()),
    );
    for jid in candidates {
        let Ok(info) = iq_get(client, &jid, Element::bare("query", NS_DISCO_INFO), secs).await
        else {
            continue;
        };
        let store_file = info.children().any(|c| {
            c.is("identity", NS_DISCO_INFO)
                && c.attr("category") == Some("store")
                && c.attr("type") == Some("file")
        });
        let v0 = info
            .children()
            .any(|c| c.is("feature", NS_DISCO_INFO) && c.attr("var") == Some(NS_UPLOAD));
        if store_file && v0 {
            if let Ok(Some(service)) = ServiceInfo::parse(&info) {
                return Ok((jid, service));
            }
        }
    }
    Err(format!("no XEP-0363 upload service at {domain} or its disco#items").into())
}

async fn send_message(client: &mut Session, message: Message) -> Res<()> {
    client
        .send(&Element::from(message))
        .await
        .map_err(|e| format!("sending the message: {e}").into())
}

// --- send --------------------------------------------------------------------------------------

async fn send(args: SendArgs) -> Res<()> {
    let size = fs::metadata(&args.file)
        .map_err(|e| format!("{}: {e}", args.file.display()))?
        .len();
    let name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the file name is not UTF-8")?
        .to_owned();
    let media_type = args
        .media_type
        .clone()
        .unwrap_or_else(|| guess_media_type(&name).to_owned());
    let encrypt = args.shape == Shape::Aesgcm;
    if encrypt && args.link_out.is_none() {
        return Err("--shape aesgcm needs --link-out FILE (the link holds the key)".into());
    }
    let agent = http_agent(args.account.ca_file.as_deref())?;
    let secs = args.account.timeout;

    // What the SFS shapes announce is known before the upload: hash the file first.
    let meta = if matches!(args.shape, Shape::Sfs | Shape::SfsTwoStep) {
        let path = args.file.clone();
        let hashes = tokio::task::spawn_blocking(move || hash_file(&path)).await??;
        Some(
            FileMetadata::new()
                .with_name(name.clone())
                .with_media_type(media_type.clone())
                .with_size(size)
                .with_hashes(hashes),
        )
    } else {
        None
    };

    let mut client = connect(&args.account).await?;
    let (service, info) = match &args.service {
        Some(jid) => {
            let info = iq_get(
                &mut client,
                jid,
                Element::bare("query", NS_DISCO_INFO),
                secs,
            )
            .await?;
            let info =
                ServiceInfo::parse(&info)?.ok_or_else(|| format!("{jid} is no upload service"))?;
            (jid.clone(), info)
        }
        None => {
            let domain = Jid::new(args.account.jid.domain().as_str())?;
            discover(&mut client, &domain, secs).await?
        }
    };

    // The slot: for aesgcm, the size of ciphertext ‖ tag, a random name keeping the
    // extension, and a content type that tells nothing about the file.
    let (slot_name, slot_size, slot_type) = if encrypt {
        let enc_size = aesgcm::encrypted_len(size).ok_or("the file is too large for AES-GCM")?;
        let ext = Path::new(&name)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let ct = ContentTypePolicy::default().content_type(Some(&media_type));
        (
            format!("{}{ext}", hex(&random::<12>()?)),
            enc_size,
            ct.to_owned(),
        )
    } else {
        (name.clone(), size, media_type.clone())
    };
    if let Some(max) = info.max_file_size {
        if slot_size > max {
            return Err(format!(
                "{service} accepts files up to {max} bytes; this upload has {slot_size}"
            )
            .into());
        }
    }
    eprintln!(
        "send_file: upload service {service} (max-file-size {}), slot for {slot_size} bytes",
        info.max_file_size.map_or("none".into(), |m| m.to_string())
    );

    // sfs-two-step: the announcement goes out before the upload starts.
    let share_id = hex(&random::<8>()?);
    let mut announce_target = None;
    if args.shape == Shape::SfsTwoStep {
        let mut first = Message::chat(Some(args.to.clone()));
        first.id = Some(Id(format!("announce-{}", hex(&random::<8>()?))));
        let first = share::announce(first, &share_id, meta.clone().unwrap_or_default());
        announce_target = Some(AttachTarget::chat(&first).ok_or("the announcement has no id")?);
        send_message(&mut client, first).await?;
        eprintln!("send_file: announced share {share_id}");
    }

    let request = SlotRequest::new(slot_name, slot_size).with_content_type(slot_type.clone());
    let reply = iq_get(&mut client, &service, request.to_element(), secs).await?;
    let slot = Slot::parse(&reply)?;

    // The PUT, streamed from disk (and encrypted on the fly) on a blocking thread.
    let key_iv = if encrypt {
        Some((random::<32>()?, random::<12>()?))
    } else {
        None
    };
    let put = {
        let (agent, slot, path, ct) = (
            agent.clone(),
            slot.clone(),
            args.file.clone(),
            slot_type.clone(),
        );
        tokio::task::spawn_blocking(move || {
            put_file(&agent, &slot, &path, size, &ct, key_iv.as_ref())
        })
    };
    put.await??;
    println!("GET {}", slot.get);

    let to = Some(args.to.clone());
    let message = match args.shape {
        Shape::Legacy => share::legacy(Message::chat(to), &slot.get),
        Shape::Sfs => share::inline(Message::chat(to), &slot.get, meta.unwrap_or_default()),
        Shape::SfsTwoStep => {
            let target = announce_target.ok_or("no announcement")?;
            share::attach(Message::chat(to), &target, &share_id, &slot.get)
        }
        Shape::Aesgcm => {
            let (key, iv) = key_iv.ok_or("no key")?;
            let link = AesGcmUrl::new(&slot.get, key, iv)?;
            let link_out = args.link_out.as_deref().ok_or("no --link-out")?;
            write_private(link_out, &format!("{link}\n"))?;
            // XEP-0454: the link alone is the body (your OMEMO layer encrypts it); no OOB.
            let mut m = Message::chat(to);
            m.bodies.insert(Lang::new(), link.to_string());
            m
        }
    };
    send_message(&mut client, message).await?;
    eprintln!(
        "send_file: shared {name} ({size} bytes) with {} as {:?}",
        args.to,
        shape_name(args.shape)
    );
    // An orderly close, so that the server has the message before the stream ends.
    client.end().await;
    Ok(())
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Legacy => "legacy",
        Shape::Sfs => "sfs",
        Shape::SfsTwoStep => "sfs-two-step",
        Shape::Aesgcm => "aesgcm",
    }
}

fn hash_file(path: &Path) -> Res<Vec<xmpp_upload::xmpp_parsers::hashes::Hash>> {
    let mut file = File::open(path)?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// A `Read` over the plaintext that yields ciphertext ‖ tag: each read encrypts in place what
/// it read from the file; at the end of the file the tag follows. Constant memory.
struct EncryptingReader<R> {
    inner: R,
    encryptor: Option<Encryptor>,
    tag: [u8; aesgcm::TAG_LEN],
    tag_sent: usize,
}

impl<R: Read> EncryptingReader<R> {
    fn new(inner: R, key: &[u8; 32], iv: &[u8; 12]) -> Self {
        Self {
            inner,
            encryptor: Some(Encryptor::new(key, iv)),
            tag: [0; aesgcm::TAG_LEN],
            tag_sent: 0,
        }
    }
}

impl<R: Read> Read for EncryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(encryptor) = &mut self.encryptor {
            let n = self.inner.read(buf)?;
            if n > 0 {
                encryptor
                    .encrypt_in_place(&mut buf[..n])
                    .map_err(|_| io::Error::other("the file is too large for AES-GCM"))?;
                return Ok(n);
            }
            if let Some(encryptor) = self.encryptor.take() {
                self.tag = encryptor.finish();
            }
        }
        let rest = &self.tag[self.tag_sent..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.tag_sent += n;
        Ok(n)
    }
}

/// PUTs the file (or its encryption) with an explicit Content-Length and the slot's headers.
fn put_file(
    agent: &ureq::Agent,
    slot: &Slot,
    path: &Path,
    size: u64,
    content_type: &str,
    key_iv: Option<&([u8; 32], [u8; 12])>,
) -> Res<()> {
    let file = File::open(path)?;
    // Exactly the announced bytes, even if the file grows meanwhile.
    let plain = BufReader::with_capacity(CHUNK, file).take(size);
    let (body, length): (Box<dyn Read + Send>, u64) = match key_iv {
        Some((key, iv)) => (
            Box::new(EncryptingReader::new(plain, key, iv)),
            aesgcm::encrypted_len(size).ok_or("too large")?,
        ),
        None => (Box::new(plain), size),
    };
    let mut request = agent
        .put(slot.put.as_str())
        .set("Content-Length", &length.to_string())
        .set("Content-Type", content_type);
    for h in &slot.headers {
        request = request.set(h.name.as_str(), &h.value);
    }
    match request.send(body) {
        Ok(response) => {
            eprintln!("send_file: PUT {length} bytes: {}", response.status());
            Ok(())
        }
        Err(ureq::Error::Status(code, response)) => {
            let text: String = response
                .into_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            Err(format!("PUT refused: HTTP {code} {}", text.trim()).into())
        }
        Err(e) => Err(format!("PUT failed: {e}").into()),
    }
}

// --- receive -----------------------------------------------------------------------------------

/// What to download once a share is complete.
struct Download {
    url: Url,
    name: String,
    check: Check,
}

enum Check {
    /// No hash to verify (a legacy share): saved as received.
    None,
    /// The SFS share's hashes.
    Hashes(Vec<xmpp_upload::xmpp_parsers::hashes::Hash>, Option<u64>),
    /// An aesgcm link: decrypt, verify the tag.
    AesGcm(Box<AesGcmUrl>),
}

async fn receive(args: ReceiveArgs) -> Res<()> {
    let agent = http_agent(args.account.ca_file.as_deref())?;
    if !args.out_dir.is_dir() {
        return Err(format!("{} is not a folder", args.out_dir.display()).into());
    }
    // Available, so that messages to the bare JID reach this resource; then wait for the
    // server to reflect that presence: until then a message to the bare JID may be stored
    // offline instead of delivered. Messages seen meanwhile are kept in the session's backlog.
    let mut client = connect(&args.account).await?;
    client
        .send(&Element::from(Presence::available()))
        .await
        .map_err(|e| format!("sending presence: {e}"))?;
    let reflected = tokio::time::Instant::now() + Duration::from_secs(args.account.timeout);
    let mut early = std::collections::VecDeque::new();
    loop {
        match client.next_stanza(reflected).await? {
            None => return Err("the server did not reflect the presence".into()),
            Some(e) if e.name() == "presence" => break,
            Some(e) if e.name() == "message" => early.push_back(e),
            Some(_) => {}
        }
    }
    client.backlog.extend(early);
    eprintln!("send_file: available; waiting for a shared file");

    // SFS shares announced without a source, by share id and by message id.
    let mut pending: Vec<(Option<String>, Option<String>, FileSharing)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    let download = 'wait: loop {
        let Some(stanza) = client.next_stanza(deadline).await? else {
            return Err(format!("no shared file within {} s", args.wait).into());
        };
        if stanza.name() != "message" {
            continue;
        }
        let Ok(message) = Message::try_from(stanza) else {
            continue;
        };
        let Some(from) = message.from.clone() else {
            continue;
        };
        if args
            .from
            .as_ref()
            .is_some_and(|peer| from.to_bare() != *peer)
        {
            continue;
        }
        match share::classify(&message) {
            Incoming::Sfs(shares) => {
                for s in shares {
                    if let Some(url) = s.urls().first().and_then(|u| Url::parse(u).ok()) {
                        eprintln!("send_file: SFS share from {from}");
                        break 'wait sfs_download(&s, url);
                    }
                    let msg_id = message.id.as_ref().map(|i| i.0.clone());
                    eprintln!("send_file: SFS share announced by {from}, waiting for its source");
                    pending.push((s.id.clone(), msg_id, s));
                }
            }
            Incoming::Attachment { attach_to, sources } => {
                let found = pending.iter().position(|(share_id, msg_id, _)| {
                    (sources.id.is_some() && *share_id == sources.id)
                        || msg_id.as_deref() == Some(&attach_to)
                });
                let Some(i) = found else {
                    eprintln!("send_file: sources attached to an unknown share, ignored");
                    continue;
                };
                let Some(url) = sources.urls().first().and_then(|u| Url::parse(u).ok()) else {
                    continue;
                };
                let (_, _, s) = pending.remove(i);
                eprintln!("send_file: source attached by {from}");
                break sfs_download(&s, url);
            }
            Incoming::AesGcm(link) => {
                let link: AesGcmUrl = link
                    .0
                    .parse()
                    .map_err(|e| format!("unusable aesgcm link: {e}"))?;
                let url = link.https_url();
                eprintln!("send_file: aesgcm link from {from} ({url})");
                break Download {
                    name: name_from_url(&url),
                    url,
                    check: Check::AesGcm(Box::new(link)),
                };
            }
            Incoming::Url(url) => {
                eprintln!("send_file: plain upload link from {from}");
                break Download {
                    name: name_from_url(&url),
                    url,
                    check: Check::None,
                };
            }
            _ => eprintln!("send_file: a message from {from} shares no file, ignored"),
        }
    };
    finish_receive(client, &agent, download, &args).await
}

fn sfs_download(share: &FileSharing, url: Url) -> Download {
    let name = share
        .file
        .name
        .as_deref()
        .and_then(safe_name)
        .unwrap_or_else(|| name_from_url(&url));
    Download {
        url,
        name,
        check: Check::Hashes(share.file.hashes.clone(), share.file.size),
    }
}

async fn finish_receive(
    mut client: Session,
    agent: &ureq::Agent,
    d: Download,
    args: &ReceiveArgs,
) -> Res<()> {
    client.end().await;
    let name = match &args.name {
        Some(n) => safe_name(n).ok_or("--name is not a plain file name")?,
        None => d.name.clone(),
    };
    let target = args.out_dir.join(&name);
    let (agent, max) = (agent.clone(), args.max_size);
    let what = tokio::task::spawn_blocking(move || download_to(&agent, &d, &target, max)).await??;
    println!("{what}");
    Ok(())
}

/// GETs `d.url` into a temporary file next to `target`, checking as the bytes arrive, and
/// renames it to `target` only when the check passed; deletes it otherwise.
fn download_to(agent: &ureq::Agent, d: &Download, target: &Path, max: u64) -> Res<String> {
    let response = match agent.get(d.url.as_str()).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => {
            return Err(format!("GET {}: HTTP {code}", d.url).into())
        }
        Err(e) => return Err(format!("GET {}: {e}", d.url).into()),
    };
    if let Some(len) = response
        .header("Content-Length")
        .and_then(|l| l.parse::<u64>().ok())
    {
        if len > max {
            return Err(format!("the file has {len} bytes, more than --max-size {max}").into());
        }
    }
    let reader = response.into_reader().take(max.saturating_add(1));
    with_temp_file(target, |out| check_stream(reader, out, &d.check, max))
}

/// Streams `reader` through the check into `out`; returns what was verified.
fn check_stream(mut reader: impl Read, out: &mut File, check: &Check, max: u64) -> Res<String> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0u64;
    match check {
        Check::None => {
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > max {
                    return Err(format!("more than --max-size {max} bytes").into());
                }
                out.write_all(&buf[..n])?;
            }
            Ok(format!("{total} bytes (a plain link: no hash to verify)"))
        }
        Check::Hashes(hashes, size) => {
            let mut verifier =
                Verifier::new(hashes).map_err(|e| format!("cannot verify this share: {e}"))?;
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > max || size.is_some_and(|s| total > s) {
                    return Err("more bytes than the share announced".into());
                }
                verifier.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            if size.is_some_and(|s| total != s) {
                return Err(format!(
                    "{total} bytes, the share announced {}",
                    size.unwrap_or_default()
                )
                .into());
            }
            verifier
                .finish()
                .map_err(|e| format!("hash check failed: {e}"))?;
            let algos: Vec<String> = hashes
                .iter()
                .map(|h| String::from(h.algo.clone()))
                .collect();
            Ok(format!(
                "{total} bytes, hashes verified ({})",
                algos.join(", ")
            ))
        }
        Check::AesGcm(link) => {
            let mut decryptor = Decryptor::for_link(link);
            let mut plain = Vec::with_capacity(CHUNK + aesgcm::TAG_LEN);
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > max.saturating_add(aesgcm::TAG_LEN as u64) {
                    return Err(format!("more than --max-size {max} bytes").into());
                }
                plain.clear();
                decryptor
                    .update(&buf[..n], &mut plain)
                    .map_err(|e| format!("decryption failed: {e}"))?;
                out.write_all(&plain)?;
            }
            let verified = decryptor.finish().map_err(|e| {
                format!("decryption failed: {e} (the file was changed, cut, or the key is wrong)")
            })?;
            Ok(format!(
                "{} bytes, AES-256-GCM tag verified",
                verified.len()
            ))
        }
    }
}

/// Runs `write` on a new temporary file in `target`'s folder; on success links it to
/// `target` (never replacing an existing file) and removes the temporary name; on failure
/// deletes it. Returns `write`'s description with the saved path.
fn with_temp_file(target: &Path, write: impl FnOnce(&mut File) -> Res<String>) -> Res<String> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".send_file-{}.part", hex(&random::<8>()?)));
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let result = write(&mut out).and_then(|what| {
        out.sync_all()?;
        drop(out);
        // A hard link fails when `target` exists: nothing is overwritten.
        fs::hard_link(&temp, target).map_err(|e| format!("saving as {}: {e}", target.display()))?;
        Ok(what)
    });
    let _ = fs::remove_file(&temp);
    result.map(|what| format!("saved {}: {what}", target.display()))
}

// --- offline helpers ----------------------------------------------------------------------------

fn encrypt_offline(url: &Url, link_out: &Path, input: &Path, output: &Path) -> Res<()> {
    let (key, iv) = (random::<32>()?, random::<12>()?);
    let link = AesGcmUrl::new(url, key, iv)?;
    let mut reader = EncryptingReader::new(
        BufReader::with_capacity(CHUNK, File::open(input)?),
        &key,
        &iv,
    );
    let mut out = File::create(output)?;
    io::copy(&mut reader, &mut out)?;
    out.sync_all()?;
    write_private(link_out, &format!("{link}\n"))?;
    println!("encrypted {} into {}", input.display(), output.display());
    Ok(())
}

fn decrypt_offline(link_file: &Path, input: &Path, output: &Path) -> Res<()> {
    let text = fs::read_to_string(link_file)?;
    let link: AesGcmUrl = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|e| format!("unusable aesgcm link: {e}"))?;
    let reader = BufReader::new(File::open(input)?);
    let what = with_temp_file(output, |out| {
        check_stream(reader, out, &Check::AesGcm(Box::new(link)), u64::MAX)
    })?;
    println!("{what}");
    Ok(())
}

fn parse_sfs(file: &Path) -> Res<()> {
    let text = fs::read_to_string(file)?;
    let root: Element = text.trim().parse().map_err(|e| format!("not XML: {e}"))?;
    let element = if root.name() == "file-sharing" {
        root
    } else {
        root.children()
            .find(|c| c.name() == "file-sharing")
            .cloned()
            .ok_or("no <file-sharing/> in the file")?
    };
    let share = FileSharing::parse(&element)?;
    let f = &share.file;
    println!("name: {}", f.name.as_deref().unwrap_or(""));
    println!("media-type: {}", f.media_type.as_deref().unwrap_or(""));
    println!("size: {}", f.size.map_or(String::new(), |s| s.to_string()));
    println!("date: {}", f.date.as_deref().unwrap_or(""));
    for (lang, desc) in &f.descs {
        println!("desc[{lang}]: {desc}");
    }
    for h in &f.hashes {
        println!("hash: {} {}", String::from(h.algo.clone()), h.to_base64());
    }
    if let Some(d) = &share.disposition {
        println!("disposition: {}", d.as_str());
    }
    for u in share.urls() {
        println!("url: {u}");
    }
    Ok(())
}

fn sfs_message(url: &Url, to: Jid, media_type: Option<String>, file: &Path) -> Res<()> {
    let size = fs::metadata(file)?.len();
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the file name is not UTF-8")?;
    let meta = FileMetadata::new()
        .with_name(name)
        .with_media_type(media_type.unwrap_or_else(|| guess_media_type(name).to_owned()))
        .with_size(size)
        .with_hashes(hash_file(file)?);
    let mut message = share::inline(Message::chat(Some(to)), url, meta);
    message.id = Some(Id("sfs-1".into()));
    println!("{}", String::from(&Element::from(message)));
    Ok(())
}

// --- small helpers ------------------------------------------------------------------------------

/// An HTTP agent; with `ca_file`, trusting exactly the CA certificates in that PEM file.
fn http_agent(ca_file: Option<&Path>) -> Res<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .timeout_write(Duration::from_secs(60));
    if let Some(path) = ca_file {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let pem = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| format!("{}: {e}", path.display()))?)?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no certificate", path.display()).into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder = builder.tls_config(Arc::new(config));
    }
    Ok(builder.build())
}

fn random<const N: usize>() -> Res<[u8; N]> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a secret to a new file readable by its owner only.
fn write_private(path: &Path, text: &str) -> Res<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()).into())
}

/// The last path segment of the URL, percent-decoded, as a safe file name.
fn name_from_url(url: &Url) -> String {
    let segment = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let decoded = percent_decode(segment);
    safe_name(&decoded).unwrap_or_else(|| "download".to_owned())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A name from a peer, usable as a file name in the target folder: no path separators, no
/// leading dot, no control characters, not empty; `None` otherwise.
fn safe_name(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    ok.then(|| name.to_owned())
}

fn guess_media_type(name: &str) -> &'static str {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "ogg" | "opus" => "audio/ogg",
        _ => "application/octet-stream",
    }
}
