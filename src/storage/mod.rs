//! Storage backends: where slots point to.
//!
//! The [`SlotService`](crate::SlotService) checks a request against its policy and hands the
//! backend an [`UploadGrant`], a value only that check can build. The backend turns it into
//! an [`UploadTarget`] (PUT URL, headers, GET URL) without any I/O: every URL carries its own
//! signature, expiry and bindings, so nothing is stored per slot.
//!
//! | backend | module | verifier |
//! |---|---|---|
//! | HMAC-signed URLs for your own HTTP endpoint | [`signed`] | [`signed::SignedUrlStore::verify_put`] / [`verify_get`](signed::SignedUrlStore::verify_get) |
//! | external upload servers (`mod_http_upload_external` protocol) | [`external`] | the external server |
//! | S3 and compatible stores (SigV4 presigned URLs) | [`s3`] | the store |

use core::fmt;

use jid::BareJid;
use time::OffsetDateTime;
use url::Url;

use crate::checked::{ContentType, FileName};

mod urls;
pub(crate) use urls::check_base;

#[cfg(feature = "external")]
#[cfg_attr(docsrs, doc(cfg(feature = "external")))]
pub mod external;
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub mod s3;
#[cfg(feature = "signed")]
#[cfg_attr(docsrs, doc(cfg(feature = "signed")))]
pub mod signed;

/// Issues upload targets and download URLs for checked requests.
///
/// Implementations are pure: they derive URLs from the grant and their own configuration and
/// never perform I/O. They must be `Send + Sync`, as one service answers from many threads.
///
/// # Security
/// * The grant has passed the service's policy; a backend must bind at least its size and,
///   where the store allows, its content type and digest into the PUT URL, so that the store
///   refuses any other body.
/// * A URL must expire no later than the grant says ([`UploadGrant::put_expires`],
///   [`UploadGrant::get_expires`], [`DownloadGrant::expires`]).
/// * Keys and secrets must never appear in URLs, `Debug` output or errors.
pub trait StorageBackend: Send + Sync + fmt::Debug {
    /// Issues the PUT target (and the GET URL of the slot) for a checked request.
    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError>;

    /// Issues a download URL for a stored object.
    fn issue_download(&self, grant: &DownloadGrant) -> Result<Url, StorageError>;

