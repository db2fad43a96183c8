//! The slot service: one pure call answers every stanza addressed to the upload service.
//!
//! [`SlotService::handle`] takes a stanza and the time and returns the reply; nothing else
//! is needed, and nothing is stored per slot. The policy is checked in this order, each
//! refusal mapped onto the XEP-0363 error table:
//!
//! | step | refusal | error |
//! |---|---|---|
//! | 1. IQ type and payload (depth and size capped) | [`SlotError::Malformed`], [`SlotError::WrongIqType`], [`SlotError::PayloadTooComplex`] | `modify`/`bad-request` |
//! | 2. access ([`AccessPolicy`]) | [`SlotError::Forbidden`] | `auth`/`forbidden` |
//! | 3. file name ([`FileName`]) | [`SlotError::BadFileName`] | `modify`/`bad-request` |
//! | 4. size (`max_file_size`) | [`SlotError::TooLarge`] | `modify`/`not-acceptable` + `<file-too-large>` |
//! | 5. content type (syntax, allow-list) | [`SlotError::BadContentType`], [`SlotError::ContentTypeNotAllowed`] | `modify`/`bad-request`, `modify`/`not-acceptable` |
//! | 6. storage ([`StorageBackend`]) issues the URLs (pure) | [`SlotError::Storage`] | `wait`/`internal-server-error` (no detail) |
//! | 7. quota ([`QuotaLedger`], or the host's own store) | [`SlotError::QuotaExceeded`], [`SlotError::QuotaUnavailable`] | `wait`/`resource-constraint` + `<retry stamp>`, `wait`/`internal-server-error` |
//!
//! Issuing is pure, so the quota is charged last and a refusal leaves nothing to undo.
//!
//! ## Three ways to call it
//! * [`SlotService::handle`]: stanza in, reply out, quotas on the configured [`QuotaLedger`].
//! * [`SlotService::process`]: the same, plus the [`Outcome`] to log (issued, refused and
//!   why, resolved, not for this service).
//! * [`SlotService::begin`] and [`PendingCharge::complete`]: the two-phase path for hosts
//!   whose quota store is asynchronous (a database): the first call runs every check and
//!   issues the URLs, the host charges its store however it likes, the second call gives
//!   the reply. No `block_on`, no `spawn_blocking`.
//!
//! ```
//! use xmpp_upload::service::{Begin, ChargeError, QuotaExceeded, QuotaScope};
//! use xmpp_upload::{ServiceConfig, SlotService, storage::signed::SignedUrlStore};
//! # let now = time::macros::datetime!(2024-05-01 12:00 UTC);
//! let config = ServiceConfig::new("upload.montague.tld".parse()?, *b"32 bytes of host secret.........")
//!     .daily_quota(10 * 1024 * 1024);
//! let store = SignedUrlStore::new("https://files.montague.tld/".parse()?, *b"32 bytes of storage key.........");
//! let service = SlotService::try_new(config, store)?;
//!
//! let request: minidom::Element = "<iq xmlns='jabber:client' type='get' id='u1' \
//!     from='romeo@montague.tld/garden' to='upload.montague.tld'>\
//!     <request xmlns='urn:xmpp:http:upload:0' filename='a.jpg' size='23456'/></iq>".parse()?;
//! let answer = match service.begin(&request, now) {
//!     Begin::Done(answer) => answer,
//!     Begin::Charge(pending) => {
//!         let c = pending.charge();
//!         assert_eq!((c.user.as_str(), c.bytes), ("romeo@montague.tld", 23456));
//!         // The host's own store (a database, awaited in an async task) says no:
//!         let retry = now + time::Duration::hours(3);
//!         pending.complete(Err(QuotaExceeded::new(QuotaScope::User, Some(retry)).into()))
//!     }
//! };
//! let reply = answer.reply.expect("a reply");
//! assert_eq!(reply.attr("type"), Some("error"));
//! assert!(String::from(&reply).contains("<retry xmlns='urn:xmpp:http:upload:0' stamp='2024-05-01T15:00:00Z'/>"));
//! println!("{}", answer.outcome); // "refused romeo@montague.tld/garden (urn:xmpp:http:upload:0): quota reached"
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use jid::{BareJid, Jid};
use minidom::Element;
use time::OffsetDateTime;
use url::Url;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

mod config;
mod error;
mod inventory;
mod outcome;
mod policy;
mod quota;

