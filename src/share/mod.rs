//! Sharing an uploaded file in a message, and recognising shared files in incoming ones:
//! pure builders over xmpp-parsers' [`Message`] (no I/O, no clock, no randomness; ids come
//! from the caller).
//!
//! After the PUT of an XEP-0363 slot succeeded, share its GET URL in one of three ways:
//!
//! | builder | what it adds | read by |
//! |---|---|---|
//! | [`legacy`] | body = the URL, XEP-0066 OOB with the same URL | every client (Conversations, Gajim, Monal, Profanity, Dino, Converse) |
//! | [`inline`] | XEP-0447 `<file-sharing/>` with a url-data source, the body as XEP-0428 fallback, OOB | SFS clients (Dino, Kaidan) and, through the fallback, every client |
//! | [`announce`] then [`attach`] | a `<file-sharing id>` without sources and a `<store/>` hint when the upload starts; the `<sources id>` with `<attach-to/>`, body, OOB, fallback when it is done | SFS clients; the attach message's body reaches the others |
//!
//! Messages come in as the caller's `Message` (with `to`, `type` and `id` set) and go out
//! with the payloads added. [`classify`] reads an incoming message back.
//!
//! ```
//! use xmpp_upload::jid::Jid;
//! use xmpp_upload::share::{self, Incoming};
//! use xmpp_upload::stanza::file_metadata::FileMetadata;
//! use xmpp_upload::url::Url;
//! use xmpp_upload::xmpp_parsers::message::Message;
//!
//! let get = Url::parse("https://download.montague.tld/4a771ac1/très cool.jpg")?;
//! let meta = FileMetadata::new().with_name("très cool.jpg").with_media_type("image/jpeg").with_size(23456);
//! let message = share::inline(Message::chat(Some(Jid::new("juliet@capulet.lit")?)), &get, meta);
//!
//! // The body is exactly the URL, RFC 3986-clean.
//! assert_eq!(message.bodies.values().next().map(String::as_str),
//!            Some("https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg"));
//! let Incoming::Sfs(shares) = share::classify(&message) else { panic!("not a share") };
//! assert_eq!(shares[0].urls(), [get.as_str()]);
//! assert!(share::is_sfs_fallback(&message));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod hash;

use minidom::Element;
use url::Url;
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::oob::Oob;

use crate::ns;
use crate::stanza::attach::AttachTo;
use crate::stanza::fallback::Fallback;
use crate::stanza::file_metadata::FileMetadata;
use crate::stanza::hints::Store;
use crate::stanza::sfs::{FileSharing, Source, Sources};
use crate::stanza::url_data::UrlData;

/// The most `<file-sharing/>` elements [`classify`] reads from one message.
pub const MAX_SHARES: usize = 16;

/// Adds the body (exactly the URL, as `Url` serialises it: RFC 3986, non-ASCII
/// percent-encoded) and an XEP-0066 OOB element with the same URL: the plain upload message
/// every client shows as a file.
///
/// ```
/// use xmpp_upload::share;
/// use xmpp_upload::url::Url;
/// use xmpp_upload::xmpp_parsers::message::Message;
///
/// let get = Url::parse("https://download.montague.tld/4a771ac1/fox.txt")?;
/// let m = share::legacy(Message::chat(None), &get);
/// let xml = String::from(&xmpp_upload::minidom::Element::from(m));
/// assert!(xml.contains("<body>https://download.montague.tld/4a771ac1/fox.txt</body>"));
/// assert!(xml.contains("<x xmlns='jabber:x:oob'><url>https://download.montague.tld/4a771ac1/fox.txt</url></x>"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn legacy(message: Message, get: &Url) -> Message {
    message
        .with_body(Lang::new(), get.as_str().to_owned())
        .with_payload(oob(get))
}

/// One message with everything: `<file-sharing>` (the metadata and a url-data source), the
/// URL as body marked as XEP-0428 fallback for `urn:xmpp:sfs:0`, and OOB.
#[must_use]
pub fn inline(message: Message, get: &Url, file: FileMetadata) -> Message {
    inline_share(message, get, FileSharing::new(file))
}

/// [`inline`] with a prepared share (an `id`, a `disposition`, other sources): the GET URL is
/// added as a url-data source.
#[must_use]
pub fn inline_share(message: Message, get: &Url, share: FileSharing) -> Message {
    legacy(message.with_payload(share.with_url(get.as_str())), get)
        .with_payload(Fallback::whole_body(ns::SFS))
}

