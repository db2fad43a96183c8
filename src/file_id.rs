//! File IDs: opaque, unforgeable names for stored files that any node holding the service
//! secret can resolve, without shared state.
//!
//! A file ID is the base64url (no padding) of
//! `version (1 byte) ‖ issued-at (8 bytes, big-endian Unix seconds) ‖ object key (UTF-8) ‖ tag (16 bytes)`,
//! where the tag is a 128-bit HMAC-SHA256 over everything before it, keyed with a key derived
//! from the service secret for this purpose only. Changing any bit makes the tag fail. IDs
//! made under a previous secret still resolve while that secret is configured as previous.

use base64::Engine as _;
use time::OffsetDateTime;

use crate::crypto::{ct_eq, SecretKey};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longest accepted file ID, in characters (object keys are short; this bounds the work a
/// hostile ID can cause).
pub const MAX_FILE_ID_LEN: usize = 1024;

/// Why a file ID was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileIdError {
    /// Not a file ID of this service: malformed, altered, or made with another secret.
    #[error("unknown file ID")]
    Unknown,
    /// A genuine file ID past its lifetime.
    #[error("expired file ID")]
    Expired,
}

/// A verified file ID's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedFileId {
    /// The object key it names.
    pub key: String,
    /// When it was issued.
    pub issued: OffsetDateTime,
}

/// Seals and opens file IDs with the current secret and any previous ones.
#[derive(Debug, Clone)]
pub(crate) struct FileIdSealer {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl FileIdSealer {
    pub(crate) fn new(current: &SecretKey, previous: &[SecretKey]) -> Self {
        Self {
            current: current.derive("file-id"),
            previous: previous.iter().map(|k| k.derive("file-id")).collect(),
        }
    }

    pub(crate) fn seal(&self, key: &str, issued: OffsetDateTime) -> String {
        let mut buf = Vec::with_capacity(1 + 8 + key.len() + TAG_LEN);
        buf.push(VERSION);
        buf.extend_from_slice(&issued.unix_timestamp().to_be_bytes());
        buf.extend_from_slice(key.as_bytes());
        let tag = self.current.sign(&[&buf]);
        buf.extend_from_slice(tag.get(..TAG_LEN).unwrap_or(&tag));
        B64URL.encode(buf)
    }

    /// Opens an ID; `lifetime` bounds its age when set.
    pub(crate) fn open(
        &self,
        id: &str,
        now: OffsetDateTime,
        lifetime: Option<time::Duration>,
    ) -> Result<ResolvedFileId, FileIdError> {
        if id.len() > MAX_FILE_ID_LEN {
            return Err(FileIdError::Unknown);
        }
        let buf = B64URL.decode(id).map_err(|_| FileIdError::Unknown)?;
        if buf.len() < 1 + 8 + 1 + TAG_LEN || buf.first() != Some(&VERSION) {
            return Err(FileIdError::Unknown);
        }
        let (body, tag) = buf.split_at(buf.len() - TAG_LEN);
        let genuine = std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| ct_eq(k.sign(&[body]).get(..TAG_LEN).unwrap_or_default(), tag));
        if !genuine {
            return Err(FileIdError::Unknown);
        }
        let secs = body
            .get(1..9)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or(FileIdError::Unknown)?;
        let issued = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| FileIdError::Unknown)?;
        let key = body
            .get(9..)
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or(FileIdError::Unknown)?
            .to_owned();
        if let Some(life) = lifetime {
            if issued.checked_add(life).is_none_or(|end| now >= end) {
                return Err(FileIdError::Expired);
            }
        }
        Ok(ResolvedFileId { key, issued })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn seal_open_rotate_expire() {
        let old = SecretKey::new("old");
        let new = SecretKey::new("new");
        let s_old = FileIdSealer::new(&old, &[]);
        let s_new = FileIdSealer::new(&new, std::slice::from_ref(&old));
        let id = s_old.seal("ab/c.jpg", now());
        assert_eq!(s_new.open(&id, now(), None).unwrap().key, "ab/c.jpg");
        assert_eq!(
            FileIdSealer::new(&new, &[]).open(&id, now(), None),
            Err(FileIdError::Unknown)
        );
        assert_eq!(
            s_old.open(
                &id,
                now() + time::Duration::days(2),
                Some(time::Duration::days(1))
            ),
            Err(FileIdError::Expired)
        );
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let s = FileIdSealer::new(&SecretKey::new("k"), &[]);
        let raw = B64URL.decode(s.seal("0123/x.bin", now())).unwrap();
        for i in 0..raw.len() * 8 {
            let mut m = raw.clone();
            m[i / 8] ^= 1 << (i % 8);
            assert!(s.open(&B64URL.encode(&m), now(), None).is_err(), "bit {i}");
        }
    }
}