pub use config::{ConfigError, ServiceConfig, DEFAULT_MAX_FILE_SIZE, DEFAULT_MIN_CHARGE};
pub use error::SlotError;
pub use inventory::{
    plan, plan_account_removal, DeleteReason, Deletion, Inventory, InventoryError, MemoryInventory,
    RetentionPolicy, StoredFile,
};
pub use outcome::{Answer, Begin, Charge, IssuedInfo, Outcome, PendingCharge, Protocol};
pub use policy::{AccessPolicy, AllowDomains, FileInfo};
pub use quota::{ChargeError, MemoryLedger, QuotaExceeded, QuotaLedger, QuotaLimits, QuotaScope};

use crate::checked::{ContentType, FileName};
use crate::crypto::SecretKey;
use crate::file_id::{FileIdSealer, ResolvedFileId};
use crate::ns;
use crate::stanza::disco::ServiceInfo;
use crate::stanza::error as stanza_error;
use crate::stanza::file_transfer::{self, DownloadResult, FileMessage, UploadResult};
use crate::stanza::iq::{Iq, IqType};
use crate::stanza::upload::{Purpose, Slot, SlotHeader, SlotRequest};
use crate::stanza::{Dialect, ParseError};
use crate::storage::{
    CheckedUpload, DownloadGrant, StorageBackend, StorageError, UploadGrant, UploadTarget,
};

/// The deepest upload payload accepted, in element levels below the IQ. The deepest
/// legitimate payload (a legacy request's `<filename/>` text) has 2; anything deeper is
/// refused with `bad-request` before it is parsed, and is never echoed.
pub const MAX_PAYLOAD_DEPTH: usize = 8;

/// The most elements an upload payload may hold (a request has at most a handful).
pub const MAX_PAYLOAD_ELEMENTS: usize = 64;

/// A slot issued by [`SlotService::request_slot`]. `Debug` shows its URLs without their
/// query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IssuedSlot {
    /// The slot to send back.
    pub slot: Slot,
    /// The backend's target (PUT URL, required headers, object key).
    pub target: UploadTarget,
}

/// Answers every stanza addressed to an upload service. `Send + Sync`; it shares nothing
/// mutable but the quota ledger.
///
/// ```
/// use xmpp_upload::{SlotService, ServiceConfig, storage::signed::SignedUrlStore};
/// let config = ServiceConfig::new("upload.montague.tld".parse()?, *b"32 bytes of host secret.........");
/// let store = SignedUrlStore::new("https://files.montague.tld/".parse()?, *b"another 32 bytes of store key...");
/// let service = SlotService::try_new(config, store)?;
/// let iq: minidom::Element = "<iq xmlns='jabber:client' from='romeo@montague.tld/garden' id='step_03' \
///     to='upload.montague.tld' type='get'><request xmlns='urn:xmpp:http:upload:0' \
///     filename='my-juliet.jpg' size='23456' content-type='image/jpeg'/></iq>".parse()?;
/// let now = time::macros::datetime!(2017-12-03 23:42:05 UTC);
/// let reply = service.handle(&iq, now).expect("an upload request gets a reply");
/// assert_eq!(reply.attr("type"), Some("result"));
/// let slot = reply.get_child("slot", "urn:xmpp:http:upload:0").expect("a slot");
/// assert!(slot.get_child("put", "urn:xmpp:http:upload:0").is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlotService<S> {
    config: ServiceConfig,
    storage: S,
    slot_key: SecretKey,
    file_ids: FileIdSealer,
    jid_str: String,
    disco: Element,
}

impl<S: fmt::Debug> fmt::Debug for SlotService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotService")
            .field("config", &self.config)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// What an upload asks for, after parsing and before the policy check.
struct Ask<'a> {
    requester: &'a Jid,
    iq_id: &'a str,
    filename: &'a str,
    size: Option<u64>,
    content_type: Option<&'a str>,
    sha256: Option<[u8; 32]>,
    md5: Option<[u8; 16]>,
    get_cap: Option<OffsetDateTime>,
    protocol: Protocol,
}

/// A request that passed every check, with its URLs issued and its charge computed.
struct Checked {
    issued: IssuedSlot,
    info: IssuedInfo,
    charge: Option<Charge>,
}

