//! A guard in front of tokio-xmpp's parser: stanzas deeper or larger than the limits are cut
//! out of the byte stream before any XML library sees them.
//!
//! Why: tokio-xmpp 6 builds each stanza's payload with xso's `minidom::Element` builder, which
//! feeds every event down a chain of nested builders, one per open element (recursion as deep
//! as the element, and quadratic time); dropping a deep `Element` or builder recurses too.
//! Neither rxml nor tokio-xmpp has a depth or size limit, so one deep stanza from any user,
//! routed by the server, overflows the stack and kills the process (see the README's
//! "Hostile stanzas" notes for the measurements).
//!
//! The guard tracks element depth with a small byte-level scanner (tags, quoted attribute
//! values, comments, CDATA, processing instructions). Each top-level stanza is held until it
//! is complete (at most `max_bytes`) and then passed on; one that goes deeper than `max_depth`
//! levels or past `max_bytes`, or that holds a name, attribute value, comment or processing
//! instruction longer than [`MAX_TOKEN`] bytes (rxml's lexer stops the whole stream on a token
//! over 8192 bytes: a fatal error, where any user could end the session with one long
//! attribute), is discarded as it streams (nothing is kept), and replaced by a small stanza of
//! the same kind, id, from and to, carrying
//! `<dropped xmlns='urn:xmpp-upload:component:0' reason='depth|size|token' token='…'/>`, so the
//! component can answer an IQ with `policy-violation` (RFC 6120 §8.2.3: a get or set is always
//! answered). The `token` is this process's random [`marker_token`]: a user can write an
//! element in that namespace, but cannot forge one the session takes for the guard's.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use sasl::common::ChannelBinding;
use tokio::io::{AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_xmpp::connect::{DnsConfig, ServerConnector};
use tokio_xmpp::xmlstream::{initiate_stream, PendingFeaturesRecv, StreamHeader, Timeouts};

/// The namespace of the replacement payload.
pub const DROPPED_NS: &str = "urn:xmpp-upload:component:0";

/// The longest name, attribute value (raw, before entities are expanded, which only shortens
/// it), comment or processing instruction passed on. rxml 0.14's lexer refuses a token of
/// 8192 bytes or more with an error that ends the stream; text is split by rxml, not refused.
pub const MAX_TOKEN: usize = 8000;

/// A JID is at most 3071 bytes: a longer attribute value of the stanza's start tag is not kept
/// for the replacement (nor looked at).
const MAX_KEPT_VALUE: usize = 3072;

/// This process's marker token: 128 random bits in hex, made once.
pub fn marker_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        use std::hash::{BuildHasher as _, Hasher as _};
        use std::io::Read as _;
        let mut raw = [0u8; 16];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .is_ok();
        if !from_os {
            // SipHash keys are drawn from the OS at start: unpredictable to a sender.
            for (i, chunk) in raw.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        raw.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Element levels inside a stanza (the stanza element itself is level 1).
    pub max_depth: usize,
    /// Bytes of one stanza.
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data.
    Text,
    /// Just after `<`.
    Open,
    /// Inside a start tag; `slash`: the last significant byte was `/`.
    StartTag { quote: Option<u8>, slash: bool },
    /// Inside an end tag.
    EndTag,
    /// `<?…?>`; `q`: the last byte was `?`.
    Pi { q: bool },
    /// `<!…`: collecting the first bytes to tell a comment from CDATA.
    Bang,
    /// `<!--…-->`: dashes seen in a row.
    Comment { dashes: u8 },
    /// `<![CDATA[…]]>`: brackets seen in a row.
    Cdata { brackets: u8 },
    /// `<!…>` of another kind.
    Decl,
}

/// Why a stanza was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Depth,
    Size,
    /// A name, attribute value, comment or PI over [`MAX_TOKEN`] bytes.
    Token,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Depth => "depth",
            Reason::Size => "size",
            Reason::Token => "token",
        }
    }

    /// The reason named in a marker (anything else: `None`).
    pub fn from_marker(s: &str) -> Option<Self> {
        match s {
            "depth" => Some(Reason::Depth),
            "size" => Some(Reason::Size),
            "token" => Some(Reason::Token),
            _ => None,
        }
    }
}