/// The first message of the two-step flow, sent when the upload starts: `<file-sharing id>`
/// with the metadata and no sources, no body, and a `<store/>` hint so that archives keep it.
/// `id` must be unique among the sender's shares (a UUID); [`attach`] repeats it.
///
/// ```
/// use xmpp_upload::share::{self, AttachTarget};
/// use xmpp_upload::stanza::file_metadata::FileMetadata;
/// use xmpp_upload::url::Url;
/// use xmpp_upload::xmpp_parsers::message::{Id, Message};
///
/// let mut first = Message::chat(None);
/// first.id = Some(Id("msg-1".into()));
/// let first = share::announce(first, "share-1", FileMetadata::new().with_name("fox.txt"));
/// // … the upload; then:
/// let target = AttachTarget::chat(&first).ok_or("the message has no id")?;
/// let get = Url::parse("https://download.montague.tld/4a771ac1/fox.txt")?;
/// let second = share::attach(Message::chat(None), &target, "share-1", &get);
/// let xml = String::from(&xmpp_upload::minidom::Element::from(second));
/// assert!(xml.contains("<attach-to xmlns='urn:xmpp:message-attaching:1' id='msg-1'/>"));
/// assert!(xml.contains("<sources xmlns='urn:xmpp:sfs:0' id='share-1'>"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn announce(message: Message, id: &str, file: FileMetadata) -> Message {
    message
        .with_payload(FileSharing::new(file).with_id(id))
        .with_payload(Store)
}

/// The second message of the two-step flow: `<attach-to>` the announcement, `<sources id>`
/// with the GET URL as url-data, the URL as body marked as fallback, and OOB.
#[must_use]
pub fn attach(message: Message, target: &AttachTarget, id: &str, get: &Url) -> Message {
    let sources = Sources {
        id: Some(id.to_owned()),
        items: vec![Source::Url(UrlData::new(get.as_str()))],
    };
    legacy(
        message
            .with_payload(AttachTo::new(target.id()))
            .with_payload(sources),
        get,
    )
    .with_payload(Fallback::whole_body(ns::SFS))
}

fn oob(get: &Url) -> Oob {
    Oob {
        url: get.as_str().to_owned(),
        desc: None,
    }
}

/// The id an attach message refers to, by XEP-0367's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachTarget {
    /// One-to-one (and any non-groupchat) message: its XEP-0359 origin-id if it has one,
    /// otherwise its `id`.
    Chat {
        /// The origin-id or message id.
        id: String,
    },
    /// Groupchat: the stanza-id the room stamped on its reflection of the message (never the
    /// message's own `id`; a room that assigns no stanza-ids cannot be attached to).
    Groupchat {
        /// The room's XEP-0359 stanza-id.
        room_stanza_id: String,
    },
}

impl AttachTarget {
    /// The target of a message sent outside a room: its origin-id, else its `id`; `None`
    /// when it has neither, or is a groupchat message (use [`AttachTarget::groupchat`]).
    #[must_use]
    pub fn chat(sent: &Message) -> Option<Self> {
        if sent.type_ == MessageType::Groupchat {
            return None;
        }
        let origin = sent
            .payloads
            .iter()
            .find(|p| p.is("origin-id", ns::SID))
            .and_then(|p| p.attr("id"))
            .filter(|id| !id.is_empty());
        let id = origin.or_else(|| {
            sent.id
                .as_ref()
                .map(|id| id.0.as_str())
                .filter(|id| !id.is_empty())
        })?;
        Some(AttachTarget::Chat { id: id.to_owned() })
    }

    /// The target of a groupchat message, from the room's reflection of it: the
    /// `<stanza-id xmlns='urn:xmpp:sid:0' by=…/>` whose `by` is the room (the bare `from` of
    /// the reflection). `None` when the room stamped none.
    #[must_use]
    pub fn groupchat(reflection: &Message) -> Option<Self> {
        let room = reflection.from.as_ref()?.to_bare();
        let id = reflection
            .payloads
            .iter()
            .filter(|p| p.is("stanza-id", ns::SID))
            .find(|p| {
                p.attr("by")
                    .and_then(|by| jid::BareJid::new(by).ok())
                    .is_some_and(|by| by == room)
            })
            .and_then(|p| p.attr("id"))
            .filter(|id| !id.is_empty())?;
        Some(AttachTarget::Groupchat {
            room_stanza_id: id.to_owned(),
        })
    }

    /// The id written in `<attach-to id=/>`.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            AttachTarget::Chat { id } => id,
            AttachTarget::Groupchat { room_stanza_id } => room_stanza_id,
        }
    }
}