impl<S: StorageBackend> SlotService<S> {
    /// A service answering with `config`'s policy and `storage`'s URLs.
    ///
    /// This checks nothing: a short secret, a zero lifetime or a backend with an unusable
    /// configuration surface only later, as refused requests. Prefer
    /// [`SlotService::try_new`].
    pub fn new(config: ServiceConfig, storage: S) -> Self {
        let slot_key = config.secret.derive("slot-id");
        let file_ids = FileIdSealer::new(&config.secret, &config.previous_secrets);
        let disco = ServiceInfo::new(config.dialects.iter().copied())
            .with_max_file_size(config.max_file_size)
            .with_purposes([
                Purpose::Message,
                Purpose::Ephemeral {
                    expire_before: None,
                },
            ])
            .with_file_transfer(config.file_transfer)
            .to_element();
        let jid_str = config.jid.to_string();
        Self {
            config,
            storage,
            slot_key,
            file_ids,
            jid_str,
            disco,
        }
    }

    /// A service, after checking the configuration and the backend's
    /// ([`StorageBackend::validate`]).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first problem: a service secret or previous secret shorter
    /// than [`MIN_KEY_LEN`](crate::storage::MIN_KEY_LEN) bytes, a lifetime that is not
    /// positive, nothing served, an unusable stable-link base, or the backend's own refusal
    /// (a short store key, a base URL with credentials, query or fragment, an S3 setting S3
    /// would refuse).
    ///
    /// ```
    /// use xmpp_upload::{ServiceConfig, SlotService, service::ConfigError, storage::signed::SignedUrlStore};
    /// let store = SignedUrlStore::new("https://files.example.org/".parse()?, *b"32 bytes of storage key.........");
    /// let config = ServiceConfig::new("upload.example.org".parse()?, "hunter2");
    /// assert!(matches!(SlotService::try_new(config, store), Err(ConfigError::SecretTooShort { len: 7, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_new(config: ServiceConfig, storage: S) -> Result<Self, ConfigError> {
        config.validate()?;
        storage.validate()?;
        Ok(Self::new(config, storage))
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The storage backend.
    #[must_use]
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Answers a stanza addressed to the upload service: an XEP-0363 slot request in any
    /// dialect, a `p1:http-file-transfer` query, or a disco#info/#items query, in
    /// `jabber:client` or `jabber:component:accept`. The reply keeps the `id`, swaps
    /// `from`/`to` and mirrors the request's dialect and stanza namespace. Quotas are charged
    /// on the configured [`QuotaLedger`].
    ///
    /// `None`: not a stanza this service handles (messages, presences, IQ results and
    /// errors, other payloads); the host routes it elsewhere.
    #[must_use]
    pub fn handle(&self, stanza: &Element, now: OffsetDateTime) -> Option<Element> {
        self.process(stanza, now).reply
    }

    /// [`SlotService::handle`], also saying what happened ([`Outcome`]) for the host's logs.
    pub fn process(&self, stanza: &Element, now: OffsetDateTime) -> Answer {
        match self.begin(stanza, now) {
            Begin::Done(answer) => answer,
            Begin::Charge(pending) => {
                let result = self.charge(pending.charge());
                pending.complete(result)
            }
        }
    }

    /// The first step of the two-phase path: runs every check and issues the URLs. A slot
    /// that needs a quota charge comes back as [`Begin::Charge`]: the host charges its own
    /// store (the configured [`QuotaLedger`] is not used) and calls
    /// [`PendingCharge::complete`]. Everything else is answered at once.
    pub fn begin(&self, stanza: &Element, now: OffsetDateTime) -> Begin {
        let iq = match Iq::parse(stanza) {
            None => return Begin::Done(Answer::new(None, Outcome::NotForThisService)),
            Some(Ok(iq)) => iq,
            Some(Err(e)) => {
                // An IQ with a missing or unknown type cannot be a result or error (those are
                // never answered): RFC 6120 §8.2.3 wants bad-request.
                let echo = Iq {
                    ns: stanza_ns(stanza),
                    id: stanza.attr("id"),
                    type_: IqType::Error,
                    from: stanza.attr("from"),
                    to: stanza.attr("to"),
                    payload: None,
                };
                return Begin::Done(self.refuse(&echo, None, None, SlotError::Malformed(e)));
            }
        };
        if matches!(iq.type_, IqType::Result | IqType::Error) {
            return Begin::Done(Answer::new(None, Outcome::NotForThisService));
        }
        let Some(payload) = iq.payload else {
            let e = SlotError::Malformed(ParseError::MissingChild("payload"));
            return Begin::Done(self.refuse(&iq, None, None, e));
        };
        let payload_ns = payload.ns();
        let upload = Dialect::from_namespace(&payload_ns).filter(|_| payload.name() == "request");
        let file_transfer =
            payload.name() == "query" && file_transfer::is_file_transfer_ns(&payload_ns);
        if upload.is_none() && !file_transfer {
            return Begin::Done(self.other(&iq, payload));
        }
        // Upload payloads from here on: bounded before anything looks inside.
        if too_complex(payload) {
            return Begin::Done(self.refuse(&iq, None, None, SlotError::PayloadTooComplex));
        }
        let echo = Echo {
            payload,
            dialect: upload.map_or(Dialect::V0, Dialect::answer),
        };
        if iq.id.is_none() {
            let e = SlotError::Malformed(ParseError::MissingAttribute("id"));
            return Begin::Done(self.refuse(&iq, Some(&echo), None, e));
        }
        match upload {
            Some(dialect) => self.begin_upload(&iq, &echo, dialect, now),
            None => self.begin_file_transfer(&iq, &echo, now),
        }
    }