/// The sans-IO filter: bytes from the server in, bytes for the parser out.
#[derive(Debug)]
pub struct Filter {
    limits: Limits,
    lex: Lex,
    bang: Vec<u8>,
    /// 0: before the stream header; 1: inside the stream; 2 and more: inside a stanza.
    depth: usize,
    /// The stanza being held (from its `<`), when `depth >= 1` and one has started.
    held: Vec<u8>,
    holding: bool,
    /// The stanza's start tag, once complete (for the replacement).
    start_tag: Option<Vec<u8>>,
    /// The stanza's start tag as it streams in, kept even while dropping: attribute values
    /// over [`MAX_KEPT_VALUE`] are cut short (and so never used), the whole at `max_bytes`.
    tag: Vec<u8>,
    /// Bytes of the current name, attribute value, comment, PI or declaration.
    token: usize,
    dropping: Option<Reason>,
    pub dropped: u64,
}

impl Filter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            lex: Lex::Text,
            bang: Vec::new(),
            depth: 0,
            held: Vec::new(),
            holding: false,
            start_tag: None,
            tag: Vec::new(),
            token: 0,
            dropping: None,
            dropped: 0,
        }
    }

    /// Filters `input`, appending what may pass to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        // A `<` at stream level starts a stanza (or the stream's end tag): hold it.
        if self.lex == Lex::Text && b == b'<' && self.depth == 1 && !self.holding {
            self.holding = true;
            self.held.clear();
            self.start_tag = None;
            self.tag.clear();
            self.dropping = None;
        }
        if self.holding && self.depth == 1 && self.start_tag.is_none() {
            self.keep_tag_byte(b);
        }
        if self.holding {
            if self.dropping.is_none() {
                self.held.push(b);
                if self.held.len() > self.limits.max_bytes {
                    self.drop_stanza(Reason::Size);
                }
            }
        } else {
            out.push(b);
        }
        self.lex(b, out);
    }

    /// Records a byte of the stanza's own start tag (the lexer state is the one before `b`).
    fn keep_tag_byte(&mut self, b: u8) {
        if self.tag.len() >= self.limits.max_bytes {
            return;
        }
        if let Lex::StartTag { quote: Some(q), .. } = self.lex {
            // Inside a quoted value: past MAX_KEPT_VALUE only its closing quote is kept.
            if b != q && self.token > MAX_KEPT_VALUE {
                return;
            }
        }
        self.tag.push(b);
    }

    /// Counts a byte of the current token; drops the stanza when it gets too long for rxml.
    fn grow_token(&mut self) {
        self.token = self.token.saturating_add(1);
        if self.token > MAX_TOKEN && self.holding && self.dropping.is_none() {
            self.drop_stanza(Reason::Token);
        }
    }

    fn drop_stanza(&mut self, reason: Reason) {
        self.dropping = Some(reason);
        self.held = Vec::new();
    }

    /// The end of a stanza at stream level: pass it on, or its replacement.
    fn stanza_done(&mut self, out: &mut Vec<u8>) {
        self.holding = false;
        match self.dropping.take() {
            None => out.append(&mut self.held),
            Some(reason) => {
                self.dropped += 1;
                if let Some(tag) = self.start_tag.take() {
                    out.extend_from_slice(&replacement(&tag, reason));
                }
            }
        }
        self.held = Vec::new();
    }

    fn lex(&mut self, b: u8, out: &mut Vec<u8>) {
        // Token lengths: a quoted value counts its bytes; a name its bytes up to whitespace,
        // `=`, `/`, `>` or a quote; comments, PIs, CDATA and declarations count every byte.
        match self.lex {
            Lex::Text => self.token = 0,
            Lex::Open => self.token = 1,
            Lex::StartTag { quote: Some(q), .. } => {
                if b == q {
                    self.token = 0;
                } else {
                    self.grow_token();
                }
            }
            Lex::StartTag { quote: None, .. } => {
                if b.is_ascii_whitespace() || matches!(b, b'=' | b'/' | b'>' | b'\'' | b'"') {
                    self.token = 0;
                } else {
                    self.grow_token();
                }
            }
            Lex::EndTag
            | Lex::Pi { .. }
            | Lex::Bang
            | Lex::Comment { .. }
            | Lex::Cdata { .. }
            | Lex::Decl => self.grow_token(),
        }
        self.lex = match self.lex {
            Lex::Text => {
                if b == b'<' {
                    Lex::Open
                } else {
                    Lex::Text
                }
            }
            Lex::Open => match b {
                b'/' => Lex::EndTag,
                b'?' => Lex::Pi { q: false },
                b'!' => {
                    self.bang.clear();
                    Lex::Bang
                }
                _ => Lex::StartTag {
                    quote: None,
                    slash: false,
                },
            },
            Lex::StartTag { quote: Some(q), .. } => Lex::StartTag {
                quote: (b != q).then_some(q),
                slash: false,
            },
            Lex::StartTag { quote: None, slash } => match b {
                b'\'' | b'"' => Lex::StartTag {
                    quote: Some(b),
                    slash: false,
                },
                b'/' => Lex::StartTag {
                    quote: None,
                    slash: true,
                },
                b'>' => {
                    self.start_tag_end(slash, out);
                    Lex::Text
                }
                _ => Lex::StartTag {
                    quote: None,
                    slash: slash && b.is_ascii_whitespace(),
                },
            },
            Lex::EndTag => {
                if b == b'>' {
                    self.depth = self.depth.saturating_sub(1);
                    if self.holding && self.depth <= 1 {
                        self.stanza_done(out);
                    }
                    Lex::Text
                } else {
                    Lex::EndTag
                }
            }
            Lex::Pi { q } => match b {
                b'>' if q => {
                    self.markup_end(out);
                    Lex::Text
                }
                _ => Lex::Pi { q: b == b'?' },
            },
            Lex::Bang => {
                self.bang.push(b);
                if self.bang == b"--" {
                    Lex::Comment { dashes: 0 }
                } else if self.bang == b"[CDATA[" {
                    Lex::Cdata { brackets: 0 }
                } else if b"--".starts_with(&self.bang) || b"[CDATA[".starts_with(&self.bang) {
                    Lex::Bang
                } else if b == b'>' {
                    self.markup_end(out);
                    Lex::Text
                } else {
                    Lex::Decl
                }
            }
            Lex::Comment { dashes } => match b {
                b'-' => Lex::Comment {
                    dashes: dashes.saturating_add(1),
                },
                b'>' if dashes >= 2 => {
                    self.markup_end(out);
                    Lex::Text
                }
                _ => Lex::Comment { dashes: 0 },
            },
            Lex::Cdata { brackets } => match b {
                b']' => Lex::Cdata {
                    brackets: brackets.saturating_add(1),
                },
                b'>' if brackets >= 2 => Lex::Text,
                _ => Lex::Cdata { brackets: 0 },
            },
            Lex::Decl => {
                if b == b'>' {
                    self.markup_end(out);
                    Lex::Text
                } else {
                    Lex::Decl
                }
            }
        };
    }

    /// A comment, PI or declaration ended: at stream level it stands alone.
    fn markup_end(&mut self, out: &mut Vec<u8>) {
        if self.holding && self.depth <= 1 {
            self.stanza_done(out);
        }
    }

    fn start_tag_end(&mut self, self_closing: bool, out: &mut Vec<u8>) {
        let first_of_stanza = self.holding && self.depth == 1;
        if first_of_stanza {
            // The stanza's own start tag: kept for a replacement (bounded by max_bytes), even
            // when the stanza is already being dropped (a long attribute in the tag itself).
            self.start_tag = Some(std::mem::take(&mut self.tag));
        }
        if self_closing {
            if first_of_stanza {
                self.stanza_done(out);
            }
            return;
        }
        self.depth += 1;
        // depth 2 is the stanza element itself (level 1).
        if self.holding
            && self.depth.saturating_sub(1) > self.limits.max_depth
            && self.dropping.is_none()
        {
            self.drop_stanza(Reason::Depth);
        }
    }
}

