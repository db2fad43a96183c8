//! The slot service: one pure call answers every stanza addressed to the upload service.
//!
//! [`SlotService::handle`] takes a stanza and the time and returns the reply; nothing else
//! is needed, and nothing is stored per slot. The policy is checked in this order, each
//! refusal mapped onto the XEP-0363 error table:
//!
//! | step | refusal | error |
//! |---|---|---|
//! | 1. IQ type and payload | [`SlotError::Malformed`], [`SlotError::WrongIqType`] | `modify`/`bad-request` |
//! | 2. access ([`AccessPolicy`]) | [`SlotError::Forbidden`] | `auth`/`forbidden` |
//! | 3. file name ([`FileName`]) | [`SlotError::BadFileName`] | `modify`/`bad-request` |
//! | 4. size (`max_file_size`) | [`SlotError::TooLarge`] | `modify`/`not-acceptable` + `<file-too-large>` |
//! | 5. content type (syntax, allow-list) | [`SlotError::BadContentType`], [`SlotError::ContentTypeNotAllowed`] | `modify`/`bad-request`, `modify`/`not-acceptable` |
//! | 6. quota ([`QuotaLedger`]) | [`SlotError::QuotaExceeded`] | `wait`/`resource-constraint` + `<retry stamp>` |
//! | 7. storage ([`StorageBackend`]) | [`SlotError::Storage`] | `wait`/`internal-server-error` (no detail) |
//!
//! A quota charge is refunded when the storage step fails, so a refusal leaves nothing behind.

use core::fmt;

use jid::{BareJid, Jid};
use minidom::Element;
use time::{Duration, OffsetDateTime};
use url::Url;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

mod policy;
mod quota;

pub use policy::{AccessPolicy, AllowDomains, FileInfo};
pub use quota::{MemoryLedger, QuotaExceeded, QuotaLedger, QuotaLimits, QuotaScope};

use crate::checked::{ContentType, ContentTypeError, FileName, FileNameError};
use crate::crypto::SecretKey;
use crate::file_id::{FileIdError, FileIdSealer, ResolvedFileId};
use crate::ns;
use crate::stanza::disco::ServiceInfo;
use crate::stanza::error as stanza_error;
use crate::stanza::file_transfer::{self, DownloadResult, FileMessage, UploadResult};
use crate::stanza::iq::{Iq, IqType};
use crate::stanza::upload::{Purpose, Slot, SlotRequest};
use crate::stanza::{Dialect, ParseError};
use crate::storage::{DownloadGrant, StorageBackend, StorageError, UploadGrant, UploadTarget};

/// The default size limit: 100 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 * 1024 * 1024;

