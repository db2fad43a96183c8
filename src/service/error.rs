//! [`SlotError`]: why a request was refused, and the XEP-0363 error it becomes.

use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::{ChargeError, QuotaExceeded};
use crate::checked::{ContentTypeError, FileNameError};
use crate::file_id::FileIdError;
use crate::stanza::error as stanza_error;
use crate::stanza::{Dialect, ParseError};
use crate::storage::{HostError, StorageError};

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
    /// A quota refused the slot (which one, and when to retry if known).
    #[error("quota reached")]
    QuotaExceeded(QuotaExceeded),
    /// The quota ledger failed; the cause is the [`source`](std::error::Error::source), for
    /// the host's logs only.
    #[error("the quota ledger is unavailable")]
    QuotaUnavailable(#[source] HostError),
    /// The payload is deeper or larger than [`MAX_PAYLOAD_DEPTH`](super::MAX_PAYLOAD_DEPTH) / [`MAX_PAYLOAD_ELEMENTS`](super::MAX_PAYLOAD_ELEMENTS)
    /// allow; no upload payload comes near them.
    #[error("payload too deep or too large")]
    PayloadTooComplex,
    /// The file ID is not one of this service's, or was altered.
    #[error("unknown file ID")]
    UnknownFileId,
    /// The file ID has expired.
    #[error("expired file ID")]
    ExpiredFileId,
    /// The dialect or protocol is switched off.
    #[error("this protocol is not served here")]
    Disabled,
    /// The storage backend failed. Details stay out of the stanza; the cause is the
    /// [`source`](std::error::Error::source).
    #[error("storage failure")]
    Storage(#[source] StorageError),
}

impl SlotError {
    /// A short, stable label for metrics and logs (`"too_large"`, `"quota"`, …): one per
    /// variant, never changed once released, so dashboards keep working.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            SlotError::Malformed(_) => "malformed",
            SlotError::WrongIqType { .. } => "wrong_iq_type",
            SlotError::UnknownRequester => "unknown_requester",
            SlotError::Forbidden => "forbidden",
            SlotError::BadFileName(_) => "bad_file_name",
            SlotError::TooLarge { .. } => "too_large",
            SlotError::BadContentType(_) => "bad_content_type",
            SlotError::ContentTypeNotAllowed => "content_type_not_allowed",
            SlotError::QuotaExceeded(_) => "quota",
            SlotError::QuotaUnavailable(_) => "quota_unavailable",
            SlotError::PayloadTooComplex => "payload_too_complex",
            SlotError::UnknownFileId => "unknown_file_id",
            SlotError::ExpiredFileId => "expired_file_id",
            SlotError::Disabled => "disabled",
            SlotError::Storage(_) => "storage",
        }
    }

    /// The stanza error for this refusal, with the upload payload in `dialect`'s namespace.
    #[must_use]
    pub fn to_stanza_error(&self, dialect: Dialect) -> StanzaError {
        use DefinedCondition as C;
        use ErrorType as T;
        let text = self.to_string();
        match self {
            SlotError::TooLarge { max } => stanza_error::file_too_large(dialect, *max),
            SlotError::QuotaExceeded(e) => stanza_error::quota_exceeded(dialect, e.retry_at),
            SlotError::Forbidden => stanza_error::plain(T::Auth, C::Forbidden, &text),
            SlotError::ContentTypeNotAllowed => {
                stanza_error::plain(T::Modify, C::NotAcceptable, &text)
            }
            SlotError::UnknownFileId | SlotError::ExpiredFileId => {
                stanza_error::plain(T::Cancel, C::ItemNotFound, &text)
            }
            SlotError::Disabled => stanza_error::plain(T::Cancel, C::ServiceUnavailable, &text),
            // A backend that cannot cap an undeclared size (S3): the client must declare it;
            // retrying the same request would not help.
            SlotError::Storage(StorageError::SizeRequired) => stanza_error::plain(
                T::Modify,
                C::BadRequest,
                "This service needs the file size: declare it in the request",
            ),
            SlotError::Storage(_) | SlotError::QuotaUnavailable(_) => stanza_error::plain(
                T::Wait,
                C::InternalServerError,
                "The file storage is unavailable; try again later",
            ),
            SlotError::Malformed(_)
            | SlotError::WrongIqType { .. }
            | SlotError::UnknownRequester
            | SlotError::PayloadTooComplex
            | SlotError::BadFileName(_)
            | SlotError::BadContentType(_) => stanza_error::plain(T::Modify, C::BadRequest, &text),
        }
    }
}

impl From<ChargeError> for SlotError {
    fn from(e: ChargeError) -> Self {
        match e {
            ChargeError::Exceeded(e) => SlotError::QuotaExceeded(e),
            ChargeError::Unavailable(cause) => SlotError::QuotaUnavailable(cause),
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