    /// Disco and anything else that is not an upload payload.
    fn other(&self, iq: &Iq<'_>, payload: &Element) -> Answer {
        let me = Some(self.jid_str.as_str());
        let wrong_type = |iq: &Iq<'_>| {
            self.refuse(
                iq,
                None,
                Some(Protocol::Discovery),
                SlotError::WrongIqType { expected: "get" },
            )
        };
        match (payload.name(), payload.ns().as_str()) {
            ("query", ns::DISCO_INFO) => match (iq.type_, payload.attr("node")) {
                (IqType::Get, None) => Answer::new(
                    Some(iq.result(me, Some(self.disco.clone()))),
                    Outcome::Discovery,
                ),
                (IqType::Get, Some(_)) => {
                    let err = stanza_error::plain(
                        ErrorType::Cancel,
                        DefinedCondition::ItemNotFound,
                        "no such node",
                    );
                    Answer::new(Some(iq.error(me, None, err)), Outcome::Discovery)
                }
                _ => wrong_type(iq),
            },
            ("query", ns::DISCO_ITEMS) => match iq.type_ {
                IqType::Get => Answer::new(
                    Some(iq.result(me, Some(Element::bare("query", ns::DISCO_ITEMS)))),
                    Outcome::Discovery,
                ),
                _ => wrong_type(iq),
            },
            _ => Answer::new(None, Outcome::NotForThisService),
        }
    }

    /// An error reply for `error`, echoing the payload (shallowly) when given.
    fn refuse(
        &self,
        iq: &Iq<'_>,
        echo: Option<&Echo<'_>>,
        protocol: Option<Protocol>,
        error: SlotError,
    ) -> Answer {
        let dialect = echo.map_or(Dialect::V0, |e| e.dialect);
        let reply = iq.error(
            Some(&self.jid_str),
            echo.map(|e| shallow_copy(e.payload)),
            error.to_stanza_error(dialect),
        );
        let requester = iq.from.and_then(|f| Jid::new(f).ok());
        Answer::new(
            Some(reply),
            Outcome::Refused {
                requester,
                protocol,
                error,
            },
        )
    }

    fn begin_upload(
        &self,
        iq: &Iq<'_>,
        echo: &Echo<'_>,
        dialect: Dialect,
        now: OffsetDateTime,
    ) -> Begin {
        let protocol = Protocol::Upload(dialect);
        let refuse = |e: SlotError| Begin::Done(self.refuse(iq, Some(echo), Some(protocol), e));
        if !self.config.dialects.contains(&dialect.answer()) {
            return refuse(SlotError::Disabled);
        }
        if iq.type_ != IqType::Get {
            return refuse(SlotError::WrongIqType { expected: "get" });
        }
        let req = match SlotRequest::parse(echo.payload) {
            Ok(r) => r,
            Err(e) => return refuse(e.into()),
        };
        let echo = Echo {
            payload: echo.payload,
            dialect: req.dialect.answer(),
        };
        let requester = match requester(iq) {
            Ok(r) => r,
            Err(e) => return Begin::Done(self.refuse(iq, Some(&echo), Some(protocol), e)),
        };
        let ask = Ask {
            requester: &requester,
            iq_id: iq.id.unwrap_or_default(),
            filename: &req.filename,
            size: Some(req.size),
            content_type: req.content_type.as_deref(),
            sha256: req.sha256(),
            md5: None,
            get_cap: ephemeral_cap(&req, now),
            protocol: Protocol::Upload(req.dialect),
        };
        match self.check_and_issue(&ask, now) {
            Ok(checked) => {
                let payload = checked.issued.slot.to_element(req.dialect.answer());
                self.pending(iq, &echo, payload, checked)
            }
            Err(e) => Begin::Done(self.refuse(iq, Some(&echo), Some(protocol), e)),
        }
    }

    fn begin_file_transfer(&self, iq: &Iq<'_>, echo: &Echo<'_>, now: OffsetDateTime) -> Begin {
        let query = file_transfer::Query::parse(echo.payload);
        let protocol = match (&query, iq.type_) {
            (Ok(file_transfer::Query::DownloadRequest(_)), _) => Protocol::FileTransferDownload,
            (Ok(file_transfer::Query::UploadRequest(_)), _) | (_, IqType::Set) => {
                Protocol::FileTransferUpload
            }
            _ => Protocol::FileTransferDownload,
        };
        let refuse = |e: SlotError| Begin::Done(self.refuse(iq, Some(echo), Some(protocol), e));
        if !self.config.file_transfer {
            return refuse(SlotError::Disabled);
        }
        let query = match query {
            Ok(q) => q,
            Err(e) => return refuse(e.into()),
        };
        let requester = match requester(iq) {
            Ok(r) => r,
            Err(e) => return refuse(e),
        };
        let me = Some(self.jid_str.as_str());
        match (iq.type_, query) {
            (IqType::Set, file_transfer::Query::UploadRequest(req)) => {
                let ask = Ask {
                    requester: &requester,
                    iq_id: iq.id.unwrap_or_default(),
                    filename: req.filename.as_deref().unwrap_or("file"),
                    size: req.size,
                    content_type: req.content_type.as_deref(),
                    sha256: None,
                    md5: Some(req.md5),
                    get_cap: None,
                    protocol,
                };
                match self.check_and_issue(&ask, now) {
                    Ok(checked) => {
                        let target = &checked.issued.target;
                        let fileid =
                            match self.file_id(&target.object_key, &requester.to_bare(), now) {
                                Ok(id) => id,
                                Err(e) => return refuse(e),
                            };
                        // Built in the request's namespace (p1:http-file-transfer or
                        // p1:s3filetransfer).
                        let result = UploadResult {
                            upload: target.put_url.clone(),
                            fileid: Some(fileid),
                            download: Some(checked.issued.slot.get.clone()),
                            headers: target
                                .required_headers
                                .iter()
                                .map(|h| file_transfer::HttpHeader {
                                    name: h.name.clone(),
                                    value: h.value.clone(),
                                })
                                .collect(),
                            namespace: req.namespace,
                        };
                        self.pending(iq, echo, Element::from(result), checked)
                    }
                    Err(e) => refuse(e),
                }
            }
            (IqType::Get, file_transfer::Query::DownloadRequest(req)) => {
                match self.resolve(&requester, &req.fileid, now) {
                    Ok((url, object_key)) => {
                        let payload = Element::from(DownloadResult {
                            download: url,
                            namespace: req.namespace,
                        });
                        Begin::Done(Answer::new(
                            Some(iq.result(me, Some(payload))),
                            Outcome::Resolved {
                                requester,
                                object_key,
                                protocol,
                            },
                        ))
                    }
                    Err(e) => refuse(e),
                }
            }
            (IqType::Get, file_transfer::Query::UploadRequest(_)) => {
                refuse(SlotError::WrongIqType { expected: "set" })
            }
            (IqType::Set, file_transfer::Query::DownloadRequest(_)) => {
                refuse(SlotError::WrongIqType { expected: "get" })
            }
            _ => refuse(SlotError::Malformed(ParseError::MissingAttribute("md5"))),
        }
    }

    /// The reply for an issued slot: at once without quotas, else pending the charge.
    fn pending(&self, iq: &Iq<'_>, echo: &Echo<'_>, payload: Element, checked: Checked) -> Begin {
        let me = Some(self.jid_str.as_str());
        let success = iq.result(me, Some(payload));
        match checked.charge {
            None => Begin::Done(Answer::new(Some(success), Outcome::Issued(checked.info))),
            Some(charge) => {
                // The error reply without its <error/>: `complete` adds the one that applies.
                let mut failure = iq.result(me, Some(shallow_copy(echo.payload)));
                crate::xml::set(&mut failure, "type", IqType::Error.as_str());
                Begin::Charge(PendingCharge {
                    charge,
                    success,
                    failure,
                    stanza_ns: iq.ns,
                    dialect: echo.dialect,
                    info: checked.info,
                })
            }
        }
    }

    /// Checks an XEP-0363 request from `requester` and issues a slot, charging the configured
    /// [`QuotaLedger`]: the typed core of [`SlotService::handle`], for hosts that parse
    /// stanzas themselves. `iq_id` feeds the slot ID derivation (any string unique per request
    /// will do).
    ///
    /// An XEP-0363 1.2.0 `ephemeral` purpose with `expire-before` caps the GET URL's lifetime
    /// at that time; other purposes are served as `message`.
    ///
    /// # Errors
    /// The [`SlotError`] of the first check that fails (see the [module docs](self)).
    pub fn request_slot(
        &self,
        requester: &Jid,
        request: &SlotRequest,
        iq_id: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedSlot, SlotError> {
        let ask = Ask {
            requester,
            iq_id,
            filename: &request.filename,
            size: Some(request.size),
            content_type: request.content_type.as_deref(),
            sha256: request.sha256(),
            md5: None,
            get_cap: ephemeral_cap(request, now),
            protocol: Protocol::Upload(request.dialect),
        };
        let checked = self.check_and_issue(&ask, now)?;
        if let Some(c) = &checked.charge {
            self.charge(c)?;
        }
        Ok(checked.issued)
    }

    /// The simple path's charge: the stored-bytes quota on the configured inventory, then
    /// the windowed quotas on the configured ledger.
    fn charge(&self, c: &Charge) -> Result<(), ChargeError> {
        if let (Some(limit), Some(inventory)) = (c.limits.stored, &self.config.inventory) {
            let unavailable = |e: InventoryError| ChargeError::Unavailable(e.0);
            let stored = inventory.stored_bytes(&c.user).map_err(unavailable)?;
            if stored.saturating_add(c.bytes) > limit {
                let retry_at = match limit.checked_sub(c.bytes) {
                    None => None,
                    Some(target) => inventory::freed_by_age_at(
                        &inventory.files_of(&c.user).map_err(unavailable)?,
                        stored,
                        target,
                        self.config.retention.max_age,
                    ),
                };
                return Err(QuotaExceeded::new(QuotaScope::Stored, retry_at).into());
            }
        }
        if c.limits.is_windowed() {
            self.config
                .ledger
                .charge(&c.user, c.bytes, c.now, &c.limits)?;
        }
        Ok(())
    }

    /// The policy check and the (pure) issuing of the URLs; the quota charge is the caller's.
    fn check_and_issue(&self, ask: &Ask<'_>, now: OffsetDateTime) -> Result<Checked, SlotError> {
        let c = &self.config;
        if !c.access.may_upload(ask.requester) {
            return Err(SlotError::Forbidden);
        }
        let filename = FileName::new(ask.filename)?;
        if let Some(size) = ask.size {
            if size > c.max_file_size {
                return Err(SlotError::TooLarge {
                    max: c.max_file_size,
                });
            }
        }
        let content_type = ask
            .content_type
            .filter(|t| !t.is_empty())
            .map(ContentType::new)
            .transpose()?;
        if let Some(allowed) = &c.allowed_content_types {
            let octets;
            let ty = if let Some(t) = &content_type {
                t
            } else {
                octets = ContentType::octet_stream();
                &octets
            };
            if !allowed.iter().any(|p| ty.matches(p)) {
                return Err(SlotError::ContentTypeNotAllowed);
            }
        }
        let put_expires = now
            .checked_add(c.put_ttl)
            .ok_or(SlotError::Storage(StorageError::InvalidExpiry))?;
        let get_expires = match (c.get_ttl.and_then(|t| now.checked_add(t)), ask.get_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Without a declared size (a p1 upload by MD5 alone) the PUT is capped at the size
        // limit; a quota cannot be charged fairly for an unknown size, so it needs one.
        if ask.size.is_none() && c.limits.is_limited() {
            return Err(SlotError::Malformed(ParseError::MissingAttribute("size")));
        }
        let bare: BareJid = ask.requester.to_bare();

        let nanos = now.unix_timestamp_nanos().to_be_bytes();
        let size_bytes = ask.size.unwrap_or(u64::MAX).to_be_bytes();
        let full = ask.requester.to_string();
        let tag = self.slot_key.sign_fields(&[
            full.as_bytes(),
            ask.iq_id.as_bytes(),
            filename.as_str().as_bytes(),
            &size_bytes,
            content_type
                .as_ref()
                .map_or(&[][..], |t| t.as_str().as_bytes()),
            &nanos,
        ]);
        let mut slot_id = [0u8; 16];
        slot_id.copy_from_slice(tag.get(..16).unwrap_or(&[0; 16]));
        let info_type = content_type.as_ref().map(|t| t.as_str().to_owned());
        let grant = UploadGrant::new(CheckedUpload {
            slot_id,
            filename,
            size: ask.size,
            max_size: ask.size.unwrap_or(c.max_file_size),
            content_type,
            sha256: ask.sha256,
            md5: ask.md5,
            requester: bare.clone(),
            now,
            put_expires,
            get_expires,
        });
        let target = self
            .storage
            .issue_upload(&grant)
            .map_err(SlotError::Storage)?;
        let get = match &c.stable_get_base {
            Some(base) => stable_url(
                base,
                &self.file_id(&target.object_key, &bare, now)?,
                grant.filename().as_str(),
            )
            .ok_or(SlotError::Storage(StorageError::InvalidBaseUrl))?,
            None => target.get_url.clone(),
        };
        let charge = c.limits.is_limited().then(|| Charge {
            user: bare,
            bytes: ask.size.unwrap_or(0).max(c.min_charge),
            limits: c.limits,
            now,
        });
        let info = IssuedInfo {
            requester: ask.requester.clone(),
            object_key: target.object_key.clone(),
            size: ask.size,
            content_type: info_type,
            charged: charge.as_ref().map_or(0, |c| c.bytes),
            protocol: ask.protocol,
        };
        let mut slot = Slot::new(target.put_url.clone(), get);
        slot.headers = target
            .slot_headers
            .iter()
            .map(slot_header)
            .collect::<Result<_, _>>()?;
        Ok(Checked {
            issued: IssuedSlot { slot, target },
            info,
            charge,
        })
    }

    /// The file ID naming a stored object (as [`UploadTarget::object_key`] gives it) uploaded
    /// by `owner`: opaque (neither key nor owner can be read out), authenticated with the
    /// service secret, resolvable by any node holding it. The owner reaches
    /// [`AccessPolicy::may_download`] through [`FileInfo::owner`]. Sealed only on demand, as
    /// XEP-0363 slots without stable links do not need one.
    ///
    /// # Errors
    /// [`SlotError::Storage`] only if the owner is longer than any JID can be.
    pub fn file_id(
        &self,
        object_key: &str,
        owner: &BareJid,
        now: OffsetDateTime,
    ) -> Result<String, SlotError> {
        self.file_ids
            .seal(object_key, owner, now)
            .ok_or(SlotError::Storage(StorageError::InvalidKey(
                "the owner does not fit a file ID",
            )))
    }

    /// Resolves a file ID for `requester` to a fresh download URL, valid for the configured
    /// download lifetime, after the access policy agrees.
    ///
    /// # Errors
    /// [`SlotError::UnknownFileId`], [`SlotError::ExpiredFileId`], [`SlotError::Forbidden`]
    /// or [`SlotError::Storage`].
    pub fn download_url(
        &self,
        requester: &Jid,
        file_id: &str,
        now: OffsetDateTime,
    ) -> Result<Url, SlotError> {
        self.resolve(requester, file_id, now).map(|(url, _)| url)
    }

    fn resolve(
        &self,
        requester: &Jid,
        file_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Url, String), SlotError> {
        let ResolvedFileId { key, owner, .. } =
            self.file_ids.open(file_id, now, self.config.file_id_ttl)?;
        let filename = key.rsplit('/').next().unwrap_or_default();
        if !self.config.access.may_download(
            requester,
            &FileInfo {
                key: &key,
                filename,
                owner: &owner,
            },
        ) {
            return Err(SlotError::Forbidden);
        }
        let url = self.issue_download(key.clone(), now)?;
        Ok((url, key))
    }

    fn issue_download(&self, key: String, now: OffsetDateTime) -> Result<Url, SlotError> {
        let expires = now
            .checked_add(self.config.download_ttl)
            .ok_or(SlotError::Storage(StorageError::InvalidExpiry))?;
        self.storage
            .issue_download(&DownloadGrant::new(key, now, expires))
            .map_err(SlotError::Storage)
    }

    /// Resolves a stable GET URL (see [`ServiceConfig::stable_get_base`]) to a fresh storage
    /// URL for an HTTP 302. Anyone holding the link may fetch the file, as with any XEP-0363
    /// GET URL; the file ID inside must be genuine and unexpired.
    ///
    /// # Errors
    /// [`SlotError::Disabled`] without a stable base, [`SlotError::UnknownFileId`],
    /// [`SlotError::ExpiredFileId`] or [`SlotError::Storage`].
    pub fn resolve_stable_get(&self, url: &Url, now: OffsetDateTime) -> Result<Url, SlotError> {
        let base = self
            .config
            .stable_get_base
            .as_ref()
            .ok_or(SlotError::Disabled)?;
        let mut segs = url.path_segments().ok_or(SlotError::UnknownFileId)?;
        for b in base
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
        {
            if segs.next() != Some(b) {
                return Err(SlotError::UnknownFileId);
            }
        }
        let id = segs.next().ok_or(SlotError::UnknownFileId)?;
        let ResolvedFileId { key, .. } = self.file_ids.open(id, now, self.config.file_id_ttl)?;
        self.issue_download(key, now)
    }

    /// The message payload to share a file ID (`<x xmlns='p1:http-file-transfer'/>`).
    #[must_use]
    pub fn file_message(name: &str, file_id: &str) -> Element {
        FileMessage::new(name, file_id).to_element()
    }
}

/// The request payload to echo in an error, and the dialect of the error's payload.
struct Echo<'a> {
    payload: &'a Element,
    dialect: Dialect,
}

