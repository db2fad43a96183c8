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
//! | 3. file name ([`FileName`](crate::checked::FileName)) | [`SlotError::BadFileName`] | `modify`/`bad-request` |
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

use minidom::Element;

mod config;
mod error;
mod inventory;
mod outcome;
mod policy;
mod quota;

// The methods of `SlotService` by idea, in the order rustdoc lists them (those of the impl
// below come last): the stanza entry points, the typed slot request, file IDs.
mod dispatch;
mod upload;
// (a group of its own, or rustfmt would sort it before `upload`)
mod download;

pub use config::{ConfigError, ServiceConfig, DEFAULT_MAX_FILE_SIZE, DEFAULT_MIN_CHARGE};
pub use dispatch::{MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_ELEMENTS};
pub use error::SlotError;
pub use inventory::{
    plan, plan_account_removal, DeleteReason, Deletion, Inventory, InventoryError, MemoryInventory,
    RetentionPolicy, StoredFile,
};
pub use outcome::{Answer, Begin, Charge, IssuedInfo, Outcome, PendingCharge, Protocol};
pub use policy::{AccessPolicy, AllowDomains, FileInfo};
pub use quota::{ChargeError, MemoryLedger, QuotaExceeded, QuotaLedger, QuotaLimits, QuotaScope};

use crate::crypto::SecretKey;
use crate::file_id::FileIdSealer;
use crate::stanza::disco::ServiceInfo;
use crate::stanza::upload::{Purpose, Slot};
use crate::storage::{StorageBackend, UploadTarget};

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
}
