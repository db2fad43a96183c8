//! File IDs: opaque, unforgeable names for stored files that any node holding the service
//! secret can resolve, without shared state.
//!
//! A file ID is the base64url (no padding) of `version (1 byte) ‖ tag (16 bytes) ‖ ciphertext`,
//! a deterministic authenticated encryption in the SIV style built from HMAC-SHA256 alone:
//!
//! * the plaintext is `issued-at (8 bytes, big-endian Unix seconds) ‖ object key (UTF-8)`;
//! * `tag = HMAC(k_mac, version ‖ plaintext)`, truncated to 128 bits;
//! * `ciphertext = plaintext XOR HMAC(k_enc, tag ‖ counter)` blocks (a keystream in counter
//!   mode, unique per tag).
//!
//! `k_mac` and `k_enc` are derived from the service secret for this purpose only. Changing any
//! bit makes the tag fail, and the object key (slot ID, file name) cannot be read out of the
//! ID. IDs made under a previous secret still resolve while that secret is configured as
//! previous.

use base64::Engine as _;
use time::OffsetDateTime;

use crate::crypto::{ct_eq, SecretKey};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const VERSION: u8 = 2;
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

#[derive(Debug, Clone)]
struct Keys {
    mac: SecretKey,
    enc: SecretKey,
}

impl Keys {
    fn new(secret: &SecretKey) -> Self {
        Self {
            mac: secret.derive("file-id mac"),
            enc: secret.derive("file-id enc"),
        }
    }

    fn tag(&self, plaintext: &[u8]) -> [u8; TAG_LEN] {
        let full = self.mac.sign(&[&[VERSION], plaintext]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(full.get(..TAG_LEN).unwrap_or(&[0; TAG_LEN]));
        tag
    }

    /// XORs `data` with the keystream for `tag`.
    fn apply_stream(&self, tag: &[u8], data: &mut [u8]) {
        for (counter, chunk) in (0u32..).zip(data.chunks_mut(32)) {
            let block = self.enc.sign(&[tag, &counter.to_be_bytes()]);
            for (d, k) in chunk.iter_mut().zip(block) {
                *d ^= k;
            }
        }
    }
}

/// Seals and opens file IDs with the current secret and any previous ones.
#[derive(Debug, Clone)]
pub(crate) struct FileIdSealer {
    current: Keys,
    previous: Vec<Keys>,
}

impl FileIdSealer {
    pub(crate) fn new(current: &SecretKey, previous: &[SecretKey]) -> Self {
        Self {
            current: Keys::new(current),
            previous: previous.iter().map(Keys::new).collect(),
        }
    }

    pub(crate) fn seal(&self, key: &str, issued: OffsetDateTime) -> String {
        let mut plaintext = Vec::with_capacity(8 + key.len());
        plaintext.extend_from_slice(&issued.unix_timestamp().to_be_bytes());
        plaintext.extend_from_slice(key.as_bytes());
        let tag = self.current.tag(&plaintext);
        self.current.apply_stream(&tag, &mut plaintext);
        let mut out = Vec::with_capacity(1 + TAG_LEN + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&plaintext);
        B64URL.encode(out)
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
        if buf.len() < 1 + TAG_LEN + 8 + 1 || buf.first() != Some(&VERSION) {
            return Err(FileIdError::Unknown);
        }
        let tag = buf.get(1..1 + TAG_LEN).ok_or(FileIdError::Unknown)?;
        let ciphertext = buf.get(1 + TAG_LEN..).ok_or(FileIdError::Unknown)?;
        let plaintext = std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|keys| {
                let mut p = ciphertext.to_vec();
                keys.apply_stream(tag, &mut p);
                ct_eq(&keys.tag(&p), tag).then_some(p)
            })
            .ok_or(FileIdError::Unknown)?;
        let secs = plaintext
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or(FileIdError::Unknown)?;
        let issued = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| FileIdError::Unknown)?;
        let key = plaintext
            .get(8..)
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
    fn the_key_cannot_be_read_out_of_the_id() {
        let s = FileIdSealer::new(&SecretKey::new("k"), &[]);
        let id = s.seal("0123abcd/secret-name.jpg", now());
        let raw = B64URL.decode(&id).unwrap();
        assert!(!raw.windows(11).any(|w| w == b"secret-name"));
        assert!(!id.contains("secret"));
        // Deterministic: the same key and time give the same ID (no randomness needed).
        assert_eq!(s.seal("0123abcd/secret-name.jpg", now()), id);
        assert_ne!(
            s.seal("0123abcd/secret-name.jpg", now() + time::Duration::SECOND),
            id
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
