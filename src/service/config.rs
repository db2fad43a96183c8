//! [`ServiceConfig`]: the policy of a [`SlotService`](crate::SlotService), and the
//! [`ConfigError`]s [`SlotService::try_new`](crate::SlotService::try_new) refuses it with.

use core::fmt;

use jid::Jid;
use time::Duration;
use url::Url;

use super::{
    AccessPolicy, AllowDomains, Inventory, MemoryLedger, QuotaLedger, QuotaLimits, RetentionPolicy,
};
use crate::crypto::SecretKey;
use crate::stanza::Dialect;
use crate::storage::{StorageError, MIN_KEY_LEN};

/// The default size limit: 100 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 * 1024 * 1024;

/// Configuration of a [`SlotService`](crate::SlotService).
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
    pub(super) jid: Jid,
    pub(super) secret: SecretKey,
    pub(super) previous_secrets: Vec<SecretKey>,
    pub(super) max_file_size: u64,
    pub(super) put_ttl: Duration,
    pub(super) get_ttl: Option<Duration>,
    pub(super) download_ttl: Duration,
    pub(super) file_id_ttl: Option<Duration>,
    pub(super) allowed_content_types: Option<Vec<String>>,
    pub(super) access: Box<dyn AccessPolicy>,
    pub(super) limits: QuotaLimits,
    pub(super) ledger: Box<dyn QuotaLedger>,
    pub(super) dialects: Vec<Dialect>,
    pub(super) file_transfer: bool,
    pub(super) stable_get_base: Option<Url>,
    pub(super) min_charge: u64,
    pub(super) inventory: Option<Box<dyn Inventory>>,
    pub(super) retention: RetentionPolicy,
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
            .field("min_charge", &self.min_charge)
            .field("inventory", &self.inventory)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// A configuration for the service at `service_jid`, deriving slot IDs and file IDs from
    /// `secret` (at least 32 random bytes; keep it stable across restarts and nodes). The
    /// secret's length is checked by [`SlotService::try_new`](crate::SlotService::try_new).
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
            min_charge: DEFAULT_MIN_CHARGE,
            inventory: None,
            retention: RetentionPolicy::new(),
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

    /// Bytes one bare JID may upload in a rolling 24 hours. Every slot counts at least
    /// [`ServiceConfig::min_charge`] bytes.
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

    /// Bytes one bare JID may keep stored at once (a hard quota): a slot that would take them
    /// past it is refused with `wait`/`resource-constraint`, with `<retry stamp/>` when the
    /// [`ServiceConfig::retention`] age frees enough by a known time.
    /// [`SlotService::handle`](crate::SlotService::handle) checks it on the configured
    /// [`ServiceConfig::inventory`]; on the two-phase path it is in
    /// [`Charge::limits`](super::Charge) for the host to check on its own record.
    #[must_use]
    pub fn stored_quota(mut self, bytes: u64) -> Self {
        self.limits.stored = Some(bytes);
        self
    }

    /// The record of stored files the stored-bytes quota is checked against (the host feeds
    /// it from verified PUTs and deletions).
    #[must_use]
    pub fn inventory(mut self, inventory: impl Inventory + 'static) -> Self {
        self.inventory = Some(Box::new(inventory));
        self
    }

    /// The retention the host applies with [`plan`](super::plan): the service uses its
    /// maximum age to tell a client over its stored-bytes quota when to retry.
    #[must_use]
    pub fn retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = policy;
        self
    }

    /// The retention policy ([`ServiceConfig::retention`]).
    #[must_use]
    pub fn retention_policy(&self) -> &RetentionPolicy {
        &self.retention
    }

    /// The least a slot is charged against the quotas, in bytes (default
    /// [`DEFAULT_MIN_CHARGE`], 4 KiB: about what a stored file costs in metadata and block
    /// rounding). Without it, zero-byte slots would be free and unbounded.
    #[must_use]
    pub fn min_charge(mut self, bytes: u64) -> Self {
        self.min_charge = bytes;
        self
    }

    /// The quota limits configured ([`ServiceConfig::daily_quota`],
    /// [`ServiceConfig::global_daily_quota`]).
    #[must_use]
    pub fn quota_limits(&self) -> &QuotaLimits {
        &self.limits
    }

    /// Where quotas are kept by [`SlotService::handle`](crate::SlotService::handle) (default:
    /// a [`MemoryLedger`]). Hosts that charge their own store use
    /// [`SlotService::begin`](crate::SlotService::begin) instead, which never calls the ledger.
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
    /// [`SlotService::resolve_stable_get`](crate::SlotService::resolve_stable_get) to a fresh short-lived storage URL (an HTTP 302
    /// target). Links shared in chats then outlive any presigning limit.
    #[must_use]
    pub fn stable_get_base(mut self, base: Url) -> Self {
        self.stable_get_base = Some(base);
        self
    }
}

/// The default minimum charge of a slot against the quotas: 4 KiB.
pub const DEFAULT_MIN_CHARGE: u64 = 4096;

/// A configuration [`SlotService::try_new`](crate::SlotService::try_new) refuses. Each
/// variant names the setting; none carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The service secret is shorter than [`MIN_KEY_LEN`] bytes: slot and file IDs could be
    /// guessed or forged.
    #[error("the service secret is {len} bytes long; at least {min} are required")]
    SecretTooShort {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A previous secret ([`ServiceConfig::previous_secret`]) is shorter than
    /// [`MIN_KEY_LEN`] bytes.
    #[error("a previous service secret is {len} bytes long; at least {min} are required")]
    PreviousSecretTooShort {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A lifetime is zero or negative.
    #[error("{0} must be positive")]
    NonPositiveTtl(&'static str),
    /// The stable GET base URL ([`ServiceConfig::stable_get_base`]) is unusable.
    #[error("stable_get_base: {0}")]
    StableGetBase(StorageError),
    /// No dialect and no file-ID protocol is served: the service would refuse everything.
    #[error("no protocol is enabled (dialects empty and file_transfer off)")]
    NothingServed,
    /// The storage backend refused its own configuration ([`StorageBackend::validate`](crate::StorageBackend::validate)).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl ServiceConfig {
    /// Checks everything [`SlotService::new`](crate::SlotService::new) takes on trust.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.len() < MIN_KEY_LEN {
            return Err(ConfigError::SecretTooShort {
                len: self.secret.len(),
                min: MIN_KEY_LEN,
            });
        }
        if let Some(p) = self.previous_secrets.iter().find(|p| p.len() < MIN_KEY_LEN) {
            return Err(ConfigError::PreviousSecretTooShort {
                len: p.len(),
                min: MIN_KEY_LEN,
            });
        }
        let ttls = [
            ("put_ttl", Some(self.put_ttl)),
            ("get_ttl", self.get_ttl),
            ("download_ttl", Some(self.download_ttl)),
            ("file_id_ttl", self.file_id_ttl),
        ];
        if let Some((name, _)) = ttls
            .into_iter()
            .find(|(_, t)| t.is_some_and(|t| !t.is_positive()))
        {
            return Err(ConfigError::NonPositiveTtl(name));
        }
        if !self.limits.window.is_positive() {
            return Err(ConfigError::NonPositiveTtl("quota window"));
        }
        if self.dialects.is_empty() && !self.file_transfer {
            return Err(ConfigError::NothingServed);
        }
        if let Some(base) = &self.stable_get_base {
            crate::storage::check_base(base, true).map_err(ConfigError::StableGetBase)?;
        }
        Ok(())
    }
}