/// `<NAME type= id= from= to=><dropped …/></NAME>` from a stanza's start tag, keeping only
/// those attributes (raw, as the server escaped them).
fn replacement(tag: &[u8], reason: Reason) -> Vec<u8> {
    let name: Vec<u8> = tag
        .iter()
        .skip(1)
        .take_while(|b| !b.is_ascii_whitespace() && **b != b'>' && **b != b'/')
        .copied()
        .collect();
    if !matches!(name.as_slice(), b"iq" | b"message" | b"presence") {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(256);
    out.push(b'<');
    out.extend_from_slice(&name);
    for attr in ["type", "id", "from", "to"] {
        if let Some((q, v)) = attr_value(tag, attr) {
            out.push(b' ');
            out.extend_from_slice(attr.as_bytes());
            out.push(b'=');
            out.push(q);
            out.extend_from_slice(v);
            out.push(q);
        }
    }
    out.extend_from_slice(b"><dropped xmlns='");
    out.extend_from_slice(DROPPED_NS.as_bytes());
    out.extend_from_slice(b"' reason='");
    out.extend_from_slice(reason.as_str().as_bytes());
    out.extend_from_slice(b"' token='");
    out.extend_from_slice(marker_token().as_bytes());
    out.extend_from_slice(b"'/></");
    out.extend_from_slice(&name);
    out.push(b'>');
    out
}

/// The raw value of attribute `name` in a start tag, with its quote character.
fn attr_value<'a>(tag: &'a [u8], name: &str) -> Option<(u8, &'a [u8])> {
    let mut i = 0;
    let n = name.as_bytes();
    while i < tag.len() {
        let b = *tag.get(i)?;
        if b == b'\'' || b == b'"' {
            // skip a quoted value
            let end = tag.get(i + 1..)?.iter().position(|c| *c == b)?;
            i += end + 2;
            continue;
        }
        let before_ok = i > 0 && tag.get(i - 1).is_some_and(u8::is_ascii_whitespace);
        if before_ok && tag.get(i..i + n.len()) == Some(n) {
            let mut j = i + n.len();
            while tag.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            if tag.get(j) == Some(&b'=') {
                j += 1;
                while tag.get(j).is_some_and(u8::is_ascii_whitespace) {
                    j += 1;
                }
                let q = *tag.get(j)?;
                if q == b'\'' || q == b'"' {
                    let len = tag.get(j + 1..)?.iter().position(|c| *c == q)?;
                    let v = tag.get(j + 1..j + 1 + len)?;
                    // A JID is at most 3071 bytes; ids are short. Longer: leave it out.
                    return (v.len() <= 3071 && !v.contains(&b'<')).then_some((q, v));
                }
                return None;
            }
        }
        i += 1;
    }
    None
}