/// Configuration of a [`SlotService`].
///
/// ```
/// use xmpp_upload::ServiceConfig;
/// let config = ServiceConfig::new("upload.example.org".parse()?, *b"32 bytes of host secret.........")
///     .max_file_size(50 * 1024 * 1024)
///     .put_ttl(time::Duration::seconds(300))
///     .allowed_content_types(["image/*", "text/plain"])
///     .allow_domains(["example.org"])
///     .daily_quota(500 * 1024 * 1024);
/// # Ok::<(), jid::Error>(())
/// ```
pub struct ServiceConfig {
    jid: Jid,
    secret: SecretKey,
    previous_secrets: Vec<SecretKey>,
    max_file_size: u64,
    put_ttl: Duration,
    get_ttl: Option<Duration>,
    download_ttl: Duration,
    file_id_ttl: Option<Duration>,
    allowed_content_types: Option<Vec<String>>,
    access: Box<dyn AccessPolicy>,
    limits: QuotaLimits,
    ledger: Box<dyn QuotaLedger>,
    dialects: Vec<Dialect>,
    file_transfer: bool,
    stable_get_base: Option<Url>,
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("jid", &self.jid)
            .field("max_file_size", &self.max_file_size)
            .field("put_ttl", &self.put_ttl)
            .field("get_ttl", &self.get_ttl)
            .field("download_ttl", &self.download_ttl)
            .field("allowed_content_types", &self.allowed_content_types)
            .field("access", &self.access)
            .field("limits", &self.limits)
            .field("dialects", &self.dialects)
            .field("file_transfer", &self.file_transfer)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// A configuration for the service at `service_jid`, deriving slot IDs and file IDs from
    /// `secret` (at least 32 random bytes; keep it stable across restarts and nodes).
    ///
    /// Defaults: 100 MiB limit, PUT URLs valid 300 s, GET URLs without expiry, download URLs
    /// (file IDs) valid 300 s, every content type, users of the service's domain and its
    /// parent domain ([`AllowDomains::for_service`]), no quota, all three dialects and
    /// `p1:http-file-transfer`.
    pub fn new(service_jid: Jid, secret: impl Into<Vec<u8>>) -> Self {
        let access = AllowDomains::for_service(&service_jid);
        Self {
            jid: service_jid,
            secret: SecretKey::new(secret),
            previous_secrets: Vec::new(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            put_ttl: Duration::seconds(300),
            get_ttl: None,
            download_ttl: Duration::seconds(300),
            file_id_ttl: None,
            allowed_content_types: None,
            access: Box::new(access),
            limits: QuotaLimits::daily(None, None),
            ledger: Box::new(MemoryLedger::new()),
            dialects: Dialect::ALL.to_vec(),
            file_transfer: true,
            stable_get_base: None,
        }
    }

    /// The largest file accepted, in bytes (advertised in disco#info).
    #[must_use]
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// How long PUT URLs stay valid (XEP-0363 suggests about 300 s).
    #[must_use]
    pub fn put_ttl(mut self, ttl: Duration) -> Self {
        self.put_ttl = ttl;
        self
    }

    /// How long slot GET URLs stay valid (default: without expiry, as links shared in chats
    /// are expected to last; a backend may cap it, S3 at 7 days).
    #[must_use]
    pub fn get_ttl(mut self, ttl: Duration) -> Self {
        self.get_ttl = Some(ttl);
        self
    }

    /// How long download URLs issued for file IDs stay valid (default 300 s).
    #[must_use]
    pub fn download_ttl(mut self, ttl: Duration) -> Self {
        self.download_ttl = ttl;
        self
    }

    /// How long file IDs resolve (default: forever, as long as the secret is kept).
    #[must_use]
    pub fn file_id_ttl(mut self, ttl: Duration) -> Self {
        self.file_id_ttl = Some(ttl);
        self
    }

    /// Allows only these content types: `type/subtype` or `type/*` patterns. A request
    /// without a type is checked as `application/octet-stream`.
    #[must_use]
    pub fn allowed_content_types<I>(mut self, patterns: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.allowed_content_types = Some(patterns.into_iter().map(Into::into).collect());
        self
    }

    /// Allows the users of these domains (replaces the access policy with [`AllowDomains`]).
    #[must_use]
    pub fn allow_domains<I>(mut self, domains: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.access = Box::new(AllowDomains::new(domains));
        self
    }

    /// Bytes one bare JID may upload in a rolling 24 hours.
    #[must_use]
    pub fn daily_quota(mut self, bytes: u64) -> Self {
        self.limits.per_user = Some(bytes);
        self
    }

    /// Bytes all users together may upload in a rolling 24 hours.
    #[must_use]
    pub fn global_daily_quota(mut self, bytes: u64) -> Self {
        self.limits.global = Some(bytes);
        self
    }

    /// Where quotas are kept (default: a [`MemoryLedger`]).
    #[must_use]
    pub fn quota_ledger(mut self, ledger: impl QuotaLedger + 'static) -> Self {
        self.ledger = Box::new(ledger);
        self
    }

    /// Who may upload and download (replaces the default [`AllowDomains`]).
    #[must_use]
    pub fn access_policy(mut self, policy: impl AccessPolicy + 'static) -> Self {
        self.access = Box::new(policy);
        self
    }

    /// The XEP-0363 dialects served (default: all three). Requests in other dialects get
    /// `service-unavailable`.
    #[must_use]
    pub fn dialects(mut self, dialects: impl IntoIterator<Item = Dialect>) -> Self {
        self.dialects = dialects.into_iter().map(Dialect::answer).collect();
        self
    }

    /// Whether `p1:http-file-transfer` (file IDs) is served (default: yes).
    #[must_use]
    pub fn file_transfer(mut self, on: bool) -> Self {
        self.file_transfer = on;
        self
    }

    /// A secret used before the current one: file IDs made with it still resolve.
    #[must_use]
    pub fn previous_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.previous_secrets.push(SecretKey::new(secret));
        self
    }