fn ephemeral_cap(request: &SlotRequest, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match request.purpose {
        Some(Purpose::Ephemeral {
            expire_before: Some(t),
        }) if t > now => Some(t),
        _ => None,
    }
}

/// Whether a payload is deeper than [`MAX_PAYLOAD_DEPTH`] or holds more than
/// [`MAX_PAYLOAD_ELEMENTS`] elements. Iterative, and stops at the first limit passed, so its
/// cost is bounded by the limits, not by the input.
fn too_complex(payload: &Element) -> bool {
    let mut stack = vec![payload.children()];
    let mut count = 1usize;
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(child) => {
                count += 1;
                if count > MAX_PAYLOAD_ELEMENTS || stack.len() >= MAX_PAYLOAD_DEPTH {
                    return true;
                }
                stack.push(child.children());
            }
            None => {
                stack.pop();
            }
        }
    }
    false
}

/// A copy of a request payload for an error's echo: the element, its attributes, and its
/// children with their attributes and text, no deeper (every request form fits; nothing is
/// cloned recursively).
fn shallow_copy(e: &Element) -> Element {
    let mut copy = Element::bare(e.name(), e.ns());
    *copy.attrs_mut() = e.attrs().clone();
    for child in e.children() {
        let mut c = Element::bare(child.name(), child.ns());
        *c.attrs_mut() = child.attrs().clone();
        for t in child.texts() {
            c.append_text_node(t);
        }
        copy.append_child(c);
    }
    copy
}