    /// Checks the backend's configuration once, before it serves anything:
    /// [`SlotService::try_new`](crate::SlotService::try_new) calls it and refuses a backend
    /// that returns an error. The default accepts everything; the built-in backends refuse
    /// keys shorter than [`MIN_KEY_LEN`], base URLs with credentials, a query or a fragment,
    /// and (S3) settings the store would refuse.
    fn validate(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl<T: StorageBackend + ?Sized> StorageBackend for Box<T> {
    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError> {
        (**self).issue_upload(grant)
    }
    fn issue_download(&self, grant: &DownloadGrant) -> Result<Url, StorageError> {
        (**self).issue_download(grant)
    }
    fn validate(&self) -> Result<(), StorageError> {
        (**self).validate()
    }
}

impl<T: StorageBackend + ?Sized> StorageBackend for std::sync::Arc<T> {
    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError> {
        (**self).issue_upload(grant)
    }
    fn issue_download(&self, grant: &DownloadGrant) -> Result<Url, StorageError> {
        (**self).issue_download(grant)
    }
    fn validate(&self) -> Result<(), StorageError> {
        (**self).validate()
    }
}

/// A request that passed the service's policy: proof that access, name, size, type and quota
/// were checked. Only this crate can build one.
#[derive(Debug, Clone)]
pub struct UploadGrant {
    key: String,
    checked: CheckedUpload,
    _proof: (),
}

/// What the service's policy check established about one upload, field by field: the one
/// value an [`UploadGrant`] is built from (crate-private; only the service builds one).
#[derive(Debug, Clone)]
pub(crate) struct CheckedUpload {
    pub(crate) slot_id: [u8; 16],
    pub(crate) filename: FileName,
    pub(crate) size: Option<u64>,
    pub(crate) max_size: u64,
    pub(crate) content_type: Option<ContentType>,
    pub(crate) sha256: Option<[u8; 32]>,
    pub(crate) md5: Option<[u8; 16]>,
    pub(crate) requester: BareJid,
    pub(crate) now: OffsetDateTime,
    pub(crate) put_expires: OffsetDateTime,
    pub(crate) get_expires: Option<OffsetDateTime>,
}

impl UploadGrant {
    /// The grant of a checked upload, with its object key `{slot id hex}/{file name}`.
    pub(crate) fn new(checked: CheckedUpload) -> Self {
        let key = format!(
            "{}/{}",
            crate::crypto::hex(&checked.slot_id),
            checked.filename.as_str()
        );
        Self {
            key,
            checked,
            _proof: (),
        }
    }

    /// Whether the client is told which headers its PUT must carry
    /// ([`UploadTarget::required_headers`], listed in `p1:http-file-transfer` results). XEP-0363
    /// clients only send `Content-Length`, `Content-Type` and the slot headers, so a backend
    /// must not require anything else of them (an S3 `x-amz-checksum-sha256`, say).
    #[must_use]
    pub fn client_sends_required_headers(&self) -> bool {
        // p1 results list the required headers; only p1 uploads carry an MD5.
        self.checked.md5.is_some()
    }

    /// The object key the service suggests: `{32 hex digits of the slot ID}/{file name}`.
    /// The file name is a single safe segment, so the key has exactly one `/`.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The 128-bit slot ID, unpredictable without the service secret.
    #[must_use]
    pub fn slot_id(&self) -> [u8; 16] {
        self.checked.slot_id
    }

    /// The checked file name.
    #[must_use]
    pub fn filename(&self) -> &FileName {
        &self.checked.filename
    }

    /// The exact size in bytes; `None` only for `p1:http-file-transfer` uploads that did not
    /// declare one, where the MD5 binds the content and [`UploadGrant::max_size`] the limit.
    #[must_use]
    pub fn size(&self) -> Option<u64> {
        self.checked.size
    }

    /// The largest body the PUT may carry: the exact size when known, else the service limit.
    #[must_use]
    pub fn max_size(&self) -> u64 {
        self.checked.max_size
    }

    /// The checked content type, when the client gave one.
    #[must_use]
    pub fn content_type(&self) -> Option<&ContentType> {
        self.checked.content_type.as_ref()
    }

    /// The SHA-256 of the file, when the client gave one (XEP-0300 `<hash/>`).
    #[must_use]
    pub fn sha256(&self) -> Option<&[u8; 32]> {
        self.checked.sha256.as_ref()
    }

    /// The MD5 of the file (`p1:http-file-transfer`).
    #[must_use]
    pub fn md5(&self) -> Option<&[u8; 16]> {
        self.checked.md5.as_ref()
    }

    /// Who asked.
    #[must_use]
    pub fn requester(&self) -> &BareJid {
        &self.checked.requester
    }

    /// The time of the request.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.checked.now
    }

    /// When the PUT URL must stop working.
    #[must_use]
    pub fn put_expires(&self) -> OffsetDateTime {
        self.checked.put_expires
    }

    /// When the slot's GET URL must stop working (`None`: as long as the backend allows).
    #[must_use]
    pub fn get_expires(&self) -> Option<OffsetDateTime> {
        self.checked.get_expires
    }
}

/// A download the service decided to serve (access checked, file ID verified).
#[derive(Debug, Clone)]
pub struct DownloadGrant {
    pub(crate) key: String,
    pub(crate) now: OffsetDateTime,
    pub(crate) expires: OffsetDateTime,
    _proof: (),
}

impl DownloadGrant {
    pub(crate) fn new(key: String, now: OffsetDateTime, expires: OffsetDateTime) -> Self {
        Self {
            key,
            now,
            expires,
            _proof: (),
        }
    }

    /// The object key (as returned in [`UploadTarget::object_key`]).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The time of the request.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// When the URL must stop working.
    #[must_use]
    pub fn expires(&self) -> OffsetDateTime {
        self.expires
    }
}

/// An HTTP header: a name and a value. Storage's own type, so backends do not depend on the
/// XML layer; the service turns them into XEP-0363 `<header/>`s or p1 `<header/>`s.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Header {
    /// The name, as the HTTP request must carry it.
    pub name: String,
    /// The exact value.
    pub value: String,
}

impl Header {
    /// A header.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Where and how to upload, and where the file will be.
///
/// `Debug` shows the URLs without their query: a signed URL is a bearer capability.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct UploadTarget {
    /// The PUT URL.
    pub put_url: Url,
    /// Headers to hand to XEP-0363 clients in the slot. XEP-0363 allows only
    /// `Authorization`, `Cookie` and `Expires` (exact case, no CR/LF); the service refuses a
    /// target with any other, as strict clients reject the whole slot.
    pub slot_headers: Vec<Header>,
    /// HTTP headers the PUT must carry with these exact values (`Content-Type`,
    /// `Content-MD5`, …): listed in `p1:http-file-transfer` results.
    pub required_headers: Vec<Header>,
    /// The GET URL of the slot.
    pub get_url: Url,
    /// The key the object is stored under, for later [`DownloadGrant`]s.
    pub object_key: String,
}