/// A TCP stream whose read side goes through a [`Filter`].
pub struct Guarded {
    inner: TcpStream,
    filter: Filter,
    ready: Vec<u8>,
    pos: usize,
    dropped: Arc<AtomicU64>,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.pos < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.pos);
                if let Some(chunk) = this.ready.get(this.pos..this.pos + n) {
                    buf.put_slice(chunk);
                }
                this.pos += n;
                if this.pos == this.ready.len() {
                    this.ready.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut raw = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut raw);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    if got.is_empty() {
                        return Poll::Ready(Ok(())); // EOF
                    }
                    let before = this.filter.dropped;
                    this.filter.push(got, &mut this.ready);
                    let n = this.filter.dropped - before;
                    if n > 0 {
                        this.dropped.fetch_add(n, Ordering::Relaxed);
                    }
                    // Nothing passed yet (a stanza is being held): read on.
                }
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// tokio-xmpp's plaintext TCP connector, with the guard on the read side.
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    pub dns: DnsConfig,
    pub limits: Limits,
    /// Counts the stanzas dropped (for the metrics).
    pub dropped: Arc<AtomicU64>,
}

impl ServerConnector for GuardedConnector {
    type Stream = BufStream<Guarded>;

    async fn connect(
        &self,
        jid: &jid::Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), tokio_xmpp::Error> {
        let tcp = self.dns.resolve().await?;
        let stream = BufStream::new(Guarded {
            inner: tcp,
            filter: Filter::new(self.limits),
            ready: Vec::new(),
            pos: 0,
            dropped: self.dropped.clone(),
        });
        let header = StreamHeader {
            to: Some(std::borrow::Cow::Owned(jid.domain().as_str().to_owned())),
            from: None,
            id: None,
        };
        Ok((
            initiate_stream(stream, ns, header, timeouts).await?,
            ChannelBinding::None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limits: Limits, input: &str) -> (String, u64) {
        let mut f = Filter::new(limits);
        let mut out = Vec::new();
        // byte by byte and in one go must agree
        for chunk in input.as_bytes().chunks(3) {
            f.push(chunk, &mut out);
        }
        (String::from_utf8(out).unwrap(), f.dropped)
    }

    const L: Limits = Limits {
        max_depth: 3,
        max_bytes: 200,
    };
    const HEAD: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'>";

    #[test]
    fn passes_normal_stanzas() {
        let s = format!("{HEAD}<handshake/><iq type='get' id='a' a='x>y/'><q xmlns='u'><b/></q></iq> <message/></stream:stream>");
        assert_eq!(run(L, &s), (s.clone(), 0));
    }

    #[test]
    fn comments_cdata_and_quotes_do_not_confuse_depth() {
        let s = format!("{HEAD}<message id='q' a=\"<b>\"><!-- <x> --><body><![CDATA[<y><z>]]></body></message><iq id='ok'/></stream:stream>");
        assert_eq!(run(L, &s), (s.clone(), 0));
    }

    #[test]
    fn deep_stanza_of_100k_levels_is_dropped_in_linear_time() {
        let big = Limits {
            max_depth: 64,
            max_bytes: 1 << 20,
        };
        let inner = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
        let s = format!("{HEAD}<iq type='set' id='x' from='m@x/r'>{inner}</iq><iq id='ok'/>");
        let t = std::time::Instant::now();
        let (out, n) = run(big, &s);
        assert_eq!(n, 1);
        assert!(out.ends_with(&format!("<iq type='set' id='x' from='m@x/r'><dropped xmlns='urn:xmpp-upload:component:0' reason='depth' token='{}'/></iq><iq id='ok'/>", marker_token())));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn replaces_deep_and_big() {
        let deep = format!("{HEAD}<iq type='get' id='d' from='m@x/r' to='u.x'><a><b><c><d/></c></b></a></iq><iq id='ok'/>");
        let (out, n) = run(L, &deep);
        assert_eq!(n, 1);
        assert!(out.ends_with(&format!("<iq type='get' id='d' from='m@x/r' to='u.x'><dropped xmlns='urn:xmpp-upload:component:0' reason='depth' token='{}'/></iq><iq id='ok'/>", marker_token())), "{out}");
        let big = format!(
            "{HEAD}<message id='b'><body>{}</body></message><iq id='ok'/>",
            "x".repeat(500)
        );
        let (out, n) = run(L, &big);
        assert_eq!(n, 1);
        assert!(out.ends_with(&format!("<message id='b'><dropped xmlns='urn:xmpp-upload:component:0' reason='size' token='{}'/></message><iq id='ok'/>", marker_token())), "{out}");
    }

    const BIG: Limits = Limits {
        max_depth: 64,
        max_bytes: 256 * 1024,
    };

    fn marker(kind: &str, attrs: &str, reason: &str) -> String {
        format!(
            "<{kind}{attrs}><dropped xmlns='urn:xmpp-upload:component:0' reason='{reason}' token='{}'/></{kind}>",
            marker_token()
        )
    }

    #[test]
    fn long_attribute_in_the_stanza_tag_is_cut_and_the_header_kept() {
        let long = "a".repeat(9000);
        for (kind, s) in [
            ("iq", format!("{HEAD}<iq type='get' x='{long}' id='l1' from='m@x/r' to='u.x'><q xmlns='u'/></iq><iq id='ok'/>")),
            ("message", format!("{HEAD}<message type='chat' id='l1' from='m@x/r' to='u.x' x=\"{long}\"><body/></message><iq id='ok'/>")),
        ] {
            let (out, n) = run(BIG, &s);
            assert_eq!(n, 1, "{kind}");
            let want = if kind == "iq" {
                marker("iq", " type='get' id='l1' from='m@x/r' to='u.x'", "token")
            } else {
                marker("message", " type='chat' id='l1' from='m@x/r' to='u.x'", "token")
            };
            assert!(out.ends_with(&format!("{want}<iq id='ok'/>")), "{kind}: {}", &out[out.len().saturating_sub(300)..]);
        }
    }

    #[test]
    fn long_tokens_deeper_in_are_cut() {
        let long = "b".repeat(8001);
        for inner in [
            format!("<x y='{long}'/>"),
            format!("<x {long}='1'/>"),
            format!("<{long}/>"),
            format!("<!--{long}-->"),
            format!("<?pi {long}?>"),
        ] {
            let s = format!("{HEAD}<iq type='set' id='t' from='m@x/r'><q xmlns='u'>{inner}</q></iq><iq id='ok'/>");
            let (out, n) = run(BIG, &s);
            assert_eq!(n, 1, "{}", &inner[..12]);
            assert!(out.ends_with(&format!(
                "{}<iq id='ok'/>",
                marker("iq", " type='set' id='t' from='m@x/r'", "token")
            )));
        }
    }

    #[test]
    fn tokens_up_to_the_limit_and_long_text_pass() {
        let value = "c".repeat(MAX_TOKEN);
        let text = "d".repeat(100_000);
        let s =
            format!("{HEAD}<message id='m' a='{value}'><body>{text}</body></message><iq id='ok'/>");
        assert_eq!(run(BIG, &s), (s.clone(), 0));
    }

    #[test]
    fn a_value_longer_than_a_jid_is_not_copied_into_the_marker() {
        let from = "e".repeat(5000);
        let s = format!(
            "{HEAD}<iq type='get' id='j' from='{from}' x='{}'/><iq id='ok'/>",
            "f".repeat(9000)
        );
        let (out, n) = run(BIG, &s);
        assert_eq!(n, 1);
        assert!(
            out.ends_with(&format!(
                "{}<iq id='ok'/>",
                marker("iq", " type='get' id='j'", "token")
            )),
            "{out}"
        );
    }

    #[test]
    fn marker_token_is_random_hex_and_stable() {
        let t = marker_token();
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(t, marker_token());
        assert_ne!(t, "0".repeat(32));
    }
}