/// An `aesgcm://` link (XEP-0454) found as a message body, as written. Parse it with the
/// `aesgcm` module (feature `aesgcm`) to decrypt; never fetch it as it is, and never send its
/// fragment (the key) to a server.
#[derive(Clone, PartialEq, Eq)]
pub struct AesGcmLink(pub String);

impl core::fmt::Debug for AesGcmLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let base = self.0.split_once('#').map_or(self.0.as_str(), |(b, _)| b);
        write!(f, "AesGcmLink({base}#<key>)")
    }
}

/// What an incoming message shares, by [`classify`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// XEP-0447 shares (at most [`MAX_SHARES`]); those without sources expect an attach
    /// message. Verify the file's hashes before presenting it.
    Sfs(Vec<FileSharing>),
    /// Sources attached to an earlier share (XEP-0367 + XEP-0447; Dino's attach messages have
    /// no fallback, and none is required here).
    Attachment {
        /// The `<attach-to id=/>`: the earlier message's origin-id, id or room stanza-id.
        attach_to: String,
        /// The sources; their `id` names the share they complete.
        sources: Sources,
    },
    /// A plain upload message: the body equals the OOB URL, or the body is one `https://` URL.
    Url(Url),
    /// An XEP-0454 `aesgcm://` link as the whole body (one line, a fragment of 88 or 96 hex
    /// digits).
    AesGcm(AesGcmLink),
    /// No shared file.
    None,
}

/// Reads what a message shares, most specific first: SFS shares, then attached sources, then
/// an aesgcm link body, then a URL body. Malformed payloads are skipped.
#[must_use]
pub fn classify(message: &Message) -> Incoming {
    let shares: Vec<FileSharing> = message
        .payloads
        .iter()
        .filter(|p| p.is("file-sharing", ns::SFS))
        .filter_map(|p| FileSharing::parse(p).ok())
        .take(MAX_SHARES)
        .collect();
    if !shares.is_empty() {
        return Incoming::Sfs(shares);
    }
    let attach_to =
        payload(message, "attach-to", ns::MESSAGE_ATTACHING).and_then(|p| AttachTo::parse(p).ok());
    let sources = payload(message, "sources", ns::SFS).and_then(|p| Sources::parse(p).ok());
    if let (Some(attach_to), Some(sources)) = (attach_to, sources) {
        return Incoming::Attachment {
            attach_to: attach_to.id,
            sources,
        };
    }
    let Some(body) = body(message) else {
        return Incoming::None;
    };
    if is_aesgcm_link(body) {
        return Incoming::AesGcm(AesGcmLink(body.trim().to_owned()));
    }
    let oob = payload(message, "x", ns::OOB)
        .and_then(|x| x.get_child("url", ns::OOB))
        .map(Element::text);
    let text = body.trim();
    let single = !text.is_empty() && !text.contains(char::is_whitespace);
    if single {
        if let Ok(url) = Url::parse(text) {
            let is_oob = oob.as_deref().is_some_and(|o| o.trim() == text)
                && matches!(url.scheme(), "https" | "http");
            if is_oob || url.scheme() == "https" {
                return Incoming::Url(url);
            }
        }
    }
    Incoming::None
}

/// Whether the message's body is only an XEP-0428 fallback for its XEP-0447 payloads (a
/// client that shows the share can hide the body).
#[must_use]
pub fn is_sfs_fallback(message: &Message) -> bool {
    message
        .payloads
        .iter()
        .filter(|p| p.is("fallback", ns::FALLBACK))
        .filter_map(|p| Fallback::parse(p).ok())
        .any(|f| f.covers_whole_body_for(ns::SFS))
}

fn payload<'a>(message: &'a Message, name: &str, namespace: &str) -> Option<&'a Element> {
    message.payloads.iter().find(|p| p.is(name, namespace))
}

/// The body without `xml:lang`, else the first one.
fn body(message: &Message) -> Option<&str> {
    message
        .bodies
        .get(&Lang::new())
        .or_else(|| message.bodies.values().next())
        .map(String::as_str)
}

/// `aesgcm://host/path#hex` with 88 (12-byte IV) or 96 (16-byte IV) hex digits, one line.
fn is_aesgcm_link(body: &str) -> bool {
    let text = body.trim();
    let Some(rest) = text.strip_prefix("aesgcm://") else {
        return false;
    };
    let Some((path, fragment)) = rest.rsplit_once('#') else {
        return false;
    };
    !path.is_empty()
        && !text.contains(char::is_whitespace)
        && matches!(fragment.len(), 88 | 96)
        && fragment.bytes().all(|b| b.is_ascii_hexdigit())
}