/// A backend's slot header as XEP-0363 allows it: `Authorization`, `Cookie` or `Expires`,
/// exact case, no CR or LF (strict clients such as nbxmpp reject a whole slot otherwise).
fn slot_header(h: &crate::storage::Header) -> Result<SlotHeader, SlotError> {
    use crate::stanza::upload::HeaderName;
    let name = match h.name.as_str() {
        "Authorization" => HeaderName::Authorization,
        "Cookie" => HeaderName::Cookie,
        "Expires" => HeaderName::Expires,
        _ => {
            return Err(SlotError::Storage(StorageError::Unsupported(
                "a slot header other than Authorization, Cookie or Expires",
            )))
        }
    };
    if h.value.contains(['\r', '\n']) {
        return Err(SlotError::Storage(StorageError::Unsupported(
            "a slot header value with CR or LF",
        )));
    }
    Ok(SlotHeader::new(name, &h.value))
}

fn stable_url(base: &Url, file_id: &str, filename: &str) -> Option<Url> {
    let mut u = base.clone();
    u.set_query(None);
    {
        let mut segs = u.path_segments_mut().ok()?;
        segs.pop_if_empty();
        segs.push(file_id);
        segs.push(filename);
    }
    Some(u)
}

fn requester(iq: &Iq<'_>) -> Result<Jid, SlotError> {
    iq.from
        .and_then(|f| Jid::new(f).ok())
        .ok_or(SlotError::UnknownRequester)
}

fn stanza_ns(e: &Element) -> &'static str {
    ns::STANZA_NAMESPACES
        .into_iter()
        .find(|n| e.has_ns(*n))
        .unwrap_or(ns::JABBER_CLIENT)
}
