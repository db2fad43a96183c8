//! Steps 2 to 4 of SigV4: the string to sign, the signing key and the signature.
//!
//! ```text
//! StringToSign = "AWS4-HMAC-SHA256" \n TimeStamp \n Scope \n hex(SHA256(CanonicalRequest))
//! Scope        = yyyymmdd/region/s3/aws4_request
//! SigningKey   = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), "s3"), "aws4_request")
//! Signature    = hex(HMAC(SigningKey, StringToSign))
//! ```
//! The signing key depends only on the date (the region and service are fixed per store), so
//! [`KeyCache`] keeps the one of the current day.

use std::sync::{Arc, Mutex};

use time::{Date, OffsetDateTime, UtcOffset};

use crate::crypto::{hex, push_hex, sha256, SecretKey};
use crate::storage::StorageError;

/// The `X-Amz-Algorithm` value.
pub(super) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name in the credential scope.
const SERVICE: &str = "s3";

/// The terminator of the credential scope.
const TERMINATOR: &str = "aws4_request";

/// The signing time in the two forms SigV4 uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Timestamp {
    /// The UTC day, the cache key of the signing key.
    pub(super) day: Date,
    /// `yyyymmddThhmmssZ` (ISO 8601 basic format, UTC); its first 8 bytes are `yyyymmdd`.
    amz_date: String,
}

impl Timestamp {
    /// The timestamp of `now`, converted to UTC and truncated to the second. Fails for years
    /// outside 0..=9999, which the four-digit format cannot carry.
    pub(super) fn new(now: OffsetDateTime) -> Result<Self, StorageError> {
        use core::fmt::Write as _;
        let utc = now
            .checked_to_offset(UtcOffset::UTC)
            .ok_or(StorageError::InvalidExpiry)?;
        let year = utc.year();
        if !(0..=9999).contains(&year) {
            return Err(StorageError::InvalidExpiry);
        }
        let mut amz_date = String::with_capacity(16);
        // Writing to a String cannot fail.
        let _ = write!(
            amz_date,
            "{year:04}{:02}{:02}T{:02}{:02}{:02}Z",
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        );
        Ok(Self {
            day: utc.date(),
            amz_date,
        })
    }

    /// `yyyymmdd`.
    pub(super) fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or_default()
    }

    /// `yyyymmddThhmmssZ`.
    pub(super) fn amz_date(&self) -> &str {
        &self.amz_date
    }
}

/// The credential scope `yyyymmdd/region/s3/aws4_request`.
pub(super) fn scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/{SERVICE}/{TERMINATOR}")
}

/// The string to sign for a canonical request.
pub(super) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    for part in [ALGORITHM, "\n", amz_date, "\n", scope, "\n"] {
        out.push_str(part);
    }
    push_hex(&mut out, &sha256(canonical_request.as_bytes()));
    out
}

/// The long-term key `"AWS4" + secret`, the root of the derivation.
pub(super) fn root_key(secret_access_key: &str) -> SecretKey {
    let mut bytes = Vec::with_capacity(secret_access_key.len().saturating_add(4));
    bytes.extend_from_slice(b"AWS4");
    bytes.extend_from_slice(secret_access_key.as_bytes());
    SecretKey::new(bytes)
}

/// The signing key of one day and region.
pub(super) fn signing_key(root: &SecretKey, date: &str, region: &str) -> SecretKey {
    let k_date = root.sign(&[date.as_bytes()]);
    let k_region = SecretKey::new(k_date.to_vec()).sign(&[region.as_bytes()]);
    let k_service = SecretKey::new(k_region.to_vec()).sign(&[SERVICE.as_bytes()]);
    let k_signing = SecretKey::new(k_service.to_vec()).sign(&[TERMINATOR.as_bytes()]);
    SecretKey::new(k_signing.to_vec())
}

/// The hex signature of a string to sign.
pub(super) fn signature(key: &SecretKey, string_to_sign: &str) -> String {
    hex(&key.sign(&[string_to_sign.as_bytes()]))
}

/// What every presign of one day shares: the signing key, the credential scope and the
/// encoded `X-Amz-Credential` value.
pub(super) struct DayKey {
    pub(super) key: SecretKey,
    /// `yyyymmdd/region/s3/aws4_request`.
    pub(super) scope: String,
    /// `{access key ID}/{scope}`, encoded for the query.
    pub(super) credential: String,
}

/// The [`DayKey`] of the last day used, so that only the first URL of a day pays for the four
/// HMACs of the derivation. The region is fixed per store and is not part of the cache key.
#[derive(Default)]
pub(super) struct KeyCache {
    slot: Mutex<Option<(Date, Arc<DayKey>)>>,
}

impl core::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyCache(<redacted>)")
    }
}

impl KeyCache {
    /// The cached key for `day`, or a fresh one from `derive` (then cached).
    pub(super) fn get(&self, day: Date, derive: impl FnOnce() -> DayKey) -> Arc<DayKey> {
        if let Some(key) = self.with_slot(|slot| match slot {
            Some((d, key)) if *d == day => Some(Arc::clone(key)),
            _ => None,
        }) {
            return key;
        }
        let key = Arc::new(derive());
        let cached = Arc::clone(&key);
        self.with_slot(|slot| *slot = Some((day, cached)));
        key
    }

    /// Runs `f` on the cache slot. A poisoned lock (a panic elsewhere while holding it) only
    /// held a derived key, which is still valid: recover the guard.
    fn with_slot<R>(&self, f: impl FnOnce(&mut Option<(Date, Arc<DayKey>)>) -> R) -> R {
        let mut guard = match self.slot.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    #[cfg(test)]
    pub(super) fn cached_day(&self) -> Option<Date> {
        self.with_slot(|slot| slot.as_ref().map(|(d, _)| *d))
    }
}