impl fmt::Debug for UploadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |h: &mut dyn Iterator<Item = &str>| h.map(str::to_owned).collect::<Vec<_>>();
        f.debug_struct("UploadTarget")
            .field("put_url", &crate::redact::RedactedUrl(&self.put_url))
            .field(
                "slot_headers",
                &names(&mut self.slot_headers.iter().map(|h| h.name.as_str())),
            )
            .field(
                "required_headers",
                &names(&mut self.required_headers.iter().map(|h| h.name.as_str())),
            )
            .field("get_url", &crate::redact::RedactedUrl(&self.get_url))
            .field("object_key", &self.object_key)
            .finish()
    }
}

impl UploadTarget {
    /// A target without headers.
    #[must_use]
    pub fn new(put_url: Url, get_url: Url, object_key: impl Into<String>) -> Self {
        Self {
            put_url,
            slot_headers: Vec::new(),
            required_headers: Vec::new(),
            get_url,
            object_key: object_key.into(),
        }
    }

    /// Adds a header the PUT must carry.
    #[must_use]
    pub fn with_required_header(mut self, name: &str, value: &str) -> Self {
        self.required_headers.push(Header::new(name, value));
        self
    }
}

/// Why a backend could not issue a URL. Never carries a key, a signature or a signed URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The base URL is plain `http` on a non-loopback host and the backend was not told to
    /// allow it.
    #[error("the base URL is not https; allow plain http explicitly")]
    InsecureBaseUrl,
    /// The base URL cannot have paths below it (`data:`, `mailto:` …) or carries credentials,
    /// a query or a fragment.
    #[error("unusable base URL: it must be hierarchical, without credentials, query or fragment")]
    InvalidBaseUrl,
    /// The requested lifetime exceeds what the backend can sign.
    #[error("URL lifetime longer than the backend's maximum of {max_seconds} s")]
    ExpiryTooLong {
        /// The maximum, in seconds.
        max_seconds: u64,
    },
    /// The expiry lies before the request time or outside the representable range.
    #[error("URL expiry out of range")]
    InvalidExpiry,
    /// The object key is not one this backend can store.
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    /// The backend cannot honour what the grant requires.
    #[error("unsupported by this backend: {0}")]
    Unsupported(&'static str),
    /// The upload's size was not declared (a `p1:http-file-transfer` request by MD5 alone) and
    /// this backend cannot cap the body otherwise: a presigned S3 PUT signs one exact
    /// `Content-Length`, never a range; external servers check the size in their MAC.
    #[error("this backend needs the upload's size to be declared")]
    SizeRequired,
    /// A key or secret is shorter than [`MIN_KEY_LEN`] bytes: URLs signed with it could be
    /// forged.
    #[error("the key is {len} bytes long; at least {min} are required")]
    KeyTooShort {
        /// The length given.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The base URL carries a user name or password: it would be printed in every URL.
    #[error("the base URL carries credentials (user:password@); remove them")]
    BaseUrlCredentials,
    /// The base URL carries a query or a fragment, which signed URLs cannot keep.
    #[error("the base URL has a query or a fragment; remove it")]
    BaseUrlQueryOrFragment,
    /// An S3 setting the store would refuse; the text names the setting and the rule.
    #[error("invalid S3 configuration: {0}")]
    InvalidS3Config(&'static str),
    /// A failure in a host-provided backend. `Display` says only that; the cause is reachable
    /// through [`std::error::Error::source`] for the host's logs and never reaches a stanza.
    #[error("storage backend failure")]
    Backend(#[source] HostError),
}

/// The shortest key or secret the built-in backends and the service accept, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// A failure in host code (a database, a host-provided backend), kept as the
/// [`source`](std::error::Error::source) of this crate's errors so the host can log it.
///
/// Cheap to clone (shared). Two values are equal only when they share the same cause.
///
/// ```
/// use xmpp_upload::storage::{HostError, StorageError};
/// let cause = std::io::Error::other("connection refused");
/// let err = StorageError::Backend(HostError::new(cause));
/// assert_eq!(err.to_string(), "storage backend failure");
/// let source = std::error::Error::source(&err).expect("the cause is kept");
/// assert_eq!(source.to_string(), "connection refused");
/// ```
#[derive(Clone)]
pub struct HostError(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>);

impl HostError {
    /// Wraps a host error.
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(cause))
    }

    /// The host's error.
    #[must_use]
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl From<Box<dyn std::error::Error + Send + Sync + 'static>> for HostError {
    fn from(cause: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        Self(std::sync::Arc::from(cause))
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for HostError {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for HostError {}

/// Checks a key's length against [`MIN_KEY_LEN`].
#[cfg(feature = "service")]
pub(crate) fn check_key_len(len: usize) -> Result<(), StorageError> {
    if len < MIN_KEY_LEN {
        return Err(StorageError::KeyTooShort {
            len,
            min: MIN_KEY_LEN,
        });
    }
    Ok(())
}