    /// Makes slot GET URLs stable links on the host's own HTTP endpoint,
    /// `{base}/{file id}/{file name}`, which the host resolves with
    /// [`SlotService::resolve_stable_get`] to a fresh short-lived storage URL (an HTTP 302
    /// target). Links shared in chats then outlive any presigning limit.
    #[must_use]
    pub fn stable_get_base(mut self, base: Url) -> Self {
        self.stable_get_base = Some(base);
        self
    }
}

/// Why a request was refused. [`SlotError::to_stanza_error`] gives the XEP-0363 error; the
/// `Display` text never contains a secret, a signature or a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlotError {
    /// The payload could not be parsed.
    #[error("malformed request: {0}")]
    Malformed(#[from] ParseError),
    /// The IQ type does not fit the payload.
    #[error("wrong IQ type: this request is sent as '{expected}'")]
    WrongIqType {
        /// The expected type.
        expected: &'static str,
    },
    /// The IQ has no usable `from`.
    #[error("the requester is unknown: missing or invalid 'from'")]
    UnknownRequester,
    /// The access policy refused the requester.
    #[error("not allowed to use this service")]
    Forbidden,
    /// The file name is not acceptable.
    #[error("bad file name: {0}")]
    BadFileName(#[from] FileNameError),
    /// The file is larger than the service's limit.
    #[error("file too large: the maximum file size is {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The content type is not a valid MIME type.
    #[error("bad content type: {0}")]
    BadContentType(#[from] ContentTypeError),
    /// The content type is not in the allow-list.
    #[error("this content type is not allowed")]
    ContentTypeNotAllowed,
    /// The quota is exhausted.
    #[error("quota reached")]
    QuotaExceeded {
        /// When to retry, if known.
        retry_at: Option<OffsetDateTime>,
    },
    /// The file ID is not one of this service's, or was altered.
    #[error("unknown file ID")]
    UnknownFileId,
    /// The file ID has expired.
    #[error("expired file ID")]
    ExpiredFileId,
    /// The dialect or protocol is switched off.
    #[error("this protocol is not served here")]
    Disabled,
    /// The storage backend failed (details are kept out of the stanza).
    #[error("storage failure")]
    Storage(StorageError),
}

impl SlotError {
    /// The stanza error for this refusal, with the upload payload in `dialect`'s namespace.
    #[must_use]
    pub fn to_stanza_error(&self, dialect: Dialect) -> StanzaError {
        use DefinedCondition as C;
        use ErrorType as T;
        let text = self.to_string();
        match self {
            SlotError::TooLarge { max } => stanza_error::file_too_large(dialect, *max),
            SlotError::QuotaExceeded { retry_at } => {
                stanza_error::quota_exceeded(dialect, *retry_at)
            }
            SlotError::Forbidden => stanza_error::plain(T::Auth, C::Forbidden, &text),
            SlotError::ContentTypeNotAllowed => {
                stanza_error::plain(T::Modify, C::NotAcceptable, &text)
            }
            SlotError::UnknownFileId | SlotError::ExpiredFileId => {
                stanza_error::plain(T::Cancel, C::ItemNotFound, &text)
            }
            SlotError::Disabled => stanza_error::plain(T::Cancel, C::ServiceUnavailable, &text),
            SlotError::Storage(_) => stanza_error::plain(
                T::Wait,
                C::InternalServerError,
                "The file storage is unavailable; try again later",
            ),
            SlotError::Malformed(_)
            | SlotError::WrongIqType { .. }
            | SlotError::UnknownRequester
            | SlotError::BadFileName(_)
            | SlotError::BadContentType(_) => stanza_error::plain(T::Modify, C::BadRequest, &text),
        }
    }
}

impl From<FileIdError> for SlotError {
    fn from(e: FileIdError) -> Self {
        match e {
            FileIdError::Unknown => SlotError::UnknownFileId,
            FileIdError::Expired => SlotError::ExpiredFileId,
        }
    }
}

/// A slot issued by [`SlotService::request_slot`].
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
/// let service = SlotService::new(config, store);
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

impl<S: StorageBackend> SlotService<S> {
    /// A service answering with `config`'s policy and `storage`'s URLs.
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
    /// `from`/`to` and mirrors the request's dialect and stanza namespace.
    ///
    /// `None`: not a stanza this service handles (messages, presences, IQ results and
    /// errors, other payloads); the host routes it elsewhere.
    #[must_use]
    pub fn handle(&self, stanza: &Element, now: OffsetDateTime) -> Option<Element> {
        let iq = match Iq::parse(stanza)? {
            Ok(iq) => iq,
            Err(e) => {
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
                let err = SlotError::Malformed(e).to_stanza_error(Dialect::V0);
                return Some(echo.error(Some(&self.jid_str), None, err));
            }
        };
        if matches!(iq.type_, IqType::Result | IqType::Error) {
            return None;
        }
        let me = Some(self.jid_str.as_str());
        let Some(payload) = iq.payload else {
            let err = SlotError::Malformed(ParseError::MissingChild("payload"))
                .to_stanza_error(Dialect::V0);
            return Some(iq.error(me, None, err));
        };
        let bad_id = || {
            let err = SlotError::Malformed(ParseError::MissingAttribute("id"))
                .to_stanza_error(Dialect::V0);
            iq.error(me, Some(payload.clone()), err)
        };
        let payload_ns = payload.ns();
        if let Some(dialect) =
            Dialect::from_namespace(&payload_ns).filter(|_| payload.name() == "request")
        {
            if iq.id.is_none() {
                return Some(bad_id());
            }
            let result = if !self.config.dialects.contains(&dialect) {
                Err(SlotError::Disabled)
            } else if iq.type_ != IqType::Get {
                Err(SlotError::WrongIqType { expected: "get" })
            } else {
                SlotRequest::parse(payload)
                    .map_err(SlotError::from)
                    .and_then(|req| {
                        let requester = requester(&iq)?;
                        let issued =
                            self.request_slot(&requester, &req, iq.id.unwrap_or_default(), now)?;
                        Ok((req.dialect, issued))
                    })
            };
            return Some(match result {
                Ok((d, issued)) => iq.result(me, Some(issued.slot.to_element(d))),
                Err(e) => {
                    // Mirror the dialect in the error payload; a hybrid request is answered
                    // in the :0 namespace.
                    let d = SlotRequest::parse(payload).map_or(dialect, |r| r.dialect.answer());
                    iq.error(me, Some(payload.clone()), e.to_stanza_error(d))
                }
            });
        }
        match (payload.name(), payload_ns.as_str()) {
            ("query", ns::DISCO_INFO) => Some(match (iq.type_, payload.attr("node")) {
                (IqType::Get, None) => iq.result(me, Some(self.disco.clone())),
                (IqType::Get, Some(_)) => iq.error(
                    me,
                    None,
                    stanza_error::plain(
                        ErrorType::Cancel,
                        DefinedCondition::ItemNotFound,
                        "no such node",
                    ),
                ),
                _ => iq.error(
                    me,
                    None,
                    SlotError::WrongIqType { expected: "get" }.to_stanza_error(Dialect::V0),
                ),
            }),
            ("query", ns::DISCO_ITEMS) => Some(match iq.type_ {
                IqType::Get => iq.result(me, Some(Element::bare("query", ns::DISCO_ITEMS))),
                _ => iq.error(
                    me,
                    None,
                    SlotError::WrongIqType { expected: "get" }.to_stanza_error(Dialect::V0),
                ),
            }),
            ("query", ns::FILE_TRANSFER | ns::FILE_TRANSFER_S3) => {
                if iq.id.is_none() {
                    return Some(bad_id());
                }
                Some(match self.file_transfer(&iq, payload, now) {
                    Ok(reply) => {
                        iq.result(me, Some(file_transfer::in_namespace(reply, &payload_ns)))
                    }
                    Err(e) => iq.error(me, Some(payload.clone()), e.to_stanza_error(Dialect::V0)),
                })
            }
            _ => None,
        }
    }

    fn file_transfer(
        &self,
        iq: &Iq<'_>,
        payload: &Element,
        now: OffsetDateTime,
    ) -> Result<Element, SlotError> {
        if !self.config.file_transfer {
            return Err(SlotError::Disabled);
        }
        match (iq.type_, file_transfer::Query::parse(payload)?) {
            (IqType::Set, file_transfer::Query::UploadRequest(req)) => {
                let requester = requester(iq)?;
                let name = req.filename.as_deref().unwrap_or("file");
                let issued = self.issue(
                    &requester,
                    iq.id.unwrap_or_default(),
                    name,
                    req.size,
                    req.content_type.as_deref(),
                    None,
                    Some(req.md5),
                    None,
                    now,
                )?;
                let download = issued.slot.get.clone();
                Ok(UploadResult {
                    upload: issued.target.put_url,
                    fileid: Some(self.file_id(&issued.target.object_key, now)),
                    download: Some(download),
                    headers: issued.target.required_headers,
                    namespace: req.namespace,
                }
                .to_element())
            }
            (IqType::Get, file_transfer::Query::DownloadRequest(req)) => {
                let requester = requester(iq)?;
                let url = self.download_url(&requester, &req.fileid, now)?;
                Ok(DownloadResult {
                    download: url,
                    namespace: req.namespace,
                }
                .to_element())
            }
            (IqType::Get, file_transfer::Query::UploadRequest(_)) => {
                Err(SlotError::WrongIqType { expected: "set" })
            }
            (IqType::Set, file_transfer::Query::DownloadRequest(_)) => {
                Err(SlotError::WrongIqType { expected: "get" })
            }
            _ => Err(SlotError::Malformed(ParseError::MissingAttribute("md5"))),
        }
    }

    /// Checks an XEP-0363 request from `requester` and issues a slot: the typed core of
    /// [`SlotService::handle`], for hosts that parse stanzas themselves. `iq_id` feeds the
    /// slot ID derivation (any string unique per request will do).
    ///
    /// An XEP-0363 1.2.0 `ephemeral` purpose with `expire-before` caps the GET URL's lifetime
    /// at that time; other purposes are served as `message`.
    pub fn request_slot(
        &self,
        requester: &Jid,
        request: &SlotRequest,
        iq_id: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedSlot, SlotError> {
        let get_cap = match request.purpose {
            Some(Purpose::Ephemeral {
                expire_before: Some(t),
            }) if t > now => Some(t),
            _ => None,
        };
        self.issue(
            requester,
            iq_id,
            &request.filename,
            Some(request.size),
            request.content_type.as_deref(),
            request.sha256(),
            None,
            get_cap,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        requester: &Jid,
        iq_id: &str,
        filename: &str,
        size: Option<u64>,
        content_type: Option<&str>,
        sha256: Option<[u8; 32]>,
        md5: Option<[u8; 16]>,
        get_cap: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<IssuedSlot, SlotError> {
        let c = &self.config;
        if !c.access.may_upload(requester) {
            return Err(SlotError::Forbidden);
        }
        let filename = FileName::new(filename)?;
        if let Some(size) = size {
            if size > c.max_file_size {
                return Err(SlotError::TooLarge {
                    max: c.max_file_size,
                });
            }
        }
        let content_type = content_type
            .filter(|t| !t.is_empty())
            .map(ContentType::new)
            .transpose()?;
        if let Some(allowed) = &c.allowed_content_types {
            let octets;
            let ty = match &content_type {
                Some(t) => t,
                None => {
                    octets = ContentType::new("application/octet-stream")?;
                    &octets
                }
            };
            if !allowed.iter().any(|p| ty.matches(p)) {
                return Err(SlotError::ContentTypeNotAllowed);
            }
        }
        let put_expires = now
            .checked_add(c.put_ttl)
            .ok_or(SlotError::Storage(StorageError::InvalidExpiry))?;
        let get_expires = match (c.get_ttl.and_then(|t| now.checked_add(t)), get_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Without a declared size (a p1 upload by MD5 alone) the PUT is capped at the size
        // limit; a quota cannot be charged fairly for an unknown size, so it needs one.
        if size.is_none() && (c.limits.per_user.is_some() || c.limits.global.is_some()) {
            return Err(SlotError::Malformed(ParseError::MissingAttribute("size")));
        }
        let bare: BareJid = requester.to_bare();
        let charge = size.unwrap_or(0);
        c.ledger
            .charge(&bare, charge, now, &c.limits)
            .map_err(|e| SlotError::QuotaExceeded {
                retry_at: e.retry_at,
            })?;

        let nanos = now.unix_timestamp_nanos().to_be_bytes();
        let size_bytes = size.unwrap_or(u64::MAX).to_be_bytes();
        let full = requester.to_string();
        let tag = self.slot_key.sign_fields(&[
            full.as_bytes(),
            iq_id.as_bytes(),
            filename.as_str().as_bytes(),
            &size_bytes,
            content_type
                .as_ref()
                .map_or(&[][..], |t| t.as_str().as_bytes()),
            &nanos,
        ]);
        let mut slot_id = [0u8; 16];
        slot_id.copy_from_slice(tag.get(..16).unwrap_or(&[0; 16]));
        let grant = UploadGrant::new(
            slot_id,
            filename,
            size,
            size.unwrap_or(c.max_file_size),
            content_type,
            sha256,
            md5,
            bare.clone(),
            now,
            put_expires,
            get_expires,
        );
        let target = match self.storage.issue_upload(&grant) {
            Ok(t) => t,
            Err(e) => {
                c.ledger.refund(&bare, charge, now);
                return Err(SlotError::Storage(e));
            }
        };
        let get = match &c.stable_get_base {
            Some(base) => match stable_url(
                base,
                &self.file_id(&target.object_key, now),
                grant.filename().as_str(),
            ) {
                Some(u) => u,
                None => {
                    c.ledger.refund(&bare, charge, now);
                    return Err(SlotError::Storage(StorageError::InvalidBaseUrl));
                }
            },
            None => target.get_url.clone(),
        };
        let mut slot = Slot::new(target.put_url.clone(), get);
        slot.headers = target.slot_headers.clone();
        Ok(IssuedSlot { slot, target })
    }

    /// The file ID naming a stored object (as [`UploadTarget::object_key`] gives it): opaque,
    /// authenticated with the service secret, resolvable by any node holding it. Sealed only
    /// on demand, as XEP-0363 slots without stable links do not need one.
    #[must_use]
    pub fn file_id(&self, object_key: &str, now: OffsetDateTime) -> String {
        self.file_ids.seal(object_key, now)
    }

    /// Resolves a file ID for `requester` to a fresh download URL, valid for the configured
    /// download lifetime, after the access policy agrees.
    pub fn download_url(
        &self,
        requester: &Jid,
        file_id: &str,
        now: OffsetDateTime,
    ) -> Result<Url, SlotError> {
        let ResolvedFileId { key, .. } =
            self.file_ids.open(file_id, now, self.config.file_id_ttl)?;
        let filename = key.rsplit('/').next().unwrap_or_default();
        if !self.config.access.may_download(
            requester,
            &FileInfo {
                key: &key,
                filename,
            },
        ) {
            return Err(SlotError::Forbidden);
        }
        self.issue_download(key, now)
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
    pub fn resolve_stable_get(&self, url: &Url, now: OffsetDateTime) -> Result<Url, SlotError> {
        let base = self
            .config
            .stable_get_base
            .as_ref()
            .ok_or(SlotError::Disabled)?;
        let base_segs: Vec<&str> = base
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let mut segs = url.path_segments().ok_or(SlotError::UnknownFileId)?;
        for b in base_segs {
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
